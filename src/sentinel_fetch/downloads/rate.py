"""The minimum transfer rate: abandon a body that trickles, without slowing a fast one.

A read timeout bounds one read; a server that sends a byte a second keeps every read
alive, and a 1 MiB read (the size that makes transfers fast) then takes twelve days.
:class:`MinimumRate` decides, from a clock and the bytes received, when a transfer has
been too slow for a whole window; :class:`Watchdog` asks it every moment from a thread
of its own and, when it says so, shuts the connection's socket, which ends the read
that is blocked on it.

Progress is only seen when a read returns (a read waits until its buffer is full), so
reads are sized by how long the last one took: twice as large after a quick one, half
after a slow one. A transfer near the minimum then completes about eight reads per
window, so the verdict is off by an eighth of the minimum at most, while one at 20 MB/s
reaches whole 1 MiB reads after a handful.
"""

from __future__ import annotations

import contextlib
import socket
import threading
from collections.abc import Callable
from types import TracebackType

__all__ = ["MinimumRate", "Watchdog"]

# Smallest read asked for: a TLS record (16 KiB), so slow transfers do not pay for one
# Python round per handful of bytes.
_SMALLEST_READ_BYTES = 16 * 1024
# A read taking longer than window / this is too large to show progress often enough; one
# taking less than half of that may grow (see the module docstring).
_READS_PER_WINDOW = 8


class MinimumRate:
    """At least ``bytes_per_s`` × ``window_s`` bytes in every window, or the transfer is too slow.

    Windows follow each other: each starts when the previous one was judged. Thread-safe
    (the reading thread sizes reads, the watchdog judges).

    Args:
        bytes_per_s: the minimum average rate over a window.
        window_s: the window.
        now: the clock's reading when the transfer starts.

    Example:
        >>> rate = MinimumRate(bytes_per_s=1000, window_s=60, now=0.0)
        >>> rate.too_slow(now=59.0, received=10), rate.too_slow(now=60.0, received=70_000)
        (False, False)
        >>> rate.too_slow(now=120.0, received=70_000 + 59_999)
        True
    """

    def __init__(self, *, bytes_per_s: float, window_s: float, now: float) -> None:
        self.bytes_per_s = bytes_per_s
        self.window_s = window_s
        self._lock = threading.Lock()
        self._window_start = now
        self._window_bytes_at_start = 0
        self._read_bytes = _SMALLEST_READ_BYTES

    def too_slow(self, *, now: float, received: int) -> bool:
        """Whether the window that has just ended brought fewer bytes than the minimum."""
        with self._lock:
            elapsed = now - self._window_start
            if elapsed < self.window_s:
                return False
            got = received - self._window_bytes_at_start
            if got < self.bytes_per_s * self.window_s:
                return True
            self._window_start, self._window_bytes_at_start = now, received
            return False

    def read_size(self, largest: int) -> int:
        """How many bytes to ask for in the next read (at most ``largest``)."""
        with self._lock:
            return max(1, min(largest, self._read_bytes))

    def read_done(self, *, size: int, duration_s: float) -> None:
        """A read of ``size`` bytes took ``duration_s``: size the next one.

        Example:
            >>> rate = MinimumRate(bytes_per_s=1024, window_s=60, now=0.0)
            >>> rate.read_size(1 << 20)  # nothing measured yet
            16384
            >>> for _ in range(10):
            ...     rate.read_done(size=rate.read_size(1 << 20), duration_s=0.001)
            >>> rate.read_size(1 << 20)  # quick reads: whole buffers
            1048576
            >>> rate.read_done(size=1 << 20, duration_s=30.0)  # slow: half
            >>> rate.read_size(1 << 20)
            524288
        """
        slow_s = self.window_s / _READS_PER_WINDOW
        with self._lock:
            if duration_s > slow_s:
                self._read_bytes = max(_SMALLEST_READ_BYTES, size // 2)
            elif duration_s <= slow_s / 2 and size >= self._read_bytes:
                # Only a read as large as asked for proves the larger one would be quick.
                self._read_bytes = min(1 << 40, 2 * self._read_bytes)

    def describe(self) -> str:
        """The rule, for a message."""
        floor = int(self.bytes_per_s * self.window_s)
        return f"fewer than {floor} bytes in {self.window_s:g} s"


class Watchdog:
    """Shuts ``sock`` when ``rate`` finds the transfer too slow, or when ``stop`` is set.

    Use as a context manager around the reads. A stopping job need not wait for a slow
    read to fill its buffer either.

    Args:
        rate: the decision.
        received: the bytes received so far (read from the watchdog's thread).
        sock: the connection's socket; ``None`` leaves the check to the read timeout.
        clock: the same clock the rate was started with.
        stop: the job's stop request.
    """

    def __init__(
        self,
        rate: MinimumRate,
        received: Callable[[], int],
        sock: socket.socket | None,
        clock: Callable[[], float],
        stop: threading.Event,
    ) -> None:
        self.rate = rate
        self._received = received
        self._sock = sock
        self._clock = clock
        self._stop = stop
        self._done = threading.Event()
        #: Set once the watchdog has found the transfer too slow and shut the connection.
        self.tripped = False
        self._thread = threading.Thread(target=self._run, name="sentinel-fetch-rate", daemon=True)

    def _run(self) -> None:
        # Judged a few times per window, so a verdict comes soon after a window ends.
        tick_s = min(0.5, self.rate.window_s / 4)
        while not self._done.wait(tick_s):
            if self._stop.is_set():
                self._shut()
                return
            if self.rate.too_slow(now=self._clock(), received=self._received()):
                self.tripped = True
                self._shut()
                return

    def _shut(self) -> None:
        if self._sock is not None:
            # shutdown() on the descriptor wakes the thread blocked in recv on it (close()
            # would not); the socket class's own method works for TLS sockets too.
            with contextlib.suppress(OSError):
                socket.socket.shutdown(self._sock, socket.SHUT_RDWR)

    def __enter__(self) -> Watchdog:
        self._thread.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self._done.set()
        self._thread.join()
