"""The quota meter: how much of an account's 30-day volume a job has used, and when to stop.

CDSE gives an account 12 TB per rolling 30 days, then slows it to 1 MB/s. Every worker of
a job adds the bytes it receives to the ledger, per account (aggregated, not a row per
chunk); the meter reads the account's last 30 days from there when a run starts, counts
what this run adds, warns once when 80 % and once when 95 % are passed (a
:class:`~sentinel_fetch.progress.QuotaWarning` the command line renders), and, with a
stop threshold (``--quota-stop 95%`` or a number of bytes), says when a run must stop
taking new products: the products not started stay queued for the next window.

The meter never raises the account's limits nor spreads one account's work over others:
it only ever stops earlier.

Everything here is pure: the numbers come in, decisions go out; the engine does the I/O.
"""

from __future__ import annotations

import re
import threading
from dataclasses import dataclass

__all__ = [
    "QUOTA_BYTES",
    "QUOTA_WINDOW_S",
    "WARN_AT",
    "QuotaMeter",
    "parse_byte_count",
    "parse_quota_stop",
]

#: CDSE's volume per account per rolling 30 days (12 TB, decimal as CDSE states it).
QUOTA_BYTES = 12 * 10**12
#: The rolling window the volume is counted over.
QUOTA_WINDOW_S = 30 * 24 * 3600
#: Fractions of the quota at which a run warns, once each.
WARN_AT = (0.80, 0.95)

_UNITS = {
    "": 1,
    "b": 1,
    "kb": 10**3,
    "mb": 10**6,
    "gb": 10**9,
    "tb": 10**12,
    "kib": 1 << 10,
    "mib": 1 << 20,
    "gib": 1 << 30,
    "tib": 1 << 40,
}
_COUNT = re.compile(r"\s*(\d{1,16}(?:\.\d{1,6})?)\s*([kmgt]i?b|b)?\s*", re.IGNORECASE)
_PERCENT = re.compile(r"\s*(\d{1,3}(?:\.\d{1,3})?)\s*%\s*")


def parse_byte_count(text: str) -> int:
    """``"11TB"``, ``"500 GiB"``, ``"123456"`` as bytes (decimal units as CDSE's 12 TB).

    Raises:
        ValueError: not a number of bytes; the message is one line.

    Example:
        >>> parse_byte_count("11TB"), parse_byte_count("1.5 GiB"), parse_byte_count("42")
        (11000000000000, 1610612736, 42)
    """
    match = _COUNT.fullmatch(text) if isinstance(text, str) else None
    if match is None:
        raise ValueError(f"{str(text)[:40]!r} is not a number of bytes (e.g. 11TB, 500GB)")
    number = float(match.group(1)) * _UNITS[(match.group(2) or "").lower()]
    if number < 1:
        raise ValueError(f"{str(text)[:40]!r}: a number of bytes must be at least 1")
    return int(number)


def parse_quota_stop(text: str | int, quota_bytes: int = QUOTA_BYTES) -> int:
    """The stop threshold in bytes: ``"95%"`` of ``quota_bytes``, or a number of bytes.

    A threshold past the quota is refused: the point is to stop *before* the account is
    slowed down.

    Raises:
        ValueError: not a percentage or a number of bytes, or past the quota.

    Example:
        >>> parse_quota_stop("95%", 1000), parse_quota_stop("900", 1000)
        (950, 900)
        >>> parse_quota_stop("120%", 1000)
        Traceback (most recent call last):
        ...
        ValueError: '120%': a quota stop is a share of the quota up to 100%
    """
    if isinstance(text, bool):
        raise ValueError(f"{text!r} is not a percentage (95%) or a number of bytes")
    if isinstance(text, int):
        count = text
        if count < 1:
            raise ValueError(f"{count}: a number of bytes must be at least 1")
    else:
        percent = _PERCENT.fullmatch(text) if isinstance(text, str) else None
        if percent is not None:
            share = float(percent.group(1))
            if not 0 < share <= 100:
                shown = text.strip()
                raise ValueError(f"{shown!r}: a quota stop is a share of the quota up to 100%")
            return int(quota_bytes * share / 100)
        try:
            count = parse_byte_count(text)
        except ValueError:
            raise ValueError(
                f"{str(text)[:40]!r} is not a percentage (95%) or a number of bytes (11TB)"
            ) from None
    if count > quota_bytes:
        raise ValueError(
            f"{text!r}: {count} bytes is past the account's quota of {quota_bytes} bytes"
        )
    return count


@dataclass(frozen=True)
class QuotaCrossing:
    """A warning threshold just passed."""

    fraction: float
    used_bytes: int
    quota_bytes: int


class QuotaMeter:
    """Bytes of one account over the window: what was used before, plus this run's.

    Thread-safe: every transfer thread adds to it.

    Args:
        used_bytes: the account's bytes in the window when the run starts (from the
            ledger: every worker's, this machine's and others').
        quota_bytes: the account's volume per window.
        stop_at_bytes: stop taking new products once this much is used (``None``: never).
    """

    def __init__(
        self, used_bytes: int, quota_bytes: int = QUOTA_BYTES, stop_at_bytes: int | None = None
    ) -> None:
        if quota_bytes < 1:
            raise ValueError("quota_bytes must be at least 1")
        self.quota_bytes = quota_bytes
        self.stop_at_bytes = stop_at_bytes
        self._used = max(used_bytes, 0)
        #: Bytes of products started and not yet finished, counted against the stop.
        self._reserved: dict[str, int] = {}
        self._lock = threading.Lock()
        #: Thresholds still ahead: each is told once, when it is passed.
        self._pending = {f for f in WARN_AT if self._used < f * quota_bytes}
        self._started = False

    @property
    def used_bytes(self) -> int:
        """The account's bytes in the window as this run knows them."""
        with self._lock:
            return self._used

    def start(self) -> list[QuotaCrossing]:
        """Thresholds the account had passed before the run (told once, at its start)."""
        with self._lock:
            if self._started:
                return []
            self._started = True
            passed = [f for f in WARN_AT if f not in self._pending]
            return [QuotaCrossing(f, self._used, self.quota_bytes) for f in passed[-1:]]

    def update(self, used_bytes: int) -> list[QuotaCrossing]:
        """A fresher total from the ledger (other workers added theirs); never lowers it."""
        with self._lock:
            self._used = max(self._used, used_bytes)
            return self._crossed_locked()

    def add(self, count: int) -> list[QuotaCrossing]:
        """``count`` more bytes received; the thresholds this crossed (usually none)."""
        with self._lock:
            self._used += max(count, 0)
            return self._crossed_locked()

    def _crossed_locked(self) -> list[QuotaCrossing]:
        crossed = [f for f in WARN_AT if f in self._pending and self._used >= f * self.quota_bytes]
        self._pending.difference_update(crossed)
        return [QuotaCrossing(f, self._used, self.quota_bytes) for f in crossed[-1:]]

    def must_stop(self, next_bytes: int = 0) -> bool:
        """Whether a product of ``next_bytes`` may not start: it would pass the stop line.

        A product is started only if what is used, plus the whole size of every product
        in flight (:meth:`reserve`), plus its own size stays under the threshold, so the
        run stops *before* the quota is used up, not after it (in-flight bytes already
        received count twice: the stop errs on the early side).
        """
        if self.stop_at_bytes is None:
            return False
        with self._lock:
            committed = self._used + sum(self._reserved.values())
            return committed + max(next_bytes, 0) > self.stop_at_bytes

    def reserve(self, key: str, size: int) -> None:
        """A product of ``size`` bytes starts: count it against the stop until it ends."""
        with self._lock:
            self._reserved[key] = max(size, 0)

    def release(self, key: str) -> None:
        """The product ``key`` ended (its bytes are in :attr:`used_bytes` now)."""
        with self._lock:
            self._reserved.pop(key, None)

    def describe_stop(self) -> str:
        """Why the run stopped, one line (the report's reason for every queued product)."""
        used = self.used_bytes
        return (
            f"quota stop: the account has used {used} of {self.quota_bytes} bytes in the last "
            f"30 days (stop at {self.stop_at_bytes}); queued for a later run"
        )
