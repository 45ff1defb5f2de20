"""Configuration files and precedence: command line > environment > project file > user file.

Files are TOML. The user file lives in the platform's config folder
(``~/.config/sentinel-fetch/config.toml`` on Linux; ``sentinel-fetch config`` shows where it is
on Windows and macOS); the
project file is ``sentinel-fetch.toml`` in the working directory. Example::

    save_path = "D:/sentinel"
    workers = 4
    proxy = "socks5h://127.0.0.1:7890"

    [account]
    username = "me@example.com"      # the password belongs in the keyring or ~/.netrc

    [endpoints]                      # only to use a mirror or the emulator
    catalogue = "https://catalogue.dataspace.copernicus.eu/odata/v1"

Every effective value remembers where it came from, so ``sentinel-fetch config`` can
show it (with secrets masked).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from sentinel_fetch.errors import ConfigError
from sentinel_fetch.redact import MASK, redact_url, register_secret
from sentinel_fetch.settings import (
    CDSE_CATALOGUE_URL,
    CDSE_DOWNLOAD_URL,
    CDSE_IDENTITY_URL,
    ENV_CA_BUNDLE,
    ENV_CATALOGUE_URL,
    ENV_DOWNLOAD_URL,
    ENV_IDENTITY_URL,
    Endpoints,
    Limits,
    Settings,
    parse_limit,
)
from sentinel_fetch.text import read_text_file

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on Python 3.10 only
    import tomli as tomllib

__all__ = [
    "MAX_CONFIG_FILE_BYTES",
    "PROJECT_FILE",
    "EffectiveConfig",
    "load_config",
    "user_config_path",
]

PROJECT_FILE = "sentinel-fetch.toml"

# Setting name -> environment variable.
_ENVIRONMENT = {
    "endpoints.identity": ENV_IDENTITY_URL,
    "endpoints.catalogue": ENV_CATALOGUE_URL,
    "endpoints.download": ENV_DOWNLOAD_URL,
    "ca_bundle": ENV_CA_BUNDLE,
    "save_path": "SENTINEL_FETCH_SAVE_PATH",
    "temp_dir": "SENTINEL_FETCH_TEMP_DIR",
    "finish_dir": "SENTINEL_FETCH_FINISH_DIR",
    "workers": "SENTINEL_FETCH_WORKERS",
    "proxy": "SENTINEL_FETCH_PROXY",
    "account.username": "CDSE_USERNAME",
}
_LIMIT_NAMES = {f.name for f in fields(Limits)}
#: Largest config file read; a real one is a few hundred bytes.
MAX_CONFIG_FILE_BYTES = 1_000_000
# Setting name -> the command-line option that sets it (for messages).
_OPTIONS = {
    "save_path": "--out",
    "temp_dir": "--temp-dir",
    "finish_dir": "--finish-dir",
    "workers": "--workers",
    "proxy": "--proxy",
    "ca_bundle": "--ca-bundle",
}
_UNSET = object()
_TOP_LEVEL = {"save_path", "temp_dir", "finish_dir", "workers", "proxy", "ca_bundle"}
_ACCOUNT = {"username", "password", "totp_secret"}
_SECRET_KEYS = {"account.password", "account.totp_secret"}


def user_config_path(environ: Mapping[str, str] | None = None) -> Path:
    """The user's config file (``SENTINEL_FETCH_CONFIG`` overrides it)."""
    env = os.environ if environ is None else environ
    override = env.get("SENTINEL_FETCH_CONFIG")
    if override:
        return Path(override)
    from platformdirs import user_config_dir

    return Path(user_config_dir("sentinel-fetch")) / "config.toml"


def _flatten(document: Mapping[str, Any], where: str) -> dict[str, Any]:
    """Validate a TOML document and flatten it to ``section.key`` names."""
    flat: dict[str, Any] = {}
    sections = {
        "endpoints": {"identity", "catalogue", "download"},
        "account": _ACCOUNT,
        "limits": _LIMIT_NAMES,
    }
    for key, value in document.items():
        if key in _TOP_LEVEL:
            flat[key] = value
        elif key in sections:
            if not isinstance(value, Mapping):
                raise ConfigError(f"{where}: {key} must be a table: write [{key}] on its own line")
            for inner, inner_value in value.items():
                if inner not in sections[key]:
                    raise ConfigError(f"{where}: unknown setting [{key}] {inner}")
                flat[f"{key}.{inner}"] = inner_value
        else:
            raise ConfigError(f"{where}: unknown setting {key!r}")
    return flat


def _read_file(path: Path) -> dict[str, Any]:
    if not path.exists():
        return {}
    text = read_text_file(
        path, what="config file", max_bytes=MAX_CONFIG_FILE_BYTES, error=ConfigError
    )
    try:
        document = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML ({exc})") from None
    return _flatten(document, str(path))


@dataclass(frozen=True)
class EffectiveConfig:
    """The merged configuration and where each value came from.

    Attributes:
        values: ``name -> value`` after precedence.
        sources: ``name -> "command line" | "environment (VAR)" | "<file path>"``.
        files: the config files that were read.
    """

    values: dict[str, Any]
    sources: dict[str, str]
    files: list[Path] = field(default_factory=list)

    def get(self, name: str, default: Any = None) -> Any:
        """A merged value."""
        return self.values.get(name, default)

    def settings(self) -> Settings:
        """Build validated :class:`Settings` from the merged values.

        The dataclasses check every value (see :mod:`sentinel_fetch.settings`); this
        adds where a refused value came from.

        Raises:
            ConfigError: one line naming the setting, the problem and its source (the
                file, the environment variable or the command line).
        """
        values = self.values
        self._check_account()
        limits_workers = "workers" if "workers" in values else "limits.workers"
        keys = {  # dataclass field -> the setting's name here
            **{name: f"limits.{name}" for name in _LIMIT_NAMES},
            "workers": limits_workers,
            **{name: f"endpoints.{name}" for name in ("identity", "catalogue", "download")},
        }
        try:
            endpoints = Endpoints(
                identity=values.get("endpoints.identity", CDSE_IDENTITY_URL),
                catalogue=values.get("endpoints.catalogue", CDSE_CATALOGUE_URL),
                download=values.get("endpoints.download", CDSE_DOWNLOAD_URL),
            )
            limit_values = {name: self._limit(keys[name]) for name in _LIMIT_NAMES}
            limits = Limits(**{k: v for k, v in limit_values.items() if v is not _UNSET})
            return Settings(
                endpoints=endpoints,
                limits=limits,
                proxy=values.get("proxy"),
                ca_bundle=values.get("ca_bundle"),
                save_path=_expanded(values.get("save_path", "sentinel-data")),
                temp_dir=_expanded(values.get("temp_dir")),
                finish_dir=_expanded(values.get("finish_dir")),
            )
        except ConfigError as exc:
            if exc.setting is None:
                raise
            key = keys.get(exc.setting, exc.setting)
            problem = str(exc).removeprefix(f"{exc.setting} ")
            raise ConfigError(f"{key} {problem} ({self._where(key)})", setting=key) from None

    def _limit(self, key: str) -> Any:
        """A limit's merged value, typed: an environment variable's text is read as one."""
        if key not in self.values:
            return _UNSET
        value = self.values[key]
        if isinstance(value, str) and self.sources.get(key, "").startswith("environment"):
            return parse_limit(key.rpartition(".")[2], value)
        return value

    def _check_account(self) -> None:
        for name in _ACCOUNT:
            key = f"account.{name}"
            value = self.values.get(key)
            if value is not None and (not isinstance(value, str) or not value.strip()):
                shown = "an empty text" if isinstance(value, str) else repr(value)
                problem = f"must be non-empty text, got {shown}"
                raise ConfigError(f"{key} {problem} ({self._where(key)})", setting=key)

    def _where(self, key: str) -> str:
        """Where a setting's value came from, for an error message."""
        source = self.sources.get(key, "default")
        if source.startswith("environment (") and source.endswith(")"):
            return f"from the environment variable {source[len('environment (') : -1]}"
        if source == "command line":
            return f"from the command line option {_OPTIONS.get(key, key)}"
        return f"from {source}"

    def describe(self) -> list[tuple[str, str, str]]:
        """``(name, shown value, source)`` rows, secrets masked (``sentinel-fetch config``)."""
        rows = []
        for name in sorted(self.values):
            value = self.values[name]
            if name in _SECRET_KEYS:
                shown = MASK
            elif name == "proxy" and value:
                shown = redact_url(str(value))
            else:
                shown = str(value)
            rows.append((name, shown, self.sources.get(name, "default")))
        return rows


def _expanded(value: Any) -> Any:
    """``~`` in a folder given as text means the home folder; anything else is checked later."""
    return Path(value).expanduser() if isinstance(value, str) and value.strip() else value


def load_config(
    *,
    command_line: Mapping[str, Any] | None = None,
    environ: Mapping[str, str] | None = None,
    cwd: Path | None = None,
    project_file: Path | None = None,
) -> EffectiveConfig:
    """Merge the four layers. Later layers win: user file, project file, environment, CLI.

    Args:
        command_line: values given as options (``None`` values are ignored).
        environ: the environment (defaults to ``os.environ``).
        cwd: where to look for ``sentinel-fetch.toml`` (defaults to the working directory).
        project_file: an explicit file used instead of ``sentinel-fetch.toml`` (``--config``).
    """
    env = os.environ if environ is None else environ
    values: dict[str, Any] = {}
    sources: dict[str, str] = {}
    files: list[Path] = []

    def apply(layer: Mapping[str, Any], source: str) -> None:
        for name, value in layer.items():
            if value is None:
                continue
            values[name] = value
            sources[name] = source

    user_file = user_config_path(env)
    layer = _read_file(user_file)
    if layer:
        files.append(user_file)
    apply(layer, str(user_file))

    project = project_file or (cwd or Path.cwd()) / PROJECT_FILE
    if project_file is not None and not project_file.is_file():
        raise ConfigError(f"config file not found: {project_file}")
    layer = _read_file(project)
    if layer:
        files.append(project)
    apply(layer, str(project))

    for name, variable in _ENVIRONMENT.items():
        value = env.get(variable)
        if value:
            values[name] = value
            sources[name] = f"environment ({variable})"

    apply({k: v for k, v in (command_line or {}).items() if v is not None}, "command line")

    for name in _SECRET_KEYS:
        secret = values.get(name)
        if isinstance(secret, str):
            register_secret(secret)
    return EffectiveConfig(values, sources, files)
