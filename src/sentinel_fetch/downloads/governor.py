"""One governor for every request to the download host.

CDSE allows a free account 4 concurrent connections and answers the fifth with 429
``DAT-ZIP-100``. Every request to the download host (HEAD, GET, node fetches) takes a
slot here first, so the tool never exceeds the limit it was given. When CDSE still says
429 (another tool or browser tab uses the same account), the limit is lowered for a
cool-down period and then restored one step at a time.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from sentinel_fetch.errors import StoppedError

__all__ = ["Governor", "StoppedError"]


class Governor:
    """A counting limit on open download-host requests that adapts to 429s.

    Args:
        limit: the most requests open at once (the account's connection quota).
        cooldown_s: how long one reduction lasts after a 429.
        clock: monotonic clock.
        max_pause_s: the longest pause a ``Retry-After`` may impose on new requests (the
            configured backoff maximum: a header must not park every worker for longer).
    """

    def __init__(
        self,
        limit: int,
        *,
        cooldown_s: float = 60.0,
        clock: Callable[[], float] = time.monotonic,
        max_pause_s: float = 120.0,
    ) -> None:
        if limit < 1:
            raise ValueError("limit must be at least 1")
        self.limit = limit
        self._cooldown_s = cooldown_s
        self._max_pause_s = max_pause_s
        self._clock = clock
        self._cond = threading.Condition()
        self._in_use = 0
        self._reduction = 0
        self._restore_at = 0.0
        self._paused_until = 0.0
        self._last_reduction = float("-inf")
        #: Highest number of slots ever held at once.
        self.peak = 0
        #: Number of times the limit was lowered.
        self.reductions = 0

    @property
    def in_use(self) -> int:
        """Slots held right now."""
        with self._cond:
            return self._in_use

    @property
    def pause_remaining_s(self) -> float:
        """Seconds until new requests may start again after a ``Retry-After`` (0 if none)."""
        with self._cond:
            return max(0.0, self._paused_until - self._clock())

    @property
    def current_limit(self) -> int:
        """The limit in force now (lower than :attr:`limit` after recent 429s)."""
        with self._cond:
            self._restore_locked()
            return self.limit - self._reduction

    def _restore_locked(self) -> None:
        now = self._clock()
        while self._reduction and now >= self._restore_at:
            self._reduction -= 1
            self._restore_at += self._cooldown_s
            self._cond.notify_all()

    def throttled(self, retry_after_s: float | None = None) -> None:
        """Record a 429: lower the limit by one (not below 1) and pause new requests.

        A burst of 429s from parallel workers counts once per cool-down step: four workers
        refused at the same moment lower the limit by one, not to one.
        """
        with self._cond:
            now = self._clock()
            burst_window_s = min(1.0, self._cooldown_s / 4)
            if self._reduction < self.limit - 1 and now - self._last_reduction >= burst_window_s:
                self._reduction += 1
                self.reductions += 1
                self._last_reduction = now
            self._restore_at = now + self._cooldown_s
            if retry_after_s:
                pause_s = min(retry_after_s, self._max_pause_s)
                self._paused_until = max(self._paused_until, now + pause_s)

    @contextmanager
    def slot(self, stop: threading.Event | None = None) -> Iterator[None]:
        """Hold one slot for the duration of a request.

        Raises:
            StoppedError: ``stop`` was set while waiting.
        """
        with self._cond:
            while True:
                if stop is not None and stop.is_set():
                    raise StoppedError
                self._restore_locked()
                now = self._clock()
                if now >= self._paused_until and self._in_use < self.limit - self._reduction:
                    break
                # Wake up for time-based changes (pause end, restore) and for stop requests.
                wait_s = 0.25
                if now < self._paused_until:
                    wait_s = min(wait_s, self._paused_until - now)
                self._cond.wait(max(wait_s, 0.01))
            self._in_use += 1
            self.peak = max(self.peak, self._in_use)
        try:
            yield
        finally:
            with self._cond:
                self._in_use -= 1
                self._cond.notify()
