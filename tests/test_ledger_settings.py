"""The ledger and quota settings: config file, environment, checks, masked passwords."""

from __future__ import annotations

from pathlib import Path

import pytest

from sentinel_fetch.config import PROJECT_FILE, load_config
from sentinel_fetch.errors import ConfigError
from sentinel_fetch.redact import forget_secrets, redact
from sentinel_fetch.settings import DEFAULT_QUOTA_BYTES, Settings, parse_size


def _env(tmp_path: Path, **extra: str) -> dict[str, str]:
    return {"SENTINEL_FETCH_CONFIG": str(tmp_path / "user.toml"), **extra}


def test_the_ledger_url_comes_from_the_file_and_its_password_is_a_secret(tmp_path: Path) -> None:
    forget_secrets()
    url = "postgresql://worker:db-pass-w0rd@db.example:5432/sentinel"
    (tmp_path / PROJECT_FILE).write_text(f'ledger = "{url}"\n[account]\nquota = "2 TB"\n')
    config = load_config(environ=_env(tmp_path), cwd=tmp_path)
    settings = config.settings()
    assert settings.ledger == url
    assert settings.quota_bytes == 2 * 10**12
    shown = {name: value for name, value, _ in config.describe()}
    assert shown["ledger"] == "postgresql://worker:***@db.example:5432/sentinel"
    assert redact(f"connection to {url} failed") == (
        "connection to postgresql://worker:***@db.example:5432/sentinel failed"
    )
    forget_secrets()


def test_the_environment_and_the_command_line_name_the_ledger(tmp_path: Path) -> None:
    environ = _env(tmp_path, SENTINEL_FETCH_LEDGER="postgres://db/job")
    assert load_config(environ=environ, cwd=tmp_path).settings().ledger == "postgres://db/job"
    assert Settings.from_env({"SENTINEL_FETCH_LEDGER": "postgres://db/job"}).ledger == (
        "postgres://db/job"
    )
    config = load_config(command_line={"ledger": "~/job"}, environ=environ, cwd=tmp_path)
    assert config.settings().ledger == str(Path.home() / "job")
    assert Settings().ledger is None
    assert Settings().quota_bytes == DEFAULT_QUOTA_BYTES == 12 * 10**12


@pytest.mark.parametrize(
    ("line", "words"),
    [
        ('ledger = "ftp://me:ftp-pass-w0rd@host/x"', "ledger must be a folder or a postgresql"),
        ("ledger = 5", "ledger must be a folder or a postgresql"),
        ('[account]\nquota = "lots"', "account.quota must be a positive size"),
        ("[account]\nquota = 0", "account.quota must be a positive size"),
        ("[account]\nquota = true", "account.quota must be a positive size"),
    ],
)
def test_bad_ledger_and_quota_values_are_one_line_naming_the_file(
    tmp_path: Path, line: str, words: str
) -> None:
    (tmp_path / PROJECT_FILE).write_text(line + "\n")
    with pytest.raises(ConfigError) as caught:
        load_config(environ=_env(tmp_path), cwd=tmp_path).settings()
    text = str(caught.value)
    assert words in text and str(tmp_path / PROJECT_FILE) in text
    assert "ftp-pass-w0rd" not in text and "\n" not in text


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (1, 1),
        ("12TB", 12 * 10**12),
        ("12 tb", 12 * 10**12),
        ("500 GiB", 500 * 2**30),
        ("1.5k", 1500),
        ("3.5kB", 3500),
        (" 7 ", 7),
    ],
)
def test_sizes_read_decimal_and_binary_units(value: object, expected: int) -> None:
    assert parse_size("quota", value) == expected


@pytest.mark.parametrize("value", ["", "TB", "-1", "1 XB", "1e3", 1.5, None, -4])
def test_sizes_that_are_not_sizes_are_refused(value: object) -> None:
    with pytest.raises(ConfigError, match="quota must be a positive size"):
        parse_size("quota", value)
