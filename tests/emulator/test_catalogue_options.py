"""Query options, envelope, paging and the other routes of the catalogue host.

cdse-api.md §3.1-§3.8: ``$top``/``$skip`` limits with FastAPI-shaped 422 bodies, nextLink
re-serialisation, ``$count`` spellings, ``$orderby`` with the Id tie-break, ``$select``,
repeated ``$expand`` and the ``@odata.context`` variants, the entity form, FilterList,
``Attributes(<COLLECTION>)``, quicklooks and the ``$value`` redirect.
"""

# Fixtures come from the support module and are named as test parameters.
# ruff: noqa: F811

from __future__ import annotations

import json
import sqlite3
import uuid
from datetime import datetime, timezone
from urllib.parse import quote

import pytest
import shapely

from sentinel_fetch.emulator.catalogue import CatalogueStore, make_catalogue_handler
from sentinel_fetch.emulator.config import EmulatorConfig
from sentinel_fetch.emulator.model import Handler

from .test_catalogue_support import (
    CATALOGUE_BASE,
    DOWNLOAD_BASE,
    FakeArchives,
    archives,  # noqa: F401
    call,
    handler,  # noqa: F401
    parse_time,
    search,
    store,  # noqa: F401
)

S2_2023 = quote(
    "Collection/Name eq 'SENTINEL-2' and ContentDate/Start ge 2023-01-01T00:00:00.000Z"
    " and ContentDate/Start lt 2024-01-01T00:00:00.000Z",
    safe="",
)
ENTITY_KEYS = [
    "@odata.mediaContentType",
    "Id",
    "Name",
    "ContentType",
    "ContentLength",
    "OriginDate",
    "PublicationDate",
    "ModificationDate",
    "Online",
    "EvictionDate",
    "S3Path",
    "Checksum",
    "ContentDate",
    "Footprint",
    "GeoFootprint",
]


# ----------------------------------------------------------------- $top / $skip


def test_skip_above_the_cap_is_the_documented_422(handler: Handler) -> None:
    reply = search(handler, "$skip=10001")
    assert reply.status == 422
    assert reply.response.body == (
        b'{"detail":[{"type":"less_than_equal","loc":["query","$skip"],'
        b'"msg":"Input should be less than or equal to 10000","input":"10001",'
        b'"ctx":{"le":10000}}]}'
    )


def test_top_above_1000_is_a_422_of_the_same_shape(handler: Handler) -> None:
    reply = search(handler, "$top=1001")
    assert reply.status == 422
    assert reply.json == {
        "detail": [
            {
                "type": "less_than_equal",
                "loc": ["query", "$top"],
                "msg": "Input should be less than or equal to 1000",
                "input": "1001",
                "ctx": {"le": 1000},
            }
        ]
    }


@pytest.mark.parametrize(
    ("query", "kind"),
    [
        ("$top=-1", "greater_than_equal"),
        ("$top=abc", "int_parsing"),
        ("$skip=-5", "greater_than_equal"),
        ("$top=2.5", "int_parsing"),
        ("$count=maybe", "bool_parsing"),
    ],
)
def test_invalid_numbers_are_422(handler: Handler, query: str, kind: str) -> None:
    reply = search(handler, query)
    assert reply.status == 422
    (error,) = reply.json["detail"]
    assert error["type"] == kind
    assert error["loc"] == ["query", query.split("=")[0]]


def test_default_page_is_20_and_limits_are_inclusive(handler: Handler) -> None:
    assert len(search(handler, "").json["value"]) == 20
    assert len(search(handler, "$top=1000").json["value"]) == 1000
    assert search(handler, "$skip=10000&$top=1").status == 200
    zero = search(handler, "$top=0&$count=true").json
    assert zero["value"] == [] and zero["@odata.count"] > 250_000
    assert "@odata.nextLink" not in zero


@pytest.mark.parametrize("offset", [7, -7, -(10**9)])
def test_count_offset_makes_the_count_inexact_but_never_negative(
    store: CatalogueStore, archives: FakeArchives, offset: int
) -> None:
    exact = make_catalogue_handler(store, archives, DOWNLOAD_BASE)
    inexact = make_catalogue_handler(
        store, archives, DOWNLOAD_BASE, EmulatorConfig(count_offset=offset)
    )
    query = f"$filter={S2_2023}&$top=5&$count=true"

    true_count = search(exact, query).json["@odata.count"]
    reply = search(inexact, query).json

    assert reply["@odata.count"] == max(0, true_count + offset)
    assert reply["value"] == search(exact, query).json["value"]


# -------------------------------------------------------------------- nextLink


def test_next_link_keeps_original_parameters_and_appends_skip(handler: Handler) -> None:
    query = (
        "$filter=Collection/Name%20eq%20%27SENTINEL-1%27%20and%20ContentDate/Start%20gt%20"
        "2023-04-05T00:00:00.000Z&$top=10&$count=true&$expand=Attributes"
        "&$orderby=ContentDate/Start%20asc"
    )
    reply = search(handler, query)
    assert reply.json["@odata.nextLink"] == (
        CATALOGUE_BASE + "/odata/v1/Products?%24filter=Collection%2FName+eq+%27SENTINEL-1%27"
        "+and+ContentDate%2FStart+gt+2023-04-05T00%3A00%3A00.000Z&%24top=10&%24count=true"
        "&%24expand=Attributes&%24orderby=ContentDate%2FStart+asc&%24skip=10"
    )
    assert list(reply.json)[-1] == "@odata.nextLink"


def test_next_link_replaces_skip_in_place_and_keeps_spelling(handler: Handler) -> None:
    query = (
        "&$filter=contains(Name,%27T32UPU%27)&$count=True&$skip=40&$top=20"
        "&$expand=Attributes&$expand=Assets"
    )
    link = search(handler, query).json["@odata.nextLink"]
    assert link == (
        CATALOGUE_BASE + "/odata/v1/Products?%24filter=contains%28Name%2C%27T32UPU%27%29"
        "&%24count=True&%24skip=60&%24top=20&%24expand=Attributes&%24expand=Assets"
    )


def test_next_link_uses_default_top(handler: Handler) -> None:
    link = search(handler, f"$filter={S2_2023}&$skip=10001")
    assert link.status == 422
    link = search(handler, f"$filter={S2_2023}&$skip=100").json["@odata.nextLink"]
    assert link.endswith("&%24skip=120")


@pytest.mark.parametrize(
    ("skip", "top", "linked"),
    [
        (9980, 20, True),
        (9990, 20, False),
        (10000, 1, False),
        (9000, 1000, True),
        (9001, 1000, False),
    ],
)
def test_next_link_is_omitted_past_the_skip_cap(
    handler: Handler, skip: int, top: int, linked: bool
) -> None:
    reply = search(handler, f"$filter={S2_2023}&$top={top}&$skip={skip}")
    assert len(reply.json["value"]) == top
    assert ("@odata.nextLink" in reply.json) is linked


def test_short_page_has_no_next_link_but_a_full_last_page_does(handler: Handler) -> None:
    query = (
        "$filter=" + quote("contains(Name,'T32UPU') and contains(Name,'_20230722T')") + "&$count=1"
    )
    first = search(handler, query).json
    total = first["@odata.count"]
    assert 0 < total < 20
    assert "@odata.nextLink" not in first
    full = search(handler, f"{query}&$top={total}").json
    assert full["@odata.nextLink"].endswith(f"%24skip={total}")
    assert search(handler, f"{query}&$top={total}&$skip={total}").json["value"] == []


def test_browser_quirks_are_accepted(handler: Handler) -> None:
    plus = search(handler, "&$filter=Collection/Name+eq+'SENTINEL-3'&$count=True&$top=5")
    percent = search(handler, "$filter=Collection%2FName%20eq%20%27SENTINEL-3%27&$count=1&$top=5")
    assert plus.status == percent.status == 200
    assert plus.json["@odata.count"] == percent.json["@odata.count"] > 0
    assert [p["Id"] for p in plus.json["value"]] == [p["Id"] for p in percent.json["value"]]


@pytest.mark.parametrize(
    ("spelling", "counted"),
    [("True", True), ("true", True), ("1", True), ("False", False), ("false", False), ("0", False)],
)
def test_count_spellings(handler: Handler, spelling: str, counted: bool) -> None:
    reply = search(handler, f"$top=1&$count={spelling}")
    assert ("@odata.count" in reply.json) is counted


# -------------------------------------------------------------------- $orderby


def test_orderby_directions_and_id_tie_break(handler: Handler) -> None:
    query = "$filter=" + quote("contains(Name,'T32UPU')") + "&$top=200"
    ascending = search(handler, query + "&$orderby=ContentDate/Start").json["value"]
    keys = [(parse_time(p["ContentDate"]["Start"]), p["Id"]) for p in ascending]
    assert keys == sorted(keys)
    # L1C and L2A of one datatake share ContentDate/Start: the Id decides.
    assert len({k[0] for k in keys}) < len(keys)
    descending = search(handler, query + "&$orderby=ContentDate/Start%20desc").json["value"]
    starts = [parse_time(p["ContentDate"]["Start"]) for p in descending]
    assert starts == sorted(starts, reverse=True)
    published = search(handler, query + "&$orderby=PublicationDate%20desc").json["value"]
    # Some older entities show 3 fraction digits: the order is of the stored instants.
    dates = [parse_time(p["PublicationDate"]) for p in published]
    assert dates == sorted(dates, reverse=True)
    assert search(handler, query + "&$orderby=ModificationDate%20asc").status == 200
    assert search(handler, query + "&$orderby=ContentDate/End%20desc").status == 200


@pytest.mark.parametrize("orderby", ["Name%20asc", "ContentDate/Start%20up", "OrbitNumber"])
def test_unknown_orderby_is_400(handler: Handler, orderby: str) -> None:
    reply = search(handler, f"$orderby={orderby}")
    assert reply.status == 400
    assert "$orderby" in reply.json["detail"]


# ---------------------------------------------------------- $select / $expand


def test_entity_keys_datetimes_and_checksums(handler: Handler, archives: FakeArchives) -> None:
    (product,) = search(handler, f"$filter={S2_2023}&$top=1").json["value"]
    assert list(product) == ENTITY_KEYS
    for key in ("OriginDate", "PublicationDate", "ModificationDate"):
        parse_time(product[key])
    parse_time(product["ContentDate"]["Start"])
    assert product["EvictionDate"] in (
        "",
        "9999-12-31T23:59:59.999Z",
        "9999-12-31T23:59:59.999999Z",
    )
    assert product["ContentType"] == "application/octet-stream"
    assert product["Footprint"].startswith("geography'SRID=4326;POLYGON ((")
    assert product["GeoFootprint"]["type"] in {"Polygon", "MultiPolygon"}
    assert archives.calls == [product["Id"]]
    if product["Checksum"] == [{}]:
        return  # one empty object, as on a real Landsat-8 entity (quirks.py)
    md5, blake = product["Checksum"]
    assert md5["Algorithm"] == "MD5" and len(md5["Value"]) == 32
    assert blake["Algorithm"] == "BLAKE3" and len(blake["Value"]) == 64
    parse_time(md5["ChecksumDate"])
    assert product["ContentLength"] == len(f"{product['Id']}|{product['Name']}".encode()) * 7


def test_real_response_quirks_follow_their_documented_rules(handler: Handler) -> None:
    """Each form of cdse-api.md §12.1 appears, on exactly the products quirks.py names."""
    met: dict[str, set[object]] = {name: set() for name in ("eviction", "digits", "offset", "type")}
    checked = 0
    for year in range(2019, 2026):
        query = "$top=400&$expand=Attributes&$filter=" + quote(
            f"ContentDate/Start ge {year}-06-01 and ContentDate/Start lt {year}-06-03", safe=""
        )
        for product in search(handler, query).json["value"]:
            checked += 1
            uid = uuid.UUID(product["Id"]).bytes
            published = parse_time(product["PublicationDate"])
            old = published < datetime(2024, 9, 2, tzinfo=timezone.utc)
            digits = 3 if old else 6
            for text in (
                product["OriginDate"],
                product["ModificationDate"],
                product["ContentDate"]["Start"],
            ):
                assert len(text.split(".")[1]) == digits + 1, text
            for item in product["Checksum"]:
                assert item == {} or len(item["ChecksumDate"]) == 27  # always 6 digits
            met["digits"].add(digits)
            nrt = "_NRTI_" in product["Name"]
            empty = published < datetime(2024, 7, 31, tzinfo=timezone.utc) and uid[9] % 3 == 0
            eviction = product["EvictionDate"]
            if nrt:
                assert parse_time(eviction) > published
            else:
                assert (eviction == "") == empty, eviction
            met["eviction"].add("nrt" if nrt else eviction[:4])
            assert ("GeoFootprint" in product) == (
                published >= datetime(2024, 1, 1, tzinfo=timezone.utc) or uid[14] % 16 != 0
            )
            offset = published < datetime(2025, 3, 17, tzinfo=timezone.utc) and uid[11] % 3 == 0
            for item in product["Attributes"]:
                if item["ValueType"] == "DateTimeOffset":
                    assert item["Value"].endswith("+00:00") == offset, item
                    met["offset"].add((offset, "." in item["Value"]))
                if item["Name"] == "orbitNumber":
                    kind = {0: ("Integer", str), 1: ("String", int)}.get(
                        uid[13] % 8, ("Integer", int)
                    )
                    assert (item["ValueType"], type(item["Value"])) == kind, item
                    met["type"].add(kind)
    assert checked > 1000
    assert met["digits"] == {3, 6}
    assert {"", "9999", "nrt"} <= met["eviction"]
    assert met["offset"] == {(True, True), (True, False), (False, True)}
    assert len(met["type"]) == 3


def test_some_entities_show_checksum_as_one_empty_object(handler: Handler) -> None:
    query = "$top=1000&$select=Checksum,ContentLength&$filter=" + S2_2023
    products = search(handler, query).json["value"]
    empty = [p for p in products if p["Checksum"] == [{}]]
    assert empty and all(p["ContentLength"] > 0 for p in empty)
    assert all(uuid.UUID(p["Id"]).bytes[12] % 32 == 0 for p in empty)


def test_footprint_text_and_geojson_agree(handler: Handler) -> None:
    query = "$top=300&$select=Footprint,GeoFootprint&$filter=" + quote(
        "Collection/Name eq 'SENTINEL-5P' and ContentDate/Start ge 2023-07-01", safe=""
    )
    products = search(handler, query).json["value"]
    kinds = set()
    for product in products:
        text = product["Footprint"]
        assert text.startswith("geography'SRID=4326;") and text.endswith("'")
        from_text = shapely.from_wkt(text[len("geography'SRID=4326;") : -1])
        if "GeoFootprint" not in product:
            continue  # left out on a share of older entities, as in a real capture
        from_json = shapely.geometry.shape(product["GeoFootprint"])
        assert from_text.equals(from_json) and from_text.is_valid
        assert from_text.bounds[0] >= -180 and from_text.bounds[2] <= 180
        kinds.add(from_json.geom_type)
    # Orbit swaths that cross the antimeridian are split, as CDSE publishes them.
    assert kinds == {"Polygon", "MultiPolygon"}


def test_select_restricts_properties_and_skips_archive_info(
    handler: Handler, archives: FakeArchives
) -> None:
    products = search(handler, "$top=5&$select=Name,S3Path").json["value"]
    assert all(list(p) == ["@odata.mediaContentType", "Id", "Name", "S3Path"] for p in products)
    assert archives.calls == []
    everything = search(handler, "$top=1&$select=*").json["value"][0]
    assert list(everything) == ENTITY_KEYS


@pytest.mark.parametrize("select", ["OrbitNumber", "Name,Attributes", "name"])
def test_select_of_a_non_property_is_400(handler: Handler, select: str) -> None:
    reply = search(handler, f"$top=1&$select={select}")
    assert reply.status == 400
    assert "$select" in reply.json["detail"]


@pytest.mark.parametrize(
    ("expand", "context"),
    [
        ("", "$metadata#Products"),
        ("&$expand=Attributes", "$metadata#Products(Attributes())"),
        ("&$expand=Attributes&$expand=Assets", "$metadata#Products(Attributes(),Assets())"),
        (
            "&$expand=Attributes,Locations,Assets",
            "$metadata#Products(Attributes(),Locations(),Assets())",
        ),
        ("&$expand=Assets&$expand=Assets", "$metadata#Products(Assets())"),
    ],
)
def test_expand_context_and_entity_tail(handler: Handler, expand: str, context: str) -> None:
    reply = search(handler, f"$top=2{expand}")
    assert reply.json["@odata.context"] == context
    expanded = context.removeprefix("$metadata#Products").strip("()").replace("()", "")
    names = [n for n in expanded.split(",") if n]
    for product in reply.json["value"]:
        assert list(product)[len(ENTITY_KEYS) :] == names


def test_expansions_have_the_documented_shapes(handler: Handler) -> None:
    query = "$top=1&$expand=Attributes&$expand=Assets&$expand=Locations&$filter=" + S2_2023
    (product,) = search(handler, query).json["value"]
    first = product["Attributes"][0]
    assert list(first) == ["@odata.type", "Name", "Value", "ValueType"]
    assert first["@odata.type"] == f"#OData.CSC.{first['ValueType']}Attribute"
    (asset,) = product["Assets"]
    assert asset["Type"] == "QUICKLOOK"
    assert asset["DownloadLink"] == f"{CATALOGUE_BASE}/odata/v1/Assets({asset['Id']})/$value"
    assert asset["S3Path"] == product["S3Path"]
    (location,) = product["Locations"]
    assert location["FormatType"] == "Extracted"
    assert location["DownloadLink"] == f"{CATALOGUE_BASE}/odata/v1/Products({product['Id']})/$value"
    assert location["ContentLength"] == product["ContentLength"]
    assert location["Checksum"] == product["Checksum"]


def test_unknown_expand_is_400(handler: Handler) -> None:
    assert search(handler, "$expand=Nodes").status == 400


# ------------------------------------------------------------------ entity form


def test_entity_form(handler: Handler) -> None:
    (product,) = search(handler, "$top=1&$filter=" + S2_2023).json["value"]
    reply = call(handler, f"/odata/v1/Products({product['Id']})")
    assert reply.status == 200
    entity = reply.json
    assert entity["@odata.context"] == "$metadata#Products/$entity"
    assert "value" not in entity
    assert list(entity)[1:] == ENTITY_KEYS
    assert {k: v for k, v in entity.items() if k != "@odata.context"} == product
    expanded = call(handler, f"/odata/v1/Products({product['Id']})", "$expand=Attributes").json
    assert expanded["@odata.context"] == "$metadata#Products(Attributes())/$entity"
    assert expanded["Attributes"]


def test_entity_errors(handler: Handler) -> None:
    missing = call(handler, "/odata/v1/Products(00000000-0000-4000-8000-000000000000)")
    assert missing.status == 404 and "detail" in missing.json
    malformed = call(handler, "/odata/v1/Products(not-a-uuid)")
    assert malformed.status == 400 and "detail" in malformed.json


def test_quoted_product_keys_are_rejected_unless_switched_on(
    store: CatalogueStore, archives: FakeArchives, handler: Handler
) -> None:
    (product,) = search(handler, "$top=1&$filter=" + S2_2023).json["value"]
    quoted = f"/odata/v1/Products('{product['Id']}')"
    lenient = make_catalogue_handler(
        store, archives, DOWNLOAD_BASE, EmulatorConfig(catalogue_quoted_keys=True)
    )

    for path in (quoted, quoted + "/$value"):
        refused = call(handler, path)
        assert refused.status == 400 and "bare UUID" in refused.json["detail"]
    assert call(lenient, quoted).json["Id"] == product["Id"]
    assert call(lenient, quoted + "/$value").status == 301


@pytest.mark.parametrize("method", ["GET", "HEAD"])
def test_value_redirects_to_the_download_host(handler: Handler, method: str) -> None:
    product_id = "4b9e0f72-6d13-4a8c-b2e5-91c7d3a0e6f4"
    reply = call(handler, f"/odata/v1/Products({product_id})/$value", "token=abc", method)
    assert reply.status == 301
    assert reply.header("Location") == (
        f"{DOWNLOAD_BASE}/odata/v1/Products({product_id})/$value?token=abc"
    )
    assert reply.response.body == b""


def test_quicklook_asset_is_a_png(handler: Handler) -> None:
    (product,) = search(handler, "$top=1&$expand=Assets").json["value"]
    link = product["Assets"][0]["DownloadLink"].removeprefix(CATALOGUE_BASE)
    reply = call(handler, link)
    assert reply.status == 200
    assert reply.header("Content-Type") == "image/png"
    assert reply.response.body.startswith(b"\x89PNG\r\n\x1a\n")
    assert call(handler, link).response.body == reply.response.body
    unknown = call(handler, "/odata/v1/Assets(00000000-0000-4000-8000-000000000000)/$value")
    assert unknown.status == 404


# --------------------------------------------------------- FilterList, Attributes


def test_filter_list_returns_known_names_only(handler: Handler) -> None:
    names = [p["Name"] for p in search(handler, "$top=2&$filter=" + S2_2023).json["value"]]
    body = {
        "FilterProducts": [
            {"Name": names[1]},
            {"Name": "S2X_NOT_A_PRODUCT.SAFE"},
            {"Name": names[0]},
        ]
    }
    reply = call(
        handler,
        "/odata/v1/Products/OData.CSC.FilterList",
        "$expand=Attributes",
        "POST",
        json.dumps(body).encode(),
    )
    assert reply.status == 200
    assert reply.json["@odata.context"] == "$metadata#Products(Attributes())"
    assert sorted(p["Name"] for p in reply.json["value"]) == sorted(names)
    bad = call(handler, "/odata/v1/Products/OData.CSC.FilterList", "", "POST", b"{oops")
    assert bad.status == 422


def test_attribute_listing(handler: Handler) -> None:
    listing = call(handler, "/odata/v1/Attributes(SENTINEL-2)").json
    types = {a["Name"]: a["ValueType"] for a in listing}
    assert types["cloudCover"] == "Double"
    assert types["tileId"] == "String"
    assert types["orbitNumber"] == "Integer"
    assert types["processingDate"] == "DateTimeOffset"
    assert all(list(a) == ["Name", "ValueType"] for a in listing)
    s1 = {a["Name"]: a["ValueType"] for a in call(handler, "/odata/v1/Attributes(SENTINEL-1)").json}
    assert s1["sliceProductFlag"] == "Boolean"
    assert s1["polarisationChannels"] == "String"
    assert call(handler, "/odata/v1/Attributes(SENTINEL-9)").status == 404


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/odata/v1/Nothing"),
        ("GET", "/odata/v2/Products"),
        ("POST", "/odata/v1/Products"),
        ("GET", "/odata/v1/Products(4b9e0f72-6d13-4a8c-b2e5-91c7d3a0e6f4)/Nodes"),
    ],
)
def test_anything_else_is_a_json_404(handler: Handler, method: str, path: str) -> None:
    reply = call(handler, path, method=method)
    assert reply.status == 404
    assert reply.json == {"detail": "Not Found"}


def test_legacy_products_show_no_checksum(handler: Handler, store: CatalogueStore) -> None:
    # Legacy flags are not filterable: find some through the stored rows.
    connection = sqlite3.connect(store.path.resolve().as_uri() + "?mode=ro", uri=True)
    uids = [u for (u,) in connection.execute("SELECT uid FROM products WHERE legacy LIMIT 3")]
    connection.close()
    assert len(uids) == 3
    for uid in uids:
        entity = call(
            handler, f"/odata/v1/Products({uuid.UUID(bytes=uid)})", "$expand=Locations"
        ).json
        assert entity["Checksum"] == [] and entity["ContentLength"] == 0
        assert entity["Locations"][0]["Checksum"] == []
