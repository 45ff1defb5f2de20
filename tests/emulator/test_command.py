"""The emulator's one command line, from both entry points, as real subprocesses."""

from __future__ import annotations

import os
import queue
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from typing import IO

import pytest
import requests

ENTRY_POINTS = {
    "python -m sentinel_fetch.emulator": [sys.executable, "-m", "sentinel_fetch.emulator"],
    "sentinel-fetch emulator": [sys.executable, "-m", "sentinel_fetch", "emulator"],
}
# Long enough for a first start that builds the catalogue on a busy machine; a line that
# arrives returns at once.
_LINE_TIMEOUT_S = 300.0


class _Lines:
    """The lines of a pipe, read by a thread, waited for one at a time."""

    def __init__(self, pipe: IO[str]) -> None:
        self._queue: queue.Queue[str | None] = queue.Queue()
        self.seen: list[str] = []
        threading.Thread(target=self._read, args=(pipe,), daemon=True).start()

    def _read(self, pipe: IO[str]) -> None:
        for line in pipe:
            self._queue.put(line.rstrip("\n"))
        self._queue.put(None)

    def until(self, text: str) -> str:
        """The first line from here on that contains ``text``; fails at the pipe's end."""
        while True:
            line = self._queue.get(timeout=_LINE_TIMEOUT_S)
            if line is None:
                pytest.fail(f"no line with {text!r}; got: {self.seen[-20:]}")
            self.seen.append(line)
            if text in line:
                return line


def _start(name: str, *options: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [*ENTRY_POINTS[name], "--no-tls", *options],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )


@pytest.fixture
def stop_after() -> Iterator[list[subprocess.Popen[str]]]:
    """Processes to stop with Ctrl+C (SIGINT) when the test ends, however it ends."""
    started: list[subprocess.Popen[str]] = []
    yield started
    for process in started:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(60)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _catalogue_url(stdout: _Lines) -> str:
    # "  catalogue: <url>" in the announcement (the line before also names the catalogue).
    return stdout.until("  catalogue: ").split("catalogue: ", 1)[1].strip()


def _stderr_after_one_search(name: str, *options: str, started: list[subprocess.Popen[str]]) -> str:
    """Start the emulator, search its catalogue once, stop it with Ctrl+C; its stderr."""
    process = _start(name, *options)
    started.append(process)
    assert process.stdout is not None
    stdout = _Lines(process.stdout)
    catalogue = _catalogue_url(stdout)
    answer = requests.get(
        f"{catalogue}/Products", params={"$filter": "Online eq true", "$top": "1"}, timeout=60
    )
    assert answer.status_code == 200
    process.send_signal(signal.SIGINT)
    stdout.until("Stopping the emulator.")
    _, errors = process.communicate(timeout=60)
    assert process.returncode == 0, errors
    return errors


@pytest.mark.parametrize("name", list(ENTRY_POINTS))
def test_verbose_logs_every_request(name: str, stop_after: list[subprocess.Popen[str]]) -> None:
    errors = _stderr_after_one_search(name, "--verbose", started=stop_after)
    logged = [line for line in errors.splitlines() if "/odata/v1/Products" in line]
    assert len(logged) == 1, errors[-2000:]
    assert "catalogue GET" in logged[0] and "-> 200" in logged[0]


@pytest.mark.parametrize("name", list(ENTRY_POINTS))
def test_without_verbose_requests_are_not_logged(
    name: str, stop_after: list[subprocess.Popen[str]]
) -> None:
    errors = _stderr_after_one_search(name, started=stop_after)
    assert "/odata/v1/Products" not in errors


@pytest.mark.parametrize("name", list(ENTRY_POINTS))
def test_a_bad_option_value_is_one_line_and_exit_2(name: str) -> None:
    result = subprocess.run(
        [*ENTRY_POINTS[name], "--product-size", "lots"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 2
    assert "not an amount of bytes" in result.stderr
    assert "Traceback" not in result.stderr
