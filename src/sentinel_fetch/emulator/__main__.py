"""``python -m sentinel_fetch.emulator``: run the CDSE emulator in the foreground.

The command is :data:`~sentinel_fetch.emulator.command.emulator`, the same one
``sentinel-fetch emulator`` mounts.
"""

from __future__ import annotations

from .command import emulator


def main(argv: list[str] | None = None) -> None:
    """Entry point: run the command (click exits with its status: 2 for bad options)."""
    emulator.main(args=argv, prog_name="python -m sentinel_fetch.emulator")


if __name__ == "__main__":
    main()
