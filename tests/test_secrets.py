"""Secrets a server quotes back are masked in every place text goes.

The emulator's ``echo`` switch makes the identity server quote the password and the
download host quote the ``Authorization`` header in their error bodies, as careless
servers do. Each test then reads every sink a user or a program sees: the final error
line, stderr, the debug log, the job ledger, the failure report (CSV and JSON) and the
Python API's exceptions and results. Each also checks that the echo did happen (the
mask is there), so it cannot pass because nothing was quoted.
"""

from __future__ import annotations

import json
import logging
import os
import sqlite3
import traceback
from pathlib import Path

import pytest

import sentinel_fetch as sf
from sentinel_fetch.auth import Credentials, TokenManager
from sentinel_fetch.emulator import DEMO_PASSWORD, DEMO_USERNAME, Emulator, StatusFault
from sentinel_fetch.errors import AuthError
from sentinel_fetch.http import Transport
from sentinel_fetch.ledger import LEDGER_FILE_NAME
from sentinel_fetch.settings import Settings
from tests.cli.conftest import cli_env as cli_env  # the fixture, shared with the CLI tests
from tests.cli.helpers import FEW_PRODUCTS, run

# Every CDSE (and emulator) access and refresh token is a JWT: base64url JSON, "eyJ...".
TOKEN_MARK = "eyJ"


def _ledger_text(save_path: Path) -> str:
    """Everything the ledger holds, as SQL text (products, reasons, events)."""
    with sqlite3.connect(save_path / LEDGER_FILE_NAME) as connection:
        return "\n".join(connection.iterdump())


def _report_texts(save_path: Path) -> list[str]:
    return [
        (save_path / name).read_text(encoding="utf-8")
        for name in ("sentinel-fetch-report.csv", "sentinel-fetch-report.json")
    ]


def _api_settings(cdse: Emulator, save_path: Path) -> Settings:
    return Settings.from_env(cdse.env(), save_path=save_path)


def _few_products(cdse: Emulator) -> list[sf.Product]:
    query = sf.build_query(
        collections="S2", tiles="32TPS", start="2023-07-01", end="2023-07-12", online=True
    )
    return list(sf.search(query, settings=Settings.from_env(cdse.env())))


def test_a_password_the_identity_server_echoes_is_masked_everywhere(
    cli_env: Path, cdse: Emulator, capsys: pytest.CaptureFixture[str]
) -> None:
    cdse.faults.add(
        StatusFault(
            host="identity",
            status=400,
            code="invalid_request",
            message="Invalid parameter",
            echo="password",
            times=-1,
        )
    )
    password = os.environ["CDSE_PASSWORD"]

    code, out, err = run(
        capsys, "-vv", "--log-file", "debug.log", "download", *FEW_PRODUCTS, "--out", "data"
    )

    final = [line for line in err.splitlines() if line.startswith("sentinel-fetch: error:")]
    assert code == 1 and len(final) == 1, err
    assert "password=***" in final[0], "the identity server's answer is quoted, masked"
    sinks = {
        "stdout": out,
        "stderr": err,
        "log": (cli_env / "debug.log").read_text(encoding="utf-8"),
        "ledger": _ledger_text(cli_env / "data"),
    }
    assert "password=***" in sinks["ledger"], "the ledger keeps the reason, masked"
    for sink, text in sinks.items():
        assert password not in text, sink

    products = _few_products(cdse)
    with pytest.raises(AuthError) as raised:
        sf.download(
            products,
            settings=_api_settings(cdse, cli_env / "api"),
            credentials=Credentials(DEMO_USERNAME, DEMO_PASSWORD, source="test"),
        )
    shown = "".join(traceback.format_exception(raised.value))
    assert "password=***" in str(raised.value)
    for text in (str(raised.value), repr(raised.value), shown, *map(str, raised.value.args)):
        assert DEMO_PASSWORD not in text


def test_an_authorization_header_the_download_host_quotes_is_masked_everywhere(
    cli_env: Path, cdse: Emulator, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = run(capsys, "search", *FEW_PRODUCTS, "--output", "chosen.json")
    assert code == 0, err
    first = json.loads((cli_env / "chosen.json").read_text())["products"][0]
    cdse.faults.add(
        StatusFault(
            product=first["id"],
            status=403,
            code="DAT-ZIP-608",
            message="Access forbidden",
            echo="authorization",
            times=-1,
        )
    )

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

    assert code == 1, err
    csv_report, json_report = _report_texts(cli_env / "data")
    (entry,) = json.loads(json_report)
    assert entry["name"] == first["name"]
    assert "Bearer ***" in entry["reason"], "the download host's answer is quoted, masked"
    sinks = {
        "stdout": out,
        "stderr": err,
        "log": (cli_env / "debug.log").read_text(encoding="utf-8"),
        "ledger": _ledger_text(cli_env / "data"),
        "report.csv": csv_report,
        "report.json": json_report,
    }
    assert "Bearer ***" in sinks["ledger"] and "Bearer ***" in sinks["stderr"]
    for sink, text in sinks.items():
        assert TOKEN_MARK not in text, sink

    report = sf.download(
        _few_products(cdse),
        settings=_api_settings(cdse, cli_env / "api"),
        credentials=Credentials(DEMO_USERNAME, DEMO_PASSWORD, source="test"),
    )
    (failed,) = report.failed
    assert failed.error is not None and "Bearer ***" in failed.error
    assert TOKEN_MARK not in failed.error


def test_a_refused_token_quoted_in_the_error_that_stops_a_batch_is_masked(
    cli_env: Path, cdse: Emulator, capsys: pytest.CaptureFixture[str]
) -> None:
    cdse.faults.add(
        StatusFault(
            status=401,
            code="DAT-ZIP-609",
            message="Token rejected",
            echo="authorization",
            times=-1,
        )
    )

    code, out, err = run(
        capsys, "--log-file", "debug.log", "download", *FEW_PRODUCTS, "--out", "data"
    )

    final = [line for line in err.splitlines() if line.startswith("sentinel-fetch: error:")]
    assert code == 1 and len(final) == 1, err
    assert "Bearer ***" in final[0]
    ledger = _ledger_text(cli_env / "data")
    assert "Bearer ***" in ledger, "stopped products keep the reason, masked"
    for sink, text in {
        "stdout": out,
        "stderr": err,
        "log": (cli_env / "debug.log").read_text(encoding="utf-8"),
        "ledger": ledger,
    }.items():
        assert TOKEN_MARK not in text, sink

    with pytest.raises(AuthError) as raised:
        sf.download(
            _few_products(cdse),
            settings=_api_settings(cdse, cli_env / "api"),
            credentials=Credentials(DEMO_USERNAME, DEMO_PASSWORD, source="test"),
        )
    shown = "".join(traceback.format_exception(raised.value))
    assert "Bearer ***" in str(raised.value)
    for text in (str(raised.value), repr(raised.value), shown):
        assert TOKEN_MARK not in text


@pytest.mark.parametrize(
    "password",
    [
        "first-Line1\nsecond-Line2",
        "with  Two-Spaces1\tand-a-Tab2",
        "long-Word1  " * 40 + "long-End2",
    ],
    ids=["newline", "spaces", "longer-than-the-cut"],
)
def test_a_password_with_whitespace_is_masked_whole_when_echoed(
    cdse: Emulator, settings: Settings, password: str, caplog: pytest.LogCaptureFixture
) -> None:
    """Masked before whitespace is folded and the message cut, not after."""
    caplog.set_level(logging.DEBUG)
    cdse.faults.add(
        StatusFault(host="identity", status=400, code="invalid_request", echo="password")
    )
    tokens = TokenManager(Transport(settings), settings.endpoints, Credentials("u", password))
    with pytest.raises(AuthError) as raised:
        tokens.access_token()
    message = str(raised.value)
    assert "password=***" in message and "\n" not in message
    for piece in {word for word in password.split() if len(word) >= 6}:
        assert piece not in message and piece not in caplog.text, piece
