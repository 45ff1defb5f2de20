"""Item 8: list 35,416 products past the catalogue's 10,000 paging cap.

The emulator runs at its default (small) product scale: every listed product carries its
archive's checksum, which the emulator computes by building the archive, so a listing
this large at 1 GiB per product would build terabytes.

Baseline, in the same rounds: the very requests our client sent (read back from the
emulator's request log: the same pages, counts and splits) fetched by one ``curl``
process over one kept-alive connection, bodies thrown away. ``client wall / curl wall``
is then what parsing the JSON into products, deduplicating and planning the split cost
on top of the raw transfer; the client's own CPU time as a share of its wall time says
how much of the listing is the client rather than the catalogue.
"""

from __future__ import annotations

import urllib.parse

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
            note="ratio > 1: slower than the raw transfer (parsing, products, dedup)",
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
