"""Options that shape search results before anything is fetched: one place for all.

``--dedupe`` drops reprocessed twins (:mod:`sentinel_fetch.catalogue.dedupe`),
``--min-coverage`` footprints that barely touch the area
(:mod:`sentinel_fetch.catalogue.coverage`), ``--sort`` orders what is left and
``--limit`` cuts it; ``--last 7d`` (like ``--start 7d``) asks for a window back from now.
Every product left out is named on stderr with its reason (also with ``--dry-run``);
nothing disappears silently. ``search``, ``download`` and ``quicklooks`` share them.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any, TypeVar

import click

from sentinel_fetch.cli.context import CliContext

if TYPE_CHECKING:
    from sentinel_fetch.catalogue.product import Product
    from sentinel_fetch.catalogue.query import Query

__all__ = [
    "SORT_ORDERS",
    "TRIAGE_OPTIONS",
    "apply_triage",
    "check_triage",
    "needs_every_product",
    "prepare_search",
    "triage_options",
]

F = TypeVar("F", bound=Callable[..., Any])

#: Names of the keyword arguments these options add (the commands pass them on here).
TRIAGE_OPTIONS = ("dedupe", "min_coverage", "sort", "limit")
#: ``--sort`` values: least cloudy first, oldest first, newest first.
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
    from sentinel_fetch.catalogue.product_types import suggest_product_types
    from sentinel_fetch.catalogue.relative import parse_relative

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


def needs_every_product(options: dict[str, Any]) -> bool:
    """Whether the triage must see every result before cutting (dedupe, coverage, sort)."""
    return bool(options.get("dedupe") or options.get("sort")) or (
        options.get("min_coverage") is not None
    )


def check_triage(query: Query | None, options: dict[str, Any]) -> None:
    """Refuse, before any search, triage options that cannot work.

    Raises:
        click.UsageError: ``--min-coverage`` without an area to measure against.
    """
    if options.get("min_coverage") is not None and (query is None or not query.area):
        raise click.UsageError("--min-coverage needs --area (the area to cover)")


def apply_triage(
    context: CliContext,
    products: Sequence[Product],
    query: Query | None,
    options: dict[str, Any],
) -> list[Product]:
    """The products the triage options keep, in order; drops are reported on stderr.

    Raises:
        click.UsageError: ``--min-coverage`` without an area to measure against.
    """
    kept = list(products)
    if options.get("dedupe"):
        from sentinel_fetch.catalogue.dedupe import deduplicate

        outcome = deduplicate(kept)
        kept = outcome.kept
        _report(
            context,
            f"--dedupe dropped {len(outcome.dropped)} reprocessed twins",
            [f"{drop.product.name}: {drop.reason}" for drop in outcome.dropped],
        )
    minimum = options.get("min_coverage")
    if minimum is not None:
        check_triage(query, options)
        assert query is not None and query.area is not None
        from sentinel_fetch.catalogue.coverage import filter_by_coverage

        filtered = filter_by_coverage(kept, query.area, minimum)
        kept = filtered.kept
        _report(
            context,
            f"--min-coverage {minimum:g} dropped {len(filtered.dropped)} products",
            [
                f"{product.name}: "
                + ("no footprint" if percent is None else f"covers {percent:.1f} % of the area")
                for product, percent in filtered.dropped
            ],
        )
    order = options.get("sort")
    if order is not None:
        kept = _sorted(kept, order)
    limit = options.get("limit")
    return kept[:limit] if limit is not None else kept


def _sorted(products: list[Product], order: str) -> list[Product]:
    """Stable: products equal by the key keep the catalogue's order."""
    if order == "cloud":
        return sorted(
            products,
            key=lambda p: (p.cloud_cover is None, p.cloud_cover or 0.0),
        )
    dated = [p for p in products if p.content_start is not None]
    undated = [p for p in products if p.content_start is None]
    dated.sort(key=lambda p: p.content_start or datetime.min, reverse=order == "-date")
    return dated + undated


def _report(context: CliContext, summary: str, lines: list[str]) -> None:
    from sentinel_fetch.text import printable

    if not lines:
        return
    context.info(summary + ":")
    for line in lines[:_LISTED_DROPS]:
        context.info("  " + printable(line))
    if len(lines) > _LISTED_DROPS:
        context.info(f"  ... and {len(lines) - _LISTED_DROPS} more")
