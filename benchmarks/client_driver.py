"""The client under test, as its own process: ``sentinel_fetch.download`` or ``search``.

The benchmarks never run the client inside the harness: the harness's own threads would
share its GIL, and its CPU time and peak RSS could not be told apart from the client's.
This script is what a user's script would be: it reads the emulator's endpoints and the
account from the environment (``SENTINEL_FETCH_*``, ``CDSE_USERNAME``/``CDSE_PASSWORD``)
and calls the public API. It times only the work itself, after the interpreter started,
the imports ran and (for downloads) the products were looked up in the catalogue, and
prints one JSON object on stdout. The harness reads the whole process's CPU time and
peak RSS from ``wait4`` on its side.

Usage::

    python benchmarks/client_driver.py download --out DIR --workers 4 NAME [NAME...]
    python benchmarks/client_driver.py search --collection SENTINEL-2 --start 2023-01-01 \
        --end 2023-12-31 --area -10,35,30,70
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import time
from pathlib import Path
from typing import Any


def _cpu_s() -> float:
    """User + system CPU seconds of this process so far (every thread)."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def download(arguments: argparse.Namespace) -> dict[str, Any]:
    """Look the products up by name, then download them; time only the download."""
    import sentinel_fetch as sf

    products = list(sf.search(names=arguments.names))
    missing = set(arguments.names) - {product.name for product in products}
    if missing:
        raise SystemExit(f"not in the catalogue: {sorted(missing)[:3]}")
    settings = None
    if arguments.page_cache:
        from dataclasses import replace

        settings = sf.Settings.from_env()
        settings = settings.with_changes(limits=replace(settings.limits, direct_io=False))
    if arguments.max_connections:
        settings = settings or sf.Settings.from_env()
        settings = settings.with_changes(max_connections=arguments.max_connections)
    cpu_before = _cpu_s()
    # Wall clock as well: cooperating workers (benchmarks/team.py) are separate processes.
    began_at = time.time()
    began = time.perf_counter()
    report = sf.download(
        products, save_path=arguments.out, workers=arguments.workers, settings=settings
    )
    elapsed_s = time.perf_counter() - began
    ended_at = time.time()
    cpu_s = _cpu_s() - cpu_before
    return {
        "ok": report.ok,
        "elapsed_s": elapsed_s,
        "began_at": began_at,
        "ended_at": ended_at,
        "cpu_s": cpu_s,
        "bytes": report.bytes_received,
        "products": len(report.results),
        "statuses": sorted({result.status for result in report.results}),
        "verified_by": sorted({str(result.verified_by) for result in report.results}),
        "errors": [result.error for result in report.results if result.error][:3],
    }


def search(arguments: argparse.Namespace) -> dict[str, Any]:
    """List every product of a search; report windows, requests and duplicates."""
    import sentinel_fetch as sf

    cpu_before = _cpu_s()
    began = time.perf_counter()
    result = sf.search(
        collections=arguments.collection,
        start=arguments.start,
        end=arguments.end,
        area=arguments.area,
    )
    ids = [product.id for product in result]
    elapsed_s = time.perf_counter() - began
    cpu_s = _cpu_s() - cpu_before
    return {
        "ok": True,
        "elapsed_s": elapsed_s,
        "cpu_s": cpu_s,
        "products": len(ids),
        "distinct": len(set(ids)),
        "windows": len(result.windows),
        "requests": result.requests,
    }


def main(argv: list[str] | None = None) -> int:
    """Run one command and print its JSON summary; exit 1 if it did not succeed."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    fetch = commands.add_parser("download")
    fetch.add_argument("--out", type=Path, required=True)
    fetch.add_argument("--workers", type=int, default=4)
    fetch.add_argument(
        "--page-cache", action="store_true", help="limits.direct_io = false: buffered writes"
    )
    fetch.add_argument(
        "--max-connections",
        type=int,
        default=0,
        help="the account's connection budget across cooperating workers",
    )
    fetch.add_argument("names", nargs="+")
    listing = commands.add_parser("search")
    listing.add_argument("--collection", required=True)
    listing.add_argument("--start", required=True)
    listing.add_argument("--end", required=True)
    listing.add_argument("--area", required=True)
    arguments = parser.parse_args(argv)
    summary = download(arguments) if arguments.command == "download" else search(arguments)
    summary["max_rss_kb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(json.dumps(summary), flush=True)
    return 0 if summary["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
