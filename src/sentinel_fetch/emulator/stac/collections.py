"""The STAC collections the emulator serves, and what each maps to in the OData catalogue.

CDSE's STAC ids are lower-case and hyphenated (cdse-api.md §9.1). The emulator serves the
four collections a band- or file-level download needs, built from the same catalogue as
OData: ``sentinel-1-grd`` (IW GRDH and EW GRDM), ``sentinel-1-slc`` (IW SLC),
``sentinel-2-l1c`` and ``sentinel-2-l2a``. CDSE has more (COG GRD, Sentinel-3, -5P,
mosaics…); the emulator leaves them out on purpose: their asset keys were not read
(§9.6, §15), and inventing them would teach a client names CDSE may not use.

Asset keys follow CDSE's item generator: ``<band>_<res>m`` for L2A images, the band name
for L1C, ``vv``/``vh``/``hh``/``hv`` for GRD rasters and ``schema-product|calibration|noise-
<pol>`` for their annotations, ``<swath>-<pol>`` and ``schema-…-<swath>-<pol>`` for SLC,
plus ``safe_manifest``, ``product_metadata``, ``granule_metadata``, ``datastrip_metadata``,
``inspire_metadata``, ``thumbnail`` and ``Product`` (§9.6, §13.4).
"""

from __future__ import annotations

from dataclasses import dataclass

from sentinel_fetch.emulator.safe import L1C_IMAGES, L2A_IMAGES

__all__ = [
    "COLLECTIONS",
    "STAC_VERSION",
    "StacCollection",
    "by_id",
    "collection_of",
    "render_collection",
]

STAC_VERSION = "1.1.0"


@dataclass(frozen=True)
class StacCollection:
    """One STAC collection and the OData products it holds.

    Attributes:
        id: STAC collection id.
        title: human title.
        description: one paragraph.
        odata_collection: ``Collection/Name`` in OData.
        product_types: ``productType`` values of its products.
        keywords: free-text keywords (``/collections?q=`` matches them).
        start: start of its temporal extent (RFC 3339).
        platforms: STAC ``platform`` values.
        instruments: STAC ``instruments``.
        gsd: ground sample distances (m).
    """

    id: str
    title: str
    description: str
    odata_collection: str
    product_types: tuple[str, ...]
    keywords: tuple[str, ...]
    start: str
    platforms: tuple[str, ...]
    instruments: tuple[str, ...]
    gsd: tuple[int, ...]


COLLECTIONS: tuple[StacCollection, ...] = (
    StacCollection(
        "sentinel-1-grd",
        "Sentinel-1 Level-1 Ground Range Detected (GRD)",
        "Sentinel-1 Level-1 GRD products: focused SAR data detected, multi-looked and "
        "projected to ground range (IW and EW modes), one raster per polarisation.",
        "SENTINEL-1",
        ("IW_GRDH_1S", "EW_GRDM_1S"),
        ("sentinel", "copernicus", "esa", "sar", "c-band", "grd", "sentinel-1"),
        "2014-10-03T00:00:00.000000Z",
        ("sentinel-1a", "sentinel-1b", "sentinel-1c", "sentinel-1d"),
        ("sar",),
        (10, 40),
    ),
    StacCollection(
        "sentinel-1-slc",
        "Sentinel-1 Level-1 Single Look Complex (SLC)",
        "Sentinel-1 Level-1 SLC products: focused complex SAR data in slant range, one "
        "raster per sub-swath and polarisation.",
        "SENTINEL-1",
        ("IW_SLC__1S",),
        ("sentinel", "copernicus", "esa", "sar", "c-band", "slc", "sentinel-1"),
        "2014-10-03T00:00:00.000000Z",
        ("sentinel-1a", "sentinel-1b", "sentinel-1c", "sentinel-1d"),
        ("sar",),
        (5,),
    ),
    StacCollection(
        "sentinel-2-l1c",
        "Sentinel-2 Level-1C",
        "Sentinel-2 MSI Level-1C: top-of-atmosphere reflectances in 100 km x 100 km "
        "tiles (UTM/WGS84), 13 spectral bands at 10, 20 and 60 m.",
        "SENTINEL-2",
        ("S2MSI1C",),
        ("sentinel", "copernicus", "esa", "msi", "optical", "l1c", "sentinel-2"),
        "2015-06-27T10:25:31.456000Z",
        ("sentinel-2a", "sentinel-2b", "sentinel-2c", "sentinel-2d"),
        ("msi",),
        (10, 20, 60),
    ),
    StacCollection(
        "sentinel-2-l2a",
        "Sentinel-2 Level-2A",
        "Sentinel-2 MSI Level-2A: bottom-of-atmosphere reflectances with scene "
        "classification, aerosol and water vapour maps, each band at 10, 20 and 60 m.",
        "SENTINEL-2",
        ("S2MSI2A",),
        ("sentinel", "copernicus", "esa", "msi", "optical", "l2a", "sentinel-2"),
        "2015-06-27T10:25:31.456000Z",
        ("sentinel-2a", "sentinel-2b", "sentinel-2c", "sentinel-2d"),
        ("msi",),
        (10, 20, 60),
    ),
)

_BY_ID = {c.id: c for c in COLLECTIONS}
_BY_TYPE = {(c.odata_collection, t): c for c in COLLECTIONS for t in c.product_types}


def by_id(collection_id: str) -> StacCollection | None:
    """The collection with this id, or ``None``."""
    return _BY_ID.get(collection_id)


def collection_of(odata_collection: str, product_type: str) -> StacCollection | None:
    """The STAC collection of an OData product, or ``None`` if STAC does not serve it.

    >>> collection_of("SENTINEL-2", "S2MSI2A").id
    'sentinel-2-l2a'
    >>> collection_of("SENTINEL-1", "IW_GRDH_1S-COG") is None
    True
    """
    return _BY_TYPE.get((odata_collection, product_type))


def _item_assets(collection: StacCollection) -> dict[str, dict[str, object]]:
    """``item_assets``: the asset keys items of the collection may carry."""
    xml = "application/xml"
    assets: dict[str, dict[str, object]] = {
        "safe_manifest": {"type": xml, "roles": ["metadata"], "title": "manifest.safe"},
        "Product": {
            "type": "application/zip",
            "roles": ["data", "metadata", "archive"],
            "title": "Zipped product",
        },
    }
    if collection.odata_collection == "SENTINEL-2":
        level = "L2A" if collection.id.endswith("l2a") else "L1C"
        for key, title in (
            ("product_metadata", f"MTD_MSI{level}.xml"),
            ("granule_metadata", "MTD_TL.xml"),
            ("datastrip_metadata", "MTD_DS.xml"),
            ("inspire_metadata", "INSPIRE.xml"),
        ):
            assets[key] = {"type": xml, "roles": ["metadata"], "title": title}
        assets["thumbnail"] = {
            "type": "image/jpeg",
            "roles": ["thumbnail", "overview"],
            "title": "Quicklook",
        }
        if level == "L2A":
            for resolution, bands in L2A_IMAGES.items():
                for band, _ in bands:
                    assets[f"{band}_{resolution}m"] = {
                        "type": "image/jp2",
                        "roles": ["data"],
                        "title": f"{band} - {resolution}m",
                        "gsd": resolution,
                    }
        else:
            for band, _ in L1C_IMAGES:
                assets[band] = {"type": "image/jp2", "roles": ["data"], "title": band}
        return assets
    assets["thumbnail"] = {"type": "image/png", "roles": ["thumbnail"], "title": "Thumbnail"}
    swaths = ("iw1", "iw2", "iw3") if collection.id.endswith("slc") else ("",)
    for swath in swaths:
        for pol in ("vv", "vh", "hh", "hv"):
            suffix = f"{swath}-{pol}" if swath else pol
            assets[suffix] = {
                "type": "image/tiff; application=geotiff; profile=cloud-optimized",
                "roles": ["data"],
                "title": pol.upper(),
            }
            for schema in ("product", "calibration", "noise"):
                assets[f"schema-{schema}-{suffix}"] = {
                    "type": xml,
                    "roles": ["metadata"],
                    "title": f"{pol.upper()} {schema} Schema",
                }
    return assets


def render_collection(collection: StacCollection, base: str) -> dict[str, object]:
    """The collection document (``base`` is ``…/v1``, without a trailing slash)."""
    own = f"{base}/collections/{collection.id}"
    return {
        "type": "Collection",
        "stac_version": STAC_VERSION,
        "stac_extensions": [],
        "id": collection.id,
        "title": collection.title,
        "description": collection.description,
        "keywords": list(collection.keywords),
        "license": "other",
        "providers": [
            {"name": "ESA", "roles": ["producer", "licensor"], "url": "https://www.esa.int"},
            {
                "name": "Copernicus Data Space Ecosystem",
                "roles": ["host", "processor"],
                "url": "https://dataspace.copernicus.eu",
            },
        ],
        "extent": {
            "spatial": {"bbox": [[-180.0, -90.0, 180.0, 90.0]]},
            "temporal": {"interval": [[collection.start, None]]},
        },
        "summaries": {
            "platform": list(collection.platforms),
            "constellation": [collection.odata_collection.lower()],
            "instruments": list(collection.instruments),
            "gsd": list(collection.gsd),
        },
        "item_assets": _item_assets(collection),
        "links": [
            {"rel": "self", "type": "application/json", "href": own},
            {"rel": "parent", "type": "application/json", "href": f"{base}/"},
            {"rel": "root", "type": "application/json", "href": f"{base}/"},
            {"rel": "items", "type": "application/geo+json", "href": f"{own}/items"},
            {
                "rel": "http://www.opengis.net/def/rel/ogc/1.0/queryables",
                "type": "application/schema+json",
                "href": f"{own}/queryables",
            },
            {
                "rel": "license",
                "type": "text/html",
                "href": "https://sentinel.esa.int/documents/247904/690755/Sentinel_Data_Legal_Notice",
                "title": "Legal notice on the use of Copernicus Sentinel Data",
            },
        ],
    }
