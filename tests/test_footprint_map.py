"""Maps of search results: the HTML page in a real headless Chromium with the network
closed, and the PNG, both checked by their pixels where the footprints must be."""

from __future__ import annotations

import html
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
from PIL import Image

from sentinel_fetch.api import search
from sentinel_fetch.catalogue.footprint import footprint_of
from sentinel_fetch.catalogue.product import Product
from sentinel_fetch.emulator import Emulator
from sentinel_fetch.errors import InputError
from sentinel_fetch.footprint_map import BACKGROUND, map_frame, write_map
from sentinel_fetch.settings import Settings

AREA = "POLYGON ((10.5 46, 12 46, 12 47, 10.5 47, 10.5 46))"
SEARCH = {
    "collections": ["SENTINEL-2"],
    "product_types": ["S2MSI2A"],
    "start": "2023-07-01",
    "end": "2023-07-10",
    "area": AREA,
}
WINDOW = (1220, 700)


def _chromium() -> str | None:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        found = shutil.which(name)
        if found:
            return found
    return None


@pytest.fixture
def chromium() -> str:
    """Debian's chromium; CI installs it (.ci/run), so only a workstation may lack it."""
    found = _chromium()
    if found is None:
        if os.environ.get("CI"):
            pytest.fail("chromium is missing in CI: .ci/run installs it")
        pytest.skip("chromium is not installed (Debian: apt-get install -y chromium)")
    return found


def _offline_prefix() -> list[str]:
    """``unshare -rn``: a network namespace of its own, with nothing reachable."""
    unshare = shutil.which("unshare")
    if unshare and subprocess.run([unshare, "-rn", "true"], check=False).returncode == 0:
        return [unshare, "-rn"]
    return []


def _screenshot(chromium: str, page: Path, shot: Path) -> Image.Image:
    command = [
        *_offline_prefix(),
        chromium,
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--hide-scrollbars",
        "--force-device-scale-factor=1",
        f"--window-size={WINDOW[0]},{WINDOW[1]}",
        # With or without a namespace, every name lookup fails and no proxy answers.
        "--host-resolver-rules=MAP * ~NOTFOUND",
        "--proxy-server=http://127.0.0.1:9",
        f"--user-data-dir={shot.parent / 'profile'}",
        f"--screenshot={shot}",
        page.as_uri(),
    ]
    subprocess.run(command, check=True, capture_output=True, timeout=120)
    with Image.open(shot) as image:
        return image.convert("RGB")


def _is_background(pixel: tuple[int, ...]) -> bool:
    return all(abs(a - b) <= 3 for a, b in zip(pixel, BACKGROUND, strict=True))


def _products(settings: Settings) -> list[Product]:
    found = list(search(settings=settings, **SEARCH))
    assert len(found) > 10
    return found


def _check_pixels(image: Image.Image, products: list[Product]) -> None:
    frame = map_frame(products, AREA)
    # Inside every footprint: drawn. Around the extent (the frame's padding): empty.
    for product in products:
        footprint = footprint_of(product)
        assert footprint is not None
        inside = footprint.representative_point()
        x, y = frame.to_pixel(inside.x, inside.y)
        assert not _is_background(image.getpixel((round(x), round(y)))), product.name
    for x, y in ((3, 3), (frame.width - 4, 3), (3, frame.height - 4)):
        assert _is_background(image.getpixel((x, y)))
    # The area's outline, red, on its western edge.
    x, y = frame.to_pixel(10.5, 46.5)
    red = [image.getpixel((round(x) + dx, round(y) + dy)) for dx in (-1, 0, 1) for dy in (-3, 0, 3)]
    assert any(r > 150 and g < 80 and b < 80 for r, g, b in red), red


def test_the_html_map_draws_the_footprints_offline_in_chromium(
    cdse: Emulator, settings: Settings, tmp_path: Path, chromium: str
) -> None:
    products = _products(settings)
    page = write_map(products, tmp_path / "map.html", AREA)
    text = page.read_text(encoding="utf-8")
    # Nothing to fetch: no external script, style, image or tile.
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", text)
    assert "default-src 'none'" in text
    image = _screenshot(chromium, page, tmp_path / "shot.png")
    assert image.size == WINDOW
    _check_pixels(image, products)


def test_the_png_map_draws_the_footprints(
    cdse: Emulator, settings: Settings, tmp_path: Path
) -> None:
    products = _products(settings)
    path = write_map(products, tmp_path / "map.png", AREA)
    with Image.open(path) as opened:
        image = opened.convert("RGB")
    _check_pixels(image, products)


def test_server_text_cannot_break_out_of_the_page(tmp_path: Path) -> None:
    hostile = Product(
        id="x",
        name="</script><script>alert(1)</script><b>x",
        footprint="POLYGON ((0 0, 1 0, 1 1, 0 0))",
    )
    text = write_map([hostile], tmp_path / "m.html").read_text(encoding="utf-8")
    assert "<script>alert(1)" not in text and "<b>x" not in text
    assert html.escape("</script><script>alert(1)</script><b>x") in text
    assert text.count("<script") == 2  # the data block and the page's own script


def test_only_html_and_png_are_written(tmp_path: Path) -> None:
    with pytest.raises(InputError, match=r"\.html or \.png"):
        write_map([], tmp_path / "map.pdf")
    # No footprints and no area: an empty world map, not an error.
    assert write_map([], tmp_path / "empty.png").exists()
