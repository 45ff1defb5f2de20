"""Options that shape search results before anything is fetched: one place for all.

``--dedupe`` drops reprocessed twins, ``--min-coverage`` footprints that barely touch
the area, ``--sort`` orders what is left and ``--limit`` cuts it (the Client does it:
:meth:`sentinel_fetch.Client.triage`); ``--last 7d`` (like ``--start 7d``) asks for a
window back from now. Every product left out is named on stderr with its reason (also
with ``--dry-run``); nothing disappears silently. ``search``, ``download`` and
``quicklooks`` share them.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any, TypeVar

import click

from sentinel_fetch.cli.context import CliContext

if TYPE_CHECKING:
    from sentinel_fetch.client import Product, Query, Triage, TriageOutcome

__all__ = [
    "SORT_ORDERS",
    "TRIAGE_OPTIONS",
    "prepare_search",
    "report_drops",
    "triage_from_options",
    "triage_options",
]

F = TypeVar("F", bound=Callable[..., Any])

#: Names of the keyword arguments these options add (the commands pass them on here).
TRIAGE_OPTIONS = ("dedupe", "min_coverage", "sort", "limit")
#: ``--sort`` values: least cloudy first, oldest first, newest first (the library's
#: :data:`sentinel_fetch.catalogue.triage.SORT_ORDERS`; named here so that ``--help``
#: loads no catalogue code).
SORT_ORDERS = ("cloud", "date", "-date")

# Past this many, the list of drops is cut (the count is always complete).
_LISTED_DROPS = 50


def triage_options(function: F) -> F:
    """Decorate a command with ``--dedupe``, ``--min-coverage``, ``--sort``, ``--limit``
    and ``--last``."""
    options = [
        click.option(
            "--dedupe",
            is_flag=True,
            help="Keep one product per datatake and tile: Collection-1 or the highest "
            "baseline, then ESA over CloudFerro, then the latest processing. Partial tiles "
            "whose footprints differ all stay. What is dropped is listed, with why.",
        ),
        click.option(
            "--min-coverage",
            type=click.FloatRange(0, 100),
            metavar="PCT",
            help="Keep products whose footprint covers at least PCT % of --area.",
        ),
        click.option(
            "--sort",
            type=click.Choice(SORT_ORDERS),
            help="cloud: least cloudy first (none last); date: oldest first; -date: newest first.",
        ),
        click.option(
            "--limit",
            type=click.IntRange(min=1),
            help="Only the first N products (after --dedupe, --min-coverage and --sort).",
        ),
        click.option(
            "--last",
            metavar="AGE",
            help="Sensed in the last AGE: 12h, 7d, 2w (the same as --start 7d).",
        ),
    ]
    for option in reversed(options):
        function = option(function)
    return function


def prepare_search(
    context: CliContext, options: dict[str, Any], now: datetime | None = None
) -> None:
    """Read the search options people get wrong before any request.

    ``--last AGE`` becomes ``--start AGE`` (the query reads ages such as ``30d``
    itself; ``options`` is changed in place); a product type the catalogue is not known to
    hold is pointed out with the closest known ones (it is still searched: CDSE has
    more types than we list).

    Raises:
        click.UsageError: ``--last`` with ``--start``, or a relative date that names no time.
    """
    from sentinel_fetch.client import parse_relative, suggest_product_types

    for given in options.get("product_type") or ():
        for value in (part.strip() for part in given.split(",")):
            close = suggest_product_types(value) if value else None
            if close is not None:
                hint = f": did you mean {' or '.join(close)}?" if close else ""
                context.info(f"warning: no product type {value!r} is known{hint}")

    moment = now or datetime.now(timezone.utc)
    last = options.pop("last", None)
    if last is not None:
        if options.get("start"):
            raise click.UsageError("give --last or --start, not both")
        try:
            valid = parse_relative(last, moment) is not None
        except ValueError as error:
            raise click.UsageError(f"--last: {error}") from None
        if not valid:
            raise click.UsageError(f"--last takes an age such as 12h, 7d or 2w, not {last!r}")
        # The query reads ages itself (one instant for both bounds): --last 7d is --start 7d.
        options["start"] = last


def triage_from_options(query: Query | None, options: dict[str, Any]) -> Triage:
    """Take the triage options out of ``options`` (in place) and check them before any
    search.

    Raises:
        click.UsageError: ``--min-coverage`` without an area to measure against.
    """
    from sentinel_fetch.client import Triage

    values = {name: options.pop(name, None) for name in TRIAGE_OPTIONS}
    triage = Triage(
        dedupe=bool(values["dedupe"]),
        min_coverage=values["min_coverage"],
        sort=values["sort"],
        limit=values["limit"],
    )
    if triage.min_coverage is not None and (query is None or not query.area):
        raise click.UsageError("--min-coverage needs --area (the area to cover)")
    return triage


def report_drops(context: CliContext, outcome: TriageOutcome) -> list[Product]:
    """Name every product the triage left out on stderr; the products kept."""
    from sentinel_fetch.text import printable

    for drops in outcome.drops:
        context.info(drops.summary + ":")
        for line in drops.lines[:_LISTED_DROPS]:
            context.info("  " + printable(line))
        if len(drops.lines) > _LISTED_DROPS:
            context.info(f"  ... and {len(drops.lines) - _LISTED_DROPS} more")
    return outcome.kept
