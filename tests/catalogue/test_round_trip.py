"""Property: a Query survives its own search URL, and filter text survives its tree."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any

import shapely
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from shapely.geometry import MultiPolygon, Point, Polygon, box

from sentinel_fetch.catalogue.area import geometry_wkt
from sentinel_fetch.catalogue.browser_url import parse_search_url
from sentinel_fetch.catalogue.filter import parse_filter, render_expression
from sentinel_fetch.catalogue.odata import filter_expression, search_url
from sentinel_fetch.catalogue.query import KNOWN_COLLECTIONS, ORDER_BY_FIELDS, Query
from sentinel_fetch.errors import QueryError
from sentinel_fetch.settings import Endpoints

UTC = timezone.utc
ENDPOINTS = (
    Endpoints(),
    Endpoints(
        identity="http://127.0.0.1:8443/auth/realms/CDSE",
        catalogue="http://127.0.0.1:8443/odata/v1",
        download="http://127.0.0.1:8443/odata/v1",
    ),
)

# Any text a user may search for; braces are left out because `{word}` in a pasted URL is
# read as a placeholder its script forgot to fill in.
free_text = (
    st.text(
        st.characters(
            codec="utf-8",
            exclude_categories=("Cs", "Cc", "Cf", "Co", "Cn", "Zl", "Zp"),
            exclude_characters="{}",
        ),
        min_size=1,
        max_size=12,
    )
    .map(str.strip)
    .filter(bool)
)
product_names = st.text(
    st.characters(
        codec="utf-8",
        exclude_categories=("Cs", "Cc", "Cf", "Co", "Cn", "Z"),
        exclude_characters="{}",
    ),
    min_size=1,
    max_size=70,
)
instants = st.datetimes(
    min_value=datetime(2014, 1, 1), max_value=datetime(2035, 12, 31), timezones=st.just(UTC)
)
# The "multi" shape reaches three widths (<= 3 degrees) east of its west edge.
longitudes = st.floats(min_value=-179.0, max_value=176.0, allow_nan=False)
latitudes = st.floats(min_value=-89.0, max_value=88.0, allow_nan=False)
sizes = st.floats(min_value=1e-4, max_value=1.0, allow_nan=False)


@st.composite
def areas(draw: st.DrawFn) -> str:
    west, south, width, height = draw(longitudes), draw(latitudes), draw(sizes), draw(sizes)
    outer = box(west, south, west + width, south + height)
    kind = draw(st.sampled_from(["box", "hole", "multi", "point", "triangle"]))
    if kind == "point":
        geometry: Any = Point(west, south)
    elif kind == "hole":
        inner = box(west + width / 4, south + height / 4, west + width / 2, south + height / 2)
        geometry = Polygon(outer.exterior.coords, [inner.exterior.coords])
    elif kind == "multi":
        geometry = MultiPolygon(
            [outer, box(west + width * 2, south, west + width * 3, south + height)]
        )
    elif kind == "triangle":
        geometry = Polygon(
            [(west, south), (west + width, south), (west + width / 3, south + height)]
        )
    else:
        geometry = outer
    return geometry_wkt(geometry)


tiles = st.builds(
    "{:02d}{}{}{}".format,
    st.integers(1, 60),
    st.sampled_from("CDEFGHJKLMNPQRSTUVWX"),
    st.sampled_from("ABCDEFGHJKLMNPQRSTUVWXYZ"),
    st.sampled_from("ABCDEFGHJKLMNPQRSTUV"),
)
baselines = st.builds("{:02d}.{:02d}".format, st.integers(0, 99), st.integers(0, 99))
extras = st.sampled_from(
    [
        "Attributes/OData.CSC.StringAttribute/any(att:att/Name eq 'instrumentShortName' and "
        "att/OData.CSC.StringAttribute/Value eq 'MSI')",
        "not contains(Name,'_COG')",
        "Attributes/OData.CSC.StringAttribute/any(att:att/Name eq 'polarisationChannels' and "
        "att/OData.CSC.StringAttribute/Value eq 'VV&VH')",
        "Attributes/OData.CSC.StringAttribute/any(att:att/Name eq 'relativeOrbitNumber' and "
        "att/OData.CSC.IntegerAttribute/Value eq 15)",
        "PublicationDate ge 2024-01-01T00:00:00.000Z and ModificationDate lt 2025-01-01",
        "ContentDate/Start le 2023-12-31T23:59:59.999Z",
        "(Collection/Name eq 'SENTINEL-1' and Online eq true) or "
        "(Collection/Name eq 'SENTINEL-2' and not (Online eq false))",
        "startswith(Name,'S2B') or endswith(Name,'.SAFE')",
        "Name eq 'it''s' or Id eq 'b30f2bbf-7f02-494a-b3f4-3ea11cd3d14d'",
        "Attributes/OData.CSC.DoubleAttribute/any(att:att/Name eq 'cloudCover' and "
        "att/OData.CSC.DoubleAttribute/Value lt 12.5)",
        "Attributes/OData.CSC.BooleanAttribute/any(att:att/Name eq 'sliceProductFlag' and "
        "att/OData.CSC.BooleanAttribute/Value eq false)",
        # Field forms: they fill an empty field, or stay extra when it is taken.
        "Online eq false",
        "contains(Name,'N0509')",
        "Collection/Name eq 'SENTINEL-3'",
        "OData.CSC.Intersects(area=geography'SRID=4326;MULTIPOLYGON (((1 1, 2 1, 2 2, 1 1)), "
        "((5 5, 6 5, 6 6, 5 5))))')",
        "OData.CSC.Intersects(area=geography'SRID=4326;POINT (12.5 41.9)')",
    ]
)


def maybe(strategy: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    return st.none() | strategy


def several(strategy: st.SearchStrategy[Any], most: int = 3) -> st.SearchStrategy[tuple[Any, ...]]:
    return st.lists(strategy, max_size=most, unique=True).map(tuple)


@st.composite
def queries(draw: st.DrawFn) -> Query:
    start, end = draw(maybe(instants)), draw(maybe(instants))
    if start is not None and end is not None and end <= start:
        end = start + timedelta(microseconds=draw(st.integers(1, 10**12)))
    values = {
        "collections": draw(several(st.sampled_from(KNOWN_COLLECTIONS))),
        "product_types": draw(
            several(
                st.sampled_from(
                    [
                        "S2MSI1C",
                        "S2MSI2A",
                        "GRD",
                        "SLC",
                        "GRD-COG",
                        "IW_GRDH_1S",
                        "L2__NO2___",
                        "OL_1_EFR___",
                    ]
                )
            )
        ),
        "start": start,
        "end": end,
        "area": draw(maybe(areas())),
        "max_cloud_cover": draw(maybe(st.floats(min_value=0, max_value=100))),
        "tiles": draw(several(tiles)),
        "relative_orbits": draw(several(st.integers(1, 175))),
        "orbit_direction": draw(maybe(st.sampled_from(["ASCENDING", "DESCENDING"]))),
        "platforms": draw(several(st.sampled_from("ABCD"))),
        "online": draw(maybe(st.booleans())),
        "name_contains": draw(several(free_text)),
        "processing_baselines": draw(several(baselines)),
        "names": draw(several(product_names)),
        "ids": draw(several(st.uuids().map(str))),
        "extra_filters": draw(st.lists(extras, max_size=4).map(tuple)),
        "order_by": draw(
            maybe(
                st.builds(
                    "{} {}".format,
                    st.sampled_from(ORDER_BY_FIELDS),
                    st.sampled_from(["asc", "desc"]),
                )
            )
        ),
    }
    try:
        return Query(**values)
    except QueryError:
        assume(False)
        raise


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(query=queries(), endpoints=st.sampled_from(ENDPOINTS))
def test_query_survives_its_search_url(query: Query, endpoints: Endpoints) -> None:
    url = search_url(query, endpoints)

    assert parse_search_url(url, endpoints) == query


@settings(max_examples=200, deadline=None)
@given(query=queries())
def test_rendered_filters_parse_back_to_the_same_tree(query: Query) -> None:
    expression = filter_expression(query)
    text = render_expression(expression)

    assert parse_filter(text) == expression
    assert render_expression(parse_filter(text)) == text


@settings(max_examples=100, deadline=None)
@given(query=queries())
def test_rebuilding_a_query_changes_nothing(query: Query) -> None:
    assert Query(**{name: getattr(query, name) for name in query.to_dict()}) == query
    assert Query.from_dict(query.to_dict()) == query


@settings(max_examples=100, deadline=None)
@given(wkt=areas())
def test_area_text_is_exact(wkt: str) -> None:
    assert geometry_wkt(shapely.from_wkt(wkt)) == wkt
