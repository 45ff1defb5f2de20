"""Quicklooks from the emulator (no token, in parallel, missing ones reported) and the
contact sheet drawn from them (a grid of the thumbnails, in result order, several sheets
past a size)."""

from __future__ import annotations

import dataclasses
import threading
from pathlib import Path

import pytest
from PIL import Image, ImageChops, ImageStat

from sentinel_fetch.api import search
from sentinel_fetch.catalogue.product import Product
from sentinel_fetch.contact_sheet import SheetLayout, write_contact_sheets
from sentinel_fetch.emulator import Emulator, HoldFault
from sentinel_fetch.quicklooks import Quicklook, fetch_quicklooks
from sentinel_fetch.settings import Settings

# About 20 Sentinel-2 L2A products over the Alps in ten days of 2023.
ALPS = {
    "collections": ["SENTINEL-2"],
    "product_types": ["S2MSI2A"],
    "start": "2023-07-01",
    "end": "2023-07-10",
    "area": "10.5,46,12,47",
}
MISSING_GREY = (205, 205, 205)


def _products(settings: Settings, count: int | None = None) -> list[Product]:
    found = list(search(settings=settings, **ALPS))
    assert len(found) >= 12
    return found[:count]


def test_quicklooks_are_saved_in_order_without_a_token_and_missing_ones_said(
    cdse: Emulator, settings: Settings, tmp_path: Path
) -> None:
    cdse.config.quicklook_failure_share = 0.3
    products = _products(settings)
    looks = fetch_quicklooks(products, tmp_path / "looks", settings=settings)
    assert [look.product for look in looks] == products
    missing = [look for look in looks if look.path is None]
    saved = [look for look in looks if look.path is not None]
    assert missing and saved
    assert {look.problem for look in missing} <= {"HTTP 403", "HTTP 404"}
    for look in saved:
        assert look.path is not None and look.path.parent == tmp_path / "looks"
        assert look.path.name.endswith("-ql.png")
        with Image.open(look.path) as image:
            assert image.size == (64, 64)
    asked = cdse.stats.events("catalogue", lambda e: e.path.startswith("/odata/v1/Assets("))
    assert len(asked) == len(products)
    assert not any(event.authorization for event in asked)
    assert cdse.stats.logins == {}


def test_quicklooks_are_fetched_four_at_a_time(
    cdse: Emulator, settings: Settings, tmp_path: Path
) -> None:
    products = _products(settings, 8)

    # Four answers pause after one byte: all four held at once proves four in flight.
    # (The record of fired faults outlives a test: count from here.)
    def holds() -> int:
        return sum(fired.fault.kind == "hold" for fired in cdse.faults.fired)

    before = holds()
    cdse.faults.add(HoldFault(host="catalogue", path_contains="/Assets(", after_bytes=1, times=4))
    outcome: list[list[Quicklook]] = []
    worker = threading.Thread(
        target=lambda: outcome.append(fetch_quicklooks(products, tmp_path, settings=settings))
    )
    worker.start()
    try:
        assert cdse.stats.wait_for(lambda _: holds() == before + 4, 120)
    finally:
        cdse.faults.release_holds()
        worker.join(120)
    assert [look.path is not None for look in outcome[0]] == [True] * 8


def test_hostile_quicklook_links_are_refused_one_by_one(
    cdse: Emulator, settings: Settings, tmp_path: Path
) -> None:
    [good] = _products(settings, 1)
    not_an_image = dataclasses.replace(
        good,
        id="11111111-1111-4111-8111-111111111111",
        quicklook_url=cdse.catalogue_url + "/Products?$top=1",
    )
    other_scheme = dataclasses.replace(
        good, id="22222222-2222-4222-8222-222222222222", quicklook_url="file:///etc/passwd"
    )
    escaping = dataclasses.replace(good, id="33333333-3333-4333-8333-333333333333", name="../../x")
    looks = fetch_quicklooks(
        [not_an_image, other_scheme, escaping], tmp_path / "q", settings=settings
    )
    assert looks[0].problem == "the quicklook is not a PNG or JPEG image"
    assert looks[1].problem == "the quicklook link is not an HTTP(S) URL"
    assert looks[2].path is not None and looks[2].path.parent == tmp_path / "q"
    assert sorted(p.name for p in tmp_path.rglob("*")) == ["_.._x-ql~33333333.png", "q"]


def _difference(first: Image.Image, second: Image.Image) -> float:
    return float(sum(ImageStat.Stat(ImageChops.difference(first, second)).mean) / 3)


def test_the_contact_sheet_is_the_grid_of_the_thumbnails(
    cdse: Emulator, settings: Settings, tmp_path: Path
) -> None:
    cdse.config.quicklook_failure_share = 0.3
    looks = fetch_quicklooks(_products(settings), tmp_path, settings=settings)
    layout = SheetLayout(columns=4, rows=2)
    sheets = write_contact_sheets(looks, tmp_path, layout)
    expected_sheets = -(-len(looks) // 8)
    assert [p.name for p in sheets] == ["contact-sheet.png"] + [
        f"contact-sheet-{n}.png" for n in range(2, expected_sheets + 1)
    ]
    for number, path in enumerate(sheets):
        chunk = looks[number * 8 : (number + 1) * 8]
        with Image.open(path) as opened:
            sheet = opened.convert("RGB")
        assert sheet.size == layout.size(len(chunk))
        for index, look in enumerate(chunk):
            box = layout.image_box(index)
            cell = sheet.crop(box)
            if look.path is None:
                # The grey "no quicklook" cell, its text in the top corner only.
                assert cell.getpixel((layout.thumbnail - 5, layout.thumbnail - 5)) == MISSING_GREY
                continue
            with Image.open(look.path) as image:
                thumbnail = image.convert("RGB").resize(cell.size, Image.Resampling.BILINEAR)
            # The cell shows this product's quicklook, and not its neighbour's.
            assert _difference(cell, thumbnail) < 4
            other = next(o for o in looks if o.path is not None and o is not look)
            with Image.open(other.path) as image:  # type: ignore[arg-type]
                neighbour = image.convert("RGB").resize(cell.size, Image.Resampling.BILINEAR)
            assert _difference(cell, neighbour) > 10


def test_a_cloudy_scene_looks_cloudy(cdse: Emulator, settings: Settings, tmp_path: Path) -> None:
    products = sorted(_products(settings), key=lambda p: p.cloud_cover or 0)
    clear, cloudy = products[0], products[-1]
    assert (cloudy.cloud_cover or 0) - (clear.cloud_cover or 0) > 40
    looks = fetch_quicklooks([clear, cloudy], tmp_path, settings=settings)
    white = []
    for look in looks:
        assert look.path is not None
        with Image.open(look.path) as image:
            pixels = list(image.convert("RGB").get_flattened_data())
        white.append(sum(1 for p in pixels if min(p) > 235) / len(pixels) * 100)
    assert white[0] == pytest.approx(clear.cloud_cover, abs=1)
    assert white[1] == pytest.approx(cloudy.cloud_cover, abs=1)
