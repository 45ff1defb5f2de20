"""``sentinel-fetch login``: check the account against the identity server."""

from __future__ import annotations

import click

from sentinel_fetch.cli.context import CliContext
from sentinel_fetch.cli.options import Command, totp_option

__all__ = ["login"]


@click.command(cls=Command)
@click.option("--save", is_flag=True, help="Store the username and password in the system keyring.")
@totp_option
@click.pass_obj
def login(context: CliContext, save: bool, totp: str | None) -> int:
    """Log in to CDSE once to check your account; optionally save it in the keyring.

    The password is read from CDSE_PASSWORD, ~/.netrc, the keyring or a prompt, never
    from the command line. A successful check opens one CDSE session (of 100 allowed).
    """
    with context.client(context.config(), totp=totp) as client:
        credentials = client.login()
        click.echo(
            f"ok: CDSE accepted {credentials.username} (credentials from {credentials.source})"
        )
        if save:
            client.save_login()
            click.echo("saved in the system keyring; later runs need no password")
    return 0
