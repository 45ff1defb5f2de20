"""The emulator's STAC API (cdse-api.md §9): collections, items and search over the catalogue.

* :mod:`.collections`: the collections served and their OData counterparts;
* :mod:`.items`: products rendered as STAC items (assets per file, multihash checksums);
* :mod:`.query`: search parameters, basic CQL2, ``query``, ``sortby``, ``fields`` -> SQL;
* :mod:`.host`: the HTTP routes, paging and the rate limiter.
"""

from .collections import COLLECTIONS, StacCollection
from .host import StacApp
from .items import ItemLinks, ItemRenderer, multihash

__all__ = ["COLLECTIONS", "ItemLinks", "ItemRenderer", "StacApp", "StacCollection", "multihash"]
