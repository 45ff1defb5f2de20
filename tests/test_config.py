"""Configuration precedence: command line > environment > project file > user file."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from sentinel_fetch import download
from sentinel_fetch.config import PROJECT_FILE, load_config
from sentinel_fetch.errors import ConfigError
from sentinel_fetch.settings import CDSE_CATALOGUE_URL, Endpoints, Limits, Settings


def _env(tmp_path: Path, **extra: str) -> dict[str, str]:
    return {"SENTINEL_FETCH_CONFIG": str(tmp_path / "user.toml"), **extra}


def test_precedence_and_sources(tmp_path: Path) -> None:
    (tmp_path / "user.toml").write_text(
        'save_path = "/user/save"\nworkers = 2\nproxy = "http://u:pw@127.0.0.1:1"\n'
        '[account]\nusername = "me@example.com"\npassword = "from-user-file"\n'
    )
    (tmp_path / PROJECT_FILE).write_text('save_path = "/project/save"\nworkers = 3\n')
    config = load_config(
        command_line={"workers": 1, "proxy": None},
        environ=_env(tmp_path, SENTINEL_FETCH_SAVE_PATH="/env/save"),
        cwd=tmp_path,
    )
    settings = config.settings()
    assert settings.save_path == Path("/env/save")
    assert settings.limits.workers == 1
    assert settings.proxy == "http://u:pw@127.0.0.1:1"
    assert settings.endpoints.catalogue == CDSE_CATALOGUE_URL
    assert config.sources["save_path"] == "environment (SENTINEL_FETCH_SAVE_PATH)"
    assert config.sources["limits.workers"] == "command line"
    assert config.sources["proxy"] == str(tmp_path / "user.toml")
    shown = {name: (value, source) for name, value, source in config.describe()}
    assert shown["account.password"][0] == "***"
    assert shown["proxy"][0] == "http://u:***@127.0.0.1:1"
    assert "from-user-file" not in repr(config.describe())


def test_project_file_beats_user_file(tmp_path: Path) -> None:
    (tmp_path / "user.toml").write_text('save_path = "/user"\n[limits]\nmax_attempts = 3\n')
    (tmp_path / PROJECT_FILE).write_text('save_path = "/project"\n')
    settings = load_config(environ=_env(tmp_path), cwd=tmp_path).settings()
    assert settings.save_path == Path("/project")
    assert settings.limits.max_attempts == 3
    assert settings.temp_path == Path("/project/Temp")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("save_path = \n", "not valid TOML"),
        ("colour = 'blue'\n", "unknown setting 'colour'"),
        ("[limits]\nspeed = 3\n", r"unknown setting \[limits\] speed"),
        ("workers = 0\n", "workers must be a whole number from 1 to 32"),
        ("[limits]\ndirect_io = 'yes'\n", "direct_io must be true or false"),
        ("[endpoints]\ncatalogue = 'ftp://x'\n", "must be an http"),
    ],
)
def test_bad_config_is_a_one_line_error(tmp_path: Path, text: str, message: str) -> None:
    (tmp_path / PROJECT_FILE).write_text(text)
    with pytest.raises(ConfigError, match=message) as info:
        load_config(environ=_env(tmp_path), cwd=tmp_path).settings()
    assert "\n" not in str(info.value)


def test_explicit_config_file_must_exist(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="config file not found"):
        load_config(environ=_env(tmp_path), project_file=tmp_path / "missing.toml")


# --- every setting is checked once, where settings are built -----------------------------


@pytest.mark.parametrize(
    ("text", "setting", "words"),
    [
        ("workers = 1000\n", "workers", "from 1 to 32, got 1000"),
        ("[limits]\nworkers = 1000\n", "limits.workers", "from 1 to 32, got 1000"),
        ("workers = true\n", "workers", "got true"),
        ("[limits]\nchunk_size_bytes = 1000000000000\n", "limits.chunk_size_bytes", "to 67108864"),
        ("[limits]\npage_size = true\n", "limits.page_size", "whole number"),
        ("[limits]\nthrottle_cooldown_s = -1\n", "limits.throttle_cooldown_s", "got -1"),
        ("[limits]\nconnect_timeout_s = nan\n", "limits.connect_timeout_s", "got nan"),
        ("[limits]\nmax_attempts = 2.5\n", "limits.max_attempts", "got 2.5"),
        ("[limits]\ndirect_io = 1\n", "limits.direct_io", "true or false"),
        ("[limits]\nbackoff_base_s = '2'\n", "limits.backoff_base_s", "number"),
        ("[endpoints]\ncatalogue = 'ftp://x/odata/v1'\n", "endpoints.catalogue", "http"),
        (
            "[endpoints]\ncatalogue = 'https://127.0.0.1:99999/odata/v1'\n",
            "endpoints.catalogue",
            "99999",
        ),
        ("[endpoints]\ndownload = 'https://[::1/odata/v1'\n", "endpoints.download", "IPv6"),
        ("[endpoints]\nidentity = 5\n", "endpoints.identity", "got 5"),
        ("[account]\nusername = 5\n", "account.username", "got 5"),
        ("[account]\ntotp_secret = ''\n", "account.totp_secret", "empty"),
        ("save_path = 5\n", "save_path", "got 5"),
        ("save_path = ''\n", "save_path", "empty"),
        ("temp_dir = [1, 2]\n", "temp_dir", "got [1, 2]"),
        ("proxy = 5\n", "proxy", "got 5"),
        ("proxy = 'http://127.0.0.1:99999'\n", "proxy", "99999"),
        ("proxy = 'http://user:pw-in-file@[::1'\n", "proxy", "IPv6"),
        ("limits = 5\n", "limits", "table"),
    ],
)
def test_a_bad_setting_is_one_line_naming_it_and_its_file(
    tmp_path: Path, text: str, setting: str, words: str
) -> None:
    (tmp_path / PROJECT_FILE).write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError) as info:
        load_config(environ=_env(tmp_path), cwd=tmp_path).settings()
    message = str(info.value)
    assert "\n" not in message
    assert setting in message and words in message, message
    assert str(tmp_path / PROJECT_FILE) in message, "the message says where the value came from"
    assert "pw-in-file" not in message


@pytest.mark.parametrize(
    ("variable", "value", "words"),
    [
        ("SENTINEL_FETCH_WORKERS", "1000", "from 1 to 32, got 1000"),
        ("SENTINEL_FETCH_WORKERS", "four", "whole number"),
        ("SENTINEL_FETCH_PROXY", "http://127.0.0.1:99999", "99999"),
        ("SENTINEL_FETCH_CATALOGUE_URL", "ftp://mirror.example/odata/v1", "http"),
        ("SENTINEL_FETCH_DOWNLOAD_URL", "https://[::1/odata/v1", "IPv6"),
    ],
)
def test_a_bad_environment_variable_is_one_line_naming_it(
    tmp_path: Path, variable: str, value: str, words: str
) -> None:
    with pytest.raises(ConfigError) as info:
        load_config(environ=_env(tmp_path, **{variable: value}), cwd=tmp_path).settings()
    message = str(info.value)
    assert "\n" not in message and variable in message and words in message, message


def test_environment_values_are_typed_like_file_values(tmp_path: Path) -> None:
    config = load_config(environ=_env(tmp_path, SENTINEL_FETCH_WORKERS="8"), cwd=tmp_path)
    assert config.settings().limits.workers == 8


@pytest.mark.parametrize(
    "build",
    [
        pytest.param(lambda: Limits(workers=1000), id="Limits(workers=1000)"),
        pytest.param(lambda: Limits(workers=0), id="Limits(workers=0)"),
        pytest.param(lambda: Limits(workers="4"), id='Limits(workers="4")'),
        pytest.param(lambda: Limits(page_size=True), id="Limits(page_size=True)"),
        pytest.param(lambda: Limits(chunk_size_bytes=10**12), id="Limits(chunk_size_bytes=10**12)"),
        pytest.param(lambda: Limits(throttle_cooldown_s=-1), id="Limits(throttle_cooldown_s=-1)"),
        pytest.param(
            lambda: Limits(connect_timeout_s=float("nan")),
            id='Limits(connect_timeout_s=float("nan"))',
        ),
        pytest.param(
            lambda: Limits(backoff_base_s=10, backoff_max_s=5),
            id="Limits(backoff_base_s=10, backoff_max_s=5)",
        ),
        pytest.param(lambda: Settings(save_path=5), id="Settings(save_path=5)"),
        pytest.param(lambda: Settings(save_path=""), id='Settings(save_path="")'),
        pytest.param(lambda: Settings(temp_dir=[1, 2]), id="Settings(temp_dir=[1, 2])"),
        pytest.param(lambda: Settings(proxy=5), id="Settings(proxy=5)"),
        pytest.param(
            lambda: Settings(proxy="ftp://127.0.0.1:21"), id='Settings(proxy="ftp://127.0.0.1:21")'
        ),
        pytest.param(
            lambda: Settings(proxy="http://127.0.0.1:99999"),
            id='Settings(proxy="http://127.0.0.1:99999")',
        ),
        pytest.param(lambda: Settings(limits={"workers": 2}), id='Settings(limits={"workers": 2})'),
        pytest.param(
            lambda: Endpoints(catalogue="https://127.0.0.1:99999/odata/v1"),
            id='Endpoints(catalogue="https://127.0.0.1:99999/odata/v1")',
        ),
        pytest.param(
            lambda: Endpoints(download="https://[::1/odata/v1"),
            id='Endpoints(download="https://[::1/odata/v1")',
        ),
        pytest.param(lambda: Endpoints(identity=5), id="Endpoints(identity=5)"),
        pytest.param(lambda: download([], workers=1000), id="download([], workers=1000)"),
        pytest.param(lambda: download([], save_path=""), id='download([], save_path="")'),
    ],
)
def test_the_python_api_checks_settings_as_they_are_built(build: Callable[[], object]) -> None:
    with pytest.raises(ConfigError) as info:
        build()
    assert "\n" not in str(info.value)


def test_paths_given_as_text_become_paths() -> None:
    settings = Settings(save_path="data", temp_dir="scratch")  # type: ignore[arg-type]
    assert settings.save_path == Path("data") and settings.temp_path == Path("scratch")


# --- config files as editors save them --------------------------------------------------


@pytest.mark.parametrize("encoding", ["utf-8", "utf-8-sig", "utf-16"])
def test_config_files_in_utf8_with_or_without_bom_and_utf16_are_read(
    tmp_path: Path, encoding: str
) -> None:
    (tmp_path / PROJECT_FILE).write_text(
        'workers = 2\nsave_path = "D:/données"\n', encoding=encoding
    )
    settings = load_config(environ=_env(tmp_path), cwd=tmp_path).settings()
    assert settings.limits.workers == 2 and settings.save_path == Path("D:/données")


def test_a_config_file_in_another_encoding_is_one_line(tmp_path: Path) -> None:
    (tmp_path / PROJECT_FILE).write_bytes('save_path = "D:/donn\xe9es"\n'.encode("latin-1"))
    with pytest.raises(ConfigError, match="not UTF-8 or UTF-16") as info:
        load_config(environ=_env(tmp_path), cwd=tmp_path)
    assert "\n" not in str(info.value)


# --- one spelling per setting, one table of environment variables ------------------------


def test_a_closer_layer_wins_whichever_spelling_of_workers_each_uses(tmp_path: Path) -> None:
    """A user file's top-level ``workers`` is an alias of ``[limits] workers``, not a rival."""
    (tmp_path / "user.toml").write_text("workers = 2\n")
    (tmp_path / PROJECT_FILE).write_text("[limits]\nworkers = 8\n")
    config = load_config(environ=_env(tmp_path), cwd=tmp_path)
    assert config.settings().limits.workers == 8
    assert config.sources["limits.workers"] == str(tmp_path / PROJECT_FILE)

    (tmp_path / "user.toml").write_text("[limits]\nworkers = 2\n")
    (tmp_path / PROJECT_FILE).write_text("workers = 8\n")
    assert load_config(environ=_env(tmp_path), cwd=tmp_path).settings().limits.workers == 8


def test_both_spellings_of_workers_in_one_file_is_a_one_line_error(tmp_path: Path) -> None:
    (tmp_path / PROJECT_FILE).write_text("workers = 2\n[limits]\nworkers = 8\n")
    with pytest.raises(ConfigError, match="same setting"):
        load_config(environ=_env(tmp_path), cwd=tmp_path)


def test_the_python_api_reads_the_environment_variables_the_cli_reads(tmp_path: Path) -> None:
    environ = {
        "SENTINEL_FETCH_PROXY": "socks5h://127.0.0.1:7890",
        "SENTINEL_FETCH_WORKERS": "2",
        "SENTINEL_FETCH_SAVE_PATH": str(tmp_path / "data"),
        "SENTINEL_FETCH_FINISH_DIR": str(tmp_path / "done"),
    }
    from_api = Settings.from_env(environ)
    from_cli = load_config(environ=_env(tmp_path, **environ), cwd=tmp_path).settings()
    assert from_api == from_cli
    assert from_api.proxy == "socks5h://127.0.0.1:7890"
    assert from_api.limits.workers == 2
    assert from_api.save_path == tmp_path / "data"
    assert from_api.finish_path == tmp_path / "done"


def test_a_bad_environment_variable_is_named_by_the_python_api() -> None:
    with pytest.raises(ConfigError, match="SENTINEL_FETCH_WORKERS") as info:
        Settings.from_env({"SENTINEL_FETCH_WORKERS": "four"})
    assert "limits.workers must be a whole number" in str(info.value)
