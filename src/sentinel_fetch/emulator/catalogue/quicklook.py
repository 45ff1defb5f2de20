"""Quicklook images served by ``GET Assets(<id>)/$value`` (cdse-api.md §3.1, §5.1).

A tiny PNG per product, deterministic from the product Id: a smooth colour field in the
collection's palette (radar grey, optical green-brown, ocean-colour blue, trace-gas
yellow-red), enough for a client to save and open a real image. "Some quicklooks answer
403 or 404" (§5.9): :func:`quicklook_refusal` picks which, by product id, for this host and
the STAC thumbnail host alike.
"""

from __future__ import annotations

import math
import struct
import uuid
import zlib

__all__ = ["QUICKLOOK_SIZE", "quicklook_png", "quicklook_refusal"]

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


def quicklook_png(product_uid: bytes, collection: str, cloud_cover: float | None = None) -> bytes:
    """A 64×64 RGB PNG for a product; with ``cloud_cover``, that share of it is cloud.

    Clouds are white patches of a smooth field cut at the right quantile, so a 80 %
    cloudy scene looks 80 % white on a contact sheet, as a real quicklook does.

    >>> quicklook_png(bytes(16), "SENTINEL-2")[:8]
    b'\\x89PNG\\r\\n\\x1a\\n'
    """
    low, high = _PALETTES.get(collection, ((0, 0, 0), (255, 255, 255)))
    fx, fy, phase = product_uid[0] / 255 + 0.5, product_uid[1] / 255 + 0.5, product_uid[2]
    size = QUICKLOOK_SIZE
    cloudy = _cloud_mask(product_uid, size, cloud_cover)
    rows = bytearray()
    for y in range(size):
        rows.append(0)  # PNG filter type "None" for this row
        for x in range(size):
            if cloudy[y * size + x]:
                rows += b"\xf4\xf4\xf2"
                continue
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


def _cloud_mask(product_uid: bytes, size: int, cloud_cover: float | None) -> list[bool]:
    """Which pixels are cloud: the lowest ``cloud_cover`` % of a smooth field."""
    count = size * size
    share = 0.0 if cloud_cover is None else min(100.0, max(0.0, cloud_cover)) / 100
    cloudy = round(share * count)
    if cloudy == 0:
        return [False] * count
    a, b, c = (1 + product_uid[i] / 64 for i in (3, 4, 5))
    field = [
        math.sin(a * x / 9 + product_uid[6])
        + math.sin(b * y / 7 + product_uid[7])
        + math.sin(c * (x + y) / 11 + product_uid[8])
        for y in range(size)
        for x in range(size)
    ]
    order = sorted(range(count), key=field.__getitem__)
    mask = [False] * count
    for index in order[:cloudy]:
        mask[index] = True
    return mask


def quicklook_refusal(product_id: str, failure_share: float) -> int | None:
    """403 or 404 (half each) for ``failure_share`` of the products, else ``None``.

    >>> quicklook_refusal("00000000-0000-4000-8000-000000000001", 1.0)
    403
    >>> quicklook_refusal("00000000-0000-4000-8000-000000000001", 0.0) is None
    True
    """
    number = uuid.UUID(product_id).int
    if number % 10_000 / 10_000 >= failure_share:
        return None
    return 403 if number % 2 else 404
