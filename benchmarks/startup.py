"""Item 9: how long ``sentinel-fetch --help`` takes, against the bare interpreter.

Every command a user types pays this start-up first, so it is measured as a user sees
it: the installed ``sentinel-fetch`` script, spawn to exit. The baseline is
``python -c pass`` with the same interpreter, run alternately in the same rounds, so the
ratio shows what importing the CLI adds to Python's own start.
"""

from __future__ import annotations

from downloads import cli_command
from harness import Context, Row, Target, ratios_of, run_measured, shown


def startup(context: Context) -> list[Row]:
    """``sentinel-fetch --help`` wall time vs ``python -c pass``."""
    rounds = context.rounds_for(20, 5)
    help_command = [*cli_command(context), "--help"]
    bare_command = [context.python, "-c", "pass"]
    context.log(f"  $ {shown(help_command)}   vs   $ {shown(bare_command)}")
    # One untimed run of each: the first start after an install compiles bytecode.
    run_measured(help_command, cwd=context.work_dir)
    run_measured(bare_command, cwd=context.work_dir)
    help_s: list[float] = []
    bare_s: list[float] = []
    for _ in range(rounds):
        order = [(help_command, help_s), (bare_command, bare_s)]
        context.rng.shuffle(order)
        for command, times in order:
            times.append(run_measured(command, cwd=context.work_dir).wall_s)
    return [
        Row(
            "startup",
            9,
            "sentinel-fetch --help, spawn to exit",
            "s",
            help_s,
            "python -c pass",
            bare_s,
            ratios_of(help_s, bare_s),
            Target("value", "<=", 0.3),
            f"{rounds} alternating runs each",
        )
    ]
