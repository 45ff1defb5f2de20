"""What every benchmark shares: the emulator process, measured subprocesses, curl, rows.

Three rules shape this module:

* The emulator runs as its own process (``python -m sentinel_fetch.emulator``), over
  HTTPS like CDSE: in the harness's process it would share a GIL with nothing useful,
  and in the client's process it would steal the client's GIL.
* The client and every baseline run as subprocesses reaped with ``os.wait4``, which
  returns that one child's CPU time and peak RSS (including the children it reaped
  itself, e.g. the curls started by ``xargs``). ``RUSAGE_CHILDREN`` deltas would mix
  in every other child, and its ``ru_maxrss`` is a maximum over all of them.
* A figure is only printed next to a baseline measured in the same run, as a ratio,
  with the median and the spread over rounds (a spread above 25 % is flagged noisy:
  this is a 2-core VM whose file-creation cost alone swings 2-4x between runs).
"""

from __future__ import annotations

import json
import os
import platform
import random
import shutil
import signal
import ssl
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Literal

KIB = 1024
MIB = 1024**2
GIB = 1024**3
MB = 1e6
GB = 1e9

#: A row whose values (or ratios) spread more than this over rounds is flagged noisy.
NOISY_SPREAD_PCT = 25.0
#: The driver that runs the client as a user's script would (its own process).
DRIVER = Path(__file__).resolve().parent / "client_driver.py"


# -- figures ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Spread:
    """Median, minimum and maximum of per-round figures.

    Example:
        >>> Spread.of([1.0, 2.0, 4.0]).spread_pct
        150.0
    """

    median: float
    low: float
    high: float
    count: int

    @classmethod
    def of(cls, values: Sequence[float]) -> Spread:
        """Summarise a non-empty list of per-round figures."""
        if not values:
            raise ValueError("no values to summarise")
        return cls(statistics.median(values), min(values), max(values), len(values))

    @property
    def spread_pct(self) -> float:
        """(max - min) / median, in percent: how far apart the rounds were."""
        if self.median == 0:
            return 0.0 if self.high == self.low else float("inf")
        return 100.0 * (self.high - self.low) / abs(self.median)

    @property
    def noisy(self) -> bool:
        """More than :data:`NOISY_SPREAD_PCT` between the best and the worst round."""
        return self.count > 1 and self.spread_pct > NOISY_SPREAD_PCT


@dataclass(frozen=True)
class Target:
    """A goal from the issue tracker, checked on a row's median.

    Attributes:
        on: ``ratio`` (against the row's baseline) or ``value`` (the figure itself).
        op: ``>=``, ``<=`` or ``==``.
        threshold: the number to compare with.
    """

    on: Literal["ratio", "value"]
    op: Literal[">=", "<=", "=="]
    threshold: float

    def text(self, unit: str = "") -> str:
        """How the target reads in a table, e.g. ``ratio ≥ 0.95``."""
        symbol = {">=": "≥", "<=": "≤", "==": "="}[self.op]
        suffix = f" {unit}" if self.on == "value" and unit else ""
        return f"{self.on} {symbol} {self.threshold:g}{suffix}"

    def met_by(self, figure: float) -> bool:
        """Whether ``figure`` (a median) reaches the target."""
        if self.op == ">=":
            return figure >= self.threshold
        if self.op == "<=":
            return figure <= self.threshold
        return abs(figure - self.threshold) < 1e-9


@dataclass
class Row:
    """One line of the results: a figure per round, and what it is compared with.

    Attributes:
        benchmark: the benchmark's name (``download_single``...).
        item: the number of the benchmark in the issue list (0 for context rows).
        metric: what was measured, in words.
        unit: unit of ``values`` (``MB/s``, ``s``, ``MB``, ``%``, ``CPU-s/GB``).
        values: the figure, one per round.
        baseline: what the ratio is against, in words (empty: no baseline).
        baseline_values: the baseline's figure, one per round, same unit.
        ratios: ``value / baseline`` per round (computed round by round, not from medians).
        target: the goal, if the issue sets one.
        note: anything a reader needs to trust the figure.
    """

    benchmark: str
    item: int
    metric: str
    unit: str
    values: list[float]
    baseline: str = ""
    baseline_values: list[float] = field(default_factory=list)
    ratios: list[float] = field(default_factory=list)
    target: Target | None = None
    note: str = ""

    @property
    def summary(self) -> Spread:
        """The per-round values summarised."""
        return Spread.of(self.values)

    @property
    def ratio(self) -> Spread | None:
        """The per-round ratios summarised, if there is a baseline."""
        return Spread.of(self.ratios) if self.ratios else None

    @property
    def met(self) -> bool | None:
        """Whether the target is met on the median (``None`` without a target)."""
        if self.target is None:
            return None
        ratio = self.ratio
        if self.target.on == "ratio":
            return ratio is not None and self.target.met_by(ratio.median)
        return self.target.met_by(self.summary.median)

    @property
    def noisy(self) -> bool:
        """Whether the values or the ratios spread more than the noise threshold."""
        ratio = self.ratio
        return self.summary.noisy or (ratio is not None and ratio.noisy)

    def to_json(self) -> dict[str, Any]:
        """Everything, raw per-round figures included, for ``latest.json``."""
        summary = self.summary
        ratio = self.ratio
        return {
            "benchmark": self.benchmark,
            "item": self.item,
            "metric": self.metric,
            "unit": self.unit,
            "values": [round(v, 4) for v in self.values],
            "median": round(summary.median, 4),
            "min": round(summary.low, 4),
            "max": round(summary.high, 4),
            "spread_pct": round(summary.spread_pct, 1),
            "baseline": self.baseline,
            "baseline_values": [round(v, 4) for v in self.baseline_values],
            "baseline_median": (
                round(statistics.median(self.baseline_values), 4) if self.baseline_values else None
            ),
            "ratios": [round(v, 4) for v in self.ratios],
            "ratio_median": round(ratio.median, 4) if ratio else None,
            "ratio_min": round(ratio.low, 4) if ratio else None,
            "ratio_max": round(ratio.high, 4) if ratio else None,
            "target": self.target.text(self.unit) if self.target else None,
            "met": self.met,
            "noisy": self.noisy,
            "note": self.note,
        }


def ratios_of(values: Sequence[float], baselines: Sequence[float]) -> list[float]:
    """Round-by-round ratios, so that a slow round is compared with its own baseline.

    Example:
        >>> ratios_of([2.0, 3.0], [4.0, 3.0])
        [0.5, 1.0]
    """
    return [value / base for value, base in zip(values, baselines, strict=True)]


# -- the run's context --------------------------------------------------------------------


@dataclass
class Context:
    """What a benchmark needs from the run: sizes, rounds, folders, randomness, output.

    Attributes:
        quick: a sanity pass (fewer rounds, smaller products), not figures to quote.
        data_dir: the emulator's cache (catalogue, TLS CA, archives); kept between runs
            because building the catalogue takes ~40 s and a 1 GiB archive ~3.5 s.
        work_dir: where downloads land; every run writes new files here and they are
            deleted after each run.
        rounds: overrides every benchmark's own number of rounds when set.
        seed: seeds the order of configurations inside each round.
        python: the interpreter that runs the client and the emulator.
    """

    quick: bool
    data_dir: Path
    work_dir: Path
    rounds: int | None = None
    seed: int = 20231001
    python: str = sys.executable
    log: Callable[[str], None] = field(default=lambda line: print(line, flush=True))
    rng: random.Random = field(init=False)

    def __post_init__(self) -> None:
        self.rng = random.Random(self.seed)

    def rounds_for(self, full: int, quick: int) -> int:
        """Rounds for a benchmark: ``--rounds`` if given, else its full or quick default."""
        if self.rounds is not None:
            return self.rounds
        return quick if self.quick else full

    def scratch(self, name: str) -> Path:
        """An empty folder under the work folder (emptied if it existed)."""
        path = self.work_dir / name
        remove(path)
        path.mkdir(parents=True)
        return path


def remove(path: Path) -> None:
    """Delete a file or folder tree if present."""
    if path.is_dir():
        shutil.rmtree(path)
    elif path.exists():
        path.unlink()


def settle() -> None:
    """Write back dirty pages now, untimed.

    Background writeback of the previous run's gigabytes would otherwise take CPU from
    whichever run comes next on a 2-core machine.
    """
    os.sync()


# -- measured subprocesses ----------------------------------------------------------------


@dataclass(frozen=True)
class Measured:
    """A finished subprocess: its exit status, output and resource use.

    Attributes:
        returncode: exit status (negative: killed by that signal).
        wall_s: from spawn to reaped, measured by the harness.
        cpu_s: user + system CPU of the process and of the children it reaped.
        user_s, system_s: the two parts of ``cpu_s``.
        max_rss_kb: peak resident set size (kB) of the process or its largest child.
        stdout: what it printed on stdout.
        stderr: what it printed on stderr (its last 4000 characters).
    """

    returncode: int
    wall_s: float
    user_s: float
    system_s: float
    max_rss_kb: int
    stdout: str
    stderr: str

    @property
    def cpu_s(self) -> float:
        """User + system CPU seconds."""
        return self.user_s + self.system_s


class Spawned:
    """A started subprocess whose output goes to files (no pipe can fill and block it)."""

    def __init__(
        self,
        command: Sequence[str],
        env: dict[str, str] | None = None,
        cwd: Path | None = None,
    ) -> None:
        self.command = list(command)
        # Closed by reap(): they must outlive this constructor, as the process does.
        self._stdout = tempfile.TemporaryFile()  # noqa: SIM115
        self._stderr = tempfile.TemporaryFile()  # noqa: SIM115
        self.started = time.perf_counter()
        self.process = subprocess.Popen(
            self.command,
            stdout=self._stdout,
            stderr=self._stderr,
            stdin=subprocess.DEVNULL,
            env=env,
            cwd=cwd,
        )

    @property
    def pid(self) -> int:
        """The process id."""
        return self.process.pid

    def reap(self) -> Measured:
        """Wait for the process; return its own resource use (``wait4``, not a delta)."""
        _, status, usage = os.wait4(self.process.pid, 0)
        wall_s = time.perf_counter() - self.started
        # Popen must not try to reap the process a second time.
        self.process.returncode = os.waitstatus_to_exitcode(status)
        outputs = []
        for handle in (self._stdout, self._stderr):
            handle.seek(0)
            outputs.append(handle.read().decode(errors="replace"))
            handle.close()
        return Measured(
            returncode=self.process.returncode,
            wall_s=wall_s,
            user_s=usage.ru_utime,
            system_s=usage.ru_stime,
            max_rss_kb=usage.ru_maxrss,
            stdout=outputs[0],
            stderr=outputs[1][-4000:],
        )


def run_measured(
    command: Sequence[str],
    env: dict[str, str] | None = None,
    *,
    cwd: Path | None = None,
    check: bool = True,
) -> Measured:
    """Run a command to completion and measure it.

    Raises:
        RuntimeError: it failed and ``check`` is set (its stderr is in the message).
    """
    measured = Spawned(command, env, cwd).reap()
    if check and measured.returncode != 0:
        raise RuntimeError(
            f"{shown(command)} exited with {measured.returncode}: {measured.stderr.strip()}"
        )
    return measured


def shown(command: Sequence[str]) -> str:
    """A command as it would be typed, shortened if it lists many arguments."""
    words = [str(word) for word in command]
    if len(words) > 14:
        words = [*words[:12], f"... ({len(words) - 12} more)"]
    return " ".join(words)


# -- the emulator -------------------------------------------------------------------------


class EmulatorProcess:
    """``python -m sentinel_fetch.emulator`` in its own process, HTTPS, and its admin API.

    Args:
        context: the run (interpreter, data folder).
        product_size: every archive's size (``--product-size``), or ``None`` for the
            emulator's default scale (small archives: what a catalogue listing needs).
        extra: further command-line options (``--bandwidth 20MB``...).
    """

    def __init__(
        self, context: Context, product_size: int | None, extra: Sequence[str] = ()
    ) -> None:
        self.command = [context.python, "-m", "sentinel_fetch.emulator"]
        self.command += ["--data-dir", str(context.data_dir)]
        if product_size is not None:
            self.command += ["--product-size", str(product_size)]
        self.command += list(extra)
        self.env: dict[str, str] = {}
        self._log = context.data_dir / "emulator.log"
        self._process: subprocess.Popen[str] | None = None
        self._ssl: ssl.SSLContext | None = None
        self._context = context

    def __enter__(self) -> EmulatorProcess:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def start(self) -> None:
        """Start it and read the endpoints it announces (its ``export`` lines)."""
        self._context.data_dir.mkdir(parents=True, exist_ok=True)
        self._context.log(f"  $ {shown(self.command)}")
        with self._log.open("a") as log:
            self._process = subprocess.Popen(
                self.command,
                stdout=subprocess.PIPE,
                stderr=log,
                stdin=subprocess.DEVNULL,
                text=True,
                env={**os.environ, "PYTHONUNBUFFERED": "1"},
            )
        assert self._process.stdout is not None
        for line in self._process.stdout:
            text = line.strip()
            if text.startswith("export "):
                name, _, value = text.removeprefix("export ").partition("=")
                self.env[name] = value.strip("'")
            if text.startswith("Press Ctrl+C"):
                break
        else:
            raise RuntimeError(
                f"the emulator exited early ({self._process.wait()}); see {self._log}"
            )
        self._ssl = ssl.create_default_context(cafile=self.ca_bundle)

    def stop(self) -> None:
        """SIGTERM, then SIGKILL if it does not stop within 20 s."""
        if self._process is None:
            return
        self._process.send_signal(signal.SIGTERM)
        try:
            self._process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait()
        if self._process.stdout is not None:
            self._process.stdout.close()
        self._process = None

    @property
    def ca_bundle(self) -> str:
        """The CA file to trust (curl's ``--cacert``)."""
        return self.env["SENTINEL_FETCH_CA_BUNDLE"]

    @property
    def catalogue_url(self) -> str:
        """Base URL of the catalogue (``…/odata/v1``)."""
        return self.env["SENTINEL_FETCH_CATALOGUE_URL"]

    @property
    def download_url(self) -> str:
        """Base URL of the download host (``…/odata/v1``)."""
        return self.env["SENTINEL_FETCH_DOWNLOAD_URL"]

    @property
    def admin_url(self) -> str:
        """Base URL of the admin endpoint (``/_emulator`` on the catalogue host)."""
        parts = urllib.parse.urlsplit(self.catalogue_url)
        return f"{parts.scheme}://{parts.netloc}/_emulator"

    def client_env(self) -> dict[str, str]:
        """The environment a client process gets: ours plus the emulator's exports."""
        env = {key: value for key, value in os.environ.items() if not key.startswith("CDSE_")}
        return {**env, **self.env}

    def request(
        self,
        url: str,
        *,
        method: str | None = None,
        form: dict[str, str] | None = None,
        body: object = None,
    ) -> Any:
        """One request to the emulator; the decoded JSON answer (``None`` if empty)."""
        data: bytes | None = None
        headers: dict[str, str] = {}
        if form is not None:
            data = urllib.parse.urlencode(form).encode()
        elif body is not None:
            data = json.dumps(body).encode()
            headers["Content-Type"] = "application/json"
        request = urllib.request.Request(url, data=data, headers=headers, method=method)
        with urllib.request.urlopen(request, context=self._ssl, timeout=600) as response:
            text = response.read()
        return json.loads(text) if text else None

    def admin(self, method: str, route: str, body: object = None) -> Any:
        """Call the admin endpoint (``GET stats``, ``PATCH config``...)."""
        return self.request(f"{self.admin_url}/{route}", method=method, body=body)

    def token(self) -> str:
        """A fresh access token for the demo account (curl's ``Authorization`` header)."""
        grant = self.request(
            self.env["SENTINEL_FETCH_IDENTITY_URL"] + "/protocol/openid-connect/token",
            form={
                "client_id": "cdse-public",
                "grant_type": "password",
                "username": self.env["CDSE_USERNAME"],
                "password": self.env["CDSE_PASSWORD"],
            },
        )
        return str(grant["access_token"])

    def catalogue(self, params: dict[str, str]) -> dict[str, Any]:
        """``GET Products?…`` on the catalogue."""
        query = urllib.parse.urlencode(params, quote_via=urllib.parse.quote)
        answer = self.request(f"{self.catalogue_url}/Products?{query}")
        assert isinstance(answer, dict)
        return answer

    def product_names(self, count: int, collection: str = "SENTINEL-2", skip: int = 0) -> list[str]:
        """``count`` online products of a collection, by name, after the first ``skip``.

        ``$select=Name`` keeps the catalogue from computing checksums, which means
        building each archive: a broad query at 1 GiB per product would build
        gigabytes for nothing.
        """
        names: list[str] = []
        while len(names) < count:
            page = self.catalogue(
                {
                    "$filter": f"Online eq true and Collection/Name eq '{collection}'",
                    "$orderby": "ContentDate/Start asc",
                    "$select": "Name",
                    "$top": str(min(1000, count - len(names))),
                    "$skip": str(skip + len(names)),
                }
            )
            values = page["value"]
            if not values:
                raise RuntimeError(f"only {len(names)} online {collection} products")
            names += [entity["Name"] for entity in values]
        return names

    def products(self, names: Sequence[str]) -> dict[str, ProductFacts]:
        """Id, size and BLAKE3 of named products; builds their archives if needed."""
        facts: dict[str, ProductFacts] = {}
        for start in range(0, len(names), 40):
            group = names[start : start + 40]
            wanted = " or ".join(f"Name eq '{name}'" for name in group)
            page = self.catalogue(
                {
                    "$filter": wanted,
                    "$select": "Name,ContentLength,Checksum",
                    "$top": str(len(group)),
                }
            )
            for entity in page["value"]:
                # Some entries (the emulator's older holdings) carry malformed checksums.
                digests = {
                    item.get("Algorithm"): item.get("Value")
                    for item in entity.get("Checksum") or []
                    if isinstance(item, dict)
                }
                facts[entity["Name"]] = ProductFacts(
                    entity["Id"],
                    entity["Name"],
                    int(entity["ContentLength"]),
                    digests.get("BLAKE3"),
                )
        missing = set(names) - set(facts)
        if missing:
            raise RuntimeError(f"the catalogue does not know {sorted(missing)[:3]}")
        return facts

    def value_url(self, product_id: str) -> str:
        """The product's ``$value`` URL on the download host."""
        return f"{self.download_url}/Products({product_id})/$value"


@dataclass(frozen=True)
class ProductFacts:
    """What the catalogue says about a product the benchmark downloads."""

    id: str
    name: str
    size: int
    blake3: str | None

    @property
    def file_name(self) -> str:
        """The client's file name for it (the catalogue name plus ``.zip``)."""
        return f"{self.name}.zip"


# -- clients --------------------------------------------------------------------------------


@dataclass(frozen=True)
class ClientRun:
    """One run of the client driver.

    Attributes:
        transfer_s: wall time of the work itself, measured inside the client.
        transfer_cpu_s: the client's CPU time during that work.
        process: the whole process as the harness measured it (start, imports, lookup).
        summary: the driver's JSON summary.
    """

    transfer_s: float
    transfer_cpu_s: float
    process: Measured
    summary: dict[str, Any]


def run_client(context: Context, arguments: Sequence[str], env: dict[str, str]) -> ClientRun:
    """Run ``client_driver.py`` with ``arguments``; fail loudly unless it succeeded."""
    # The work folder as the current folder: no sentinel-fetch.toml of ours applies.
    measured = run_measured([context.python, str(DRIVER), *arguments], env, cwd=context.work_dir)
    summary = json.loads(measured.stdout.strip().splitlines()[-1])
    if not summary.get("ok"):
        raise RuntimeError(f"the client did not succeed: {summary}")
    return ClientRun(summary["elapsed_s"], summary["cpu_s"], measured, summary)


@contextmanager
def header_file(emulator: EmulatorProcess, folder: Path) -> Iterator[Path]:
    """A fresh ``Authorization`` header in a private file, for ``curl -H @file``.

    A file keeps the token out of every ``ps`` listing; a fresh token per run keeps a
    long benchmark clear of the 10-minute token lifetime.
    """
    path = folder / "authorization.header"
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w") as handle:
        handle.write(f"Authorization: Bearer {emulator.token()}\n")
    try:
        yield path
    finally:
        path.unlink(missing_ok=True)


def curl_command(url: str, output: Path | str, header: Path, ca_bundle: str) -> list[str]:
    """``curl`` as a user would run it for one product (no checksum, no fsync)."""
    return [
        "curl",
        "--silent",
        "--show-error",
        "--fail",
        "--cacert",
        ca_bundle,
        "-H",
        f"@{header}",
        "-o",
        str(output),
        url,
    ]


def run_parallel(commands: Sequence[Sequence[str]], env: dict[str, str] | None = None) -> Measured:
    """Start every command at once, wait for all; wall = first spawn to last exit.

    CPU times are summed; ``max_rss_kb`` is the *sum* of the peaks, the memory the
    whole set of processes needs (each peak is in ``Measured.stdout`` as JSON).
    """
    began = time.perf_counter()
    spawned = [Spawned(command, env) for command in commands]
    results = [process.reap() for process in spawned]
    wall_s = time.perf_counter() - began
    for command, result in zip(commands, results, strict=True):
        if result.returncode != 0:
            raise RuntimeError(f"{shown(command)} exited with {result.returncode}: {result.stderr}")
    return Measured(
        returncode=0,
        wall_s=wall_s,
        user_s=sum(result.user_s for result in results),
        system_s=sum(result.system_s for result in results),
        max_rss_kb=sum(result.max_rss_kb for result in results),
        stdout=json.dumps([result.max_rss_kb for result in results]),
        stderr="",
    )


def check_sizes(files: Sequence[Path], expected: Sequence[int]) -> None:
    """Every output file exists with exactly the catalogue's size."""
    for path, size in zip(files, expected, strict=True):
        actual = path.stat().st_size if path.exists() else -1
        if actual != size:
            raise RuntimeError(f"{path} has {actual} bytes, expected {size}")


# -- the machine ----------------------------------------------------------------------------


def machine_facts() -> dict[str, Any]:
    """CPU model, cores, RAM, Python, curl, OS: what a reader needs to compare runs."""
    cpu = platform.processor() or "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    memory_gib = 0.0
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                memory_gib = int(line.split()[1]) * KIB / GIB
                break
    except OSError:
        pass
    try:
        curl = subprocess.run(
            ["curl", "--version"], capture_output=True, text=True, check=True
        ).stdout.splitlines()[0]
    except (OSError, subprocess.CalledProcessError):
        curl = "curl not found"
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "memory_gib": round(memory_gib, 1),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "curl": " ".join(curl.split()[:2]),
        "date": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "load_average": load_average(),
    }


def load_average() -> str:
    """The 1, 5 and 15-minute load averages: other work on the machine skews every figure."""
    return " ".join(f"{value:.2f}" for value in os.getloadavg())
