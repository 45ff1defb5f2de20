"""``sentinel-fetch download``: a search, a saved result or names in; verified files out."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

import click

from sentinel_fetch.cli.context import CliContext
from sentinel_fetch.cli.options import (
    Command,
    finish_dir_option,
    ledger_option,
    network_options,
    out_option,
    query_from_options,
    quota_stop_option,
    search_options,
    selection_options,
    shard_option,
    totp_option,
)
from sentinel_fetch.cli.triage import (
    prepare_search,
    report_drops,
    triage_from_options,
    triage_options,
)

if TYPE_CHECKING:
    from datetime import datetime

    from sentinel_fetch.client import BatchReport, Client, PlannedProduct, Product, Shard

__all__ = ["EXIT_ALL_OFFLINE", "download"]

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
@out_option(help="Save folder (default: ./sentinel-data).")
@click.option(
    "--temp-dir", type=click.Path(file_okay=False), help="In-progress files (default: <out>/Temp)."
)
@finish_dir_option("Verified products (default: <out>/Finish).")
@click.option(
    "-w",
    "--workers",
    # Its range (1-32) is checked with every other setting, wherever it was set.
    type=int,
    help="Products at once, 1-32 (default 4: a free CDSE account allows 4 connections).",
)
@selection_options
@network_options
@totp_option
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
@ledger_option
@shard_option
@quota_stop_option
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
    bands: tuple[str, ...],
    files: tuple[str, ...],
    preset: str | None,
    ledger: str | None,
    shard: Shard | None,
    quota_stop: str | None,
    **options: Any,
) -> int:
    """Download products into <out>/Finish, verified against the catalogue's checksums.

    Products come from search options or a Copernicus Browser URL (as for 'search'),
    from saved results (--from), from names or ids given as arguments, or from the
    failures of an earlier run (--retry-failed); all of these can be combined.

    Files arrive in <out>/Temp as .part files and move to <out>/Finish only once their
    size and BLAKE3/MD5 checksum match. Rerunning the same command fetches only what is
    missing: finished products are skipped without a request, partial ones resume.

    Behind a proxy, add --proxy socks5h://127.0.0.1:7890 (or http://host:port).

    \b
    Examples:
      sentinel-fetch download --url-file SearchURL.txt --out data
      sentinel-fetch download --from results.json --workers 2 --out data
      sentinel-fetch download S2A_MSIL2A_20230704T101427_N0509_R051_T32TPS_20230704T122703.SAFE
      sentinel-fetch download --out data --retry-failed
      sentinel-fetch download --from results.json --out data --bands B04,B08,SCL
      sentinel-fetch download --from results.json --out data --preset metadata
    """
    from sentinel_fetch.cli.render import total_size
    from sentinel_fetch.client import Selection
    from sentinel_fetch.errors import ProductNotFoundError

    config = context.config(
        {
            "save_path": save_path,
            "temp_dir": temp_dir,
            "finish_dir": finish_dir,
            "workers": workers,
            "proxy": proxy,
            "ca_bundle": ca_bundle,
            "download.bands": list(bands) or None,
            "download.files": list(files) or None,
            "download.preset": preset,
            "download.quota_stop": quota_stop,
            "ledger": ledger,
        }
    )
    # The options, else the config file's [download] table.
    picked = {name: config.values.get(f"download.{name}") for name in ("bands", "files", "preset")}
    # Checked before any search or login: a misspelt band is the user's to fix now.
    file_selection = Selection.build(**picked)
    settings = config.settings()
    team: dict[str, Any] = {}
    stop_at = config.values.get("download.quota_stop")
    if stop_at is not None:
        team["quota_stop"] = _checked_quota_stop(stop_at, config, settings.quota_bytes)
    if keep_zip and not unzip:
        raise click.UsageError("--keep-zip goes with --unzip")
    prepare_search(context, options)
    query = query_from_options(
        options, settings, required=not (products or from_files or retry_failed)
    )
    triage = triage_from_options(query, options)
    result_files = [file for file in from_files if file != "-"]
    piped = _pipe() if "-" in from_files else None
    with context.client(config, totp=totp) as client:
        if not dry_run:
            client.check_folders()
        if not dry_run and query is not None:
            # The login's round trips overlap the search: the first request finds a token.
            client.log_in_ahead()
        since = _since(context, client) if only_new else None
        try:
            selection = client.products(
                query,
                names=products,
                files=result_files,
                retry_failed=retry_failed,
                piped=piped,
                published_after=since,
            )
        except ProductNotFoundError as exc:
            raise click.BadParameter(str(exc), param_hint="NAME_OR_ID") from None
        area = query.area if query is not None else None
        wanted = report_drops(context, client.triage(selection.products, triage, area))
        if shard is not None:
            from sentinel_fetch.client import shard_of

            everything = len(wanted)
            wanted = shard_of(wanted, shard)
            context.info(f"shard {shard}: {len(wanted)} of the {everything} products")
        extracted = {product.id for product in client.extracted(wanted)}
        if extracted:
            context.info(f"{len(extracted)} products already extracted in {settings.finish_path}")
            wanted = [product for product in wanted if product.id not in extracted]
        if not wanted:
            context.info("nothing to download" + ("" if retry_failed else ": no product matched"))
            if not selection.rejected:
                return 0
            _tell_report(client.write_report(None, selection.rejected))
            return 1
        sizes = [product.size for product in wanted]
        context.info(
            f"{len(wanted)} products, {total_size(sizes)}; saving to {settings.finish_path}"
        )
        if dry_run:
            if file_selection is not None:
                context.info(
                    f"dry run: sizes are those of whole products; only "
                    f"{file_selection.describe()} would be fetched (listed by STAC at the run)"
                )
            return _dry_run(context, client.plan(wanted))
        chosen: dict[str, Any] = {}
        if file_selection is not None:
            context.info(f"only these files of each product: {file_selection.describe()}")
            chosen = picked
        report = _run(context, client, wanted, **chosen, **team)
        status = _summarise(
            context,
            report,
            client.write_report(report, selection.rejected),
            len(selection.rejected),
        )
        if unzip and not report.interrupted and not _extract_all(context, client, report, keep_zip):
            return max(status, 1)
        return status


def _checked_quota_stop(value: object, config: Any, quota_bytes: int) -> str | int:
    """The config file's ``[download] quota_stop`` (or the option's) against the account's
    quota (``[account] quota``), or a usage error, before any search or login."""
    from sentinel_fetch.client import parse_quota_stop

    if isinstance(value, bool) or not isinstance(value, (str, int)):
        raise click.UsageError(
            f'download.quota_stop must be a share ("95%") or a number of bytes, got {value!r}'
        )
    try:
        parse_quota_stop(value, quota_bytes)
    except ValueError as exc:
        where = config.sources.get("download.quota_stop", "")
        raise click.UsageError(f"download.quota_stop: {exc} ({where})") from None
    return value


def _run(context: CliContext, client: Client, wanted: list[Product], **chosen: Any) -> BatchReport:
    """The download, with bars on a terminal or a log line now and then elsewhere."""
    from sentinel_fetch.cli.render import BarProgress, LogProgress

    if context.interactive:
        from rich.console import Console

        with BarProgress(Console(stderr=True)) as bars:
            return client.download(wanted, progress=bars, **chosen)
    return client.download(wanted, progress=None if context.quiet else LogProgress(), **chosen)


def _pipe() -> TextIO:
    """``--from -``: standard input, which must be a pipe (the Client bounds what it reads)."""
    import sys

    if sys.stdin is None or sys.stdin.isatty():
        raise click.UsageError("--from - reads a pipe: sentinel-fetch search ... | ... --from -")
    return sys.stdin


def _since(context: CliContext, client: Client) -> datetime | None:
    """``--new``: the newest publication date the save folder's ledger knows, told."""
    newest = client.newest_publication()
    if newest is None:
        context.info(
            "--new: no earlier run in this save folder knows a publication date, "
            "so every match is new"
        )
    else:
        context.info(f"--new: only products published after {newest:%Y-%m-%d %H:%M:%S} UTC")
    return newest


def _extract_all(context: CliContext, client: Client, report: BatchReport, keep_zip: bool) -> bool:
    """``--unzip``: extract every verified zip; ``False`` if one could not be."""
    from sentinel_fetch.text import printable

    ok = True
    for done in client.extract(report, keep_zip=keep_zip):
        if done.folder is None:
            # Even with -q: the product is verified but not where the user asked.
            click.echo(f"cannot unzip {printable(done.product.name)}: {done.problem}", err=True)
            ok = False
        else:
            context.info(f"extracted {done.folder.name}")
    return ok


def _dry_run(context: CliContext, planned: list[PlannedProduct]) -> int:
    from sentinel_fetch.cli.render import human_bytes
    from sentinel_fetch.client import Action
    from sentinel_fetch.text import printable

    for item in planned:
        action = {
            Action.OFFLINE: "offline (order in the Data Workspace)",
            Action.SKIP: "skip (already verified)",
            Action.RESUME: f"resume ({human_bytes(item.on_disk_bytes)} on disk)",
            Action.FETCH: "fetch",
            Action.CONFLICT: "conflict (another file of its name in Finish)",
        }[item.action]
        product = item.product
        click.echo(f"{action:<40} {printable(product.name)}  {human_bytes(product.size)}")
    to_fetch = sum(item.bytes_to_fetch for item in planned)
    context.info(f"dry run: {human_bytes(to_fetch)} would be fetched")
    return 0


def _tell_report(path: Path | None) -> None:
    if path is not None:
        # Even with -q: the user must know something is missing and where the list is.
        click.echo(f"not downloaded, with reasons: {path}", err=True)


def _summarise(
    context: CliContext, report: BatchReport, report_path: Path | None, unreadable: int
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
        noun = "entry" if unreadable == 1 else "entries"
        parts.append(f"{unreadable} unreadable catalogue {noun}")
    rate = report.bytes_received / report.elapsed_s if report.elapsed_s > 0 else 0.0
    context.info(
        f"{', '.join(parts)}; {human_bytes(report.bytes_received)} in {report.elapsed_s:.0f} s "
        f"({human_bytes(rate)}/s), {report.logins} login(s)"
    )
    for result in report.results:
        if result.unverified:
            # Even with -q: a file nothing could verify is never accepted silently.
            shown = ", ".join(result.unverified[:3])
            more = f" and {len(result.unverified) - 3} more" if len(result.unverified) > 3 else ""
            click.echo(
                f"warning: {result.product.name}: no checksum anywhere (STAC, manifest.safe) "
                f"for {shown}{more}: checked by size only",
                err=True,
            )
    if report.stopped_because:
        # Even with -q: products were left queued on purpose, and why must be said.
        click.echo(f"stopped early: {report.stopped_because}", err=True)
    _tell_report(report_path)
    if report_path is not None and (report.count("failed") or report.count("stopped")):
        context.info("rerun the same command to retry (finished products are skipped)")
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
