"""``sentinel-fetch emulator``: the emulator's own command, mounted (it lives with the
emulator, which never imports the client, so ``python -m sentinel_fetch.emulator`` is
the same command)."""

from __future__ import annotations

from sentinel_fetch.emulator.command import emulator

__all__ = ["emulator"]
