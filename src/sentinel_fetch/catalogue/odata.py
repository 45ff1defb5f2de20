"""Render a :class:`~sentinel_fetch.catalogue.query.Query` as OData: filter text, query
parameters and a search URL. Pure functions; nothing here touches the network.

What each field means as a condition is not decided here but in :mod:`.conditions`
(the one field <-> OData mapping, which also reads pasted filters back); this module
joins those conditions and adds the page mechanics (``$top``, ``$skip``, ``$count``,
``$expand``, ``$orderby``) and the address (:data:`SEARCH_PATH`).

The filter is canonical: the same Query always gives the same text, and
:func:`~sentinel_fetch.catalogue.browser_url.parse_search_url` reads a URL from
:func:`search_url` back into an equal Query.

Example:
    >>> from sentinel_fetch.catalogue.query import build_query
    >>> query = build_query(collections="SENTINEL-2", start="2023-10-01", end="2023-10-01",
    ...                     max_cloud_cover=30)
    >>> print(render_filter(query))  # doctest: +NORMALIZE_WHITESPACE
    Collection/Name eq 'SENTINEL-2' and ContentDate/Start ge 2023-10-01T00:00:00.000000Z
    and ContentDate/Start lt 2023-10-02T00:00:00.000000Z
    and Attributes/OData.CSC.DoubleAttribute/any(att:att/Name eq 'cloudCover'
    and att/OData.CSC.DoubleAttribute/Value le 30)
"""

from __future__ import annotations

from collections.abc import Sequence
from urllib.parse import quote_plus

from sentinel_fetch.catalogue.filter import Expression, conjoin, render_expression
from sentinel_fetch.catalogue.query import Query, normalize_order_by
from sentinel_fetch.errors import QueryError
from sentinel_fetch.settings import Endpoints

__all__ = [
    "DEFAULT_EXPAND",
    "MAX_SKIP",
    "MAX_TOP",
    "SEARCH_PATH",
    "encode_params",
    "filter_expression",
    "products_url",
    "render_filter",
    "search_params",
    "search_url",
]

#: Where the product search is, below the catalogue's base URL (``.../odata/v1``; §3.1).
SEARCH_PATH = "/Products"

#: Expansions a search asks for: attributes (cloud cover, tile, orbit...) and assets
#: (the quicklook), as the Copernicus Browser does (§3.4, §4).
DEFAULT_EXPAND = ("Attributes", "Assets")
#: Largest ``$top`` the catalogue accepts (§3.6).
MAX_TOP = 1000
#: Largest ``$skip`` the catalogue accepts since 2024-11-12; beyond it answers 422 (§3.6).
MAX_SKIP = 10000


def filter_expression(query: Query) -> Expression:
    """The query's ``$filter`` as a tree: its conditions ANDed."""
    return conjoin(query.conditions())


def render_filter(query: Query) -> str:
    """The query's ``$filter`` text, canonical.

    Order: the fields in the order of :mod:`.conditions`' table, then the extra
    filters. Several values of one field form a parenthesised ``or`` group.

    Example:
        >>> render_filter(Query(tiles=("32TQM", "33TUL")))  # doctest: +NORMALIZE_WHITESPACE
        "Attributes/OData.CSC.StringAttribute/any(att:att/Name eq 'tileId' and
        att/OData.CSC.StringAttribute/Value eq '32TQM') or
        Attributes/OData.CSC.StringAttribute/any(att:att/Name eq 'tileId' and
        att/OData.CSC.StringAttribute/Value eq '33TUL')"
    """
    return render_expression(filter_expression(query))


def search_params(
    query: Query,
    *,
    top: int,
    skip: int = 0,
    count: bool = False,
    expand: Sequence[str] = DEFAULT_EXPAND,
    orderby: str | None = None,
) -> list[tuple[str, str]]:
    """Query parameters of one catalogue page, in order, not yet encoded.

    Args:
        query: what to search for.
        top: page size, 0-1000.
        skip: products to skip, 0-10000 (the catalogue's limits, §3.6).
        count: ask for ``@odata.count`` (slows the query down, §3.6).
        expand: ``$expand`` values, each sent as its own parameter (§3.4).
        orderby: ``$orderby``; ``None`` uses the query's ``order_by`` (possibly none).
            Paging with ``$skip`` needs a stable order: with an ``$orderby`` the
            catalogue also sorts by Id (§3.6), so pagers should pass one.

    Raises:
        QueryError: ``top``, ``skip`` or ``orderby`` outside what the catalogue accepts.

    Example:
        >>> search_params(Query(online=True), top=50, skip=50, count=True)
        [('$filter', 'Online eq true'), ('$top', '50'), ('$count', 'true'), \
('$expand', 'Attributes'), ('$expand', 'Assets'), ('$skip', '50')]
    """
    if not 0 <= top <= MAX_TOP:
        raise QueryError(f"page size {top} is outside 0..{MAX_TOP}, the catalogue's $top range")
    if not 0 <= skip <= MAX_SKIP:
        raise QueryError(
            f"skip {skip} is outside 0..{MAX_SKIP}: the catalogue cannot page further, "
            "split the search by date"
        )
    params = [("$filter", render_filter(query))]
    order = normalize_order_by(orderby) if orderby is not None else query.order_by
    if order is not None:
        params.append(("$orderby", order))
    params.append(("$top", str(top)))
    if count:
        params.append(("$count", "true"))
    params.extend(("$expand", name) for name in expand)
    if skip:
        # Last, where the browser and the catalogue's own next links put it (§3.7).
        params.append(("$skip", str(skip)))
    return params


def encode_params(params: Sequence[tuple[str, str]]) -> str:
    """Percent-encode query parameters the way the catalogue writes its next links.

    ``$`` stays literal in names; values are form-encoded (space as ``+``, quote as
    ``%27``, ``+`` as ``%2B``) except ``/ : , ( )``, which keeps filters readable and
    areas short (§3.7).

    Example:
        >>> encode_params([("$filter", "Name eq 'a+b'"), ("$top", "10")])
        '$filter=Name+eq+%27a%2Bb%27&$top=10'
    """
    return "&".join(
        f"{quote_plus(name, safe='$')}={quote_plus(value, safe='/:,()')}" for name, value in params
    )


def search_url(
    query: Query,
    endpoints: Endpoints,
    *,
    top: int = MAX_TOP,
    skip: int = 0,
    count: bool = False,
    expand: Sequence[str] = DEFAULT_EXPAND,
    orderby: str | None = None,
) -> str:
    """The full catalogue search URL of one page (see :func:`search_params`).

    Example:
        >>> search_url(Query(online=True), Endpoints(), top=10, expand=())
        'https://catalogue.dataspace.copernicus.eu/odata/v1/Products?$filter=Online+eq+true&$top=10'
    """
    params = search_params(query, top=top, skip=skip, count=count, expand=expand, orderby=orderby)
    return f"{products_url(endpoints)}?{encode_params(params)}"


def products_url(endpoints: Endpoints) -> str:
    """The product search URL without parameters.

    Example:
        >>> products_url(Endpoints())
        'https://catalogue.dataspace.copernicus.eu/odata/v1/Products'
    """
    return endpoints.catalogue + SEARCH_PATH
