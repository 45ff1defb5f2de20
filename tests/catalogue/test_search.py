"""Searches against the emulator's catalogue: pasted browser URLs, paging, the 10,000 cap.

Expectations come from the emulator's own matcher for the *original* filter, so a test
passes only if the client's Query (re-rendered from the pasted URL) selects exactly the
same products, and paging delivers every one of them once.
"""

from __future__ import annotations

import re
import threading
from collections import Counter
from pathlib import Path
from urllib.parse import parse_qsl, urlsplit

import pytest

from sentinel_fetch.api import search
from sentinel_fetch.catalogue.query import build_query
from sentinel_fetch.catalogue.search import Search
from sentinel_fetch.emulator import (
    BodyFault,
    Emulator,
    EntityFault,
    SlowHeadFault,
    StatusFault,
    TrickleFault,
)
from sentinel_fetch.errors import (
    CatalogueError,
    QueryError,
    SearchIncompleteError,
    StoppedError,
)
from sentinel_fetch.http import Transport
from sentinel_fetch.settings import Settings
from tests.conftest import with_limits
from tests.interrupting import raised_when_stopped

DATA = Path(__file__).parent / "data"
EUROPE = "POLYGON((-10 35, 30 35, 30 70, -10 70, -10 35))"
# As the browser writes it in URLs: %20 for spaces.
BAVARIA = "POLYGON%20((10.5%2047.5,%2012.5%2047.5,%2012.5%2048.8,%2010.5%2048.8,%2010.5%2047.5))"
CDSE_CATALOGUE = "https://catalogue.dataspace.copernicus.eu/odata/v1"


def _rehost(url: str, cdse: Emulator) -> str:
    """A browser URL as pasted, pointing at the emulator's catalogue instead of CDSE's."""
    return url.strip().replace(CDSE_CATALOGUE, cdse.catalogue_url)


def _original_filter(url: str) -> str:
    return dict(parse_qsl(urlsplit(url).query, keep_blank_values=True))["$filter"]


def _browser_urls(cdse: Emulator) -> dict[str, str]:
    dates = cdse.store.sensing_dates("SENTINEL-1", 102.115, 16.48, product_type="GRD", platform="A")
    s5p = (DATA / "browser_s5p_no2.txt").read_text()
    s1 = (DATA / "browser_s1_grd_template.txt").read_text()
    s1 = s1.replace("{query_date}", dates[0].isoformat())
    s2 = (
        (DATA / "browser_s2_cloud_template.txt")
        .read_text()
        .replace("{platform_name}", "SENTINEL-2")
        .replace("{cloud_cover_percentage}", "40")
        .replace("{type}", "L2A")
        .replace("{footprint}", BAVARIA)
        .replace("{start_date}", "2023-05-01")
        .replace("{end_date}", "2023-08-31")
    )
    return {"s5p_no2": s5p, "s1_grd": s1, "s2_cloud": s2}


@pytest.mark.parametrize("which", ["s5p_no2", "s1_grd", "s2_cloud"])
def test_browser_url_returns_exactly_what_the_catalogue_matches(
    cdse: Emulator, settings: Settings, which: str
) -> None:
    url = _rehost(_browser_urls(cdse)[which], cdse)
    expected = cdse.match_ids(_original_filter(url))
    assert expected, "the emulator must hold products for this search"
    result = search(url, settings=settings)
    ids = [product.id for product in result]
    assert len(ids) == len(set(ids))
    assert set(ids) == set(expected)
    if which == "s5p_no2":
        assert len(ids) > 50, "more than the browser's first page"
    # The browser asked for newest first; the order is kept.
    starts = [product.content_start for product in result]
    assert starts == sorted(starts, reverse=True)


SPRING_2023_EUROPE = build_query(
    collections="SENTINEL-2", area=EUROPE, start="2023-03-01", end="2023-06-30"
)


def test_more_than_10000_products_each_exactly_once(cdse: Emulator, settings: Settings) -> None:
    from sentinel_fetch.catalogue.odata import render_filter

    expected = cdse.match_ids(render_filter(SPRING_2023_EUROPE))
    assert len(expected) > 11_000, "the query must pass the catalogue's paging cap"
    result = Search(SPRING_2023_EUROPE, transport=Transport(settings))
    ids = [product.id for product in result]
    duplicates = [product_id for product_id, n in Counter(ids).items() if n > 1]
    assert not duplicates
    assert len(ids) == len(expected)
    assert set(ids) == set(expected)
    assert len(result.windows) >= 2
    assert sum(window.count for window in result.windows) == len(expected)
    assert all(window.count <= 11_000 for window in result.windows)


def test_a_count_too_low_to_split_still_returns_every_product_once(
    cdse: Emulator, settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    """The count says 11,000 (reachable by paging) where there are more: paging stops at
    the $skip cap with products left, which must be noticed and split, not cut off."""
    from sentinel_fetch.catalogue.odata import render_filter

    expected = cdse.match_ids(render_filter(SPRING_2023_EUROPE))
    assert len(expected) > 11_000
    cdse.config.count_offset = 11_000 - len(expected)

    ids = [product.id for product in Search(SPRING_2023_EUROPE, transport=Transport(settings))]

    assert not [product_id for product_id, n in Counter(ids).items() if n > 1]
    assert set(ids) == set(expected)
    assert any("paging cap" in record.getMessage() for record in caplog.records)


@pytest.mark.parametrize("offset", [7, -7])
def test_an_inexact_count_is_warned_about_with_both_numbers_and_everything_returned(
    cdse: Emulator, settings: Settings, caplog: pytest.LogCaptureFixture, offset: int
) -> None:
    ids = _july_32tps_ids(cdse)
    cdse.config.count_offset = offset

    found = [product.id for product in _quick_search(settings)]

    assert sorted(found) == sorted(ids)
    warnings = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    counted, received = str(len(ids) + offset), str(len(ids))
    assert any(counted in text and received in text for text in warnings), warnings


def test_count_without_listing(cdse: Emulator, settings: Settings) -> None:
    query = build_query(collections="SENTINEL-5P", start="2023-08-01", end="2023-08-31")
    from sentinel_fetch.catalogue.odata import render_filter

    assert search(query, settings=settings).count() == len(cdse.match_ids(render_filter(query)))


def test_transient_catalogue_errors_are_retried(cdse: Emulator, settings: Settings) -> None:
    cdse.faults.add(StatusFault(host="catalogue", status=503, times=3))
    cdse.faults.add(
        StatusFault(
            host="catalogue",
            status=429,
            times=1,
            retry_after_s=0.1,
            body={"error": "WAF", "message": "Rate limit exceeded", "status": 429},
        )
    )
    query = build_query(
        collections="SENTINEL-2", tiles="32TPS", start="2023-07-01", end="2023-07-31"
    )
    products = list(search(query, settings=settings))
    assert products
    assert cdse.stats.requests("catalogue", 503) == 3
    assert cdse.stats.requests("catalogue", 429) == 1


def test_retries_run_out_and_the_search_raises(cdse: Emulator, settings: Settings) -> None:
    cdse.faults.add(StatusFault(host="catalogue", status=502, times=-1))
    query = build_query(
        collections="SENTINEL-2", tiles="32TPS", start="2023-07-01", end="2023-07-31"
    )
    with pytest.raises(SearchIncompleteError, match="could not be completed after 6 attempts"):
        list(search(query, settings=settings))
    assert cdse.stats.requests("catalogue", 502) == 6


def test_a_failure_mid_paging_never_returns_a_short_list(
    cdse: Emulator, settings: Settings
) -> None:
    query = build_query(collections="SENTINEL-2", area=EUROPE, start="2023-07-01", end="2023-07-20")
    seen = []
    result = Search(
        query, transport=Transport(settings), page_size=100, max_attempts=3, sleep=lambda s: None
    )
    pages = result.pages()
    seen.extend(next(pages))
    cdse.faults.add(StatusFault(host="catalogue", status=500, times=-1))
    with pytest.raises(SearchIncompleteError):
        for page in pages:
            seen.extend(page)
    assert result.windows[0].count > 100
    # Pages fetched ahead before the failure may still come: never the whole window.
    assert 100 <= len(seen) < result.windows[0].count


def test_the_catalogue_refusing_a_filter_is_a_query_error(
    cdse: Emulator, settings: Settings
) -> None:
    # OrbitNumber is an attribute, not a property: CDSE answers 400 (spec §3.2).
    query = build_query(collections="S2", extra_filters=["OrbitNumber eq 3"])
    with pytest.raises(QueryError, match="refused the search"):
        list(search(query, settings=settings))


# --- hostile answers ------------------------------------------------------------------------

DEEP = 100_000
JULY_32TPS = build_query(
    collections="SENTINEL-2", tiles="32TPS", start="2023-07-01", end="2023-07-31"
)


def _quick_search(settings: Settings) -> Search:
    return Search(JULY_32TPS, transport=Transport(settings), sleep=lambda seconds: None)


def test_a_deeply_nested_catalogue_page_is_one_catalogue_error(
    cdse: Emulator, settings: Settings
) -> None:
    parts = (('{"@odata.context":"$metadata#Products","value":', 1), ("[", DEEP), ("]", DEEP))
    cdse.faults.add(BodyFault(host="catalogue", parts=(*parts, ("}", 1)), times=-1))

    with pytest.raises(CatalogueError, match="nested deeper than"):
        list(_quick_search(settings))
    # A hostile answer is not a hiccup: asked once, not once per retry.
    assert cdse.stats.requests("catalogue") == 1


def test_a_catalogue_page_announcing_hundreds_of_megabytes_is_refused_unread(
    cdse: Emulator, settings: Settings
) -> None:
    cdse.faults.add(
        BodyFault(host="catalogue", parts=(('{"value":[', 1),), content_length=500_000_000)
    )

    with pytest.raises(CatalogueError, match="larger than"):
        list(_quick_search(settings))
    assert cdse.stats.requests("catalogue") == 1


def test_a_deeply_nested_error_answer_still_reads_as_that_error(
    cdse: Emulator, settings: Settings
) -> None:
    cdse.faults.add(BodyFault(host="catalogue", status=400, parts=(("[", DEEP), ("]", DEEP))))

    with pytest.raises(QueryError, match="HTTP 400"):
        list(_quick_search(settings))


@pytest.mark.parametrize("count", ["true", "-3", '"12"', "1.5", "null"])
def test_an_unusable_count_is_a_catalogue_error_not_a_number(
    cdse: Emulator, settings: Settings, count: str
) -> None:
    # JSON true is a Python bool, and a bool is an int: it must not be read as 1.
    page = f'{{"@odata.context":"$metadata#Products","@odata.count":{count},"value":[]}}'
    cdse.faults.add(BodyFault(host="catalogue", parts=((page, 1),), times=-1))

    with pytest.raises(CatalogueError, match=r"@odata\.count"):
        _quick_search(settings).count()


REQUEST_ID = "5f0c1e9a-3b7d-4c2e-9a41-0d6b8e2f7c13"


@pytest.mark.parametrize(
    ("body", "shown"),
    [
        # The Subscriptions service of the same family (cdse-api.md §3.8).
        (
            {"detail": {"message": "Subscription with id 42 not found.", "request_id": REQUEST_ID}},
            ["Subscription with id 42 not found."],
        ),
        # The retired OpenSearch's validation errors.
        (
            {
                "detail": {
                    "ErrorMessage": "Validation error.",
                    "ErrorCode": 400,
                    "ErrorDetail": [
                        {"loc": ["query", "maxRecords"], "msg": "ensure this value is <= 2000"}
                    ],
                    "RequestID": REQUEST_ID,
                }
            },
            ["Validation error.", "maxRecords", "ensure this value is <= 2000"],
        ),
        # FastAPI/pydantic, several problems at once.
        (
            {
                "detail": [
                    {
                        "type": "less_than_equal",
                        "loc": ["query", "$top"],
                        "msg": "Input should be less than or equal to 1000",
                        "input": "5000",
                        "ctx": {"le": 1000},
                    },
                    {
                        "type": "int_parsing",
                        "loc": ["query", "$skip"],
                        "msg": "Input should be a valid integer",
                        "input": "ten",
                    },
                ]
            },
            ["$top", "less than or equal to 1000", "$skip", "a valid integer"],
        ),
        ({"detail": "Invalid $filter: unexpected 'eq' at 14"}, ["Invalid $filter"]),
        # OData's own error object, with and without a code.
        (
            {"error": {"code": "InvalidFilter", "message": "Unknown property 'Nmae'"}},
            ["InvalidFilter", "Unknown property 'Nmae'"],
        ),
        ({"error": {"message": "The request is invalid."}}, ["The request is invalid."]),
    ],
)
@pytest.mark.parametrize("status", [400, 404])
def test_catalogue_error_details_of_every_shape_read_as_text(
    cdse: Emulator, settings: Settings, body: dict[str, object], shown: list[str], status: int
) -> None:
    cdse.faults.add(StatusFault(host="catalogue", status=status, body=body))

    with pytest.raises(CatalogueError if status == 404 else QueryError) as info:
        list(_quick_search(settings))

    message = str(info.value)
    assert all(text in message for text in shown), message
    assert "{" not in message and "'loc'" not in message and REQUEST_ID not in message


# --- unreadable entries ---------------------------------------------------------------------


def _july_32tps_ids(cdse: Emulator) -> list[str]:
    from sentinel_fetch.catalogue.odata import render_filter

    ids = cdse.match_ids(render_filter(JULY_32TPS))
    assert len(ids) >= 5, "the search must find several products"
    return ids


@pytest.mark.parametrize(
    ("replace", "reason"),
    [
        ({"ContentLength": "lots"}, "ContentLength"),
        ({"ContentLength": -5}, "ContentLength"),
        ({"ContentLength": True}, "ContentLength"),
        ({"Id": "not-a-uuid"}, "Id"),
        ({"Id": "8f2d6a4e-1c3b-4e57-9a0d-5b7c2e91f4a3)/Nodes(x"}, "Id"),
        ({"Name": ""}, "Name"),
        ({"Name": 42}, "Name"),
        ({"Name": " . . "}, "Name"),
        ({"Name": "x" * 5000}, "Name"),
        ({"Name": "S2A_MSIL2A\x00.SAFE"}, "Name"),
        ({"Name": "S2A_MSIL2A_\ud800.SAFE"}, "Name"),
        ({"S3Path": "/eodata/\udfff"}, "S3Path"),
        ({"Attributes": [{"Name": "x\udbff", "Value": 1, "ValueType": "Integer"}]}, "Attributes"),
        ({"Checksum": "5d41402abc4b2a76b9719d911017c592"}, "Checksum"),
        ({"Checksum": [{"Algorithm": "MD5", "Value": 12}]}, "Checksum"),
        ({"ContentDate": {"Start": "yesterday"}}, "ContentDate"),
        ({"ContentDate": "2023-07-01"}, "ContentDate"),
        ({"Online": "yes"}, "Online"),
        ({"Footprint": {"type": "Point"}}, "Footprint"),
        ({"GeoFootprint": "POINT (1 2)"}, "GeoFootprint"),
        ({"Attributes": [{"Value": 1}]}, "Attributes"),
        ({"Assets": [1]}, "Assets"),
    ],
)
def test_an_unreadable_entry_fails_that_product_only(
    cdse: Emulator, settings: Settings, replace: dict[str, object], reason: str
) -> None:
    ids = _july_32tps_ids(cdse)
    victim = ids[len(ids) // 2]
    cdse.faults.add(EntityFault(product=victim, replace=replace, times=-1))
    search_ = _quick_search(settings)

    found = [product.id for product in search_]

    assert sorted(found) == sorted(set(ids) - {victim})
    (rejected,) = search_.rejected
    assert rejected.id == (victim if "Id" not in replace else None)
    assert rejected.name is None or rejected.name == cdse.store.get(victim).name
    assert reason in rejected.reason and "\n" not in rejected.reason
    # The entry was received, so the page is complete as counted: nothing is asked again.
    assert cdse.stats.requests("catalogue") == 1


def test_entries_that_are_not_objects_are_rejected_without_a_name(
    cdse: Emulator, settings: Settings
) -> None:
    page = '{"@odata.context":"$metadata#Products","@odata.count":3,"value":[1,"x",null]}'
    cdse.faults.add(BodyFault(host="catalogue", parts=((page, 1),), times=-1))
    search_ = _quick_search(settings)

    assert list(search_) == []
    assert len(search_.rejected) == 3
    assert all(entry.id is None and entry.name is None for entry in search_.rejected)


def test_products_are_addressed_by_bare_uuid_keys_only(cdse: Emulator, settings: Settings) -> None:
    # Real CDSE refuses the quoted OData key Products('<uuid>') (cdse-api.md §3.1, §6.2).
    from sentinel_fetch.api import download
    from sentinel_fetch.auth import Credentials
    from sentinel_fetch.emulator import DEMO_PASSWORD, DEMO_USERNAME

    products = [p for p in _quick_search(settings) if p.online][:2]
    report = download(
        products,
        settings=settings,
        credentials=Credentials(DEMO_USERNAME, DEMO_PASSWORD),
        ledger=False,
    )

    assert report.ok and report.count("downloaded") == 2
    keyed = cdse.stats.events(predicate=lambda event: "Products(" in event.path)
    assert {event.host for event in keyed} == {"download"}
    bare = re.compile(r".*/Products\([0-9a-f]{8}(-[0-9a-f]{4}){3}-[0-9a-f]{12}\)(/.*)?")
    assert all(bare.fullmatch(event.path) for event in keyed), [e.path for e in keyed]


# --- retries: the settings' policy, interruptible -------------------------------------------


def test_catalogue_waits_follow_the_settings_backoff_maximum(
    cdse: Emulator, settings: Settings
) -> None:
    cdse.faults.add(StatusFault(host="catalogue", status=503, retry_after_s=600, times=2))
    waits: list[float] = []
    result = Search(JULY_32TPS, transport=Transport(settings), sleep=waits.append)
    assert list(result)
    assert len(waits) == 2
    assert all(wait <= settings.limits.backoff_max_s for wait in waits), waits


def test_a_stop_event_ends_a_wait_between_catalogue_requests(
    cdse: Emulator, settings: Settings
) -> None:
    cdse.faults.add(StatusFault(host="catalogue", status=503, retry_after_s=600, times=-1))
    patient = with_limits(settings, backoff_base_s=600.0, backoff_max_s=600.0)
    stop = threading.Event()
    result = Search(JULY_32TPS, transport=Transport(patient), stop=stop)
    outcome = raised_when_stopped(lambda: list(result), stop, cdse, "catalogue")
    assert len(outcome) == 1 and isinstance(outcome[0], StoppedError), outcome
    assert cdse.stats.requests("catalogue", 503) == 1


@pytest.mark.parametrize("fault", ["body", "head"])
def test_a_catalogue_answer_that_trickles_ends_at_answer_timeout_s(
    cdse: Emulator, settings: Settings, fault: str
) -> None:
    """Each byte arrives within the read timeout; the whole page never does."""
    if fault == "body":
        cdse.faults.add(TrickleFault(host="catalogue", interval_s=0.05, times=-1))
    else:
        cdse.faults.add(SlowHeadFault(host="catalogue", interval_s=0.05, times=-1))
    settings = with_limits(settings, answer_timeout_s=0.5)

    with pytest.raises(SearchIncompleteError) as raised:
        list(_quick_search(settings))
    assert "did not arrive within answer_timeout_s (0.5 s)" in str(raised.value)
