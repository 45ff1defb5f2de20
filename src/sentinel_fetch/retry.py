"""When to try again, how long to wait, and when to stop trying: the one retry loop.

:func:`retrying` is the loop every request that may fail transiently goes through
(token requests in :mod:`~sentinel_fetch.auth`, catalogue pages in
:mod:`~sentinel_fetch.catalogue.search`): it owns the attempts, the waits between them
(:class:`Backoff`, honouring a capped ``Retry-After``, never beyond the settings'
``backoff_max_s``) and their interruption by a stop event (:func:`pause`, which raises
nothing: the loop raises :class:`~sentinel_fetch.errors.StoppedError`). One
:class:`RetryPolicy`, built from the settings' :class:`~sentinel_fetch.settings.Limits`,
says how many attempts and how long the waits.

A product download keeps its own loop (:func:`~sentinel_fetch.downloads.transfer.download_product`)
because its attempts are not interchangeable: one that received bytes is resumed at once
and is not a failure in a row, and the product is bounded in bytes as well as attempts
(:class:`ProductBudget`). It waits with the same :class:`Backoff` and :func:`pause`.
"""

from __future__ import annotations

import logging
import random
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from email.utils import parsedate_to_datetime
from typing import TypeVar

from sentinel_fetch.errors import ServiceError, StoppedError
from sentinel_fetch.settings import Limits

__all__ = [
    "Backoff",
    "ProductBudget",
    "RetryPolicy",
    "fetch_budget_bytes",
    "is_transient",
    "parse_retry_after",
    "pause",
    "retrying",
]

T = TypeVar("T")
#: Waits up to the seconds given; a true answer means "stop" (tests substitute one that
#: returns at once).
Sleep = Callable[[float], object]

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


def fetch_budget_bytes(size: int, *, multiple: float, unknown_size_bytes: int) -> int:
    """Bytes one product may fetch in one run: ``multiple`` times its size.

    A size of 0 (the catalogue does not know it, and neither does the download host yet)
    stands for ``unknown_size_bytes``, the largest a product may be.

    Example:
        >>> fetch_budget_bytes(1_000, multiple=3.0, unknown_size_bytes=10**9)
        3000
        >>> fetch_budget_bytes(0, multiple=3.0, unknown_size_bytes=10**9)
        3000000000
    """
    return int(multiple * (size if size > 0 else unknown_size_bytes))


@dataclass(frozen=True)
class ProductBudget:
    """How much one product may cost in one run, whatever mix of failures it meets.

    Attributes:
        max_in_a_row: attempts in a row without progress (they back off in between).
        max_total: attempts in all, progress or not (resumes do not wait, so without
            this a server that sends a few bytes and hangs up would be asked forever).
        max_bytes: bytes fetched in all, discarded ones included: the account's 30-day
            transfer quota pays for each of them.
    """

    max_in_a_row: int
    max_total: int
    max_bytes: int

    def exhausted(
        self, *, attempts: int, attempts_without_progress: int, bytes_fetched: int
    ) -> str | None:
        """Why no further attempt may start, or ``None`` while one may.

        Example:
            >>> budget = ProductBudget(max_in_a_row=8, max_total=30, max_bytes=3000)
            >>> budget.exhausted(attempts=5, attempts_without_progress=0, bytes_fetched=100)
            >>> budget.exhausted(attempts=5, attempts_without_progress=0, bytes_fetched=3000)
            'its byte budget of 3000 bytes is spent'
            >>> budget.exhausted(attempts=30, attempts_without_progress=0, bytes_fetched=0)
            'at most 30 attempts per product'
        """
        if bytes_fetched >= self.max_bytes:
            return f"its byte budget of {self.max_bytes} bytes is spent"
        if attempts >= self.max_total:
            return f"at most {self.max_total} attempts per product"
        if attempts_without_progress >= self.max_in_a_row:
            return f"{attempts_without_progress} attempts in a row without progress"
        return None


@dataclass(frozen=True)
class RetryPolicy:
    """How often to try one request and how long to wait in between.

    Attributes:
        max_attempts: tries in all, the first included.
        backoff: the waits between tries.
    """

    max_attempts: int = 8
    backoff: Backoff = field(default_factory=Backoff)

    @classmethod
    def from_limits(cls, limits: Limits) -> RetryPolicy:
        """The policy the settings ask for: ``max_attempts``, ``backoff_base_s`` and
        ``backoff_max_s`` (the longest any wait may be, a server's ``Retry-After`` too).

        Example:
            >>> RetryPolicy.from_limits(Limits(max_attempts=3, backoff_max_s=5.0))
            RetryPolicy(max_attempts=3, backoff=Backoff(base_s=2.0, max_s=5.0))
        """
        return cls(limits.max_attempts, Backoff(limits.backoff_base_s, limits.backoff_max_s))


def pause(
    seconds: float, *, stop: threading.Event | None = None, sleep: Sleep | None = None
) -> bool:
    """Wait up to ``seconds``; return ``True`` if ``stop`` is set (before, during or after).

    Without a ``sleep`` the wait is ``stop.wait``, so setting the event ends it at once.

    Example:
        >>> stop = threading.Event()
        >>> stop.set()
        >>> pause(3600, stop=stop)
        True
        >>> pause(0.0)
        False
    """
    if stop is not None and stop.is_set():
        return True
    if sleep is not None:
        stopped = bool(sleep(seconds))
    else:
        stopped = (stop or threading.Event()).wait(seconds)
    return stopped or (stop is not None and stop.is_set())


def is_transient(error: Exception) -> bool:
    """Whether trying again later may help: a transient :class:`ServiceError` (connection
    failures, 408, 425, 429, 5xx, or one its maker marked transient)."""
    return isinstance(error, ServiceError) and error.transient


def retrying(
    call: Callable[[], T],
    policy: RetryPolicy,
    *,
    give_up: Callable[[Exception, int], Exception],
    what: str,
    logger: logging.Logger,
    classify: Callable[[Exception], bool] = is_transient,
    stop: threading.Event | None = None,
    sleep: Sleep | None = None,
) -> T:
    """Call ``call`` until it returns, retrying the failures ``classify`` calls transient.

    Args:
        call: one attempt; returns the result or raises.
        policy: attempts and waits.
        give_up: the exception to raise when the attempts are spent, from the last
            failure and the number of attempts made.
        what: who failed, for the warning logged before each wait (``catalogue``).
        logger: where that warning goes (the caller's logger).
        classify: whether an exception ``call`` raised is worth another attempt; any
            other exception propagates as it is.
        stop: setting it ends a wait at once (and no attempt starts after it).
        sleep: how to wait, instead of waiting on ``stop`` (tests).

    Raises:
        StoppedError: ``stop`` was set while waiting.

    Example:
        >>> answers = iter([ServiceError("busy", status=503), "page"])
        >>> def call():
        ...     answer = next(answers)
        ...     if isinstance(answer, Exception):
        ...         raise answer
        ...     return answer
        >>> retrying(call, RetryPolicy(3, Backoff(0.01, 0.01)), what="catalogue",
        ...          logger=logging.getLogger("example"),
        ...          give_up=lambda error, attempts: RuntimeError(f"{attempts}: {error}"))
        'page'
    """
    attempt = 0
    while True:
        attempt += 1
        try:
            return call()
        except Exception as error:
            if not classify(error):
                raise
            if attempt >= policy.max_attempts:
                raise give_up(error, attempt) from None
            asked = getattr(error, "retry_after_s", None)
            retry_after_s = float(asked) if isinstance(asked, (int, float)) else None
            delay = policy.backoff.delay_s(attempt, retry_after_s=retry_after_s)
            logger.warning("%s: %s; retrying in %.1f s", what, error, delay)
        if pause(delay, stop=stop, sleep=sleep):
            raise StoppedError("stopped while waiting to try again")
