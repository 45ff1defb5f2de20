"""Item 9: how long ``sentinel-fetch --help`` takes, against the bare interpreter; and
how soon a download's first byte comes once its search has ended (issue 16; run alone:
``python benchmarks/startup.py [--rounds 8]``, not part of ``run_all.py``).

Every command a user types pays this start-up first, so it is measured as a user sees
it: the installed ``sentinel-fetch`` script, spawn to exit. The baseline is
``python -c pass`` with the same interpreter, run alternately in the same rounds, so the
ratio shows what importing the CLI adds to Python's own start.
"""

from __future__ import annotations

import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from downloads import cli_command
from harness import Context, Row, Target, ratios_of, run_measured, shown

#: The emulator's added delay per request in the first-byte figure (a WAN-like round trip).
LATENCY_S = 0.05


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
        ),
    ]


def first_byte(context: Context) -> list[Row]:
    """Search end to the first product's first byte, with the login started ahead of the
    downloads (``Client.log_in_ahead``) and, as the baseline in the same rounds, with the
    login made by the first request (the behaviour before it). In-process emulator with
    ``LATENCY_S`` per request; 4 small Sentinel-2 products per download."""
    from sentinel_fetch.auth import Credentials
    from sentinel_fetch.client import Client
    from sentinel_fetch.emulator import DEMO_PASSWORD, DEMO_USERNAME, Emulator, EmulatorConfig
    from sentinel_fetch.progress import ProductStarted
    from sentinel_fetch.settings import Endpoints, Settings

    rounds = context.rounds_for(8, 2)
    ahead = Client.log_in_ahead
    times: dict[str, list[float]] = {"ahead": [], "first request": []}
    config = EmulatorConfig(latency_s=LATENCY_S, stac_requests_per_s=None)
    with Emulator(config) as cdse, tempfile.TemporaryDirectory() as tmp:
        settings = Settings(
            endpoints=Endpoints(cdse.identity_url, cdse.catalogue_url, cdse.download_url),
            ca_bundle=str(cdse.ca_bundle),
            save_path=Path(tmp),
        )
        credentials = Credentials(DEMO_USERNAME, DEMO_PASSWORD, source="benchmark")
        try:
            for number in range(rounds + 1):  # the first round warms the emulator up
                order = list(times)
                context.rng.shuffle(order)
                for kind in order:
                    Client.log_in_ahead = ahead if kind == "ahead" else _no_login_ahead  # type: ignore[method-assign]
                    seconds = _first_byte_s(
                        Client, settings, credentials, Path(tmp) / f"{number}{kind}", ProductStarted
                    )
                    if number:
                        times[kind].append(seconds)
        finally:
            Client.log_in_ahead = ahead  # type: ignore[method-assign]
    values, baseline = times["ahead"], times["first request"]
    context.log(
        f"  first byte after the search: {statistics.median(values):.3f} s with the login "
        f"ahead, {statistics.median(baseline):.3f} s with it on the first request"
    )
    return [
        Row(
            "startup",
            9,
            f"search end to the first byte, login ahead ({LATENCY_S * 1000:g} ms per request)",
            "s",
            values,
            "login made by the first request",
            baseline,
            ratios_of(values, baseline),
            None,
            f"{rounds} alternating rounds, in-process emulator",
        )
    ]


def _no_login_ahead(self: Any, stop: Any = None) -> None:
    """The baseline: no login ahead, the first request logs in."""


def _first_byte_s(
    client_class: Any, settings: Any, credentials: Any, save: Path, started: type
) -> float:
    marks: list[float] = []

    def progress(event: object) -> None:
        if isinstance(event, started) and not marks:
            marks.append(time.perf_counter())

    with client_class(settings.with_changes(save_path=save), credentials) as client:
        found = list(
            client.search(
                collections="SENTINEL-2",
                tiles="32TPS",
                start="2023-06-01",
                end="2023-07-30",
                online=True,
            )
        )
        found = [p for p in found if p.size and p.checksums][:4]
        ended = time.perf_counter()
        client.download(found, progress=progress)
    return marks[0] - ended


def main() -> int:
    """``python benchmarks/startup.py``: the first-byte figure alone (not in ``run_all``)."""
    import argparse

    parser = argparse.ArgumentParser(description="search end to the first byte")
    parser.add_argument("--rounds", type=int, default=8)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="first-byte-") as work:
        context = Context(
            quick=False, data_dir=Path(work) / "data", work_dir=Path(work), rounds=args.rounds
        )
        (row,) = first_byte(context)
    ratio = statistics.median(row.ratios)
    print(f"first byte after the search, login ahead / on the first request: {ratio:.3f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
