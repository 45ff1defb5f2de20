"""Query: every input checked and normalised into one canonical search."""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone

import pytest
from shapely.geometry import box

from sentinel_fetch.catalogue.odata import render_filter
from sentinel_fetch.catalogue.query import Query, build_query
from sentinel_fetch.errors import QueryError

UTC = timezone.utc


def test_friendly_values_are_normalised() -> None:
    query = build_query(
        collections=["sentinel-2", "S1", "Sentinel-5P"],
        product_types=["l2a", "L1C", "grd", "IW_GRDH_1S", "L2__NO2___", "GRD-COG"],
        tiles=["T32TQM", "33tul"],
        relative_orbits=["108", 22],
        orbit_direction="desc",
        platforms=["b", "S2A", "Sentinel-1C"],
        processing_baselines=["N0509", "05.10", "5.11"],
        ids=["8F2D6A4E-1C3B-4E57-9A0D-5B7C2E91F4A3"],
        order_by="publicationdate",
    )

    assert query.collections == ("SENTINEL-2", "SENTINEL-1", "SENTINEL-5P")
    assert query.product_types == (
        "S2MSI2A",
        "S2MSI1C",
        "GRD",
        "IW_GRDH_1S",
        "L2__NO2___",
        "GRD-COG",
    )
    assert query.tiles == ("32TQM", "33TUL")
    assert query.relative_orbits == (108, 22)
    assert query.orbit_direction == "DESCENDING"
    assert query.platforms == ("B", "A", "C")
    assert query.processing_baselines == ("05.09", "05.10", "05.11")
    assert query.ids == ("8f2d6a4e-1c3b-4e57-9a0d-5b7c2e91f4a3",)
    assert query.order_by == "PublicationDate asc"


def test_duplicates_are_dropped_in_order() -> None:
    assert build_query(tiles=["32TQM", "T32TQM", "33TUL"]).tiles == ("32TQM", "33TUL")


@pytest.mark.parametrize(
    ("start", "end", "expected_start", "expected_end"),
    [
        # A date-only end includes that whole day.
        (
            "2023-01-01",
            "2023-01-31",
            datetime(2023, 1, 1, tzinfo=UTC),
            datetime(2023, 2, 1, tzinfo=UTC),
        ),
        (
            date(2023, 1, 1),
            date(2023, 1, 1),
            datetime(2023, 1, 1, tzinfo=UTC),
            datetime(2023, 1, 2, tzinfo=UTC),
        ),
        # A date-time end is the first instant excluded.
        (
            "2023-01-01T06:00:00+02:00",
            "2023-01-01T12:00:00Z",
            datetime(2023, 1, 1, 4, tzinfo=UTC),
            datetime(2023, 1, 1, 12, tzinfo=UTC),
        ),
        # No zone means UTC, as on the catalogue.
        (
            datetime(2023, 1, 1, 6),
            "2023-01-01T07:00:00",
            datetime(2023, 1, 1, 6, tzinfo=UTC),
            datetime(2023, 1, 1, 7, tzinfo=UTC),
        ),
    ],
)
def test_dates(
    start: object, end: object, expected_start: datetime, expected_end: datetime
) -> None:
    query = build_query(start=start, end=end)  # type: ignore[arg-type]

    assert (query.start, query.end) == (expected_start, expected_end)
    assert query.start is not None and query.start.tzinfo is UTC


def test_aware_datetimes_become_utc() -> None:
    paris = timezone(timedelta(hours=2))
    query = Query(start=datetime(2023, 6, 1, 2, tzinfo=paris))

    assert query.start == datetime(2023, 6, 1, tzinfo=UTC)
    assert query.start is not None and query.start.tzinfo is UTC


def test_area_from_a_geometry_and_a_bbox() -> None:
    from_geometry = build_query(area=box(12, 45.5, 13.5, 46.5))
    from_bbox = build_query(area="12,45.5,13.5,46.5")

    assert from_geometry.area == "POLYGON ((13.5 45.5, 13.5 46.5, 12 46.5, 12 45.5, 13.5 45.5))"
    assert from_bbox.area == from_geometry.area


def test_area_wkt_is_canonical() -> None:
    assert (
        Query(area="SRID=4326;POLYGON((1 1,2 1,2 2,1 1))").area == "POLYGON ((1 1, 2 1, 2 2, 1 1))"
    )


def test_extra_filters_with_a_field_form_fill_the_empty_field() -> None:
    query = Query(
        collections=("SENTINEL-2",),
        extra_filters=(
            "Online eq true and contains(Name,'L2A')",
            "Collection/Name eq 'SENTINEL-1'",
            "contains(Name,'T32')",
        ),
    )

    assert query.online is True
    assert query.name_contains == ("L2A",)
    # Filled fields take no second condition: these stay ANDed extras.
    assert query.extra_filters == ("Collection/Name eq 'SENTINEL-1'", "contains(Name,'T32')")


def test_extra_filters_are_canonical_text() -> None:
    query = Query(extra_filters=("not   contains( Name , '_COG' )",))

    assert query.extra_filters == ("not contains(Name,'_COG')",)


def test_names_and_ids_form_one_or_group() -> None:
    query = Query(names=("a.SAFE", "b.SAFE"), ids=("8f2d6a4e-1c3b-4e57-9a0d-5b7c2e91f4a3",))

    assert render_filter(query) == (
        "Name eq 'a.SAFE' or Name eq 'b.SAFE' or Id eq '8f2d6a4e-1c3b-4e57-9a0d-5b7c2e91f4a3'"
    )


def test_a_name_filter_is_not_merged_into_ids() -> None:
    # ANDing a Name test with an Id group must not turn into an OR.
    query = Query(ids=("8f2d6a4e-1c3b-4e57-9a0d-5b7c2e91f4a3",), extra_filters=("Name eq 'a'",))

    assert query.names == ()
    assert query.extra_filters == ("Name eq 'a'",)


def test_dict_round_trip() -> None:
    query = build_query(
        collections="S2",
        start="2023-01-01",
        end="2023-01-31",
        area="12,45.5,13.5,46.5",
        max_cloud_cover=12.5,
        online=False,
        extra_filters="not contains(Name,'_COG')",
        order_by="ContentDate/Start desc",
    )

    assert Query.from_dict(query.to_dict()) == query
    assert query.to_dict()["start"] == "2023-01-01T00:00:00.000000Z"


def test_with_changes_checks_again() -> None:
    query = Query(collections=("SENTINEL-2",))

    assert query.with_changes(tiles=("T32TQM",)).tiles == ("32TQM",)
    with pytest.raises(QueryError, match="cloud cover"):
        query.with_changes(max_cloud_cover=101)


def test_a_query_is_hashable_and_frozen() -> None:
    query = Query(collections=("SENTINEL-2",))

    assert hash(query) == hash(Query(collections=("SENTINEL-2",)))
    with pytest.raises(AttributeError):
        query.online = True  # type: ignore[misc]


def test_a_single_text_counts_as_one_value() -> None:
    assert Query(collections="SENTINEL-2").collections == ("SENTINEL-2",)  # type: ignore[arg-type]


def test_cloud_cover_zero_is_a_condition() -> None:
    assert "le 0)" in render_filter(Query(max_cloud_cover=0))
