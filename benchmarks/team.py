"""Team jobs: three cooperating workers of one account share its connection budget.

Three ``client_driver.py download`` processes start at once on one batch and one save
folder (the SQLite ledger in it): each claims products through leases, and every request
takes one of the account's connection slots in the ledger. The emulator paces every
connection at 20 MB/s, like CDSE, so the most the account can get is its limit × 20 MB/s:

* a free account (4 connections, the emulator's limit 4): 80 MB/s, whatever the number
  of workers; three workers each allowed 4 requests must still never open more than 4;
* ``max_connections = 8`` for an account whose emulator limit is 8: 160 MB/s.

The aggregate rate is the batch's bytes over the union of the workers' download calls
(from the first one's start to the last one's end, wall clock), so a worker that waits
idle for slots, a slow start or a tail all count against it. The emulator's peak of
concurrent streams for the account is read from its stats: above the limit, the row
fails whatever the rate. The baseline is the theoretical cap, as in
``download_throttled``.

Alone: ``.venv/bin/python benchmarks/team.py [--quick] [--rounds N]``.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

from downloads import _prepare
from harness import (
    DRIVER,
    MB,
    Context,
    EmulatorProcess,
    Row,
    Spawned,
    Target,
    ratios_of,
    remove,
    settle,
    shown,
)

CAP = 20 * MB
WORKERS = 3


def _team_round(
    context: Context,
    emulator: EmulatorProcess,
    names: list[str],
    total: int,
    max_connections: int,
) -> tuple[float, int, float]:
    """One round: three workers on one folder. Returns (MB/s, peak streams, CPU-s)."""
    out = context.scratch("team")
    emulator.admin("DELETE", "stats")
    command = [context.python, str(DRIVER), "download", "--out", str(out), "--workers", "4"]
    if max_connections != 4:
        command += ["--max-connections", str(max_connections)]
    command += names
    context.log(f"  $ {WORKERS} × {shown(command[:8])} … ({len(names)} names)")
    spawned = [
        Spawned(command, emulator.client_env(), cwd=context.work_dir) for _ in range(WORKERS)
    ]
    measured = [process.reap() for process in spawned]
    summaries = []
    for run in measured:
        if run.returncode != 0:
            raise RuntimeError(f"a worker failed ({run.returncode}): {run.stderr.strip()}")
        summaries.append(json.loads(run.stdout.strip().splitlines()[-1]))
    began = min(summary["began_at"] for summary in summaries)
    ended = max(summary["ended_at"] for summary in summaries)
    received = sum(summary["bytes"] for summary in summaries)
    if received < total:
        raise RuntimeError(f"the workers received {received} bytes of {total}")
    stats = emulator.admin("GET", "stats?events=0")
    peak = max(stats["streams"]["peak_by_user"].values(), default=0)
    served = sum(stats["bytes_served"].values())
    cpu_s = sum(run.cpu_s for run in measured)
    context.log(
        f"    {total / MB:,.0f} MB in {ended - began:.1f} s; emulator served "
        f"{served / total:.3f}× the batch; peak {peak} streams; workers' CPU {cpu_s:.1f} s"
    )
    remove(out)
    settle()
    return total / (ended - began) / MB, peak, cpu_s


def _configuration(
    context: Context, limit: int, count: int, size: int, rounds: int
) -> tuple[list[float], list[int], list[float]]:
    extra = ["--bandwidth", "20MB", "--max-downloads", str(limit)]
    with EmulatorProcess(context, size, extra) as emulator:
        products, _ = _prepare(context, emulator, count)
        total = sum(product.size for product in products)
        names = [product.name for product in products]
        rates, peaks, cpu = [], [], []
        for _ in range(rounds):
            rate, peak, cpu_s = _team_round(context, emulator, names, total, limit)
            rates.append(rate)
            peaks.append(peak)
            cpu.append(cpu_s)
    return rates, peaks, cpu


def team(context: Context) -> list[Row]:
    """3 workers × 1 account at 20 MB/s per connection: 4 and 8 connections."""
    rounds = context.rounds_for(3, 1)
    rows: list[Row] = []
    for limit in (4, 8):
        # About 6 waves of products per connection: a tail of one wave is ~3 % of the run.
        count, size = (2 * limit, 20 * MB) if context.quick else (6 * limit, 100 * MB)
        rates, peaks, cpu = _configuration(context, limit, count, size, rounds)
        theoretical = [limit * CAP / MB] * rounds
        worst_peak = max(peaks)
        budget = "free account" if limit == 4 else "max_connections = 8"
        rows.append(
            Row(
                "team",
                14,
                f"{WORKERS} workers × 1 account ({budget}), {count} × {size / MB:g} MB at "
                f"20 MB/s per connection",
                "MB/s",
                rates if worst_peak <= limit else [0.0] * rounds,
                f"{limit} × 20 MB/s",
                theoretical,
                ratios_of(rates, theoretical) if worst_peak <= limit else [0.0] * rounds,
                Target("ratio", ">=", 0.97),
                f"emulator limit {limit}; peak streams {worst_peak} (must be ≤ {limit}); "
                f"workers' CPU {sorted(cpu)[len(cpu) // 2]:.1f} s per round",
            )
        )
    return rows


def main(argv: list[str] | None = None) -> int:
    """Run the team benchmark alone and print its rows."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--rounds", type=int)
    parser.add_argument("--data-dir", type=Path)
    arguments = parser.parse_args(argv)
    base = Path(tempfile.gettempdir()) / "sentinel-fetch-bench"
    context = Context(
        quick=arguments.quick,
        data_dir=arguments.data_dir or base / "emulator",
        work_dir=base / "work",
        rounds=arguments.rounds,
    )
    context.work_dir.mkdir(parents=True, exist_ok=True)
    rows = team(context)
    for row in rows:
        ratio = row.ratio
        shown_ratio = f"{ratio.median:.3f} ({ratio.low:.3f}-{ratio.high:.3f})" if ratio else "-"
        print(f"{row.metric}: {row.summary.median:.1f} {row.unit}; ratio {shown_ratio}; {row.note}")
    return 0 if all(row.met is not False for row in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
