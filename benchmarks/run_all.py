"""Run the benchmark suite, print a summary table, write ``benchmarks/results/latest.*``.

Usage (from the repository root)::

    python benchmarks/run_all.py            # everything, full rounds and sizes
    python benchmarks/run_all.py --quick    # a sanity pass: fewer rounds, small products
    python benchmarks/run_all.py --only download_single --only startup
    python benchmarks/run_all.py --list     # the benchmark names

Like every script here it imports its siblings by name (``harness``...), so it runs from
any folder.

Exit status: 0 when every target is met, 1 when a target is missed, 2 when a benchmark
could not run (its error is in the table and in ``latest.json``).
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
import tempfile
import time
import traceback
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from archive_info import archive_info
from bands import bands
from downloads import (
    download_parallel,
    download_single,
    download_small,
    download_throttled,
    resume_after_kill,
)
from faults import faults
from harness import (
    Context,
    Row,
    Target,
    load_average,
    machine_facts,
    ratios_of,
    run_measured,
)
from search_listing import search_listing, search_memory
from startup import startup
from team import team

RESULTS_DIR = Path(__file__).resolve().parent / "results"
EMULATOR_CURL = Path(__file__).resolve().parent / "emulator_curl.py"


def emulator_curl(context: Context) -> list[Row]:
    """Item 10: the emulator itself is fast enough (``emulator_curl.py``, in the same run)."""
    size = 128 * 1024**2 if context.quick else 1024**3
    summary_path = context.work_dir / "emulator_curl.json"
    command = [context.python, str(EMULATOR_CURL), "--rounds", str(context.rounds_for(5, 2))]
    command += ["--size", str(size), "--data-dir", str(context.data_dir)]
    command += ["--json", str(summary_path)]
    context.log(f"  $ {' '.join(command)}")
    # Its exit status only says whether its own target was met; the rows say it too.
    measured = run_measured(command, check=False)
    if not summary_path.exists():
        raise RuntimeError(f"emulator_curl.py wrote no summary: {measured.stderr.strip()}")
    for line in measured.stdout.strip().splitlines():
        context.log(f"  | {line}")
    rows = {row["config"]: row for row in json.loads(summary_path.read_text())["rows"]}
    summary_path.unlink()
    baseline = rows["file:// -> /dev/null (baseline)"]
    file_baseline = rows["file:// -> file"]

    def row(config: str, item: int, target: Target | None, reference: dict[str, Any]) -> Row:
        values = rows[config]["values"]
        return Row(
            "emulator_curl",
            item,
            f"curl from the emulator, {config} ({size // 1024**2} MiB)",
            "MB/s",
            values,
            f"curl {reference['config']}",
            reference["values"],
            rows[config].get("ratios") or ratios_of(values, reference["values"]),
            target,
            "emulator in its own process; the baseline is curl reading the archive file",
        )

    return [
        row("http -> /dev/null", 10, Target("value", ">=", 1000), baseline),
        row("https -> /dev/null", 0, None, baseline),
        row("https -> file", 0, None, file_baseline),
    ]


@dataclass(frozen=True)
class Benchmark:
    """A named benchmark and the issue items it answers."""

    name: str
    run: Callable[[Context], list[Row]]
    items: str


BENCHMARKS = [
    Benchmark("download_single", download_single, "1, 7"),
    Benchmark("download_parallel", download_parallel, "2, 6, 7"),
    Benchmark("download_small", download_small, "3"),
    Benchmark("download_throttled", download_throttled, "4"),
    Benchmark("resume_after_kill", resume_after_kill, "5"),
    Benchmark("search_listing", search_listing, "8"),
    Benchmark("search_memory", search_memory, "8"),
    Benchmark("startup", startup, "9"),
    Benchmark("emulator_curl", emulator_curl, "10"),
    Benchmark("archive_info", archive_info, "11"),
    Benchmark("bands", bands, "12"),
    Benchmark("faults", faults, "13"),
    Benchmark("team", team, "14"),
]
#: Names that select the benchmark which measures them.
ALIASES = {
    "memory": ["download_parallel"],
    "cpu": ["download_single", "download_parallel"],
    "cpu_per_gb": ["download_single", "download_parallel"],
}


def select(only: Sequence[str]) -> list[Benchmark]:
    """The benchmarks ``--only`` asks for, in suite order (all of them if none).

    Example:
        >>> [b.name for b in select(["memory", "startup"])]
        ['download_parallel', 'startup']
    """
    if not only:
        return list(BENCHMARKS)
    wanted: set[str] = set()
    known = {benchmark.name for benchmark in BENCHMARKS}
    for entry in only:
        for name in entry.split(","):
            name = name.strip()
            if name in ALIASES:
                wanted.update(ALIASES[name])
            elif name in known:
                wanted.add(name)
            else:
                choices = ", ".join(sorted(known | set(ALIASES)))
                raise SystemExit(f"unknown benchmark {name!r}; choose from {choices}")
    return [benchmark for benchmark in BENCHMARKS if benchmark.name in wanted]


# -- rendering --------------------------------------------------------------------------


def _number(value: float) -> str:
    if value == 0:
        return "0"
    if abs(value) >= 100:
        return f"{value:,.0f}"
    if abs(value) >= 10:
        return f"{value:.1f}"
    return f"{value:.2f}" if abs(value) >= 0.1 else f"{value:.3f}"


def _cells(row: Row) -> dict[str, str]:
    summary = row.summary
    ratio = row.ratio
    met = {True: "yes", False: "**NO**", None: ""}[row.met]
    if row.noisy:
        met = f"{met} (noisy)" if met else "(noisy)"
    baseline = ""
    if row.baseline_values:
        baseline = f"{_number(sorted(row.baseline_values)[len(row.baseline_values) // 2])}"
        baseline = f"{row.baseline}: {baseline}"
    return {
        "#": str(row.item) if row.item else "",
        "benchmark": row.benchmark,
        "metric": row.metric,
        "median (min–max)": (
            f"{_number(summary.median)} ({_number(summary.low)}–{_number(summary.high)}) {row.unit}"
        ),
        "spread": f"{summary.spread_pct:.0f} %",
        "baseline (median)": baseline,
        "ratio (min–max)": (
            f"{ratio.median:.3f} ({ratio.low:.2f}–{ratio.high:.2f})" if ratio is not None else ""
        ),
        "target": row.target.text(row.unit) if row.target else "",
        "met": met,
    }


def markdown_table(rows: Sequence[Row]) -> str:
    """The rows as a GitHub markdown table."""
    lines: list[str] = []
    for index, row in enumerate(rows):
        cells = _cells(row)
        if index == 0:
            lines.append("| " + " | ".join(cells) + " |")
            lines.append("|" + "---|" * len(cells))
        escaped = (value.replace("|", "\\|") for value in cells.values())
        lines.append("| " + " | ".join(escaped) + " |")
    return "\n".join(lines)


def text_table(rows: Sequence[Row]) -> str:
    """The rows as a plain-text table for a terminal (metric text wrapped off)."""
    columns = ["#", "benchmark", "median (min–max)", "ratio (min–max)", "target", "met"]
    table = [[_cells(row)[column] for column in columns] for row in rows]
    widths = [
        max(len(column), *(len(line[index]) for line in table))
        for index, column in enumerate(columns)
    ]
    out = ["  ".join(column.ljust(width) for column, width in zip(columns, widths, strict=True))]
    for row, line in zip(rows, table, strict=True):
        out.append("  ".join(cell.ljust(width) for cell, width in zip(line, widths, strict=True)))
        out.append(f"    {row.metric}; vs {row.baseline or '—'}")
    return "\n".join(out)


def markdown_report(
    rows: Sequence[Row],
    facts: dict[str, Any],
    command: str,
    errors: dict[str, str],
    loads: dict[str, str] | None = None,
) -> str:
    """``latest.md``: a section ready for the README's "Performance" part."""
    loads = loads or {}
    lines = [
        "## Performance",
        "",
        f"Measured with `{command}` on {facts['date']}: {facts['cpu']}, {facts['cores']} "
        f"cores, {facts['memory_gib']} GiB RAM, Python {facts['python']}, {facts['curl']}, "
        f"{facts['platform']}; load average at the start: {facts['load_average']}.",
        "",
        "The CDSE emulator ran as a separate process serving HTTPS on loopback; the client "
        "and curl each ran as their own processes and wrote new files on the same disk. "
        "Every ratio is our client over a baseline measured in the same round (for "
        "CPU-seconds and memory, lower is better), summarised as the median over rounds "
        "with the worst and best round; a row whose rounds spread more than 25 % is marked "
        "noisy. MB = 10^6 bytes.",
        "",
        markdown_table(rows),
    ]
    if loads:
        lines += [
            "",
            "Load average (1, 5, 15 min) after each benchmark: "
            + "; ".join(f"{name} {load}" for name, load in loads.items())
            + ". Above 2 on this 2-core machine, other work competed with the benchmark.",
        ]
    if errors:
        lines += ["", "Benchmarks that could not run:", ""]
        lines += [f"- `{name}`: {message}" for name, message in errors.items()]
    lines += [
        "",
        "Notes:",
        "",
        *(f"- {row.benchmark}, {row.metric}: {row.note}" for row in rows if row.note),
    ]
    return "\n".join(lines) + "\n"


# -- the run ----------------------------------------------------------------------------


def main(argv: Sequence[str] | None = None) -> int:
    """Run the selected benchmarks; see the module docstring for the exit status."""
    parser = argparse.ArgumentParser(prog="python benchmarks/run_all.py", description=__doc__)
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.add_argument("--quick", action="store_true", help="few rounds, small products")
    parser.add_argument(
        "--only", action="append", default=[], metavar="NAME", help="run only these (repeatable)"
    )
    parser.add_argument("--list", action="store_true", help="list the benchmarks and exit")
    parser.add_argument("--rounds", type=int, help="rounds for every benchmark")
    parser.add_argument(
        "--data-dir",
        type=Path,
        default=Path(tempfile.gettempdir()) / "sentinel-fetch-bench" / "emulator",
        help="emulator cache, kept between runs (default: %(default)s)",
    )
    parser.add_argument(
        "--work-dir",
        type=Path,
        default=Path(tempfile.gettempdir()) / "sentinel-fetch-bench" / "work",
        help="where downloads land; emptied after every run (default: %(default)s)",
    )
    parser.add_argument("--results-dir", type=Path, default=RESULTS_DIR)
    parser.add_argument("--seed", type=int, default=20231001, help="shuffles run order")
    arguments = parser.parse_args(argv)
    if arguments.list:
        for benchmark in BENCHMARKS:
            print(f"{benchmark.name:20} items {benchmark.items}")
        print(f"aliases: {', '.join(f'{k} -> {v}' for k, v in ALIASES.items())}")
        return 0
    selected = select(arguments.only)
    command = shlex.join(["python", "benchmarks/run_all.py", *(argv or sys.argv[1:])])
    arguments.work_dir.mkdir(parents=True, exist_ok=True)
    context = Context(
        quick=arguments.quick,
        data_dir=arguments.data_dir,
        work_dir=arguments.work_dir,
        rounds=arguments.rounds,
        seed=arguments.seed,
    )
    facts = machine_facts()
    context.log(f"$ {command}")
    context.log(
        f"{facts['cpu']}, {facts['cores']} cores, {facts['memory_gib']} GiB, "
        f"Python {facts['python']}, {facts['curl']}; load average {facts['load_average']}; "
        f"data in {arguments.data_dir}"
    )
    rows: list[Row] = []
    errors: dict[str, str] = {}
    durations: dict[str, float] = {}
    loads: dict[str, str] = {}
    for benchmark in selected:
        context.log(f"\n== {benchmark.name} (items {benchmark.items})")
        began = time.monotonic()
        try:
            rows += benchmark.run(context)
        except Exception as exc:  # one broken benchmark must not hide the others' figures
            errors[benchmark.name] = f"{type(exc).__name__}: {exc}"
            context.log(traceback.format_exc())
        durations[benchmark.name] = round(time.monotonic() - began, 1)
        loads[benchmark.name] = load_average()
        context.log(f"   ({durations[benchmark.name]:.0f} s; load average {loads[benchmark.name]})")

    print("\n" + text_table(rows) if rows else "\nno figures")
    for name, message in errors.items():
        print(f"ERROR {name}: {message}")
    missed = [row for row in rows if row.met is False]
    noisy = [row for row in rows if row.noisy]
    print(
        f"\n{sum(1 for row in rows if row.met)} target(s) met, {len(missed)} missed, "
        f"{len(noisy)} noisy row(s), {len(errors)} error(s)"
    )
    arguments.results_dir.mkdir(parents=True, exist_ok=True)
    (arguments.results_dir / "latest.json").write_text(
        json.dumps(
            {
                "command": command,
                "machine": facts,
                "quick": arguments.quick,
                "seed": arguments.seed,
                "durations_s": durations,
                "load_average_after": loads,
                "errors": errors,
                "rows": [row.to_json() for row in rows],
            },
            indent=2,
            ensure_ascii=False,
        )
        + "\n",
        encoding="utf-8",
    )
    (arguments.results_dir / "latest.md").write_text(
        markdown_report(rows, facts, command, errors, loads), encoding="utf-8"
    )
    print(f"wrote {arguments.results_dir / 'latest.json'} and latest.md")
    if errors:
        return 2
    return 1 if missed else 0


if __name__ == "__main__":
    sys.exit(main())
