"""The soak's client side: ``sentinel-fetch download`` subprocesses in a sealed workspace.

Each run is a fresh interpreter, exactly what a user's rerun is: it reads endpoints and
the account from the environment, its limits from a config file written here, and
writes a debug log (``--log-file``) that the soak later reads for retries. Home,
working folder and temp folder are private and start empty, so anything the client
writes outside its save folder shows up.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

__all__ = ["ClientWorkspace", "RunOutcome"]


@dataclass(frozen=True)
class RunOutcome:
    """How one client process ended.

    Attributes:
        exit_code: the process's status (``-9`` when it was killed).
        killed: whether the soak killed it.
        wall_s: from start to exit.
        log: its debug log file.
    """

    exit_code: int
    killed: bool
    wall_s: float
    log: Path


class ClientWorkspace:
    """Home, working folder, temp folder, config, logs and save folder of one client.

    Args:
        root: an empty folder.
        endpoints: the emulator's environment (``Emulator.env()``).
        limits: the ``[limits]`` table of the client's config file.
    """

    def __init__(self, root: Path, endpoints: Mapping[str, str], limits: Mapping[str, float]):
        self.root = root
        self.home = root / "home"
        self.cwd = root / "cwd"
        self.tmp = root / "tmp"
        self.logs = root / "logs"
        self.save_path = root / "save"
        for folder in (self.home, self.cwd, self.tmp, self.logs):
            folder.mkdir(parents=True, exist_ok=True)
        self.config_file = root / "client.toml"
        lines = ["[limits]", *(f"{name} = {value}" for name, value in limits.items())]
        self.config_file.write_text("\n".join(lines) + "\n", encoding="utf-8")
        self.endpoints = dict(endpoints)
        self.runs = 0

    @property
    def finish(self) -> Path:
        """Verified products."""
        return self.save_path / "Finish"

    @property
    def temp(self) -> Path:
        """``.part`` files."""
        return self.save_path / "Temp"

    def env(self) -> dict[str, str]:
        """The client's whole environment: nothing of the caller's leaks in."""
        keep = ("PATH", "LANG", "LC_ALL", "SYSTEMROOT", "PYTHONPATH")
        env = {name: os.environ[name] for name in keep if name in os.environ}
        env.update(self.endpoints)
        env.update(
            HOME=str(self.home),
            USERPROFILE=str(self.home),
            XDG_CONFIG_HOME=str(self.home / ".config"),
            XDG_CACHE_HOME=str(self.home / ".cache"),
            TMPDIR=str(self.tmp),
            SENTINEL_FETCH_CONFIG=str(self.config_file),
            PYTHONDONTWRITEBYTECODE="1",
        )
        return env

    def run(
        self,
        arguments: Sequence[str],
        *,
        kill_when: Callable[[], bool] | None = None,
        timeout_s: float,
        poll_s: float = 0.002,
    ) -> RunOutcome:
        """Run the client; SIGKILL it as soon as ``kill_when()`` holds (if it ever does).

        Raises:
            TimeoutError: the process outlived ``timeout_s`` (it is killed first).
        """
        self.runs += 1
        log = self.logs / f"run-{self.runs:03d}.log"
        command = [
            sys.executable,
            "-m",
            "sentinel_fetch",
            "--log-file",
            str(log),
            *arguments,
        ]
        began = time.monotonic()
        with (self.logs / f"run-{self.runs:03d}.out").open("wb") as output:
            process = subprocess.Popen(
                command,
                env=self.env(),
                cwd=self.cwd,
                stdin=subprocess.DEVNULL,
                stdout=output,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        killed = False
        try:
            while process.poll() is None:
                if time.monotonic() - began > timeout_s:
                    raise TimeoutError(f"client run {self.runs} outlived {timeout_s:.0f} s")
                if kill_when is not None and kill_when():
                    os.killpg(process.pid, signal.SIGKILL)
                    killed = True
                    break
                time.sleep(poll_s)
            exit_code = process.wait(timeout=30)
        finally:
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()
        # The process may have exited on its own between the last poll and the signal.
        killed = killed and exit_code == -signal.SIGKILL
        return RunOutcome(exit_code, killed, time.monotonic() - began, log)

    def output_of(self, outcome: RunOutcome) -> str:
        """What a run printed (stdout and stderr)."""
        return outcome.log.with_suffix(".out").read_text(encoding="utf-8", errors="replace")

    def stray_files(self) -> list[str]:
        """Files the client left in its home, working folder or temp folder."""
        return sorted(
            str(path.relative_to(self.root))
            for folder in (self.home, self.cwd, self.tmp)
            for path in folder.rglob("*")
        )
