"""Contact sheets: the quicklooks of a search as a grid of labelled thumbnails.

One look at a sheet shows which scenes are cloudy, which are slivers at a swath edge and
which are twins, before any quota is spent. Thumbnails follow the result order, row by
row; each cell has its label under the image: date and time, tile (or relative orbit),
cloud cover and a short name. A product without a quicklook keeps its cell, grey and
labelled, so the grid still lines up with the list. Past :attr:`SheetLayout.per_sheet`
products, further sheets follow (``contact-sheet-2.png``...).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from PIL import Image, ImageDraw, ImageFont

from sentinel_fetch.catalogue.product import Product
from sentinel_fetch.quicklooks import Quicklook

__all__ = ["SheetLayout", "cell_label", "sheet_names", "write_contact_sheets"]

_BACKGROUND = (255, 255, 255)
_MISSING = (205, 205, 205)
_TEXT = (20, 20, 20)
_NOTE = (150, 30, 30)


@dataclass(frozen=True)
class SheetLayout:
    """Where everything goes on a sheet, in pixels.

    Attributes:
        columns: thumbnails per row.
        rows: rows per sheet (``columns × rows`` products per sheet).
        thumbnail: width and height of the square a thumbnail is fitted into.
        label_height: the text band under each thumbnail (three lines).
        margin: space around and between cells.
    """

    columns: int = 6
    rows: int = 8
    thumbnail: int = 160
    label_height: int = 46
    margin: int = 8

    @property
    def per_sheet(self) -> int:
        """Products per sheet."""
        return self.columns * self.rows

    def size(self, count: int) -> tuple[int, int]:
        """Width and height of a sheet holding ``count`` products (1..per_sheet).

        >>> SheetLayout(columns=2, rows=2, thumbnail=10, label_height=5, margin=1).size(3)
        (23, 33)
        """
        used_rows = -(-count // self.columns)
        width = self.margin + self.columns * (self.thumbnail + self.margin)
        height = self.margin + used_rows * (self.thumbnail + self.label_height + self.margin)
        return width, height

    def image_box(self, index: int) -> tuple[int, int, int, int]:
        """``(left, top, right, bottom)`` of the thumbnail square of cell ``index`` on its sheet.

        >>> SheetLayout(columns=2, thumbnail=10, label_height=5, margin=1).image_box(3)
        (12, 17, 22, 27)
        """
        row, column = divmod(index % self.per_sheet, self.columns)
        left = self.margin + column * (self.thumbnail + self.margin)
        top = self.margin + row * (self.thumbnail + self.label_height + self.margin)
        return left, top, left + self.thumbnail, top + self.thumbnail


def sheet_names(count: int, layout: SheetLayout) -> list[str]:
    """File names of the sheets for ``count`` products.

    >>> sheet_names(100, SheetLayout())
    ['contact-sheet.png', 'contact-sheet-2.png', 'contact-sheet-3.png']
    """
    sheets = max(1, -(-count // layout.per_sheet))
    return ["contact-sheet.png"] + [f"contact-sheet-{n}.png" for n in range(2, sheets + 1)]


def cell_label(product: Product) -> list[str]:
    """The label lines of a product's cell: when, where and how cloudy, then who.

    >>> cell_label(Product(id="x", name="S2B_MSIL2A_20240612T103629_N0510_R008_T32UNE_"
    ...     "20240612T140000.SAFE", attributes={"cloudCover": 12.34, "tileId": "32UNE"}))
    ['T32UNE  cloud 12%', 'S2B_MSIL2A_N0510_R008', '']
    """
    from sentinel_fetch.text import printable

    when = product.content_start.strftime("%Y-%m-%d %H:%M") if product.content_start else ""
    if product.tile_id:
        where = f"T{product.tile_id}"
    elif product.relative_orbit is not None:
        where = f"orbit {product.relative_orbit}"
    else:
        where = ""
    cloud = product.cloud_cover
    first = "  ".join(
        part for part in (where, f"cloud {cloud:.0f}%" if cloud is not None else "") if part
    )
    return [first, _short_name(printable(product.name)), when]


def _short_name(name: str) -> str:
    """Mission, level and the fields that tell products of one place apart."""
    parts = name.split(".")[0].split("_")
    if name.startswith("S2") and len(parts) >= 7:
        return "_".join([parts[0], parts[1], parts[3], parts[4]])
    return name[:24]


def write_contact_sheets(
    quicklooks: Sequence[Quicklook], folder: Path | str, layout: SheetLayout | None = None
) -> list[Path]:
    """Draw the sheets into ``folder`` and return their paths (at least one).

    Args:
        quicklooks: what :func:`~sentinel_fetch.quicklooks.fetch_quicklooks` returned,
            in the order the cells should follow.
        folder: an existing folder.
        layout: sizes; :class:`SheetLayout` defaults otherwise.
    """
    layout = layout or SheetLayout()
    font = _font()
    paths: list[Path] = []
    names = sheet_names(len(quicklooks), layout)
    for number, name in enumerate(names):
        chunk = quicklooks[number * layout.per_sheet : (number + 1) * layout.per_sheet]
        sheet = Image.new("RGB", layout.size(max(1, len(chunk))), _BACKGROUND)
        draw = ImageDraw.Draw(sheet)
        for index, look in enumerate(chunk):
            left, top, right, bottom = layout.image_box(index)
            picture = _thumbnail(look, layout.thumbnail)
            if picture is None:
                draw.rectangle((left, top, right - 1, bottom - 1), fill=_MISSING)
                note = look.problem or "no quicklook"
                draw.text((left + 6, top + 6), "no quicklook", fill=_NOTE, font=font)
                fitted = _fitted(note, font, layout.thumbnail - 12)
                draw.text((left + 6, top + 22), fitted, fill=_NOTE, font=font)
            else:
                # Centred in its square, aspect ratio kept.
                x = left + (layout.thumbnail - picture.width) // 2
                y = top + (layout.thumbnail - picture.height) // 2
                sheet.paste(picture, (x, y))
            for line_number, line in enumerate(cell_label(look.product)):
                draw.text(
                    (left, bottom + 2 + 14 * line_number),
                    _fitted(line, font, layout.thumbnail),
                    fill=_TEXT,
                    font=font,
                )
        path = Path(folder) / name
        partial = path.with_name(path.name + ".part")
        sheet.save(partial, format="PNG", optimize=True)
        partial.replace(path)
        paths.append(path)
    return paths


def _fitted(text: str, font: ImageFont.ImageFont | ImageFont.FreeTypeFont, width: int) -> str:
    """``text`` cut (with "…") to fit ``width`` pixels: a label never runs into its neighbour."""
    if font.getlength(text) <= width:
        return text
    while text and font.getlength(text + "…") > width:
        text = text[:-1]
    return text + "…"


def _thumbnail(look: Quicklook, size: int) -> Image.Image | None:
    if look.path is None:
        return None
    try:
        with Image.open(look.path) as image:
            picture = image.convert("RGB")
    except (OSError, ValueError):
        return None
    scale = size / max(picture.width, picture.height)
    width = max(1, round(picture.width * scale))
    height = max(1, round(picture.height * scale))
    resized: Image.Image = picture.resize((width, height), Image.Resampling.BILINEAR)
    return resized


def _font() -> ImageFont.ImageFont | ImageFont.FreeTypeFont:
    try:
        return ImageFont.load_default(size=12)
    except TypeError:  # Pillow before 10.1 has one bitmap size
        return ImageFont.load_default()
