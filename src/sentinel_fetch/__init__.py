"""sentinel-fetch: batch search and download of Copernicus Sentinel data from CDSE.

The public API::

    import sentinel_fetch as sf

    with sf.Client() as client:          # one network road and one login for the run
        products = list(client.search(collections="SENTINEL-2", start="2023-06-01",
                                      end="2023-06-30", area=(11, 46, 12, 47)))
        report = client.download(products, save_path="data")

    # or one call each (a Client per call, closed after it):
    report = sf.download(sf.search(collections="SENTINEL-2", area="11,46,12,47"))

Heavy modules are imported on first use so that ``sentinel-fetch --help`` starts fast.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

__all__ = [
    "BatchReport",
    "Client",
    "Credentials",
    "Endpoints",
    "Limits",
    "Product",
    "ProductResult",
    "Query",
    "RejectedEntry",
    "Search",
    "SentinelFetchError",
    "Settings",
    "Triage",
    "build_query",
    "count",
    "download",
    "search",
]

_LAZY = {
    "BatchReport": "sentinel_fetch.downloads.engine",
    "ProductResult": "sentinel_fetch.downloads.engine",
    "Client": "sentinel_fetch.client",
    "Credentials": "sentinel_fetch.auth",
    "Endpoints": "sentinel_fetch.settings",
    "Limits": "sentinel_fetch.settings",
    "Settings": "sentinel_fetch.settings",
    "Product": "sentinel_fetch.catalogue.product",
    "Query": "sentinel_fetch.catalogue.query",
    "build_query": "sentinel_fetch.catalogue.query",
    "RejectedEntry": "sentinel_fetch.catalogue.search",
    "Search": "sentinel_fetch.catalogue.search",
    "SentinelFetchError": "sentinel_fetch.errors",
    "Triage": "sentinel_fetch.catalogue.triage",
    "count": "sentinel_fetch.api",
    "download": "sentinel_fetch.api",
    "search": "sentinel_fetch.api",
}

if TYPE_CHECKING:
    from sentinel_fetch.api import count, download, search
    from sentinel_fetch.auth import Credentials
    from sentinel_fetch.catalogue.product import Product
    from sentinel_fetch.catalogue.query import Query, build_query
    from sentinel_fetch.catalogue.search import RejectedEntry, Search
    from sentinel_fetch.catalogue.triage import Triage
    from sentinel_fetch.client import Client
    from sentinel_fetch.downloads.engine import BatchReport, ProductResult
    from sentinel_fetch.errors import SentinelFetchError
    from sentinel_fetch.settings import Endpoints, Limits, Settings


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'sentinel_fetch' has no attribute {name!r}")
    value = getattr(import_module(module), name)
    globals()[name] = value
    return value
