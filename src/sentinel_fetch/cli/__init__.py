"""The ``sentinel-fetch`` command: a thin shell over the library.

Data goes to stdout, logs and progress to stderr. Exit status: 0 everything done,
1 some product failed or the service refused, 2 bad input (usage, URL, area, dates,
credentials, a save folder another run holds), 3 ``download`` found only offline
products (nothing could be downloaded), 130 interrupted by Ctrl-C, 143 stopped by
SIGTERM (see :mod:`.stopping`). Errors are one line; ``-v`` adds detail.

Modules are imported lazily: ``sentinel-fetch --help`` must start in a blink.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

import click

from sentinel_fetch import __version__
from sentinel_fetch.cli.context import CliContext
from sentinel_fetch.cli.options import NonEmptyValues, global_parameters

__all__ = ["cli", "main"]

_COMMANDS = {
    "search": (
        "sentinel_fetch.cli.search_cmd",
        "search",
        "Search the catalogue (every result, no page limit).",
    ),
    "download": (
        "sentinel_fetch.cli.download_cmd",
        "download",
        "Download products: parallel, resumable, verified.",
    ),
    "quicklooks": (
        "sentinel_fetch.cli.quicklooks_cmd",
        "quicklooks",
        "Fetch every result's quicklook and draw a contact sheet.",
    ),
    "status": (
        "sentinel_fetch.cli.status_cmd",
        "status",
        "Summarise a download job from its ledger.",
    ),
    "ledger": (
        "sentinel_fetch.cli.ledger_cmd",
        "ledger",
        "Merge the ledgers of a job's shards into one (ledger merge).",
    ),
    "verify": (
        "sentinel_fetch.cli.verify_cmd",
        "verify",
        "Re-check every finished file against the catalogue's checksums.",
    ),
    "config": (
        "sentinel_fetch.cli.config_cmd",
        "config",
        "Show the effective settings and where each came from.",
    ),
    "login": (
        "sentinel_fetch.cli.login_cmd",
        "login",
        "Check your CDSE account (and save it in the keyring).",
    ),
    "demo": (
        "sentinel_fetch.cli.demo_cmd",
        "demo",
        "Run the whole job against a built-in CDSE emulator.",
    ),
    "emulator": (
        "sentinel_fetch.cli.emulator_cmd",
        "emulator",
        "Run the CDSE emulator in the foreground.",
    ),
}


class LazyGroup(NonEmptyValues, click.Group):
    """A group whose commands are imported only when used (fast ``--help``).

    Its own options (``--log-file ""``, ``--config ""``) are refused when empty, as
    every command's are. They are the global options, which every command accepts
    after its name too (:func:`~sentinel_fetch.cli.options.global_parameters`).
    """

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self.params.extend(global_parameters())

    def list_commands(self, ctx: click.Context) -> list[str]:
        return list(_COMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        entry = _COMMANDS.get(cmd_name)
        if entry is None:
            return None
        from importlib import import_module

        command = getattr(import_module(entry[0]), entry[1])
        assert isinstance(command, click.Command)
        return command

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        # Short help from the table above: listing commands must not import them.
        with formatter.section("Commands"):
            formatter.write_dl([(name, entry[2]) for name, entry in _COMMANDS.items()])


@click.group(
    cls=LazyGroup,
    context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100},
)
@click.version_option(__version__, prog_name="sentinel-fetch")
@click.pass_context
def cli(ctx: click.Context) -> None:
    """Search and download Copernicus Sentinel data from the Copernicus Data Space Ecosystem.

    \b
    Start with:   sentinel-fetch demo
    Real search:  sentinel-fetch search --url-file SearchURL.txt
    Download:     sentinel-fetch download --url-file SearchURL.txt --out data
    """
    ctx.ensure_object(CliContext).set_up_logging()


def main(argv: Sequence[str] | None = None) -> None:
    """Console entry point: run the command and exit with its status."""
    from sentinel_fetch.cli.stopping import stop_on_sigterm

    with stop_on_sigterm():
        status = _run(argv)
    sys.exit(status)


def _run(argv: Sequence[str] | None) -> int:
    """Run the command; return its exit status (errors become one line on stderr)."""
    from sentinel_fetch.cli.stopping import interrupted_exit_status
    from sentinel_fetch.errors import SentinelFetchError

    try:
        result = cli.main(
            args=list(argv) if argv is not None else None,
            prog_name="sentinel-fetch",
            standalone_mode=False,
        )
    except (click.exceptions.Abort, KeyboardInterrupt):
        click.echo("sentinel-fetch: interrupted", err=True)
        return interrupted_exit_status()
    except click.ClickException as exc:
        # One line, like every other error: what is wrong, and where to read more.
        where = ""
        if isinstance(exc, click.UsageError) and exc.ctx is not None:
            where = f" (see '{exc.ctx.command_path} --help')"
        from sentinel_fetch.text import one_line

        return _fail(one_line(exc.format_message()) + where, exc.exit_code)
    except click.exceptions.Exit as exc:
        return exc.exit_code
    except SentinelFetchError as exc:
        return _fail(str(exc), exc.exit_code)
    except OSError as exc:
        return _fail(f"{exc.strerror or exc}: {exc.filename or ''}".rstrip(": "), 1)
    return result if isinstance(result, int) else 0


def _fail(message: str, exit_code: int) -> int:
    """Write the one error line (secrets masked, server text unable to steer the terminal).

    Returns:
        The exit status, for the caller to return.
    """
    from sentinel_fetch.text import for_display

    click.echo(f"sentinel-fetch: error: {for_display(message)}", err=True)
    return exit_code
