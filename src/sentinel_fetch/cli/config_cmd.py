"""``sentinel-fetch config``: the effective settings and where each came from."""

from __future__ import annotations

import json

import click

from sentinel_fetch.cli.context import CliContext
from sentinel_fetch.cli.options import Command, json_option

__all__ = ["config"]


@click.command(cls=Command)
@json_option
@click.pass_obj
def config(context: CliContext, as_json: bool) -> int:
    """Show the effective settings and where each came from (secrets masked).

    Precedence: command line > environment > ./sentinel-fetch.toml > the user config
    file. Settings not shown have their defaults.
    """
    from sentinel_fetch.config import user_config_path
    from sentinel_fetch.redact import redact_url

    effective = context.config()
    settings = effective.settings()
    rows = effective.describe()
    derived = [
        ("(effective) save folder", str(settings.save_path)),
        ("(effective) temp folder", str(settings.temp_path)),
        ("(effective) finish folder", str(settings.finish_path)),
        ("(effective) workers", str(settings.limits.workers)),
        (
            "(effective) proxy",
            redact_url(settings.proxy) if settings.proxy else "environment / system",
        ),
        ("(effective) catalogue", settings.endpoints.catalogue),
        ("(effective) download host", settings.endpoints.download),
        ("(effective) identity", settings.endpoints.identity),
    ]
    if as_json:
        click.echo(
            json.dumps(
                {
                    "settings": [{"name": n, "value": v, "source": s} for n, v, s in rows],
                    "effective": dict(derived),
                    "files": [str(path) for path in effective.files],
                    "user_config_file": str(user_config_path()),
                },
                indent=2,
            )
        )
        return 0
    click.echo(f"user config file: {user_config_path()}")
    click.echo(f"files read: {', '.join(str(p) for p in effective.files) or 'none'}")
    for name, value, source in rows:
        click.echo(f"{name} = {value}    [{source}]")
    for name, value in derived:
        click.echo(f"{name}: {value}")
    return 0
