"""STAC item search: parameters, basic CQL2, ``query``, ``sortby``, ``fields``, and SQL.

A search is read from GET parameters or a POST body into a :class:`Search`
(cdse-api.md §9.3), then compiled to one SQL query over the catalogue's ``products``
table (alias ``p``), the same rows OData searches. Semantics follow stac-fastapi-pgstac,
CDSE's presumed backend [INFERRED, §9.1]:

* ``collections`` and ``ids`` restrict; an unknown collection simply matches nothing.
* ``datetime`` (an instant, or ``start/end`` with ``..`` for an open end) keeps items
  whose ``start_datetime``..``end_datetime`` overlaps it; ``bbox`` (crossing the
  antimeridian when west > east) and ``intersects`` test the footprint.
* ``filter``: basic CQL2, text (GET default) or JSON (POST default): ``AND``, ``OR``,
  ``NOT``, ``=``, ``<>``, ``<``, ``<=``, ``>``, ``>=``, ``IS [NOT] NULL`` on strings,
  numbers, booleans, ``DATE('…')`` and ``TIMESTAMP('…')``, plus ``S_INTERSECTS`` with a
  WKT or GeoJSON geometry (§9.3). ``query`` (the older extension) takes ``eq``, ``neq``,
  ``lt``, ``lte``, ``gt``, ``gte``, ``startsWith``, ``endsWith``, ``contains``, ``in``.
  A property the emulator does not know is null, as in pgstac (comparisons fail,
  ``IS NULL`` holds); comparing a known property with a literal of the wrong type is a
  400, which is where a client bug would otherwise hide.
* ``sortby`` (default ``-datetime``) with the item id as the last tie-breaker; an
  unknown field sorts as null. Paging is keyset: the ``next`` token names the last item
  of the page, and the next page starts strictly after its sort key.
* ``fields``: ``include``/``exclude`` of dotted paths (``properties.eo:cloud_cover``,
  ``assets.thumbnail``); with includes, ``type``, ``id`` and ``collection`` always stay
  (the shape of §13.5). A path both included and excluded is included.
"""

from __future__ import annotations

import calendar
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

import shapely
from shapely.geometry.base import BaseGeometry

from sentinel_fetch.emulator.catalogue.filter import (
    And,
    Call,
    Comparison,
    Literal,
    NamedArgument,
    Path,
)
from sentinel_fetch.emulator.catalogue.sql import compile_filter

from .collections import COLLECTIONS, StacCollection, by_id

__all__ = [
    "Expression",
    "QueryError",
    "Search",
    "after_row",
    "apply_fields",
    "compile_search",
    "parse_cql2_json",
    "parse_cql2_text",
    "parse_datetime_interval",
    "search_from_body",
    "search_from_query",
]

_CRS84 = "http://www.opengis.net/def/crs/OGC/1.3/CRS84"


class QueryError(ValueError):
    """A search CDSE's STAC answers with 400 ``{"code", "description"}``."""


# Expressions ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Expression:
    """A node of a filter: ``op`` and its arguments.

    ``op`` is ``and``/``or`` (``args``: expressions), ``not`` (one expression), a
    comparison ``=``, ``<>``, ``<``, ``<=``, ``>``, ``>=`` (property name, literal),
    ``isNull`` (property name), ``in`` (property name, list of literals), ``like``
    (property name, SQL ``LIKE`` pattern) or ``s_intersects`` (a shapely geometry).
    Literals are ``(kind, value)``: ``string``, ``number``, ``boolean``, ``timestamp``
    (epoch µs).
    """

    op: str
    args: tuple[Any, ...]


_COMPARISONS = ("=", "<>", "<", "<=", ">", ">=")
_FLIP = {"=": "=", "<>": "<>", "<": ">", "<=": ">=", ">": "<", ">=": "<="}


def _timestamp(text: str) -> int:
    """Epoch µs of an RFC 3339 date-time or a date (UTC)."""
    cleaned = text.strip().replace("z", "Z")
    try:
        if len(cleaned) == 10:
            moment = datetime.strptime(cleaned, "%Y-%m-%d").replace(tzinfo=timezone.utc)
        else:
            moment = datetime.fromisoformat(cleaned.replace("Z", "+00:00"))
            if moment.tzinfo is None:
                moment = moment.replace(tzinfo=timezone.utc)
    except ValueError:
        raise QueryError(f"invalid date-time {text!r}: expected RFC 3339") from None
    return calendar.timegm(moment.utctimetuple()) * 1_000_000 + moment.microsecond


def parse_datetime_interval(text: str) -> tuple[int | None, int | None]:
    """The ``datetime`` parameter as ``(start µs, end µs)``; ``None`` is an open end.

    >>> parse_datetime_interval("2024-06-12T00:00:00Z/..")
    (1718150400000000, None)
    """
    if "/" not in text:
        moment = _timestamp(text)
        return moment, moment
    first, _, second = text.partition("/")
    start = None if first in ("", "..") else _timestamp(first)
    end = None if second in ("", "..") else _timestamp(second)
    if start is None and end is None:
        raise QueryError("datetime: at least one end of the interval must be given")
    if start is not None and end is not None and start > end:
        raise QueryError("datetime: the interval's start is after its end")
    return start, end


# CQL2 text -----------------------------------------------------------------------------

_TOKEN = re.compile(
    r"""\s*(?:
        (?P<string>'(?:[^']|'')*')
      | (?P<number>-?\d+(?:\.\d+)?(?:[eE][+-]?\d+)?)
      | (?P<op><>|<=|>=|=|<|>)
      | (?P<punct>[(),])
      | (?P<quoted>"[^"]+")
      | (?P<word>[A-Za-z_][A-Za-z0-9_:.\-]*)
    )""",
    re.VERBOSE,
)
_WKT_WORDS = (
    "POINT",
    "LINESTRING",
    "POLYGON",
    "MULTIPOINT",
    "MULTILINESTRING",
    "MULTIPOLYGON",
    "GEOMETRYCOLLECTION",
)


class _TextParser:
    """Recursive descent over basic CQL2 text: or > and > not > predicate."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.position = 0

    def error(self, message: str) -> QueryError:
        return QueryError(f"invalid CQL2 filter at position {self.position}: {message}")

    def peek(self) -> tuple[str, str] | None:
        match = _TOKEN.match(self.text, self.position)
        if match is None or match.end() == self.position:
            rest = self.text[self.position :].strip()
            if rest:
                raise self.error(f"unexpected {rest[:20]!r}")
            return None
        kind = match.lastgroup
        assert kind is not None
        return kind, match.group(kind)

    def take(self) -> tuple[str, str]:
        token = self.peek()
        if token is None:
            raise self.error("unexpected end of the filter")
        match = _TOKEN.match(self.text, self.position)
        assert match is not None
        self.position = match.end()
        return token

    def keyword(self, *words: str) -> bool:
        token = self.peek()
        if token is not None and token[0] == "word" and token[1].upper() in words:
            self.take()
            return True
        return False

    def expect(self, value: str) -> None:
        token = self.take()
        if token[1] != value:
            raise self.error(f"expected {value!r}, got {token[1]!r}")

    def parse(self) -> Expression:
        expression = self.disjunction()
        if self.peek() is not None:
            raise self.error(f"unexpected {self.peek()[1]!r}")  # type: ignore[index]
        return expression

    def disjunction(self) -> Expression:
        items = [self.conjunction()]
        while self.keyword("OR"):
            items.append(self.conjunction())
        return items[0] if len(items) == 1 else Expression("or", tuple(items))

    def conjunction(self) -> Expression:
        items = [self.negation()]
        while self.keyword("AND"):
            items.append(self.negation())
        return items[0] if len(items) == 1 else Expression("and", tuple(items))

    def negation(self) -> Expression:
        if self.keyword("NOT"):
            return Expression("not", (self.negation(),))
        return self.predicate()

    def predicate(self) -> Expression:
        token = self.peek()
        if token is None:
            raise self.error("expected a predicate")
        if token == ("punct", "("):
            self.take()
            inner = self.disjunction()
            self.expect(")")
            return inner
        if token[0] == "word" and token[1].upper() == "S_INTERSECTS":
            self.take()
            self.expect("(")
            name = self.property_name()
            if name != "geometry":
                raise self.error("S_INTERSECTS applies to the geometry property")
            self.expect(",")
            geometry = self.geometry()
            self.expect(")")
            return Expression("s_intersects", (geometry,))
        left = self.operand()
        if self.keyword("IS"):
            negated = self.keyword("NOT")
            if not self.keyword("NULL"):
                raise self.error("expected NULL after IS")
            if left[0] != "property":
                raise self.error("IS NULL applies to a property")
            test = Expression("isNull", (left[1],))
            return Expression("not", (test,)) if negated else test
        token = self.take()
        if token[0] != "op":
            raise self.error(f"expected a comparison operator, got {token[1]!r}")
        right = self.operand()
        return _comparison(token[1], left, right, self.error)

    def property_name(self) -> str:
        kind, value = self.take()
        if kind == "quoted":
            return value[1:-1]
        if kind == "word":
            return value
        raise self.error(f"expected a property name, got {value!r}")

    def operand(self) -> tuple[str, Any]:
        kind, value = self.take()
        if kind == "string":
            return "literal", ("string", value[1:-1].replace("''", "'"))
        if kind == "number":
            return "literal", (
                "number",
                float(value) if "." in value or "e" in value.lower() else int(value),
            )
        if kind == "quoted":
            return "property", value[1:-1]
        if kind == "word":
            upper = value.upper()
            if upper in ("TRUE", "FALSE"):
                return "literal", ("boolean", upper == "TRUE")
            if upper in ("TIMESTAMP", "DATE"):
                self.expect("(")
                inner = self.take()
                if inner[0] != "string":
                    raise self.error(f"{upper} takes a quoted string")
                self.expect(")")
                return "literal", ("timestamp", _timestamp(inner[1][1:-1]))
            return "property", value.removeprefix("properties.")
        raise self.error(f"unexpected {value!r}")

    def geometry(self) -> BaseGeometry:
        start = self.position
        kind, word = self.take()
        if kind != "word":
            raise self.error("expected a geometry")
        upper = word.upper()
        if upper == "BBOX":
            self.expect("(")
            numbers = [self.number()]
            while self.peek() == ("punct", ","):
                self.take()
                numbers.append(self.number())
            self.expect(")")
            return _bbox_geometry(numbers)
        if upper not in _WKT_WORDS:
            raise self.error(f"unknown geometry {word!r}")
        depth = 0
        index = self.position
        while index < len(self.text):
            char = self.text[index]
            if char == "(":
                depth += 1
            elif char == ")":
                depth -= 1
                if depth == 0:
                    index += 1
                    break
            index += 1
        wkt = self.text[start:index]
        self.position = index
        try:
            geometry = shapely.from_wkt(wkt)
        except shapely.errors.GEOSException:
            raise self.error(f"invalid WKT {wkt[:40]!r}") from None
        if geometry is None or not geometry.is_valid:
            raise self.error("invalid geometry")
        return geometry

    def number(self) -> float:
        kind, value = self.take()
        if kind != "number":
            raise self.error(f"expected a number, got {value!r}")
        return float(value)


def parse_cql2_text(text: str) -> Expression:
    """A basic CQL2 text filter as an :class:`Expression`.

    >>> parse_cql2_text("eo:cloud_cover <= 30 AND platform = 'sentinel-2b'").op
    'and'
    """
    return _TextParser(text).parse()


def _comparison(op: str, left: tuple[str, Any], right: tuple[str, Any], error: Any) -> Expression:
    if left[0] == "property" and right[0] == "literal":
        return Expression(op, (left[1], right[1]))
    if left[0] == "literal" and right[0] == "property":
        return Expression(_FLIP[op], (right[1], left[1]))
    raise error("a comparison needs a property on one side and a literal on the other")


# CQL2 JSON -----------------------------------------------------------------------------


def _json_operand(value: Any) -> tuple[str, Any]:
    if isinstance(value, dict):
        if "property" in value:
            return "property", str(value["property"]).removeprefix("properties.")
        if "timestamp" in value:
            return "literal", ("timestamp", _timestamp(str(value["timestamp"])))
        if "date" in value:
            return "literal", ("timestamp", _timestamp(str(value["date"])))
        raise QueryError(f"unsupported CQL2 JSON operand {json.dumps(value)[:60]}")
    if isinstance(value, bool):
        return "literal", ("boolean", value)
    if isinstance(value, int | float):
        return "literal", ("number", value)
    if isinstance(value, str):
        return "literal", ("string", value)
    raise QueryError(f"unsupported CQL2 JSON operand {json.dumps(value)[:60]}")


def parse_cql2_json(node: Any) -> Expression:
    """A basic CQL2 JSON filter (``{"op": …, "args": […]}``) as an :class:`Expression`."""
    if not isinstance(node, dict) or "op" not in node:
        raise QueryError("a CQL2 JSON filter is an object with 'op' and 'args'")
    op = str(node["op"])
    args = node.get("args", [])
    if not isinstance(args, list):
        raise QueryError("CQL2 JSON 'args' must be an array")
    lower = op.lower()
    if lower in ("and", "or"):
        if len(args) < 2:
            raise QueryError(f"'{lower}' takes at least two arguments")
        return Expression(lower, tuple(parse_cql2_json(a) for a in args))
    if lower == "not":
        if len(args) != 1:
            raise QueryError("'not' takes one argument")
        return Expression("not", (parse_cql2_json(args[0]),))
    if op in _COMPARISONS:
        if len(args) != 2:
            raise QueryError(f"'{op}' takes two arguments")

        def error(message: str) -> QueryError:
            return QueryError(f"invalid CQL2 filter: {message}")

        return _comparison(op, _json_operand(args[0]), _json_operand(args[1]), error)
    if lower == "isnull":
        operand = _json_operand(args[0]) if len(args) == 1 else ("", None)
        if operand[0] != "property":
            raise QueryError("'isNull' takes one property")
        return Expression("isNull", (operand[1],))
    if lower == "s_intersects":
        if len(args) != 2:
            raise QueryError("'s_intersects' takes two arguments")
        first, second = args
        if first != {"property": "geometry"}:
            first, second = second, first
        if first != {"property": "geometry"}:
            raise QueryError("'s_intersects' applies to the geometry property")
        return Expression("s_intersects", (_geojson_geometry(second),))
    raise QueryError(f"unsupported CQL2 operator {op!r} (basic CQL2 and s_intersects only)")


def _bbox_geometry(numbers: Sequence[float]) -> BaseGeometry:
    if len(numbers) == 6:
        numbers = [numbers[0], numbers[1], numbers[3], numbers[4]]
    if len(numbers) != 4:
        raise QueryError("bbox: give west,south,east,north")
    west, south, east, north = numbers
    if not (-90 <= south <= north <= 90):
        raise QueryError("bbox: latitudes must be in -90..90 with south <= north")
    if west <= east:
        return shapely.box(west, south, east, north)
    # Across the antimeridian: two boxes.
    return shapely.MultiPolygon(
        [shapely.box(west, south, 180.0, north), shapely.box(-180.0, south, east, north)]
    )


def _geojson_geometry(value: Any) -> BaseGeometry:
    if isinstance(value, dict) and "bbox" in value and "type" not in value:
        return _bbox_geometry([float(v) for v in value["bbox"]])
    if not isinstance(value, dict) or "type" not in value:
        raise QueryError("expected a GeoJSON geometry")
    try:
        geometry = shapely.from_geojson(json.dumps(value))
    except (shapely.errors.GEOSException, ValueError):
        raise QueryError("invalid GeoJSON geometry") from None
    if geometry is None or geometry.is_empty or not geometry.is_valid:
        raise QueryError("invalid GeoJSON geometry")
    return geometry


# The query extension -------------------------------------------------------------------

_QUERY_OPS = {"eq": "=", "neq": "<>", "lt": "<", "lte": "<=", "gt": ">", "gte": ">="}


def _like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def _query_expression(query: Any) -> Expression:
    """The ``query`` extension (``{"eo:cloud_cover": {"lt": 15}}``) as one conjunction."""
    if not isinstance(query, dict):
        raise QueryError("query must be an object of {property: {operator: value}}")
    terms: list[Expression] = []
    for name, tests in query.items():
        prop = str(name).removeprefix("properties.")
        if not isinstance(tests, dict) or not tests:
            raise QueryError(f"query: {name!r} must map operators to values")
        for op, value in tests.items():
            if op in _QUERY_OPS:
                terms.append(Expression(_QUERY_OPS[op], (prop, _json_operand(value)[1])))
            elif op in ("startsWith", "endsWith", "contains"):
                if not isinstance(value, str):
                    raise QueryError(f"query: {op} takes a string")
                core = _like(value)
                pattern = {
                    "startsWith": f"{core}%",
                    "endsWith": f"%{core}",
                    "contains": f"%{core}%",
                }
                terms.append(Expression("like", (prop, pattern[op])))
            elif op == "in":
                if not isinstance(value, list) or not value:
                    raise QueryError("query: in takes a non-empty array")
                terms.append(Expression("in", (prop, tuple(_json_operand(v)[1] for v in value))))
            else:
                raise QueryError(f"query: unknown operator {op!r}")
    return terms[0] if len(terms) == 1 else Expression("and", tuple(terms))


# Search --------------------------------------------------------------------------------


@dataclass
class Search:
    """One item search, whatever its form (GET, POST, ``/collections/{id}/items``).

    Attributes:
        collections: collection ids, or ``None`` for all.
        ids: item ids, or ``None``.
        area: the bbox or ``intersects`` geometry.
        interval: ``datetime`` as ``(start µs, end µs)``.
        limit: page size.
        filter: ``filter`` and ``query`` combined.
        sortby: ``(field, ascending)`` pairs.
        include / exclude: the ``fields`` paths.
        token: the paging token (``next:<item id>``).
    """

    collections: list[str] | None = None
    ids: list[str] | None = None
    area: BaseGeometry | None = None
    interval: tuple[int | None, int | None] | None = None
    limit: int = 10
    filter: Expression | None = None
    sortby: list[tuple[str, bool]] = field(default_factory=list)
    include: list[str] = field(default_factory=list)
    exclude: list[str] = field(default_factory=list)
    token: str | None = None


def _limit(value: Any, default: int, maximum: int) -> int:
    if value is None or value == "":
        return default
    try:
        limit = int(value)
    except (TypeError, ValueError):
        raise QueryError(f"limit must be an integer, got {value!r}") from None
    if isinstance(value, bool) or limit < 1:
        raise QueryError("limit must be a positive integer")
    return min(limit, maximum)


def _sortby_text(text: str) -> list[tuple[str, bool]]:
    keys = []
    for part in text.split(","):
        part = part.strip()
        if not part:
            continue
        ascending = not part.startswith("-")
        keys.append((part.lstrip("+-").strip().removeprefix("properties."), ascending))
    return keys


def _fields_text(text: str) -> tuple[list[str], list[str]]:
    include, exclude = [], []
    for part in text.split(","):
        part = part.strip()
        if part.startswith("-"):
            exclude.append(part[1:])
        elif part:
            include.append(part.lstrip("+"))
    return include, exclude


def _filter(value: Any, language: str | None, default: str, crs: str | None) -> Expression | None:
    if crs not in (None, "", _CRS84):
        raise QueryError(f"filter-crs {crs!r} is not supported: use {_CRS84}")
    if value is None or value == "":
        return None
    language = language or default
    if language == "cql2-text":
        if not isinstance(value, str):
            raise QueryError("a cql2-text filter is a string")
        return parse_cql2_text(value)
    if language == "cql2-json":
        if isinstance(value, str):
            try:
                value = json.loads(value)
            except ValueError:
                raise QueryError("the cql2-json filter is not valid JSON") from None
        return parse_cql2_json(value)
    raise QueryError(f"filter-lang {language!r} is not supported (cql2-text, cql2-json)")


def _combine(*parts: Expression | None) -> Expression | None:
    present = [p for p in parts if p is not None]
    if not present:
        return None
    return present[0] if len(present) == 1 else Expression("and", tuple(present))


def search_from_query(
    pairs: Sequence[tuple[str, str]], default_limit: int, max_limit: int
) -> Search:
    """A search from GET parameters (``collections=a,b&bbox=…&filter=…``)."""
    values: dict[str, str] = {}
    for name, value in pairs:
        values[name] = value
    search = Search(limit=_limit(values.get("limit"), default_limit, max_limit))
    if values.get("collections"):
        search.collections = [c for c in values["collections"].split(",") if c]
    if values.get("ids"):
        search.ids = [i for i in values["ids"].split(",") if i]
    if values.get("bbox"):
        try:
            numbers = [float(v) for v in values["bbox"].split(",")]
        except ValueError:
            raise QueryError("bbox must be comma-separated numbers") from None
        search.area = _bbox_geometry(numbers)
    if values.get("intersects"):
        try:
            search.area = _geojson_geometry(json.loads(values["intersects"]))
        except ValueError:
            raise QueryError("intersects must be a GeoJSON geometry") from None
    if values.get("datetime"):
        search.interval = parse_datetime_interval(values["datetime"])
    query = None
    if values.get("query"):
        try:
            query = _query_expression(json.loads(values["query"]))
        except ValueError as error:
            if isinstance(error, QueryError):
                raise
            raise QueryError("query must be a JSON object") from None
    search.filter = _combine(
        _filter(
            values.get("filter"),
            values.get("filter-lang"),
            "cql2-text",
            values.get("filter-crs"),
        ),
        query,
    )
    if values.get("sortby"):
        search.sortby = _sortby_text(values["sortby"])
    if values.get("fields"):
        search.include, search.exclude = _fields_text(values["fields"])
    search.token = values.get("token") or None
    return search


def search_from_body(body: Mapping[str, Any], default_limit: int, max_limit: int) -> Search:
    """A search from a POST body (``{"collections": […], "filter": {…}, …}``)."""
    search = Search(limit=_limit(body.get("limit"), default_limit, max_limit))
    for name in ("collections", "ids"):
        value = body.get(name)
        if value is None:
            continue
        if isinstance(value, str):
            value = [value]
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise QueryError(f"{name} must be an array of strings")
        setattr(search, name, value)
    if body.get("bbox") is not None:
        bbox = body["bbox"]
        if not isinstance(bbox, list) or not all(isinstance(v, int | float) for v in bbox):
            raise QueryError("bbox must be an array of numbers")
        search.area = _bbox_geometry([float(v) for v in bbox])
    if body.get("intersects") is not None:
        if search.area is not None:
            raise QueryError("give bbox or intersects, not both")
        search.area = _geojson_geometry(body["intersects"])
    if body.get("datetime") is not None:
        if not isinstance(body["datetime"], str):
            raise QueryError("datetime must be a string")
        search.interval = parse_datetime_interval(body["datetime"])
    query = _query_expression(body["query"]) if body.get("query") is not None else None
    search.filter = _combine(
        _filter(body.get("filter"), body.get("filter-lang"), "cql2-json", body.get("filter-crs")),
        query,
    )
    sortby = body.get("sortby")
    if isinstance(sortby, str):
        search.sortby = _sortby_text(sortby)
    elif sortby is not None:
        if not isinstance(sortby, list):
            raise QueryError("sortby must be an array of {field, direction}")
        for key in sortby:
            if not isinstance(key, dict) or not isinstance(key.get("field"), str):
                raise QueryError("sortby entries are {field, direction}")
            direction = str(key.get("direction", "asc")).lower()
            if direction not in ("asc", "desc"):
                raise QueryError("sortby direction must be asc or desc")
            search.sortby.append((key["field"].removeprefix("properties."), direction == "asc"))
    fields = body.get("fields")
    if isinstance(fields, dict):
        for name in ("include", "exclude"):
            value = fields.get(name) or []
            if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
                raise QueryError(f"fields.{name} must be an array of strings")
            setattr(search, name, list(value))
    elif fields is not None:
        raise QueryError("fields must be {include: […], exclude: […]}")
    token = body.get("token")
    if token is not None and not isinstance(token, str):
        raise QueryError("token must be a string")
    search.token = token
    return search


# SQL -----------------------------------------------------------------------------------


def _collection_sql() -> str:
    cases = " ".join(
        f"WHEN p.collection = '{c.odata_collection}' AND p.product_type IN "
        f"({', '.join(repr(t) for t in c.product_types)}) THEN '{c.id}'"
        for c in COLLECTIONS
    )
    return f"(CASE {cases} END)"


#: Properties a filter or sort may name: SQL over ``p`` and the kind of its values.
PROPERTIES: dict[str, tuple[str, str]] = {
    "id": ("substr(p.name, 1, length(p.name) - 5)", "string"),
    "collection": (_collection_sql(), "string"),
    "datetime": ("p.start_us", "timestamp"),
    "start_datetime": ("p.start_us", "timestamp"),
    "end_datetime": ("p.end_us", "timestamp"),
    "created": ("p.origin_us", "timestamp"),
    "eopf:origin_datetime": ("p.origin_us", "timestamp"),
    "updated": ("p.modification_us", "timestamp"),
    "published": ("p.publication_us", "timestamp"),
    "processing:datetime": ("p.processing_us", "timestamp"),
    "platform": ("('sentinel-' || substr(p.collection, 10) || lower(p.platform))", "string"),
    "constellation": ("lower(p.collection)", "string"),
    "eo:cloud_cover": ("round(p.cloud_cover, 2)", "number"),
    "sat:relative_orbit": ("p.relative_orbit", "number"),
    "sat:absolute_orbit": ("p.orbit", "number"),
    "sat:orbit_state": ("lower(p.orbit_direction)", "string"),
    "product:type": ("p.product_type", "string"),
    "grid:code": ("(CASE WHEN p.tile IS NOT NULL THEN 'MGRS-' || p.tile END)", "string"),
    "processing:version": ("p.baseline", "string"),
    "sar:instrument_mode": ("(CASE WHEN p.collection = 'SENTINEL-1' THEN p.mode END)", "string"),
    "eopf:instrument_mode": (
        "(CASE WHEN p.collection = 'SENTINEL-2' THEN p.mode END)",
        "string",
    ),
    "product:timeliness_category": (
        "(CASE WHEN p.collection = 'SENTINEL-1' THEN p.timeliness ELSE 'NRT' END)",
        "string",
    ),
}
_NULL_SORT = {"string": "''", "number": "-1e308", "timestamp": "-9000000000000000000"}
# NOT NULL columns sort as they are (and an index on them can serve the order).
_NEVER_NULL = {
    "p.start_us",
    "p.end_us",
    "p.origin_us",
    "p.modification_us",
    "p.publication_us",
    "p.processing_us",
    "p.product_type",
}


def _literal(name: str, kind: str, literal: tuple[str, Any]) -> Any:
    literal_kind, value = literal
    if kind == "timestamp":
        if literal_kind == "timestamp":
            return value
        if literal_kind == "string":
            return _timestamp(value)
    elif kind == literal_kind and kind in ("number", "string"):
        return value
    raise QueryError(f"{name} cannot be compared with {literal_kind} {value!r}")


def _expression_sql(node: Expression, pinned: str | None) -> tuple[str, list[Any]]:
    op, args = node.op, node.args
    if op in ("and", "or"):
        parts = [_expression_sql(a, pinned) for a in args]
        return (
            f" {op.upper()} ".join(f"({sql})" for sql, _ in parts),
            [v for _, values in parts for v in values],
        )
    if op == "not":
        sql, values = _expression_sql(args[0], pinned)
        # NULL comparisons are unknown; NOT keeps them out, as SQL and pgstac do.
        return f"NOT ({sql})", values
    if op == "s_intersects":
        return _area_sql(args[0], pinned)
    name = args[0]
    known = PROPERTIES.get(name)
    if op == "isNull":
        return (f"({known[0]}) IS NULL", []) if known else ("1", [])
    if known is None:
        # An unknown property is null (pgstac reads it from the item's JSON): the test
        # is unknown, so neither it nor its negation matches.
        return "NULL", []
    sql, kind = known
    if op in _COMPARISONS:
        value = _literal(name, kind, args[1])
        return f"({sql}) {'!=' if op == '<>' else op} ?", [value]
    if op == "like":
        if kind != "string":
            raise QueryError(f"{name} is not a string")
        return f"({sql}) LIKE ? ESCAPE '\\'", [args[1]]
    values = [_literal(name, kind, v) for v in args[1]]
    return f"({sql}) IN ({', '.join('?' for _ in values)})", values


def _area_sql(area: BaseGeometry, pinned: str | None) -> tuple[str, list[Any]]:
    """The footprint test, through the OData compiler (R*Tree box, then exact test)."""
    call = Call(
        "OData.CSC.Intersects",
        (NamedArgument("area", Literal("geography", area, "", 0), 0),),
        0,
    )
    node: Any = call
    if pinned is not None:
        node = And(
            (
                Comparison(
                    "eq", Path(("Collection", "Name"), 0), Literal("string", pinned, "", 0), 0
                ),
                call,
            )
        )
    compiled = compile_filter(node)
    return compiled.where, list(compiled.params)


@dataclass(frozen=True)
class CompiledSearch:
    """SQL for one page: WHERE, ORDER BY, and the sort expressions for the keyset."""

    where: str
    params: tuple[Any, ...]
    order: str
    keys: tuple[tuple[str, bool], ...]


def compile_search(search: Search) -> CompiledSearch:
    """The SQL of a search (without the keyset condition of a ``next`` token)."""
    terms: list[str] = []
    params: list[Any] = []
    collections: list[StacCollection]
    if search.collections is None:
        collections = list(COLLECTIONS)
    else:
        collections = [c for c in (by_id(i) for i in search.collections) if c is not None]
    if not collections:
        return CompiledSearch("0", (), "p.pk", ())
    scope = []
    for collection in collections:
        marks = ", ".join("?" for _ in collection.product_types)
        scope.append(f"(p.collection = ? AND p.product_type IN ({marks}))")
        params += [collection.odata_collection, *collection.product_types]
    terms.append(" OR ".join(scope))
    odata_collections = {c.odata_collection for c in collections}
    pinned = next(iter(odata_collections)) if len(odata_collections) == 1 else None
    if search.ids is not None:
        marks = ", ".join("?" for _ in search.ids) or "NULL"
        terms.append(f"p.name IN ({marks})")
        params += [f"{i}.SAFE" for i in search.ids]
    if search.interval is not None:
        start, end = search.interval
        if start is not None:
            terms.append("p.end_us >= ?")
            params.append(start)
        if end is not None:
            terms.append("p.start_us <= ?")
            params.append(end)
    if search.area is not None:
        sql, values = _area_sql(search.area, pinned)
        terms.append(sql)
        params += values
    if search.filter is not None:
        sql, values = _expression_sql(search.filter, pinned)
        terms.append(sql)
        params += values
    keys: list[tuple[str, bool]] = []
    for name, ascending in search.sortby or [("datetime", False)]:
        known = PROPERTIES.get(name)
        if known is None:
            continue
        sql = (
            known[0] if known[0] in _NEVER_NULL else f"COALESCE({known[0]}, {_NULL_SORT[known[1]]})"
        )
        keys.append((sql, ascending))
    last = keys[-1][1] if keys else False
    keys.append(("p.name", last))
    order = ", ".join(f"{sql} {'ASC' if up else 'DESC'}" for sql, up in keys)
    where = " AND ".join(f"({t})" for t in terms)
    return CompiledSearch(where, tuple(params), order, tuple(keys))


def after_row(keys: Sequence[tuple[str, bool]], name: str) -> tuple[str, list[Any]]:
    """WHERE clause for "strictly after the product ``name``" in the sort order ``keys``.

    Each key of that product is read by a scalar subquery (its alias ``p`` shadows the
    outer one), so the clause needs no round trip and stays exact for any sort.
    """
    alternatives: list[str] = []
    params: list[Any] = []
    for index, (sql, ascending) in enumerate(keys):
        terms = []
        for earlier, _ in keys[:index]:
            # Sort expressions are fixed SQL from PROPERTIES; the name is a parameter.
            terms.append(f"{earlier} = (SELECT {earlier} FROM products p WHERE p.name = ?)")  # noqa: S608
            params.append(name)
        terms.append(
            f"{sql} {'>' if ascending else '<'} (SELECT {sql} FROM products p WHERE p.name = ?)"  # noqa: S608
        )
        params.append(name)
        alternatives.append("(" + " AND ".join(terms) + ")")
    return "(" + " OR ".join(alternatives) + ")", params


# Fields --------------------------------------------------------------------------------


def _copy_path(source: Mapping[str, Any], target: dict[str, Any], path: list[str]) -> None:
    head = path[0]
    if head not in source:
        return
    if len(path) == 1:
        target[head] = source[head]
        return
    inner = source[head]
    if not isinstance(inner, Mapping):
        return
    branch = target.setdefault(head, {})
    if isinstance(branch, dict):
        _copy_path(inner, branch, path[1:])


def _delete_path(target: dict[str, Any], path: list[str]) -> None:
    head = path[0]
    if head not in target:
        return
    if len(path) == 1:
        del target[head]
        return
    inner = target[head]
    if isinstance(inner, dict):
        _delete_path(inner, path[1:])


def _split(path: str) -> list[str]:
    # Property names contain ':' but never '.', so dots separate levels.
    return [p for p in path.split(".") if p]


def apply_fields(
    item: dict[str, Any], include: Sequence[str], exclude: Sequence[str]
) -> dict[str, Any]:
    """The item trimmed by the ``fields`` extension (see the module docstring).

    >>> apply_fields({"type": "Feature", "id": "a", "collection": "c", "bbox": [0],
    ...               "properties": {"datetime": "t", "x": 1}}, ["properties.datetime"], [])
    {'type': 'Feature', 'id': 'a', 'collection': 'c', 'properties': {'datetime': 't'}}
    """
    if not include and not exclude:
        return item
    if include:
        trimmed: dict[str, Any] = {k: item[k] for k in ("type", "id", "collection") if k in item}
        for path in include:
            parts = _split(path)
            if parts:
                _copy_path(item, trimmed, parts)
    else:
        trimmed = item
    for path in exclude:
        if path in include:
            continue
        parts = _split(path)
        if parts:
            _delete_path(trimmed, parts)
    return trimmed
