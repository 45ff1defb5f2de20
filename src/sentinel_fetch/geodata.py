"""Search results as a GeoDataFrame (the ``geo`` extra: ``pip install ".[geo]"``).

One row per product, the footprint as geometry in EPSG:4326, and the fields people
filter and plot by as columns, so results go straight into geopandas, a notebook map or
a GeoPackage (``frame.to_file("results.gpkg")``).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from sentinel_fetch.catalogue.footprint import footprint_of
from sentinel_fetch.catalogue.product import Product

if TYPE_CHECKING:
    import geopandas

__all__ = ["COLUMNS", "to_geodataframe"]

#: The columns besides ``geometry``, in order.
COLUMNS = (
    "id",
    "name",
    "collection",
    "product_type",
    "platform",
    "sensing_start",
    "sensing_end",
    "publication_date",
    "size",
    "cloud_cover",
    "online",
    "tile",
    "relative_orbit",
    "orbit_direction",
    "quicklook_url",
    "s3_path",
)


def to_geodataframe(products: Iterable[Product]) -> geopandas.GeoDataFrame:
    """A GeoDataFrame of ``products``, in their order (no footprint: a missing geometry).

    Raises:
        ImportError: geopandas is not installed (the message says how to get it).
    """
    try:
        import geopandas
    except ImportError:
        raise ImportError(
            'to_geodataframe needs geopandas: pip install "sentinel-fetch[geo]"'
        ) from None
    rows: list[dict[str, Any]] = []
    geometries = []
    for product in products:
        rows.append(
            {
                "id": product.id,
                "name": product.name,
                "collection": product.collection,
                "product_type": product.product_type,
                "platform": product.platform,
                "sensing_start": product.content_start,
                "sensing_end": product.content_end,
                "publication_date": product.publication_date,
                "size": product.size,
                "cloud_cover": product.cloud_cover,
                "online": product.online,
                "tile": product.tile_id,
                "relative_orbit": product.relative_orbit,
                "orbit_direction": product.orbit_direction,
                "quicklook_url": product.quicklook_url,
                "s3_path": product.s3_path,
            }
        )
        geometries.append(footprint_of(product))
    return geopandas.GeoDataFrame(rows, columns=list(COLUMNS), geometry=geometries, crs="EPSG:4326")
