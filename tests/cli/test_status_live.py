"""``status`` tells a live run from a dead one, and counts the bytes of files in flight."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.cli.helpers import ledger_with, run

NAME = "S2A_MSIL2A_20230624T101427_N0509_R051_T33TTN_20230624T120538.SAFE"


def _in_flight(save_path: Path, received: int) -> None:
    ledger_with(save_path, "downloading")
    (save_path / "Temp").mkdir(parents=True, exist_ok=True)
    (save_path / "Temp" / f"{NAME}.zip.part").write_bytes(b"x" * received)


def test_a_dead_run_leaves_files_in_flight_that_status_counts(
    cli_env: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _in_flight(cli_env / "data", 12_345)
    code, out, _ = run(capsys, "status", "data")
    assert code == 0
    assert "no run is active: 1 products were in flight" in out
    assert f"in flight: {NAME}: 12.35 kB so far" in out
    code, out, _ = run(capsys, "status", "data", "--json")
    data = json.loads(out)
    assert data["running"] is None and data["in_flight"] == [{"name": NAME, "bytes": 12_345}]


def test_a_live_run_is_named_with_its_process(
    cli_env: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _in_flight(cli_env / "data", 10)
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys\n"
            "from sentinel_fetch.api import lock_folders\n"
            "from sentinel_fetch.settings import Settings\n"
            "lock = lock_folders(Settings(save_path=sys.argv[1]))\n"
            "print('held', flush=True)\n"
            "sys.stdin.read()\n",
            str(cli_env / "data"),
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        code, out, _ = run(capsys, "status", "data")
        assert code == 0
        assert "a run is active:" in out and str(holder.pid) in out
        assert "no run is active" not in out
    finally:
        assert holder.stdin is not None
        holder.stdin.close()
        holder.wait(60)
