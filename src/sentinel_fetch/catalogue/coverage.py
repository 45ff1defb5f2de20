"""How much of the search area each footprint covers (``--min-coverage``); pure.

A footprint that barely touches the area matches an ``Intersects`` search like one that
covers it; users then weed them out by eye. Here the share of the area's ground surface
inside the footprint is measured (equal-area, :mod:`.footprint`) and compared.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import shapely
from shapely.geometry.base import BaseGeometry

from sentinel_fetch.catalogue.footprint import equal_area, footprint_of
from sentinel_fetch.catalogue.product import Product

__all__ = ["CoverageFilter", "coverage_percent", "filter_by_coverage"]


def coverage_percent(product: Product, area: BaseGeometry) -> float | None:
    """Percent of ``area`` inside the product's footprint; ``None`` without a footprint.

    An area without surface (a point, a line) counts as 100 % covered when the footprint
    touches it, else 0 %.

    >>> half = Product(id="x", name="n", footprint="POLYGON ((0 0, 1 0, 1 2, 0 2, 0 0))")
    >>> round(coverage_percent(half, shapely.box(0, 0, 2, 2)), 1)
    50.0
    """
    footprint = footprint_of(product)
    if footprint is None:
        return None
    if area.area <= 0:
        return 100.0 if footprint.intersects(area) else 0.0
    ground = equal_area(area)
    inside = equal_area(footprint).intersection(ground).area
    return float(min(100.0, 100.0 * inside / ground.area))


@dataclass(frozen=True)
class CoverageFilter:
    """Products kept, and the ones left out with their coverage (``None``: no footprint)."""

    kept: list[Product]
    dropped: list[tuple[Product, float | None]]


def filter_by_coverage(
    products: Iterable[Product], area: BaseGeometry | str, min_percent: float
) -> CoverageFilter:
    """Keep the products whose footprint covers at least ``min_percent`` of ``area``.

    Args:
        products: search results; their order is kept.
        area: the search area (a shapely geometry or WKT, EPSG:4326).
        min_percent: 0-100.

    Raises:
        ValueError: ``min_percent`` outside 0-100.
    """
    if not 0 <= min_percent <= 100:
        raise ValueError(f"the minimum coverage must be 0-100 %, got {min_percent}")
    geometry = shapely.from_wkt(area) if isinstance(area, str) else area
    kept: list[Product] = []
    dropped: list[tuple[Product, float | None]] = []
    for product in products:
        percent = coverage_percent(product, geometry)
        # A rounding hair below the threshold is still "at least" it.
        if percent is not None and percent + 1e-9 >= min_percent:
            kept.append(product)
        else:
            dropped.append((product, percent))
    return CoverageFilter(kept, dropped)
