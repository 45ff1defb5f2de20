"""A split search pages its time windows side by side, within the catalogue's bound.

What is asserted is what the emulator saw (its counters of requests answered at once, its
429s) and what the search returned, never how long anything took: the bound is held by
the emulator's ``hold`` gate until both windows are in flight, and the catalogue changes
between pages by the emulator's own clock of answers (``publish_step_s``), not by timing.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import requests

from sentinel_fetch.catalogue.odata import render_filter
from sentinel_fetch.catalogue.query import build_query
from sentinel_fetch.catalogue.search import Search, SearchProgress, _Gate
from sentinel_fetch.emulator import Emulator, StatusFault
from sentinel_fetch.http import Transport
from sentinel_fetch.settings import Settings
from tests.conftest import with_limits

EUROPE = "POLYGON((-10 35, 30 35, 30 70, -10 70, -10 35))"
# More than the 10,000 + 1000 reachable by paging: split into windows.
SPRING_2023_EUROPE = build_query(
    collections="SENTINEL-2", area=EUROPE, start="2023-03-01", end="2023-06-30"
)
# A few hundred products: one window, several pages of 50.
JULY_2023_ALPS = build_query(
    collections="SENTINEL-2",
    area="POLYGON((6 45, 12 45, 12 48, 6 48, 6 45))",
    start="2023-07-01",
    end="2023-07-31",
)


@pytest.fixture
def publishing(cdse: Emulator) -> Iterator[Emulator]:
    """The emulator, its publication switches put back afterwards."""
    saved = (cdse.config.published_until, cdse.config.publish_step_s)
    yield cdse
    cdse.config.published_until, cdse.config.publish_step_s = saved


def _ids(cdse: Emulator, query_filter: str, published_until: datetime | None = None) -> set[str]:
    if published_until is not None:
        stamp = published_until.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        query_filter = f"({query_filter}) and PublicationDate le {stamp}"
    return set(cdse.match_ids(query_filter))


def _exactly_once(ids: list[str]) -> None:
    duplicates = [product_id for product_id, n in Counter(ids).items() if n > 1]
    assert not duplicates, duplicates[:5]


@pytest.mark.parametrize(
    ("query", "page_size"),
    [(SPRING_2023_EUROPE, 1000), (JULY_2023_ALPS, 50)],
    ids=["split", "one"],
)
def test_products_published_while_the_listing_pages_come_once_and_none_is_lost(
    publishing: Emulator, settings: Settings, query: object, page_size: int
) -> None:
    """New products appear between every two pages (sensed in the searched range, so they
    land in windows being paged and shift their pages): each product comes once, every
    product there at the start comes, and nothing comes that does not match."""
    cdse = publishing
    wanted = render_filter(query)  # type: ignore[arg-type]
    everything = _ids(cdse, wanted)
    # Half of the range is still unpublished when the listing starts: the products
    # sensed in its second half are published a few hours at each answer.
    middle = (
        datetime(2023, 5, 1, tzinfo=timezone.utc)
        if page_size == 1000
        else datetime(2023, 7, 15, tzinfo=timezone.utc)
    )
    at_start = _ids(cdse, wanted, middle)
    assert 0 < len(at_start) < len(everything)
    cdse.config.published_until = middle
    cdse.config.publish_step_s = (
        timedelta(days=4) if page_size == 1000 else timedelta(days=2)
    ).total_seconds()

    result = Search(query, transport=Transport(settings), page_size=page_size)  # type: ignore[arg-type]
    ids = [product.id for product in result]

    published_meanwhile = _ids(cdse, wanted, cdse.config.published_until) - at_start
    assert published_meanwhile, "products must have been published during the listing"
    _exactly_once(ids)
    assert at_start <= set(ids), f"{len(at_start - set(ids))} products there at the start were lost"
    assert set(ids) <= everything
    assert set(ids) & published_meanwhile, "the listing must have seen the catalogue change"


class _CountingTransport(Transport):
    """Counts the requests open at once, from sending to closing the answer; with
    ``meet``, the first window pages wait for one another at a barrier.

    Counted by the client, exactly: the emulator sees a request end only after its last
    byte left, which may be after the client already sent its next one.
    """

    def __init__(self, settings: Settings, meet: int = 0) -> None:
        super().__init__(settings)
        self._count_lock = threading.Lock()
        self.open = 0
        self.peak = 0
        self._barrier = threading.Barrier(meet) if meet else None
        self._waiting = meet

    def request(self, method: str, url: str, **kwargs: Any) -> requests.Response:
        self._meet(url)
        with self._count_lock:
            self.open += 1
            self.peak = max(self.peak, self.open)
        try:
            response = super().request(method, url, **kwargs)
        except BaseException:
            self._closed()
            raise
        close = response.close
        done = [False]

        def closing() -> None:
            if not done[0]:
                done[0] = True
                self._closed()
            close()

        response.close = closing  # type: ignore[method-assign]
        return response

    def _meet(self, url: str) -> None:
        """A window's page (no count asked) waits there until ``meet`` of them do."""
        query = parse_qs(urlsplit(url).query)
        if self._barrier is None or "$count" in query or query.get("$top") == ["0"]:
            return
        with self._count_lock:
            if self._waiting <= 0:
                return
            self._waiting -= 1
        # The timeout only ends a broken run: a client paging one window at a time
        # never brings a second page here.
        self._barrier.wait(timeout=120)

    def _closed(self) -> None:
        with self._count_lock:
            self.open -= 1


def test_the_bound_of_concurrent_catalogue_requests_is_reached_and_never_exceeded(
    cdse: Emulator, settings: Settings
) -> None:
    """The first two window pages meet at a barrier before they are sent: only a client
    with two windows in flight at once gets past it; a third request at once would show
    in the count."""
    transport = _CountingTransport(with_limits(settings, catalogue_requests=2), meet=2)
    result = Search(SPRING_2023_EUROPE, transport=transport)

    ids = [product.id for product in result]

    _exactly_once(ids)
    assert set(ids) == set(cdse.match_ids(render_filter(SPRING_2023_EUROPE)))
    assert len(result.windows) >= 2
    assert transport.peak == 2


@pytest.mark.parametrize("bound", [1, 3])
def test_the_setting_is_the_bound(cdse: Emulator, settings: Settings, bound: int) -> None:
    transport = _CountingTransport(with_limits(settings, catalogue_requests=bound))
    ids = [product.id for product in Search(SPRING_2023_EUROPE, transport=transport)]
    _exactly_once(ids)
    assert len(ids) == len(cdse.match_ids(render_filter(SPRING_2023_EUROPE)))
    assert transport.peak <= bound


def test_a_429_on_a_window_is_retried_as_the_catalogue_asks(
    cdse: Emulator, settings: Settings
) -> None:
    """Two 429s with Retry-After while the windows page: each is waited out as the
    catalogue asked (within the settings' cap), and the listing is whole."""
    cdse.faults.add(
        StatusFault(
            host="catalogue",
            status=429,
            times=2,
            retry_after_s=1,
            body={"error": "WAF", "message": "Rate limit exceeded", "status": 429},
        )
    )
    waits: list[float] = []
    lock = threading.Lock()

    def sleep(seconds: float) -> bool:
        with lock:
            waits.append(seconds)
        return False

    patient = with_limits(settings, backoff_max_s=5.0)
    result = Search(SPRING_2023_EUROPE, transport=Transport(patient), sleep=sleep)
    ids = [product.id for product in result]

    _exactly_once(ids)
    assert set(ids) == set(cdse.match_ids(render_filter(SPRING_2023_EUROPE)))
    assert cdse.stats.requests("catalogue", 429) == 2
    assert len(waits) == 2 and all(1.0 <= wait <= 1.1 for wait in waits), waits
    assert result.throttled == 2


def test_429s_past_the_attempts_end_the_search_with_an_error_not_a_short_list(
    cdse: Emulator, settings: Settings
) -> None:
    from sentinel_fetch.errors import SearchIncompleteError

    cdse.faults.add(StatusFault(host="catalogue", status=429, times=-1, retry_after_s=0.01))
    result = Search(SPRING_2023_EUROPE, transport=Transport(settings), sleep=lambda s: False)
    with pytest.raises(SearchIncompleteError):
        list(result)
    assert cdse.stats.requests("catalogue", 429) == settings.limits.max_attempts


def test_progress_counts_products_and_windows(cdse: Emulator, settings: Settings) -> None:
    events: list[SearchProgress] = []
    result = Search(SPRING_2023_EUROPE, transport=Transport(settings), progress=events.append)
    ids = [product.id for product in result]

    assert events, "a long listing reports progress"
    last = events[-1]
    assert last.products == len(ids)
    assert last.windows_done == last.windows == len(result.windows)
    assert last.split and last.requests == result.requests
    listed = [event.products for event in events]
    assert listed == sorted(listed), "products so far never go back"


def test_leaving_a_listing_early_ends_its_workers(cdse: Emulator, settings: Settings) -> None:
    before = {thread.ident for thread in threading.enumerate()}
    result = Search(SPRING_2023_EUROPE, transport=Transport(settings))
    pages = result.pages()
    assert next(pages)
    pages.close()
    # Each worker ends after the request it may be in: wait for that, by the threads.
    for thread in threading.enumerate():
        if thread.ident not in before and thread.name == "sentinel-fetch-search":
            thread.join()
    assert not [
        t
        for t in threading.enumerate()
        if t.name == "sentinel-fetch-search" and t.ident not in before
    ]


# --- the gate itself: pure ---------------------------------------------------------------


def test_the_gate_steps_down_on_429_and_back_up_after_calm_answers() -> None:
    gate = _Gate(3)
    gate.throttled()
    gate.throttled()
    gate.throttled()
    assert gate.limit == 1, "never below one"
    for _ in range(19):
        gate.answered()
    assert gate.limit == 1
    gate.answered()
    assert gate.limit == 2
    for _ in range(40):
        gate.answered()
    assert gate.limit == 3, "never above the bound"


def test_the_gate_holds_requests_past_its_limit() -> None:
    gate = _Gate(2)
    inside = threading.Semaphore(0)
    leave = threading.Event()
    peak = [0]
    now = [0]
    lock = threading.Lock()

    def request() -> None:
        with gate.slot():
            with lock:
                now[0] += 1
                peak[0] = max(peak[0], now[0])
            inside.release()
            leave.wait()
            with lock:
                now[0] -= 1

    threads = [threading.Thread(target=request) for _ in range(5)]
    for thread in threads:
        thread.start()
    inside.acquire()
    inside.acquire()
    with lock:
        assert now[0] == 2
    leave.set()
    for thread in threads:
        thread.join()
    assert peak[0] == 2
