"""Rendering for the command line: progress bars, log lines, tables, sizes.

The library reports progress as events; this module turns them into an overall bar plus
one bar per active file on a terminal (rich), or into a log line every few seconds when
the output is a file or a pipe (cron jobs, ``nohup``, CI logs).
"""

from __future__ import annotations

import logging
import threading
import time
from types import TracebackType

from rich.console import Console
from rich.markup import escape
from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeRemainingColumn,
    TransferSpeedColumn,
)
from rich.text import Text

from sentinel_fetch.progress import (
    BatchFinished,
    BatchStarted,
    BytesReceived,
    ProductFinished,
    ProductStarted,
    ProductWaiting,
    ProgressEvent,
)
from sentinel_fetch.text import for_display

__all__ = ["BarProgress", "LogProgress", "human_bytes", "total_size"]

log = logging.getLogger("sentinel_fetch.cli")


def human_bytes(count: float) -> str:
    """A byte count for people (decimal units, like CDSE's quotas).

    Example:
        >>> human_bytes(1_103_458_221)
        '1.10 GB'
        >>> human_bytes(512)
        '512 B'
    """
    for unit in ("B", "kB", "MB", "GB", "TB"):
        if abs(count) < 1000 or unit == "TB":
            return f"{count:.0f} {unit}" if unit == "B" else f"{count:.2f} {unit}"
        count /= 1000
    raise AssertionError("unreachable")


def total_size(sizes: list[int]) -> str:
    """A total for people; sizes of 0 (older catalogue entries) are unknown, not empty.

    Example:
        >>> total_size([1_000_000, 0, 2_000_000])
        '3.00 MB (+1 of unknown size)'
    """
    unknown = sum(1 for size in sizes if size <= 0)
    text = human_bytes(sum(size for size in sizes if size > 0))
    return f"{text} (+{unknown} of unknown size)" if unknown else text


def _key(event: ProductStarted | BytesReceived | ProductWaiting | ProductFinished) -> str:
    """Which bar an event is for: the product id, as two products may share a name."""
    return event.product_id or event.name


def _short(name: str, width: int = 44) -> str:
    """A product name for a bar's label: shown as text (not markup), cut to ``width``."""
    shown = for_display(name)
    return escape(shown if len(shown) <= width else shown[: width - 1] + "…")


class BarProgress:
    """Overall bar (bytes, products done/total, rate, ETA) and one bar per active file."""

    def __init__(self, console: Console) -> None:
        self._progress = Progress(
            TextColumn("{task.description}"),
            BarColumn(bar_width=None),
            DownloadColumn(),
            TransferSpeedColumn(),
            TimeRemainingColumn(),
            console=console,
            transient=False,
            refresh_per_second=5,
        )
        self._overall: TaskID | None = None
        self._files: dict[str, TaskID] = {}
        self._total_products = 0
        self._finished = 0
        self._lock = threading.Lock()

    def __enter__(self) -> BarProgress:
        self._progress.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self._progress.stop()

    def _describe(self) -> str:
        return f"[bold]{self._finished}/{self._total_products} products"

    def __call__(self, event: ProgressEvent) -> None:
        """Update the bars (called from worker threads)."""
        with self._lock:
            progress = self._progress
            if isinstance(event, BatchStarted):
                self._total_products = event.total_products
                self._finished = event.already_done
                self._overall = progress.add_task(self._describe(), total=event.total_bytes or None)
            elif isinstance(event, ProductStarted):
                task = self._files.get(_key(event))
                if task is None:
                    task = progress.add_task(
                        f"  {_short(event.name)}", total=event.total_bytes or None
                    )
                    self._files[_key(event)] = task
                progress.update(task, completed=event.resumed_from, total=event.total_bytes or None)
                if self._overall is not None and event.attempt == 1 and event.resumed_from:
                    progress.advance(self._overall, event.resumed_from)
            elif isinstance(event, BytesReceived):
                task = self._files.get(_key(event))
                if task is not None:
                    progress.advance(task, event.count)
                if self._overall is not None:
                    progress.advance(self._overall, event.count)
            elif isinstance(event, ProductWaiting):
                task = self._files.get(_key(event))
                if task is not None:
                    progress.update(task, description=f"  {_short(event.name, 30)} [yellow]retry")
            elif isinstance(event, ProductFinished):
                task = self._files.pop(_key(event), None)
                if task is not None:
                    progress.remove_task(task)
                if event.status in ("downloaded", "failed", "offline"):
                    self._finished += 1
                if event.status == "failed":
                    line = f" {for_display(event.name)}: {for_display(event.detail)}"
                    progress.console.print(Text.assemble(("failed", "red"), line))
                if self._overall is not None:
                    progress.update(self._overall, description=self._describe())
            elif isinstance(event, BatchFinished) and self._overall is not None:
                progress.update(self._overall, description=self._describe())


class LogProgress:
    """A log line every ``interval_s`` seconds and one per finished product."""

    def __init__(self, interval_s: float = 10.0) -> None:
        self._interval_s = interval_s
        self._lock = threading.Lock()
        self._total_bytes = 0
        self._received = 0
        self._total_products = 0
        self._finished = 0
        self._started = time.monotonic()
        self._last = self._started

    def __call__(self, event: ProgressEvent) -> None:
        """Log progress (called from worker threads)."""
        with self._lock:
            if isinstance(event, BatchStarted):
                self._total_bytes = event.total_bytes
                self._total_products = event.total_products
                self._finished = event.already_done
                log.info(
                    "batch: %d products (%d already done), %s to fetch",
                    event.total_products,
                    event.already_done,
                    human_bytes(event.total_bytes),
                )
            elif isinstance(event, BytesReceived):
                self._received += event.count
                now = time.monotonic()
                if now - self._last >= self._interval_s:
                    self._last = now
                    rate = self._received / max(now - self._started, 1e-6)
                    left = max(self._total_bytes - self._received, 0)
                    eta = f"{left / rate / 60:.0f} min" if rate > 0 else "?"
                    log.warning(
                        "progress: %d/%d products, %s of %s, %s/s, about %s left",
                        self._finished,
                        self._total_products,
                        human_bytes(self._received),
                        human_bytes(self._total_bytes),
                        human_bytes(rate),
                        eta,
                    )
            elif isinstance(event, ProductFinished):
                if event.status in ("downloaded", "failed", "offline"):
                    self._finished += 1
                level = logging.WARNING if event.status == "failed" else logging.INFO
                detail = f": {event.detail}" if event.detail else ""
                log.log(level, "%s %s%s", event.status, event.name, detail)
