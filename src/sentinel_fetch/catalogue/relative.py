"""Relative dates: ``30d``, ``12h``, ``2w`` back from now, for cron jobs that watch an area.

A job run every night with ``--start 2d`` (or ``--last 2d``) asks for the last two days,
whatever the date; no script has to compute it.
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta

__all__ = ["RELATIVE_PATTERN", "parse_relative"]

#: ``<number><unit>``: h hours, d days, w weeks (no sign: always back from now).
RELATIVE_PATTERN = re.compile(r"^\s*(\d{1,6})\s*([hdw])\s*$", re.IGNORECASE)
_UNITS = {"h": timedelta(hours=1), "d": timedelta(days=1), "w": timedelta(weeks=1)}


def parse_relative(text: str, now: datetime) -> datetime | None:
    """The instant ``text`` names back from ``now``, or ``None`` if it is not relative.

    Args:
        text: ``30d``, ``12h``, ``2w``... (case and spaces ignored).
        now: the aware UTC instant to count back from.

    Raises:
        ValueError: a relative date of zero length, or ``now`` without a time zone.

    >>> from datetime import timezone
    >>> parse_relative("7d", datetime(2024, 3, 8, 6, 0, tzinfo=timezone.utc))
    datetime.datetime(2024, 3, 1, 6, 0, tzinfo=datetime.timezone.utc)
    >>> parse_relative("2024-03-01", datetime(2024, 3, 8, tzinfo=timezone.utc)) is None
    True
    """
    match = RELATIVE_PATTERN.match(text)
    if match is None:
        return None
    if now.tzinfo is None:
        raise ValueError("now must be an aware (UTC) datetime")
    count = int(match.group(1))
    if count == 0:
        raise ValueError(f"{text.strip()!r} is no time at all: give at least 1 (e.g. 1d)")
    return now - count * _UNITS[match.group(2).lower()]
