"""Each search field as one OData condition, and back: the one field <-> OData mapping.

The :class:`~sentinel_fetch.catalogue.query.Query` renders its filter through
:func:`field_conditions` (and :mod:`.odata` turns that into text and URLs); a pasted
filter (:mod:`.browser_url`, or any ``extra_filters``) is read back into fields through
:func:`absorb`. Both directions are written once, here, from one table of slots, so a
field can never be rendered one way and read another.

Each field stands for one condition of the filter (cdse-api.md §3.5), in this order:

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

Several values of one field are ORed. Attribute conditions use the attribute's own type
(``DoubleAttribute`` for cloudCover, ``IntegerAttribute`` for relativeOrbitNumber): a
mistyped test silently matches nothing on CDSE (sentinelsat#583, peers.md §3 item 11).

Example:
    >>> from dataclasses import asdict
    >>> from sentinel_fetch.catalogue.filter import parse_filter, render_expression
    >>> from sentinel_fetch.catalogue.query import Query
    >>> [render_expression(condition) for condition in field_conditions(asdict(Query(online=True)))]
    ['Online eq true']
    >>> values = asdict(Query(online=True))
    >>> absorb(values, parse_filter("Name eq 'S2A_X'")), values["names"]
    (True, ('S2A_X',))
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sentinel_fetch.catalogue.area import area_geography
from sentinel_fetch.catalogue.filter import (
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
    disjoin,
)
from sentinel_fetch.catalogue.inputs import FIELD_NORMALIZERS
from sentinel_fetch.errors import AreaError, QueryError

__all__ = ["absorb", "field_conditions"]


def field_conditions(values: Mapping[str, Any]) -> tuple[Expression, ...]:
    """The conditions of the fields that are set, in the table's order (to be ANDed).

    Args:
        values: every field of the table by name, in canonical form (``None`` or ``()``
            when unset).
    """
    found = (slot.condition(values) for slot in _SLOTS)
    return tuple(condition for condition in found if condition is not None)


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


def absorb(values: dict[str, Any], conjunct: Expression) -> bool:
    """Move a condition into the first empty field it exactly expresses; say if it did.

    A candidate value must pass the field's checks (:mod:`.inputs`) and, written back,
    give exactly the same condition: anything else (another operator, attribute type,
    spelling of a collection...) stays an extra filter, so meaning never changes.

    Args:
        values: every field by name, canonical; updated in place when the condition fits.
        conjunct: one top-level ``and`` operand of a filter.

    Raises:
        AreaError: the condition is an area test whose geometry is invalid (the
            catalogue would refuse it anyway).
    """
    for slot in _SLOTS:
        if any(values[field] not in (None, ()) for field in slot.fields):
            continue
        found = slot.match(conjunct)
        if found is None:
            continue
        try:
            candidate = {field: FIELD_NORMALIZERS[field](value) for field, value in found.items()}
        except AreaError:
            raise
        except QueryError:
            continue
        if slot.condition(candidate) == conjunct:
            values.update(candidate)
            return True
    return False
