"""Product archives: deterministic zips of real SAFE trees, in memory or on disk.

Every product is served as a valid zip (stored, no compression: CDSE's zipper streams
products without recompressing them) of the folder :mod:`.safe` describes: a SAFE tree
with ``manifest.safe`` listing every file with its size and checksum, Sentinel-2 bands at
every resolution, Sentinel-1 measurement TIFFs and annotations, Sentinel-3 ``.nc`` files
beside ``xfdumanifest.xml``, or the single netCDF file of a Sentinel-5P product.

Bytes are a pure function of the product record and the archive size: XML is rendered
from the record, binary files are a BLAKE3 XOF stream keyed by the product id (fast,
seekable, never the same for two products), timestamps are the sensing date. So the
same product has the same bytes in every emulator, the MD5/BLAKE3 the catalogue
publishes (:meth:`ArchiveStore.info`) are those of exactly the bytes the download host
serves (spec §5.5), and a file has the same bytes in the zip, through Nodes and through
a STAC asset href (all three read the same member span, §5.7). :attr:`ArchiveInfo.files`
gives every file's MD5 and SHA3-256, which the manifest, the STAC items and the tests use.

The zip writer is our own, rather than :mod:`zipfile`: it computes the complete layout
(headers, offsets, ZIP64 records) before any byte exists, which makes the archive size
exact (a benchmark asking for 1 GiB gets 1 073 741 824 bytes), lets Nodes serve one
member from its offset, and lets the catalogue learn the members without building the
file. A SAFE tree is always complete: below its structural floor (every file at a
minimal size) an archive is simply that floor. :mod:`zipfile` reads every archive back
in the tests.

Archives below ``memory_archive_max_bytes`` are built in memory on first use (an LRU
bounded by ``archive_cache_bytes`` keeps them). Larger ones are written once to
``data_dir/archives`` (temporary file, then an atomic rename; one build per product even
under concurrent requests; each file written in place at its offset, the manifest last)
with a JSON sidecar holding their checksums, and served from disk with ``sendfile``.

**Native compressed form.** Sentinel-1 RAW/GRD/SLC products published less than
``compressed_window_days`` before the emulator's clock (``config.now``) also exist as
the native archive ``$zip`` serves (cdse-api.md §5.8): a deflated zip of the same files
(about half the bytes, since measurement rasters compress 2:1), built on first use with
:mod:`zipfile` and cached like the stored archive. Its size and checksums come from the
bytes built, so a ``Locations`` entry always describes exactly what ``$zip`` serves.
"""

from __future__ import annotations

import functools
import hashlib
import io
import json
import logging
import os
import queue
import struct
import threading
import zipfile
import zlib
from collections import OrderedDict
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path

import blake3

from .config import COMPRESSED_LOCATION_STYLES, EmulatorConfig
from .model import ArchiveInfo, FileDigest, ProductRecord
from .safe import (
    MANIFEST_DIGESTS,
    FileSpec,
    ManifestFrame,
    manifest_entry,
    manifest_frame,
    product_files,
)

__all__ = [
    "FORMAT_VERSION",
    "ArchiveBody",
    "ArchiveLayout",
    "ArchiveStore",
    "MemberSpan",
    "native_eligible",
]

logger = logging.getLogger("sentinel_fetch.emulator")

#: Bumped whenever the bytes of an archive change, so stale files on disk are not served.
#: 2: complete SAFE trees with per-file checksums in ``manifest.safe``.
FORMAT_VERSION = 2

_LOCAL = struct.Struct("<IHHHHHIIIHH")
_CENTRAL = struct.Struct("<IHHHHHHIIIHHHHHII")
_END = struct.Struct("<IHHHHIIH")
_END64 = struct.Struct("<IQHHIIQQQQ")
_LOCATOR64 = struct.Struct("<IIQI")
_LOCAL_SIG = 0x04034B50
_CENTRAL_SIG = 0x02014B50
_END_SIG = 0x06054B50
_END64_SIG = 0x06064B50
_LOCATOR64_SIG = 0x07064B50
# A 32-bit size or offset field equal to this means "see the ZIP64 extra field".
_LIMIT32 = 0xFFFFFFFF
_LIMIT16 = 0xFFFF
_VERSION = 20
_VERSION64 = 45
_MADE_BY_UNIX = 3 << 8
_FILE_MODE = 0o100644 << 16

# Smallest payload a binary member gets, so that even tiny archives hold real-looking data.
_MIN_DATA_BYTES = 256
_GENERATE_CHUNK = 4 * 1024 * 1024
# 4-bit symbols with a skewed histogram (like SAR amplitudes): deflate keeps ~52 %.
_NIBBLE_COUNTS = (48, 40, 34, 28, 24, 20, 16, 12, 10, 8, 6, 4, 3, 1, 1, 1)
_NIBBLES = b"".join(bytes([0x20 + symbol]) * count for symbol, count in enumerate(_NIBBLE_COUNTS))
# Sentinel-1 types stored natively compressed during their first month (§5.8).
_NATIVE_TYPES = ("_RAW__", "_GRDF_", "_GRDH_", "_GRDM_", "_SLC__")


def native_eligible(record: ProductRecord) -> bool:
    """Whether a product type has a native compressed form at all (S1 RAW/GRD/SLC, §5.8).

    >>> from datetime import datetime, timezone
    >>> when = datetime(2025, 12, 20, tzinfo=timezone.utc)
    >>> def record(name: str) -> ProductRecord:
    ...     return ProductRecord("x", name, "SENTINEL-1", name[4:14], when, 1)
    >>> native_eligible(record("S1A_IW_GRDH_1SDV_x.SAFE"))
    True
    >>> native_eligible(record("S1A_IW_GRDH_1SDV_x_COG.SAFE"))
    False
    """
    if record.collection != "SENTINEL-1" or not record.name.endswith(".SAFE"):
        return False
    if record.name.endswith("_COG.SAFE") or record.product_type.endswith("-COG"):
        return False
    return any(kind in f"_{record.product_type}" for kind in _NATIVE_TYPES)


@dataclass(frozen=True)
class MemberSpan:
    """Where one file's bytes sit inside the archive.

    Attributes:
        path: path inside the zip (``<Name>/…``).
        size: file size in bytes.
        header_offset: offset of its local header.
        data_offset: offset of its first byte.
        text: fixed content (``None`` for binary data and for the manifest).
        magic: first bytes of binary data.
        nibbles: binary data made of 4-bit symbols (compressible, Sentinel-1 rasters).
        manifest: the SAFE manifest's digest style (``"sha3"``/``"md5"``), else ``None``.
        listed: listed in the manifest.
        mime: the manifest entry's ``mimeType``.
    """

    path: str
    size: int
    header_offset: int
    data_offset: int
    text: bytes | None = None
    magic: bytes = b""
    nibbles: bool = False
    manifest: str | None = None
    listed: bool = True
    mime: str = "application/octet-stream"

    @property
    def zip64(self) -> bool:
        """Whether the member needs ZIP64 size fields."""
        return self.size >= _LIMIT32


#: Reads one member's bytes (the native archive copies them from the stored one).
_ChunkReader = Callable[[MemberSpan], Iterator[memoryview]]


@dataclass(frozen=True)
class ArchiveLayout:
    """Complete byte layout of one archive, known before any byte is generated."""

    product_id: str
    length: int
    members: tuple[MemberSpan, ...]
    central_offset: int
    central_size: int
    zip64_end: bool
    dos_time: int
    dos_date: int
    manifest: ManifestFrame | None = None
    root: str = ""
    stamp: tuple[int, int, int, int, int, int] = (1980, 1, 1, 0, 0, 0)

    def member(self, path: str) -> MemberSpan | None:
        """The member stored under ``path``, or ``None``."""
        for span in self.members:
            if span.path == path:
                return span
        return None


@dataclass(frozen=True)
class ArchiveBody:
    """Where the download host reads an archive from: memory or a file on disk."""

    length: int
    memory: memoryview | None = None
    path: Path | None = None


@dataclass
class _Known:
    info: ArchiveInfo
    layout: ArchiveLayout


@dataclass
class _Native:
    info: ArchiveInfo
    path: Path | None = None
    data: bytes | None = field(default=None, repr=False)


class ArchiveStore:
    """Implements :class:`~sentinel_fetch.emulator.model.ArchiveSource` (plus disk access).

    Args:
        config: reads ``size_scale``, ``product_size_bytes``, ``min_product_size_bytes``,
            ``memory_archive_max_bytes``, ``archive_cache_bytes``, ``data_dir``, and for
            the native form ``now``, ``compressed_window_days`` and ``compressed_location``.
    """

    def __init__(self, config: EmulatorConfig) -> None:
        self._config = config
        self._lock = threading.Lock()
        self._known: OrderedDict[str, _Known] = OrderedDict()
        self._known_max = 200_000
        self._memory: OrderedDict[str, bytes] = OrderedDict()
        self._memory_bytes = 0
        self._build_locks: dict[str, threading.Lock] = {}
        self._natives: OrderedDict[str, _Native] = OrderedDict()

    @property
    def directory(self) -> Path:
        """Folder of the archives materialised on disk."""
        return self._config.data_dir / "archives" / f"v{FORMAT_VERSION}"

    def target_size(self, record: ProductRecord) -> int:
        """Archive size asked for by the configuration (before the structural floor)."""
        fixed = self._config.product_size_bytes
        if fixed is not None:
            return max(int(fixed), 1)
        scaled = round(record.nominal_size * self._config.size_scale)
        return max(int(scaled), self._config.min_product_size_bytes)

    def layout(self, record: ProductRecord) -> ArchiveLayout:
        """Headers, offsets and sizes of the archive (cheap: no content is generated)."""
        known = self._cached(record.id)
        if known is not None:
            return known.layout
        return _layout(record, self.target_size(record))

    def info(self, record: ProductRecord) -> ArchiveInfo:
        """Length, MD5, BLAKE3, members and per-file digests of exactly the bytes served.

        The first call builds the archive (in memory, or on disk for large ones unless a
        previous run left it there); later calls are a dictionary lookup.
        """
        known = self._cached(record.id)
        if known is not None:
            return known.info
        layout = _layout(record, self.target_size(record))
        if layout.length < self._config.memory_archive_max_bytes:
            data, info = _build_in_memory(layout)
            self._remember_bytes(record.id, data)
        else:
            info = self._ensure_file(layout)[1]
        self._remember(record.id, _Known(info, layout))
        return info

    def body(self, record: ProductRecord) -> ArchiveBody:
        """The archive's bytes for serving: a read-only memory view or a file path."""
        info = self.info(record)
        layout = self.layout(record)
        if layout.length < self._config.memory_archive_max_bytes:
            return ArchiveBody(info.length, memory=memoryview(self._bytes(layout)).toreadonly())
        return ArchiveBody(info.length, path=self._ensure_file(layout)[0])

    def file_path(self, record: ProductRecord) -> Path | None:
        """Path of the materialised archive if this product is served from disk."""
        return self.body(record).path

    def member_span(self, record: ProductRecord, path: str) -> MemberSpan | None:
        """Offset and size of one file inside the archive (for Nodes ``$value``)."""
        return self.layout(record).member(path)

    def member_bytes(self, record: ProductRecord, path: str) -> bytes | None:
        """The bytes of one file of the archive (small files: thumbnails, manifests)."""
        span = self.member_span(record, path)
        if span is None:
            return None
        start = span.data_offset
        return b"".join(
            bytes(c) for c in self.iter_range(record, start, start + span.size, 1 << 20)
        )

    def iter_range(
        self, record: ProductRecord, start: int, end: int, chunk_size: int
    ) -> Iterator[memoryview]:
        """Bytes ``start``..``end - 1`` of the archive, in chunks of at most ``chunk_size``."""
        body = self.body(record)
        end = min(end, body.length)
        if body.memory is not None:
            for offset in range(start, end, chunk_size):
                yield body.memory[offset : min(offset + chunk_size, end)]
            return
        assert body.path is not None
        yield from _file_range(body.path, start, end, chunk_size)

    # Native compressed form (Sentinel-1 $zip, §5.8) ------------------------------------

    def native_window_end(self, record: ProductRecord) -> datetime | None:
        """When the native form stops being offered (``None``: it never is, for this product)."""
        if not native_eligible(record) or record.publication is None or not record.online:
            return None
        return record.publication + timedelta(days=self._config.compressed_window_days)

    def native_available(self, record: ProductRecord) -> bool:
        """Whether ``$zip`` serves this product now (by the emulator's clock)."""
        end = self.native_window_end(record)
        return end is not None and self._config.now() < end

    def native_info(self, record: ProductRecord) -> ArchiveInfo:
        """Length and checksums of the native archive (built on first use)."""
        return self._native(record).info

    def native_body(self, record: ProductRecord) -> ArchiveBody:
        """The native archive's bytes for serving."""
        native = self._native(record)
        if native.data is not None:
            return ArchiveBody(native.info.length, memory=memoryview(native.data).toreadonly())
        assert native.path is not None
        return ArchiveBody(native.info.length, path=native.path)

    def compressed_location(self, record: ProductRecord, base_url: str) -> dict[str, object] | None:
        """The compressed ``Locations`` entry (§3.4, §5.8) while the native form is offered.

        Its exact fields are unconfirmed, so ``config.compressed_location`` picks them:
        ``full`` (``FormatType: "Compressed"``, own ``DownloadLink`` ``…/$zip``,
        ``ContentLength``, ``Checksum``, ``S3Path``, and ``EvictionDate`` = end of the
        window, as one client's test data spells it), ``no-eviction-date``, or
        ``absent`` (no entry at all, while ``$zip`` still works).
        """
        style = self._config.compressed_location
        if style == "absent" or not self.native_available(record):
            return None
        info = self.native_info(record)
        end = self.native_window_end(record)
        assert end is not None and record.publication is not None
        stamp = _odata_time(record.publication + timedelta(minutes=3))
        entry: dict[str, object] = {
            "FormatType": "Compressed",
            "DownloadLink": f"{base_url}/Products({record.id})/$zip",
            "ContentLength": info.length,
            "Checksum": [
                {"Value": info.md5, "Algorithm": "MD5", "ChecksumDate": stamp},
                {"Value": info.blake3, "Algorithm": "BLAKE3", "ChecksumDate": stamp},
            ],
            "S3Path": f"{_native_s3_path(record)}",
        }
        if style == "full":
            entry["EvictionDate"] = _odata_time(end)
        assert style in COMPRESSED_LOCATION_STYLES
        return entry

    def _native(self, record: ProductRecord) -> _Native:
        with self._lock:
            known = self._natives.get(record.id)
            if known is not None:
                self._natives.move_to_end(record.id)
                return known
            lock = self._build_locks.setdefault(f"native:{record.id}", threading.Lock())
        with lock:
            with self._lock:
                known = self._natives.get(record.id)
            if known is not None:
                return known
            layout = self.layout(record)
            self.info(record)
            if layout.length < self._config.memory_archive_max_bytes:
                buffer = io.BytesIO()
                _write_native(layout, buffer, self._member_chunks(record))
                data = buffer.getvalue()
                native = _Native(_digest_info(data), data=data)
            else:
                native = self._native_file(record, layout)
            with self._lock:
                self._natives[record.id] = native
                while len(self._natives) > 256:
                    self._natives.popitem(last=False)
            return native

    def _member_chunks(self, record: ProductRecord) -> _ChunkReader:
        def read(span: MemberSpan) -> Iterator[memoryview]:
            start = span.data_offset
            return self.iter_range(record, start, start + span.size, _GENERATE_CHUNK)

        return read

    def _native_file(self, record: ProductRecord, layout: ArchiveLayout) -> _Native:
        path = self._paths(layout)[0].with_name(f"{layout.product_id}-{layout.length}-native.zip")
        sidecar = path.with_suffix(".json")
        try:
            meta = json.loads(sidecar.read_text())
            if meta.get("version") == FORMAT_VERSION and path.stat().st_size == meta["length"]:
                return _Native(
                    ArchiveInfo(int(meta["length"]), str(meta["md5"]), str(meta["blake3"])),
                    path=path,
                )
        except (OSError, ValueError, KeyError, TypeError):
            pass
        path.parent.mkdir(parents=True, exist_ok=True)
        temporary = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
        try:
            with temporary.open("wb") as file:
                _write_native(layout, file, self._member_chunks(record))
            info = _hash_file(temporary)
            os.replace(temporary, path)
        except BaseException:
            temporary.unlink(missing_ok=True)
            raise
        _write_json(
            sidecar,
            {
                "version": FORMAT_VERSION,
                "length": info.length,
                "md5": info.md5,
                "blake3": info.blake3,
            },
        )
        return _Native(info, path=path)

    # Caches --------------------------------------------------------------------------

    def _cached(self, product_id: str) -> _Known | None:
        with self._lock:
            known = self._known.get(product_id)
            if known is not None:
                self._known.move_to_end(product_id)
            return known

    def _remember(self, product_id: str, known: _Known) -> None:
        with self._lock:
            self._known[product_id] = known
            while len(self._known) > self._known_max:
                self._known.popitem(last=False)

    def _remember_bytes(self, product_id: str, data: bytes) -> None:
        with self._lock:
            if product_id in self._memory:
                return
            self._memory[product_id] = data
            self._memory_bytes += len(data)
            while self._memory_bytes > self._config.archive_cache_bytes and len(self._memory) > 1:
                _, dropped = self._memory.popitem(last=False)
                self._memory_bytes -= len(dropped)

    def _bytes(self, layout: ArchiveLayout) -> bytes:
        with self._lock:
            data = self._memory.get(layout.product_id)
            if data is not None:
                self._memory.move_to_end(layout.product_id)
                return data
        data, _ = _build_in_memory(layout)
        self._remember_bytes(layout.product_id, data)
        return data

    # Disk ----------------------------------------------------------------------------

    def _paths(self, layout: ArchiveLayout) -> tuple[Path, Path]:
        stem = f"{layout.product_id}-{layout.length}"
        folder = self.directory / layout.product_id[:2]
        return folder / f"{stem}.zip", folder / f"{stem}.json"

    def _ensure_file(self, layout: ArchiveLayout) -> tuple[Path, ArchiveInfo]:
        """The archive on disk (built once) and its checksums (from the sidecar)."""
        with self._lock:
            lock = self._build_locks.setdefault(layout.product_id, threading.Lock())
        with lock:
            path, sidecar = self._paths(layout)
            info = _read_sidecar(path, sidecar, layout)
            if info is None:
                info = _build_on_disk(layout, path, sidecar)
            return path, info


def _file_range(path: Path, start: int, end: int, chunk_size: int) -> Iterator[memoryview]:
    with path.open("rb") as file:
        file.seek(start)
        position = start
        while position < end:
            chunk = file.read(min(chunk_size, end - position))
            if not chunk:
                raise OSError(f"{path} is shorter than {end} bytes")
            position += len(chunk)
            yield memoryview(chunk)


def _odata_time(moment: datetime) -> str:
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _native_s3_path(record: ProductRecord) -> str:
    day = record.content_start.astimezone(timezone.utc).strftime("%Y/%m/%d")
    return f"/eodata/Sentinel-1/SAR/{record.product_type}/{day}/{record.name}.zip"


# Layout ------------------------------------------------------------------------------


def _layout(record: ProductRecord, target: int) -> ArchiveLayout:
    """Choose the files for ``record`` and size them so the zip is ``target`` bytes."""
    specs = product_files(record)
    names = [spec.path.encode() for spec in specs]
    frame: ManifestFrame | None = None
    manifest_index = next((i for i, s in enumerate(specs) if s.manifest is not None), None)
    if manifest_index is not None:
        style = specs[manifest_index].manifest
        assert style is not None
        frame = manifest_frame(record, style)
    root = specs[0].path.split("/", 1)[0] + "/" if "/" in specs[0].path else ""
    fixed: dict[int, int] = {i: len(s.text) for i, s in enumerate(specs) if s.text is not None}
    if manifest_index is not None:
        manifest_size = _manifest_sizer(frame, specs, names, root, manifest_index)
        fixed[manifest_index] = manifest_size({})
    # Greedy, most important files first: a scaled-down product keeps the files that fit.
    chosen: list[int] = []
    offset = central = 0
    for index, spec in enumerate(specs):
        size = fixed.get(index, _MIN_DATA_BYTES)
        local = _LOCAL.size + len(names[index]) + (20 if size >= _LIMIT32 else 0)
        entry = _CENTRAL.size + len(names[index]) + _central_extra_size(size, offset)
        end = _end_size(len(chosen) + 1, central + entry, offset + local + size)
        if not spec.required and offset + local + size + central + entry + end > target:
            break
        chosen.append(index)
        offset += local + size
        central += entry
    sizes = _distribute(names, specs, chosen, target, fixed)
    if manifest_index is not None:
        # The manifest lists the sizes it shares the archive with: settle both together.
        # Its length only grows here, so this ends; any slack becomes trailing spaces.
        for _ in range(16):
            needed = manifest_size(sizes)
            if needed <= fixed[manifest_index]:
                break
            fixed[manifest_index] = needed
            sizes = _distribute(names, specs, chosen, target, fixed)
    # Rounding can leave the filler below its floor: then give up optional files one by one.
    while _total(names, chosen, sizes) != target and not specs[chosen[-1]].required:
        chosen.pop()
        sizes = _distribute(names, specs, chosen, target, fixed)
    stamp = _dos_stamp(record.content_start)
    offset = 0
    members: list[MemberSpan] = []
    for index in chosen:
        spec = specs[index]
        size = sizes[index]
        header = _LOCAL.size + len(names[index]) + (20 if size >= _LIMIT32 else 0)
        members.append(
            MemberSpan(
                path=names[index].decode(),
                size=size,
                header_offset=offset,
                data_offset=offset + header,
                text=spec.text,
                magic=spec.magic,
                nibbles=spec.nibbles,
                manifest=spec.manifest,
                listed=spec.listed,
                mime=spec.mime,
            )
        )
        offset += header + size
    central_size = sum(
        _CENTRAL.size + len(m.path.encode()) + _central_extra_size(m.size, m.header_offset)
        for m in members
    )
    zip64_end = _needs_zip64_end(len(members), central_size, offset)
    length = offset + central_size + _end_size(len(members), central_size, offset)
    moment = record.content_start.astimezone(timezone.utc)
    return ArchiveLayout(
        product_id=record.id,
        length=length,
        members=tuple(members),
        central_offset=offset,
        central_size=central_size,
        zip64_end=zip64_end,
        dos_time=stamp[0],
        dos_date=stamp[1],
        manifest=frame,
        root=root,
        stamp=(
            min(max(moment.year, 1980), 2107),
            moment.month,
            moment.day,
            moment.hour,
            moment.minute,
            moment.second // 2 * 2,
        ),
    )


def _manifest_sizer(
    frame: ManifestFrame | None,
    specs: list[FileSpec],
    names: list[bytes],
    root: str,
    manifest_index: int,
) -> Callable[[dict[int, int]], int]:
    """Bytes of the manifest as a function of the listed files' sizes.

    Digests have a fixed width, so an entry's length is a constant plus the digits of its
    size: the constants are measured once per layout.
    """
    assert frame is not None
    fixed = len(frame.head) + len(frame.tail)
    listed: list[tuple[int, int, int]] = []
    skeleton = _entry_skeleton(frame.style)
    for index, spec in enumerate(specs):
        if index == manifest_index or not spec.listed:
            continue
        relative = names[index][len(root) :]
        if b"&" in relative or b"<" in relative or b'"' in relative:
            base = len(manifest_entry(frame.style, relative.decode(), 0, "", spec.mime)) - 1
            base += MANIFEST_DIGESTS[frame.style][1]
        else:
            # The identifier and the href each spell the path once.
            base = skeleton + 2 * len(relative) + len(spec.mime)
        default = len(spec.text) if spec.text is not None else _MIN_DATA_BYTES
        listed.append((index, base, default))

    def size_of(sizes: dict[int, int]) -> int:
        return fixed + sum(base + len(str(sizes.get(i, d))) for i, base, d in listed)

    return size_of


@functools.lru_cache(maxsize=4)
def _entry_skeleton(style: str) -> int:
    """Length of a manifest entry without its path (twice), mime type and size digits."""
    digits = MANIFEST_DIGESTS[style][1]
    return len(manifest_entry(style, "", 0, "0" * digits, "")) - 1


def _needs_zip64_end(count: int, central_size: int, central_offset: int) -> bool:
    return count >= _LIMIT16 or central_size >= _LIMIT32 or central_offset >= _LIMIT32


def _end_size(count: int, central_size: int, central_offset: int) -> int:
    """Bytes after the central directory: end record, plus the ZIP64 pair when needed."""
    zip64 = _needs_zip64_end(count, central_size, central_offset)
    return _END.size + (_END64.size + _LOCATOR64.size if zip64 else 0)


def _central_extra_size(size: int, header_offset: int) -> int:
    count = (2 if size >= _LIMIT32 else 0) + (1 if header_offset >= _LIMIT32 else 0)
    return 4 + 8 * count if count else 0


def _total(names: list[bytes], chosen: list[int], sizes: dict[int, int]) -> int:
    """Archive length for these files at these sizes."""
    offset = 0
    central = 0
    for index in chosen:
        size = sizes[index]
        central += _CENTRAL.size + len(names[index]) + _central_extra_size(size, offset)
        offset += _LOCAL.size + len(names[index]) + (20 if size >= _LIMIT32 else 0) + size
    return offset + central + _end_size(len(chosen), central, offset)


def _distribute(
    names: list[bytes],
    specs: list[FileSpec],
    chosen: list[int],
    target: int,
    fixed: dict[int, int],
) -> dict[int, int]:
    """Sizes of the chosen files: fixed ones as given, binary files share the rest by weight.

    Each binary file gets the floor plus its weighted share of what is left; the largest
    absorbs rounding and any ZIP64 fields its own size switches on, so the total lands
    exactly on ``target`` whenever the floor allows.
    """
    sizes = {i: fixed[i] for i in chosen if i in fixed}
    binary = [i for i in chosen if i not in fixed]
    if not binary:
        return sizes
    for i in binary:
        sizes[i] = _MIN_DATA_BYTES
    spare = max(0, target - _total(names, chosen, sizes))
    weight = sum(specs[i].weight for i in binary) or 1.0
    filler = max(binary, key=lambda i: (specs[i].weight, -i))
    for i in binary:
        if i != filler:
            sizes[i] += int(spare * specs[i].weight / weight)
    sizes[filler] += spare - sum(sizes[i] - _MIN_DATA_BYTES for i in binary if i != filler)
    for _ in range(4):
        gap = target - _total(names, chosen, sizes)
        if gap == 0 or sizes[filler] + gap < _MIN_DATA_BYTES:
            break
        sizes[filler] += gap
    return sizes


def _dos_stamp(moment: datetime) -> tuple[int, int]:
    if moment.tzinfo is not None:
        moment = moment.astimezone(timezone.utc)
    year = min(max(moment.year, 1980), 2107)
    date = ((year - 1980) << 9) | (moment.month << 5) | moment.day
    time = (moment.hour << 11) | (moment.minute << 5) | (moment.second // 2)
    return time, date


# Building ----------------------------------------------------------------------------


def _product_key(product_id: str) -> bytes:
    return blake3.blake3(
        f"sentinel-fetch emulator archive v{FORMAT_VERSION}\0{product_id}".encode()
    ).digest()


def _member_chunks(span: MemberSpan, key: bytes, chunk: int) -> Iterator[bytes]:
    """A binary or text member's bytes in chunks (never the manifest: it is rendered)."""
    if span.text is not None:
        yield span.text
        return
    stream = blake3.blake3(span.path.encode(), key=key)
    for start in range(0, span.size, chunk):
        data = stream.digest(length=min(chunk, span.size - start), seek=start)
        if span.nibbles:
            data = data.translate(_NIBBLES)
        if start < len(span.magic):
            head = span.magic[start : start + len(data)]
            data = head + data[len(head) :]
        yield data


def _render_manifest(layout: ArchiveLayout, digests: dict[str, FileDigest], size: int) -> bytes:
    """The manifest listing the archive's other files with their sizes and checksums."""
    frame = layout.manifest
    assert frame is not None
    parts = [frame.head]
    for span in layout.members:
        if span.manifest is not None or not span.listed:
            continue
        digest = digests[span.path]
        value = digest.sha3_256 if frame.style == "sha3" else digest.md5
        relative = span.path[len(layout.root) :]
        parts.append(manifest_entry(frame.style, relative, span.size, value, span.mime))
    body = b"".join(parts)
    slack = size - len(body) - len(frame.tail)
    if slack < 0:
        raise AssertionError("the manifest does not fit its planned size")
    return body + b" " * slack + frame.tail


def _local_header(layout: ArchiveLayout, span: MemberSpan, crc: int) -> bytes:
    name = span.path.encode()
    if span.zip64:
        extra = struct.pack("<HHQQ", 1, 16, span.size, span.size)
        size32 = _LIMIT32
        version = _VERSION64
    else:
        extra, size32, version = b"", span.size, _VERSION
    fixed = _LOCAL.pack(
        _LOCAL_SIG,
        version,
        0,
        0,
        layout.dos_time,
        layout.dos_date,
        crc,
        size32,
        size32,
        len(name),
        len(extra),
    )
    return fixed + name + extra


def _central_directory(layout: ArchiveLayout, crcs: list[int]) -> bytes:
    parts: list[bytes] = []
    for span, crc in zip(layout.members, crcs, strict=True):
        name = span.path.encode()
        extra_fields: list[int] = []
        size32 = span.size
        offset32 = span.header_offset
        if span.size >= _LIMIT32:
            extra_fields += [span.size, span.size]
            size32 = _LIMIT32
        if span.header_offset >= _LIMIT32:
            extra_fields.append(span.header_offset)
            offset32 = _LIMIT32
        extra = (
            struct.pack(f"<HH{len(extra_fields)}Q", 1, 8 * len(extra_fields), *extra_fields)
            if extra_fields
            else b""
        )
        version = _VERSION64 if extra_fields else _VERSION
        parts.append(
            _CENTRAL.pack(
                _CENTRAL_SIG,
                _MADE_BY_UNIX | version,
                version,
                0,
                0,
                layout.dos_time,
                layout.dos_date,
                crc,
                size32,
                size32,
                len(name),
                len(extra),
                0,
                0,
                0,
                _FILE_MODE,
                offset32,
            )
        )
        parts.append(name)
        parts.append(extra)
    count = len(layout.members)
    end_offset = layout.central_offset + layout.central_size
    if layout.zip64_end:
        parts.append(
            _END64.pack(
                _END64_SIG,
                _END64.size - 12,
                _MADE_BY_UNIX | _VERSION64,
                _VERSION64,
                0,
                0,
                count,
                count,
                layout.central_size,
                layout.central_offset,
            )
        )
        parts.append(_LOCATOR64.pack(_LOCATOR64_SIG, 0, end_offset, 1))
    parts.append(
        _END.pack(
            _END_SIG,
            0,
            0,
            min(count, _LIMIT16),
            min(count, _LIMIT16),
            min(layout.central_size, _LIMIT32),
            min(layout.central_offset, _LIMIT32),
            0,
        )
    )
    data = b"".join(parts)
    if len(data) != layout.length - layout.central_offset:
        raise AssertionError("central directory does not match the planned layout")
    return data


def _digest(span: MemberSpan, data: bytes | memoryview) -> FileDigest:
    return FileDigest(
        span.path,
        span.size,
        hashlib.md5(data, usedforsecurity=False).hexdigest(),
        hashlib.sha3_256(data).hexdigest(),
    )


def _build_in_memory(layout: ArchiveLayout) -> tuple[bytes, ArchiveInfo]:
    key = _product_key(layout.product_id)
    buffer = bytearray(layout.length)
    view = memoryview(buffer)
    crcs: dict[str, int] = {}
    digests: dict[str, FileDigest] = {}
    manifest: MemberSpan | None = None
    for span in layout.members:
        if span.manifest is not None:
            manifest = span
            continue
        end = span.data_offset + span.size
        position = span.data_offset
        for data in _member_chunks(span, key, max(span.size, 1)):
            buffer[position : position + len(data)] = data
            position += len(data)
        content = view[span.data_offset : end]
        crcs[span.path] = zlib.crc32(content)
        digests[span.path] = _digest(span, content)
    if manifest is not None:
        text = _render_manifest(layout, digests, manifest.size)
        buffer[manifest.data_offset : manifest.data_offset + manifest.size] = text
        crcs[manifest.path] = zlib.crc32(text)
        digests[manifest.path] = _digest(manifest, text)
    for span in layout.members:
        buffer[span.header_offset : span.data_offset] = _local_header(layout, span, crcs[span.path])
    buffer[layout.central_offset :] = _central_directory(
        layout, [crcs[m.path] for m in layout.members]
    )
    view.release()
    data = bytes(buffer)
    info = ArchiveInfo(
        length=len(data),
        md5=hashlib.md5(data, usedforsecurity=False).hexdigest(),
        blake3=blake3.blake3(data).hexdigest(),
        members=tuple((m.path, m.size) for m in layout.members),
        files=tuple(digests[m.path] for m in layout.members),
    )
    return data, info


class _Hasher(threading.Thread):
    """Hashes a stream of chunks in a second thread (hashlib releases the GIL on big chunks).

    Args:
        names: ``"md5"``, ``"sha3"``, ``"blake3"``: the digests to compute.
    """

    def __init__(self, *names: str) -> None:
        super().__init__(name="emulator-archive-hash", daemon=True)
        self.chunks: queue.Queue[bytes | memoryview | None] = queue.Queue(maxsize=16)
        self.md5 = hashlib.md5(usedforsecurity=False) if "md5" in names else None
        self.sha3 = hashlib.sha3_256() if "sha3" in names else None
        self.blake3 = blake3.blake3(max_threads=blake3.blake3.AUTO) if "blake3" in names else None

    def run(self) -> None:
        while True:
            chunk = self.chunks.get()
            if chunk is None:
                return
            for hasher in (self.md5, self.sha3, self.blake3):
                if hasher is not None:
                    hasher.update(chunk)


def _build_on_disk(layout: ArchiveLayout, path: Path, sidecar: Path) -> ArchiveInfo:
    """Write every file in place (the manifest last), then hash the whole archive.

    Each file is generated once; its CRC is taken on the way and its MD5 and SHA3-256 in
    a second thread. Headers go in once the CRCs are known, the manifest once every
    other digest is. A final read of the (page-cached) file gives the archive's MD5 and
    BLAKE3. The temporary file is renamed into place only when complete.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
    key = _product_key(layout.product_id)
    crcs: dict[str, int] = {}
    digests: dict[str, FileDigest] = {}
    logger.debug("building %s (%d bytes)", path.name, layout.length)
    try:
        with temporary.open("wb") as file:
            manifest: MemberSpan | None = None
            for span in layout.members:
                if span.manifest is not None:
                    manifest = span
                    continue
                file.seek(span.data_offset)
                hasher = _Hasher("md5", "sha3")
                hasher.start()
                crc = 0
                try:
                    for data in _member_chunks(span, key, _GENERATE_CHUNK):
                        crc = zlib.crc32(data, crc)
                        hasher.chunks.put(data)
                        file.write(data)
                finally:
                    hasher.chunks.put(None)
                    hasher.join()
                assert hasher.md5 is not None and hasher.sha3 is not None
                crcs[span.path] = crc
                digests[span.path] = FileDigest(
                    span.path, span.size, hasher.md5.hexdigest(), hasher.sha3.hexdigest()
                )
            if manifest is not None:
                text = _render_manifest(layout, digests, manifest.size)
                file.seek(manifest.data_offset)
                file.write(text)
                crcs[manifest.path] = zlib.crc32(text)
                digests[manifest.path] = _digest(manifest, text)
            for span in layout.members:
                file.seek(span.header_offset)
                file.write(_local_header(layout, span, crcs[span.path]))
            file.seek(layout.central_offset)
            file.write(_central_directory(layout, [crcs[m.path] for m in layout.members]))
        if temporary.stat().st_size != layout.length:
            raise OSError(f"{temporary} has the wrong size")
        whole = _hash_file(temporary)
        os.replace(temporary, path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
    info = ArchiveInfo(
        length=layout.length,
        md5=whole.md5,
        blake3=whole.blake3,
        members=tuple((m.path, m.size) for m in layout.members),
        files=tuple(digests[m.path] for m in layout.members),
    )
    _write_json(
        sidecar,
        {
            "version": FORMAT_VERSION,
            "length": info.length,
            "md5": info.md5,
            "blake3": info.blake3,
            "files": [[f.path, f.size, f.md5, f.sha3_256] for f in info.files],
        },
    )
    return info


def _hash_file(path: Path) -> ArchiveInfo:
    """Length, MD5 and BLAKE3 of a file (read in 4 MiB chunks, hashed in a second thread)."""
    hasher = _Hasher("md5", "blake3")
    hasher.start()
    length = 0
    try:
        with path.open("rb", buffering=0) as file:
            while True:
                chunk = file.read(_GENERATE_CHUNK)
                if not chunk:
                    break
                length += len(chunk)
                hasher.chunks.put(chunk)
    finally:
        hasher.chunks.put(None)
        hasher.join()
    assert hasher.md5 is not None and hasher.blake3 is not None
    return ArchiveInfo(length, hasher.md5.hexdigest(), hasher.blake3.hexdigest())


def _digest_info(data: bytes) -> ArchiveInfo:
    return ArchiveInfo(
        len(data),
        hashlib.md5(data, usedforsecurity=False).hexdigest(),
        blake3.blake3(data).hexdigest(),
    )


def _write_json(path: Path, payload: dict[str, object]) -> None:
    temporary = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
    temporary.write_text(json.dumps(payload))
    os.replace(temporary, path)


def _read_sidecar(path: Path, sidecar: Path, layout: ArchiveLayout) -> ArchiveInfo | None:
    try:
        meta = json.loads(sidecar.read_text())
        size = path.stat().st_size
    except (OSError, ValueError):
        return None
    if (
        not isinstance(meta, dict)
        or meta.get("version") != FORMAT_VERSION
        or meta.get("length") != layout.length
        or size != layout.length
        or not isinstance(meta.get("files"), list)
        or [f[0] for f in meta["files"]] != [m.path for m in layout.members]
    ):
        return None
    return ArchiveInfo(
        length=layout.length,
        md5=str(meta["md5"]),
        blake3=str(meta["blake3"]),
        members=tuple((m.path, m.size) for m in layout.members),
        files=tuple(FileDigest(str(p), int(s), str(m), str(h)) for p, s, m, h in meta["files"]),
    )


def _write_native(
    layout: ArchiveLayout, out: io.BufferedIOBase | io.BytesIO, read: _ChunkReader
) -> None:
    """The native archive: the same files, deflated (level 1, fixed timestamps)."""
    with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=1) as archive:
        for span in layout.members:
            entry = zipfile.ZipInfo(span.path, date_time=layout.stamp)
            entry.compress_type = zipfile.ZIP_DEFLATED
            entry.external_attr = _FILE_MODE
            entry.create_system = 3
            with archive.open(entry, "w", force_zip64=span.size >= 1 << 31) as member:
                for chunk in read(span):
                    member.write(chunk)
