"""Renders stored products as CDSE Product entities (cdse-api.md §3.2-§3.4, §8.4, §9.2).

Key order is part of the contract: ``@odata.mediaContentType`` first, then the properties
in the order of §3.2, then the expansions in the order they were asked for. Datetimes
carry six fractional digits and ``Z``, except on the share of older entities
:mod:`.quirks` describes (with the other forms real answers take). ``ContentLength`` and
``Checksum`` describe the bytes the download host serves, so they come from the
:class:`ArchiveSource`, asked lazily and only for products being rendered; legacy
products show ``0`` and ``[]``.
"""

from __future__ import annotations

from collections.abc import Sequence

from sentinel_fetch.emulator.model import ArchiveSource, CompressedArchives

from . import quirks
from .attributes import render_attributes
from .schema import ProductRow, format_time, format_uuid, to_datetime
from .store import CatalogueStore

__all__ = [
    "EXPANSIONS",
    "PROPERTIES",
    "EntityRenderer",
    "asset_uid",
    "product_uid_of_asset",
    "s3_path",
]

#: Selectable properties, in response order (§3.2).
PROPERTIES = (
    "Id",
    "Name",
    "ContentType",
    "ContentLength",
    "OriginDate",
    "PublicationDate",
    "ModificationDate",
    "Online",
    "EvictionDate",
    "S3Path",
    "Checksum",
    "ContentDate",
    "Footprint",
    "GeoFootprint",
)
#: Navigation properties of ``$expand``.
EXPANSIONS = ("Attributes", "Assets", "Locations")

_OCTET_STREAM = "application/octet-stream"
# Asset Ids are product Ids with these bits flipped: version and variant bits stay, so
# an asset Id is a well-formed UUID, and no table is needed to find its product.
_ASSET_MASK = bytes.fromhex("5a3c96e1c4b20f1e3d7a96e1c4b20f1e")
_S1_NEW_LAYOUT_US = 1_704_067_200_000_000  # 2024-01-01: /SAR/<productType>/ paths


def asset_uid(product_uid: bytes) -> bytes:
    """The quicklook asset Id of a product (an involution: applying it twice is identity).

    >>> asset_uid(asset_uid(bytes(range(16)))) == bytes(range(16))
    True
    """
    return bytes(a ^ b for a, b in zip(product_uid, _ASSET_MASK, strict=True))


product_uid_of_asset = asset_uid


def s3_path(row: ProductRow) -> str:
    """``S3Path`` of a product (§8.4).

    Sentinel-2 reprocessed products (baseline 05.00) live under ``L1C_N0500``/``L2A_N0500``;
    Sentinel-1 holdings sensed before 2024 use the older ``/SAR/GRD/`` and ``/SAR/SLC/``
    folders, newer ones one folder per product type.
    """
    day = to_datetime(row.start_us).strftime("%Y/%m/%d")
    if row.collection == "SENTINEL-2":
        level = "L1C" if row.product_type == "S2MSI1C" else "L2A"
        suffix = "_N0500" if row.baseline == "05.00" else ""
        folder = f"Sentinel-2/MSI/{level}{suffix}"
    elif row.collection == "SENTINEL-1":
        kind = row.product_type
        if row.start_us < _S1_NEW_LAYOUT_US and not kind.endswith("-COG"):
            kind = "SLC" if "_SLC_" in kind else "GRD"
        folder = f"Sentinel-1/SAR/{kind}"
    elif row.collection == "SENTINEL-3":
        instrument = "OLCI" if row.product_type.startswith("OL") else "SLSTR"
        folder = f"Sentinel-3/{instrument}/{row.product_type}"
    else:
        folder = f"Sentinel-5P/TROPOMI/{row.product_type}"
    return f"/eodata/{folder}/{day}/{row.name}"


class EntityRenderer:
    """Turns rows into entity dictionaries for one response.

    Args:
        store: for footprint text.
        archives: lengths and checksums of the served bytes.
        base_url: ``scheme://host:port`` of the catalogue, for asset and location links.
    """

    def __init__(self, store: CatalogueStore, archives: ArchiveSource, base_url: str) -> None:
        self._store = store
        self._archives = archives
        self._base = f"{base_url}/odata/v1"

    def _content(self, row: ProductRow) -> tuple[int, list[dict[str, str]]]:
        if row.legacy:
            return 0, []
        info = self._archives.info(row.record())
        if quirks.empty_checksum_entry(row):
            return info.length, [{}]
        # Checksums are computed moments before the last modification.
        md5_us = row.modification_us - 1_400_000 + int.from_bytes(row.uid[-2:], "big") % 500_000
        blake3_us = md5_us + 250_000 + row.uid[-3] * 400
        return info.length, [
            {"Value": info.md5, "Algorithm": "MD5", "ChecksumDate": format_time(md5_us)},
            {"Value": info.blake3, "Algorithm": "BLAKE3", "ChecksumDate": format_time(blake3_us)},
        ]

    def render(
        self,
        row: ProductRow,
        select: frozenset[str] | None = None,
        expand: Sequence[str] = (),
    ) -> dict[str, object]:
        """One entity; ``select=None`` means every property (``Id`` is always present)."""
        wanted = set(PROPERTIES) if select is None else {"Id", *select}
        needs_content = bool(wanted & {"ContentLength", "Checksum"}) or "Locations" in expand
        length, checksums = self._content(row) if needs_content else (0, [])
        path = s3_path(row)
        entity: dict[str, object] = {"@odata.mediaContentType": _OCTET_STREAM}
        product_id = format_uuid(row.uid)
        written = quirks.time_format(row)
        if quirks.drops_geo_footprint(row):
            wanted.discard("GeoFootprint")
        for name in PROPERTIES:
            if name not in wanted:
                continue
            if name == "Id":
                entity[name] = product_id
            elif name == "Name":
                entity[name] = row.name
            elif name == "ContentType":
                entity[name] = _OCTET_STREAM
            elif name == "ContentLength":
                entity[name] = length
            elif name == "OriginDate":
                entity[name] = written(row.origin_us)
            elif name == "PublicationDate":
                entity[name] = written(row.publication_us)
            elif name == "ModificationDate":
                entity[name] = written(row.modification_us)
            elif name == "Online":
                entity[name] = bool(row.online)
            elif name == "EvictionDate":
                entity[name] = quirks.eviction_date(row)
            elif name == "S3Path":
                entity[name] = path
            elif name == "Checksum":
                entity[name] = checksums
            elif name == "ContentDate":
                entity[name] = {"Start": written(row.start_us), "End": written(row.end_us)}
            elif name == "Footprint":
                entity[name] = self._store.footprint(row.footprint_id)[0]
            else:
                entity[name] = self._store.footprint(row.footprint_id)[1]
        for navigation in expand:
            if navigation == "Attributes":
                entity["Attributes"] = quirks.adjust_attributes(row, render_attributes(row))
            elif navigation == "Assets":
                asset = format_uuid(asset_uid(row.uid))
                entity["Assets"] = [
                    {
                        "Type": "QUICKLOOK",
                        "Id": asset,
                        "DownloadLink": f"{self._base}/Assets({asset})/$value",
                        "S3Path": path,
                    }
                ]
            else:
                locations: list[dict[str, object]] = [
                    {
                        "FormatType": "Extracted",
                        "DownloadLink": f"{self._base}/Products({product_id})/$value",
                        "ContentLength": length,
                        "Checksum": checksums,
                        "S3Path": path,
                    }
                ]
                # Sentinel-1 inside its first month adds the native compressed form (§5.8).
                if isinstance(self._archives, CompressedArchives):
                    compressed = self._archives.compressed_location(row.record(), self._base)
                    if compressed is not None:
                        locations.append(compressed)
                entity["Locations"] = locations
        return entity
