"""``sentinel-fetch emulator``: run the CDSE emulator in the foreground."""

from __future__ import annotations

import click

__all__ = ["emulator"]


@click.command(
    context_settings={"ignore_unknown_options": True, "allow_extra_args": True},
    add_help_option=False,
)
@click.argument("arguments", nargs=-1, type=click.UNPROCESSED)
def emulator(arguments: tuple[str, ...]) -> int:
    """Run a local CDSE emulator (identity, catalogue, download) until Ctrl+C.

    Prints the endpoints, a demo account and the environment variables that point
    sentinel-fetch at it. Options: see 'sentinel-fetch emulator --help'.
    """
    from sentinel_fetch.emulator.__main__ import config_from, parser
    from sentinel_fetch.emulator.standalone import run

    parse = parser()
    parse.prog = "sentinel-fetch emulator"
    config = config_from(parse.parse_args(list(arguments)))
    run(config, announce=lambda line: click.echo(line))
    return 0
