"""Download benchmarks: big, parallel, small, throttled products, and resume after a kill.

Our client always runs as its own process (``client_driver.py`` calling
``sentinel_fetch.download``, or the ``sentinel-fetch`` command for the resume test) and
is compared with ``curl`` fetching the very same ``$value`` URLs from the same emulator
process, in the same rounds, in a shuffled order. Both write **new files** on the same
disk: our client cannot overwrite a file in place (it streams into ``Temp/*.part``, then
renames), so curl does not either. New files are what users get, and on this VM they are
also the noisiest part of a download (1.2-3 system CPU-s per GB for fresh page-cache
pages, see ``shared/http-throughput.md``); every run's files are deleted and the disk is
synced, untimed, before the next run.

What is timed:

* curl: its process, from spawn to exit (it logs in nowhere: its token is fetched,
  untimed, just before).
* our client: the ``sentinel_fetch.download()`` call inside its process, i.e. login,
  connections, transfer, BLAKE3 verification, ``fsync`` and rename; the interpreter's
  start, the imports and the catalogue lookup are excluded (and reported separately as
  "end-to-end").
"""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Sequence
from pathlib import Path

from blake3 import blake3

from harness import (
    GB,
    GIB,
    MB,
    MIB,
    ClientRun,
    Context,
    EmulatorProcess,
    Measured,
    ProductFacts,
    Row,
    Spawned,
    Spread,
    Target,
    check_sizes,
    curl_command,
    header_file,
    ratios_of,
    remove,
    run_client,
    run_measured,
    run_parallel,
    settle,
    shown,
)


def cli_command(context: Context) -> list[str]:
    """The ``sentinel-fetch`` command of the interpreter under test."""
    script = Path(context.python).parent / "sentinel-fetch"
    return [str(script)] if script.exists() else [context.python, "-m", "sentinel_fetch"]


def _prepare(
    context: Context, emulator: EmulatorProcess, count: int
) -> tuple[list[ProductFacts], float]:
    """Pick ``count`` products with a BLAKE3 checksum; have the emulator build them, untimed.

    Older holdings carry only MD5 or no checksum at all; they are skipped so that every
    benchmark measures the same verification (BLAKE3, the one the client prefers).

    Returns:
        The products, and how long the catalogue took to describe them (which is how
        long building the archives took, the first time at this size).
    """
    products: list[ProductFacts] = []
    skip = 0
    began = time.perf_counter()
    while len(products) < count:
        names = emulator.product_names(count - len(products), skip=skip)
        skip += len(names)
        facts = emulator.products(names)
        products += [facts[name] for name in names if facts[name].blake3]
    build_s = time.perf_counter() - began
    total = sum(product.size for product in products)
    context.log(
        f"  {count} product(s), {total / MB:,.0f} MB; catalogue answered in {build_s:.1f} s "
        "(archives built on first use, then cached in the data folder)"
    )
    return products, build_s


def _client_download(
    context: Context,
    emulator: EmulatorProcess,
    products: Sequence[ProductFacts],
    workers: int,
    *,
    page_cache: bool = False,
) -> ClientRun:
    """One client run into a fresh save folder; checks the verified files, then deletes them.

    ``page_cache``: with ``limits.direct_io = false`` (buffered writes, as on filesystems
    where the client does not use ``O_DIRECT``).
    """
    out = context.scratch("client")
    arguments = ["download", "--out", str(out), "--workers", str(workers)]
    arguments += ["--page-cache"] if page_cache else []
    run = run_client(context, [*arguments, *(p.name for p in products)], emulator.client_env())
    if run.summary["verified_by"] != ["BLAKE3"]:
        raise RuntimeError(f"expected BLAKE3-verified products, got {run.summary}")
    check_sizes([out / "Finish" / p.file_name for p in products], [p.size for p in products])
    remove(out)
    settle()
    return run


def _client_vs_xargs(
    context: Context,
    emulator: EmulatorProcess,
    products: Sequence[ProductFacts],
    rounds: int,
) -> tuple[list[ClientRun], list[Measured]]:
    """Rounds of our client (4 workers) and ``xargs -P4 curl``, in shuffled order."""
    total = sum(p.size for p in products)
    client: list[ClientRun] = []
    curl: list[Measured] = []
    for round_number in range(1, rounds + 1):
        emulator.admin("POST", "end-sessions")
        configs = ["client", "curl"]
        context.rng.shuffle(configs)
        for config in configs:
            if config == "client":
                client.append(_client_download(context, emulator, products, 4))
            else:
                curl.append(_xargs_curl(context, emulator, products, 4))
        context.log(
            f"  round {round_number}: client {total / client[-1].transfer_s / MB:.1f} MB/s, "
            f"curl {total / curl[-1].wall_s / MB:.1f} MB/s"
        )
    return client, curl


def _curl_each(
    context: Context,
    emulator: EmulatorProcess,
    products: Sequence[ProductFacts],
    *,
    fsync: bool = False,
) -> tuple[Measured, float]:
    """One curl process per product, all at once, each into a new file.

    Returns:
        The measured processes, and the wall time including an ``fsync`` of every
        file when ``fsync`` is set (what our client does before it renames a file).
    """
    out = context.scratch("curl")
    files = [out / p.file_name for p in products]
    with header_file(emulator, context.work_dir) as header:
        commands = [
            curl_command(emulator.value_url(p.id), path, header, emulator.ca_bundle)
            for p, path in zip(products, files, strict=True)
        ]
        measured = run_parallel(commands)
    wall_s = measured.wall_s
    if fsync:
        began = time.perf_counter()
        for path in files:
            descriptor = os.open(path, os.O_RDONLY)
            try:
                os.fsync(descriptor)
            finally:
                os.close(descriptor)
        wall_s += time.perf_counter() - began
    check_sizes(files, [p.size for p in products])
    remove(out)
    settle()
    return measured, wall_s


def _xargs_curl(
    context: Context, emulator: EmulatorProcess, products: Sequence[ProductFacts], parallel: int
) -> Measured:
    """``xargs -P N curl`` over the products' URLs: a shell user's batch download."""
    out = context.scratch("curl")
    listing = context.work_dir / "curl-jobs.txt"
    files = [out / p.file_name for p in products]
    listing.write_text(
        "".join(
            f"{path} {emulator.value_url(p.id)}\n" for p, path in zip(products, files, strict=True)
        )
    )
    with header_file(emulator, context.work_dir) as header:
        # Each line adds "<file> <url>" after "-o": one curl per product, N at a time.
        curl = curl_command("URL", "FILE", header, emulator.ca_bundle)[:-2]
        command = ["xargs", "-a", str(listing), "-P", str(parallel), "-L", "1", *curl]
        measured = run_measured(command)
    check_sizes(files, [p.size for p in products])
    remove(out)
    listing.unlink()
    settle()
    return measured


def _log_commands(context: Context, emulator: EmulatorProcess, example: ProductFacts) -> None:
    context.log(
        f"  client: {context.python} benchmarks/client_driver.py download --out DIR "
        f"--workers N NAME...  (env: the emulator's export lines)"
    )
    context.log(
        "  curl:   "
        + shown(
            curl_command(
                emulator.value_url(example.id), "DIR/NAME.zip", Path("HEADER"), emulator.ca_bundle
            )
        )
    )


def _big_download(context: Context, name: str, count: int, rounds: int) -> list[Row]:
    """Our client with ``count`` workers vs ``count`` curls, ``count`` big products."""
    size = 128 * MIB if context.quick else GIB
    with EmulatorProcess(context, size) as emulator:
        products, _ = _prepare(context, emulator, count)
        _log_commands(context, emulator, products[0])
        total = sum(p.size for p in products)
        client: list[ClientRun] = []
        buffered: list[ClientRun] = []
        curl: list[Measured] = []
        curl_wall: list[float] = []
        synced_wall: list[float] = []
        for round_number in range(1, rounds + 1):
            emulator.admin("POST", "end-sessions")
            configs = ["client", "client-page-cache", "curl", "curl+fsync"]
            context.rng.shuffle(configs)
            for config in configs:
                if config == "client":
                    client.append(_client_download(context, emulator, products, count))
                elif config == "client-page-cache":
                    buffered.append(
                        _client_download(context, emulator, products, count, page_cache=True)
                    )
                elif config == "curl":
                    measured, wall_s = _curl_each(context, emulator, products)
                    curl.append(measured)
                    curl_wall.append(wall_s)
                else:
                    synced_wall.append(_curl_each(context, emulator, products, fsync=True)[1])
            context.log(
                f"  round {round_number}: client {total / client[-1].transfer_s / MB:.0f} MB/s, "
                f"curl {total / curl_wall[-1] / MB:.0f} MB/s"
            )

    label = f"{count} × {size / GIB:g} GiB" if size >= GIB else f"{count} × {size // MIB} MiB"
    client_rate = [total / run.transfer_s / MB for run in client]
    curl_rate = [total / wall / MB for wall in curl_wall]
    gigabytes = total / GB
    shared_note = (
        "HTTPS, emulator in its own process; both write new files on the same disk; "
        "client timed around sentinel_fetch.download() (login, transfer, BLAKE3, fsync, rename)"
    )
    rows = [
        Row(
            name,
            1 if count == 1 else 2,
            f"{label}: client ({count} worker{'s' if count > 1 else ''}, verified) "
            f"vs {count} curl (unverified)",
            "MB/s",
            client_rate,
            f"{count} curl → new file",
            curl_rate,
            ratios_of(client_rate, curl_rate),
            Target("ratio", ">=", 0.95 if count == 1 else 0.9),
            shared_note,
        )
    ]
    if synced_wall:
        synced_rate = [total / wall / MB for wall in synced_wall]
        rows.append(
            Row(
                name,
                0,
                f"{label}: client vs curl + fsync of the files (same durability)",
                "MB/s",
                client_rate,
                "curl + fsync",
                synced_rate,
                ratios_of(client_rate, synced_rate),
                note="context: how much of the gap is the fsync our client does and curl does not",
            )
        )
    buffered_rate = [total / run.transfer_s / MB for run in buffered]
    rows.append(
        Row(
            name,
            0,
            f"{label}: client with buffered writes (limits.direct_io = false) vs curl",
            "MB/s",
            buffered_rate,
            f"{count} curl → new file",
            curl_rate,
            ratios_of(buffered_rate, curl_rate),
            note=(
                "context: what O_DIRECT is worth; filesystems other than local "
                "ext4/XFS/Btrfs/F2FS get these buffered writes; CPU "
                f"{Spread.of([r.transfer_cpu_s / gigabytes for r in buffered]).median:.2f}"
                " CPU-s/GB median"
            ),
        )
    )
    end_to_end = [total / run.process.wall_s / MB for run in client]
    rows.append(
        Row(
            name,
            0,
            f"{label}: client end to end (interpreter, imports, lookup, download) vs curl",
            "MB/s",
            end_to_end,
            f"{count} curl → new file",
            curl_rate,
            ratios_of(end_to_end, curl_rate),
            note="context: what a user's stopwatch sees",
        )
    )
    client_cpu = [run.transfer_cpu_s / gigabytes for run in client]
    curl_cpu = [measured.cpu_s / gigabytes for measured in curl]
    process_cpu = sorted(run.process.cpu_s / gigabytes for run in client)
    rows.append(
        Row(
            name,
            7,
            f"{label}: client CPU-s per GB during the transfer (user+sys, all threads)",
            "CPU-s/GB",
            client_cpu,
            f"{count} curl (whole process)",
            curl_cpu,
            ratios_of(client_cpu, curl_cpu),
            note=(
                "whole client process incl. interpreter and imports: "
                f"{process_cpu[len(process_cpu) // 2]:.2f} CPU-s/GB median; "
                "on loopback the emulator's TLS takes about one of the 2 cores"
            ),
        )
    )
    client_rss = [run.process.max_rss_kb / 1024 for run in client]
    curl_rss = [measured.max_rss_kb / 1024 for measured in curl]
    rows.append(
        Row(
            name,
            6 if count > 1 else 0,
            f"{label}: client peak RSS (whole process)",
            "MB",
            client_rss,
            f"{count} curl processes, sum of peaks",
            curl_rss,
            ratios_of(client_rss, curl_rss),
            Target("value", "<=", 100) if count > 1 else None,
            "MiB from wait4 ru_maxrss; curl's figure is the sum over its processes",
        )
    )
    return rows


def download_single(context: Context) -> list[Row]:
    """Item 1 and 7: one 1 GiB product, verified client vs unverified curl."""
    return _big_download(context, "download_single", 1, context.rounds_for(5, 2))


def download_parallel(context: Context) -> list[Row]:
    """Items 2, 6 and 7: 4 × 1 GiB with 4 workers vs 4 parallel curls; peak RSS."""
    return _big_download(context, "download_parallel", 4, context.rounds_for(3, 2))


def download_small(context: Context) -> list[Row]:
    """Item 3: 200 × 1 MiB products, 4 workers vs ``xargs -P4 curl``."""
    count = 40 if context.quick else 200
    rounds = context.rounds_for(3, 2)
    with EmulatorProcess(context, MIB) as emulator:
        products, _ = _prepare(context, emulator, count)
        _log_commands(context, emulator, products[0])
        context.log("  curl batch: xargs -a JOBS -P 4 -L 1 curl ... -o  (JOBS: 'FILE URL' lines)")
        total = sum(p.size for p in products)
        client, curl = _client_vs_xargs(context, emulator, products, rounds)
    client_rate = [total / run.transfer_s / MB for run in client]
    curl_rate = [total / measured.wall_s / MB for measured in curl]
    gigabytes = total / GB
    client_cpu = [run.transfer_cpu_s / gigabytes for run in client]
    curl_cpu = [measured.cpu_s / gigabytes for measured in curl]
    return [
        Row(
            "download_small",
            3,
            f"{count} × 1 MiB: client (4 workers, verified) vs xargs -P4 curl (unverified)",
            "MB/s",
            client_rate,
            "xargs -P4 curl → new files",
            curl_rate,
            ratios_of(client_rate, curl_rate),
            Target("ratio", ">=", 0.8),
            "one curl process per product, each with the token header; "
            "client timed around sentinel_fetch.download()",
        ),
        Row(
            "download_small",
            0,
            f"{count} × 1 MiB: client CPU-s per GB during the transfer",
            "CPU-s/GB",
            client_cpu,
            "xargs + curls (all processes)",
            curl_cpu,
            ratios_of(client_cpu, curl_cpu),
            note="context: per-product overhead (a request, a new file, fsync, rename, ledger)",
        ),
    ]


def download_throttled(context: Context) -> list[Row]:
    """Item 4: 20 MB/s per connection; 4 workers should reach 4 × the cap."""
    cap = 20 * MB
    count, size = (4, 20 * MB) if context.quick else (8, 100 * MB)
    rounds = context.rounds_for(3, 1)
    with EmulatorProcess(context, int(size), ["--bandwidth", "20MB"]) as emulator:
        products, _ = _prepare(context, emulator, count)
        _log_commands(context, emulator, products[0])
        total = sum(p.size for p in products)
        client, curl = _client_vs_xargs(context, emulator, products, rounds)
    theoretical = [4 * cap / MB] * rounds
    client_rate = [total / run.transfer_s / MB for run in client]
    curl_rate = [total / measured.wall_s / MB for measured in curl]
    label = f"{count} × {size / MB:g} MB at 20 MB/s per connection"
    return [
        Row(
            "download_throttled",
            4,
            f"{label}: client (4 workers) vs the theoretical 4 × cap",
            "MB/s",
            client_rate,
            "4 × 20 MB/s",
            theoretical,
            ratios_of(client_rate, theoretical),
            Target("ratio", ">=", 0.97),
            "emulator --bandwidth 20MB paces every connection",
        ),
        Row(
            "download_throttled",
            0,
            f"{label}: client vs xargs -P4 curl under the same cap",
            "MB/s",
            client_rate,
            "xargs -P4 curl",
            curl_rate,
            ratios_of(client_rate, curl_rate),
            note=f"context: curl reached {sorted(curl_rate)[len(curl_rate) // 2]:.1f} MB/s",
        ),
    ]


def _wait_for_part(part: Path, threshold: int, process: Spawned) -> None:
    """Poll the ``.part`` file until it holds ``threshold`` bytes."""
    deadline = time.monotonic() + 600
    while time.monotonic() < deadline:
        if process.process.poll() is not None:
            raise RuntimeError("the client finished before it could be killed at 90 %")
        try:
            if part.stat().st_size >= threshold:
                return
        except FileNotFoundError:
            pass
        time.sleep(0.001)
    raise RuntimeError(f"{part} never reached {threshold} bytes")


def _wait_for_idle(emulator: EmulatorProcess) -> None:
    """Until the emulator has closed the killed client's stream (its bytes are counted)."""
    deadline = time.monotonic() + 30
    while emulator.admin("GET", "stats?events=0")["streams"]["current"]:
        if time.monotonic() > deadline:
            raise RuntimeError("the killed client's stream never ended")
        time.sleep(0.05)


def _blake3_of(path: Path) -> str:
    hasher = blake3(max_threads=blake3.AUTO)
    with path.open("rb") as handle:
        while chunk := handle.read(8 * MIB):
            hasher.update(chunk)
    return str(hasher.hexdigest())


def resume_after_kill(context: Context) -> list[Row]:
    """Item 5: ``kill -9`` the CLI at 90 % of 1 GiB; the rerun fetches only the rest."""
    size = 128 * MIB if context.quick else GIB
    rounds = context.rounds_for(3, 1)
    fetched_pct: list[float] = []
    left_pct: list[float] = []
    rerun_s: list[float] = []
    with EmulatorProcess(context, size) as emulator:
        products, _ = _prepare(context, emulator, 1)
        product = products[0]
        env = emulator.client_env()
        for round_number in range(1, rounds + 1):
            emulator.admin("POST", "end-sessions")
            out = context.scratch("resume")
            command = [*cli_command(context), "-q", "download", product.name, "--out", str(out)]
            if round_number == 1:
                context.log(f"  $ {shown(command)}   (killed with SIGKILL at 90 %, then rerun)")
            part = out / "Temp" / f"{product.file_name}.part"
            first = Spawned(command, env, context.work_dir)
            _wait_for_part(part, int(0.9 * product.size), first)
            os.kill(first.pid, signal.SIGKILL)
            killed = first.reap()
            if killed.returncode != -signal.SIGKILL:
                raise RuntimeError(f"the client was not killed: {killed.returncode}")
            on_disk = part.stat().st_size
            _wait_for_idle(emulator)
            emulator.admin("DELETE", "stats")
            rerun = run_measured(command, env, cwd=context.work_dir)
            stats = emulator.admin("GET", "stats?events=20")
            fetched = int(stats["bytes_served"].get(product.id, 0))
            ranges = [
                event["range"]
                for event in stats["events"]
                if event["host"] == "download" and event["product_id"] == product.id
            ]
            finished = out / "Finish" / product.file_name
            if not finished.exists() or _blake3_of(finished) != product.blake3:
                raise RuntimeError("the rerun did not end with a verified product")
            fetched_pct.append(100 * fetched / product.size)
            left_pct.append(100 * (product.size - on_disk) / product.size)
            rerun_s.append(rerun.wall_s)
            context.log(
                f"  round {round_number}: killed with {on_disk:,} B on disk "
                f"({100 * on_disk / product.size:.1f} %); rerun sent {ranges}, fetched "
                f"{fetched:,} B ({fetched_pct[-1]:.1f} %) in {rerun.wall_s:.2f} s; BLAKE3 ok"
            )
            remove(out)
            settle()
    label = f"{size / GIB:g} GiB" if size >= GIB else f"{size // MIB} MiB"
    return [
        Row(
            "resume_after_kill",
            5,
            f"{label}, kill -9 at 90 %: share of the product the rerun fetched",
            "%",
            fetched_pct,
            "left to fetch at the kill",
            left_pct,
            ratios_of(fetched_pct, left_pct),
            Target("value", "<=", 12),
            "bytes from the emulator's bytes_served for the product; the rerun ends "
            "verified (BLAKE3 of the finished file re-checked); rerun wall (CLI start, "
            f"re-hash of the prefix, rest): median {sorted(rerun_s)[len(rerun_s) // 2]:.2f} s",
        )
    ]
