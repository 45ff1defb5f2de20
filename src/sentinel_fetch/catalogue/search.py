"""Run a search against the catalogue and return every product, exactly once.

The catalogue serves at most 1000 products a page and refuses ``$skip`` beyond 10,000
(cdse-api.md §3.6), so a search matching 25,000 products cannot be paged through in
one go. :class:`Search` therefore:

1. asks for the first page together with ``$count``; if every product is reachable by
   paging (count <= 10,000 + page size) it simply pages on;
2. otherwise bisects the sensing-time range, counting each half (``$top=0&$count``),
   until every window is reachable, then pages the windows in time order; a window
   whose paging still reaches the ``$skip`` cap (its count was too low) is split too;
3. drops duplicates by Id (products published while paging can shift pages), checks
   every window against its count, and retries transient catalogue errors through
   :func:`~sentinel_fetch.retry.retrying`, the settings' retry policy (a stop event
   ends a wait at once).

The count is a guide, not a proof (cdse-api.md §3.7): a window that delivers another
number is counted and paged again, and when two pagings return the same products those
are kept, with a warning giving both numbers. It never returns a silently truncated
list: when the retries run out it raises
:class:`~sentinel_fetch.errors.SearchIncompleteError`. One unreadable entry (a
``ContentLength`` of ``"lots"``, a non-UUID ``Id``) fails that product only: it is kept
in :attr:`Search.rejected` with the reason, counts as received, and the search goes on.

Nothing is sent until the search is iterated (or counted).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Generator, Iterator
from dataclasses import dataclass, replace
from datetime import datetime, timedelta, timezone
from typing import Any, NamedTuple

from sentinel_fetch.catalogue.odata import (
    DEFAULT_EXPAND,
    MAX_SKIP,
    encode_params,
    products_url,
    search_params,
)
from sentinel_fetch.catalogue.product import Product, is_product_id, is_product_name
from sentinel_fetch.catalogue.query import Query
from sentinel_fetch.errors import (
    CatalogueError,
    QueryError,
    SearchIncompleteError,
    UnreadableEntryError,
)
from sentinel_fetch.http import Transport, error_from_response, read_json
from sentinel_fetch.retry import Backoff, RetryPolicy, Sleep, retrying
from sentinel_fetch.untrusted import UntrustedJSONError

__all__ = ["MISSION_START", "RejectedEntry", "Search", "Window"]

log = logging.getLogger("sentinel_fetch.search")

#: Sentinel-1A's first data (April 2014): no Sentinel product senses earlier.
MISSION_START = datetime(2014, 4, 1, tzinfo=timezone.utc)
# Names and ids go into the URL; this many per request keeps it far below URL limits.
_NAMES_PER_REQUEST = 40
# Windows are never split below this: 11,000 products in one millisecond do not exist.
_SMALLEST_WINDOW = timedelta(milliseconds=1)
# Pagings of one window before its product set is taken as it is, count or no count.
_PASSES = 3
_LOGGED_REJECTIONS = 10
# A full page (1000 products with attributes and long orbit footprints) is a few tens of
# megabytes; an answer this large is not a page.
_MAX_PAGE_BYTES = 128_000_000


class _Page(NamedTuple):
    """One catalogue page: its products, the keys of its unreadable entries, its size."""

    products: list[Product]
    rejected: list[str]
    entries: int


@dataclass(frozen=True)
class Window:
    """A sensing-time slice ``[start, end)`` of a search and its product count."""

    start: datetime
    end: datetime
    count: int


@dataclass(frozen=True)
class RejectedEntry:
    """A catalogue entry that could not be read as a product.

    Attributes:
        id: the entry's ``Id`` if it is a UUID, else None.
        name: the entry's ``Name`` if it is a usable name, else None (the reason shows
            what was sent).
        reason: what is wrong with it, one line.
    """

    id: str | None
    name: str | None
    reason: str

    @classmethod
    def of(cls, entity: object, error: UnreadableEntryError) -> RejectedEntry:
        """The record of ``entity``, which :meth:`Product.from_odata` refused with ``error``."""
        fields = entity if isinstance(entity, dict) else {}
        raw_id, raw_name = fields.get("Id"), fields.get("Name")
        product_id = raw_id if is_product_id(raw_id) else None
        name = raw_name if isinstance(raw_name, str) and is_product_name(raw_name) else None
        return cls(product_id, name, error.reason)


class Search:
    """A lazy, complete catalogue search. Iterate it for :class:`Product` objects.

    Args:
        query: what to search for.
        transport: the network road.
        page_size: products per page (max 1000, the catalogue's limit).
        expand: ``$expand`` values (attributes for cloud cover etc., assets for quicklooks).
        max_attempts: tries per request for transient failures (5xx, 429, resets); by
            default the settings' ``max_attempts``.
        backoff: waits between tries; by default the settings' (capped by
            ``backoff_max_s``).
        sleep: how to wait, instead of waiting on ``stop`` (tests substitute it).
        now: the current time (the open end of a search without an end date).
        stop: setting it ends a wait between tries at once: the search raises
            :class:`~sentinel_fetch.errors.StoppedError`.

    Example:
        >>> search = Search(query, transport=transport)   # doctest: +SKIP
        >>> search.count()                                # doctest: +SKIP
        25000
        >>> products = list(search)                       # doctest: +SKIP
    """

    def __init__(
        self,
        query: Query,
        *,
        transport: Transport,
        page_size: int = 1000,
        expand: tuple[str, ...] = DEFAULT_EXPAND,
        max_attempts: int | None = None,
        backoff: Backoff | None = None,
        sleep: Sleep | None = None,
        now: Callable[[], datetime] = lambda: datetime.now(timezone.utc),
        stop: threading.Event | None = None,
    ) -> None:
        if not 1 <= page_size <= 1000:
            raise QueryError(f"page size {page_size} is outside 1..1000")
        self.query = query
        self._transport = transport
        self._page_size = page_size
        self._expand = expand
        policy = RetryPolicy.from_limits(transport.settings.limits)
        if max_attempts is not None:
            policy = replace(policy, max_attempts=max_attempts)
        self._policy = replace(policy, backoff=backoff) if backoff is not None else policy
        self._sleep = sleep
        self._stop = stop
        self._now = now
        #: Catalogue requests sent so far (pages and counts).
        self.requests = 0
        #: Time windows the search was split into (empty until iterated, one if unsplit).
        self.windows: list[Window] = []
        #: Entries the catalogue sent that could not be read as products, once each.
        self.rejected: list[RejectedEntry] = []
        self._rejected_keys: set[str] = set()

    # -- public ---------------------------------------------------------------------------

    def count(self) -> int:
        """How many products match (one ``$count`` request per name group)."""
        return sum(self._count(part) for part in self._parts())

    def to_geodataframe(self) -> Any:
        """Every matching product as a ``geopandas.GeoDataFrame`` (the ``geo`` extra).

        See :func:`sentinel_fetch.geodata.to_geodataframe` for the columns.
        """
        from sentinel_fetch.geodata import to_geodataframe

        return to_geodataframe(self)

    def __iter__(self) -> Iterator[Product]:
        seen: set[str] = set()
        for page in self.pages():
            for product in page:
                if product.id not in seen:
                    seen.add(product.id)
                    yield product

    def pages(self) -> Iterator[list[Product]]:
        """Pages of products in order (sensing start, ascending unless asked otherwise)."""
        for part in self._parts():
            yield from self._pages_of(part)

    # -- planning ------------------------------------------------------------------------

    def _parts(self) -> list[Query]:
        """The query itself, or one query per group of names/ids when there are many."""
        wanted = [("names", name) for name in self.query.names] + [
            ("ids", product_id) for product_id in self.query.ids
        ]
        if len(wanted) <= _NAMES_PER_REQUEST:
            return [self.query]
        parts = []
        for index in range(0, len(wanted), _NAMES_PER_REQUEST):
            group = wanted[index : index + _NAMES_PER_REQUEST]
            parts.append(
                self.query.with_changes(
                    names=tuple(value for kind, value in group if kind == "names"),
                    ids=tuple(value for kind, value in group if kind == "ids"),
                )
            )
        return parts

    @property
    def _descending(self) -> bool:
        return (self.query.order_by or "").startswith("ContentDate/Start desc")

    @property
    def _order(self) -> str:
        # Paging with $skip needs a stable order; the catalogue adds the Id tie-break.
        return self.query.order_by or "ContentDate/Start asc"

    @property
    def _reachable(self) -> int:
        return MAX_SKIP + self._page_size

    def _pages_of(self, query: Query) -> Iterator[list[Product]]:
        # Ids already yielded for this query: a window split after paging (its count was
        # too low) delivers some products twice.
        seen: set[str] = set()
        first, total = self._page(query, skip=0, count=True)
        start = query.start or MISSION_START
        if total <= self._reachable:
            window = Window(start, query.end or self._now(), total)
            self.windows.append(window)
            if (yield from self._page_window(query, total, first, seen)):
                return
            self.windows.remove(window)
        else:
            log.info("%d products match; splitting the search by sensing time", total)
        whole = Window(start, query.end or (self._now() + timedelta(days=1)), total)
        # Reachable by its count yet capped while paging: the count was too low.
        capped = total <= self._reachable
        pending = self._halves(query, whole, count_both=True) if capped else [whole]
        while pending:
            window = pending.pop()
            if window.count > self._reachable:
                pending.extend(self._halves(query, window))
                continue
            part = query.with_changes(start=window.start, end=window.end)
            self.windows.append(window)
            if not (yield from self._page_window(part, window.count, None, seen)):
                self.windows.remove(window)
                pending.extend(self._halves(query, window, count_both=True))

    def _halves(self, query: Query, window: Window, *, count_both: bool = False) -> list[Window]:
        """The two halves of a window, the one to page first last (a stack's order).

        Raises:
            SearchIncompleteError: the window is already as short as a window may be.
        """
        if window.end - window.start <= _SMALLEST_WINDOW:
            raise SearchIncompleteError(
                f"more than {self._reachable} products start within one millisecond at "
                f"{window.start.isoformat()}: the catalogue cannot page past 10,000; "
                "narrow the search"
            )
        middle = window.start + (window.end - window.start) / 2
        middle = middle.replace(microsecond=middle.microsecond // 1000 * 1000)
        if not window.start < middle < window.end:
            middle = window.start + _SMALLEST_WINDOW
        early_count = self._count(query.with_changes(start=window.start, end=middle))
        if count_both:
            late_count = self._count(query.with_changes(start=middle, end=window.end))
        else:
            # Derived, not asked for: one request per split. Every window is checked when
            # it is paged, so a wrong derivation costs a recount, never a product.
            late_count = max(window.count - early_count, 0)
        early = Window(window.start, middle, early_count)
        late = Window(middle, window.end, late_count)
        return [early, late] if self._descending else [late, early]

    # -- paging --------------------------------------------------------------------------

    def _page_window(
        self, query: Query, expected: int, first: _Page | None, seen: set[str]
    ) -> Generator[list[Product], None, bool]:
        """Page one window, yielding products not yet in ``seen``.

        The catalogue's count is checked, not trusted (cdse-api.md §3.7: the Copernicus
        Browser calls it unreliable, and the catalogue changes while a long search
        pages). A window that delivers another number is counted again; if the numbers
        still differ it is paged again, and when a pass returns the same entries as the
        one before, every product received is kept, with a warning giving both numbers.
        A window is never judged empty by its count alone: it is always asked.

        Returns:
            False if paging reached the ``$skip`` cap with entries left (the window holds
            more than its count said and must be split), else True.
        """
        previous: set[str] | None = None
        for attempt in range(1, _PASSES + 1):
            received: set[str] = set()
            skip = 0
            page = first if attempt == 1 else None
            while True:
                if page is None:
                    page, _ = self._page(query, skip=skip)
                received.update(product.id for product in page.products)
                # An unreadable entry was received all the same: it counts.
                received.update(page.rejected)
                fresh = [product for product in page.products if product.id not in seen]
                seen.update(product.id for product in fresh)
                if fresh:
                    yield fresh
                if page.entries < self._page_size:
                    break
                skip += self._page_size
                if skip > MAX_SKIP:
                    log.warning(
                        "%s..%s holds more than the %d products paging can reach (the count "
                        "said %d); splitting it below the paging cap",
                        query.start,
                        query.end,
                        len(received),
                        expected,
                    )
                    return False
                page = None
            if len(received) == expected:
                return True
            if received == previous:
                log.warning(
                    "the catalogue counted %d products for %s..%s but paging returned %d, "
                    "the same ones twice; keeping all %d",
                    expected,
                    query.start,
                    query.end,
                    len(received),
                    len(received),
                )
                return True
            recount = self._count(query)
            if len(received) == recount:
                log.info("the catalogue changed while paging: %d products now", recount)
                return True
            if attempt < _PASSES:
                log.warning(
                    "%s..%s gave %d products, %d counted; paging it again",
                    query.start,
                    query.end,
                    len(received),
                    recount,
                )
            expected = recount
            previous = received
        log.warning(
            "the catalogue counted %d products for %s..%s but %d pagings returned different "
            "sets, %d entries in the last (the catalogue is changing); keeping every "
            "product received",
            expected,
            query.start,
            query.end,
            _PASSES,
            len(received),
        )
        return True

    def _count(self, query: Query) -> int:
        _, total = self._page(query, skip=0, top=0, count=True)
        return total

    def _page(
        self, query: Query, *, skip: int, top: int | None = None, count: bool = False
    ) -> tuple[_Page, int]:
        size = self._page_size if top is None else top
        params = search_params(
            query,
            top=size,
            skip=skip,
            count=count,
            expand=self._expand if size else (),
            orderby=self._order,
        )
        body = self._get(encode_params(params))
        values = body.get("value")
        if not isinstance(values, list):
            raise CatalogueError("the catalogue answered without a product list", status=200)
        total = _count_of(body) if count else -1
        products: list[Product] = []
        rejected: list[str] = []
        for entity in values:
            try:
                products.append(Product.from_odata(entity))
            except UnreadableEntryError as error:
                rejected.append(self._reject(entity, error))
        return _Page(products, rejected, len(values)), total

    def _reject(self, entity: object, error: UnreadableEntryError) -> str:
        """Record an unreadable entry once; returns the key it counts under as received."""
        entry = RejectedEntry.of(entity, error)
        key = f"rejected:{entry.id}:{entry.name}:{entry.reason}"
        if key not in self._rejected_keys:
            self._rejected_keys.add(key)
            self.rejected.append(entry)
            # A broken catalogue may send thousands: the first few say what is wrong.
            level = logging.WARNING if len(self.rejected) <= _LOGGED_REJECTIONS else logging.DEBUG
            log.log(
                level,
                "catalogue entry %s could not be read: %s",
                entry.name or entry.id or "(no name)",
                entry.reason,
            )
        return key

    def _get(self, query_string: str) -> dict[str, Any]:
        url = f"{products_url(self._transport.settings.endpoints)}?{query_string}"

        def attempt() -> dict[str, Any]:
            self.requests += 1
            # Raises transient errors to be retried, anything else to stop the search.
            response = self._transport.request("GET", url, stream=True)
            with response:
                if response.status_code != 200:
                    error = error_from_response(response, CatalogueError)
                    if error.status in (400, 422):
                        raise QueryError(f"the catalogue refused the search: {error}")
                    raise error
                try:
                    body = read_json(response, max_bytes=_MAX_PAGE_BYTES)
                except UntrustedJSONError as flaw:
                    # Cut short or garbled may be a glitch; too large or too deep is not.
                    raise CatalogueError(
                        f"the catalogue sent {flaw}", status=200, transient=not flaw.hostile
                    ) from None
            if not isinstance(body, dict):
                raise CatalogueError(
                    "the catalogue sent an unexpected answer", status=200, transient=True
                )
            return body

        return retrying(
            attempt,
            self._policy,
            give_up=lambda failure, attempts: SearchIncompleteError(
                f"the search could not be completed after {attempts} attempts: {failure}"
            ),
            what="catalogue",
            logger=log,
            stop=self._stop,
            sleep=self._sleep,
        )


def _count_of(body: dict[str, Any]) -> int:
    """``@odata.count`` of a page: a non-negative integer, or the answer is unusable.

    JSON ``true`` arrives as a Python bool, which is an int: without the explicit check
    it would read as a count of 1.
    """
    total = body.get("@odata.count")
    if isinstance(total, bool) or not isinstance(total, int) or total < 0:
        shown = "missing" if total is None else repr(total)[:40]
        raise CatalogueError(
            f"the catalogue answered with an unusable @odata.count ({shown})", status=200
        )
    return total
