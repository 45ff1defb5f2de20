"""Counters the tests assert on: logins, sessions, concurrent streams, statuses, bytes.

Clients are judged by what the emulator saw: a client that logs in once per download
shows up in :attr:`Stats.logins`, one that opens a fifth stream in
:attr:`Stats.peak_streams`, one that leaks its token to a foreign host in the request
events (``authorization``). Every method is thread-safe: each connection runs in its
own thread.
"""

from __future__ import annotations

import threading
import time
from collections import Counter, deque
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

__all__ = ["RequestEvent", "Stats"]


@dataclass(frozen=True)
class RequestEvent:
    """One request as the emulator answered it.

    Attributes:
        time: wall-clock time the answer finished (``time.time()``).
        host: ``identity``, ``catalogue``, ``download``, ``zipper``, ``stac``,
            ``quicklook`` or ``quicklook-files``.
        method: HTTP method.
        path: URL path (percent-decoded), without the query.
        status: status sent (0 if the connection died before any status was sent).
        user: account the request was made for, when known (token or form).
        range: the ``Range`` header as received, or ``None``.
        authorization: whether an ``Authorization`` header was present.
        bytes_sent: body bytes handed to the socket.
        product_id: product the request concerns, when the path names one.
        query: raw query string (a token passed as ``?token=`` is masked).
    """

    time: float
    host: str
    method: str
    path: str
    status: int
    user: str | None = None
    range: str | None = None
    authorization: bool = False
    bytes_sent: int = 0
    product_id: str | None = None
    query: str = ""


class Stats:
    """Thread-safe counters and a bounded request log.

    Args:
        max_events: how many :class:`RequestEvent` to keep (oldest dropped first).
    """

    def __init__(self, max_events: int = 10_000) -> None:
        self._lock = threading.Lock()
        self._events: deque[RequestEvent] = deque(maxlen=max_events)
        self._logins: Counter[str] = Counter()
        self._failed_logins: Counter[str] = Counter()
        self._refreshes: Counter[str] = Counter()
        self._requests: Counter[tuple[str, int]] = Counter()
        self._bytes: Counter[str] = Counter()
        self._file_bytes: Counter[tuple[str, str]] = Counter()
        self._current_streams: Counter[str] = Counter()
        self._peak_streams: Counter[str] = Counter()
        self._current_total = 0
        self._peak_total = 0
        self._throttled = 0
        self._range_requests = 0
        self._in_flight: Counter[str] = Counter()
        self._peak_in_flight: Counter[str] = Counter()
        self._session_counter: Callable[[], dict[str, int]] | None = None

    def bind_sessions(self, counter: Callable[[], dict[str, int]]) -> None:
        """Let :meth:`active_sessions` ask the identity host, which owns the sessions."""
        self._session_counter = counter

    # Recording (called by the hosts) -------------------------------------------------

    def record_login(self, user: str) -> None:
        """A password grant succeeded (one new session)."""
        with self._lock:
            self._logins[user] += 1

    def record_failed_login(self, user: str) -> None:
        """A password grant was refused (bad password, TOTP, session limit...)."""
        with self._lock:
            self._failed_logins[user] += 1

    def record_refresh(self, user: str) -> None:
        """A refresh grant succeeded."""
        with self._lock:
            self._refreshes[user] += 1

    def stream_started(self, user: str) -> None:
        """A product stream began (it now counts against the user's limit)."""
        with self._lock:
            self._current_streams[user] += 1
            self._current_total += 1
            self._peak_streams[user] = max(self._peak_streams[user], self._current_streams[user])
            self._peak_total = max(self._peak_total, self._current_total)

    def stream_finished(self, user: str) -> None:
        """A product stream ended (last byte sent, or the connection died)."""
        with self._lock:
            self._current_streams[user] -= 1
            if self._current_streams[user] <= 0:
                del self._current_streams[user]
            self._current_total -= 1

    def request_started(self, host: str) -> None:
        """A request to ``host`` is being answered (from its dispatch to its last byte)."""
        with self._lock:
            self._in_flight[host] += 1
            self._peak_in_flight[host] = max(self._peak_in_flight[host], self._in_flight[host])

    def request_finished(self, host: str) -> None:
        """A request to ``host`` is answered (or its connection died)."""
        with self._lock:
            self._in_flight[host] -= 1

    def in_flight(self, host: str) -> int:
        """Requests to ``host`` being answered now."""
        with self._lock:
            return self._in_flight[host]

    def peak_in_flight(self, host: str) -> int:
        """The most requests to ``host`` answered at once since the last reset."""
        with self._lock:
            return self._peak_in_flight[host]

    def add_product_bytes(self, product_id: str, count: int, file_path: str | None = None) -> None:
        """``count`` more bytes of this product were handed to a socket.

        Args:
            product_id: the product.
            count: bytes.
            file_path: which file they belong to: a path inside the archive (Nodes),
                ``$value`` (the archive) or ``$zip`` (the native archive).
        """
        if count:
            with self._lock:
                self._bytes[product_id] += count
                if file_path is not None:
                    self._file_bytes[(product_id, file_path)] += count

    def add_file_bytes(self, product_id: str, file_path: str, count: int) -> None:
        """Bytes of one file sent outside the product streams (thumbnails)."""
        if count:
            with self._lock:
                self._file_bytes[(product_id, file_path)] += count

    def record_request(self, event: RequestEvent) -> None:
        """One answered request (the status counters and the log)."""
        with self._lock:
            self._events.append(event)
            self._requests[(event.host, event.status)] += 1
            if event.status == 429:
                self._throttled += 1
            if event.range is not None and event.host == "download":
                self._range_requests += 1

    # Reading (tests, admin endpoint) -------------------------------------------------

    @property
    def logins(self) -> dict[str, int]:
        """Successful password grants per user."""
        with self._lock:
            return dict(self._logins)

    @property
    def failed_logins(self) -> dict[str, int]:
        """Refused password grants per user (unknown users included)."""
        with self._lock:
            return dict(self._failed_logins)

    @property
    def refreshes(self) -> dict[str, int]:
        """Successful refresh grants per user."""
        with self._lock:
            return dict(self._refreshes)

    def active_sessions(self) -> dict[str, int]:
        """Sessions whose refresh window is still open, per user."""
        counter = self._session_counter
        return counter() if counter is not None else {}

    def current_streams(self, user: str | None = None) -> int:
        """Product streams open now, for one user or overall."""
        with self._lock:
            return self._current_total if user is None else self._current_streams[user]

    def peak_streams(self, user: str | None = None) -> int:
        """Most product streams open at once since the start (or :meth:`reset`)."""
        with self._lock:
            return self._peak_total if user is None else self._peak_streams[user]

    def requests(self, host: str | None = None, status: int | None = None) -> int:
        """How many requests were answered, optionally for one host and/or status."""
        with self._lock:
            return sum(
                count
                for (h, s), count in self._requests.items()
                if (host is None or h == host) and (status is None or s == status)
            )

    def bytes_served(self, product_id: str | None = None) -> int:
        """Product body bytes handed to sockets, for one product or overall."""
        with self._lock:
            if product_id is None:
                return sum(self._bytes.values())
            return self._bytes[product_id]

    def bytes_by_file(self, product_id: str | None = None) -> dict[str, dict[str, int]]:
        """Bytes sent per product and file: ``{product id: {file: bytes}}``.

        A file is a path inside the archive (a Nodes ``$value`` or a STAC asset href),
        ``$value`` for the whole archive or ``$zip`` for the native archive. So a test
        can assert exactly which files a band-level download fetched.
        """
        with self._lock:
            found: dict[str, dict[str, int]] = {}
            for (product, path), count in sorted(self._file_bytes.items()):
                if product_id is None or product == product_id:
                    found.setdefault(product, {})[path] = count
            return found

    def requests_by_host(self) -> dict[str, int]:
        """Answered requests per host (``identity``, ``catalogue``, ``download``, ``zipper``,
        ``stac``, ``quicklook``, ``quicklook-files``)."""
        with self._lock:
            totals: Counter[str] = Counter()
            for (host, _), count in self._requests.items():
                totals[host] += count
            return dict(sorted(totals.items()))

    @property
    def throttled(self) -> int:
        """429 answers sent by any host."""
        with self._lock:
            return self._throttled

    @property
    def range_requests(self) -> int:
        """Download-host requests that carried a ``Range`` header."""
        with self._lock:
            return self._range_requests

    def events(
        self, host: str | None = None, predicate: Callable[[RequestEvent], bool] | None = None
    ) -> list[RequestEvent]:
        """The logged requests, oldest first, optionally filtered."""
        with self._lock:
            selected = list(self._events)
        return [
            e
            for e in selected
            if (host is None or e.host == host) and (predicate is None or predicate(e))
        ]

    def wait_for(
        self, condition: Callable[[Stats], bool], timeout_s: float = 60.0, poll_s: float = 0.005
    ) -> bool:
        """Poll until ``condition(self)`` holds (tests synchronise on server state).

        The timeout only keeps a broken test from hanging: a condition that holds returns at
        once, so the default is generous enough for a machine whose cores are all busy.

        Returns:
            Whether the condition held before the timeout.
        """
        deadline = time.monotonic() + timeout_s
        while True:
            if condition(self):
                return True
            if time.monotonic() >= deadline:
                return False
            time.sleep(poll_s)

    def snapshot(self, events: int = 100) -> dict[str, Any]:
        """Everything as JSON-ready data (the admin endpoint's ``GET stats``).

        Args:
            events: how many of the most recent request events to include.
        """
        sessions = self.active_sessions()
        with self._lock:
            by_host: dict[str, dict[str, int]] = {}
            for (host, status), count in sorted(self._requests.items()):
                by_host.setdefault(host, {})[str(status)] = count
            recent = list(self._events)[-events:] if events > 0 else []
            return {
                "logins": dict(self._logins),
                "failed_logins": dict(self._failed_logins),
                "refreshes": dict(self._refreshes),
                "active_sessions": sessions,
                "streams": {
                    "current": self._current_total,
                    "peak": self._peak_total,
                    "current_by_user": dict(self._current_streams),
                    "peak_by_user": dict(self._peak_streams),
                },
                "requests": by_host,
                "bytes_served": dict(self._bytes),
                "bytes_by_file": {
                    f"{product}/{path}": count
                    for (product, path), count in sorted(self._file_bytes.items())
                },
                "throttled": self._throttled,
                "range_requests": self._range_requests,
                "in_flight": {
                    host: {"current": self._in_flight[host], "peak": peak}
                    for host, peak in sorted(self._peak_in_flight.items())
                },
                "events": [asdict(e) for e in recent],
            }

    def reset(self) -> None:
        """Forget everything; streams still open stay counted (peaks restart from them)."""
        with self._lock:
            self._events.clear()
            self._logins.clear()
            self._failed_logins.clear()
            self._refreshes.clear()
            self._requests.clear()
            self._bytes.clear()
            self._file_bytes.clear()
            self._peak_streams = Counter(self._current_streams)
            self._peak_total = self._current_total
            self._throttled = 0
            self._range_requests = 0
            self._peak_in_flight = Counter(+self._in_flight)
