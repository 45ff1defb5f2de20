"""Parse and render OData ``$filter`` expressions, the language of CDSE catalogue searches.

A pasted Copernicus Browser URL carries its search as a ``$filter`` expression
(cdse-api.md §3.5, §4). :func:`parse_filter` turns the text into a small tree of frozen
dataclasses; :func:`render_expression` writes a tree back as canonical text, so that
``parse_filter(render_expression(e)) == e`` for every tree the parser produces.

The grammar (``filter.lark``) covers what the catalogue documents and the browser sends:
``and``/``or``/``not`` (also ``not contains(...)`` without parentheses), any nesting,
``eq ne lt le gt ge``, function calls (``contains``, ``startswith``, ``endswith``,
``OData.CSC.Intersects(area=geography'SRID=4326;POLYGON ((...))')`` with POINT, POLYGON,
MULTIPOLYGON...), typed attribute lambdas
(``Attributes/OData.CSC.DoubleAttribute/any(att:att/Name eq 'cloudCover' and
att/OData.CSC.DoubleAttribute/Value le 40)``) and every date literal form: date only, no
zone (UTC since 2024-05-28), ``Z``, ``±hh:mm``, 0 to 6 fraction digits.

Literals are stored by value, not spelling: ``2023-01-01T00:00:00.000Z`` and
``2023-01-01T00:00:00.000000Z`` give equal trees, as do ``30`` and ``30.0``, and
``POLYGON((1 2,...))`` and ``POLYGON ((1 2, ...))``. Trees therefore compare by meaning,
which is what the browser-URL mapping relies on.

Example:
    >>> expression = parse_filter("Collection/Name eq 'SENTINEL-2' and Online eq true")
    >>> conjuncts(expression)[1]
    Compare(operator='eq', left=Member(path=('Online',)), right=BooleanLiteral(value=True))
    >>> render_expression(expression)
    "Collection/Name eq 'SENTINEL-2' and Online eq true"
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from functools import cache
from typing import Any, Literal, TypeAlias

from lark import Lark, Token, Tree
from lark.exceptions import UnexpectedCharacters, UnexpectedInput, UnexpectedToken

from sentinel_fetch.errors import FilterSyntaxError

__all__ = [
    "GEOMETRY_TYPES",
    "UTC",
    "And",
    "BooleanLiteral",
    "Compare",
    "ComparisonOperator",
    "DateTimeLiteral",
    "Expression",
    "FunctionCall",
    "Geography",
    "Lambda",
    "Member",
    "NamedArgument",
    "Not",
    "NullLiteral",
    "NumberLiteral",
    "Or",
    "StringLiteral",
    "conjoin",
    "conjuncts",
    "disjoin",
    "find_placeholder",
    "format_datetime",
    "format_number",
    "parse_datetime",
    "parse_filter",
    "quote_string",
    "render_expression",
]

UTC = timezone.utc

#: Comparison operators of OData; the catalogue documents all but ``ne`` (the browser has it).
ComparisonOperator = Literal["eq", "ne", "lt", "le", "gt", "ge"]

#: WKT geometry types a geography literal may hold. The catalogue documents POINT,
#: POLYGON and MULTIPOLYGON; the others parse so the server can be the judge.
GEOMETRY_TYPES = (
    "POINT",
    "LINESTRING",
    "POLYGON",
    "MULTIPOINT",
    "MULTILINESTRING",
    "MULTIPOLYGON",
)
# How deeply coordinates nest below the type name: POINT (x y) is one position.
_GEOMETRY_DEPTH = {
    "POINT": 0,
    "LINESTRING": 1,
    "MULTIPOINT": 1,
    "POLYGON": 2,
    "MULTILINESTRING": 2,
    "MULTIPOLYGON": 3,
}
_DIMENSION_TAGS = ("Z", "M", "ZM")


@dataclass(frozen=True)
class StringLiteral:
    """A quoted string, unescaped (``'it''s'`` holds ``it's``)."""

    value: str


@dataclass(frozen=True)
class NumberLiteral:
    """An integer or decimal number; ``30`` and ``30.0`` compare equal."""

    value: int | float


@dataclass(frozen=True)
class BooleanLiteral:
    """``true`` or ``false``."""

    value: bool


@dataclass(frozen=True)
class NullLiteral:
    """``null``."""


@dataclass(frozen=True)
class DateTimeLiteral:
    """An unquoted date/time, held as an aware UTC datetime (microsecond precision)."""

    value: datetime


@dataclass(frozen=True)
class Geography:
    """A ``geography'SRID=4326;<WKT>'`` literal, held as coordinates, not text.

    Attributes:
        geometry_type: upper-case WKT type name (``POLYGON``).
        coordinates: nested tuples of floats: a position for POINT, a tuple of positions
            for LINESTRING and MULTIPOINT, rings for POLYGON, polygons for MULTIPOLYGON;
            ``()`` for an EMPTY geometry.
        srid: the ``SRID=`` prefix, or ``None`` when the literal has none.
        dimension: ``""``, or the WKT dimension tag ``Z``, ``M`` or ``ZM``.
    """

    geometry_type: str
    coordinates: tuple[Any, ...]
    srid: int | None = 4326
    dimension: str = ""

    @property
    def wkt(self) -> str:
        """The geometry as WKT, in the spelling the browser uses (``POLYGON ((x y, ...))``).

        Example:
            >>> Geography("POLYGON", (((0.0, 0.0), (1.5, 0.0), (0.0, 2.0), (0.0, 0.0)),)).wkt
            'POLYGON ((0 0, 1.5 0, 0 2, 0 0))'
        """
        head = (
            f"{self.geometry_type} {self.dimension} "
            if self.dimension
            else f"{self.geometry_type} "
        )
        if not self.coordinates:
            return head + "EMPTY"
        return head + _wkt_coordinates(self.coordinates, _GEOMETRY_DEPTH[self.geometry_type])

    @property
    def text(self) -> str:
        """The literal as it appears in a filter: ``geography'SRID=4326;...'``."""
        prefix = "" if self.srid is None else f"SRID={self.srid};"
        return f"geography'{prefix}{self.wkt}'"


@dataclass(frozen=True)
class Member:
    """A property path such as ``Collection/Name`` or ``att/OData.CSC.DoubleAttribute/Value``."""

    path: tuple[str, ...]


@dataclass(frozen=True)
class NamedArgument:
    """A ``name=value`` function argument (``area=geography'...'``)."""

    name: str
    value: Expression


@dataclass(frozen=True)
class FunctionCall:
    """A function call such as ``contains(Name,'L2A')``."""

    name: str
    arguments: tuple[Expression | NamedArgument, ...]


@dataclass(frozen=True)
class Lambda:
    """A lambda over a collection: ``Attributes/OData.CSC.StringAttribute/any(att:...)``."""

    path: tuple[str, ...]
    operator: Literal["any", "all"]
    variable: str
    predicate: Expression


@dataclass(frozen=True)
class Compare:
    """A comparison ``left operator right``."""

    operator: ComparisonOperator
    left: Expression
    right: Expression


@dataclass(frozen=True)
class Not:
    """``not operand``."""

    operand: Expression


@dataclass(frozen=True)
class And:
    """Two or more operands joined by ``and`` (nested ``and`` is flattened)."""

    operands: tuple[Expression, ...]


@dataclass(frozen=True)
class Or:
    """Two or more operands joined by ``or`` (nested ``or`` is flattened)."""

    operands: tuple[Expression, ...]


#: Any node of a filter tree.
Expression: TypeAlias = (
    StringLiteral
    | NumberLiteral
    | BooleanLiteral
    | NullLiteral
    | DateTimeLiteral
    | Geography
    | Member
    | FunctionCall
    | Lambda
    | Compare
    | Not
    | And
    | Or
)


# --- small helpers shared with the rest of the catalogue package -----------------------


def format_number(value: int | float) -> str:
    """Shortest text that reads back as the same number; integral values without ``.0``.

    Example:
        >>> format_number(30.0), format_number(12.48213), format_number(-8)
        ('30', '12.48213', '-8')
    """
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError(f"{value} is not a finite number")
        if value.is_integer() and abs(value) < 1e16:
            return str(int(value))
        return repr(value)
    return str(value)


def quote_string(value: str) -> str:
    """An OData string literal: single quotes, inner quotes doubled.

    Example:
        >>> quote_string("it's")
        "'it''s'"
    """
    return "'" + value.replace("'", "''") + "'"


def format_datetime(value: datetime) -> str:
    """A datetime as the catalogue writes it: UTC, six fraction digits, ``Z``.

    Six digits keep every microsecond, so the text reads back to the same instant
    (the catalogue accepts 3 or 6 digits, §3.5). A naive datetime is taken as UTC,
    as the catalogue has done since 2024-05-28.

    Example:
        >>> format_datetime(datetime(2023, 1, 1, tzinfo=UTC))
        '2023-01-01T00:00:00.000000Z'
    """
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    value = value.astimezone(UTC)
    return (
        f"{value.year:04d}-{value.month:02d}-{value.day:02d}T"
        f"{value.hour:02d}:{value.minute:02d}:{value.second:02d}.{value.microsecond:06d}Z"
    )


def parse_datetime(text: str) -> datetime:
    """Read an ISO 8601 date or date-time as the catalogue writes and accepts them.

    Accepts a date alone (midnight), ``T`` or a space before the time, seconds and
    fraction optional, any number of fraction digits (beyond six truncated to
    microseconds), and ``Z``, ``±hh:mm``, ``±hhmm`` or no zone (UTC). Works the same on
    every supported Python (3.10's ``fromisoformat`` rejects ``Z``).

    Raises:
        ValueError: the text is not such a date, or names an impossible one
            (``2023-02-30``); the message says which.

    Example:
        >>> parse_datetime("2023-10-01T10:30:19.024Z")
        datetime.datetime(2023, 10, 1, 10, 30, 19, 24000, tzinfo=datetime.timezone.utc)
        >>> parse_datetime("2022-05-03T00:00:00.000-04:00").hour
        4
    """
    usual = _CATALOGUE_TIME.match(text)
    if usual is not None:
        # How the catalogue writes every date of every product: read in one match.
        year, month, day, hour, minute, second, fraction = usual.groups()
        microsecond = int(fraction.ljust(6, "0")) if fraction else 0
        try:
            return datetime(
                int(year),
                int(month),
                int(day),
                int(hour),
                int(minute),
                int(second),
                microsecond,
                UTC,
            )
        except ValueError as error:
            raise ValueError(f"{text!r} is an impossible date: {error}") from None
    text = text.strip()
    date_part, time_part = text[:10], text[10:]
    if len(date_part) != 10 or date_part[4] != "-" or date_part[7] != "-":
        raise ValueError(f"{text!r} is not a date (expected YYYY-MM-DD)")
    year, month, day = (_digits(date_part[a:b], text) for a, b in ((0, 4), (5, 7), (8, 10)))
    hour = minute = second = microsecond = 0
    zone = UTC
    if time_part:
        if time_part[0] not in "Tt ":
            raise ValueError(f"{text!r} is not a date-time (expected T between date and time)")
        clock, zone = _split_zone(time_part[1:], text)
        fields = clock.split(":")
        if len(fields) not in (2, 3) or any(len(field) < 2 for field in fields):
            raise ValueError(f"{text!r} is not a date-time (expected hh:mm[:ss[.ffffff]])")
        hour, minute = _digits(fields[0], text), _digits(fields[1], text)
        if len(fields) == 3:
            seconds, point, fraction = fields[2].partition(".")
            second = _digits(seconds, text)
            if point and not fraction:
                raise ValueError(f"{text!r} has a decimal point without fraction digits")
            if fraction:
                microsecond = _digits((fraction + "00000")[:6], text)
    try:
        return datetime(year, month, day, hour, minute, second, microsecond, zone).astimezone(UTC)
    except ValueError as error:
        raise ValueError(f"{text!r} is an impossible date: {error}") from None
    except OverflowError:
        raise ValueError(f"{text!r} is outside the datetime range") from None


# YYYY-MM-DDThh:mm:ss[.f to ffffff]Z, ASCII digits only: the catalogue's own form.
_CATALOGUE_TIME = re.compile(
    r"(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,6}))?Z\Z", re.ASCII
)


def _digits(part: str, text: str) -> int:
    if not part.isdigit() or not part.isascii():
        raise ValueError(f"{text!r} is not a date (unexpected {part!r})")
    return int(part)


def _split_zone(clock: str, text: str) -> tuple[str, timezone]:
    if clock[-1:] in ("Z", "z"):
        return clock[:-1], UTC
    sign_at = max(clock.rfind("+"), clock.rfind("-"))
    if sign_at < 0:
        return clock, UTC
    offset = clock[sign_at + 1 :].replace(":", "")
    if len(offset) not in (2, 4):
        raise ValueError(f"{text!r} has an unreadable time zone offset")
    hours, minutes = _digits(offset[:2], text), _digits(offset[2:] or "00", text)
    if hours > 23 or minutes > 59:
        raise ValueError(f"{text!r} has an impossible time zone offset")
    delta = timedelta(hours=hours, minutes=minutes)
    return clock[:sign_at], timezone(-delta if clock[sign_at] == "-" else delta)


def conjuncts(expression: Expression) -> tuple[Expression, ...]:
    """The operands of a top-level ``and`` (nested ``and`` flattened), else the expression.

    Example:
        >>> len(conjuncts(parse_filter("(Online eq true and Name eq 'a') and Id eq 'b'")))
        3
    """
    if isinstance(expression, And):
        return tuple(part for operand in expression.operands for part in conjuncts(operand))
    return (expression,)


def conjoin(expressions: Iterable[Expression]) -> Expression:
    """Join expressions with ``and``; one expression is returned as is.

    Raises:
        ValueError: no expression was given.
    """
    return _join(And, expressions)


def disjoin(expressions: Iterable[Expression]) -> Expression:
    """Join expressions with ``or``; one expression is returned as is.

    Raises:
        ValueError: no expression was given.
    """
    return _join(Or, expressions)


def _join(kind: type[And] | type[Or], expressions: Iterable[Expression]) -> Expression:
    flat: list[Expression] = []
    for expression in expressions:
        flat.extend(expression.operands if isinstance(expression, kind) else (expression,))
    if not flat:
        raise ValueError("nothing to join")
    return flat[0] if len(flat) == 1 else kind(tuple(flat))


# --- rendering --------------------------------------------------------------------------


def render_expression(expression: Expression) -> str:
    """Canonical filter text for a tree.

    Parentheses appear only where precedence needs them, and around ``and`` groups
    inside ``or`` for readability; ``not`` is written ``not f(...)`` before a function
    or lambda (as the browser does) and ``not (...)`` otherwise (as the docs do).

    Example:
        >>> render_expression(Or((parse_filter("Name eq 'a' and Online eq true"),
        ...                       parse_filter("Name eq 'b'"))))
        "(Name eq 'a' and Online eq true) or Name eq 'b'"
    """
    if isinstance(expression, Or):
        return " or ".join(_render_grouped(operand, (And, Or)) for operand in expression.operands)
    if isinstance(expression, And):
        return " and ".join(_render_grouped(operand, (Or, And)) for operand in expression.operands)
    if isinstance(expression, Not):
        operand = expression.operand
        if isinstance(operand, (FunctionCall, Lambda, Member)):
            return "not " + render_expression(operand)
        return f"not ({render_expression(operand)})"
    if isinstance(expression, Compare):
        grouped = (And, Or, Not, Compare)
        left = _render_grouped(expression.left, grouped)
        right = _render_grouped(expression.right, grouped)
        return f"{left} {expression.operator} {right}"
    if isinstance(expression, FunctionCall):
        arguments = ",".join(_render_argument(argument) for argument in expression.arguments)
        return f"{expression.name}({arguments})"
    if isinstance(expression, Lambda):
        path = "/".join(expression.path)
        predicate = render_expression(expression.predicate)
        return f"{path}/{expression.operator}({expression.variable}:{predicate})"
    return _render_literal(expression)


def _render_grouped(expression: Expression, group: tuple[type, ...]) -> str:
    text = render_expression(expression)
    return f"({text})" if isinstance(expression, group) else text


def _render_argument(argument: Expression | NamedArgument) -> str:
    if isinstance(argument, NamedArgument):
        return f"{argument.name}={render_expression(argument.value)}"
    return render_expression(argument)


def _render_literal(expression: Expression) -> str:
    if isinstance(expression, Member):
        return "/".join(expression.path)
    if isinstance(expression, StringLiteral):
        return quote_string(expression.value)
    if isinstance(expression, BooleanLiteral):
        return "true" if expression.value else "false"
    if isinstance(expression, NumberLiteral):
        return format_number(expression.value)
    if isinstance(expression, DateTimeLiteral):
        return format_datetime(expression.value)
    if isinstance(expression, Geography):
        return expression.text
    if isinstance(expression, NullLiteral):
        return "null"
    raise TypeError(f"not a filter expression: {expression!r}")


def _wkt_coordinates(coordinates: tuple[Any, ...], depth: int) -> str:
    if depth == 0:
        return "(" + " ".join(format_number(value) for value in coordinates) + ")"
    if depth == 1:
        return "(" + ", ".join(" ".join(map(format_number, p)) for p in coordinates) + ")"
    return "(" + ", ".join(_wkt_coordinates(part, depth - 1) for part in coordinates) + ")"


# --- parsing ----------------------------------------------------------------------------


@cache
def _parser() -> Lark:
    # Built on first use, not at import: importing the package does no work.
    return Lark.open_from_package(
        "sentinel_fetch.catalogue",
        "filter.lark",
        parser="lalr",
        lexer="contextual",
        maybe_placeholders=True,
    )


def parse_filter(text: str) -> Expression:
    """Parse a ``$filter`` expression (already percent-decoded) into a tree.

    Raises:
        FilterSyntaxError: the text is not a filter; the one-line message names the
            problem and its character (counted from 1), and ``position`` holds the
            0-based offset. Truncated text (a URL cut short) is recognised and said so.

    Example:
        >>> parse_filter("not contains(Name,'_COG')").operand.name
        'contains'
        >>> parse_filter("(Name eq 'a'")  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        sentinel_fetch.errors.FilterSyntaxError: unbalanced parenthesis at character 1: ...
    """
    if not text.strip():
        raise FilterSyntaxError("the filter is empty: give at least one condition", 0)
    _check_placeholders(text)
    _check_balance(text)
    try:
        tree = _parser().parse(text)
    except UnexpectedInput as error:
        raise _syntax_error(text, error) from None
    try:
        return _condition(tree)
    except RecursionError:
        raise FilterSyntaxError("the filter is nested too deeply to read", 0) from None


def find_placeholder(text: str) -> tuple[int, str] | None:
    """The first ``{word}`` template placeholder in a text: its offset and word.

    Scripts that template a copied URL leave ``{query_date}`` behind when a value is
    missing (cdse-api.md §4, URLs 2 and 3); naming it beats a syntax error.

    Example:
        >>> find_placeholder("ContentDate/Start ge {query_date}T00:00:00.000Z")
        (21, 'query_date')
    """
    start = text.find("{")
    while start >= 0:
        end = text.find("}", start)
        name = text[start + 1 : end] if end > start else ""
        if name and all(char.isalnum() or char in "_-" for char in name):
            return start, name
        start = text.find("{", start + 1)
    return None


def _check_placeholders(text: str) -> None:
    found = find_placeholder(text)
    if found is not None:
        start, name = found
        raise FilterSyntaxError(
            f"unsubstituted placeholder {{{name}}} at character {start + 1}: "
            "replace it with a value",
            start,
        )


def _check_balance(text: str) -> None:
    opened: list[int] = []
    quote_at = -1
    index = 0
    while index < len(text):
        char = text[index]
        if quote_at >= 0:
            if char == "'":
                if text[index + 1 : index + 2] == "'":
                    index += 1
                else:
                    quote_at = -1
        elif char == "'":
            quote_at = index
        elif char == "(":
            opened.append(index)
        elif char == ")":
            if not opened:
                raise FilterSyntaxError(
                    f"unbalanced parenthesis at character {index + 1}: this ')' closes nothing",
                    index,
                )
            opened.pop()
        index += 1
    if quote_at >= 0:
        raise FilterSyntaxError(
            "the filter looks cut short: it ends inside a quoted string "
            f"(opened at character {quote_at + 1})",
            quote_at,
        )
    if opened:
        raise FilterSyntaxError(
            f"unbalanced parenthesis at character {opened[-1] + 1}: this '(' is never closed "
            "(it looks cut short)",
            opened[-1],
        )


_TERMINAL_NAMES = {
    "RPAR": "')'",
    "LPAR": "'('",
    "COMMA": "','",
    "SLASH": "'/'",
    "COLON": "':'",
    "SEMICOLON": "';'",
    "EQUAL": "'='",
    "_AND": "'and'",
    "_OR": "'or'",
    "_NOT": "'not'",
    "EQ": "a comparison (eq, ne, lt, le, gt, ge)",
    "NE": "a comparison (eq, ne, lt, le, gt, ge)",
    "LT": "a comparison (eq, ne, lt, le, gt, ge)",
    "LE": "a comparison (eq, ne, lt, le, gt, ge)",
    "GT": "a comparison (eq, ne, lt, le, gt, ge)",
    "GE": "a comparison (eq, ne, lt, le, gt, ge)",
    "ANY": "any/all",
    "ALL": "any/all",
    "STRING": "a quoted string",
    "NUMBER": "a number",
    "DATETIME": "a date",
    "NAME": "a name",
    "TRUE": "true/false",
    "FALSE": "true/false",
    "NULL": "null",
    "GEOGRAPHY_OPEN": "geography'...'",
    "GEOGRAPHY_CLOSE": "a closing quote",
    "$END": "the end of the filter",
}


def _syntax_error(text: str, error: UnexpectedInput) -> FilterSyntaxError:
    if isinstance(error, UnexpectedCharacters):
        position = error.pos_in_stream or 0
        char = text[position]
        if char == "%":
            return FilterSyntaxError(
                f"a stray '%' at character {position + 1}: the URL was cut inside a "
                "%-escape or is not encoded as the browser sends it",
                position,
            )
        if char == '"':
            return FilterSyntaxError(
                f'unexpected " at character {position + 1}: OData strings use single quotes',
                position,
            )
        return FilterSyntaxError(
            f"unexpected character {char!r} at character {position + 1} of the filter", position
        )
    if not isinstance(error, UnexpectedToken):
        position = error.pos_in_stream or 0
        return FilterSyntaxError(f"the filter cannot be read at character {position + 1}", position)
    token = error.token
    expected = sorted({_TERMINAL_NAMES.get(name, name.lower()) for name in error.expected})
    wanted = ", ".join(expected[:6]) + (", ..." if len(expected) > 6 else "")
    if token.type == "$END":
        return FilterSyntaxError(
            f"the filter ends too early at character {len(text)} (it looks cut short): "
            f"expected {wanted}",
            len(text),
        )
    position = token.start_pos or 0
    before = text[:position].rstrip()
    if token.type == "STRING" and before.lower().endswith("datetime"):
        return FilterSyntaxError(
            f"datetime'...' at character {len(before) - 7} is not accepted by the catalogue: "
            "write the date unquoted, e.g. 2023-01-01T00:00:00.000Z",
            len(before) - 8,
        )
    end = token.end_pos or position
    if (
        token.type == "NUMBER"
        and text[position - 1 : position] == " "
        and text[end : end + 1] == ":"
    ):
        return FilterSyntaxError(
            f"a time zone offset lost its '+' at character {position}: "
            "in a URL a '+' means a space, write it as %2B",
            position - 1,
        )
    return FilterSyntaxError(
        f"unexpected {str(token)[:40]!r} at character {position + 1} of the filter: "
        f"expected {wanted}",
        position,
    )


_COMPARISON_OPERATORS: dict[str, ComparisonOperator] = {
    "eq": "eq",
    "ne": "ne",
    "lt": "lt",
    "le": "le",
    "gt": "gt",
    "ge": "ge",
}


def _condition(node: Tree[Token] | Token) -> Expression:
    # A bare name or value where a condition belongs is how a cut URL usually ends
    # ("... and ContentDate/Start"); OData would read a bare name as a boolean property,
    # but the catalogue has none worth filtering on that way.
    expression = _convert(node)
    if isinstance(expression, (Compare, FunctionCall, Lambda, Not, And, Or, BooleanLiteral)):
        return expression
    token = node if isinstance(node, Token) else next(node.scan_values(lambda _: True))
    position = token.start_pos or 0
    raise FilterSyntaxError(
        f"{render_expression(expression)[:40]!r} at character {position + 1} is not a "
        "condition: compare it (eq, lt, ...), or copy the URL again if it was cut short",
        position,
    )


def _convert(node: Tree[Token] | Token) -> Expression:
    if isinstance(node, Token):
        return _convert_token(node)
    kind = node.data
    children = node.children
    if kind == "or_expr":
        return disjoin(_condition(child) for child in children)
    if kind == "and_expr":
        return conjoin(_condition(child) for child in children)
    if kind == "negation":
        return Not(_condition(children[0]))
    if kind == "comparison":
        left, operator, right = children
        assert isinstance(operator, Tree)
        return Compare(
            _COMPARISON_OPERATORS[str(operator.children[0])], _convert(left), _convert(right)
        )
    if kind == "member":
        return Member(tuple(str(child) for child in children))
    if kind == "lambda_expression":
        *path, operator, variable, predicate = children
        assert isinstance(operator, Tree)
        return Lambda(
            tuple(str(part) for part in path),
            "any" if str(operator.children[0]) == "any" else "all",
            str(variable),
            _condition(predicate),
        )
    if kind == "call":
        name, *arguments = children
        return FunctionCall(
            str(name),
            tuple(_convert_argument(argument) for argument in arguments if argument is not None),
        )
    if kind == "geography":
        return _convert_geography(node)
    if kind in ("string", "number", "datetime", "true", "false", "null"):
        token = children[0]
        assert isinstance(token, Token)
        return _convert_token(token)
    raise FilterSyntaxError(f"unexpected {kind} in the filter", 0)


def _convert_argument(node: Tree[Token] | Token) -> Expression | NamedArgument:
    if isinstance(node, Tree) and node.data == "named_argument":
        name, value = node.children
        return NamedArgument(str(name), _convert(value))
    return _convert(node)


def _convert_token(token: Token) -> Expression:
    value = str(token)
    position = token.start_pos or 0
    if token.type == "STRING":
        return StringLiteral(value[1:-1].replace("''", "'"))
    if token.type == "NUMBER":
        return NumberLiteral(_number(token))
    if token.type == "DATETIME":
        after_point = value.partition(".")[2]
        if len(after_point) - len(after_point.lstrip("0123456789")) > 6:
            raise FilterSyntaxError(
                f"date {value} at character {position + 1} has more than 6 fraction digits: "
                "the catalogue keeps microseconds",
                position,
            )
        try:
            return DateTimeLiteral(parse_datetime(value))
        except ValueError as error:
            raise FilterSyntaxError(f"{error} at character {position + 1}", position) from None
    if token.type in ("TRUE", "FALSE"):
        return BooleanLiteral(token.type == "TRUE")
    if token.type == "NULL":
        return NullLiteral()
    raise FilterSyntaxError(f"unexpected {value!r} at character {position + 1}", position)


def _number(token: Token) -> int | float:
    text = str(token)
    if all(char.isdigit() or char in "+-" for char in text):
        return int(text)
    number = float(text)
    if not math.isfinite(number):
        position = token.start_pos or 0
        raise FilterSyntaxError(f"number {text} at character {position + 1} is too large", position)
    return number


def _convert_geography(node: Tree[Token]) -> Geography:
    _, srid_node, wkt_node, _ = node.children
    srid = None
    if isinstance(srid_node, Tree):
        key, number = srid_node.children
        if str(key).upper() != "SRID" or not str(number).isdigit():
            raise _geography_error(srid_node, "expected SRID=<number>; before the geometry")
        srid = int(str(number))
    assert isinstance(wkt_node, Tree)
    words = [child for child in wkt_node.children if isinstance(child, Token)]
    nested = [child for child in wkt_node.children if isinstance(child, Tree)]
    type_token, tags = words[0], [str(word).upper() for word in words[1:]]
    geometry_type = str(type_token).upper()
    if geometry_type not in GEOMETRY_TYPES:
        raise _geography_error(type_token, f"{str(type_token)!r} is not a supported geometry type")
    dimension = ""
    if tags and tags[0] in _DIMENSION_TAGS:
        dimension = tags.pop(0)
    if tags == ["EMPTY"] and not nested:
        return Geography(geometry_type, (), srid, dimension)
    if tags or not nested:
        raise _geography_error(type_token, f"{geometry_type} needs coordinates in parentheses")
    coordinates = _coordinates(nested[0])
    depth = _GEOMETRY_DEPTH[geometry_type]
    if geometry_type == "POINT":
        if len(coordinates) != 1 or not _is_position(coordinates[0]):
            raise _geography_error(type_token, "POINT takes one position: POINT (lon lat)")
        coordinates = coordinates[0]
    elif geometry_type == "MULTIPOINT" and all(
        len(part) == 1 and _is_position(part[0]) for part in coordinates
    ):
        coordinates = tuple(part[0] for part in coordinates)
    if _depth(coordinates) != depth:
        raise _geography_error(
            type_token, f"{geometry_type} coordinates are nested {_depth(coordinates)} deep"
        )
    return Geography(geometry_type, coordinates, srid, dimension)


def _geography_error(node: Token | Tree[Token], message: str) -> FilterSyntaxError:
    token = node if isinstance(node, Token) else next(node.scan_values(lambda _: True))
    position = token.start_pos or 0
    return FilterSyntaxError(f"{message} (area at character {position + 1})", position)


def _coordinates(node: Tree[Token]) -> tuple[Any, ...]:
    parts: list[Any] = []
    for child in node.children:
        assert isinstance(child, Tree)
        if child.data == "position":
            parts.append(tuple(float(str(number)) for number in child.children))
        else:
            parts.append(_coordinates(child))
    return tuple(parts)


def _is_position(value: Any) -> bool:
    return isinstance(value, tuple) and bool(value) and isinstance(value[0], float)


def _depth(coordinates: Sequence[Any]) -> int:
    # POINT's position has depth 0; each enclosing list adds one. Mixed depths fail.
    if _is_position(coordinates):
        return 0
    depths = {_depth(part) for part in coordinates}
    return depths.pop() + 1 if len(depths) == 1 else -1
