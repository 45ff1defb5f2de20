"""The download host ("zipper", spec §5, §6): product archives and single files (Nodes).

The same app answers on two origins, ``download`` and ``zipper`` (the host's old name,
which STAC items still use for their per-file URLs, spec §1, §9.6); both share one
stream limiter, so a user's slots are counted across them.

Routes, on ``/odata/v1``:

- ``GET|HEAD Products(<id>)/$value``: the product's zip. Needs a token (``Authorization:
  Bearer`` or ``?token=``, spec §5.1).
- ``GET|HEAD Products(<id>)/$zip``: the Sentinel-1 native compressed archive, inside
  ``compressed_window_days`` of publication (§5.8); after it
  ``compressed_expired_status`` (the real answer is unknown, §15), and 404 for products
  that have no native form.
- ``GET Products(<id>)/Nodes``, ``…/Nodes(<name>)/Nodes``…: the folder tree, key
  ``result``: folders with ``ContentLength`` 0 and their ``ChildrenNumber``, files with
  their size and ``ChildrenNumber`` 0; listing a file gives an empty list; no token
  needed (spec §5.7).
- ``GET|HEAD Products(<id>)/Nodes(<name>)/…/Nodes(<file>)/$value``: one file's bytes,
  exactly those inside the zip (token needed; counts against the stream limit like a
  product unless ``nodes_count_as_streams`` is off; ``Range`` as ``range_supported``
  and ``node_range_supported`` allow). Node names are unquoted: ``Nodes('<name>')`` is
  400 ``DAT-ZIP-104`` "Malformed OData request path" (§5.7, quoted from CDSE).

Checks, in this order [INFERRED: the zipper is a FastAPI-style service, whose auth
dependency runs before path validation]: token (401 ``DAT-ZIP-604`` "Token not found" when
missing or not ours, ``DAT-ZIP-109`` "Token is expired", ``DAT-ZIP-609`` "Token audience
not allowed"), product id syntax (422 ``DAT-ZIP-111``), product exists (404), product
online (``config.offline_status``, spec §5.6 is silent), Range (416), then the per-user
stream limit (429 ``DAT-ZIP-100`` "Max session number exceeded", spec §6.2).

A product stream counts against its user's limit from the moment it starts until its last
chunk is handed to the socket or the connection dies (the slot is freed just before that
last write, so a client that starts its next download as soon as one completes never
meets a stale count); HEAD requests and refusals do not count. Streams are paced to
``bandwidth_bytes_per_s`` per connection (CDSE: 20 MB/s, spec §6.1) when set; otherwise
they go as fast as the socket takes them (``sendfile`` on plain TCP).

Response headers are ``Content-Type: application/zip``, ``Content-Length``,
``Content-Disposition: attachment; filename="<Name>.zip"`` (with an RFC 6266
``filename*`` for a name that is not plain ASCII, which an HTTP header cannot carry
as is), ``ETag`` (the archive's MD5) and, when Range is enabled, ``Accept-Ranges:
bytes``; their exact values on CDSE are unconfirmed (spec §11).
"""

from __future__ import annotations

import re
import threading
import urllib.parse
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from .archive import ArchiveStore
from .config import EmulatorConfig
from .faults import (
    ChunkedFault,
    CorruptFault,
    EndSessionsFault,
    Fault,
    FaultPlan,
    GzipFault,
    IgnoreRangeFault,
    StatusFault,
)
from .identity import IdentityProvider, bearer_token
from .model import ArchiveInfo, ProductRecord, ProductStore, Response
from .server import Exchange, StreamOptions, encode_body, error_body, status_fault_response
from .stats import Stats

__all__ = ["ByteRange", "DownloadHost", "StreamLimiter", "parse_range"]

_ROUTE = re.compile(r"/odata/v1/Products\((?P<id>[^)]*)\)(?P<rest>(?:/.*)?)")
_NODE = re.compile(r"/Nodes\(([^)]*)\)")
_UUID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")
_RANGE = re.compile(r"\s*bytes\s*=\s*(\d*)\s*-\s*(\d*)\s*")


@dataclass(frozen=True)
class ByteRange:
    """A satisfiable ``Range``: bytes ``start``..``end`` inclusive."""

    start: int
    end: int


def parse_range(header: str | None, total: int) -> ByteRange | bool | None:
    """Read a single-range ``Range`` header against a resource of ``total`` bytes.

    Returns:
        A :class:`ByteRange`; ``None`` when there is no usable header (absent, malformed
        or multi-range: RFC 9110 lets a server ignore it and send 200); ``False`` when
        the range cannot be satisfied (416).

    >>> parse_range("bytes=100-", 1000)
    ByteRange(start=100, end=999)
    >>> parse_range("bytes=-10", 1000)
    ByteRange(start=990, end=999)
    >>> parse_range("bytes=1000-", 1000)
    False
    """
    if not header:
        return None
    match = _RANGE.fullmatch(header)
    if match is None:
        return None
    first, last = match.groups()
    if not first:
        if not last:
            return None
        suffix = int(last)
        if suffix == 0:
            return False
        return ByteRange(max(0, total - suffix), total - 1)
    start = int(first)
    if last and int(last) < start:
        return None
    if start >= total:
        return False
    end = min(int(last), total - 1) if last else total - 1
    return ByteRange(start, end)


class StreamLimiter:
    """Per-user count of open product streams, checked and taken atomically."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._open: Counter[str] = Counter()

    def acquire(self, user: str, limit: int) -> bool:
        """Take a stream slot for ``user`` unless ``limit`` are already open."""
        with self._lock:
            if self._open[user] >= limit:
                return False
            self._open[user] += 1
            return True

    def release(self, user: str) -> None:
        """Give a slot back."""
        with self._lock:
            self._open[user] -= 1
            if self._open[user] <= 0:
                del self._open[user]

    def open_streams(self, user: str) -> int:
        """Streams ``user`` has open now."""
        with self._lock:
            return self._open[user]


def content_disposition(filename: str) -> str:
    """The ``Content-Disposition`` of a download, for any product name.

    Header values are Latin-1 text without quotes or controls, so a name outside plain
    ASCII (or with a quote in it) travels as RFC 6266 ``filename*``, with an ASCII
    stand-in in ``filename``.

    >>> content_disposition("S2B_X.SAFE.zip")
    'attachment; filename="S2B_X.SAFE.zip"'
    >>> print(content_disposition("Caf\u00e9.SAFE.zip"))
    attachment; filename="Caf_.SAFE.zip"; filename*=UTF-8''Caf%C3%A9.SAFE.zip
    """
    plain = "".join(c if " " <= c <= "~" and c not in '"\\' else "_" for c in filename)
    if plain == filename:
        return f'attachment; filename="{filename}"'
    encoded = urllib.parse.quote(filename.encode("utf-8", "surrogatepass"), safe="")
    return f"attachment; filename=\"{plain}\"; filename*=UTF-8''{encoded}"


@dataclass(frozen=True)
class _Served:
    """What a ``$value`` request resolves to: the archive or one member of it."""

    record: ProductRecord
    info: ArchiveInfo
    offset: int
    length: int
    content_type: str
    filename: str
    etag: str
    #: ``$value``, ``$zip`` or the file's path inside the archive (for the stats).
    resource: str


class DownloadHost:
    """The download host's app (see the module docstring).

    Args:
        config: limits, Range switch, bandwidth cap, expiry behaviour (read per request).
        store: products by id.
        archives: product bytes.
        identity: token table.
        faults: fault plan (Range faults, body faults, random faults).
        stats: stream counters.
    """

    def __init__(
        self,
        config: EmulatorConfig,
        *,
        store: ProductStore,
        archives: ArchiveStore,
        identity: IdentityProvider,
        faults: FaultPlan,
        stats: Stats,
    ) -> None:
        self._config = config
        self._store = store
        self._archives = archives
        self._identity = identity
        self._faults = faults
        self._stats = stats
        self.limiter = StreamLimiter()

    def serve(self, exchange: Exchange) -> None:
        """Route one request."""
        request = exchange.request
        match = _ROUTE.fullmatch(request.path)
        if match is None:
            exchange.respond(Response.json(404, {"detail": "Not Found"}))
            return
        # Kept as written: the quoted OData key Products('<uuid>') is a 422 (spec §6.2).
        product_id = match["id"]
        rest = match["rest"]
        nodes = _NODE.findall(rest)
        tail = _NODE.sub("", rest)
        if rest == "/$zip":
            tail = rest
        elif tail not in ("/$value", "/Nodes") or (tail == "/$value" and rest.endswith(")")):
            exchange.respond(Response.json(404, {"detail": "Not Found"}))
            return
        if request.method not in ("GET", "HEAD"):
            exchange.respond(Response.json(405, {"detail": "Method Not Allowed"}))
            return
        if any(n.startswith("'") or n.endswith("'") for n in nodes):
            exchange.respond(
                Response.json(400, error_body("DAT-ZIP-104", "Malformed OData request path"))
            )
            return
        if tail == "/Nodes":
            self._list_nodes(exchange, product_id, nodes)
        else:
            self._value(exchange, product_id, nodes, native=tail == "/$zip")

    # Nodes -------------------------------------------------------------------------

    def _list_nodes(self, exchange: Exchange, product_id: str, names: list[str]) -> None:
        record = self._product(exchange, product_id)
        if record is None:
            return
        members = self._archives.info(record).members
        prefix = "/".join(names)
        children: dict[str, tuple[int, set[str]]] = {}
        found = not names
        for path, size in members:
            if names and path == prefix:
                found = True
                continue
            if names and not path.startswith(prefix + "/"):
                continue
            found = True
            remainder = path[len(prefix) + 1 :] if names else path
            head, slash, below = remainder.partition("/")
            entry_size, grandchildren = children.get(head, (0, set()))
            if slash:
                grandchildren.add(below.partition("/")[0])
            else:
                entry_size = size
            children[head] = (entry_size, grandchildren)
        if not found:
            exchange.respond(_not_found("Node not found"))
            return
        base = f"{exchange.request.base_url}/odata/v1/Products({record.id})"
        base += "".join(f"/Nodes({n})" for n in names)
        result: list[dict[str, Any]] = [
            {
                "Id": name,
                "Name": name,
                "ContentLength": size if not grandchildren else 0,
                "ChildrenNumber": len(grandchildren),
                "Nodes": {"uri": f"{base}/Nodes({name})/Nodes"},
            }
            for name, (size, grandchildren) in sorted(children.items())
        ]
        exchange.respond(Response.json(200, {"result": result}))

    # $value --------------------------------------------------------------------------

    def _value(
        self, exchange: Exchange, product_id: str, names: list[str], *, native: bool = False
    ) -> None:
        request = exchange.request
        token = bearer_token(request)
        check = self._identity.check_access_token(token)
        exchange.user = check.user
        if check.status in ("missing", "unknown"):
            exchange.respond(_unauthorised("DAT-ZIP-604", "Token not found"))
            return
        if check.status == "expired":
            exchange.respond(_unauthorised("DAT-ZIP-109", "Token is expired"))
            return
        if check.status == "audience":
            exchange.respond(_unauthorised("DAT-ZIP-609", "Token audience not allowed"))
            return
        assert token is not None and check.user is not None
        user = check.user
        record = self._product(exchange, product_id)
        if record is None:
            return
        if not record.online:
            exchange.respond(
                Response.json(
                    self._config.offline_status,
                    error_body(
                        None,
                        "Product is offline (Deferred Available Data): it can only be "
                        "ordered from the Data Workspace",
                    ),
                )
            )
            return
        if native:
            served = self._resolve_native(exchange, record)
            if served is None:
                return
        else:
            served = self._resolve(record, names)
        if served is None:
            exchange.respond(_not_found("Node not found"))
            return
        self._send(exchange, served, user, token)

    def _resolve(self, record: ProductRecord, names: list[str]) -> _Served | None:
        info = self._archives.info(record)
        if not names:
            return _Served(
                record,
                info,
                0,
                info.length,
                "application/zip",
                f"{record.name}.zip",
                f'"{info.md5}"',
                "$value",
            )
        path = "/".join(names)
        span = self._archives.member_span(record, path)
        if span is None:
            return None
        return _Served(
            record,
            info,
            span.data_offset,
            span.size,
            "application/octet-stream",
            names[-1],
            f'"{info.md5}-{span.data_offset:x}"',
            path,
        )

    def _resolve_native(self, exchange: Exchange, record: ProductRecord) -> _Served | None:
        """The native archive, or ``None`` after answering that there is none (now)."""
        end = self._archives.native_window_end(record)
        if end is None:
            exchange.respond(_not_found("Product has no compressed form"))
            return None
        if not self._archives.native_available(record):
            exchange.respond(
                Response.json(
                    self._config.compressed_expired_status,
                    error_body(
                        None,
                        "The compressed product is offered only during the first month "
                        "after publication: download $value instead",
                    ),
                )
            )
            return None
        info = self._archives.native_info(record)
        return _Served(
            record,
            info,
            0,
            info.length,
            "application/zip",
            f"{record.name}.zip",
            f'"{info.md5}"',
            "$zip",
        )

    def _send(self, exchange: Exchange, served: _Served, user: str, token: str) -> None:
        request = exchange.request
        config = self._config
        total = served.length
        target = exchange.target(served.record)
        headers = [
            ("Content-Type", served.content_type),
            ("Content-Disposition", content_disposition(served.filename)),
            ("ETag", served.etag),
        ]
        node = served.resource not in ("$value", "$zip")
        ranges = config.range_supported and (config.node_range_supported or not node)
        if ranges:
            headers.append(("Accept-Ranges", "bytes"))
        wanted = None
        if ranges:
            if_range = request.headers.get("if-range")
            if if_range is None or if_range.strip() == served.etag:
                wanted = parse_range(request.headers.get("range"), total)
        if wanted is False:
            exchange.respond(
                Response.json(
                    416,
                    error_body(None, "Requested range not satisfiable"),
                    [("Content-Range", f"bytes */{total}")],
                )
            )
            return
        byte_range = wanted if isinstance(wanted, ByteRange) else None
        faults: list[Fault] = []
        if request.method == "GET":
            drawn = self._faults.draw_random(target, total)
            if isinstance(drawn, StatusFault):
                exchange.respond(status_fault_response(drawn, exchange.host))
                return
            if isinstance(drawn, EndSessionsFault):
                self._identity.end_sessions(user)
            elif isinstance(drawn, IgnoreRangeFault):
                byte_range = None
            elif drawn is not None:
                faults.append(drawn)
            if byte_range is not None and self._faults.take_ignore_range(target):
                byte_range = None
        start, end = (byte_range.start, byte_range.end + 1) if byte_range else (0, total)
        if byte_range is not None:
            status = 206
            headers.append(("Content-Range", f"bytes {start}-{end - 1}/{total}"))
        else:
            status = 200
        headers.append(("Content-Length", str(end - start)))
        if request.method == "HEAD":
            exchange.send_head(status, headers, final=True)
            return
        counted = config.nodes_count_as_streams or not node
        if counted and not self.limiter.acquire(user, config.max_concurrent_downloads):
            extra = []
            if config.retry_after_s is not None:
                extra.append(("Retry-After", str(max(0, int(-(-config.retry_after_s // 1))))))
            message = (
                f"Max session number {config.max_concurrent_downloads} exceeded"
                if config.session_number_in_message
                else "Max session number exceeded"
            )
            exchange.respond(Response.json(429, error_body("DAT-ZIP-100", message), extra))
            return
        # Taken only once the stream is sure to start, so a refused request uses up no rule.
        faults += self._faults.take_body(target)
        if served.resource == "$zip":
            body = self._archives.native_body(served.record)
        else:
            body = self._archives.body(served.record)
        source: memoryview | Path | None = body.memory if body.memory is not None else body.path
        assert source is not None
        first, after = served.offset + start, served.offset + end
        chunked, trailing_bytes = False, 0
        if any(isinstance(f, GzipFault | ChunkedFault) for f in faults):
            compressed = any(isinstance(f, GzipFault) for f in faults)
            whole = b""
            if compressed:
                # Compression serves the whole resource (200); corrupt offsets name archive
                # bytes, which no longer appear as such in the body.
                whole = _read_span(source, served.offset, served.offset + total)
                status = 200
                faults = [f for f in faults if not isinstance(f, CorruptFault)]
            payload, headers, chunked, trailing_bytes = encode_body(whole, headers, faults)
            if compressed:
                source, first, after = memoryview(payload), 0, len(payload)

        def expire() -> None:
            self._identity.expire_token(token)

        released = False

        def release() -> None:
            # The slot is given back just before the last write: a client that starts its
            # next download the moment one completes must never meet a stale count.
            nonlocal released
            if not released and counted:
                released = True
                self.limiter.release(user)
                self._stats.stream_finished(user)

        if counted:
            self._stats.stream_started(user)
        try:
            exchange.send_head(status, headers)
            exchange.send_body(
                source,
                first,
                after,
                StreamOptions(
                    faults=_shift(faults, served.offset),
                    rate_bytes_per_s=config.bandwidth_bytes_per_s,
                    token_alive=(
                        self._identity.token_alive(token) if config.expire_midstream else None
                    ),
                    expire_token=expire,
                    product_id=served.record.id,
                    before_last_write=release,
                    chunked=chunked,
                    extra_bytes=trailing_bytes,
                    file_path=served.resource,
                ),
            )
        finally:
            release()

    def _product(self, exchange: Exchange, product_id: str) -> ProductRecord | None:
        """The product the path names, or ``None`` after answering 400 (bad id) or 404."""
        if not _UUID.fullmatch(product_id):
            exchange.respond(_invalid_id())
            return None
        record = self._store.get(product_id)
        if record is None and product_id != product_id.lower():
            record = self._store.get(product_id.lower())
        if record is None:
            exchange.respond(_not_found("Product not found"))
            return None
        exchange.product_id = record.id
        return record


def _shift(faults: Sequence[Fault], offset: int) -> list[Fault]:
    """Corrupt offsets count from the served file, the body is sent from the archive."""
    if not offset:
        return list(faults)
    return [
        replace(f, offset=f.offset + offset) if isinstance(f, CorruptFault) else f for f in faults
    ]


def _read_span(source: memoryview | Path, start: int, end: int) -> bytes:
    """Bytes ``start..end-1`` of an archive held in memory or in a file."""
    if isinstance(source, memoryview):
        return bytes(source[start:end])
    with source.open("rb") as handle:
        handle.seek(start)
        return handle.read(end - start)


def _unauthorised(code: str, message: str) -> Response:
    return Response.json(401, error_body(code, message))


def _invalid_id() -> Response:
    return Response.json(422, error_body("DAT-ZIP-111", "Invalid product id: not a UUID"))


def _not_found(message: str) -> Response:
    return Response.json(404, error_body(None, message))
