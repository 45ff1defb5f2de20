"""Rendering for the command line: progress bars, log lines, tables, sizes.

The library reports progress as events; this module turns them into an overall bar plus
one bar per active file on a terminal (rich), or into a log line every few seconds when
the output is a file or a pipe (cron jobs, ``nohup``, CI logs).
"""

from __future__ import annotations

import logging
import math
import re
import threading
import time
from types import TracebackType
from typing import TYPE_CHECKING

from rich.console import Console, RenderableType
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
    QuotaWarning,
)
from sentinel_fetch.text import for_display

if TYPE_CHECKING:
    from sentinel_fetch.client import AccountStatus, LedgerSummary

__all__ = [
    "BarProgress",
    "LogProgress",
    "human_bytes",
    "job_lines",
    "quota_line",
    "result_lines",
    "state_lines",
    "total_size",
]

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


# -- status ----------------------------------------------------------------------------------

#: The quota meter's thresholds: a note from the first, a warning from the second.
QUOTA_THRESHOLDS = (0.80, 0.95)


def state_lines(summary: LedgerSummary) -> list[str]:
    """``  state   count`` for every state the job has products in."""
    return [f"  {state:<12} {number}" for state, number in summary.counts.items() if number]


def result_lines(summary: LedgerSummary) -> list[str]:
    """Verified and fetched bytes, then every failure with its reason, then the offline."""
    total = summary.total_bytes
    percent = 100.0 * summary.done_bytes / total if total else 100.0
    lines = [
        f"verified: {human_bytes(summary.done_bytes)} ({percent:.1f} %); "
        f"fetched over all runs: {human_bytes(summary.bytes_received)}"
    ]
    if summary.failed:
        lines.append("failed (rerun the download, or use --retry-failed):")
        lines += [
            f"  {for_display(f.name)}: {for_display(f.reason)} ({f.attempts} attempt(s))"
            for f in summary.failed
        ]
    if summary.offline:
        lines.append("offline (order these in the CDSE Data Workspace, then rerun):")
        lines += [f"  {for_display(name)}" for name in summary.offline]
    return lines


def _rate(bytes_per_s: float) -> str:
    return f"{human_bytes(bytes_per_s)}/s"


def quota_line(account: AccountStatus) -> str:
    """The quota meter of one account, with a warning from 80 % and 95 %.

    Example:
        >>> from sentinel_fetch.client import AccountStatus
        >>> a = AccountStatus("me", 1, 1, 0, 0, 0, 0, 0.0, 9_700_000_000_000, 12 * 10**12)
        >>> quota_line(a)
        'quota meter: 9.70 TB of 12.00 TB in the last 30 days (80.8 %): over 80 %'
    """
    fraction = account.quota_fraction
    text = (
        f"quota meter: {human_bytes(account.quota_used)} of {human_bytes(account.quota)}"
        f" in the last 30 days ({100 * fraction:.1f} %)"
    )
    if fraction >= 1.0:
        return text + ": used up, CDSE slows the account to 1 MB/s"
    if fraction >= QUOTA_THRESHOLDS[1]:
        return text + ": over 95 %, nearly used up"
    if fraction >= QUOTA_THRESHOLDS[0]:
        return text + ": over 80 %"
    return text


def job_lines(summary: LedgerSummary) -> list[str]:
    """Per worker and per account: done, running, failed, bytes, rate; the quota meters.

    Empty for a job no registered worker ran (an older ledger).
    """
    lines: list[str] = []
    if summary.workers:
        lines.append(f"workers ({sum(w.alive for w in summary.workers)} running):")
        for w in summary.workers:
            state = "running" if w.alive else ("finished" if w.finished else "gone")
            lines.append(
                f"  {for_display(w.host)} pid {w.pid} ({for_display(w.account)}, {state}):"
                f" done {w.done}, running {w.running}, failed {w.failed},"
                f" {human_bytes(w.bytes)} at {_rate(w.rate)}"
            )
    if summary.accounts:
        lines.append("accounts:")
        for a in summary.accounts:
            lines.append(
                f"  {for_display(a.account)}: {a.workers} worker(s), {a.alive} running;"
                f" done {a.done}, running {a.running}, failed {a.failed},"
                f" {human_bytes(a.bytes)} at {_rate(a.rate)}"
            )
            lines.append(f"    {quota_line(a)}")
    return lines


_S2_NAME = re.compile(r"^(S2\w)_MSI(L\w{2})_(\d{8})(T\d{6})_(N\d{4})_(R\d{3})_(T\w{5})_\d{8}T\d{6}")


def short_name(name: str, width: int = 44) -> str:
    """A product name cut to ``width`` characters, keeping what tells products apart.

    A Sentinel-2 name loses its processing time and extension first, then its baseline,
    then the sensing time of day, and keeps platform, level, date, orbit and tile as
    long as it can. Other names lose their extension, then their middle, so the start
    (mission, mode, date) and the end (orbit, datatake) both stay.

    Example:
        >>> name = "S2B_MSIL2A_20231001T103019_N0509_R108_T32TQM_20231001T132714.SAFE"
        >>> short_name(name)
        'S2B_MSIL2A_20231001T103019_N0509_R108_T32TQM'
        >>> short_name(name, 30), short_name(name, 20)
        ('S2B_L2A_20231001_R108_T32TQM', 'S2B_20231001_T32TQM')
        >>> short_name("S1A_IW_GRDH_1SDV_20240604T110100_20240604T110131_054172_069690"
        ...     "_E33E.SAFE", 30)
        'S1A_IW_GRDH_1SD…72_069690_E33E'
    """
    shown = for_display(name)
    if len(shown) <= width:
        return shown
    match = _S2_NAME.match(shown)
    if match is not None:
        platform, level, day, time_of_day, baseline, orbit, tile = match.groups()
        for candidate in (
            f"{platform}_MSI{level}_{day}{time_of_day}_{baseline}_{orbit}_{tile}",
            f"{platform}_MSI{level}_{day}{time_of_day}_{orbit}_{tile}",
            f"{platform}_{level}_{day}_{orbit}_{tile}",
            f"{platform}_{day}_{tile}",
        ):
            if len(candidate) <= width:
                return candidate
        shown = f"{platform}_{day}_{tile}"
    else:
        shown = re.sub(r"\.(SAFE|SEN3|zip)$", "", shown, flags=re.IGNORECASE)
    if len(shown) <= width:
        return shown
    head = (width - 1) // 2 + (width - 1) % 2
    tail = width - 1 - head
    return shown[:head] + "…" + (shown[-tail:] if tail else "")


def eta_text(seconds: float) -> str:
    """Time left for people: seconds under two minutes, then minutes, then hours.

    Example:
        >>> eta_text(42.4), eta_text(150), eta_text(7260)
        ('42 s', '3 min', '2 h 1 min')
    """
    if seconds < 120:
        return f"{max(0, round(seconds))} s"
    if seconds < 3600:
        return f"{math.ceil(seconds / 60)} min"
    hours, rest = divmod(math.ceil(seconds / 60), 60)
    return f"{hours} h {rest} min"


def _key(event: ProductStarted | BytesReceived | ProductWaiting | ProductFinished) -> str:
    """Which bar an event is for: the product id, as two products may share a name."""
    return event.product_id or event.name


def _short(name: str, width: int = 44) -> str:
    """A product name for a bar's label: shown as text (not markup), cut to ``width``."""
    return escape(short_name(name, width))


class BarProgress:
    """Overall bar (bytes, products done/total, rate, ETA) and one bar per active file."""

    def __init__(self, console: Console) -> None:
        # Name, bar, "12.3/45.6 MB", "1.2 MB/s" and the ETA share the terminal's width:
        # at 80 columns the name gets what the numbers leave (they never wrap).
        self._name_width = max(16, min(44, console.width - 52))
        self._progress = Progress(
            TextColumn("{task.description}"),
            BarColumn(bar_width=max(5, min(40, console.width - self._name_width - 50))),
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

    def __rich__(self) -> RenderableType:
        """The bars as they stand (what the live display shows)."""
        return self._progress.get_renderable()

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
                        f"  {_short(event.name, self._name_width)}",
                        total=event.total_bytes or None,
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
                    progress.update(
                        task,
                        description=f"  {_short(event.name, self._name_width - 6)} [yellow]retry",
                    )
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
            elif isinstance(event, QuotaWarning):
                progress.console.print(Text(quota_warning_text(event), style="yellow"))


def quota_warning_text(event: QuotaWarning) -> str:
    """``warning: account me@x.eu has used 81 % of its 30-day quota (9.7 TB of 12.0 TB)``."""
    return (
        f"warning: account {for_display(event.account)} has used "
        f"{event.used_bytes / event.quota_bytes:.0%} of its 30-day quota "
        f"({human_bytes(event.used_bytes)} of {human_bytes(event.quota_bytes)}; "
        f"past {event.fraction:.0%} warns); CDSE slows it to 1 MB/s once it is used up"
    )


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
                    eta = eta_text(left / rate) if rate > 0 else "?"
                    log.warning(
                        "progress: %d/%d products, %s of %s, %s/s, about %s left",
                        self._finished,
                        self._total_products,
                        human_bytes(self._received),
                        human_bytes(self._total_bytes),
                        human_bytes(rate),
                        eta,
                    )
            elif isinstance(event, QuotaWarning):
                log.warning("%s", quota_warning_text(event))
            elif isinstance(event, ProductFinished):
                if event.status in ("downloaded", "failed", "offline"):
                    self._finished += 1
                level = logging.WARNING if event.status == "failed" else logging.INFO
                detail = f": {event.detail}" if event.detail else ""
                log.log(level, "%s %s%s", event.status, event.name, detail)
