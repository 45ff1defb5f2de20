"""Where the CDSE account comes from: every source, and their order."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import keyring
import keyring.backend
import pytest

from sentinel_fetch.client import Client
from sentinel_fetch.config import load_config
from sentinel_fetch.credentials import (
    KEYRING_SERVICE,
    delete_from_keyring,
    find_credentials,
    store_in_keyring,
)
from sentinel_fetch.emulator import DEMO_PASSWORD, DEMO_USERNAME, Emulator
from sentinel_fetch.errors import ConfigError, CredentialsMissingError
from sentinel_fetch.settings import Endpoints, Settings

ENDPOINTS = Endpoints()
IDENTITY_HOST = "identity.dataspace.copernicus.eu"


class MemoryKeyring(keyring.backend.KeyringBackend):
    """A keyring that lives in a dict: the real API, no system service."""

    priority = 1  # type: ignore[assignment]

    def __init__(self) -> None:
        super().__init__()
        self.passwords: dict[tuple[str, str], str] = {}

    def get_password(self, service: str, username: str) -> str | None:
        return self.passwords.get((service, username))

    def set_password(self, service: str, username: str, password: str) -> None:
        self.passwords[(service, username)] = password

    def delete_password(self, service: str, username: str) -> None:
        self.passwords.pop((service, username), None)


class BrokenKeyring(MemoryKeyring):
    """A keyring whose backend fails, as a headless machine's does."""

    def get_password(self, service: str, username: str) -> str | None:
        raise RuntimeError("no D-Bus session")

    def set_password(self, service: str, username: str, password: str) -> None:
        raise RuntimeError("no D-Bus session")


@pytest.fixture
def memory_keyring() -> Iterator[MemoryKeyring]:
    """The keyring package pointed at a dict for one test."""
    previous = keyring.get_keyring()
    backend = MemoryKeyring()
    keyring.set_keyring(backend)
    yield backend
    keyring.set_keyring(previous)


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty home folder: no ~/.netrc unless a test writes one."""
    monkeypatch.setenv("HOME", str(tmp_path))
    return tmp_path


def netrc_file(folder: Path, machine: str, login: str, password: str) -> Path:
    path = folder / ".netrc"
    path.write_text(f"machine {machine}\n  login {login}\n  password {password}\n")
    path.chmod(0o600)
    return path


def test_the_environment_gives_an_account(home: Path, memory_keyring: MemoryKeyring) -> None:
    found = find_credentials(
        ENDPOINTS, environ={"CDSE_USERNAME": "env@example.com", "CDSE_PASSWORD": "env-pw"}
    )
    assert (found.username, found.password) == ("env@example.com", "env-pw")
    assert found.source == "CDSE_USERNAME/CDSE_PASSWORD"


@pytest.mark.parametrize("machine", [IDENTITY_HOST, "dataspace.copernicus.eu"])
def test_netrc_gives_an_account(home: Path, memory_keyring: MemoryKeyring, machine: str) -> None:
    netrc_file(home, machine, "netrc@example.com", "netrc-pw")
    found = find_credentials(ENDPOINTS, environ={})
    assert (found.username, found.password, found.source) == (
        "netrc@example.com",
        "netrc-pw",
        "~/.netrc",
    )


def test_the_netrc_variable_names_another_file(
    home: Path, tmp_path: Path, memory_keyring: MemoryKeyring
) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    path = netrc_file(elsewhere, IDENTITY_HOST, "other@example.com", "other-pw")
    found = find_credentials(ENDPOINTS, environ={"NETRC": str(path)})
    assert found.username == "other@example.com"


def test_netrc_of_another_machine_is_not_used(home: Path, memory_keyring: MemoryKeyring) -> None:
    netrc_file(home, "urs.earthdata.nasa.gov", "nasa@example.com", "nasa-pw")
    with pytest.raises(CredentialsMissingError, match="no CDSE account found"):
        find_credentials(ENDPOINTS, environ={})


def test_a_broken_netrc_is_a_one_line_config_error(
    home: Path, memory_keyring: MemoryKeyring
) -> None:
    (home / ".netrc").write_text("machine\n")
    with pytest.raises(ConfigError, match="cannot read") as info:
        find_credentials(ENDPOINTS, environ={})
    assert "\n" not in str(info.value)


def test_the_keyring_gives_the_account_saved_last(
    home: Path, memory_keyring: MemoryKeyring
) -> None:
    store_in_keyring("saved@example.com", "saved-pw")
    found = find_credentials(ENDPOINTS, environ={})
    assert (found.username, found.password, found.source) == (
        "saved@example.com",
        "saved-pw",
        "system keyring",
    )
    assert memory_keyring.passwords[(KEYRING_SERVICE, "saved@example.com")] == "saved-pw"


def test_a_named_user_picks_their_keyring_entry(home: Path, memory_keyring: MemoryKeyring) -> None:
    store_in_keyring("first@example.com", "first-pw")
    store_in_keyring("second@example.com", "second-pw")
    by_env = find_credentials(ENDPOINTS, environ={"CDSE_USERNAME": "first@example.com"})
    by_config = find_credentials(ENDPOINTS, environ={}, config_username="first@example.com")
    assert by_env.password == by_config.password == "first-pw"


def test_a_deleted_keyring_entry_is_gone(home: Path, memory_keyring: MemoryKeyring) -> None:
    store_in_keyring("saved@example.com", "saved-pw")
    delete_from_keyring("saved@example.com")
    with pytest.raises(CredentialsMissingError):
        find_credentials(ENDPOINTS, environ={}, config_username="saved@example.com")


def test_a_keyring_without_a_backend_is_skipped_and_saving_says_so(home: Path) -> None:
    previous = keyring.get_keyring()
    keyring.set_keyring(BrokenKeyring())
    try:
        with pytest.raises(CredentialsMissingError):
            find_credentials(ENDPOINTS, environ={})
        with pytest.raises(ConfigError, match="no usable keyring backend"):
            store_in_keyring("me@example.com", "pw")
    finally:
        keyring.set_keyring(previous)


def test_the_config_file_gives_an_account(home: Path, memory_keyring: MemoryKeyring) -> None:
    found = find_credentials(
        ENDPOINTS, environ={}, config_username="file@example.com", config_password="file-pw"
    )
    assert (found.username, found.password, found.source) == (
        "file@example.com",
        "file-pw",
        "config file",
    )


def test_a_config_username_and_an_environment_password_make_one_account(
    home: Path, memory_keyring: MemoryKeyring
) -> None:
    found = find_credentials(
        ENDPOINTS, environ={"CDSE_PASSWORD": "env-pw"}, config_username="file@example.com"
    )
    assert (found.username, found.password) == ("file@example.com", "env-pw")


def test_a_config_username_and_a_keyring_password_make_one_account(
    home: Path, memory_keyring: MemoryKeyring
) -> None:
    memory_keyring.set_password(KEYRING_SERVICE, "file@example.com", "ring-pw")
    found = find_credentials(ENDPOINTS, environ={}, config_username="file@example.com")
    assert (found.username, found.password, found.source) == (
        "file@example.com",
        "ring-pw",
        "system keyring",
    )


def test_the_prompt_is_last_and_knows_the_username(
    home: Path, memory_keyring: MemoryKeyring
) -> None:
    asked: list[str | None] = []

    def prompt(username: str | None) -> tuple[str, str]:
        asked.append(username)
        return (username or "typed@example.com", "typed-pw")

    found = find_credentials(ENDPOINTS, environ={}, prompt=prompt)
    assert (found.username, found.source, asked) == ("typed@example.com", "prompt", [None])
    found = find_credentials(
        ENDPOINTS, environ={}, config_username="file@example.com", prompt=prompt
    )
    assert (found.username, found.password) == ("file@example.com", "typed-pw")
    assert asked == [None, "file@example.com"]


def test_an_empty_prompt_answer_is_no_account(home: Path, memory_keyring: MemoryKeyring) -> None:
    with pytest.raises(CredentialsMissingError, match="no CDSE account found"):
        find_credentials(ENDPOINTS, environ={}, prompt=lambda username: ("", ""))


def test_the_sources_in_their_order(home: Path, memory_keyring: MemoryKeyring) -> None:
    """Each source wins over every source after it, and only when it is complete."""
    asked: list[str | None] = []

    def prompt(username: str | None) -> tuple[str, str]:
        asked.append(username)
        return ("typed@example.com", "typed-pw")

    store_in_keyring("ring@example.com", "ring-pw")
    netrc_file(home, IDENTITY_HOST, "netrc@example.com", "netrc-pw")
    everything = {
        "environ": {"CDSE_USERNAME": "env@example.com", "CDSE_PASSWORD": "env-pw"},
        "config_username": None,
        "config_password": "file-pw",
        "prompt": prompt,
    }

    def source(**changes: object) -> str:
        arguments = {**everything, **changes}
        return find_credentials(ENDPOINTS, **arguments).source  # type: ignore[arg-type]

    assert source() == "CDSE_USERNAME/CDSE_PASSWORD"
    assert source(environ={"CDSE_USERNAME": "env@example.com"}) == "~/.netrc"
    (home / ".netrc").unlink()
    assert source(environ={}) == "system keyring"
    memory_keyring.passwords.clear()
    assert source(environ={}, config_username="file@example.com") == "config file"
    assert source(environ={}, config_username=None) == "prompt"
    assert asked == [None]


def test_totp_from_the_environment_and_the_config(home: Path) -> None:
    environ = {"CDSE_USERNAME": "me@example.com", "CDSE_PASSWORD": "pw", "CDSE_TOTP": "123456"}
    found = find_credentials(ENDPOINTS, environ=environ, totp_secret="JBSWY3DPEHPK3PXP")
    assert (found.totp, found.totp_secret) == ("123456", "JBSWY3DPEHPK3PXP")
    given = find_credentials(ENDPOINTS, environ=environ, totp="654321")
    assert given.totp == "654321"


def test_a_client_from_config_logs_in_with_a_file_username_and_an_env_password(
    cdse: Emulator, tmp_path: Path, home: Path, memory_keyring: MemoryKeyring
) -> None:
    """The bug as users met it: ``[account] username`` plus CDSE_PASSWORD said "no account"."""
    (tmp_path / "sentinel-fetch.toml").write_text(f'[account]\nusername = "{DEMO_USERNAME}"\n')
    environ = {
        "SENTINEL_FETCH_CONFIG": str(tmp_path / "none.toml"),
        "CDSE_PASSWORD": DEMO_PASSWORD,
        **{k: v for k, v in cdse.env().items() if k not in ("CDSE_USERNAME", "CDSE_PASSWORD")},
    }
    config = load_config(environ=environ, cwd=tmp_path)
    assert isinstance(config.settings(), Settings)
    with pytest.MonkeyPatch.context() as patch:
        patch.delenv("CDSE_USERNAME", raising=False)
        patch.setenv("CDSE_PASSWORD", DEMO_PASSWORD)
        with Client.from_config(config) as client:
            account = client.login()
    assert account.username == DEMO_USERNAME
    assert cdse.stats.logins == {DEMO_USERNAME: 1}
