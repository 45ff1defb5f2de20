"""What a person may type for each search field, and its one canonical spelling.

Pure functions, one per field of :class:`~sentinel_fetch.catalogue.query.Query`: each
takes what a user, a config file or a Python caller gives (``S2``, ``L2A``,
``T32TQM``, ``N0509``, ``desc``, ``2023-10-01``...) and returns the canonical value, or
raises :class:`~sentinel_fetch.errors.QueryError` with one line naming the problem.
What each canonical value means as an OData condition is
:mod:`~sentinel_fetch.catalogue.conditions`' business; the Query combines the two.

Example:
    >>> FIELD_NORMALIZERS["tiles"]("T32TQM"), FIELD_NORMALIZERS["processing_baselines"]("N0509")
    (('32TQM',), ('05.09',))
    >>> parse_bound("2023-10-01", "end", end_of_day=True)
    datetime.datetime(2023, 10, 2, 0, 0, tzinfo=datetime.timezone.utc)
"""

from __future__ import annotations

import difflib
import uuid
from collections.abc import Callable, Iterable, Mapping
from datetime import date, datetime, timedelta
from typing import Any

from sentinel_fetch.catalogue.area import normalize_area_wkt
from sentinel_fetch.catalogue.filter import UTC, parse_datetime
from sentinel_fetch.catalogue.relative import parse_relative
from sentinel_fetch.errors import QueryError

__all__ = [
    "FIELD_NORMALIZERS",
    "KNOWN_COLLECTIONS",
    "MAX_RELATIVE_ORBIT",
    "MISSION_ABBREVIATIONS",
    "ORDER_BY_FIELDS",
    "PRODUCT_TYPE_ALIASES",
    "as_values",
    "filter_texts",
    "normalize_cloud_cover",
    "normalize_order_by",
    "parse_bound",
    "parse_instant",
]

#: ``Collection/Name`` values of the catalogue (cdse-api.md §8.1).
KNOWN_COLLECTIONS = (
    "SENTINEL-1",
    "SENTINEL-2",
    "SENTINEL-3",
    "SENTINEL-5P",
    "SENTINEL-6",
    "SENTINEL-1-RTC",
    "GLOBAL-MOSAICS",
    "SMOS",
    "ENVISAT",
    "LANDSAT-5",
    "LANDSAT-7",
    "LANDSAT-8",
    "LANDSAT-9",
    "COP-DEM",
    "TERRAAQUA",
    "S2GLC",
    "CCM",
)
#: The short names of the Sentinel missions, as product names begin (``S2B_MSIL2A_...``).
MISSION_ABBREVIATIONS = {
    "S1": "SENTINEL-1",
    "S2": "SENTINEL-2",
    "S3": "SENTINEL-3",
    "S5P": "SENTINEL-5P",
    "S6": "SENTINEL-6",
}
_COLLECTION_ALIASES = {
    **MISSION_ABBREVIATIONS,
    **{name.replace("-", ""): name for name in KNOWN_COLLECTIONS},
}

#: Friendly product types and what the catalogue calls them. The Sentinel-1 aliases
#: GRD, SLC, RAW, OCN and GRD-COG are understood by the catalogue itself (§3.5, §8.2).
PRODUCT_TYPE_ALIASES = {"L1C": "S2MSI1C", "L2A": "S2MSI2A"}
_CATALOGUE_PRODUCT_TYPE_ALIASES = ("GRD", "SLC", "RAW", "OCN", "GRD-COG")

#: Sort keys the catalogue accepts in ``$orderby`` (§3.6).
ORDER_BY_FIELDS = ("ContentDate/Start", "ContentDate/End", "PublicationDate", "ModificationDate")

#: Relative orbits per repeat cycle of Sentinel-1 (175); Sentinel-2 has 143. Sentinel-3's
#: 385 go through ``extra_filters``.
MAX_RELATIVE_ORBIT = 175
_PLATFORMS = ("A", "B", "C", "D")
_ORBIT_DIRECTIONS = {
    "ASCENDING": "ASCENDING",
    "ASC": "ASCENDING",
    "DESCENDING": "DESCENDING",
    "DESC": "DESCENDING",
}
# MGRS: zone 01-60, latitude band C-X without I/O, 100 km square column A-Z and row A-V
# without I/O.
_MGRS_BANDS = "CDEFGHJKLMNPQRSTUVWX"
_MGRS_COLUMNS = "ABCDEFGHJKLMNPQRSTUVWXYZ"
_MGRS_ROWS = "ABCDEFGHJKLMNPQRSTUV"


def as_values(value: object) -> tuple[Any, ...]:
    """One value or an iterable of values as a tuple (text is one value, not letters)."""
    if isinstance(value, (str, int)):
        return (value,)
    if isinstance(value, Iterable):
        return tuple(value)
    raise QueryError(f"expected a value or a list of values, got {type(value).__name__}")


def parse_bound(
    value: str | date | datetime | None,
    what: str,
    *,
    end_of_day: bool,
    now: datetime | None = None,
) -> datetime | None:
    """A start or end as typed: a date, an ISO date-time (no zone means UTC), a datetime,
    or an age back from now (``30d``, ``12h``, ``2w``: :mod:`.relative`).

    With ``end_of_day`` a date alone means "that whole day": the bound is the next
    midnight, since the end is the first instant excluded. Ages count back from ``now``
    (default: this instant); pass one ``now`` for both bounds of a query.
    """
    if value is None or isinstance(value, datetime):
        return value
    if isinstance(value, date):
        day = datetime(value.year, value.month, value.day, tzinfo=UTC)
        return _next_day(day, what) if end_of_day else day
    if not isinstance(value, str):
        raise QueryError(f"{what} must be a date or a date-time, got {type(value).__name__}")
    text = value.strip()
    try:
        relative = parse_relative(text, now or datetime.now(UTC))
    except ValueError as error:
        raise QueryError(f"{what} {error}") from None
    if relative is not None:
        return relative
    instant = parse_instant(text, what)
    date_only = len(text) == 10
    return _next_day(instant, what) if end_of_day and date_only else instant


def _next_day(day: datetime, what: str) -> datetime:
    try:
        return day + timedelta(days=1)
    except OverflowError:
        raise QueryError(f"{what} date {day.date()} is too late") from None


def parse_instant(text: str, what: str) -> datetime:
    """An ISO date or date-time as an aware UTC datetime; ``what`` names it in errors."""
    try:
        return parse_datetime(text)
    except ValueError as error:
        raise QueryError(f"{what} {error}") from None


def filter_texts(value: object, what: str) -> tuple[str, ...]:
    """OData condition texts: one text or a list of non-blank texts."""
    items = (value,) if isinstance(value, str) else value
    if not isinstance(items, Iterable):
        raise QueryError(f"{what} must be text or a list of texts, got {type(value).__name__}")
    result: list[str] = []
    for item in items:
        if not isinstance(item, str) or not item.strip():
            raise QueryError(f"{what} {item!r} is not usable: give an OData condition")
        result.append(item)
    return tuple(result)


def _unique(values: Iterable[Any]) -> tuple[Any, ...]:
    return tuple(dict.fromkeys(values))


def _each(normalize: Callable[[Any], Any], what: str) -> Callable[[Any], tuple[Any, ...]]:
    def normalize_all(value: Any) -> tuple[Any, ...]:
        if not isinstance(value, (str, int, Iterable)):
            raise QueryError(f"{what} must be a value or a list, got {type(value).__name__}")
        return _unique(normalize(item) for item in as_values(value))

    return normalize_all


def _optional(normalize: Callable[[Any], Any]) -> Callable[[Any], Any]:
    return lambda value: None if value is None else normalize(value)


def _text(value: Any, what: str) -> str:
    if not isinstance(value, str) or not value.strip() or not value.strip().isprintable():
        raise QueryError(f"{what} {value!r} is not usable: give non-empty printable text")
    return value.strip()


def _collection(value: Any) -> str:
    text = _text(value, "collection").upper().replace("_", "-")
    name = _COLLECTION_ALIASES.get(text.replace("-", ""), text)
    if name in KNOWN_COLLECTIONS:
        return name
    close = difflib.get_close_matches(name, KNOWN_COLLECTIONS, n=1)
    hint = f"did you mean {close[0]}?" if close else "use one of " + ", ".join(KNOWN_COLLECTIONS)
    raise QueryError(f"unknown collection {value!r}: {hint}")


def _product_type(value: Any) -> str:
    text = _text(value, "product type")
    upper = text.upper()
    if upper in PRODUCT_TYPE_ALIASES:
        return PRODUCT_TYPE_ALIASES[upper]
    if upper in _CATALOGUE_PRODUCT_TYPE_ALIASES:
        return upper
    if len(text) > 40 or not all(char.isalnum() or char in "_-" for char in text):
        raise QueryError(
            f"product type {text!r} is not a product type name: use e.g. L2A, GRD, "
            "IW_GRDH_1S or L2__NO2___"
        )
    return text


def _utc(value: Any, what: str) -> datetime:
    if not isinstance(value, datetime):
        raise QueryError(f"{what} must be a datetime, got {type(value).__name__}")
    # A naive datetime means UTC, as on the catalogue since 2024-05-28 (§3.5).
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _area(value: Any) -> str:
    if not isinstance(value, str):
        raise QueryError(f"area must be WKT text, got {type(value).__name__}: use build_query")
    return normalize_area_wkt(value)


def normalize_cloud_cover(value: Any) -> float:
    """A cloud percentage as typed (a number or its text), checked to be within 0-100."""
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise QueryError(
            f"cloud cover {value!r} is not a number: give a percentage 0-100"
        ) from None
    if isinstance(value, bool) or not 0 <= number <= 100:
        raise QueryError(f"cloud cover {value!r} is outside 0..100: give a percentage")
    return number


def _tile(value: Any) -> str:
    text = _text(value, "tile").upper()
    tile = text[1:] if len(text) == 6 and text.startswith("T") else text
    valid = (
        len(tile) == 5
        and tile[:2].isdigit()
        and 1 <= int(tile[:2]) <= 60
        and tile[2] in _MGRS_BANDS
        and tile[3] in _MGRS_COLUMNS
        and tile[4] in _MGRS_ROWS
    )
    if not valid:
        raise QueryError(
            f"tile {value!r} is not an MGRS tile id: expected zone 01-60, band and square, "
            "e.g. 32TQM"
        )
    return tile


def _relative_orbit(value: Any) -> int:
    number: int | None = None
    if isinstance(value, int) and not isinstance(value, bool):
        number = value
    elif isinstance(value, float) and value.is_integer():
        number = int(value)
    elif isinstance(value, str) and value.strip().isdigit():
        number = int(value.strip())
    if number is None:
        raise QueryError(f"relative orbit {value!r} is not a whole number")
    if not 1 <= number <= MAX_RELATIVE_ORBIT:
        raise QueryError(f"relative orbit {number} is outside 1..{MAX_RELATIVE_ORBIT}")
    return number


def _orbit_direction(value: Any) -> str:
    text = _text(value, "orbit direction").upper()
    if text not in _ORBIT_DIRECTIONS:
        raise QueryError(f"orbit direction {value!r} is not ASCENDING or DESCENDING")
    return _ORBIT_DIRECTIONS[text]


def _platform(value: Any) -> str:
    # "B", "S2B" and "Sentinel-2B" all mean serial identifier B.
    text = _text(value, "platform").upper().replace("SENTINEL-", "S")
    letter = text[2] if len(text) == 3 and text[0] == "S" and text[1].isdigit() else text
    if letter not in _PLATFORMS:
        raise QueryError(f"platform {value!r} is not a satellite letter: use A, B, C or D")
    return letter


def _online(value: Any) -> bool:
    if not isinstance(value, bool):
        raise QueryError(f"online must be true, false or unset, got {value!r}")
    return value


def _name_part(value: Any) -> str:
    return _text(value, "name substring")


def _baseline(value: Any) -> str:
    text = _text(value, "processing baseline").upper().removeprefix("N")
    digits = text.replace(".", "")
    if "." in text:
        whole, _, fraction = text.partition(".")
        digits = whole.zfill(2) + fraction
    if len(digits) != 4 or not digits.isdigit() or text.count(".") > 1:
        raise QueryError(f"processing baseline {value!r} is not a baseline: give 05.09 or N0509")
    return f"{digits[:2]}.{digits[2:]}"


def _name(value: Any) -> str:
    text = _text(value, "product name")
    if any(char.isspace() for char in text):
        raise QueryError(f"product name {text!r} contains a space: give exact names")
    return text


def _product_id(value: Any) -> str:
    text = _text(value, "product id")
    try:
        return str(uuid.UUID(text))
    except ValueError:
        raise QueryError(
            f"product id {text!r} is not a UUID like 8f2d6a4e-1c3b-4e57-9a0d-5b7c2e91f4a3"
        ) from None


def normalize_order_by(value: Any) -> str:
    """Check an ``$orderby`` value and spell it canonically (direction always written).

    Raises:
        QueryError: not one of :data:`ORDER_BY_FIELDS` with ``asc``/``desc``.

    Example:
        >>> normalize_order_by("contentdate/start  DESC")
        'ContentDate/Start desc'
    """
    keys: list[str] = []
    for part in _text(value, "order").split(","):
        words = part.split()
        by_name = {field.lower(): field for field in ORDER_BY_FIELDS}
        field = by_name.get(words[0].lower()) if words else None
        direction = words[1].lower() if len(words) == 2 else "asc"
        if field is None or len(words) > 2 or direction not in ("asc", "desc"):
            raise QueryError(
                f"cannot order by {part.strip()!r}: use one of {', '.join(ORDER_BY_FIELDS)} "
                "followed by asc or desc"
            )
        keys.append(f"{field} {direction}")
    return ",".join(keys)


#: Each field's normaliser: canonical value, or QueryError. Lists are checked item by item,
#: duplicates dropped; ``None`` stays ``None``. (``extra_filters`` and ``order_by`` are the
#: Query's own: the first may fill fields, the second is :func:`normalize_order_by`.)
FIELD_NORMALIZERS: Mapping[str, Callable[[Any], Any]] = {
    "collections": _each(_collection, "collections"),
    "product_types": _each(_product_type, "product types"),
    "start": _optional(lambda value: _utc(value, "start")),
    "end": _optional(lambda value: _utc(value, "end")),
    "area": _optional(_area),
    "max_cloud_cover": _optional(normalize_cloud_cover),
    "tiles": _each(_tile, "tiles"),
    "relative_orbits": _each(_relative_orbit, "relative orbits"),
    "orbit_direction": _optional(_orbit_direction),
    "platforms": _each(_platform, "platforms"),
    "online": _optional(_online),
    "name_contains": _each(_name_part, "name substrings"),
    "processing_baselines": _each(_baseline, "processing baselines"),
    "names": _each(_name, "names"),
    "ids": _each(_product_id, "ids"),
}
