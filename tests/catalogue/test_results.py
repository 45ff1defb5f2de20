"""Saving and reading back search results."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from sentinel_fetch.catalogue.product import Product
from sentinel_fetch.catalogue.query import Query, build_query
from sentinel_fetch.catalogue.results import (
    CSV_COLUMNS,
    RESULT_FORMAT,
    read_name_list,
    read_products,
    read_results,
    write_products,
)
from sentinel_fetch.errors import ResultFileError

PAGE = Path(__file__).parent / "data" / "odata_search_page.json"


@pytest.fixture
def products() -> list[Product]:
    page = json.loads(PAGE.read_text(encoding="utf-8"))
    found = [Product.from_odata(entity) for entity in page["value"]]
    # One product without GeoJSON footprint, one without any footprint.
    found.append(
        Product(
            id="c0ffee00-0000-4000-8000-000000000001",
            name="S2A_WKT_ONLY.SAFE",
            footprint="POLYGON ((1 1, 2 1, 2 2, 1 1))",
        )
    )
    found.append(
        Product(id="c0ffee00-0000-4000-8000-000000000002", name="S1A_OPER_AUX_POEORB_X.EOF")
    )
    return found


@pytest.fixture
def query() -> Query:
    return build_query(
        collections="S2",
        start="2023-10-01",
        end="2023-10-01",
        area="11,45,14,47",
        order_by="ContentDate/Start desc",
    )


@pytest.mark.parametrize("suffix", [".json", ".geojson"])
def test_round_trip(tmp_path: Path, products: list[Product], query: Query, suffix: str) -> None:
    path = write_products(products, tmp_path / f"results{suffix}", query=query)

    results = read_results(path)

    assert list(results.products) == products
    assert [p.to_dict() for p in results.products] == [p.to_dict() for p in products]
    assert results.query == query
    assert read_products(path) == products
    assert [entry.name for entry in tmp_path.iterdir()] == [f"results{suffix}"]


def test_json_document(tmp_path: Path, products: list[Product], query: Query) -> None:
    document = json.loads(
        write_products(products, tmp_path / "r.json", query=query).read_text(encoding="utf-8")
    )

    assert document["format"] == "sentinel-fetch/search-results"
    assert document["version"] == 1
    assert document["count"] == 4
    assert document["filter"].startswith("Collection/Name eq 'SENTINEL-2' and ")
    assert document["query"]["collections"] == ["SENTINEL-2"]


def test_geojson_loads_as_a_feature_collection(tmp_path: Path, products: list[Product]) -> None:
    document = json.loads(
        write_products(products, tmp_path / "r.geojson").read_text(encoding="utf-8")
    )

    assert document["type"] == "FeatureCollection"
    first = document["features"][0]
    assert first["type"] == "Feature"
    assert first["geometry"]["type"] == "Polygon"
    assert first["properties"]["name"] == products[0].name
    assert first["properties"]["cloud_cover"] == 12.48213
    assert first["properties"]["tile_id"] == "32TQM"
    assert document["features"][2]["geometry"]["type"] == "Polygon"
    assert document["features"][3]["geometry"] is None
    assert read_results(tmp_path / "r.geojson").query is None


def test_csv(tmp_path: Path, products: list[Product]) -> None:
    path = write_products(products, tmp_path / "r.csv")

    with path.open(encoding="utf-8", newline="") as file:
        rows = list(csv.DictReader(file))

    assert tuple(rows[0]) == CSV_COLUMNS
    assert rows[0]["name"] == products[0].name
    assert rows[0]["size_bytes"] == "1103458221"
    assert rows[0]["cloud_cover"] == "12.48213"
    assert rows[0]["content_start"] == "2023-10-01T10:30:19.024000Z"
    assert rows[0]["online"] == "True"
    assert rows[1]["relative_orbit"] == "168"
    assert rows[1]["cloud_cover"] == ""
    assert rows[0]["blake3"] == products[0].checksums["BLAKE3"]


def test_name_list(tmp_path: Path, products: list[Product]) -> None:
    path = write_products(products, tmp_path / "names.txt")
    path.write_text(
        path.read_text(encoding="utf-8") + "# a comment\n\n8F2D6A4E-1C3B-4E57-9A0D-5B7C2E91F4A3\n",
        encoding="utf-8",
    )

    query = read_name_list(path)

    assert query.names == tuple(product.name for product in products)
    assert query.ids == ("8f2d6a4e-1c3b-4e57-9a0d-5b7c2e91f4a3",)


def test_a_deeply_nested_result_file_is_one_result_file_error(tmp_path: Path) -> None:
    path = tmp_path / "results.json"
    document = json.dumps({"format": RESULT_FORMAT, "version": 1, "products": []})
    path.write_text(document.replace("[]", "[" * 100_000 + "]" * 100_000), encoding="utf-8")

    with pytest.raises(ResultFileError, match=r"results\.json") as info:
        read_products(path)

    assert "\n" not in str(info.value)
