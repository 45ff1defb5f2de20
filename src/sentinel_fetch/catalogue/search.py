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

import contextlib
import functools
import logging
import threading
from collections import deque
from collections.abc import Callable, Iterator
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
from sentinel_fetch.http import Transport, error_from_response, read_bounded
from sentinel_fetch.retry import Backoff, RetryPolicy, Sleep, retrying
from sentinel_fetch.untrusted import UntrustedJSONError, parse_json

__all__ = ["MISSION_START", "RejectedEntry", "Search", "SearchProgress", "Window"]

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
# Pages a window paged ahead may hold before its worker waits for the consumer.
_BUFFERED_PAGES = 2
# A window paged by the consumer itself (its first page was short): no bound needed.
_WHOLE_WINDOW = 1 << 30
# Answers in a row without a 429 before one more catalogue request at once is allowed.
_CALM_ANSWERS = 20
# How often a worker waiting between tries looks at the caller's stop event.
_POLL_S = 0.05


class _Page(NamedTuple):
    """One catalogue page: its products, the keys of its unreadable entries, its size."""

    products: list[Product]
    rejected: list[tuple[str, RejectedEntry]]
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
        concurrency: catalogue requests at once (the time windows of a split search
            page side by side); by default the settings' ``catalogue_requests``.
        progress: called with a :class:`SearchProgress` after each page and window,
            from the iterating thread.

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
        concurrency: int | None = None,
        progress: Callable[[SearchProgress], None] | None = None,
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
        limits = transport.settings.limits
        self._concurrency = limits.catalogue_requests if concurrency is None else concurrency
        if self._concurrency < 1:
            raise QueryError(f"catalogue concurrency {self._concurrency} is below 1")
        self._gate = _Gate(self._concurrency)
        #: 429 answers (rate limited) the catalogue sent; each lowered the concurrency.
        self.throttled = 0
        #: Called with a :class:`SearchProgress` as the listing goes (the CLI draws it).
        self.progress = progress
        self._lock = threading.Lock()
        self._local = threading.local()
        self._listed = 0
        self._windows_done = 0
        self._split = False

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
        # One set of workers for every part: their kept-alive connections serve them all.
        pool = _Pool(self._concurrency, self._transport)
        finished = False
        try:
            for part in self._parts():
                yield from self._pages_of(part, pool)
            finished = True
        finally:
            # Done: the workers are idle and end at once. Dropped: one may be inside a
            # request, and ends when it returns (it sends no other).
            pool.close(wait=finished)

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

    def _pages_of(self, query: Query, pool: _Pool) -> Iterator[list[Product]]:
        # Ids already yielded for this query: a window split after paging (its count was
        # too low) delivers some products twice, and so does a window paged again.
        seen: set[str] = set()
        first, total = self._page(query, skip=0, count=True)
        start = query.start or MISSION_START
        runs: deque[_Run] = deque()
        plan: Iterator[Window]
        if total <= self._reachable:
            # One window: the first page is in hand; the rest pages in a worker, so what
            # the caller does with a page overlaps the fetching of the next.
            run = _Run.of(query, Window(start, query.end or self._now(), total), first)
            if first.entries < self._page_size:
                # The first page is the whole window (most searches): paged right here.
                run.buffer = _Buffer(_WHOLE_WINDOW)
                run.started = True
                self._fetch_run(run)
            runs.append(run)
            plan = iter(())
        else:
            log.info("%d products match; splitting the search by sensing time", total)
            self._split = True
            whole = Window(start, query.end or (self._now() + timedelta(days=1)), total)
            plan = self._plan(query, [whole])
        current: _Run | None = None
        try:
            while True:
                current = self._next_run(query, runs, plan, pool)
                if current is None:
                    return
                self.windows.append(current.window)
                self._start_ahead(query, runs, plan, pool)
                self._announce(runs)
                while (item := current.buffer.get()) is not None:
                    products, rejected = item
                    for key, entry in rejected:
                        self._reject(key, entry)
                    fresh = [product for product in products if product.id not in seen]
                    seen.update(product.id for product in fresh)
                    if fresh:
                        self._listed += len(fresh)
                        yield fresh
                    self._start_ahead(query, runs, plan, pool)
                    self._announce(runs)
                if current.buffer.complete:
                    self._windows_done += 1
                    self._announce(runs)
                    continue
                # Capped while paging: the count was too low. Its halves come before the
                # windows already started, which start again after them (rare: their
                # pages so far are dropped, the products they yield later are deduped).
                self._split = True
                self.windows.remove(current.window)
                for later in runs:
                    later.buffer.close()
                if current.first is not None:
                    whole = Window(start, query.end or (self._now() + timedelta(days=1)), total)
                    halves = self._halves(query, whole, count_both=True)
                else:
                    halves = self._halves(query, current.window, count_both=True)
                again = [_Run.of(later.query, later.window) for later in runs]
                runs = deque(
                    _Run.of(_narrowed(query, window), window)
                    for window in self._plan(query, halves)
                )
                runs.extend(again)
        finally:
            if current is not None:
                current.buffer.close()
            for run in runs:
                run.buffer.close()

    def _announce(self, ahead: deque[_Run]) -> None:
        """Tell the caller's progress callback how far the listing is."""
        if self.progress is None:
            return
        with self._lock:
            requests = self.requests
        self.progress(
            SearchProgress(
                products=self._listed,
                windows_done=self._windows_done,
                windows=len(self.windows) + len(ahead),
                requests=requests,
                split=self._split,
            )
        )

    def _plan(self, query: Query, pending: list[Window]) -> Iterator[Window]:
        """Windows reachable by paging, in paging order, each split only when it is due.

        ``pending`` is a stack (the next window last). A window counted above the paging
        cap is halved (one count request) when it comes up, so the first windows page
        while the later ones are still being counted.
        """
        while pending:
            window = pending.pop()
            if window.count > self._reachable:
                pending.extend(self._halves(query, window))
                continue
            yield window

    def _next_run(
        self, query: Query, runs: deque[_Run], plan: Iterator[Window], pool: _Pool
    ) -> _Run | None:
        """The window to read next, started (waiting for a free worker), or None at the end.

        Windows start in output order, so the one being read is always running.
        """
        if not runs:
            window = next(plan, None)
            if window is None:
                return None
            runs.append(_Run.of(_narrowed(query, window), window))
        run = runs.popleft()
        if not run.started:
            self._start(run, pool)
        return run

    def _start_ahead(
        self, query: Query, runs: deque[_Run], plan: Iterator[Window], pool: _Pool
    ) -> None:
        """Start the following windows while a worker is free, ``concurrency`` at most.

        Called by the consuming thread only. At most ``concurrency`` windows are read
        ahead, each holding at most ``_BUFFERED_PAGES`` pages: memory stays flat however
        long the listing is. Counting a later window (to split it) happens here, while
        the workers page.
        """
        while sum(run.started for run in runs) < self._concurrency and pool.idle():
            run = next((run for run in runs if not run.started), None)
            if run is None:
                window = next(plan, None)
                if window is None:
                    return
                run = _Run.of(_narrowed(query, window), window)
                runs.append(run)
            self._start(run, pool)

    def _start(self, run: _Run, pool: _Pool) -> None:
        run.started = True
        pool.submit(lambda: self._fetch_run(run))

    def _fetch_run(self, run: _Run) -> None:
        """A worker's job: page one window into its buffer, then mark how it ended."""
        self._local.halt = run.buffer.halt
        try:
            complete = self._page_window(run.query, run.window.count, run.first, run.buffer.put)
        except _Halted:
            return
        except BaseException as error:  # handed to the consumer, raised there
            run.buffer.fail(error)
            return
        finally:
            self._local.halt = None
        run.buffer.finish(complete)

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
        self, query: Query, expected: int, first: _Page | None, deliver: Callable[[_Page], None]
    ) -> bool:
        """Page one window, handing each page to ``deliver`` (the consumer dedupes).

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
                received.update(key for key, _ in page.rejected)
                deliver(page)
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
        body, escapes = self._get(encode_params(params))
        values = body.get("value")
        if not isinstance(values, list):
            raise CatalogueError("the catalogue answered without a product list", status=200)
        total = _count_of(body) if count else -1
        products: list[Product] = []
        rejected: list[tuple[str, RejectedEntry]] = []
        for entity in values:
            try:
                products.append(Product.from_odata(entity, escapes=escapes))
            except UnreadableEntryError as error:
                entry = RejectedEntry.of(entity, error)
                rejected.append((f"rejected:{entry.id}:{entry.name}:{entry.reason}", entry))
        return _Page(products, rejected, len(values)), total

    def _reject(self, key: str, entry: RejectedEntry) -> None:
        """Record an unreadable entry once (the consuming thread, in output order)."""
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

    def _get(self, query_string: str) -> tuple[dict[str, Any], bool]:
        """The JSON object the catalogue answers, and whether its text holds ``\\u``."""
        url = f"{products_url(self._transport.settings.endpoints)}?{query_string}"

        def attempt() -> tuple[dict[str, Any], bool]:
            if halt is not None and halt.is_set():
                raise _Halted
            with self._gate.slot():
                with self._lock:
                    self.requests += 1
                text = fetch()
            try:
                body = parse_json(text)
            except UntrustedJSONError as flaw:
                # Cut short or garbled may be a glitch; too deep is not.
                raise CatalogueError(
                    f"the catalogue sent {flaw}", status=200, transient=not flaw.hostile
                ) from None
            if not isinstance(body, dict):
                raise CatalogueError(
                    "the catalogue sent an unexpected answer", status=200, transient=True
                )
            return body, b"\\u" in text

        def fetch() -> bytes:
            # Raises transient errors to be retried, anything else to stop the search.
            response = self._transport.request("GET", url, stream=True)
            with response:
                if response.status_code != 200:
                    error = error_from_response(response, CatalogueError)
                    if error.status == 429:
                        # The catalogue asks for fewer requests: fewer at once from now on.
                        self._gate.throttled()
                        with self._lock:
                            self.throttled += 1
                    if error.status in (400, 422):
                        raise QueryError(f"the catalogue refused the search: {error}")
                    raise error
                try:
                    text = read_bounded(response, max_bytes=_MAX_PAGE_BYTES)
                except UntrustedJSONError as flaw:
                    raise CatalogueError(
                        f"the catalogue sent {flaw}", status=200, transient=not flaw.hostile
                    ) from None
            self._gate.answered()
            return text

        # A worker's waits between tries end when its window is dropped, too.
        halt: threading.Event | None = getattr(self._local, "halt", None)
        stop, sleep = self._stop, self._sleep
        if halt is not None and sleep is None:
            if stop is None:
                stop = halt
            else:
                sleep = functools.partial(_wait_either, stop, halt)

        return retrying(
            attempt,
            self._policy,
            give_up=lambda failure, attempts: SearchIncompleteError(
                f"the search could not be completed after {attempts} attempts: {failure}"
            ),
            what="catalogue",
            logger=log,
            stop=stop,
            sleep=sleep,
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


def _narrowed(query: Query, window: Window) -> Query:
    """The search narrowed to one window (sensing start in ``[start, end)``)."""
    return query.with_changes(start=window.start, end=window.end)


def _wait_either(stop: threading.Event, halt: threading.Event, seconds: float) -> bool:
    """Wait up to ``seconds`` for either event; whether one is set.

    Two events cannot be waited on at once; the caller's stop is looked at every
    ``_POLL_S`` while the worker waits on its own.
    """
    remaining = seconds
    while remaining > 0 and not stop.is_set():
        if halt.wait(min(remaining, _POLL_S)):
            return True
        remaining -= _POLL_S
    return stop.is_set() or halt.is_set()


class _Halted(Exception):
    """The consumer dropped a window (the iteration ended or the window starts again)."""


@dataclass(frozen=True)
class SearchProgress:
    """How far a search is: what the caller's ``progress`` callback receives.

    Sent from the thread iterating the search, after each page it yields and each window
    it finishes, so a callback may draw on a terminal without locking.

    Attributes:
        products: distinct products yielded so far.
        windows_done: time windows paged to the end.
        windows: windows known so far (a split search counts its later windows as it
            reaches them, so this grows; 1 for a search that was not split).
        requests: catalogue requests sent so far (pages, counts, retries).
        split: whether the search was split by sensing time (more than 10,000 matches).
    """

    products: int
    windows_done: int
    windows: int
    requests: int
    split: bool


@dataclass
class _Run:
    """One window being paged by a worker into its buffer, read by the consumer."""

    query: Query
    window: Window
    first: _Page | None
    buffer: _Buffer
    started: bool = False

    @classmethod
    def of(cls, query: Query, window: Window, first: _Page | None = None) -> _Run:
        """A window to page, not started."""
        return cls(query, window, first, _Buffer(_BUFFERED_PAGES))


class _Buffer:
    """Pages of one window on their way from its worker to the consumer, a few at most.

    The worker waits while the buffer is full, so a window read ahead holds at most
    ``size`` pages; closing it (the consumer dropped the window) makes the worker's next
    :meth:`put` raise :class:`_Halted`, and :attr:`halt` ends its waits between tries.
    """

    def __init__(self, size: int) -> None:
        self._size = size
        self._pages: deque[_Page] = deque()
        self._ended = False
        self._error: BaseException | None = None
        self.complete = False
        self.halt = threading.Event()
        self._changed = threading.Condition()

    def put(self, page: _Page) -> None:
        """Hand a page on; waits while the buffer is full."""
        with self._changed:
            while len(self._pages) >= self._size and not self.halt.is_set():
                self._changed.wait()
            if self.halt.is_set():
                raise _Halted
            self._pages.append(page)
            self._changed.notify_all()

    def finish(self, complete: bool) -> None:
        """The window is paged to its end (``complete``) or hit the ``$skip`` cap."""
        with self._changed:
            self.complete = complete
            self._ended = True
            self._changed.notify_all()

    def fail(self, error: BaseException) -> None:
        """The window could not be paged: the consumer raises ``error``."""
        with self._changed:
            self._error = error
            self._ended = True
            self._changed.notify_all()

    def get(self) -> tuple[list[Product], list[tuple[str, RejectedEntry]]] | None:
        """The next page's products and rejected entries, or None at the window's end.

        Raises:
            BaseException: what the worker failed with.
        """
        with self._changed:
            while not self._pages and not self._ended:
                self._changed.wait()
            if self._pages:
                page = self._pages.popleft()
                self._changed.notify_all()
                return page.products, page.rejected
            if self._error is not None:
                raise self._error
            return None

    def close(self) -> None:
        """Drop the window: its worker stops at its next step."""
        with self._changed:
            self.halt.set()
            self._pages.clear()
            self._changed.notify_all()


class _Pool:
    """The worker threads of one iteration: at most ``size``, each paging one window.

    Threads are kept for the whole iteration (each keeps its kept-alive connection),
    started as jobs need them, and each closes its connection when it ends.
    """

    def __init__(self, size: int, transport: Transport) -> None:
        self._size = size
        self._transport = transport
        self._jobs: deque[Callable[[], None] | None] = deque()
        self._busy = 0
        self._threads: list[threading.Thread] = []
        self._changed = threading.Condition()

    def idle(self) -> bool:
        """Whether a job submitted now starts at once."""
        with self._changed:
            return self._busy < self._size

    def submit(self, job: Callable[[], None]) -> None:
        """Run ``job`` on a worker; waits for one to be free."""
        with self._changed:
            while self._busy >= self._size:
                self._changed.wait()
            self._busy += 1
            self._jobs.append(job)
            if len(self._threads) < self._busy:
                thread = threading.Thread(
                    target=self._work, name="sentinel-fetch-search", daemon=True
                )
                self._threads.append(thread)
                thread.start()
            self._changed.notify_all()

    def close(self, *, wait: bool) -> None:
        """End the workers once their jobs are done; ``wait`` for them (all idle)."""
        with self._changed:
            self._jobs.extend([None] * len(self._threads))
            self._changed.notify_all()
        if wait:
            for thread in self._threads:
                thread.join()

    def _work(self) -> None:
        try:
            while True:
                with self._changed:
                    while not self._jobs:
                        self._changed.wait()
                    job = self._jobs.popleft()
                if job is None:
                    return
                try:
                    job()
                finally:
                    with self._changed:
                        self._busy -= 1
                        self._changed.notify_all()
        finally:
            self._transport.close_thread_session()


class _Gate:
    """At most ``bound`` catalogue requests at once, fewer after the catalogue's 429s.

    A 429 lowers the limit by one (never below one) for the next requests; after
    ``_CALM_ANSWERS`` answers in a row without one it rises by one again, up to the
    bound. Counted in answers, not seconds: the same requests give the same limits.
    """

    def __init__(self, bound: int) -> None:
        self.bound = bound
        self.limit = bound
        self._busy = 0
        self._calm = 0
        self._changed = threading.Condition()

    @contextlib.contextmanager
    def slot(self) -> Iterator[None]:
        """Hold one of the requests allowed at once."""
        with self._changed:
            while self._busy >= self.limit:
                self._changed.wait()
            self._busy += 1
        try:
            yield
        finally:
            with self._changed:
                self._busy -= 1
                self._changed.notify_all()

    def throttled(self) -> None:
        """The catalogue answered 429: one request fewer at once."""
        with self._changed:
            self._calm = 0
            if self.limit > 1:
                self.limit -= 1
                log.info("the catalogue is rate limiting: %d request(s) at once now", self.limit)

    def answered(self) -> None:
        """An answer without a 429: after enough of them, one request more at once."""
        with self._changed:
            self._calm += 1
            if self._calm >= _CALM_ANSWERS and self.limit < self.bound:
                self.limit += 1
                self._calm = 0
                self._changed.notify_all()
