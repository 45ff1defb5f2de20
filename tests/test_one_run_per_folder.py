"""Two jobs on one folder, or a ``verify`` under a running download: the second stops.

A run holds its save, temp and finish folders until it ends. A second ``download`` of
the same job (the same save folder and ledger) joins it and shares the batch
(tests/test_team_job.py); a ``download`` of another job on its temp or finish folder,
or a ``verify`` that would move files under it, stops at once, before a search or a
login, with one line naming the process that holds the folder; ``status`` still reads
the ledger. A run killed with ``kill -9`` blocks no one: the operating system drops its
lock with the process.

The emulator of this module streams slowly (a product takes minutes), so the first run
is surely mid-transfer when the others start; the tests wait on the emulator's counters
and end that run themselves.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from sentinel_fetch.emulator import Emulator, EmulatorConfig

from .batch_harness import (
    FAST_LIMITS,
    LOCK_FILE,
    ExpectedFile,
    Workspace,
    expected_files,
    finish_problems,
    ledger_states,
)

pytestmark = pytest.mark.slow

# Archives of 4-6 MB at 20 kB/s per stream: minutes per product, far longer than the test.
SIZE_SCALE = 5e-3
BANDWIDTH_BYTES_PER_S = 20_000
CHUNK_BYTES = 16_384
LIMITS = {**FAST_LIMITS, "chunk_size_bytes": CHUNK_BYTES}


@pytest.fixture(scope="module")
def slow_cdse() -> Iterator[Emulator]:
    """An emulator of its own, whose streams outlast every test here."""
    config = EmulatorConfig(size_scale=SIZE_SCALE, bandwidth_bytes_per_s=BANDWIDTH_BYTES_PER_S)
    with Emulator(config) as emulator:
        yield emulator


def three_products(emulator: Emulator) -> list[ExpectedFile]:
    ids = emulator.match_ids(
        "Collection/Name eq 'SENTINEL-2' and contains(Name,'MSIL2A') and Online eq true"
        " and ContentDate/Start ge 2023-06-01T00:00:00.000Z"
        " and ContentDate/Start lt 2023-06-02T00:00:00.000Z",
        "ContentDate/Start asc",
    )[:3]
    chosen = list(expected_files(emulator, ids).values())
    assert len(chosen) == 3 and all(item.length > 20 * CHUNK_BYTES for item in chosen)
    return chosen


def _refused_by(result: subprocess.CompletedProcess[str], holder: int) -> str:
    """The one error line of a command refused because ``holder`` holds its folder."""
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert result.returncode == 2, result.stderr
    assert len(lines) == 1 and lines[0].startswith("sentinel-fetch: error:"), result.stderr
    assert "Traceback" not in result.stderr
    assert f"pid {holder} on {socket.gethostname()}, since 20" in lines[0], lines[0]
    assert "sentinel-fetch download --from" in lines[0], lines[0]
    return lines[0]


def test_another_job_stops_at_once_and_a_killed_run_blocks_no_one(
    slow_cdse: Emulator, tmp_path: Path
) -> None:
    emulator = slow_cdse
    emulator.faults.clear()
    emulator.stats.reset()
    emulator.config.bandwidth_bytes_per_s = BANDWIDTH_BYTES_PER_S
    first, second, third = three_products(emulator)
    workspace = Workspace(tmp_path, emulator, LIMITS)
    names = workspace.write_names([first.name, second.name])
    arguments = ["download", "--from", str(names), "--out", str(workspace.save_path)]
    # A damaged file left in Finish: a verify that ran now would move it to Corrupt.
    workspace.finish.mkdir(parents=True)
    damaged = workspace.finish / third.file_name
    damaged.write_bytes(b"\0" * third.length)
    other = tmp_path / "other-job"

    running = workspace.spawn(arguments, tmp_path / "first-run.log")
    try:
        streaming = emulator.stats.wait_for(
            lambda stats: all(
                stats.bytes_served(item.product_id) >= CHUNK_BYTES for item in (first, second)
            ),
            timeout_s=120,
        )
        assert streaming and running.poll() is None, (tmp_path / "first-run.log").read_text()
        seen = (emulator.stats.requests("identity"), emulator.stats.requests("catalogue"))

        shared_finish = workspace.run(
            "download", "--from", str(names), "--out", str(other),
            "--finish-dir", str(workspace.finish),
        )  # fmt: skip
        shared_temp = workspace.run(
            "download", "--from", str(names), "--out", str(other),
            "--temp-dir", str(workspace.temp),
        )  # fmt: skip
        audit = workspace.run("verify", str(workspace.save_path))
        status = workspace.run("status", str(workspace.save_path), "--json")

        assert str(workspace.finish) in _refused_by(shared_finish, running.pid)
        assert str(workspace.temp) in _refused_by(shared_temp, running.pid)
        _refused_by(audit, running.pid)
        assert (emulator.stats.requests("identity"), emulator.stats.requests("catalogue")) == seen
        assert not other.exists(), "a refused run creates nothing"
        assert damaged.read_bytes() == b"\0" * third.length
        assert not (workspace.save_path / "Corrupt").exists()
        assert status.returncode == 0, status.stderr
        assert json.loads(status.stdout)["counts"]["downloading"] == 2
        assert running.poll() is None, "the first run went on undisturbed"

        os.killpg(running.pid, signal.SIGKILL)
        assert running.wait(timeout=30) == -signal.SIGKILL
    finally:
        if running.poll() is None:
            os.killpg(running.pid, signal.SIGKILL)
            running.wait()

    # kill -9 leaves the lock files behind, but not the locks: the next run just starts.
    assert (workspace.save_path / LOCK_FILE).exists()
    emulator.config.bandwidth_bytes_per_s = None
    # The server notices the dead connections at its next write; until then they hold
    # the account's stream slots, and the rerun would meet 429 DAT-ZIP-100 as on CDSE.
    assert emulator.stats.wait_for(lambda stats: stats.current_streams() == 0, timeout_s=60)
    damaged.unlink()
    final = workspace.run(*arguments)

    assert final.returncode == 0, final.stderr
    done = {item.file_name: item for item in (first, second)}
    assert not finish_problems(workspace.finish, done)
    assert sorted(path.name for path in workspace.finish.iterdir()) == sorted(done)
    assert set(ledger_states(workspace.save_path).values()) == {"done"}
    assert emulator.stats.range_requests >= 2, "the killed run's partial files were resumed"
    for folder in (workspace.save_path, workspace.temp, workspace.finish):
        assert not (folder / LOCK_FILE).exists(), f"a clean end leaves no lock file in {folder}"
