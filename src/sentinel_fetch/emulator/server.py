"""The emulator's HTTP/1.1 server: one port per host, one thread per connection, raw sockets.

Why not ``http.server``: the download host must stream a 1 GiB archive at the speed of the
loopback (``os.sendfile`` on plain sockets, 1 MiB ``sendall`` over TLS: http-throughput.md
shows smaller writes cost 2×), cut a connection after exactly N body bytes, stall, pace
to a bandwidth cap and notice a client that vanished, all of which needs the socket
itself. The parsing needed for the requests CDSE clients send is small.

Each host (identity, catalogue, download and zipper, STAC, the two thumbnail hosts)
listens on its own port, so they are different origins as on CDSE (spec §1): a client
that forwards ``Authorization`` across a redirect to another host is caught. Connections
are kept alive (HTTP/1.1 default) and each runs in its own thread, which does the TLS
handshake too (a slow handshake never holds up ``accept``).

Before a request reaches its host, the server applies ``config.latency_s`` and the fault
rules that fire before dispatch (:mod:`.faults`); while a body is sent it applies the
body faults, the bandwidth cap and the mid-stream token check. :meth:`EmulatorServer.stop`
closes the listeners and every live connection, so no thread stays blocked.
"""

from __future__ import annotations

import contextlib
import email.utils
import gzip
import http
import io
import ipaddress
import json
import logging
import os
import re
import select
import selectors
import socket
import ssl
import struct
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol
from urllib.parse import parse_qs, unquote, urlsplit

from .config import EmulatorConfig
from .faults import (
    BodyFault,
    ChunkedFault,
    CorruptFault,
    CutFault,
    EndSessionsFault,
    EntityFault,
    ExpireTokenFault,
    Fault,
    FaultPlan,
    FaultTarget,
    GzipFault,
    HoldFault,
    RedirectFault,
    RewriteFault,
    SlowHeadFault,
    StallFault,
    StatusFault,
    TrickleFault,
)
from .model import Handler, ProductRecord, Request, Response
from .stats import RequestEvent, Stats

__all__ = [
    "EmulatorServer",
    "Exchange",
    "HostApp",
    "PureApp",
    "RequestHooks",
    "StreamOptions",
    "encode_body",
    "error_body",
    "product_id_in_path",
]

logger = logging.getLogger("sentinel_fetch.emulator")
# One line per answered request (``--verbose``); the query is logged with tokens masked.
request_logger = logging.getLogger("sentinel_fetch.emulator.requests")

_MAX_LINE = 16 * 1024
_MAX_HEADERS = 200
_MAX_BODY = 16 * 1024 * 1024
_CHUNK = 1024 * 1024
_LAST_WRITE = 64 * 1024
_HANDSHAKE_TIMEOUT_S = 10.0
_JOIN_TIMEOUT_S = 5.0
_PRODUCT_IN_PATH = re.compile(r"/Products\('?([^)'/]*)'?\)")
_TOKEN_IN_QUERY = re.compile(r"((?:^|&)token=)[^&]*")


def product_id_in_path(path: str) -> str | None:
    """The id in ``…/Products(<id>)…``, as written (may be malformed), or ``None``."""
    match = _PRODUCT_IN_PATH.search(path)
    return match.group(1) if match else None


def error_body(code: str | None, message: str, trace_id: str | None = None) -> dict[str, str]:
    """A download-host (zipper) error body: ``{"trace-id","code","message"}`` (spec §6.2)."""
    body = {"trace-id": trace_id or os.urandom(16).hex()}
    if code is not None:
        body["code"] = code
    body["message"] = message
    return body


class RequestHooks(Protocol):
    """What the server asks the identity host about a request (for faults and stats)."""

    def user_for(self, request: Request) -> str | None:
        """The account a request acts for (token, refresh token or form username)."""
        ...

    def expire_request_token(self, request: Request) -> None:
        """Make the request's access token expire now."""
        ...

    def end_request_sessions(self, request: Request) -> None:
        """End every session of the request's user."""
        ...


class HostApp(Protocol):
    """A host: answers the requests of one port through an :class:`Exchange`."""

    def serve(self, exchange: Exchange) -> None:
        """Send exactly one response (or cut the connection)."""
        ...


@dataclass(frozen=True)
class StreamOptions:
    """How :meth:`Exchange.send_body` streams a body.

    Attributes:
        faults: body faults to apply (cut, corrupt, stall, expire_token).
        rate_bytes_per_s: bandwidth cap of this stream, or ``None``.
        token_alive: checked between chunks; when it turns false the stream is cut
            (``expire_midstream``).
        expire_token: called when an ``expire_token`` fault reaches its offset.
        product_id: bytes sent are added to this product's counter.
        before_last_write: called once, just before the last chunk is written (the
            download host frees the stream slot there, see :meth:`Exchange.send_body`).
        chunked: frame the body with ``Transfer-Encoding: chunked`` (the caller sent
            that header instead of ``Content-Length``).
        extra_bytes: bytes (zeros) sent after the body inside the chunked stream; ``-1``
            until the client goes away (``chunked`` only).
        file_path: bytes sent are also counted for this file of the product (a Nodes
            path, ``$value`` or ``$zip``), so tests can tell which files were fetched.
    """

    faults: Sequence[Fault] = ()
    rate_bytes_per_s: float | None = None
    token_alive: Callable[[], bool] | None = None
    expire_token: Callable[[], None] | None = None
    product_id: str | None = None
    before_last_write: Callable[[], None] | None = None
    chunked: bool = False
    extra_bytes: int = 0
    file_path: str | None = None


def encode_body(
    payload: bytes, headers: Sequence[tuple[str, str]], faults: Sequence[Fault]
) -> tuple[bytes, list[tuple[str, str]], bool, int]:
    """Apply the ``gzip`` and ``chunked`` rules among ``faults`` to a whole 2xx body.

    Returns:
        ``(payload, headers, chunked, extra_bytes)``: the bytes to send (compressed for
        ``gzip``), the headers without ``Content-Length`` / ``Content-Range`` where they
        no longer hold, and how :meth:`Exchange.send_body` must frame it.
    """
    compress = next((f for f in faults if isinstance(f, GzipFault)), None)
    chunking = next((f for f in faults if isinstance(f, ChunkedFault)), None)
    shaped = list(headers)
    chunked = chunking is not None
    if compress is not None:
        payload = _compressed(payload, compress.extra_bytes)
        # nginx serves no ranges of what it compresses: the whole resource, as a 200.
        dropped = ("content-length", "content-range", "accept-ranges")
        shaped = [(n, v) for n, v in shaped if n.lower() not in dropped]
        shaped += [("Content-Encoding", "gzip"), ("Vary", "Accept-Encoding")]
        chunked = chunked or compress.chunked
        if not chunked:
            shaped.append(("Content-Length", str(len(payload))))
    if chunked:
        shaped = [(n, v) for n, v in shaped if n.lower() != "content-length"]
        shaped.append(("Transfer-Encoding", "chunked"))
    extra = chunking.extra_bytes if chunking is not None else 0
    return payload, shaped, chunked, extra


def _compressed(payload: bytes, extra_zeros: int) -> bytes:
    """``payload`` then ``extra_zeros`` zero bytes, gzip-compressed a MiB at a time."""
    sink = io.BytesIO()
    with gzip.GzipFile(fileobj=sink, mode="wb", mtime=0) as stream:
        stream.write(payload)
        zeros = bytes(min(extra_zeros, 1 << 20))
        left = extra_zeros
        while left > 0:
            stream.write(zeros[:left])
            left -= len(zeros)
    return sink.getvalue()


class _ClientGone(Exception):
    """The peer closed or reset the connection: stop serving it, quietly."""


class _Connection:
    """One accepted socket: reading requests, writing responses, cutting it."""

    def __init__(
        self, server: EmulatorServer, binding: _Binding, sock: socket.socket, peer: str
    ) -> None:
        self.server = server
        self.binding = binding
        self.sock = sock
        self.peer = peer
        self.tls = False
        self.closed = False
        self._buffer = bytearray()

    # Lifecycle -------------------------------------------------------------------

    def run(self) -> None:
        try:
            self._setup()
            while not self.server.stopping.is_set() and not self.closed:
                request, keep_alive = self._read_request()
                if request is None:
                    break
                exchange = Exchange(self, request, keep_alive)
                try:
                    self._dispatch(exchange)
                finally:
                    self.server.record(exchange)
                if not exchange.keep_alive:
                    break
        except (_ClientGone, OSError) as exc:
            logger.debug("%s connection from %s ended: %r", self.binding.name, self.peer, exc)
        finally:
            self.close()
            self.server.forget(self)

    def _dispatch(self, exchange: Exchange) -> None:
        """Let the server answer; a bug in a host becomes a 500, never a hung client."""
        try:
            self.server.dispatch(exchange)
        except _ClientGone:
            raise
        except Exception:
            logger.exception(
                "emulator %s host failed on %s", self.binding.name, exchange.request.path
            )
            exchange.keep_alive = False
            if exchange.status == 0:
                with contextlib.suppress(_ClientGone, OSError):
                    exchange.respond(Response.json(500, {"detail": "Internal Server Error"}))

    def _setup(self) -> None:
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        context = self.server.tls_context
        if context is not None:
            _set_timeouts(self.sock, _HANDSHAKE_TIMEOUT_S)
            drop = self.server.faults.take_handshake(self.binding.name)
            if drop is not None:
                self._drop_handshake(drop.reset)
            wrapped = context.wrap_socket(
                self.sock, server_side=True, do_handshake_on_connect=False
            )
            self.sock = wrapped
            wrapped.do_handshake()
            self.tls = True
        _set_timeouts(self.sock, self.server.config.idle_timeout_s)

    def _drop_handshake(self, reset: bool) -> None:
        """Take the ClientHello, answer nothing, hang up (orderly close, or a reset)."""
        with contextlib.suppress(OSError):
            self.sock.recv(65536)
        if reset:
            # A zero linger time makes close() send RST instead of FIN.
            with contextlib.suppress(OSError):
                self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.closed = True
        with contextlib.suppress(OSError):
            self.sock.close()
        raise _ClientGone("handshake dropped by a fault rule")

    def abort(self) -> None:
        """Cut the connection now (the peer sees EOF/reset mid-body)."""
        if self.closed:
            return
        self.closed = True
        # The base-class shutdown works on the descriptor even for an SSLSocket, and wakes
        # a thread blocked in recv/send on it; SSLSocket.shutdown would drop its SSL state
        # under that thread's feet.
        with contextlib.suppress(OSError):
            socket.socket.shutdown(self.sock, socket.SHUT_RDWR)

    def close(self) -> None:
        self.abort()
        with contextlib.suppress(OSError):
            self.sock.close()

    # Reading ---------------------------------------------------------------------

    def _recv(self) -> bytes:
        try:
            return self.sock.recv(65536)
        except OSError as exc:
            raise _ClientGone(repr(exc)) from exc

    def _readline(self, first: bool = False) -> bytes | None:
        while True:
            index = self._buffer.find(b"\n")
            if index >= 0:
                line = bytes(self._buffer[: index + 1])
                del self._buffer[: index + 1]
                return line
            if len(self._buffer) > _MAX_LINE:
                raise _BadRequest(431 if not first else 414)
            data = self._recv()
            if not data:
                if first and not self._buffer:
                    return None
                raise _ClientGone("EOF inside a request")
            self._buffer += data

    def _read_exact(self, count: int) -> bytes:
        while len(self._buffer) < count:
            data = self._recv()
            if not data:
                raise _ClientGone("EOF inside a request body")
            self._buffer += data
        data = bytes(self._buffer[:count])
        del self._buffer[:count]
        return data

    def _read_request(self) -> tuple[Request | None, bool]:
        try:
            return self._parse_request()
        except _BadRequest as bad:
            self._send_error(bad.status)
            return None, False

    def _parse_request(self) -> tuple[Request | None, bool]:
        line = self._readline(first=True)
        while line in (b"\r\n", b"\n"):
            line = self._readline(first=True)
        if line is None:
            return None, False
        parts = line.decode("latin-1").strip().split()
        if len(parts) != 3 or not parts[2].startswith("HTTP/1."):
            raise _BadRequest(400)
        method, target, version = parts
        headers: dict[str, str] = {}
        for _ in range(_MAX_HEADERS + 1):
            raw = self._readline()
            if raw is None or raw in (b"\r\n", b"\n"):
                break
            name, colon, value = raw.decode("latin-1").partition(":")
            if not colon or not name.strip():
                raise _BadRequest(400)
            key = name.strip().lower()
            value = value.strip()
            headers[key] = f"{headers[key]}, {value}" if key in headers else value
        else:
            raise _BadRequest(431)
        connection = headers.get("connection", "").lower()
        keep_alive = "close" not in connection and (
            version != "HTTP/1.0" or "keep-alive" in connection
        )
        if headers.get("expect", "").lower() == "100-continue":
            self.send_all(b"HTTP/1.1 100 Continue\r\n\r\n")
        body = self._read_body(headers)
        if target.startswith(("http://", "https://")):
            split = urlsplit(target)
            path, query = split.path or "/", split.query
        else:
            path, _, query = target.partition("?")
        host_header = headers.get("host") or self.binding.authority
        scheme = "https" if self.tls else "http"
        request = Request(
            method=method.upper(),
            path=unquote(path),
            raw_query=query,
            headers=headers,
            body=body,
            base_url=f"{scheme}://{host_header}",
            client=self.peer,
        )
        return request, keep_alive

    def _read_body(self, headers: dict[str, str]) -> bytes:
        if "chunked" in headers.get("transfer-encoding", "").lower():
            parts: list[bytes] = []
            size = 0
            while True:
                line = self._readline()
                if line is None:
                    raise _ClientGone("EOF inside a chunked body")
                try:
                    length = int(line.split(b";", 1)[0].strip(), 16)
                except ValueError as exc:
                    raise _BadRequest(400) from exc
                if length == 0:
                    while self._readline() not in (b"\r\n", b"\n", None):
                        pass
                    return b"".join(parts)
                size += length
                if size > _MAX_BODY:
                    raise _BadRequest(413)
                parts.append(self._read_exact(length))
                self._read_exact(2)
        try:
            length = int(headers.get("content-length", "0"))
        except ValueError as exc:
            raise _BadRequest(400) from exc
        if length < 0:
            raise _BadRequest(400)
        if length > _MAX_BODY:
            raise _BadRequest(413)
        return self._read_exact(length) if length else b""

    def _send_error(self, status: int) -> None:
        body = f"{status} {_reason(status)}\n".encode()
        head = (
            f"HTTP/1.1 {status} {_reason(status)}\r\nContent-Type: text/plain\r\n"
            f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
        ).encode()
        with contextlib.suppress(OSError, _ClientGone):
            self.send_all(head + body)

    # Writing ---------------------------------------------------------------------

    def send_all(self, data: bytes | bytearray | memoryview) -> None:
        try:
            self.sock.sendall(data)
        except OSError as exc:
            raise _ClientGone(repr(exc)) from exc

    def send_file(self, file: _FileReader, offset: int, count: int) -> None:
        """``count`` bytes of ``file`` from ``offset``: sendfile on plain TCP, 1 MiB over TLS."""
        if not self.tls and _HAS_SENDFILE:
            self._sendfile(file.fileno(), offset, count)
            return
        # SSLSocket.sendfile falls back to 8 KiB sends; 1 MiB readinto + sendall is ~2x faster.
        buffer = file.buffer
        view = memoryview(buffer)
        while count > 0:
            size = file.read_into(view[: min(count, len(buffer))], offset)
            if size <= 0:
                raise OSError("archive file is shorter than expected")
            self.send_all(view[:size])
            offset += size
            count -= size

    def _sendfile(self, descriptor: int, offset: int, count: int) -> None:
        out = self.sock.fileno()
        timeout = self.sock.gettimeout()
        while count > 0:
            try:
                sent = os.sendfile(out, descriptor, offset, count)
            except BlockingIOError:
                # A blocking socket says this when SO_SNDTIMEO runs out; one with a Python
                # timeout (non-blocking underneath) when the buffer is full: wait for room.
                if timeout is None or not _wait_writable(out, timeout):
                    raise _ClientGone("send timed out") from None
                continue
            except OSError as exc:
                raise _ClientGone(repr(exc)) from exc
            if sent == 0:
                raise _ClientGone("sendfile sent nothing")
            offset += sent
            count -= sent


_HAS_SENDFILE = hasattr(os, "sendfile")


def _set_timeouts(sock: socket.socket, seconds: float) -> None:
    """Time out reads and writes that make no progress for ``seconds``.

    Where the platform allows, the socket stays blocking and the kernel enforces the
    timeout (SO_RCVTIMEO/SO_SNDTIMEO): a Python-level timeout makes the socket
    non-blocking, and TLS writes of 1 MiB from a file then run ~40 % slower (measured:
    750 vs 1250 MB/s to curl). A stopping server still wakes blocked threads with
    ``shutdown()``.
    """
    if os.name != "posix":
        sock.settimeout(seconds)
        return
    sock.settimeout(None)
    whole = int(seconds)
    value = struct.pack("ll", whole, int((seconds - whole) * 1_000_000))
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVTIMEO, value)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDTIMEO, value)


def _wait_writable(descriptor: int, timeout: float | None) -> bool:
    with selectors.DefaultSelector() as selector:
        selector.register(descriptor, selectors.EVENT_WRITE)
        return bool(selector.select(timeout))


class _BadRequest(Exception):
    def __init__(self, status: int) -> None:
        super().__init__(status)
        self.status = status


class _FileReader:
    """An archive file opened for one response, with a reusable 1 MiB buffer."""

    def __init__(self, path: Path) -> None:
        self._file = path.open("rb", buffering=0)
        self.buffer = bytearray(_CHUNK)

    def fileno(self) -> int:
        return self._file.fileno()

    def read_into(self, view: memoryview, offset: int) -> int:
        self._file.seek(offset)
        return self._file.readinto(view) or 0

    def read(self, offset: int, count: int) -> bytes:
        self._file.seek(offset)
        return self._file.read(count) or b""

    def close(self) -> None:
        self._file.close()


class Exchange:
    """One request and its response, as a host sees them.

    Attributes:
        request: the parsed request.
        host: the host's name.
        user: the account the request acts for, once a host knows it (for stats).
        product_id: the product the request concerns (for stats and faults).
        status: status sent so far (0 before the head is sent).
        bytes_sent: body bytes handed to the socket.
        keep_alive: whether the connection may serve another request afterwards.
        internal: admin requests are not logged in the stats.
        recorded: the request is already in the stats.

    The request is logged in the stats just *before* the last write of its response, so
    a client that has read a whole response always finds it in the stats (a test can
    assert right away). If that last write fails, the event still claims it.
    """

    def __init__(self, connection: _Connection, request: Request, keep_alive: bool) -> None:
        self.connection = connection
        self.request = request
        self.host = connection.binding.name
        self.user: str | None = None
        self.product_id: str | None = product_id_in_path(request.path)
        self.status = 0
        self.bytes_sent = 0
        self.keep_alive = keep_alive
        self.internal = False
        self.recorded = False
        #: A ``slow_head`` rule pacing this answer's status line and headers.
        self.head_pace: SlowHeadFault | None = None

    @property
    def server(self) -> EmulatorServer:
        """The server, for hosts that need its configuration or stop event."""
        return self.connection.server

    def target(self, product: ProductRecord | None = None) -> FaultTarget:
        """This request as fault rules see it."""
        name = product.name if product is not None else None
        if product is None and self.product_id is not None:
            record = self.server.lookup(self.product_id)
            name = record.name if record is not None else None
        return FaultTarget(
            self.host,
            self.request.method,
            self.request.path,
            self.product_id,
            name,
            self.request.headers.get("accept-encoding"),
        )

    def respond(self, response: Response, body_faults: Sequence[Fault] = ()) -> None:
        """Send a complete response (head, then the body unless the method is HEAD)."""
        headers = [(n, v) for n, v in response.headers if n.lower() != "content-length"]
        headers.append(("Content-Length", str(len(response.body))))
        body = response.body if self.request.method != "HEAD" else b""
        if body and body_faults:
            body, headers, chunked, extra = encode_body(body, headers, body_faults)
            self.send_head(response.status, headers)
            options = StreamOptions(faults=body_faults, chunked=chunked, extra_bytes=extra)
            self.send_body(memoryview(body), 0, len(body), options)
            return
        head = self._head(response.status, headers)
        self.status = response.status
        self.bytes_sent = len(body)
        self.server.record(self)
        if self.head_pace is not None:
            self._send_head_bytes(head)
            self.connection.send_all(body)
            return
        # Head and body in one write: one packet for small answers, no Nagle round trip.
        self.connection.send_all(head + body)

    def send_head(
        self, status: int, headers: Sequence[tuple[str, str]], *, final: bool = False
    ) -> None:
        """Send the status line and headers (``Content-Length`` is the caller's job).

        Args:
            status: HTTP status.
            headers: header lines.
            final: no body follows (HEAD), so this is the response's last write.
        """
        data = self._head(status, headers)
        self.status = status
        if final:
            self.server.record(self)
        self._send_head_bytes(data)

    def _send_head_bytes(self, data: bytes) -> None:
        """Send a head, paced by a ``slow_head`` rule if one fired for this request."""
        pace = self.head_pace
        if pace is None:
            self.connection.send_all(data)
            return
        for start in range(0, len(data), pace.bytes_per_write):
            if start and self.server.stopping.wait(pace.interval_s):
                self.abort()
                raise _ClientGone("the emulator stopped while pacing a head")
            self.connection.send_all(data[start : start + pace.bytes_per_write])

    def _head(self, status: int, headers: Sequence[tuple[str, str]]) -> bytes:
        lines = [f"HTTP/1.1 {status} {_reason(status)}\r\n"]
        lines.append(f"Date: {email.utils.formatdate(usegmt=True)}\r\n")
        lines.extend(f"{name}: {value}\r\n" for name, value in headers)
        if not self.keep_alive:
            lines.append("Connection: close\r\n")
        lines.append("\r\n")
        return "".join(lines).encode("latin-1")

    def abort(self) -> None:
        """Cut the connection (what a dying upstream does to a client)."""
        self.keep_alive = False
        self.connection.abort()

    def send_body(
        self,
        source: memoryview | Path,
        start: int,
        end: int,
        options: StreamOptions,
    ) -> bool:
        """Send bytes ``start..end-1`` of a resource, applying faults, pacing and checks.

        Args:
            source: the whole resource in memory, or the file holding it.
            start: resource offset of the first body byte (corrupt faults use resource
                offsets, cut/stall/expire/trickle faults count body bytes).
            end: resource offset after the last body byte.
            options: faults, bandwidth cap, token checks, product for the stats, framing.

        Returns:
            Whether the whole body was sent (``False``: cut, client gone or stopping).
        """
        total = end - start
        events = _body_events(options.faults, total)
        flips = _flip_ranges(options.faults, start, end)
        breaks = sorted({position for position, _ in events} | {p for r in flips for p in r})
        rate = options.rate_bytes_per_s
        if rate is not None and rate > 0:
            # Small slices keep the cap smooth: 1/100 s of data, at least 16 KiB.
            chunk = int(min(_CHUNK, max(16 * 1024, rate / 100)))
        elif (
            options.token_alive is not None
            or isinstance(source, memoryview)
            or self.connection.tls
            or options.chunked
        ):
            chunk = _CHUNK
        else:
            chunk = total
        reader = _FileReader(source) if isinstance(source, Path) else None
        stopping = self.server.stopping
        trickle: TrickleFault | None = None
        sent = 0
        event_index = 0
        began = time.monotonic()
        try:
            while True:
                while event_index < len(events) and events[event_index][0] <= sent:
                    fault = events[event_index][1]
                    event_index += 1
                    if isinstance(fault, ExpireTokenFault) and options.expire_token is not None:
                        options.expire_token()
                    elif isinstance(fault, StallFault | HoldFault) and not self._pause(
                        fault, stopping
                    ):
                        self.abort()
                        return False
                    elif isinstance(fault, TrickleFault):
                        trickle = fault
                    elif isinstance(fault, CutFault):
                        logger.debug("cutting %s after %d bytes", self.request.path, sent)
                        self.abort()
                        return False
                if sent >= total:
                    break
                if options.token_alive is not None and not options.token_alive():
                    logger.debug("token expired mid-stream on %s", self.request.path)
                    self.abort()
                    return False
                limit = next((b for b in breaks if b > sent), total)
                size = min(limit - sent, chunk, total - sent)
                if trickle is not None:
                    size = min(size, trickle.bytes_per_write)
                    if stopping.wait(trickle.interval_s):
                        self.abort()
                        return False
                elif size == total - sent and size > _LAST_WRITE:
                    # Keep the last write small: the stream slot is freed and the request
                    # logged just before it, so "before" must mean "at the very end".
                    size -= _LAST_WRITE
                offset = start + sent
                last = sent + size >= total
                if rate is not None and rate > 0:
                    # Token bucket with a one-slice burst: these bytes may leave once the
                    # bucket has refilled enough since the stream began.
                    due = began + (sent + size - chunk) / rate - time.monotonic()
                    if due > 0 and self._paced_wait(due, stopping):
                        self.abort()
                        return False
                if options.product_id is not None:
                    # Counted before the write, so the count is complete when the client
                    # has the bytes; a write that fails over-counts by at most one chunk.
                    self.server.stats.add_product_bytes(options.product_id, size, options.file_path)
                if last:
                    self.bytes_sent = total
                    if options.before_last_write is not None:
                        options.before_last_write()
                    self.server.record(self)
                if options.chunked:
                    self.connection.send_all(f"{size:x}\r\n".encode())
                if any(a <= sent < b for a, b in flips):
                    data = bytearray(
                        source[offset : offset + size]
                        if isinstance(source, memoryview)
                        else _read(reader, offset, size)
                    )
                    for index in range(size):
                        data[index] ^= 0xFF
                    self.connection.send_all(data)
                elif isinstance(source, memoryview):
                    self.connection.send_all(source[offset : offset + size])
                else:
                    assert reader is not None
                    self.connection.send_file(reader, offset, size)
                if options.chunked:
                    self.connection.send_all(b"\r\n")
                sent += size
                self.bytes_sent = sent
            if options.chunked:
                return self._finish_chunked(options, stopping)
            return True
        except _ClientGone as gone:
            logger.debug("client left %s after %d bytes: %s", self.request.path, sent, gone)
            self.keep_alive = False
            self.connection.closed = True
            return False
        finally:
            if reader is not None:
                reader.close()

    def _paced_wait(self, seconds: float, stopping: threading.Event) -> bool:
        """Wait between paced writes; ``True`` if the server stops meanwhile.

        A client that closes its end mid-body is noticed at once, as an event-driven
        server notices it, not at the next write: its stream stops counting against the
        account's limit when it is gone (a client that stops reading early and asks
        again must not meet its own stale stream). While a body is sent a client sends
        nothing, so anything readable is its close (a TLS alert, FIN or reset).

        Raises:
            _ClientGone: the client closed the connection.
        """
        deadline = time.monotonic() + seconds
        while (left := deadline - time.monotonic()) > 0:
            if stopping.is_set():
                return True
            try:
                readable = select.select([self.connection.sock], [], [], min(left, 0.05))[0]
            except (OSError, ValueError):
                readable = [self.connection.sock]
            if readable:
                raise _ClientGone("closed by the client mid-body")
        return stopping.is_set()

    def _pause(self, fault: StallFault | HoldFault, stopping: threading.Event) -> bool:
        """Wait as a stall or hold rule says; ``False`` if the server stops meanwhile."""
        if isinstance(fault, StallFault):
            return not stopping.wait(fault.stall_s)
        return self.server.faults.wait_released(stopping)

    def _finish_chunked(self, options: StreamOptions, stopping: threading.Event) -> bool:
        """Send the extra bytes a ``chunked`` rule asks for, then the last chunk."""
        remaining = options.extra_bytes
        filler = bytes(_CHUNK)
        while remaining != 0:
            if stopping.is_set():
                self.abort()
                return False
            size = _CHUNK if remaining < 0 else min(_CHUNK, remaining)
            if options.product_id is not None:
                self.server.stats.add_product_bytes(options.product_id, size)
            self.connection.send_all(f"{size:x}\r\n".encode() + filler[:size] + b"\r\n")
            if remaining > 0:
                remaining -= size
        self.connection.send_all(b"0\r\n\r\n")
        return True


def _read(reader: _FileReader | None, offset: int, size: int) -> bytes:
    assert reader is not None
    return reader.read(offset, size)


def _body_events(faults: Sequence[Fault], total: int) -> list[tuple[int, Fault]]:
    """``(body offset, fault)`` of the cut/stall/expire/trickle faults inside the body."""
    events: list[tuple[int, int, Fault]] = []
    for fault in faults:
        if isinstance(fault, CutFault) and fault.after_bytes < total:
            events.append((fault.after_bytes, 2, fault))
        elif isinstance(fault, TrickleFault) and fault.after_bytes < total:
            events.append((fault.after_bytes, 1, fault))
        elif isinstance(fault, StallFault | HoldFault) and fault.after_bytes is not None:
            if fault.after_bytes < total:
                events.append((fault.after_bytes, 1, fault))
        elif (
            isinstance(fault, ExpireTokenFault)
            and fault.after_bytes is not None
            and fault.after_bytes <= total
        ):
            events.append((fault.after_bytes, 0, fault))
    # At one offset: the token expires first, then the stall, then the cut.
    events.sort(key=lambda e: (e[0], e[1]))
    return [(position, fault) for position, _, fault in events]


def _flip_ranges(faults: Sequence[Fault], start: int, end: int) -> list[tuple[int, int]]:
    """Body-relative ``[a, b)`` ranges of bytes to corrupt."""
    ranges = []
    for fault in faults:
        if isinstance(fault, CorruptFault):
            a = max(fault.offset, start)
            b = min(fault.offset + fault.length, end)
            if a < b:
                ranges.append((a - start, b - start))
    return ranges


def _reason(status: int) -> str:
    try:
        return http.HTTPStatus(status).phrase
    except ValueError:
        return "Unknown"


class PureApp:
    """A host written as ``Request -> Response`` (identity, catalogue).

    2xx bodies still go through the body faults, so a test can cut or corrupt a
    catalogue page as well as a product.
    """

    def __init__(self, handler: Handler) -> None:
        self.handler = handler

    def serve(self, exchange: Exchange) -> None:
        """Call the handler and send its response."""
        response = self.handler(exchange.request)
        if response.status == 200 and exchange.server.faults.alters_entities():
            response = _altered_entities(exchange, response)
        faults: list[Fault] = []
        if 200 <= response.status < 300 and response.body and exchange.request.method != "HEAD":
            faults = exchange.server.faults.take_body(exchange.target())
        # Rewrites change what is said, so they apply before the length is announced.
        for fault in faults:
            if isinstance(fault, RewriteFault):
                response = Response(response.status, response.headers, fault.apply(response.body))
        exchange.respond(response, [f for f in faults if not isinstance(f, RewriteFault)])


def _altered_entities(exchange: Exchange, response: Response) -> Response:
    """The answer with ``entity`` fault rules applied to each product entity in it.

    Done on the serialised answer, so the catalogue itself never knows about faults.
    """
    try:
        payload = json.loads(response.body)
    except ValueError:
        return response
    if not isinstance(payload, dict):
        return response
    request = exchange.request

    def alter(entity: object) -> object:
        if not isinstance(entity, dict):
            return entity
        product_id, name = entity.get("Id"), entity.get("Name")
        target = FaultTarget(
            exchange.host,
            request.method,
            request.path,
            product_id if isinstance(product_id, str) else None,
            name if isinstance(name, str) else None,
        )
        rules: list[EntityFault] = exchange.server.faults.take_entities(target)
        for rule in rules:
            entity = rule.apply(entity)
        return entity

    values = payload.get("value")
    if isinstance(values, list):
        payload["value"] = [alter(entity) for entity in values]
    elif "Id" in payload:
        payload = alter(payload)
    else:
        return response
    headers = [(n, v) for n, v in response.headers if n.lower() != "content-type"]
    return Response.json(response.status, payload, headers)


def _send_body_fault(exchange: Exchange, fault: BodyFault) -> None:
    """Answer with a :class:`BodyFault`'s body, announcing whatever length it says."""
    body = fault.body()
    headers = [("Content-Type", fault.content_type), *fault.headers]
    if not fault.close_delimited and not fault.sets_length:
        announced = len(body) if fault.content_length is None else fault.content_length
        headers.append(("Content-Length", str(announced)))
    if fault.close_delimited or fault.sets_length or fault.content_length not in (None, len(body)):
        # Nothing else marks where this body ends, or the peer still waits for the rest.
        exchange.keep_alive = False
    if exchange.request.method == "HEAD" or not body:
        exchange.send_head(fault.status, headers, final=True)
        return
    exchange.send_head(fault.status, headers)
    exchange.send_body(memoryview(body), 0, len(body), StreamOptions())


@dataclass
class _Binding:
    name: str
    listener: socket.socket
    authority: str
    app: HostApp | None = None


class EmulatorServer:
    """Listens for the hosts and runs one thread per connection.

    Args:
        config: read on every request (latency, idle timeout, bandwidth...).
        faults: the fault plan applied before dispatch and to bodies.
        stats: where requests are counted.
        hooks: the identity host's answers about a request's token and user.
        lookup: product by id (fault rules may name products).
        tls_context: server TLS context, or ``None`` for plain HTTP.
    """

    def __init__(
        self,
        config: EmulatorConfig,
        *,
        faults: FaultPlan,
        stats: Stats,
        hooks: RequestHooks,
        lookup: Callable[[str], ProductRecord | None],
        tls_context: ssl.SSLContext | None,
    ) -> None:
        self.config = config
        self.faults = faults
        self.stats = stats
        self.hooks = hooks
        self.lookup = lookup
        self.tls_context = tls_context
        self.stopping = threading.Event()
        self._bindings: dict[str, _Binding] = {}
        self._lock = threading.Lock()
        self._connections: dict[_Connection, threading.Thread] = {}
        self._acceptor: threading.Thread | None = None
        self._wake_read, self._wake_write = socket.socketpair()
        self._admin: HostApp | None = None

    @property
    def scheme(self) -> str:
        """``https`` or ``http``."""
        return "https" if self.tls_context is not None else "http"

    def bind(self, name: str, port: int) -> str:
        """Open the listening socket of a host; returns its base URL (``scheme://host:port``)."""
        host = self.config.host
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        listener = socket.create_server((host, port), family=family, backlog=256)
        listener.setblocking(False)
        bound_port = listener.getsockname()[1]
        literal = f"[{host}]" if family == socket.AF_INET6 else host
        authority = f"{literal}:{bound_port}"
        self._bindings[name] = _Binding(name, listener, authority)
        return f"{self.scheme}://{authority}"

    def mount(self, name: str, app: HostApp) -> None:
        """Attach the app that answers a bound host's requests."""
        self._bindings[name].app = app

    def mount_admin(self, app: HostApp) -> None:
        """Attach the admin endpoint (``/_emulator/`` on the catalogue host)."""
        self._admin = app

    def start(self) -> None:
        """Start accepting connections."""
        self._acceptor = threading.Thread(
            target=self._accept_loop, name="emulator-accept", daemon=True
        )
        self._acceptor.start()

    def stop(self) -> None:
        """Close the listeners and every connection; wait for their threads."""
        self.stopping.set()
        with contextlib.suppress(OSError):
            self._wake_write.send(b"x")
        if self._acceptor is not None:
            self._acceptor.join(_JOIN_TIMEOUT_S)
        for binding in self._bindings.values():
            with contextlib.suppress(OSError):
                binding.listener.close()
        with self._lock:
            live = list(self._connections.items())
        for connection, _ in live:
            connection.abort()
        deadline = time.monotonic() + _JOIN_TIMEOUT_S
        for _, thread in live:
            thread.join(max(0.0, deadline - time.monotonic()))
        for sock in (self._wake_read, self._wake_write):
            with contextlib.suppress(OSError):
                sock.close()

    def forget(self, connection: _Connection) -> None:
        """A connection thread is done."""
        with self._lock:
            self._connections.pop(connection, None)

    def _accept_loop(self) -> None:
        with selectors.DefaultSelector() as selector:
            for binding in self._bindings.values():
                selector.register(binding.listener, selectors.EVENT_READ, binding)
            selector.register(self._wake_read, selectors.EVENT_READ, None)
            while not self.stopping.is_set():
                for key, _ in selector.select():
                    if key.data is not None and not self.stopping.is_set():
                        self._accept(key.data)

    def _accept(self, binding: _Binding) -> None:
        try:
            sock, address = binding.listener.accept()
        except (BlockingIOError, InterruptedError):
            return
        except OSError as exc:
            logger.debug("accept failed on %s: %r", binding.name, exc)
            return
        sock.setblocking(True)
        self._spawn(binding, sock, f"{address[0]}:{address[1]}")

    def _spawn(self, binding: _Binding, sock: socket.socket, peer: str) -> None:
        connection = _Connection(self, binding, sock, peer)
        thread = threading.Thread(
            target=connection.run, name=f"emulator-{binding.name}-{peer}", daemon=True
        )
        with self._lock:
            self._connections[connection] = thread
        thread.start()

    # Dispatch ----------------------------------------------------------------------

    def dispatch(self, exchange: Exchange) -> None:
        """Admin routes; else latency, before-dispatch faults, then the host's app."""
        request = exchange.request
        if (
            exchange.host == "catalogue"
            and request.path.startswith("/_emulator/")
            and self._admin is not None
        ):
            exchange.internal = True
            self._admin.serve(exchange)
            return
        self.stats.request_started(exchange.host)
        try:
            self._answer(exchange)
        finally:
            self.stats.request_finished(exchange.host)

    def _answer(self, exchange: Exchange) -> None:
        """Latency, before-dispatch faults, then the host's app."""
        request = exchange.request
        latency = self.config.latency_s
        if latency > 0 and self.stopping.wait(latency):
            exchange.abort()
            return
        answer: Fault | None = None
        for fault in self.faults.take_before(exchange.target()):
            if isinstance(fault, StallFault) and self.stopping.wait(fault.stall_s):
                exchange.abort()
                return
            if isinstance(fault, ExpireTokenFault):
                self.hooks.expire_request_token(request)
            elif isinstance(fault, EndSessionsFault):
                self.hooks.end_request_sessions(request)
            elif isinstance(fault, SlowHeadFault):
                exchange.head_pace = fault
            elif isinstance(fault, StatusFault | RedirectFault | BodyFault):
                answer = fault
        if isinstance(answer, BodyFault):
            _send_body_fault(exchange, answer)
            return
        if isinstance(answer, RedirectFault):
            location = answer.location_for(request.path, request.raw_query)
            exchange.respond(Response(answer.status, [("Location", location)]))
            return
        if isinstance(answer, StatusFault):
            exchange.respond(status_fault_response(answer, exchange.host, request))
            return
        app = self._bindings[exchange.host].app
        if app is None:
            exchange.respond(Response(503))
            return
        app.serve(exchange)

    def record(self, exchange: Exchange) -> None:
        """Log an answered request in the stats (once)."""
        if exchange.internal or exchange.recorded:
            return
        exchange.recorded = True
        request = exchange.request
        user = exchange.user
        if user is None:
            user = self.hooks.user_for(request)
        query = _TOKEN_IN_QUERY.sub(r"\1***", request.raw_query)
        request_logger.debug(
            "%s %s %s%s -> %d (%d bytes)",
            exchange.host,
            request.method,
            request.path,
            f"?{query}" if query else "",
            exchange.status,
            exchange.bytes_sent,
        )
        self.stats.record_request(
            RequestEvent(
                time=time.time(),
                host=exchange.host,
                method=request.method,
                path=request.path,
                status=exchange.status,
                user=user,
                range=request.headers.get("range"),
                authorization="authorization" in request.headers,
                bytes_sent=exchange.bytes_sent,
                product_id=exchange.product_id,
                query=query,
            )
        )


def status_fault_response(
    fault: StatusFault, host: str, request: Request | None = None
) -> Response:
    """The answer a :class:`StatusFault` sends on a host (see its docstring).

    ``request`` is what an ``echo`` rule quotes from; without it nothing is quoted.
    """
    headers: list[tuple[str, str]] = []
    if fault.retry_after_s is not None:
        headers.append(("Retry-After", str(max(0, int(-(-fault.retry_after_s // 1))))))
    if fault.body is not None:
        return Response.json(fault.status, fault.body, headers)
    status = fault.status
    if fault.echo is not None and request is not None:
        quoted = f"{fault.message or _reason(status)} ({_echoed(fault.echo, request)})"
        return Response.json(status, error_body(fault.code, quoted), headers)
    if fault.code is None and fault.message is None:
        if status == 429 and host in ("catalogue", "stac"):
            return Response.json(
                status, {"error": "WAF", "message": "Rate limit exceeded", "status": 429}, headers
            )
        if status in (502, 503, 504):
            reason = f"{status} {_reason(status)}"
            page = (
                f"<html>\r\n<head><title>{reason}</title></head>\r\n<body>\r\n"
                f"<center><h1>{reason}</h1></center>\r\n<hr><center>nginx</center>\r\n"
                "</body>\r\n</html>\r\n"
            ).encode()
            return Response(status, [("Content-Type", "text/html"), *headers], page)
        if host == "identity":
            return Response.json(
                status,
                {"error": "temporarily_unavailable", "error_description": _reason(status)},
                headers,
            )
    code = fault.code
    message = fault.message
    if status == 429 and host == "download" and code is None:
        code = "DAT-ZIP-100"
        message = message or "Max session number exceeded"
    return Response.json(status, error_body(code, message or _reason(status)), headers)


def _echoed(echo: str, request: Request) -> str:
    """The secret an ``echo`` rule quotes, as a careless server would print it."""
    if echo == "password":
        form = parse_qs(request.body.decode("utf-8", "replace"))
        return "password=" + form.get("password", [""])[0]
    return "Authorization: " + request.headers.get("authorization", "")


def is_loopback(client: str) -> bool:
    """Whether a ``host:port`` peer is on the loopback interface (admin is loopback only)."""
    host = client.rsplit(":", 1)[0].strip("[]")
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return False
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return address.is_loopback
