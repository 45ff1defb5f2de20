"""Progress events: the library reports, the caller renders.

The download engine emits :class:`ProgressEvent` objects to a :class:`Progress` sink.
The command line renders them as bars on a terminal or as periodic log lines otherwise;
an application can collect them, forward them to a GUI, or ignore them (:class:`NullProgress`).
Sinks are called from worker threads and must be quick and thread-safe.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, Protocol

__all__ = [
    "BatchFinished",
    "BatchStarted",
    "BytesReceived",
    "NullProgress",
    "ProductFinished",
    "ProductStarted",
    "ProductWaiting",
    "Progress",
    "ProgressEvent",
]

ProductStatus = Literal["downloaded", "skipped", "offline", "failed", "stopped"]


@dataclass(frozen=True)
class BatchStarted:
    """A batch begins: how much there is to do, and how much was already done."""

    total_products: int
    total_bytes: int
    already_done: int


@dataclass(frozen=True)
class ProductStarted:
    """A transfer attempt begins (again, after a retry).

    Attributes:
        resumed_from: bytes already on disk that will not be fetched again.
    """

    name: str
    total_bytes: int
    resumed_from: int
    attempt: int


@dataclass(frozen=True)
class BytesReceived:
    """More bytes of a product arrived (reported about every few MiB)."""

    name: str
    count: int


@dataclass(frozen=True)
class ProductWaiting:
    """A product will be tried again after a pause."""

    name: str
    reason: str
    delay_s: float
    attempt: int


@dataclass(frozen=True)
class ProductFinished:
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


ProgressEvent = (
    BatchStarted | ProductStarted | BytesReceived | ProductWaiting | ProductFinished | BatchFinished
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
