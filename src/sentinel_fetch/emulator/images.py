"""Small valid images for product thumbnails: a baseline JPEG and a greyscale PNG.

CDSE's STAC items describe each product's quicklook as a JPEG of 343×343 pixels and
about 2.5 kB (Sentinel-2 ``<item id>-ql.jpg``, cdse-api.md §5.9, §9.6); Sentinel-1 SAFE
folders carry ``preview/thumbnail.png`` of the same shape. The emulator puts such files in
its SAFE trees and serves them on the quicklook hosts, so a client can save and open a
real image and check its size and MD5.

The JPEG encoder is deliberately minimal: every 8×8 block is one flat colour (only the DC
coefficient is coded, every AC run ends at once), 4:2:0 chroma, one Huffman table pair.
The result is a valid baseline JFIF file of a blocky colour gradient, about 2.5 kB at
343×343, which is the size a real quicklook has. Images depend only on a small variant
number and a palette, so they are cached: a catalogue page never encodes one twice.
"""

from __future__ import annotations

import struct
import zlib
from functools import lru_cache

__all__ = ["THUMBNAIL_PIXELS", "thumbnail_jpeg", "thumbnail_png"]

#: Width and height of a thumbnail (the ``proj:shape`` STAC declares, cdse-api.md §9.6).
THUMBNAIL_PIXELS = 343

# JPEG Annex K.3 luminance DC table: code lengths 1..16, then the symbols (categories).
_DC_BITS = (0, 1, 5, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0, 0, 0)
_DC_VALUES = tuple(range(12))
# An AC table with a single symbol, end-of-block (0x00), coded as one bit.
_AC_BITS = (1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0)
_AC_VALUES = (0,)


def _codes(bits: tuple[int, ...], values: tuple[int, ...]) -> dict[int, tuple[int, int]]:
    """Canonical Huffman codes (JPEG Annex C): symbol -> (code, length)."""
    table: dict[int, tuple[int, int]] = {}
    code = 0
    index = 0
    for length, count in enumerate(bits, start=1):
        for _ in range(count):
            table[values[index]] = (code, length)
            code += 1
            index += 1
        code <<= 1
    return table


_DC_CODES = _codes(_DC_BITS, _DC_VALUES)
_EOB = _codes(_AC_BITS, _AC_VALUES)[0]


def _segment(marker: int, payload: bytes) -> bytes:
    return struct.pack(">HH", marker, len(payload) + 2) + payload


class _Bits:
    """Big-endian bit writer with JPEG byte stuffing (0xFF is followed by 0x00)."""

    def __init__(self) -> None:
        self._parts: list[str] = []

    def put(self, code: int, length: int) -> None:
        if length:
            self._parts.append(format(code, f"0{length}b"))

    def data(self) -> bytes:
        text = "".join(self._parts)
        text += "1" * (-len(text) % 8)
        raw = int(text, 2).to_bytes(len(text) // 8, "big") if text else b""
        return raw.replace(b"\xff", b"\xff\x00")


def _dc(bits: _Bits, difference: int) -> None:
    magnitude = abs(difference)
    category = magnitude.bit_length()
    code, length = _DC_CODES[category]
    bits.put(code, length)
    if category:
        value = difference if difference > 0 else difference + (1 << category) - 1
        bits.put(value, category)
    bits.put(*_EOB)


def _colour(
    x: float, y: float, variant: int, low: tuple[int, int, int], high: tuple[int, int, int]
) -> tuple[int, int, int]:
    """A smooth field in ``low``..``high``: a diagonal wave whose angle depends on ``variant``."""
    fx = 0.6 + (variant % 4) * 0.35
    fy = 0.5 + (variant // 4 % 4) * 0.3
    t = (x * fx + y * fy + variant * 0.07) % 1.0
    t = 1.0 - abs(2.0 * t - 1.0)
    return (
        round(low[0] + (high[0] - low[0]) * t),
        round(low[1] + (high[1] - low[1]) * t),
        round(low[2] + (high[2] - low[2]) * t),
    )


def _ycbcr(rgb: tuple[int, int, int]) -> tuple[int, int, int]:
    r, g, b = rgb
    y = 0.299 * r + 0.587 * g + 0.114 * b
    cb = 128 - 0.168736 * r - 0.331264 * g + 0.5 * b
    cr = 128 + 0.5 * r - 0.418688 * g - 0.081312 * b
    return (
        min(255, max(0, round(y))),
        min(255, max(0, round(cb))),
        min(255, max(0, round(cr))),
    )


@lru_cache(maxsize=128)
def thumbnail_jpeg(variant: int, low: tuple[int, int, int], high: tuple[int, int, int]) -> bytes:
    """A 343×343 baseline JPEG (JFIF) of a colour gradient between two colours.

    >>> data = thumbnail_jpeg(3, (60, 110, 40), (200, 170, 120))
    >>> data[:2], data[-2:], 1500 < len(data) < 4000
    (b'\\xff\\xd8', b'\\xff\\xd9', True)
    """
    size = THUMBNAIL_PIXELS
    mcus = -(-size // 16)
    bits = _Bits()
    previous = [0, 0, 0]
    for my in range(mcus):
        for mx in range(mcus):
            # Four luminance blocks (2×2), then one block each of Cb and Cr (4:2:0).
            for by, bx in ((0, 0), (0, 1), (1, 0), (1, 1)):
                x = (mx * 16 + bx * 8 + 4) / size
                y = (my * 16 + by * 8 + 4) / size
                luma = _ycbcr(_colour(x, y, variant, low, high))[0] - 128
                _dc(bits, luma - previous[0])
                previous[0] = luma
            _, cb, cr = _ycbcr(
                _colour((mx * 16 + 8) / size, (my * 16 + 8) / size, variant, low, high)
            )
            for component, value in ((1, cb - 128), (2, cr - 128)):
                _dc(bits, value - previous[component])
                previous[component] = value
    quantisation = bytes([0]) + bytes([8] + [1] * 63)
    frame = struct.pack(">BHHB", 8, size, size, 3) + bytes([1, 0x22, 0, 2, 0x11, 0, 3, 0x11, 0])
    huffman = bytes([0x00, *_DC_BITS, *_DC_VALUES]) + bytes([0x10, *_AC_BITS, *_AC_VALUES])
    scan = bytes([3, 1, 0x00, 2, 0x00, 3, 0x00, 0, 63, 0])
    return b"".join(
        (
            b"\xff\xd8",
            _segment(0xFFE0, b"JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00"),
            _segment(0xFFDB, quantisation),
            _segment(0xFFC0, frame),
            _segment(0xFFC4, huffman),
            _segment(0xFFDA, scan),
            bits.data(),
            b"\xff\xd9",
        )
    )


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    body = kind + data
    return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))


@lru_cache(maxsize=32)
def thumbnail_png(variant: int) -> bytes:
    """A 343×343 8-bit greyscale PNG: radar-like bands of brightness.

    >>> thumbnail_png(1)[:8]
    b'\\x89PNG\\r\\n\\x1a\\n'
    """
    size = THUMBNAIL_PIXELS
    rows = bytearray()
    fx = 0.03 + 0.004 * (variant % 8)
    for y in range(size):
        rows.append(0)  # filter type "None"
        shift = (y * (3 + variant % 5)) // 7
        rows += bytes(40 + int((x + shift) * fx * 64) % 180 for x in range(size))
    header = struct.pack(">IIBBBBB", size, size, 8, 0, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + _png_chunk(b"IHDR", header)
        + _png_chunk(b"IDAT", zlib.compress(bytes(rows), 9))
        + _png_chunk(b"IEND", b"")
    )
