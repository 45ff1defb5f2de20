"""Reading JSON we did not write: bounded in depth and size, one error for every flaw.

What each reader makes of these errors is tested with it: result files in
``catalogue/test_results.py``, catalogue answers in ``catalogue/test_search.py``, token
answers in ``test_auth.py``.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from types import FrameType
from typing import Any

import pytest

import sentinel_fetch.untrusted
from sentinel_fetch.untrusted import MAX_DEPTH, UntrustedJSONError, parse_json

DEEP = 100_000


def _nested(depth: int) -> str:
    return "[" * depth + "]" * depth


def test_structures_as_deep_as_real_answers_are_read() -> None:
    geometry = {"type": "MultiPolygon", "coordinates": [[[[1.0, 2.0], [3.0, 4.0]]]]}
    page = {"value": [{"GeoFootprint": geometry, "Name": 'a "[[[" name \\ with brackets'}]}
    assert parse_json(json.dumps(page).encode()) == page
    assert parse_json(_nested(MAX_DEPTH)) is not None


@pytest.mark.parametrize(
    ("data", "words"),
    [
        (_nested(MAX_DEPTH + 1), "nested deeper than"),
        (_nested(DEEP), "nested deeper than"),
        ('{"a":' * DEEP + "1" + "}" * DEEP, "nested deeper than"),
        ("[" * DEEP, "nested deeper than"),
        ('{"ContentLength": NaN}', "not valid JSON"),
        ("[1, 2", "not valid JSON"),
        (b"\xff\xfe[]", "not valid JSON"),
    ],
)
def test_hostile_json_is_one_value_error(data: str | bytes, words: str) -> None:
    with pytest.raises(UntrustedJSONError, match=words):
        parse_json(data)


def test_size_is_bounded_before_parsing() -> None:
    with pytest.raises(UntrustedJSONError, match="larger than 1 kB"):
        parse_json(b"[" + b" " * 1000 + b"]", max_bytes=1000)


def _operations(data: str) -> int:
    """Lines of the module executed while reading ``data``: its work, counted, not timed."""
    module_file = sentinel_fetch.untrusted.__file__
    count = 0

    def trace(frame: FrameType, event: str, arg: Any) -> Callable[..., Any] | None:
        nonlocal count
        if frame.f_code.co_filename != module_file:
            return None
        if event == "line":
            count += 1
        return trace

    sys.settrace(trace)
    try:
        parse_json(data)
    except UntrustedJSONError:
        pass
    finally:
        sys.settrace(None)
    return count


@pytest.mark.parametrize(
    "make",
    [
        lambda n: "[" * n + "]" * n,
        lambda n: "[" + "[]," * n + "[]]",
        lambda n: "[" + '"a[{",' * n + '"b"]',
        lambda n: '{"a":' * n + "1" + "}" * n,
        # A string that never ends, all escaped quotes: each one used to restart the scan.
        lambda n: '["' + '\\"' * n,
        lambda n: '["' + '\\"' * n + '"]' + "[" * n,
    ],
    ids=["deep", "wide", "strings", "deep-objects", "unterminated-escapes", "escapes-then-deep"],
)
def test_the_depth_scan_is_linear(make: Callable[[int], str]) -> None:
    small, large = _operations(make(2_000)), _operations(make(20_000))
    assert large <= 11 * small + 50, (small, large)
