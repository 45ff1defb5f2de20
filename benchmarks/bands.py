"""Bands against whole products, throttled like CDSE: fewer bytes, less time, all verified.

20 Sentinel-2 L2A products, fetched twice per round into fresh save folders, in shuffled
order: whole (the ``$value`` zips) and ``bands="B04,B08,SCL"`` (each band its own
verified transfer, listed by one batched STAC look-up). The emulator runs in its own
process with ``--bandwidth 20MB`` (CDSE's per-connection cap) and its STAC rate limit on
(5 requests/s); the client uses its default 4 connections.

Figures per round: bytes the emulator served, and wall time from the call to the report
(STAC look-up, login and planning included). Targets (issue 12): bytes <= 30 % and wall
time <= 0.35x of whole products, with every file verified (a size-only file counts as
a failure here).

Usage::

    python benchmarks/bands.py [--scale 0.2] [--products 20] [--rounds 3] [--json FILE]

``--scale`` is the emulator's archive size factor (1.0: real sizes, an L2A product is
about 1.1 GB); the suite (``run_all.py bands``) uses 0.2, or 0.005 with ``--quick``.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from harness import Context, EmulatorProcess, Row, Target, ratios_of, remove, settle

BANDS = "B04,B08,SCL"
MB = 1_000_000


def _settings(emulator: EmulatorProcess, save: Path) -> Any:
    from sentinel_fetch.settings import Settings

    return Settings.from_env(emulator.env, save_path=save)


def _products(emulator: EmulatorProcess, count: int) -> list[Any]:
    """``count`` online L2A products with checksums; the emulator builds them, untimed."""
    from sentinel_fetch.api import search

    names: list[str] = []
    skip = 0
    while len(names) < count:
        page = emulator.catalogue(
            {
                "$filter": "Online eq true and Collection/Name eq 'SENTINEL-2' and "
                "contains(Name,'_MSIL2A_')",
                "$orderby": "ContentDate/Start asc",
                "$select": "Name",
                "$top": str(count * 2),
                "$skip": str(skip),
            }
        )
        values = [entity["Name"] for entity in page["value"]]
        if not values:
            raise RuntimeError(f"only {len(names)} online L2A products")
        skip += len(values)
        found = search(names=values, settings=_settings(emulator, Path(tempfile.gettempdir())))
        names += [p.name for p in found if p.checksums and p.size][: count - len(names)]
    chosen = list(search(names=names, settings=_settings(emulator, Path(tempfile.gettempdir()))))
    return sorted(chosen, key=lambda p: p.name)


def _served(emulator: EmulatorProcess) -> int:
    stats = emulator.admin("GET", "stats?events=0")
    return int(sum(stats["bytes_served"].values()))


def _run(
    emulator: EmulatorProcess, products: list[Any], save: Path, bands: str | None
) -> dict[str, Any]:
    from sentinel_fetch.api import download
    from sentinel_fetch.auth import Credentials

    remove(save)
    settle()
    emulator.admin("POST", "end-sessions")
    emulator.admin("DELETE", "stats")
    credentials = Credentials(
        emulator.env["CDSE_USERNAME"], emulator.env["CDSE_PASSWORD"], source="benchmark"
    )
    began = time.perf_counter()
    report = download(
        products, settings=_settings(emulator, save), credentials=credentials, bands=bands
    )
    wall_s = time.perf_counter() - began
    verified = all(r.status == "downloaded" and not r.unverified for r in report.results)
    files = sum(1 for p in (save / "Finish").rglob("*") if p.is_file())
    result = {"wall_s": wall_s, "bytes": _served(emulator), "verified": verified, "files": files}
    remove(save)
    return result


def measure(scale: float, count: int, rounds: int, context: Context) -> dict[str, Any]:
    """Run the rounds; the figures of each run and the ratios, bands over whole."""
    extra = ["--scale", str(scale), "--bandwidth", "20MB", "--stac-rate", "5"]
    with EmulatorProcess(context, None, extra) as emulator:
        products = _products(emulator, count)
        total = sum(p.size for p in products)
        context.log(f"  {len(products)} L2A products, {total / MB:,.1f} MB whole")
        runs: dict[str, list[dict[str, Any]]] = {"whole": [], "bands": []}
        for _ in range(rounds):
            order = ["whole", "bands"]
            context.rng.shuffle(order)
            for kind in order:
                save = context.work_dir / f"bands-{kind}"
                runs[kind].append(
                    _run(emulator, products, save, BANDS if kind == "bands" else None)
                )
                figures = runs[kind][-1]
                context.log(
                    f"  {kind:5}: {figures['bytes'] / MB:9.1f} MB in {figures['wall_s']:6.2f} s, "
                    f"{figures['files']} files, verified: {figures['verified']}"
                )
    whole, bands = runs["whole"], runs["bands"]
    return {
        "products": count,
        "scale": scale,
        "runs": runs,
        "bytes_ratios": ratios_of([r["bytes"] for r in bands], [r["bytes"] for r in whole]),
        "time_ratios": ratios_of([r["wall_s"] for r in bands], [r["wall_s"] for r in whole]),
        "verified": all(r["verified"] for r in whole + bands),
    }


def _rows(result: dict[str, Any]) -> list[Row]:
    whole, bands = result["runs"]["whole"], result["runs"]["bands"]
    label = f"{result['products']} L2A products at 20 MB/s per connection, --bands {BANDS}"
    note = "every file verified" if result["verified"] else "**a file was not verified**"
    return [
        Row(
            "bands",
            12,
            f"{label}: bytes served, bands vs whole products",
            "MB",
            [r["bytes"] / MB for r in bands],
            "whole products",
            [r["bytes"] / MB for r in whole],
            result["bytes_ratios"],
            Target("ratio", "<=", 0.30),
            note,
        ),
        Row(
            "bands",
            12,
            f"{label}: wall time, bands vs whole products",
            "s",
            [r["wall_s"] for r in bands],
            "whole products",
            [r["wall_s"] for r in whole],
            result["time_ratios"],
            Target("ratio", "<=", 0.35),
            note,
        ),
    ]


def bands(context: Context) -> list[Row]:
    """Item 12 of the suite: bands vs whole products (see the module docstring)."""
    scale = 0.005 if context.quick else 0.2
    result = measure(scale, 20, context.rounds_for(3, 1), context)
    if not result["verified"]:
        raise RuntimeError("a file was not verified")
    return _rows(result)


def _median(values: list[float]) -> float:
    return sorted(values)[len(values) // 2]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--scale", type=float, default=0.2, help="archive size factor")
    parser.add_argument("--products", type=int, default=20)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--data-dir", type=Path, help="the emulator's cache folder")
    parser.add_argument("--json", type=Path, help="write the figures here")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="bands-") as work:
        data = args.data_dir or Path(work) / "data"
        context = Context(quick=False, data_dir=data, work_dir=Path(work) / "work")
        result = measure(args.scale, args.products, args.rounds, context)
    bytes_ratio, time_ratio = _median(result["bytes_ratios"]), _median(result["time_ratios"])
    print(f"bytes ratio (bands / whole): {bytes_ratio:.3f}  (target <= 0.30)")
    print(f"time ratio  (bands / whole): {time_ratio:.3f}  (target <= 0.35)")
    print(f"every file verified: {result['verified']}")
    if args.json:
        args.json.write_text(json.dumps(result, indent=1))
    met = bytes_ratio <= 0.30 and time_ratio <= 0.35 and result["verified"]
    return 0 if met else 1


if __name__ == "__main__":
    sys.exit(main())
