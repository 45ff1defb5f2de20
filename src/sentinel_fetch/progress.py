"""Progress events: the library reports, the caller renders.

The download engine emits :class:`ProgressEvent` objects to a :class:`Progress` sink.
The command line renders them as bars on a terminal or as periodic log lines otherwise;
an application can collect them, forward them to a GUI, or ignore them (:class:`NullProgress`).
Sinks are called from worker threads and must be quick and thread-safe.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Literal, Protocol

__all__ = [
    "LEDGER_STATES",
    "PROBLEM_STATES",
    "RESULT_STATES",
    "BatchFinished",
    "BatchStarted",
    "BytesReceived",
    "NullProgress",
    "ProductFinished",
    "ProductStarted",
    "ProductState",
    "ProductWaiting",
    "Progress",
    "ProgressEvent",
    "QuotaWarning",
]


class ProductState(str, enum.Enum):
    """Every state a product can be in: one vocabulary for the run, the ledger and reports.

    A run ends each product in one of :data:`RESULT_STATES` (``ProductResult.status``,
    :class:`ProductFinished`). The job ledger remembers a product across runs in one of
    :data:`LEDGER_STATES`: ``downloaded`` is remembered as ``done`` (verified by a run of
    this job) and ``stopped`` as ``queued`` (still to do); :attr:`remembered_as` says so.
    The failure report lists the :data:`PROBLEM_STATES`.
    """

    #: To do: waiting for a worker, or left undone by a run that stopped.
    QUEUED = "queued"
    #: A worker is on it (connecting, receiving, verifying, moving it to Finish).
    DOWNLOADING = "downloading"
    #: Fetched and verified by this run.
    DOWNLOADED = "downloaded"
    #: Fetched and verified by a run of this job (the ledger's word for DOWNLOADED).
    DONE = "done"
    #: Its verified file was already in the finish folder: no request.
    SKIPPED = "skipped"
    #: ``Online: false``: to be ordered in the CDSE Data Workspace, never attempted.
    OFFLINE = "offline"
    #: Retries ran out, or the server refused it for good; the reason says which.
    FAILED = "failed"
    #: The run ended (Ctrl-C, SIGTERM, a fatal error) before it finished.
    STOPPED = "stopped"

    # Shown and formatted as its value ("failed"), as the text it replaces was.
    __str__ = str.__str__
    __format__ = str.__format__  # type: ignore[assignment]

    @property
    def remembered_as(self) -> ProductState:
        """The state the job ledger records for a product that ended a run in this one."""
        return {
            ProductState.DOWNLOADED: ProductState.DONE,
            ProductState.STOPPED: ProductState.QUEUED,
        }.get(self, self)


#: How a run can end for a product.
RESULT_STATES = (
    ProductState.DOWNLOADED,
    ProductState.SKIPPED,
    ProductState.OFFLINE,
    ProductState.FAILED,
    ProductState.STOPPED,
)
#: What the job ledger records.
LEDGER_STATES = (
    ProductState.QUEUED,
    ProductState.DOWNLOADING,
    ProductState.DONE,
    ProductState.FAILED,
    ProductState.OFFLINE,
    ProductState.SKIPPED,
)
#: The results a failure report lists: every product a run did not leave verified.
PROBLEM_STATES = (ProductState.FAILED, ProductState.OFFLINE, ProductState.STOPPED)

#: :data:`RESULT_STATES` as text, for type checking (``ProductResult.status``).
ProductStatus = Literal["downloaded", "skipped", "offline", "failed", "stopped"]


@dataclass(frozen=True)
class BatchStarted:
    """A batch begins: how much there is to do, and how much was already done."""

    total_products: int
    total_bytes: int
    already_done: int


@dataclass(frozen=True)
class _ProductEvent:
    """What every event about one product carries besides its own fields."""

    #: The product's id: two products may share a name. Set by the download engine.
    product_id: str = field(default="", kw_only=True)


@dataclass(frozen=True)
class ProductStarted(_ProductEvent):
    """A transfer attempt begins (again, after a retry).

    Attributes:
        resumed_from: bytes already on disk that will not be fetched again.
    """

    name: str
    total_bytes: int
    resumed_from: int
    attempt: int


@dataclass(frozen=True)
class BytesReceived(_ProductEvent):
    """More bytes of a product arrived (reported about every few MiB)."""

    name: str
    count: int


@dataclass(frozen=True)
class ProductWaiting(_ProductEvent):
    """A product will be tried again after a pause."""

    name: str
    reason: str
    delay_s: float
    attempt: int


@dataclass(frozen=True)
class ProductFinished(_ProductEvent):
    """A product reached a final state for this run."""

    name: str
    status: ProductStatus
    detail: str = ""


@dataclass(frozen=True)
class BatchFinished:
    """The batch ended (completed or stopped)."""

    downloaded: int
    skipped: int
    failed: int
    offline: int
    stopped: int
    elapsed_s: float


@dataclass(frozen=True)
class QuotaWarning:
    """The account passed a share of its 30-day volume (told once per threshold per run).

    Attributes:
        account: the CDSE account.
        used_bytes: its bytes over the last 30 days, every worker's.
        quota_bytes: its volume per 30 days (12 TB unless configured).
        fraction: the threshold just passed (0.8, 0.95).
    """

    account: str
    used_bytes: int
    quota_bytes: int
    fraction: float


ProgressEvent = (
    BatchStarted
    | ProductStarted
    | BytesReceived
    | ProductWaiting
    | ProductFinished
    | BatchFinished
    | QuotaWarning
)


class Progress(Protocol):
    """Receives progress events from worker threads."""

    def __call__(self, event: ProgressEvent) -> None:
        """Handle one event quickly; never raise."""
        ...


class NullProgress:
    """Ignores every event."""

    def __call__(self, event: ProgressEvent) -> None:
        """Do nothing."""
