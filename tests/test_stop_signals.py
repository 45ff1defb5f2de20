"""SIGTERM (systemd, ``docker stop``, ``timeout``) ends a download as cleanly as Ctrl-C.

The run is a real subprocess; the signal is sent once the emulator's counters show every
stream flowing. The emulator of this module streams slowly (a product takes minutes), so
the run is surely mid-batch when the signal comes.
"""

from __future__ import annotations

import re
import signal
from collections.abc import Iterator
from pathlib import Path

import pytest

from sentinel_fetch.emulator import Emulator, EmulatorConfig

from .batch_harness import (
    FAST_LIMITS,
    LOCK_FILE,
    REPORT_CSV,
    Workspace,
    expected_files,
    finish_problems,
    ledger_states,
)

pytestmark = pytest.mark.slow

SIZE_SCALE = 5e-3
BANDWIDTH_BYTES_PER_S = 20_000
CHUNK_BYTES = 16_384
LIMITS = {**FAST_LIMITS, "chunk_size_bytes": CHUNK_BYTES}
PRODUCTS = 6  # more than the 4 workers: some products never start


@pytest.fixture(scope="module")
def slow_cdse() -> Iterator[Emulator]:
    """An emulator of its own, whose streams outlast the test."""
    config = EmulatorConfig(size_scale=SIZE_SCALE, bandwidth_bytes_per_s=BANDWIDTH_BYTES_PER_S)
    with Emulator(config) as emulator:
        yield emulator


def test_sigterm_stops_cleanly_with_a_report_and_the_rerun_resumes(
    slow_cdse: Emulator, tmp_path: Path
) -> None:
    emulator = slow_cdse
    emulator.faults.clear()
    emulator.stats.reset()
    ids = emulator.match_ids(
        "Collection/Name eq 'SENTINEL-2' and contains(Name,'MSIL2A') and Online eq true"
        " and ContentDate/Start ge 2023-06-01T00:00:00.000Z"
        " and ContentDate/Start lt 2023-06-02T00:00:00.000Z",
        "ContentDate/Start asc",
    )[:PRODUCTS]
    batch = expected_files(emulator, ids)
    assert len(batch) == PRODUCTS
    workspace = Workspace(tmp_path, emulator, LIMITS)
    names = workspace.write_names(item.name for item in batch.values())
    arguments = ["download", "--from", str(names), "--out", str(workspace.save_path)]
    log = tmp_path / "terminated.log"

    process = workspace.spawn(arguments, log)
    try:
        flowing = emulator.stats.wait_for(
            lambda stats: (
                sum(stats.bytes_served(item.product_id) >= CHUNK_BYTES for item in batch.values())
                >= 4
            ),
            timeout_s=120,
        )
        assert flowing and process.poll() is None, log.read_text()
        process.send_signal(signal.SIGTERM)
        exit_code = process.wait(timeout=120)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    output = log.read_text(encoding="utf-8")

    assert exit_code == 128 + signal.SIGTERM, output
    assert "Traceback" not in output
    assert re.search(rf"\b{PRODUCTS} stopped\b", output), output
    assert REPORT_CSV in output
    rows = (workspace.save_path / REPORT_CSV).read_text(encoding="utf-8").splitlines()
    assert len(rows) == 1 + PRODUCTS and all(",stopped," in row for row in rows[1:])
    assert ledger_states(workspace.save_path) == {
        item.product_id: "queued" for item in batch.values()
    }
    kept = {
        part.name.removesuffix(".part"): part.stat().st_size for part in workspace.temp.iterdir()
    }
    assert len(kept) >= 4 and all(size >= CHUNK_BYTES for size in kept.values()), kept
    assert not finish_problems(workspace.finish, batch)
    for folder in (workspace.save_path, workspace.temp, workspace.finish):
        assert not (folder / LOCK_FILE).exists(), "the clean stop let go of the folders"

    emulator.config.bandwidth_bytes_per_s = None
    # The server notices the closed connections at its next write; until then they hold
    # the account's stream slots, and a rerun would meet 429 DAT-ZIP-100 as on CDSE.
    assert emulator.stats.wait_for(lambda stats: stats.current_streams() == 0, timeout_s=60)
    rerun = workspace.run(*arguments)

    assert rerun.returncode == 0, rerun.stderr
    assert not finish_problems(workspace.finish, batch)
    assert sorted(path.name for path in workspace.finish.iterdir()) == sorted(batch)
    resumed = {event.product_id for event in emulator.stats.events("download") if event.range}
    assert {batch[name].product_id for name in kept} <= resumed
