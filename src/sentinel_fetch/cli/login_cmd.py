"""``sentinel-fetch login``: check the account against the identity server."""

from __future__ import annotations

import click

from sentinel_fetch.cli.context import CliContext
from sentinel_fetch.cli.options import Command

__all__ = ["login"]


@click.command(cls=Command)
@click.option("--save", is_flag=True, help="Store the username and password in the system keyring.")
@click.option(
    "--totp", metavar="CODE", help="6-digit code for an account with two-factor authentication."
)
@click.pass_obj
def login(context: CliContext, save: bool, totp: str | None) -> int:
    """Log in to CDSE once to check your account; optionally save it in the keyring.

    The password is read from CDSE_PASSWORD, ~/.netrc, the keyring or a prompt, never
    from the command line. A successful check opens one CDSE session (of 100 allowed).
    """
    from sentinel_fetch.auth import TokenManager
    from sentinel_fetch.credentials import store_in_keyring
    from sentinel_fetch.http import Transport

    config = context.config()
    settings = config.settings()
    credentials = context.credentials(config, totp=totp)
    with Transport(settings) as transport:
        tokens = TokenManager(transport, settings.endpoints, credentials)
        tokens.access_token()
    click.echo(f"ok: CDSE accepted {credentials.username} (credentials from {credentials.source})")
    if save:
        store_in_keyring(credentials.username, credentials.password)
        click.echo("saved in the system keyring; later runs need no password")
    return 0
