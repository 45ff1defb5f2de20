"""``sentinel-fetch status``: a download job at a glance, from its ledger."""

from __future__ import annotations

import json

import click

from sentinel_fetch.cli.context import CliContext
from sentinel_fetch.cli.options import Command, json_option, out_option

__all__ = ["status"]


@click.command(cls=Command)
@click.argument(
    "save_path_argument", metavar="[OUT]", required=False, type=click.Path(file_okay=False)
)
@out_option(help="The save folder of the job (default: the configured one).")
@json_option
@click.pass_obj
def status(context: CliContext, save_path: str | None, as_json: bool) -> int:
    """Summarise the download job in the save folder (--out, or given as OUT).

    Shows products by state, bytes, every failure with its reason, and the offline
    products that must be ordered in the CDSE Data Workspace. Reads only the ledger,
    sentinel-fetch-ledger.sqlite, and, while a download has it open, that download's
    SQLite side files next to it (-wal, -shm); it creates and changes no file, so it
    works on a read-only folder and is safe to run while a download is going on.
    """
    from sentinel_fetch.cli.render import human_bytes
    from sentinel_fetch.text import for_display

    with context.client(context.config({"save_path": save_path})) as client:
        folder = client.settings.save_path
        summary = client.status()
        activity = client.activity()
    running, in_flight = activity.running, activity.in_flight
    if as_json:
        data = summary.to_dict()
        data["running"] = running
        data["in_flight"] = [{"name": n, "bytes": b} for n, b in in_flight]
        click.echo(json.dumps(data, indent=2))
        return 0
    click.echo(
        f"job in {folder}: {summary.total_products} products, {human_bytes(summary.total_bytes)}"
    )
    if running:
        click.echo(f"a run is active: {running}")
    elif in_flight:
        click.echo(
            f"no run is active: {len(in_flight)} products were in flight when the last run "
            "ended (rerun the download to resume them)"
        )
    for state, number in summary.counts.items():
        if number:
            click.echo(f"  {state:<12} {number}")
    for name, received in in_flight:
        click.echo(f"  in flight: {for_display(name)}: {human_bytes(received)} so far")
    percent = 100.0 * summary.done_bytes / summary.total_bytes if summary.total_bytes else 100.0
    click.echo(
        f"verified: {human_bytes(summary.done_bytes)} ({percent:.1f} %); "
        f"fetched over all runs: {human_bytes(summary.bytes_received)}"
    )
    if summary.failed:
        click.echo("failed (rerun the download, or use --retry-failed):")
        for failed in summary.failed:
            click.echo(
                f"  {for_display(failed.name)}: {for_display(failed.reason)} "
                f"({failed.attempts} attempt(s))"
            )
    if summary.offline:
        click.echo("offline (order these in the CDSE Data Workspace, then rerun):")
        for name in summary.offline:
            click.echo(f"  {for_display(name)}")
    return 0
