"""The triage of search results (twins, coverage, order, a cut), as a program uses it."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest

from sentinel_fetch import Client
from sentinel_fetch.catalogue.product import Product
from sentinel_fetch.catalogue.triage import Triage, apply_triage
from sentinel_fetch.emulator import Emulator
from sentinel_fetch.errors import InputError
from sentinel_fetch.settings import Settings

AREA = "POLYGON ((10 46, 11 46, 11 47, 10 47, 10 46))"
WEST_HALF = "POLYGON ((10 46, 10.5 46, 10.5 47, 10 47, 10 46))"
A_SLIVER = "POLYGON ((10.95 46, 11.5 46, 11.5 47, 10.95 47, 10.95 46))"


def product(name: str, day: int | None, cloud: float | None, footprint: str = AREA) -> Product:
    start = datetime(2023, 7, day, tzinfo=timezone.utc) if day is not None else None
    attributes = {"cloudCover": cloud} if cloud is not None else {}
    return Product(
        id=name, name=name, footprint=footprint, content_start=start, attributes=attributes
    )


PRODUCTS = [
    product("b", 2, 30.0),
    product("a", 1, None, WEST_HALF),
    product("c", 3, 5.0, A_SLIVER),
    product("d", None, 5.0),
]


def names(products: list[Product]) -> list[str]:
    return [p.name for p in products]


def test_sort_is_stable_and_puts_the_unknown_last_then_limit_cuts() -> None:
    assert names(apply_triage(PRODUCTS, Triage(sort="cloud")).kept) == ["c", "d", "b", "a"]
    assert names(apply_triage(PRODUCTS, Triage(sort="date")).kept) == ["a", "b", "c", "d"]
    assert names(apply_triage(PRODUCTS, Triage(sort="-date")).kept) == ["c", "b", "a", "d"]
    assert names(apply_triage(PRODUCTS, Triage(sort="-date", limit=2)).kept) == ["c", "b"]
    assert names(apply_triage(PRODUCTS, Triage()).kept) == names(PRODUCTS)


def test_coverage_drops_are_named_with_their_share_of_the_area() -> None:
    outcome = apply_triage(PRODUCTS, Triage(min_coverage=40), AREA)
    assert names(outcome.kept) == ["b", "a", "d"]
    [drops] = outcome.drops
    assert "dropped 1 products" in drops.summary
    assert drops.lines == ["c: covers 5.0 % of the area"]


@pytest.mark.parametrize(
    ("triage", "area", "word"),
    [
        ({"min_coverage": 50}, None, "needs an area"),
        ({"sort": "size"}, AREA, "sort"),
        ({"min_coverage": 120}, AREA, "percentage"),
        ({"limit": 0}, AREA, "limit"),
    ],
)
def test_what_cannot_work_is_an_input_error(
    triage: dict[str, object], area: str | None, word: str
) -> None:
    with pytest.raises(InputError, match=word):
        apply_triage(PRODUCTS, Triage(**triage), area)  # type: ignore[arg-type]


def test_the_client_triages_a_search_without_an_account(cdse: Emulator, settings: Settings) -> None:
    with Client(settings) as client:
        found = client.search(
            collections="SENTINEL-2", tiles="32TPS", start="2023-07-01", end="2023-07-12"
        )
        outcome = client.triage(found, Triage(sort="-date", limit=2))
        assert client.logins == 0
    dates = [p.content_start for p in outcome.kept]
    assert len(dates) == 2 and dates == sorted(dates, reverse=True)
