"""Footprints as shapes, and their areas in comparable units (pure helpers).

Ratios of areas (how much of an area a footprint covers, how much two footprints
coincide) are computed after the sinusoidal projection ``x = lon · cos(lat)``, which is
equal-area: a square degree at 60° N counts half as much as one at the equator, as on the
ground. The ratios then need no map projection library.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
import shapely
from shapely.geometry import shape
from shapely.geometry.base import BaseGeometry

from sentinel_fetch.catalogue.product import Product

__all__ = ["equal_area", "footprint_of"]


def footprint_of(product: Product) -> BaseGeometry | None:
    """The product's footprint, or ``None`` when it has none or it cannot be read.

    A server's outline is untrusted text: one that does not parse, or is invalid, is
    treated as missing (never as covering anything).

    >>> footprint_of(Product(id="x", name="n", footprint="POLYGON ((0 0, 1 0, 1 1, 0 0))")).area
    0.5
    >>> footprint_of(Product(id="x", name="n", footprint="POLYGON ((0 0")) is None
    True
    """
    try:
        if product.geo_footprint is not None:
            geometry = shape(product.geo_footprint)
        elif product.footprint:
            geometry = shapely.from_wkt(product.footprint)
        else:
            return None
    except (ValueError, TypeError, AttributeError, KeyError, shapely.errors.ShapelyError):
        return None
    if geometry.is_empty or not geometry.is_valid:
        return None
    return geometry


def _sinusoidal(coordinates: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    projected: npt.NDArray[np.float64] = coordinates.copy()
    projected[:, 0] = coordinates[:, 0] * np.cos(np.radians(coordinates[:, 1]))
    return projected


def equal_area(geometry: BaseGeometry) -> BaseGeometry:
    """``geometry`` in the sinusoidal projection (areas proportional to the ground's).

    >>> round(equal_area(shapely.box(0, 59.5, 1, 60.5)).area, 3)
    0.5
    """
    projected: BaseGeometry = shapely.transform(geometry, _sinusoidal)
    return projected
