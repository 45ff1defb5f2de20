"""Run the emulator in the foreground until SIGINT/SIGTERM (``python -m sentinel_fetch.emulator``).

:func:`run` is what the ``sentinel-fetch emulator`` command and the module entry point
call: it starts the emulator, tells the user where everything is (endpoints, the demo
account, the CA to trust, ``export`` lines to paste into a shell) and stops cleanly on
Ctrl+C or ``kill``.
"""

from __future__ import annotations

import shlex
import signal
import threading
from collections.abc import Callable
from types import FrameType
from typing import Any

from . import Emulator
from .config import EmulatorConfig

__all__ = ["describe", "run"]


def describe(emulator: Emulator) -> list[str]:
    """The lines announcing a running emulator (endpoints, account, CA, env exports)."""
    config = emulator.config
    scheme = "HTTPS" if config.tls else "plain HTTP"
    env = emulator.env()
    lines = [
        f"sentinel-fetch CDSE emulator running ({scheme}, data in {config.data_dir})",
        f"  identity:  {emulator.identity_url}",
        f"  catalogue: {emulator.catalogue_url}",
        f"  download:  {emulator.download_url}",
        f"  zipper:    {emulator.zipper_url}",
        f"  STAC:      {emulator.stac_url}",
        f"  quicklook: {emulator.quicklook_url}",
        f"  admin:     {emulator.admin_url}/",
        f"  account:   {env['CDSE_USERNAME']} / {env['CDSE_PASSWORD']}",
    ]
    if emulator.ca_bundle is not None:
        lines.append(f"  CA bundle: {emulator.ca_bundle}")
    lines.append("Point sentinel-fetch (or curl) at it from a shell:")
    lines += [f"  export {name}={shlex.quote(value)}" for name, value in sorted(env.items())]
    lines.append("Press Ctrl+C to stop.")
    return lines


def run(config: EmulatorConfig, *, announce: Callable[[str], None]) -> None:
    """Start the emulator, announce it, block until SIGINT/SIGTERM, then stop it.

    Args:
        config: emulator settings.
        announce: receives each line to show the user (the CLI prints them).
    """
    stop = threading.Event()
    previous: dict[signal.Signals, Any] = {}

    def request_stop(signum: int, frame: FrameType | None) -> None:
        stop.set()

    if threading.current_thread() is threading.main_thread():
        for signum in (signal.SIGINT, signal.SIGTERM):
            previous[signum] = signal.signal(signum, request_stop)
    emulator = Emulator(config)
    announce(
        "Starting the CDSE emulator (the first start builds its synthetic catalogue: ~15 s)..."
    )
    try:
        emulator.start()
        for line in describe(emulator):
            announce(line)
        # A timed wait keeps the main thread responsive to signals on every platform.
        while not stop.wait(0.5):
            pass
        announce("Stopping the emulator.")
    finally:
        emulator.stop()
        for restored, handler in previous.items():
            signal.signal(restored, handler)
