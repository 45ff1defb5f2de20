"""A team job: three ``sentinel-fetch download`` processes, one batch, one account, faults,
one worker killed with ``kill -9`` and restarted; nothing lost, nothing fetched twice.

The must-show of cooperating runs, on both ledgers:

* **SQLite**: the three workers share one save folder (its ledger, Temp and Finish);
* **PostgreSQL** (a real server, tests/postgres.py): every worker has its own save folder
  and they share ``--ledger postgresql://...``.

The batch is 300 small products streamed at 1 MB/s per connection with random faults
(5xx and 429 answers, bodies cut mid-stream, tokens expiring mid-stream). The emulator
tolerates 12 streams per account, so only the client's shared connection budget keeps
the three workers (each allowed 4) at 4 between them. The kill lands when the emulator
has served 40 % of the batch's bytes (its counters, not a timer); the killed worker is
started again at once. Then, from what the emulator served and what is on disk:

* every product is verified (length and BLAKE3 of what the emulator serves) exactly once
  across all Finish folders, and the ledger says ``done`` for each;
* the emulator served at most 1.1 × the batch's bytes (a product fetched twice would
  double its share), no product was served whole twice beyond those the kill cut;
* the emulator never saw more than 4 concurrent streams for the account.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from blake3 import blake3

from sentinel_fetch.emulator import Emulator, EmulatorConfig
from sentinel_fetch.emulator.config import DEMO_USERNAME

from .batch_harness import FAST_LIMITS, ExpectedFile, Workspace, expected_files

pytestmark = pytest.mark.slow

PRODUCTS = 300
WORKERS = 3
SIZE_SCALE = 1e-4
BANDWIDTH_BYTES_PER_S = 1_000_000
# More than a free account's 4: the client's budget, not the emulator, must hold it.
EMULATOR_TOLERATES = 12
FAULT_RATE = 0.08
FAULT_KINDS = ("status", "cut", "expire_token")
SEED = 20261206
# Leases of 3 s: a killed worker's products return to the others 3 s later.
LIMITS = {**FAST_LIMITS, "chunk_size_bytes": 16_384, "lease_s": 3.0, "max_attempts": 10}
KILL_AT_SHARE = 0.4
RUN_TIMEOUT_S = 300.0


@pytest.fixture(scope="module")
def team_cdse(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Emulator]:
    """An emulator of the module's own: small archives, paced, tolerant of many streams."""
    config = EmulatorConfig(
        size_scale=SIZE_SCALE,
        bandwidth_bytes_per_s=BANDWIDTH_BYTES_PER_S,
        max_concurrent_downloads=EMULATOR_TOLERATES,
        max_request_events=200_000,
    )
    with Emulator(config) as emulator:
        yield emulator


def pick_batch(emulator: Emulator) -> dict[str, ExpectedFile]:
    """300 online products of every mission since June 2023 (the same ones every run)."""
    ids = emulator.match_ids(
        "Online eq true and ContentDate/Start ge 2023-06-01T00:00:00.000Z",
        "ContentDate/Start asc",
    )
    batch = expected_files(emulator, ids[:PRODUCTS])
    assert len(batch) == PRODUCTS, "the emulator catalogue changed: pick other dates"
    return batch


def wait_for(condition: object, processes: list[subprocess.Popen[bytes]], what: str) -> None:
    """Poll ``condition`` (a callable) until true; fail if every process ended first."""
    assert callable(condition)
    deadline = time.monotonic() + RUN_TIMEOUT_S
    while not condition():
        if all(process.poll() is not None for process in processes):
            raise AssertionError(f"the workers ended before {what}")
        if time.monotonic() > deadline:
            raise AssertionError(f"no {what} within {RUN_TIMEOUT_S:.0f} s")
        time.sleep(0.02)


def finish_folders(folders: list[Path]) -> dict[str, list[Path]]:
    """``file name -> every Finish folder that holds it`` (lock files aside)."""
    found: dict[str, list[Path]] = {}
    for folder in folders:
        finish = folder / "Finish"
        if not finish.is_dir():
            continue
        for entry in finish.iterdir():
            if not entry.name.startswith(".sentinel-fetch"):
                found.setdefault(entry.name, []).append(entry)
    return found


def run_team(
    tmp_path: Path, emulator: Emulator, ledger_url: str | None
) -> tuple[dict[str, ExpectedFile], list[Path], list[str]]:
    """Three workers, a kill, a restart; returns the batch, the save folders, the logs."""
    batch = pick_batch(emulator)
    workspace = Workspace(tmp_path, emulator, LIMITS)
    names = workspace.write_names(expected.name for expected in batch.values())
    total = sum(expected.length for expected in batch.values())
    shared = ledger_url is None
    folders = [workspace.save_path if shared else tmp_path / f"save-{n}" for n in range(WORKERS)]

    def command(n: int) -> list[str]:
        arguments = ["download", "--from", str(names), "--out", str(folders[n])]
        return arguments + ([] if shared else ["--ledger", str(ledger_url)])

    emulator.faults.clear()
    emulator.faults.randomize(FAULT_RATE, FAULT_KINDS, SEED)
    emulator.config.expire_midstream = True
    emulator.stats.reset()
    logs = [tmp_path / f"worker-{n}.log" for n in range(WORKERS)]
    processes = [workspace.spawn(command(n), logs[n]) for n in range(WORKERS)]
    try:
        wait_for(
            lambda: emulator.stats.bytes_served() >= KILL_AT_SHARE * total,
            processes,
            f"{KILL_AT_SHARE:.0%} of the batch served",
        )
        os.killpg(processes[0].pid, signal.SIGKILL)
        assert processes[0].wait(timeout=30) == -signal.SIGKILL
        restarted_log = tmp_path / "worker-0-restarted.log"
        logs.append(restarted_log)
        processes.append(workspace.spawn(command(0), restarted_log))
        for process in processes[1:]:
            process.wait(timeout=RUN_TIMEOUT_S)
    finally:
        emulator.faults.clear()
        emulator.config.expire_midstream = False
        for process in processes:
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()
    texts = [log.read_text(errors="replace") for log in logs]
    for process, text in zip(processes[1:], texts[1:], strict=True):
        assert process.returncode == 0, text[-3000:]
    return batch, sorted(set(folders)), texts


def check_outcome(
    emulator: Emulator, batch: dict[str, ExpectedFile], folders: list[Path], texts: list[str]
) -> None:
    total = sum(expected.length for expected in batch.values())
    found = finish_folders(folders)
    assert set(found) == set(batch), (
        f"missing {sorted(set(batch) - set(found))[:3]}, unexpected "
        f"{sorted(set(found) - set(batch))[:3]}"
    )
    twice = {name: paths for name, paths in found.items() if len(paths) > 1}
    assert twice == {}, f"{len(twice)} products in more than one Finish folder"
    for name, (path,) in found.items():
        expected = batch[name]
        data = path.read_bytes()
        assert len(data) == expected.length, name
        assert blake3(data).hexdigest() == expected.blake3, name
    for folder in folders:
        temp = folder / "Temp"
        parts = [p.name for p in temp.iterdir() if p.suffix == ".part"] if temp.is_dir() else []
        assert parts == [], f"part files left in {temp}: {parts[:3]}"

    served = emulator.stats.bytes_served()
    fired = len(emulator.faults.fired)
    print(
        f"team job: {len(batch)} products, {total} bytes; served {served / total:.3f}x; "
        f"peak {emulator.stats.peak_streams()} streams; {fired} faults; "
        f"429s {emulator.stats.throttled}"
    )
    assert fired >= 10, "faults were injected"
    assert served <= 1.1 * total, f"served {served / total:.3f} × the batch"
    # Served whole more than once: only what was in flight when the kill came (its last
    # bytes were on the wire or in buffers, not yet on disk) may be fetched again.
    refetched = [
        e.name for e in batch.values() if emulator.stats.bytes_served(e.product_id) >= 2 * e.length
    ]
    assert len(refetched) <= 4 * WORKERS, refetched
    assert emulator.stats.peak_streams(DEMO_USERNAME) <= 4
    assert emulator.stats.peak_streams() <= 4
    # Every worker that was not killed ended with its summary.
    summaries = [
        line for text in texts[1:] for line in text.splitlines() if " downloaded, " in line
    ]
    assert len(summaries) == WORKERS, texts[-1][-2000:]
    assert emulator.stats.range_requests >= 1, "partial files were resumed"
    # Taken over by another worker once its leases ran out, or handed back at once by the
    # restarted one (same machine, same folder, the old pid gone).
    taken_over = sum(text.count("taking it over from worker") for text in texts[1:])
    handed_back = sum(text.count("of this folder is gone") for text in texts[1:])
    assert taken_over + handed_back >= 1, "the killed worker's products went to others"


def test_three_workers_share_one_folder_through_the_sqlite_ledger(
    tmp_path: Path, team_cdse: Emulator
) -> None:
    batch, folders, texts = run_team(tmp_path, team_cdse, None)
    check_outcome(team_cdse, batch, folders, texts)
    import sqlite3

    uri = f"file:{folders[0] / 'sentinel-fetch-ledger.sqlite'}?mode=ro"
    with sqlite3.connect(uri, uri=True) as connection:
        states = dict(connection.execute("SELECT id, state FROM products").fetchall())
    assert sorted(set(states.values())) == ["done"], sorted(set(states.values()))
    assert len(states) == PRODUCTS


def test_three_workers_on_their_own_folders_share_a_postgresql_ledger(
    tmp_path: Path, team_cdse: Emulator, postgres_url: str
) -> None:
    batch, folders, texts = run_team(tmp_path, team_cdse, postgres_url)
    check_outcome(team_cdse, batch, folders, texts)
    from sentinel_fetch.ledger import open_ledger

    with open_ledger(postgres_url, create=False, read_only=True) as ledger:
        states = {row["id"]: row["state"] for row in ledger.entries()}
    assert sorted(set(states.values())) == ["done"]
    assert len(states) == PRODUCTS
