"""Search results as a GeoDataFrame (the geo extra), with the real geopandas."""

from __future__ import annotations

from pathlib import Path

import geopandas

from sentinel_fetch.api import search
from sentinel_fetch.catalogue.footprint import footprint_of
from sentinel_fetch.catalogue.product import Product
from sentinel_fetch.emulator import Emulator
from sentinel_fetch.geodata import COLUMNS, to_geodataframe
from sentinel_fetch.settings import Settings


def test_search_results_become_a_geodataframe(
    cdse: Emulator, settings: Settings, tmp_path: Path
) -> None:
    result = search(
        settings=settings,
        collections=["SENTINEL-2"],
        tiles=["32TPS"],
        start="2023-07-01",
        end="2023-07-12",
    )
    frame = result.to_geodataframe()
    products = list(result)
    assert isinstance(frame, geopandas.GeoDataFrame)
    assert list(frame.columns) == [*COLUMNS, "geometry"]
    assert list(frame["name"]) == [p.name for p in products]
    assert frame.crs.to_epsg() == 4326
    assert set(frame["tile"]) == {"32TPS"}
    # The geometry is each product's own footprint.
    for geometry, product in zip(frame.geometry, products, strict=True):
        assert geometry.equals(footprint_of(product))
    frame.to_file(tmp_path / "results.gpkg")
    assert len(geopandas.read_file(tmp_path / "results.gpkg")) == len(products)


def test_a_product_without_a_footprint_has_no_geometry() -> None:
    frame = to_geodataframe([Product(id="x", name="S1A_AUX_POEORB.EOF")])
    assert frame.geometry.isna().all() and frame["name"][0] == "S1A_AUX_POEORB.EOF"
