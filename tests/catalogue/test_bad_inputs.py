"""Every bad input raises the right error with one line that names the problem."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
import shapely

from sentinel_fetch.api import download, search
from sentinel_fetch.catalogue.area import load_area
from sentinel_fetch.catalogue.browser_url import parse_search_url
from sentinel_fetch.catalogue.filter import parse_filter
from sentinel_fetch.catalogue.product import Product
from sentinel_fetch.catalogue.query import Query, build_query
from sentinel_fetch.catalogue.results import read_products, write_products
from sentinel_fetch.errors import (
    AreaError,
    BrowserURLError,
    ConfigError,
    FilterSyntaxError,
    InputError,
    QueryError,
    ResultFileError,
    SentinelFetchError,
)
from sentinel_fetch.settings import Endpoints, Settings

DATA = Path(__file__).parent / "data"
SEARCH = "https://catalogue.dataspace.copernicus.eu/odata/v1/Products"
SEARCH_PORT = "https://catalogue.dataspace.copernicus.eu:99999/odata/v1/Products"
S5P_URL = (DATA / "browser_s5p_no2.txt").read_text(encoding="utf-8").strip()


def url(text: str) -> Callable[[], object]:
    return lambda: parse_search_url(text, Endpoints())


def text_filter(text: str) -> Callable[[], object]:
    return lambda: parse_filter(text)


def area(value: str) -> Callable[[], object]:
    return lambda: load_area(value)


CASES: list[tuple[str, Callable[[], object], type[SentinelFetchError], str]] = [
    # --- URLs ---
    (
        "other host",
        url("https://example.com/odata/v1/Products?$filter=Online%20eq%20true"),
        BrowserURLError,
        "is not the CDSE catalogue",
    ),
    (
        "download host",
        url(
            "https://download.dataspace.copernicus.eu/odata/v1/Products?$filter=Online%20eq%20true"
        ),
        BrowserURLError,
        "download.dataspace.copernicus.eu is not the CDSE catalogue",
    ),
    (
        "opensearch",
        url(
            "https://catalogue.dataspace.copernicus.eu/resto/api/collections/Sentinel2/search.json?cloudCover=[0,10]"
        ),
        BrowserURLError,
        "OpenSearch (resto)",
    ),
    (
        "stac",
        url("https://stac.dataspace.copernicus.eu/v1/search?collections=sentinel-2-l2a"),
        BrowserURLError,
        "STAC",
    ),
    (
        "legacy stac",
        url("https://catalogue.dataspace.copernicus.eu/stac/collections/SENTINEL-2/items"),
        BrowserURLError,
        "STAC",
    ),
    (
        "single product",
        url(f"{SEARCH}(8f2d6a4e-1c3b-4e57-9a0d-5b7c2e91f4a3)"),
        BrowserURLError,
        "single product",
    ),
    (
        "product download",
        url(f"{SEARCH}(8f2d6a4e-1c3b-4e57-9a0d-5b7c2e91f4a3)/$value"),
        BrowserURLError,
        "single product",
    ),
    (
        "browser page",
        url("https://browser.dataspace.copernicus.eu/?zoom=5&lat=45&lng=12&datasetId=S2_L2A_CDAS"),
        BrowserURLError,
        "page address",
    ),
    (
        "other catalogue path",
        url("https://catalogue.dataspace.copernicus.eu/odata/v1/Attributes(SENTINEL-2)"),
        BrowserURLError,
        "not the catalogue's product search",
    ),
    (
        "placeholder",
        url((DATA / "browser_s1_grd_template.txt").read_text(encoding="utf-8")),
        BrowserURLError,
        "{query_date}",
    ),
    (
        "placeholders",
        url((DATA / "browser_s2_cloud_template.txt").read_text(encoding="utf-8")),
        BrowserURLError,
        "{platform_name}",
    ),
    (
        "no filter",
        url(f"{SEARCH}?&$orderby=ContentDate/Start%20desc&$top=50"),
        BrowserURLError,
        "no $filter",
    ),
    ("empty filter", url(f"{SEARCH}?&$filter=&$top=50"), BrowserURLError, "$filter is empty"),
    (
        "two filters",
        url(f"{SEARCH}?$filter=Online%20eq%20true&$filter=Online%20eq%20false"),
        BrowserURLError,
        "$filter twice",
    ),
    ("not a url", url("Collection/Name eq 'SENTINEL-2'"), BrowserURLError, "is not a URL"),
    ("empty", url("  \n "), BrowserURLError, "empty"),
    ("two urls", url(f"{S5P_URL}\n{S5P_URL}"), BrowserURLError, "2 URLs"),
    (
        "ftp",
        url("ftp://catalogue.dataspace.copernicus.eu/odata/v1/Products?$filter=x"),
        BrowserURLError,
        "the text is not a URL",
    ),
    (
        "curl without url",
        url("curl -H 'accept: */*'"),
        BrowserURLError,
        "curl command holds no http(s) URL",
    ),
    ("browser url cut", url(S5P_URL[:400]), BrowserURLError, "the URL ends inside its $filter"),
    (
        "truncated in a string",
        url(S5P_URL[:400].replace("?&", "?")),
        FilterSyntaxError,
        "the filter looks cut short: it ends inside a quoted string (opened at character",
    ),
    (
        "cut in an escape",
        url(f"{SEARCH}?$filter=Online%20eq%2"),
        FilterSyntaxError,
        "a stray '%' at character",
    ),
    (
        "bare name",
        text_filter("Online eq true and ContentDate/Start"),
        FilterSyntaxError,
        "'ContentDate/Start' at character 20 is not a condition",
    ),
    (
        "truncated in parentheses",
        url(S5P_URL[: S5P_URL.index("%20and%20ContentDate")].replace("?&", "?")),
        FilterSyntaxError,
        "unbalanced parenthesis at character 1: this '(' is never closed (it looks cut short)",
    ),
    (
        "bad orderby",
        url(f"{SEARCH}?$filter=Online%20eq%20true&$orderby=Name%20asc"),
        QueryError,
        "cannot order by 'Name asc'",
    ),
    (
        "reversed dates",
        url(
            f"{SEARCH}?$filter=ContentDate/Start%20ge%202023-02-01%20and%20ContentDate/Start%20lt%202023-01-01"
        ),
        QueryError,
        "is not after the start",
    ),
    (
        "invalid area in url",
        url(
            f"{SEARCH}?$filter=OData.CSC.Intersects(area=geography%27SRID=4326;POLYGON((0%200,2%202,2%200,0%202,0%200))%27)"
        ),
        AreaError,
        "self-intersection at lon 1, lat 1",
    ),
    # --- filters ---
    (
        "closing parenthesis",
        text_filter("Online eq true) and Name eq 'a'"),
        FilterSyntaxError,
        "unbalanced parenthesis at character 15",
    ),
    (
        "open parenthesis",
        text_filter("(Online eq true and (Name eq 'a')"),
        FilterSyntaxError,
        "unbalanced parenthesis at character 1",
    ),
    (
        "open string",
        text_filter("Name eq 'S2A_MSIL2A"),
        FilterSyntaxError,
        "ends inside a quoted string",
    ),
    ("ends early", text_filter("Online eq true and Name eq"), FilterSyntaxError, "ends too early"),
    (
        "datetime prefix",
        text_filter("ContentDate/Start gt datetime'2023-01-01T00:00:00'"),
        FilterSyntaxError,
        "datetime'...'",
    ),
    ("double quotes", text_filter('Name eq "a"'), FilterSyntaxError, "single quotes"),
    (
        "plus became space",
        text_filter("ContentDate/Start ge 2023-01-01T00:00:00.000 02:00"),
        FilterSyntaxError,
        "%2B",
    ),
    (
        "impossible date",
        text_filter("ContentDate/Start ge 2023-02-30T00:00:00.000Z"),
        FilterSyntaxError,
        "'2023-02-30T00:00:00.000Z' is an impossible date",
    ),
    (
        "seven digits",
        text_filter("ContentDate/Start ge 2023-01-01T00:00:00.0000001Z"),
        FilterSyntaxError,
        "more than 6 fraction digits",
    ),
    (
        "unknown geometry",
        text_filter("OData.CSC.Intersects(area=geography'SRID=4326;CIRCLE(1 2)')"),
        FilterSyntaxError,
        "'CIRCLE' is not a supported geometry type",
    ),
    (
        "bad nesting",
        text_filter("OData.CSC.Intersects(area=geography'SRID=4326;POLYGON((1 2, 3 4, 1 2)))')"),
        FilterSyntaxError,
        "unexpected ')' at character 71",
    ),
    (
        "wrong depth",
        text_filter("OData.CSC.Intersects(area=geography'SRID=4326;POLYGON(1 2, 3 4, 1 2)')"),
        FilterSyntaxError,
        "POLYGON coordinates are nested 1 deep",
    ),
    (
        "chained comparison",
        text_filter("Collection/Name eq 'A' eq 'B'"),
        FilterSyntaxError,
        "unexpected 'eq' at character 24",
    ),
    ("blank filter", text_filter("   "), FilterSyntaxError, "the filter is empty"),
    (
        "filter placeholder",
        text_filter("Collection/Name eq '{platform_name}'"),
        FilterSyntaxError,
        "placeholder {platform_name}",
    ),
    (
        "stray character",
        text_filter("Online eq true & Name eq 'a'"),
        FilterSyntaxError,
        "unexpected character '&' at character 16",
    ),
    # --- values ---
    (
        "unknown collection",
        lambda: build_query(collections="SENTINEL-22"),
        QueryError,
        "unknown collection 'SENTINEL-22'",
    ),
    (
        "impossible start",
        lambda: build_query(start="2023-02-30"),
        QueryError,
        "start '2023-02-30' is an impossible date",
    ),
    (
        "unreadable end",
        lambda: build_query(end="yesterday"),
        QueryError,
        "end 'yesterday' is not a date",
    ),
    (
        "end before start",
        lambda: build_query(start="2023-03-01", end="2023-02-01"),
        QueryError,
        "is not after the start",
    ),
    (
        "cloud cover",
        lambda: build_query(max_cloud_cover=150),
        QueryError,
        "cloud cover 150 is outside 0..100",
    ),
    (
        "cloud cover text",
        lambda: build_query(max_cloud_cover="low"),
        QueryError,
        "cloud cover 'low' is not a number",
    ),
    (
        "orbit",
        lambda: build_query(relative_orbits=200),
        QueryError,
        "relative orbit 200 is outside 1..175",
    ),
    (
        "platform",
        lambda: build_query(platforms="E"),
        QueryError,
        "platform 'E' is not a satellite letter",
    ),
    ("tile", lambda: build_query(tiles="32IQM"), QueryError, "tile '32IQM' is not an MGRS tile id"),
    (
        "product id",
        lambda: build_query(ids="8f2d6a4e-nope"),
        QueryError,
        "product id '8f2d6a4e-nope' is not a UUID",
    ),
    (
        "baseline",
        lambda: build_query(processing_baselines="5.9.1"),
        QueryError,
        "processing baseline '5.9.1'",
    ),
    (
        "direction",
        lambda: build_query(orbit_direction="north"),
        QueryError,
        "orbit direction 'north' is not ASCENDING or DESCENDING",
    ),
    (
        "product type",
        lambda: build_query(product_types="L2A; DROP"),
        QueryError,
        "is not a product type name",
    ),
    ("name with space", lambda: build_query(names="S2A MSIL2A"), QueryError, "contains a space"),
    ("nothing", lambda: Query(), QueryError, "the search has no condition"),
    (
        "bad extra filter",
        lambda: build_query(extra_filters="Online eq"),
        FilterSyntaxError,
        "ends too early",
    ),
    # --- areas ---
    (
        "self-intersection",
        area("POLYGON ((0 0, 2 2, 2 0, 0 2, 0 0))"),
        AreaError,
        "self-intersection at lon 1, lat 1",
    ),
    ("unclosed ring", area("POLYGON ((0 0, 1 0, 1 1, 0 1))"), AreaError, "unclosed ring"),
    (
        "lat,lon order",
        area("POLYGON ((45 100, 46 100, 46 101, 45 100))"),
        AreaError,
        "look like lat,lon",
    ),
    ("longitude range", area("POINT (200 10)"), AreaError, "longitude is outside -180..180"),
    (
        "projected",
        area("POLYGON ((500000 5000000, 510000 5000000, 510000 5010000, 500000 5000000))"),
        AreaError,
        "look projected",
    ),
    ("empty geometry", area("POLYGON EMPTY"), AreaError, "the area is empty"),
    ("line", area("LINESTRING (0 0, 1 1)"), AreaError, "a LineString is not an area"),
    ("bbox west>east", area("13.5,45.5,12,46.5"), AreaError, "bbox west 13.5 is east of east 12"),
    (
        "bbox south>north",
        area("12,46.5,13.5,45.5"),
        AreaError,
        "bbox south 46.5 is north of north 45.5",
    ),
    ("bbox lat,lon", area("45.5,120,46.5,121"), AreaError, "looks like south,west,north,east"),
    ("bbox flat", area("12,45,12,46"), AreaError, "the bbox has no area"),
    (
        "geojson open ring",
        area('{"type": "Polygon", "coordinates": [[[0, 0], [1, 0], [1, 1]]]}'),
        AreaError,
        "unclosed ring in the GeoJSON text",
    ),
    (
        "geojson nested 100,000 deep",
        area('{"type": "Polygon", "coordinates": ' + "[" * 100_000 + "]" * 100_000 + "}"),
        AreaError,
        "the GeoJSON text is JSON nested deeper than 64 levels",
    ),
    (
        "geojson syntax",
        area('{"type": "Polygon", "coordinates": [[[0, 0]'),
        AreaError,
        "the GeoJSON text is not valid JSON",
    ),
    (
        "geojson mixed",
        area(
            '{"type": "GeometryCollection", "geometries": ['
            '{"type": "Point", "coordinates": [0, 0]}, '
            '{"type": "Polygon", "coordinates": [[[0, 0], [1, 0], [1, 1], [0, 0]]]}]}'
        ),
        AreaError,
        "mixes Point, Polygon",
    ),
    (
        "missing file",
        area("/nowhere/area.geojson"),
        AreaError,
        "area file /nowhere/area.geojson does not exist",
    ),
    ("kml", area("trip.kml"), AreaError, "cannot read the area 'trip.kml'"),
    ("bad wkt", area("POLYGON ((0 0, 1 0, 1 1, 0 0)"), AreaError, "not readable WKT"),
    ("other srid", area("SRID=3857;POINT (1 2)"), AreaError, "SRID=3857"),
    # --- areas from Python ---
    ("area of another type", lambda: build_query(area=5), AreaError, "cannot be given as int"),
    ("area bbox of 3", lambda: build_query(area=(11, 46, 12)), AreaError, "4 numbers"),
    (
        "area bbox of text",
        lambda: build_query(area=("11", "46", "12", "47")),
        AreaError,
        "4 numbers",
    ),
    ("area bbox swapped", lambda: build_query(area=[12, 46, 11, 47]), AreaError, "bbox west 12"),
    ("area dict not geojson", lambda: build_query(area={"a": 1}), AreaError, "not GeoJSON"),
    ("area through search", lambda: search(area=b"11,46,12,47"), AreaError, "bytes"),
    # --- addresses urlsplit reads lazily or not at all ---
    (
        "url port out of range",
        url(f"{SEARCH_PORT}?$filter=Online%20eq%20true"),
        BrowserURLError,
        "invalid port 99999",
    ),
    (
        "url broken ipv6 host",
        url("https://[catalogue.dataspace.copernicus.eu/odata/v1/Products?$filter=Online"),
        BrowserURLError,
        "IPv6",
    ),
    (
        "settings of another type",
        lambda: search(collections="S2", settings="https://catalogue.example"),
        ConfigError,
        "sentinel_fetch.Settings",
    ),
    # --- Python API calls a user gets wrong ---
    (
        "misspelled search field",
        lambda: search(colections="S2"),
        QueryError,
        "unknown search field 'colections': did you mean collections?",
    ),
    (
        "download of names",
        lambda: download(["S2A_MSIL2A_20230624T101427_N0509_R051_T33TTN_20230624T120538.SAFE"]),
        InputError,
        "not str: search for names first",
    ),
    ("download of a number", lambda: download(5), InputError, "not int"),
    (
        "credentials of another type",
        lambda: download([], credentials="me@example.com"),
        InputError,
        "sentinel_fetch.Credentials",
    ),
    (
        "a limit given to Settings",
        lambda: Settings.from_env(workers=3),
        ConfigError,
        "workers is not a field of Settings (a limit",
    ),
    # --- product data ---
    (
        "entity without id",
        lambda: Product.from_odata({"Name": "x"}),
        SentinelFetchError,
        "unreadable product x",
    ),
]


@pytest.mark.parametrize(
    ("call", "error", "words"), [case[1:] for case in CASES], ids=[case[0] for case in CASES]
)
def test_bad_input(call: Callable[[], object], error: type[SentinelFetchError], words: str) -> None:
    with pytest.raises(error) as caught:
        call()

    message = str(caught.value)
    assert type(caught.value) is error or error is SentinelFetchError
    assert "\n" not in message
    assert words in message, message


def test_at_least_25_distinct_bad_inputs() -> None:
    assert len({case[0] for case in CASES}) >= 25


def test_projected_shapefile_without_pyproj(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import shapefile

    with shapefile.Writer(str(tmp_path / "utm"), shapeType=shapefile.POLYGON) as writer:
        writer.field("name", "C")
        writer.poly([[(500000, 5000000), (500000, 5010000), (510000, 5010000), (500000, 5000000)]])
        writer.record("a")
    (tmp_path / "utm.prj").write_text(
        'PROJCS["WGS_1984_UTM_Zone_32N",GEOGCS["GCS_WGS_1984"]]', encoding="utf-8"
    )
    monkeypatch.setitem(sys.modules, "pyproj", None)

    with pytest.raises(AreaError) as caught:
        load_area(tmp_path / "utm.shp")

    assert str(caught.value).endswith(
        "is in WGS_1984_UTM_Zone_32N, not EPSG:4326: install sentinel-fetch[vector] (pyproj) "
        "to reproject it, or save it in EPSG:4326 (WGS 84)"
    )


@pytest.mark.parametrize(
    ("name", "content", "words"),
    [
        ("results.xlsx", None, "cannot read results from results.xlsx"),
        ("foreign.json", json.dumps({"value": []}), "is not a sentinel-fetch result file"),
        (
            "foreign.geojson",
            json.dumps({"type": "FeatureCollection", "features": []}),
            "not a GeoJSON file written by sentinel-fetch",
        ),
        ("broken.json", "{not json", "is not a JSON file"),
        (
            "newer.json",
            json.dumps({"format": "sentinel-fetch/search-results", "version": 99, "products": []}),
            "newer sentinel-fetch",
        ),
        ("table.csv", "name,id\n", "CSV results are for people"),
        ("names.txt", "S2A_X.SAFE\n", "is a list of names or ids"),
        ("missing.json", None, "cannot read"),
    ],
)
def test_bad_result_files(tmp_path: Path, name: str, content: str | None, words: str) -> None:
    path = tmp_path / name
    if content is not None:
        path.write_text(content, encoding="utf-8")

    with pytest.raises(ResultFileError) as caught:
        read_products(path)

    assert "\n" not in str(caught.value)
    assert words in str(caught.value)


def test_unknown_result_extension(tmp_path: Path) -> None:
    with pytest.raises(
        ResultFileError,
        match=r"cannot save results as r.xlsx: use .json, .geojson, .csv, .ndjson or .txt",
    ):
        write_products([], tmp_path / "r.xlsx")


class _Feature:
    """A third-party object describing itself as GeoJSON (like a geopandas row)."""

    __geo_interface__ = {  # noqa: RUF012 - read, never changed
        "type": "Feature",
        "geometry": {
            "type": "Polygon",
            "coordinates": [[[11, 46], [12, 46], [12, 47], [11, 47], [11, 46]]],
        },
        "properties": {},
    }


@pytest.mark.parametrize(
    "value",
    [
        pytest.param((11, 46, 12, 47), id="bbox tuple"),
        pytest.param([11.0, 46.0, 12.0, 47.0], id="bbox list"),
        pytest.param(dict(_Feature.__geo_interface__["geometry"]), id="geojson dict"),
        pytest.param(_Feature.__geo_interface__, id="geojson feature dict"),
        pytest.param(_Feature(), id="__geo_interface__"),
        pytest.param(shapely.box(11, 46, 12, 47), id="shapely"),
        pytest.param("POLYGON ((11 46, 12 46, 12 47, 11 47, 11 46))", id="wkt"),
        pytest.param("11,46,12,47", id="bbox text"),
        pytest.param("file", id="path"),
    ],
)
def test_python_users_give_areas_as_they_have_them(value: object, tmp_path: Path) -> None:
    if value == "file":
        value = tmp_path / "aoi.geojson"
        value.write_text(json.dumps(_Feature.__geo_interface__))
    query = build_query(area=value)
    assert query.area is not None
    assert shapely.from_wkt(query.area).equals(shapely.box(11, 46, 12, 47))


def test_a_geojson_area_file_nested_too_deep_is_one_area_error(tmp_path: Path) -> None:
    path = tmp_path / "deep.geojson"
    path.write_text('{"type": "Feature", "geometry": ' + "[" * 200_000 + "]" * 200_000 + "}")
    with pytest.raises(AreaError, match=r"deep\.geojson is JSON nested deeper than 64 levels"):
        load_area(str(path))
