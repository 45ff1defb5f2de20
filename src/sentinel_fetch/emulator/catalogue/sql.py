"""Compiles a parsed ``$filter`` and ``$orderby`` into SQL over :mod:`.schema`.

The result is a WHERE clause with ``?`` parameters; table alias ``p`` is ``products``.
Two Python SQL functions, registered on every connection by the store, complete it:

* ``catalogue_intersects(wkb, fid)``: exact shapely test of a query geometry against a
  footprint, called only for footprints whose R*Tree box overlaps the query box;
* ``catalogue_attribute(collection, name, <row columns>)``: value of a derived attribute.

Semantics follow cdse-api.md §3.5: ``contains``/``startswith``/``endswith`` are
case-sensitive; attribute lambdas match by attribute name and compare with the *stored*
type whatever type the lambda names; ``productType`` aliases (``GRD``, ``SLC``, ``RAW``,
``OCN``, ``GRD-COG``) match the Sentinel-1 types of that family.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import cast

import shapely
from shapely.geometry.base import BaseGeometry

from . import attributes as attrs
from .filter import (
    And,
    AnyLambda,
    Call,
    Comparison,
    FilterError,
    Literal,
    NamedArgument,
    Node,
    Not,
    Or,
    Path,
    parse_datetime,
)
from .schema import PRODUCT_COLUMNS, SPLIT_ORIGINAL, TWIN

__all__ = [
    "ORDERABLE",
    "OrderByError",
    "SqlFilter",
    "compile_filter",
    "compile_orderby",
    "served",
]

INTERSECTS_FUNCTION = "catalogue_intersects"
ATTRIBUTE_FUNCTION = "catalogue_attribute"

_OPERATORS = {"eq": "=", "ne": "!=", "lt": "<", "le": "<=", "gt": ">", "ge": ">="}
_FLIPPED = {"eq": "eq", "ne": "ne", "lt": "gt", "le": "ge", "gt": "lt", "ge": "le"}

#: Filterable product properties: path -> (SQL column, kind).
_PROPERTIES = {
    "Name": ("p.name", "string"),
    "Id": ("p.uid", "uuid"),
    "Collection/Name": ("p.collection", "string"),
    "ContentDate/Start": ("p.start_us", "datetime"),
    "ContentDate/End": ("p.end_us", "datetime"),
    "PublicationDate": ("p.publication_us", "datetime"),
    "ModificationDate": ("p.modification_us", "datetime"),
    "Online": ("p.online", "boolean"),
}
_TEXT_FUNCTIONS = ("contains", "startswith", "endswith")
_INTERSECTS = "OData.CSC.Intersects"

#: Every Sentinel-1 product type an alias can stand for (cdse-api.md §8.2).
_S1_TYPES = tuple(
    f"{mode}_{kind}"
    for mode in ("IW", "EW", "WV", "S1", "S2", "S3", "S4", "S5", "S6")
    for kind in (
        "GRDF_1S",
        "GRDH_1S",
        "GRDM_1S",
        "GRDF_1S-COG",
        "GRDH_1S-COG",
        "GRDM_1S-COG",
        "SLC__1S",
        "RAW__0S",
        "OCN__2S",
    )
)


@dataclass(frozen=True)
class SqlFilter:
    """A WHERE clause and its parameters."""

    where: str
    params: tuple[object, ...]


_TRUE = SqlFilter("1", ())
_FALSE = SqlFilter("0", ())


def served(where: SqlFilter, twins: bool, published_until_us: int | None = None) -> SqlFilter:
    """``where`` narrowed to the products served with the ``reprocessed_twins`` switch
    and, when given, published no later than ``published_until_us``.

    >>> served(SqlFilter("p.online = ?", (1,)), twins=False)
    SqlFilter(where='(p.online = ?) AND p.variant != 1', params=(1,))
    >>> served(SqlFilter("1", ()), twins=True, published_until_us=5)
    SqlFilter(where='(1) AND p.variant != 2 AND p.publication_us <= ?', params=(5,))
    """
    hidden = SPLIT_ORIGINAL if twins else TWIN
    clause = f"({where.where}) AND p.variant != {hidden}"
    if published_until_us is None:
        return SqlFilter(clause, where.params)
    return SqlFilter(f"{clause} AND p.publication_us <= ?", (*where.params, published_until_us))


def compile_filter(node: Node | None) -> SqlFilter:
    """SQL for a parsed filter; ``None`` (no ``$filter``) matches everything.

    Raises:
        FilterError: unknown property or function, or a literal of the wrong kind.

    >>> from .filter import parse_filter
    >>> compile_filter(parse_filter("Collection/Name eq 'SENTINEL-2' and Online eq true"))
    SqlFilter(where='(p.collection = ?) AND (p.online = ?)', params=('SENTINEL-2', 1))
    """
    if node is None:
        return _TRUE
    return _compile(node, None)


def _join(parts: list[SqlFilter], glue: str) -> SqlFilter:
    return SqlFilter(
        f" {glue} ".join(f"({p.where})" for p in parts),
        tuple(v for p in parts for v in p.params),
    )


def _collection_of(node: And) -> str | None:
    """The collection a conjunction pins (``Collection/Name eq 'X'`` among its terms)."""
    for item in node.items:
        if (
            isinstance(item, Comparison)
            and item.op == "eq"
            and isinstance(item.left, Path)
            and item.left.text == "Collection/Name"
            and isinstance(item.right, Literal)
            and item.right.kind == "string"
        ):
            return str(item.right.value)
    return None


def _compile(node: Node, collection: str | None) -> SqlFilter:
    """SQL for a node; ``collection`` is pinned by an enclosing conjunction.

    Every product that satisfies a conjunction containing ``Collection/Name eq 'X'`` is of
    collection X, so anywhere below it a spatial test may ignore other collections'
    footprints ("Collection/Name is crucial for performance", cdse-api.md §3.5).
    """
    if isinstance(node, And):
        pinned = collection or _collection_of(node)
        return _join([_compile(n, pinned) for n in node.items], "AND")
    if isinstance(node, Or):
        return _join([_compile(n, collection) for n in node.items], "OR")
    if isinstance(node, Not):
        inner = _compile(node.item, collection)
        return SqlFilter(f"NOT ({inner.where})", inner.params)
    if isinstance(node, Comparison):
        return _comparison(node)
    if isinstance(node, Call):
        return _call(node, collection)
    return _lambda(node)


def _oriented(node: Comparison) -> tuple[Path, str, Literal]:
    """The comparison as ``path op literal`` (a literal on the left is flipped over)."""
    if isinstance(node.left, Path) and isinstance(node.right, Literal):
        return node.left, node.op, node.right
    if isinstance(node.left, Literal) and isinstance(node.right, Path):
        return node.right, _FLIPPED[node.op], node.left
    raise FilterError(
        "a comparison needs a property on one side and a literal on the other", node.position
    )


def _property(path: Path) -> tuple[str, str]:
    found = _PROPERTIES.get(path.text)
    if found is None:
        raise FilterError(f"unknown property {path.text!r}", path.position)
    return found


def _literal_for(kind: str, path: Path, literal: Literal) -> object:
    """The SQL parameter for comparing property ``path`` (of ``kind``) with ``literal``."""
    if kind == "string":
        if literal.kind != "string":
            raise FilterError(f"{path.text} must be compared with a string", literal.position)
        return literal.value
    if kind == "uuid":
        if literal.kind != "string":
            raise FilterError("Id must be compared with a quoted UUID", literal.position)
        try:
            return uuid.UUID(str(literal.value)).bytes
        except ValueError:
            raise FilterError(
                f"{literal.text} is not a valid product Id", literal.position
            ) from None
    if kind == "datetime":
        if literal.kind == "datetime":
            return literal.value
        if literal.kind == "string":
            try:
                return parse_datetime(str(literal.value))
            except ValueError:
                pass
        raise FilterError(f"{path.text} must be compared with a date-time", literal.position)
    if literal.kind != "boolean":
        raise FilterError(f"{path.text} must be compared with true or false", literal.position)
    return int(bool(literal.value))


def _comparison(node: Comparison) -> SqlFilter:
    path, op, literal = _oriented(node)
    column, kind = _property(path)
    value = _literal_for(kind, path, literal)
    return SqlFilter(f"{column} {_OPERATORS[op]} ?", (value,))


def _call(node: Call, collection: str | None) -> SqlFilter:
    if node.name in _TEXT_FUNCTIONS:
        return _text_function(node)
    if node.name == _INTERSECTS:
        return _intersects(node, collection)
    raise FilterError(f"unknown function {node.name!r}", node.position)


def _text_function(node: Call) -> SqlFilter:
    if len(node.args) != 2 or not all(isinstance(a, (Path, Literal)) for a in node.args):
        raise FilterError(f"{node.name} takes a property and a string", node.position)
    path, literal = node.args
    if not isinstance(path, Path) or not isinstance(literal, Literal) or literal.kind != "string":
        raise FilterError(f"{node.name} takes a property and a string", node.position)
    column, kind = _property(path)
    if kind != "string":
        raise FilterError(f"{node.name} needs a text property, not {path.text}", path.position)
    text = str(literal.value)
    # instr/substr compare exactly: LIKE would be case-insensitive (cdse-api.md §3.5).
    if node.name == "contains":
        return SqlFilter(f"instr({column}, ?) > 0", (text,))
    if not text:
        return _TRUE
    if node.name == "startswith":
        return SqlFilter(f"substr({column}, 1, {len(text)}) = ?", (text,))
    return SqlFilter(f"substr({column}, -{len(text)}) = ?", (text,))


def _intersects(node: Call, collection: str | None) -> SqlFilter:
    area: BaseGeometry | None = None
    for arg in node.args:
        if not isinstance(arg, NamedArgument):
            raise FilterError("OData.CSC.Intersects takes area=geography'…'", node.position)
        if arg.name == "location":
            # The CSC/PRIP spelling OData.CSC.Intersects(location=Footprint,area=…).
            if not isinstance(arg.value, Path) or arg.value.text != "Footprint":
                raise FilterError("location must be Footprint", arg.position)
        elif arg.name == "area":
            if not isinstance(arg.value, Literal) or arg.value.kind != "geography":
                raise FilterError("area must be a geography'SRID=4326;…' literal", arg.position)
            assert isinstance(arg.value.value, BaseGeometry)
            area = arg.value.value
        else:
            raise FilterError(
                f"unknown argument {arg.name!r} of OData.CSC.Intersects", arg.position
            )
    if area is None:
        raise FilterError("OData.CSC.Intersects needs area=geography'…'", node.position)
    min_lon, min_lat, max_lon, max_lat = area.bounds
    box = "min_lon <= ? AND max_lon >= ? AND min_lat <= ? AND max_lat >= ?"
    params: tuple[object, ...] = (max_lon, min_lon, max_lat, min_lat)
    if collection is not None:
        box += " AND collection = ?"
        params += (collection,)
    # Only fixed SQL text is interpolated here; values travel as parameters.
    return SqlFilter(
        f"p.footprint_id IN (SELECT fid FROM footprint_index WHERE {box}"  # noqa: S608
        f" AND {INTERSECTS_FUNCTION}(?, fid))",
        (*params, shapely.to_wkb(area)),
    )


# --------------------------------------------------------------------- attributes


def _lambda(node: AnyLambda) -> SqlFilter:
    segments = node.path.segments
    # The docs themselves write `attributes/…` once (cdse-api.md §3.5): be case-tolerant.
    if segments[0].lower() != "attributes" or len(segments) > 2:
        raise FilterError(f"unknown collection property {node.path.text!r}", node.position)
    if len(segments) == 2:
        _attribute_type(segments[1], node.path.position)
    terms = list(node.body.items) if isinstance(node.body, And) else [node.body]
    names = [t for t in terms if _is_name_test(t, node.variable)]
    if len(names) != 1:
        raise FilterError(
            f"the lambda must test {node.variable}/Name eq '<attribute name>' exactly once",
            node.position,
        )
    name_test = names[0]
    assert isinstance(name_test, Comparison)
    _, _, literal = _oriented(name_test)
    name = str(literal.value)
    rest = [t for t in terms if t is not name_test]
    branches: list[SqlFilter] = []
    for collection in attrs.COLLECTIONS:
        found = attrs.definition(collection, name)
        if found is None:
            continue
        expression = _attribute_sql(collection, found)
        if rest:
            condition = _join(
                [_value_test(t, node.variable, collection, found, expression) for t in rest], "AND"
            )
        else:
            condition = SqlFilter(f"{expression} IS NOT NULL", ())
        branches.append(
            SqlFilter(f"WHEN ? THEN {condition.where}", (collection, *condition.params))
        )
    if not branches:
        return _FALSE
    return SqlFilter(
        "COALESCE(CASE p.collection " + " ".join(b.where for b in branches) + " ELSE 0 END, 0)",
        tuple(v for b in branches for v in b.params),
    )


def _attribute_type(segment: str, position: int) -> str:
    prefix, suffix = "OData.CSC.", "Attribute"
    value_type = segment[len(prefix) : -len(suffix)]
    if (
        not segment.startswith(prefix)
        or not segment.endswith(suffix)
        or value_type not in attrs.VALUE_TYPES
    ):
        raise FilterError(f"unknown attribute type {segment!r}", position)
    return value_type


def _is_name_test(node: Node, variable: str) -> bool:
    if not isinstance(node, Comparison) or node.op != "eq":
        return False
    sides = (node.left, node.right)
    has_path = any(isinstance(s, Path) and s.segments == (variable, "Name") for s in sides)
    has_text = any(isinstance(s, Literal) and s.kind == "string" for s in sides)
    return has_path and has_text


def _sql_text(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def _attribute_sql(collection: str, found: attrs.AttributeDef) -> str:
    """SQL expression of an attribute's stored value for products of ``collection``."""
    if found.column is not None:
        return f"p.{found.column}"
    if found.by_type:
        cases = " ".join(
            f"WHEN {_sql_text(t)} THEN {_sql_text(v)}" for t, v in sorted(found.by_type.items())
        )
        return f"(CASE p.product_type {cases} END)"
    if found.sql is not None:
        return found.sql
    if found.derive is not None:
        columns = ", ".join(f"p.{c}" for c in PRODUCT_COLUMNS)
        return f"{ATTRIBUTE_FUNCTION}({_sql_text(collection)}, {_sql_text(found.name)}, {columns})"
    constant = found.constant
    if isinstance(constant, bool):
        return "1" if constant else "0"
    if isinstance(constant, (int, float)):
        return repr(constant)
    return _sql_text(str(constant))


def _value_test(
    node: Node, variable: str, collection: str, found: attrs.AttributeDef, expression: str
) -> SqlFilter:
    if isinstance(node, And):
        return _join(
            [_value_test(n, variable, collection, found, expression) for n in node.items], "AND"
        )
    if isinstance(node, Or):
        return _join(
            [_value_test(n, variable, collection, found, expression) for n in node.items], "OR"
        )
    if isinstance(node, Not):
        inner = _value_test(node.item, variable, collection, found, expression)
        return SqlFilter(f"NOT ({inner.where})", inner.params)
    if not isinstance(node, Comparison):
        raise FilterError(
            "only comparisons of the attribute's Value are allowed here",
            getattr(node, "position", 0),
        )
    path, op, literal = _oriented(node)
    segments = path.segments
    if segments[0] != variable or segments[-1] != "Value" or len(segments) > 3:
        raise FilterError(f"unknown property {path.text!r} inside the lambda", path.position)
    if len(segments) == 3:
        _attribute_type(segments[1], path.position)
    if (
        found.name == "productType"
        and collection == "SENTINEL-1"
        and op in ("eq", "ne")
        and literal.kind == "string"
        and literal.value in attrs.PRODUCT_TYPE_ALIASES
    ):
        members = [t for t in _S1_TYPES if attrs.s1_family(t) == literal.value]
        marks = ", ".join("?" for _ in members)
        negation = "NOT " if op == "ne" else ""
        return SqlFilter(f"{expression} {negation}IN ({marks})", tuple(members))
    value = _convert(literal, found.value_type)
    if value is None:
        # Nothing stored in that type can equal this literal (leniency: no error).
        return _FALSE
    return SqlFilter(f"{expression} {_OPERATORS[op]} ?", (value,))


def _convert(literal: Literal, value_type: str) -> object:
    """The literal as the attribute's stored type, or ``None`` when it cannot be one."""
    kind, value = literal.kind, literal.value
    if value_type == "String":
        return value if kind == "string" else literal.text
    if value_type in ("Integer", "Double"):
        if kind == "number":
            return float(value) if value_type == "Double" else value  # type: ignore[arg-type]
        if kind == "string":
            try:
                number = float(str(value))
            except ValueError:
                return None
            return int(number) if value_type == "Integer" and number.is_integer() else number
        return None
    if value_type == "DateTimeOffset":
        if kind == "datetime":
            return value
        if kind == "string":
            try:
                return parse_datetime(str(value))
            except ValueError:
                return None
        return None
    if kind == "boolean":
        return int(bool(value))
    if kind == "string" and str(value).lower() in ("true", "false"):
        return int(str(value).lower() == "true")
    if kind == "number" and value in (0, 1):
        return int(cast(float, value))
    return None


# ----------------------------------------------------------------------- $orderby

#: Orderable properties (cdse-api.md §3.6) and their columns.
ORDERABLE = {
    "ContentDate/Start": "p.start_us",
    "ContentDate/End": "p.end_us",
    "PublicationDate": "p.publication_us",
    "ModificationDate": "p.modification_us",
}


class OrderByError(ValueError):
    """An ``$orderby`` CDSE would answer with HTTP 400."""


def compile_orderby(text: str | None) -> str:
    """ORDER BY clause (without the keywords) for an ``$orderby`` value.

    Ties are broken by Id, as CDSE does whenever an order is given ("excludes potential
    duplicates", cdse-api.md §3.6); without ``$orderby`` the storage order is used, which
    is stable and so pages never overlap.

    >>> compile_orderby("ContentDate/Start desc")
    'p.start_us DESC, p.uid ASC'
    >>> compile_orderby(None)
    'p.pk ASC'
    """
    if text is None or not text.strip():
        return "p.pk ASC"
    terms = []
    for item in text.split(","):
        words = item.split()
        if not words or len(words) > 2:
            raise OrderByError(f"Invalid $orderby: cannot read {item.strip()!r}")
        column = ORDERABLE.get(words[0])
        if column is None:
            raise OrderByError(
                f"Invalid $orderby: {words[0]!r} is not orderable; use one of "
                + ", ".join(ORDERABLE)
            )
        direction = words[1].lower() if len(words) == 2 else "asc"
        if direction not in ("asc", "desc"):
            raise OrderByError(f"Invalid $orderby: direction {words[1]!r} is not asc or desc")
        terms.append(f"{column} {direction.upper()}")
    return ", ".join([*terms, "p.uid ASC"])
