"""What is inside each kind of product: SAFE trees, their size model and their manifest.

:func:`product_files` lists the files of a product's folder, most important first, as
:class:`FileSpec` entries: fixed content (XML rendered from the record, thumbnails) or
binary data sized by *weight*. :mod:`.archive` sizes the binary files so the zip has the
size the configuration asks for, and generates their bytes.

Sentinel-2 L1C/L2A and Sentinel-1 GRD/SLC are real SAFE trees (cdse-api.md §5.7, §9.6):

* L2A: ``GRANULE/<granule>/IMG_DATA/R10m|R20m|R60m`` with every band at every resolution
  real L2A has (R10m: B02 B03 B04 B08 AOT TCI WVP; R20m: the same without B08, plus B01
  B05 B06 B07 B8A B11 B12 SCL; R60m: the R20m set plus B09), ``QI_DATA`` masks,
  ``AUX_DATA``, ``MTD_TL.xml``; ``DATASTRIP/<ds>/MTD_DS.xml``; ``MTD_MSIL2A.xml``,
  ``INSPIRE.xml``, ``HTML/``, ``rep_info/``, ``manifest.safe``, and the quicklook
  ``<item id>-ql.jpg`` CDSE adds beside them (the STAC thumbnail's S3 alternate, §5.9).
* L1C: the same frame with a single-resolution ``IMG_DATA`` (B01-B12, B8A, TCI).
* GRD/SLC: ``measurement/*.tiff`` per swath and polarisation, ``annotation/*.xml`` with
  ``calibration/`` and ``noise/`` companions, ``preview/`` (quick-look, thumbnail, KML,
  HTML), ``support/`` schemas, ``manifest.safe``.

**Size model.** A binary file's weight is its size in a real product of the spec's §8.5
table, in MB: a 10 m band of L2A ≈ 135 MB (about a tenth of a 1.1 GB product), the same
band resampled to 20 m ≈ 34 MB (≈ 1/4) and to 60 m ≈ 3.8 MB (≈ 1/36), WVP 36/13/2 MB, AOT
and SCL a few hundred kB; Sentinel-1 measurement rasters share almost all of a GRD/SLC.
So whatever the archive size, bands keep their real proportions once the archive is big
enough for every file to exceed its floor. Metadata XML keeps its natural (small) size.

**Manifests.** ``manifest.safe`` lists every other file of the SAFE (``dataObject`` /
``byteStream size`` / ``fileLocation href`` / ``checksum``), as real manifests do. Its
checksums are those CDSE's STAC values derive from (§9.7): Sentinel-2 manifests carry
``SHA3-256`` (upper-case hex, as in real N05xx products), Sentinel-1 manifests ``MD5``.
The manifest's text is rendered once the other files' bytes are known; its length is
fixed beforehand, because sizes are known and digests have a fixed width.

**Compressibility.** Sentinel-1 measurement rasters are made of 4-bit symbols, so they
deflate to about half, like real SAR data: the native ``$zip`` archive (§5.8) is then
about half the zipper's ``$value`` zip, as users report.
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from datetime import datetime, timezone
from xml.sax.saxutils import escape, quoteattr

from .images import thumbnail_jpeg, thumbnail_png
from .model import ProductRecord

__all__ = [
    "L1C_IMAGES",
    "L2A_IMAGES",
    "MANIFEST_DIGESTS",
    "FileSpec",
    "ManifestFrame",
    "manifest_entry",
    "manifest_frame",
    "product_files",
    "thumbnail_path",
]

_JP2 = b"\x00\x00\x00\x0cjP  \r\n\x87\n"
_TIFF = b"II*\x00"
_HDF5 = b"\x89HDF\r\n\x1a\n"
_PNG = b"\x89PNG\r\n\x1a\n"
_GRIB = b"GRIB"
_XML_HEAD = b'<?xml version="1.0" encoding="UTF-8"?>\n'
_NOT_ALPHANUMERIC = re.compile(r"[^0-9A-Za-z]")

#: Digest each manifest style lists: ``(checksumName, hex digits, upper-case)``.
MANIFEST_DIGESTS = {"sha3": ("SHA3-256", 64, True), "md5": ("MD5", 32, False)}

_PALETTES = {
    "SENTINEL-1": ((40, 40, 40), (220, 220, 220)),
    "SENTINEL-2": ((60, 110, 40), (200, 170, 120)),
}


@dataclass(frozen=True)
class FileSpec:
    """One file of a product folder, before sizing.

    Attributes:
        path: path below the archive root (the root folder included, ``<Name>/…``).
        text: fixed content, or ``None`` for binary data (or the manifest).
        weight: share of the binary bytes (size in a real product, MB).
        magic: first bytes of a binary file (its format signature).
        required: kept even when the archive is too small for it (the structural floor).
        nibbles: binary content of 4-bit symbols (deflates to about half).
        manifest: ``"sha3"`` or ``"md5"``: this is the SAFE manifest, rendered from the
            digests of the files it lists.
        listed: listed in the manifest (CDSE's own quicklook is not).
        mime: ``mimeType`` of the manifest entry.
    """

    path: str
    text: bytes | None = None
    weight: float = 1.0
    magic: bytes = b""
    required: bool = True
    nibbles: bool = False
    manifest: str | None = None
    listed: bool = True
    mime: str = "application/octet-stream"


@dataclass(frozen=True)
class ManifestFrame:
    """The fixed parts of a manifest: text before and after the ``dataObject`` entries."""

    style: str
    head: bytes
    tail: bytes


def manifest_entry(style: str, relative: str, size: int, digest: str, mime: str) -> bytes:
    """One ``dataObject`` of a manifest (``relative`` is the path inside the SAFE).

    >>> manifest_entry("md5", "measurement/a.tiff", 12, "0" * 32, "application/octet-stream")[:42]
    b'    <dataObject ID="measurement_a_tiff">\\n  '
    """
    name, _, upper = MANIFEST_DIGESTS[style]
    value = digest.upper() if upper else digest.lower()
    identifier = _NOT_ALPHANUMERIC.sub("_", relative)
    return (
        f'    <dataObject ID="{identifier}">\n'
        f'      <byteStream mimeType="{mime}" size="{size}">\n'
        f'        <fileLocation locatorType="URL" href={quoteattr("./" + relative)}/>\n'
        f'        <checksum checksumName="{name}">{value}</checksum>\n'
        f"      </byteStream>\n"
        f"    </dataObject>\n"
    ).encode()


def thumbnail_path(record: ProductRecord) -> str | None:
    """Path (below the archive root) of the product's thumbnail file, if it has one."""
    name = record.name
    if not name.endswith(".SAFE"):
        return None
    if _is_sentinel2(record):
        return f"{name}/{name[: -len('.SAFE')]}-ql.jpg"
    if _is_sentinel1(record):
        return f"{name}/preview/thumbnail.png"
    return None


def product_files(record: ProductRecord) -> list[FileSpec]:
    """The files of ``record``'s folder, most important first (paths include the root)."""
    name = record.name
    if name.endswith(".SAFE"):
        if _is_sentinel2(record):
            return _sentinel2(record)
        if _is_sentinel1(record):
            return _sentinel1(record)
        return _generic(record)
    if name.endswith(".SEN3"):
        return _sentinel3(record)
    if "." in name.rsplit("_", 1)[-1]:
        # A single-file product (S5P .nc, S1 AUX .EOF, .tgz...): the zip holds that file.
        magic = _HDF5 if name.endswith(".nc") else _XML_HEAD if name.endswith(".EOF") else b""
        return [FileSpec(name, magic=magic)]
    if record.collection.startswith("LANDSAT"):
        return _landsat(record)
    return _generic(record)


def manifest_frame(record: ProductRecord, style: str) -> ManifestFrame:
    """Head and tail of a SAFE manifest for ``record`` (entries go in between)."""
    platform = record.name[:3]
    number = platform[1:]
    if _is_sentinel2(record):
        level = "L2A" if "L2A" in record.name[4:10] else "L1C"
        version = f"esa/safe/sentinel/1.1/sentinel-2/msi/archive_{level.lower()}_user_product"
        text_info = f"SENTINEL-2 MSI Level-{level[1:]} User Product"
        unit_type = f"Product_Level-{level[1:]}"
        family = "SENTINEL"
    else:
        version = "esa/safe/sentinel-1.0/sentinel-1/sar/level-1/standard"
        text_info = "Sentinel-1 Level-1 Product"
        unit_type = "SAFE Archive Information Package"
        family = "SENTINEL-1"
    head = (
        f'<xfdu:XFDU xmlns:xfdu="urn:ccsds:schema:xfdu:1"'
        f' xmlns:safe="http://www.esa.int/safe/sentinel/1.1" version="{version}">\n'
        f"  <informationPackageMap>\n"
        f'    <xfdu:contentUnit ID="SAFE_Archive_Information_Package" unitType="{unit_type}"'
        f" textInfo={quoteattr(text_info)}"
        f' dmdID="acquisitionPeriod platform" pdiID="processing"/>\n'
        f"  </informationPackageMap>\n"
        f"  <metadataSection>\n"
        f'    <metadataObject ID="acquisitionPeriod" classification="DESCRIPTION" category="DMD">\n'
        f"      <metadataWrap><xmlData><safe:acquisitionPeriod>"
        f"<safe:startTime>{_iso(record.content_start)}</safe:startTime>"
        f"</safe:acquisitionPeriod></xmlData></metadataWrap>\n"
        f"    </metadataObject>\n"
        f'    <metadataObject ID="platform" classification="DESCRIPTION" category="DMD">\n'
        f"      <metadataWrap><xmlData><safe:platform>"
        f"<safe:familyName>{family}</safe:familyName><safe:number>{escape(number)}</safe:number>"
        f"<safe:productType>{escape(record.product_type)}</safe:productType>"
        f"</safe:platform></xmlData></metadataWrap>\n"
        f"    </metadataObject>\n"
        f'    <metadataObject ID="identifier" classification="DESCRIPTION" category="DMD">\n'
        f"      <metadataWrap><xmlData><safe:productName>{escape(record.name)}</safe:productName>"
        f"<safe:uuid>{record.id}</safe:uuid></xmlData></metadataWrap>\n"
        f"    </metadataObject>\n"
        f"  </metadataSection>\n"
        f"  <dataObjectSection>\n"
    )
    tail = "  </dataObjectSection>\n</xfdu:XFDU>\n"
    return ManifestFrame(style, _XML_HEAD + head.encode(), tail.encode())


# Helpers ------------------------------------------------------------------------------


def _is_sentinel2(record: ProductRecord) -> bool:
    return record.name.startswith("S2") or record.collection == "SENTINEL-2"


def _is_sentinel1(record: ProductRecord) -> bool:
    return record.name.startswith("S1") or record.collection == "SENTINEL-1"


def _xml(root: str, body: str) -> bytes:
    return _XML_HEAD + f"<{root}>\n{body}</{root}>\n".encode()


def _iso(moment: datetime) -> str:
    if moment.tzinfo is not None:
        moment = moment.astimezone(timezone.utc)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def _compact(moment: datetime) -> str:
    if moment.tzinfo is not None:
        moment = moment.astimezone(timezone.utc)
    return moment.strftime("%Y%m%dT%H%M%S")


def _metadata(record: ProductRecord, root: str, extra: str = "") -> bytes:
    body = (
        f"  <General_Info>\n    <PRODUCT_URI>{escape(record.name)}</PRODUCT_URI>\n"
        f"    <PRODUCT_TYPE>{escape(record.product_type)}</PRODUCT_TYPE>\n"
        f"    <PRODUCT_START_TIME>{_iso(record.content_start)}</PRODUCT_START_TIME>\n"
        f"    <SPACECRAFT_NAME>{escape(record.name[:3])}</SPACECRAFT_NAME>\n{extra}"
        f"  </General_Info>\n"
    )
    return _xml(root, body)


def _orbit(record: ProductRecord) -> int:
    try:
        return uuid.UUID(record.id).int % 90_000 + 10_000
    except ValueError:
        return 12_345


def _variant(record: ProductRecord) -> int:
    try:
        return uuid.UUID(record.id).int % 16
    except ValueError:
        return 0


def _simple_manifest(record: ProductRecord, root: str = "xfdu:XFDU") -> bytes:
    """The short manifest of non-SAFE folders (Sentinel-3 ``xfdumanifest.xml``)."""
    body = (
        f"  <informationPackageMap>\n"
        f'    <contentUnit unitType="SAFE Archive Information Package"'
        f' textInfo={quoteattr(record.name)} dmdID="acquisitionPeriod platform"/>\n'
        f"  </informationPackageMap>\n"
        f"  <metadataSection>\n"
        f'    <metadataObject ID="acquisitionPeriod"><startTime>{_iso(record.content_start)}'
        f"</startTime></metadataObject>\n"
        f'    <metadataObject ID="platform"><familyName>{escape(record.collection)}</familyName>'
        f"<productType>{escape(record.product_type)}</productType></metadataObject>\n"
        f'    <metadataObject ID="identifier"><uuid>{record.id}</uuid></metadataObject>\n'
        f"  </metadataSection>\n"
    )
    return _xml(root, body)


# Sentinel-2 ---------------------------------------------------------------------------

#: Reference sizes (MB) of the L2A image files of cdse-api.md §8.5, per resolution folder.
L2A_IMAGES: dict[int, tuple[tuple[str, float], ...]] = {
    10: (
        ("B02", 135.0),
        ("B03", 135.0),
        ("B04", 135.0),
        ("B08", 135.0),
        ("AOT", 0.113),
        ("TCI", 135.0),
        ("WVP", 36.0),
    ),
    20: (
        ("B01", 26.0),
        ("B02", 34.0),
        ("B03", 34.0),
        ("B04", 34.0),
        ("B05", 34.0),
        ("B06", 34.0),
        ("B07", 34.0),
        ("B8A", 34.0),
        ("B11", 34.0),
        ("B12", 34.0),
        ("AOT", 0.145),
        ("SCL", 0.336),
        ("TCI", 34.0),
        ("WVP", 13.0),
    ),
    60: (
        ("B01", 3.8),
        ("B02", 3.8),
        ("B03", 3.8),
        ("B04", 3.8),
        ("B05", 3.8),
        ("B06", 3.8),
        ("B07", 3.8),
        ("B8A", 3.8),
        ("B09", 3.8),
        ("B11", 3.8),
        ("B12", 3.8),
        ("AOT", 0.058),
        ("SCL", 0.102),
        ("TCI", 3.8),
        ("WVP", 2.0),
    ),
}

#: L1C bands at their native resolution (one IMG_DATA folder), reference sizes in MB.
L1C_IMAGES = (
    ("B01", 3.5),
    ("B02", 110.0),
    ("B03", 110.0),
    ("B04", 110.0),
    ("B05", 28.0),
    ("B06", 28.0),
    ("B07", 28.0),
    ("B08", 110.0),
    ("B8A", 28.0),
    ("B09", 3.5),
    ("B10", 3.5),
    ("B11", 28.0),
    ("B12", 28.0),
    ("TCI", 120.0),
)


def _sentinel2(record: ProductRecord) -> list[FileSpec]:
    name = record.name
    parts = name[: -len(".SAFE")].split("_")
    level = "L2A" if len(parts) > 1 and "L2A" in parts[1] else "L1C"
    start = parts[2] if len(parts) > 2 else _compact(record.content_start)
    tile = parts[5][1:] if len(parts) > 5 and parts[5].startswith("T") else "32TQM"
    processed = parts[6] if len(parts) > 6 else start
    platform = parts[0][1:] if parts[0].startswith("S2") else "2A"
    centre = f"{platform}PS"
    root = f"{name}/"
    granule = f"{root}GRANULE/{level}_T{tile}_A{_orbit(record):06d}_{processed}/"
    datastrip = f"{root}DATASTRIP/DS_{centre}_{processed}_S{processed}/"
    stem = f"T{tile}_{start}"
    item_id = name[: -len(".SAFE")]
    low, high = _PALETTES["SENTINEL-2"]
    xml = "text/xml"
    files = [
        FileSpec(f"{root}manifest.safe", text=None, manifest="sha3", listed=False),
        FileSpec(
            f"{root}MTD_MSI{level}.xml",
            text=_metadata(record, f"n1:Level-{level[1:]}_User_Product"),
            mime=xml,
        ),
        FileSpec(
            f"{root}INSPIRE.xml",
            text=_xml(
                "gmd:MD_Metadata", f"  <gmd:fileIdentifier>{escape(item_id)}</gmd:fileIdentifier>\n"
            ),
            mime=xml,
        ),
        FileSpec(
            f"{root}{item_id}-ql.jpg",
            text=thumbnail_jpeg(_variant(record), low, high),
            listed=False,
        ),
        FileSpec(
            f"{root}HTML/UserProduct_index.html",
            text=f"<html><head><title>{escape(item_id)}</title></head><body></body></html>\n".encode(),
            mime="text/html",
        ),
        FileSpec(f"{root}HTML/banner_1.png", weight=0.012, magic=_PNG),
        FileSpec(
            f"{root}rep_info/S2_User_Product_Level-{level[1:]}_Metadata.xsd",
            text=_xml("xs:schema", '  <xs:element name="Level_Product"/>\n'),
            mime=xml,
        ),
        FileSpec(
            f"{datastrip}MTD_DS.xml",
            text=_metadata(
                record,
                f"n1:Level-{level[1:]}_DataStrip_ID",
                f"    <DATASTRIP_ID>S{platform}_OPER_MSI_{level}_DS_{centre}_{processed}"
                "</DATASTRIP_ID>\n",
            ),
            mime=xml,
        ),
        FileSpec(
            f"{datastrip}QI_DATA/FORMAT_CORRECTNESS.xml",
            text=_xml("Earth_Explorer_File", "  <check>PASSED</check>\n"),
            mime=xml,
        ),
        FileSpec(
            f"{datastrip}QI_DATA/GENERAL_QUALITY.xml",
            text=_xml("Earth_Explorer_File", "  <check>PASSED</check>\n"),
            mime=xml,
        ),
        FileSpec(
            f"{granule}MTD_TL.xml",
            text=_metadata(
                record, f"n1:Level-{level[1:]}_Tile_ID", f"    <TILE_ID>T{tile}</TILE_ID>\n"
            ),
            mime=xml,
        ),
        FileSpec(f"{granule}AUX_DATA/AUX_CAMSFO", weight=0.25, magic=_GRIB),
        FileSpec(f"{granule}AUX_DATA/AUX_ECMWFT", weight=0.45, magic=_GRIB),
    ]
    masks: tuple[tuple[str, float], ...]
    if level == "L2A":
        for resolution, bands in L2A_IMAGES.items():
            files += [
                FileSpec(
                    f"{granule}IMG_DATA/R{resolution}m/{stem}_{band}_{resolution}m.jp2",
                    weight=weight,
                    magic=_JP2,
                )
                for band, weight in bands
            ]
        masks = (
            ("MSK_CLASSI_B00.jp2", 0.05),
            ("MSK_CLDPRB_20m.jp2", 0.3),
            ("MSK_CLDPRB_60m.jp2", 0.04),
            ("MSK_SNWPRB_20m.jp2", 0.2),
            ("MSK_SNWPRB_60m.jp2", 0.03),
            (f"{stem}_PVI.jp2", 0.9),
        )
        reports = ("L2A_QUALITY.xml", "GENERAL_QUALITY.xml", "FORMAT_CORRECTNESS.xml")
    else:
        files += [
            FileSpec(f"{granule}IMG_DATA/{stem}_{band}.jp2", weight=weight, magic=_JP2)
            for band, weight in L1C_IMAGES
        ]
        masks = (("MSK_CLASSI_B00.jp2", 0.05), (f"{stem}_PVI.jp2", 0.9))
        reports = ("GENERAL_QUALITY.xml", "FORMAT_CORRECTNESS.xml", "SENSOR_QUALITY.xml")
    files += [
        FileSpec(f"{granule}QI_DATA/{mask}", weight=weight, magic=_JP2) for mask, weight in masks
    ]
    files += [
        FileSpec(
            f"{granule}QI_DATA/{report}",
            text=_xml("Earth_Explorer_File", f"  <check>PASSED</check><tile>T{tile}</tile>\n"),
            mime=xml,
        )
        for report in reports
    ]
    return files


# Sentinel-1 ---------------------------------------------------------------------------

_POLARISATIONS = {
    "DV": ("vh", "vv"),
    "DH": ("hh", "hv"),
    "SV": ("vv",),
    "SH": ("hh",),
    "HH": ("hh",),
    "VV": ("vv",),
}
_SUPPORT = (
    "s1-level-1-product.xsd",
    "s1-level-1-calibration.xsd",
    "s1-level-1-noise.xsd",
    "s1-map-overlay.xsd",
    "s1-product-preview.xsd",
    "s1-object-types.xsd",
)


def _sentinel1(record: ProductRecord) -> list[FileSpec]:
    name = record.name
    # S1A_IW_SLC__1SDV_<start>_<stop>_<orbit>_<datatake>_<crc>: fixed-width type fields
    # (``SLC_`` pads with an underscore, so a plain split would misread it).
    rest = name[17 : -len(".SAFE")].split("_")
    if len(name) > 17 and name[3] == name[6] == name[11] == name[16] == "_" and len(rest) >= 4:
        mission, mode, kind, klass = name[:3].lower(), name[4:6].lower(), name[7:11], name[12:16]
        start, stop, orbit, datatake = rest[0], rest[1], rest[2], rest[3]
    else:
        mission, mode, kind, klass = name[:3].lower(), "iw", "GRDH", "1SDV"
        start = stop = _compact(record.content_start)
        orbit, datatake = f"{_orbit(record):06d}", "000000"
    product = kind[:3].lower().rstrip("_")
    polarisations = _POLARISATIONS.get(klass[2:4], ("vv",))
    if product == "slc" and mode in ("iw", "ew"):
        swaths = [f"{mode}{n}" for n in range(1, 4 if mode == "iw" else 6)]
    else:
        swaths = [mode]
    root = f"{name}/"
    xml = "text/xml"
    measurements: list[FileSpec] = []
    annotations: list[FileSpec] = []
    # Real products number files polarisation-major: iw1-vh 001, iw2-vh 002, … iw1-vv 004.
    index = 1
    for pol in polarisations:
        for swath in swaths:
            stem = (
                f"{mission}-{swath}-{product}-{pol}-{start.lower()}-{stop.lower()}-"
                f"{orbit.lower()}-{datatake.lower()}-{index:03d}"
            )
            measurements.append(
                FileSpec(f"{root}measurement/{stem}.tiff", magic=_TIFF, nibbles=True, weight=1000.0)
            )
            header = (
                f"    <swath>{swath.upper()}</swath><polarisation>{pol.upper()}</polarisation>\n"
            )
            annotations.append(
                FileSpec(
                    f"{root}annotation/{stem}.xml",
                    text=_metadata(record, "product", header),
                    mime=xml,
                )
            )
            for kind_name in ("calibration", "noise", "rfi"):
                annotations.append(
                    FileSpec(
                        f"{root}annotation/{'rfi' if kind_name == 'rfi' else 'calibration'}/"
                        f"{kind_name}-{stem}.xml",
                        text=_xml(
                            kind_name,
                            f"  <adsHeader><swath>{swath.upper()}</swath>"
                            f"<polarisation>{pol.upper()}</polarisation></adsHeader>\n",
                        ),
                        mime=xml,
                    )
                )
            index += 1
    files = [FileSpec(f"{root}manifest.safe", text=None, manifest="md5", listed=False)]
    files += measurements
    files += annotations
    files += [
        FileSpec(f"{root}preview/quick-look.png", weight=0.35, magic=_PNG),
        FileSpec(f"{root}preview/thumbnail.png", text=thumbnail_png(_variant(record))),
        FileSpec(
            f"{root}preview/map-overlay.kml",
            text=_xml("kml", f"  <name>{escape(name)}</name>\n"),
            mime=xml,
        ),
        FileSpec(
            f"{root}preview/product-preview.html",
            text=f"<html><head><title>{escape(name)}</title></head><body></body></html>\n".encode(),
            mime="text/html",
        ),
        FileSpec(f"{root}preview/icons/logo.png", weight=0.004, magic=_PNG),
    ]
    files += [
        FileSpec(
            f"{root}support/{schema}",
            text=_xml("xsd:schema", f'  <xsd:annotation id="{schema}"/>\n'),
            mime=xml,
        )
        for schema in _SUPPORT
    ]
    return files


# Other missions (not SAFE trees with manifests) ---------------------------------------

_S3_FILES: dict[str, list[str]] = {
    "OL_1": [f"Oa{n:02d}_radiance.nc" for n in range(1, 22)]
    + [
        "geo_coordinates.nc",
        "instrument_data.nc",
        "qualityFlags.nc",
        "tie_geo_coordinates.nc",
        "tie_geometries.nc",
        "tie_meteo.nc",
        "time_coordinates.nc",
    ],
    "OL_2_W": [f"Oa{n:02d}_reflectance.nc" for n in range(1, 22)]
    + [
        "chl_nn.nc",
        "chl_oc4me.nc",
        "iop_nn.nc",
        "iwv.nc",
        "par.nc",
        "trsp.nc",
        "tsm_nn.nc",
        "w_aer.nc",
        "wqsf.nc",
        "geo_coordinates.nc",
        "time_coordinates.nc",
    ],
    "OL_2_L": [
        "ogvi.nc",
        "otci.nc",
        "iwv.nc",
        "rc_ogvi.nc",
        "lqsf.nc",
        "geo_coordinates.nc",
        "tie_geo_coordinates.nc",
        "tie_geometries.nc",
        "tie_meteo.nc",
        "time_coordinates.nc",
    ],
    "SL_1": [f"S{n}_radiance_an.nc" for n in range(1, 7)]
    + [
        "S7_BT_in.nc",
        "S8_BT_in.nc",
        "S9_BT_in.nc",
        "F1_BT_fn.nc",
        "F2_BT_in.nc",
        "geodetic_an.nc",
        "geodetic_in.nc",
        "flags_an.nc",
        "flags_in.nc",
        "indices_an.nc",
        "met_tx.nc",
        "time_an.nc",
        "viscal.nc",
    ],
    "SL_2_LST": [
        "LST_in.nc",
        "LST_ancillary_ds.nc",
        "cartesian_in.nc",
        "cartesian_tx.nc",
        "flags_in.nc",
        "geodetic_in.nc",
        "geodetic_tx.nc",
        "geometry_tn.nc",
        "indices_in.nc",
        "met_tx.nc",
        "time_in.nc",
    ],
    "SR": ["enhanced_measurement.nc", "standard_measurement.nc", "reduced_measurement.nc"],
    "SY_2_SYN": [f"Syn_Oa{n:02d}_reflectance.nc" for n in range(1, 22)]
    + [f"Syn_S{n}N_reflectance.nc" for n in range(1, 7)]
    + ["Syn_AMIN.nc", "geolocation.nc", "flags.nc", "time.nc", "tiepoints_olci.nc"],
    "SY_2_V": ["B0.nc", "B2.nc", "B3.nc", "MIR.nc", "NDVI.nc", "geolocation.nc", "time.nc"],
}


def _sentinel3(record: ProductRecord) -> list[FileSpec]:
    product_type = record.name[4:15]
    for prefix in ("OL_2_W", "OL_2_L", "SL_2_LST", "SY_2_SYN", "SY_2_V", "OL_1", "SL_1", "SR"):
        if product_type.startswith(prefix):
            names = _S3_FILES[prefix]
            break
    else:
        names = ["measurement.nc", "geo_coordinates.nc", "time_coordinates.nc"]
    root = f"{record.name}/"
    files = [FileSpec(f"{root}xfdumanifest.xml", text=_simple_manifest(record))]
    files += [
        FileSpec(
            f"{root}{n}",
            weight=0.2 if "geo" in n or "time" in n or "tie" in n else 1.0,
            magic=_HDF5,
            required=i == 0,
        )
        for i, n in enumerate(names)
    ]
    return files


def _landsat(record: ProductRecord) -> list[FileSpec]:
    stem = record.name
    root = f"{stem}/"
    files = [FileSpec(f"{root}{stem}_MTL.xml", text=_metadata(record, "LANDSAT_METADATA_FILE"))]
    files += [
        FileSpec(f"{root}{stem}_B{n}.TIF", weight=1.0, magic=_TIFF, required=n == 1)
        for n in range(1, 12)
    ]
    files.append(FileSpec(f"{root}{stem}_QA_PIXEL.TIF", weight=0.1, magic=_TIFF, required=False))
    return files


def _generic(record: ProductRecord) -> list[FileSpec]:
    root = f"{record.name}/"
    return [
        FileSpec(f"{root}manifest.safe", text=_simple_manifest(record)),
        FileSpec(f"{root}measurement/data_01.tif", magic=_TIFF),
        FileSpec(f"{root}measurement/data_02.tif", magic=_TIFF, required=False),
        FileSpec(f"{root}measurement/data_03.tif", magic=_TIFF, required=False),
    ]
