"""Quicklook images served by ``GET Assets(<id>)/$value`` (cdse-api.md §3.1, §5.1).

A tiny PNG per product, deterministic from the product Id: a smooth colour field in the
collection's palette (radar grey, optical green-brown, ocean-colour blue, trace-gas
yellow-red), enough for a client to save and open a real image.
"""

from __future__ import annotations

import struct
import zlib

__all__ = ["QUICKLOOK_SIZE", "quicklook_png"]

#: Width and height of a quicklook, pixels.
QUICKLOOK_SIZE = 64

_PALETTES = {
    "SENTINEL-1": ((40, 40, 40), (220, 220, 220)),
    "SENTINEL-2": ((60, 110, 40), (200, 170, 120)),
    "SENTINEL-3": ((10, 40, 120), (120, 200, 220)),
    "SENTINEL-5P": ((250, 240, 120), (200, 30, 20)),
}


def _chunk(kind: bytes, data: bytes) -> bytes:
    body = kind + data
    return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))


def quicklook_png(product_uid: bytes, collection: str) -> bytes:
    """A 64×64 RGB PNG for a product.

    >>> quicklook_png(bytes(16), "SENTINEL-2")[:8]
    b'\\x89PNG\\r\\n\\x1a\\n'
    """
    low, high = _PALETTES.get(collection, ((0, 0, 0), (255, 255, 255)))
    fx, fy, phase = product_uid[0] / 255 + 0.5, product_uid[1] / 255 + 0.5, product_uid[2]
    rows = bytearray()
    size = QUICKLOOK_SIZE
    for y in range(size):
        rows.append(0)  # PNG filter type "None" for this row
        for x in range(size):
            t = ((x * fx + y * fy + phase) % size) / size
            t = 1 - abs(2 * t - 1)
            rows += bytes(int(a + (b - a) * t) for a, b in zip(low, high, strict=True))
    header = struct.pack(">IIBBBBB", size, size, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + _chunk(b"IHDR", header)
        + _chunk(b"IDAT", zlib.compress(bytes(rows), 9))
        + _chunk(b"IEND", b"")
    )
