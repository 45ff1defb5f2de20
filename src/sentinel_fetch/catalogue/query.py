"""The search description every input becomes: :class:`Query`.

A pasted Copernicus Browser URL, command-line options and Python calls all end up as one
frozen :class:`Query`; the OData text is rendered from it (:mod:`.odata`). Building a
Query checks every value and answers a mistake with a one-line
:class:`~sentinel_fetch.errors.QueryError` before anything is sent.

Semantics: fields are ANDed; several values for one field are ORed (two tiles mean
"either tile"). ``extra_filters`` holds OData conditions no field expresses (the
browser's ``instrumentShortName`` test, ``not contains(Name,'_COG')``, ...), ANDed
with the rest, so a pasted filter keeps its exact meaning.

Each field stands for one condition of the filter (cdse-api.md §3.5):

=====================  ==================================================================
field                  condition
=====================  ==================================================================
collections            ``Collection/Name eq 'SENTINEL-2'``
product_types          ``productType`` string attribute ``eq``
start / end            ``ContentDate/Start ge start`` / ``ContentDate/Start lt end``
area                   ``OData.CSC.Intersects(area=geography'SRID=4326;<WKT>')``
max_cloud_cover        ``cloudCover`` double attribute ``le``
tiles                  ``tileId`` string attribute ``eq``
relative_orbits        ``relativeOrbitNumber`` integer attribute ``eq``
orbit_direction        ``orbitDirection`` string attribute ``eq``
platforms              ``platformSerialIdentifier`` string attribute ``eq``
online                 ``Online eq true|false``
name_contains          ``contains(Name,'...')``
processing_baselines   ``processingBaseline`` string attribute ``eq``
names / ids            ``Name eq '...'`` / ``Id eq '...'``, one OR group together
=====================  ==================================================================

Attribute conditions use the attribute's own type (``DoubleAttribute`` for cloudCover,
``IntegerAttribute`` for relativeOrbitNumber): a mistyped test silently matches nothing
on CDSE (sentinelsat#583, peers.md §3 item 11).

Example:
    >>> query = build_query(collections="S2", product_types="L2A", start="2023-10-01",
    ...                     end="2023-10-01", tiles="T32TQM", max_cloud_cover=30)
    >>> query.collections, query.product_types, query.tiles
    (('SENTINEL-2',), ('S2MSI2A',), ('32TQM',))
    >>> query.end
    datetime.datetime(2023, 10, 2, 0, 0, tzinfo=datetime.timezone.utc)
"""

from __future__ import annotations

import difflib
import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, fields, replace
from datetime import date, datetime, timedelta
from typing import Any

from sentinel_fetch.catalogue.area import (
    DEFAULT_MAX_AREA_CHARS,
    AreaInput,
    area_geography,
    area_to_wkt,
    load_area,
    normalize_area_wkt,
)
from sentinel_fetch.catalogue.filter import (
    UTC,
    And,
    BooleanLiteral,
    Compare,
    ComparisonOperator,
    DateTimeLiteral,
    Expression,
    FunctionCall,
    Geography,
    Lambda,
    Member,
    NamedArgument,
    NumberLiteral,
    Or,
    StringLiteral,
    conjuncts,
    disjoin,
    format_datetime,
    parse_datetime,
    parse_filter,
    render_expression,
)
from sentinel_fetch.errors import AreaError, QueryError

__all__ = [
    "KNOWN_COLLECTIONS",
    "ORDER_BY_FIELDS",
    "PRODUCT_TYPE_ALIASES",
    "Query",
    "build_query",
    "normalize_order_by",
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
_COLLECTION_ALIASES = {
    "S1": "SENTINEL-1",
    "S2": "SENTINEL-2",
    "S3": "SENTINEL-3",
    "S5P": "SENTINEL-5P",
    "S6": "SENTINEL-6",
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


@dataclass(frozen=True)
class Query:
    """A catalogue search: what to look for, checked and in canonical form.

    Construct it directly with canonical values or with :func:`build_query`, which also
    takes dates as text, areas as files and single values for lists. Construction
    normalises (``L2A`` → ``S2MSI2A``, ``T32TQM`` → ``32TQM``, ``N0509`` → ``05.09``,
    upper-case collection names, UTC datetimes, duplicate values dropped) and raises
    :class:`~sentinel_fetch.errors.QueryError` (or ``AreaError``/``FilterSyntaxError``)
    with one line naming the problem.

    An extra filter that has the exact form of an empty field fills that field, so equal
    searches compare equal however they were written; each field takes at most one
    condition, and a second one stays an extra filter (two ``contains(Name,...)`` ANDed
    stay ANDed).

    Attributes:
        collections: ``Collection/Name`` values, ORed.
        product_types: ``productType`` values, ORed.
        start: first sensing time included (``ContentDate/Start ge``), aware UTC.
        end: first sensing time excluded (``ContentDate/Start lt``), aware UTC.
        area: WKT in EPSG:4326 that products must intersect.
        max_cloud_cover: highest ``cloudCover`` percentage included (0-100).
        tiles: MGRS tile ids (``32TQM``), ORed.
        relative_orbits: relative orbit numbers (1-175), ORed.
        orbit_direction: ``ASCENDING`` or ``DESCENDING``.
        platforms: satellite serial letters (``A``-``D``), ORed.
        online: ``True`` for online products only, ``False`` for offline only.
        name_contains: substrings of the product name, ORed.
        processing_baselines: processing baselines as ``05.09``, ORed.
        names: exact product names, ORed with ``ids``.
        ids: product UUIDs, ORed with ``names``.
        extra_filters: further OData conditions, ANDed, in canonical text.
        order_by: ``$orderby`` value such as ``ContentDate/Start desc``.
    """

    collections: tuple[str, ...] = ()
    product_types: tuple[str, ...] = ()
    start: datetime | None = None
    end: datetime | None = None
    area: str | None = None
    max_cloud_cover: float | None = None
    tiles: tuple[str, ...] = ()
    relative_orbits: tuple[int, ...] = ()
    orbit_direction: str | None = None
    platforms: tuple[str, ...] = ()
    online: bool | None = None
    name_contains: tuple[str, ...] = ()
    processing_baselines: tuple[str, ...] = ()
    names: tuple[str, ...] = ()
    ids: tuple[str, ...] = ()
    extra_filters: tuple[str, ...] = ()
    order_by: str | None = None

    def __post_init__(self) -> None:
        values = {name: _NORMALIZERS[name](getattr(self, name)) for name in _NORMALIZERS}
        extras: list[str] = []
        for text in _text_values(self.extra_filters, "extra filter"):
            for conjunct in conjuncts(parse_filter(text)):
                if not _absorb(values, conjunct):
                    extras.append(render_expression(conjunct))
        values["extra_filters"] = tuple(extras)
        values["order_by"] = None if self.order_by is None else normalize_order_by(self.order_by)
        _check_consistency(values)
        for name, value in values.items():
            object.__setattr__(self, name, value)

    def conditions(self) -> tuple[Expression, ...]:
        """The filter's conditions (to be ANDed), fields first in a fixed order, then extras."""
        values = self._values()
        found = [slot.condition(values) for slot in _SLOTS]
        extras = [parse_filter(text) for text in self.extra_filters]
        return tuple(condition for condition in found if condition is not None) + tuple(extras)

    def with_changes(self, **changes: Any) -> Query:
        """A copy with some fields replaced, checked again (the dataclass is frozen)."""
        return replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        """The non-empty fields as JSON-ready values (datetimes as catalogue text).

        Example:
            >>> Query(collections=("SENTINEL-1",), online=True).to_dict()
            {'collections': ['SENTINEL-1'], 'online': True}
        """
        result: dict[str, Any] = {}
        for name, value in self._values().items():
            if value is None or value == ():
                continue
            if isinstance(value, datetime):
                value = format_datetime(value)
            result[name] = list(value) if isinstance(value, tuple) else value
        return result

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Query:
        """Rebuild a Query from :meth:`to_dict` output.

        Raises:
            QueryError: unknown keys or values that do not check.
        """
        unknown = sorted(set(data) - {field.name for field in fields(cls)})
        if unknown:
            raise QueryError(f"unknown query field {unknown[0]!r}: expected Query fields only")
        converted: dict[str, Any] = {}
        for name, value in data.items():
            if name in ("start", "end") and isinstance(value, str):
                value = _instant(value, name)
            converted[name] = tuple(value) if isinstance(value, list) else value
        return cls(**converted)

    def _values(self) -> dict[str, Any]:
        return {field.name: getattr(self, field.name) for field in fields(self)}


def build_query(
    *,
    collections: str | Iterable[str] = (),
    product_types: str | Iterable[str] = (),
    start: str | date | datetime | None = None,
    end: str | date | datetime | None = None,
    area: AreaInput | None = None,
    max_cloud_cover: float | str | None = None,
    tiles: str | Iterable[str] = (),
    relative_orbits: int | str | Iterable[int | str] = (),
    orbit_direction: str | None = None,
    platforms: str | Iterable[str] = (),
    online: bool | None = None,
    name_contains: str | Iterable[str] = (),
    processing_baselines: str | Iterable[str] = (),
    names: str | Iterable[str] = (),
    ids: str | Iterable[str] = (),
    extra_filters: str | Iterable[str] = (),
    order_by: str | None = None,
    max_area_chars: int = DEFAULT_MAX_AREA_CHARS,
) -> Query:
    """Build a :class:`Query` from the values a person types.

    Args:
        collections: ``SENTINEL-2``, ``Sentinel-2``, ``S2``... (one or several).
        product_types: ``L1C``, ``L2A``, ``GRD``, ``IW_GRDH_1S``, ``L2__NO2___``...
        start: first day or instant included: ``2023-01-01``, a ``date``, an ISO
            date-time (``Z``/offset; none means UTC) or a datetime.
        end: last day included when given as a date (``2023-01-31`` includes all of
            31 January), otherwise the first instant excluded.
        area: anything :func:`~sentinel_fetch.catalogue.area.load_area` reads: text
            (WKT, GeoJSON, a bbox, a file name), a path, a bbox tuple or list, a GeoJSON
            dict, a shapely geometry; simplified to ``max_area_chars`` without losing
            coverage.
        max_cloud_cover: highest cloud percentage, 0-100.
        tiles: MGRS tiles, ``32TQM`` or ``T32TQM``.
        relative_orbits: 1-175.
        orbit_direction: ``ascending``/``descending`` (any case, or ``asc``/``desc``).
        platforms: ``A``, ``B``, ``C``, ``D``, or ``S2A``-style names.
        online: only online (``True``) or offline (``False``) products.
        name_contains: substrings of product names (ORed).
        processing_baselines: ``05.09`` or ``N0509``.
        names: exact product names.
        ids: product UUIDs.
        extra_filters: OData conditions ANDed with the rest.
        order_by: ``ContentDate/Start desc`` and the like.
        max_area_chars: longest WKT for the area.

    Raises:
        QueryError: a value is unusable (one line saying which and why).
        AreaError: the area cannot be read or is invalid.
    """
    area_wkt = None if area is None else area_to_wkt(load_area(area), max_chars=max_area_chars)
    return Query(
        collections=_as_tuple(collections),
        product_types=_as_tuple(product_types),
        start=_bound(start, "start", end_of_day=False),
        end=_bound(end, "end", end_of_day=True),
        area=area_wkt,
        max_cloud_cover=_cloud_cover(max_cloud_cover) if max_cloud_cover is not None else None,
        tiles=_as_tuple(tiles),
        relative_orbits=_as_tuple(relative_orbits),
        orbit_direction=orbit_direction,
        platforms=_as_tuple(platforms),
        online=online,
        name_contains=_as_tuple(name_contains),
        processing_baselines=_as_tuple(processing_baselines),
        names=_as_tuple(names),
        ids=_as_tuple(ids),
        extra_filters=_as_tuple(extra_filters),
        order_by=order_by,
    )


def _as_tuple(value: object) -> tuple[Any, ...]:
    if isinstance(value, (str, int)):
        return (value,)
    if isinstance(value, Iterable):
        return tuple(value)
    raise QueryError(f"expected a value or a list of values, got {type(value).__name__}")


def _bound(value: str | date | datetime | None, what: str, *, end_of_day: bool) -> datetime | None:
    if value is None or isinstance(value, datetime):
        return value
    if isinstance(value, date):
        day = datetime(value.year, value.month, value.day, tzinfo=UTC)
        return _next_day(day, what) if end_of_day else day
    if not isinstance(value, str):
        raise QueryError(f"{what} must be a date or a date-time, got {type(value).__name__}")
    text = value.strip()
    instant = _instant(text, what)
    date_only = len(text) == 10
    return _next_day(instant, what) if end_of_day and date_only else instant


def _next_day(day: datetime, what: str) -> datetime:
    try:
        return day + timedelta(days=1)
    except OverflowError:
        raise QueryError(f"{what} date {day.date()} is too late") from None


def _instant(text: str, what: str) -> datetime:
    try:
        return parse_datetime(text)
    except ValueError as error:
        raise QueryError(f"{what} {error}") from None


# --- normalisation of each field ---------------------------------------------------------


def _text_values(value: object, what: str) -> tuple[str, ...]:
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
        return _unique(normalize(item) for item in _as_tuple(value))

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


def _cloud_cover(value: Any) -> float:
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


_NORMALIZERS: dict[str, Callable[[Any], Any]] = {
    "collections": _each(_collection, "collections"),
    "product_types": _each(_product_type, "product types"),
    "start": _optional(lambda value: _utc(value, "start")),
    "end": _optional(lambda value: _utc(value, "end")),
    "area": _optional(_area),
    "max_cloud_cover": _optional(_cloud_cover),
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


def _check_consistency(values: Mapping[str, Any]) -> None:
    start, end = values["start"], values["end"]
    if start is not None and end is not None and end <= start:
        raise QueryError(
            f"the end {format_datetime(end)} is not after the start {format_datetime(start)}: "
            "give an end later than the start"
        )
    if all(values[name] in (None, ()) for name in _NORMALIZERS) and not values["extra_filters"]:
        raise QueryError(
            "the search has no condition: give at least a collection, dates, an area, names or ids"
        )


# --- fields as filter conditions, and back ------------------------------------------------


@dataclass(frozen=True)
class _Slot:
    """One field (or the names/ids pair) and the one filter condition that expresses it."""

    fields: tuple[str, ...]
    condition: Callable[[Mapping[str, Any]], Expression | None]
    match: Callable[[Expression], dict[str, Any] | None]


_NO_MATCH = object()


def _literal(expression: Expression) -> Any:
    if isinstance(expression, (StringLiteral, NumberLiteral, BooleanLiteral, DateTimeLiteral)):
        return expression.value
    return _NO_MATCH


def _any_of(conditions: Iterable[Expression]) -> Expression | None:
    found = list(conditions)
    return disjoin(found) if found else None


def _member_test(path: tuple[str, ...], operator: ComparisonOperator) -> _Test:
    member = Member(path)

    def build(value: Expression) -> Expression:
        return Compare(operator, member, value)

    def read(expression: Expression) -> Any:
        if isinstance(expression, Compare) and expression.left == member:
            return _literal(expression.right)
        return _NO_MATCH

    return _Test(build, read)


def _attribute_test(name: str, value_type: str, operator: ComparisonOperator) -> _Test:
    qualified = f"OData.CSC.{value_type}Attribute"

    def build(value: Expression) -> Expression:
        return Lambda(
            ("Attributes", qualified),
            "any",
            "att",
            And(
                (
                    Compare("eq", Member(("att", "Name")), StringLiteral(name)),
                    Compare(operator, Member(("att", qualified, "Value")), value),
                )
            ),
        )

    def read(expression: Expression) -> Any:
        if not isinstance(expression, Lambda) or not isinstance(expression.predicate, And):
            return _NO_MATCH
        operands = expression.predicate.operands
        if len(operands) != 2:
            return _NO_MATCH
        names, value = operands
        if not isinstance(names, Compare) or names.right != StringLiteral(name):
            return _NO_MATCH
        return _literal(value.right) if isinstance(value, Compare) else _NO_MATCH

    return _Test(build, read)


@dataclass(frozen=True)
class _Test:
    """How one value of a field is written as a condition, and read back loosely.

    Reading only has to find the candidate value; the exact form is checked by
    rendering the normalised value and comparing trees.
    """

    build: Callable[[Expression], Expression]
    read: Callable[[Expression], Any]


def _literal_for(value: Any) -> Expression:
    if isinstance(value, bool):
        return BooleanLiteral(value)
    if isinstance(value, (int, float)):
        return NumberLiteral(value)
    if isinstance(value, datetime):
        return DateTimeLiteral(value)
    return StringLiteral(str(value))


def _single_slot(field: str, test: _Test) -> _Slot:
    def condition(values: Mapping[str, Any]) -> Expression | None:
        value = values[field]
        return None if value is None else test.build(_literal_for(value))

    def match(expression: Expression) -> dict[str, Any] | None:
        value = test.read(expression)
        return None if value is _NO_MATCH else {field: value}

    return _Slot((field,), condition, match)


def _multiple_slot(field: str, test: _Test) -> _Slot:
    def condition(values: Mapping[str, Any]) -> Expression | None:
        return _any_of(test.build(_literal_for(value)) for value in values[field])

    def match(expression: Expression) -> dict[str, Any] | None:
        operands = expression.operands if isinstance(expression, Or) else (expression,)
        found = tuple(test.read(operand) for operand in operands)
        return None if _NO_MATCH in found else {field: found}

    return _Slot((field,), condition, match)


def _area_condition(values: Mapping[str, Any]) -> Expression | None:
    if values["area"] is None:
        return None
    geography = area_geography(values["area"])
    return FunctionCall("OData.CSC.Intersects", (NamedArgument("area", geography),))


def _area_match(expression: Expression) -> dict[str, Any] | None:
    if not isinstance(expression, FunctionCall) or len(expression.arguments) != 1:
        return None
    argument = expression.arguments[0]
    if not isinstance(argument, NamedArgument) or not isinstance(argument.value, Geography):
        return None
    geography = argument.value
    if geography.srid != 4326 or geography.dimension or not geography.coordinates:
        return None
    return {"area": geography.wkt}


_NAME_TEST = _member_test(("Name",), "eq")
_ID_TEST = _member_test(("Id",), "eq")


def _names_condition(values: Mapping[str, Any]) -> Expression | None:
    named = [_NAME_TEST.build(StringLiteral(name)) for name in values["names"]]
    identified = [_ID_TEST.build(StringLiteral(id_)) for id_ in values["ids"]]
    return _any_of(named + identified)


def _names_match(expression: Expression) -> dict[str, Any] | None:
    names: list[Any] = []
    ids: list[Any] = []
    for operand in expression.operands if isinstance(expression, Or) else (expression,):
        name, id_ = _NAME_TEST.read(operand), _ID_TEST.read(operand)
        if name is not _NO_MATCH:
            names.append(name)
        elif id_ is not _NO_MATCH:
            ids.append(id_)
        else:
            return None
    return {"names": tuple(names), "ids": tuple(ids)}


def _contains_test() -> _Test:
    def build(value: Expression) -> Expression:
        return FunctionCall("contains", (Member(("Name",)), value))

    def read(expression: Expression) -> Any:
        if isinstance(expression, FunctionCall) and len(expression.arguments) == 2:
            value = expression.arguments[1]
            return _literal(value) if not isinstance(value, NamedArgument) else _NO_MATCH
        return _NO_MATCH

    return _Test(build, read)


# Order = rendering order = matching order.
_SLOTS = (
    _multiple_slot("collections", _member_test(("Collection", "Name"), "eq")),
    _multiple_slot("product_types", _attribute_test("productType", "String", "eq")),
    _single_slot("start", _member_test(("ContentDate", "Start"), "ge")),
    _single_slot("end", _member_test(("ContentDate", "Start"), "lt")),
    _Slot(("area",), _area_condition, _area_match),
    _single_slot("max_cloud_cover", _attribute_test("cloudCover", "Double", "le")),
    _multiple_slot("tiles", _attribute_test("tileId", "String", "eq")),
    _multiple_slot("relative_orbits", _attribute_test("relativeOrbitNumber", "Integer", "eq")),
    _single_slot("orbit_direction", _attribute_test("orbitDirection", "String", "eq")),
    _multiple_slot("platforms", _attribute_test("platformSerialIdentifier", "String", "eq")),
    _single_slot("online", _member_test(("Online",), "eq")),
    _multiple_slot("name_contains", _contains_test()),
    _multiple_slot("processing_baselines", _attribute_test("processingBaseline", "String", "eq")),
    _Slot(("names", "ids"), _names_condition, _names_match),
)


def _absorb(values: dict[str, Any], conjunct: Expression) -> bool:
    """Move a condition into the first empty field it exactly expresses; say if it did.

    A candidate value must pass the field's checks and, written back, give exactly the
    same condition: anything else (another operator, attribute type, spelling of a
    collection...) stays an extra filter, so meaning never changes. Invalid areas raise:
    the catalogue would refuse them anyway.
    """
    for slot in _SLOTS:
        if any(values[field] not in (None, ()) for field in slot.fields):
            continue
        found = slot.match(conjunct)
        if found is None:
            continue
        try:
            candidate = {field: _NORMALIZERS[field](value) for field, value in found.items()}
        except AreaError:
            raise
        except QueryError:
            continue
        if slot.condition(candidate) == conjunct:
            values.update(candidate)
            return True
    return False
