"""Every ``$filter`` form of cdse-api.md §3.5, through the handler and the store.

Results are checked on the returned entities (names, attributes, dates, footprints with
shapely), never by re-running the catalogue's own SQL.
"""

# Fixtures come from the support module and are named as test parameters.
# ruff: noqa: F811

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any
from urllib.parse import quote

import pytest
import shapely

from sentinel_fetch.emulator.catalogue import CatalogueStore, FilterError, parse_filter
from sentinel_fetch.emulator.model import Handler

from .test_catalogue_support import (
    CATALOGUE_BASE,
    all_pages,
    archives,  # noqa: F401
    attribute,
    geometry,
    handler,  # noqa: F401
    parse_time,
    search,
    store,  # noqa: F401
)

JULY = (
    "ContentDate/Start ge 2023-07-01T00:00:00.000Z"
    " and ContentDate/Start lt 2023-08-01T00:00:00.000Z"
)
MUNICH = "OData.CSC.Intersects(area=geography'SRID=4326;POINT(11.58 48.14)')"


def products(
    handler: Handler, text: str, extra: str = "&$top=1000&$expand=Attributes"
) -> list[dict[str, Any]]:
    reply = search(handler, "$filter=" + quote(text, safe="") + extra)
    assert reply.status == 200, reply.json
    value: list[dict[str, Any]] = reply.json["value"]
    return value


def count(handler: Handler, text: str) -> int:
    reply = search(handler, "$filter=" + quote(text, safe="") + "&$top=0&$count=true")
    assert reply.status == 200, reply.json
    return int(reply.json["@odata.count"])


def ids(handler: Handler, text: str) -> set[str]:
    """Every matching Id, following nextLinks."""
    url = f"{CATALOGUE_BASE}/odata/v1/Products?$filter={quote(text, safe='')}&$top=1000&$select=Id"
    found = [p["Id"] for p in all_pages(handler, url)]
    assert len(found) == len(set(found))
    return set(found)


def error(handler: Handler, text: str) -> str:
    reply = search(handler, "$filter=" + quote(text, safe=""))
    assert reply.status == 400, reply.json
    detail: str = reply.json["detail"]
    return detail


# -------------------------------------------------------------- names and ids


def test_name_and_id_equality(handler: Handler) -> None:
    (sample,) = products(handler, f"Collection/Name eq 'SENTINEL-1' and {JULY}", "&$top=1")
    assert ids(handler, f"Name eq '{sample['Name']}'") == {sample["Id"]}
    assert ids(handler, f"Id eq '{sample['Id']}'") == {sample["Id"]}
    assert ids(handler, f"Id ne '{sample['Id']}' and Name eq '{sample['Name']}'") == set()
    assert ids(handler, "Name eq 'it''s not there'") == set()


def test_text_functions_are_case_sensitive(handler: Handler) -> None:
    found = products(handler, f"contains(Name,'L2A') and {JULY}", "&$top=100")
    assert found and all("L2A" in p["Name"] for p in found)
    assert count(handler, f"contains(Name,'l2a') and {JULY}") == 0
    starts = products(handler, f"startswith(Name,'S1A_IW_SLC') and {JULY}", "&$top=100")
    assert starts and all(p["Name"].startswith("S1A_IW_SLC") for p in starts)
    ends = products(handler, f"endswith(Name,'.SEN3') and {JULY}", "&$top=100")
    assert ends and all(p["Name"].endswith(".SEN3") for p in ends)
    assert count(handler, f"endswith(Name,'.sen3') and {JULY}") == 0


def test_negations_and_disjunctions(handler: Handler) -> None:
    text = f"contains(Name,'GRD') and not contains(Name,'_COG') and {JULY}"
    found = products(handler, text)
    assert found and all("GRD" in p["Name"] and "_COG" not in p["Name"] for p in found)
    not_s2 = products(handler, f"not (Collection/Name eq 'SENTINEL-2') and {JULY}", "&$top=300")
    assert not_s2 and all(not p["Name"].startswith("S2") for p in not_s2)
    either = products(
        handler,
        f"((Collection/Name eq 'SENTINEL-3' and Online eq true) or "
        f"(Collection/Name eq 'SENTINEL-5P' and Online eq true)) and {JULY}",
    )
    prefixes = {p["Name"][:3] for p in either}
    assert prefixes == {"S3A", "S3B", "S5P"}
    assert count(handler, f"Collection/Name ne 'SENTINEL-2' and {JULY}") == len(
        ids(handler, f"not (Collection/Name eq 'SENTINEL-2') and {JULY}")
    )


def test_deep_nesting(handler: Handler) -> None:
    flat = ids(handler, f"Collection/Name eq 'SENTINEL-3' and {JULY}")
    nested = ids(
        handler,
        "((((Collection/Name eq 'SENTINEL-3')) and ((ContentDate/Start ge 2023-07-01T00:00:00Z)"
        " and (((ContentDate/Start lt 2023-08-01T00:00:00Z))))))",
    )
    assert flat == nested and flat


def test_online_flag(handler: Handler) -> None:
    total = count(handler, "Online eq true or Online eq false")
    offline = products(handler, "Online eq false", "&$top=50")
    assert offline and all(p["Online"] is False for p in offline)
    share = count(handler, "Online eq false") / total
    assert 0.02 < share < 0.045


# --------------------------------------------------------------------- dates


@pytest.mark.parametrize(
    "literal",
    [
        "2023-07-10T00:00:00.000Z",
        "2023-07-10T00:00:00.000000Z",
        "2023-07-10T02:00:00.000+02:00",
        "2023-07-09T20:00:00.000-04:00",
        "2023-07-10T00:00:00.000",
        "2023-07-10T00:00:00",
        "2023-07-10",
        "'2023-07-10T00:00:00.000000Z'",
        "'2023-07-10'",
    ],
)
def test_every_date_literal_variant_means_the_same_instant(handler: Handler, literal: str) -> None:
    text = (
        f"Collection/Name eq 'SENTINEL-3' and ContentDate/Start ge {literal}"
        " and ContentDate/Start lt 2023-07-12"
    )
    found = products(handler, text, "&$top=1000")
    canonical = ids(
        handler,
        "Collection/Name eq 'SENTINEL-3' and ContentDate/Start ge 2023-07-10T00:00:00.000Z"
        " and ContentDate/Start lt 2023-07-12T00:00:00.000Z",
    )
    assert {p["Id"] for p in found} == canonical and canonical
    lower = datetime(2023, 7, 10, tzinfo=timezone.utc)
    assert all(parse_time(p["ContentDate"]["Start"]) >= lower for p in found)


def test_datetime_typed_literal_is_rejected(handler: Handler) -> None:
    detail = error(handler, "ContentDate/Start gt datetime'2023-07-10T00:00:00'")
    assert "position 21" in detail and "datetime" in detail


def test_content_end_publication_and_modification_dates(handler: Handler) -> None:
    ended = products(
        handler,
        "Collection/Name eq 'SENTINEL-5P' and ContentDate/End ge 2023-07-10 and "
        "ContentDate/End lt 2023-07-11",
        "&$top=100",
    )
    assert ended
    for p in ended:
        assert parse_time(p["ContentDate"]["End"]).date().isoformat() == "2023-07-10"
    published = products(
        handler,
        "PublicationDate ge 2024-03-01T00:00:00.000Z"
        " and PublicationDate le 2024-03-02T00:00:00.000Z",
        "&$top=200",
    )
    assert published
    for p in published:
        assert "2024-03-01T" <= p["PublicationDate"] <= "2024-03-02T00:00:00.000000Z"
    modified = products(handler, "ModificationDate gt 2025-12-31T12:00:00Z", "&$top=50")
    assert all(p["ModificationDate"] > "2025-12-31T12:00:00" for p in modified)


# ------------------------------------------------------------------- spatial


def test_point_polygon_and_spellings(handler: Handler) -> None:
    point = shapely.Point(11.58, 48.14)
    found = products(handler, f"Collection/Name eq 'SENTINEL-2' and {MUNICH} and {JULY}")
    assert found and all(geometry(p).intersects(point) for p in found)
    assert {attribute(p, "tileId") for p in found} >= {"32UPU"}
    square = "POLYGON((11.5 48.1, 11.7 48.1, 11.7 48.2, 11.5 48.2, 11.5 48.1))"
    tight = f"OData.CSC.Intersects(area=geography'SRID=4326;{square}')"
    spaced = tight.replace("POLYGON((", "POLYGON ((")
    located = tight.replace("(area=", "(location=Footprint,area=")
    lowered = tight.replace("POLYGON", "polygon")
    base = f"Collection/Name eq 'SENTINEL-2' and {JULY} and "
    reference = ids(handler, base + tight)
    assert reference >= {p["Id"] for p in found}
    for variant in (spaced, located, lowered):
        assert ids(handler, base + variant) == reference


def test_multipolygon_and_hole(handler: Handler) -> None:
    base = f"Collection/Name eq 'SENTINEL-2' and {JULY} and "
    munich = "((11.5 48.1, 11.7 48.1, 11.7 48.2, 11.5 48.2, 11.5 48.1))"
    paris = "((2.3 48.8, 2.4 48.8, 2.4 48.9, 2.3 48.9, 2.3 48.8))"
    multi = ids(
        handler,
        base + f"OData.CSC.Intersects(area=geography'SRID=4326;MULTIPOLYGON({munich}, {paris})')",
    )
    one = ids(handler, base + f"OData.CSC.Intersects(area=geography'SRID=4326;POLYGON{munich}')")
    two = ids(handler, base + f"OData.CSC.Intersects(area=geography'SRID=4326;POLYGON{paris}')")
    assert multi == one | two and one
    # A ring with a hole larger than any product: products inside the hole do not match.
    outer = "(5 40, 20 40, 20 55, 5 55, 5 40)"
    hole = "(8 43, 17 43, 17 52, 8 52, 8 43)"
    holed = products(
        handler, base + f"OData.CSC.Intersects(area=geography'SRID=4326;POLYGON ({outer}, {hole})')"
    )
    area = shapely.Polygon(
        [(5, 40), (20, 40), (20, 55), (5, 55)], [[(8, 43), (17, 43), (17, 52), (8, 52)]]
    )
    assert holed and all(geometry(p).intersects(area) for p in holed)
    assert not ids(handler, base + MUNICH) & {p["Id"] for p in holed}


@pytest.mark.parametrize(
    ("area", "message"),
    [
        ("POLYGON((1 1, 2 2, 1 2, 2 1, 1 1))", "invalid geometry"),
        ("POLYGON((1 1, 2 1, 2 2, 1 2))", "not closed"),
        ("POLYGON((48.1 11.5, 48.1 111.7, 48.2 11.7, 48.1 11.5))", "longitude first"),
        ("LINESTRING(1 1, 2 2)", "unexpected character"),
        ("POLYGON((1 1, 2 1, 1 1))", "at least 4 points"),
    ],
)
def test_bad_geometries_are_400(handler: Handler, area: str, message: str) -> None:
    detail = error(handler, f"OData.CSC.Intersects(area=geography'SRID=4326;{area}')")
    assert message in detail
    assert detail.startswith("Invalid $filter at position ")


# ---------------------------------------------------------------- attributes


def _attr(kind: str, name: str, op: str, literal: str, value_kind: str | None = None) -> str:
    return (
        f"Attributes/OData.CSC.{kind}Attribute/any(att:att/Name eq '{name}' and "
        f"att/OData.CSC.{value_kind or kind}Attribute/Value {op} {literal})"
    )


def test_typed_attribute_lambdas(handler: Handler) -> None:
    base = f"Collection/Name eq 'SENTINEL-2' and {JULY} and "
    cloudy = products(handler, base + _attr("Double", "cloudCover", "le", "20"))
    assert cloudy and all(attribute(p, "cloudCover") <= 20 for p in cloudy)
    fraction = products(handler, base + _attr("Double", "cloudCover", "gt", "95.5"))
    assert all(attribute(p, "cloudCover") > 95.5 for p in fraction)
    orbit = attribute(cloudy[0], "relativeOrbitNumber")
    same = products(handler, base + _attr("Integer", "relativeOrbitNumber", "eq", str(orbit)))
    assert same and all(attribute(p, "relativeOrbitNumber") == orbit for p in same)
    tile = products(handler, base + _attr("String", "tileId", "eq", "'32UPU'"))
    assert tile and all(p["Name"].split("_")[5] == "T32UPU" for p in tile)
    late = products(
        handler, base + _attr("DateTimeOffset", "processingDate", "gt", "2023-07-30T00:00:00Z")
    )
    assert late and all(attribute(p, "processingDate") > "2023-07-30" for p in late)
    s1 = f"Collection/Name eq 'SENTINEL-1' and {JULY} and "
    single = products(handler, s1 + _attr("Boolean", "sliceProductFlag", "eq", "false"))
    sliced = products(
        handler,
        s1 + _attr("Boolean", "sliceProductFlag", "eq", "true"),
        "&$top=50&$expand=Attributes",
    )
    assert single and sliced
    assert all(attribute(p, "sliceProductFlag") is False for p in single)
    assert all(attribute(p, "totalSlices") == 1 for p in single)
    assert all(attribute(p, "sliceProductFlag") is True for p in sliced)


def test_attribute_type_leniency(handler: Handler) -> None:
    base = f"Collection/Name eq 'SENTINEL-1' and {JULY} and "
    (sample,) = products(handler, base.removesuffix(" and "), "&$top=1&$expand=Attributes")
    relative = attribute(sample, "relativeOrbitNumber")
    absolute = attribute(sample, "orbitNumber")
    reference = ids(handler, base + _attr("Integer", "relativeOrbitNumber", "eq", str(relative)))
    assert sample["Id"] in reference
    # sentinelsat#583's working form: StringAttribute lambda, IntegerAttribute value.
    mixed = _attr("String", "relativeOrbitNumber", "eq", str(relative), "Integer")
    assert ids(handler, base + mixed) == reference
    # eodag's form: IntegerAttribute lambda, StringAttribute value, unquoted number.
    eodag = _attr("Integer", "orbitNumber", "eq", str(absolute), "String")
    assert sample["Id"] in ids(handler, base + eodag)
    quoted = _attr("Integer", "orbitNumber", "eq", f"'{absolute}'")
    assert ids(handler, base + quoted) == ids(handler, base + eodag)
    lower = base + _attr("String", "polarisationChannels", "eq", "'VV&VH'").replace(
        "Attributes/", "attributes/", 1
    )
    renamed = lower.replace("att:att/", "x:x/").replace("and att/", "and x/")
    assert ids(handler, lower) == ids(handler, renamed) != set()
    untyped = base + "Attributes/any(a:a/Name eq 'polarisationChannels' and a/Value eq 'VV&VH')"
    assert ids(handler, untyped) == ids(handler, lower)
    assert ids(handler, base + _attr("String", "noSuchAttribute", "eq", "'x'")) == set()


def test_product_type_aliases(handler: Handler) -> None:
    base = (
        "Collection/Name eq 'SENTINEL-1' and ContentDate/Start ge 2024-01-01"
        " and ContentDate/Start lt 2024-03-01 and "
    )
    grd = products(handler, base + _attr("String", "productType", "eq", "'GRD'"))
    types = {attribute(p, "productType") for p in grd}
    assert "IW_GRDH_1S" in types and not any(t.endswith("-COG") for t in types)
    assert types <= {"IW_GRDH_1S", "EW_GRDM_1S"}
    cog = products(handler, base + _attr("String", "productType", "eq", "'GRD-COG'"))
    assert cog and {attribute(p, "productType") for p in cog} == {"IW_GRDH_1S-COG"}
    assert all(p["Name"].endswith("_COG.SAFE") for p in cog)
    slc = products(handler, base + _attr("String", "productType", "eq", "'SLC'"))
    assert slc and {attribute(p, "productType") for p in slc} == {"IW_SLC__1S"}
    exact = ids(handler, base + _attr("String", "productType", "eq", "'IW_GRDH_1S'"))
    assert exact == {p["Id"] for p in grd if attribute(p, "productType") == "IW_GRDH_1S"}
    assert ids(handler, base + _attr("String", "productType", "eq", "'RAW'")) == set()
    not_grd = products(
        handler,
        base + _attr("String", "productType", "ne", "'GRD'"),
        "&$top=200&$expand=Attributes",
    )
    assert not_grd and all(attribute(p, "productType") != "IW_GRDH_1S" for p in not_grd)


# -------------------------------------------------------------------- errors


@pytest.mark.parametrize(
    ("text", "position", "fragment"),
    [
        ("Name eq 'a' and (Online eq true", 31, "expected ')'"),
        ("Colection/Name eq 'SENTINEL-2'", 0, "unknown property 'Colection/Name'"),
        ("Online eq true and contain(Name,'x')", 19, "unknown function 'contain'"),
        ("ContentDate/Start ge", 20, "unexpected end of filter"),
        ("Name eq 'abc", 8, "unexpected character"),
        ("Online eq 1", 10, "true or false"),
        ("ContentDate/Start ge 'yesterday'", 21, "date-time"),
        ("Id eq 'nope'", 6, "not a valid product Id"),
        ("Attributes/OData.CSC.FooAttribute/any(a:a/Name eq 'x')", 0, "unknown attribute type"),
        ("Attributes/OData.CSC.StringAttribute/any(a:a/Value eq 'x')", 0, "a/Name"),
    ],
)
def test_malformed_filters_name_the_problem_and_position(
    handler: Handler, text: str, position: int, fragment: str
) -> None:
    detail = error(handler, text)
    assert detail.startswith(f"Invalid $filter at position {position}: "), detail
    assert fragment in detail


def test_filter_error_is_a_value_error(store: CatalogueStore) -> None:
    with pytest.raises(ValueError, match="position 5") as caught:
        store.match_ids("Name eqq 'x'")
    assert isinstance(caught.value, FilterError)
    assert caught.value.position == 5
    with pytest.raises(FilterError):
        parse_filter("(")


def test_literals(handler: Handler) -> None:
    base = f"Collection/Name eq 'SENTINEL-2' and {JULY} and "
    as_int = ids(handler, base + _attr("Double", "cloudCover", "lt", "40"))
    as_float = ids(handler, base + _attr("Double", "cloudCover", "lt", "40.0"))
    as_exp = ids(handler, base + _attr("Double", "cloudCover", "lt", "4e1"))
    assert as_int == as_float == as_exp != set()
    assert ids(handler, base + "Online eq true") | ids(handler, base + "Online eq false") == ids(
        handler, base.removesuffix(" and ")
    )
