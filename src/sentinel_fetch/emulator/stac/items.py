"""Renders catalogue products as STAC items (cdse-api.md §9.5-9.7, §13.4).

An item is built from the same stored row as the OData entity (same name, footprint,
dates, orbits) and from the archive's per-file digests, so every number a client can
verify is the truth about the bytes served:

* ``id`` is the product name without ``.SAFE``; ``geometry`` the OData ``GeoFootprint``;
  ``datetime``/``start_datetime``/``end_datetime`` the ``ContentDate``; ``created``,
  ``updated``, ``published``, ``expires`` the origin, modification, publication and
  eviction dates (§9.5).
* One asset per file CDSE lists (§9.6): the images of ``IMG_DATA`` (``B04_10m``…), the
  measurement rasters and annotations of Sentinel-1, the metadata XML, the manifest,
  the thumbnail and the zipped ``Product``. A file asset's ``href`` is its ``s3://``
  path, its ``alternate.https.href`` the Nodes URL on the zipper origin (Bearer token,
  the bytes of the zip's member), plus ``file:size``, ``file:checksum`` and
  ``file:local_path``.
* ``file:checksum`` is a multihash (§9.7): SHA3-256 (``1620…``) for image and raster
  files and Sentinel-1 annotations, MD5 (``d50110…``) for the manifest, the thumbnail
  and the zip (whose MD5 is OData's); the metadata XML carry the malformed
  ``d50120…`` (MD5 code, 32-byte SHA3-256 digest) unless
  ``stac_malformed_metadata_checksums`` is off, when they get a real MD5.
* The ``thumbnail`` points at the quicklook origin's ``Assets(<uuid>)/$value`` (which
  redirects to a second origin and needs no token, §5.9); its UUID is OData's quicklook
  asset Id (CDSE's generator takes the link from OData [INFERRED]), its bytes those of
  the SAFE's thumbnail file, also its ``s3`` alternate.

Angles, statistics and projection numbers are deterministic functions of the product
(synthetic, plausible); legacy products (OData ``Checksum: []``, ``ContentLength: 0``)
have a ``Product`` asset without size and checksum, as CDSE's generator skips them.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Any

import numpy as np

from sentinel_fetch.emulator.archive import ArchiveStore
from sentinel_fetch.emulator.catalogue.attributes import derived_value
from sentinel_fetch.emulator.catalogue.entity import asset_uid, s3_path
from sentinel_fetch.emulator.catalogue.hashing import fraction, stable_hash
from sentinel_fetch.emulator.catalogue.mgrs import utm_forward
from sentinel_fetch.emulator.catalogue.schema import ProductRow, format_time, format_uuid
from sentinel_fetch.emulator.config import EmulatorConfig
from sentinel_fetch.emulator.model import FileDigest

from .collections import STAC_VERSION, StacCollection, collection_of

__all__ = ["ItemLinks", "ItemRenderer", "multihash"]

_EXTENSIONS = (
    "https://cs-si.github.io/eopf-stac-extension/v1.2.0/schema.json",
    "https://stac-extensions.github.io/alternate-assets/v1.2.0/schema.json",
    "https://stac-extensions.github.io/authentication/v1.1.0/schema.json",
    "https://stac-extensions.github.io/eo/v2.0.0/schema.json",
    "https://stac-extensions.github.io/file/v2.1.0/schema.json",
    "https://stac-extensions.github.io/grid/v1.1.0/schema.json",
    "https://stac-extensions.github.io/processing/v1.2.0/schema.json",
    "https://stac-extensions.github.io/product/v1.0.0/schema.json",
    "https://stac-extensions.github.io/projection/v2.0.0/schema.json",
    "https://stac-extensions.github.io/raster/v2.0.0/schema.json",
    "https://stac-extensions.github.io/sat/v1.1.0/schema.json",
    "https://stac-extensions.github.io/storage/v2.0.0/schema.json",
    "https://stac-extensions.github.io/timestamps/v1.1.0/schema.json",
    "https://stac-extensions.github.io/view/v1.1.0/schema.json",
)
_SAR_EXTENSION = "https://stac-extensions.github.io/sar/v1.2.0/schema.json"
_CLASSIFICATION = "https://stac-extensions.github.io/classification/v2.0.0/schema.json"

#: COSPAR designators (``sat:platform_international_designator``).
_DESIGNATORS = {
    "S1A": "2014-016A",
    "S1B": "2016-025A",
    "S1C": "2024-235A",
    "S2A": "2015-028A",
    "S2B": "2017-013A",
    "S2C": "2024-157A",
}
#: Sentinel-2 bands: description, centre wavelength and width (µm), common name.
_S2_BANDS = {
    "B01": ("Coastal aerosol (band 1)", 0.443, 0.027, "coastal"),
    "B02": ("Blue (band 2)", 0.490, 0.098, "blue"),
    "B03": ("Green (band 3)", 0.560, 0.045, "green"),
    "B04": ("Red (band 4)", 0.665, 0.038, "red"),
    "B05": ("Red edge 1 (band 5)", 0.705, 0.019, "rededge071"),
    "B06": ("Red edge 2 (band 6)", 0.740, 0.018, "rededge075"),
    "B07": ("Red edge 3 (band 7)", 0.783, 0.028, "rededge078"),
    "B08": ("NIR 1 (band 8)", 0.842, 0.145, "nir"),
    "B8A": ("NIR 2 (band 8A)", 0.865, 0.033, "nir08"),
    "B09": ("NIR 3 (band 9)", 0.945, 0.026, "nir09"),
    "B10": ("Cirrus (band 10)", 1.375, 0.075, "cirrus"),
    "B11": ("SWIR 1 (band 11)", 1.610, 0.143, "swir16"),
    "B12": ("SWIR 2 (band 12)", 2.190, 0.242, "swir22"),
}
_NATIVE_GSD = {
    **dict.fromkeys(("B02", "B03", "B04", "B08", "TCI", "AOT", "WVP"), 10),
    **dict.fromkeys(("B05", "B06", "B07", "B8A", "B11", "B12", "SCL"), 20),
    **dict.fromkeys(("B01", "B09", "B10"), 60),
}
_OTHER_IMAGES = {
    "AOT": "Aerosol optical thickness (AOT)",
    "WVP": "Water vapour (WVP)",
    "SCL": "Scene classification map (SCL)",
    "TCI": "True color image",
}
_SCL_CLASSES = (
    (0, "no_data"),
    (1, "saturated_or_defective"),
    (2, "dark_area_pixels"),
    (3, "cloud_shadows"),
    (4, "vegetation"),
    (5, "not_vegetated"),
    (6, "water"),
    (7, "unclassified"),
    (8, "cloud_medium_probability"),
    (9, "cloud_high_probability"),
    (10, "thin_cirrus"),
    (11, "snow"),
)
_POLARISATIONS = {
    "VV": "VV: vertical transmit, vertical receive",
    "VH": "VH: vertical transmit, horizontal receive",
    "HH": "HH: horizontal transmit, horizontal receive",
    "HV": "HV: horizontal transmit, vertical receive",
}
_S2_IMAGE = re.compile(
    r"/IMG_DATA/(?:R(?P<res>\d+)m/)?[^/]*_(?P<band>B\d[\dA]|AOT|SCL|TCI|WVP)(?:_\d+m)?\.jp2$"
)
_S1_RASTER = re.compile(r"/measurement/s1[a-d]-(?P<swath>[a-z]+\d?)-[a-z]+-(?P<pol>[hv]{2})-")
_S1_SCHEMA = re.compile(
    r"/annotation/(?:calibration/(?P<kind>calibration|noise)-)?s1[a-d]-(?P<swath>[a-z]+\d?)-[a-z]+-(?P<pol>[hv]{2})-.*\.xml$"
)
_METADATA = {
    "MTD_MSIL2A.xml": "product_metadata",
    "MTD_MSIL1C.xml": "product_metadata",
    "MTD_TL.xml": "granule_metadata",
    "MTD_DS.xml": "datastrip_metadata",
    "INSPIRE.xml": "inspire_metadata",
}


def multihash(code: int, digest_hex: str) -> str:
    """The hex form of a multihash: varint code, digest length, digest (cdse-api.md §9.7).

    ``code`` 0x16 is SHA3-256, 0xd5 MD5 (varint ``d5 01``).

    >>> multihash(0xD5, "00" * 16)[:6], multihash(0x16, "00" * 32)[:4]
    ('d50110', '1620')
    """
    varint = bytearray()
    value = code
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            varint.append(byte | 0x80)
        else:
            varint.append(byte)
            break
    return varint.hex() + f"{len(digest_hex) // 2:02x}" + digest_hex.lower()


@dataclass(frozen=True)
class ItemLinks:
    """The origins an item's links and hrefs point at (each ``scheme://host:port``).

    Attributes:
        stac: ``…/v1`` of the STAC API (no trailing slash).
        zipper: ``…/odata/v1`` of the download host's zipper origin (per-file URLs).
        download: ``…/odata/v1`` of the download host (the ``Product`` asset).
        quicklook: ``…/odata/v1`` of the thumbnail host.
        realm: the identity realm (``…/auth/realms/CDSE``).
    """

    stac: str
    zipper: str
    download: str
    quicklook: str
    realm: str


def _round(value: float, digits: int = 4) -> float:
    return float(round(value, digits))


class ItemRenderer:
    """Turns stored products into STAC items.

    Args:
        store: footprints (``CatalogueStore``).
        archives: per-file digests of the served bytes.
        config: the checksum switch.
        links: where links and hrefs point.
    """

    def __init__(
        self, store: Any, archives: ArchiveStore, config: EmulatorConfig, links: ItemLinks
    ) -> None:
        self._store = store
        self._archives = archives
        self._config = config
        self._links = links

    def render(self, row: ProductRow) -> dict[str, Any]:
        """The full item of a product STAC serves."""
        collection = collection_of(row.collection, row.product_type)
        assert collection is not None, f"{row.name} is not in a STAC collection"
        item_id = row.name.removesuffix(".SAFE")
        geometry = self._store.footprint(row.footprint_id)[1]
        bounds = self._store.footprint_geometry(row.footprint_id).bounds
        sentinel2 = row.collection == "SENTINEL-2"
        extensions = list(_EXTENSIONS)
        if sentinel2 and row.product_type == "S2MSI2A":
            extensions.append(_CLASSIFICATION)
        if not sentinel2:
            extensions.append(_SAR_EXTENSION)
        item: dict[str, Any] = {
            "type": "Feature",
            "stac_version": STAC_VERSION,
            "stac_extensions": sorted(extensions),
            "collection": collection.id,
            "id": item_id,
            "bbox": [_round(b, 6) for b in bounds],
            "geometry": geometry,
            "properties": self._properties(row, collection),
            "links": self._item_links(row, collection, item_id),
            "assets": self._assets(row, item_id),
        }
        return item

    # Properties ----------------------------------------------------------------------

    def _properties(self, row: ProductRow, collection: StacCollection) -> dict[str, Any]:
        h = stable_hash(row.name)
        start, end = format_time(row.start_us), format_time(row.end_us)
        mission = row.collection[-1]
        platform = f"sentinel-{mission}{(row.platform or 'a').lower()}"
        props: dict[str, Any] = {
            "created": format_time(row.origin_us),
            "updated": format_time(row.modification_us),
            "published": format_time(row.publication_us),
            "eopf:origin_datetime": format_time(row.origin_us),
            "auth:schemes": {
                "s3": {"type": "s3"},
                "oidc": {
                    "type": "openIdConnect",
                    "openIdConnectUrl": f"{self._links.realm}/.well-known/openid-configuration",
                },
            },
            "storage:schemes": {
                "cdse-s3": {
                    "title": "CDSE S3",
                    "description": "CDSE object storage (see the S3 documentation for keys)",
                    "platform": "https://eodata.dataspace.copernicus.eu",
                    "requester_pays": False,
                    "type": "custom-s3",
                },
                "creodias-s3": {
                    "title": "CREODIAS S3",
                    "description": "Commercial EODATA access through CREODIAS",
                    "platform": "https://eodata.cloudferro.com",
                    "requester_pays": True,
                    "type": "custom-s3",
                },
            },
            "datetime": start,
            "start_datetime": start,
            "end_datetime": end,
            "platform": platform,
            "constellation": row.collection.lower(),
            "instruments": list(collection.instruments),
            "processing:datetime": format_time(row.processing_us),
            "processing:version": row.baseline,
            "processing:facility": "ESA",
            "processing:software": {"eometadatatool": "emulated"},
            "product:type": row.product_type,
            "sat:orbit_state": (row.orbit_direction or "DESCENDING").lower(),
            "sat:relative_orbit": row.relative_orbit,
            "sat:absolute_orbit": row.orbit,
        }
        designator = _DESIGNATORS.get(row.name[:3])
        if designator is not None:
            props["sat:platform_international_designator"] = designator
        if row.collection == "SENTINEL-2":
            props.update(
                {
                    "gsd": 10,
                    "processing:level": "L2" if row.product_type == "S2MSI2A" else "L1",
                    "product:timeliness": "PT24H",
                    "product:timeliness_category": "NRT",
                    "eo:cloud_cover": round(row.cloud_cover or 0.0, 2),
                    "eo:snow_cover": round(3.0 * fraction(h, 0) ** 4, 2),
                    "grid:code": f"MGRS-{row.tile}",
                    "view:sun_azimuth": _round(140.0 + 30.0 * fraction(h, 1)),
                    "view:sun_elevation": _round(20.0 + 45.0 * fraction(h, 2)),
                    "view:azimuth": _round(100.0 + 10.0 * fraction(h, 3)),
                    "view:incidence_angle": _round(2.0 + 8.0 * fraction(h, 0)),
                    "eopf:datastrip_id": derived_value(row.collection, "datastripId", row),
                    "eopf:datatake_id": derived_value(row.collection, "productGroupId", row),
                    "eopf:instrument_mode": row.mode,
                }
            )
            if row.product_type == "S2MSI2A":
                props["statistics"] = _statistics(row, h)
        else:
            timeliness = row.timeliness or "Fast-24h"
            pols = (row.polarisation or "VV").split("&")
            props.update(
                {
                    "processing:level": "L1",
                    "product:timeliness": {"NRT-3h": "PT3H", "NRT-10m": "PT10M"}.get(
                        timeliness, "PT24H"
                    ),
                    "product:timeliness_category": timeliness,
                    "sar:frequency_band": "C",
                    "sar:center_frequency": 5.405,
                    "sar:observation_direction": "right",
                    "sar:instrument_mode": row.mode,
                    "sar:polarizations": pols,
                    "sat:orbit_cycle": derived_value(row.collection, "cycleNumber", row),
                    "view:incidence_angle": _round(30.0 + 15.0 * fraction(h, 1)),
                    "eopf:datatake_id": row.datatake,
                }
            )
        props["expires"] = "9999-01-01T00:00:00.000000Z"
        return props

    # Links ---------------------------------------------------------------------------

    def _item_links(
        self, row: ProductRow, collection: StacCollection, item_id: str
    ) -> list[dict[str, Any]]:
        base = self._links.stac
        own = f"{base}/collections/{collection.id}"
        folder = s3_path(row).removeprefix("/eodata/")
        return [
            {
                "rel": "version-history",
                "type": "application/json",
                "title": "Product history record (traceability service)",
                "href": f"https://trace.dataspace.copernicus.eu/api/v1/traces/name/{row.name}.zip",
            },
            {
                "rel": "enclosure",
                "type": "application/x-directory",
                "title": "S3 folder of the SAFE",
                "href": f"s3://eodata/{folder}/",
                "auth:refs": ["s3"],
                "storage:refs": ["cdse-s3", "creodias-s3"],
            },
            {"rel": "self", "type": "application/geo+json", "href": f"{own}/items/{item_id}"},
            {"rel": "parent", "type": "application/json", "href": own},
            {"rel": "collection", "type": "application/json", "href": own},
            {"rel": "root", "type": "application/json", "href": f"{base}/"},
        ]

    # Assets --------------------------------------------------------------------------

    def _assets(self, row: ProductRow, item_id: str) -> dict[str, Any]:
        record = row.record()
        info = self._archives.info(record)
        folder = s3_path(row).removeprefix("/eodata/").removesuffix(row.name)
        product_id = format_uuid(row.uid)
        assets: dict[str, Any] = {}
        images: dict[str, Any] = {}
        for digest in info.files:
            key, extra = self._classify(row, digest)
            if key is None:
                continue
            asset = extra
            asset.update(self._file_fields(digest, key, folder, product_id))
            if key == "thumbnail":
                asset = self._thumbnail(asset, row)
            (images if digest.path.endswith((".jp2", ".tiff")) else assets)[key] = asset
        ordered = dict(sorted(images.items()))
        ordered.update(assets)
        product: dict[str, Any] = {
            "type": "application/zip",
            "title": "Zipped product",
            "roles": ["data", "metadata", "archive"],
        }
        if not row.legacy:
            product["file:size"] = info.length
            product["file:checksum"] = multihash(0xD5, info.md5)
        product["file:local_path"] = f"{row.name}.zip"
        product["href"] = f"{self._links.download}/Products({product_id})/$value"
        product["auth:refs"] = ["oidc"]
        ordered["Product"] = product
        return ordered

    def _file_fields(
        self, digest: FileDigest, key: str, folder: str, product_id: str
    ) -> dict[str, Any]:
        if digest.path.endswith((".jp2", ".tiff")) or key.startswith("schema-"):
            checksum = multihash(0x16, digest.sha3_256)
        elif key in _METADATA.values():
            if self._config.stac_malformed_metadata_checksums:
                checksum = multihash(0xD5, digest.sha3_256)
            else:
                checksum = multihash(0xD5, digest.md5)
        else:
            checksum = multihash(0xD5, digest.md5)
        nodes = "".join(f"/Nodes({part})" for part in digest.path.split("/"))
        return {
            "file:size": digest.size,
            "file:checksum": checksum,
            "file:local_path": digest.path,
            "href": f"s3://eodata/{folder}{digest.path}",
            "alternate:name": "S3",
            "auth:refs": ["s3"],
            "storage:refs": ["cdse-s3", "creodias-s3"],
            "alternate": {
                "https": {
                    "href": f"{self._links.zipper}/Products({product_id}){nodes}/$value",
                    "alternate:name": "HTTPS",
                    "auth:refs": ["oidc"],
                    "storage:refs": [],
                }
            },
        }

    def _thumbnail(self, asset: dict[str, Any], row: ProductRow) -> dict[str, Any]:
        """The thumbnail: HTTPS (no token) on the quicklook host first, S3 as the alternate."""
        s3 = {
            "href": asset["href"],
            "alternate:name": "S3",
            "auth:refs": ["s3"],
            "storage:refs": ["cdse-s3", "creodias-s3"],
        }
        identifier = format_uuid(asset_uid(row.uid))
        thumbnail = {
            key: value
            for key, value in asset.items()
            if key not in ("href", "alternate:name", "auth:refs", "storage:refs", "alternate")
        }
        thumbnail["href"] = f"{self._links.quicklook}/Assets({identifier})/$value"
        thumbnail["alternate:name"] = "HTTPS"
        thumbnail["alternate"] = {"s3": s3}
        return thumbnail

    def _classify(self, row: ProductRow, digest: FileDigest) -> tuple[str | None, dict[str, Any]]:
        """The asset key of a file, and its type-specific fields (``None``: not an asset)."""
        path = digest.path
        name = path.rsplit("/", 1)[-1]
        if name == "manifest.safe":
            return "safe_manifest", {
                "type": "application/xml",
                "title": "manifest.safe",
                "roles": ["metadata"],
            }
        if name in _METADATA and row.collection == "SENTINEL-2":
            return _METADATA[name], {
                "type": "application/xml",
                "title": name,
                "roles": ["metadata"],
            }
        if name.endswith("-ql.jpg") or path.endswith("/preview/thumbnail.png"):
            jpeg = name.endswith(".jpg")
            return "thumbnail", {
                "type": "image/jpeg" if jpeg else "image/png",
                "title": "Quicklook" if jpeg else "Thumbnail",
                "roles": ["thumbnail", "overview"] if jpeg else ["thumbnail"],
                "data_type": "uint8",
                "proj:code": None,
                "proj:shape": [343, 343],
            }
        if row.collection == "SENTINEL-2":
            match = _S2_IMAGE.search(path)
            if match is None:
                return None, {}
            band = match["band"]
            resolution = int(match["res"]) if match["res"] else _NATIVE_GSD.get(band, 10)
            key = f"{band}_{resolution}m" if match["res"] else band
            return key, self._s2_image(row, band, resolution)
        slc = "_SLC_" in row.product_type
        match = _S1_RASTER.search(path)
        if match is not None:
            suffix = f"{match['swath']}-{match['pol']}" if slc else match["pol"]
            pol = match["pol"].upper()
            extra: dict[str, Any] = {
                "type": "image/tiff; application=geotiff; profile=cloud-optimized",
                "title": _POLARISATIONS[pol],
                "roles": ["data", match["swath"]] if slc else ["data"],
                "data_type": "cint16" if slc else "uint16",
                "proj:code": None,
                "proj:shape": [13_500, 21_000] if slc else [16_700, 25_800],
                "sar:polarizations": [pol],
            }
            if not slc:
                extra["nodata"] = 0
            return suffix, extra
        match = _S1_SCHEMA.search(path)
        if match is not None and "/rfi/" not in path:
            kind = match["kind"] or "product"
            suffix = f"{match['swath']}-{match['pol']}" if slc else match["pol"]
            return f"schema-{kind}-{suffix}", {
                "type": "application/xml",
                "title": f"{match['pol'].upper()} {kind} Schema",
                "roles": ["metadata", match["swath"]] if slc else ["metadata"],
                "sar:polarizations": [match["pol"].upper()],
            }
        return None, {}

    def _s2_image(self, row: ProductRow, band: str, resolution: int) -> dict[str, Any]:
        native = _NATIVE_GSD.get(band, resolution)
        sampling = (
            "original"
            if native == resolution
            else "upsampled"
            if native > resolution
            else "downsampled"
        )
        if band in _S2_BANDS:
            description, centre, width, common = _S2_BANDS[band]
            bands = [
                {
                    "name": band,
                    "description": description,
                    "eo:center_wavelength": centre,
                    "eo:full_width_half_max": width,
                    "eo:common_name": common,
                }
            ]
            title = f"{description} - {resolution}m"
            roles = ["data", "reflectance", f"sampling:{sampling}", f"gsd:{resolution}m"]
        elif band == "TCI":
            bands = [
                {"name": b, "description": _S2_BANDS[b][0], "eo:common_name": _S2_BANDS[b][3]}
                for b in ("B04", "B03", "B02")
            ]
            title = f"True color image - {resolution}m"
            roles = ["visual", f"sampling:{sampling}", f"gsd:{resolution}m"]
        else:
            bands = [{"name": band, "description": _OTHER_IMAGES[band]}]
            title = f"{_OTHER_IMAGES[band]} - {resolution}m"
            roles = ["data", f"sampling:{sampling}", f"gsd:{resolution}m"]
        asset: dict[str, Any] = {
            "type": "image/jp2",
            "title": title,
            "roles": roles,
            "bands": bands,
            "data_type": "uint8" if band in ("SCL", "TCI") else "uint16",
            "nodata": 0,
        }
        if band in _S2_BANDS:
            asset["raster:scale"] = 0.0001
            asset["raster:offset"] = -0.1 if row.product_type == "S2MSI2A" else 0.0
        asset.update(self._projection(row, resolution))
        if band == "SCL":
            asset["classification:classes"] = [
                {"value": value, "name": name} for value, name in _SCL_CLASSES
            ]
        return asset

    def _projection(self, row: ProductRow, resolution: int) -> dict[str, Any]:
        """``proj:*`` of a tile at a resolution: its UTM zone and 109.8 km square."""
        tile = row.tile or "31UDQ"
        zone = int(tile[:2])
        south = tile[2] < "N"
        centroid = self._store.footprint_geometry(row.footprint_id).centroid
        easting, northing = utm_forward(np.array([centroid.y]), np.array([centroid.x]), zone, south)
        west = math.floor(float(easting[0]) / 100_000) * 100_000
        north = math.ceil(float(northing[0]) / 100_000) * 100_000
        pixels = 109_800 // resolution
        return {
            "gsd": resolution,
            "proj:code": f"EPSG:{(32700 if south else 32600) + zone}",
            "proj:shape": [pixels, pixels],
            "proj:bbox": [west, north - 109_800, west + 109_800, north],
            "proj:transform": [resolution, 0, west, 0, -resolution, north],
        }


def _statistics(row: ProductRow, h: int) -> dict[str, float]:
    """Scene-classification fractions (percent) consistent with the cloud cover."""
    cloud = row.cloud_cover or 0.0
    high = cloud * (0.4 + 0.3 * fraction(h, 1))
    thin = cloud * 0.15 * fraction(h, 2)
    medium = max(0.0, cloud - high - thin)
    rest = max(0.0, 100.0 - cloud)
    shadow = rest * 0.03 * fraction(h, 3)
    water = rest * 0.05 * fraction(h, 0)
    dark = rest * 0.01
    unclassified = rest * 0.02
    not_vegetated = rest * (0.1 + 0.2 * fraction(h, 1))
    vegetation = max(0.0, rest - shadow - water - dark - unclassified - not_vegetated)
    return {
        "nodata": 0.0,
        "saturated_defective": 0.0,
        "dark_area": _round(dark),
        "cloud_shadow": _round(shadow),
        "vegetation": _round(vegetation),
        "not_vegetated": _round(not_vegetated),
        "water": _round(water),
        "unclassified": _round(unclassified),
        "medium_proba_clouds": _round(medium),
        "high_proba_clouds": _round(high),
        "thin_cirrus": _round(thin),
    }
