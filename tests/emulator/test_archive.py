"""Product archives: valid, realistic, exact in size, deterministic, cheap to describe."""

from __future__ import annotations

import hashlib
import io
import logging
import struct
import threading
import zipfile
from dataclasses import replace
from pathlib import Path

import blake3
import pytest

from sentinel_fetch.emulator import EmulatorConfig
from sentinel_fetch.emulator.archive import ArchiveStore
from sentinel_fetch.emulator.model import ProductRecord

from .test_server_support import OFFLINE, S1, S2, S3, S5P


def archive_bytes(store: ArchiveStore, record: ProductRecord) -> bytes:
    length = store.info(record).length
    return b"".join(bytes(chunk) for chunk in store.iter_range(record, 0, length, 1 << 20))


def store_in(folder: Path, **settings: object) -> ArchiveStore:
    return ArchiveStore(EmulatorConfig(data_dir=folder, **settings))  # type: ignore[arg-type]


def floor(folder: Path, record: ProductRecord) -> int:
    """Length of the complete folder with every file at its minimal size."""
    return store_in(folder, product_size_bytes=1).layout(record).length


@pytest.mark.parametrize("scale", [1e-5, 1e-3])
@pytest.mark.parametrize("record", [S2, S1, S3, S5P, OFFLINE], ids=lambda r: r.product_type)
def test_archives_are_valid_zips_matching_their_info(
    tmp_path: Path, record: ProductRecord, scale: float
) -> None:
    store = store_in(tmp_path, size_scale=scale)

    data = archive_bytes(store, record)
    info = store.info(record)
    archive = zipfile.ZipFile(io.BytesIO(data))

    assert archive.testzip() is None
    assert len(data) == info.length == max(store.target_size(record), floor(tmp_path, record))
    assert hashlib.md5(data, usedforsecurity=False).hexdigest() == info.md5
    assert blake3.blake3(data).hexdigest() == info.blake3
    assert [(i.filename, i.file_size) for i in archive.infolist()] == list(info.members)
    assert all(i.compress_type == zipfile.ZIP_STORED for i in archive.infolist())
    assert {i.date_time for i in archive.infolist()} == {(2024, 7, 9, 7, 46, 18)}
    assert [(f.path, f.size) for f in info.files] == list(info.members)
    for digest in info.files:
        content = archive.read(digest.path)
        assert hashlib.md5(content, usedforsecurity=False).hexdigest() == digest.md5
        assert hashlib.sha3_256(content).hexdigest() == digest.sha3_256


def test_sentinel2_layout_looks_real(tmp_path: Path) -> None:
    names = [name for name, _ in store_in(tmp_path, size_scale=1e-3).info(S2).members]

    assert f"{S2.name}/manifest.safe" in names
    assert f"{S2.name}/MTD_MSIL2A.xml" in names
    assert any(
        n.startswith(f"{S2.name}/GRANULE/L2A_T40XFF_")
        and "/IMG_DATA/R10m/T40XFF_20240709T074619_B04_10m.jp2" in n
        for n in names
    )
    assert any(n.endswith("_B12_20m.jp2") for n in names)


def test_sentinel1_sentinel3_sentinel5p_layouts(tmp_path: Path) -> None:
    store = store_in(tmp_path, size_scale=1e-3)
    s1 = [n for n, _ in store.info(S1).members]
    s3 = [n for n, _ in store.info(S3).members]
    s5p = [n for n, _ in store.info(S5P).members]

    # Real dual-polarisation products number VH first: vh-001, vv-002.
    for pol, number in (("vh", "001"), ("vv", "002")):
        stem = f"s1a-iw-grd-{pol}-20240604t110100-20240604t110131-054172-069690-{number}"
        assert f"{S1.name}/measurement/{stem}.tiff" in s1
        assert f"{S1.name}/annotation/{stem}.xml" in s1
        assert f"{S1.name}/annotation/calibration/calibration-{stem}.xml" in s1
        assert f"{S1.name}/annotation/calibration/noise-{stem}.xml" in s1
    assert f"{S1.name}/manifest.safe" in s1
    assert f"{S1.name}/preview/thumbnail.png" in s1
    assert f"{S3.name}/xfdumanifest.xml" in s3
    assert f"{S3.name}/LST_in.nc" in s3
    assert s5p == [S5P.name]


def test_binary_members_start_with_their_format_signature(tmp_path: Path) -> None:
    store = store_in(tmp_path, size_scale=1e-3)
    s2 = zipfile.ZipFile(io.BytesIO(archive_bytes(store, S2)))
    s5p = zipfile.ZipFile(io.BytesIO(archive_bytes(store, S5P)))
    jp2 = next(n for n in s2.namelist() if n.endswith(".jp2"))

    assert s2.read(jp2).startswith(b"\x00\x00\x00\x0cjP  \r\n\x87\n")
    assert s5p.read(S5P.name).startswith(b"\x89HDF\r\n\x1a\n")
    assert s2.read(f"{S2.name}/manifest.safe").startswith(b"<?xml")


def test_bytes_are_deterministic_across_stores_and_differ_across_products(tmp_path: Path) -> None:
    first = archive_bytes(store_in(tmp_path / "a"), S2)
    second = archive_bytes(store_in(tmp_path / "b"), S2)
    twin = replace(S2, id="11111111-2222-3333-4444-555555555555")

    assert first == second
    assert archive_bytes(store_in(tmp_path / "c"), twin) != first


def test_product_size_bytes_is_exact(tmp_path: Path) -> None:
    store = store_in(tmp_path, product_size_bytes=3 * 1024 * 1024)

    for record in (S2, S1, S3, S5P):
        assert store.info(record).length == 3 * 1024 * 1024


def test_tiny_targets_get_a_structural_floor(tmp_path: Path) -> None:
    store = store_in(tmp_path, product_size_bytes=100)
    complete = [n for n, _ in store_in(tmp_path, size_scale=1e-3).info(S2).members]

    info = store.info(S2)

    # A SAFE tree is never cut down: the floor is the whole tree at minimal file sizes.
    assert [n for n, _ in info.members] == complete
    assert 100 < info.length < 100_000
    assert zipfile.ZipFile(io.BytesIO(archive_bytes(store, S2))).testzip() is None


def test_large_archives_go_to_disk_once_with_a_sidecar(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    size = 9 * 1024 * 1024
    store = store_in(tmp_path, product_size_bytes=size)
    caplog.set_level(logging.DEBUG, logger="sentinel_fetch.emulator")
    results = []

    def describe() -> None:
        results.append(store.info(S1))

    threads = [threading.Thread(target=describe) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    path = store.file_path(S1)
    assert path is not None
    written = path.stat().st_mtime_ns
    again = store_in(tmp_path, product_size_bytes=size).info(S1)

    assert sum("building" in r.message for r in caplog.records) == 1
    assert len({(i.md5, i.blake3) for i in results}) == 1
    assert again == results[0]
    assert path.stat().st_mtime_ns == written
    assert path.with_suffix(".json").exists()
    data = path.read_bytes()
    assert hashlib.md5(data, usedforsecurity=False).hexdigest() == again.md5
    assert zipfile.ZipFile(path).testzip() is None
    assert archive_bytes(store_in(tmp_path / "memory"), S1) != data


def test_disk_and_memory_builds_agree(tmp_path: Path) -> None:
    size = 9 * 1024 * 1024
    on_disk = store_in(tmp_path / "disk", product_size_bytes=size)
    in_memory = store_in(
        tmp_path / "memory", product_size_bytes=size, memory_archive_max_bytes=size + 1
    )

    assert on_disk.info(S2) == in_memory.info(S2)
    assert on_disk.file_path(S2) is not None
    assert in_memory.file_path(S2) is None


def test_memory_cache_is_bounded_and_rebuilds_evicted_archives(tmp_path: Path) -> None:
    store = store_in(tmp_path, size_scale=1e-3, archive_cache_bytes=100_000)
    expected = archive_bytes(store_in(tmp_path / "fresh", size_scale=1e-3), S2)

    for record in (S2, S1, S3, S5P):
        archive_bytes(store, record)

    assert archive_bytes(store, S2) == expected


def test_member_span_points_at_the_member_bytes(tmp_path: Path) -> None:
    store = store_in(tmp_path, size_scale=1e-3)
    data = archive_bytes(store, S2)
    archive = zipfile.ZipFile(io.BytesIO(data))
    name = archive.namelist()[3]

    span = store.member_span(S2, name)

    assert span is not None
    assert data[span.data_offset : span.data_offset + span.size] == archive.read(name)
    assert store.member_span(S2, "nope") is None


def test_small_archives_are_built_in_memory_never_on_disk(tmp_path: Path) -> None:
    # What keeps listing and checksumming many small products cheap is that nothing is
    # written: below memory_archive_max_bytes an archive lives in the in-memory cache.
    store = store_in(tmp_path)
    records = [
        replace(S2, id=f"00000000-0000-4000-8000-{n:012d}", nominal_size=1_000_000_000)
        for n in range(400)
    ]

    infos = [store.info(record) for record in records]

    # A complete L2A tree is bigger than the 10 kB asked for: every archive is its floor.
    assert [info.length for info in infos] == [floor(tmp_path, r) for r in records]
    assert len({info.md5 for info in infos}) == len(records)
    assert not store.directory.exists() or not any(store.directory.iterdir())


def test_zip64_structures_are_read_by_zipfile(tmp_path: Path) -> None:
    """A 10 GB layout, checked without writing 10 GB: only headers are materialised."""
    from sentinel_fetch.emulator.archive import _central_directory, _local_header

    store = store_in(tmp_path, product_size_bytes=10_000_000_000)
    layout = store.layout(S1)
    crcs = [0] * len(layout.members)

    class Sparse(io.RawIOBase):
        """Headers and the central directory where they belong, zeros elsewhere."""

        def __init__(self) -> None:
            self.position = 0
            self.pieces = [(m.header_offset, _local_header(layout, m, 0)) for m in layout.members]
            self.pieces.append((layout.central_offset, _central_directory(layout, crcs)))

        def seekable(self) -> bool:
            return True

        def readable(self) -> bool:
            return True

        def seek(self, offset: int, whence: int = 0) -> int:
            base = {0: 0, 1: self.position, 2: layout.length}[whence]
            self.position = base + offset
            return self.position

        def tell(self) -> int:
            return self.position

        def readinto(self, buffer: bytearray) -> int:  # type: ignore[override]
            size = min(len(buffer), layout.length - self.position)
            view = memoryview(buffer)[:size]
            view[:] = bytes(size)
            for start, piece in self.pieces:
                a = max(start, self.position)
                b = min(start + len(piece), self.position + size)
                if a < b:
                    view[a - self.position : b - self.position] = piece[a - start : b - start]
            self.position += size
            return size

    archive = zipfile.ZipFile(io.BufferedReader(Sparse(), 1 << 16))  # type: ignore[type-var]

    assert layout.length == 10_000_000_000
    assert layout.zip64_end
    sizes = {i.filename: i.file_size for i in archive.infolist()}
    big = archive.getinfo(next(m.path for m in layout.members if m.path.endswith("-002.tiff")))
    assert big.file_size >= 0xFFFFFFFF
    assert big.header_offset >= 0xFFFFFFFF
    assert archive.infolist()[-1].header_offset >= 0xFFFFFFFF
    assert sum(sizes.values()) < layout.length
    assert [(i.filename, i.file_size) for i in archive.infolist()] == [
        (m.path, m.size) for m in layout.members
    ]
    assert [i.header_offset for i in archive.infolist()] == [
        m.header_offset for m in layout.members
    ]
    with archive.open(big) as member:
        assert member.read(4) == bytes(4)
    assert struct.unpack("<I", _local_header(layout, layout.members[0], 0)[:4])[0] == 0x04034B50


L1C = replace(
    S2,
    id="5d0c3c53-8a43-4a3e-9a52-7d0f4d3b8f11",
    name="S2C_MSIL1C_20250301T101031_N0511_R022_T32TQM_20250301T121012.SAFE",
    product_type="S2MSI1C",
    nominal_size=700_000_000,
)
SLC = replace(
    S1,
    id="0f5e6a52-1d3b-4c1e-8d7a-2b9c4e6f8a10",
    name="S1A_IW_SLC__1SDV_20240604T110059_20240604T110132_054172_069690_7A3F.SAFE",
    product_type="IW_SLC__1S",
    nominal_size=7_800_000_000,
)
_MANIFEST_NS = {"xfdu": "urn:ccsds:schema:xfdu:1"}


def manifest_listing(archive: zipfile.ZipFile, root: str) -> dict[str, tuple[int, str, str]]:
    """``manifest.safe`` entries: path inside the SAFE -> (size, checksum name, value)."""
    import xml.etree.ElementTree as ElementTree

    tree = ElementTree.fromstring(archive.read(f"{root}/manifest.safe"))  # noqa: S314 (ours)
    listing = {}
    for stream in tree.iter("byteStream"):
        location = stream.find("fileLocation")
        checksum = stream.find("checksum")
        assert location is not None and checksum is not None and checksum.text is not None
        path = location.attrib["href"].removeprefix("./")
        listing[path] = (int(stream.attrib["size"]), checksum.attrib["checksumName"], checksum.text)
    return listing


@pytest.mark.parametrize(
    ("record", "algorithm"),
    [(S2, "SHA3-256"), (L1C, "SHA3-256"), (S1, "MD5"), (SLC, "MD5")],
    ids=lambda v: getattr(v, "product_type", v),
)
def test_manifest_lists_every_file_with_its_size_and_checksum(
    tmp_path: Path, record: ProductRecord, algorithm: str
) -> None:
    archive = zipfile.ZipFile(
        io.BytesIO(archive_bytes(store_in(tmp_path, size_scale=1e-4), record))
    )
    root = record.name
    listing = manifest_listing(archive, root)
    files = {n.removeprefix(f"{root}/") for n in archive.namelist()}
    # CDSE adds its own quicklook beside the SAFE content; the manifest never lists itself.
    unlisted = {"manifest.safe", f"{root.removesuffix('.SAFE')}-ql.jpg"}

    assert set(listing) == files - unlisted
    for path, (size, name, value) in listing.items():
        content = archive.read(f"{root}/{path}")
        digest = hashlib.sha3_256 if algorithm == "SHA3-256" else hashlib.md5
        assert name == algorithm
        assert size == len(content)
        assert value.lower() == digest(content).hexdigest()
        # Real S2 manifests write SHA3-256 in upper case; S1 manifests MD5 in lower case.
        assert value == (value.upper() if algorithm == "SHA3-256" else value.lower())


def test_l2a_has_every_band_at_every_real_resolution(tmp_path: Path) -> None:
    names = [n for n, _ in store_in(tmp_path).info(S2).members]
    found: dict[str, set[str]] = {}
    for name in names:
        if "/IMG_DATA/" in name:
            folder, file = name.split("/IMG_DATA/")[1].split("/")
            found.setdefault(folder, set()).add(file.split("_")[2])
    common = {"B02", "B03", "B04", "AOT", "TCI", "WVP"}
    twenty = common | {"B01", "B05", "B06", "B07", "B8A", "B11", "B12", "SCL"}

    assert found == {"R10m": common | {"B08"}, "R20m": twenty, "R60m": twenty | {"B09"}}
    assert sum(1 for n in names if n.endswith(".jp2") and "/IMG_DATA/" in n) == 36
    for required in ("MTD_MSIL2A.xml", "INSPIRE.xml", f"{S2.name[:-5]}-ql.jpg"):
        assert f"{S2.name}/{required}" in names
    assert any(n.endswith("/MTD_TL.xml") and "/GRANULE/L2A_T40XFF_" in n for n in names)
    assert any(n.endswith("/MTD_DS.xml") and "/DATASTRIP/DS_" in n for n in names)
    assert any("/QI_DATA/MSK_CLDPRB_20m.jp2" in n for n in names)


def test_l1c_has_a_single_resolution_image_folder(tmp_path: Path) -> None:
    names = [n for n, _ in store_in(tmp_path).info(L1C).members]
    images = [n for n in names if "/IMG_DATA/" in n]
    bands = {n.rsplit("_", 1)[1].removesuffix(".jp2") for n in images}

    assert all(n.split("/IMG_DATA/")[1].count("/") == 0 for n in images)
    assert bands == {f"B{n:02d}" for n in range(1, 13)} | {"B8A", "TCI"}
    assert f"{L1C.name}/MTD_MSIL1C.xml" in names


def test_slc_has_one_raster_per_swath_and_polarisation(tmp_path: Path) -> None:
    names = [n for n, _ in store_in(tmp_path).info(SLC).members]
    rasters = sorted(
        (n.split("/measurement/")[1] for n in names if "/measurement/" in n),
        key=lambda r: r.rsplit("-", 1)[1],
    )

    assert [r.split("-")[1:4] for r in rasters] == [
        [swath, "slc", pol] for pol in ("vh", "vv") for swath in ("iw1", "iw2", "iw3")
    ]
    assert [r.rsplit("-", 1)[1] for r in rasters] == [f"00{n}.tiff" for n in range(1, 7)]


def test_file_sizes_follow_real_proportions(tmp_path: Path) -> None:
    """A 1.1 GB L2A, laid out without writing it: bands keep their real relative sizes."""
    layout = store_in(tmp_path, product_size_bytes=1_100_000_000).layout(S2)
    size = {
        m.path.rsplit("_", 2)[1] + "_" + m.path.rsplit("_", 1)[1][:-4]: m.size
        for m in layout.members
        if "/IMG_DATA/" in m.path
    }

    assert 0.09 < size["B04_10m"] / layout.length < 0.14
    assert size["B04_10m"] / size["B04_20m"] == pytest.approx(4, rel=0.05)
    assert size["B04_10m"] / size["B04_60m"] == pytest.approx(36, rel=0.05)
    assert size["B05_20m"] / size["B05_60m"] == pytest.approx(9, rel=0.05)
    assert size["SCL_20m"] < size["B04_60m"] < size["B04_20m"]
    assert size["AOT_10m"] < size["WVP_60m"] < size["WVP_20m"] < size["WVP_10m"]


def test_thumbnails_are_real_images(tmp_path: Path) -> None:
    store = store_in(tmp_path)
    jpeg = store.member_bytes(S2, f"{S2.name}/{S2.name[:-5]}-ql.jpg")
    png = store.member_bytes(S1, f"{S1.name}/preview/thumbnail.png")
    assert jpeg is not None and png is not None
    start_of_frame = jpeg.index(b"\xff\xc0")
    height, width = struct.unpack(">HH", jpeg[start_of_frame + 5 : start_of_frame + 9])

    assert jpeg[:2] == b"\xff\xd8" and jpeg[-2:] == b"\xff\xd9"
    assert (width, height) == (343, 343)
    # About the 2.5 kB of a real quicklook (cdse-api.md §5.9).
    assert 1500 < len(jpeg) < 4000
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    assert struct.unpack(">II", png[16:24]) == (343, 343)
