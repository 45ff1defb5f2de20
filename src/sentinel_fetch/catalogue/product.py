"""One catalogue product with typed fields: :class:`Product`.

Built from an OData entity (cdse-api.md §3.2, §9.2) by :meth:`Product.from_odata`, and
saved/loaded without loss through :meth:`Product.to_dict` / :meth:`Product.from_dict`
(the form :mod:`.results` writes).

CDSE quirks absorbed here:

* datetimes come with 3 or 6 fraction digits (6 since 2024-09-02), ``Z`` or an offset
  (DateTimeOffset attributes were ``+00:00`` until 2025-03-17); all become aware UTC;
* ``EvictionDate`` was ``""`` for permanent products before 2024-07-31: read as None;
* ``ContentLength`` may be 0 and ``Checksum`` ``[]`` on older products (CDSETool#40):
  size 0 means unknown, and checksums are simply absent;
* attribute values sometimes disagree with their ``ValueType`` (``"2.3"`` typed
  Integer, §3.3): such a value is kept as sent rather than guessed at;
* ``Footprint`` and ``GeoFootprint`` are ``null`` for AUX products, and ``GeoFootprint``
  may be missing altogether: it is then read from the WKT ``Footprint``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, TypeAlias

from sentinel_fetch.catalogue.filter import format_datetime, parse_datetime
from sentinel_fetch.catalogue.inputs import KNOWN_COLLECTIONS, MISSION_ABBREVIATIONS
from sentinel_fetch.errors import ResultFileError, UnreadableEntryError

__all__ = ["AttributeValue", "Product", "is_product_id", "is_product_name"]

#: A typed attribute value: String, Integer, Double, Boolean or DateTimeOffset (§3.3).
AttributeValue: TypeAlias = str | int | float | bool | datetime | None

# Product types the download service does not zip (Copernicus Browser, ODataTypes.js
# ODataProductTypeExtension): orbit files come as the .EOF itself, some AUX as .tgz.
_SERVED_AS_IS = frozenset(
    {
        "AUX_POEORB",
        "AUX_RESORB",
        "AUX_PREORB",
        "AUX_MOEORB",
        "AUX_PRCPTF",
        "AUX_PREORB_PRIVATE",
        "AUX_RESORB_PRIVATE",
        "SR_2_TDP_LI",
        "SR_2_TDP_HY",
    }
)
_SERVED_AS_TGZ = frozenset({"AUX_GNSSRD", "AUX_PROQUA", "SR___MDO_AX", "SR___POE_AX"})


@dataclass(frozen=True)
class Product:
    """A product found in the catalogue.

    Attributes:
        id: the product UUID (what downloads are addressed by).
        name: the product name, e.g. ``S2B_MSIL2A_..._20231001T132714.SAFE``.
        size: bytes of the downloadable archive (``ContentLength``); 0 means unknown.
        checksums: algorithm (``MD5``, ``BLAKE3``) to lower-case hex digest.
        content_start: sensing start (``ContentDate/Start``).
        content_end: sensing end (``ContentDate/End``).
        publication_date: when the catalogue published it.
        modification_date: when the catalogue last changed it.
        origin_date: when the product reached the archive.
        online: whether it can be downloaded now; offline products must be ordered in
            the Data Workspace first (§5.6). None when the catalogue did not say.
        eviction_date: when a rolling (NRT) product leaves; far future for permanent ones.
        s3_path: path in the ``eodata`` bucket (``/eodata/Sentinel-2/...``).
        footprint: footprint as WKT (EPSG:4326), None for products without one (AUX).
        geo_footprint: footprint as a GeoJSON geometry, None without one.
        attributes: attribute name to typed value (needs ``$expand=Attributes``).
        quicklook_url: the QUICKLOOK asset's download link (needs ``$expand=Assets``).
        collection: ``SENTINEL-2`` etc., from ``platformShortName`` or the name prefix.
    """

    id: str
    name: str
    size: int = 0
    checksums: Mapping[str, str] = field(default_factory=dict)
    content_start: datetime | None = None
    content_end: datetime | None = None
    publication_date: datetime | None = None
    modification_date: datetime | None = None
    origin_date: datetime | None = None
    online: bool | None = None
    eviction_date: datetime | None = None
    s3_path: str | None = None
    footprint: str | None = None
    geo_footprint: Mapping[str, Any] | None = None
    attributes: Mapping[str, AttributeValue] = field(default_factory=dict)
    quicklook_url: str | None = None
    collection: str | None = None

    def __hash__(self) -> int:
        # Mappings are not hashable; the UUID identifies a product.
        return hash(self.id)

    # --- conveniences over attributes ---------------------------------------------------

    @property
    def cloud_cover(self) -> float | None:
        """``cloudCover`` in percent, if the product has one."""
        value = self.attributes.get("cloudCover")
        return (
            float(value)
            if isinstance(value, (int, float)) and not isinstance(value, bool)
            else None
        )

    @property
    def product_type(self) -> str | None:
        """``productType`` (``S2MSI2A``, ``IW_GRDH_1S``...)."""
        return self._text_attribute("productType")

    @property
    def tile_id(self) -> str | None:
        """MGRS tile (``tileId``) of Sentinel-2 products."""
        return self._text_attribute("tileId")

    @property
    def platform(self) -> str | None:
        """Satellite letter (``platformSerialIdentifier``): ``A``, ``B``..."""
        return self._text_attribute("platformSerialIdentifier")

    @property
    def orbit_direction(self) -> str | None:
        """``ASCENDING`` or ``DESCENDING``."""
        return self._text_attribute("orbitDirection")

    @property
    def relative_orbit(self) -> int | None:
        """``relativeOrbitNumber``."""
        value = self.attributes.get("relativeOrbitNumber")
        return value if isinstance(value, int) and not isinstance(value, bool) else None

    @property
    def file_name(self) -> str:
        """Name of the download as the service serves it: ``<Name>.zip`` for zipped products.

        The download service zips products by default but serves orbit files (``.EOF``)
        as they are and a few AUX types as ``.tgz`` (cdse-api.md §5.3); the Copernicus
        Browser names its downloads the same way (a Sentinel-5P ``….nc`` arrives as
        ``….nc.zip``). This text comes from the server: the file on disk is named from
        it by :func:`sentinel_fetch.downloads.paths.assign_file_names` (the same, for a
        name that needs no change and no other product has).

        Example:
            >>> Product(id="x", name="S2B_MSIL2A_20231001T103019_N0509.SAFE").file_name
            'S2B_MSIL2A_20231001T103019_N0509.SAFE.zip'
        """
        product_type = self.product_type or ""
        if product_type in _SERVED_AS_IS or self.name.upper().endswith(".EOF"):
            return self.name
        if product_type in _SERVED_AS_TGZ:
            return f"{self.name}.tgz"
        return f"{self.name}.zip"

    def _text_attribute(self, name: str) -> str | None:
        value = self.attributes.get(name)
        return value if isinstance(value, str) else None

    # --- reading and writing -------------------------------------------------------------

    @classmethod
    def from_odata(cls, entity: Mapping[str, Any], *, escapes: bool = True) -> Product:
        """Build a Product from one entity of a catalogue answer.

        Every field is checked for the type §3.2 gives it, because a value of the wrong
        type would otherwise fail far from here (a ``ContentLength`` of ``"lots"`` in the
        middle of a download, a non-UUID ``Id`` inside a download URL).

        Args:
            entity: the entity as parsed from JSON.
            escapes: whether the JSON text it came from may hold ``\\u`` escapes. Only
                an escape can spell a lone surrogate (a UTF-8 decoder refuses one), so a
                caller that found none in the text (one ``in`` over a page) spares every
                entity the walk over all its texts, most of the cost of reading a page.

        Raises:
            UnreadableEntryError: the entity cannot be used as a product (``status``
                200: the answer arrived but this entry is unreadable); the message and
                ``reason`` name the field.
        """
        try:
            if not isinstance(entity, Mapping):
                raise ValueError(f"the entry is not an object but {_shown(entity)}")
            if escapes:
                _refuse_surrogates(entity)
            product_name = _product_name(entity.get("Name"))
            attributes = _attributes(entity.get("Attributes"))
            footprint = _footprint_wkt(_optional_text("Footprint", entity.get("Footprint")))
            content = entity.get("ContentDate")
            if content is None:
                content = {}
            elif not isinstance(content, Mapping):
                raise ValueError(f"ContentDate {_shown(content)} is not an object")
            return cls(
                id=_product_id(entity.get("Id")),
                name=product_name,
                size=_byte_count(entity.get("ContentLength")),
                checksums=_checksums(entity.get("Checksum")),
                content_start=_field_instant("ContentDate/Start", content.get("Start")),
                content_end=_field_instant("ContentDate/End", content.get("End")),
                publication_date=_field_instant("PublicationDate", entity.get("PublicationDate")),
                modification_date=_field_instant(
                    "ModificationDate", entity.get("ModificationDate")
                ),
                origin_date=_field_instant("OriginDate", entity.get("OriginDate")),
                online=_field("Online", _optional_bool, entity.get("Online")),
                eviction_date=_field_instant("EvictionDate", entity.get("EvictionDate")),
                s3_path=_optional_text("S3Path", entity.get("S3Path")),
                footprint=footprint,
                geo_footprint=_geometry(entity.get("GeoFootprint")) or _geometry_of(footprint),
                attributes=attributes,
                quicklook_url=_quicklook(entity.get("Assets")),
                collection=_collection(product_name, attributes),
            )
        except (KeyError, TypeError, ValueError, AttributeError) as error:
            name = entity.get("Name") if isinstance(entity, Mapping) else None
            if name is None:
                shown = "(no name)"
            elif is_product_name(name):
                shown = str(name)[:120]
            else:
                shown = _shown(name)
            raise UnreadableEntryError(
                f"the catalogue sent an unreadable product {shown}: {error}", reason=str(error)
            ) from None

    def to_dict(self) -> dict[str, Any]:
        """This product as JSON-ready data; :meth:`from_dict` reads it back equal.

        Example:
            >>> product = Product(id="x", name="n", attributes={"cloudCover": 12.5})
            >>> Product.from_dict(product.to_dict()) == product
            True
        """
        return {
            "id": self.id,
            "name": self.name,
            "size": self.size,
            "checksums": dict(self.checksums),
            "content_start": _text_of(self.content_start),
            "content_end": _text_of(self.content_end),
            "publication_date": _text_of(self.publication_date),
            "modification_date": _text_of(self.modification_date),
            "origin_date": _text_of(self.origin_date),
            "online": self.online,
            "eviction_date": _text_of(self.eviction_date),
            "s3_path": self.s3_path,
            "footprint": self.footprint,
            "geo_footprint": None if self.geo_footprint is None else dict(self.geo_footprint),
            "attributes": [
                {"name": name, "type": _type_of(value), "value": _json_value(value)}
                for name, value in self.attributes.items()
            ],
            "quicklook_url": self.quicklook_url,
            "collection": self.collection,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Product:
        """Read :meth:`to_dict` output.

        Raises:
            ResultFileError: the data is not a product written by :meth:`to_dict`.
        """
        try:
            return cls(
                id=_required_text(data, "id"),
                name=_required_text(data, "name"),
                size=int(data.get("size") or 0),
                checksums={
                    str(key): str(value) for key, value in (data.get("checksums") or {}).items()
                },
                content_start=_instant(data.get("content_start")),
                content_end=_instant(data.get("content_end")),
                publication_date=_instant(data.get("publication_date")),
                modification_date=_instant(data.get("modification_date")),
                origin_date=_instant(data.get("origin_date")),
                online=_optional_bool(data.get("online")),
                eviction_date=_instant(data.get("eviction_date")),
                s3_path=data.get("s3_path"),
                footprint=data.get("footprint"),
                geo_footprint=data.get("geo_footprint"),
                attributes={
                    str(item["name"]): _typed(item["type"], item["value"])
                    for item in data.get("attributes") or ()
                },
                quicklook_url=data.get("quicklook_url"),
                collection=data.get("collection"),
            )
        except (KeyError, TypeError, ValueError, AttributeError) as error:
            name = data.get("name") if isinstance(data, Mapping) else None
            raise ResultFileError(
                f"unreadable product {name or '(no name)'} in the result file: {error}"
            ) from None


# The Id goes into download URLs (Products(<Id>)/$value): nothing but a UUID may pass.
_UUID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")
# No real product name holds a path separator or a control character; one that does is
# not a name we could save or look up again.
# A name is only refused when nothing can be made of it. Separators, control and bidi
# characters are not refused here: the file name is made safe (and unique per product)
# by downloads.paths, and text shown to people is escaped; refusing such names would
# hide products a user asked for. NUL cannot reach a file name or most C strings.
# NUL ends names in C; a lone surrogate (a JSON "\\ud800" escape) is not text and
# cannot be encoded for a file name, the ledger or a terminal.
_UNUSABLE_IN_NAMES = re.compile("[\x00\ud800-\udfff]")
_SURROGATE = re.compile("[\ud800-\udfff]")
# Far above any real name (about 100 characters), low enough to keep logs and reports
# readable and a hostile catalogue from handing over megabyte names.
_MAX_NAME_LENGTH = 4096


def _refuse_surrogates(entity: Mapping[str, Any]) -> None:
    """Refuse an entity with a lone surrogate in any of its texts, keys included.

    JSON may spell one (``"\\ud800"``) and Python reads it, but no encoding writes it:
    kept, it would fail far from here, writing a file name, the ledger or a line of
    output. The entity's depth is bounded by the parser, so the walk is too.

    Raises:
        ValueError: naming the field.
    """
    pending: list[tuple[str, Any]] = [(str(key), value) for key, value in entity.items()]
    while pending:
        where, value = pending.pop()
        if isinstance(value, str):
            texts = [value]
        elif isinstance(value, Mapping):
            texts = [str(key) for key in value]
            pending.extend((where, item) for item in value.values())
        elif isinstance(value, list):
            texts = []
            pending.extend((where, item) for item in value)
        else:
            continue
        if _SURROGATE.search(where) or any(_SURROGATE.search(text) for text in texts):
            raise ValueError(
                f"{where.encode('ascii', 'backslashreplace').decode()} holds "
                "a lone surrogate (an unpaired \\ud800-\\udfff escape), not text"
            )


def _shown(value: Any) -> str:
    """A value for an error message: its JSON-ish repr, cut short."""
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def is_product_id(value: object) -> bool:
    """Whether ``value`` is a product Id as the catalogue writes it (a hyphenated UUID).

    Example:
        >>> is_product_id("8f2d6a4e-1c3b-4e57-9a0d-5b7c2e91f4a3"), is_product_id("x)/Nodes")
        (True, False)
    """
    return isinstance(value, str) and _UUID.fullmatch(value) is not None


def _product_id(value: Any) -> str:
    if not isinstance(value, str) or not is_product_id(value):
        raise ValueError(f"Id {_shown(value)} is not a UUID")
    return value


def is_product_name(value: object) -> bool:
    """Whether ``value`` can be a product name: text we can save under and look up again.

    Hostile but non-empty names pass: the file name and every display make them safe.

    Example:
        >>> is_product_name("S1A_IW_GRDH_1SDV_20231001T053112.SAFE"), is_product_name("../x")
        (True, True)
        >>> is_product_name(""), is_product_name(" . "), is_product_name("a" + chr(0))
        (False, False, False)
    """
    return (
        isinstance(value, str)
        and bool(value.strip(". "))
        and len(value) <= _MAX_NAME_LENGTH
        and not _UNUSABLE_IN_NAMES.search(value)
    )


def _product_name(value: Any) -> str:
    if not isinstance(value, str) or not is_product_name(value):
        raise ValueError(f"Name {_shown(value)} is not a usable product name")
    return value


def _byte_count(value: Any) -> int:
    if value is None:
        return 0
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError(f"ContentLength {_shown(value)} is not a number of bytes")
    return value


def _checksums(value: Any) -> dict[str, str]:
    # [] on older holdings, [{}] on one Landsat product (§5.5): entries without a value
    # say nothing and are skipped; a value that is not text is broken.
    if value is None:
        return {}
    if not isinstance(value, list):
        raise ValueError(f"Checksum {_shown(value)} is not a list")
    checksums = {}
    for item in value:
        if not isinstance(item, Mapping):
            raise ValueError(f"Checksum entry {_shown(item)} is not an object")
        algorithm, digest = item.get("Algorithm"), item.get("Value")
        if not algorithm or not digest:
            continue
        if not isinstance(algorithm, str) or not isinstance(digest, str):
            raise ValueError(f"Checksum entry {_shown(item)} is not text")
        checksums[algorithm.upper()] = digest.lower()
    return checksums


def _attributes(value: Any) -> dict[str, AttributeValue]:
    if value is None:
        return {}
    if not isinstance(value, list):
        raise ValueError(f"Attributes {_shown(value)} is not a list")
    attributes = {}
    for item in value:
        name = item.get("Name") if isinstance(item, Mapping) else None
        if not isinstance(name, str) or not name:
            raise ValueError(f"Attributes entry {_shown(item)} has no name")
        attributes[name] = _typed(item.get("ValueType"), item.get("Value"))
    return attributes


def _geometry(value: Any) -> Mapping[str, Any] | None:
    if value is None:
        return None
    if not isinstance(value, Mapping) or not isinstance(value.get("type"), str):
        raise ValueError(f"GeoFootprint {_shown(value)} is not a GeoJSON geometry")
    return value


def _geometry_of(footprint: str | None) -> Mapping[str, Any] | None:
    """GeoJSON of a WKT footprint, for entities without ``GeoFootprint`` (§3.2)."""
    if footprint is None:
        return None
    import shapely  # only for the few entities that need it
    from shapely.geometry import mapping

    try:
        geometry = mapping(shapely.from_wkt(footprint))
    except shapely.errors.ShapelyError:
        return None
    # Tuples to lists: the form a JSON reader (and GeoFootprint) gives.
    converted: Mapping[str, Any] = json.loads(json.dumps(geometry))
    return converted


def _optional_text(field_name: str, value: Any) -> str | None:
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise ValueError(f"{field_name} {_shown(value)} is not text")
    return value


def _field(field_name: str, read: Any, value: Any) -> Any:
    """``read(value)``, with the field's name in the error."""
    try:
        return read(value)
    except ValueError as error:
        raise ValueError(f"{field_name}: {error}") from None


def _field_instant(field_name: str, value: Any) -> datetime | None:
    result: datetime | None = _field(field_name, _instant, value)
    return result


def _required_text(data: Mapping[str, Any], key: str) -> str:
    value = data[key]
    if not isinstance(value, str) or not value:
        raise ValueError(f"{key} must be non-empty text")
    return value


def _instant(value: Any) -> datetime | None:
    if value in (None, ""):
        return None
    if not isinstance(value, str):
        raise ValueError(f"{value!r} is not a date-time")
    return parse_datetime(value)


def _optional_bool(value: Any) -> bool | None:
    if value is None or isinstance(value, bool):
        return value
    raise ValueError(f"{value!r} is not true or false")


def _text_of(value: datetime | None) -> str | None:
    return None if value is None else format_datetime(value)


def _typed(value_type: Any, value: Any) -> AttributeValue:
    """The attribute value as its declared type, or as sent when it does not fit."""
    if value is None or isinstance(value, (dict, list)):
        return None if value is None else str(value)
    if value_type == "Integer" and not isinstance(value, bool):
        if isinstance(value, int):
            return value
        if isinstance(value, float) and value.is_integer():
            return int(value)
        if isinstance(value, str) and value.strip().lstrip("+-").isdigit():
            return int(value)
    elif value_type == "Double" and not isinstance(value, bool):
        if isinstance(value, (int, float)):
            return float(value)
        try:
            return float(value)
        except ValueError:
            pass
    elif value_type == "Boolean":
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in ("true", "false"):
            return value.lower() == "true"
    elif value_type == "DateTimeOffset" and isinstance(value, str):
        try:
            return parse_datetime(value)
        except ValueError:
            pass
    if isinstance(value, (str, int, float, bool)):
        return value
    return str(value)


def _type_of(value: AttributeValue) -> str:
    if isinstance(value, bool):
        return "Boolean"
    if isinstance(value, int):
        return "Integer"
    if isinstance(value, float):
        return "Double"
    if isinstance(value, datetime):
        return "DateTimeOffset"
    return "String"


def _json_value(value: AttributeValue) -> str | int | float | bool | None:
    return format_datetime(value) if isinstance(value, datetime) else value


def _footprint_wkt(value: Any) -> str | None:
    # "geography'SRID=4326;POLYGON ((...))'" -> "POLYGON ((...))"
    if not value:
        return None
    text = str(value).strip()
    if text.lower().startswith("geography'") and text.endswith("'"):
        text = text[len("geography'") : -1]
    if text.upper().startswith("SRID="):
        text = text.partition(";")[2]
    return text or None


def _quicklook(assets: Any) -> str | None:
    if assets is None:
        return None
    if not isinstance(assets, list):
        raise ValueError(f"Assets {_shown(assets)} is not a list")
    for asset in assets:
        if not isinstance(asset, Mapping):
            raise ValueError(f"Assets entry {_shown(asset)} is not an object")
        link = asset.get("DownloadLink")
        if str(asset.get("Type", "")).upper() == "QUICKLOOK" and isinstance(link, str) and link:
            return link
    return None


def _collection(name: str, attributes: Mapping[str, AttributeValue]) -> str | None:
    platform = attributes.get("platformShortName")
    if isinstance(platform, str) and platform.upper() in KNOWN_COLLECTIONS:
        return platform.upper()
    prefix = name[:3].upper()
    return MISSION_ABBREVIATIONS.get(prefix) or MISSION_ABBREVIATIONS.get(prefix[:2])
