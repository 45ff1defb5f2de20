"""``sentinel-fetch quicklooks``: every result's preview image, and a contact sheet."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from sentinel_fetch.cli.context import CliContext
from sentinel_fetch.cli.options import Command, network_options, query_from_options, search_options
from sentinel_fetch.cli.triage import (
    prepare_search,
    report_drops,
    triage_from_options,
    triage_options,
)

__all__ = ["quicklooks"]

# Past this many, the missing ones are counted, not listed.
_LISTED_MISSING = 20


@click.command(cls=Command)
@search_options
@triage_options
@network_options
@click.option(
    "--out",
    "out_dir",
    required=True,
    type=click.Path(file_okay=False),
    help="Folder for the images and contact-sheet.png (created if missing).",
)
@click.pass_obj
def quicklooks(
    context: CliContext,
    /,
    out_dir: str,
    proxy: str | None,
    ca_bundle: str | None,
    **options: Any,
) -> int:
    """Fetch the quicklook of every matching product and draw a contact sheet.

    The search is given as for 'search' (a Copernicus Browser URL, options, or both).
    Quicklooks need no CDSE account. They are saved as <name>-ql.jpg/.png in --out,
    and contact-sheet.png shows them as a grid in the result order, each labelled with
    its date, tile or orbit, cloud cover and a short name (contact-sheet-2.png and so
    on past 48 products). Products without a quicklook are listed and keep a grey cell.

    \b
    Examples:
      sentinel-fetch quicklooks -c S2 -t L2A --area 11,46,12,47 -s 2023-06-01 \\
          -e 2023-06-30 --out looks
      sentinel-fetch quicklooks --url-file SearchURL.txt --dedupe --out looks
    """
    from sentinel_fetch.text import printable

    config = context.config({"proxy": proxy, "ca_bundle": ca_bundle})
    prepare_search(context, options)
    query = query_from_options(options, config.settings())
    assert query is not None
    triage = triage_from_options(query, options)
    folder = Path(out_dir)
    with context.client(config) as client:
        products = report_drops(context, client.triage(client.search(query), triage, query.area))
        looks = client.quicklooks(products, folder)
        sheets = client.contact_sheets(looks, folder)
    missing = [look for look in looks if look.path is None]
    for look in missing[:_LISTED_MISSING]:
        context.info(f"no quicklook for {printable(look.product.name)}: {look.problem}")
    if len(missing) > _LISTED_MISSING:
        context.info(f"... and {len(missing) - _LISTED_MISSING} more without a quicklook")
    context.info(
        f"{len(looks) - len(missing)} of {len(looks)} quicklooks saved in {folder}; "
        + ", ".join(str(path) for path in sheets)
    )
    return 0
