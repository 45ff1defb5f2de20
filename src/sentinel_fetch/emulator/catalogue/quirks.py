"""What real catalogue entities carry and a clean generator never would (cdse-api.md §12.1).

CDSE changed the form of its answers several times, and public captures recorded before
each change show the older form. A test suite that only meets the newest form never
meets them, so part of the catalogue is served the older way. The rules depend only on a
product's publication date and bytes of its Id, so the same product always looks the
same, and every test meets some of each:

======================================  ==================================================
what                                    which products
======================================  ==================================================
``EvictionDate`` ``""``                 published before 2024-07-31, Id byte 9 % 3 == 0
                                        (19 of 74 real entities, §3.2)
``EvictionDate`` a real rolling date    Sentinel-5P NRTI products (near real time, kept
                                        30 days after publication, §3.2)
3 fractional digits (``…40.284Z``)      every product published before 2024-09-02, in
                                        every datetime except ``ChecksumDate``, which
                                        always has 6 (§3.2). By age alone, not by Id:
                                        products sharing a start instant (one S5P orbit,
                                        a GRD and its COG twin) then show the same text,
                                        and an answer's order stays visible in it
DateTimeOffset attributes with          published before 2025-03-17, Id byte 11 % 3 == 0;
``+00:00`` instead of ``Z``             half of them (byte 11 even) without a fraction
                                        (``2023-02-09T08:40:58+00:00``, §3.3)
Integer attributes sent as text         Id byte 13 % 8 == 0: ``"34291"`` typed Integer,
(``"34291"``, ``ValueType`` Integer)    like ``spatialResolution`` ``"2.3"`` (§3.3)
Integer attributes typed ``String``     Id byte 13 % 8 == 1: ``relativeOrbitNumber`` 108
                                        with ``ValueType`` String, like Landsat numbers
``Checksum`` ``[{}]``                   Id byte 12 % 32 == 0 among products that have
                                        checksums (a Landsat-8 capture, §3.2, §5.5)
``GeoFootprint`` key absent             published before 2024-01-01, Id byte 14 % 16 == 0
                                        (a 2023 capture of the same software, §3.2)
======================================  ==================================================

``Checksum`` ``[]`` with ``ContentLength`` 0 is the generator's ``legacy`` flag (older
holdings, :mod:`.generator`); such products are still served, and a client checks them by
the zip's CRCs. The values stored, and so every filter, are unchanged: only the text of
the answer differs, as it does on CDSE. Null footprints (AUX products) and an inexact
``@odata.count`` are not a share: the ``entity`` fault and the ``count_offset`` switch
serve them.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timezone

from .schema import ProductRow, format_time

__all__ = [
    "adjust_attributes",
    "drops_geo_footprint",
    "empty_checksum_entry",
    "eviction_date",
    "mistyped_integers",
    "time_format",
]

_DAY_US = 86_400_000_000


def _us(moment: datetime) -> int:
    return int(moment.timestamp()) * 1_000_000


#: Before these publication dates, a share of products shows the older forms.
EVICTION_EMPTY_BEFORE = _us(datetime(2024, 7, 31, tzinfo=timezone.utc))
THREE_DIGITS_BEFORE = _us(datetime(2024, 9, 2, tzinfo=timezone.utc))
OFFSET_DATES_BEFORE = _us(datetime(2025, 3, 17, tzinfo=timezone.utc))
GEO_FOOTPRINT_ABSENT_BEFORE = _us(datetime(2024, 1, 1, tzinfo=timezone.utc))
_PERMANENT = 253_402_300_799_999_999  # 9999-12-31T23:59:59.999999Z
_NRT_KEPT_DAYS = 30


def _three_digits(us: int) -> str:
    return format_time(us)[:23] + "Z"


def time_format(row: ProductRow) -> Callable[[int], str]:
    """How this product's entity datetimes are written (not ``ChecksumDate``)."""
    return _three_digits if row.publication_us < THREE_DIGITS_BEFORE else format_time


def eviction_date(row: ProductRow) -> str:
    """``EvictionDate``: far future, ``""`` on older entities, a date for rolling NRT."""
    written = time_format(row)
    if row.collection == "SENTINEL-5P" and row.timeliness == "NRTI":
        day = row.publication_us // _DAY_US + 1 + _NRT_KEPT_DAYS
        return written(day * _DAY_US)
    if row.publication_us < EVICTION_EMPTY_BEFORE and row.uid[9] % 3 == 0:
        return ""
    return written(_PERMANENT)


def _offset_dates(row: ProductRow) -> Callable[[str], str] | None:
    """How DateTimeOffset attribute text (``…49.113620Z``) is rewritten, if it is."""
    if row.publication_us >= OFFSET_DATES_BEFORE or row.uid[11] % 3:
        return None
    if row.uid[11] % 2 == 0:
        return lambda text: text[:19] + "+00:00"
    return lambda text: text[:26] + "+00:00"


def mistyped_integers(row: ProductRow) -> str | None:
    """``"text"`` (Integer values sent as text), ``"string"`` (typed String) or None."""
    kind = row.uid[13] % 8
    return "text" if kind == 0 else "string" if kind == 1 else None


def adjust_attributes(
    row: ProductRow, rendered: list[dict[str, object]]
) -> list[dict[str, object]]:
    """The ``Attributes`` array as this product shows it (``rendered`` is the clean form)."""
    dates = _offset_dates(row)
    integers = mistyped_integers(row)
    if dates is None and integers is None:
        return rendered
    adjusted = []
    for item in rendered:
        value_type, value = item["ValueType"], item["Value"]
        if value_type == "DateTimeOffset" and dates is not None and isinstance(value, str):
            item = {**item, "Value": dates(value)}
        elif value_type == "Integer" and integers == "text":
            item = {**item, "Value": str(value)}
        elif value_type == "Integer" and integers == "string":
            item = {**item, "@odata.type": "#OData.CSC.StringAttribute", "ValueType": "String"}
        adjusted.append(item)
    return adjusted


def empty_checksum_entry(row: ProductRow) -> bool:
    """Whether ``Checksum`` is ``[{}]`` (one empty object) instead of MD5 and BLAKE3."""
    return not row.legacy and row.uid[12] % 32 == 0


def drops_geo_footprint(row: ProductRow) -> bool:
    """Whether the ``GeoFootprint`` key is left out (the WKT ``Footprint`` stays)."""
    return row.publication_us < GEO_FOOTPRINT_ABSENT_BEFORE and row.uid[14] % 16 == 0
