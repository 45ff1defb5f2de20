"""Where the CDSE account comes from, in order of precedence.

1. ``CDSE_PASSWORD`` with ``CDSE_USERNAME``, or with the config file's ``username``
   (and ``CDSE_TOTP`` / ``CDSE_TOTP_SECRET``);
2. ``~/.netrc`` (or ``NETRC``), machine = the identity host;
3. the system keyring (optional ``keyring`` extra), service ``sentinel-fetch``, for
   the username of ``CDSE_USERNAME`` or the config file, else the one saved last;
4. the config file (``username``, ``password``: allowed, discouraged);
5. an interactive prompt, when the caller provides one (the CLI on a terminal).

A username and a password from two of these places make one account: the username
says whose password to look for.

A password is never accepted on the command line: it would land in shell history and
in the process list.
"""

from __future__ import annotations

import contextlib
import logging
import netrc
import os
from collections.abc import Callable, Mapping
from pathlib import Path

from sentinel_fetch.auth import Credentials
from sentinel_fetch.errors import ConfigError, CredentialsMissingError
from sentinel_fetch.settings import Endpoints

__all__ = [
    "KEYRING_SERVICE",
    "PromptFn",
    "delete_from_keyring",
    "find_credentials",
    "store_in_keyring",
]

log = logging.getLogger("sentinel_fetch.credentials")

KEYRING_SERVICE = "sentinel-fetch"

#: ``prompt(username_or_None) -> (username, password)``, supplied by an interactive caller.
PromptFn = Callable[[str | None], tuple[str, str]]


def _from_netrc(host: str, environ: Mapping[str, str]) -> tuple[str, str] | None:
    path = environ.get("NETRC") or str(Path.home() / ".netrc")
    if not os.path.isfile(path):
        return None
    try:
        entries = netrc.netrc(path)
    except (netrc.NetrcParseError, OSError) as exc:
        raise ConfigError(
            f"cannot read {path}: {exc.msg if hasattr(exc, 'msg') else exc}"
        ) from None
    for machine in (host, "dataspace.copernicus.eu"):
        found = entries.authenticators(machine)
        if found and found[0] and found[2]:
            return found[0], found[2]
    return None


def _keyring_module() -> object | None:
    try:
        import keyring
    except ImportError:
        return None
    return keyring


def _from_keyring(username: str | None) -> tuple[str, str] | None:
    keyring = _keyring_module()
    if keyring is None:
        return None
    try:
        name = username or keyring.get_password(KEYRING_SERVICE, "__default_user__")  # type: ignore[attr-defined]
        if not name:
            return None
        password = keyring.get_password(KEYRING_SERVICE, name)  # type: ignore[attr-defined]
    except Exception as exc:
        log.debug("keyring unavailable: %s", type(exc).__name__)
        return None
    return (name, password) if password else None


def store_in_keyring(username: str, password: str) -> None:
    """Save the account in the system keyring (``sentinel-fetch login --save``)."""
    keyring = _keyring_module()
    if keyring is None:
        raise ConfigError(
            "the keyring package is not installed: pip install 'sentinel-fetch[keyring]'"
        )
    try:
        keyring.set_password(KEYRING_SERVICE, username, password)  # type: ignore[attr-defined]
        keyring.set_password(KEYRING_SERVICE, "__default_user__", username)  # type: ignore[attr-defined]
    except Exception as exc:
        raise ConfigError(
            f"could not save to the system keyring ({type(exc).__name__}): no usable keyring "
            "backend here; use ~/.netrc or CDSE_USERNAME/CDSE_PASSWORD instead"
        ) from None


def delete_from_keyring(username: str) -> None:
    """Remove a saved account from the system keyring."""
    keyring = _keyring_module()
    if keyring is None:
        return
    # Nothing saved is the same as deleted, whatever the backend says.
    with contextlib.suppress(Exception):
        keyring.delete_password(KEYRING_SERVICE, username)  # type: ignore[attr-defined]


def find_credentials(
    endpoints: Endpoints,
    *,
    environ: Mapping[str, str] | None = None,
    config_username: str | None = None,
    config_password: str | None = None,
    totp: str | None = None,
    totp_secret: str | None = None,
    prompt: PromptFn | None = None,
) -> Credentials:
    """The first complete account found in the sources, in precedence order.

    Args:
        endpoints: the identity host names the ``.netrc`` machine.
        environ: environment (defaults to ``os.environ``).
        config_username: ``username`` from the config file (also picks the keyring entry).
        config_password: ``password`` from the config file.
        totp: a one-time 2FA code given for this run.
        totp_secret: base32 2FA secret from the config file.
        prompt: asks the user interactively when nothing else was found.

    Raises:
        CredentialsMissingError: nothing found and no prompt available.
    """
    env = os.environ if environ is None else environ
    totp = totp or env.get("CDSE_TOTP") or None
    totp_secret = env.get("CDSE_TOTP_SECRET") or totp_secret or None

    def make(username: str, password: str, source: str) -> Credentials:
        return Credentials(username, password, totp=totp, totp_secret=totp_secret, source=source)

    from_env = env.get("CDSE_USERNAME")
    username = from_env or config_username or None
    password = env.get("CDSE_PASSWORD")
    if username and password:
        source = "CDSE_USERNAME/CDSE_PASSWORD" if from_env else "config file/CDSE_PASSWORD"
        return make(username, password, source)

    host = (endpoints.token_url.split("/")[2]).split(":")[0]
    found = _from_netrc(host, env)
    if found:
        return make(found[0], found[1], "~/.netrc")

    found = _from_keyring(username)
    if found:
        return make(found[0], found[1], "system keyring")

    if username and config_password:
        return make(username, config_password, "config file")

    if prompt is not None:
        name, secret = prompt(username)
        if name and secret:
            return make(name, secret, "prompt")
    raise CredentialsMissingError(
        "no CDSE account found: set CDSE_USERNAME and CDSE_PASSWORD, add a ~/.netrc entry "
        f"for {host}, or run 'sentinel-fetch login --save'"
    )
