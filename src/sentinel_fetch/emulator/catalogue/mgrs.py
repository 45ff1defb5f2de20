"""UTM projection and the MGRS 100 km grid that names Sentinel-2 tiles (``T32TQR``).

A Sentinel-2 tile is the MGRS 100 km square of a UTM zone grown to 109.8 km to the east and
south, so neighbouring tiles overlap by 9.8 km. Its id is the UTM zone, the latitude band
and the two letters of the 100 km square (MGRS "AA" lettering on WGS84). Tile ids are
computed here, never looked up, so any place on Earth gets a plausible id.

Simplifications, harmless for a synthetic catalogue: the Norway/Svalbard zone exceptions
are ignored, and a square that straddles a latitude band takes the band of its centre
(the real grid has two tiles there).
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from .orbits import FloatArray

__all__ = [
    "TILE_SIZE_M",
    "Tile",
    "latitude_band",
    "tile_id",
    "tiles_in_box",
    "utm_forward",
    "utm_inverse",
]

_A = 6378137.0
_F = 1.0 / 298.257223563
_E2 = _F * (2.0 - _F)
_EP2 = _E2 / (1.0 - _E2)
_K0 = 0.9996
_FALSE_EASTING = 500_000.0
_FALSE_NORTHING_SOUTH = 10_000_000.0
_SQUARE_M = 100_000.0
#: Edge of a Sentinel-2 tile: a 100 km square plus 9.8 km of overlap.
TILE_SIZE_M = 109_800.0

_BANDS = "CDEFGHJKLMNPQRSTUVWX"
_COLUMN_SETS = ("STUVWXYZ", "ABCDEFGH", "JKLMNPQR")
_ROW_LETTERS = "ABCDEFGHJKLMNPQRSTUV"


def _central_meridian(zone: int) -> float:
    return -183.0 + 6.0 * zone


def _meridian_arc(phi: FloatArray) -> FloatArray:
    e4, e6 = _E2 * _E2, _E2 * _E2 * _E2
    return _A * (
        (1 - _E2 / 4 - 3 * e4 / 64 - 5 * e6 / 256) * phi
        - (3 * _E2 / 8 + 3 * e4 / 32 + 45 * e6 / 1024) * np.sin(2 * phi)
        + (15 * e4 / 256 + 45 * e6 / 1024) * np.sin(4 * phi)
        - (35 * e6 / 3072) * np.sin(6 * phi)
    )


def utm_forward(
    lat: FloatArray, lon: FloatArray, zone: int, south: bool
) -> tuple[FloatArray, FloatArray]:
    """Easting and northing (m) of WGS84 points in a UTM zone (Snyder's series).

    >>> e, n = utm_forward(np.array([48.8566]), np.array([2.3522]), 31, False)
    >>> round(float(e[0])), round(float(n[0]))
    (452483, 5411717)
    """
    phi = np.radians(lat)
    lam = np.radians(lon - _central_meridian(zone))
    sin_phi, cos_phi, tan_phi = np.sin(phi), np.cos(phi), np.tan(phi)
    n = _A / np.sqrt(1 - _E2 * sin_phi**2)
    t = tan_phi**2
    c = _EP2 * cos_phi**2
    a = lam * cos_phi
    easting = _FALSE_EASTING + _K0 * n * (
        a + (1 - t + c) * a**3 / 6 + (5 - 18 * t + t**2 + 72 * c - 58 * _EP2) * a**5 / 120
    )
    northing = _K0 * (
        _meridian_arc(phi)
        + n
        * tan_phi
        * (
            a**2 / 2
            + (5 - t + 9 * c + 4 * c**2) * a**4 / 24
            + (61 - 58 * t + t**2 + 600 * c - 330 * _EP2) * a**6 / 720
        )
    )
    if south:
        northing = northing + _FALSE_NORTHING_SOUTH
    return easting, northing


def utm_inverse(
    easting: FloatArray, northing: FloatArray, zone: int, south: bool
) -> tuple[FloatArray, FloatArray]:
    """Latitude and longitude (degrees) of UTM coordinates (Snyder's footpoint series).

    >>> lat, lon = utm_inverse(np.array([452483.0]), np.array([5411717.0]), 31, False)
    >>> round(float(lat[0]), 4), round(float(lon[0]), 4)
    (48.8566, 2.3522)
    """
    e4, e6 = _E2 * _E2, _E2 * _E2 * _E2
    y = northing - (_FALSE_NORTHING_SOUTH if south else 0.0)
    mu = (y / _K0) / (_A * (1 - _E2 / 4 - 3 * e4 / 64 - 5 * e6 / 256))
    e1 = (1 - math.sqrt(1 - _E2)) / (1 + math.sqrt(1 - _E2))
    phi1 = (
        mu
        + (3 * e1 / 2 - 27 * e1**3 / 32) * np.sin(2 * mu)
        + (21 * e1**2 / 16 - 55 * e1**4 / 32) * np.sin(4 * mu)
        + (151 * e1**3 / 96) * np.sin(6 * mu)
        + (1097 * e1**4 / 512) * np.sin(8 * mu)
    )
    sin1, cos1, tan1 = np.sin(phi1), np.cos(phi1), np.tan(phi1)
    c1 = _EP2 * cos1**2
    t1 = tan1**2
    n1 = _A / np.sqrt(1 - _E2 * sin1**2)
    r1 = _A * (1 - _E2) / (1 - _E2 * sin1**2) ** 1.5
    d = (easting - _FALSE_EASTING) / (n1 * _K0)
    phi = phi1 - (n1 * tan1 / r1) * (
        d**2 / 2
        - (5 + 3 * t1 + 10 * c1 - 4 * c1**2 - 9 * _EP2) * d**4 / 24
        + (61 + 90 * t1 + 298 * c1 + 45 * t1**2 - 252 * _EP2 - 3 * c1**2) * d**6 / 720
    )
    lam = (
        d
        - (1 + 2 * t1 + c1) * d**3 / 6
        + (5 - 2 * c1 + 28 * t1 - 3 * c1**2 + 8 * _EP2 + 24 * t1**2) * d**5 / 120
    ) / cos1
    return np.degrees(phi), _central_meridian(zone) + np.degrees(lam)


def latitude_band(lat: float) -> str:
    """MGRS latitude band letter (C..X, 8° each, X is 12° tall).

    >>> latitude_band(48.85), latitude_band(-33.9), latitude_band(83.0)
    ('U', 'H', 'X')
    """
    index = math.floor((lat + 80.0) / 8.0)
    return _BANDS[min(max(index, 0), len(_BANDS) - 1)]


def tile_id(zone: int, band: str, column: int, row: int) -> str:
    """Sentinel-2 tile id of the MGRS 100 km square ``column``/``row`` (easting and
    northing divided by 100 km, northing including the southern false northing).

    >>> tile_id(31, "U", 4, 54)
    '31UDQ'
    """
    column_letter = _COLUMN_SETS[zone % 3][column - 1]
    # Even zones start their row lettering at F so that letters differ across zone edges.
    row_letter = _ROW_LETTERS[(row + (5 if zone % 2 == 0 else 0)) % len(_ROW_LETTERS)]
    return f"{zone:02d}{band}{column_letter}{row_letter}"


@dataclass(frozen=True)
class Tile:
    """One Sentinel-2 tile: id, corner ring in lon/lat and centre.

    Attributes:
        id: tile id without the ``T`` prefix used in product names (``32TQR``).
        ring: closed ``(lon, lat)`` ring of the 109.8 km square (corners only).
        center_lon / center_lat: centre of the square.
    """

    id: str
    ring: tuple[tuple[float, float], ...]
    center_lon: float
    center_lat: float


def _zone_rows(zone: int, south: bool, lat_min: float, lat_max: float) -> range:
    cm = _central_meridian(zone)
    lats = np.array([lat_min, lat_max], dtype=np.float64)
    _, northing = utm_forward(lats, np.array([cm, cm], dtype=np.float64), zone, south)
    first = math.floor(float(northing.min()) / _SQUARE_M) - 1
    last = math.floor(float(northing.max()) / _SQUARE_M) + 1
    return range(first, last + 1)


def tiles_in_box(lon_min: float, lat_min: float, lon_max: float, lat_max: float) -> Iterator[Tile]:
    """Every Sentinel-2 tile whose centre lies in the box (degrees; box within one turn).

    A tile belongs to a UTM zone when its square overlaps the zone's 6° strip, which is how
    Sentinel-2 tiles overlap across zone edges.
    """
    first_zone = max(1, math.floor((lon_min + 180.0) / 6.0))
    last_zone = min(60, math.floor((lon_max + 180.0) / 6.0) + 2)
    for zone in range(first_zone, last_zone + 1):
        cm = _central_meridian(zone)
        for south in (False, True):
            hemi_min = max(lat_min, -80.0) if south else max(lat_min, 0.0)
            hemi_max = min(lat_max, 0.0) if south else min(lat_max, 84.0)
            if hemi_max <= hemi_min:
                continue
            yield from _zone_tiles(
                zone, cm, south, (lon_min, lat_min, lon_max, lat_max), hemi_min, hemi_max
            )


def _zone_tiles(
    zone: int,
    cm: float,
    south: bool,
    box: tuple[float, float, float, float],
    lat_min: float,
    lat_max: float,
) -> Iterator[Tile]:
    lon_min, box_lat_min, lon_max, box_lat_max = box
    rows = np.array(list(_zone_rows(zone, south, lat_min, lat_max)), dtype=np.float64)
    columns = np.arange(1, 9, dtype=np.float64)
    column_grid, row_grid = (g.ravel() for g in np.meshgrid(columns, rows, indexing="ij"))
    west = column_grid * _SQUARE_M
    north = (row_grid + 1) * _SQUARE_M
    # Corners NW, NE, SE, SW, then the centre.
    xs = np.stack([west, west + TILE_SIZE_M, west + TILE_SIZE_M, west, west + TILE_SIZE_M / 2])
    ys = np.stack([north, north, north - TILE_SIZE_M, north - TILE_SIZE_M, north - TILE_SIZE_M / 2])
    lats, lons = utm_inverse(xs, ys, zone, south)
    center_lat, center_lon = lats[4], lons[4]
    keep = (
        (center_lat >= box_lat_min)
        & (center_lat < box_lat_max)
        & (center_lon >= lon_min)
        & (center_lon < lon_max)
        & ((center_lat < 0.0) if south else (center_lat >= 0.0))
        & (np.min(np.abs(lons[:4] - cm), axis=0) < 3.0)
    )
    for k in np.flatnonzero(keep).tolist():
        ring = tuple((round(float(lons[c, k]), 6), round(float(lats[c, k]), 6)) for c in range(4))
        yield Tile(
            id=tile_id(
                zone, latitude_band(float(center_lat[k])), int(column_grid[k]), int(row_grid[k])
            ),
            ring=(*ring, ring[0]),
            center_lon=float(center_lon[k]),
            center_lat=float(center_lat[k]),
        )
