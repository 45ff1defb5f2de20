"""Item 8: list 35,416 products past the catalogue's 10,000 paging cap.

The emulator runs at its default (small) product scale: every listed product carries its
archive's checksum, which the emulator computes by building the archive, so a listing
this large at 1 GiB per product would build terabytes.

Baseline, in the same rounds: the very requests our client sent (read back from the
emulator's request log: the same pages, counts and splits) fetched by one ``curl``
process over one kept-alive connection, bodies thrown away. ``client wall / curl wall``
is then what parsing the JSON into products, deduplicating and planning the split cost
on top of the raw transfer, less what paging the time windows side by side
(``limits.catalogue_requests``, 2) and parsing one page while the next arrives win back.
The target is 1.0: the listing no slower than one sequential fetch of its pages. The
client's own CPU time as a share of its wall time says how much of the listing is the
client rather than the catalogue; the emulator's peak of catalogue requests answered at
once shows the bound at work.
"""

from __future__ import annotations

import urllib.parse
from pathlib import Path

from harness import (
    ClientRun,
    Context,
    EmulatorProcess,
    Measured,
    Row,
    Target,
    ratios_of,
    run_client,
    run_measured,
    shown,
)

_COLLECTION = "SENTINEL-2"
_AREA = "-10,35,30,70"
_POLYGON = "POLYGON((-10 35,30 35,30 70,-10 70,-10 35))"


def _catalogue_count(emulator: EmulatorProcess, start: str, end_exclusive: str) -> int:
    """The emulator's own count for the search, asked without the client's help."""
    condition = (
        f"Collection/Name eq '{_COLLECTION}' and ContentDate/Start ge {start}T00:00:00.000Z "
        f"and ContentDate/Start lt {end_exclusive}T00:00:00.000Z and "
        f"OData.CSC.Intersects(area=geography'SRID=4326;{_POLYGON}')"
    )
    answer = emulator.catalogue({"$filter": condition, "$top": "0", "$count": "true"})
    return int(answer["@odata.count"])


def _requests_sent(emulator: EmulatorProcess) -> list[str]:
    """The catalogue URLs of every request since the stats were last reset."""
    stats = emulator.admin("GET", "stats?events=10000")
    parts = urllib.parse.urlsplit(emulator.catalogue_url)
    return [
        f"{parts.scheme}://{parts.netloc}{event['path']}?{event['query']}"
        for event in stats["events"]
        if event["host"] == "catalogue"
    ]


def _peak_in_flight(emulator: EmulatorProcess) -> int:
    """The most catalogue requests the emulator answered at once since the stats reset."""
    stats = emulator.admin("GET", "stats?events=0")
    return int(stats.get("in_flight", {}).get("catalogue", {}).get("peak", 0))


def _curl_replay(context: Context, emulator: EmulatorProcess, urls: list[str]) -> Measured:
    """One curl, one connection, every URL in turn, bodies to /dev/null."""
    config = context.work_dir / "listing.curlrc"
    config.write_text(
        "".join(f'url = "{url}"\noutput = "/dev/null"\n' for url in urls), encoding="utf-8"
    )
    command = [
        "curl",
        "--silent",
        "--show-error",
        "--fail",
        "--globoff",
        "--cacert",
        emulator.ca_bundle,
        "--config",
        str(config),
    ]
    measured = run_measured(command)
    config.unlink()
    return measured


def search_listing(context: Context) -> list[Row]:
    """Client listing vs raw fetch of the same pages; the split's correctness."""
    start, end, end_exclusive = (
        ("2023-01-01", "2023-06-30", "2023-07-01")
        if context.quick
        else ("2023-01-01", "2023-12-31", "2024-01-01")
    )
    rounds = context.rounds_for(3, 1)
    arguments = ["search", "--collection", _COLLECTION, "--start", start, "--end", end]
    # "=": the area starts with a minus sign, which argparse would take for an option.
    arguments += [f"--area={_AREA}"]
    with EmulatorProcess(context, None) as emulator:
        env = emulator.client_env()
        expected = _catalogue_count(emulator, start, end_exclusive)
        context.log(f"  emulator count: {expected:,} products; warm-up listing (untimed)")
        context.log(f"  client: {context.python} benchmarks/client_driver.py {shown(arguments)}")
        emulator.admin("DELETE", "stats")
        warm = run_client(context, arguments, env)
        urls = _requests_sent(emulator)
        peak = _peak_in_flight(emulator)
        context.log(
            f"  curl:   one curl --config with the client's {len(urls)} requests "
            f"(pages and counts), bodies to /dev/null"
        )
        client: list[ClientRun] = []
        curl: list[Measured] = []
        for round_number in range(1, rounds + 1):
            configs = ["client", "curl"]
            context.rng.shuffle(configs)
            for config in configs:
                if config == "client":
                    client.append(run_client(context, arguments, env))
                else:
                    curl.append(_curl_replay(context, emulator, urls))
            context.log(
                f"  round {round_number}: client {client[-1].transfer_s:.1f} s "
                f"({client[-1].transfer_cpu_s:.1f} CPU-s), curl {curl[-1].wall_s:.1f} s"
            )
    runs = [warm, *client]
    listed = [float(run.summary["products"]) for run in runs]
    duplicates = [float(run.summary["products"] - run.summary["distinct"]) for run in runs]
    windows = sorted({run.summary["windows"] for run in runs})
    client_wall = [run.transfer_s for run in client]
    curl_wall = [measured.wall_s for measured in curl]
    label = f"S2 {start}..{end}, lon -10..30 lat 35..70"
    return [
        Row(
            "search_listing",
            8,
            f"{label}: client CPU time as a share of its wall time",
            "%",
            [100 * run.transfer_cpu_s / run.transfer_s for run in client],
            note=f"{len(urls)} catalogue requests per listing; the rest of the wall time is "
            "the emulator rendering pages (its own process)",
        ),
        Row(
            "search_listing",
            8,
            f"{label}: client listing wall vs raw fetch of the same requests",
            "s",
            client_wall,
            "curl, same URLs, no parsing",
            curl_wall,
            ratios_of(client_wall, curl_wall),
            Target("ratio", "<=", 1.0),
            note="ratio > 1: slower than the raw transfer (parsing, products, dedup); "
            f"at most {peak} catalogue requests were answered at once (emulator's count)",
        ),
        Row(
            "search_listing",
            8,
            f"{label}: products listed vs the emulator's count",
            "products",
            listed,
            "emulator $count",
            [float(expected)] * len(listed),
            ratios_of(listed, [float(expected)] * len(listed)),
            Target("ratio", "==", 1),
            f"split into {'/'.join(str(w) for w in windows)} time windows "
            f"(past the 10,000 $skip cap); warm-up run included",
        ),
        Row(
            "search_listing",
            8,
            f"{label}: duplicate products in the listing",
            "products",
            duplicates,
            target=Target("value", "==", 0),
            note="products listed minus distinct ids",
        ),
    ]


#: The whole synthetic Sentinel-2 archive (2015-2025) is past 100,000 products.
#: Peak RSS allowed for the CLI writing the listing to a file.
MAX_LISTING_RSS_MB = 200


def _memory_count(emulator: EmulatorProcess, start: str, end_exclusive: str) -> int:
    condition = (
        f"Collection/Name eq '{_COLLECTION}' and ContentDate/Start ge {start}T00:00:00.000Z "
        f"and ContentDate/Start lt {end_exclusive}T00:00:00.000Z"
    )
    answer = emulator.catalogue({"$filter": condition, "$top": "0", "$count": "true"})
    return int(answer["@odata.count"])


def search_memory(context: Context) -> list[Row]:
    """Peak RSS of ``sentinel-fetch search -o`` writing 100,000+ products (NDJSON, GeoJSON).

    The command itself, as a user runs it, in its own process: ``wait4`` gives its peak
    RSS. The file's lines are counted afterwards, so the figure is for the whole listing.
    """
    start, end, end_exclusive = (
        ("2023-01-01", "2023-03-31", "2023-04-01")
        if context.quick
        else ("2015-01-01", "2025-12-31", "2026-01-01")
    )
    rounds = context.rounds_for(1, 1)
    arguments = ["-q", "search", "--collection", _COLLECTION, "--start", start, "--end", end]
    rows: list[Row] = []
    with EmulatorProcess(context, None) as emulator:
        env = emulator.client_env()
        expected = _memory_count(emulator, start, end_exclusive)
        context.log(f"  emulator count: {expected:,} products")
        for suffix in ("ndjson", "geojson"):
            peaks: list[float] = []
            listed: list[float] = []
            for _ in range(rounds):
                output = context.work_dir / f"listing.{suffix}"
                command = [context.python, "-m", "sentinel_fetch", *arguments, "-o", str(output)]
                context.log(f"  $ {shown(command)}")
                measured = run_measured(command, env, cwd=context.work_dir)
                peaks.append(measured.max_rss_kb / 1024)
                listed.append(float(_products_in(output, suffix)))
                output.unlink()
                context.log(
                    f"  {suffix}: {listed[-1]:,.0f} products in {measured.wall_s:.1f} s, "
                    f"peak RSS {peaks[-1]:.0f} MB"
                )
            label = f"S2 {start}..{end}, everywhere ({expected:,} products)"
            rows.append(
                Row(
                    "search_memory",
                    8,
                    f"{label} to .{suffix}: peak RSS of the CLI",
                    "MB",
                    peaks,
                    target=Target("value", "<=", MAX_LISTING_RSS_MB),
                    note=f"products written: {'/'.join(f'{n:,.0f}' for n in listed)} "
                    f"(emulator $count {expected:,})",
                )
            )
            if any(n != expected for n in listed):
                raise RuntimeError(f".{suffix} holds {listed} products, not {expected}")
    return rows


def _products_in(path: Path, suffix: str) -> int:
    """Products in a written file, read one line (NDJSON) or one feature at a time."""
    if suffix == "ndjson":
        with path.open("rb") as file:
            return sum(1 for _ in file)
    # The GeoJSON is one line; its features are counted by their own member, which the
    # products' text (JSON-escaped) cannot hold unescaped.
    marker = b'{"type": "Feature", "id": '
    count = 0
    tail = b""
    with path.open("rb") as file:
        while block := file.read(1 << 20):
            chunk = tail + block
            count += chunk.count(marker)
            tail = chunk[-(len(marker) - 1) :]
            count -= tail.count(marker)
    return count
