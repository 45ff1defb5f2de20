"""Areas of interest: read them from what users have, check them, write them as WKT.

Users bring areas as WKT, GeoJSON (text or file; geometry, feature or feature
collection), shapefiles, GeoPackages or a ``west,south,east,north`` box
(peers.md §4 item 11: no other tool takes all of them). :func:`load_area` turns each into
one shapely geometry in EPSG:4326 (longitude, latitude), keeping multipolygons and
holes, and :func:`area_to_wkt` writes it for the catalogue's
``OData.CSC.Intersects(area=geography'SRID=4326;...')`` (cdse-api.md §3.5).

The catalogue validates areas with Shapely and refuses invalid ones, and a search URL
must stay short (the Copernicus Browser keeps it near 6000 characters, §4), so:

* invalid geometry, open rings, coordinates outside lon/lat ranges or apparently in
  lat,lon order raise :class:`~sentinel_fetch.errors.AreaError` with a one-line message
  that says where;
* an area whose WKT is too long is replaced by a simpler one that **contains** it:
  buffered, simplified, rounded outward and checked with ``covers``. A search may then
  return a few extra products near the edge, never miss one.

Files in another CRS are reprojected with pyproj, an optional dependency
(``sentinel-fetch[vector]``) imported only when needed.
"""

from __future__ import annotations

import math
import numbers
import os
import sqlite3
import struct
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Protocol, TypeAlias

import numpy as np
import shapefile
import shapely
from shapely.geometry import MultiPolygon, Point, Polygon, box, mapping, shape
from shapely.geometry.base import BaseGeometry

from sentinel_fetch.catalogue.filter import Geography, format_number
from sentinel_fetch.errors import AreaError
from sentinel_fetch.text import read_text_file
from sentinel_fetch.untrusted import UntrustedJSONError, parse_json

__all__ = [
    "DEFAULT_MAX_AREA_CHARS",
    "AreaInput",
    "GeoInterface",
    "area_geography",
    "area_to_wkt",
    "check_area",
    "geometry_wkt",
    "load_area",
    "normalize_area_wkt",
]

#: Longest area WKT :func:`area_to_wkt` writes by default. Search URLs encode spaces as
#: ``+`` so the WKT keeps its length in the URL; 4000 characters leave room for the rest
#: of a full filter within the ~6000 characters the Copernicus Browser aims for (§4).
DEFAULT_MAX_AREA_CHARS = 4000
# The largest GeoJSON area read: a country's detailed border is a few megabytes.
_MAX_AREA_FILE_BYTES = 64_000_000

_FILE_SUFFIXES = (".geojson", ".json", ".shp", ".gpkg", ".wkt", ".txt")
_WKT_TYPES = ("POINT", "POLYGON", "MULTIPOLYGON", "LINESTRING", "MULTIPOINT", "MULTILINESTRING")
_WORLD = box(-180.0, -90.0, 180.0, 90.0)


class GeoInterface(Protocol):
    """Anything that describes itself as GeoJSON (geopandas, fiona, pygeoif objects...)."""

    @property
    def __geo_interface__(self) -> Mapping[str, Any]: ...


#: What :func:`load_area` takes: text (WKT, GeoJSON, a bbox, a file name), a path, a
#: shapely geometry, a GeoJSON mapping (or an object with ``__geo_interface__``), or a
#: bbox as four numbers.
AreaInput: TypeAlias = (
    str | os.PathLike[str] | BaseGeometry | Mapping[str, Any] | Sequence[float] | GeoInterface
)

_EXPECTED_AREA = (
    "give a bbox (west, south, east, north), a GeoJSON dict, a shapely geometry, WKT or "
    "GeoJSON text, or the path of a .geojson/.shp/.gpkg/.wkt file"
)


def load_area(value: AreaInput) -> BaseGeometry:
    """Read an area of interest from what a user has, and check it.

    Args:
        value: WKT (``POLYGON ((lon lat, ...))``, ``MULTIPOLYGON``, ``POINT``, optionally
            with an ``SRID=4326;`` prefix), GeoJSON text, a bbox ``west,south,east,north``
            in degrees (as text, or as four numbers in a tuple or list), a GeoJSON
            mapping (geometry, feature or feature collection) or an object with
            ``__geo_interface__``, a shapely geometry, or the path (text or
            ``os.PathLike``) of a ``.geojson``/``.json``, ``.shp``, ``.gpkg`` or
            ``.wkt`` file.

    Returns:
        A valid 2D Polygon, MultiPolygon or Point in EPSG:4326.

    Raises:
        AreaError: the value cannot be read or is not a valid area (one-line message),
            including a value of a type that is no area at all.

    Example:
        >>> load_area("12.0,45.5,13.5,46.5").bounds
        (12.0, 45.5, 13.5, 46.5)
        >>> load_area((12, 45.5, 13.5, 46.5)).bounds
        (12.0, 45.5, 13.5, 46.5)
        >>> load_area({"type": "Point", "coordinates": [12.49, 41.89]}).wkt
        'POINT (12.49 41.89)'
    """
    if isinstance(value, BaseGeometry):
        return check_area(value)
    if isinstance(value, os.PathLike):
        return _load_file(Path(value))
    if isinstance(value, Mapping):
        return _from_geojson_data(dict(value), "the GeoJSON mapping")
    interface = getattr(value, "__geo_interface__", None)
    if isinstance(interface, Mapping):
        return _from_geojson_data(dict(interface), f"the {type(value).__name__}")
    if isinstance(value, (tuple, list)):
        return _from_bbox_sequence(value)
    if not isinstance(value, str):
        raise AreaError(f"an area cannot be given as {type(value).__name__}: {_EXPECTED_AREA}")
    text = value.replace("\ufeff", "").strip()
    if not text:
        raise AreaError(
            "the area is empty: give WKT, GeoJSON, a bbox west,south,east,north or a file"
        )
    if text.startswith("{"):
        return _from_geojson_text(text, "the GeoJSON text")
    if _is_bbox(text):
        return _from_bbox(text)
    word = text.split("(")[0].split(";")[-1].strip().split(" ")[0].upper()
    if word in _WKT_TYPES or text.upper().startswith("SRID="):
        return check_area(_from_wkt(text))
    path = Path(text)
    if path.suffix.lower() in _FILE_SUFFIXES or path.exists():
        return _load_file(path)
    raise AreaError(
        f"cannot read the area {text[:40]!r}: give WKT, GeoJSON, a bbox "
        "west,south,east,north or a .geojson/.shp/.gpkg/.wkt file"
    )


def check_area(geometry: BaseGeometry) -> BaseGeometry:
    """Check that a geometry is a usable catalogue area; return it without Z values.

    Raises:
        AreaError: empty, not a polygon/multipolygon/point, invalid (the message names
            the problem and its lon/lat), or outside lon -180..180 / lat -90..90.

    Example:
        >>> bowtie = shapely.from_wkt("POLYGON ((0 0, 2 2, 2 0, 0 2, 0 0))")
        >>> check_area(bowtie)  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        sentinel_fetch.errors.AreaError: invalid area: self-intersection at lon 1, lat 1; ...
    """
    if geometry.is_empty:
        raise AreaError("the area is empty: it has no coordinates")
    if not isinstance(geometry, (Polygon, MultiPolygon, Point)):
        raise AreaError(
            f"a {geometry.geom_type} is not an area: the catalogue takes a Polygon, "
            "MultiPolygon or Point"
        )
    geometry = shapely.force_2d(geometry)
    _check_ranges(geometry)
    reason = shapely.is_valid_reason(geometry)
    if reason != "Valid Geometry":
        raise AreaError(f"invalid area: {_describe_invalid(reason)}")
    return geometry


def geometry_wkt(geometry: BaseGeometry) -> str:
    """Exact WKT of a geometry, in the spelling the Copernicus Browser uses.

    Every coordinate is written as the shortest decimal that reads back as the same
    double, so the text selects exactly the products the geometry does.

    Example:
        >>> geometry_wkt(box(12, 45.5, 13.5, 46.5))
        'POLYGON ((13.5 45.5, 13.5 46.5, 12 46.5, 12 45.5, 13.5 45.5))'
    """
    return area_geography(geometry).wkt


def area_geography(geometry: BaseGeometry | str) -> Geography:
    """An area (geometry or WKT) as a filter ``geography'SRID=4326;...'`` literal."""
    if isinstance(geometry, str):
        geometry = _from_wkt(geometry)
    geojson = mapping(geometry)
    return Geography(geojson["type"].upper(), _float_tuples(geojson["coordinates"]))


def normalize_area_wkt(text: str) -> str:
    """Check WKT text as an area and return its exact canonical spelling.

    Raises:
        AreaError: as :func:`check_area`, or the text is not WKT.

    Example:
        >>> normalize_area_wkt("SRID=4326;POLYGON((1 1,2 1,2 2,1 1))")
        'POLYGON ((1 1, 2 1, 2 2, 1 1))'
    """
    return geometry_wkt(check_area(_from_wkt(text)))


def area_to_wkt(geometry: BaseGeometry, *, max_chars: int = DEFAULT_MAX_AREA_CHARS) -> str:
    """WKT of an area, simplified to at most ``max_chars`` without losing coverage.

    An area that fits is written exactly. A larger one is simplified, grown by a small
    margin, simplified again and snapped to a decimal grid, and accepted only if the
    written result is valid and covers the original. The tolerance grows until the text
    fits, then is refined back towards the finest that fits. The convex hull and finally
    the bounding box rounded outward to 0.01° are the last resorts (the box is returned
    even if ``max_chars`` is smaller than it). Areas crossing the antimeridian as two
    parts end up covered by a box around the world's width: split such searches.

    Raises:
        AreaError: the geometry is not a valid area (see :func:`check_area`).

    Example:
        >>> area_to_wkt(box(12, 45.5, 13.5, 46.5))
        'POLYGON ((13.5 45.5, 13.5 46.5, 12 46.5, 12 45.5, 13.5 45.5))'
    """
    area = check_area(geometry)
    exact = geometry_wkt(area)
    if len(exact) <= max_chars or isinstance(area, Point):
        return exact
    west, south, east, north = area.bounds
    extent = max(east - west, north - south)
    # Coarser and coarser outlines until one fits, then halve the step back towards the
    # finest that fits, so the area grows no more than the length limit demands.
    too_fine, fitting = 0.0, None
    tolerance = extent / 20000
    while tolerance < extent / 4:
        fitting = _covering_wkt(area, tolerance, max_chars)
        if fitting is not None:
            break
        too_fine, tolerance = tolerance, tolerance * 1.6
    if fitting is not None:
        for _ in range(5):
            middle = (too_fine + tolerance) / 2
            finer = _covering_wkt(area, middle, max_chars)
            if finer is None:
                too_fine = middle
            else:
                fitting, tolerance = finer, middle
        return fitting
    for decimals in (6, 4, 3, 2):
        hull = shapely.buffer(area.convex_hull, 10.0**-decimals, quad_segs=2)
        text = _checked_wkt(hull, area, decimals, max_chars)
        if text is not None:
            return text
    return _outward_box_wkt(area)


def _covering_wkt(area: BaseGeometry, tolerance: float, limit: int) -> str | None:
    """An outline of ``area`` simplified at ``tolerance`` degrees, if it fits and covers.

    Douglas-Peucker simplification leaves the old boundary within one tolerance of the
    new one and cuts at most two tolerances deep. So: simplify, grow by three
    tolerances plus one grid step, simplify again and snap to a grid of a quarter
    tolerance; the original stays inside (simplifying first keeps the buffer fast on
    big areas). The final ``covers`` check is the guarantee, the margins only make it
    pass at the first try.
    """
    decimals = min(7, max(1, math.ceil(-math.log10(tolerance / 4))))
    grid = 10.0**-decimals
    rough = shapely.simplify(area, tolerance, preserve_topology=True)
    grown = shapely.buffer(rough, 3 * tolerance + grid, quad_segs=2)
    outline = shapely.simplify(grown, tolerance, preserve_topology=True)
    return _checked_wkt(outline, area, decimals, limit)


def _checked_wkt(
    outline: BaseGeometry, area: BaseGeometry, decimals: int, limit: int
) -> str | None:
    grid = 10.0**-decimals
    candidate = shapely.set_precision(shapely.intersection(outline, _WORLD), grid)
    if not isinstance(candidate, (Polygon, MultiPolygon)) or candidate.is_empty:
        return None
    text = area_geography(_round(candidate, decimals)).wkt
    if len(text) > limit:
        return None
    written = shapely.from_wkt(text)
    return text if written.is_valid and written.covers(area) else None


def _round(geometry: BaseGeometry, decimals: int) -> BaseGeometry:
    # Grid-snapped doubles print as 12.345000000000001; rounding prints 12.345.
    return shapely.transform(geometry, lambda xy: np.round(xy, decimals))


def _outward_box_wkt(area: BaseGeometry) -> str:
    west, south, east, north = area.bounds
    scale = 100.0
    outward = box(
        max(-180.0, math.floor(west * scale) / scale),
        max(-90.0, math.floor(south * scale) / scale),
        min(180.0, math.ceil(east * scale) / scale),
        min(90.0, math.ceil(north * scale) / scale),
    )
    return geometry_wkt(outward)


def _float_tuples(value: Any) -> tuple[Any, ...]:
    if value and isinstance(value[0], (int, float)):
        return tuple(float(number) for number in value)
    return tuple(_float_tuples(part) for part in value)


# --- checks -----------------------------------------------------------------------------


def _check_ranges(geometry: BaseGeometry) -> None:
    coordinates = shapely.get_coordinates(geometry)
    if not np.isfinite(coordinates).all():
        raise AreaError("invalid area: a coordinate is not a finite number")
    lon, lat = np.abs(coordinates[:, 0]), np.abs(coordinates[:, 1])
    if lon.max() <= 180 and lat.max() <= 90:
        return
    if lon.max() <= 90 and lat.max() <= 180:
        first = (
            f"{format_number(float(coordinates[0, 1]))} {format_number(float(coordinates[0, 0]))}"
        )
        raise AreaError(
            f"the coordinates look like lat,lon: give lon,lat (x = longitude first), e.g. {first}"
        )
    if max(lon.max(), lat.max()) > 1000:
        raise AreaError(
            "the coordinates look projected (metres?), not degrees: give the area in "
            "EPSG:4326 (WGS 84 lon,lat) or as a file whose CRS is declared (.prj, GeoPackage)"
        )
    which = "longitude" if lon.max() > 180 else "latitude"
    bound = "-180..180" if which == "longitude" else "-90..90"
    raise AreaError(f"a {which} is outside {bound}: coordinates must be lon,lat in degrees")


def _describe_invalid(reason: str) -> str:
    text, _, where = reason.partition("[")
    words = text.strip().lower()
    numbers = where.rstrip("]").split()
    if len(numbers) >= 2:
        lon, lat = numbers[0], numbers[1]
        return (
            f"{words} at lon {format_number(float(lon))}, lat {format_number(float(lat))}; "
            'fix the geometry (e.g. QGIS "Fix geometries") and try again'
        )
    return f'{words}; fix the geometry (e.g. QGIS "Fix geometries") and try again'


# --- readers ----------------------------------------------------------------------------


def _from_wkt(text: str) -> BaseGeometry:
    body = text.strip()
    if body.upper().startswith("SRID="):
        srid, _, body = body.partition(";")
        if srid.split("=", 1)[1].strip() != "4326":
            raise AreaError(
                f"the area is in {srid.strip()}: give it in SRID=4326 (lon,lat degrees)"
            )
    try:
        return shapely.from_wkt(body)
    except shapely.errors.ShapelyError as error:
        message = str(error)
        if "closed linestring" in message:
            raise AreaError(
                "unclosed ring in the WKT: the last point of each ring must repeat the first"
            ) from None
        if "LinearRing" in message:
            raise AreaError(
                "a ring needs at least 4 points (3 corners and the first again)"
            ) from None
        detail = message.partition(": ")[2] or message
        raise AreaError(f"the area is not readable WKT: {detail}") from None


def _is_bbox(text: str) -> bool:
    parts = text.split(",")
    if len(parts) != 4:
        return False
    try:
        [float(part) for part in parts]
    except ValueError:
        return False
    return True


def _from_bbox(text: str) -> BaseGeometry:
    west, south, east, north = (float(part) for part in text.split(","))
    return _from_bbox_values(west, south, east, north)


def _from_bbox_sequence(values: tuple[Any, ...] | list[Any]) -> BaseGeometry:
    edges = [v for v in values if not isinstance(v, bool) and isinstance(v, numbers.Real)]
    if len(values) != 4 or len(edges) != 4:
        shown = ", ".join(type(v).__name__ for v in values[:6])
        raise AreaError(
            f"a bbox is 4 numbers (west, south, east, north), got {len(values)} values "
            f"({shown}): {_EXPECTED_AREA}"
        )
    west, south, east, north = (float(v) for v in edges)
    return _from_bbox_values(west, south, east, north)


def _from_bbox_values(west: float, south: float, east: float, north: float) -> BaseGeometry:
    if any(not math.isfinite(value) for value in (west, south, east, north)):
        raise AreaError("the bbox holds a value that is not a finite number")
    if max(abs(south), abs(north)) > 90 and max(abs(west), abs(east)) <= 90:
        raise AreaError(
            "the bbox looks like south,west,north,east (lat,lon): give west,south,east,north"
        )
    if west > east:
        raise AreaError(
            f"bbox west {format_number(west)} is east of east {format_number(east)}: give "
            "west,south,east,north (areas across the antimeridian: use a MULTIPOLYGON)"
        )
    if south > north:
        raise AreaError(
            f"bbox south {format_number(south)} is north of north {format_number(north)}: "
            "give west,south,east,north"
        )
    if west == east or south == north:
        raise AreaError("the bbox has no area: west must differ from east and south from north")
    return check_area(box(west, south, east, north))


def _load_file(path: Path) -> BaseGeometry:
    suffix = path.suffix.lower()
    if not path.is_file():
        raise AreaError(f"area file {path} does not exist")
    if suffix in (".geojson", ".json"):
        text = read_text_file(
            path, what="GeoJSON area file", max_bytes=_MAX_AREA_FILE_BYTES, error=AreaError
        )
        return _from_geojson_text(text, str(path))
    if suffix == ".shp":
        return check_area(_from_shapefile(path))
    if suffix == ".gpkg":
        return check_area(_from_geopackage(path))
    if suffix in (".wkt", ".txt"):
        return check_area(_from_wkt(_read_text(path).replace("\ufeff", "")))
    raise AreaError(f"cannot read areas from {path.name}: use .geojson, .json, .shp, .gpkg or .wkt")


def _read_text(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as error:
        raise AreaError(f"cannot read area file {path}: {error}") from None


def _from_geojson_text(text: str, source: str) -> BaseGeometry:
    try:
        data = parse_json(text, max_bytes=_MAX_AREA_FILE_BYTES)
    except UntrustedJSONError as error:
        # "... is not valid JSON: Expecting ',' delimiter: line 1 column 9 (char 8)", or
        # "... is JSON nested deeper than 64 levels".
        raise AreaError(f"{source} is {error}") from None
    return _from_geojson_data(data, source)


def _from_geojson_data(data: Any, source: str) -> BaseGeometry:
    geometry = _union(_geojson_geometries(data, source), source)
    crs = _geojson_crs(data)
    if crs is not None:
        geometry = _reproject(geometry, crs, source)
    return check_area(geometry)


def _geojson_geometries(data: Any, source: str) -> list[BaseGeometry]:
    if not isinstance(data, dict) or not isinstance(data.get("type"), str):
        raise AreaError(f"{source} is not GeoJSON: expected an object with a 'type'")
    kind = data["type"]
    if kind == "FeatureCollection":
        features = data.get("features")
        if not isinstance(features, list):
            raise AreaError(f"{source}: a FeatureCollection needs a 'features' list")
        parts = [part for feature in features for part in _geojson_geometries(feature, source)]
        if not parts:
            raise AreaError(f"{source} holds no geometry: the FeatureCollection is empty")
        return parts
    if kind == "Feature":
        geometry = data.get("geometry")
        return [] if geometry is None else _geojson_geometries(geometry, source)
    if kind == "GeometryCollection":
        members = data.get("geometries")
        if not isinstance(members, list):
            raise AreaError(f"{source}: a GeometryCollection needs a 'geometries' list")
        return [part for member in members for part in _geojson_geometries(member, source)]
    if kind in ("Polygon", "MultiPolygon"):
        _check_closed_rings(data.get("coordinates"), kind, source)
    try:
        return [shape(data)]
    except (
        ValueError,
        TypeError,
        IndexError,
        KeyError,
        AttributeError,
        shapely.errors.ShapelyError,
    ):
        raise AreaError(f"{source}: the {kind} geometry has unreadable coordinates") from None


def _check_closed_rings(coordinates: Any, kind: str, source: str) -> None:
    polygons = [coordinates] if kind == "Polygon" else coordinates
    try:
        for polygon in polygons:
            for ring in polygon:
                if list(ring[0]) != list(ring[-1]):
                    first = ", ".join(format_number(float(v)) for v in ring[0][:2])
                    raise AreaError(
                        f"unclosed ring in {source} (starts at {first}): the last position "
                        "of each ring must repeat the first"
                    )
    except (TypeError, IndexError, ValueError):
        raise AreaError(f"{source}: the {kind} geometry has unreadable coordinates") from None


def _geojson_crs(data: Any) -> str | None:
    # RFC 7946 GeoJSON is always WGS 84 lon,lat; files from older tools may still name a
    # CRS ("crs": {"properties": {"name": "urn:ogc:def:crs:EPSG::32632"}}).
    crs = data.get("crs") if isinstance(data, dict) else None
    name = crs.get("properties", {}).get("name") if isinstance(crs, dict) else None
    if not isinstance(name, str):
        return None
    if name.upper().endswith(("CRS84", "EPSG::4326", "EPSG:4326")):
        return None
    return name


def _union(parts: list[BaseGeometry], source: str) -> BaseGeometry:
    geometries = [shapely.force_2d(part) for part in parts if not part.is_empty]
    if not geometries:
        raise AreaError(f"{source} holds no geometry")
    if len(geometries) == 1:
        return geometries[0]
    if all(isinstance(part, (Polygon, MultiPolygon)) for part in geometries):
        for part in geometries:
            check_area(part)
        return shapely.union_all(geometries)
    kinds = sorted({part.geom_type for part in geometries})
    raise AreaError(
        f"{source} mixes {', '.join(kinds)}: an area of several parts must be all polygons"
    )


def _from_shapefile(path: Path) -> BaseGeometry:
    try:
        with shapefile.Reader(str(path)) as reader:
            parts = [
                shape(item.__geo_interface__)
                for item in reader.iterShapes()
                if item.shapeType != shapefile.NULL
            ]
    except (shapefile.ShapefileException, OSError, struct.error, ValueError) as error:
        raise AreaError(f"cannot read shapefile {path}: {error}") from None
    geometry = _union(parts, str(path))
    projection = path.with_suffix(".prj")
    if not projection.is_file():
        return geometry
    definition = projection.read_text(encoding="utf-8", errors="replace").strip()
    if _is_plain_wgs84(definition):
        return geometry
    return _reproject(geometry, definition, str(path))


def _is_plain_wgs84(definition: str) -> bool:
    # A geographic WGS 84 .prj needs no pyproj; anything projected or on another datum does.
    text = definition.upper().replace(" ", "_")
    geographic = text.startswith(("GEOGCS[", "GEOGCRS["))
    return geographic and ("WGS_1984" in text or '"WGS_84"' in text)


def _from_geopackage(path: Path) -> BaseGeometry:
    try:
        connection = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)
    except sqlite3.Error as error:
        raise AreaError(f"cannot open GeoPackage {path}: {error}") from None
    try:
        layers = connection.execute(
            "SELECT table_name, column_name, srs_id FROM gpkg_geometry_columns"
        ).fetchall()
        if len(layers) != 1:
            names = ", ".join(str(layer[0]) for layer in layers) or "none"
            raise AreaError(
                f"GeoPackage {path.name} has {len(layers)} vector layers ({names}): "
                "save the area as the only layer"
            )
        table, column, srs_id = layers[0]
        query = f"SELECT {_quote_identifier(column)} FROM {_quote_identifier(table)}"  # noqa: S608
        blobs = [row[0] for row in connection.execute(query) if row[0] is not None]
        srs = connection.execute(
            "SELECT organization, organization_coordsys_id, definition "
            "FROM gpkg_spatial_ref_sys WHERE srs_id = ?",
            (srs_id,),
        ).fetchone()
    except sqlite3.Error as error:
        raise AreaError(f"{path.name} is not a readable GeoPackage: {error}") from None
    finally:
        connection.close()
    parts = [part for part in (_geopackage_geometry(blob, path) for blob in blobs) if part]
    geometry = _union(parts, str(path))
    organization, code, definition = srs if srs else ("", srs_id, "")
    if int(code) in (4326, 0, -1) and str(organization).upper() in ("EPSG", "NONE", ""):
        return geometry
    crs = f"EPSG:{code}" if str(organization).upper() == "EPSG" else str(definition)
    return _reproject(geometry, crs, str(path))


def _quote_identifier(name: str) -> str:
    return '"' + str(name).replace('"', '""') + '"'


def _geopackage_geometry(blob: bytes, path: Path) -> BaseGeometry | None:
    # GeoPackage binary: "GP", version, flags, srs_id, optional envelope, then WKB
    # (OGC GeoPackage 1.3, §2.1.3). Flag bits: 0 byte order, 1-3 envelope, 4 empty,
    # 5 extended type.
    data = bytes(blob)
    if len(data) < 8 or data[:2] != b"GP":
        raise AreaError(f"{path.name} holds a geometry that is not GeoPackage binary")
    flags = data[3]
    if flags & 0b0010_0000:
        raise AreaError(f"{path.name} uses extended GeoPackage geometries, which are not supported")
    if flags & 0b0001_0000:
        return None
    envelope_bytes = {0: 0, 1: 32, 2: 48, 3: 48, 4: 64}.get((flags >> 1) & 0b111)
    if envelope_bytes is None:
        raise AreaError(f"{path.name} holds a geometry with an invalid envelope code")
    try:
        geometry: BaseGeometry = shapely.from_wkb(data[8 + envelope_bytes :])
    except shapely.errors.ShapelyError as error:
        raise AreaError(f"{path.name} holds an unreadable geometry: {error}") from None
    return geometry


def _reproject(geometry: BaseGeometry, crs: str, source: str) -> BaseGeometry:
    try:
        import pyproj  # optional: only files in another CRS need it
    except ImportError:
        raise AreaError(
            f"{source} is in {_crs_name(crs)}, not EPSG:4326: install sentinel-fetch[vector] "
            "(pyproj) to reproject it, or save it in EPSG:4326 (WGS 84)"
        ) from None
    try:
        source_crs = pyproj.CRS.from_user_input(crs)
    except pyproj.exceptions.CRSError:
        raise AreaError(f"{source} declares a CRS pyproj cannot read: {_crs_name(crs)}") from None
    if source_crs.to_epsg() == 4326 or source_crs.equals("EPSG:4326", ignore_axis_order=True):
        return geometry
    transformer = pyproj.Transformer.from_crs(source_crs, "EPSG:4326", always_xy=True)
    west, south, east, north = geometry.bounds
    # Straight edges in a projected CRS are curves in lon/lat: add vertices first so the
    # reprojected outline follows them.
    longest_edge = max(east - west, north - south) / 64
    if longest_edge > 0 and not isinstance(geometry, Point):
        geometry = shapely.segmentize(geometry, longest_edge)

    def project(xy: Any) -> Any:
        return np.column_stack(transformer.transform(xy[:, 0], xy[:, 1]))

    return shapely.transform(geometry, project)


def _crs_name(crs: str) -> str:
    if '"' in crs:
        return crs.split('"')[1]
    return crs[:60]
