"""Parses an OData ``$filter`` into a small syntax tree (grammar: ``filter.lark``).

Lexical checks happen here: literals become typed values (date-times in epoch
microseconds, geographies as validated shapely geometries), and anything CDSE rejects at
this level is a :class:`FilterError` naming the problem and its position (0-based offset
into the decoded filter text). Meaning (which properties and functions exist) is checked
by :mod:`.sql`, which also reports positions.

Date-time literals accept every variant of cdse-api.md §3.5: ``…T00:00:00.000Z``, any
number of fractional digits, offsets (``-04:00``), no zone (UTC), a date alone, and the
same inside quotes; the OData v2 form ``datetime'…'`` is an error, as on CDSE.
"""

from __future__ import annotations

import calendar
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache
from importlib import resources
from typing import cast

import shapely
from lark import Lark, Token, Transformer, v_args
from lark.exceptions import UnexpectedCharacters, UnexpectedEOF, UnexpectedInput, UnexpectedToken
from shapely.geometry import MultiPolygon, Point, Polygon
from shapely.geometry.base import BaseGeometry

__all__ = [
    "And",
    "AnyLambda",
    "Call",
    "Comparison",
    "FilterError",
    "Literal",
    "NamedArgument",
    "Node",
    "Not",
    "Or",
    "Path",
    "parse_datetime",
    "parse_filter",
]


class FilterError(ValueError):
    """A ``$filter`` CDSE would answer with HTTP 400.

    Attributes:
        message: what is wrong.
        position: 0-based character offset in the decoded filter text.
    """

    def __init__(self, message: str, position: int) -> None:
        super().__init__(f"Invalid $filter at position {position}: {message}")
        self.message = message
        self.position = position


@dataclass(frozen=True)
class Path:
    """A property path such as ``Collection/Name`` or ``att/OData.CSC.StringAttribute/Value``."""

    segments: tuple[str, ...]
    position: int

    @property
    def text(self) -> str:
        """The path as written."""
        return "/".join(self.segments)


@dataclass(frozen=True)
class Literal:
    """A literal: ``kind`` is ``string``, ``number``, ``datetime``, ``boolean`` or
    ``geography``; ``value`` is str, int/float, epoch µs, bool or a shapely geometry."""

    kind: str
    value: object
    text: str
    position: int


Operand = Path | Literal


@dataclass(frozen=True)
class NamedArgument:
    """``name=value`` inside a call (``area=geography'…'``, ``location=Footprint``)."""

    name: str
    value: Operand
    position: int


@dataclass(frozen=True)
class Comparison:
    """``left op right`` with op one of eq, ne, lt, le, gt, ge."""

    op: str
    left: Operand
    right: Operand
    position: int


@dataclass(frozen=True)
class Call:
    """A boolean function call."""

    name: str
    args: tuple[Operand | NamedArgument, ...]
    position: int


@dataclass(frozen=True)
class AnyLambda:
    """``<path>/any(<variable>:<body>)``."""

    path: Path
    variable: str
    body: Node
    position: int


@dataclass(frozen=True)
class Not:
    """Negation."""

    item: Node
    position: int


@dataclass(frozen=True)
class And:
    """Conjunction (flattened)."""

    items: tuple[Node, ...]


@dataclass(frozen=True)
class Or:
    """Disjunction (flattened)."""

    items: tuple[Node, ...]


Node = Comparison | Call | AnyLambda | Not | And | Or

_TERMINAL_TEXT = {
    "RPAR": "')'",
    "LPAR": "'('",
    "COMMA": "','",
    "SLASH": "'/'",
    "COLON": "':'",
    "EQUAL": "'='",
    "OR": "'or'",
    "AND": "'and'",
    "NOT": "'not'",
    "ANY": "'any'",
    "COMPARE": "an operator (eq, ne, lt, le, gt, ge)",
    "NAME": "a property or function name",
    "STRING": "a string literal",
    "NUMBER": "a number",
    "DATETIME": "a date-time",
    "TRUE": "true",
    "FALSE": "false",
    "TYPED_STRING": "a geography literal",
    "$END": "the end of the filter",
    "INTEGER": "an integer",
    "SRID": "'SRID'",
    "POINT": "'POINT'",
    "POLYGON": "'POLYGON'",
    "MULTIPOLYGON": "'MULTIPOLYGON'",
    "SEMICOLON": "';'",
}


def _expected(names: Iterable[object]) -> str:
    texts = sorted({_TERMINAL_TEXT.get(str(n), str(n).lower()) for n in names})
    if not texts:
        return "nothing more"
    if len(texts) == 1:
        return texts[0]
    return ", ".join(texts[:-1]) + " or " + texts[-1]


def _syntax_error(error: UnexpectedInput, text: str, offset: int = 0) -> FilterError:
    if isinstance(error, UnexpectedEOF):
        return FilterError(
            f"unexpected end of filter, expected {_expected(error.expected)}", offset + len(text)
        )
    if isinstance(error, UnexpectedToken):
        token = error.token
        position = token.start_pos if token.start_pos is not None else len(text)
        if token.type == "$END":
            return FilterError(
                f"unexpected end of filter, expected {_expected(error.expected)}",
                offset + len(text),
            )
        return FilterError(
            f"expected {_expected(error.expected)}, got {str(token)!r}", offset + position
        )
    if isinstance(error, UnexpectedCharacters):
        at = error.pos_in_stream or 0
        allowed = getattr(error, "allowed", None)
        hint = f", expected {_expected(allowed)}" if allowed and len(allowed) <= 4 else ""
        return FilterError(f"unexpected character {text[at]!r}{hint}", offset + at)
    return FilterError(str(error), offset)


def parse_datetime(text: str) -> int:
    """Epoch microseconds of a CDSE date-time literal; ``ValueError`` if malformed.

    No zone means UTC (CDSE since 2024-05-28); digits beyond microseconds are dropped.

    >>> parse_datetime("2022-05-03T00:00:00.000Z") == parse_datetime("2022-05-03")
    True
    >>> parse_datetime("2022-05-03T00:00:00.000-04:00") - parse_datetime("2022-05-03T04:00:00Z")
    0
    >>> parse_datetime("2022-05-03T00:00:00.1234567")
    1651536000123456
    """
    if len(text) < 10 or text[4] != "-" or text[7] != "-":
        raise ValueError(f"not a date-time: {text!r}")
    date = [_digits(text[0:4]), _digits(text[5:7]), _digits(text[8:10])]
    clock = [0, 0, 0]
    micro = 0
    offset_minutes = 0
    rest = text[10:]
    if rest:
        if rest[0] != "T":
            raise ValueError(f"not a date-time: {text!r}")
        rest = rest[1:]
        if rest.endswith("Z"):
            rest = rest[:-1]
        else:
            sign_at = max(rest.rfind("+"), rest.rfind("-"))
            if sign_at >= 0:
                zone = rest[sign_at + 1 :]
                if len(zone) != 5 or zone[2] != ":":
                    raise ValueError(f"bad zone offset in {text!r}")
                minutes = _digits(zone[:2]) * 60 + _digits(zone[3:])
                offset_minutes = minutes if rest[sign_at] == "+" else -minutes
                rest = rest[:sign_at]
        seconds_text = ""
        parts = rest.split(":")
        if len(parts) not in (2, 3):
            raise ValueError(f"bad time in {text!r}")
        clock[0], clock[1] = _digits(parts[0]), _digits(parts[1])
        if len(parts) == 3:
            seconds_text, _, fraction = parts[2].partition(".")
            clock[2] = _digits(seconds_text)
            if "." in parts[2]:
                micro = int((_digits_text(fraction) + "000000")[:6])
    moment = datetime(date[0], date[1], date[2], clock[0], clock[1], clock[2], micro)
    seconds = calendar.timegm(moment.timetuple()) - offset_minutes * 60
    return seconds * 1_000_000 + micro


def _digits_text(text: str) -> str:
    if not text or not text.isascii() or not text.isdigit():
        raise ValueError(f"expected digits, got {text!r}")
    return text


def _digits(text: str) -> int:
    return int(_digits_text(text))


# ------------------------------------------------------------------------ geography


@lru_cache(maxsize=1)
def _wkt_parser() -> Lark:
    grammar = resources.files(__package__).joinpath("wkt.lark").read_text(encoding="utf-8")
    return Lark(grammar, parser="lalr", maybe_placeholders=False)


def _coordinate(node: object) -> tuple[float, float, int]:
    x_token, y_token = node.children  # type: ignore[attr-defined]
    return float(x_token), float(y_token), int(x_token.start_pos)


def _ring(node: object, offset: int) -> list[tuple[float, float]]:
    lpar, *coordinate_nodes = node.children  # type: ignore[attr-defined]
    assert isinstance(lpar, Token)
    points = [_coordinate(c) for c in coordinate_nodes]
    for lon, lat, at in points:
        if not (-180.0 <= lon <= 180.0 and -90.0 <= lat <= 90.0):
            raise FilterError(
                f"coordinate ({lon:g} {lat:g}) is outside lon -180..180, lat -90..90 "
                "(EPSG:4326 takes longitude first)",
                offset + at,
            )
    position = offset + (lpar.start_pos or 0)
    if len(points) < 4:
        raise FilterError("a polygon ring needs at least 4 points", position)
    if points[0][:2] != points[-1][:2]:
        raise FilterError("polygon ring is not closed (first and last points differ)", position)
    return [(lon, lat) for lon, lat, _ in points]


def _polygon(body: object, offset: int) -> Polygon:
    rings = [_ring(r, offset) for r in body.children]  # type: ignore[attr-defined]
    return Polygon(rings[0], rings[1:])


def parse_geography(text: str, offset: int) -> BaseGeometry:
    """The geometry of a geography literal body (``SRID=4326;POLYGON ((…))``); ``offset``
    is where the body starts in the filter, for error positions."""
    try:
        tree = _wkt_parser().parse(text)
    except UnexpectedInput as error:
        raise _syntax_error(error, text, offset) from None
    children = tree.children
    if len(children) == 2:
        srid = children[0].children[1]  # type: ignore[union-attr]
        assert isinstance(srid, Token)
        if str(srid) != "4326":
            raise FilterError(
                f"SRID {srid} is not supported, use SRID=4326", offset + (srid.start_pos or 0)
            )
    shape = children[-1]
    kind = shape.data  # type: ignore[union-attr]
    geometry: BaseGeometry
    if kind == "point":
        lon, lat, at = _coordinate(shape.children[1])  # type: ignore[union-attr]
        if not (-180.0 <= lon <= 180.0 and -90.0 <= lat <= 90.0):
            raise FilterError(f"point ({lon:g} {lat:g}) is outside lon/lat bounds", offset + at)
        geometry = Point(lon, lat)
    elif kind == "polygon":
        geometry = _polygon(shape.children[1], offset)  # type: ignore[union-attr]
    else:
        bodies = shape.children[1:]  # type: ignore[union-attr]
        geometry = MultiPolygon([_polygon(b, offset) for b in bodies])
    if not geometry.is_valid:
        # CDSE validates query geometries with Shapely too (cdse-api.md §3.5).
        reason = shapely.is_valid_reason(geometry)
        raise FilterError(f"invalid geometry: {reason}", offset)
    return geometry


# --------------------------------------------------------------------------- filter


@lru_cache(maxsize=1)
def _filter_parser() -> Lark:
    grammar = resources.files(__package__).joinpath("filter.lark").read_text(encoding="utf-8")
    return Lark(grammar, parser="lalr", transformer=_ToTree(), maybe_placeholders=False)


def _unquote(text: str) -> str:
    # OData escapes a quote inside a string by doubling it.
    return text[1:-1].replace("''", "'")


@v_args(inline=True)
class _ToTree(Transformer[Token, Node]):
    """Builds the syntax tree while parsing (no per-parse state: shared across threads)."""

    def disjunction(self, left: Node, _op: Token, right: Node) -> Node:
        items = (*left.items, right) if isinstance(left, Or) else (left, right)
        return Or(items)

    def conjunction(self, left: Node, _op: Token, right: Node) -> Node:
        items = (*left.items, right) if isinstance(left, And) else (left, right)
        return And(items)

    def negation(self, op: Token, item: Node) -> Node:
        return Not(item, int(op.start_pos or 0))

    def group(self, _lpar: Token, item: Node, _rpar: Token) -> Node:
        return item

    def comparison(self, left: Operand, op: Token, right: Operand) -> Node:
        return Comparison(str(op), left, right, left.position)

    def call(self, name: Token, *rest: object) -> Node:
        args = tuple(a for a in rest if isinstance(a, (Path, Literal, NamedArgument)))
        return Call(str(name), args, int(name.start_pos or 0))

    def named_argument(self, name: Token, _eq: Token, value: Operand) -> NamedArgument:
        return NamedArgument(str(name), value, int(name.start_pos or 0))

    def lambda_any(
        self,
        path: Path,
        _slash: Token,
        _any: Token,
        _lpar: Token,
        variable: Token,
        _colon: Token,
        body: Node,
        _rpar: Token,
    ) -> Node:
        return AnyLambda(path, str(variable), body, path.position)

    def path(self, *parts: object) -> Path:
        if isinstance(parts[0], Path):
            head, _slash, name = parts
            assert isinstance(head, Path) and isinstance(name, Token)
            return Path((*head.segments, str(name)), head.position)
        token = parts[0]
        assert isinstance(token, Token)
        return Path((str(token),), int(token.start_pos or 0))

    def literal(self, token: Token) -> Literal:
        text = str(token)
        position = int(token.start_pos or 0)
        kind = token.type
        if kind == "STRING":
            return Literal("string", _unquote(text), text, position)
        if kind == "NUMBER":
            is_float = any(c in text for c in ".eE")
            return Literal("number", float(text) if is_float else int(text), text, position)
        if kind == "DATETIME":
            try:
                return Literal("datetime", parse_datetime(text), text, position)
            except ValueError as error:
                raise FilterError(f"invalid date-time {text!r}: {error}", position) from None
        if kind in {"TRUE", "FALSE"}:
            return Literal("boolean", kind == "TRUE", text, position)
        prefix, _, _ = text.partition("'")
        if prefix.lower() != "geography":
            raise FilterError(
                f"typed literal {prefix}'…' is not supported; write date-times unquoted "
                "(2022-05-03T00:00:00.000Z)"
                if prefix.lower() == "datetime"
                else f"typed literal {prefix}'…' is not supported",
                position,
            )
        body_at = position + len(prefix) + 1
        geometry = parse_geography(_unquote(text[len(prefix) :]), body_at)
        return Literal("geography", geometry, text, position)


def parse_filter(text: str) -> Node:
    """The syntax tree of a ``$filter`` value (already URL-decoded).

    Raises:
        FilterError: malformed text, with the position of the problem.

    >>> parse_filter("Online eq true and not contains(Name,'_COG')")  # doctest: +ELLIPSIS
    And(items=(Comparison(op='eq', left=Path(segments=('Online',), ...
    """
    try:
        return cast(Node, _filter_parser().parse(text))
    except UnexpectedInput as error:
        raise _syntax_error(error, text) from None
