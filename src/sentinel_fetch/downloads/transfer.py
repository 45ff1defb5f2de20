"""One product: stream, resume, verify, move. The only code that writes product bytes.

One attempt:

1. ``Range: bytes=N-`` when ``Temp/<file>.part`` already holds ``N`` bytes;
2. append only after a ``206`` whose ``Content-Range`` starts at ``N`` and whose total is
   the catalogue's size; a ``200`` means the server ignored Range: start again from 0;
   a ``416`` means the partial file may already be complete: the checksum decides;
3. hash while writing (BLAKE3, else MD5; the prefix already on disk is re-read first);
4. on a size or checksum mismatch the partial file is deleted and the product retried;
5. ``fsync``, then ``os.replace`` into the finish folder: a finished file is always a
   verified file, and a crash at any moment leaves either a ``.part`` or a finished file.

:func:`download_product` wraps attempts in the retry policy: transient failures
(connection resets, timeouts, truncated bodies, 429, 5xx) are retried with capped
exponential backoff and jitter, honouring a capped ``Retry-After``; an expired token is
refreshed and the same file resumed; an attempt that made progress is resumed at once.
Whatever happens, a product gets at most ``max_total_attempts`` attempts and fetches at
most ``max_fetched_size_multiple`` times its size in one run (CDSE counts every byte
against the account's 30-day quota); then it fails with the last reason.
A body that trickles (slower than ``min_rate_bytes_per_s`` over ``min_rate_window_s``)
is dropped by :mod:`~sentinel_fetch.downloads.rate`'s watchdog and resumed.

Bytes go to disk through :class:`~sentinel_fetch.downloads.partfile.PartWriter` (a
writer thread, ``O_DIRECT`` where the filesystem takes it). A connection cut mid-read
keeps every byte received before the cut: the writer is closed, and its queue written
out, on every way out of an attempt, so the ``.part`` file ends on bytes really received.
"""

from __future__ import annotations

import contextlib
import dataclasses
import errno
import http.client
import logging
import os
import socket
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import requests
import urllib3

from sentinel_fetch.auth import TokenManager
from sentinel_fetch.downloads.checksum import Expected, StreamVerifier
from sentinel_fetch.downloads.governor import Governor, session_limit
from sentinel_fetch.downloads.partfile import PartWriter
from sentinel_fetch.downloads.paths import Layout
from sentinel_fetch.downloads.pieces import HELPER_REQUEST_BYTES, Board, Piece, Shared, discard
from sentinel_fetch.downloads.rate import MinimumRate, Watchdog
from sentinel_fetch.errors import (
    AuthError,
    DownloadServiceError,
    IntegrityError,
    ProductOfflineError,
    SentinelFetchError,
    ServiceError,
    StoppedError,
    StorageError,
    TransferError,
)
from sentinel_fetch.http import Transport, declared_length, error_from_response
from sentinel_fetch.progress import BytesReceived, ProductStarted, ProductWaiting, Progress
from sentinel_fetch.redact import redact_url
from sentinel_fetch.retry import ProductBudget, RetryPolicy, Sleep, fetch_budget_bytes, pause
from sentinel_fetch.settings import Limits

__all__ = [
    "Downloadable",
    "TransferContext",
    "TransferOutcome",
    "download_product",
    "help_product",
]

log = logging.getLogger("sentinel_fetch.download")

# Report progress about every this many bytes: often enough for a smooth bar, rarely
# enough to cost nothing.
_PROGRESS_STEP_BYTES = 4 << 20
# Consecutive "token expired" answers tolerated for one product before giving up: a
# fresh token refused again means the account cannot download (DAT-ZIP-609...).
_MAX_AUTH_RETRIES = 3


class Downloadable(Protocol):
    """What the transfer needs to know about a product (``catalogue.Product`` has it)."""

    @property
    def id(self) -> str: ...
    @property
    def name(self) -> str: ...
    @property
    def size(self) -> int: ...
    @property
    def checksums(self) -> Mapping[str, str]: ...
    @property
    def file_name(self) -> str: ...


@dataclass(frozen=True)
class TransferContext:
    """Collaborators shared by every transfer of a batch."""

    transport: Transport
    tokens: TokenManager
    governor: Governor
    layout: Layout
    limits: Limits
    progress: Progress
    stop: threading.Event
    sleep: Sleep | None = None
    #: Monotonic clock of the minimum-rate guard.
    clock: Callable[[], float] = time.monotonic
    #: Where free connections find products to help with (none: no helping).
    board: Board | None = None

    def wait(self, seconds: float) -> bool:
        """Sleep up to ``seconds``; return ``True`` if the job is stopping."""
        return pause(seconds, stop=self.stop, sleep=self.sleep)


@dataclass(frozen=True)
class TransferOutcome:
    """A verified product in the finish folder.

    Attributes:
        path: where it is.
        bytes_received: bytes fetched over the network in this run (resumes fetch less).
        attempts: attempts used, including the successful one.
        verified_by: ``BLAKE3``, ``MD5`` or ``zip-crc``.
    """

    path: Path
    bytes_received: int
    attempts: int
    verified_by: str


class _HeldSlot:
    """A product's governor slot, kept from one attempt to the next when it resumes at once.

    A connection cut while bytes were flowing resumes on the slot it had: released and
    taken again, a product waiting for a slot would get it first and the cut one would
    wait for the next product to end.
    """

    def __init__(self, governor: Governor, stop: threading.Event) -> None:
        self._governor = governor
        self._stop = stop
        self._stack: contextlib.ExitStack | None = None
        #: How many requests went out on a slot kept from the attempt before.
        self.kept = 0

    @property
    def held(self) -> bool:
        """Whether the slot is held now."""
        return self._stack is not None

    def take(self) -> None:
        """Hold a slot (waiting for one) unless it is held already.

        Raises:
            StoppedError: the job stopped while waiting.
        """
        if self._stack is not None:
            self.kept += 1
            return
        stack = contextlib.ExitStack()
        stack.enter_context(self._governor.slot(self._stop))
        self._stack = stack

    def release(self) -> None:
        """Give the slot back (nothing if none is held)."""
        stack, self._stack = self._stack, None
        if stack is not None:
            stack.close()

    def keep_or_release(self, resume_at_once: bool) -> None:
        """Keep the slot for an attempt that resumes at once, if the governor allows."""
        if not (resume_at_once and self._governor.may_keep()):
            self.release()


class _TransientError(Exception):
    """Worth another attempt after a pause."""

    def __init__(self, message: str, *, retry_after_s: float | None = None) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s


class _TokenRejectedError(Exception):
    """The download host refused the token as expired/missing: refresh and resume."""


class _Stopped(Exception):
    """The job is stopping; the partial file stays for the next run."""


class _BudgetSpentError(Exception):
    """This attempt reached the bytes the product may still fetch in this run."""


def _parse_content_range(value: str | None) -> tuple[int, int, int] | None:
    """``bytes start-end/total`` → ``(start, end, total)``; ``None`` if malformed."""
    if not value or not value.startswith("bytes "):
        return None
    span, _, total = value[6:].partition("/")
    start, _, end = span.partition("-")
    try:
        return int(start), int(end), int(total)
    except ValueError:
        return None


def _fsync_dir(path: Path) -> None:
    # Makes the rename itself durable on POSIX; not possible (nor needed) on Windows.
    if os.name != "posix":
        return
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _content_encoding(response: requests.Response) -> str:
    """The body's content coding, lower-case; ``""`` for none (``identity`` is none)."""
    value = response.headers.get("Content-Encoding", "").strip().lower()
    return "" if value == "identity" else value


def _body_reader(response: requests.Response, chunk_size: int) -> Callable[[memoryview], int]:
    """A ``readinto`` for the response body: fills a buffer, returns the count, 0 at the end.

    For a plain (not content-encoded) body, reads straight into the caller's buffer from
    the standard library's HTTP response beneath urllib3: measured here, about 10 % less
    CPU per GB over TLS than ``iter_content``, and a cut connection still hands over the
    bytes that did arrive. The connection goes back to the pool once the body has been
    read to its end. Anything unusual (another library version, a content encoding) is
    read through ``iter_content`` and copied; urllib3 decodes at most ``chunk_size``
    bytes per read, so a compressed body cannot inflate past what is asked for.
    """
    raw = getattr(response.raw, "_fp", None)
    if not _content_encoding(response) and isinstance(raw, http.client.HTTPResponse):

        def read_plain(view: memoryview) -> int:
            count = raw.readinto(view)
            if not count and hasattr(response, "_content_consumed"):
                # Tells requests the body was read to the end, so closing the response
                # returns the connection to the pool instead of closing it.
                response._content_consumed = True
            return count

        return read_plain

    chunks = response.iter_content(chunk_size)
    leftover = memoryview(b"")

    def read_decoded(view: memoryview) -> int:
        nonlocal leftover
        while not leftover:  # an empty piece is not the end; the iterator's end is
            piece = next(chunks, None)
            if piece is None:
                return 0
            leftover = memoryview(piece)
        count = min(len(view), len(leftover))
        view[:count] = leftover[:count]
        leftover = leftover[count:]
        return count

    return read_decoded


# What a read of the body raises when the network, not the disk, failed.
_NETWORK_ERRORS = (
    requests.exceptions.RequestException,
    urllib3.exceptions.HTTPError,
    http.client.HTTPException,
    OSError,
)


def _body_continues(read: Callable[[memoryview], int]) -> bool:
    """Whether a body that has sent all the bytes it may send still has more.

    A body with a length ends here without touching the network; a chunked one reads its
    last chunk. A connection that fails at this point has delivered every byte it had to:
    the checksum judges them.
    """
    try:
        return read(memoryview(bytearray(1))) > 0
    except _NETWORK_ERRORS:
        return False


def _connection_socket(response: requests.Response) -> socket.socket | None:
    """The socket a streamed response is read from, or ``None`` if it cannot be found."""
    connection = getattr(response.raw, "connection", None)
    sock: object = getattr(connection, "sock", None)
    # TLS inside a TLS proxy tunnel wraps the socket in a transport object.
    for _ in range(3):
        if isinstance(sock, socket.socket):
            return sock
        sock = getattr(sock, "socket", None)
    return None


def _storage_error(exc: OSError, path: Path) -> StorageError:
    if exc.errno == errno.ENOSPC:
        return StorageError(
            f"the disk is full while writing {path.name}; free space and rerun to resume"
        )
    return StorageError(f"cannot write {path}: {exc.strerror or exc}")


class _Attempt:
    """One request for one product."""

    def __init__(
        self,
        product: Downloadable,
        context: TransferContext,
        expected: Expected,
        url: str,
        *,
        allowance: int,
        slot: _HeldSlot | None = None,
    ) -> None:
        self.product = product
        self.context = context
        #: What the bytes must be; for a product of unknown size, the size the download
        #: host announced once it did (later attempts must agree with it).
        self.expected = expected
        self.url = url
        #: Bytes this attempt may fetch before the product's budget is spent.
        self.allowance = allowance
        self.part = context.layout.partial(product.file_name)
        self.final = context.layout.finished(product.file_name)
        self.received = 0
        self.token: str | None = None
        #: The governor slot; the retry loop may keep it for the next attempt.
        self.slot = slot or _HeldSlot(context.governor, context.stop)

    def _bearer(self) -> str:
        # A token request that waits between tries ends when the batch stops.
        self.token = self.context.tokens.access_token(stop=self.context.stop)
        return self.token

    def _size_bound(self) -> int:
        """The most bytes the product may have: its size, or the bound for unknown sizes."""
        return self.expected.size or self.context.limits.unknown_size_max_bytes

    def _partial_size(self) -> int:
        try:
            size = self.part.stat().st_size
        except FileNotFoundError:
            return 0
        if size > self._size_bound():
            self.discard()
            return 0
        return size

    def discard(self) -> None:
        """Delete the partial file (it cannot be trusted any more)."""
        with contextlib.suppress(FileNotFoundError):
            self.part.unlink()

    def run(self, attempt_number: int) -> str:
        """Fetch (the rest of) the product; return how it was verified."""
        context = self.context
        offset = self._partial_size()
        # The archive is already compressed, and only its own bytes can be checked against
        # the catalogue and resumed by offset: ask for them as they are.
        headers = {"Accept-Encoding": "identity"}
        if offset:
            headers["Range"] = f"bytes={offset}-"
        try:
            # On an error the slot stays held: the retry loop keeps it for a resume that
            # starts at once and gives it back otherwise.
            self.slot.take()
            try:
                # No deadline for the whole answer: a body may rightly take hours, and
                # the minimum transfer rate guards it.
                response = context.transport.request(
                    "GET",
                    self.url,
                    bearer=self._bearer,
                    headers=headers,
                    stream=True,
                    whole_answer_deadline=False,
                )
            except ServiceError as exc:  # no answer at all: refused, reset, DNS, TLS
                if exc.transient:
                    raise _TransientError(str(exc)) from None
                raise TransferError(f"{self.product.name}: {exc}") from None
            with response:
                verifier = self._receive(response, offset, attempt_number)
        except StoppedError:
            raise _Stopped from None
        verified_by = None
        if verifier.expected.algorithm and verifier.expected.digest:
            # The digest is already computed: judged on the slot, a corrupt body is
            # fetched again on it at once, before another product can take it.
            verified_by = self._judge(verifier)
        # The connection slot is free again: the local work (fsync, checks, move) no longer
        # holds up the next download (a 100 MB fsync takes ~0.1 s of a 20 MB/s slot).
        self.slot.release()
        return self._finish(verifier, verified_by)

    def _receive(
        self, response: requests.Response, offset: int, attempt_number: int
    ) -> StreamVerifier:
        """Write the response body to the part file; return its verifier, ready to judge."""
        status = response.status_code
        if status == 416:
            return self._unsatisfiable(response, offset)
        if status not in (200, 206):
            self._raise_for_status(response)
        encoding = _content_encoding(response)
        if encoding:
            self._check_encoding(encoding, status)
        if status == 200 and encoding:
            # A server (or proxy) that compresses anyway: the lengths in the headers are
            # those of the compressed body. The decoded bytes must be the archive, which
            # the size bound and the checksum judge.
            offset = 0
            length = total = 0
        elif status == 200:
            if offset:
                log.info("%s: server ignored Range; starting again from 0", self.product.name)
            offset = 0
            length = declared_length(response.headers) or 0
            total = length
        else:
            content_range = _parse_content_range(response.headers.get("Content-Range"))
            if content_range is None or content_range[0] != offset:
                self.discard()
                raise _TransientError(
                    f"server resumed at the wrong offset ({response.headers.get('Content-Range')!r}"
                    f" for {offset}); starting again from 0"
                )
            total = content_range[2]
            length = content_range[1] - content_range[0] + 1
        if self.expected.size and total and total != self.expected.size:
            self.discard()
            raise IntegrityError(
                f"{self.product.name}: the download host offers {total} bytes, "
                f"the catalogue says {self.expected.size}"
            )
        if total > self._size_bound():
            self.discard()
            raise IntegrityError(
                f"{self.product.name}: the download host offers {total} bytes, more than the "
                f"{self._size_bound()} accepted for a product of unknown size"
            )
        if not self.expected.size and total:
            self.expected = dataclasses.replace(self.expected, size=total)
        expected = self.expected
        verifier = StreamVerifier(expected)
        if offset:
            verifier.feed_file_prefix(self.part, offset)
        self.context.progress(
            ProductStarted(self.product.name, expected.size or total, offset, attempt_number)
        )
        # Whatever the headers say (a chunked body has no length at all), the body may not
        # take the file past the size the product has.
        if not self._guarded_stream(response, verifier, offset, length):
            self.discard()
            bound = self._size_bound()
            if self.product.size:
                said = f"the {bound} bytes the catalogue says"
            elif total:
                said = f"the {bound} bytes it announced"
            else:
                said = f"the {bound} bytes accepted for a product of unknown size"
            raise IntegrityError(f"{self.product.name}: the download host sent more than {said}")
        return verifier

    def _guarded_stream(
        self, response: requests.Response, verifier: StreamVerifier, offset: int, length: int
    ) -> bool:
        """Stream the body under the minimum-rate guard; ``False`` if it was too long."""
        limits = self.context.limits
        clock = self.context.clock
        rate: MinimumRate | None = None
        watchdog: Watchdog | None = None
        if limits.min_rate_bytes_per_s:
            rate = MinimumRate(
                bytes_per_s=limits.min_rate_bytes_per_s,
                window_s=limits.min_rate_window_s,
                now=clock(),
            )
            watchdog = Watchdog(
                rate, lambda: self.received, _connection_socket(response), clock, self.context.stop
            )
        try:
            with watchdog or contextlib.nullcontext():
                fits = self._stream(
                    response,
                    verifier,
                    append=bool(offset),
                    room=self._size_bound() - offset,
                    rate=rate,
                    shared=self._share(response, offset, length),
                )
                if fits and length and self.received != length:
                    raise _TransientError(
                        f"connection closed after {self.received} of {length} bytes"
                    )
        except _TransientError:
            if self.context.stop.is_set():
                raise _Stopped from None
            if rate is not None and watchdog is not None and watchdog.tripped:
                raise _TransientError(
                    f"too slow: {rate.describe()} (limits.min_rate_bytes_per_s = "
                    f"{limits.min_rate_bytes_per_s:g}); resuming"
                ) from None
            raise
        return fits

    def _share(self, response: requests.Response, offset: int, length: int) -> Shared | None:
        """Offer the rest of this body to helpers, when it is the plain rest of the product."""
        board = self.context.board
        size = self.expected.size
        if board is None or board.refused or not size or _content_encoding(response):
            return None
        # Only a host that says it serves ranges (or just did) is asked for one.
        ranges = "bytes" in response.headers.get("Accept-Ranges", "").lower()
        if not ranges and response.status_code != 206:
            return None
        if length != size - offset or size - offset < 2 * board.min_piece:
            return None
        return board.register(self.url, self.product.id, self.product.name, size, offset, self.part)

    def _stream(
        self,
        response: requests.Response,
        verifier: StreamVerifier,
        *,
        append: bool,
        room: int,
        rate: MinimumRate | None = None,
        shared: Shared | None = None,
    ) -> bool:
        """Write the body to the part file, at most ``room`` bytes of it.

        With ``rate``, reads are sized by it and reported to it. With ``shared``, helpers
        may take the end of the body: the read stops where their ranges begin, and their
        pieces are appended in order (:mod:`~sentinel_fetch.downloads.pieces`).

        Returns:
            ``False`` if the body had more than ``room`` bytes (nothing past them is
            written; the byte that shows it is read but never kept).
        """
        context = self.context
        fits = True
        unreported = 0
        read = _body_reader(response, context.limits.chunk_size_bytes)
        try:
            writer = PartWriter(
                self.part,
                start=self.part.stat().st_size if append else 0,
                buffer_size=context.limits.chunk_size_bytes,
                direct=context.limits.direct_io,
            )
        except OSError as exc:
            if shared is not None and context.board is not None:
                context.board.unregister(shared)
            raise _storage_error(exc, self.part) from None
        try:
            with writer, _owning(shared, context.board):
                while True:
                    try:
                        view = writer.buffer()
                    except OSError as exc:
                        raise _storage_error(exc, self.part) from None
                    if self.received >= room:
                        fits = not _body_continues(read)
                        break
                    budget = self.allowance - self.received
                    if budget <= 0:
                        raise _BudgetSpentError(
                            f"stopped at the byte budget after {self.received} bytes"
                        )
                    size = min(len(view), room - self.received, budget)
                    if rate is not None:
                        size = rate.read_size(size)
                        began = context.clock()
                    if shared is not None:
                        size = shared.reserve(shared.owner, size)
                        if not size:  # helpers have the rest
                            self._join(shared, response, writer, verifier)
                            break
                    view = view[:size]
                    # Network errors and disk errors are told apart here: both can be
                    # OSErrors (a connection reset is one), but only one is worth a retry.
                    try:
                        count = read(view)
                    except _NETWORK_ERRORS as exc:
                        raise _TransientError(
                            f"transfer interrupted: {type(exc).__name__}"
                        ) from None
                    if not count:
                        break
                    if rate is not None:
                        rate.read_done(size=count, duration_s=context.clock() - began)
                    verifier.update(view[:count])
                    try:
                        writer.commit(count)
                    except OSError as exc:
                        raise _storage_error(exc, self.part) from None
                    self.received += count
                    if shared is not None:
                        shared.advance(shared.owner, count)
                    if context.stop.is_set():  # after the commit: received bytes are kept
                        raise _Stopped
                    unreported += count
                    if unreported >= _PROGRESS_STEP_BYTES:
                        context.progress(BytesReceived(self.product.name, unreported))
                        unreported = 0
        except OSError as exc:  # raised while closing: the last writes failed
            raise _storage_error(exc, self.part) from None
        finally:
            if unreported:
                context.progress(BytesReceived(self.product.name, unreported))
        return fits

    def _join(
        self,
        shared: Shared,
        response: requests.Response,
        writer: PartWriter,
        verifier: StreamVerifier,
    ) -> None:
        """Append the helpers' pieces in order; a piece that ended early ends the attempt.

        The owner's connection is closed (its request asked for the whole rest) and its
        slot given back first: waiting for a helper needs no connection.
        """
        shared.finish(shared.owner)
        response.close()
        self.slot.release()
        piece = shared.next_after(shared.owner)
        while piece is not None:
            while not piece.finished.wait(0.25):
                if self.context.stop.is_set():
                    raise _Stopped
            self._append(piece, writer, verifier)
            if piece.failed:
                raise _TransientError(
                    f"a helping connection ended at byte {piece.position} of {piece.end}; "
                    "resuming from there"
                )
            piece = shared.next_after(piece)

    def _append(self, piece: Piece, writer: PartWriter, verifier: StreamVerifier) -> None:
        """Copy a helper's piece onto the part file, hashing it in order."""
        left = piece.position - piece.start
        if not left or piece.path is None:
            return
        try:
            with piece.path.open("rb") as source:
                while left > 0:
                    view = writer.buffer()[:left]
                    count = source.readinto(view)
                    if not count:
                        raise OSError(errno.EIO, f"{piece.path.name} is shorter than received")
                    verifier.update(view[:count])
                    writer.commit(count)
                    self.received += count
                    left -= count
        except OSError as exc:
            raise _storage_error(exc, self.part) from None
        discard(piece)

    def _judge(self, verifier: StreamVerifier) -> str:
        """Judge the part file; a bad one is deleted."""
        try:
            return verifier.verify(self.product.name, self.part)
        except IntegrityError:
            self.discard()
            raise

    def _finish(self, verifier: StreamVerifier, verified_by: str | None = None) -> str:
        """Judge the part file (unless judged already); if good, make it durable and move it
        into Finish."""
        if verified_by is None:
            verified_by = self._judge(verifier)
        try:
            with self.part.open("rb") as handle:
                os.fsync(handle.fileno())
        except OSError as exc:
            raise _storage_error(exc, self.part) from None
        try:
            os.replace(self.part, self.final)
            _fsync_dir(self.final.parent)
        except OSError as exc:
            raise _storage_error(exc, self.final) from None
        return verified_by

    def _check_encoding(self, encoding: str, status: int) -> None:
        """Refuse a compressed answer that cannot become the archive's bytes."""
        if encoding not in urllib3.response.HTTPResponse.CONTENT_DECODERS:
            raise IntegrityError(
                f"{self.product.name}: the download host sent the archive encoded as "
                f"{encoding!r}, which cannot be decoded, although identity was asked for"
            )
        if status == 206:
            # A range of the compressed representation cannot extend decoded bytes.
            self.discard()
            raise _TransientError(
                f"the download host compressed a partial answer ({encoding}); starting again from 0"
            )
        log.info(
            "%s: the download host compressed the archive (%s) although identity was asked "
            "for; decoding it",
            self.product.name,
            encoding,
        )

    def _unsatisfiable(self, response: requests.Response, offset: int) -> StreamVerifier:
        content_range = _parse_content_range(
            response.headers.get("Content-Range", "").replace("*", "0-0")
        )
        total = content_range[2] if content_range else 0
        if offset and (total == offset or (not total and self.expected.size == offset)):
            # The partial file already holds every byte; the checksum decides.
            verifier = StreamVerifier(
                self.expected
                if self.expected.size
                else dataclasses.replace(self.expected, size=offset)
            )
            verifier.feed_file_prefix(self.part, offset)
            return verifier
        self.discard()
        raise _TransientError("server refused the resume range; starting again from 0")

    def _raise_for_status(self, response: requests.Response) -> None:
        error = error_from_response(response, DownloadServiceError)
        if error.status == 401 and not self.context.transport.may_receive_token(response.url):
            # A redirect led away from the CDSE hosts and that host wants a token: it is
            # not getting ours. Retrying cannot change that.
            raise TransferError(
                f"{self.product.name}: redirected to {redact_url(response.url.split('?')[0])}, "
                "which asks for a token; the token is only sent to the configured CDSE hosts"
            )
        if error.status == 401 and error.code in (None, "DAT-ZIP-109", "DAT-ZIP-604"):
            if self.token is not None:
                self.context.tokens.invalidate(self.token)
            raise _TokenRejectedError(str(error))
        if error.status == 429:
            self.context.governor.throttled(
                error.retry_after_s, account_limit=session_limit(str(error))
            )
            raise _TransientError(str(error), retry_after_s=error.retry_after_s)
        if error.transient:
            raise _TransientError(str(error), retry_after_s=error.retry_after_s)
        if error.status == 401:
            raise AuthError(f"the download host refuses this account's token: {error}")
        if error.status == 404:
            raise TransferError(f"{self.product.name}: not found on the download host ({error})")
        if error.status in (403, 409, 410, 422) and "offline" in str(error).lower():
            raise ProductOfflineError(
                f"{self.product.name} is offline; order it in the CDSE Data Workspace first"
            )
        raise TransferError(f"{self.product.name}: {error}")


@contextlib.contextmanager
def _owning(shared: Shared | None, board: Board | None) -> Iterator[None]:
    """While the owner streams: on the way out, helpers stop and their pieces go."""
    try:
        yield
    finally:
        if shared is not None and board is not None:
            board.unregister(shared)


def help_product(shared: Shared, piece: Piece, context: TransferContext, board: Board) -> None:
    """Fetch a helper's piece of a product into its own file, on a slot the caller holds.

    Whatever happens, the piece is finished: complete, or failed where it stopped (the
    owner then resumes from there). A 429 is reported to the governor as any other; an
    answer that is not the range asked for ends the helping for the batch.
    """
    try:
        _fetch_piece(shared, piece, context, board)
    except (OSError, requests.exceptions.RequestException, urllib3.exceptions.HTTPError) as exc:
        log.info("%s: helping connection ended: %s", shared.name, type(exc).__name__)
    except (SentinelFetchError, StoppedError) as exc:
        log.info("%s: helping connection ended: %s", shared.name, exc)
    finally:
        shared.finish(piece)
        if shared.closed:
            discard(piece)


def _fetch_piece(shared: Shared, piece: Piece, context: TransferContext, board: Board) -> None:
    assert piece.path is not None
    limits = context.limits
    with PartWriter(
        piece.path, start=0, buffer_size=limits.chunk_size_bytes, direct=limits.direct_io
    ) as writer:
        while not (shared.closed or context.stop.is_set()):
            span = shared.reserve_request(piece, HELPER_REQUEST_BYTES)
            if not span or not _fetch_span(shared, piece, span, writer, context, board):
                return


def _fetch_span(
    shared: Shared,
    piece: Piece,
    span: int,
    writer: PartWriter,
    context: TransferContext,
    board: Board,
) -> bool:
    """One closed range request of a helper, read to its end; ``False`` if it failed."""
    first = piece.position
    headers = {"Accept-Encoding": "identity", "Range": f"bytes={first}-{first + span - 1}"}
    response = context.transport.request(
        "GET",
        shared.url,
        bearer=lambda: context.tokens.access_token(stop=context.stop),
        headers=headers,
        stream=True,
        whole_answer_deadline=False,
    )
    with response:
        if response.status_code != 206:
            if response.status_code == 429:
                error = error_from_response(response, DownloadServiceError)
                context.governor.throttled(
                    error.retry_after_s, account_limit=session_limit(str(error))
                )
            elif response.status_code in (200, 416):
                board.refuse()
            log.info("%s: a range request got HTTP %d", shared.name, response.status_code)
            return False
        content_range = _parse_content_range(response.headers.get("Content-Range"))
        if _content_encoding(response) or content_range != (first, first + span - 1, shared.size):
            board.refuse()
            log.info("%s: a range answer does not match its request", shared.name)
            return False
        read = _body_reader(response, context.limits.chunk_size_bytes)
        left = span
        unreported = 0
        try:
            while left and not (shared.closed or context.stop.is_set()):
                view = writer.buffer()
                count = read(view[: min(len(view), left)])
                if not count:
                    return False
                writer.commit(count)
                shared.advance(piece, count)
                left -= count
                unreported += count
                if unreported >= _PROGRESS_STEP_BYTES:
                    context.progress(BytesReceived(shared.name, unreported))
                    unreported = 0
        finally:
            if unreported:
                context.progress(BytesReceived(shared.name, unreported))
        # Read to its end, the connection goes back to the pool for the next request.
        return not left and not _body_continues(read)


def _budget(limits: Limits, expected: Expected) -> ProductBudget:
    """What one product may cost in one run, from the limits and its (known) size."""
    return ProductBudget(
        max_in_a_row=limits.max_attempts,
        max_total=limits.max_total_attempts,
        max_bytes=fetch_budget_bytes(
            expected.size,
            multiple=limits.max_fetched_size_multiple,
            unknown_size_bytes=limits.unknown_size_max_bytes,
        ),
    )


def download_product(
    product: Downloadable,
    context: TransferContext,
    *,
    url: str | None = None,
    expected: Expected | None = None,
) -> TransferOutcome:
    """Download one product into the finish folder, verified, with retries.

    ``url`` and ``expected`` default to the product's archive on the download host and
    the catalogue's size and checksum; a single file of a product (a band) passes its
    own Nodes URL and its own size and checksum, and gets the same policy.

    Every product is bounded by a :class:`~sentinel_fetch.retry.ProductBudget`: attempts
    in a row without progress, attempts in all, and bytes fetched in all (a multiple of
    its size), whatever mix of failures it meets. An attempt that received bytes is
    resumed at once, without backoff, but still counts against those bounds.

    This is the one loop that is not :func:`~sentinel_fetch.retry.retrying`, because a
    product's attempts are not interchangeable as a page's or a token's are: one that
    made progress is not a failure in a row and resumes without a wait, a refused token
    is refreshed and resumed at once, and bytes are budgeted as well as attempts (CDSE
    counts every byte against the account's quota). Its waits are the same pieces:
    the settings' :class:`~sentinel_fetch.retry.RetryPolicy` backoff (capped by
    ``backoff_max_s``) and :func:`~sentinel_fetch.retry.pause` on the batch's stop event.

    Raises:
        TransferError: the product failed for good (after retries, or a permanent error).
        StorageError: the disk refused; the batch should stop.
        AuthError: the account cannot log in or cannot download.
        ProxyError: the proxy is not running or refuses our credentials.
        StoppedError: the job is stopping (the partial file is kept).
    """
    if url is None:
        url = context.transport.settings.endpoints.product_url(product.id)
    if expected is None:
        expected = Expected.from_catalogue(product.size, product.checksums)
    slot = _HeldSlot(context.governor, context.stop)
    try:
        return _attempts(product, context, url, expected, slot)
    finally:
        slot.release()


def _attempts(
    product: Downloadable,
    context: TransferContext,
    url: str,
    expected: Expected,
    slot: _HeldSlot,
) -> TransferOutcome:
    """The retry loop of :func:`download_product`; ``slot`` is released by the caller."""
    limits = context.limits
    backoff = RetryPolicy.from_limits(limits).backoff
    attempts_without_progress = 0
    attempts = 0
    auth_retries = 0
    total_received = 0
    last_reason = ""
    budget = _budget(limits, expected)
    while True:
        attempts += 1
        attempt = _Attempt(
            product, context, expected, url, allowance=budget.max_bytes - total_received, slot=slot
        )
        started = time.monotonic()
        try:
            verified_by = attempt.run(attempts)
        except (_Stopped, StoppedError):
            stopped = StoppedError()
            stopped.bytes_received = total_received + attempt.received
            raise stopped from None
        except (_TokenRejectedError, _TransientError, _BudgetSpentError, IntegrityError) as exc:
            total_received += attempt.received
            if attempt.expected != expected:  # the size of a product the catalogue did not know
                expected = attempt.expected
                budget = _budget(limits, expected)
            if isinstance(exc, _TokenRejectedError):
                auth_retries += 1
                if auth_retries > _MAX_AUTH_RETRIES:
                    raise AuthError(
                        f"{product.name}: the download host keeps refusing fresh tokens ({exc})"
                    ) from None
            else:
                auth_retries = 0
            progressed = attempt.received > 0 and not isinstance(exc, IntegrityError)
            if not isinstance(exc, _TokenRejectedError):
                attempts_without_progress = 0 if progressed else attempts_without_progress + 1
            if not isinstance(exc, _BudgetSpentError) or not last_reason:
                last_reason = str(exc)
            why = budget.exhausted(
                attempts=attempts,
                attempts_without_progress=attempts_without_progress,
                bytes_fetched=total_received,
            )
            if why is not None:
                failure = TransferError(
                    f"{product.name}: gave up after {attempts} attempts / {total_received} "
                    f"bytes ({why}): {last_reason}"
                )
                failure.attempts = attempts
                failure.bytes_received = total_received
                raise failure from None
            if isinstance(exc, _TokenRejectedError):
                # A fresh token is one request away: refresh and resume at once.
                log.info("%s: token refused (%s); refreshing and resuming", product.name, exc)
                slot.keep_or_release(True)
                continue
            retry_after = exc.retry_after_s if isinstance(exc, _TransientError) else None
            # A body that arrived whole but wrong is fetched again at once: the host was
            # serving at full speed, nothing asks for a pause. Attempts in a row and the
            # byte budget still bound a product that is corrupt every time.
            refetch = isinstance(exc, IntegrityError) and attempt.received > 0
            delay = (
                0.0
                if (progressed or refetch) and retry_after is None
                else backoff.delay_s(attempts_without_progress, retry_after_s=retry_after)
            )
            slot.keep_or_release(delay == 0.0)
            log.info("%s: %s; retrying in %.1f s", product.name, exc, delay)
            context.progress(ProductWaiting(product.name, str(exc), delay, attempts))
            if (delay and context.wait(delay)) or context.stop.is_set():
                stopped = StoppedError()
                stopped.bytes_received = total_received
                raise stopped from None
            continue
        except TransferError as exc:  # permanent for this product (404, 403, offline...)
            exc.attempts = attempts
            exc.bytes_received = total_received + attempt.received
            raise
        total_received += attempt.received
        log.info(
            "%s: verified (%s) in %.1f s", product.name, verified_by, time.monotonic() - started
        )
        return TransferOutcome(attempt.final, total_received, attempts, verified_by)
