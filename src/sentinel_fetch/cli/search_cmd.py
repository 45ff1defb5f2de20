"""``sentinel-fetch search``: every matching product, as a table, a file, or NDJSON."""

from __future__ import annotations

import itertools
import sys
from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING, Any

import click

from sentinel_fetch.cli.context import CliContext
from sentinel_fetch.cli.options import Command, network_options, query_from_options, search_options
from sentinel_fetch.cli.triage import (
    prepare_search,
    report_drops,
    triage_from_options,
    triage_options,
)

if TYPE_CHECKING:
    from sentinel_fetch.client import Product

__all__ = ["search"]


@click.command(cls=Command)
@search_options
@triage_options
@network_options
@click.option(
    "-o",
    "--output",
    type=click.Path(dir_okay=False),
    help="Save the results: .json (for 'download --from'), .geojson (footprints for QGIS), "
    ".csv, .txt (names), or .stac.json (a STAC ItemCollection with every band as an asset, "
    "for pystac, odc-stac, stackstac).",
)
@click.option("--count", "count_only", is_flag=True, help="Only count the matching products.")
@click.option(
    "--map",
    "map_file",
    type=click.Path(dir_okay=False),
    help="Draw the footprints and the area: .html (a page that works offline) or .png.",
)
@click.pass_obj
def search(
    context: CliContext,
    /,
    output: str | None,
    count_only: bool,
    map_file: str | None,
    proxy: str | None,
    ca_bundle: str | None,
    **options: Any,
) -> int:
    """Search the CDSE catalogue and list every matching product.

    Give a search as a URL copied from the Copernicus Browser (--url or --url-file), as
    options, or both (options refine the URL). All results are fetched, past the
    browser's 50 per page and the catalogue's 10,000 paging limit.

    On a terminal the results are a table; piped, they are one JSON object per line.

    \b
    Examples:
      sentinel-fetch search --url-file SearchURL.txt --output results.json
      sentinel-fetch search -c S2 -t L2A -s 2023-06-01 -e 2023-06-30 \\
          --area 11,46,12,47 --cloud 20
      sentinel-fetch search -c S1 -t GRD --area aoi.geojson -s 2024-01-01 --count
      sentinel-fetch search -c S2 -t L2A --area 11,46,12,47 -s 2020-06-01 -e 2020-06-30 \\
          --dedupe --min-coverage 50 --map footprints.html
    """
    from sentinel_fetch.cli.render import total_size
    from sentinel_fetch.cli.search_progress import search_progress

    config = context.config({"proxy": proxy, "ca_bundle": ca_bundle})
    prepare_search(context, options)
    query = query_from_options(options, config.settings())
    assert query is not None
    tally = _Tally()
    triage = triage_from_options(query, options)
    if map_file:
        from sentinel_fetch.client import check_map_path

        check_map_path(map_file)
    with context.client(config) as client:
        result = client.search(query)
        if count_only:
            click.echo(result.count())
            return 0
        # Every output takes the products as the catalogue sends them: memory does not
        # grow with the listing. Dedupe, coverage, sort and the map need every result
        # before the cut, so only they hold the listing (and the terminal's table, to lay
        # it out); those are drawn once the live progress line is gone, and so is every
        # message (printed under it, the two would share a line).
        wrote: str | None = None
        kept: list[Product] | None = None
        held: list[Product] | None = None
        needs_all = triage.needs_every_product or map_file
        table = not output and sys.stdout.isatty()
        with search_progress(context.interactive, context.quiet) as progress:
            result.progress = progress
            listed: Iterable[Product] = result
            if triage.limit is not None and not needs_all:
                listed = itertools.islice(result, triage.limit)
            if needs_all or table:
                held = list(listed)
            else:
                wrote = _emit(client, tally.counting(listed), output, query, tally)
        if held is not None:
            if needs_all:
                kept = report_drops(context, client.triage(held, triage, query.area))
                held = kept
            wrote = _emit(client, tally.counting(held), output, query, tally)
        if wrote:
            context.info(wrote)
        if map_file:
            from sentinel_fetch.client import write_map

            assert kept is not None
            context.info(f"map of {len(kept)} products: {write_map(kept, map_file, query.area)}")

    summary = f"{tally.products} products, {total_size(tally.sizes())}"
    if tally.offline:
        summary += (
            f", {tally.offline} offline (order them in the CDSE Data Workspace before downloading)"
        )
    if len(result.windows) > 1:
        summary += f"; the search was split into {len(result.windows)} time windows"
    context.info(summary)
    if result.rejected:
        # Even with -q: the list above misses what the catalogue holds under these entries.
        click.echo(_unreadable(result.rejected), err=True)
        return 1
    return 0


def _emit(
    client: Any, products: Iterable[Product], output: str | None, query: Any, tally: _Tally
) -> str | None:
    """Write the products where asked (a file, the terminal's table, NDJSON on stdout).

    Returns:
        The line saying what was written to a file, else None.
    """
    from sentinel_fetch.client import ndjson_line, write_products

    if output and output.lower().endswith(".stac.json"):
        path, from_stac = client.write_item_collection(products, output)
        return f"wrote {tally.products} STAC items to {path} ({from_stac} from the STAC catalogue)"
    if output:
        path = write_products(products, output, query=query)
        return f"wrote {tally.products} products to {path}"
    if sys.stdout.isatty():
        _print_table(list(products))
    else:
        for product in products:
            sys.stdout.write(ndjson_line(product))
    return None


class _Tally:
    """The summary's figures, counted as products pass on their way to the output."""

    def __init__(self) -> None:
        self.products = 0
        self.offline = 0
        self.total_bytes = 0
        self.unknown_sizes = 0

    def counting(self, products: Iterable[Product]) -> Iterator[Product]:
        from sentinel_fetch.client import is_offline

        for product in products:
            self.products += 1
            self.offline += is_offline(product)
            if product.size > 0:
                self.total_bytes += product.size
            else:
                self.unknown_sizes += 1
            yield product

    def sizes(self) -> list[int]:
        """What ``total_size`` reads: the known total and a 0 per unknown size."""
        known = [self.total_bytes] if self.total_bytes else []
        return known + [0] * self.unknown_sizes


def _unreadable(rejected: list[Any]) -> str:
    """``N entries could not be read: name (reason); ...`` for stderr."""
    shown = "; ".join(
        f"{entry.name or entry.id or '(no name)'} ({entry.reason})" for entry in rejected[:5]
    )
    more = f"; and {len(rejected) - 5} more" if len(rejected) > 5 else ""
    noun = "entry" if len(rejected) == 1 else "entries"
    return f"{len(rejected)} catalogue {noun} could not be read: {shown}{more}"


def _print_table(products: list[Any]) -> None:
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    from sentinel_fetch.cli.render import human_bytes
    from sentinel_fetch.text import printable

    table = Table(show_lines=False, header_style="bold")
    table.add_column("name", overflow="fold")
    table.add_column("sensing (UTC)", no_wrap=True)
    table.add_column("size", justify="right", no_wrap=True)
    table.add_column("cloud %", justify="right")
    table.add_column("online", justify="center")
    for product in products:
        cloud = product.cloud_cover
        table.add_row(
            # Text, not markup: the name is the server's, it may hold "[" and escapes.
            Text(printable(product.name)),
            product.content_start.strftime("%Y-%m-%d %H:%M") if product.content_start else "",
            human_bytes(product.size) if product.size else "?",
            f"{cloud:.1f}" if cloud is not None else "",
            {True: "yes", False: "[yellow]no[/]", None: "?"}[product.online],
        )
    Console().print(table)
