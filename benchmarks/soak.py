"""Soak: hundreds of products through injected faults and random ``kill -9``; nothing lost.

One invocation, two batches of the same products against an in-process CDSE emulator
(loopback only), the client always a real ``sentinel-fetch download`` subprocess:

1. **baseline**: no faults, no kills; its wall time is the yardstick.
2. **soak**: every product GET on the download host draws a fault with probability
   ``--fault-rate`` (cuts, corrupt bytes, 429 with and without ``Retry-After``, 5xx,
   stalls, access-token expiry mid-stream, ended sessions so the refresh grant fails,
   Range ignored), plus one-off faults on the catalogue (503, WAF 429), the identity
   host (503) and a few redirects; meanwhile the client is killed with SIGKILL at
   seeded random moments (during start-up/search, after some bytes, after some
   products) and rerun until a run exits 0. A last rerun must fetch nothing.

What is reported (and, for the first three, required):

* products lost (expected but not verified in ``Finish``) and corrupt files in
  ``Finish`` (size or BLAKE3 differ from what the emulator serves): both must be 0,
  checked after every kill and at the end;
* the most product streams the emulator saw open at once: must not exceed 4, a free
  account's limit. The emulator is set to tolerate more (it only observes), and after a
  kill the soak waits until the server has noticed the dead connections, so the figure
  is the client's own concurrency;
* retries: extra product requests in the emulator's log, resumes (requests with Range),
  and the retry lines of the client's debug logs;
* logins against the budget: CDSE counts a session per login and a refresh window is
  60 minutes, so a well-behaved client logs in once per hour of work. Every kill adds
  one (a new process has no token: tokens are never written to disk, by design), and so
  does every ``end_sessions`` fault (the refresh grant is refused, a new login is the
  only way on). Budget = client processes started + sessions ended + hours of work.
* wall time against the fault-free baseline.

Usage::

    python benchmarks/soak.py --short          # about a minute: CI runs this one
    python benchmarks/soak.py                  # full: more, larger products; <= 10 min

Results go to ``benchmarks/results/soak-latest.json`` and ``soak-latest.md``, plus
``soak-short.*`` or ``soak-full.*`` (or under ``--output-dir``); the exit status is 1
when an invariant was broken.
"""

from __future__ import annotations

import argparse
import collections
import io
import json
import math
import os
import platform
import random
import shlex
import shutil
import sqlite3
import sys
import tempfile
import time
import zipfile
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from blake3 import blake3

from sentinel_fetch.emulator import (
    Emulator,
    EmulatorConfig,
    RedirectFault,
    StatusFault,
)
from soak_client import ClientWorkspace, RunOutcome
from soak_report import render_markdown

#: A free CDSE account's concurrent connections; the client's default too.
ACCOUNT_LIMIT = 4
#: What the emulator tolerates during the soak: above the account limit, so that it
#: observes the client's concurrency instead of capping it.
OBSERVE_LIMIT = 16
#: Every kind ``FaultPlan.randomize`` can draw (``redirect`` needs a target: added apart).
RANDOM_KINDS = (
    "status",
    "cut",
    "corrupt",
    "stall",
    "expire_token",
    "ignore_range",
    "end_sessions",
)
#: The client's retry policy: the defaults' shape, shorter waits, so that a bounded soak
#: spends its time on faults rather than sleeping; recorded in the results.
CLIENT_LIMITS: dict[str, float] = {
    "backoff_base_s": 0.25,
    "backoff_max_s": 4.0,
    "throttle_cooldown_s": 5.0,
    "connect_timeout_s": 10.0,
    "read_timeout_s": 10.0,
    "max_attempts": 8,
    # Scaled down with the products (1 MiB of a 1 GB product is 16 kB of a 100 kB one):
    # a cut then leaves a partial file to resume, as it does at full size.
    "chunk_size_bytes": 16384,
}
RESULTS_DIR = Path(__file__).resolve().parent / "results"


@dataclass(frozen=True)
class SoakPlan:
    """The size of a soak.

    Attributes:
        mode: ``short`` or ``full``.
        products: products in the batch (a few legacy ones without checksums among them).
        legacy_share: part of the batch taken from products whose catalogue entry has no
            checksum (verified by the zip CRC test only).
        size_scale: archive size = nominal size × this.
        bandwidth_bytes_per_s: per-connection cap, so that kills land mid-stream.
        fault_rate: chance that a product GET draws a fault.
        kills: SIGKILLs to deliver.
        time_limit_s: the whole invocation (baseline included) must end by then.
    """

    mode: str
    products: int
    legacy_share: float
    size_scale: float
    bandwidth_bytes_per_s: float
    fault_rate: float
    kills: int
    time_limit_s: float


SHORT = SoakPlan("short", 300, 0.05, 1e-4, 1_000_000, 0.18, 12, 150.0)
FULL = SoakPlan("full", 2000, 0.05, 2e-4, 2_000_000, 0.2, 40, 600.0)


@dataclass(frozen=True)
class Expected:
    """What the emulator serves for one product."""

    product_id: str
    name: str
    file_name: str
    length: int
    blake3: str
    legacy: bool
    collection: str


@dataclass
class Phase:
    """One batch (baseline or soak) as it ran."""

    wall_s: float = 0.0
    runs: list[dict[str, Any]] = field(default_factory=list)
    kills: int = 0
    kills_by_trigger: dict[str, int] = field(default_factory=dict)
    corrupt_seen_after_kills: set[str] = field(default_factory=set)
    completed: bool = False
    failures: list[str] = field(default_factory=list)


def select_batch(emulator: Emulator, plan: SoakPlan) -> dict[str, Expected]:
    """``file name -> Expected``: recent products of every mission, plus some legacy ones."""
    legacy_wanted = round(plan.products * plan.legacy_share)
    recent = emulator.match_ids(
        "Online eq true and ContentDate/Start ge 2023-06-01T00:00:00.000Z",
        "ContentDate/Start asc",
    )
    older = emulator.match_ids(
        "Online eq true and ContentDate/Start lt 2020-01-01T00:00:00.000Z",
        "ContentDate/Start asc",
    )
    chosen: list[str] = []
    for product_id in older:
        if len(chosen) == legacy_wanted:
            break
        record = emulator.store.get(product_id)
        if record is not None and record.legacy:
            chosen.append(product_id)
    chosen += recent[: plan.products - len(chosen)]
    batch: dict[str, Expected] = {}
    for product_id in chosen:
        record = emulator.store.get(product_id)
        assert record is not None
        info = emulator.archives.info(record)
        file_name = f"{record.name}.zip"
        batch[file_name] = Expected(
            record.id,
            record.name,
            file_name,
            info.length,
            info.blake3,
            record.legacy,
            record.collection,
        )
    if len(batch) != plan.products:
        raise SystemExit(f"the catalogue gave {len(batch)} products, {plan.products} wanted")
    return batch


def audit(finish: Path, batch: dict[str, Expected]) -> tuple[int, list[str], list[str]]:
    """``(verified, corrupt, unexpected)`` of the finish folder against the served bytes."""
    verified = 0
    corrupt: list[str] = []
    unexpected: list[str] = []
    if not finish.is_dir():
        return 0, corrupt, unexpected
    for entry in os.scandir(finish):
        want = batch.get(entry.name)
        if want is None or not entry.is_file():
            unexpected.append(entry.name)
            continue
        data = Path(entry.path).read_bytes()
        if len(data) == want.length and blake3(data).hexdigest() == want.blake3:
            verified += 1
        else:
            corrupt.append(entry.name)
    return verified, sorted(corrupt), sorted(unexpected)


def members_intact(emulator: Emulator, expected: Expected, path: Path) -> bool:
    """Whether every file inside a differing archive still holds the served content.

    Products without a catalogue checksum can only be verified by the zip CRC test,
    which never reads the zip's own metadata (timestamps, attributes in the central
    directory): a flipped byte there is invisible to the client. Such a file is counted
    apart from real corruption, and reported.
    """
    record = emulator.store.get(expected.product_id)
    assert record is not None
    served = b"".join(
        bytes(c) for c in emulator.archives.iter_range(record, 0, expected.length, 1 << 20)
    )
    try:
        with zipfile.ZipFile(io.BytesIO(served)) as want, zipfile.ZipFile(path) as got:
            names = [info.filename for info in want.infolist()]
            if names != [info.filename for info in got.infolist()]:
                return False
            return all(want.read(name) == got.read(name) for name in names)
    except (zipfile.BadZipFile, OSError, KeyError):
        return False


def count_finished(finish: Path) -> int:
    """Files in the finish folder now (cheap enough to poll)."""
    try:
        return sum(1 for _ in os.scandir(finish))
    except FileNotFoundError:
        return 0


def ledger_states(save_path: Path) -> collections.Counter[str]:
    """How many products the job ledger has in each state."""
    path = save_path / "sentinel-fetch-ledger.sqlite"
    if not path.exists():
        return collections.Counter()
    with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as connection:
        return collections.Counter(
            dict(connection.execute("SELECT state, COUNT(*) FROM products GROUP BY state"))
        )


def wait_for_streams_to_end(emulator: Emulator, timeout_s: float = 15.0) -> float:
    """Wait until the server has noticed a killed client's connections; returns seconds."""
    began = time.monotonic()
    emulator.stats.wait_for(lambda s: s.current_streams() == 0, timeout_s=timeout_s, poll_s=0.01)
    return time.monotonic() - began


def run_record(outcome: RunOutcome, trigger: str | None) -> dict[str, Any]:
    """One client run, for the results file."""
    return {
        "trigger": trigger,
        "exit_code": outcome.exit_code,
        "killed": outcome.killed,
        "wall_s": round(outcome.wall_s, 3),
    }


def run_baseline(
    emulator: Emulator, client: ClientWorkspace, arguments: list[str], deadline: float
) -> Phase:
    """The same batch with no fault and no kill."""
    phase = Phase()
    emulator.faults.clear()
    emulator.config.expire_midstream = False
    began = time.monotonic()
    outcome = client.run(arguments, timeout_s=max(1.0, deadline - time.monotonic()))
    phase.wall_s = time.monotonic() - began
    phase.runs.append(run_record(outcome, None))
    phase.completed = outcome.exit_code == 0
    if not phase.completed:
        print(client.output_of(outcome), file=sys.stderr)
    return phase


def arm_faults(emulator: Emulator, batch: dict[str, Expected], plan: SoakPlan, seed: int) -> None:
    """Random faults on product GETs plus one-off faults on every host."""
    faults = emulator.faults
    faults.clear()
    faults.randomize(plan.fault_rate, RANDOM_KINDS, seed)
    emulator.config.expire_midstream = True
    faults.add(StatusFault(host="identity", status=503, times=1))
    faults.add(StatusFault(host="catalogue", status=503, times=1))
    faults.add(StatusFault(host="catalogue", status=429, retry_after_s=1.0, times=1))
    origin = emulator.download_url.removesuffix("/odata/v1")
    for expected in list(batch.values())[1::97]:
        faults.add(RedirectFault(location=origin + "{path}", product=expected.product_id))


class KillPlanner:
    """Draws where each kill lands: early in a run, after some bytes, after some products."""

    def __init__(self, rng: random.Random, emulator: Emulator, finish: Path, total: int):
        self.rng = rng
        self.emulator = emulator
        self.finish = finish
        self.total = total

    def next(self, kills_left: int) -> tuple[str, Callable[[], bool]]:
        """A trigger name and the condition that fires the kill."""
        rng = self.rng
        draw = rng.random()
        if draw < 0.25:
            deadline = time.monotonic() + rng.uniform(0.05, 1.2)
            return "early", lambda: time.monotonic() >= deadline
        if draw < 0.55:
            stats = self.emulator.stats
            target = stats.bytes_served() + rng.randint(20_000, 1_500_000)
            return "bytes", lambda: stats.bytes_served() >= target
        remaining = self.total - count_finished(self.finish)
        step = rng.randint(1, max(1, remaining // (kills_left + 1)))
        goal = count_finished(self.finish) + step
        extra_s = rng.uniform(0.0, 0.05)
        reached: list[float] = []

        def after_products() -> bool:
            if not reached and count_finished(self.finish) >= goal:
                reached.append(time.monotonic())
            return bool(reached) and time.monotonic() >= reached[0] + extra_s

        return "products", after_products


def run_soak(
    emulator: Emulator,
    client: ClientWorkspace,
    arguments: list[str],
    batch: dict[str, Expected],
    plan: SoakPlan,
    seed: int,
    deadline: float,
) -> Phase:
    """Kill the client ``plan.kills`` times, then rerun it until a run exits 0."""
    phase = Phase()
    planner = KillPlanner(random.Random(seed), emulator, client.finish, len(batch))
    triggers: collections.Counter[str] = collections.Counter()
    began = time.monotonic()
    while phase.kills < plan.kills and not phase.completed:
        trigger, condition = planner.next(plan.kills - phase.kills)
        outcome = client.run(
            arguments, kill_when=condition, timeout_s=max(1.0, deadline - time.monotonic())
        )
        phase.runs.append(run_record(outcome, trigger))
        if outcome.killed:
            phase.kills += 1
            triggers[trigger] += 1
            phase.runs[-1]["drain_s"] = round(wait_for_streams_to_end(emulator), 3)
            _, corrupt, _ = audit(client.finish, batch)
            phase.corrupt_seen_after_kills.update(corrupt)
        elif outcome.exit_code == 0:
            phase.completed = True
        elif outcome.exit_code != 1:
            print(client.output_of(outcome), file=sys.stderr)
            raise SystemExit(f"client run {client.runs} exited {outcome.exit_code}")
    # Products that failed for good in one run are retried by the next (the user's rerun).
    for _ in range(6):
        if phase.completed:
            break
        outcome = client.run(arguments, timeout_s=max(1.0, deadline - time.monotonic()))
        phase.runs.append(run_record(outcome, None))
        phase.completed = outcome.exit_code == 0
    phase.wall_s = time.monotonic() - began
    phase.failures = given_up(client.logs)
    phase.kills_by_trigger = dict(triggers)
    return phase


def given_up(logs: Path) -> list[str]:
    """``name: reason`` of every product a run gave up on (killed runs included).

    With a fault rate of 20 % and 8 attempts per product, giving up on a product by
    chance has a probability of about 0.2^8 (one in 400,000): a failure in the soak means
    the client treated a transient fault as final. The debug log is read rather than the
    report, which a killed run never writes.
    """
    failures = []
    for log in sorted(logs.glob("run-*.log")):
        for line in log.read_text(encoding="utf-8", errors="replace").splitlines():
            _, found, rest = line.partition("sentinel_fetch.cli: failed ")
            if found:
                failures.append(rest)
    return failures


def fault_label(fault: Any) -> str:
    """A short name for a fired fault, splitting statuses the way users meet them."""
    if isinstance(fault, StatusFault):
        if fault.status == 429:
            return "429 + Retry-After" if fault.retry_after_s is not None else "429"
        return "5xx"
    return str(fault.kind)


def client_log_counts(logs: Path) -> dict[str, int]:
    """Retry and token lines in the client's debug logs, over every run."""
    counts = {"transfer_retries": 0, "token_refused": 0, "identity_retries": 0, "search_retries": 0}
    for log in sorted(logs.glob("run-*.log")):
        for line in log.read_text(encoding="utf-8", errors="replace").splitlines():
            if "sentinel_fetch.download:" in line and "retrying in" in line:
                counts["transfer_retries"] += 1
            elif "token refused" in line:
                counts["token_refused"] += 1
            elif "identity server:" in line and "retrying" in line:
                counts["identity_retries"] += 1
            elif "sentinel_fetch.catalogue" in line and "retry" in line:
                counts["search_retries"] += 1
    return counts


def machine() -> dict[str, Any]:
    """Where the figures were measured."""
    return {
        "platform": platform.platform(),
        "python": platform.python_version(),
        "cpus": os.cpu_count(),
        "processor": platform.processor() or platform.machine(),
    }


def soak(plan: SoakPlan, seed: int, work: Path) -> dict[str, Any]:
    """Run the whole soak in ``work``; return the results."""
    deadline = time.monotonic() + plan.time_limit_s
    config = EmulatorConfig(
        size_scale=plan.size_scale,
        bandwidth_bytes_per_s=plan.bandwidth_bytes_per_s,
        max_concurrent_downloads=OBSERVE_LIMIT,
        max_request_events=2_000_000,
    )
    with Emulator(config) as emulator:
        batch = select_batch(emulator, plan)
        names = work / "products.txt"
        names.write_text("".join(f"{e.name}\n" for e in batch.values()), encoding="utf-8")
        env = emulator.env()

        def arguments(client: ClientWorkspace) -> list[str]:
            return ["download", "--from", str(names), "--out", str(client.save_path)]

        baseline_client = ClientWorkspace(work / "baseline", env, CLIENT_LIMITS)
        emulator.stats.reset()
        baseline = run_baseline(emulator, baseline_client, arguments(baseline_client), deadline)
        baseline_verified, _, _ = audit(baseline_client.finish, batch)
        shutil.rmtree(baseline_client.save_path, ignore_errors=True)

        client = ClientWorkspace(work / "soak", env, CLIENT_LIMITS)
        emulator.stats.reset()
        arm_faults(emulator, batch, plan, seed)
        phase = run_soak(emulator, client, arguments(client), batch, plan, seed, deadline)

        stats = emulator.stats
        events = stats.events()
        product_gets = [
            e for e in events if e.host == "download" and e.method == "GET" and e.product_id
        ]
        fired = emulator.faults.fired
        by_kind = collections.Counter(fault_label(f.fault) for f in fired)
        randomized = sum(1 for f in fired if f.randomized)
        # The emulator records a drawn ignore_range even for a request without Range,
        # where it changes nothing; the request log tells which ones took effect.
        random_ignore_range = sum(
            1 for f in fired if f.randomized and f.fault.kind == "ignore_range"
        )
        injected_429 = sum(
            1
            for f in fired
            if isinstance(f.fault, StatusFault) and f.fault.status == 429 and f.host == "download"
        )
        download_429 = sum(1 for e in product_gets if e.status == 429)
        range_ignored = sum(1 for e in product_gets if e.range and e.status == 200)
        refreshes = sum(stats.refreshes.values())
        failed_logins = sum(stats.failed_logins.values())
        end_sessions = by_kind.get("end_sessions", 0)
        logins = sum(stats.logins.values())
        hours = max(1, math.ceil(phase.wall_s / 3600))
        client_processes = len(phase.runs)
        login_budget = client_processes * hours + end_sessions
        peak = stats.peak_streams()

        verified, corrupt, unexpected = audit(client.finish, batch)
        lost = len(batch) - verified - len(corrupt)
        seen_corrupt = sorted(phase.corrupt_seen_after_kills | set(corrupt))
        # Legacy archives whose member files are intact: the zip test cannot see the rest.
        metadata_only = [
            name
            for name in seen_corrupt
            if batch[name].legacy
            and (client.finish / name).exists()
            and members_intact(emulator, batch[name], client.finish / name)
        ]
        real_corrupt = [name for name in seen_corrupt if name not in metadata_only]
        states = ledger_states(client.save_path)
        parts_left = sorted(p.name for p in client.temp.iterdir()) if client.temp.is_dir() else []

        # The idempotent rerun: with faults still armed, nothing may be requested.
        stats.reset()
        rerun = client.run(arguments(client), timeout_s=max(30.0, deadline - time.monotonic()))
        rerun_gets = sum(1 for e in stats.events("download") if e.method == "GET" and e.product_id)
        rerun_bytes = stats.bytes_served()
        stray = client.stray_files() + baseline_client.stray_files()

    violations = []
    if not baseline.completed:
        violations.append("the fault-free baseline did not complete")
    if not phase.completed:
        violations.append("the soak did not complete (time limit or repeated failures)")
    if real_corrupt:
        violations.append(f"corrupt files in Finish: {real_corrupt[:5]}")
    if lost:
        violations.append(f"{lost} products lost")
    if phase.failures:
        violations.append(f"products given up on after transient faults: {phase.failures[:3]}")
    if unexpected:
        violations.append(f"unexpected entries in Finish: {unexpected[:5]}")
    if peak > ACCOUNT_LIMIT:
        violations.append(f"{peak} concurrent streams, the limit is {ACCOUNT_LIMIT}")
    if logins > login_budget:
        violations.append(f"{logins} logins, budget {login_budget}")
    # "skipped" is what the ledger says today for a product renamed into Finish just
    # before a kill (the rerun finds the file and never promotes it to "done"); the file
    # itself is verified above, so it is reported apart rather than as a loss.
    if states.get("done", 0) + states.get("skipped", 0) != len(batch):
        violations.append(f"ledger states {dict(states)}")
    if parts_left:
        violations.append(f".part files left: {parts_left[:5]}")
    if rerun.exit_code != 0 or rerun_gets or rerun_bytes:
        violations.append(
            f"rerun exited {rerun.exit_code} with {rerun_gets} GETs, {rerun_bytes} bytes"
        )
    if stray:
        violations.append(f"files outside the save folder: {stray[:5]}")

    total_bytes = sum(e.length for e in batch.values())
    return {
        "mode": plan.mode,
        "ok": not violations,
        "violations": violations,
        "seed": seed,
        "plan": asdict(plan),
        "client_limits": CLIENT_LIMITS,
        "batch": {
            "products": len(batch),
            "bytes": total_bytes,
            "legacy_without_checksum": sum(e.legacy for e in batch.values()),
            "collections": dict(collections.Counter(e.collection for e in batch.values())),
        },
        "baseline": {
            "wall_s": round(baseline.wall_s, 2),
            "verified": baseline_verified,
            "completed": baseline.completed,
        },
        "soak": {
            "wall_s": round(phase.wall_s, 2),
            "wall_vs_baseline": round(phase.wall_s / baseline.wall_s, 2)
            if baseline.wall_s
            else None,
            "client_processes": client_processes,
            "kills": phase.kills,
            "kills_by_trigger": phase.kills_by_trigger,
            "runs": phase.runs,
            "completed": phase.completed,
            "products_failed_in_a_run": len(phase.failures),
            "failures": phase.failures[:20],
        },
        "integrity": {
            "verified": verified,
            "corrupt_in_finish": len(real_corrupt),
            "corrupt_seen_after_kills": len(phase.corrupt_seen_after_kills),
            "legacy_metadata_differences": metadata_only,
            "lost": lost,
            "ledger_states": dict(states),
            "ledger_skipped_not_done": states.get("skipped", 0),
            "part_files_left": len(parts_left),
            "stray_files": stray,
        },
        "faults": {
            "rate_target": plan.fault_rate,
            "product_requests": len(product_gets),
            "injected_on_product_requests": randomized,
            "injected_rate": round(randomized / len(product_gets), 3) if product_gets else 0.0,
            "ignore_range_without_effect": max(0, random_ignore_range - range_ignored),
            "effective_rate": round(
                (randomized - max(0, random_ignore_range - range_ignored)) / len(product_gets), 3
            )
            if product_gets
            else 0.0,
            "fired_by_kind": dict(sorted(by_kind.items())),
        },
        "retries": {
            "extra_product_requests": len(product_gets) - len(batch),
            "resumes_with_range": sum(1 for e in product_gets if e.range),
            "range_answered_with_200": range_ignored,
            "bytes_served": sum(e.bytes_sent for e in product_gets),
            "bytes_served_vs_batch": round(
                sum(e.bytes_sent for e in product_gets) / total_bytes, 2
            ),
            "client_log": client_log_counts(client.logs),
        },
        "logins": {
            "used": logins,
            "budget": login_budget,
            "client_processes": client_processes,
            "sessions_ended_by_faults": end_sessions,
            "refreshes": refreshes,
            "failed": failed_logins,
        },
        "concurrency": {
            "peak_streams": peak,
            "limit": ACCOUNT_LIMIT,
            "emulator_tolerates": OBSERVE_LIMIT,
            "limiter_refusals": download_429 - injected_429,
        },
        "idempotent_rerun": {
            "exit_code": rerun.exit_code,
            "product_requests": rerun_gets,
            "bytes_served": rerun_bytes,
        },
    }


def main(argv: list[str] | None = None) -> int:
    """Entry point; returns 0 when every invariant held."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", 1)[0])
    parser.add_argument("--short", action="store_true", help="300 products, about a minute")
    parser.add_argument("--seed", type=int, default=20240917, help="faults and kills")
    parser.add_argument("--products", type=int, help="override the plan's product count")
    parser.add_argument("--kills", type=int, help="override the plan's number of kills")
    parser.add_argument("--fault-rate", type=float, help="override the plan's fault rate")
    parser.add_argument("--time-limit", type=float, metavar="S", help="override the time limit")
    parser.add_argument("--output-dir", type=Path, default=RESULTS_DIR, help="results folder")
    parser.add_argument("--keep", action="store_true", help="keep the work folder (logs)")
    options = parser.parse_args(argv)
    plan = SHORT if options.short else FULL
    overrides = {
        "products": options.products,
        "kills": options.kills,
        "fault_rate": options.fault_rate,
        "time_limit_s": options.time_limit,
    }
    plan = SoakPlan(**{**asdict(plan), **{k: v for k, v in overrides.items() if v is not None}})
    print(
        f"soak ({plan.mode}): {plan.products} products, fault rate {plan.fault_rate:.0%}, "
        f"{plan.kills} kills, seed {options.seed}",
        file=sys.stderr,
    )
    work = Path(tempfile.mkdtemp(prefix="sentinel-fetch-soak-"))
    began = time.monotonic()
    try:
        results = soak(plan, options.seed, work)
    finally:
        if options.keep:
            print(f"work folder kept: {work}", file=sys.stderr)
        else:
            shutil.rmtree(work, ignore_errors=True)
    results["command"] = shlex.join(["python", "benchmarks/soak.py", *(argv or sys.argv[1:])])
    results["date"] = datetime.now(timezone.utc).isoformat(timespec="seconds")
    results["machine"] = machine()
    results["total_wall_s"] = round(time.monotonic() - began, 1)
    options.output_dir.mkdir(parents=True, exist_ok=True)
    markdown = render_markdown(results)
    # soak-latest.* is the last run of either mode; soak-<mode>.* keeps each mode's last.
    for stem in ("soak-latest", f"soak-{plan.mode}"):
        (options.output_dir / f"{stem}.json").write_text(
            json.dumps(results, indent=2) + "\n", encoding="utf-8"
        )
        (options.output_dir / f"{stem}.md").write_text(markdown, encoding="utf-8")
    print(markdown)
    return 0 if results["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
