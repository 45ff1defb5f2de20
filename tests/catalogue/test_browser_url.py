"""Search URLs pasted from the Copernicus Browser become Queries (cdse-api.md §4)."""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path

import pytest

from sentinel_fetch.catalogue.browser_url import (
    extract_search_url,
    parse_search_url,
    read_search_url_file,
)
from sentinel_fetch.catalogue.odata import render_filter, search_url
from sentinel_fetch.catalogue.query import Query
from sentinel_fetch.errors import BrowserURLError, FilterSyntaxError
from sentinel_fetch.settings import Endpoints

UTC = timezone.utc
DATA = Path(__file__).parent / "data"
CDSE = Endpoints()
EMULATOR = Endpoints(
    identity="http://127.0.0.1:8443/auth/realms/CDSE",
    catalogue="http://127.0.0.1:8443/odata/v1",
    download="http://127.0.0.1:8443/download/odata/v1",
)
INSTRUMENT = (
    "Attributes/OData.CSC.StringAttribute/any(att:att/Name eq 'instrumentShortName' and "
    "att/OData.CSC.StringAttribute/Value eq '{}')"
)


def browser_url(name: str, **values: str) -> str:
    text = (DATA / name).read_text(encoding="utf-8").strip()
    for placeholder, value in values.items():
        text = text.replace("{" + placeholder + "}", value)
    return text


def test_sentinel_5p_no2_url() -> None:
    query = parse_search_url(browser_url("browser_s5p_no2.txt"), CDSE)

    assert query.collections == ("SENTINEL-5P",)
    assert query.name_contains == ("L2__NO2___",)
    assert query.online is True
    assert query.start == datetime(2023, 8, 1, tzinfo=UTC)
    # `lt ...T23:59:59.999Z` keeps its exact instant: the browser's last millisecond stays out.
    assert query.end == datetime(2023, 12, 31, 23, 59, 59, 999000, tzinfo=UTC)
    assert query.area == (
        "POLYGON ((-8.09 24.61, 49.56 24.61, 49.56 66.88, -8.09 66.88, -8.09 24.61))"
    )
    assert query.extra_filters == (INSTRUMENT.format("TROPOMI"),)
    assert query.order_by == "ContentDate/Start desc"
    assert query.product_types == ()


def test_sentinel_1_grd_url_with_its_date_filled_in() -> None:
    url = browser_url("browser_s1_grd_template.txt", query_date="2023-06-01")

    query = parse_search_url(url, CDSE)

    assert query.collections == ("SENTINEL-1",)
    assert query.name_contains == ("GRD",)
    assert query.platforms == ("A",)
    assert query.online is True
    assert query.start == datetime(2023, 6, 1, tzinfo=UTC)
    assert query.end == datetime(2023, 6, 1, 23, 59, 59, 999000, tzinfo=UTC)
    assert query.area is not None and query.area.startswith("POLYGON ((102.09 16.46")
    assert query.extra_filters == (
        INSTRUMENT.format("SAR"),
        "not contains(Name,'_COG')",
        "Attributes/OData.CSC.StringAttribute/any(att:att/Name eq 'operationalMode' and "
        "att/OData.CSC.StringAttribute/Value eq 'IW')",
    )


def test_sentinel_2_cloud_url_with_its_placeholders_filled_in() -> None:
    url = browser_url(
        "browser_s2_cloud_template.txt",
        platform_name="SENTINEL-2",
        cloud_cover_percentage="30",
        type="L2A",
        footprint="POLYGON%20((11.5%2046.0,%2012.5%2046.0,%2012.5%2046.8,%2011.5%2046.0))",
        start_date="2023-06-01",
        end_date="2023-06-30",
    )

    query = parse_search_url(url, CDSE)

    assert query.collections == ("SENTINEL-2",)
    assert query.max_cloud_cover == 30
    assert query.name_contains == ("L2A",)
    assert query.area == "POLYGON ((11.5 46, 12.5 46, 12.5 46.8, 11.5 46))"
    assert query.online is True
    assert query.start == datetime(2023, 6, 1, tzinfo=UTC)
    assert query.end == datetime(2023, 6, 30, 23, 59, 59, 999000, tzinfo=UTC)
    assert query.extra_filters == (INSTRUMENT.format("MSI"),)


@pytest.mark.parametrize(
    "name", ["browser_s5p_no2.txt", "browser_s1_grd_template.txt", "browser_s2_cloud_template.txt"]
)
def test_browser_urls_survive_our_own_url(name: str) -> None:
    url = browser_url(
        name,
        query_date="2024-01-05",
        platform_name="SENTINEL-2",
        cloud_cover_percentage="10",
        type="L1C",
        footprint="POINT%20(12.49%2041.89)",
        start_date="2024-01-01",
        end_date="2024-01-31",
    )
    query = parse_search_url(url, CDSE)

    assert parse_search_url(search_url(query, CDSE), CDSE) == query


def test_two_collections_joined_by_or_stay_one_condition() -> None:
    # Two collections in the browser: (((S1 ... and Online eq true) or (S2 ...)) and dates).
    filter_text = (
        "(((Collection/Name eq 'SENTINEL-1' and ("
        + INSTRUMENT.format("SAR")
        + ") and Online eq true)"
        " or (Collection/Name eq 'SENTINEL-2' and ("
        + INSTRUMENT.format("MSI")
        + ") and Online eq true))"
        " and ContentDate/Start ge 2023-06-29T00:00:00.000Z and ContentDate/Start lt "
        "2023-06-29T23:59:59.999Z)"
    )
    url = f"https://catalogue.dataspace.copernicus.eu/odata/v1/Products?&$filter={filter_text}&$top=50"

    query = parse_search_url(url, CDSE)

    assert query.collections == ()
    assert query.online is None
    assert len(query.extra_filters) == 1
    assert query.extra_filters[0].startswith("(Collection/Name eq 'SENTINEL-1' and ")
    assert " or (Collection/Name eq 'SENTINEL-2' and " in query.extra_filters[0]
    assert query.start == datetime(2023, 6, 29, tzinfo=UTC)


def test_an_or_of_collection_tests_fills_collections() -> None:
    url = (
        "https://catalogue.dataspace.copernicus.eu/odata/v1/Products?$filter="
        "(Collection/Name eq 'SENTINEL-1' or Collection/Name eq 'SENTINEL-2') and Online eq true"
    )

    assert parse_search_url(url, CDSE).collections == ("SENTINEL-1", "SENTINEL-2")


def test_a_field_takes_one_condition_only() -> None:
    url = (
        "https://catalogue.dataspace.copernicus.eu/odata/v1/Products?$filter="
        "contains(Name,'T32TQM') and contains(Name,'N0509')"
    )

    query = parse_search_url(url, CDSE)

    assert query.name_contains == ("T32TQM",)
    assert query.extra_filters == ("contains(Name,'N0509')",)
    # Still ANDed, never ORed.
    assert render_filter(query) == "contains(Name,'T32TQM') and contains(Name,'N0509')"


@pytest.mark.parametrize(
    "condition",
    [
        "ContentDate/Start le 2023-12-31T23:59:59.999Z",
        "ContentDate/Start gt 2023-01-01T00:00:00.000Z",
        # Mistyped attribute test: kept as written for the catalogue to judge.
        "Attributes/OData.CSC.StringAttribute/any(att:att/Name eq 'relativeOrbitNumber' and "
        "att/OData.CSC.IntegerAttribute/Value eq 15)",
        "Attributes/OData.CSC.StringAttribute/any(att:att/Name eq 'productType' and "
        "att/OData.CSC.StringAttribute/Value eq 'L2A')",
        "Collection/Name eq 'Sentinel-2'",
        "Attributes/OData.CSC.DoubleAttribute/any(att:att/Name eq 'cloudCover' and "
        "att/OData.CSC.DoubleAttribute/Value lt 30)",
        "Attributes/OData.CSC.DoubleAttribute/any(att:att/Name eq 'cloudCover' and "
        "att/OData.CSC.DoubleAttribute/Value le 150)",
        "Id eq '8F2D6A4E-1C3B-4E57-9A0D-5B7C2E91F4A3'",
        "(Id eq '8f2d6a4e-1c3b-4e57-9a0d-5b7c2e91f4a3' or Name eq 'x')",
        "startswith(Name,'S2B')",
    ],
)
def test_conditions_without_an_exact_field_stay_extra(condition: str) -> None:
    url = f"https://catalogue.dataspace.copernicus.eu/odata/v1/Products?$filter={condition}"

    query = parse_search_url(url, CDSE)

    assert len(query.extra_filters) == 1
    assert query.to_dict().keys() == {"extra_filters"}


def test_field_forms_fill_fields() -> None:
    filter_text = (
        "Attributes/OData.CSC.StringAttribute/any(att:att/Name eq 'productType' and "
        "att/OData.CSC.StringAttribute/Value eq 'S2MSI2A') and "
        "Attributes/OData.CSC.StringAttribute/any(att:att/Name eq 'tileId' and "
        "att/OData.CSC.StringAttribute/Value eq '32TQM') and "
        "Attributes/OData.CSC.IntegerAttribute/any(att:att/Name eq 'relativeOrbitNumber' and "
        "att/OData.CSC.IntegerAttribute/Value eq 108) and "
        "Attributes/OData.CSC.StringAttribute/any(att:att/Name eq 'orbitDirection' and "
        "att/OData.CSC.StringAttribute/Value eq 'DESCENDING') and "
        "Attributes/OData.CSC.StringAttribute/any(att:att/Name eq 'processingBaseline' and "
        "att/OData.CSC.StringAttribute/Value eq '05.09') and "
        "(Name eq 'S2B_MSIL2A_X.SAFE' or Id eq '8f2d6a4e-1c3b-4e57-9a0d-5b7c2e91f4a3') and "
        "Online eq false"
    )
    url = f"https://catalogue.dataspace.copernicus.eu/odata/v1/Products?$filter={filter_text}"

    query = parse_search_url(url, CDSE)

    assert query.product_types == ("S2MSI2A",)
    assert query.tiles == ("32TQM",)
    assert query.relative_orbits == (108,)
    assert query.orbit_direction == "DESCENDING"
    assert query.processing_baselines == ("05.09",)
    assert query.names == ("S2B_MSIL2A_X.SAFE",)
    assert query.ids == ("8f2d6a4e-1c3b-4e57-9a0d-5b7c2e91f4a3",)
    assert query.online is False
    assert query.extra_filters == ()


@pytest.mark.parametrize(
    "encoded",
    [
        # DevTools: %20 and %27.
        "$filter=Collection/Name%20eq%20%27SENTINEL-2%27%20and%20Online%20eq%20true",
        # Form encoding, as in the catalogue's own next links.
        "%24filter=Collection%2FName+eq+%27SENTINEL-2%27+and+Online+eq+true",
        # Encoded twice (copied from a log): decoded twice.
        "$filter=Collection/Name%2520eq%2520%2527SENTINEL-2%2527%2520and%2520Online%2520eq%2520true",
        "%2524filter=Collection%252FName%2520eq%2520%2527SENTINEL-2%2527%2520and%2520Online%2520eq%2520true",
        # Literal spaces and quotes, as some blogs print it.
        "$filter=Collection/Name eq 'SENTINEL-2' and Online eq true",
    ],
)
def test_encodings(encoded: str) -> None:
    url = f"https://catalogue.dataspace.copernicus.eu/odata/v1/Products?&{encoded}&$count=True&$top=50"

    query = parse_search_url(url, CDSE)

    assert query == Query(collections=("SENTINEL-2",), online=True)


def test_page_options_are_ignored_and_orderby_is_kept() -> None:
    base = "https://catalogue.dataspace.copernicus.eu/odata/v1/Products?&$filter=Online%20eq%20true"
    first = parse_search_url(
        base + "&$expand=Attributes&$count=True&$top=50&$expand=Assets&$skip=0", CDSE
    )
    later = parse_search_url(base + "&$top=50&$skip=50&$orderby=ContentDate/Start%20desc", CDSE)

    assert first == Query(online=True)
    assert later == Query(online=True, order_by="ContentDate/Start desc")


def test_the_configured_catalogue_is_accepted() -> None:
    url = "http://127.0.0.1:8443/odata/v1/Products?$filter=Online%20eq%20true"

    assert parse_search_url(url, EMULATOR) == Query(online=True)
    assert parse_search_url(search_url(Query(online=True), EMULATOR), EMULATOR) == Query(
        online=True
    )


@pytest.mark.parametrize(
    "wrapped",
    [
        "  {url}  \n\n",
        "\ufeff{url}\r\n",
        '"{url}"',
        "'{url}'",
        "<{url}>",
        "curl '{url}' \\\n  -H 'accept: application/json' \\\n  -H 'referer: https://browser.dataspace.copernicus.eu/'",
        'curl "{url}" --compressed',
        "curl $'{url}' -H 'accept: */*'",
        'Invoke-WebRequest -UseBasicParsing -Uri "{url}" -Headers @{{}}',
    ],
)
def test_pasted_text_around_the_url(wrapped: str) -> None:
    url = browser_url("browser_s5p_no2.txt")

    assert extract_search_url(wrapped.format(url=url)) == url
    assert parse_search_url(wrapped.format(url=url), CDSE).collections == ("SENTINEL-5P",)


def test_windows_copy_as_curl_cmd() -> None:
    url = "https://catalogue.dataspace.copernicus.eu/odata/v1/Products?&$filter=Online%20eq%20true&$top=50"
    escaped = url.replace("%", "^%").replace("&", "^&")
    command = f'curl ^"{escaped}^" ^\n  -H ^"accept: application/json^" ^\n  --compressed'

    assert extract_search_url(command) == url


def test_url_wrapped_over_lines_by_an_editor() -> None:
    url = browser_url("browser_s5p_no2.txt")
    wrapped = "\n".join(url[i : i + 80] for i in range(0, len(url), 80))

    assert extract_search_url(wrapped) == url


@pytest.mark.parametrize(
    ("encoding", "prefix"),
    [("utf-8", b""), ("utf-8", b"\xef\xbb\xbf"), ("utf-16", b"")],
)
def test_search_url_file(tmp_path: Path, encoding: str, prefix: bytes) -> None:
    url = browser_url("browser_s5p_no2.txt")
    path = tmp_path / "SearchURL.txt"
    path.write_bytes(prefix + f"\n{url}\n\n".encode(encoding))

    assert read_search_url_file(path) == url


def test_search_url_file_errors_name_the_file(tmp_path: Path) -> None:
    path = tmp_path / "SearchURL.txt"
    path.write_text("   \n", encoding="utf-8")

    with pytest.raises(BrowserURLError, match=r"^SearchURL.txt: the search URL is empty"):
        read_search_url_file(path)
    with pytest.raises(BrowserURLError, match="cannot read"):
        read_search_url_file(tmp_path / "missing.txt")


FILLED = {
    "query_date": "2023-06-01",
    "platform_name": "SENTINEL-2",
    "cloud_cover_percentage": "30",
    "type": "L2A",
    "footprint": "POLYGON%20((11.5%2046.0,%2012.5%2046.0,%2012.5%2046.8,%2011.5%2046.0))",
    "start_date": "2023-06-01",
    "end_date": "2023-06-30",
}


@pytest.mark.parametrize(
    "name", ["browser_s5p_no2.txt", "browser_s1_grd_template.txt", "browser_s2_cloud_template.txt"]
)
def test_a_browser_url_cut_anywhere_in_its_filter_is_refused(name: str) -> None:
    url = browser_url(name, **FILLED)
    start, end = url.index("$filter=") + len("$filter="), url.index("&$orderby")

    for cut in range(start, end):
        with pytest.raises((BrowserURLError, FilterSyntaxError)) as caught:
            parse_search_url(url[:cut], CDSE)
        assert "truncated" in str(caught.value) or "cut short" in str(caught.value), url[:cut]
