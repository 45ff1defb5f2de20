"""The catalogue database: one row per product, one shared row per footprint.

Products of the same place share a footprint (a Sentinel-2 tile seen from one relative
orbit always has the same outline), so footprints live in their own table with an R*Tree
on their bounding boxes, and the exact spatial test runs once per footprint rather than
once per product. Every attribute a filter may test is either a column here or derived
from columns by :mod:`.attributes`; times are integer microseconds since the epoch (UTC),
which keeps comparisons exact and ordering cheap.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import NamedTuple

from sentinel_fetch.emulator.model import ProductRecord

__all__ = [
    "ALWAYS",
    "DDL",
    "INDEXES",
    "PRODUCT_COLUMNS",
    "SPLIT_ORIGINAL",
    "TWIN",
    "ProductRow",
    "format_time",
    "format_uuid",
    "to_datetime",
]


#: ``variant`` values. Twins (reprocessed baselines, replaced products, CloudFerro L2A,
#: partial tiles of one datatake, cdse-api.md §11.3) are served only while the emulator's
#: ``reprocessed_twins`` switch is on; a whole tile whose datatake was split into two
#: partial tiles is served only while it is off, so the switch never doubles a tile.
ALWAYS, TWIN, SPLIT_ORIGINAL = 0, 1, 2


class ProductRow(NamedTuple):
    """One stored product. Optional columns are ``None`` where a mission has no such value.

    ``mode`` is the operational mode (``IW``, ``INS-NOBS``…), ``baseline`` the processing
    baseline or processor version, ``timeliness`` the S1 timeliness, S3 timeliness or S5P
    processing stream, ``anx_ms`` the start time from the ascending node, ``origin`` who
    produced it (``ESA`` or ``CloudFerro``, §11.1). ``variant`` says when a product is
    served (:data:`ALWAYS`, :data:`TWIN`, :data:`SPLIT_ORIGINAL`, see :mod:`.generator`).
    """

    pk: int
    uid: bytes
    name: str
    collection: str
    product_type: str
    platform: str | None
    start_us: int
    end_us: int
    origin_us: int
    publication_us: int
    modification_us: int
    processing_us: int
    online: int
    legacy: int
    nominal_size: int
    footprint_id: int
    orbit: int | None
    relative_orbit: int | None
    orbit_direction: str | None
    mode: str | None
    polarisation: str | None
    tile: str | None
    cloud_cover: float | None
    baseline: str | None
    timeliness: str | None
    datatake: int | None
    slice_number: int | None
    total_slices: int | None
    segment_start_us: int | None
    anx_ms: float | None
    origin: str
    variant: int

    @property
    def id(self) -> str:
        """The product Id as CDSE writes it (lower-case, hyphenated)."""
        return format_uuid(self.uid)

    def record(self) -> ProductRecord:
        """The download host's view of this product."""
        return ProductRecord(
            id=self.id,
            name=self.name,
            collection=self.collection,
            product_type=self.product_type,
            content_start=to_datetime(self.start_us),
            nominal_size=self.nominal_size,
            online=bool(self.online),
            legacy=bool(self.legacy),
            publication=to_datetime(self.publication_us),
        )


PRODUCT_COLUMNS: tuple[str, ...] = ProductRow._fields

_COLUMN_TYPES = {
    "pk": "INTEGER PRIMARY KEY",
    "uid": "BLOB NOT NULL",
    "name": "TEXT NOT NULL",
    "collection": "TEXT NOT NULL",
    "product_type": "TEXT NOT NULL",
    "platform": "TEXT",
    "cloud_cover": "REAL",
    "anx_ms": "REAL",
    "orbit_direction": "TEXT",
    "mode": "TEXT",
    "polarisation": "TEXT",
    "tile": "TEXT",
    "baseline": "TEXT",
    "timeliness": "TEXT",
    "origin": "TEXT NOT NULL",
}

DDL: tuple[str, ...] = (
    "CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)",
    "CREATE TABLE footprints (fid INTEGER PRIMARY KEY, wkb BLOB NOT NULL)",
    # The collection rides along as an auxiliary column so a spatial test can skip the
    # footprints of other collections (footprints are never shared across collections).
    "CREATE VIRTUAL TABLE footprint_index"
    " USING rtree(fid, min_lon, max_lon, min_lat, max_lat, +collection)",
    "CREATE TABLE products ("
    + ", ".join(f"{c} {_COLUMN_TYPES.get(c, 'INTEGER')}" for c in PRODUCT_COLUMNS)
    + ")",
)

#: Built after the bulk insert (faster than maintaining them row by row).
INDEXES: tuple[str, ...] = (
    "CREATE UNIQUE INDEX products_uid ON products (uid)",
    "CREATE UNIQUE INDEX products_name ON products (name)",
    "CREATE INDEX products_collection_start ON products (collection, start_us)",
    "CREATE INDEX products_start ON products (start_us)",
    "CREATE INDEX products_footprint ON products (footprint_id)",
)

_EPOCH = datetime(1970, 1, 1)


def to_datetime(us: int) -> datetime:
    """Aware UTC datetime of epoch microseconds."""
    return (_EPOCH + timedelta(microseconds=us)).replace(tzinfo=timezone.utc)


_DAY_US = 86_400_000_000
_DAY_PREFIX: dict[int, str] = {}


def format_time(us: int) -> str:
    """CDSE datetime text: 6 fractional digits and ``Z`` (cdse-api.md §3.2, since 2024-09).

    A page of 1000 products formats 14,000 of these, hence the per-day prefix cache.

    >>> format_time(1696156219024000)
    '2023-10-01T10:30:19.024000Z'
    """
    day, rest = divmod(us, _DAY_US)
    prefix = _DAY_PREFIX.get(day)
    if prefix is None:
        prefix = (_EPOCH + timedelta(days=day)).strftime("%Y-%m-%dT")
        _DAY_PREFIX[day] = prefix
    seconds, micro = divmod(rest, 1_000_000)
    hour, seconds = divmod(seconds, 3600)
    minute, second = divmod(seconds, 60)
    return f"{prefix}{hour:02d}:{minute:02d}:{second:02d}.{micro:06d}Z"


def format_uuid(uid: bytes) -> str:
    """Hyphenated lower-case text of a 16-byte UUID.

    >>> format_uuid(bytes(range(16)))
    '00010203-0405-0607-0809-0a0b0c0d0e0f'
    """
    h = uid.hex()
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"
