"""Relative dates (``30d``, ``12h``, ``2w``): pure with an injected now, and in queries."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from sentinel_fetch.catalogue.query import build_query
from sentinel_fetch.catalogue.relative import parse_relative
from sentinel_fetch.errors import QueryError

NOW = datetime(2024, 3, 8, 6, 30, tzinfo=timezone.utc)


@pytest.mark.parametrize(
    ("text", "back"),
    [("30d", timedelta(days=30)), (" 12H ", timedelta(hours=12)), ("2w", timedelta(weeks=2))],
)
def test_ages_count_back_from_now(text: str, back: timedelta) -> None:
    assert parse_relative(text, NOW) == NOW - back


@pytest.mark.parametrize("text", ["2024-03-01", "7", "d7", "-7d", "7 days", "1.5d", ""])
def test_other_text_is_not_relative(text: str) -> None:
    assert parse_relative(text, NOW) is None


def test_zero_and_naive_now_are_refused() -> None:
    with pytest.raises(ValueError, match="no time at all"):
        parse_relative("0d", NOW)
    with pytest.raises(ValueError, match="aware"):
        parse_relative("1d", NOW.replace(tzinfo=None))


def test_queries_take_ages_as_start_and_end() -> None:
    # 100,000 days back is before 1800 whenever this runs; the end a day later still.
    query = build_query(start="100000d", end="99999d")
    assert query.start is not None and query.end is not None
    assert query.start.year < 1800 and query.end - query.start == timedelta(days=1)
    with pytest.raises(QueryError, match="start '0d' is no time at all"):
        build_query(start="0d")
