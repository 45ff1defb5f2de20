"""Deduplication of reprocessed twins (cdse-api.md §11.3) and the coverage filter.

The rules are checked on hand-made products (each rule alone, in order), then on the
emulator's twins: one Sentinel-2 datatake of 2020 that holds every kind of twin.
"""

from __future__ import annotations

from typing import Any

import pytest
import shapely

from sentinel_fetch.api import search
from sentinel_fetch.catalogue.coverage import coverage_percent, filter_by_coverage
from sentinel_fetch.catalogue.dedupe import deduplicate, group_key
from sentinel_fetch.catalogue.product import Product
from sentinel_fetch.emulator import Emulator
from sentinel_fetch.settings import Settings

TILE = "POLYGON ((10 46, 11 46, 11 47, 10 47, 10 46))"
SOUTH_HALF = "POLYGON ((10 46, 11 46, 11 46.52, 10 46.52, 10 46))"
NORTH_HALF = "POLYGON ((10 46.48, 11 46.48, 11 47, 10 47, 10 46.48))"
# One 2020 datatake of the synthetic catalogue: 2 CloudFerro L2A, 4 pre-Collection-1
# originals, 2 products processed twice, and one tile left as two partial tiles.
DATATAKE = "S2A_MSIL2A_20200701T091700"


def product(
    baseline: str = "0500",
    processed: str = "20230301T120000",
    footprint: str = TILE,
    origin: str = "ESA",
    level: str = "L2A",
    **extra: Any,
) -> Product:
    name = f"S2A_MSI{level}_20200101T100000_N{baseline}_R022_T32TQM_{processed}.SAFE"
    return Product(id=name, name=name, footprint=footprint, attributes={"origin": origin, **extra})


def names(products: list[Product]) -> list[str]:
    return [p.name for p in products]


@pytest.mark.parametrize(
    ("better", "worse", "rule"),
    [
        (product("0500"), product("0209", "20200101T130000"), "Collection-1 baseline 05.00"),
        (product("0510"), product("0509"), "Collection-1 baseline 05.10"),
        (product("0209"), product("9999", "20230501T000000", origin="CloudFerro"), "02.09"),
        (product("0400"), product("0300"), "baseline 04.00 preferred over 03.00"),
        (product(origin="ESA"), product(origin="CloudFerro"), "origin ESA"),
        (product(processed="20230301T180000"), product(), "processed later"),
    ],
)
def test_the_preference_order_keeps_the_better_twin(
    better: Product, worse: Product, rule: str
) -> None:
    for order in ([better, worse], [worse, better]):
        outcome = deduplicate(order)
        assert names(outcome.kept) == [better.name]
        [dropped] = outcome.dropped
        assert dropped.product is worse and dropped.kept is better
        assert rule in dropped.reason and "overlap 100%" in dropped.reason


def test_complementary_partial_tiles_both_stay_and_order_is_kept() -> None:
    south = product(processed="20230301T120100", footprint=SOUTH_HALF)
    north = product(processed="20230301T120300", footprint=NORTH_HALF)
    other_level = product(level="L1C")
    outcome = deduplicate([north, other_level, south])
    assert names(outcome.kept) == names([north, other_level, south])
    assert outcome.dropped == []


def test_a_twin_without_a_footprint_is_never_dropped() -> None:
    kept = deduplicate([product(), product("0209", footprint="")]).kept
    assert len(kept) == 2


def test_the_overlap_threshold_is_a_setting() -> None:
    # IoU of a half tile and the whole tile: about 0.5.
    half, whole = product(footprint=NORTH_HALF), product("0209", footprint=TILE)
    assert len(deduplicate([half, whole]).kept) == 2
    assert len(deduplicate([half, whole], min_overlap=0.5).kept) == 1
    with pytest.raises(ValueError, match="min_overlap"):
        deduplicate([half], min_overlap=0)


def test_other_missions_have_no_group() -> None:
    grd = Product(id="a", name="S1A_IW_GRDH_1SDV_20240604T110100_20240604T110131_054172.SAFE")
    assert group_key(grd) is None
    assert len(deduplicate([grd, grd]).kept) == 2


def test_the_emulator_datatake_keeps_one_per_tile_and_both_partial_tiles(
    cdse: Emulator, settings: Settings
) -> None:
    cdse.config.reprocessed_twins = True
    found = list(search(settings=settings, name_contains=[DATATAKE]))
    outcome = deduplicate(found)
    reasons = [drop.reason for drop in outcome.dropped]
    assert len(found) == 123
    assert len(outcome.dropped) == 8
    assert sum("baseline 05.00 preferred over 02.09" in r for r in reasons) == 4
    assert sum("preferred over 99.99" in r for r in reasons) == 2
    assert sum("processed later" in r for r in reasons) == 2
    # The two partial tiles of T35UPA both stay: their footprints are complementary.
    partial = [p for p in outcome.kept if "_T35UPA_" in p.name]
    assert len(partial) == 2
    # One product per (tile) is left, except that tile.
    tiles = [p.tile_id for p in outcome.kept]
    assert len(tiles) - len(set(tiles)) == 1
    # Without twins, the same datatake has nothing to drop.
    cdse.config.reprocessed_twins = False
    plain = list(search(settings=settings, name_contains=[DATATAKE]))
    assert len(plain) == 114 and deduplicate(plain).dropped == []


def test_coverage_is_measured_on_the_ground() -> None:
    area = shapely.box(10, 46, 12, 47)
    assert coverage_percent(product(footprint=TILE), area) == pytest.approx(50, abs=0.5)
    assert coverage_percent(product(footprint=""), area) is None
    # A point area is covered or not.
    assert coverage_percent(product(), shapely.Point(10.5, 46.5)) == 100.0
    # Near the pole, a square degree is smaller: the share follows the ground.
    high = shapely.box(10, 70, 12, 72)
    lower_half = product(footprint="POLYGON ((10 70, 12 70, 12 71, 10 71, 10 70))")
    assert coverage_percent(lower_half, high) > 51


def test_min_coverage_keeps_at_least_the_share_and_reports_the_rest() -> None:
    whole, half = product(footprint=TILE), product(footprint=SOUTH_HALF)
    outcome = filter_by_coverage([whole, half, product(footprint="")], TILE, 60)
    assert outcome.kept == [whole]
    assert [(p.footprint, round(v or 0)) for p, v in outcome.dropped] == [
        (SOUTH_HALF, 52),
        ("", 0),
    ]
    with pytest.raises(ValueError, match="0-100"):
        filter_by_coverage([], TILE, 101)
