"""Shapes shared by the emulator's hosts: HTTP request/response and product records.

The emulator is a CDSE stand-in built from the specification, never from the client:
nothing under ``sentinel_fetch.emulator`` imports the rest of ``sentinel_fetch``.

The catalogue host is written as a pure function ``Request -> Response`` over a
:class:`ProductStore`; the server owns sockets, TLS, fault injection and streaming. The
download host and the catalogue agree on product bytes through an :class:`ArchiveSource`,
so the catalogue's ``ContentLength`` and ``Checksum`` are always those of the bytes served.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol, runtime_checkable

__all__ = [
    "ArchiveInfo",
    "ArchiveSource",
    "CompressedArchives",
    "FileDigest",
    "Handler",
    "ProductRecord",
    "ProductStore",
    "Request",
    "Response",
]


@dataclass(frozen=True)
class Request:
    """One HTTP request as a host handler sees it.

    Attributes:
        method: ``GET``, ``HEAD``, ``POST``...
        path: the URL path, percent-decoded (``/odata/v1/Products(…)/$value``).
        raw_query: the query string exactly as received, without the ``?``; OData
            parameter parsing (``?&``, ``+``, ``%20``, repeated ``$expand``) is the
            handler's job because the catalogue echoes the original spelling in nextLinks.
        headers: header names lower-cased.
        body: request body (form posts to the token endpoint, FilterList JSON).
        base_url: ``scheme://host:port`` this host is reached at, for absolute links.
        client: ``"ip:port"`` of the peer.
    """

    method: str
    path: str
    raw_query: str = ""
    headers: Mapping[str, str] = field(default_factory=dict)
    body: bytes = b""
    base_url: str = ""
    client: str = ""


@dataclass
class Response:
    """An HTTP response. ``body`` is sent as is; ``headers`` may repeat names."""

    status: int
    headers: list[tuple[str, str]] = field(default_factory=list)
    body: bytes = b""

    @classmethod
    def json(
        cls, status: int, payload: object, headers: list[tuple[str, str]] | None = None
    ) -> Response:
        """A JSON response (compact separators, UTF-8).

        A lone surrogate (a fault may serve one) has no UTF-8 form: it is sent as the
        ``\\udXXX`` escape JSON spells it with, which is what a server written in
        another language would send.
        """
        import json
        import re

        text = json.dumps(payload, separators=(",", ":"), ensure_ascii=False)
        text = re.sub("[\ud800-\udfff]", lambda match: f"\\u{ord(match[0]):04x}", text)
        data = text.encode()
        return cls(status, [("Content-Type", "application/json"), *(headers or [])], data)


#: A host's request handler.
Handler = Callable[[Request], Response]


@dataclass(frozen=True)
class ProductRecord:
    """What the catalogue knows about one product that the download host needs too.

    Attributes:
        id: product UUID (lower-case, hyphenated).
        name: product name, e.g. ``S2B_MSIL2A_…_T32TQM_….SAFE``.
        collection: ``SENTINEL-1``, ``SENTINEL-2``, ``SENTINEL-3``, ``SENTINEL-5P``.
        product_type: the ``productType`` attribute (``S2MSI2A``, ``IW_GRDH_1S``…).
        content_start: sensing start (UTC, aware).
        nominal_size: realistic archive size in bytes before the emulator's size scaling.
        online: ``False`` for Deferred Available Data (not downloadable).
        legacy: an older product whose catalogue entry has ``Checksum: []`` and
            ``ContentLength: 0`` (the bytes are still served, with a Content-Length).
        publication: ``PublicationDate`` (UTC, aware), when the store knows it; the
            Sentinel-1 native ``$zip`` window counts from it (cdse-api.md §5.8).
    """

    id: str
    name: str
    collection: str
    product_type: str
    content_start: datetime
    nominal_size: int
    online: bool = True
    legacy: bool = False
    publication: datetime | None = None


@dataclass(frozen=True)
class FileDigest:
    """One file of a product archive: where it is and the digests of exactly its bytes.

    Attributes:
        path: path inside the zip (``<Name>/GRANULE/…/B04_10m.jp2``).
        size: bytes.
        md5: lower-case hex MD5.
        sha3_256: lower-case hex SHA3-256 (what STAC ``file:checksum`` encodes, §9.7).
    """

    path: str
    size: int
    md5: str
    sha3_256: str


@dataclass(frozen=True)
class ArchiveInfo:
    """Length and checksums of exactly the bytes the download host serves for a product."""

    length: int
    md5: str
    blake3: str
    #: ``(path inside the zip, size)`` of every file, for the Nodes listing.
    members: tuple[tuple[str, int], ...] = ()
    #: Per-file digests, in archive order (empty where a source does not compute them).
    files: tuple[FileDigest, ...] = ()


class ProductStore(Protocol):
    """Looks products up by id (the download host's view of the catalogue)."""

    def get(self, product_id: str) -> ProductRecord | None:
        """The product with this id, or ``None``."""
        ...


class ArchiveSource(Protocol):
    """Deterministic product bytes: a zip of a SAFE-like folder per product."""

    def info(self, record: ProductRecord) -> ArchiveInfo:
        """Length and checksums of the archive (computed once, then cached)."""
        ...

    def iter_range(
        self, record: ProductRecord, start: int, end: int, chunk_size: int
    ) -> Iterator[memoryview]:
        """Bytes ``start``..``end - 1`` of the archive, in chunks of at most ``chunk_size``."""
        ...


@runtime_checkable
class CompressedArchives(Protocol):
    """An archive source that also has Sentinel-1's native compressed form (``$zip``, §5.8)."""

    def compressed_location(self, record: ProductRecord, base_url: str) -> dict[str, object] | None:
        """The second ``Locations`` entry of a product inside its window, else ``None``.

        Args:
            record: the product.
            base_url: ``scheme://host:port/odata/v1`` the ``DownloadLink`` points at.
        """
        ...
