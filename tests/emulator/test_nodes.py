"""Single files (Nodes) on both download origins, and Sentinel-1's native $zip (spec §5.7, §5.8)."""

from __future__ import annotations

import hashlib
import io
import threading
import zipfile
from collections.abc import Iterator
from dataclasses import replace
from datetime import datetime, timedelta
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import requests

from sentinel_fetch.emulator import DEMO_USERNAME, Emulator, EmulatorConfig
from sentinel_fetch.emulator.config import CATALOGUE_NOW
from sentinel_fetch.emulator.model import ProductRecord

from .test_server_support import (
    RECORDS,
    S1,
    S2,
    MemoryStore,
    bearer,
    client,
    product_url,
    simple_catalogue,
    token,
)

#: Published five days before the emulator's clock: inside the 30-day $zip window.
RECENT_S1 = replace(
    S1,
    id="7c1d7e39-0e55-4f1c-9a43-52e1f0c5a0b2",
    name="S1C_IW_GRDH_1SDV_20251228T053012_20251228T053037_005612_00B2C4_91AF.SAFE",
    publication=CATALOGUE_NOW - timedelta(days=5),
)
#: Published 40 days before the clock: its native form is gone.
OLD_S1 = replace(
    S1,
    id="3b9a4f0e-6d21-4c8e-b1f7-0a2d9c4e5f61",
    name="S1A_IW_GRDH_1SDV_20251120T053012_20251120T053037_061612_07B2C4_0A1B.SAFE",
    publication=CATALOGUE_NOW - timedelta(days=40),
)


@pytest.fixture(scope="module")
def emulator(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Emulator]:
    config = EmulatorConfig(data_dir=tmp_path_factory.mktemp("nodes"), size_scale=1e-4)
    store = MemoryStore((*RECORDS, RECENT_S1, OLD_S1))
    with Emulator(config, store=store, catalogue=simple_catalogue) as running:
        yield running


@pytest.fixture
def access(emulator: Emulator) -> str:
    return token(emulator)


def node_url(base: str, record: ProductRecord, path: str) -> str:
    return f"{base}/Products({record.id})" + "".join(f"/Nodes({p})" for p in path.split("/"))


def band_path(emulator: Emulator, record: ProductRecord, ending: str) -> str:
    return next(n for n, _ in emulator.archives.info(record).members if n.endswith(ending))


def test_a_file_has_the_same_bytes_in_the_zip_and_through_nodes_on_both_origins(
    emulator: Emulator, access: str
) -> None:
    session = client(emulator)
    archive = zipfile.ZipFile(
        io.BytesIO(session.get(product_url(emulator, S2), headers=bearer(access)).content)
    )
    digests = {f.path: f for f in emulator.archives.info(S2).files}
    paths = [
        band_path(emulator, S2, "_B04_10m.jp2"),
        band_path(emulator, S2, "_SCL_20m.jp2"),
        f"{S2.name}/manifest.safe",
    ]

    for path in paths:
        from_zip = archive.read(path)
        on_download = session.get(
            node_url(emulator.download_url, S2, path) + "/$value", headers=bearer(access)
        )
        on_zipper = session.get(
            node_url(emulator.zipper_url, S2, path) + "/$value", headers=bearer(access)
        )

        assert on_download.status_code == on_zipper.status_code == 200
        assert on_download.content == on_zipper.content == from_zip
        assert hashlib.sha3_256(from_zip).hexdigest() == digests[path].sha3_256
        assert int(on_zipper.headers["Content-Length"]) == digests[path].size


def test_the_zipper_origin_lists_nodes_with_its_own_links(emulator: Emulator) -> None:
    listing = client(emulator).get(f"{emulator.zipper_url}/Products({S2.id})/Nodes").json()
    children = client(emulator).get(listing["result"][0]["Nodes"]["uri"]).json()["result"]
    granule = next(n for n in children if n["Name"] == "GRANULE")

    assert (
        urlsplit(listing["result"][0]["Nodes"]["uri"]).netloc
        == urlsplit(emulator.zipper_url).netloc
    )
    assert emulator.zipper_url != emulator.download_url
    assert granule["ContentLength"] == 0 and granule["ChildrenNumber"] == 1
    manifest = next(n for n in children if n["Name"] == "manifest.safe")
    assert manifest["ChildrenNumber"] == 0
    assert (
        manifest["ContentLength"]
        == dict(emulator.archives.info(S2).members)[f"{S2.name}/manifest.safe"]
    )


def test_node_files_need_a_token_on_both_origins(emulator: Emulator) -> None:
    path = band_path(emulator, S2, "_B04_10m.jp2")

    for base in (emulator.download_url, emulator.zipper_url):
        refused = client(emulator).get(node_url(base, S2, path) + "/$value")
        assert refused.status_code == 401
        assert refused.json()["code"] == "DAT-ZIP-604"


def test_quoted_keys_are_rejected(emulator: Emulator, access: str) -> None:
    session = client(emulator)
    base = f"{emulator.download_url}/Products({S2.id})"

    for url in (
        f"{base}/Nodes('{S2.name}')/Nodes",
        f"{base}/Nodes({S2.name})/Nodes('manifest.safe')/$value",
    ):
        answer = session.get(url, headers=bearer(access))
        assert answer.status_code == 400
        assert answer.json()["code"] == "DAT-ZIP-104"
        assert answer.json()["message"] == "Malformed OData request path"
    quoted = session.get(
        f"{emulator.download_url}/Products('{S2.id}')/$value", headers=bearer(access)
    )
    assert quoted.status_code == 422
    assert quoted.json()["code"] == "DAT-ZIP-111"


def test_range_on_nodes_is_a_switch_of_its_own(emulator: Emulator, access: str) -> None:
    url = node_url(emulator.download_url, S2, band_path(emulator, S2, "_B04_10m.jp2")) + "/$value"
    ranged = {**bearer(access), "Range": "bytes=10-19"}
    whole = client(emulator).get(url, headers=bearer(access)).content
    emulator.config.node_range_supported = False
    try:
        node = client(emulator).get(url, headers=ranged)
        product = client(emulator).get(product_url(emulator, S2), headers=ranged)
    finally:
        emulator.config.node_range_supported = True

    assert node.status_code == 200 and node.content == whole
    assert "Accept-Ranges" not in node.headers
    assert product.status_code == 206
    assert client(emulator).get(url, headers=ranged).content == whole[10:20]


def _slow_get(url: str, headers: dict[str, str], verify: str, results: list[int]) -> None:
    with requests.get(url, headers=headers, verify=verify, timeout=30) as response:
        results.append(response.status_code)


@pytest.mark.parametrize("counted", [True, False])
def test_node_downloads_take_stream_slots_unless_switched_off(
    tmp_path: Path, counted: bool
) -> None:
    config = EmulatorConfig(
        data_dir=tmp_path,
        product_size_bytes=200_000,
        bandwidth_bytes_per_s=50_000,
        max_concurrent_downloads=1,
        nodes_count_as_streams=counted,
    )
    with Emulator(config, store=MemoryStore(), catalogue=simple_catalogue) as emulator:
        access = token(emulator)
        results: list[int] = []
        stream = threading.Thread(
            target=_slow_get,
            args=(product_url(emulator, S1), bearer(access), str(emulator.ca_bundle), results),
        )
        stream.start()
        assert emulator.stats.wait_for(lambda s: s.current_streams(DEMO_USERNAME) == 1)
        manifest = node_url(emulator.zipper_url, S2, f"{S2.name}/manifest.safe") + "/$value"

        answer = client(emulator).get(manifest, headers=bearer(access))
        stream.join()

    assert results == [200]
    if counted:
        assert answer.status_code == 429
        assert answer.json()["code"] == "DAT-ZIP-100"
    else:
        assert answer.status_code == 200
        assert emulator.stats.peak_streams() == 1


def test_stats_tell_which_files_were_fetched(emulator: Emulator, access: str) -> None:
    emulator.stats.reset()
    band = band_path(emulator, S2, "_B04_10m.jp2")
    scl = band_path(emulator, S2, "_SCL_20m.jp2")
    session = client(emulator)

    session.get(node_url(emulator.zipper_url, S2, band) + "/$value", headers=bearer(access))
    session.get(node_url(emulator.download_url, S2, scl) + "/$value", headers=bearer(access))
    session.get(
        node_url(emulator.download_url, S2, scl) + "/$value",
        headers={**bearer(access), "Range": "bytes=0-99"},
    )
    sizes = dict(emulator.archives.info(S2).members)

    assert emulator.stats.bytes_by_file() == {S2.id: {band: sizes[band], scl: sizes[scl] + 100}}
    assert emulator.stats.bytes_served(S2.id) == sizes[band] + sizes[scl] + 100
    assert emulator.stats.requests_by_host() == {"download": 2, "zipper": 1}


# Sentinel-1 native compressed download ----------------------------------------------


def test_native_archive_inside_the_window(emulator: Emulator, access: str) -> None:
    session = client(emulator)
    native = session.get(
        f"{emulator.download_url}/Products({RECENT_S1.id})/$zip", headers=bearer(access)
    )
    stored = session.get(product_url(emulator, RECENT_S1), headers=bearer(access)).content
    info = emulator.archives.native_info(RECENT_S1)
    unpacked = zipfile.ZipFile(io.BytesIO(native.content))
    packed = zipfile.ZipFile(io.BytesIO(stored))

    assert native.status_code == 200
    assert native.headers["Content-Type"] == "application/zip"
    assert int(native.headers["Content-Length"]) == info.length == len(native.content)
    assert hashlib.md5(native.content, usedforsecurity=False).hexdigest() == info.md5
    assert unpacked.testzip() is None
    assert {i.compress_type for i in unpacked.infolist()} == {zipfile.ZIP_DEFLATED}
    # The same files, deflated: about half the bytes of the zipper's stored zip (§5.8).
    assert unpacked.namelist() == packed.namelist()
    assert all(unpacked.read(n) == packed.read(n) for n in packed.namelist())
    assert 0.4 < len(native.content) / len(stored) < 0.65
    assert emulator.stats.bytes_by_file(RECENT_S1.id)[RECENT_S1.id]["$zip"] == info.length


def test_native_archive_after_the_window_and_for_other_products(
    emulator: Emulator, access: str
) -> None:
    session = client(emulator)

    def native(record: ProductRecord) -> requests.Response:
        url = f"{emulator.download_url}/Products({record.id})/$zip"
        return session.get(url, headers=bearer(access))

    expired = native(OLD_S1)
    emulator.config.compressed_expired_status = 410
    try:
        gone = native(OLD_S1)
    finally:
        emulator.config.compressed_expired_status = 404
    moved = emulator.config.now
    emulator.config.now = lambda: datetime.fromisoformat("2026-03-01T00:00:00+00:00")
    try:
        later = native(RECENT_S1)
    finally:
        emulator.config.now = moved

    assert expired.status_code == 404 and "first month" in expired.json()["message"]
    assert gone.status_code == 410
    assert later.status_code == 404
    assert native(S2).status_code == 404
    assert native(RECENT_S1).status_code == 200


# Locations on the real catalogue ------------------------------------------------------


def s1_grd_published(cdse: Emulator, since_days: int, until_days: int) -> str:
    """An online IW GRDH product published between the two ages (days before the clock)."""
    fmt = "%Y-%m-%dT%H:%M:%S.000Z"
    since = (CATALOGUE_NOW - timedelta(days=since_days)).strftime(fmt)
    until = (CATALOGUE_NOW - timedelta(days=until_days)).strftime(fmt)
    found = cdse.match_ids(
        f"Collection/Name eq 'SENTINEL-1' and PublicationDate ge {since} and "
        f"PublicationDate lt {until} and Online eq true and "
        "Attributes/OData.CSC.StringAttribute/any(att:att/Name eq 'productType' and "
        "att/OData.CSC.StringAttribute/Value eq 'IW_GRDH_1S')"
    )
    assert found, "the catalogue should hold Sentinel-1 products of that age"
    return found[0]


def locations(cdse: Emulator, product_id: str) -> list[dict[str, object]]:
    url = f"{cdse.catalogue_url}/Products({product_id})?$expand=Locations"
    entity = client(cdse).get(url).json()
    found: list[dict[str, object]] = entity["Locations"]
    return found


def test_recent_sentinel1_products_offer_a_compressed_location(cdse: Emulator) -> None:
    product_id = s1_grd_published(cdse, 20, 10)
    extracted, compressed = locations(cdse, product_id)
    session = client(cdse)
    access = token(cdse)
    # The catalogue redirects $zip to the download host like $value (§5.2, §5.8).
    hop = session.get(str(compressed["DownloadLink"]), allow_redirects=False)
    body = session.get(hop.headers["Location"], headers=bearer(access)).content
    checksums = {c["Algorithm"]: c["Value"] for c in compressed["Checksum"]}  # type: ignore[attr-defined]

    assert extracted["FormatType"] == "Extracted"
    assert str(extracted["DownloadLink"]).endswith(f"Products({product_id})/$value")
    assert compressed["FormatType"] == "Compressed"
    assert str(compressed["DownloadLink"]) == f"{cdse.catalogue_url}/Products({product_id})/$zip"
    assert hop.status_code == 301
    assert hop.headers["Location"] == f"{cdse.download_url}/Products({product_id})/$zip"
    assert len(body) == compressed["ContentLength"]
    assert hashlib.md5(body, usedforsecurity=False).hexdigest() == checksums["MD5"]
    assert 0.4 < int(str(compressed["ContentLength"])) / int(str(extracted["ContentLength"])) < 0.65
    record = cdse.store.get(product_id)
    assert record is not None and record.publication is not None
    assert compressed["EvictionDate"] == (record.publication + timedelta(days=30)).strftime(
        "%Y-%m-%dT%H:%M:%S.%fZ"
    )


def test_older_products_have_only_the_extracted_location(cdse: Emulator) -> None:
    product_id = s1_grd_published(cdse, 60, 40)

    assert [entry["FormatType"] for entry in locations(cdse, product_id)] == ["Extracted"]


@pytest.mark.parametrize(
    ("style", "fields"),
    [
        ("no-eviction-date", {"FormatType", "DownloadLink", "ContentLength", "Checksum", "S3Path"}),
        ("absent", None),
    ],
)
def test_the_compressed_entry_shape_is_a_switch(
    cdse: Emulator, style: str, fields: set[str] | None
) -> None:
    product_id = s1_grd_published(cdse, 20, 10)
    cdse.config.compressed_location = style
    try:
        found = locations(cdse, product_id)
    finally:
        cdse.config.compressed_location = "full"

    if fields is None:
        assert len(found) == 1
    else:
        assert set(found[1]) == fields
