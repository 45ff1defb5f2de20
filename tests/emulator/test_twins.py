"""The catalogue's twins (cdse-api.md §11.3): a documented share, each kind as specified.

Reprocessed baselines, replaced products, CloudFerro L2A at 99.99 and datatakes split
into two complementary partial tiles are served while ``reprocessed_twins`` is on; off,
the catalogue is what it was before twins existed (each such tile one product).
"""

# Fixtures come from the support module and are named as test parameters.
# ruff: noqa: F811

from __future__ import annotations

import re
from collections import defaultdict
from typing import Any
from urllib.parse import quote

import shapely
from shapely.geometry import shape

from sentinel_fetch.emulator.catalogue import CatalogueStore
from sentinel_fetch.emulator.catalogue.handler import make_catalogue_handler
from sentinel_fetch.emulator.config import EmulatorConfig
from sentinel_fetch.emulator.model import Handler

from .test_catalogue_support import (
    DOWNLOAD_BASE,
    FakeArchives,
    all_pages,
    archives,  # noqa: F401
    attribute,
    search,
    store,  # noqa: F401
)

_S2_NAME = re.compile(
    r"^(S2[A-C])_MSI(L1C|L2A)_(\w{15})_N(\d{4})_R(\d{3})_T(\w{5})_(\w{15})\.SAFE$"
)
# One month of one MGRS latitude band and zone with every kind of twin (seed 20231001).
_MONTHS = ("2020-07-01", "2020-08-01")


def _handler(store: CatalogueStore, archives: FakeArchives, *, twins: bool) -> Handler:
    return make_catalogue_handler(
        store, archives, DOWNLOAD_BASE, EmulatorConfig(reprocessed_twins=twins)
    )


def _count(handler: Handler, text: str) -> int:
    reply = search(handler, "$filter=" + quote(text, safe="") + "&$top=0&$count=true")
    assert reply.status == 200, reply.json
    return int(reply.json["@odata.count"])


def _groups(products: list[dict[str, Any]]) -> dict[tuple[str, ...], list[dict[str, Any]]]:
    groups: dict[tuple[str, ...], list[dict[str, Any]]] = defaultdict(list)
    for product in products:
        match = _S2_NAME.match(product["Name"])
        assert match is not None, product["Name"]
        platform, level, sensing, _, orbit, tile, _ = match.groups()
        groups[(platform, level, sensing, orbit, tile)].append(product)
    return groups


def _outline(product: dict[str, Any]) -> Any:
    # Part of the catalogue has no GeoFootprint key (a real quirk): read the WKT then.
    if "GeoFootprint" in product:
        return shape(product["GeoFootprint"])
    return shapely.from_wkt(product["Footprint"].split(";", 1)[1].rstrip("'"))


def _month(handler: Handler) -> list[dict[str, Any]]:
    text = (
        "Collection/Name eq 'SENTINEL-2' and ContentDate/Start ge "
        f"{_MONTHS[0]}T00:00:00.000Z and ContentDate/Start lt {_MONTHS[1]}T00:00:00.000Z"
    )
    return all_pages(
        handler,
        "https://catalogue.example/odata/v1/Products?$filter="
        + quote(text, safe="")
        + "&$top=1000&$expand=Attributes",
        limit=20,
    )


def test_twins_are_a_documented_share_and_off_means_none(
    store: CatalogueStore, archives: FakeArchives
) -> None:
    everything = "Collection/Name eq 'SENTINEL-2'"
    off = _count(_handler(store, archives, twins=False), everything)
    on = _count(_handler(store, archives, twins=True), everything)
    # Off, the Sentinel-2 total of catalogues before twins (generator docstring).
    assert off == 129_442
    assert on == 133_007
    # 3.5 % of (datatake, tile) pairs have a twin; splits add one product net.
    assert 0.02 < (on - off) / off < 0.04
    # Other collections never have twins.
    s1 = "Collection/Name eq 'SENTINEL-1'"
    assert _count(_handler(store, archives, twins=False), s1) == _count(
        _handler(store, archives, twins=True), s1
    )


def test_each_kind_of_twin_is_served_as_the_spec_describes(
    store: CatalogueStore, archives: FakeArchives
) -> None:
    with_twins = _groups(_month(_handler(store, archives, twins=True)))
    without = _groups(_month(_handler(store, archives, twins=False)))
    assert all(len(members) == 1 for members in without.values())
    assert set(without) == set(with_twins)
    kinds: defaultdict[str, int] = defaultdict(int)
    for key, members in with_twins.items():
        if len(members) == 1:
            continue
        assert len(members) == 2, [m["Name"] for m in members]
        baselines = {attribute(m, "processingBaseline") for m in members}
        origins = {attribute(m, "origin") for m in members}
        outlines = [_outline(m) for m in members]
        overlap = shapely.intersection(*outlines).area / shapely.union(*outlines).area
        if "CloudFerro" in origins:
            # CloudFerro only generated L2A, at baseline 99.99.
            assert key[1] == "L2A" and "99.99" in baselines and overlap > 0.99
            kinds["cloudferro"] += 1
        elif len(baselines) == 2:
            # 2020 products are Collection-1 (05.00) next to their original baseline.
            assert "05.00" in baselines and baselines - {"05.00"} <= {"02.08", "02.09"}
            assert overlap > 0.99
            kinds["baseline"] += 1
        elif overlap > 0.99:
            times = sorted(_S2_NAME.match(m["Name"]).group(7) for m in members)  # type: ignore[union-attr]
            assert times[0] != times[1]
            kinds["replaced"] += 1
        else:
            # Two partial tiles of one datatake: complementary, together the whole tile.
            whole = _outline(without[key][0])
            union = shapely.union(*outlines)
            assert overlap < 0.2
            assert abs(union.area - whole.area) / whole.area < 0.01
            kinds["split"] += 1
    assert set(kinds) == {"cloudferro", "baseline", "replaced", "split"}, dict(kinds)
