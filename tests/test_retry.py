"""Backoff, Retry-After parsing and the one retry loop."""

from __future__ import annotations

import logging
import random
import threading
from datetime import datetime, timedelta, timezone
from email.utils import format_datetime

import pytest

from sentinel_fetch.errors import SearchIncompleteError, ServiceError, StoppedError
from sentinel_fetch.retry import (
    MAX_RETRY_AFTER_S,
    Backoff,
    RetryPolicy,
    parse_retry_after,
    pause,
    retrying,
)
from sentinel_fetch.settings import Limits


def test_retry_after_seconds_and_http_date() -> None:
    now = datetime(2026, 1, 1, tzinfo=timezone.utc)
    assert parse_retry_after("12") == 12.0
    assert parse_retry_after(format_datetime(now + timedelta(seconds=30)), now=now) == 30.0
    assert parse_retry_after(format_datetime(now - timedelta(seconds=30)), now=now) == 0.0


def test_retry_after_garbage_and_huge_values() -> None:
    assert parse_retry_after(None) is None
    assert parse_retry_after("") is None
    assert parse_retry_after("later") is None
    assert parse_retry_after("nan") is None
    assert parse_retry_after("999999") == MAX_RETRY_AFTER_S


def test_backoff_grows_is_capped_and_jittered() -> None:
    backoff = Backoff(base_s=1.0, max_s=10.0)
    rng = random.Random(1)
    delays = [[backoff.delay_s(attempt, rng=rng) for attempt in range(1, 8)] for _ in range(200)]
    for attempt_index in range(7):
        column = [row[attempt_index] for row in delays]
        ceiling = min(10.0, 2.0**attempt_index)
        assert all(0.5 <= d <= ceiling for d in column)
        assert len({round(d, 6) for d in column}) > 50  # jitter spreads workers apart
    assert max(row[6] for row in delays) > 8.0  # reaches near the cap


def test_backoff_honours_retry_after_as_a_floor() -> None:
    backoff = Backoff(base_s=1.0, max_s=10.0)
    for _ in range(50):
        assert 3.0 <= backoff.delay_s(1, retry_after_s=3.0) <= 3.3


def test_retry_after_never_waits_longer_than_the_configured_maximum() -> None:
    backoff = Backoff(base_s=1.0, max_s=10.0)
    rng = random.Random(5)
    for asked in (9.9, 30.0, 999_999_999.0, MAX_RETRY_AFTER_S):
        delays = [backoff.delay_s(1, retry_after_s=asked, rng=rng) for _ in range(50)]
        assert all(min(asked, 10.0) <= delay <= 10.0 for delay in delays)


# --- the one retry loop ------------------------------------------------------------------


class _Flaky:
    """An attempt that fails ``failures`` times with ``error``, then returns ``"done"``."""

    def __init__(self, failures: int, error: Exception) -> None:
        self.failures = failures
        self.error = error
        self.calls = 0

    def __call__(self) -> str:
        self.calls += 1
        if self.calls <= self.failures:
            raise self.error
        return "done"


_LOG = logging.getLogger("tests.retry")


def _gave_up(error: Exception, attempts: int) -> Exception:
    return SearchIncompleteError(f"{attempts} attempts: {error}")


def test_retrying_returns_once_an_attempt_succeeds() -> None:
    call = _Flaky(2, ServiceError("busy", status=503))
    waits: list[float] = []
    policy = RetryPolicy(5, Backoff(1.0, 4.0))
    result = retrying(call, policy, give_up=_gave_up, what="test", logger=_LOG, sleep=waits.append)
    assert result == "done" and call.calls == 3 and len(waits) == 2


def test_retrying_makes_at_most_max_attempts_and_raises_what_give_up_makes() -> None:
    call = _Flaky(100, ServiceError("busy", status=503))
    waits: list[float] = []
    policy = RetryPolicy(4, Backoff(1.0, 4.0))
    with pytest.raises(SearchIncompleteError, match="4 attempts: busy"):
        retrying(call, policy, give_up=_gave_up, what="test", logger=_LOG, sleep=waits.append)
    assert call.calls == 4 and len(waits) == 3


def test_retrying_lets_a_permanent_failure_through_at_once() -> None:
    call = _Flaky(100, ServiceError("gone", status=404))
    with pytest.raises(ServiceError, match="gone"):
        retrying(
            call, RetryPolicy(5), give_up=_gave_up, what="test", logger=_LOG, sleep=lambda s: None
        )
    assert call.calls == 1


def test_retrying_caps_a_servers_retry_after_at_the_policys_maximum() -> None:
    call = _Flaky(3, ServiceError("slow down", status=429, retry_after_s=600.0))
    waits: list[float] = []
    policy = RetryPolicy.from_limits(Limits(backoff_base_s=0.1, backoff_max_s=0.5))
    retrying(call, policy, give_up=_gave_up, what="test", logger=_LOG, sleep=waits.append)
    assert waits and all(wait == 0.5 for wait in waits)


def test_a_stop_event_ends_a_wait_of_the_retry_loop() -> None:
    stop = threading.Event()
    started = threading.Event()
    outcome: list[BaseException] = []

    def attempt() -> str:
        started.set()
        raise ServiceError("busy", status=503, retry_after_s=600.0)

    def run() -> None:
        policy = RetryPolicy(5, Backoff(600.0, 600.0))
        try:
            retrying(attempt, policy, give_up=_gave_up, what="test", logger=_LOG, stop=stop)
        except BaseException as error:
            outcome.append(error)

    thread = threading.Thread(target=run)
    thread.start()
    assert started.wait(60)
    stop.set()
    thread.join(60)  # a safety net only: without the stop the wait is ten minutes
    assert not thread.is_alive()
    assert len(outcome) == 1 and isinstance(outcome[0], StoppedError)


def test_pause_reports_a_stop_asked_for_during_an_injected_sleep() -> None:
    stop = threading.Event()
    assert pause(1.0, stop=stop, sleep=lambda seconds: stop.set()) is True
    assert pause(1.0, sleep=lambda seconds: None) is False
