"""``sentinel-fetch config`` and settings errors wherever a setting is given."""

from __future__ import annotations

from pathlib import Path

import pytest

from sentinel_fetch.emulator import Emulator
from tests.cli.helpers import (
    BAD_IPV6,
    BAD_PORT,
    FEW_PRODUCTS,
    GOOD_SEARCH,
    assert_one_line_input_error,
    run,
)


@pytest.mark.parametrize(
    ("args", "environment", "word"),
    [
        (["search", "--url", BAD_PORT], {}, "99999"),
        (["search", "--url", BAD_IPV6], {}, "IPv6"),
        (["search", "--url-file", "port.txt"], {}, "99999"),
        (["search", "--url-file", "ipv6.txt"], {}, "IPv6"),
        (
            ["search", *GOOD_SEARCH],
            {"SENTINEL_FETCH_CATALOGUE_URL": "https://127.0.0.1:99999/odata/v1"},
            "SENTINEL_FETCH_CATALOGUE_URL",
        ),
        (
            ["search", *GOOD_SEARCH],
            {"SENTINEL_FETCH_IDENTITY_URL": "https://[::1/auth/realms/CDSE"},
            "SENTINEL_FETCH_IDENTITY_URL",
        ),
        (["search", *GOOD_SEARCH, "--proxy", "http://127.0.0.1:99999"], {}, "99999"),
        (["search", *GOOD_SEARCH, "--proxy", "http://user:secret-pw@[::1"], {}, "IPv6"),
    ],
    ids=[
        "url port",
        "url ipv6",
        "url file port",
        "url file ipv6",
        "endpoint port",
        "endpoint ipv6",
        "proxy port",
        "proxy ipv6",
    ],
)
def test_a_malformed_address_is_one_line_never_a_traceback(
    cli_env: Path,
    cdse: Emulator,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    args: list[str],
    environment: dict[str, str],
    word: str,
) -> None:
    (cli_env / "port.txt").write_text(BAD_PORT + "\n")
    (cli_env / "ipv6.txt").write_text(BAD_IPV6 + "\n", encoding="utf-16")
    for name, value in environment.items():
        monkeypatch.setenv(name, value)
    code, out, err = run(capsys, *args)
    assert_one_line_input_error(code, out, err, word)
    assert "secret-pw" not in err
    assert cdse.stats.requests() == 0


@pytest.mark.parametrize(
    ("config_file", "environment", "word"),
    [
        ("", {"SENTINEL_FETCH_WORKERS": "1000"}, "SENTINEL_FETCH_WORKERS"),
        ("workers = 1000\n", {}, "sentinel-fetch.toml"),
        ("[limits]\nworkers = 64\n", {}, "limits.workers"),
        ("[limits]\npage_size = true\n", {}, "limits.page_size"),
        ("[limits]\nchunk_size_bytes = 1000000000000\n", {}, "limits.chunk_size_bytes"),
        ("[limits]\nthrottle_cooldown_s = -5\n", {}, "limits.throttle_cooldown_s"),
        # The emulator's variables would win over the file: these cases unset them ("").
        (
            "[endpoints]\ncatalogue = 'ftp://mirror.example/odata/v1'\n",
            {"SENTINEL_FETCH_CATALOGUE_URL": ""},
            "endpoints.catalogue",
        ),
        ("[account]\nusername = 5\n", {"CDSE_USERNAME": ""}, "account.username"),
        ("save_path = 5\n", {}, "save_path"),
        ("temp_dir = [1, 2]\n", {}, "temp_dir"),
        ("proxy = 5\n", {}, "proxy"),
    ],
)
@pytest.mark.parametrize("command", ["config", "download"])
def test_a_setting_out_of_range_is_one_line_wherever_it_is_set(
    cli_env: Path,
    cdse: Emulator,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    config_file: str,
    environment: dict[str, str],
    word: str,
    command: str,
) -> None:
    if config_file:
        (cli_env / "sentinel-fetch.toml").write_text(config_file)
    for name, value in environment.items():
        if value:
            monkeypatch.setenv(name, value)
        else:
            monkeypatch.delenv(name)
    # No --out: the file's save_path must be the one in force.
    args = ["config"] if command == "config" else ["download", *FEW_PRODUCTS]
    code, out, err = run(capsys, *args)
    assert_one_line_input_error(code, out, err, word)
    assert cdse.stats.requests() == 0


@pytest.mark.parametrize("encoding", ["utf-8-sig", "utf-16"])
def test_config_reads_a_file_saved_by_windows_notepad(
    cli_env: Path, capsys: pytest.CaptureFixture[str], encoding: str
) -> None:
    (cli_env / "sentinel-fetch.toml").write_text("workers = 2\n", encoding=encoding)
    code, out, err = run(capsys, "config")
    assert code == 0, err
    assert "(effective) workers: 2" in out
