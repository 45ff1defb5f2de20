"""How far a long search is: a live line on a terminal, log lines otherwise.

The library reports :class:`~sentinel_fetch.catalogue.search.SearchProgress` through the
search's ``progress`` callback, from the thread that iterates it; this module only draws
it. A listing of 100,000 products takes minutes: without this, a terminal shows nothing
until the summary, and a log (cron, CI) shows nothing at all.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

from rich.console import Console
from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

if TYPE_CHECKING:
    from sentinel_fetch.client import SearchProgress

__all__ = ["SearchLog", "describe", "search_progress"]

log = logging.getLogger("sentinel_fetch.cli")


def describe(state: SearchProgress) -> str:
    """``12,345 products; 3 of 8 time windows done; 27 requests`` (windows only if split)."""
    text = f"{state.products:,} products"
    if state.split:
        text += f"; {state.windows_done} of {state.windows} time windows done"
    return f"{text}; {state.requests} catalogue requests"


class SearchLog:
    """One log line every ``interval_s`` seconds of listing, and one when a window ends.

    Args:
        interval_s: the least time between two lines about products.
        clock: seconds, monotonic (tests give their own).
    """

    def __init__(
        self, interval_s: float = 10.0, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._interval_s = interval_s
        self._clock = clock
        self._last = clock()
        self._windows_done = 0

    def __call__(self, state: SearchProgress) -> None:
        """Log ``state`` if a window finished or the interval has passed."""
        now = self._clock()
        window_done = state.windows_done > self._windows_done
        self._windows_done = state.windows_done
        if window_done or now - self._last >= self._interval_s:
            self._last = now
            log.warning("listing: %s", describe(state))


@contextmanager
def search_progress(
    interactive: bool, quiet: bool
) -> Iterator[Callable[[SearchProgress], None] | None]:
    """The callback to hand the search: a live line (terminal), log lines, or none (``-q``).

    The live line is transient: it is gone when the listing ends, before the summary.
    """
    if quiet:
        yield None
        return
    if not interactive:
        yield SearchLog()
        return
    columns = (SpinnerColumn(), TextColumn("{task.description}"), TimeElapsedColumn())
    with Progress(*columns, console=Console(stderr=True), transient=True) as bar:
        task = bar.add_task("searching the catalogue", total=None)

        def update(state: SearchProgress) -> None:
            bar.update(task, description=f"listing: {describe(state)}")

        yield update
