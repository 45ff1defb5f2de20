"""Product names are server text: shown to people escaped, written to machines exact.

The emulator's ``rewrite`` fault renames an offline product to a name a hostile (or
broken) catalogue could send: a spreadsheet formula first, then terminal escape
sequences (retitle the window, clear the screen, a bell) and rich markup. Every human
rendering (the search table, ``--dry-run``, ``-v`` logs, ``status``) must show it as
visible text; CSV cells must not start a formula; JSON and NDJSON keep it exact.
"""

from __future__ import annotations

import csv
import json
import os
import pty
import subprocess
import sys
from pathlib import Path

import pytest

from sentinel_fetch.api import search
from sentinel_fetch.catalogue.query import build_query
from sentinel_fetch.emulator import Emulator, RewriteFault, StatusFault
from sentinel_fetch.settings import Settings
from sentinel_fetch.text import for_display, printable
from tests.cli.conftest import cli_env as cli_env  # the fixture, shared with the CLI tests
from tests.cli.helpers import run, subprocess_env

# An offline product of the emulator's catalogue (never downloaded: no file is named
# after the hostile text) and a search that finds it.
OFFLINE_NAME = "S2B_MSIL2A_20230609T101427_N0509_R051_T32TPS_20230609T132205.SAFE"
SEARCH = ("-c", "S2", "--tile", "32TPS", "--start", "2023-06-09", "--end", "2023-06-09")
HOSTILE = '=HYPERLINK("http://evil.example")\x1b]0;pwned\x07\x1b[2J[/]' + OFFLINE_NAME
# What a person sees instead of each control character.
SHOWN = '=HYPERLINK("http://evil.example")\\x1b]0;pwned\\x07\\x1b[2J[/]' + OFFLINE_NAME
CONTROLS = ("\x1b", "\x07")


@pytest.fixture
def hostile(cdse: Emulator) -> None:
    """The catalogue calls the offline product by the hostile name, in every answer."""
    cdse.faults.add(RewriteFault(find=OFFLINE_NAME, replace=json.dumps(HOSTILE)[1:-1], times=-1))


def _assert_shown_escaped(text: str, where: str) -> None:
    for control in CONTROLS:
        assert control not in text, f"{where} holds {control!r}"
    assert SHOWN in text, f"{where} does not show the name: {text!r}"


def test_saved_and_piped_search_results(
    cli_env: Path, hostile: None, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = run(capsys, "search", *SEARCH)
    assert code == 0, err
    names = [json.loads(line)["name"] for line in out.splitlines()]
    assert HOSTILE in names, "NDJSON is for programs: the name stays exact"

    for suffix in ("csv", "json"):
        code, _, err = run(capsys, "search", *SEARCH, "--output", f"results.{suffix}")
        assert code == 0, err
    with (cli_env / "results.csv").open(encoding="utf-8", newline="") as handle:
        cells = [row["name"] for row in csv.DictReader(handle)]
    assert "'" + HOSTILE in cells, "a CSV cell never starts a formula"
    assert not [cell for cell in cells if cell.startswith(("=", "+", "-", "@"))]
    saved = json.loads((cli_env / "results.json").read_text(encoding="utf-8"))
    assert HOSTILE in [product["name"] for product in saved["products"]]


def test_dry_run_logs_status_and_the_failure_report(
    cli_env: Path, hostile: None, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = run(capsys, "search", *SEARCH, "--output", "chosen.json")
    assert code == 0, err

    code, out, err = run(capsys, "-v", "download", "--from", "chosen.json", "--dry-run")
    assert code == 0, err
    _assert_shown_escaped(out, "--dry-run")

    code, out, err = run(
        capsys,
        "-v",
        "--log-file",
        "debug.log",
        "download",
        "--from",
        "chosen.json",
        "--out",
        "data",
    )
    assert code == 0, err
    _assert_shown_escaped(err, "-v stderr")
    _assert_shown_escaped((cli_env / "debug.log").read_text(encoding="utf-8"), "the log file")
    with (cli_env / "data" / "sentinel-fetch-report.csv").open(encoding="utf-8") as handle:
        (row,) = list(csv.DictReader(handle))
    assert row["name"] == "'" + HOSTILE and row["status"] == "offline"
    report = json.loads((cli_env / "data" / "sentinel-fetch-report.json").read_text())
    assert [entry["name"] for entry in report] == [HOSTILE]

    code, out, err = run(capsys, "status", "data")
    assert code == 0, err
    _assert_shown_escaped(out, "status")


def _on_a_terminal(
    cdse: Emulator, folder: Path, arguments: list[str], stream: str
) -> tuple[int, str, str]:
    """Run sentinel-fetch with ``stream`` (stdout or stderr) on a real terminal (a pty).

    Returns the exit status, what the terminal received and the other stream.
    """
    controller, terminal = pty.openpty()
    env = {**subprocess_env(cdse, folder), "COLUMNS": "400", "TERM": "xterm"}
    streams = {"stdout": subprocess.PIPE, "stderr": subprocess.PIPE, stream: terminal}
    process = subprocess.Popen(
        [sys.executable, "-m", "sentinel_fetch", *arguments],
        stdin=subprocess.DEVNULL,
        stdout=streams["stdout"],
        stderr=streams["stderr"],
        env=env,
        cwd=folder,
    )
    os.close(terminal)
    chunks = []
    while True:
        try:
            chunk = os.read(controller, 65536)
        except OSError:  # EIO: the child closed the terminal
            break
        if not chunk:
            break
        chunks.append(chunk)
    os.close(controller)
    out, err = process.communicate(timeout=120)
    other = (err if stream == "stdout" else out).decode("utf-8", "replace")
    return process.returncode, b"".join(chunks).decode("utf-8", "replace"), other


def _assert_no_sequence_of_the_name(screen: str) -> None:
    # Rich draws with styles of its own (bold headers, bars); the name must add none.
    for sequence in ("\x1b]0;pwned", "\x07", "\x1b[2J"):
        assert sequence not in screen
    assert "\\x1b]0;pwned\\x07\\x1b[2J[/]" in screen


def test_the_search_table_on_a_terminal(cdse: Emulator, tmp_path: Path, hostile: None) -> None:
    code, table, err = _on_a_terminal(cdse, tmp_path, ["search", *SEARCH], "stdout")
    assert code == 0, err
    _assert_no_sequence_of_the_name(table)


def test_progress_bars_and_failures_on_a_terminal(cdse: Emulator, tmp_path: Path) -> None:
    """An online product renamed to the hostile name, refused by the download host."""
    query = build_query(collections="S2", tiles="32TPS", start="2023-07-01", end="2023-07-02")
    (first,) = list(search(query, settings=Settings.from_env(cdse.env())))[:1]
    hostile = HOSTILE.replace(OFFLINE_NAME, first.name)
    cdse.faults.add(RewriteFault(find=first.name, replace=json.dumps(hostile)[1:-1], times=-1))
    cdse.faults.add(StatusFault(product=first.id, status=403, code="DAT-ZIP-608", times=-1))
    arguments = ["download", *SEARCH[:4], "--start", "2023-07-01", "--end", "2023-07-02"]

    code, screen, _ = _on_a_terminal(cdse, tmp_path, [*arguments, "--out", "data"], "stderr")

    assert code == 1, screen
    assert "failed" in screen and "DAT-ZIP-608" in screen
    _assert_no_sequence_of_the_name(screen)


def test_a_lone_surrogate_is_shown_as_its_escape() -> None:
    shown = printable("S2B_\ud800_name\udfff")
    assert shown == "S2B_\\ud800_name\\udfff"
    assert for_display("x\udc80").encode("utf-8") == b"x\\udc80"
