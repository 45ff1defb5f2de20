"""Areas of interest from every format users bring, and coverage-safe simplification."""

from __future__ import annotations

import json
import math
import random
import sqlite3
import struct
from pathlib import Path
from typing import Any

import pytest
import shapefile
import shapely
from shapely.geometry import MultiPolygon, Point, Polygon, box

from sentinel_fetch.catalogue.area import area_to_wkt, geometry_wkt, load_area
from sentinel_fetch.catalogue.odata import search_url
from sentinel_fetch.catalogue.query import build_query
from sentinel_fetch.settings import Endpoints

SQUARE_WITH_HOLE = Polygon(
    [(10, 45), (11, 45), (11, 46), (10, 46), (10, 45)],
    [[(10.2, 45.2), (10.4, 45.2), (10.4, 45.4), (10.2, 45.4), (10.2, 45.2)]],
)


def test_wkt_forms() -> None:
    assert load_area("POINT (12.49 41.89)") == Point(12.49, 41.89)
    assert load_area("SRID=4326;POLYGON((0 0,1 0,1 1,0 0))").equals(
        Polygon([(0, 0), (1, 0), (1, 1)])
    )
    with_hole = load_area(SQUARE_WITH_HOLE.wkt)
    assert isinstance(with_hole, Polygon) and len(with_hole.interiors) == 1
    multi = load_area("MULTIPOLYGON (((0 0, 1 0, 1 1, 0 0)), ((5 5, 6 5, 6 6, 5 5)))")
    assert isinstance(multi, MultiPolygon) and len(multi.geoms) == 2


def test_3d_wkt_becomes_2d() -> None:
    area = load_area("POLYGON Z ((0 0 5, 1 0 5, 1 1 5, 0 0 5))")

    assert not area.has_z


def test_bbox() -> None:
    assert load_area(" 12.0, 45.5 ,13.5,46.5").equals(box(12, 45.5, 13.5, 46.5))


GEOJSON_POLYGON = {
    "type": "Polygon",
    "coordinates": [
        list(SQUARE_WITH_HOLE.exterior.coords),
        list(SQUARE_WITH_HOLE.interiors[0].coords),
    ],
}


@pytest.mark.parametrize(
    "document",
    [
        GEOJSON_POLYGON,
        {"type": "Feature", "properties": {"name": "lake"}, "geometry": GEOJSON_POLYGON},
        {
            "type": "FeatureCollection",
            "features": [{"type": "Feature", "properties": {}, "geometry": GEOJSON_POLYGON}],
        },
    ],
)
def test_geojson_forms_keep_holes(document: dict[str, object]) -> None:
    area = load_area(json.dumps(document))

    assert isinstance(area, Polygon)
    assert area.equals(SQUARE_WITH_HOLE)
    assert len(area.interiors) == 1


def test_feature_collection_becomes_a_multipolygon() -> None:
    features = [
        {
            "type": "Feature",
            "properties": {},
            "geometry": {
                "type": "Polygon",
                "coordinates": [[[0, 0, 100], [1, 0, 100], [1, 1, 100], [0, 0, 100]]],
            },
        },
        {
            "type": "Feature",
            "properties": {},
            "geometry": {
                "type": "MultiPolygon",
                "coordinates": [[[[5, 5], [6, 5], [6, 6], [5, 5]]]],
            },
        },
        {"type": "Feature", "properties": {}, "geometry": None},
    ]

    area = load_area(json.dumps({"type": "FeatureCollection", "features": features}))

    assert isinstance(area, MultiPolygon) and len(area.geoms) == 2
    assert not area.has_z


def test_overlapping_features_are_merged() -> None:
    features = [
        {
            "type": "Feature",
            "properties": {},
            "geometry": json.loads(json.dumps(shapely.geometry.mapping(box(0, 0, 2, 2)))),
        },
        {
            "type": "Feature",
            "properties": {},
            "geometry": json.loads(json.dumps(shapely.geometry.mapping(box(1, 1, 3, 3)))),
        },
    ]

    area = load_area(json.dumps({"type": "FeatureCollection", "features": features}))

    assert isinstance(area, Polygon)
    assert area.area == pytest.approx(7)


def test_geojson_file(tmp_path: Path) -> None:
    path = tmp_path / "area.geojson"
    path.write_text(
        json.dumps({"type": "Feature", "properties": {}, "geometry": GEOJSON_POLYGON}),
        encoding="utf-8-sig",
    )

    assert load_area(path).equals(SQUARE_WITH_HOLE)
    assert load_area(str(path)).equals(SQUARE_WITH_HOLE)


def test_wkt_file(tmp_path: Path) -> None:
    path = tmp_path / "area.wkt"
    path.write_text(SQUARE_WITH_HOLE.wkt + "\n", encoding="utf-8")

    assert load_area(path).equals(SQUARE_WITH_HOLE)


def write_shapefile(base: Path, rings: list[list[tuple[float, float]]], prj: str | None) -> Path:
    with shapefile.Writer(str(base), shapeType=shapefile.POLYGON) as writer:
        writer.field("name", "C")
        writer.poly(rings)
        writer.record("area")
    if prj is not None:
        base.with_suffix(".prj").write_text(prj, encoding="utf-8")
    return base.with_suffix(".shp")


WGS84_PRJ = (
    'GEOGCS["GCS_WGS_1984",DATUM["D_WGS_1984",SPHEROID["WGS_1984",6378137.0,298.257223563]],'
    'PRIMEM["Greenwich",0.0],UNIT["Degree",0.0174532925199433]]'
)


def test_shapefile_in_wgs84_keeps_its_hole(tmp_path: Path) -> None:
    # Shapefiles store outer rings clockwise and holes counter-clockwise.
    outer = list(SQUARE_WITH_HOLE.exterior.coords)[::-1]
    hole = list(SQUARE_WITH_HOLE.interiors[0].coords)
    path = write_shapefile(tmp_path / "lake", [outer, hole], WGS84_PRJ)

    area = load_area(path)

    assert isinstance(area, Polygon)
    assert area.equals(SQUARE_WITH_HOLE)
    assert len(area.interiors) == 1


def test_shapefile_without_prj_is_taken_as_lon_lat(tmp_path: Path) -> None:
    path = write_shapefile(
        tmp_path / "plain", [[(10, 45), (10, 46), (11, 46), (11, 45), (10, 45)]], None
    )

    assert load_area(str(path)).equals(box(10, 45, 11, 46))


def utm_square() -> tuple[list[tuple[float, float]], Any]:
    """A 20 km square in UTM 32N whose south-west corner is at 11°E 45°N, and its CRS."""
    import pyproj

    to_utm = pyproj.Transformer.from_crs("EPSG:4326", "EPSG:32632", always_xy=True)
    west, south = to_utm.transform(11.0, 45.0)
    ring = [
        (west, south),
        (west, south + 20000),
        (west + 20000, south + 20000),
        (west + 20000, south),
        (west, south),
    ]
    return ring, pyproj.CRS.from_epsg(32632)


def test_shapefile_in_utm_is_reprojected(tmp_path: Path) -> None:
    pytest.importorskip("pyproj")
    ring, crs = utm_square()
    path = write_shapefile(tmp_path / "utm", [ring], crs.to_wkt(version="WKT1_ESRI"))

    area = load_area(path)

    corner = area.exterior.coords[0]
    assert corner == (pytest.approx(11.0, abs=1e-6), pytest.approx(45.0, abs=1e-6))
    west, south, east, north = area.bounds
    assert 0.25 < east - west < 0.27 and 0.17 < north - south < 0.19
    # Edges were densified before reprojection: the curved outline has many vertices.
    assert len(area.exterior.coords) > 5


def test_utm_without_pyproj_says_how_to_fix_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pytest.importorskip("pyproj")
    ring, crs = utm_square()
    path = write_shapefile(tmp_path / "utm", [ring], crs.to_wkt(version="WKT1_ESRI"))
    monkeypatch.setitem(__import__("sys").modules, "pyproj", None)

    with pytest.raises(Exception, match=r"install sentinel-fetch\[vector\]") as caught:
        load_area(path)
    assert "WGS_1984_UTM_Zone_32N" in str(caught.value)


def write_geopackage(
    path: Path, geometries: list[shapely.Geometry], srs_id: int, *, envelope: bool
) -> Path:
    connection = sqlite3.connect(path)
    with connection:
        connection.executescript(
            """
            CREATE TABLE gpkg_spatial_ref_sys (srs_name TEXT, srs_id INTEGER PRIMARY KEY,
                organization TEXT, organization_coordsys_id INTEGER, definition TEXT,
                description TEXT);
            CREATE TABLE gpkg_contents (table_name TEXT PRIMARY KEY, data_type TEXT,
                identifier TEXT, srs_id INTEGER);
            CREATE TABLE gpkg_geometry_columns (table_name TEXT, column_name TEXT,
                geometry_type_name TEXT, srs_id INTEGER, z TINYINT, m TINYINT);
            CREATE TABLE area (fid INTEGER PRIMARY KEY, geom BLOB, name TEXT);
            """
        )
        connection.execute(
            "INSERT INTO gpkg_spatial_ref_sys VALUES (?, ?, 'EPSG', ?, 'undefined', '')",
            (f"EPSG:{srs_id}", srs_id, srs_id),
        )
        connection.execute(
            "INSERT INTO gpkg_contents VALUES ('area', 'features', 'area', ?)", (srs_id,)
        )
        connection.execute(
            "INSERT INTO gpkg_geometry_columns VALUES ('area', 'geom', 'GEOMETRY', ?, 0, 0)",
            (srs_id,),
        )
        for geometry in geometries:
            flags = 0b0000_0001 | (0b0000_0010 if envelope else 0)
            header = b"GP" + bytes([0, flags]) + struct.pack("<i", srs_id)
            if envelope:
                west, south, east, north = geometry.bounds
                header += struct.pack("<4d", west, east, south, north)
            connection.execute(
                "INSERT INTO area (geom, name) VALUES (?, 'x')",
                (header + shapely.to_wkb(geometry),),
            )
    connection.close()
    return path


@pytest.mark.parametrize("envelope", [True, False])
def test_geopackage_in_wgs84(tmp_path: Path, envelope: bool) -> None:
    path = write_geopackage(
        tmp_path / "area.gpkg", [SQUARE_WITH_HOLE, box(20, 20, 21, 21)], 4326, envelope=envelope
    )

    area = load_area(path)

    assert isinstance(area, MultiPolygon)
    assert area.equals(MultiPolygon([SQUARE_WITH_HOLE, box(20, 20, 21, 21)]))


def test_geopackage_in_utm_is_reprojected(tmp_path: Path) -> None:
    pytest.importorskip("pyproj")
    ring, _ = utm_square()
    path = write_geopackage(tmp_path / "utm.gpkg", [Polygon(ring)], 32632, envelope=True)

    corner = load_area(path).exterior.coords[0]

    assert corner == (pytest.approx(11.0, abs=1e-6), pytest.approx(45.0, abs=1e-6))


def coastline(vertices: int, seed: int = 7) -> Polygon:
    """A wiggly ring around (12, 45), like a digitised coastline."""
    rng = random.Random(seed)
    points = []
    for index in range(vertices):
        angle = 2 * math.pi * index / vertices
        radius = (
            1
            + 0.15 * math.sin(7 * angle)
            + 0.05 * math.sin(41 * angle)
            + 0.02 * math.sin(173 * angle)
        )
        radius += rng.uniform(-0.005, 0.005)
        points.append((12 + 1.3 * radius * math.cos(angle), 45 + radius * math.sin(angle)))
    return Polygon(points)


def test_small_areas_are_written_exactly() -> None:
    assert area_to_wkt(SQUARE_WITH_HOLE) == geometry_wkt(SQUARE_WITH_HOLE)
    assert shapely.from_wkt(area_to_wkt(SQUARE_WITH_HOLE)).equals_exact(SQUARE_WITH_HOLE, 0)


@pytest.mark.parametrize(("max_chars", "growth"), [(4000, 1.2), (1500, 1.3), (300, 2.0)])
def test_big_coastline_is_simplified_without_losing_coverage(max_chars: int, growth: float) -> None:
    land = coastline(5000)
    assert land.is_valid and len(geometry_wkt(land)) > 100_000

    text = area_to_wkt(land, max_chars=max_chars)
    written = shapely.from_wkt(text)

    assert len(text) <= max_chars
    assert written.is_valid
    assert written.covers(land)
    # The fewer characters, the looser the outline; it never cuts into the land.
    assert written.area < land.area * growth


def test_coastline_with_a_hole_and_an_island() -> None:
    land = MultiPolygon(
        [coastline(5000).difference(box(12, 45, 12.2, 45.2)), box(20, 40, 20.5, 40.5)]
    )

    written = shapely.from_wkt(area_to_wkt(land))

    assert written.covers(land)


def test_simplified_area_keeps_the_search_url_short() -> None:
    query = build_query(
        collections="S2",
        product_types="L2A",
        start="2023-01-01",
        end="2023-12-31",
        max_cloud_cover=20,
        area=coastline(5000),
    )

    assert len(search_url(query, Endpoints(), top=1000)) < 6000
    assert shapely.from_wkt(query.area).covers(coastline(5000))


def test_many_islands_fall_back_to_a_covering_outline() -> None:
    islands = MultiPolygon(
        [
            box(10 + i * 0.01, 40 + (i % 7) * 0.01, 10.004 + i * 0.01, 40.004 + (i % 7) * 0.01)
            for i in range(400)
        ]
    )

    text = area_to_wkt(islands, max_chars=500)

    assert len(text) <= 500
    assert shapely.from_wkt(text).covers(islands)
