"""Run ``sentinel-fetch`` as a real subprocess against the emulator, and judge what it left.

The batch tests (kill loop, batch life) drive the command exactly as a user does: a fresh
interpreter, endpoints and account from the environment, a save folder on disk. What
they assert is what the emulator served and what is on disk, never client internals.
The reference for "a good file" is the emulator's own archive (length and BLAKE3 of the
bytes it serves), not the catalogue entry the client read.
"""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from blake3 import blake3

from sentinel_fetch.emulator import Emulator

__all__ = [
    "LEDGER_FILE",
    "LOCK_FILE",
    "REPORT_CSV",
    "REPORT_JSON",
    "ExpectedFile",
    "Workspace",
    "cli_command",
    "expected_files",
    "finish_problems",
    "ledger_states",
]

LEDGER_FILE = "sentinel-fetch-ledger.sqlite"
# The one entry in Finish that is not a product: a run's lock, left there by a kill -9.
LOCK_FILE = ".sentinel-fetch.lock"
REPORT_CSV = "sentinel-fetch-report.csv"
REPORT_JSON = "sentinel-fetch-report.json"

# Retry waits of the command under test: the same policy as the defaults, shorter waits,
# so that a 429 right after a restart costs a fraction of a second instead of a minute.
FAST_LIMITS = {
    "backoff_base_s": 0.05,
    "backoff_max_s": 0.4,
    "throttle_cooldown_s": 1.0,
    "probe_after_s": 0.25,
    "connect_timeout_s": 5.0,
    "read_timeout_s": 5.0,
    "max_attempts": 6,
}


def cli_command() -> list[str]:
    """The command line that starts ``sentinel-fetch`` with this interpreter."""
    return [sys.executable, "-m", "sentinel_fetch"]


@dataclass(frozen=True)
class ExpectedFile:
    """What the emulator serves for one product: the truth a finished file must match."""

    product_id: str
    name: str
    file_name: str
    length: int
    blake3: str
    online: bool


def expected_files(emulator: Emulator, product_ids: Iterable[str]) -> dict[str, ExpectedFile]:
    """``file name in Finish -> ExpectedFile`` for the given products."""
    expected: dict[str, ExpectedFile] = {}
    for product_id in product_ids:
        record = emulator.store.get(product_id)
        assert record is not None, product_id
        info = emulator.archives.info(record)
        # Products are zips on disk (Sentinel-5P included): the name plus ".zip".
        file_name = f"{record.name}.zip"
        expected[file_name] = ExpectedFile(
            record.id, record.name, file_name, info.length, info.blake3, record.online
        )
    return expected


def finish_problems(finish_dir: Path, expected: Mapping[str, ExpectedFile]) -> list[str]:
    """Every way the finish folder differs from "exactly the verified expected files".

    A file that is there must be complete and match the served BLAKE3 (checked even
    when the caller only expects a subset to be done yet); anything else in the folder
    (a ``.part``, a stray file, a folder) is a problem too, except the lock file of a
    run that was killed (it holds no lock any more and goes with the next clean run).
    """
    problems: list[str] = []
    if not finish_dir.is_dir():
        return [f"{finish_dir} does not exist"]
    for entry in sorted(finish_dir.iterdir()):
        if entry.name == LOCK_FILE and entry.is_file():
            continue
        want = expected.get(entry.name)
        if want is None or not entry.is_file():
            problems.append(f"unexpected entry in Finish: {entry.name}")
            continue
        size = entry.stat().st_size
        if size != want.length:
            problems.append(f"{entry.name}: {size} bytes, served {want.length}")
            continue
        digest = blake3(entry.read_bytes()).hexdigest()
        if digest != want.blake3:
            problems.append(f"{entry.name}: BLAKE3 {digest[:12]}…, served {want.blake3[:12]}…")
    return problems


def ledger_states(save_path: Path) -> dict[str, str]:
    """``product id -> state`` as the job ledger records it (read-only, plain SQLite)."""
    uri = f"file:{save_path / LEDGER_FILE}?mode=ro"
    with sqlite3.connect(uri, uri=True) as connection:
        return dict(connection.execute("SELECT id, state FROM products").fetchall())


class Workspace:
    """A user's world for one test: home, working folder, config, save folder.

    Every write the command makes should land in ``save_path``; ``home``, ``cwd`` and
    ``tmp`` start empty so a test can check that they stay that way.

    Args:
        root: an empty folder (the test's ``tmp_path``).
        emulator: the CDSE emulator to point the command at.
        limits: ``[limits]`` written to the config file the command reads.
    """

    def __init__(
        self, root: Path, emulator: Emulator, limits: Mapping[str, float] | None = None
    ) -> None:
        self.root = root
        self.home = root / "home"
        self.cwd = root / "cwd"
        self.tmp = root / "tmp"
        self.save_path = root / "save"
        for folder in (self.home, self.cwd, self.tmp):
            folder.mkdir(parents=True, exist_ok=True)
        # Outside home: the config is ours, not something the command could have written.
        self.config_file = root / "sentinel-fetch-test.toml"
        lines = ["[limits]"] + [
            f"{name} = {value}" for name, value in (limits or FAST_LIMITS).items()
        ]
        self.config_file.write_text("\n".join(lines) + "\n", encoding="utf-8")
        self.emulator = emulator

    @property
    def finish(self) -> Path:
        """The folder of verified products."""
        return self.save_path / "Finish"

    @property
    def temp(self) -> Path:
        """The folder of ``.part`` files."""
        return self.save_path / "Temp"

    def env(self) -> dict[str, str]:
        """A clean environment: emulator endpoints, demo account, nothing of the caller's."""
        keep = ("PATH", "LANG", "LC_ALL", "SYSTEMROOT", "PYTHONPATH")
        env = {name: os.environ[name] for name in keep if name in os.environ}
        env.update(self.emulator.env())
        env.update(
            HOME=str(self.home),
            USERPROFILE=str(self.home),
            XDG_CONFIG_HOME=str(self.home / ".config"),
            XDG_CACHE_HOME=str(self.home / ".cache"),
            TMPDIR=str(self.tmp),
            SENTINEL_FETCH_CONFIG=str(self.config_file),
            PYTHONDONTWRITEBYTECODE="1",
            PYTHONUNBUFFERED="1",
        )
        return env

    def run(
        self, *arguments: str, timeout_s: float = 60.0, input_text: str | None = None
    ) -> subprocess.CompletedProcess[str]:
        """Run ``sentinel-fetch ARGUMENTS`` to completion."""
        return subprocess.run(
            [*cli_command(), *arguments],
            env=self.env(),
            cwd=self.cwd,
            capture_output=True,
            text=True,
            timeout=timeout_s,
            input=input_text,
            check=False,
        )

    def spawn(self, arguments: Sequence[str], log: Path) -> subprocess.Popen[bytes]:
        """Start ``sentinel-fetch ARGUMENTS`` in its own process group, output to ``log``."""
        with log.open("wb") as handle:
            return subprocess.Popen(
                [*cli_command(), *arguments],
                env=self.env(),
                cwd=self.cwd,
                stdin=subprocess.DEVNULL,
                stdout=handle,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                # A runner started in the background ignores SIGINT and children inherit
                # that; the Ctrl-C tests need the default, as on a terminal.
                preexec_fn=_default_sigint,
            )

    def stray_files(self) -> list[str]:
        """Files the command left outside the save folder (home, working folder, temp)."""
        return sorted(
            str(path.relative_to(self.root))
            for folder in (self.home, self.cwd, self.tmp)
            for path in folder.rglob("*")
        )

    def write_names(self, names: Iterable[str], file_name: str = "products.txt") -> Path:
        """A ``download --from`` list, kept outside the save folder."""
        path = self.root / file_name
        path.write_text("".join(f"{name}\n" for name in names), encoding="utf-8")
        return path


def _default_sigint() -> None:
    signal.signal(signal.SIGINT, signal.SIG_DFL)
