"""The benchmark suite's own code: its arithmetic, its verdicts, and a quick real run.

The benchmarks are scripts (``python benchmarks/run_all.py``) that import their siblings
by name, so the folder goes on ``sys.path`` here the way running a script puts it there.
Only the start-up benchmark runs for real: it needs no emulator, so it stays well under
a second, and it still goes through the runner, the table and both result files.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

BENCHMARKS = Path(__file__).resolve().parents[2] / "benchmarks"
sys.path.insert(0, str(BENCHMARKS))

from harness import Row, Spread, Target, ratios_of  # noqa: E402
from run_all import markdown_table, select  # noqa: E402


def test_spread_flags_rounds_more_than_a_quarter_apart() -> None:
    assert not Spread.of([100.0, 110.0, 120.0]).noisy
    assert Spread.of([100.0, 140.0, 120.0]).noisy
    assert not Spread.of([5.0]).noisy


def test_ratios_are_taken_round_by_round() -> None:
    assert ratios_of([300.0, 200.0], [600.0, 200.0]) == [0.5, 1.0]


def test_a_ratio_target_is_judged_on_the_median_ratio() -> None:
    row = Row(
        "download_single",
        1,
        "client vs curl",
        "MB/s",
        [90.0, 95.0, 99.0],
        "curl",
        [100.0, 100.0, 100.0],
        ratios_of([90.0, 95.0, 99.0], [100.0, 100.0, 100.0]),
        Target("ratio", ">=", 0.95),
    )
    assert row.met is True
    assert row.to_json()["ratio_median"] == 0.95


def test_a_value_target_is_judged_on_the_median_value() -> None:
    row = Row(
        "memory", 6, "peak RSS", "MB", [120.0, 80.0, 130.0], target=Target("value", "<=", 100)
    )
    assert row.met is False
    assert "**NO**" in markdown_table([row])


def test_aliases_select_the_benchmark_that_measures_them() -> None:
    assert [b.name for b in select(["memory"])] == ["download_parallel"]
    with pytest.raises(SystemExit):
        select(["no_such_benchmark"])


def test_quick_startup_run_writes_both_result_files(tmp_path: Path) -> None:
    command = [sys.executable, str(BENCHMARKS / "run_all.py"), "--quick", "--only", "startup"]
    command += ["--results-dir", str(tmp_path), "--work-dir", str(tmp_path / "work")]
    finished = subprocess.run(command, capture_output=True, text=True, timeout=60, check=False)
    assert finished.returncode in (0, 1), finished.stdout + finished.stderr
    results = json.loads((tmp_path / "latest.json").read_text())
    assert [row["benchmark"] for row in results["rows"]] == ["startup"]
    assert results["rows"][0]["baseline"] == "python -c pass"
    assert "| # | benchmark |" in (tmp_path / "latest.md").read_text()


def test_quick_bands_run_prints_both_ratios_and_verifies_every_file(tmp_path: Path) -> None:
    # The emulator's catalogue takes ~40 s to build in a new folder: reuse the tests' one.
    data = os.environ.get("SENTINEL_FETCH_EMULATOR_DIR") or str(tmp_path / "data")
    command = [sys.executable, str(BENCHMARKS / "bands.py"), "--scale", "0.002"]
    command += ["--products", "4", "--rounds", "1", "--data-dir", data]
    command += ["--json", str(tmp_path / "bands.json")]
    finished = subprocess.run(command, capture_output=True, text=True, timeout=600, check=False)
    # Ratios at this scale are overhead, not bandwidth: the targets are judged at full scale.
    assert finished.returncode in (0, 1), finished.stdout + finished.stderr
    assert "bytes ratio (bands / whole)" in finished.stdout
    assert "time ratio  (bands / whole)" in finished.stdout
    assert "every file verified: True" in finished.stdout
    result = json.loads((tmp_path / "bands.json").read_text())
    assert result["verified"] and 0 < result["bytes_ratios"][0] < 0.5
    assert [run["files"] for run in result["runs"]["bands"]] == [12]
