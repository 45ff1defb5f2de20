"""Configuration precedence: command line > environment > project file > user file."""

from __future__ import annotations

from pathlib import Path

import pytest

from sentinel_fetch.config import PROJECT_FILE, load_config
from sentinel_fetch.errors import ConfigError
from sentinel_fetch.settings import CDSE_CATALOGUE_URL


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
    assert config.sources["workers"] == "command line"
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
        ("workers = 0\n", "workers must be at least 1"),
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
