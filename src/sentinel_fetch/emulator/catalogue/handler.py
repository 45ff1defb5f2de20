"""The catalogue host: ``/odata/v1/`` as a pure function ``Request -> Response``.

Routes (cdse-api.md §3.1): ``GET Products?…`` search, ``GET Products(<id>)`` entity
(a bare UUID; the quoted ``Products('<id>')`` only with ``catalogue_quoted_keys``),
``GET|HEAD Products(<id>)/$value`` (and ``/$zip``) redirect to the download host, ``POST
Products/OData.CSC.FilterList``, ``GET Attributes(<COLLECTION>)``, ``GET Assets(<id>)/$value``.
Anything else is a 404 JSON body.

Query options are read from the raw query string, not a pre-parsed mapping, because CDSE
echoes the client's own parameters in ``@odata.nextLink`` (§3.7): original order, original
spelling, form-urlencoded, with ``$skip`` replaced in place or appended. Browser quirks
(``?&``, ``$count=True``, ``%20`` or ``+`` for spaces, repeated ``$expand``) are accepted
(§4). Validation errors of ``$top``/``$skip``/``$count`` have CDSE's FastAPI shape (422);
a bad ``$filter``, ``$orderby``, ``$select`` or ``$expand`` is a 400 whose ``detail``
names the problem (and, for filters, its position).
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from urllib.parse import quote_plus, unquote_plus

from sentinel_fetch.emulator.config import EmulatorConfig
from sentinel_fetch.emulator.model import ArchiveSource, Handler, Request, Response

from .attributes import COLLECTIONS, attribute_listing
from .entity import EXPANSIONS, PROPERTIES, EntityRenderer, product_uid_of_asset
from .filter import FilterError, parse_filter
from .quicklook import quicklook_png, quicklook_refusal
from .schema import format_uuid
from .sql import OrderByError, compile_filter, compile_orderby, served
from .store import CatalogueStore

__all__ = ["MAX_SKIP", "MAX_TOP", "make_catalogue_handler", "next_link"]

PREFIX = "/odata/v1/"
DEFAULT_TOP = 20
MAX_TOP = 1000
MAX_SKIP = 10_000
# Pydantic's boolean spellings (CDSE is a FastAPI service); True/true/1/False/false/0
# are the documented ones (§3.6).
_EPOCH_UTC = datetime(1970, 1, 1, tzinfo=timezone.utc)
_TRUE_WORDS = frozenset({"1", "true", "t", "yes", "y", "on"})
_FALSE_WORDS = frozenset({"0", "false", "f", "no", "n", "off"})


class HttpError(Exception):
    """Ends a request with a JSON error body."""

    def __init__(self, status: int, payload: object) -> None:
        super().__init__(status)
        self.status = status
        self.payload = payload


def _not_found(detail: str = "Not Found") -> HttpError:
    return HttpError(404, {"detail": detail})


def parse_query(raw_query: str) -> list[tuple[str, str | None]]:
    """Decoded ``(name, value)`` pairs in original order; ``+`` is a space, empty pieces
    (the browser's ``?&``) are dropped, a piece without ``=`` has value ``None``.

    >>> parse_query("&$filter=Name%20eq%20%27a%27&$top=5&flag")
    [('$filter', "Name eq 'a'"), ('$top', '5'), ('flag', None)]
    """
    pairs: list[tuple[str, str | None]] = []
    for piece in raw_query.split("&"):
        if not piece:
            continue
        name, equals, value = piece.partition("=")
        pairs.append((unquote_plus(name), unquote_plus(value) if equals else None))
    return pairs


def next_link(base_url: str, pairs: Sequence[tuple[str, str | None]], skip: int) -> str:
    """The ``@odata.nextLink`` for the page starting at ``skip`` (§3.7): the original
    parameters re-serialised form-urlencoded, ``$skip`` replaced in place or appended.

    >>> next_link("https://h", [("$filter", "Name eq 'a/b'"), ("$top", "10")], 10)
    'https://h/odata/v1/Products?%24filter=Name+eq+%27a%2Fb%27&%24top=10&%24skip=10'
    """
    items = [(n, str(skip) if n == "$skip" else v) for n, v in pairs]
    if not any(n == "$skip" for n, _ in pairs):
        items.append(("$skip", str(skip)))
    query = "&".join(
        quote_plus(n, safe="") + ("" if v is None else "=" + quote_plus(v, safe=""))
        for n, v in items
    )
    return f"{base_url}{PREFIX}Products?{query}"


def _last(pairs: Sequence[tuple[str, str | None]], name: str) -> str | None:
    found = None
    for n, v in pairs:
        if n == name:
            found = v if v is not None else ""
    return found


def _integer(
    pairs: Sequence[tuple[str, str | None]],
    name: str,
    default: int,
    maximum: int,
    errors: list[dict[str, object]],
) -> int:
    text = _last(pairs, name)
    if text is None:
        return default
    stripped = text.strip()
    digits = stripped[1:] if stripped[:1] in "+-" else stripped
    if not digits.isascii() or not digits.isdigit():
        errors.append(
            {
                "type": "int_parsing",
                "loc": ["query", name],
                "msg": "Input should be a valid integer, unable to parse string as an integer",
                "input": text,
            }
        )
        return default
    value = int(stripped)
    if value < 0:
        errors.append(
            {
                "type": "greater_than_equal",
                "loc": ["query", name],
                "msg": "Input should be greater than or equal to 0",
                "input": text,
                "ctx": {"ge": 0},
            }
        )
    elif value > maximum:
        errors.append(
            {
                "type": "less_than_equal",
                "loc": ["query", name],
                "msg": f"Input should be less than or equal to {maximum}",
                "input": text,
                "ctx": {"le": maximum},
            }
        )
    return value


def _boolean(
    pairs: Sequence[tuple[str, str | None]], name: str, errors: list[dict[str, object]]
) -> bool:
    text = _last(pairs, name)
    if text is None:
        return False
    word = text.strip().lower()
    if word in _TRUE_WORDS:
        return True
    if word not in _FALSE_WORDS:
        errors.append(
            {
                "type": "bool_parsing",
                "loc": ["query", name],
                "msg": "Input should be a valid boolean, unable to interpret input",
                "input": text,
            }
        )
    return False


def _expand(pairs: Sequence[tuple[str, str | None]]) -> tuple[str, ...]:
    found: list[str] = []
    for name, value in pairs:
        if name != "$expand" or value is None:
            continue
        for item in value.split(","):
            navigation = item.strip()
            if not navigation:
                continue
            if navigation not in EXPANSIONS:
                raise HttpError(
                    400,
                    {
                        "detail": f"Invalid $expand: {navigation!r} is not expandable; use "
                        + ", ".join(EXPANSIONS)
                    },
                )
            if navigation not in found:
                found.append(navigation)
    return tuple(found)


def _select(pairs: Sequence[tuple[str, str | None]]) -> frozenset[str] | None:
    text = _last(pairs, "$select")
    if text is None or not text.strip():
        return None
    names = [n.strip() for n in text.split(",") if n.strip()]
    if "*" in names:
        return None
    for name in names:
        if name not in PROPERTIES:
            raise HttpError(
                400, {"detail": f"Invalid $select: {name!r} is not a property of Product"}
            )
    return frozenset(names)


def _context(expand: Sequence[str], entity: bool = False) -> str:
    """``@odata.context`` (§3.4): ``$metadata#Products(Attributes(),Assets())``…"""
    context = "$metadata#Products"
    if expand:
        context += "(" + ",".join(f"{e}()" for e in expand) + ")"
    return context + ("/$entity" if entity else "")


@dataclass(frozen=True)
class _Catalogue:
    store: CatalogueStore
    archives: ArchiveSource
    download_base_url: str
    config: EmulatorConfig

    def __call__(self, request: Request) -> Response:
        try:
            response = self._route(request)
        except HttpError as error:
            response = Response.json(error.status, error.payload)
        if request.method == "HEAD":
            response.body = b""
        return response

    def _route(self, request: Request) -> Response:
        if not request.path.startswith(PREFIX):
            raise _not_found()
        resource = request.path[len(PREFIX) :]
        reading = request.method in ("GET", "HEAD")
        if resource == "Products" and reading:
            return self._search(request)
        if resource == "Products/OData.CSC.FilterList" and request.method == "POST":
            return self._filter_list(request)
        if resource.startswith("Products(") and reading:
            key, _, rest = resource[len("Products(") :].partition(")")
            if rest == "":
                return self._entity(request, self._product_id(key))
            if rest in ("/$value", "/$zip"):
                return self._redirect(request, self._product_id(key), rest)
            raise _not_found()
        if resource.startswith("Attributes(") and resource.endswith(")") and reading:
            listing = attribute_listing(_unquote_key(resource[len("Attributes(") : -1]))
            if listing is None:
                raise _not_found("Unknown collection")
            return Response.json(200, listing)
        if resource == "Attributes" and reading:
            return Response.json(200, {c: attribute_listing(c) for c in COLLECTIONS})
        if resource.startswith("Assets(") and resource.endswith(")/$value") and reading:
            return self._quicklook(resource[len("Assets(") : -len(")/$value")])
        raise _not_found()

    # ----------------------------------------------------------------- search

    def _search(self, request: Request) -> Response:
        pairs = parse_query(request.raw_query)
        errors: list[dict[str, object]] = []
        top = _integer(pairs, "$top", DEFAULT_TOP, MAX_TOP, errors)
        skip = _integer(pairs, "$skip", 0, MAX_SKIP, errors)
        count = _boolean(pairs, "$count", errors)
        if errors:
            raise HttpError(422, {"detail": errors})
        filter_text = _last(pairs, "$filter")
        try:
            node = parse_filter(filter_text) if filter_text and filter_text.strip() else None
            where = served(
                compile_filter(node), self.config.reprocessed_twins, self._published_until_us()
            )
        except FilterError as error:
            raise HttpError(400, {"detail": str(error)}) from None
        try:
            order = compile_orderby(_last(pairs, "$orderby"))
        except OrderByError as error:
            raise HttpError(400, {"detail": str(error)}) from None
        expand = _expand(pairs)
        select = _select(pairs)
        rows = self.store.search(where, order, top, skip) if top else []
        renderer = EntityRenderer(self.store, self.archives, request.base_url)
        payload: dict[str, object] = {"@odata.context": _context(expand)}
        if count:
            payload["@odata.count"] = max(0, self.store.count(where) + self.config.count_offset)
        payload["value"] = [renderer.render(row, select, expand) for row in rows]
        # A full page may have a successor (possibly empty); none past the $skip cap.
        if top and len(rows) == top and skip + top <= MAX_SKIP:
            payload["@odata.nextLink"] = next_link(request.base_url, pairs, skip + top)
        self.config.advance_publication()
        return Response.json(200, payload)

    def _published_until_us(self) -> int | None:
        """The ``published_until`` switch as the store's epoch microseconds."""
        until = self.config.published_until
        if until is None:
            return None
        return (until - _EPOCH_UTC) // timedelta(microseconds=1)

    def _filter_list(self, request: Request) -> Response:
        try:
            body = json.loads(request.body or b"null")
        except ValueError:
            raise HttpError(
                422,
                {
                    "detail": [
                        {
                            "type": "json_invalid",
                            "loc": ["body", 0],
                            "msg": "JSON decode error",
                            "input": {},
                        }
                    ]
                },
            ) from None
        products = body.get("FilterProducts") if isinstance(body, dict) else None
        if not isinstance(products, list) or not all(
            isinstance(p, dict) and isinstance(p.get("Name"), str) for p in products
        ):
            raise HttpError(
                422,
                {
                    "detail": [
                        {
                            "type": "missing",
                            "loc": ["body", "FilterProducts"],
                            "msg": "Field required",
                            "input": body,
                        }
                    ]
                },
            )
        pairs = parse_query(request.raw_query)
        expand = _expand(pairs)
        select = _select(pairs)
        rows = self.store.rows_by_names([p["Name"] for p in products])
        renderer = EntityRenderer(self.store, self.archives, request.base_url)
        return Response.json(
            200,
            {
                "@odata.context": _context(expand),
                "value": [renderer.render(row, select, expand) for row in rows],
            },
        )

    # ----------------------------------------------------------------- single product

    def _product_id(self, key: str) -> str:
        """The product a ``Products(<key>)`` path names: a bare UUID.

        Real CDSE rejects the quoted OData form ``Products('<uuid>')`` (422 DAT-ZIP-111
        on the download host, spec §3.1); on the catalogue host its answer was never
        captured, so accepting it is a switch, off by default: serving it would hide a
        client that sends it.
        """
        if key[:1] == "'" and not self.config.catalogue_quoted_keys:
            raise HttpError(
                400, {"detail": f"Invalid product Id {key!r}: expected a bare UUID, no quotes"}
            )
        return _product_id(key)

    def _entity(self, request: Request, product_id: str) -> Response:
        row = self.store.row(product_id)
        if row is None:
            raise _not_found(f"Product {product_id} not found")
        pairs = parse_query(request.raw_query)
        expand = _expand(pairs)
        select = _select(pairs)
        entity: dict[str, object] = {"@odata.context": _context(expand, entity=True)}
        renderer = EntityRenderer(self.store, self.archives, request.base_url)
        entity.update(renderer.render(row, select, expand))
        return Response.json(200, entity)

    def _redirect(self, request: Request, product_id: str, rest: str = "/$value") -> Response:
        # The catalogue hands downloads (and the S1 native $zip, §5.8) to the download
        # host (§5.2); whether the product exists is the download host's business, as on CDSE.
        location = f"{self.download_base_url}{PREFIX}Products({product_id}){rest}"
        if request.raw_query:
            location += "?" + request.raw_query
        return Response(301, [("Location", location), ("Content-Length", "0")], b"")

    def _quicklook(self, key: str) -> Response:
        try:
            asset = uuid.UUID(_unquote_key(key)).bytes
        except ValueError:
            raise _not_found("Asset not found") from None
        row = self.store.row(format_uuid(product_uid_of_asset(asset)))
        if row is None:
            raise _not_found("Asset not found")
        refused = quicklook_refusal(row.id, self.config.quicklook_failure_share)
        if refused is not None:
            detail = "Forbidden" if refused == 403 else "Not Found"
            return Response.json(refused, {"detail": detail})
        return Response(
            200,
            [("Content-Type", "image/png")],
            quicklook_png(row.uid, row.collection, row.cloud_cover),
        )


def _unquote_key(key: str) -> str:
    # OData allows quoted string keys: Products('…'), Attributes('SENTINEL-2').
    if len(key) >= 2 and key[0] == key[-1] == "'":
        return key[1:-1]
    return key


def _product_id(key: str) -> str:
    text = _unquote_key(key)
    try:
        return str(uuid.UUID(text))
    except ValueError:
        raise HttpError(400, {"detail": f"Invalid product Id {text!r}: expected a UUID"}) from None


def make_catalogue_handler(
    store: CatalogueStore,
    archives: ArchiveSource,
    download_base_url: str,
    config: EmulatorConfig | None = None,
) -> Handler:
    """The catalogue host's request handler.

    Args:
        store: the product database.
        archives: lengths and checksums of product archives (asked only for products
            being rendered).
        download_base_url: ``scheme://host:port`` of the download host, target of the
            ``Products(<id>)/$value`` redirect.
        config: the live switches (read per request); default settings if omitted.

    The handler is safe to call from many threads at once.
    """
    return _Catalogue(store, archives, download_base_url.rstrip("/"), config or EmulatorConfig())
