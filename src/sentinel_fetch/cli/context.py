"""What every command shares: logging, the effective configuration, the Client."""

from __future__ import annotations

import logging
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

if TYPE_CHECKING:
    from sentinel_fetch.client import Client
    from sentinel_fetch.config import EffectiveConfig
    from sentinel_fetch.settings import Settings

__all__ = ["CliContext", "ScreenFormatter", "setup_logging"]


class ScreenFormatter(logging.Formatter):
    """A formatter whose messages cannot steer a terminal or forge a log line.

    Messages carry server text (product names, error bodies); their control characters
    are written as visible escapes (:func:`sentinel_fetch.text.printable`). A traceback
    appended after the message keeps its lines.
    """

    def formatMessage(self, record: logging.LogRecord) -> str:
        from sentinel_fetch.text import printable

        record.message = printable(record.message)
        return super().formatMessage(record)


def setup_logging(*, verbose: int, quiet: bool, log_file: str | None) -> None:
    """stderr at WARNING (INFO with -v, DEBUG with -vv, ERROR with -q), file at DEBUG.

    Every handler gets the redacting filter, so no token or password is ever written,
    whichever library logs it, and the screen formatter, so no server text reaches a
    terminal (or a log a terminal will show) as control characters.

    Raises:
        click.BadParameter: the log file cannot be opened (a missing folder...).
    """
    from sentinel_fetch.redact import RedactingFilter

    root = logging.getLogger()
    for handler in list(root.handlers):
        if getattr(handler, "_sentinel_fetch", False):  # ours, from an earlier call
            root.removeHandler(handler)
    level = (
        logging.ERROR if quiet else (logging.WARNING, logging.INFO, logging.DEBUG)[min(verbose, 2)]
    )
    console = logging.StreamHandler(sys.stderr)
    console.setLevel(level)
    console.setFormatter(
        ScreenFormatter("%(levelname).1s %(message)s" if verbose else "%(message)s")
    )
    console.addFilter(RedactingFilter())
    console._sentinel_fetch = True  # type: ignore[attr-defined]
    root.addHandler(console)
    root.setLevel(min(level, logging.DEBUG if log_file else level))
    if log_file:
        try:
            handler = logging.FileHandler(log_file, encoding="utf-8")
        except OSError as exc:
            raise click.BadParameter(
                f"cannot write {log_file}: {exc.strerror or exc}", param_hint="--log-file"
            ) from None
        handler.setLevel(logging.DEBUG)
        handler.setFormatter(
            ScreenFormatter("%(asctime)s %(levelname)s %(threadName)s %(name)s: %(message)s")
        )
        handler.addFilter(RedactingFilter())
        handler._sentinel_fetch = True  # type: ignore[attr-defined]
        root.addHandler(handler)
    # urllib3's connection-pool chatter is noise below -vv.
    logging.getLogger("urllib3").setLevel(
        logging.DEBUG if verbose >= 2 or log_file else logging.WARNING
    )


@dataclass
class CliContext:
    """Global options and lazily built shared objects.

    Global options may come before the command and after it (``-q download ...`` and
    ``download ... -q``); each one seen updates this object and the logging set-up.
    """

    verbose: int = 0
    quiet: bool = False
    config_file: str | None = None
    log_file: str | None = None

    def set_up_logging(self) -> None:
        """Configure logging for the global options seen so far (:func:`setup_logging`)."""
        setup_logging(verbose=self.verbose, quiet=self.quiet, log_file=self.log_file)

    def config(self, command_line: dict[str, Any] | None = None) -> EffectiveConfig:
        """The merged configuration with this command's options on top."""
        from sentinel_fetch.config import load_config

        return load_config(
            command_line=command_line,
            project_file=Path(self.config_file) if self.config_file else None,
        )

    def settings(self, command_line: dict[str, Any] | None = None) -> Settings:
        """Validated settings with this command's options on top."""
        return self.config(command_line).settings()

    def client(self, config: EffectiveConfig, *, totp: str | None = None) -> Client:
        """The run's Client; it asks for the account on a terminal when no source has one.

        The prompt only runs when a token is first needed, so a search never asks.
        """
        from sentinel_fetch.client import Client

        prompt = _prompt if sys.stdin.isatty() and sys.stderr.isatty() else None
        return Client.from_config(config, totp=totp, prompt=prompt)

    def info(self, message: str) -> None:
        """A line for the user on stderr (summaries, hints); silent with ``-q``."""
        if not self.quiet:
            click.echo(message, err=True)

    @property
    def interactive(self) -> bool:
        """Whether stderr is a terminal (progress bars) and we were not asked to be quiet."""
        return not self.quiet and sys.stderr.isatty()


def _prompt(username: str | None) -> tuple[str, str]:
    name = username or click.prompt("CDSE username (e-mail)", err=True)
    password = click.prompt(f"CDSE password for {name}", hide_input=True, err=True)
    return str(name), str(password)
