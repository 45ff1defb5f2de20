"""Progress of a long search: the words, the log lines' rhythm, and the CLI's use of it."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from sentinel_fetch.catalogue.search import SearchProgress
from sentinel_fetch.cli.search_progress import SearchLog, describe, search_progress
from sentinel_fetch.emulator import Emulator
from tests.cli.helpers import run


def _state(products: int, done: int, windows: int = 8, split: bool = True) -> SearchProgress:
    return SearchProgress(products, done, windows, requests=3 + done, split=split)


def test_the_line_says_products_windows_and_requests() -> None:
    assert describe(_state(12345, 3)) == (
        "12,345 products; 3 of 8 time windows done; 6 catalogue requests"
    )
    assert describe(_state(40, 0, 1, split=False)) == "40 products; 3 catalogue requests"


def test_log_lines_come_at_each_window_and_at_the_interval_between(
    caplog: pytest.LogCaptureFixture,
) -> None:
    now = [0.0]
    sink = SearchLog(interval_s=10.0, clock=lambda: now[0])
    with caplog.at_level(logging.WARNING, logger="sentinel_fetch.cli"):
        sink(_state(1000, 0))  # within the interval, no window done: quiet
        now[0] = 10.0
        sink(_state(2000, 0))  # the interval passed
        now[0] = 11.0
        sink(_state(3000, 1))  # a window ended
        sink(_state(4000, 1))  # neither
    lines = [record.getMessage() for record in caplog.records]
    assert lines == [
        "listing: 2,000 products; 0 of 8 time windows done; 3 catalogue requests",
        "listing: 3,000 products; 1 of 8 time windows done; 4 catalogue requests",
    ]


def test_quiet_means_no_progress_and_a_terminal_gets_a_live_line() -> None:
    with search_progress(interactive=False, quiet=True) as sink:
        assert sink is None
    with search_progress(interactive=False, quiet=False) as sink:
        assert isinstance(sink, SearchLog)
    with search_progress(interactive=True, quiet=False) as sink:
        assert callable(sink)
        sink(_state(5, 0))


def test_a_piped_search_logs_its_progress_on_stderr(
    cli_env: Path, cdse: Emulator, capsys: pytest.CaptureFixture[str]
) -> None:
    args = ["search", "-c", "S2", "--tile", "32TPS", "--start", "2023-07-01", "--end", "2023-07-31"]
    code, out, err = run(capsys, *args)
    count = len(out.splitlines())
    assert code == 0 and count > 3
    assert f"listing: {count} products; " in err, err
    code, out, err = run(capsys, "-q", *args)
    assert code == 0 and "listing:" not in err
