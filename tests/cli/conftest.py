"""Fixtures of the command-line tests: a user's environment pointed at the emulator."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path

import pytest

from sentinel_fetch.emulator import Emulator


@pytest.fixture
def cli_env(cdse: Emulator, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """Environment of a user pointed at the emulator, in an empty working folder."""
    for name, value in cdse.env().items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("SENTINEL_FETCH_CONFIG", str(tmp_path / "no-user-config.toml"))
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.delenv("NETRC", raising=False)
    for name in (
        "HTTPS_PROXY",
        "https_proxy",
        "ALL_PROXY",
        "all_proxy",
        "HTTP_PROXY",
        "http_proxy",
    ):
        monkeypatch.delenv(name, raising=False)
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    yield work
    # The CLI configures logging for its process; in-process runs must not leave its
    # handlers writing to this test's (soon closed) captured stderr.
    root = logging.getLogger()
    for handler in [h for h in root.handlers if getattr(h, "_sentinel_fetch", False)]:
        root.removeHandler(handler)
        handler.close()
    root.setLevel(logging.WARNING)
