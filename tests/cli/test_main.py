"""The command line as a whole: help, version, global options, logs and empty values."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from sentinel_fetch.emulator import Emulator
from tests.cli.helpers import (
    FEW_PRODUCTS,
    GOOD_SEARCH,
    assert_one_line_input_error,
    run,
)


def test_every_command_answers_help(capsys: pytest.CaptureFixture[str]) -> None:
    from sentinel_fetch.cli import _COMMANDS

    for command in _COMMANDS:
        code, out, _ = run(capsys, command, "--help")
        assert code == 0 and len(out) > 100, command


def test_python_dash_m_and_version() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "sentinel_fetch", "--version"], capture_output=True, text=True
    )
    assert result.returncode == 0 and "sentinel-fetch" in result.stdout


def test_debug_logs_never_contain_a_token_or_password(
    cli_env: Path, cdse: Emulator, capsys: pytest.CaptureFixture[str]
) -> None:
    """The most verbose log of a download with a token refresh and a proxy password."""
    cdse.config.access_token_lifetime_s = 1.0  # force refreshes during the run
    cdse.config.bandwidth_bytes_per_s = 50_000  # a run of a few seconds: several token lives
    code, _, err = run(
        capsys, "-vv", "--log-file", "debug.log", "download", *FEW_PRODUCTS, "--out", "data"
    )
    assert code == 0, err
    log = (cli_env / "debug.log").read_text()
    assert "POST" in log and "$value" in log, "the log really is a debug log"
    assert cdse.stats.refreshes, "the run refreshed its token"
    password = os.environ["CDSE_PASSWORD"]
    for text in (log, err):
        assert password not in text
        # Every CDSE access and refresh token is a JWT: base64url JSON starting "eyJ".
        assert "eyJ" not in text
        assert "Authorization" not in text


@pytest.mark.parametrize(
    ("args", "word"),
    [
        (["search", "-c", ""], "--collection"),
        (["search", "-c", "S2", "-t", "L2A,"], "--product-type"),
        (["search", "-c", "S2", "--tile", ","], "--tile"),
        (["search", "-c", "S2", "--tile", "32TPS", "--name", ""], "--name"),
        (["search", "-c", "S2", "--orbit", " "], "--orbit"),
        (["search", "-c", "S2", "--platform", "A,,B"], "--platform"),
        (["search", "-c", "S2", "--baseline", ""], "--baseline"),
        (["search", "-c", "S2", "--url", ""], "--url"),
        (["search", "-c", "S2", "--start", ""], "--start"),
        (["search", "-c", "S2", "--area", ""], "--area"),
        (["search", "-c", "S2", "--filter", ""], "--filter"),
        (["search", "-c", "S2", "--order", ""], "--order"),
        (["search", *GOOD_SEARCH, "--proxy", ""], "--proxy"),
        (["search", *GOOD_SEARCH, "--output", ""], "--output"),
        (["download", *GOOD_SEARCH, "--out", ""], "--out"),
        (["download", *GOOD_SEARCH, "--temp-dir", ""], "--temp-dir"),
        (["download", *GOOD_SEARCH, "--totp", ""], "--totp"),
        (["download", ""], "NAME_OR_ID"),
        (["--config", "", "config"], "--config"),
        (["--log-file", "", "config"], "--log-file"),
        (["status", ""], "[OUT]"),
    ],
    ids=lambda value: " ".join(value) if isinstance(value, list) else value,
)
def test_an_empty_value_is_an_input_error_and_nothing_is_searched(
    cli_env: Path, cdse: Emulator, capsys: pytest.CaptureFixture[str], args: list[str], word: str
) -> None:
    """An unset shell variable (-c "$COLLECTION") must not widen the search to everything."""
    code, out, err = run(capsys, *args)
    assert_one_line_input_error(code, out, err, word)
    assert cdse.stats.requests() == 0


def test_a_log_file_in_a_missing_folder_is_an_input_error(
    cli_env: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = run(capsys, "--log-file", "no-such-folder/debug.log", "config")
    assert_one_line_input_error(code, out, err, "--log-file")
