"""Backoff and Retry-After parsing."""

from __future__ import annotations

import random
from datetime import datetime, timedelta, timezone
from email.utils import format_datetime

from sentinel_fetch.retry import MAX_RETRY_AFTER_S, Backoff, parse_retry_after


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
