"""The STAC API host (``stac.dataspace.copernicus.eu/v1``, cdse-api.md §9) over the catalogue.

Routes (§9.2): ``GET /v1`` and ``/v1/`` (landing page), ``/v1/conformance``,
``/v1/collections`` (``?q=`` free text, the only place it works), ``/v1/collections/{id}``,
``/v1/collections/{id}/items``, ``/v1/collections/{id}/items/{itemId}``, ``GET|POST
/v1/search``, ``/v1/queryables`` and ``/v1/collections/{id}/queryables``. No token is
needed anywhere (§9.1); the assets' hrefs on the zipper and download hosts need one.

Pages are FeatureCollections with ``numberReturned`` (no ``numberMatched``: counting is
off, as stac-fastapi-pgstac does by default [INFERRED], §9.4). A ``next`` link appears
when a page is full and more items follow: for GET its ``href`` repeats the query with
``token=next:<item id>`` (opaque to clients); for POST it carries ``"method": "POST"``,
the original ``body`` plus ``"token"``, and ``"merge": false`` (§13.5). Errors are
stac-fastapi's ``{"code", "description"}``: 400 ``InvalidQueryParameter`` for a bad
parameter, 404 ``NotFoundError`` for an unknown collection or item.

**Rate limit.** CDSE's STAC allows about 5 requests per second; beyond it, 429 with
``Retry-After: 2`` (§9.4). The body was captured only on the older front end, so the
emulator sends that WAF body, ``{"error":"WAF","message":"Rate limit exceeded",
"status":429}`` (§6.2). The limiter is a token bucket per client address (the WAF sees
addresses, not accounts), ``stac_requests_per_s`` per second with a burst of as many;
its clock is ``config.stac_clock``, so tests drive it without waiting.
"""

from __future__ import annotations

import json
import threading
import urllib.parse
from collections.abc import Sequence
from typing import Any

from sentinel_fetch.emulator.archive import ArchiveStore
from sentinel_fetch.emulator.catalogue.sql import SqlFilter, served
from sentinel_fetch.emulator.config import EmulatorConfig
from sentinel_fetch.emulator.model import Request, Response

from .collections import COLLECTIONS, STAC_VERSION, by_id, collection_of, render_collection
from .items import ItemLinks, ItemRenderer
from .query import (
    PROPERTIES,
    QueryError,
    Search,
    after_row,
    apply_fields,
    compile_search,
    search_from_body,
    search_from_query,
)

__all__ = ["CONFORMANCE", "RateLimiter", "StacApp"]

PREFIX = "/v1"
_GEOJSON = "application/geo+json"

#: Conformance classes (§9.2): core, item search, OGC features, filter, fields, sort, query.
CONFORMANCE = (
    "https://api.stacspec.org/v1.0.0/core",
    "https://api.stacspec.org/v1.0.0/collections",
    "https://api.stacspec.org/v1.0.0/ogcapi-features",
    "https://api.stacspec.org/v1.0.0/item-search",
    "https://api.stacspec.org/v1.0.0/item-search#fields",
    "https://api.stacspec.org/v1.0.0/item-search#sort",
    "https://api.stacspec.org/v1.0.0/item-search#query",
    "https://api.stacspec.org/v1.0.0/item-search#filter",
    "https://api.stacspec.org/v1.0.0-rc.1/collection-search#free-text",
    "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/core",
    "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/geojson",
    "http://www.opengis.net/spec/ogcapi-features-3/1.0/conf/filter",
    "http://www.opengis.net/spec/ogcapi-features-3/1.0/conf/features-filter",
    "http://www.opengis.net/spec/cql2/1.0/conf/basic-cql2",
    "http://www.opengis.net/spec/cql2/1.0/conf/cql2-text",
    "http://www.opengis.net/spec/cql2/1.0/conf/cql2-json",
    "http://www.opengis.net/spec/cql2/1.0/conf/basic-spatial-functions",
)

_QUERYABLE_TYPES = {
    "string": {"type": "string"},
    "number": {"type": "number"},
    "timestamp": {"type": "string", "format": "date-time"},
}


class _Error(Exception):
    def __init__(self, status: int, code: str, description: str) -> None:
        super().__init__(description)
        self.status = status
        self.code = code
        self.description = description


class RateLimiter:
    """A token bucket per client address: ``rate`` requests per second, a burst of ``rate``.

    Args:
        config: ``stac_requests_per_s`` (``None``: no limit) and ``stac_clock``, read on
            every call, so a test can switch the limiter on and drive its clock.
    """

    def __init__(self, config: EmulatorConfig) -> None:
        self._config = config
        self._lock = threading.Lock()
        self._buckets: dict[str, tuple[float, float]] = {}

    def allow(self, client: str) -> bool:
        """Whether one more request from ``client`` (``ip:port``) fits the rate now."""
        rate = self._config.stac_requests_per_s
        if rate is None or rate <= 0:
            return True
        address = client.rsplit(":", 1)[0]
        now = self._config.stac_clock()
        with self._lock:
            tokens, last = self._buckets.get(address, (rate, now))
            # A clock swapped for another (tests) may run behind: never refill negatively.
            tokens = min(rate, tokens + max(0.0, now - last) * rate)
            if tokens < 1.0:
                self._buckets[address] = (tokens, now)
                return False
            self._buckets[address] = (tokens - 1.0, now)
            return True


class StacApp:
    """The STAC host's handler: ``Request -> Response``.

    Args:
        config: limits and switches (read per request).
        store: the catalogue (``CatalogueStore``).
        archives: per-file digests for the items.
        links: the origins items point at; ``links.stac`` is replaced per request by the
            origin the client reached.
    """

    def __init__(
        self, config: EmulatorConfig, store: Any, archives: ArchiveStore, links: ItemLinks
    ) -> None:
        self._config = config
        self._store = store
        self._archives = archives
        self._links = links
        self.limiter = RateLimiter(config)

    def __call__(self, request: Request) -> Response:
        """Answer one request."""
        if not self.limiter.allow(request.client):
            retry = max(0, int(-(-self._config.stac_retry_after_s // 1)))
            return self._cors(
                Response.json(
                    429,
                    {"error": "WAF", "message": "Rate limit exceeded", "status": 429},
                    [("Retry-After", str(retry))],
                )
            )
        try:
            response = self._route(request)
        except _Error as error:
            response = Response.json(
                error.status, {"code": error.code, "description": error.description}
            )
        except QueryError as error:
            response = Response.json(
                400, {"code": "InvalidQueryParameter", "description": str(error)}
            )
        return self._cors(response)

    @staticmethod
    def _cors(response: Response) -> Response:
        response.headers.append(("Access-Control-Allow-Origin", "*"))
        return response

    # Routing -------------------------------------------------------------------------

    def _route(self, request: Request) -> Response:
        path = request.path.rstrip("/") or "/"
        if not (path == PREFIX or path.startswith(PREFIX + "/")):
            raise _Error(404, "NotFoundError", f"No route {request.path}")
        base = request.base_url + PREFIX
        parts = path[len(PREFIX) :].strip("/").split("/") if path != PREFIX else []
        method = request.method
        if method == "POST" and parts == ["search"]:
            return self._search_post(request, base)
        if method not in ("GET", "HEAD"):
            raise _Error(405, "MethodNotAllowed", f"{method} is not allowed on {request.path}")
        if not parts:
            return Response.json(200, self._landing(base))
        head, rest = parts[0], parts[1:]
        if head == "conformance" and not rest:
            return Response.json(200, {"conformsTo": list(CONFORMANCE)})
        if head == "queryables" and not rest:
            return self._queryables(f"{base}/queryables")
        if head == "search" and not rest:
            return self._search_get(request, base, None)
        if head == "collections":
            return self._collections(request, base, rest)
        raise _Error(404, "NotFoundError", f"No route {request.path}")

    def _collections(self, request: Request, base: str, rest: list[str]) -> Response:
        if not rest:
            return self._collection_list(request, base)
        collection = by_id(rest[0])
        if collection is None:
            raise _Error(404, "NotFoundError", f"Collection {rest[0]} does not exist.")
        if len(rest) == 1:
            return Response.json(200, render_collection(collection, base))
        if rest[1:] == ["queryables"]:
            return self._queryables(f"{base}/collections/{collection.id}/queryables")
        if rest[1:] == ["items"]:
            return self._search_get(request, base, collection.id)
        if len(rest) == 3 and rest[1] == "items":
            return self._item(request, base, collection.id, rest[2])
        raise _Error(404, "NotFoundError", f"No route {request.path}")

    # Documents -----------------------------------------------------------------------

    def _landing(self, base: str) -> dict[str, Any]:
        links: list[dict[str, Any]] = [
            {"rel": "self", "type": "application/json", "href": f"{base}/"},
            {"rel": "root", "type": "application/json", "href": f"{base}/"},
            {"rel": "conformance", "type": "application/json", "href": f"{base}/conformance"},
            {"rel": "data", "type": "application/json", "href": f"{base}/collections"},
            {
                "rel": "search",
                "type": _GEOJSON,
                "method": "GET",
                "href": f"{base}/search",
                "title": "STAC search",
            },
            {
                "rel": "search",
                "type": _GEOJSON,
                "method": "POST",
                "href": f"{base}/search",
                "title": "STAC search",
            },
            {
                "rel": "http://www.opengis.net/def/rel/ogc/1.0/queryables",
                "type": "application/schema+json",
                "href": f"{base}/queryables",
            },
        ]
        links += [
            {
                "rel": "child",
                "type": "application/json",
                "title": c.title,
                "href": f"{base}/collections/{c.id}",
            }
            for c in COLLECTIONS
        ]
        return {
            "type": "Catalog",
            "id": "cdse-stac",
            "title": "cdse-stac",
            "description": "STAC catalogue of the Copernicus Data Space Ecosystem (emulated)",
            "stac_version": STAC_VERSION,
            "conformsTo": list(CONFORMANCE),
            "links": links,
        }

    def _collection_list(self, request: Request, base: str) -> Response:
        pairs = urllib.parse.parse_qsl(request.raw_query, keep_blank_values=True)
        words = [w.lower() for name, value in pairs if name == "q" for w in value.split(",")]
        words = [w.strip() for w in words if w.strip()]
        found = []
        for collection in COLLECTIONS:
            text = " ".join(
                (collection.id, collection.title, collection.description, *collection.keywords)
            ).lower()
            if not words or any(w in text for w in words):
                found.append(render_collection(collection, base))
        return Response.json(
            200,
            {
                "collections": found,
                "links": [
                    {"rel": "self", "type": "application/json", "href": f"{base}/collections"},
                    {"rel": "root", "type": "application/json", "href": f"{base}/"},
                    {"rel": "parent", "type": "application/json", "href": f"{base}/"},
                ],
                "numberMatched": len(found),
                "numberReturned": len(found),
            },
        )

    def _queryables(self, own: str) -> Response:
        properties: dict[str, Any] = {
            name: {"title": name, **_QUERYABLE_TYPES[kind]}
            for name, (_, kind) in PROPERTIES.items()
        }
        properties["geometry"] = {
            "title": "geometry",
            "$ref": "https://geojson.org/schema/Geometry.json",
        }
        return Response(
            200,
            [("Content-Type", "application/schema+json")],
            json.dumps(
                {
                    "$schema": "https://json-schema.org/draft/2019-09/schema",
                    "$id": own,
                    "type": "object",
                    "title": "Queryables",
                    "properties": properties,
                    "additionalProperties": True,
                },
                separators=(",", ":"),
            ).encode(),
        )

    # Items ---------------------------------------------------------------------------

    def _renderer(self, base: str) -> ItemRenderer:
        links = ItemLinks(
            base, self._links.zipper, self._links.download, self._links.quicklook, self._links.realm
        )
        return ItemRenderer(self._store, self._archives, self._config, links)

    def _item(self, request: Request, base: str, collection_id: str, item_id: str) -> Response:
        rows = self._store.rows_by_names([f"{item_id}.SAFE"])
        collection = None
        if rows:
            found = collection_of(rows[0].collection, rows[0].product_type)
            collection = found.id if found is not None else None
        if not rows or collection != collection_id:
            raise _Error(
                404,
                "NotFoundError",
                f"Item {item_id} in Collection {collection_id} does not exist.",
            )
        item = self._renderer(base).render(rows[0])
        return Response(
            200,
            [("Content-Type", _GEOJSON)],
            json.dumps(item, separators=(",", ":")).encode(),
        )

    def _search_get(self, request: Request, base: str, collection_id: str | None) -> Response:
        pairs = urllib.parse.parse_qsl(request.raw_query, keep_blank_values=True)
        search = search_from_query(
            pairs, self._config.stac_default_limit, self._config.stac_max_limit
        )
        if collection_id is not None:
            search.collections = [collection_id]
        own = (
            f"{base}/search"
            if collection_id is None
            else f"{base}/collections/{collection_id}/items"
        )

        def next_link(token: str) -> dict[str, Any]:
            kept = [(n, v) for n, v in pairs if n != "token"] + [("token", token)]
            query = urllib.parse.urlencode(kept, safe=":,/")
            return {"rel": "next", "type": _GEOJSON, "method": "GET", "href": f"{own}?{query}"}

        self_href = f"{own}?{request.raw_query}" if request.raw_query else own
        return self._page(base, search, self_href, next_link)

    def _search_post(self, request: Request, base: str) -> Response:
        try:
            body = json.loads(request.body or b"{}")
        except ValueError:
            raise QueryError("the body is not valid JSON") from None
        if not isinstance(body, dict):
            raise QueryError("the body must be a JSON object")
        search = search_from_body(
            body, self._config.stac_default_limit, self._config.stac_max_limit
        )

        def next_link(token: str) -> dict[str, Any]:
            return {
                "rel": "next",
                "type": _GEOJSON,
                "method": "POST",
                "href": f"{base}/search",
                "body": {**body, "token": token},
                "merge": False,
            }

        return self._page(base, search, f"{base}/search", next_link)

    def _page(self, base: str, search: Search, self_href: str, next_link: Any) -> Response:
        compiled = compile_search(search)
        where, params = compiled.where, list(compiled.params)
        if search.token is not None:
            condition, extra = after_row(compiled.keys, self._after(search.token))
            where = f"({where}) AND {condition}"
            params += extra
        rows: Sequence[Any] = self._store.search(
            served(SqlFilter(where, tuple(params)), self._config.reprocessed_twins),
            compiled.order,
            search.limit + 1,
            0,
        )
        more = len(rows) > search.limit
        rows = rows[: search.limit]
        renderer = self._renderer(base)
        features = [
            apply_fields(renderer.render(row), search.include, search.exclude) for row in rows
        ]
        links: list[dict[str, Any]] = [
            {"rel": "self", "type": _GEOJSON, "href": self_href},
            {"rel": "root", "type": "application/json", "href": f"{base}/"},
        ]
        if more and rows:
            links.append(next_link(f"next:{rows[-1].name.removesuffix('.SAFE')}"))
        payload = {
            "type": "FeatureCollection",
            "features": features,
            "links": links,
            "numberReturned": len(features),
        }
        return Response(
            200,
            [("Content-Type", _GEOJSON)],
            json.dumps(payload, separators=(",", ":")).encode(),
        )

    def _after(self, token: str) -> str:
        """The product name a ``next:`` token stands for (400 if it names no item)."""
        kind, _, item_id = token.partition(":")
        if kind != "next" or not item_id or not self._store.rows_by_names([f"{item_id}.SAFE"]):
            raise QueryError(f"invalid paging token {token!r}")
        return f"{item_id}.SAFE"
