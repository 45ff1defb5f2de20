"""``sentinel-fetch status``: a download job at a glance, from its ledger (or several)."""

from __future__ import annotations

import json
from pathlib import Path

import click

from sentinel_fetch.cli.context import CliContext
from sentinel_fetch.cli.options import Command, json_option, ledger_option, out_option

__all__ = ["status"]


@click.command(cls=Command)
@click.argument("folders", metavar="[OUT]...", nargs=-1, type=click.Path())
@out_option(help="The save folder of the job (default: the configured one).")
@ledger_option
@json_option
@click.pass_obj
def status(
    context: CliContext,
    folders: tuple[str, ...],
    save_path: str | None,
    ledger: str | None,
    as_json: bool,
) -> int:
    """Summarise the download job in the save folder (--out, or given as OUT).

    Shows products by state, bytes, every failure with its reason, and the offline
    products that must be ordered in the CDSE Data Workspace. Reads only the ledger,
    sentinel-fetch-ledger.sqlite, and, while a download has it open, that download's
    SQLite side files next to it (-wal, -shm); it creates and changes no file, so it
    works on a read-only folder and is safe to run while a download is going on.

    With --ledger postgresql://... (or the config file's ledger) it reads the job that
    workers on many machines share, and lists every worker and account: done, running,
    failed, bytes, rate, and each account's quota meter (bytes over the last 30 days
    against its quota, 12 TB unless [account] quota says otherwise). Several OUT
    folders (the shards of a job), or a ledger file written by ledger merge, are
    reported as one job.
    """
    from sentinel_fetch.cli.render import human_bytes, job_lines, result_lines, state_lines

    if len(folders) > 1 or (folders and Path(folders[0]).is_file()):
        # Shards of one job, or a ledger file (ledger merge -o): read as one job.
        if save_path is not None or ledger is not None:
            raise click.UsageError("give job folders or ledger files, or --out/--ledger, not both")
        with context.client(context.config()) as client:
            summary = client.status_of(list(folders))
        if as_json:
            click.echo(json.dumps(summary.to_dict(), indent=2))
            return 0
        what = f"{len(folders)} ledgers, one job" if len(folders) > 1 else f"job in {folders[0]}"
        click.echo(f"{what}: {summary.total_products} products, {human_bytes(summary.total_bytes)}")
        for line in [*state_lines(summary), *result_lines(summary), *job_lines(summary)]:
            click.echo(line)
        return 0
    if folders:
        if save_path is not None and save_path != folders[0]:
            raise click.UsageError(
                f"the save folder is given twice ({folders[0]} and {save_path}): "
                "give it once, with --out"
            )
        save_path = folders[0]
    with context.client(context.config({"save_path": save_path, "ledger": ledger})) as client:
        location = client.ledger_location(save_path)
        shared = isinstance(location, str) and "://" in location
        summary = client.status(save_path)
        # A folder's ledger: whether a run holds that folder, and its files in flight.
        activity = None if shared else client.activity(location)
        shown = location
    running = activity.running if activity else None
    in_flight = activity.in_flight if activity else []
    if as_json:
        data = summary.to_dict()
        data["running"] = running
        data["in_flight"] = [{"name": n, "bytes": b} for n, b in in_flight]
        click.echo(json.dumps(data, indent=2))
        return 0
    from sentinel_fetch.redact import redact_url
    from sentinel_fetch.text import for_display

    where = redact_url(str(shown)) if shared else str(shown)
    click.echo(
        f"job in {for_display(where)}: {summary.total_products} products, "
        f"{human_bytes(summary.total_bytes)}"
    )
    if running:
        click.echo(f"a run is active: {running}")
    elif in_flight:
        click.echo(
            f"no run is active: {len(in_flight)} products were in flight when the last run "
            "ended (rerun the download to resume them)"
        )
    for line in state_lines(summary):
        click.echo(line)
    for name, received in in_flight:
        click.echo(f"  in flight: {for_display(name)}: {human_bytes(received)} so far")
    for line in [*result_lines(summary), *job_lines(summary)]:
        click.echo(line)
    return 0
