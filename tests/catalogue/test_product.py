"""Product: typed fields from catalogue entities (cdse-api.md §3.2, §9.2)."""

from __future__ import annotations

import json
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest

from sentinel_fetch.catalogue.product import Product
from sentinel_fetch.errors import CatalogueError, ResultFileError

UTC = timezone.utc
PAGE = Path(__file__).parent / "data" / "odata_search_page.json"


@pytest.fixture
def entities() -> list[dict[str, Any]]:
    page: dict[str, Any] = json.loads(PAGE.read_text(encoding="utf-8"))
    entities: list[dict[str, Any]] = page["value"]
    return entities


def test_sentinel_2_product(entities: list[dict[str, Any]]) -> None:
    product = Product.from_odata(entities[0])

    assert product.id == "8f2d6a4e-1c3b-4e57-9a0d-5b7c2e91f4a3"
    assert product.name == "S2B_MSIL2A_20231001T103019_N0509_R108_T32TQM_20231001T132714.SAFE"
    assert product.size == 1103458221
    assert product.checksums == {
        "MD5": "5d41402abc4b2a76b9719d911017c592",
        "BLAKE3": "6437b3ac38465133ffb63b75273a8db548c558465d79db03fd359c6cd5bd9d85",
    }
    assert product.content_start == datetime(2023, 10, 1, 10, 30, 19, 24000, tzinfo=UTC)
    assert product.content_end == product.content_start
    assert product.publication_date == datetime(2023, 10, 1, 14, 52, 33, 418207, tzinfo=UTC)
    assert product.modification_date == datetime(2023, 10, 1, 14, 53, 10, 902114, tzinfo=UTC)
    assert product.origin_date == datetime(2023, 10, 1, 14, 41, 7, tzinfo=UTC)
    assert product.eviction_date == datetime(9999, 12, 31, 23, 59, 59, 999999, tzinfo=UTC)
    assert product.online is True
    assert product.s3_path is not None and product.s3_path.startswith("/eodata/Sentinel-2/MSI/L2A/")
    assert product.footprint == (
        "POLYGON ((11.6218 45.9436, 13.0314 45.9138, 13.0713 46.9011, 11.6350 46.9322, "
        "11.6218 45.9436))"
    )
    assert product.geo_footprint is not None and product.geo_footprint["type"] == "Polygon"
    assert product.quicklook_url == (
        "https://catalogue.dataspace.copernicus.eu/odata/v1/"
        "Assets(c3e1a9b2-7d44-4f0e-8a61-2b9f0d7e5c18)/$value"
    )
    assert product.collection == "SENTINEL-2"
    assert product.cloud_cover == 12.48213
    assert product.product_type == "S2MSI2A"
    assert product.tile_id == "32TQM"
    assert product.platform == "B"
    assert product.relative_orbit == 108
    assert product.orbit_direction is None
    assert product.attributes["processingDate"] == datetime(2023, 10, 1, 13, 27, 14, tzinfo=UTC)
    assert product.file_name == product.name + ".zip"


def test_sentinel_1_product(entities: list[dict[str, Any]]) -> None:
    product = Product.from_odata(entities[1])

    assert product.collection == "SENTINEL-1"
    assert product.product_type == "IW_GRDH_1S"
    assert product.orbit_direction == "DESCENDING"
    assert product.relative_orbit == 168
    assert product.cloud_cover is None
    assert product.tile_id is None
    assert product.quicklook_url is None
    assert product.attributes["sliceProductFlag"] is False
    assert product.attributes["polarisationChannels"] == "VV&VH"
    assert product.content_end == datetime(2023, 10, 1, 5, 31, 37, 405079, tzinfo=UTC)


def test_older_and_quirky_entities() -> None:
    entity = {
        "Id": "b30f2bbf-7f02-494a-b3f4-3ea11cd3d14d",
        "Name": "S1A_OPER_AUX_POEORB_OPOD_20210301T144249_V20140411T225944_20140413T005944.EOF",
        "ContentLength": 0,
        "Checksum": [],
        "OriginDate": "2021-03-01T14:43:00.123Z",
        "PublicationDate": "2021-03-01T16:00:00.5+01:00",
        "EvictionDate": "",
        "Online": False,
        "Footprint": None,
        "GeoFootprint": None,
        "ContentDate": {"Start": "2014-04-11T22:59:44.000Z", "End": "2014-04-13T00:59:44.000Z"},
        "Attributes": [
            {"Name": "spatialResolution", "Value": "2.3", "ValueType": "Integer"},
            {"Name": "orbitNumber", "Value": "12345", "ValueType": "Integer"},
            {
                "Name": "beginningDateTime",
                "Value": "2014-04-11T22:59:44+00:00",
                "ValueType": "DateTimeOffset",
            },
            {"Name": "productType", "Value": "AUX_POEORB", "ValueType": "String"},
        ],
    }

    product = Product.from_odata(entity)

    assert product.size == 0 and product.checksums == {}
    assert product.origin_date == datetime(2021, 3, 1, 14, 43, 0, 123000, tzinfo=UTC)
    assert product.publication_date == datetime(2021, 3, 1, 15, 0, 0, 500000, tzinfo=UTC)
    assert product.eviction_date is None
    assert product.online is False
    assert product.footprint is None and product.geo_footprint is None
    assert product.attributes["spatialResolution"] == "2.3"
    assert product.attributes["orbitNumber"] == 12345
    assert product.attributes["beginningDateTime"] == datetime(2014, 4, 11, 22, 59, 44, tzinfo=UTC)
    assert product.collection == "SENTINEL-1"
    # Orbit files are served as they are, not zipped.
    assert product.file_name == product.name
    assert Product.from_dict(product.to_dict()) == product


def test_dict_round_trip_is_lossless(entities: list[dict[str, Any]]) -> None:
    for entity in entities:
        product = Product.from_odata(entity)
        through_json = json.loads(json.dumps(product.to_dict()))

        assert Product.from_dict(through_json) == product


def test_products_hash_by_id(entities: list[dict[str, Any]]) -> None:
    products = {Product.from_odata(entity) for entity in entities + entities}

    assert len(products) == 2


def test_file_names_follow_the_download_service() -> None:
    s5p = Product(
        id="x",
        name="S5P_OFFL_L2__NO2____20230801T000000_20230801T010000_30000_03_020500_20230802T000000.nc",
    )
    gnss = Product(id="y", name="S1A_OPER_AUX_GNSSRD_X", attributes={"productType": "AUX_GNSSRD"})

    assert s5p.collection is None
    assert Product(id="x", name=s5p.name, collection="SENTINEL-5P").file_name == f"{s5p.name}.zip"
    eof = Product(id="z", name="S1A_OPER_AUX_POEORB_OPOD_20210301T144249_V20140411T225944.EOF")
    assert eof.file_name == eof.name
    assert gnss.file_name == "S1A_OPER_AUX_GNSSRD_X.tgz"


def test_unreadable_entity() -> None:
    with pytest.raises(CatalogueError, match="unreadable product") as caught:
        Product.from_odata({"Name": "S2A_X.SAFE", "ContentDate": {"Start": "yesterday"}})
    assert caught.value.status == 200
    assert "\n" not in str(caught.value)


def test_unreadable_saved_product() -> None:
    with pytest.raises(ResultFileError, match="unreadable product"):
        Product.from_dict({"id": "x", "name": "n", "attributes": [{"name": "a"}]})


def test_a_missing_geo_footprint_is_read_from_the_wkt(entities: list[dict[str, Any]]) -> None:
    # A 2023 capture has no GeoFootprint key at all (cdse-api.md §3.2).
    entity = {k: v for k, v in entities[0].items() if k != "GeoFootprint"}

    product = Product.from_odata(entity)

    assert product.geo_footprint == Product.from_odata(entities[0]).geo_footprint
    assert Product.from_dict(json.loads(json.dumps(product.to_dict()))) == product
