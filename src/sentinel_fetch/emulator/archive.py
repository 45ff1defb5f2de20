"""Product archives: deterministic zips of SAFE-like folders, in memory or on disk.

Every product is served as a valid zip (stored, no compression: CDSE's zipper streams
products without recompressing them) of a folder that looks like the real product:
``<Name>/manifest.safe`` and metadata XML, band files named as in real Sentinel-2
granules, Sentinel-1 measurement TIFFs with their annotations, Sentinel-3 ``.nc`` files
beside ``xfdumanifest.xml``, or the single netCDF file of a Sentinel-5P product. Clients
that unzip, test the zip CRCs or fetch single files through Nodes see realistic paths.

Bytes are a pure function of the product record and the archive size: XML is rendered
from the record, binary files are a BLAKE3 XOF stream keyed by the product id (fast,
seekable, never the same for two products), timestamps are the sensing date. So the
same product has the same bytes in every emulator, and the MD5/BLAKE3 the catalogue
publishes (:meth:`ArchiveStore.info`) are those of exactly the bytes the download host
serves (spec §5.5).

The zip writer is our own, rather than :mod:`zipfile`: it computes the complete layout
(headers, offsets, ZIP64 records) before any byte exists, which makes the archive size
exact (a benchmark asking for 1 GiB gets 1 073 741 824 bytes), lets Nodes serve one
member from its offset, and lets the catalogue learn the members without building the
file. :mod:`zipfile` reads every archive back in the tests.

Archives below ``memory_archive_max_bytes`` are built in memory on first use (an LRU
bounded by ``archive_cache_bytes`` keeps them; one at ~10 KiB takes well under a
millisecond). Larger ones are written once to ``data_dir/archives`` (temporary file,
then an atomic rename; one build per product even under concurrent requests) with a
JSON sidecar holding their checksums, and served from disk with ``sendfile``.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import queue
import struct
import threading
import uuid
import zlib
from collections import OrderedDict
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import blake3

from .config import EmulatorConfig
from .model import ArchiveInfo, ProductRecord

__all__ = ["FORMAT_VERSION", "ArchiveBody", "ArchiveLayout", "ArchiveStore", "MemberSpan"]

logger = logging.getLogger("sentinel_fetch.emulator")

#: Bumped whenever the bytes of an archive change, so stale files on disk are not served.
FORMAT_VERSION = 1

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

_JP2 = b"\x00\x00\x00\x0cjP  \r\n\x87\n"
_TIFF = b"II*\x00"
_HDF5 = b"\x89HDF\r\n\x1a\n"
_PNG = b"\x89PNG\r\n\x1a\n"
_XML_HEAD = b'<?xml version="1.0" encoding="UTF-8"?>\n'


@dataclass(frozen=True)
class _FileSpec:
    """A file of the product folder before sizing: fixed text or weighted binary data."""

    path: str
    text: bytes | None = None
    weight: float = 1.0
    magic: bytes = b""
    required: bool = False


@dataclass(frozen=True)
class MemberSpan:
    """Where one file's bytes sit inside the archive.

    Attributes:
        path: path inside the zip (``<Name>/…``).
        size: file size in bytes.
        header_offset: offset of its local header.
        data_offset: offset of its first byte.
    """

    path: str
    size: int
    header_offset: int
    data_offset: int
    text: bytes | None = None
    magic: bytes = b""

    @property
    def zip64(self) -> bool:
        """Whether the member needs ZIP64 size fields."""
        return self.size >= _LIMIT32


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


class ArchiveStore:
    """Implements :class:`~sentinel_fetch.emulator.model.ArchiveSource` (plus disk access).

    Args:
        config: reads ``size_scale``, ``product_size_bytes``, ``min_product_size_bytes``,
            ``memory_archive_max_bytes``, ``archive_cache_bytes`` and ``data_dir``.
    """

    def __init__(self, config: EmulatorConfig) -> None:
        self._config = config
        self._lock = threading.Lock()
        self._known: OrderedDict[str, _Known] = OrderedDict()
        self._known_max = 200_000
        self._memory: OrderedDict[str, bytes] = OrderedDict()
        self._memory_bytes = 0
        self._build_locks: dict[str, threading.Lock] = {}

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
        """Length, MD5, BLAKE3 and members of exactly the bytes served for this product.

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
        with body.path.open("rb") as file:
            file.seek(start)
            position = start
            while position < end:
                chunk = file.read(min(chunk_size, end - position))
                if not chunk:
                    raise OSError(f"{body.path} is shorter than {end} bytes")
                position += len(chunk)
                yield memoryview(chunk)

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


# Layout ------------------------------------------------------------------------------


def _layout(record: ProductRecord, target: int) -> ArchiveLayout:
    """Choose the files for ``record`` and size them so the zip is ``target`` bytes."""
    root, specs = _file_specs(record)
    names = [(root + spec.path).encode() for spec in specs]
    # Greedy, most important files first: a scaled-down product keeps the files that fit.
    chosen: list[int] = []
    offset = central = 0
    for index, spec in enumerate(specs):
        size = len(spec.text) if spec.text is not None else _MIN_DATA_BYTES
        local = _LOCAL.size + len(names[index]) + (20 if size >= _LIMIT32 else 0)
        entry = _CENTRAL.size + len(names[index]) + _central_extra_size(size, offset)
        end = _end_size(len(chosen) + 1, central + entry, offset + local + size)
        if not spec.required and offset + local + size + central + entry + end > target:
            break
        chosen.append(index)
        offset += local + size
        central += entry
    sizes = _distribute(names, specs, chosen, target)
    # Rounding can leave the filler below its floor: then give up optional files one by one.
    while _total(names, specs, chosen, sizes) != target and not specs[chosen[-1]].required:
        chosen.pop()
        sizes = _distribute(names, specs, chosen, target)
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
            )
        )
        offset += header + size
    central_size = sum(
        _CENTRAL.size + len(m.path.encode()) + _central_extra_size(m.size, m.header_offset)
        for m in members
    )
    zip64_end = _needs_zip64_end(len(members), central_size, offset)
    length = offset + central_size + _end_size(len(members), central_size, offset)
    return ArchiveLayout(
        product_id=record.id,
        length=length,
        members=tuple(members),
        central_offset=offset,
        central_size=central_size,
        zip64_end=zip64_end,
        dos_time=stamp[0],
        dos_date=stamp[1],
    )


def _needs_zip64_end(count: int, central_size: int, central_offset: int) -> bool:
    return count >= _LIMIT16 or central_size >= _LIMIT32 or central_offset >= _LIMIT32


def _end_size(count: int, central_size: int, central_offset: int) -> int:
    """Bytes after the central directory: end record, plus the ZIP64 pair when needed."""
    zip64 = _needs_zip64_end(count, central_size, central_offset)
    return _END.size + (_END64.size + _LOCATOR64.size if zip64 else 0)


def _central_extra_size(size: int, header_offset: int) -> int:
    count = (2 if size >= _LIMIT32 else 0) + (1 if header_offset >= _LIMIT32 else 0)
    return 4 + 8 * count if count else 0


def _total(
    names: list[bytes], specs: list[_FileSpec], chosen: list[int], sizes: dict[int, int]
) -> int:
    """Archive length for these files at these sizes."""
    offset = 0
    central = 0
    for index in chosen:
        spec = specs[index]
        size = len(spec.text) if spec.text is not None else sizes[index]
        central += _CENTRAL.size + len(names[index]) + _central_extra_size(size, offset)
        offset += _LOCAL.size + len(names[index]) + (20 if size >= _LIMIT32 else 0) + size
    return offset + central + _end_size(len(chosen), central, offset)


def _distribute(
    names: list[bytes], specs: list[_FileSpec], chosen: list[int], target: int
) -> dict[int, int]:
    """Sizes of the chosen files: text at its length, binary files share the rest by weight.

    Each binary file gets the floor plus its weighted share of what is left; the largest
    absorbs rounding and any ZIP64 fields its own size switches on, so the total lands
    exactly on ``target`` whenever the floor allows.
    """
    sizes = {i: len(specs[i].text or b"") for i in chosen if specs[i].text is not None}
    binary = [i for i in chosen if specs[i].text is None]
    if not binary:
        return sizes
    for i in binary:
        sizes[i] = _MIN_DATA_BYTES
    spare = max(0, target - _total(names, specs, chosen, sizes))
    weight = sum(specs[i].weight for i in binary)
    filler = max(binary, key=lambda i: (specs[i].weight, -i))
    for i in binary:
        if i != filler:
            sizes[i] += int(spare * specs[i].weight / weight)
    sizes[filler] += spare - sum(sizes[i] - _MIN_DATA_BYTES for i in binary if i != filler)
    for _ in range(4):
        gap = target - _total(names, specs, chosen, sizes)
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
    """A member's bytes in chunks: its text, or its magic number then keyed XOF output."""
    if span.text is not None:
        yield span.text
        return
    stream = blake3.blake3(span.path.encode(), key=key)
    for start in range(0, span.size, chunk):
        data = stream.digest(length=min(chunk, span.size - start), seek=start)
        if start < len(span.magic):
            head = span.magic[start : start + len(data)]
            data = head + data[len(head) :]
        yield data


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


def _build_in_memory(layout: ArchiveLayout) -> tuple[bytes, ArchiveInfo]:
    key = _product_key(layout.product_id)
    buffer = bytearray(layout.length)
    view = memoryview(buffer)
    crcs: list[int] = []
    for span in layout.members:
        end = span.data_offset + span.size
        if span.text is not None:
            buffer[span.data_offset : end] = span.text
        else:
            stream = blake3.blake3(span.path.encode(), key=key)
            buffer[span.data_offset : end] = stream.digest(length=span.size)
            head = span.magic[: span.size]
            buffer[span.data_offset : span.data_offset + len(head)] = head
        crc = zlib.crc32(view[span.data_offset : end])
        crcs.append(crc)
        buffer[span.header_offset : span.data_offset] = _local_header(layout, span, crc)
    buffer[layout.central_offset :] = _central_directory(layout, crcs)
    view.release()
    data = bytes(buffer)
    info = ArchiveInfo(
        length=len(data),
        md5=hashlib.md5(data, usedforsecurity=False).hexdigest(),
        blake3=blake3.blake3(data).hexdigest(),
        members=tuple((m.path, m.size) for m in layout.members),
    )
    return data, info


class _Hasher(threading.Thread):
    """MD5 and BLAKE3 in a second thread: MD5 (~750 MB/s) would otherwise set the pace."""

    def __init__(self) -> None:
        super().__init__(name="emulator-archive-hash", daemon=True)
        self.chunks: queue.Queue[bytes | None] = queue.Queue(maxsize=16)
        self.md5 = hashlib.md5(usedforsecurity=False)
        self.blake3 = blake3.blake3(max_threads=blake3.blake3.AUTO)

    def run(self) -> None:
        while True:
            chunk = self.chunks.get()
            if chunk is None:
                return
            self.md5.update(chunk)
            self.blake3.update(chunk)


def _build_on_disk(layout: ArchiveLayout, path: Path, sidecar: Path) -> ArchiveInfo:
    """Write the archive to a temporary file, hash it on the way, then rename it in place."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
    key = _product_key(layout.product_id)
    hasher = _Hasher()
    hasher.start()
    crcs: list[int] = []
    logger.debug("building %s (%d bytes)", path.name, layout.length)
    try:
        with temporary.open("wb") as file:
            for span in layout.members:
                crc = 0
                for data in _member_chunks(span, key, _GENERATE_CHUNK):
                    crc = zlib.crc32(data, crc)
                crcs.append(crc)
                header = _local_header(layout, span, crc)
                file.write(header)
                hasher.chunks.put(header)
                for data in _member_chunks(span, key, _GENERATE_CHUNK):
                    file.write(data)
                    hasher.chunks.put(data)
            tail = _central_directory(layout, crcs)
            file.write(tail)
            hasher.chunks.put(tail)
        hasher.chunks.put(None)
        hasher.join()
        if temporary.stat().st_size != layout.length:
            raise OSError(f"{temporary} has the wrong size")
        os.replace(temporary, path)
    except BaseException:
        hasher.chunks.put(None)
        temporary.unlink(missing_ok=True)
        raise
    info = ArchiveInfo(
        length=layout.length,
        md5=hasher.md5.hexdigest(),
        blake3=hasher.blake3.hexdigest(),
        members=tuple((m.path, m.size) for m in layout.members),
    )
    side_temporary = sidecar.with_name(f".{sidecar.name}.{os.getpid()}.tmp")
    side_temporary.write_text(
        json.dumps(
            {
                "version": FORMAT_VERSION,
                "length": info.length,
                "md5": info.md5,
                "blake3": info.blake3,
            }
        )
    )
    os.replace(side_temporary, sidecar)
    return info


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
    ):
        return None
    return ArchiveInfo(
        length=layout.length,
        md5=str(meta["md5"]),
        blake3=str(meta["blake3"]),
        members=tuple((m.path, m.size) for m in layout.members),
    )


# What is inside each kind of product ---------------------------------------------------


def _xml(root: str, body: str) -> bytes:
    return _XML_HEAD + f"<{root}>\n{body}</{root}>\n".encode()


def _iso(moment: datetime) -> str:
    if moment.tzinfo is not None:
        moment = moment.astimezone(timezone.utc)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def _manifest(record: ProductRecord, root: str = "xfdu:XFDU") -> bytes:
    """A small SAFE manifest naming the product and its acquisition time."""
    body = (
        f"  <informationPackageMap>\n"
        f'    <contentUnit unitType="SAFE Archive Information Package"'
        f' textInfo="{record.name}" dmdID="acquisitionPeriod platform"/>\n'
        f"  </informationPackageMap>\n"
        f"  <metadataSection>\n"
        f'    <metadataObject ID="acquisitionPeriod"><startTime>{_iso(record.content_start)}'
        f"</startTime></metadataObject>\n"
        f'    <metadataObject ID="platform"><familyName>{record.collection}</familyName>'
        f"<productType>{record.product_type}</productType></metadataObject>\n"
        f'    <metadataObject ID="identifier"><uuid>{record.id}</uuid></metadataObject>\n'
        f"  </metadataSection>\n"
    )
    return _xml(root, body)


def _metadata(record: ProductRecord, root: str, extra: str = "") -> bytes:
    body = (
        f"  <General_Info>\n    <PRODUCT_URI>{record.name}</PRODUCT_URI>\n"
        f"    <PRODUCT_TYPE>{record.product_type}</PRODUCT_TYPE>\n"
        f"    <PRODUCT_START_TIME>{_iso(record.content_start)}</PRODUCT_START_TIME>\n"
        f"    <SPACECRAFT_NAME>{record.name[:3]}</SPACECRAFT_NAME>\n{extra}  </General_Info>\n"
    )
    return _xml(root, body)


def _orbit(record: ProductRecord) -> int:
    return uuid.UUID(record.id).int % 90_000 + 10_000 if _is_uuid(record.id) else 12_345


def _is_uuid(text: str) -> bool:
    try:
        uuid.UUID(text)
    except ValueError:
        return False
    return True


def _compact(moment: datetime) -> str:
    if moment.tzinfo is not None:
        moment = moment.astimezone(timezone.utc)
    return moment.strftime("%Y%m%dT%H%M%S")


def _file_specs(record: ProductRecord) -> tuple[str, list[_FileSpec]]:
    """``(root prefix, files)`` for the product, most important files first."""
    name = record.name
    if name.endswith(".SAFE"):
        if name.startswith("S2") or record.collection == "SENTINEL-2":
            return name + "/", _sentinel2(record)
        if name.startswith("S1") or record.collection == "SENTINEL-1":
            return name + "/", _sentinel1(record)
        return name + "/", _generic(record)
    if name.endswith(".SEN3"):
        return name + "/", _sentinel3(record)
    if "." in name.rsplit("_", 1)[-1]:
        # A single-file product (S5P .nc, S1 AUX .EOF, .tgz...): the zip holds that file.
        magic = _HDF5 if name.endswith(".nc") else _XML_HEAD if name.endswith(".EOF") else b""
        return "", [_FileSpec(name, magic=magic, required=True)]
    if record.collection.startswith("LANDSAT"):
        return name + "/", _landsat(record)
    return name + "/", _generic(record)


def _sentinel2(record: ProductRecord) -> list[_FileSpec]:
    parts = record.name[: -len(".SAFE")].split("_")
    level = "L2A" if len(parts) > 1 and "L2A" in parts[1] else "L1C"
    start = parts[2] if len(parts) > 2 else _compact(record.content_start)
    tile = parts[5][1:] if len(parts) > 5 and parts[5].startswith("T") else "32TQM"
    discriminator = parts[6] if len(parts) > 6 else start
    granule = f"GRANULE/{level}_T{tile}_A{_orbit(record):06d}_{discriminator}/"
    stem = f"T{tile}_{start}"
    files = [
        _FileSpec("manifest.safe", text=_manifest(record), required=True),
        _FileSpec(
            f"MTD_MSI{level}.xml",
            text=_metadata(record, f"n1:Level-{level[1:]}_User_Product"),
            required=True,
        ),
    ]
    bands: list[tuple[str, float]]
    if level == "L2A":
        bands = [
            (f"IMG_DATA/R10m/{stem}_B04_10m.jp2", 1.0),
            (f"IMG_DATA/R10m/{stem}_B03_10m.jp2", 1.0),
            (f"IMG_DATA/R10m/{stem}_B02_10m.jp2", 1.0),
            (f"IMG_DATA/R10m/{stem}_B08_10m.jp2", 1.0),
            (f"IMG_DATA/R10m/{stem}_TCI_10m.jp2", 1.1),
            (f"IMG_DATA/R10m/{stem}_AOT_10m.jp2", 0.1),
            (f"IMG_DATA/R10m/{stem}_WVP_10m.jp2", 0.3),
            (f"IMG_DATA/R20m/{stem}_B05_20m.jp2", 0.27),
            (f"IMG_DATA/R20m/{stem}_B06_20m.jp2", 0.27),
            (f"IMG_DATA/R20m/{stem}_B07_20m.jp2", 0.27),
            (f"IMG_DATA/R20m/{stem}_B8A_20m.jp2", 0.27),
            (f"IMG_DATA/R20m/{stem}_B11_20m.jp2", 0.27),
            (f"IMG_DATA/R20m/{stem}_B12_20m.jp2", 0.27),
            (f"IMG_DATA/R20m/{stem}_SCL_20m.jp2", 0.05),
            (f"IMG_DATA/R60m/{stem}_B01_60m.jp2", 0.03),
            (f"IMG_DATA/R60m/{stem}_B09_60m.jp2", 0.03),
        ]
    else:
        bands = [
            (f"IMG_DATA/{stem}_{band}.jp2", weight)
            for band, weight in (
                ("B04", 1.0),
                ("B03", 1.0),
                ("B02", 1.0),
                ("B08", 1.0),
                ("TCI", 1.1),
                ("B05", 0.27),
                ("B06", 0.27),
                ("B07", 0.27),
                ("B8A", 0.27),
                ("B11", 0.27),
                ("B12", 0.27),
                ("B01", 0.03),
                ("B09", 0.03),
                ("B10", 0.03),
            )
        ]
    files.append(_FileSpec(granule + bands[0][0], weight=bands[0][1], magic=_JP2, required=True))
    files.append(
        _FileSpec(
            granule + "MTD_TL.xml",
            text=_metadata(
                record, "n1:Level-" + level[1:] + "_Tile_ID", f"    <TILE_ID>T{tile}</TILE_ID>\n"
            ),
        )
    )
    files += [_FileSpec(granule + path, weight=weight, magic=_JP2) for path, weight in bands[1:]]
    return files


def _sentinel1(record: ProductRecord) -> list[_FileSpec]:
    parts = record.name[: -len(".SAFE")].split("_")
    if len(parts) >= 9:
        mission, mode, kind, klass = parts[0].lower(), parts[1].lower(), parts[2], parts[3]
        start, stop, orbit, datatake = parts[4], parts[5], parts[6], parts[7]
    else:
        mission, mode, kind, klass = record.name[:3].lower(), "iw", "GRDH", "1SDV"
        start = stop = _compact(record.content_start)
        orbit, datatake = f"{_orbit(record):06d}", "000000"
    product = kind[:3].lower().rstrip("_")
    polarisation = {
        "DV": ["vv", "vh"],
        "DH": ["hh", "hv"],
        "SV": ["vv"],
        "SH": ["hh"],
        "HH": ["hh"],
        "VV": ["vv"],
    }.get(klass[2:4], ["vv"])
    if product == "slc" and mode in ("iw", "ew"):
        swaths = [f"{mode}{n}" for n in range(1, 4 if mode == "iw" else 6)]
    else:
        swaths = [mode]
    files = [_FileSpec("manifest.safe", text=_manifest(record), required=True)]
    measurements: list[_FileSpec] = []
    annotations: list[_FileSpec] = []
    index = 1
    for swath in swaths:
        for pol in polarisation:
            stem = (
                f"{mission}-{swath}-{product}-{pol}-{start.lower()}-{stop.lower()}-"
                f"{orbit.lower()}-{datatake.lower()}-{index:03d}"
            )
            measurements.append(
                _FileSpec(f"measurement/{stem}.tiff", magic=_TIFF, required=index == 1)
            )
            annotation = _metadata(
                record,
                "product",
                f"    <swath>{swath.upper()}</swath><polarisation>{pol.upper()}</polarisation>\n",
            )
            annotations.append(
                _FileSpec(f"annotation/{stem}.xml", text=annotation, required=index == 1)
            )
            annotations.append(
                _FileSpec(
                    f"annotation/calibration/calibration-{stem}.xml",
                    text=_xml(
                        "calibration", f"  <adsHeader><swath>{swath.upper()}</swath></adsHeader>\n"
                    ),
                )
            )
            annotations.append(
                _FileSpec(
                    f"annotation/calibration/noise-{stem}.xml",
                    text=_xml(
                        "noise", f"  <adsHeader><swath>{swath.upper()}</swath></adsHeader>\n"
                    ),
                )
            )
            index += 1
    files.append(measurements[0])
    files.append(annotations[0])
    files += measurements[1:]
    files += annotations[1:]
    files.append(_FileSpec("preview/quick-look.png", weight=0.001, magic=_PNG))
    files.append(
        _FileSpec("preview/map-overlay.kml", text=_xml("kml", f"  <name>{record.name}</name>\n"))
    )
    return files


_S3_FILES: dict[str, list[str]] = {
    "OL_1": [f"Oa{n:02d}_radiance.nc" for n in range(1, 22)]
    + [
        "geo_coordinates.nc",
        "instrument_data.nc",
        "qualityFlags.nc",
        "tie_geo_coordinates.nc",
        "tie_geometries.nc",
        "tie_meteo.nc",
        "time_coordinates.nc",
    ],
    "OL_2_W": [f"Oa{n:02d}_reflectance.nc" for n in range(1, 22)]
    + [
        "chl_nn.nc",
        "chl_oc4me.nc",
        "iop_nn.nc",
        "iwv.nc",
        "par.nc",
        "trsp.nc",
        "tsm_nn.nc",
        "w_aer.nc",
        "wqsf.nc",
        "geo_coordinates.nc",
        "time_coordinates.nc",
    ],
    "OL_2_L": [
        "ogvi.nc",
        "otci.nc",
        "iwv.nc",
        "rc_ogvi.nc",
        "lqsf.nc",
        "geo_coordinates.nc",
        "tie_geo_coordinates.nc",
        "tie_geometries.nc",
        "tie_meteo.nc",
        "time_coordinates.nc",
    ],
    "SL_1": [f"S{n}_radiance_an.nc" for n in range(1, 7)]
    + [
        "S7_BT_in.nc",
        "S8_BT_in.nc",
        "S9_BT_in.nc",
        "F1_BT_fn.nc",
        "F2_BT_in.nc",
        "geodetic_an.nc",
        "geodetic_in.nc",
        "flags_an.nc",
        "flags_in.nc",
        "indices_an.nc",
        "met_tx.nc",
        "time_an.nc",
        "viscal.nc",
    ],
    "SL_2_LST": [
        "LST_in.nc",
        "LST_ancillary_ds.nc",
        "cartesian_in.nc",
        "cartesian_tx.nc",
        "flags_in.nc",
        "geodetic_in.nc",
        "geodetic_tx.nc",
        "geometry_tn.nc",
        "indices_in.nc",
        "met_tx.nc",
        "time_in.nc",
    ],
    "SR": ["enhanced_measurement.nc", "standard_measurement.nc", "reduced_measurement.nc"],
    "SY_2_SYN": [f"Syn_Oa{n:02d}_reflectance.nc" for n in range(1, 22)]
    + [f"Syn_S{n}N_reflectance.nc" for n in range(1, 7)]
    + ["Syn_AMIN.nc", "geolocation.nc", "flags.nc", "time.nc", "tiepoints_olci.nc"],
    "SY_2_V": ["B0.nc", "B2.nc", "B3.nc", "MIR.nc", "NDVI.nc", "geolocation.nc", "time.nc"],
}


def _sentinel3(record: ProductRecord) -> list[_FileSpec]:
    product_type = record.name[4:15]
    for prefix in ("OL_2_W", "OL_2_L", "SL_2_LST", "SY_2_SYN", "SY_2_V", "OL_1", "SL_1", "SR"):
        if product_type.startswith(prefix):
            names = _S3_FILES[prefix]
            break
    else:
        names = ["measurement.nc", "geo_coordinates.nc", "time_coordinates.nc"]
    files = [_FileSpec("xfdumanifest.xml", text=_manifest(record), required=True)]
    files += [
        _FileSpec(
            n,
            weight=0.2 if "geo" in n or "time" in n or "tie" in n else 1.0,
            magic=_HDF5,
            required=i == 0,
        )
        for i, n in enumerate(names)
    ]
    return files


def _landsat(record: ProductRecord) -> list[_FileSpec]:
    stem = record.name
    files = [
        _FileSpec(f"{stem}_MTL.xml", text=_metadata(record, "LANDSAT_METADATA_FILE"), required=True)
    ]
    files += [
        _FileSpec(f"{stem}_B{n}.TIF", weight=1.0, magic=_TIFF, required=n == 1)
        for n in range(1, 12)
    ]
    files.append(_FileSpec(f"{stem}_QA_PIXEL.TIF", weight=0.1, magic=_TIFF))
    return files


def _generic(record: ProductRecord) -> list[_FileSpec]:
    return [
        _FileSpec("manifest.safe", text=_manifest(record), required=True),
        _FileSpec("measurement/data_01.tif", magic=_TIFF, required=True),
        _FileSpec("measurement/data_02.tif", magic=_TIFF),
        _FileSpec("measurement/data_03.tif", magic=_TIFF),
    ]
