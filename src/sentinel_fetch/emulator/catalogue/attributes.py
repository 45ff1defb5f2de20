"""Product attributes (``$expand=Attributes``) and their SQL counterparts.

One definition per attribute serves both directions, so a filter can never disagree with
what the entity shows: the value comes from a stored column, a constant of the collection,
a constant per product type, or a function of the stored row. The filter compiler turns
the first three into plain SQL and calls the function through a Python SQL function for
the last (rarely filtered: ``datastripId``, ``cycleNumber``…).

Attribute lists follow cdse-api.md §3.3 (names and value types of ``Attributes(SENTINEL-1)``
and ``Attributes(SENTINEL-2)``, the S2 L1C fixture); a few listed names that no emulated
product carries (``coordinates``, ``qualityInfo``…) appear in the listing only, as on CDSE
where not every product has every attribute.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import cast

from .schema import PRODUCT_COLUMNS, ProductRow, format_time

__all__ = [
    "COLLECTIONS",
    "PRODUCT_TYPE_ALIASES",
    "VALUE_TYPES",
    "AttributeDef",
    "attribute_listing",
    "attributes_of",
    "definition",
    "derived_value",
    "raw_value",
    "render_attributes",
    "s1_family",
]

#: Value types of CSC attributes, the ``<T>`` of ``OData.CSC.<T>Attribute``.
VALUE_TYPES = ("String", "Integer", "Double", "DateTimeOffset", "Boolean")

#: Filter values that stand for a family of Sentinel-1 product types (cdse-api.md §3.5).
PRODUCT_TYPE_ALIASES = ("GRD", "SLC", "RAW", "OCN", "GRD-COG")

#: Collections with products in the emulator, in listing order.
COLLECTIONS = ("SENTINEL-1", "SENTINEL-2", "SENTINEL-3", "SENTINEL-5P")


@dataclass(frozen=True)
class AttributeDef:
    """One attribute of a collection.

    Exactly one source is set: ``column`` (a :class:`ProductRow` field), ``constant``,
    ``by_type`` (value per product type; absent for other types) or ``derive``. A derived
    attribute may also give ``sql``, the same computation over ``p.<column>`` (filters
    then avoid a Python call per row; a test checks both agree). With ``listed_only``
    the name is advertised by ``Attributes(<COLLECTION>)`` but no product carries it.
    """

    name: str
    value_type: str
    column: str | None = None
    constant: str | int | float | bool | None = None
    by_type: Mapping[str, str] = field(default_factory=dict)
    derive: Callable[[ProductRow], str | int | float | bool | None] | None = None
    sql: str | None = None
    listed_only: bool = False


def s1_family(product_type: str) -> str | None:
    """The alias family (``GRD``, ``SLC``, ``RAW``, ``OCN``, ``GRD-COG``) of a Sentinel-1
    product type, or ``None``.

    >>> s1_family("IW_GRDH_1S"), s1_family("EW_GRDM_1S-COG"), s1_family("IW_SLC__1S")
    ('GRD', 'GRD-COG', 'SLC')
    >>> s1_family("AUX_POEORB") is None
    True
    """
    mode, _, rest = product_type.partition("_")
    if not mode or not rest:
        return None
    kind = rest[:3]
    if kind == "GRD":
        return "GRD-COG" if product_type.endswith("-COG") else "GRD"
    if kind in {"SLC", "RAW", "OCN"} and not product_type.endswith("-COG"):
        return kind
    return None


def _s2_level(row: ProductRow) -> str:
    return "L1C" if row.product_type == "S2MSI1C" else "L2A"


def _stamp(us: int) -> str:
    return format_time(us)[:19].replace("-", "").replace(":", "")


def _s2_centre(row: ProductRow) -> str:
    return f"2{row.platform}PS"


def _datastrip(row: ProductRow) -> str:
    return (
        f"S2{row.platform}_OPER_MSI_{_s2_level(row)}_DS_{_s2_centre(row)}_"
        f"{_stamp(row.processing_us)}_S{_stamp(row.start_us)}_N{row.baseline}"
    )


def _granule(row: ProductRow) -> str:
    return (
        f"S2{row.platform}_OPER_MSI_{_s2_level(row)}_TL_{_s2_centre(row)}_"
        f"{_stamp(row.processing_us)}_A{row.orbit:06d}_T{row.tile}_N{row.baseline}"
    )


def _product_group(row: ProductRow) -> str:
    return f"GS2{row.platform}_{_stamp(row.start_us)}_{row.orbit:06d}_N{row.baseline}"


def _s1_cycle(row: ProductRow) -> int | None:
    # Published S1A rule: cycles of 175 orbits counted from orbit 73.
    return None if row.orbit is None else (row.orbit - 73) // 175 + 1


def _slice_flag(row: ProductRow) -> bool | None:
    return None if row.total_slices is None else row.total_slices > 1


def _composition(row: ProductRow) -> str | None:
    return None if row.total_slices is None else ("Slice" if row.total_slices > 1 else "Individual")


def _completion_from_anx(row: ProductRow) -> float | None:
    if row.anx_ms is None:
        return None
    return round(row.anx_ms + (row.end_us - row.start_us) / 1000.0, 3)


def _shared(platform_name: str) -> tuple[AttributeDef, ...]:
    return (
        AttributeDef("productType", "String", column="product_type"),
        AttributeDef("platformShortName", "String", constant=platform_name),
        AttributeDef("platformSerialIdentifier", "String", column="platform"),
    )


_TIMES = (
    AttributeDef("processingDate", "DateTimeOffset", column="processing_us"),
    AttributeDef("beginningDateTime", "DateTimeOffset", column="start_us"),
    AttributeDef("endingDateTime", "DateTimeOffset", column="end_us"),
)

_SENTINEL_2 = (
    # ESA, or CloudFerro for the L2A it generated at baseline 99.99 (§11.1).
    AttributeDef("origin", "String", column="origin"),
    AttributeDef("tileId", "String", column="tile"),
    AttributeDef("cloudCover", "Double", column="cloud_cover"),
    AttributeDef("datastripId", "String", derive=_datastrip),
    AttributeDef("orbitNumber", "Integer", column="orbit"),
    AttributeDef("lastOrbitNumber", "Integer", column="orbit"),
    AttributeDef("relativeOrbitNumber", "Integer", column="relative_orbit"),
    AttributeDef("productGroupId", "String", derive=_product_group),
    AttributeDef("granuleIdentifier", "String", derive=_granule),
    AttributeDef("operationalMode", "String", column="mode"),
    # In S2 the processing level is the product type (cdse-api.md §8.2).
    AttributeDef("processingLevel", "String", column="product_type"),
    AttributeDef("processorVersion", "String", column="baseline"),
    AttributeDef("processingBaseline", "String", column="baseline"),
    AttributeDef("qualityStatus", "String", constant="NOMINAL"),
    AttributeDef("instrumentShortName", "String", constant="MSI"),
    *_shared("SENTINEL-2"),
    *_TIMES,
    AttributeDef("coordinates", "String", listed_only=True),
    AttributeDef("qualityInfo", "Integer", listed_only=True),
    AttributeDef("sourceProduct", "String", listed_only=True),
    AttributeDef("processingCenter", "String", listed_only=True),
    AttributeDef("illuminationZenithAngle", "Double", listed_only=True),
    AttributeDef("sourceProductOriginDate", "DateTimeOffset", listed_only=True),
)

_SENTINEL_1 = (
    AttributeDef("productType", "String", column="product_type"),
    AttributeDef("operationalMode", "String", column="mode"),
    AttributeDef(
        "swathIdentifier",
        "String",
        by_type={
            "IW_GRDH_1S": "IW",
            "IW_GRDH_1S-COG": "IW",
            "IW_SLC__1S": "IW1 IW2 IW3",
            "EW_GRDM_1S": "EW",
        },
    ),
    AttributeDef("polarisationChannels", "String", column="polarisation"),
    AttributeDef("orbitDirection", "String", column="orbit_direction"),
    AttributeDef("orbitNumber", "Integer", column="orbit"),
    AttributeDef("relativeOrbitNumber", "Integer", column="relative_orbit"),
    AttributeDef("cycleNumber", "Integer", derive=_s1_cycle, sql="((p.orbit - 73) / 175 + 1)"),
    AttributeDef("datatakeID", "Integer", column="datatake"),
    AttributeDef("sliceNumber", "Integer", column="slice_number"),
    AttributeDef("totalSlices", "Integer", column="total_slices"),
    AttributeDef("sliceProductFlag", "Boolean", derive=_slice_flag, sql="(p.total_slices > 1)"),
    AttributeDef(
        "productComposition",
        "String",
        derive=_composition,
        sql="(CASE WHEN p.total_slices > 1 THEN 'Slice' ELSE 'Individual' END)",
    ),
    AttributeDef("segmentStartTime", "DateTimeOffset", column="segment_start_us"),
    AttributeDef("startTimeFromAscendingNode", "Double", column="anx_ms"),
    AttributeDef(
        "completionTimeFromAscendingNode",
        "Double",
        derive=_completion_from_anx,
        sql="round(p.anx_ms + (p.end_us - p.start_us) / 1000.0, 3)",
    ),
    AttributeDef("timeliness", "String", column="timeliness"),
    AttributeDef("productClass", "String", constant="S"),
    AttributeDef("processingLevel", "String", constant="LEVEL1"),
    AttributeDef("processorName", "String", constant="Sentinel-1 IPF"),
    AttributeDef("processorVersion", "String", column="baseline"),
    AttributeDef("processingBaseline", "String", column="baseline"),
    AttributeDef("processingCenter", "String", constant="Production Service-SERCO"),
    AttributeDef("productGeneration", "DateTimeOffset", column="processing_us"),
    AttributeDef("origin", "String", constant="ESA"),
    AttributeDef("platformShortName", "String", constant="SENTINEL-1"),
    AttributeDef("platformSerialIdentifier", "String", column="platform"),
    AttributeDef("instrumentShortName", "String", constant="SAR"),
    *_TIMES,
    AttributeDef("coordinates", "String", listed_only=True),
    AttributeDef("productConsolidation", "String", listed_only=True),
    AttributeDef("instrumentConfigurationID", "Integer", listed_only=True),
)

_S3_INSTRUMENT = {
    "OL_1_EFR___": "OLCI",
    "OL_2_LFR___": "OLCI",
    "SL_1_RBT___": "SLSTR",
    "SL_2_LST___": "SLSTR",
}
_S3_LEVEL = {
    "OL_1_EFR___": "1",
    "OL_2_LFR___": "2",
    "SL_1_RBT___": "1",
    "SL_2_LST___": "2",
}

_SENTINEL_3 = (
    *_shared("SENTINEL-3"),
    AttributeDef("instrumentShortName", "String", by_type=_S3_INSTRUMENT),
    AttributeDef("processingLevel", "String", by_type=_S3_LEVEL),
    AttributeDef("orbitNumber", "Integer", column="orbit"),
    AttributeDef("relativeOrbitNumber", "Integer", column="relative_orbit"),
    AttributeDef("cycleNumber", "Integer", column="datatake"),
    AttributeDef("orbitDirection", "String", column="orbit_direction"),
    AttributeDef("operationalMode", "String", column="mode"),
    AttributeDef("timeliness", "String", column="timeliness"),
    AttributeDef("baselineCollection", "String", column="baseline"),
    AttributeDef("origin", "String", constant="ESA"),
    *_TIMES,
    AttributeDef("coordinates", "String", listed_only=True),
)

_SENTINEL_5P = (
    AttributeDef("productType", "String", column="product_type"),
    AttributeDef("processingMode", "String", column="timeliness"),
    AttributeDef("processingLevel", "String", constant="L2"),
    AttributeDef("processorVersion", "String", column="baseline"),
    AttributeDef("orbitNumber", "Integer", column="orbit"),
    AttributeDef("platformShortName", "String", constant="SENTINEL-5P"),
    AttributeDef("instrumentShortName", "String", constant="TROPOMI"),
    AttributeDef("origin", "String", constant="ESA"),
    *_TIMES,
    AttributeDef("coordinates", "String", listed_only=True),
)

_BY_COLLECTION: dict[str, tuple[AttributeDef, ...]] = {
    "SENTINEL-1": _SENTINEL_1,
    "SENTINEL-2": _SENTINEL_2,
    "SENTINEL-3": _SENTINEL_3,
    "SENTINEL-5P": _SENTINEL_5P,
}
_INDEX = {name: i for i, name in enumerate(PRODUCT_COLUMNS)}
_DEFINITIONS = {
    (collection, d.name): d
    for collection, defs in _BY_COLLECTION.items()
    for d in defs
    if not d.listed_only
}


def attributes_of(collection: str) -> tuple[AttributeDef, ...]:
    """Attributes products of a collection carry, in entity order (empty if unknown)."""
    return tuple(d for d in _BY_COLLECTION.get(collection, ()) if not d.listed_only)


def definition(collection: str, name: str) -> AttributeDef | None:
    """The definition of attribute ``name`` in a collection (exact, case-sensitive name)."""
    return _DEFINITIONS.get((collection, name))


def attribute_listing(collection: str) -> list[dict[str, str]] | None:
    """The body of ``GET Attributes(<COLLECTION>)`` (cdse-api.md §3.1), ``None`` if unknown."""
    defs = _BY_COLLECTION.get(collection)
    if defs is None:
        return None
    return [{"Name": d.name, "ValueType": d.value_type} for d in defs]


def derived_value(collection: str, name: str, row: ProductRow) -> str | int | float | bool | None:
    """Value of a ``derive`` attribute for a row (used by the SQL function)."""
    found = _DEFINITIONS.get((collection, name))
    if found is None or found.derive is None:
        return None
    return found.derive(row)


def raw_value(d: AttributeDef, row: ProductRow) -> str | int | float | bool | None:
    """The value of an attribute as stored (times as epoch µs, booleans as bool)."""
    if d.column is not None:
        value = row[_INDEX[d.column]]
        if d.value_type == "Boolean" and value is not None:
            return bool(value)
        assert not isinstance(value, bytes)
        return value
    if d.by_type:
        return d.by_type.get(row.product_type)
    if d.derive is not None:
        return d.derive(row)
    return d.constant


_Renderer = tuple[str, str, str, Callable[[ProductRow], object]]
_RENDERERS: dict[str, tuple[_Renderer, ...]] = {}


def _getter(d: AttributeDef) -> Callable[[ProductRow], object]:
    if d.column is not None:
        index = _INDEX[d.column]
        if d.value_type == "DateTimeOffset":
            return lambda row: None if row[index] is None else format_time(cast(int, row[index]))
        if d.value_type == "Boolean":
            return lambda row: None if row[index] is None else bool(row[index])
        return lambda row: row[index]
    if d.by_type:
        table = d.by_type
        return lambda row: table.get(row.product_type)
    if d.derive is not None:
        return d.derive
    constant = d.constant
    return lambda row: constant


def _renderers(collection: str) -> tuple[_Renderer, ...]:
    found = _RENDERERS.get(collection)
    if found is None:
        found = tuple(
            (f"#OData.CSC.{d.value_type}Attribute", d.name, d.value_type, _getter(d))
            for d in attributes_of(collection)
        )
        _RENDERERS[collection] = found
    return found


def render_attributes(row: ProductRow) -> list[dict[str, object]]:
    """The ``Attributes`` array of a product (cdse-api.md §3.3 shape)."""
    rendered: list[dict[str, object]] = []
    for odata_type, name, value_type, getter in _renderers(row.collection):
        value = getter(row)
        if value is not None:
            rendered.append(
                {"@odata.type": odata_type, "Name": name, "Value": value, "ValueType": value_type}
            )
    return rendered
