"""``sentinel-fetch ledger merge``: the ledgers of a job's shards as one ledger file."""

from __future__ import annotations

import json

import click

from sentinel_fetch.cli.context import CliContext
from sentinel_fetch.cli.options import Command, json_option

__all__ = ["ledger"]


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
def ledger() -> None:
    """Work with job ledgers (the shards of a job run without a database)."""


@ledger.command(cls=Command)
@click.argument("sources", metavar="OUT...", nargs=-1, required=True, type=click.Path())
@click.option(
    "-o",
    "--output",
    required=True,
    type=click.Path(dir_okay=False),
    help="The merged ledger file to write (must not exist).",
)
@json_option
@click.pass_obj
def merge(context: CliContext, sources: tuple[str, ...], output: str, as_json: bool) -> int:
    """Merge the ledgers of several save folders (shards: download --shard K/N) into one.

    The folders' ledgers are only read, so shards may still be running. The result is a
    new SQLite ledger with every product, worker and quota-meter reading; read it with
    `sentinel-fetch status merged.sqlite`, or report the shards directly with
    `sentinel-fetch status A/ B/ C/`.
    """
    from sentinel_fetch.cli.render import human_bytes

    with context.client(context.config()) as client:
        summary = client.merge_ledgers(list(sources), output)
    if as_json:
        click.echo(json.dumps(summary.to_dict(), indent=2))
        return 0
    done = summary.counts.get("done", 0) + summary.counts.get("skipped", 0)
    click.echo(
        f"merged {len(sources)} ledgers into {output}: {summary.total_products} products"
        f" ({done} verified), {human_bytes(summary.total_bytes)}"
    )
    return 0
