"""``sentinel-fetch download``: a search, a saved result or names in; verified files out."""

from __future__ import annotations

import csv
import json
import uuid
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from sentinel_fetch.cli.context import CliContext
from sentinel_fetch.cli.options import Command, network_options, query_from_options, search_options
from sentinel_fetch.cli.triage import (
    TRIAGE_OPTIONS,
    apply_triage,
    check_triage,
    prepare_search,
    triage_options,
)

if TYPE_CHECKING:
    from sentinel_fetch.catalogue.product import Product
    from sentinel_fetch.catalogue.search import RejectedEntry
    from sentinel_fetch.downloads.engine import BatchReport, ProductResult
    from sentinel_fetch.settings import Settings

__all__ = ["EXIT_ALL_OFFLINE", "REPORT_FILE", "download"]

REPORT_FILE = "sentinel-fetch-report.csv"
#: Exit status of a run where every product was offline: nothing to show for it.
EXIT_ALL_OFFLINE = 3


@click.command(cls=Command)
@click.argument("products", nargs=-1, metavar="[NAME_OR_ID]...")
@search_options
@triage_options
@click.option(
    "--from",
    "from_files",
    multiple=True,
    type=click.Path(exists=True, dir_okay=False, allow_dash=True),
    help="Products from a saved search (.json or .geojson from 'search --output', or a "
    ".txt list of names/ids); '-' reads names, ids or search's NDJSON from a pipe.",
)
@click.option(
    "--retry-failed", is_flag=True, help="Also retry the products that failed in this save folder."
)
@click.option(
    "-o",
    "--out",
    "save_path",
    type=click.Path(file_okay=False),
    help="Save folder (default: ./sentinel-data).",
)
@click.option(
    "--temp-dir", type=click.Path(file_okay=False), help="In-progress files (default: <out>/Temp)."
)
@click.option(
    "--finish-dir",
    type=click.Path(file_okay=False),
    help="Verified products (default: <out>/Finish).",
)
@click.option(
    "-w",
    "--workers",
    # Its range (1-32) is checked with every other setting, wherever it was set.
    type=int,
    help="Products at once, 1-32 (default 4: a free CDSE account allows 4 connections).",
)
@network_options
@click.option(
    "--totp", metavar="CODE", help="6-digit code for an account with two-factor authentication."
)
@click.option(
    "--new",
    "only_new",
    is_flag=True,
    help="Only products published after the newest one this save folder's ledger knows: "
    "what appeared since the last run (for cron jobs).",
)
@click.option(
    "--unzip",
    is_flag=True,
    help="After verification, extract each product into <finish>/<name>.SAFE (the zip is "
    "then removed, unless --keep-zip); a rerun still knows it is done.",
)
@click.option("--keep-zip", is_flag=True, help="With --unzip: keep the verified zip too.")
@click.option("--dry-run", is_flag=True, help="Show what would be downloaded; fetch nothing.")
@click.pass_obj
def download(
    context: CliContext,
    /,
    products: tuple[str, ...],
    from_files: tuple[str, ...],
    retry_failed: bool,
    save_path: str | None,
    temp_dir: str | None,
    finish_dir: str | None,
    workers: int | None,
    proxy: str | None,
    ca_bundle: str | None,
    totp: str | None,
    only_new: bool,
    unzip: bool,
    keep_zip: bool,
    dry_run: bool,
    **options: Any,
) -> int:
    """Download products into <out>/Finish, verified against the catalogue's checksums.

    Products come from search options or a Copernicus Browser URL (as for 'search'),
    from saved results (--from), from names or ids given as arguments, or from the
    failures of an earlier run (--retry-failed); all of these can be combined.

    Files arrive in <out>/Temp as .part files and move to <out>/Finish only once their
    size and BLAKE3/MD5 checksum match. Rerunning the same command fetches only what is
    missing: finished products are skipped without a request, partial ones resume.

    \b
    Examples:
      sentinel-fetch download --url-file SearchURL.txt --out D:/sentinel
      sentinel-fetch download --from results.json --workers 2 --proxy socks5h://127.0.0.1:7890
      sentinel-fetch download S2B_MSIL2A_20231001T103019_N0509_R108_T32TQM_20231001T132714.SAFE
      sentinel-fetch download --out D:/sentinel --retry-failed
    """
    from sentinel_fetch.cli.render import total_size

    config = context.config(
        {
            "save_path": save_path,
            "temp_dir": temp_dir,
            "finish_dir": finish_dir,
            "workers": workers,
            "proxy": proxy,
            "ca_bundle": ca_bundle,
        }
    )
    settings = config.settings()
    if not dry_run:
        _check_folders(settings)
    rejected: list[RejectedEntry] = []
    prepare_search(context, options)
    since = _published_watermark(context, settings) if only_new else None
    if since is not None:
        from sentinel_fetch.catalogue.filter import format_datetime

        # The catalogue does the cutting, so a nightly run asks only for what is new.
        published = f"PublicationDate gt {format_datetime(since)}"
        options["extra_filter"] = (*(options.get("extra_filter") or ()), published)
    triage = {name: options.pop(name) for name in TRIAGE_OPTIONS}
    query = query_from_options(options, settings, required=False)
    check_triage(query, triage)
    wanted = _collect(settings, products, from_files, retry_failed, options, rejected)
    if since is not None:
        # Saved results and names were not cut by the catalogue: the same rule here.
        wanted = [p for p in wanted if p.publication_date is None or p.publication_date > since]
    wanted = apply_triage(context, wanted, query, triage)
    if keep_zip and not unzip:
        raise click.UsageError("--keep-zip goes with --unzip")
    wanted = _without_extracted(context, settings, wanted)
    unreadable = _unreadable_results(rejected)
    if not wanted:
        context.info("nothing to download" + ("" if retry_failed else ": no product matched"))
        return _report_problems(settings, unreadable)
    sizes = [product.size for product in wanted]
    context.info(f"{len(wanted)} products, {total_size(sizes)}; saving to {settings.finish_path}")
    if dry_run:
        return _dry_run(context, settings, wanted)

    from sentinel_fetch.api import download as run_download
    from sentinel_fetch.cli.render import BarProgress, LogProgress

    credentials = context.credentials(config, totp=totp)
    if context.interactive:
        from rich.console import Console

        with BarProgress(Console(stderr=True)) as bars:
            report = run_download(wanted, settings=settings, credentials=credentials, progress=bars)
    else:
        report = run_download(
            wanted,
            settings=settings,
            credentials=credentials,
            progress=None if context.quiet else LogProgress(),
        )
    status = _summarise(context, settings, report, unreadable)
    if unzip and not report.interrupted and not _extract_all(context, settings, report, keep_zip):
        return max(status, 1)
    return status


def _check_folders(settings: Settings) -> None:
    """Refuse now, before a search and a login, what the run would refuse later.

    The run itself checks again and locks the folders (``api.download``); this only
    spares the wait, and creates nothing.
    """
    from sentinel_fetch.api import run_folders
    from sentinel_fetch.downloads.folderlock import FolderLock
    from sentinel_fetch.downloads.paths import Layout

    Layout(settings.temp_path, settings.finish_path).check()
    FolderLock.check_free(run_folders(settings))


def _without_extracted(
    context: CliContext, settings: Settings, wanted: list[Product]
) -> list[Product]:
    """Products an earlier ``--unzip`` run extracted are done, zip or no zip."""
    from sentinel_fetch.downloads.unzip import is_extracted

    finish = settings.finish_path
    if not finish.is_dir():
        return wanted
    left = [p for p in wanted if not is_extracted(finish, p.name, p.id)]
    if len(left) < len(wanted):
        context.info(f"{len(wanted) - len(left)} products already extracted in {finish}")
    return left


def _extract_all(
    context: CliContext, settings: Settings, report: BatchReport, keep_zip: bool
) -> bool:
    """``--unzip``: extract every verified zip; ``False`` if one could not be."""
    from sentinel_fetch.downloads.unzip import extract_product
    from sentinel_fetch.errors import SentinelFetchError
    from sentinel_fetch.text import printable

    ok = True
    for result in report.results:
        path = result.path
        if result.status not in ("downloaded", "skipped") or path is None:
            continue
        if path.suffix.lower() != ".zip":
            continue
        try:
            folder = extract_product(
                path, settings.finish_path, result.product.name, result.product.id
            )
        except SentinelFetchError as error:
            # Even with -q: the product is verified but not where the user asked.
            click.echo(f"cannot unzip {printable(result.product.name)}: {error}", err=True)
            ok = False
            continue
        if not keep_zip:
            path.unlink(missing_ok=True)
        context.info(f"extracted {folder.name}")
    return ok


def _published_watermark(context: CliContext, settings: Settings) -> Any:
    """``--new``: the newest publication date among the products this folder's ledger
    knows (every product an earlier run's search found is recorded, whatever its state).
    ``None`` without an earlier run: then everything that matches is new."""
    from sentinel_fetch.catalogue.product import Product
    from sentinel_fetch.ledger import LEDGER_FILE_NAME, STATES, JobLedger

    if not (settings.save_path / LEDGER_FILE_NAME).is_file():
        context.info("--new: no earlier run in this save folder, so every match is new")
        return None
    # A damaged ledger is an error to show, never a reason to fetch everything again.
    with JobLedger.open(settings.save_path, read_only=True) as ledger:
        entries = ledger.product_dicts(STATES)
    dates = [
        product.publication_date
        for product in (Product.from_dict(entry) for entry in entries)
        if product.publication_date is not None
    ]
    if not dates:
        context.info("--new: the ledger knows no publication date, so every match is new")
        return None
    newest = max(dates)
    context.info(f"--new: only products published after {newest:%Y-%m-%d %H:%M:%S} UTC")
    return newest


def _read_pipe() -> tuple[list[Product], Any]:
    """``--from -``: standard input, bounded like a list file."""
    import sys

    from sentinel_fetch.catalogue.piped import read_piped
    from sentinel_fetch.catalogue.results import MAX_NAME_LIST_BYTES
    from sentinel_fetch.errors import ResultFileError

    if sys.stdin is None or sys.stdin.isatty():
        raise click.UsageError("--from - reads a pipe: sentinel-fetch search ... | ... --from -")
    text = sys.stdin.read(MAX_NAME_LIST_BYTES + 1)
    if len(text) > MAX_NAME_LIST_BYTES:
        raise ResultFileError(f"the input is over {MAX_NAME_LIST_BYTES // 1_000_000} MB")
    return read_piped(text)


def _collect(
    settings: Settings,
    names_or_ids: tuple[str, ...],
    from_files: tuple[str, ...],
    retry_failed: bool,
    options: dict[str, Any],
    rejected: list[RejectedEntry],
) -> list[Product]:
    """Every product asked for, in order, without duplicates.

    Catalogue entries the searches could not read are added to ``rejected``.
    """
    from sentinel_fetch.api import search as run_search
    from sentinel_fetch.catalogue.query import build_query
    from sentinel_fetch.catalogue.results import read_name_list, read_products

    collected: list[Product] = []
    query = query_from_options(
        options, settings, required=not (names_or_ids or from_files or retry_failed)
    )

    def found_by(search_query: Any) -> list[Product]:
        result = run_search(search_query, settings=settings)
        products = list(result)
        rejected.extend(entry for entry in result.rejected if entry not in rejected)
        return products

    if query is not None:
        collected.extend(found_by(query))
    for file in from_files:
        if file == "-":
            piped, listed = _read_pipe()
            collected.extend(piped)
            if listed is not None:
                collected.extend(found_by(listed))
        elif Path(file).suffix.lower() == ".txt":
            collected.extend(found_by(read_name_list(file)))
        else:
            collected.extend(read_products(file))
    if names_or_ids:
        ids = [value for value in names_or_ids if _is_uuid(value)]
        names = [value for value in names_or_ids if not _is_uuid(value)]
        found = found_by(build_query(names=names, ids=ids))
        known = {p.id for p in found} | {p.name for p in found}
        # A name whose entry was unreadable is in the catalogue: it is reported as failed.
        known |= {value for entry in rejected for value in (entry.id, entry.name) if value}
        missing = [
            value for value in names_or_ids if value.lower() not in known and value not in known
        ]
        if missing:
            raise click.BadParameter(
                f"not in the catalogue: {', '.join(missing[:5])}"
                + (f" and {len(missing) - 5} more" if len(missing) > 5 else ""),
                param_hint="NAME_OR_ID",
            )
        collected.extend(found)
    if retry_failed:
        collected.extend(_failed_products(settings.save_path))
    unique: dict[str, Product] = {}
    for product in collected:
        unique.setdefault(product.id, product)
    return list(unique.values())


def _failed_products(save_path: Path) -> list[Product]:
    """The catalogue entries the ledger stored for the products that failed."""
    from sentinel_fetch.catalogue.product import Product
    from sentinel_fetch.errors import LedgerFileError, ResultFileError
    from sentinel_fetch.ledger import LEDGER_FILE_NAME, JobLedger

    with JobLedger.open(save_path, read_only=True) as ledger:
        entries = ledger.product_dicts(["failed"])
    products = []
    for entry in entries:
        try:
            products.append(Product.from_dict(entry))
        except ResultFileError:
            which = entry.get("id") or entry.get("name") or "(no id)"
            raise LedgerFileError(
                f"the job ledger {save_path / LEDGER_FILE_NAME} holds a damaged catalogue entry"
                f" for product {str(which)[:80]}: it was changed by something other than"
                " sentinel-fetch"
            ) from None
    return products


def _is_uuid(value: str) -> bool:
    try:
        uuid.UUID(value)
    except ValueError:
        return False
    return True


def _dry_run(context: CliContext, settings: Settings, products: list[Product]) -> int:
    from sentinel_fetch.cli.render import human_bytes
    from sentinel_fetch.downloads.engine import is_offline
    from sentinel_fetch.downloads.paths import Layout, assign_file_names
    from sentinel_fetch.ledger import LEDGER_FILE_NAME, JobLedger
    from sentinel_fetch.text import printable

    layout = Layout(settings.temp_path, settings.finish_path)
    recorded: dict[str, str] = {}
    if (settings.save_path / LEDGER_FILE_NAME).exists():
        with JobLedger.open(settings.save_path, read_only=True) as ledger:
            recorded = ledger.file_names()
    # The names the run would use: those the ledger recorded, else the same rule.
    file_names = assign_file_names(((p.id, p.file_name) for p in products), recorded)
    to_fetch = 0
    for product in products:
        finished = layout.finished(file_names[product.id])
        partial = layout.partial(file_names[product.id])
        # The run's own rule: only a product known to be offline is left out.
        if is_offline(product):
            action = "offline (order in the Data Workspace)"
        elif finished.exists() and (not product.size or finished.stat().st_size == product.size):
            action = "skip (already verified)"
        elif partial.exists():
            action = f"resume ({human_bytes(partial.stat().st_size)} on disk)"
            to_fetch += product.size - partial.stat().st_size
        else:
            action = "fetch"
            to_fetch += product.size
        click.echo(f"{action:<40} {printable(product.name)}  {human_bytes(product.size)}")
    context.info(f"dry run: {human_bytes(max(to_fetch, 0))} would be fetched")
    return 0


def _unreadable_results(rejected: list[RejectedEntry]) -> list[ProductResult]:
    """Catalogue entries no search could read, as failed products of the report."""
    from sentinel_fetch.catalogue.product import Product
    from sentinel_fetch.downloads.engine import ProductResult

    return [
        ProductResult(
            Product(id=entry.id or "", name=entry.name or ""),
            "failed",
            error=f"the catalogue entry could not be read: {entry.reason}",
        )
        for entry in rejected
    ]


def _report_problems(settings: Settings, problems: list[ProductResult]) -> int:
    """Write the report of products that were not downloaded; the exit status."""
    report_path = settings.save_path / REPORT_FILE
    if not problems:
        return 0
    _write_report(report_path, problems)
    click.echo(f"not downloaded, with reasons: {report_path}", err=True)
    return 1


def _summarise(
    context: CliContext,
    settings: Settings,
    report: BatchReport,
    unreadable: list[ProductResult],
) -> int:
    from sentinel_fetch.cli.render import human_bytes

    parts = [
        f"{report.count('downloaded')} downloaded",
        f"{report.count('skipped')} already done",
    ]
    for status in ("failed", "offline", "stopped"):
        if report.count(status):
            parts.append(f"{report.count(status)} {status}")
    if unreadable:
        noun = "entry" if len(unreadable) == 1 else "entries"
        parts.append(f"{len(unreadable)} unreadable catalogue {noun}")
    rate = report.bytes_received / report.elapsed_s if report.elapsed_s > 0 else 0.0
    context.info(
        f"{', '.join(parts)}; {human_bytes(report.bytes_received)} in {report.elapsed_s:.0f} s "
        f"({human_bytes(rate)}/s), {report.logins} login(s)"
    )
    problems = unreadable + [
        r for r in report.results if r.status in ("failed", "offline", "stopped")
    ]
    report_path = settings.save_path / REPORT_FILE
    if problems:
        _write_report(report_path, problems)
        # Even with -q: the user must know something is missing and where the list is.
        click.echo(f"not downloaded, with reasons: {report_path}", err=True)
        if report.count("failed") or report.count("stopped"):
            context.info("rerun the same command to retry (finished products are skipped)")
    else:
        # A report from an earlier run would describe problems that no longer exist.
        for stale in (report_path, report_path.with_suffix(".json")):
            stale.unlink(missing_ok=True)
    if report.interrupted:
        from sentinel_fetch.cli.stopping import interrupted_exit_status

        return interrupted_exit_status()
    offline = report.count("offline")
    if offline and offline == len(report.results) and not unreadable:
        # Even with -q: a cron job's run that fetched nothing must not look like success.
        click.echo(
            f"nothing could be downloaded: all {offline} products are offline "
            "(order them in the CDSE Data Workspace, then rerun)",
            err=True,
        )
        return EXIT_ALL_OFFLINE
    return 0 if report.ok and not unreadable else 1


def _write_report(path: Path, problems: list[Any]) -> None:
    """A CSV a user can act on: what, why, and what to do; the same as JSON for programs.

    Reasons quote servers, so they are masked in both files. CSV cells are guarded so a
    spreadsheet shows a name like ``=HYPERLINK(...)`` rather than evaluating it; the
    JSON keeps names exact.
    """
    from sentinel_fetch.redact import redact
    from sentinel_fetch.text import spreadsheet_cell

    advice = {
        "failed": "rerun to retry; if it keeps failing, see the reason",
        "offline": "order it in the CDSE Data Workspace, then rerun",
        "stopped": "rerun to resume",
    }
    rows = [
        {
            "name": r.product.name,
            "id": r.product.id,
            "status": r.status,
            "reason": redact(r.error) if r.error else None,
            "attempts": r.attempts,
            "advice": advice[r.status],
        }
        for r in problems
    ]
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["name", "id", "status", "reason", "attempts", "what to do"])
        for row in rows:
            writer.writerow(
                [spreadsheet_cell("" if value is None else value) for value in row.values()]
            )
    path.with_suffix(".json").write_text(json.dumps(rows, indent=2), encoding="utf-8")
