"""Configuration files and precedence: command line > environment > project file > user file.

Files are TOML. The user file lives in the platform's config folder
(``~/.config/sentinel-fetch/config.toml`` on Linux; ``sentinel-fetch config`` shows where it is
on Windows and macOS); the
project file is ``sentinel-fetch.toml`` in the working directory. Example::

    save_path = "D:/sentinel"
    proxy = "socks5h://127.0.0.1:7890"
    ledger = "postgresql://worker@db.example/sentinel"   # a job shared by many machines

    [limits]
    workers = 4                      # a top-level ``workers = 4`` means the same

    [account]
    username = "me@example.com"      # the password belongs in the keyring or ~/.netrc
    quota = "12TB"                   # per rolling 30 days: what status's quota meter reads

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
from sentinel_fetch.redact import MASK, redact_url, register_secret, url_passwords
from sentinel_fetch.settings import ENVIRONMENT, Limits, Settings, settings_from_values
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

_LIMIT_NAMES = {f.name for f in fields(Limits)}
#: Largest config file read; a real one is a few hundred bytes.
MAX_CONFIG_FILE_BYTES = 1_000_000
# Setting name -> the command-line option that sets it (for messages).
_OPTIONS = {
    "save_path": "--out",
    "temp_dir": "--temp-dir",
    "finish_dir": "--finish-dir",
    "limits.workers": "--workers",
    "proxy": "--proxy",
    "ca_bundle": "--ca-bundle",
    "ledger": "--ledger",
    "download.bands": "--bands",
    "download.files": "--files",
    "download.preset": "--preset",
    "download.quota_stop": "--quota-stop",
}
_TOP_LEVEL = {"save_path", "temp_dir", "finish_dir", "proxy", "ca_bundle", "ledger"}
#: Older spellings kept working, merged into their one name before layers are merged:
#: a top-level ``workers`` in a user file must not beat ``[limits] workers`` in a
#: project file (a closer layer), as it would if both names were layered.
ALIASES = {"workers": "limits.workers"}
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
        "endpoints": {"identity", "catalogue", "download", "stac"},
        # quota: the account's data quota (status's quota meter), not a credential.
        # max_connections: the account's connection budget across a team job's workers.
        "account": _ACCOUNT | {"quota", "max_connections"},
        "limits": _LIMIT_NAMES,
        # What download fetches of each product (bands, path patterns, a preset), and
        # where it stops taking products on the account's quota meter ("95%", bytes).
        "download": {"bands", "files", "preset", "quota_stop"},
    }
    for key, value in document.items():
        if key in ALIASES:
            name = ALIASES[key]
            section, _, inner = name.partition(".")
            table = document.get(section)
            if isinstance(table, Mapping) and inner in table:
                raise ConfigError(
                    f"{where}: {key} and [{section}] {inner} are the same setting: keep one"
                )
            flat[name] = value
        elif key in _TOP_LEVEL:
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
        self._check_account()
        from_environment = {
            name for name, source in self.sources.items() if source.startswith("environment")
        }
        try:
            return settings_from_values(self.values, text=from_environment)
        except ConfigError as exc:
            if exc.setting is None:
                raise
            key = exc.setting
            problem = str(exc).removeprefix(f"{key} ")
            raise ConfigError(f"{key} {problem} ({self._where(key)})", setting=key) from None

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
            elif name in ("proxy", "ledger") and value:
                shown = redact_url(str(value))
            else:
                shown = str(value)
            rows.append((name, shown, self.sources.get(name, "default")))
        return rows


def _register_url_password(url: object) -> None:
    """The password of a ``postgresql://user:password@host`` ledger URL is a secret, in
    every spelling (as written and percent-decoded), even in a URL urlsplit refuses."""
    if not isinstance(url, str) or "://" not in url:
        return
    for password in url_passwords(url):
        register_secret(password)


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

    for name, variable in ENVIRONMENT.items():
        value = env.get(variable)
        if value:
            values[name] = value
            sources[name] = f"environment ({variable})"

    given = {ALIASES.get(k, k): v for k, v in (command_line or {}).items() if v is not None}
    apply(given, "command line")

    for name in _SECRET_KEYS:
        secret = values.get(name)
        if isinstance(secret, str):
            register_secret(secret)
    _register_url_password(values.get("ledger"))
    return EffectiveConfig(values, sources, files)
