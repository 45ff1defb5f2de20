"""What a terminal shows during a download: bars that fit 80 columns, names cut where
they do not lose the tile, times left in seconds near the end."""

from __future__ import annotations

import io

import pytest
from rich.console import Console

from sentinel_fetch.cli.render import BarProgress, eta_text, short_name
from sentinel_fetch.progress import BatchStarted, BytesReceived, ProductStarted

NAMES = [
    "S2B_MSIL2A_20231001T103019_N0509_R108_T32TQM_20231001T132714.SAFE",
    "S2B_MSIL2A_20231001T103019_N0509_R108_T32TQN_20231001T132714.SAFE",
    "S1A_IW_GRDH_1SDV_20240604T110100_20240604T110131_054172_069690_E33E.SAFE",
]


@pytest.mark.parametrize("columns", [80, 100, 200])
def test_the_bars_fit_the_terminal_and_keep_the_tile(columns: int) -> None:
    console = Console(
        file=io.StringIO(), width=columns, force_terminal=True, color_system=None, record=True
    )
    bars = BarProgress(console)
    bars(BatchStarted(total_products=3, total_bytes=3_000_000_000, already_done=0))
    for name in NAMES:
        bars(ProductStarted(name, total_bytes=1_000_000_000, resumed_from=0, attempt=1))
        bars(BytesReceived(name, 123_456_789))
    console.print(bars)
    shown = console.export_text()
    assert "T32TQM" in shown and "T32TQN" in shown and "20231001" in shown
    lines = [line for line in shown.splitlines() if line.strip()]
    assert len(lines) >= 4  # the overall bar and one per file, none wrapped
    assert max(len(line.rstrip()) for line in lines) <= columns


def test_names_lose_the_processing_time_first_then_the_middle() -> None:
    cut = [short_name(name, 30) for name in NAMES]
    assert all(len(name) <= 30 for name in cut)
    assert len(set(cut)) == 3  # the two tiles stay told apart
    assert short_name(NAMES[0]) == "S2B_MSIL2A_20231001T103019_N0509_R108_T32TQM"


def test_the_time_left_reads_in_seconds_near_the_end() -> None:
    assert [eta_text(s) for s in (0.2, 30, 61, 119.6)] == ["0 s", "30 s", "61 s", "120 s"]
    assert [eta_text(s) for s in (120, 121, 3599, 3600)] == [
        "2 min",
        "3 min",
        "60 min",
        "1 h 0 min",
    ]
