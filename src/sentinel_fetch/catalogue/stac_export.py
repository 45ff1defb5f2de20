"""Search results as a STAC ItemCollection (``search --output results.stac.json``).

The file feeds STAC tools directly (pystac ``ItemCollection.from_file``, odc-stac,
stackstac): each product is its CDSE STAC item as the catalogue serves it, with one asset
per band (``s3://`` hrefs and HTTPS Nodes alternates), looked up in batches of ids. A
product the STAC catalogue lacks (or every product, when it cannot be reached) becomes a
core STAC item built from the OData entry: its footprint, sensing dates, platform and
the zipped ``Product`` asset on the download host.
"""

from __future__ import annotations

import itertools
import json
import logging
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import shapely.geometry

from sentinel_fetch.catalogue.filter import format_datetime
from sentinel_fetch.catalogue.product import Product
from sentinel_fetch.catalogue.stac import StacLookup, item_id
from sentinel_fetch.errors import StacError, StorageError
from sentinel_fetch.http import Transport
from sentinel_fetch.retry import RetryPolicy
from sentinel_fetch.settings import Settings

__all__ = ["STAC_VERSION", "item_collection", "item_from_product", "write_item_collection"]

log = logging.getLogger("sentinel_fetch.stac")

STAC_VERSION = "1.1.0"


def item_from_product(product: Product, settings: Settings) -> dict[str, Any]:
    """A core STAC item (no extensions) for a product, from its OData entry."""
    geometry = product.geo_footprint
    item: dict[str, Any] = {
        "type": "Feature",
        "stac_version": STAC_VERSION,
        "stac_extensions": [],
        "id": item_id(product.name),
        "geometry": dict(geometry) if geometry is not None else None,
    }
    if geometry is not None:
        try:
            item["bbox"] = list(shapely.geometry.shape(geometry).bounds)
        except (ValueError, TypeError, AttributeError):
            item["geometry"] = None
    start, end = product.content_start, product.content_end
    properties: dict[str, Any] = {"datetime": format_datetime(start) if start else None}
    if start is not None and end is not None:
        properties["start_datetime"] = format_datetime(start)
        properties["end_datetime"] = format_datetime(end)
    if properties["datetime"] is None:
        # The core schema asks for a datetime or a range; a product without dates has none.
        properties["datetime"] = (
            format_datetime(product.publication_date) if product.publication_date else None
        )
    if product.platform:
        properties["platform"] = str(product.platform).lower()
    if product.cloud_cover is not None:
        properties["eo:cloud_cover"] = product.cloud_cover
    if product.product_type:
        properties["product:type"] = product.product_type
    asset: dict[str, Any] = {
        "href": settings.endpoints.product_url(product.id),
        "type": "application/zip",
        "title": "Zipped product",
        "roles": ["data", "metadata", "archive"],
    }
    if product.size:
        asset["file:size"] = product.size
    item["properties"] = properties
    item["links"] = []
    item["assets"] = {"Product": asset}
    return item


def item_collection(
    products: Iterable[Product],
    items: Mapping[str, Mapping[str, Any]],
    settings: Settings,
) -> dict[str, Any]:
    """A FeatureCollection of items, in the products' order: STAC's, else the OData one."""
    features = []
    for product in products:
        found = items.get(item_id(product.name))
        features.append(dict(found) if found is not None else item_from_product(product, settings))
    return {"type": "FeatureCollection", "features": features, "links": []}


def write_item_collection(
    products: Iterable[Product],
    path: str | Path,
    *,
    settings: Settings,
    transport: Transport | None = None,
) -> tuple[Path, int]:
    """Look the products up in STAC (in batches) and write them as an ItemCollection.

    Products are taken one batch of STAC look-ups at a time and written at once, so
    memory holds one batch, never the listing: the file is the text ``json.dumps`` gives
    for :func:`item_collection` of them all. When STAC cannot be reached, that batch and
    every later one are built from their OData entries (one warning, no more requests).

    Returns:
        The path written and how many products came from the STAC catalogue itself.

    Raises:
        StorageError: the file cannot be written.
    """
    lookup = StacLookup(
        transport or Transport(settings),
        settings.endpoints.stac,
        policy=RetryPolicy.from_limits(settings.limits),
    )
    target = Path(path)
    temporary = target.with_name(target.name + ".tmp")
    from_stac = 0
    reachable = True
    try:
        with temporary.open("w", encoding="utf-8", newline="") as file:
            file.write('{"type": "FeatureCollection", "features": [')
            first = True
            iterator = iter(products)
            while batch := list(itertools.islice(iterator, lookup.batch_size)):
                items: Mapping[str, Mapping[str, Any]] = {}
                if reachable:
                    try:
                        items = lookup.items(p.name for p in batch)
                    except StacError as exc:
                        log.warning(
                            "STAC cannot be reached (%s); writing items from the OData entries",
                            exc,
                        )
                        reachable = False
                for feature in item_collection(batch, items, settings)["features"]:
                    file.write(("" if first else ", ") + json.dumps(feature, ensure_ascii=False))
                    first = False
                from_stac += sum(1 for p in batch if item_id(p.name) in items)
            file.write('], "links": []}\n')
        temporary.replace(target)
    except OSError as exc:
        temporary.unlink(missing_ok=True)
        raise StorageError(f"cannot write {target}: {exc.strerror or exc}") from None
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
    return target, from_stac
