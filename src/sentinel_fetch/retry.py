"""When to try again and how long to wait: capped exponential backoff with jitter.

Pure functions: the callers (search paging, token requests, transfers) own the loops
and the sleeping, so a stop request can interrupt any wait.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import datetime, timezone
from email.utils import parsedate_to_datetime

__all__ = ["Backoff", "parse_retry_after"]

# A server asking for more than this is treated as asking for this: a wrong header must
# not park a worker for a day. Waits are capped again by the configured backoff maximum.
MAX_RETRY_AFTER_S = 900.0


def parse_retry_after(value: str | None, *, now: datetime | None = None) -> float | None:
    """Seconds to wait from a ``Retry-After`` header (delta-seconds or HTTP-date).

    Example:
        >>> parse_retry_after("7")
        7.0
        >>> parse_retry_after("soon") is None
        True
    """
    if not value:
        return None
    value = value.strip()
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=timezone.utc)
        seconds = (when - (now or datetime.now(timezone.utc))).total_seconds()
    if seconds != seconds:  # NaN
        return None
    return min(max(seconds, 0.0), MAX_RETRY_AFTER_S)


@dataclass(frozen=True)
class Backoff:
    """Capped exponential backoff with "full jitter".

    Jitter spreads the retries of parallel workers so that four workers hit by the same
    429 do not come back in lock-step and trip the limit again.

    Attributes:
        base_s: the first wait's upper bound.
        max_s: no wait computed from the attempt number exceeds this.
    """

    base_s: float = 2.0
    max_s: float = 120.0

    def delay_s(
        self, attempt: int, *, retry_after_s: float | None = None, rng: random.Random | None = None
    ) -> float:
        """Seconds to wait before attempt ``attempt + 1`` (``attempt`` counts from 1).

        A server's ``Retry-After`` is honoured as a floor (plus up to 10 % jitter), but
        never beyond ``max_s``: the configured maximum is the user's word on how long a
        worker may sit idle, whatever a header says. Otherwise the wait is uniform in
        ``[base/2, min(max, base * 2**(attempt-1))]``.

        Example:
            >>> b = Backoff(base_s=1.0, max_s=8.0)
            >>> 0.5 <= b.delay_s(1) <= 1.0 and b.delay_s(10) <= 8.0
            True
            >>> 5.0 <= b.delay_s(1, retry_after_s=5.0) <= 5.5
            True
            >>> b.delay_s(1, retry_after_s=999_999_999.0)
            8.0
        """
        draw: float = (rng or random).random()
        if retry_after_s is not None:
            return min(self.max_s, retry_after_s * (1.0 + 0.1 * draw))
        ceiling = min(self.max_s, self.base_s * (2.0 ** max(attempt - 1, 0)))
        floor = min(self.base_s / 2, ceiling)
        return floor + (ceiling - floor) * draw
