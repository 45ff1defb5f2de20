"""The one field <-> OData mapping: every field is written and read back by the same slot."""

from __future__ import annotations

from dataclasses import asdict, fields
from datetime import datetime, timezone

import pytest

from sentinel_fetch.catalogue.conditions import absorb, field_conditions
from sentinel_fetch.catalogue.filter import Expression, render_expression
from sentinel_fetch.catalogue.inputs import FIELD_NORMALIZERS
from sentinel_fetch.catalogue.query import Query

UTC = timezone.utc
EVERY_FIELD = Query(
    collections=("SENTINEL-2",),
    product_types=("S2MSI2A",),
    start=datetime(2023, 7, 1, tzinfo=UTC),
    end=datetime(2023, 8, 1, tzinfo=UTC),
    area="POLYGON ((11 46, 12 46, 12 47, 11 47, 11 46))",
    max_cloud_cover=30.0,
    tiles=("32TQM", "33TUL"),
    relative_orbits=(22,),
    orbit_direction="DESCENDING",
    platforms=("A", "B"),
    online=True,
    name_contains=("_N05",),
    processing_baselines=("05.09",),
    names=("S2A_MSIL2A_20230705T101031_N0509_R022_T32TQM_20230705T161433.SAFE",),
    ids=("8f2d6a4e-1c3b-4e57-9a0d-5b7c2e91f4a3",),
)


def _empty() -> dict[str, object]:
    return {
        field.name: () if isinstance(getattr(EVERY_FIELD, field.name), tuple) else None
        for field in fields(Query)
    }


def test_every_query_field_but_extras_and_order_has_a_condition() -> None:
    assert set(FIELD_NORMALIZERS) == {field.name for field in fields(Query)} - {
        "extra_filters",
        "order_by",
    }
    # Each field renders one condition, but names and ids share one OR group.
    assert len(field_conditions(asdict(EVERY_FIELD))) == len(FIELD_NORMALIZERS) - 1


@pytest.mark.parametrize("condition", field_conditions(asdict(EVERY_FIELD)), ids=render_expression)
def test_each_rendered_condition_is_read_back_into_its_own_field(condition: Expression) -> None:
    values = _empty()
    assert absorb(values, condition)
    filled = {name for name, value in values.items() if value not in (None, ())}
    assert filled
    for name in filled:
        assert values[name] == getattr(EVERY_FIELD, name)


def test_a_filled_field_leaves_a_second_condition_alone() -> None:
    values = asdict(EVERY_FIELD)
    online = next(c for c in field_conditions(values) if render_expression(c) == "Online eq true")
    assert not absorb(values, online)
