"""Save search results and read them back.

:func:`write_products` picks the format from the file extension:

* ``.json``: our own versioned document holding the query and every product field,
  lossless: a later download reads ids, sizes and checksums from it; the ``count``
  member comes after the products, so the file is written as products arrive;
* ``.geojson``: a FeatureCollection of footprints with readable properties, which GIS
  tools such as QGIS open directly; each feature also carries the full product, so it
  reads back losslessly too;
* ``.csv``: one row per product (name, id, dates, size, cloud cover, online, tile,
  orbit, checksums) for spreadsheets; a cell that would read as a formula (a name
  starting with ``=``) is guarded with a leading ``'``;
* ``.ndjson``: one product per line as JSON (what a piped ``search`` prints);
* ``.txt``: product names, one per line, for other tools.

:func:`read_products` reads ``.json`` and ``.geojson`` files written here. A ``.txt``
list of names or ids is not a result: it says which products to look for, so
:func:`read_name_list` turns it into a :class:`Query`; searching it returns current
metadata (online state, checksums) rather than stale copies.
"""

from __future__ import annotations

import csv
import io
import json
import os
import tempfile
import uuid
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import shapely
from shapely.geometry import mapping

from sentinel_fetch.catalogue.filter import format_datetime
from sentinel_fetch.catalogue.odata import render_filter
from sentinel_fetch.catalogue.product import Product
from sentinel_fetch.catalogue.query import Query
from sentinel_fetch.errors import QueryError, ResultFileError, StorageError
from sentinel_fetch.text import read_text_file, spreadsheet_cell
from sentinel_fetch.untrusted import UntrustedJSONError, parse_json

__all__ = [
    "CSV_COLUMNS",
    "MAX_NAME_LIST_BYTES",
    "RESULT_FORMAT",
    "RESULT_VERSION",
    "SearchResults",
    "ndjson_line",
    "read_name_list",
    "read_products",
    "read_results",
    "write_products",
]

#: Marks our JSON documents (and the GeoJSON ``sentinel_fetch`` member).
RESULT_FORMAT = "sentinel-fetch/search-results"
#: Bumped when the document changes incompatibly; readers refuse newer versions.
RESULT_VERSION = 1
#: Largest list of names read: about 130,000 product names, more than any batch needs.
MAX_NAME_LIST_BYTES = 10_000_000
#: Columns of CSV results, in order.
CSV_COLUMNS = (
    "name",
    "id",
    "collection",
    "product_type",
    "content_start",
    "content_end",
    "size_bytes",
    "cloud_cover",
    "online",
    "tile_id",
    "relative_orbit",
    "orbit_direction",
    "platform",
    "publication_date",
    "s3_path",
    "md5",
    "blake3",
)


@dataclass(frozen=True)
class SearchResults:
    """Products read from a result file, with the query that found them when known."""

    products: tuple[Product, ...]
    query: Query | None = None


def write_products(
    products: Iterable[Product], path: str | Path, *, query: Query | None = None
) -> Path:
    """Write products to ``path`` in the format its extension names.

    Products are written as the iterable yields them and never held together, so a
    listing of any length takes the memory of one product: pass a search result
    itself, not a list of it. The file is written under a temporary name and moved
    into place, so an interrupted write (a search that fails on page 90) never leaves
    half a result file.

    Args:
        products: the products, in the order to write them.
        path: ``.json``, ``.geojson``, ``.csv``, ``.ndjson`` or ``.txt`` file.
        query: the search that found them, recorded in ``.json``/``.geojson`` files.

    Returns:
        The path written.

    Raises:
        ResultFileError: the extension is not one of the above (before any product is
            asked for, so a search is not sent for nothing).
        StorageError: the file cannot be written.
    """
    target = Path(path)
    writers = {
        ".json": _json_chunks,
        ".geojson": _geojson_chunks,
        ".csv": _csv_chunks,
        ".ndjson": _ndjson_chunks,
        ".txt": _names_chunks,
    }
    writer = writers.get(target.suffix.lower())
    if writer is None:
        raise ResultFileError(
            f"cannot save results as {target.name}: use .json, .geojson, .csv, .ndjson or .txt"
        )
    _write_atomically(target, writer(products, query))
    return target


def ndjson_line(product: Product) -> str:
    """One product as one line of JSON (``.ndjson`` files and piped ``search`` output)."""
    return json.dumps(product.to_dict(), ensure_ascii=False, default=str) + "\n"


def read_results(path: str | Path) -> SearchResults:
    """Read a ``.json`` or ``.geojson`` result file written by :func:`write_products`.

    Raises:
        ResultFileError: another extension, unreadable, or not written by this tool.
    """
    source = Path(path)
    suffix = source.suffix.lower()
    if suffix == ".txt":
        raise ResultFileError(
            f"{source.name} is a list of names or ids, not saved results: search for them "
            "first (read_name_list)"
        )
    if suffix == ".csv":
        raise ResultFileError(
            f"{source.name}: CSV results are for people and spreadsheets; read the .json or "
            ".geojson results instead"
        )
    if suffix not in (".json", ".geojson"):
        raise ResultFileError(f"cannot read results from {source.name}: use .json or .geojson")
    document = _load_json(source)
    if suffix == ".json":
        header, entries = _json_entries(document, source)
    else:
        header, entries = _geojson_entries(document, source)
    version = header.get("version")
    if not isinstance(version, int) or version > RESULT_VERSION:
        raise ResultFileError(
            f"{source.name} was written by a newer sentinel-fetch (format version "
            f"{version}): update sentinel-fetch to read it"
        )
    products = tuple(Product.from_dict(entry) for entry in entries)
    return SearchResults(products, _query_of(header.get("query"), source))


def read_products(path: str | Path) -> list[Product]:
    """The products of a result file (see :func:`read_results`)."""
    return list(read_results(path).products)


def read_name_list(path: str | Path) -> Query:
    """A Query for the products listed in a text file, one name or id per line.

    Lines that are UUIDs become ids, other lines names; blank lines and lines starting
    with ``#`` are skipped. The file is read like a search URL file: UTF-8 with or
    without a byte-order mark, or UTF-16; one over :data:`MAX_NAME_LIST_BYTES` is
    refused unread.

    Raises:
        ResultFileError: the file cannot be read, is too big or lists nothing.
        QueryError: a line is not a usable name.
    """
    source = Path(path)
    text = read_text_file(
        source, what="list of names", max_bytes=MAX_NAME_LIST_BYTES, error=ResultFileError
    )
    names: list[str] = []
    ids: list[str] = []
    for line in text.splitlines():
        entry = line.strip()
        if not entry or entry.startswith("#"):
            continue
        try:
            ids.append(str(uuid.UUID(entry)))
        except ValueError:
            names.append(entry)
    if not names and not ids:
        raise ResultFileError(f"{source.name} lists no product name or id")
    return Query(names=tuple(names), ids=tuple(ids))


# --- writers ------------------------------------------------------------------------------


def _header(query: Query | None) -> dict[str, Any]:
    return {
        "format": RESULT_FORMAT,
        "version": RESULT_VERSION,
        "query": None if query is None else query.to_dict(),
        "filter": None if query is None else render_filter(query),
    }


def _json_chunks(products: Iterable[Product], query: Query | None) -> Iterator[str]:
    # The text json.dumps(indent=1) gives for {header, "products": [...], "count": n},
    # one product at a time: the count comes last, so nothing waits for the end.
    head = json.dumps(_header(query), indent=1, ensure_ascii=False)
    yield head[: -len("\n}")] + ',\n "products": ['
    count = 0
    for product in products:
        entry = json.dumps(product.to_dict(), indent=1, ensure_ascii=False)
        # Nested two levels deep; JSON strings hold no raw newline, so every line moves.
        yield ("," if count else "") + "\n  " + entry.replace("\n", "\n  ")
        count += 1
    yield ("\n ]" if count else "]") + f',\n "count": {count}\n}}\n'


def _geojson_chunks(products: Iterable[Product], query: Query | None) -> Iterator[str]:
    # The text json.dumps gives for the whole FeatureCollection, one feature at a time.
    head = json.dumps(
        {"type": "FeatureCollection", "sentinel_fetch": _header(query)}, ensure_ascii=False
    )
    yield head[: -len("}")] + ', "features": ['
    first = True
    for product in products:
        yield ("" if first else ", ") + json.dumps(_feature(product), ensure_ascii=False)
        first = False
    yield "]}\n"


def _feature(product: Product) -> dict[str, Any]:
    full = product.to_dict()
    if product.geo_footprint is not None:
        # Stored once, as the feature's geometry.
        del full["geo_footprint"]
    return {
        "type": "Feature",
        "id": product.id,
        "geometry": _geometry(product),
        "properties": {**_summary(product), "product": full},
    }


def _geometry(product: Product) -> Mapping[str, Any] | None:
    if product.geo_footprint is not None:
        return product.geo_footprint
    if product.footprint:
        try:
            geometry = mapping(shapely.from_wkt(product.footprint))
        except shapely.errors.ShapelyError:
            return None
        # Tuples to lists: what a JSON reader gives back.
        loaded: Mapping[str, Any] = json.loads(json.dumps(geometry))
        return loaded
    return None


def _summary(product: Product) -> dict[str, Any]:
    return {
        "name": product.name,
        "id": product.id,
        "collection": product.collection,
        "product_type": product.product_type,
        "content_start": _datetime_text(product.content_start),
        "content_end": _datetime_text(product.content_end),
        "size_bytes": product.size,
        "cloud_cover": product.cloud_cover,
        "online": product.online,
        "tile_id": product.tile_id,
        "relative_orbit": product.relative_orbit,
        "orbit_direction": product.orbit_direction,
        "platform": product.platform,
        "publication_date": _datetime_text(product.publication_date),
        "s3_path": product.s3_path,
        "md5": product.checksums.get("MD5"),
        "blake3": product.checksums.get("BLAKE3"),
    }


def _datetime_text(value: datetime | None) -> str | None:
    return None if value is None else format_datetime(value)


def _csv_chunks(products: Iterable[Product], query: Query | None) -> Iterator[str]:
    # For spreadsheets: a cell that reads as a formula (a name from the server starting
    # with "=") is guarded; the JSON and GeoJSON files keep every value exact.
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=CSV_COLUMNS, lineterminator="\n")
    writer.writeheader()
    for product in products:
        row = _summary(product)
        writer.writerow(
            {
                column: "" if row[column] is None else spreadsheet_cell(row[column])
                for column in CSV_COLUMNS
            }
        )
        yield buffer.getvalue()
        buffer.seek(0)
        buffer.truncate()
    yield buffer.getvalue()


def _ndjson_chunks(products: Iterable[Product], query: Query | None) -> Iterator[str]:
    for product in products:
        yield ndjson_line(product)


def _names_chunks(products: Iterable[Product], query: Query | None) -> Iterator[str]:
    for product in products:
        yield f"{product.name}\n"


def _write_atomically(target: Path, chunks: Iterable[str]) -> None:
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        handle, temporary = tempfile.mkstemp(prefix=f".{target.name}.", dir=target.parent)
        try:
            with os.fdopen(handle, "w", encoding="utf-8", newline="") as file:
                for chunk in chunks:
                    file.write(chunk)
            Path(temporary).replace(target)
        except BaseException:
            Path(temporary).unlink(missing_ok=True)
            raise
    except OSError as error:
        raise StorageError(f"cannot write {target}: {error.strerror or error}") from None


# --- readers ------------------------------------------------------------------------------


def _load_json(source: Path) -> Any:
    try:
        return parse_json(source.read_bytes())
    except OSError as error:
        raise ResultFileError(f"cannot read {source}: {error.strerror or error}") from None
    except UntrustedJSONError as error:
        raise ResultFileError(
            f"{source.name} is not a JSON file written by sentinel-fetch ({error})"
        ) from None


def _json_entries(document: Any, source: Path) -> tuple[Mapping[str, Any], list[Any]]:
    if not isinstance(document, dict) or document.get("format") != RESULT_FORMAT:
        raise ResultFileError(
            f"{source.name} is not a sentinel-fetch result file: save results with .json first"
        )
    products = document.get("products")
    if not isinstance(products, list):
        raise ResultFileError(f"{source.name} has no product list")
    return document, products


def _geojson_entries(document: Any, source: Path) -> tuple[Mapping[str, Any], list[Any]]:
    header = document.get("sentinel_fetch") if isinstance(document, dict) else None
    if not isinstance(header, dict) or header.get("format") != RESULT_FORMAT:
        raise ResultFileError(
            f"{source.name} is not a GeoJSON file written by sentinel-fetch: "
            "only our own result files hold whole products"
        )
    entries: list[Any] = []
    for feature in document.get("features") or ():
        properties = feature.get("properties") if isinstance(feature, dict) else None
        product = properties.get("product") if isinstance(properties, dict) else None
        if not isinstance(product, dict):
            raise ResultFileError(f"{source.name} has a feature without its product")
        entries.append({"geo_footprint": feature.get("geometry"), **product})
    return header, entries


def _query_of(data: Any, source: Path) -> Query | None:
    if data is None:
        return None
    if not isinstance(data, dict):
        raise ResultFileError(f"{source.name} holds an unreadable query")
    try:
        return Query.from_dict(data)
    except QueryError as error:
        raise ResultFileError(
            f"{source.name} holds a query that no longer checks: {error}"
        ) from None
