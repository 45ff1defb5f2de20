"""Where does a verified single-stream download lose to curl? Variants of the transfer loop.

Not part of the suite's targets: a measuring tool behind the proposals in
``benchmarks/README.md``. Each variant is a stripped-down copy of one idea for the loop in
``sentinel_fetch/downloads/transfer.py`` (stream a ``$value`` over HTTPS with ``requests``,
write to a new file, BLAKE3 inline, ``fsync``), run as its own process against the
emulator (its own process too), in shuffled rounds together with ``curl``:

``loop``            the first client loop: ``iter_content(1 MiB)``, write, hash, fsync
``loop-nofsync``    the same without the final ``fsync`` (what durability costs)
``readinto``        ``readinto`` a reused 1 MiB buffer from the ``http.client`` response
                    instead of ``iter_content`` (no per-chunk bytes objects)
``writer-thread``   ``iter_content`` in the reading thread; write + hash in a second
                    thread (a queue of 8 chunks), so the socket is drained while the
                    disk takes the previous chunk
``loop-bgsync``     ``loop``, plus a thread that ``fdatasync``s the file after every
                    64 MiB written, so writeback overlaps the download and the final
                    ``fsync`` finds little left to write
``readinto-bgsync`` both of the above
``readinto-direct`` ``readinto`` into a page-aligned buffer, written with ``O_DIRECT``
                    (past the page cache) in the reading thread
``direct-thread``   the same with the writes in a second thread and three buffers: what
                    the client does now (``sentinel_fetch/downloads/partfile.py``)
``curl``            the baseline (unverified, no fsync)

By default every run writes a new file on the same disk; the file is deleted and the
disk synced, untimed, after each run. With ``--in-place`` every run overwrites one
pre-written file instead (curl through ``1<>FILE``), which removes this VM's page-cache
allocation cost and its noise and leaves the loop's own cost. Figures: MB/s and CPU-s/GB
of the process, median over rounds, and the ratio to curl in the same round.

Usage::

    python benchmarks/transfer_variants.py [--rounds 5] [--size BYTES] [--in-place]
"""

from __future__ import annotations

import argparse
import json
import os
import queue
import resource
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

CHUNK = 1 << 20
VARIANTS = (
    "loop",
    "loop-nofsync",
    "readinto",
    "writer-thread",
    "loop-bgsync",
    "readinto-bgsync",
    "readinto-direct",
    "direct-thread",
)
SYNC_STEP = 64 << 20


def _open_stream(url: str, header: Path, ca_bundle: str) -> Any:
    import requests

    name, _, value = header.read_text().strip().partition(": ")
    session = requests.Session()
    session.trust_env = False
    response = session.get(url, headers={name: value}, stream=True, verify=ca_bundle)
    response.raise_for_status()
    return response


def _write_all(handle: Any, data: bytes | memoryview) -> None:
    view = memoryview(data)
    while view:
        view = view[handle.write(view) :]


def _chunks(response: Any, *, readinto: bool) -> Iterator[bytes | memoryview]:
    """The body in 1 MiB pieces: new bytes objects, or views of one reused buffer."""
    if not readinto:
        yield from response.iter_content(CHUNK)
        return
    # The http.client response under urllib3: fills the buffer in place, so no fresh
    # 1 MiB object (and no fresh pages from the allocator) per chunk.
    raw = response.raw._fp
    view = memoryview(bytearray(CHUNK))
    while count := raw.readinto(view):
        yield view[:count]


class _WriteBack:
    """Asks the kernel to write the file back every 64 MiB, in a thread of its own."""

    def __init__(self, descriptor: int) -> None:
        self._descriptor = descriptor
        self._pending = threading.Semaphore(0)
        self._closing = False
        self._unsynced = 0
        self._thread = threading.Thread(target=self._run)
        self._thread.start()

    def _run(self) -> None:
        while True:
            self._pending.acquire()
            if self._closing:
                return
            os.fdatasync(self._descriptor)

    def wrote(self, count: int) -> None:
        """``count`` more bytes were written."""
        self._unsynced += count
        if self._unsynced >= SYNC_STEP:
            self._unsynced = 0
            self._pending.release()

    def close(self) -> None:
        """Stop the thread (the caller's final fsync writes the rest)."""
        self._closing = True
        self._pending.release()
        self._thread.join()


def fetch(
    variant: str, url: str, output: Path, header: Path, ca_bundle: str, in_place: bool
) -> dict[str, Any]:
    """One download with one variant of the loop; times it from request to fsync."""
    from blake3 import blake3

    usage = resource.getrusage(resource.RUSAGE_SELF)
    cpu_before = usage.ru_utime + usage.ru_stime
    faults_before = usage.ru_minflt
    began = time.perf_counter()
    response = _open_stream(url, header, ca_bundle)
    hasher = blake3()
    if variant == "readinto-direct":
        received = _direct(response, output, hasher)
    elif variant == "direct-thread":
        received = _direct_thread(response, output, hasher)
    else:
        received = _buffered(variant, response, output, hasher, in_place)
    response.close()
    elapsed_s = time.perf_counter() - began
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return {
        "elapsed_s": elapsed_s,
        "cpu_s": usage.ru_utime + usage.ru_stime - cpu_before,
        "minor_faults": usage.ru_minflt - faults_before,
        "bytes": received,
        "blake3": hasher.hexdigest(),
    }


def _direct(response: Any, output: Path, hasher: Any) -> int:
    """O_DIRECT: read into an aligned buffer, write its aligned part past the page cache."""
    import fcntl
    import mmap

    align = 4096
    buffer = mmap.mmap(-1, CHUNK + align)
    view = memoryview(buffer)
    raw = response.raw._fp
    fd = os.open(output, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_DIRECT, 0o644)
    position = pending = received = 0
    try:
        while count := raw.readinto(view[pending : pending + CHUNK]):
            hasher.update(view[pending : pending + count])
            received += count
            total = pending + count
            aligned = total - total % align
            if aligned:
                done = 0
                while done < aligned:
                    done += os.pwrite(fd, view[done:aligned], position + done)
                position += aligned
                pending = total - aligned
                view[:pending] = view[aligned:total]
            else:
                pending = total
        if pending:
            fcntl.fcntl(fd, fcntl.F_SETFL, fcntl.fcntl(fd, fcntl.F_GETFL) & ~os.O_DIRECT)
            os.pwrite(fd, view[:pending], position)
        os.fsync(fd)
    finally:
        os.close(fd)
    return received


def _direct_thread(response: Any, output: Path, hasher: Any) -> int:
    """O_DIRECT with the writes in a second thread: the socket is read during the DMA."""
    import mmap

    align = 4096
    buffers = [memoryview(mmap.mmap(-1, CHUNK)) for _ in range(3)]
    free: queue.Queue[memoryview] = queue.Queue()
    for buffer in buffers:
        free.put(buffer)
    full: queue.Queue[tuple[memoryview, int] | None] = queue.Queue()
    fd = os.open(output, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_DIRECT, 0o644)

    def write() -> None:
        position = 0
        while (item := full.get()) is not None:
            buffer, count = item
            aligned = count - count % align
            done = 0
            while done < aligned:
                done += os.pwrite(fd, buffer[done:aligned], position + done)
            if aligned < count:  # the last piece only (every other one is full)
                import fcntl

                fcntl.fcntl(fd, fcntl.F_SETFL, fcntl.fcntl(fd, fcntl.F_GETFL) & ~os.O_DIRECT)
                os.pwrite(fd, buffer[aligned:count], position + aligned)
            position += count
            free.put(buffer)

    writer = threading.Thread(target=write)
    writer.start()
    raw = response.raw._fp
    received = 0
    try:
        while True:
            buffer = free.get()
            count = raw.readinto(buffer)
            if not count:
                break
            hasher.update(buffer[:count])
            received += count
            full.put((buffer, count))
    finally:
        full.put(None)
        writer.join()
        os.fsync(fd)
        os.close(fd)
    return received


def _buffered(variant: str, response: Any, output: Path, hasher: Any, in_place: bool) -> int:
    received = 0
    with output.open("r+b" if in_place else "wb", buffering=0) as handle:
        if variant == "writer-thread":
            chunks: queue.Queue[bytes | None] = queue.Queue(maxsize=8)

            def drain() -> None:
                while (chunk := chunks.get()) is not None:
                    _write_all(handle, chunk)
                    hasher.update(chunk)

            writer = threading.Thread(target=drain)
            writer.start()
            for chunk in response.iter_content(CHUNK):
                chunks.put(chunk)
                received += len(chunk)
            chunks.put(None)
            writer.join()
        else:
            write_back = _WriteBack(handle.fileno()) if variant.endswith("bgsync") else None
            for chunk in _chunks(response, readinto=variant.startswith("readinto")):
                _write_all(handle, chunk)
                hasher.update(chunk)
                received += len(chunk)
                if write_back is not None:
                    write_back.wrote(len(chunk))
            if write_back is not None:
                write_back.close()
        if variant != "loop-nofsync":
            os.fsync(handle.fileno())
    return received


def orchestrate(arguments: argparse.Namespace) -> int:
    """Start the emulator, run every variant and curl in shuffled rounds, print a table."""
    from harness import (
        MB,
        MIB,
        Context,
        EmulatorProcess,
        Spread,
        curl_command,
        header_file,
        remove,
        run_measured,
        settle,
    )

    base = Path(tempfile.gettempdir()) / "sentinel-fetch-bench"
    context = Context(quick=False, data_dir=base / "emulator", work_dir=base / "work")
    context.work_dir.mkdir(parents=True, exist_ok=True)
    configs = [*VARIANTS, "curl"]
    rates: dict[str, list[float]] = {name: [] for name in configs}
    cpu: dict[str, list[float]] = {name: [] for name in configs}
    ratios: dict[str, list[float]] = {name: [] for name in configs}
    faults: dict[str, list[float]] = {name: [] for name in configs}
    with EmulatorProcess(context, arguments.size) as emulator:
        name = emulator.product_names(1)[0]
        product = emulator.products([name])[name]
        url = emulator.value_url(product.id)
        output = context.work_dir / "variant.zip"
        if arguments.in_place:
            with output.open("wb") as handle:
                for _ in range(0, product.size, CHUNK):
                    handle.write(bytes(min(CHUNK, product.size - handle.tell())))
            settle()
        for round_number in range(1, arguments.rounds + 1):
            order = list(configs)
            context.rng.shuffle(order)
            measured_rates: dict[str, float] = {}
            for config in order:
                with header_file(emulator, context.work_dir) as header:
                    if config == "curl":
                        curl = curl_command(url, output, header, emulator.ca_bundle)
                        if arguments.in_place:
                            # curl -o truncates; stdout opened with 1<> does not.
                            curl = ["sh", "-c", 'exec "$@" 1<>"$0"', str(output), *curl[:-3]]
                            curl.append(url)
                        run = run_measured(curl)
                        seconds, cpu_s = run.wall_s, run.cpu_s
                    else:
                        command = [context.python, str(Path(__file__).resolve())]
                        command += ["--fetch", config, "--url", url, "--output", str(output)]
                        command += ["--header", str(header), "--ca-bundle", emulator.ca_bundle]
                        command += ["--in-place"] if arguments.in_place else []
                        run = run_measured(command, cwd=context.work_dir)
                        result = json.loads(run.stdout)
                        if result["blake3"] != product.blake3:
                            raise SystemExit(f"{config}: wrong BLAKE3")
                        seconds, cpu_s = result["elapsed_s"], result["cpu_s"]
                        faults[config].append(result["minor_faults"] / (product.size / MIB))
                if output.stat().st_size != product.size:
                    raise SystemExit(f"{config}: wrong size")
                if not arguments.in_place:
                    remove(output)
                settle()
                measured_rates[config] = product.size / seconds / MB
                rates[config].append(measured_rates[config])
                cpu[config].append(cpu_s / (product.size / 1e9))
            for config in configs:
                ratios[config].append(measured_rates[config] / measured_rates["curl"])
            print(
                f"round {round_number}: "
                + ", ".join(f"{c} {measured_rates[c]:.0f}" for c in configs)
                + " MB/s",
                flush=True,
            )
    print(
        f"\n{'variant':15} {'MB/s median (min-max)':24} {'x curl (min-max)':20} "
        "CPU-s/GB  page faults/MiB"
    )
    for config in configs:
        rate, ratio, load = Spread.of(rates[config]), Spread.of(ratios[config]), cpu[config]
        print(
            f"{config:15} {rate.median:6.0f} ({rate.low:4.0f}-{rate.high:4.0f})"
            f"{'':9} {ratio.median:5.2f} ({ratio.low:.2f}-{ratio.high:.2f})"
            f"{'':5} {Spread.of(load).median:.2f}"
            f"{'':6} {Spread.of(faults[config]).median if faults[config] else float('nan'):.0f}"
        )
    return 0


def main(argv: list[str] | None = None) -> int:
    """``--fetch VARIANT`` runs one download (in a subprocess); otherwise orchestrate."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--size", type=int, default=1 << 30, help="product size in bytes")
    parser.add_argument(
        "--in-place", action="store_true", help="overwrite one pre-written file (no new pages)"
    )
    parser.add_argument("--fetch", choices=VARIANTS, help=argparse.SUPPRESS)
    parser.add_argument("--url", help=argparse.SUPPRESS)
    parser.add_argument("--output", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--header", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--ca-bundle", help=argparse.SUPPRESS)
    arguments = parser.parse_args(argv)
    if arguments.fetch:
        result = fetch(
            arguments.fetch,
            arguments.url,
            arguments.output,
            arguments.header,
            arguments.ca_bundle,
            arguments.in_place,
        )
        print(json.dumps(result))
        return 0
    return orchestrate(arguments)


if __name__ == "__main__":
    sys.exit(main())
