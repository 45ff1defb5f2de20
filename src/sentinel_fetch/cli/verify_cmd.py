"""``sentinel-fetch verify``: audit a finish folder against the catalogue's checksums."""

from __future__ import annotations

import json
from pathlib import Path

import click

from sentinel_fetch.cli.context import CliContext
from sentinel_fetch.cli.options import Command, finish_dir_option, json_option, out_option

__all__ = ["verify"]


@click.command(cls=Command)
@click.argument(
    "save_path_argument", metavar="[OUT]", required=False, type=click.Path(file_okay=False)
)
@out_option(help="The save folder of the job (default: the configured one).")
@finish_dir_option("The finish folder, if it is not <out>/Finish.")
@json_option
@click.pass_obj
def verify(
    context: CliContext, save_path: str | None, finish_dir: str | None, as_json: bool
) -> int:
    """Re-check every file in the finish folder of the job in --out (or given as OUT).

    Each file is hashed again and compared with the catalogue's BLAKE3/MD5 checksum
    (products whose catalogue entry has none get a zip CRC test). Bad files are moved to
    <out>/Corrupt and marked failed in the job ledger, so the next download run
    fetches them again. The ledger says which file is which product's; files it does not
    know are looked up by name. Band files (<name>.SAFE/...) are checked against the
    size and SHA3-256/MD5 recorded for each. Refused while a download runs in the folder. Exit
    status 1 if any file was bad.
    """
    from sentinel_fetch.client import CORRUPT_FOLDER
    from sentinel_fetch.text import for_display

    config = context.config({"save_path": save_path, "finish_dir": finish_dir})
    with context.client(config) as client:
        report = client.verify()
    folder = client.settings.save_path
    if as_json:
        click.echo(json.dumps([v.__dict__ for v in report.verdicts], indent=2))
    else:
        for verdict in report.verdicts:
            if verdict.status != "ok" or context.verbose:
                shown = f"{verdict.file}: {verdict.detail}"
                click.echo(f"{verdict.status:<8} {for_display(shown)}")
        moved = f" (moved to {Path(folder) / CORRUPT_FOLDER})" if report.count("bad") else ""
        context.info(
            f"{len(report.verdicts)} files: {report.count('ok')} ok, {report.count('bad')} bad"
            f"{moved}, {report.count('unknown')} unknown"
        )
    return 0 if report.ok else 1
