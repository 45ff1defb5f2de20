"""OData rendering: filter text, page parameters, URLs."""

from __future__ import annotations

from datetime import datetime, timezone
from urllib.parse import parse_qsl, urlsplit

import pytest

from sentinel_fetch.catalogue.odata import render_filter, search_params, search_url
from sentinel_fetch.catalogue.query import Query, build_query
from sentinel_fetch.errors import QueryError
from sentinel_fetch.settings import Endpoints

UTC = timezone.utc


def attribute(name: str, value_type: str, operator: str, value: str) -> str:
    qualified = f"OData.CSC.{value_type}Attribute"
    return (
        f"Attributes/{qualified}/any(att:att/Name eq '{name}' and "
        f"att/{qualified}/Value {operator} {value})"
    )


def test_full_query_renders_in_canonical_order() -> None:
    query = build_query(
        collections=["SENTINEL-2", "SENTINEL-1"],
        product_types="L2A",
        start="2023-10-01",
        end="2023-10-01",
        area="12,45.5,13.5,46.5",
        max_cloud_cover=30,
        tiles="32TQM",
        relative_orbits=108,
        orbit_direction="DESCENDING",
        platforms="B",
        online=True,
        name_contains="N0509",
        processing_baselines="05.09",
        names="S2B_X.SAFE",
        extra_filters="not contains(Name,'_COG')",
    )

    expected = " and ".join(
        [
            "(Collection/Name eq 'SENTINEL-2' or Collection/Name eq 'SENTINEL-1')",
            attribute("productType", "String", "eq", "'S2MSI2A'"),
            "ContentDate/Start ge 2023-10-01T00:00:00.000000Z",
            "ContentDate/Start lt 2023-10-02T00:00:00.000000Z",
            "OData.CSC.Intersects(area=geography'SRID=4326;"
            "POLYGON ((13.5 45.5, 13.5 46.5, 12 46.5, 12 45.5, 13.5 45.5))')",
            attribute("cloudCover", "Double", "le", "30"),
            attribute("tileId", "String", "eq", "'32TQM'"),
            attribute("relativeOrbitNumber", "Integer", "eq", "108"),
            attribute("orbitDirection", "String", "eq", "'DESCENDING'"),
            attribute("platformSerialIdentifier", "String", "eq", "'B'"),
            "Online eq true",
            "contains(Name,'N0509')",
            attribute("processingBaseline", "String", "eq", "'05.09'"),
            "Name eq 'S2B_X.SAFE'",
            "not contains(Name,'_COG')",
        ]
    )
    assert render_filter(query) == expected


def test_dates_keep_microseconds() -> None:
    query = Query(start=datetime(2023, 1, 1, 0, 0, 0, 123456, tzinfo=UTC))

    assert render_filter(query) == "ContentDate/Start ge 2023-01-01T00:00:00.123456Z"


def test_search_params_pages() -> None:
    query = Query(collections=("SENTINEL-2",), order_by="ContentDate/Start desc")

    assert search_params(query, top=1000, skip=2000, count=True) == [
        ("$filter", "Collection/Name eq 'SENTINEL-2'"),
        ("$orderby", "ContentDate/Start desc"),
        ("$top", "1000"),
        ("$count", "true"),
        ("$expand", "Attributes"),
        ("$expand", "Assets"),
        ("$skip", "2000"),
    ]
    assert ("$orderby", "PublicationDate asc") in search_params(
        query, top=10, orderby="PublicationDate"
    )


@pytest.mark.parametrize(("top", "skip"), [(1001, 0), (-1, 0), (10, 10001), (10, -5)])
def test_search_params_limits(top: int, skip: int) -> None:
    with pytest.raises(QueryError):
        search_params(Query(online=True), top=top, skip=skip)


def test_search_url_is_percent_encoded_and_decodes_back() -> None:
    query = build_query(
        collections="S1",
        name_contains=["a&b", "it's", "50%", "x+y", "#1"],
        start="2023-01-01T00:00:00+02:00",
    )

    url = search_url(query, Endpoints(), top=100)
    parts = urlsplit(url)

    assert parts.netloc == "catalogue.dataspace.copernicus.eu"
    assert parts.path == "/odata/v1/Products"
    assert not any(char in parts.query for char in " '#")
    assert dict(parse_qsl(parts.query))["$filter"] == render_filter(query)
    assert "$expand=Attributes&$expand=Assets" in url


def test_search_url_uses_the_configured_catalogue() -> None:
    endpoints = Endpoints(catalogue="http://127.0.0.1:9999/odata/v1")

    assert search_url(Query(online=True), endpoints, top=5).startswith(
        "http://127.0.0.1:9999/odata/v1/Products?$filter=Online+eq+true&$top=5"
    )
