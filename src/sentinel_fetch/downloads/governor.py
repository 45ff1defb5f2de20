"""One governor for every request to the download host.

CDSE allows a free account 4 concurrent connections and answers the fifth with 429
``DAT-ZIP-100``. Every request to the download host (HEAD, GET, node fetches) takes a
slot here first, so the tool never exceeds the limit it was given. When CDSE still says
429 (another tool or browser tab uses the same account, or the account's limit is lower
than configured), the governor steps down one stream and, after a short quiet interval,
probes back up one stream at a time. A level that answers 429 again when probed is
probed ever more rarely (the interval grows fourfold, up to a bound), so a transient 429
costs a few seconds while a persistent lower limit costs a handful of 429s, not one per
interval. A 429 that names the account's limit ("Max session number 3 exceeded") makes
that number the ceiling at once.

The decisions (:meth:`Governor.throttled` and the probes) read only the injected clock,
so they are tested without sleeping.
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from sentinel_fetch.errors import StoppedError

__all__ = ["Governor", "StoppedError", "session_limit"]

# "Max session number 4 exceeded": the CDSE Browser's and FAQ's wording; the DAT-ZIP body
# usually has no number. At most four digits: a hostile number cannot raise anything (it
# only ever lowers the ceiling), but it need not be parsed at any length either.
_SESSION_LIMIT = re.compile(r"max session number\s+(\d{1,4})\b", re.IGNORECASE)

# Each probe of a level that answered 429 again waits this many times longer.
_PROBE_GROWTH = 4.0


def session_limit(message: str) -> int | None:
    """The account's stream limit a 429 message names, or ``None`` when it names none.

    Example:
        >>> session_limit("Request failed with status code 429: Max session number 3 exceeded.")
        3
        >>> session_limit("Max session number exceeded") is None
        True
        >>> session_limit("Max session number 0 exceeded") is None
        True
    """
    match = _SESSION_LIMIT.search(message[:2000])
    if match is None:
        return None
    number = int(match.group(1))
    return number if number >= 1 else None


class Governor:
    """A counting limit on open download-host requests that adapts to 429s.

    Args:
        limit: the most requests open at once (the configured connection quota).
        probe_after_s: the quiet interval after a 429 before one more stream is tried.
        probe_max_s: the longest interval between probes of a level that keeps
            answering 429 (the first is ``probe_after_s``, each next one four times
            longer).
        clock: monotonic clock.
        max_pause_s: the longest pause a ``Retry-After`` may impose on new requests (the
            configured backoff maximum: a header must not park every worker for longer).
    """

    def __init__(
        self,
        limit: int,
        *,
        probe_after_s: float = 3.0,
        probe_max_s: float = 300.0,
        clock: Callable[[], float] = time.monotonic,
        max_pause_s: float = 120.0,
    ) -> None:
        if limit < 1:
            raise ValueError("limit must be at least 1")
        self.limit = limit
        self._probe_after_s = probe_after_s
        self._probe_max_s = max(probe_max_s, probe_after_s)
        self._max_pause_s = max_pause_s
        self._clock = clock
        self._cond = threading.Condition()
        self._in_use = 0
        #: Requests waiting for a slot (spare requests not counted).
        self._waiting = 0
        #: The highest level probing may reach: the limit, or the number a 429 named.
        self._ceiling = limit
        self._current = limit
        self._interval_s = probe_after_s
        self._probe_at = float("inf")
        #: A level reached by a probe and not yet confirmed by a quiet interval.
        self._probing = False
        self._confirm_at = float("inf")
        self._paused_until = 0.0
        self._last_reduction = float("-inf")
        #: Highest number of slots ever held at once.
        self.peak = 0
        #: Number of times the limit was lowered.
        self.reductions = 0
        #: Number of 429s reported.
        self.throttles = 0
        #: Number of times one more stream was tried.
        self.probes = 0

    @property
    def in_use(self) -> int:
        """Slots held right now."""
        with self._cond:
            return self._in_use

    @property
    def waiting(self) -> int:
        """Requests waiting for a slot now (spare ones not counted)."""
        with self._cond:
            return self._waiting

    @property
    def pause_remaining_s(self) -> float:
        """Seconds until new requests may start again after a ``Retry-After`` (0 if none)."""
        with self._cond:
            return max(0.0, self._paused_until - self._clock())

    @property
    def current_limit(self) -> int:
        """The limit in force now (lower than :attr:`limit` after recent 429s)."""
        with self._cond:
            self._advance_locked()
            return self._current

    @property
    def ceiling(self) -> int:
        """The highest limit probing may reach (lower than :attr:`limit` once a 429 named
        the account's own)."""
        with self._cond:
            return self._ceiling

    @property
    def probe_interval_s(self) -> float:
        """The quiet interval before the next probe."""
        with self._cond:
            return self._interval_s

    def _advance_locked(self) -> None:
        """Apply what the clock allows: confirm a probed level, or probe one higher."""
        now = self._clock()
        if self._probing and now >= self._confirm_at:
            # The probed level held for a whole quiet interval: whatever refused it is
            # gone, so the next 429 is a fresh one and is probed soon again.
            self._probing = False
            self._interval_s = self._probe_after_s
        if self._current < self._ceiling and now >= self._probe_at:
            self._current += 1
            self.probes += 1
            self._probing = True
            self._confirm_at = now + self._probe_after_s
            self._probe_at = (
                now + self._interval_s if self._current < self._ceiling else float("inf")
            )
            self._cond.notify_all()

    def throttled(
        self, retry_after_s: float | None = None, *, account_limit: int | None = None
    ) -> None:
        """Record a 429: lower the limit by one (not below 1) and pause new requests.

        A burst of 429s from parallel workers counts once: four workers refused at the
        same moment lower the limit by one, not to one. A 429 at a level a probe reached
        makes the next probe of it wait four times longer (up to ``probe_max_s``).

        Args:
            retry_after_s: the server's ``Retry-After``: no request starts before it has
                passed (capped at ``max_pause_s``), and no probe either.
            account_limit: the limit the 429's text named, if any: it becomes the
                ceiling (it never raises it).
        """
        with self._cond:
            now = self._clock()
            self.throttles += 1
            self._advance_locked()
            if account_limit is not None and 1 <= account_limit < self._ceiling:
                self._ceiling = account_limit
            burst_window_s = min(1.0, self._probe_after_s / 4)
            if self._current > self._ceiling:
                self._current = self._ceiling
                self.reductions += 1
                self._last_reduction = now
            elif self._current > 1 and now - self._last_reduction >= burst_window_s:
                if self._probing:
                    self._interval_s = min(self._interval_s * _PROBE_GROWTH, self._probe_max_s)
                self._current -= 1
                self.reductions += 1
                self._last_reduction = now
            self._probing = False
            self._confirm_at = float("inf")
            wait_s = self._interval_s
            if retry_after_s:
                pause_s = min(retry_after_s, self._max_pause_s)
                self._paused_until = max(self._paused_until, now + pause_s)
                wait_s = max(wait_s, pause_s)
            self._probe_at = now + wait_s if self._current < self._ceiling else float("inf")

    def may_keep(self) -> bool:
        """Whether a slot just used may go on to the next request without a new wait.

        A cut connection resumes on its own slot, so a product waiting for one cannot
        take it in between; not while slots in use exceed the limit in force (a 429
        lowered it since) or a ``Retry-After`` pause runs: then the slot goes back.
        """
        with self._cond:
            self._advance_locked()
            return self._in_use <= self._current and self._clock() >= self._paused_until

    @contextmanager
    def slot(self, stop: threading.Event | None = None, *, spare: bool = False) -> Iterator[None]:
        """Hold one slot for the duration of a request.

        Args:
            stop: ends the wait.
            spare: take only a slot nobody else waits for (a connection that helps
                another product's transfer gives way to a product's own request).

        Raises:
            StoppedError: ``stop`` was set while waiting.
        """
        with self._cond:
            if not spare:
                self._waiting += 1
            try:
                self._wait_locked(stop, spare)
            finally:
                if not spare:
                    self._waiting -= 1
            self._in_use += 1
            self.peak = max(self.peak, self._in_use)
        try:
            yield
        finally:
            with self._cond:
                self._in_use -= 1
                self._cond.notify_all()

    def _wait_locked(self, stop: threading.Event | None, spare: bool) -> None:
        """Wait until a slot may be taken (a spare one: only if nobody else waits)."""
        while True:
            if stop is not None and stop.is_set():
                raise StoppedError
            self._advance_locked()
            now = self._clock()
            free = now >= self._paused_until and self._in_use < self._current
            if free and not (spare and self._waiting):
                return
            # Wake up for time-based changes (pause end, probe) and for stop requests.
            wait_s = 0.25
            if now < self._paused_until:
                wait_s = min(wait_s, self._paused_until - now)
            if self._probe_at > now:
                wait_s = min(wait_s, self._probe_at - now)
            self._cond.wait(max(wait_s, 0.01))
