"""``sentinel-fetch login``: one check of the account, and saving it in the keyring."""

from __future__ import annotations

import os
from pathlib import Path

import keyring
import pytest

from sentinel_fetch.credentials import KEYRING_SERVICE
from sentinel_fetch.emulator import DEMO_USERNAME, Emulator
from tests.cli.helpers import FEW_PRODUCTS, run
from tests.test_credentials import MemoryKeyring


def test_login_checks_once_and_save_lets_later_runs_go_without_a_password(
    cli_env: Path,
    cdse: Emulator,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    previous = keyring.get_keyring()
    backend = MemoryKeyring()
    keyring.set_keyring(backend)
    try:
        code, out, err = run(capsys, "login", "--save")
        assert code == 0, err
        assert f"ok: CDSE accepted {DEMO_USERNAME}" in out and "saved in the system keyring" in out
        assert cdse.stats.logins == {DEMO_USERNAME: 1}
        password = os.environ["CDSE_PASSWORD"]
        assert backend.passwords[(KEYRING_SERVICE, DEMO_USERNAME)] == password

        monkeypatch.delenv("CDSE_PASSWORD")
        monkeypatch.delenv("CDSE_USERNAME")
        code, _, err = run(capsys, "download", *FEW_PRODUCTS, "--out", "data")
        assert code == 0, err
        assert cdse.stats.logins == {DEMO_USERNAME: 2}
    finally:
        keyring.set_keyring(previous)


def test_login_with_a_wrong_password_is_one_line_exit_2(
    cli_env: Path,
    cdse: Emulator,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("CDSE_PASSWORD", "not-the-password")
    code, out, err = run(capsys, "login")
    assert code == 2 and out == ""
    assert len(err.splitlines()) == 1 and "rejected the username or password" in err
    assert "not-the-password" not in err
