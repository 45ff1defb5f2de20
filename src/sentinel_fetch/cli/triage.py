"""Options that weed search results out before anything is fetched: one place for all.

``--dedupe`` drops reprocessed twins (:mod:`sentinel_fetch.catalogue.dedupe`),
``--min-coverage`` footprints that barely touch the area
(:mod:`sentinel_fetch.catalogue.coverage`). Every product left out is named on stderr
with its reason (also with ``--dry-run``); nothing disappears silently.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, TypeVar

import click

from sentinel_fetch.cli.context import CliContext

if TYPE_CHECKING:
    from sentinel_fetch.catalogue.product import Product
    from sentinel_fetch.catalogue.query import Query

__all__ = ["TRIAGE_OPTIONS", "apply_triage", "check_triage", "triage_options"]

F = TypeVar("F", bound=Callable[..., Any])

#: Names of the keyword arguments these options add (the commands pass them on here).
TRIAGE_OPTIONS = ("dedupe", "min_coverage")

# Past this many, the list of drops is cut (the count is always complete).
_LISTED_DROPS = 50


def triage_options(function: F) -> F:
    """Decorate a command with ``--dedupe`` and ``--min-coverage``."""
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
    ]
    for option in reversed(options):
        function = option(function)
    return function


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
    return kept


def _report(context: CliContext, summary: str, lines: list[str]) -> None:
    from sentinel_fetch.text import printable

    if not lines:
        return
    context.info(summary + ":")
    for line in lines[:_LISTED_DROPS]:
        context.info("  " + printable(line))
    if len(lines) > _LISTED_DROPS:
        context.info(f"  ... and {len(lines) - _LISTED_DROPS} more")
