"""Footprint geometries: normalising swaths to [-180, 180) and registering shared outlines.

CDSE publishes footprints as lon/lat polygons (``Footprint`` WKT and ``GeoFootprint``
GeoJSON, cdse-api.md §3.2); products crossing the antimeridian come as MULTIPOLYGONs. The
catalogue rounds coordinates to 1e-4 degree once, here, and both the published text and
the exact ``Intersects`` test use the rounded outline, so what a client sees is exactly
what the server tested.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import shapely
from shapely import affinity
from shapely.geometry import MultiPolygon, Polygon, box
from shapely.geometry.base import BaseGeometry

__all__ = ["FootprintRegistry", "footprint_geojson", "footprint_wkt", "normalise_ring"]

_DECIMALS = 4


def normalise_ring(ring: Sequence[tuple[float, float]]) -> BaseGeometry | None:
    """A polygon (or multipolygon split at the antimeridian) with longitudes in [-180, 180].

    ``ring`` has continuous (unwrapped) longitudes, as built along a ground track.

    >>> normalise_ring([(170, 0), (190, 0), (190, 1), (170, 1), (170, 0)]).geom_type
    'MultiPolygon'
    >>> normalise_ring([(370, 0), (371, 0), (371, 1), (370, 0)]).bounds
    (10.0, 0.0, 11.0, 1.0)
    """
    coords = np.array(ring, dtype=np.float64)
    middle = (coords[:, 0].min() + coords[:, 0].max()) / 2.0
    coords[:, 0] -= 360.0 * math.floor(middle / 360.0 + 0.5)
    polygon: BaseGeometry = Polygon(coords)
    if not polygon.is_valid:
        polygon = shapely.make_valid(polygon)
    if polygon.is_empty:
        return None
    if coords[:, 0].min() >= -180.0 and coords[:, 0].max() <= 180.0:
        return polygon
    parts: list[Polygon] = []
    for turn in (-1, 0, 1):
        window = box(-180.0 + 360.0 * turn, -90.0, 180.0 + 360.0 * turn, 90.0)
        piece = affinity.translate(polygon.intersection(window), xoff=-360.0 * turn)
        parts.extend(_polygons(piece))
    return MultiPolygon(parts) if parts else None


def _polygons(geometry: BaseGeometry) -> list[Polygon]:
    if isinstance(geometry, Polygon):
        return [] if geometry.is_empty or geometry.area == 0.0 else [geometry]
    if hasattr(geometry, "geoms"):
        found: list[Polygon] = []
        for part in geometry.geoms:
            found.extend(_polygons(part))
        return found
    return []


def _as_area(geometry: BaseGeometry) -> BaseGeometry | None:
    parts = _polygons(geometry if geometry.is_valid else shapely.make_valid(geometry))
    if not parts:
        return None
    return parts[0] if len(parts) == 1 else MultiPolygon(parts)


@dataclass
class FootprintRegistry:
    """Footprints collected while generating, each with a 1-based id (``fid``)."""

    geometries: list[BaseGeometry]
    collections: list[str]

    @classmethod
    def empty(cls) -> FootprintRegistry:
        """A registry with no footprints."""
        return cls([], [])

    def add(self, geometry: BaseGeometry | None, collection: str) -> int | None:
        """Store a footprint of a collection's products and return its id; ``None`` for a
        missing or empty outline."""
        if geometry is None or geometry.is_empty:
            return None
        self.geometries.append(geometry)
        self.collections.append(collection)
        return len(self.geometries)

    def finish(self) -> tuple[list[bytes], list[tuple[float, float, float, float]]]:
        """WKB and bounds ``(min_lon, min_lat, max_lon, max_lat)`` of every footprint, in id
        order, with coordinates rounded to 1e-4 degree (what CDSE publishes)."""
        raw = np.array(self.geometries, dtype=object)
        rounded = shapely.transform(raw, lambda xy: np.round(xy, _DECIMALS))
        for i in np.flatnonzero(~shapely.is_valid(rounded)).tolist():
            # Rounding can pinch a sliver; repair it, or keep the exact outline.
            rounded[i] = _as_area(rounded[i]) or raw[i]
        wkb = [bytes(b) for b in shapely.to_wkb(rounded)]
        bounds = [(b[0], b[1], b[2], b[3]) for b in shapely.bounds(rounded).tolist()]
        return wkb, bounds


def _ring_text(coords: Sequence[Sequence[float]]) -> str:
    return "(" + ", ".join(f"{x:.4f} {y:.4f}" for x, y, *_ in coords) + ")"


def _polygon_text(polygon: Polygon) -> str:
    rings = [polygon.exterior.coords, *(r.coords for r in polygon.interiors)]
    return "(" + ", ".join(_ring_text(r) for r in rings) + ")"


def footprint_wkt(geometry: BaseGeometry) -> str:
    """The ``Footprint`` property: ``geography'SRID=4326;POLYGON ((lon lat, …))'``.

    >>> footprint_wkt(Polygon([(1, 2), (3, 2), (3, 4), (1, 2)]))
    "geography'SRID=4326;POLYGON ((1.0000 2.0000, 3.0000 2.0000, 3.0000 4.0000, 1.0000 2.0000))'"
    """
    if isinstance(geometry, MultiPolygon):
        body = "MULTIPOLYGON (" + ", ".join(_polygon_text(p) for p in geometry.geoms) + ")"
    else:
        assert isinstance(geometry, Polygon)
        body = "POLYGON " + _polygon_text(geometry)
    return f"geography'SRID=4326;{body}'"


def _ring_json(coords: Sequence[Sequence[float]]) -> list[list[float]]:
    return [[round(x, _DECIMALS), round(y, _DECIMALS)] for x, y, *_ in coords]


def _polygon_json(polygon: Polygon) -> list[list[list[float]]]:
    return [_ring_json(polygon.exterior.coords), *(_ring_json(r.coords) for r in polygon.interiors)]


def footprint_geojson(geometry: BaseGeometry) -> dict[str, object]:
    """The ``GeoFootprint`` property (GeoJSON geometry object)."""
    if isinstance(geometry, MultiPolygon):
        return {
            "type": "MultiPolygon",
            "coordinates": [_polygon_json(p) for p in geometry.geoms],
        }
    assert isinstance(geometry, Polygon)
    return {"type": "Polygon", "coordinates": _polygon_json(geometry)}
