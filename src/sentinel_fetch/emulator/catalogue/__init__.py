"""The emulator's OData catalogue: a synthetic CDSE product archive and its search API.

* :class:`CatalogueStore` builds (once per seed) and reads the SQLite catalogue of
  realistic Sentinel-1/2/3/5P products (:mod:`.generator` describes what is in it);
* :func:`make_catalogue_handler` serves ``/odata/v1/`` over it as a pure
  ``Request -> Response`` function (:mod:`.handler`);
* :func:`parse_filter` / :class:`FilterError` implement the ``$filter`` language
  (cdse-api.md §3.5) with a lark grammar compiled to SQL (:mod:`.sql`).

Example queries that return products: :meth:`CatalogueStore.sensing_dates` finds days
with a given product over a point (the Sentinel-1 browser URL over Thailand of §4 needs
one); Sentinel-2 L2A over Munich (tile 32UPU) has a full 5-day series in 2023.
"""

from .filter import FilterError, parse_filter
from .generator import GENERATOR_VERSION, BuildReport
from .handler import make_catalogue_handler
from .sql import OrderByError
from .store import CatalogueStore

__all__ = [
    "GENERATOR_VERSION",
    "BuildReport",
    "CatalogueStore",
    "FilterError",
    "OrderByError",
    "make_catalogue_handler",
    "parse_filter",
]
