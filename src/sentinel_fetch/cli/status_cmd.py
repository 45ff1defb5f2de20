"""``sentinel-fetch status``: a download job at a glance, from its ledger."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

import click

from sentinel_fetch.cli.context import CliContext
from sentinel_fetch.cli.options import Command

if TYPE_CHECKING:
    from sentinel_fetch.settings import Settings

__all__ = ["status"]


@click.command(cls=Command)
@click.argument("save_path", required=False, type=click.Path(file_okay=False))
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.pass_obj
def status(context: CliContext, save_path: str | None, as_json: bool) -> int:
    """Summarise the download job in SAVE_PATH (default: the configured save folder).

    Shows products by state, bytes, every failure with its reason, and the offline
    products that must be ordered in the CDSE Data Workspace. Only reads the ledger
    (never changes it): safe to run while a download is going on.
    """
    from sentinel_fetch.cli.render import human_bytes
    from sentinel_fetch.ledger import JobLedger
    from sentinel_fetch.text import for_display

    settings = context.settings({"save_path": save_path} if save_path else None)
    folder = settings.save_path
    with JobLedger.open(folder, read_only=True) as ledger:
        summary = ledger.summary()
        in_flight = ledger.stored(("downloading", "verifying"))
    running = _running(settings)
    # The ledger counts bytes when a product ends; a file in flight is its .part so far.
    flight_bytes = {p.name: _part_size(settings, p.file_name) for p in in_flight}
    if as_json:
        data = summary.to_dict()
        data["running"] = running
        data["in_flight"] = [{"name": n, "bytes": b} for n, b in flight_bytes.items()]
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
    for name, received in flight_bytes.items():
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


def _running(settings: Settings) -> str | None:
    """Who holds the job's folders (pid, host, since), or ``None`` when no run does."""
    from sentinel_fetch.api import run_folders
    from sentinel_fetch.downloads.folderlock import FolderLock
    from sentinel_fetch.errors import FolderInUseError

    try:
        FolderLock.check_free(run_folders(settings))
    except FolderInUseError as error:
        return str(error)
    return None


def _part_size(settings: Settings, file_name: str) -> int:
    from sentinel_fetch.downloads.paths import PART_SUFFIX, safe_file_name
    from sentinel_fetch.errors import UnsafeNameError

    try:
        return (settings.temp_path / (safe_file_name(file_name) + PART_SUFFIX)).stat().st_size
    except (OSError, UnsafeNameError):
        return 0
