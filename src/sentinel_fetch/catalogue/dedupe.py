"""Reprocessed twins: keep one product per datatake and tile (cdse-api.md §11.3).

The catalogue can hold one Sentinel-2 datatake and tile several times: the pre-Collection-1
original next to its reprocessing, a product processed again hours later, a CloudFerro L2A
at baseline 99.99. Those are twins, and a batch needs one of each. But the same datatake
can also leave a tile in two *partial* tiles from two datastrips, and both are needed. So:

1. **Group key**: mission and platform, processing level, sensing start, relative orbit
   and tile, from the name (``S2B_MSIL2A_20240612T103629_N0510_R008_T32UNE_...``) or the
   attributes. Products without one (Sentinel-1, -3, -5P) are never grouped.
2. **Preference** within a group: Collection-1 (05.00, 05.10 and later) first, then the
   higher baseline, with 99.99 the lowest and 05.09 below Collection-1 (it is being
   reprocessed); then ``origin`` ESA over CloudFerro; then the latest processing time.
3. **Footprints**: a product is dropped only for a preferred one whose footprint nearly
   coincides with its own (intersection over union at least ``min_overlap``, 0.9 by
   default: our threshold, not CDSE's); complementary partial tiles both stay, and so does
   a product without a footprint.
4. Every drop is returned with its reason: nothing disappears silently.

Everything here is pure: products in, a :class:`Deduplication` out.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime

from shapely.geometry.base import BaseGeometry

from sentinel_fetch.catalogue.footprint import equal_area, footprint_of
from sentinel_fetch.catalogue.product import Product

__all__ = [
    "DEFAULT_MIN_OVERLAP",
    "Deduplication",
    "DroppedTwin",
    "deduplicate",
    "group_key",
    "preference",
]

#: Intersection over union above which two twins count as the same outline.
DEFAULT_MIN_OVERLAP = 0.9

# S2A_MSIL2A_<sensing>_N<baseline>_R<orbit>_T<tile>_<processing>[.SAFE]
_S2_NAME = re.compile(
    r"^(S2[A-D])_MSI(L1C|L2A)_(\d{8}T\d{6})_N(\d{4})_R(\d{3})_T(\w{5})_(\d{8}T\d{6})",
    re.IGNORECASE,
)
_LOWEST_BASELINE = "99.99"  # CloudFerro-generated L2A: the lowest, never the highest
_REPLACED_BASELINE = "05.09"  # ESA no longer counts it as Collection-1


@dataclass(frozen=True)
class DroppedTwin:
    """A product left out, the one kept instead, and why.

    Attributes:
        product: the product dropped.
        kept: the twin kept in its place.
        reason: one line: which rule decided (baseline, origin or processing time) and
            how much the footprints overlap.
        overlap: intersection over union of the two footprints (0-1).
    """

    product: Product
    kept: Product
    reason: str
    overlap: float


@dataclass(frozen=True)
class Deduplication:
    """The outcome: the products kept (in their original order) and the drops."""

    kept: list[Product]
    dropped: list[DroppedTwin]


def group_key(product: Product) -> tuple[str, ...] | None:
    """The datatake-and-tile key of a Sentinel-2 product, ``None`` for others.

    >>> group_key(Product(id="x", name="S2B_MSIL2A_20240612T103629_N0510_R008_T32UNE_"
    ...     "20240612T140000.SAFE"))
    ('S2B', 'L2A', '20240612T103629', '008', '32UNE')
    >>> group_key(Product(id="y", name="S1A_IW_GRDH_1SDV_20240604T110100.SAFE")) is None
    True
    """
    match = _S2_NAME.match(product.name)
    if match is not None:
        platform, level, sensing, _, orbit, tile, _ = match.groups()
        return (platform.upper(), level.upper(), sensing, orbit, tile.upper())
    attributes = product.attributes
    level = attributes.get("processingLevel") or product.product_type
    platform = attributes.get("platformSerialIdentifier")
    sensing = attributes.get("beginningDateTime") or product.content_start
    orbit = product.relative_orbit
    tile = product.tile_id
    if product.collection != "SENTINEL-2" or None in (level, platform, sensing, orbit, tile):
        return None
    when = sensing.strftime("%Y%m%dT%H%M%S") if isinstance(sensing, datetime) else str(sensing)
    return (f"S2{platform}", str(level).upper(), when, f"{orbit:03d}", str(tile).upper())


def _baseline(product: Product) -> str | None:
    match = _S2_NAME.match(product.name)
    if match is not None:
        digits = match.group(4)
        return f"{digits[:2]}.{digits[2:]}"
    value = product.attributes.get("processingBaseline")
    return value if isinstance(value, str) else None


def _processing_time(product: Product) -> str:
    match = _S2_NAME.match(product.name)
    if match is not None:
        return match.group(7)
    value = product.attributes.get("processingDate")
    return value.strftime("%Y%m%dT%H%M%S") if isinstance(value, datetime) else ""


def _origin(product: Product) -> str:
    value = product.attributes.get("origin")
    return value if isinstance(value, str) else ""


def _is_collection_1(baseline: str | None) -> bool:
    return (
        baseline is not None
        and baseline not in (_LOWEST_BASELINE, _REPLACED_BASELINE)
        and baseline >= "05.00"
    )


def preference(product: Product) -> tuple[bool, str, bool, str]:
    """Sort key of a product within its group: the largest is kept.

    >>> old = Product(id="a", name="S2A_MSIL2A_20200101T100000_N0209_R022_T32TQM_20200101T120000")
    >>> c1 = Product(id="b", name="S2A_MSIL2A_20200101T100000_N0500_R022_T32TQM_20230301T120000")
    >>> cf = Product(id="c", name="S2A_MSIL2A_20200101T100000_N9999_R022_T32TQM_20230501T120000")
    >>> max([old, c1, cf], key=preference).id, min([old, c1, cf], key=preference).id
    ('b', 'c')
    """
    baseline = _baseline(product)
    ranked = "" if baseline in (None, _LOWEST_BASELINE) else baseline
    return (
        _is_collection_1(baseline),
        ranked or "",
        _origin(product).upper() != "CLOUDFERRO",
        _processing_time(product),
    )


def _overlap(first: BaseGeometry | None, second: BaseGeometry | None) -> float:
    """Intersection over union, on the ground (equal-area)."""
    if first is None or second is None:
        return 0.0
    first, second = equal_area(first), equal_area(second)
    union = first.union(second).area
    return 0.0 if union <= 0 else float(first.intersection(second).area / union)


def _reason(dropped: Product, kept: Product, overlap: float) -> str:
    """Which rule of the preference order decided, in words."""
    old, new = preference(dropped), preference(kept)
    old_baseline, new_baseline = _baseline(dropped) or "?", _baseline(kept) or "?"
    if old[0] != new[0]:
        why = f"Collection-1 baseline {new_baseline} preferred over {old_baseline}"
    elif old[1] != new[1]:
        why = f"baseline {new_baseline} preferred over {old_baseline}"
    elif old[2] != new[2]:
        why = f"origin {_origin(kept) or 'ESA'} preferred over {_origin(dropped)}"
    else:
        why = (
            f"processed later ({_processing_time(kept) or '?'} over "
            f"{_processing_time(dropped) or '?'})"
        )
    datastrip = dropped.attributes.get("datastripId")
    strip = f"; datastrip {datastrip}" if isinstance(datastrip, str) else ""
    return f"twin of {kept.name}: {why}; footprints overlap {overlap:.0%}{strip}"


def deduplicate(
    products: Iterable[Product], *, min_overlap: float = DEFAULT_MIN_OVERLAP
) -> Deduplication:
    """Drop reprocessed twins, keeping complementary partial tiles.

    Args:
        products: search results, in any order; the kept ones keep that order.
        min_overlap: intersection over union (0-1] from which two twins' footprints
            count as the same outline.

    Raises:
        ValueError: ``min_overlap`` outside (0, 1].
    """
    if not 0 < min_overlap <= 1:
        raise ValueError(f"min_overlap must be in (0, 1], got {min_overlap}")
    listed = list(products)
    groups: dict[tuple[str, ...], list[int]] = {}
    for index, product in enumerate(listed):
        key = group_key(product)
        if key is not None:
            groups.setdefault(key, []).append(index)
    dropped: dict[int, DroppedTwin] = {}
    for members in groups.values():
        if len(members) > 1:
            dropped.update(_resolve(listed, members, min_overlap))
    kept = [product for index, product in enumerate(listed) if index not in dropped]
    return Deduplication(kept, [dropped[index] for index in sorted(dropped)])


def _resolve(
    listed: Sequence[Product], members: list[int], min_overlap: float
) -> dict[int, DroppedTwin]:
    best_first = sorted(members, key=lambda i: preference(listed[i]), reverse=True)
    outlines = {i: footprint_of(listed[i]) for i in members}
    kept: list[int] = []
    dropped: dict[int, DroppedTwin] = {}
    for index in best_first:
        for winner in kept:
            overlap = _overlap(outlines[index], outlines[winner])
            if overlap >= min_overlap:
                reason = _reason(listed[index], listed[winner], overlap)
                dropped[index] = DroppedTwin(listed[index], listed[winner], reason, overlap)
                break
        else:
            kept.append(index)
    return dropped
