"""Shaping search results before anything is fetched: twins, coverage, order, a cut.

A :class:`Triage` says what to do; :func:`apply_triage` does it and names every product
it left out with the reason, so that nothing disappears silently (the command line shows
the drops on stderr, a program can log them). ``--dedupe`` drops reprocessed twins
(:mod:`sentinel_fetch.catalogue.dedupe`), ``--min-coverage`` footprints that barely
touch the area (:mod:`sentinel_fetch.catalogue.coverage`), ``--sort`` orders what is
left and ``--limit`` cuts it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING

from sentinel_fetch.errors import InputError

if TYPE_CHECKING:
    from shapely.geometry.base import BaseGeometry

    from sentinel_fetch.catalogue.product import Product

__all__ = ["SORT_ORDERS", "Drops", "Triage", "TriageOutcome", "apply_triage"]

#: Sort orders: least cloudy first, oldest first, newest first.
SORT_ORDERS = ("cloud", "date", "-date")


@dataclass(frozen=True)
class Triage:
    """What to do with search results before a download.

    Attributes:
        dedupe: keep one product per datatake and tile (reprocessed twins are dropped).
        min_coverage: keep products whose footprint covers this percentage of the area.
        sort: ``cloud`` (least cloudy first, none last), ``date`` or ``-date``.
        limit: only the first N products, after everything else.
    """

    dedupe: bool = False
    min_coverage: float | None = None
    sort: str | None = None
    limit: int | None = None

    def __post_init__(self) -> None:
        if self.sort is not None and self.sort not in SORT_ORDERS:
            raise InputError(f"sort is one of {', '.join(SORT_ORDERS)}, not {self.sort!r}")
        if self.min_coverage is not None and not 0 <= self.min_coverage <= 100:
            raise InputError(f"min_coverage is a percentage (0-100), not {self.min_coverage}")
        if self.limit is not None and self.limit < 1:
            raise InputError(f"limit is at least 1, not {self.limit}")

    @property
    def needs_every_product(self) -> bool:
        """Whether every result must be seen before the cut (dedupe, coverage, sort)."""
        return self.dedupe or self.sort is not None or self.min_coverage is not None

    def check(self, area: BaseGeometry | str | None) -> None:
        """Refuse, before any search, what cannot work.

        Raises:
            InputError: a minimum coverage without an area to measure against.
        """
        if self.min_coverage is not None and not area:
            raise InputError("a minimum coverage needs an area (the area to cover)")


@dataclass(frozen=True)
class Drops:
    """Products one step left out: a summary and one line per product (name: why)."""

    summary: str
    lines: list[str]


@dataclass
class TriageOutcome:
    """The products kept, in order, and what each step dropped."""

    kept: list[Product]
    drops: list[Drops] = field(default_factory=list)


def apply_triage(
    products: Sequence[Product], triage: Triage, area: BaseGeometry | str | None = None
) -> TriageOutcome:
    """The products ``triage`` keeps, in order, with every drop named.

    Raises:
        InputError: a minimum coverage without an area.
    """
    triage.check(area)
    outcome = TriageOutcome(list(products))
    if triage.dedupe:
        from sentinel_fetch.catalogue.dedupe import deduplicate

        twins = deduplicate(outcome.kept)
        outcome.kept = twins.kept
        if twins.dropped:
            outcome.drops.append(
                Drops(
                    f"--dedupe dropped {len(twins.dropped)} reprocessed twins",
                    [f"{drop.product.name}: {drop.reason}" for drop in twins.dropped],
                )
            )
    if triage.min_coverage is not None:
        from sentinel_fetch.catalogue.coverage import filter_by_coverage

        assert area is not None  # checked above
        filtered = filter_by_coverage(outcome.kept, area, triage.min_coverage)
        outcome.kept = filtered.kept
        if filtered.dropped:
            outcome.drops.append(
                Drops(
                    f"--min-coverage {triage.min_coverage:g} dropped "
                    f"{len(filtered.dropped)} products",
                    [
                        f"{product.name}: "
                        + (
                            "no footprint"
                            if percent is None
                            else f"covers {percent:.1f} % of the area"
                        )
                        for product, percent in filtered.dropped
                    ],
                )
            )
    if triage.sort is not None:
        outcome.kept = _sorted(outcome.kept, triage.sort)
    if triage.limit is not None:
        outcome.kept = outcome.kept[: triage.limit]
    return outcome


def _sorted(products: list[Product], order: str) -> list[Product]:
    """Stable: products equal by the key keep the catalogue's order."""
    if order == "cloud":
        return sorted(products, key=lambda p: (p.cloud_cover is None, p.cloud_cover or 0.0))
    dated = [p for p in products if p.content_start is not None]
    undated = [p for p in products if p.content_start is None]
    dated.sort(key=lambda p: p.content_start or datetime.min, reverse=order == "-date")
    return dated + undated
