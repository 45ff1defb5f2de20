"""The catalogue store and the synthetic archive it holds.

Totals and density (cdse-api.md-sized queries), realism of generated products (names of
§8.3, S3Path of §8.4, sizes of §8.5, platforms valid for their dates, MGRS tile ids, the
revisit rhythm), attribute filters agreeing with the attributes shown, the ProductStore
contract, and concurrent use of the handler.
"""

# Fixtures come from the support module and are named as test parameters.
# ruff: noqa: F811

from __future__ import annotations

import doctest
import importlib
import re
import sqlite3
import threading
from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor
from datetime import date, datetime, timedelta, timezone
from itertools import pairwise
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest

from sentinel_fetch.emulator.catalogue import CatalogueStore
from sentinel_fetch.emulator.config import EmulatorConfig
from sentinel_fetch.emulator.model import Handler, ProductRecord

from .test_catalogue_support import (
    EUROPE_WKT,
    archives,  # noqa: F401
    attribute,
    call,
    handler,  # noqa: F401
    parse_time,
    search,
    store,  # noqa: F401
)

NAME_PATTERNS = {
    "SENTINEL-2": re.compile(
        r"^S2[ABC]_MSIL(1C|2A)_(\d{8}T\d{6})_N(\d{4})_R(\d{3})_T(\d{2}[C-X][A-Z]{2})_\d{8}T\d{6}\.SAFE$"
    ),
    "SENTINEL-1": re.compile(
        r"^S1[ABC]_(IW|EW)_(GRD[HM]|SLC_)_1S(DV|DH)_(\d{8}T\d{6})_\d{8}T\d{6}_(\d{6})_([0-9A-F]{6})"
        r"_[0-9A-F]{4}(_COG)?\.SAFE$"
    ),
    "SENTINEL-3": re.compile(
        r"^S3[AB]_(OL|SL)_[12]_[A-Z]{3}___?_(\d{8}T\d{6})_\d{8}T\d{6}_\d{8}T\d{6}_0179_\d{3}_\d{3}"
        r"_\d{4}_PS[12]_O_NT_\d{3}\.SEN3$"
    ),
    "SENTINEL-5P": re.compile(
        r"^S5P_(OFFL|NRTI)_L2__[A-Z0-9_]{6}_(\d{8}T\d{6})_\d{8}T\d{6}_\d{5}_\d{2}_\d{6}_\d{8}T\d{6}\.nc$"
    ),
}
S3PATH_PREFIX = {
    "SENTINEL-1": "/eodata/Sentinel-1/SAR/",
    "SENTINEL-2": "/eodata/Sentinel-2/MSI/",
    "SENTINEL-3": "/eodata/Sentinel-3/",
    "SENTINEL-5P": "/eodata/Sentinel-5P/TROPOMI/",
}


def _count(handler: Handler, text: str) -> int:
    reply = search(handler, "$filter=" + quote(text, safe="") + "&$top=0&$count=true")
    assert reply.status == 200, reply.json
    return int(reply.json["@odata.count"])


def _sample(handler: Handler, text: str, top: int = 200) -> list[dict[str, Any]]:
    reply = search(handler, "$filter=" + quote(text, safe="") + f"&$top={top}&$expand=Attributes")
    assert reply.status == 200, reply.json
    value: list[dict[str, Any]] = reply.json["value"]
    return value


# ------------------------------------------------------------------------ totals


def test_density_of_realistic_queries(handler: Handler, store: CatalogueStore) -> None:
    counts = store.counts_by_collection()
    assert set(counts) == {"SENTINEL-1", "SENTINEL-2", "SENTINEL-3", "SENTINEL-5P"}
    assert 200_000 < sum(counts.values()) < 400_000
    # The query the package documents as matching more than 25,000 products.
    europe_2023 = (
        f"Collection/Name eq 'SENTINEL-2' and OData.CSC.Intersects(area=geography'SRID=4326;"
        f"{EUROPE_WKT}') and ContentDate/Start ge 2023-01-01T00:00:00.000Z and "
        "ContentDate/Start lt 2024-01-01T00:00:00.000Z"
    )
    assert _count(handler, europe_2023) > 25_000
    assert _count(handler, europe_2023.replace("SENTINEL-2", "SENTINEL-1")) > 5_000


def test_open_reuses_the_cached_database(store: CatalogueStore) -> None:
    config = EmulatorConfig()
    again = CatalogueStore.open(config.data_dir, config.seed)
    try:
        assert again.path == store.path
        assert again.build_report is None
        assert again.counts_by_collection() == store.counts_by_collection()
    finally:
        again.close()


def test_offline_and_legacy_shares(store: CatalogueStore) -> None:
    connection = sqlite3.connect(store.path.resolve().as_uri() + "?mode=ro", uri=True)
    total, offline, legacy, old_legacy = connection.execute(
        "SELECT count(*), sum(online = 0), sum(legacy), sum(legacy AND start_us < ?) FROM products",
        (int(datetime(2021, 1, 1, tzinfo=timezone.utc).timestamp() * 1e6),),
    ).fetchone()
    connection.close()
    assert 0.025 < offline / total < 0.04
    assert 0.015 < legacy / total < 0.025
    assert legacy == old_legacy  # only older holdings lack checksums


# ------------------------------------------------------------------ realism


@pytest.mark.parametrize("collection", sorted(NAME_PATTERNS))
def test_names_paths_and_attributes_are_consistent(handler: Handler, collection: str) -> None:
    products = _sample(
        handler,
        f"Collection/Name eq '{collection}' and ContentDate/Start ge 2019-06-01 "
        "and ContentDate/Start lt 2025-12-01",
        top=1000,
    )[::7]
    assert len(products) > 50
    for product in products:
        match = NAME_PATTERNS[collection].match(product["Name"])
        assert match, product["Name"]
        sensed = parse_time(product["ContentDate"]["Start"])
        assert product["S3Path"].startswith(S3PATH_PREFIX[collection])
        assert product["S3Path"].endswith(sensed.strftime("/%Y/%m/%d/") + product["Name"])
        assert parse_time(product["PublicationDate"]) > sensed
        assert parse_time(product["PublicationDate"]) - sensed < timedelta(days=4) or (
            collection == "SENTINEL-2" and attribute(product, "processingBaseline") == "05.00"
        )
        assert parse_time(product["ModificationDate"]) >= parse_time(product["PublicationDate"])
        assert attribute(product, "platformShortName") == collection
        assert attribute(product, "productType")
        if collection == "SENTINEL-2":
            _check_s2(product, match)
        if collection == "SENTINEL-1":
            _check_s1(product, match)


def _check_s2(product: dict[str, Any], match: re.Match[str]) -> None:
    level, sensed, baseline, relative, tile = match.groups()
    assert parse_time(product["ContentDate"]["Start"]).strftime("%Y%m%dT%H%M%S") == sensed
    assert product["ContentDate"]["Start"] == product["ContentDate"]["End"]
    assert attribute(product, "processingBaseline").replace(".", "") == baseline
    assert attribute(product, "relativeOrbitNumber") == int(relative)
    assert attribute(product, "tileId") == tile
    assert attribute(product, "productType") == f"S2MSI{level}"
    assert 0 <= attribute(product, "cloudCover") <= 100
    reprocessed = "_N0500" if baseline == "0500" else ""
    assert f"/MSI/L{level}{reprocessed}/" in product["S3Path"]


def _check_s1(product: dict[str, Any], match: re.Match[str]) -> None:
    mode, _, polarisation, _, orbit, datatake, cog = match.groups()
    assert attribute(product, "operationalMode") == mode
    assert attribute(product, "orbitNumber") == int(orbit)
    assert attribute(product, "datatakeID") == int(datatake, 16)
    assert attribute(product, "polarisationChannels") == (
        "VV&VH" if polarisation == "DV" else "HH&HV"
    )
    assert attribute(product, "orbitDirection") in {"ASCENDING", "DESCENDING"}
    assert attribute(product, "productType").endswith("-COG") == bool(cog)
    assert 1 <= attribute(product, "relativeOrbitNumber") <= 175
    assert isinstance(attribute(product, "sliceProductFlag"), bool)


@pytest.mark.parametrize(
    ("collection", "platform", "start", "end"),
    [
        ("SENTINEL-1", "B", "2021-12-24", "2026-01-01"),
        ("SENTINEL-1", "C", "2019-01-01", "2025-01-01"),
        ("SENTINEL-2", "C", "2019-01-01", "2025-01-01"),
        ("SENTINEL-2", "A", "2025-01-22", "2026-01-01"),
    ],
)
def test_platforms_only_fly_in_their_service_period(
    handler: Handler, collection: str, platform: str, start: str, end: str
) -> None:
    text = (
        f"Collection/Name eq '{collection}' and Attributes/OData.CSC.StringAttribute/any(att:"
        f"att/Name eq 'platformSerialIdentifier' and att/OData.CSC.StringAttribute/Value eq "
        f"'{platform}') and ContentDate/Start ge {start} and ContentDate/Start lt {end}"
    )
    assert _count(handler, text) == 0
    # ...while the platform does have products outside that window.
    assert (
        _count(handler, text.replace(f"ge {start} and ContentDate/Start lt {end}", "ge 2019-01-01"))
        > 0
    )


def test_nominal_sizes_are_realistic(store: CatalogueStore) -> None:
    connection = sqlite3.connect(store.path.resolve().as_uri() + "?mode=ro", uri=True)
    ranges = {
        t: (lo, hi)
        for t, lo, hi in connection.execute(
            "SELECT product_type, min(nominal_size), max(nominal_size) FROM products"
            " GROUP BY product_type"
        )
    }
    connection.close()
    assert ranges["IW_GRDH_1S"][0] >= 1.5e9 and ranges["IW_GRDH_1S"][1] <= 2.2e9
    assert ranges["IW_SLC__1S"][0] >= 4e9 and ranges["IW_SLC__1S"][1] <= 8.3e9
    assert ranges["S2MSI2A"][1] <= 1.2e9 and ranges["S2MSI1C"][1] <= 0.8e9
    assert ranges["SL_2_LST___"][0] >= 5e7 and ranges["SL_2_LST___"][1] <= 7e7


def test_sentinel2_revisit_rhythm_over_munich(handler: Handler) -> None:
    products = _sample(
        handler,
        "contains(Name,'_MSIL2A_') and contains(Name,'_T32UPU_') and "
        "ContentDate/Start ge 2023-05-01 and ContentDate/Start lt 2023-09-01",
        top=500,
    )
    by_orbit: dict[int, list[date]] = defaultdict(list)
    for product in products:
        sensed = parse_time(product["ContentDate"]["Start"]).date()
        by_orbit[attribute(product, "relativeOrbitNumber")].append(sensed)
    assert len(by_orbit) >= 2  # tiles at 48°N are seen from two relative orbits
    for dates in by_orbit.values():
        # A reprocessed twin is the same acquisition: the rhythm is that of the dates.
        ordered = sorted(set(dates))
        gaps = {(b - a).days for a, b in pairwise(ordered)}
        assert gaps == {5}  # S2A and S2B alternate on the same track (the hotspot keeps all)


def test_sensing_dates_helper(store: CatalogueStore, handler: Handler) -> None:
    days = store.sensing_dates("SENTINEL-1", 102.115, 16.48, product_type="GRD", platform="A")
    assert len(days) > 20
    assert days == sorted(days)
    day = days[len(days) // 2]
    text = (
        "Collection/Name eq 'SENTINEL-1' and OData.CSC.Intersects(area=geography'SRID=4326;"
        f"POINT(102.115 16.48)') and ContentDate/Start ge {day} and "
        f"ContentDate/Start lt {day + timedelta(days=1)}"
    )
    assert any(p["Name"].startswith("S1A_IW_GRDH") for p in _sample(handler, text))


# ---------------------------------------------------------------- store contract


def test_get_and_match_ids(store: CatalogueStore, handler: Handler) -> None:
    (product,) = _sample(handler, "contains(Name,'_T32UPU_')", top=1)
    record = store.get(product["Id"])
    assert isinstance(record, ProductRecord)
    assert record.id == product["Id"] and record.name == product["Name"]
    assert record.collection == "SENTINEL-2"
    assert record.product_type == attribute(product, "productType")
    assert record.content_start == parse_time(product["ContentDate"]["Start"])
    assert record.online == product["Online"]
    assert store.get("00000000-0000-4000-8000-000000000000") is None
    assert store.get("garbage") is None
    ids = store.match_ids("contains(Name,'_T32UPU_')", "ContentDate/Start desc")
    assert product["Id"] in ids and len(ids) == len(set(ids)) > 100
    assert len(store.match_ids(None)) == sum(store.counts_by_collection().values())


def test_every_shown_attribute_can_be_filtered(handler: Handler) -> None:
    """Filters and entities come from one definition: each attribute value a product
    shows finds that product again, through the type the collection's listing declares
    (some entities show a value of another type, or an instant without its fraction,
    as real ones do: :mod:`sentinel_fetch.emulator.catalogue.quirks`)."""
    samples = []
    for text in (
        "Collection/Name eq 'SENTINEL-1' and contains(Name,'_COG')",
        "Collection/Name eq 'SENTINEL-1' and contains(Name,'_SLC_')",
        "Collection/Name eq 'SENTINEL-1' and contains(Name,'_EW_')",
        "Collection/Name eq 'SENTINEL-2' and contains(Name,'MSIL1C')",
        "Collection/Name eq 'SENTINEL-2' and contains(Name,'MSIL2A')",
        "Collection/Name eq 'SENTINEL-3' and contains(Name,'_OL_')",
        "Collection/Name eq 'SENTINEL-3' and contains(Name,'_SL_')",
        "Collection/Name eq 'SENTINEL-5P'",
    ):
        samples.extend(_sample(handler, text, top=1))
    declared = {
        collection: {
            a["Name"]: a["ValueType"]
            for a in call(handler, f"/odata/v1/Attributes({collection})").json
        }
        for collection in ("SENTINEL-1", "SENTINEL-2", "SENTINEL-3", "SENTINEL-5P")
    }
    for product in samples:
        collection = attribute(product, "platformShortName")
        for item in product["Attributes"]:
            kind = declared[collection][item["Name"]]
            value = attribute(product, item["Name"])
            if kind == "DateTimeOffset" and "." not in value:
                continue  # shown to the second only: no exact instant to find it by
            if kind == "String":
                literal = "'" + value.replace("'", "''") + "'"
            elif kind == "Boolean":
                literal = str(value).lower()
            elif kind == "DateTimeOffset":
                literal = value
            else:
                literal = repr(value)
            text = (
                f"Id eq '{product['Id']}' and Attributes/OData.CSC.{kind}Attribute/any(att:"
                f"att/Name eq '{item['Name']}' and "
                f"att/OData.CSC.{kind}Attribute/Value eq {literal})"
            )
            assert _count(handler, text) == 1, (product["Name"], item)


def test_concurrent_calls_give_the_sequential_answers(handler: Handler) -> None:
    queries = [
        "$top=50&$expand=Attributes&$filter=" + quote(f, safe="")
        for f in (
            "Collection/Name eq 'SENTINEL-2' and OData.CSC.Intersects(area=geography'SRID=4326;"
            "POINT(11.58 48.14)')",
            "Collection/Name eq 'SENTINEL-1' and ContentDate/Start ge 2023-05-01",
            "contains(Name,'L2__NO2___') and Online eq true",
            "OData.CSC.Intersects(area=geography'SRID=4326;"
            "POLYGON((0 40, 10 40, 10 50, 0 50, 0 40))')",
        )
    ]
    expected = [search(handler, q).response.body for q in queries]
    with ThreadPoolExecutor(max_workers=8) as pool:
        bodies = list(pool.map(lambda q: search(handler, q).response.body, queries * 6))
    assert bodies == expected * 6


@pytest.mark.skipif(not Path("/proc/self/fd").is_dir(), reason="needs /proc")
def test_short_lived_threads_do_not_pile_up_connections(handler: Handler) -> None:
    # The server runs one thread per HTTP connection; each thread here searches once.
    def open_files() -> int:
        return len(list(Path("/proc/self/fd").iterdir()))

    search(handler, "$top=1")
    before = open_files()
    for _ in range(40):
        worker = threading.Thread(target=search, args=(handler, "$top=1&$count=true"))
        worker.start()
        worker.join()
    assert open_files() - before <= 8


def test_closed_store_refuses_new_threads(store: CatalogueStore) -> None:
    config = EmulatorConfig()
    other = CatalogueStore.open(config.data_dir, config.seed)
    other.close()
    with pytest.raises(RuntimeError):
        other.counts_by_collection()


@pytest.mark.parametrize(
    "module",
    [
        "attributes",
        "entity",
        "filter",
        "footprints",
        "handler",
        "hashing",
        "mgrs",
        "missions",
        "orbits",
        "quicklook",
        "schema",
        "sql",
        "store",
    ],
)
def test_docstring_examples(module: str) -> None:
    imported = importlib.import_module(f"sentinel_fetch.emulator.catalogue.{module}")
    failed, _ = doctest.testmod(imported, optionflags=doctest.ELLIPSIS)
    assert failed == 0


def test_entity_route_serves_what_search_serves(handler: Handler) -> None:
    (product,) = _sample(handler, "contains(Name,'_EW_GRDM_')", top=1)
    entity = call(handler, f"/odata/v1/Products({product['Id']})", "$expand=Attributes").json
    del entity["@odata.context"]
    assert entity == product
