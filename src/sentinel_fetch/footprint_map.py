"""Maps of search results: the footprints and the search area, as HTML or PNG.

``.html`` is one self-contained page: the map is an inline SVG drawn here, with a popup
per product (name, date, cloud cover, size, online), colour by date or by cloud cover
(a button switches), wheel zoom and drag pan in a few lines of inline script. The page
loads nothing: no tile server, no JavaScript library from a CDN, and a
Content-Security-Policy that forbids it. So it shows the same thing on a laptop on a
train, on a server without a way out, and years later; a base map of tiles would need
the network, and a page whose footprints depended on a CDN script would show nothing
without it. ``.png`` is the same drawing as a picture (Pillow), for reports.

Both use :class:`Frame`: longitude and latitude scaled as on the ground at the frame's
middle latitude, fitted into a fixed pixel size, north up.
"""

from __future__ import annotations

import html
import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import shapely
from shapely.geometry import MultiPolygon, Polygon
from shapely.geometry.base import BaseGeometry

from sentinel_fetch.catalogue.footprint import footprint_of
from sentinel_fetch.catalogue.product import Product
from sentinel_fetch.errors import InputError

__all__ = [
    "BACKGROUND",
    "MAP_SUFFIXES",
    "Frame",
    "check_map_path",
    "map_frame",
    "write_map",
]

#: File types :func:`write_map` writes.
MAP_SUFFIXES = (".html", ".htm", ".png")
#: The map's empty colour (what a pixel without footprint, area or grid shows).
BACKGROUND = (238, 243, 247)
_AREA = (208, 0, 0)
_GRID = (200, 210, 220)
# Colour ramp for date and cloud (dark blue -> teal -> green -> yellow).
_RAMP = ((49, 54, 149), (33, 145, 140), (94, 201, 98), (253, 231, 37))
_WIDTH, _HEIGHT, _PAD = 900, 640, 24
_BLENDED_MAX = 300


@dataclass(frozen=True)
class Frame:
    """The pixel frame of a map.

    Attributes:
        west, south, east, north: the drawn extent, degrees.
        width, height: pixels.
        pad: pixels left empty around the extent.
    """

    west: float
    south: float
    east: float
    north: float
    width: int = _WIDTH
    height: int = _HEIGHT
    pad: int = _PAD

    @property
    def _scale(self) -> tuple[float, float, float, float]:
        """Pixels per degree east and north, and the offsets that centre the extent."""
        squeeze = math.cos(math.radians((self.south + self.north) / 2))
        span_x = max((self.east - self.west) * squeeze, 1e-9)
        span_y = max(self.north - self.south, 1e-9)
        inner_x, inner_y = self.width - 2 * self.pad, self.height - 2 * self.pad
        k = min(inner_x / span_x, inner_y / span_y)
        return k * squeeze, k, (inner_x - span_x * k) / 2, (inner_y - span_y * k) / 2

    def to_pixel(self, lon: float, lat: float) -> tuple[float, float]:
        """Pixel ``(x, y)`` of a point (x to the right, y down), the extent centred.

        >>> Frame(0, -5, 10, 5, width=140, height=120, pad=10).to_pixel(0, 5)
        (20.0, 10.0)
        """
        kx, ky, left, top = self._scale
        return (
            self.pad + left + (lon - self.west) * kx,
            self.pad + top + (self.north - lat) * ky,
        )


def map_frame(products: Sequence[Product], area: BaseGeometry | str | None) -> Frame:
    """The frame that holds every footprint and the area, with a margin of 5 %."""
    shapes = [shape for shape in (footprint_of(p) for p in products) if shape is not None]
    if area is not None:
        shapes.append(shapely.from_wkt(area) if isinstance(area, str) else area)
    if not shapes:
        return Frame(-180.0, -85.0, 180.0, 85.0)
    west, south, east, north = shapely.total_bounds(shapes).tolist()
    margin = max(east - west, north - south, 0.01) * 0.05
    return Frame(
        west - margin, max(-89.9, south - margin), east + margin, min(89.9, north + margin)
    )


def check_map_path(path: str | Path) -> Path:
    """``path`` if :func:`write_map` can write that type, checked before any search.

    Raises:
        InputError: another extension.
    """
    target = Path(path)
    if target.suffix.lower() not in MAP_SUFFIXES:
        raise InputError(f"--map writes .html or .png, not {target.name!r}")
    return target


def write_map(
    products: Sequence[Product], path: str | Path, area: BaseGeometry | str | None = None
) -> Path:
    """Draw the footprints (and the area, if given) into ``path`` (.html or .png).

    Raises:
        InputError: an extension other than .html, .htm or .png.
    """
    target = check_map_path(path)
    frame = map_frame(products, area)
    geometry = shapely.from_wkt(area) if isinstance(area, str) else area
    drawn = [_Drawn.of(index, product, frame) for index, product in enumerate(products)]
    area_rings = _rings(geometry, frame) if geometry is not None else []
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(target.name + ".part")
    if target.suffix.lower() == ".png":
        _write_png(partial, drawn, area_rings, frame, geometry)
    else:
        partial.write_text(_html(drawn, area_rings, frame, geometry), encoding="utf-8")
    partial.replace(target)
    return target


# ------------------------------------------------------------------------ shared parts


def _ramp(t: float) -> tuple[int, int, int]:
    t = min(1.0, max(0.0, t))
    position = t * (len(_RAMP) - 1)
    low = min(int(position), len(_RAMP) - 2)
    f = position - low
    a, b = _RAMP[low], _RAMP[low + 1]
    return (
        round(a[0] + (b[0] - a[0]) * f),
        round(a[1] + (b[1] - a[1]) * f),
        round(a[2] + (b[2] - a[2]) * f),
    )


def _hex(colour: tuple[int, int, int]) -> str:
    return "#{:02x}{:02x}{:02x}".format(*colour)


def _rings(geometry: BaseGeometry, frame: Frame) -> list[list[tuple[float, float]]]:
    polygons: list[Polygon] = []
    if isinstance(geometry, Polygon):
        polygons = [geometry]
    elif isinstance(geometry, MultiPolygon):
        polygons = list(geometry.geoms)
    elif not geometry.is_empty:
        # A point or line area: a small circle around it stays visible.
        polygons = [p for p in [geometry.buffer(0.01)] if isinstance(p, Polygon)]
    rings: list[list[tuple[float, float]]] = []
    for polygon in polygons:
        for ring in (polygon.exterior, *polygon.interiors):
            rings.append([frame.to_pixel(x, y) for x, y, *_ in ring.coords])
    return rings


@dataclass(frozen=True)
class _Drawn:
    index: int
    product: Product
    rings: list[list[tuple[float, float]]]

    @classmethod
    def of(cls, index: int, product: Product, frame: Frame) -> _Drawn:
        shape = footprint_of(product)
        return cls(index, product, _rings(shape, frame) if shape is not None else [])


def _date_position(products: Sequence[Product]) -> dict[str, float]:
    times = [p.content_start.timestamp() for p in products if p.content_start]
    if not times:
        return {}
    first, last = min(times), max(times)
    span = last - first or 1.0
    return {p.id: (p.content_start.timestamp() - first) / span for p in products if p.content_start}


def _date_text(value: datetime | None) -> str:
    return value.strftime("%Y-%m-%d %H:%M UTC") if value else "unknown"


def _size_text(size: int) -> str:
    """``1.2 GB``-style text; 0 (the catalogue's "unknown") says so."""
    if size <= 0:
        return "unknown"
    value = float(size)
    for unit in ("B", "kB", "MB", "GB"):
        if value < 1000:
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1000
    return f"{value:.1f} TB"


# ------------------------------------------------------------------------------ HTML

_STYLE = """
body { margin: 0; font: 13px/1.4 system-ui, sans-serif; color: #1a1a1a; }
#map { position: absolute; left: 0; top: 0; width: %(w)dpx; height: %(h)dpx;
       overflow: hidden; cursor: grab; }
#panel { position: absolute; left: %(w)dpx; top: 0; width: 300px; padding: 8px 12px; }
#panel h1 { font-size: 15px; margin: 0 0 6px; }
#details { white-space: pre-wrap; word-break: break-all; background: #f6f6f6;
           padding: 6px; min-height: 5em; }
.fp { fill-opacity: 0.35; stroke-width: 1; }
.fp:hover, .fp.on { fill-opacity: 0.7; stroke: #000; }
.bar { display: inline-block; width: 18px; height: 10px; }
"""

_SCRIPT = """
(function () {
  var products = JSON.parse(document.getElementById('products').textContent);
  var svg = document.getElementById('svg');
  var details = document.getElementById('details');
  var mode = 'date';
  function paint() {
    var shapes = document.querySelectorAll('.fp');
    for (var i = 0; i < shapes.length; i++) {
      var p = products[+shapes[i].getAttribute('data-i')];
      var c = mode === 'date' ? p.date_colour : p.cloud_colour;
      shapes[i].setAttribute('fill', c); shapes[i].setAttribute('stroke', c);
    }
    document.getElementById('mode').textContent = mode === 'date' ? 'date' : 'cloud cover';
    document.getElementById('low').textContent = mode === 'date' ? 'oldest' : '0 %';
    document.getElementById('high').textContent = mode === 'date' ? 'newest' : '100 %';
  }
  document.getElementById('toggle').onclick = function () {
    mode = mode === 'date' ? 'cloud' : 'date'; paint();
  };
  svg.addEventListener('click', function (e) {
    var i = e.target.getAttribute && e.target.getAttribute('data-i');
    var old = document.querySelector('.fp.on'); if (old) old.classList.remove('on');
    if (i === null || i === undefined) { details.textContent = 'Click a footprint.'; return; }
    e.target.classList.add('on');
    var p = products[+i];
    details.textContent = p.name + '\\nsensing: ' + p.date + '\\ncloud: ' + p.cloud +
      '\\nsize: ' + p.size + '\\nonline: ' + p.online;
  });
  var box = svg.viewBox.baseVal, drag = null;
  svg.addEventListener('wheel', function (e) {
    e.preventDefault();
    var f = e.deltaY < 0 ? 0.8 : 1.25, r = svg.getBoundingClientRect();
    var x = box.x + (e.clientX - r.left) / r.width * box.width;
    var y = box.y + (e.clientY - r.top) / r.height * box.height;
    box.x = x - (x - box.x) * f; box.y = y - (y - box.y) * f;
    box.width *= f; box.height *= f;
  }, {passive: false});
  svg.addEventListener('mousedown', function (e) { drag = [e.clientX, e.clientY]; });
  window.addEventListener('mouseup', function () { drag = null; });
  window.addEventListener('mousemove', function (e) {
    if (!drag) return;
    var r = svg.getBoundingClientRect();
    box.x -= (e.clientX - drag[0]) / r.width * box.width;
    box.y -= (e.clientY - drag[1]) / r.height * box.height;
    drag = [e.clientX, e.clientY];
  });
  paint();
})();
"""


def _path_data(rings: list[list[tuple[float, float]]]) -> str:
    return " ".join(
        "M" + " L".join(f"{x:.1f},{y:.1f}" for x, y in ring) + " Z" for ring in rings if ring
    )


def _grid_step(span: float) -> float:
    for step in (0.1, 0.25, 0.5, 1, 2, 5, 10, 20, 30, 60):
        if span / step <= 8:
            return step
    return 90.0


def _grid_lines(frame: Frame) -> list[tuple[str, tuple[float, float, float, float]]]:
    """Labelled meridians and parallels inside the drawn extent."""
    lines = []
    step = _grid_step(max(frame.east - frame.west, frame.north - frame.south))
    lon = math.ceil(frame.west / step) * step
    while lon <= frame.east:
        x0, y0 = frame.to_pixel(lon, frame.north)
        x1, y1 = frame.to_pixel(lon, frame.south)
        lines.append((f"{lon:g}°", (x0, y0, x1, y1)))
        lon += step
    lat = math.ceil(frame.south / step) * step
    while lat <= frame.north:
        x0, y0 = frame.to_pixel(frame.west, lat)
        x1, y1 = frame.to_pixel(frame.east, lat)
        lines.append((f"{lat:g}°", (x0, y0, x1, y1)))
        lat += step
    return lines


def _html(
    drawn: Sequence[_Drawn],
    area_rings: list[list[tuple[float, float]]],
    frame: Frame,
    area: BaseGeometry | None,
) -> str:
    from sentinel_fetch.text import printable

    products = [d.product for d in drawn]
    dates = _date_position(products)
    records = []
    for d in drawn:
        p = d.product
        cloud = p.cloud_cover
        records.append(
            {
                "name": printable(p.name),
                "date": _date_text(p.content_start),
                "cloud": "unknown" if cloud is None else f"{cloud:.1f} %",
                "size": _size_text(p.size),
                "online": {True: "yes", False: "no (order it first)", None: "unknown"}[p.online],
                "date_colour": _hex(_ramp(dates.get(p.id, 0.0))),
                "cloud_colour": _hex(_ramp((cloud or 0.0) / 100)),
            }
        )
    # JSON inside <script>: "<" escaped so no text can close the element.
    data = json.dumps(records, ensure_ascii=True).replace("<", "\\u003c")
    width, height = frame.width, frame.height
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        # Nothing may be fetched: the page is complete as it is, offline or not.
        '<meta http-equiv="Content-Security-Policy" content="default-src \'none\'; '
        "style-src 'unsafe-inline'; script-src 'unsafe-inline'\">",
        f"<title>sentinel-fetch: {len(products)} products</title>",
        f"<style>{_STYLE % {'w': width, 'h': height}}</style></head><body>",
        f'<div id="map"><svg id="svg" xmlns="http://www.w3.org/2000/svg" width="{width}" '
        f'height="{height}" viewBox="0 0 {width} {height}">',
        f'<rect x="-100000" y="-100000" width="200000" height="200000" fill="{_hex(BACKGROUND)}"/>',
        f'<g id="grid" stroke="{_hex(_GRID)}" stroke-width="1" font-size="10" fill="#7a8794">',
    ]
    for label, (x0, y0, x1, y1) in _grid_lines(frame):
        parts.append(f'<line x1="{x0:.1f}" y1="{y0:.1f}" x2="{x1:.1f}" y2="{y1:.1f}"/>')
        parts.append(
            f'<text x="{x0 + 2:.1f}" y="{y0 + 11:.1f}" stroke="none">{html.escape(label)}</text>'
        )
    parts.append('</g><g id="footprints">')
    for d, record in zip(drawn, records, strict=True):
        if not d.rings:
            continue
        title = html.escape(f"{record['name']}\n{record['date']}\ncloud {record['cloud']}")
        colour = record["date_colour"]
        parts.append(
            f'<path class="fp" data-i="{d.index}" fill="{colour}" stroke="{colour}" '
            f'fill-rule="evenodd" d="{_path_data(d.rings)}"><title>{title}</title></path>'
        )
    parts.append("</g>")
    if area_rings:
        parts.append(
            f'<path id="area" fill="none" stroke="{_hex(_AREA)}" stroke-width="2" '
            f'stroke-dasharray="6 4" pointer-events="none" d="{_path_data(area_rings)}"/>'
        )
    parts.append("</svg></div>")
    missing = sum(1 for d in drawn if not d.rings)
    ramp = "".join(
        f'<span class="bar" style="background:{_hex(_ramp(i / 7))}"></span>' for i in range(8)
    )
    area_text = "dashed red: the search area" if area is not None else "no search area given"
    parts += [
        '<div id="panel">',
        f"<h1>{len(products)} products</h1>",
        f'<p>Colour by <b id="mode">date</b> <button id="toggle">switch</button><br>'
        f'<span id="low">oldest</span> {ramp} <span id="high">newest</span></p>',
        f"<p>{html.escape(area_text)}"
        + (f"; {missing} without a footprint" if missing else "")
        + ". Wheel: zoom, drag: move.</p>",
        '<div id="details">Click a footprint.</div></div>',
        f'<script type="application/json" id="products">{data}</script>',
        f"<script>{_SCRIPT}</script>",
        "</body></html>",
    ]
    return "\n".join(parts)


# ------------------------------------------------------------------------------- PNG


def _write_png(
    path: Path,
    drawn: Sequence[_Drawn],
    area_rings: list[list[tuple[float, float]]],
    frame: Frame,
    area: BaseGeometry | None,
) -> None:
    from PIL import Image, ImageDraw, ImageFont

    legend_height = 40
    base = Image.new("RGB", (frame.width, frame.height + legend_height), BACKGROUND)
    draw = ImageDraw.Draw(base)
    try:
        font: ImageFont.ImageFont | ImageFont.FreeTypeFont = ImageFont.load_default(size=12)
    except TypeError:  # Pillow before 10.1
        font = ImageFont.load_default()
    for label, (x0, y0, x1, y1) in _grid_lines(frame):
        draw.line((x0, y0, x1, y1), fill=_GRID, width=1)
        draw.text((x0 + 2, y0 + 1), label, fill=(122, 135, 148), font=font)
    dates = _date_position([d.product for d in drawn])
    # One translucent layer per product, so overlapping footprints blend rather than
    # the last one hiding the others (one shared layer past a few hundred: speed).
    canvas = base.convert("RGBA")
    overlay = Image.new("RGBA", base.size, (0, 0, 0, 0))
    shade = ImageDraw.Draw(overlay)
    separate = len(drawn) <= _BLENDED_MAX
    for d in drawn:
        colour = _ramp(dates.get(d.product.id, 0.0))
        for ring in d.rings:
            if len(ring) >= 3:
                shade.polygon(ring, fill=(*colour, 70))
        if separate:
            canvas.alpha_composite(overlay)
            overlay = Image.new("RGBA", base.size, (0, 0, 0, 0))
            shade = ImageDraw.Draw(overlay)
    canvas.alpha_composite(overlay)
    base = canvas.convert("RGB")
    draw = ImageDraw.Draw(base)
    # Outlines last, darker than the fill, so every footprint's edge stays visible.
    for d in drawn:
        edge = tuple(round(c * 0.7) for c in _ramp(dates.get(d.product.id, 0.0)))
        for ring in d.rings:
            if len(ring) >= 2:
                draw.line([*ring, ring[0]], fill=edge, width=1)
    for ring in area_rings:
        if len(ring) >= 2:
            draw.line([*ring, ring[0]], fill=_AREA, width=2)
    top = frame.height + 8
    draw.text((frame.pad, top), "oldest", fill=(40, 40, 40), font=font)
    for i in range(8):
        left = frame.pad + 50 + i * 20
        draw.rectangle((left, top, left + 18, top + 10), fill=_ramp(i / 7))
    note = f"newest   {len(drawn)} products" + (
        ", red: the search area" if area is not None else ""
    )
    draw.text((frame.pad + 50 + 8 * 20 + 6, top), note, fill=(40, 40, 40), font=font)
    base.save(path, format="PNG", optimize=True)
