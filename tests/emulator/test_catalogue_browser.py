"""The Copernicus Browser URLs of cdse-api.md §4, pasted as-is, against the catalogue.

Each result is checked against an expectation computed without the catalogue's SQL:
stored rows filtered in Python with shapely (``raw_products``), and every returned entity
is checked to really satisfy the filter (collection, name, attributes, dates, footprint).
"""

# Fixtures come from the support module and are named as test parameters.
# ruff: noqa: F811

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone

import shapely

from sentinel_fetch.emulator.catalogue import CatalogueStore
from sentinel_fetch.emulator.model import Handler

from .test_catalogue_support import (
    all_pages,
    archives,  # noqa: F401
    attribute,
    epoch_us,
    follow,
    geometry,
    handler,  # noqa: F401
    parse_time,
    raw_products,
    store,  # noqa: F401
)

URL_S5P_NO2 = (
    "https://catalogue.dataspace.copernicus.eu/odata/v1/Products?&$filter=((Collection/Name%20eq"
    "%20%27SENTINEL-5P%27%20and%20(Attributes/OData.CSC.StringAttribute/any(att:att/Name%20eq%20"
    "%27instrumentShortName%27%20and%20att/OData.CSC.StringAttribute/Value%20eq%20%27TROPOMI%27)"
    "%20and%20(contains(Name,%27L2__NO2___%27)%20and%20OData.CSC.Intersects(area=geography%27SRID"
    "=4326;POLYGON%20((-8.09%2024.61,%2049.56%2024.61,%2049.56%2066.88,%20-8.09%2066.88,%20-8.09%20"
    "24.61))%27)))%20and%20Online%20eq%20true)%20and%20ContentDate/Start%20ge%202023-08-01T00:00:00"
    ".000Z%20and%20ContentDate/Start%20lt%202023-12-31T23:59:59.999Z)&$orderby=ContentDate/Start"
    "%20desc&$expand=Attributes&$count=True&$top=50&$expand=Assets&$skip=0"
)
URL_S1_GRD = (
    "https://catalogue.dataspace.copernicus.eu/odata/v1/Products?&$filter=((Collection/Name%20eq"
    "%20%27SENTINEL-1%27%20and%20(Attributes/OData.CSC.StringAttribute/any(att:att/Name%20eq%20"
    "%27instrumentShortName%27%20and%20att/OData.CSC.StringAttribute/Value%20eq%20%27SAR%27)%20and"
    "%20(contains(Name,%27GRD%27)%20and%20not%20contains(Name,%27_COG%27)%20and%20OData.CSC."
    "Intersects(area=geography%27SRID=4326;POLYGON%20((102.09%2016.46,%20102.14%2016.46,%20102.14"
    "%2016.5,%20102.09%2016.5,%20102.09%2016.46))%27)))%20and%20(Online%20eq%20true%20and%20"
    "Attributes/OData.CSC.StringAttribute/any(att:att/Name%20eq%20%27platformSerialIdentifier%27"
    "%20and%20att/OData.CSC.StringAttribute/Value%20eq%20%27A%27)%20and%20Attributes/OData.CSC."
    "StringAttribute/any(att:att/Name%20eq%20%27operationalMode%27%20and%20att/OData.CSC."
    "StringAttribute/Value%20eq%20%27IW%27)))%20and%20ContentDate/Start%20ge%20{query_date}T00:00"
    ":00.000Z%20and%20ContentDate/Start%20lt%20{query_date}T23:59:59.999Z)&$orderby=ContentDate/"
    "Start%20desc&$expand=Attributes&$count=True&$top=50&$expand=Assets&$skip=0"
)
URL_S2_CLOUD = (
    "https://catalogue.dataspace.copernicus.eu/odata/v1/Products?&$filter=(Collection/Name%20eq"
    "%20%27{platform_name}%27%20and%20(Attributes/OData.CSC.StringAttribute/any(att:att/Name%20eq"
    "%20%27instrumentShortName%27%20and%20att/OData.CSC.StringAttribute/Value%20eq%20%27MSI%27)"
    "%20and%20Attributes/OData.CSC.DoubleAttribute/any(att:att/Name%20eq%20%27cloudCover%27%20and"
    "%20att/OData.CSC.DoubleAttribute/Value%20le%20{cloud_cover_percentage})%20and%20(contains"
    "(Name,%27{type}%27)%20and%20OData.CSC.Intersects(area=geography%27SRID=4326;{footprint}%27)))"
    "%20and%20Online%20eq%20true)%20and%20ContentDate/Start%20ge%20{start_date}T00:00:00.000Z%20and"
    "%20ContentDate/Start%20lt%20{end_date}T23:59:59.999Z&$orderby=ContentDate/Start%20desc&$expand"
    "=Attributes&$count=True&$top=50&$expand=Assets&$skip=0"
)

_MS = 1000


def _utc_ms(text: str) -> int:
    return epoch_us(datetime.fromisoformat(text).replace(tzinfo=timezone.utc))


def test_s5p_no2_url_pages_to_exactly_the_expected_products(
    handler: Handler, store: CatalogueStore
) -> None:
    area = shapely.box(-8.09, 24.61, 49.56, 66.88)
    start, end = _utc_ms("2023-08-01T00:00:00"), _utc_ms("2023-12-31T23:59:59.999")
    expected = {
        p.id
        for p in raw_products(store, "SENTINEL-5P", start, end)
        if "L2__NO2___" in p.name and p.online and p.footprint.intersects(area)
    }
    assert len(expected) > 500  # "many products" over Europe in five months

    first = follow(handler, URL_S5P_NO2)
    assert first.status == 200
    assert first.json["@odata.count"] == len(expected)
    assert list(first.json)[:3] == ["@odata.context", "@odata.count", "value"]
    assert first.json["@odata.context"] == "$metadata#Products(Attributes(),Assets())"

    products = all_pages(handler, URL_S5P_NO2)
    ids = [p["Id"] for p in products]
    assert len(ids) == len(set(ids)), "a product appeared on two pages"
    assert set(ids) == expected
    starts = [parse_time(p["ContentDate"]["Start"]) for p in products]
    assert starts == sorted(starts, reverse=True)
    for product in products:
        assert "L2__NO2___" in product["Name"] and product["Name"].endswith(".nc")
        assert attribute(product, "instrumentShortName") == "TROPOMI"
        assert product["Online"] is True
        assert geometry(product).intersects(area)
        assert product["Assets"][0]["Type"] == "QUICKLOOK"


def _browser_dates(store: CatalogueStore) -> list[date]:
    return store.sensing_dates("SENTINEL-1", 102.115, 16.48, product_type="GRD", platform="A")


def test_s1_grd_url_finds_products_on_the_dates_the_helper_gives(
    handler: Handler, store: CatalogueStore
) -> None:
    area = shapely.box(102.09, 16.46, 102.14, 16.5)
    dates = [d for d in _browser_dates(store) if d.year == 2023]
    assert dates, "the Thailand example needs S1A IW GRD passes"
    found_any = False
    for day in dates[:3]:
        reply = follow(handler, URL_S1_GRD.format(query_date=day.isoformat()))
        assert reply.status == 200, reply.json
        products = reply.json["value"]
        assert reply.json["@odata.count"] == len(products)
        found_any |= bool(products)
        start = datetime(day.year, day.month, day.day, tzinfo=timezone.utc)
        for product in products:
            assert "GRD" in product["Name"] and "_COG" not in product["Name"]
            assert product["Name"].startswith("S1A_IW_GRDH_1SDV_")
            assert attribute(product, "platformSerialIdentifier") == "A"
            assert attribute(product, "operationalMode") == "IW"
            assert attribute(product, "instrumentShortName") == "SAR"
            sensed = parse_time(product["ContentDate"]["Start"])
            assert start <= sensed < start + timedelta(days=1)
            assert geometry(product).intersects(area)
            assert product["Online"] is True
    assert found_any


def test_s1_grd_url_is_empty_on_a_day_without_passes(
    handler: Handler, store: CatalogueStore
) -> None:
    dates = set(_browser_dates(store))
    day = date(2023, 3, 1)
    while day in dates:
        day += timedelta(days=1)
    reply = follow(handler, URL_S1_GRD.format(query_date=day.isoformat()))
    assert reply.status == 200
    assert reply.json["value"] == [] and reply.json["@odata.count"] == 0
    assert "@odata.nextLink" not in reply.json


def test_s2_cloud_cover_url_over_bavaria(handler: Handler, store: CatalogueStore) -> None:
    footprint = "POLYGON ((11.2 47.9, 11.9 47.9, 11.9 48.3, 11.2 48.3, 11.2 47.9))"
    url = URL_S2_CLOUD.format(
        platform_name="SENTINEL-2",
        cloud_cover_percentage=30,
        type="L2A",
        footprint=footprint.replace(" ", "%20"),
        start_date="2023-06-01",
        end_date="2023-08-31",
    )
    area = shapely.from_wkt(footprint)
    start, end = _utc_ms("2023-06-01T00:00:00"), _utc_ms("2023-08-31T23:59:59.999")
    expected = {
        p.id
        for p in raw_products(store, "SENTINEL-2", start, end)
        if "L2A" in p.name
        and p.online
        and p.cloud_cover is not None
        and p.cloud_cover <= 30
        and p.footprint.intersects(area)
    }
    assert expected
    products = all_pages(handler, url)
    assert {p["Id"] for p in products} == expected
    for product in products:
        assert "_MSIL2A_" in product["Name"]
        assert attribute(product, "cloudCover") <= 30
        assert attribute(product, "instrumentShortName") == "MSI"
        assert geometry(product).intersects(area)


def test_s2_cloud_cover_url_with_l1c_over_asia(handler: Handler) -> None:
    footprint = "POLYGON ((60 5, 146 5, 146 56, 60 56, 60 5))"
    url = URL_S2_CLOUD.format(
        platform_name="SENTINEL-2",
        cloud_cover_percentage=50,
        type="L1C",
        footprint=footprint.replace(" ", "%20"),
        start_date="2022-01-01",
        end_date="2023-12-31",
    )
    reply = follow(handler, url)
    assert reply.status == 200
    assert reply.json["@odata.count"] > 50
    for product in reply.json["value"]:
        assert "_MSIL1C_" in product["Name"]
        assert attribute(product, "cloudCover") <= 50
