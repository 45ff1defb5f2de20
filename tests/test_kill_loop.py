"""``kill -9`` a real download at random moments, again and again: nothing is ever lost.

A batch runs for days on a laptop that sleeps, crashes and gets killed. The promise is
that rerunning the same command always converges: every product ends verified in
``Finish``, no half-written file ever appears there, the ledger agrees with the disk,
and once done a rerun fetches nothing at all (peers.md §3: re-download and skip-existing
bugs, truncated zips).

The loop starts ``sentinel-fetch download`` as a subprocess against the emulator and
sends SIGKILL at seeded random moments, each aimed at one phase of a run:

==========  ===========================================================================
startup     a random delay after the process starts (imports, config, credentials)
login       just after the identity host answered the password grant
search      just after the catalogue answered (the name search is in flight)
stream      after a random number of product bytes were served in this run
complete    when a ``.part`` file holds every byte (verified, not yet renamed)
rename      the moment a new file appears in ``Finish``
end         once every product is in ``Finish`` (ledger and report not yet written)
==========  ===========================================================================

After every kill the finish folder must hold only verified files. The emulator keeps
CDSE's limit of 4 streams, and a fresh process starts at once while the killed one's
streams are still open on the server, so restarts meet 429 DAT-ZIP-100 as they would on
CDSE. Set ``SENTINEL_FETCH_KILL_SEED`` to replay a run; the seed is printed.
"""

from __future__ import annotations

import os
import random
import signal
import sqlite3
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from sentinel_fetch.emulator import Emulator, EmulatorConfig, StallFault

from .batch_harness import (
    FAST_LIMITS,
    LEDGER_FILE,
    LOCK_FILE,
    REPORT_CSV,
    REPORT_JSON,
    ExpectedFile,
    Workspace,
    expected_files,
    finish_problems,
    ledger_states,
)

pytestmark = pytest.mark.slow

# Archives of 0.5-2 MB, streamed at 600 kB/s per connection: with 4 connections a batch
# of 16 products needs about 8 s of streaming, time enough to kill it two dozen times.
SIZE_SCALE = 2e-3
BANDWIDTH_BYTES_PER_S = 600_000
PRODUCT_COUNT = 16
MIN_BYTES, MAX_BYTES = 500_000, 2_000_000
KILLS = 24
DEFAULT_SEED = 20240917

# Phases that need the batch to still have work to do, and those that do not.
PROGRESS_PHASES = ("stream", "complete", "rename")
EARLY_PHASES = ("startup", "login", "search")
# 16 kB chunks: 1 MiB of a 1 GB product, scaled like the archives, so a kill mid-stream
# leaves a partial file for the next run to resume with Range.
LIMITS = {**FAST_LIMITS, "chunk_size_bytes": 16_384}
POLL_S = 0.001
TRIGGER_TIMEOUT_S = 30.0


@pytest.fixture(scope="module")
def slow_cdse(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Emulator]:
    """An emulator of its own: larger archives and a bandwidth cap, so kills land mid-stream."""
    config = EmulatorConfig(size_scale=SIZE_SCALE, bandwidth_bytes_per_s=BANDWIDTH_BYTES_PER_S)
    with Emulator(config) as emulator:
        yield emulator


def pick_products(emulator: Emulator) -> dict[str, ExpectedFile]:
    """Sixteen online Sentinel-2 L2A products of 0.5-2 MB (the same ones on every run)."""
    ids = emulator.match_ids(
        "Collection/Name eq 'SENTINEL-2' and contains(Name,'MSIL2A') and Online eq true"
        " and ContentDate/Start ge 2023-06-01T00:00:00.000Z"
        " and ContentDate/Start lt 2023-06-15T00:00:00.000Z",
        "ContentDate/Start asc",
    )
    chosen: dict[str, ExpectedFile] = {}
    for file_name, expected in expected_files(emulator, ids).items():
        if MIN_BYTES <= expected.length <= MAX_BYTES:
            chosen[file_name] = expected
        if len(chosen) == PRODUCT_COUNT:
            break
    assert len(chosen) == PRODUCT_COUNT, "the emulator catalogue changed: pick other dates"
    return chosen


@dataclass
class KillOutcome:
    """What one run of the loop did."""

    phase: str
    killed: bool
    exit_code: int
    finished_before: int
    finished_after: int


class KillLoop:
    """Runs the command, waits for a phase, kills it; checks the disk after each kill."""

    def __init__(
        self,
        workspace: Workspace,
        emulator: Emulator,
        expected: dict[str, ExpectedFile],
        arguments: list[str],
        rng: random.Random,
    ) -> None:
        self.workspace = workspace
        self.emulator = emulator
        self.expected = expected
        self.arguments = arguments
        self.rng = rng
        self.logs = workspace.root / "logs"
        self.logs.mkdir()
        self.runs = 0

    def finished(self) -> int:
        """Products in ``Finish`` now (a run's lock file is not one)."""
        finish = self.workspace.finish
        return (
            sum(1 for entry in finish.iterdir() if entry.name != LOCK_FILE)
            if finish.is_dir()
            else 0
        )

    def bytes_left(self) -> int:
        """Bytes neither in ``Finish`` nor in a ``.part`` file."""
        left = 0
        for file_name, want in self.expected.items():
            if (self.workspace.finish / file_name).exists():
                continue
            part = self.workspace.temp / f"{file_name}.part"
            left += want.length - (part.stat().st_size if part.exists() else 0)
        return left

    def complete_part(self) -> bool:
        """Whether some ``.part`` file holds every byte of its product."""
        temp = self.workspace.temp
        if not temp.is_dir():
            return False
        for part in temp.iterdir():
            want = self.expected.get(part.name.removesuffix(".part"))
            try:
                if want is not None and part.stat().st_size == want.length:
                    return True
            except FileNotFoundError:
                continue
        return False

    def trigger(self, phase: str) -> Callable[[], bool]:
        """A condition that becomes true when the run has reached ``phase``."""
        stats = self.emulator.stats
        if phase == "startup":
            deadline = time.monotonic() + self.rng.uniform(0.0, 0.6)
            return lambda: time.monotonic() >= deadline
        if phase == "login":
            logins = sum(stats.logins.values())
            return lambda: sum(stats.logins.values()) > logins
        if phase == "search":
            answered = stats.requests("catalogue")
            return lambda: stats.requests("catalogue") > answered
        if phase == "stream":
            # At most half of what is left, so the kill always comes before the batch ends.
            most = max(16_000, min(1_500_000, self.bytes_left() // 2))
            target = stats.bytes_served() + self.rng.randint(16_000, most)
            return lambda: stats.bytes_served() >= target
        if phase == "complete":
            # Should polling miss the moment, the rename right after it is the fallback.
            before = self.finished()
            return lambda: self.complete_part() or self.finished() > before
        if phase == "rename":
            before = self.finished()
            return lambda: self.finished() > before
        if phase == "end":
            return lambda: self.finished() == len(self.expected)
        raise ValueError(phase)

    def run_once(self, phase: str) -> KillOutcome:
        """One run of the command, killed with SIGKILL when ``phase`` is reached."""
        self.runs += 1
        finished_before = self.finished()
        # Drawn before the start, so the condition does not count this run's own work.
        reached = self.trigger(phase)
        log = self.logs / f"run-{self.runs:02d}-{phase}.log"
        process = self.workspace.spawn(self.arguments, log)
        killed = False
        try:
            deadline = time.monotonic() + TRIGGER_TIMEOUT_S
            while process.poll() is None and not reached():
                if time.monotonic() > deadline:
                    pytest.fail(f"run {self.runs}: phase {phase!r} never came ({log})")
                time.sleep(POLL_S)
            if phase in ("stream", "rename", "end"):
                # A few milliseconds later, so the kill lands anywhere around the moment.
                time.sleep(self.rng.uniform(0.0, 0.004))
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGKILL)
                killed = True
            exit_code = process.wait(timeout=10)
        finally:
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()
        if killed and exit_code != -signal.SIGKILL:
            killed = False  # it exited on its own between the check and the signal
        if not killed and exit_code != 0:
            pytest.fail(f"run {self.runs} ({phase}) exited {exit_code}:\n{log.read_text()}")
        problems = finish_problems(self.workspace.finish, self.expected)
        assert not problems, f"after run {self.runs} ({phase}, killed={killed}): {problems}"
        # The ledger may lag behind the disk (a kill between rename and record), never lead.
        on_disk = {
            item.product_id
            for item in self.expected.values()
            if (self.workspace.finish / item.file_name).exists()
        }
        try:
            states = ledger_states(self.workspace.save_path)
        except sqlite3.Error:  # killed before the ledger had its tables
            states = {}
        claimed = {product_id for product_id, state in states.items() if state == "done"}
        assert claimed <= on_disk, f"run {self.runs} ({phase}): done but not in Finish"
        return KillOutcome(phase, killed, exit_code, finished_before, self.finished())


def schedule(rng: random.Random) -> list[str]:
    """The phases to aim at: every phase several times, shuffled; ``end`` comes last."""
    phases = (
        ["startup"] * 3 + ["login"] * 2 + ["search"] * 4 + ["stream"] * 7 + ["complete"] * 4
    ) + ["rename"] * 3
    rng.shuffle(phases)
    return [*phases, "end"]


def test_batch_survives_kill_9_at_random_points(slow_cdse: Emulator, tmp_path: Path) -> None:
    """≥ 20 SIGKILLs, then reruns converge: all verified, ledger done, a rerun fetches nothing."""
    seed = int(os.environ.get("SENTINEL_FETCH_KILL_SEED", DEFAULT_SEED))
    print(f"kill loop seed: {seed} (replay with SENTINEL_FETCH_KILL_SEED={seed})")
    rng = random.Random(seed)
    emulator = slow_cdse
    emulator.faults.clear()
    emulator.stats.reset()
    expected = pick_products(emulator)
    workspace = Workspace(tmp_path, emulator, LIMITS)
    names = workspace.write_names(item.name for item in expected.values())
    arguments = ["download", "--from", str(names), "--out", str(workspace.save_path)]
    loop = KillLoop(workspace, emulator, expected, arguments, rng)

    started = time.monotonic()
    outcomes: list[KillOutcome] = []
    for phase in schedule(rng):
        left = len(expected) - loop.finished()
        if phase in PROGRESS_PHASES and left <= 1:
            phase = rng.choice(EARLY_PHASES)  # keep work for the phases still to come
        outcomes.append(loop.run_once(phase))
    while sum(o.killed for o in outcomes) < KILLS - 4:
        outcomes.append(loop.run_once(rng.choice(EARLY_PHASES)))

    kills = [o for o in outcomes if o.killed]
    midway = Counter(o.phase for o in kills if o.finished_before < len(expected))
    summary = ", ".join(f"{phase}: {number}" for phase, number in sorted(midway.items()))
    print(f"{len(kills)} kills in {loop.runs} runs ({time.monotonic() - started:.1f} s); {summary}")
    assert len(kills) >= 20
    # The loop proves something only if kills landed inside the batch, in every phase.
    for phase in ("startup", "search", "stream", "complete", "rename"):
        assert midway[phase] >= 2, f"too few kills while {phase}: {midway}"
    assert any(o.phase == "end" and o.killed for o in outcomes), "no kill after the last rename"
    # Kills mid-stream left partial files, and later runs resumed them.
    assert emulator.stats.range_requests > 0

    # The run that completes.
    final = workspace.run(*arguments)
    assert final.returncode == 0, final.stderr
    assert not finish_problems(workspace.finish, expected)
    assert sorted(p.name for p in workspace.finish.iterdir()) == sorted(expected)
    assert list(workspace.temp.iterdir()) == [], "a .part file outlived its product"
    assert workspace.stray_files() == []
    assert allowed_save_entries(workspace.save_path)
    states = ledger_states(workspace.save_path)
    assert set(states) == {item.product_id for item in expected.values()}

    # The idempotent rerun: not one product request, not one byte.
    emulator.stats.reset()
    rerun = workspace.run(*arguments)
    assert rerun.returncode == 0, rerun.stderr
    assert emulator.stats.events("download") == []
    assert emulator.stats.bytes_served() == 0
    assert ledger_states(workspace.save_path) == states
    assert not finish_problems(workspace.finish, expected)

    not_done = {product_id: state for product_id, state in states.items() if state != "done"}
    assert not_done == {}, not_done


def allowed_save_entries(save_path: Path) -> bool:
    """Whether the save folder holds only what a download job keeps there."""
    allowed = {
        "Finish",
        "Temp",
        LEDGER_FILE,
        f"{LEDGER_FILE}-wal",
        f"{LEDGER_FILE}-shm",
        REPORT_CSV,
        REPORT_JSON,
    }
    extra = {entry.name for entry in save_path.iterdir()} - allowed
    assert not extra, f"unexpected entries in the save folder: {sorted(extra)}"
    return True


class LedgerNotCaughtUpError(AssertionError):
    """The ledger did not catch up with a product that reached Finish before a kill."""


@pytest.mark.parametrize("leftover", ["none", "complete part"])
def test_a_kill_between_rename_and_ledger_write_still_ends_done(
    slow_cdse: Emulator, tmp_path: Path, leftover: str
) -> None:
    """The crash window the kill loop aims at with ``rename``/``end``, hit every time.

    Another process (here the test) holds the ledger's write lock, as a ``status`` or a
    backup tool might. The client renames the verified file into ``Finish``, then waits
    on the lock to record ``done``; it is killed right there. The ledger may lose that
    last state change (its docstring says so); the rerun must then re-derive it from the
    file: the product is ``done``, fetched once.

    Two ways in: the product streams, or an earlier run left a complete ``.part`` that
    only needs its check and rename (the download host's 416 answer is delayed so the
    lock is taken first). Either way the ledger says ``downloading``: the engine records
    it when a worker takes the product, before any request; the lock is taken once the
    request is on the wire (the account's connection slot, itself a ledger write, is
    held by then, and it is given back by a thread of its own).
    """
    emulator = slow_cdse
    emulator.faults.clear()
    emulator.stats.reset()
    (expected,) = list(pick_products(emulator).values())[:1]
    workspace = Workspace(tmp_path, emulator, LIMITS)
    names = workspace.write_names([expected.name])
    arguments = ["download", "--from", str(names), "--out", str(workspace.save_path)]
    ledger_path = workspace.save_path / LEDGER_FILE
    part = workspace.temp / f"{expected.file_name}.part"
    finished = workspace.finish / expected.file_name
    if leftover == "complete part":
        record = emulator.store.get(expected.product_id)
        assert record is not None
        workspace.temp.mkdir(parents=True)
        part.write_bytes(
            b"".join(
                bytes(c) for c in emulator.archives.iter_range(record, 0, expected.length, 1 << 20)
            )
        )
        emulator.faults.add(StallFault(product=expected.product_id, stall_s=1.5))
    state_before_rename = "downloading"
    process = workspace.spawn(arguments, tmp_path / "client.log")
    holder = None
    try:
        deadline = time.monotonic() + TRIGGER_TIMEOUT_S

        def about_to_finish() -> bool:
            # The request is on the wire (its connection slot, a ledger write of its
            # own in a team job, is taken): from here only the rename and the ledger
            # writes after it are left.
            on_the_wire = (
                bool(emulator.faults.fired)
                if leftover == "complete part"
                else emulator.stats.bytes_served(expected.product_id) > 0
            )
            if not on_the_wire:
                return False
            try:
                state = ledger_states(workspace.save_path).get(expected.product_id)
                return state == state_before_rename and not finished.exists()
            except sqlite3.Error:  # not created yet
                return False

        while not about_to_finish():
            assert process.poll() is None and time.monotonic() < deadline, "never started"
            time.sleep(POLL_S)
        holder = sqlite3.connect(ledger_path, timeout=10, isolation_level=None)
        holder.execute("BEGIN IMMEDIATE")
        while not finished.exists():
            assert process.poll() is None and time.monotonic() < deadline, "never renamed"
            time.sleep(POLL_S)
        os.killpg(process.pid, signal.SIGKILL)
        assert process.wait(timeout=10) == -signal.SIGKILL
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
        if holder is not None:
            holder.rollback()
            holder.close()

    assert not finish_problems(workspace.finish, {expected.file_name: expected})
    assert ledger_states(workspace.save_path) == {expected.product_id: state_before_rename}
    emulator.faults.clear()
    emulator.stats.reset()
    rerun = workspace.run(*arguments)
    assert rerun.returncode == 0, rerun.stderr
    assert emulator.stats.events("download") == []
    state = ledger_states(workspace.save_path)[expected.product_id]
    if state != "done":
        raise LedgerNotCaughtUpError(f"the ledger says {state!r} for a verified, finished product")
