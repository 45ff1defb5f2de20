"""The client's own OData $filter parser and renderer."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from sentinel_fetch.catalogue.filter import (
    And,
    BooleanLiteral,
    Compare,
    DateTimeLiteral,
    FunctionCall,
    Geography,
    Lambda,
    Member,
    NamedArgument,
    Not,
    NumberLiteral,
    Or,
    StringLiteral,
    conjuncts,
    format_datetime,
    parse_datetime,
    parse_filter,
    render_expression,
)
from sentinel_fetch.errors import FilterSyntaxError

UTC = timezone.utc

# The decoded filter of the Copernicus Browser's S5P NO2 search (cdse-api.md §4, URL 1).
BROWSER_FILTER = (
    "((Collection/Name eq 'SENTINEL-5P' and (Attributes/OData.CSC.StringAttribute/any("
    "att:att/Name eq 'instrumentShortName' and att/OData.CSC.StringAttribute/Value eq "
    "'TROPOMI') and (contains(Name,'L2__NO2___') and OData.CSC.Intersects(area=geography"
    "'SRID=4326;POLYGON ((-8.09 24.61, 49.56 24.61, 49.56 66.88, -8.09 66.88, -8.09 "
    "24.61))'))) and Online eq true) and ContentDate/Start ge 2023-08-01T00:00:00.000Z "
    "and ContentDate/Start lt 2023-12-31T23:59:59.999Z)"
)


def test_browser_filter_flattens_into_its_conditions() -> None:
    parts = conjuncts(parse_filter(BROWSER_FILTER))

    assert len(parts) == 7
    assert parts[0] == Compare("eq", Member(("Collection", "Name")), StringLiteral("SENTINEL-5P"))
    assert isinstance(parts[1], Lambda)
    assert parts[1].path == ("Attributes", "OData.CSC.StringAttribute")
    assert parts[2] == FunctionCall("contains", (Member(("Name",)), StringLiteral("L2__NO2___")))
    area = parts[3]
    assert isinstance(area, FunctionCall) and area.name == "OData.CSC.Intersects"
    argument = area.arguments[0]
    assert isinstance(argument, NamedArgument) and isinstance(argument.value, Geography)
    assert argument.value.coordinates[0][0] == (-8.09, 24.61)
    assert parts[4] == Compare("eq", Member(("Online",)), BooleanLiteral(True))
    assert parts[6] == Compare(
        "lt",
        Member(("ContentDate", "Start")),
        DateTimeLiteral(datetime(2023, 12, 31, 23, 59, 59, 999000, tzinfo=UTC)),
    )


def test_typed_attribute_lambda() -> None:
    text = (
        "Attributes/OData.CSC.DoubleAttribute/any(att:att/Name eq 'cloudCover' and "
        "att/OData.CSC.DoubleAttribute/Value le 40.00)"
    )
    expression = parse_filter(text)

    assert expression == Lambda(
        ("Attributes", "OData.CSC.DoubleAttribute"),
        "any",
        "att",
        And(
            (
                Compare("eq", Member(("att", "Name")), StringLiteral("cloudCover")),
                Compare(
                    "le", Member(("att", "OData.CSC.DoubleAttribute", "Value")), NumberLiteral(40)
                ),
            )
        ),
    )


def test_not_without_parentheses_binds_to_the_next_condition() -> None:
    expression = parse_filter(
        "contains(Name,'GRD') and not contains(Name,'_COG') and Online eq true"
    )

    assert isinstance(expression, And)
    assert expression.operands[1] == Not(
        FunctionCall("contains", (Member(("Name",)), StringLiteral("_COG")))
    )
    assert render_expression(expression) == (
        "contains(Name,'GRD') and not contains(Name,'_COG') and Online eq true"
    )


def test_and_binds_tighter_than_or() -> None:
    expression = parse_filter("Name eq 'a' or Name eq 'b' and Online eq true")

    assert isinstance(expression, Or)
    assert isinstance(expression.operands[1], And)
    assert render_expression(expression) == "Name eq 'a' or (Name eq 'b' and Online eq true)"


@pytest.mark.parametrize(
    ("literal", "expected"),
    [
        ("2022-05-03T00:00:00.000Z", datetime(2022, 5, 3, tzinfo=UTC)),
        ("2022-05-03T00:00:00.000000Z", datetime(2022, 5, 3, tzinfo=UTC)),
        ("2022-05-03T00:00:00Z", datetime(2022, 5, 3, tzinfo=UTC)),
        ("2022-05-03T00:00:00.000", datetime(2022, 5, 3, tzinfo=UTC)),
        ("2022-05-03", datetime(2022, 5, 3, tzinfo=UTC)),
        ("2022-05-03T00:00:00.000-04:00", datetime(2022, 5, 3, 4, tzinfo=UTC)),
        ("2022-05-03T02:30:00.5+02:30", datetime(2022, 5, 3, 0, 0, 0, 500000, tzinfo=UTC)),
        ("2022-05-03T10:30Z", datetime(2022, 5, 3, 10, 30, tzinfo=UTC)),
    ],
)
def test_every_date_literal_form(literal: str, expected: datetime) -> None:
    expression = parse_filter(f"ContentDate/Start ge {literal}")

    assert isinstance(expression, Compare)
    assert expression.right == DateTimeLiteral(expected)


def test_quoted_date_stays_a_string() -> None:
    expression = parse_filter("ContentDate/Start lt '2023-08-01T00:00:00.000000Z'")

    assert isinstance(expression, Compare)
    assert expression.right == StringLiteral("2023-08-01T00:00:00.000000Z")


@pytest.mark.parametrize(
    ("wkt", "geometry_type"),
    [
        ("POINT(12.5 41.9)", "POINT"),
        ("POLYGON((1 1,2 1,2 2,1 1))", "POLYGON"),
        ("POLYGON ((0 0, 10 0, 10 10, 0 10, 0 0), (2 2, 4 2, 4 4, 2 2))", "POLYGON"),
        ("MULTIPOLYGON (((0 0, 1 0, 1 1, 0 0)), ((5 5, 6 5, 6 6, 5 5)))", "MULTIPOLYGON"),
        ("MULTIPOINT ((1 2), (3 4))", "MULTIPOINT"),
        ("LINESTRING (1 2, 3 4)", "LINESTRING"),
    ],
)
def test_geographies(wkt: str, geometry_type: str) -> None:
    expression = parse_filter(f"OData.CSC.Intersects(area=geography'SRID=4326;{wkt}')")

    assert isinstance(expression, FunctionCall)
    argument = expression.arguments[0]
    assert isinstance(argument, NamedArgument) and isinstance(argument.value, Geography)
    assert argument.value.geometry_type == geometry_type
    assert parse_filter(render_expression(expression)) == expression


def test_spelling_does_not_change_the_tree() -> None:
    compact = "OData.CSC.Intersects(area=geography'SRID=4326;POLYGON((1 1,2 1,2 2,1 1))')"
    browser = "OData.CSC.Intersects(area=geography'SRID=4326;POLYGON ((1.0 1, 2 1, 2 2.00, 1 1))')"

    assert parse_filter(compact) == parse_filter(browser)
    assert parse_filter("x le 30") == parse_filter("x le 30.0")


def test_quotes_inside_strings_round_trip() -> None:
    expression = parse_filter("Name eq 'it''s'")

    assert expression == Compare("eq", Member(("Name",)), StringLiteral("it's"))
    assert render_expression(expression) == "Name eq 'it''s'"


def test_deep_nesting() -> None:
    text = "(" * 60 + "Online eq true" + ")" * 60

    assert parse_filter(text) == Compare("eq", Member(("Online",)), BooleanLiteral(True))


def test_render_is_a_fixed_point() -> None:
    once = render_expression(parse_filter(BROWSER_FILTER))

    assert render_expression(parse_filter(once)) == once
    assert parse_filter(once) == parse_filter(BROWSER_FILTER)


def test_not_before_a_comparison_keeps_its_parentheses() -> None:
    expression = parse_filter("not (Collection/Name eq 'SENTINEL-2')")

    assert render_expression(expression) == "not (Collection/Name eq 'SENTINEL-2')"


def test_error_positions_are_reported() -> None:
    text = "Online eq true and (Name eq 'a'"
    with pytest.raises(FilterSyntaxError) as caught:
        parse_filter(text)

    assert caught.value.position == text.index("(")
    assert f"character {text.index('(') + 1}" in str(caught.value)


def test_datetimes_round_trip_at_microsecond_precision() -> None:
    instant = datetime(2023, 10, 1, 10, 30, 19, 24, tzinfo=UTC)

    assert format_datetime(instant) == "2023-10-01T10:30:19.000024Z"
    assert parse_datetime(format_datetime(instant)) == instant
    assert parse_datetime("2024-06-04T12:03:49.113620+00:00") == datetime(
        2024, 6, 4, 12, 3, 49, 113620, tzinfo=UTC
    )
    assert parse_datetime("2024-06-04T14:03:49+0200") == datetime(2024, 6, 4, 12, 3, 49, tzinfo=UTC)
    assert format_datetime(datetime(2023, 1, 1, 1, tzinfo=timezone(timedelta(hours=1)))) == (
        "2023-01-01T00:00:00.000000Z"
    )
