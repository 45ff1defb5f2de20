"""The search description every input becomes: :class:`Query`.

A pasted Copernicus Browser URL, command-line options and Python calls all end up as one
frozen :class:`Query`; the OData text is rendered from it (:mod:`.odata`). Building a
Query checks every value and answers a mistake with a one-line
:class:`~sentinel_fetch.errors.QueryError` before anything is sent.

Three modules, one question each:

* :mod:`.inputs`: what a person may type for each field, and its canonical spelling;
* :mod:`.conditions`: each field as one OData condition, and back (the table of
  fields and conditions is there);
* this module: the Query, which holds the canonical fields and combines the two.

Semantics: fields are ANDed; several values for one field are ORed (two tiles mean
"either tile"). ``extra_filters`` holds OData conditions no field expresses (the
browser's ``instrumentShortName`` test, ``not contains(Name,'_COG')``, ...), ANDed
with the rest, so a pasted filter keeps its exact meaning.

Example:
    >>> query = build_query(collections="S2", product_types="L2A", start="2023-10-01",
    ...                     end="2023-10-01", tiles="T32TQM", max_cloud_cover=30)
    >>> query.collections, query.product_types, query.tiles
    (('SENTINEL-2',), ('S2MSI2A',), ('32TQM',))
    >>> query.end
    datetime.datetime(2023, 10, 2, 0, 0, tzinfo=datetime.timezone.utc)
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, fields, replace
from datetime import date, datetime, timezone
from typing import Any

from sentinel_fetch.catalogue.area import (
    DEFAULT_MAX_AREA_CHARS,
    AreaInput,
    area_to_wkt,
    load_area,
)
from sentinel_fetch.catalogue.conditions import absorb, field_conditions
from sentinel_fetch.catalogue.filter import (
    Expression,
    conjuncts,
    format_datetime,
    parse_filter,
    render_expression,
)
from sentinel_fetch.catalogue.inputs import (
    FIELD_NORMALIZERS,
    KNOWN_COLLECTIONS,
    ORDER_BY_FIELDS,
    PRODUCT_TYPE_ALIASES,
    as_values,
    filter_texts,
    normalize_cloud_cover,
    normalize_order_by,
    parse_bound,
    parse_instant,
)
from sentinel_fetch.errors import QueryError

__all__ = [
    "KNOWN_COLLECTIONS",
    "ORDER_BY_FIELDS",
    "PRODUCT_TYPE_ALIASES",
    "Query",
    "build_query",
    "normalize_order_by",
]


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
        values = {name: FIELD_NORMALIZERS[name](getattr(self, name)) for name in FIELD_NORMALIZERS}
        extras: list[str] = []
        for text in filter_texts(self.extra_filters, "extra filter"):
            for conjunct in conjuncts(parse_filter(text)):
                if not absorb(values, conjunct):
                    extras.append(render_expression(conjunct))
        values["extra_filters"] = tuple(extras)
        values["order_by"] = None if self.order_by is None else normalize_order_by(self.order_by)
        _check_consistency(values)
        for name, value in values.items():
            object.__setattr__(self, name, value)

    def conditions(self) -> tuple[Expression, ...]:
        """The filter's conditions (to be ANDed), fields first in a fixed order, then extras."""
        extras = [parse_filter(text) for text in self.extra_filters]
        return field_conditions(self._values()) + tuple(extras)

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
                value = parse_instant(value, name)
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
    # One instant for both bounds: "--start 2d --end 1d" is exactly one day.
    now = datetime.now(timezone.utc)
    return Query(
        collections=as_values(collections),
        product_types=as_values(product_types),
        start=parse_bound(start, "start", end_of_day=False, now=now),
        end=parse_bound(end, "end", end_of_day=True, now=now),
        area=area_wkt,
        max_cloud_cover=normalize_cloud_cover(max_cloud_cover)
        if max_cloud_cover is not None
        else None,
        tiles=as_values(tiles),
        relative_orbits=as_values(relative_orbits),
        orbit_direction=orbit_direction,
        platforms=as_values(platforms),
        online=online,
        name_contains=as_values(name_contains),
        processing_baselines=as_values(processing_baselines),
        names=as_values(names),
        ids=as_values(ids),
        extra_filters=as_values(extra_filters),
        order_by=order_by,
    )


def _check_consistency(values: Mapping[str, Any]) -> None:
    start, end = values["start"], values["end"]
    if start is not None and end is not None and end <= start:
        raise QueryError(
            f"the end {format_datetime(end)} is not after the start {format_datetime(start)}: "
            "give an end later than the start"
        )
    if (
        all(values[name] in (None, ()) for name in FIELD_NORMALIZERS)
        and not values["extra_filters"]
    ):
        raise QueryError(
            "the search has no condition: give at least a collection, dates, an area, names or ids"
        )
