"""``sentinel-fetch verify``: audit a finish folder against the catalogue's checksums."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

import click

from sentinel_fetch.cli.context import CliContext
from sentinel_fetch.cli.options import Command

if TYPE_CHECKING:
    from sentinel_fetch.catalogue.product import Product

__all__ = ["verify"]


@click.command(cls=Command)
@click.argument("save_path", required=False, type=click.Path(file_okay=False))
@click.option(
    "--finish-dir",
    type=click.Path(file_okay=False),
    help="The finish folder, if it is not SAVE_PATH/Finish.",
)
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.pass_obj
def verify(
    context: CliContext, save_path: str | None, finish_dir: str | None, as_json: bool
) -> int:
    """Re-check every file in the finish folder of SAVE_PATH.

    Each file is hashed again and compared with the catalogue's BLAKE3/MD5 checksum
    (products whose catalogue entry has none get a zip CRC test). Bad files are moved to
    SAVE_PATH/Corrupt and marked failed in the job ledger, so the next download run
    fetches them again. The ledger says which file is which product's; files it does not
    know are looked up by name. Refused while a download runs in the folder. Exit
    status 1 if any file was bad.
    """
    from sentinel_fetch.api import search as run_search
    from sentinel_fetch.catalogue.query import build_query
    from sentinel_fetch.downloads.audit import CORRUPT_FOLDER, audit_finished
    from sentinel_fetch.downloads.folderlock import FolderLock
    from sentinel_fetch.errors import InputError, QueryError
    from sentinel_fetch.ledger import LEDGER_FILE_NAME, JobLedger, StoredProduct
    from sentinel_fetch.text import for_display

    overrides = {"save_path": save_path, "finish_dir": finish_dir}
    settings = context.settings(overrides)
    folder = settings.save_path
    if not settings.finish_path.is_dir():
        raise InputError(f"there is no finish folder at {settings.finish_path}: nothing to verify")

    def lookup(names: list[str]) -> list[Product]:
        usable = []
        for name in names:
            try:
                build_query(names=[name])
            except QueryError:  # a file name no product name could be
                continue
            usable.append(name)
        if not usable:
            return []
        return list(run_search(build_query(names=usable), settings=settings))

    # Moving files and marking the ledger: never under a running download.
    held = [path for path in (folder, settings.finish_path) if path.is_dir()]
    with FolderLock.acquire(held):
        has_ledger = (folder / LEDGER_FILE_NAME).exists()
        known: list[StoredProduct] = []
        if has_ledger:
            with JobLedger.open(folder, read_only=True) as ledger:
                known = ledger.stored()
        report = audit_finished(settings.finish_path, folder / CORRUPT_FOLDER, known, lookup)
        bad_ids = [v.product_id for v in report.verdicts if v.status == "bad" and v.product_id]
        if bad_ids and has_ledger:
            with JobLedger.open(folder, create=False) as ledger:
                ledger.mark(
                    bad_ids, "failed", f"corrupt in the finish folder; moved to {CORRUPT_FOLDER}/"
                )
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
