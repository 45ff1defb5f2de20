"""How fast can curl pull a 1 GiB product from the emulator? (HTTP and HTTPS, loopback)

The emulator must never be the bottleneck of a client benchmark. This script starts it the
way a user would (``python -m sentinel_fetch.emulator``, every product 1 GiB), once over
plain HTTP and once over HTTPS on the same data folder, logs in, finds an online product
through the catalogue, and times ``curl`` downloading it to ``/dev/null`` and to a file.

The baseline, measured in the same run and in the same shuffled rounds, is curl reading
the very same archive from disk through ``file://``: the most curl can do on this
machine, with no network and no server in the way. Figures are MB/s (10^6 bytes/s);
``× file://`` is the median over rounds of each run divided by that round's ``file://``
run to the same destination (``/dev/null`` or a file).
The target is ≥ 1000 MB/s over plain HTTP. Over HTTPS the emulator and curl each spend a
core on AES-GCM, which on a 2-core machine sets the ceiling (http-throughput.md: nginx
reaches ~0.9-1.1 GB/s to curl on the same machine).

Usage::

    python benchmarks/emulator_curl.py [--rounds 5] [--size 1073741824] [--data-dir D]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import signal
import ssl
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

GIB = 1024**3


@dataclass
class RunningEmulator:
    """A ``python -m sentinel_fetch.emulator`` subprocess and what it announced."""

    process: subprocess.Popen[str]
    env: dict[str, str] = field(default_factory=dict)

    @property
    def ca_bundle(self) -> str | None:
        return self.env.get("SENTINEL_FETCH_CA_BUNDLE")

    def context(self) -> ssl.SSLContext | None:
        return ssl.create_default_context(cafile=self.ca_bundle) if self.ca_bundle else None

    def stop(self) -> None:
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


def start_emulator(data_dir: Path, size: int, tls: bool) -> RunningEmulator:
    command = [
        sys.executable,
        "-m",
        "sentinel_fetch.emulator",
        "--product-size",
        str(size),
        "--data-dir",
        str(data_dir),
    ]
    if not tls:
        command.append("--no-tls")
    process = subprocess.Popen(
        command,
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    running = RunningEmulator(process)
    assert process.stdout is not None
    while True:
        line = process.stdout.readline()
        if not line:
            raise SystemExit(f"the emulator exited early (status {process.wait()})")
        line = line.strip()
        if line.startswith("export "):
            name, _, value = line.removeprefix("export ").partition("=")
            running.env[name] = value.strip("'")
        if line.startswith("Press Ctrl+C"):
            return running


def request_json(
    emulator: RunningEmulator,
    url: str,
    data: dict[str, str] | None = None,
    headers: dict[str, str] | None = None,
    method: str | None = None,
) -> tuple[int, object]:
    body = urllib.parse.urlencode(data).encode() if data is not None else None
    request = urllib.request.Request(url, data=body, headers=headers or {}, method=method)
    with urllib.request.urlopen(request, context=emulator.context(), timeout=600) as response:
        text = response.read()
        return response.status, json.loads(text) if text else None


def access_token(emulator: RunningEmulator) -> str:
    url = emulator.env["SENTINEL_FETCH_IDENTITY_URL"] + "/protocol/openid-connect/token"
    _, grant = request_json(
        emulator,
        url,
        data={
            "client_id": "cdse-public",
            "grant_type": "password",
            "username": emulator.env["CDSE_USERNAME"],
            "password": emulator.env["CDSE_PASSWORD"],
        },
    )
    assert isinstance(grant, dict)
    return str(grant["access_token"])


def find_product(emulator: RunningEmulator) -> str:
    query = urllib.parse.urlencode({"$filter": "Online eq true", "$top": "1"})
    _, page = request_json(
        emulator, f"{emulator.env['SENTINEL_FETCH_CATALOGUE_URL']}/Products?{query}"
    )
    assert isinstance(page, dict) and page["value"], "the catalogue returned no online product"
    return str(page["value"][0]["Id"])


def curl_mb_s(url: str, output: str, size: int, headers: list[str], cacert: str | None) -> float:
    command = ["curl", "-s", "-S", "-o", output, "-w", "%{size_download} %{time_total}"]
    for header in headers:
        command += ["-H", header]
    if cacert:
        command += ["--cacert", cacert]
    command.append(url)
    result = subprocess.run(command, capture_output=True, text=True, check=True)
    received, seconds = result.stdout.split()
    if int(received) != size:
        raise SystemExit(f"curl received {received} bytes instead of {size} from {url}")
    return size / float(seconds) / 1e6


def summarise(name: str, values: list[float], ratios: list[float] | None) -> dict[str, object]:
    median = statistics.median(values)
    row: dict[str, object] = {
        "config": name,
        "median_mb_s": round(median, 1),
        "min_mb_s": round(min(values), 1),
        "max_mb_s": round(max(values), 1),
        "spread_pct": round(100 * (max(values) - min(values)) / median, 1),
        "values": [round(value, 1) for value in values],
    }
    if ratios is not None:
        row["x_file"] = round(statistics.median(ratios), 2)
        row["ratios"] = [round(ratio, 3) for ratio in ratios]
    return row


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--size", type=int, default=GIB, help="product size in bytes")
    parser.add_argument("--data-dir", type=Path, help="emulator data folder (kept if given)")
    parser.add_argument("--json", type=Path, help="also write the summary here")
    arguments = parser.parse_args()
    scratch = tempfile.TemporaryDirectory(prefix="emulator-curl-")
    data_dir = arguments.data_dir or Path(scratch.name)
    size = arguments.size

    plain = start_emulator(data_dir, size, tls=False)
    secure: RunningEmulator | None = None
    try:
        product = find_product(plain)
        token = access_token(plain)
        began = time.monotonic()
        request_json(
            plain,
            f"{plain.env['SENTINEL_FETCH_DOWNLOAD_URL']}/Products({product})/$value",
            headers={"Authorization": f"Bearer {token}"},
            method="HEAD",
        )
        build_s = time.monotonic() - began
        secure = start_emulator(data_dir, size, tls=True)
        secure_token = access_token(secure)
        archive = next((data_dir / "archives").rglob(f"{product}-{size}.zip"))
        output = str(data_dir / "download.zip")
        Path(output).write_bytes(b"")

        def remote(emulator: RunningEmulator, bearer: str, target: str) -> tuple[str, ...]:
            url = f"{emulator.env['SENTINEL_FETCH_DOWNLOAD_URL']}/Products({product})/$value"
            return (url, target, f"Authorization: Bearer {bearer}", emulator.ca_bundle or "")

        configs = {
            "file:// -> /dev/null (baseline)": (archive.as_uri(), "/dev/null", "", ""),
            "file:// -> file": (archive.as_uri(), output, "", ""),
            "http -> /dev/null": remote(plain, token, "/dev/null"),
            "https -> /dev/null": remote(secure, secure_token, "/dev/null"),
            "http -> file": remote(plain, token, output),
            "https -> file": remote(secure, secure_token, output),
        }
        results: dict[str, list[float]] = {name: [] for name in configs}
        ratios: dict[str, list[float]] = {name: [] for name in configs}
        baseline_name = "file:// -> /dev/null (baseline)"
        file_baseline = "file:// -> file"
        for _ in range(arguments.rounds):
            order = list(configs)
            random.shuffle(order)
            measured = {}
            for name in order:
                url, target, header, cacert = configs[name]
                measured[name] = curl_mb_s(
                    url, target, size, [header] if header else [], cacert or None
                )
                if target != "/dev/null":
                    # Flush the written GiB now, untimed: background writeback would
                    # otherwise steal CPU from whatever runs next on a 2-core machine.
                    os.sync()
            for name, value in measured.items():
                results[name].append(value)
                # Each run against curl's own ceiling for the same destination.
                reference = baseline_name if configs[name][1] == "/dev/null" else file_baseline
                ratios[name].append(value / measured[reference])
    finally:
        plain.stop()
        if secure is not None:
            secure.stop()

    rows = [
        summarise(
            name, values, ratios[name] if name not in (baseline_name, file_baseline) else None
        )
        for name, values in results.items()
    ]
    print(
        f"curl against the emulator, {size} B product, {arguments.rounds} rounds "
        f"(first build of the archive: {build_s:.1f} s)"
    )
    print(f"{'config':34} {'median':>8} {'min':>8} {'max':>8} {'spread':>7} {'x file://':>9}")
    for row in rows:
        ratio = f"{row['x_file']:.2f}" if "x_file" in row else "1.00"
        print(
            f"{row['config']!s:34} {row['median_mb_s']:>8} {row['min_mb_s']:>8} "
            f"{row['max_mb_s']:>8} {row['spread_pct']:>6}% {ratio:>9}"
        )
    http_median = statistics.median(results["http -> /dev/null"])
    verdict = "met" if http_median >= 1000 else "NOT met"
    print(f"target (curl >= 1000 MB/s over plain HTTP): {verdict} ({http_median:.0f} MB/s)")
    if arguments.json:
        arguments.json.parent.mkdir(parents=True, exist_ok=True)
        arguments.json.write_text(
            json.dumps({"size": size, "build_s": build_s, "rows": rows}, indent=2)
        )
    scratch.cleanup()
    return 0 if http_median >= 1000 else 1


if __name__ == "__main__":
    sys.exit(main())
