"""The job ledger's interface: one contract, two implementations (SQLite, PostgreSQL).

A job is a batch of products. Its ledger remembers every product's state (the recording
API the download engine has always used: :meth:`Ledger.record`, :meth:`Ledger.record_file`)
and, since jobs may be shared by several ``download`` processes on one machine (SQLite in
the save folder) or on many machines (PostgreSQL), it also coordinates them:

* **Workers** (:meth:`Ledger.register_worker`): every process that works on the job says
  who it is (host, pid, account, save folder); ``status`` lists them with their figures.
* **Claims** (:meth:`Ledger.claim_next`, :meth:`Ledger.claim_next_file`): a product (or one
  file of a product, for band downloads) is worked on only by the worker that holds its
  *lease*. A lease lasts ``lease_s`` seconds of the **ledger's clock** (SQLite: this
  machine's clock, injectable; PostgreSQL: the database server's ``now()``, so the
  machines' clocks never need to agree) and is renewed by :meth:`Ledger.renew` while the
  worker works. A worker killed with ``kill -9`` stops renewing; once its lease has
  expired, another worker (or the restarted one) claims the product again and is told it
  took it over (:attr:`Claim.taken_over`), so it resumes the part file.
* **Connection slots** (:meth:`Ledger.take_slot`): one account's connection budget across
  every worker and machine; never more than ``limit`` live slots per account.
* **The quota meter** (:meth:`Ledger.add_bytes`, :meth:`Ledger.bytes_since`): bytes per
  account, kept in minute buckets per worker, summed over the rolling 30 days.

A claim does not change a product's recorded state; :meth:`Ledger.record` does, as it
always has. Claimable means: recorded ``queued`` or ``downloading`` (a run that died
mid-transfer) and no live lease. ``done``, ``skipped``, ``failed`` and ``offline`` are
not claimable; :meth:`Ledger.enqueue` returns failed and offline products to ``queued``
when asked (a rerun retries them, as a rerun always has).

Every method is one short transaction and safe to call from several threads of one
process, and from many processes at once.
"""

from __future__ import annotations

import os
import socket
import uuid
from abc import ABC, abstractmethod
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sentinel_fetch.errors import LedgerFileError, StorageError
from sentinel_fetch.untrusted import parse_json

__all__ = [
    "DEFAULT_QUOTA_BYTES",
    "QUOTA_WINDOW",
    "AccountStatus",
    "Claim",
    "FailedProduct",
    "Ledger",
    "LedgerSummary",
    "RecordRefusedError",
    "Renewal",
    "Slot",
    "StoredProduct",
    "WorkItem",
    "WorkerStatus",
    "new_worker_id",
]

#: CDSE's data quota per account: 12 TB (decimal) per rolling 30 days (cdse-api.md).
DEFAULT_QUOTA_BYTES = 12 * 10**12
#: The quota meter's rolling window.
QUOTA_WINDOW = timedelta(days=30)
#: How long after its last heartbeat a worker that did not finish counts as gone.
WORKER_GONE_AFTER = timedelta(minutes=2)


def new_worker_id() -> str:
    """A worker id unique across machines and restarts: ``host:pid:random``."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


@dataclass(frozen=True)
class WorkItem:
    """What a lease covers: a whole product (``path == ""``) or one file of it.

    Attributes:
        product_id: the product UUID.
        path: the file's path inside the product (as :class:`PlannedFile` names it), or
            ``""`` for the whole product.
    """

    product_id: str
    path: str = ""


@dataclass(frozen=True)
class Claim:
    """A lease a worker won on a :class:`WorkItem`.

    Attributes:
        item: what is leased.
        worker: who holds it.
        lease_until: when it expires unless renewed, on the ledger's clock (UTC, aware).
        taken_over: another worker held it before and its lease expired (it died or
            stalled): the part file it left may be resumed.
        previous_worker: that worker's id, when ``taken_over``.
        product: the stored catalogue entry of the product (a JSON object), or ``None``
            if the ledger has none: lets a worker fetch a product it never searched for.
        file_name: the product's file in the temp and finish folders.
    """

    item: WorkItem
    worker: str
    lease_until: datetime
    taken_over: bool = False
    previous_worker: str | None = None
    product: Mapping[str, Any] | None = None
    file_name: str = ""


@dataclass(frozen=True)
class Slot:
    """One of an account's connection slots, leased to one worker.

    Attributes:
        account: the account (CDSE user name).
        number: 0 .. limit-1; unique among the account's live slots.
        worker: who holds it.
        lease_until: when it expires unless renewed (ledger clock, UTC, aware).
        token: unique to this taking of the slot: :meth:`Ledger.return_slot` gives back
            this slot only, never the same number the same worker took again later
            (``""`` on a slot made by hand: then any slot of that number and worker).
    """

    account: str
    number: int
    worker: str
    lease_until: datetime
    token: str = ""


@dataclass(frozen=True)
class Renewal:
    """What :meth:`Ledger.renew` found.

    Attributes:
        lost: items the worker believed it held whose lease is gone (expired and taken
            over, or released by someone else): stop writing them at once.
        lost_slots: slot numbers (of the worker's account) it believed it held and no
            longer holds.
        lease_until: the new expiry of everything it still holds.
    """

    lost: frozenset[WorkItem]
    lost_slots: frozenset[tuple[str, int]]
    lease_until: datetime


@dataclass(frozen=True)
class WorkerStatus:
    """One worker of the job and its figures (``status``).

    Attributes:
        id: its id (:func:`new_worker_id`).
        host, pid, account, save_path: as registered.
        started, last_seen: ledger clock (UTC, aware); ``last_seen`` is the last heartbeat.
        finished: when it said it ended, or ``None``.
        alive: not finished and heard from within the last two minutes.
        done: products (and files) it verified.
        running: leases it holds now.
        failed: products (and files) whose last attempt it made failed.
        bytes: bytes it downloaded (the quota meter's figure).
        rate: its average rate, bytes per second, from start to last heartbeat/finish.
    """

    id: str
    host: str
    pid: int
    account: str
    save_path: str
    started: datetime
    last_seen: datetime
    finished: datetime | None
    alive: bool
    done: int
    running: int
    failed: int
    bytes: int
    rate: float

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready form (``status --json``)."""
        return {
            "id": self.id,
            "host": self.host,
            "pid": self.pid,
            "account": self.account,
            "save_path": self.save_path,
            "started": self.started.isoformat(),
            "last_seen": self.last_seen.isoformat(),
            "finished": self.finished.isoformat() if self.finished else None,
            "alive": self.alive,
            "done": self.done,
            "running": self.running,
            "failed": self.failed,
            "bytes": self.bytes,
            "rate": self.rate,
        }


@dataclass(frozen=True)
class AccountStatus:
    """One account's figures across its workers, and its quota meter.

    Attributes:
        account: the account.
        workers: how many workers used it; ``alive`` of them are still running.
        done, running, failed, bytes, rate: sums over its workers (``rate``: of the live).
        quota_used: bytes downloaded over the rolling 30 days (all workers, all runs).
        quota: the account's quota in bytes (12 TB unless configured).
    """

    account: str
    workers: int
    alive: int
    done: int
    running: int
    failed: int
    bytes: int
    rate: float
    quota_used: int
    quota: int

    @property
    def quota_fraction(self) -> float:
        """``quota_used / quota`` (0 when the quota is 0)."""
        return self.quota_used / self.quota if self.quota else 0.0

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready form (``status --json``)."""
        return {**self.__dict__, "quota_fraction": self.quota_fraction}


@dataclass(frozen=True)
class FailedProduct:
    """A product whose last attempt failed."""

    id: str
    name: str
    reason: str
    attempts: int
    updated: str


@dataclass(frozen=True)
class StoredProduct:
    """A product as the ledger remembers it: enough to find and check its file.

    Attributes:
        id: the product UUID.
        name: the product name.
        size: bytes, 0 when the catalogue did not say.
        checksums: algorithm to hex digest, as the catalogue gave them.
        file_name: its file in the temp and finish folders.
        state: its last state (:data:`STATES`).
    """

    id: str
    name: str
    size: int
    checksums: Mapping[str, str]
    file_name: str
    state: str


@dataclass(frozen=True)
class LedgerSummary:
    """A batch at a glance (``sentinel-fetch status``).

    ``workers`` and ``accounts`` are filled by :meth:`Ledger.summary` when the job had
    registered workers (a ledger written before version 2 has none).
    """

    counts: dict[str, int]
    total_products: int
    total_bytes: int
    done_bytes: int
    bytes_received: int
    failed: list[FailedProduct] = field(default_factory=list)
    offline: list[str] = field(default_factory=list)
    workers: list[WorkerStatus] = field(default_factory=list)
    accounts: list[AccountStatus] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready form (``status --json``)."""
        return {
            "counts": self.counts,
            "total_products": self.total_products,
            "total_bytes": self.total_bytes,
            "done_bytes": self.done_bytes,
            "bytes_received": self.bytes_received,
            "failed": [f.__dict__ for f in self.failed],
            "offline": self.offline,
            "workers": [w.to_dict() for w in self.workers],
            "accounts": [a.to_dict() for a in self.accounts],
        }


class RecordRefusedError(StorageError):
    """``record(..., worker=w)`` refused: another worker holds the item's live lease,
    or it is ``done`` by another worker. Nothing was written."""

    def __init__(self, item: WorkItem, state: str, worker: str) -> None:
        self.item = item
        self.state = state
        self.worker = worker
        what = f"{item.product_id}/{item.path}" if item.path else item.product_id
        super().__init__(
            f"not recording {what} as {state}: worker {worker} no longer holds it"
            " (another worker's lease, or done by another worker)"
        )


class Ledger(ABC):
    """A job's ledger: recording, workers, claims, slots and the quota meter.

    Open one with :func:`sentinel_fetch.ledger.open_ledger` (a save folder or a
    ``postgresql://`` URL). One object per process is enough; it is thread-safe.
    ``repr()`` and :attr:`location` never show a password.
    """

    #: Where the ledger lives, safe to show: a file path or a URL without its password.
    location: str
    #: The worker this object registered (:meth:`register_worker`); :meth:`record` and
    #: :meth:`record_file` stamp it on what they write, so ``status`` can say who did what.
    worker: str | None = None

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.location!r})"

    def __enter__(self) -> Ledger:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    @abstractmethod
    def close(self) -> None:
        """Close the connection(s); the object cannot be used afterwards."""

    # -- recording (the engine) -----------------------------------------------------------

    @abstractmethod
    def record(self, product: Any, state: str, *, worker: object = None, **details: object) -> None:
        """Record that ``product`` entered ``state`` (the engine's :class:`JobRecorder`).

        Details understood: ``reason``, ``path``, ``verified_by``, ``bytes_received``,
        ``attempts`` and ``file_name`` (``product.file_name`` if not given). Run result
        states are stored as :attr:`~sentinel_fetch.progress.ProductState.remembered_as`
        says (``downloaded`` -> ``done``, ``stopped`` -> ``queued``). Does not touch leases.

        Args:
            worker: the worker writing, in a cooperative run. Then the write is REFUSED
                (nothing changes, ``False`` returned) when another worker holds a live
                lease on the product (this one lost it: stalled, taken over), or when the
                row is ``done`` by another worker and ``state`` is not ``done`` (a late
                failure never undoes someone's verified file). The row is stamped with
                ``worker``. Without ``worker`` the write always applies (as before).
                (Typed ``object`` only so the engine's ``JobRecorder`` protocol, whose
                details are ``**object``, still matches; pass a worker id ``str``.)

        Raises:
            RecordRefusedError: the write was refused (only with ``worker``); nothing
                changed. Stop working on the product: someone else has it.
        """

    @abstractmethod
    def record_file(
        self,
        product: Any,
        planned: Any,
        state: str,
        *,
        worker: object = None,
        **details: object,
    ) -> None:
        """Record that one file of ``product`` (``path``, ``size``, ``checksum``) entered
        ``state``. Details understood: ``reason``, ``verified_by``, ``bytes_received``,
        ``attempts``. ``worker`` and :class:`RecordRefusedError`: as :meth:`record`, for
        the file's row and lease.
        """

    @abstractmethod
    def files(self, product_id: str | None = None) -> list[dict[str, Any]]:
        """Rows of the per-file table (all products, or one), oldest first."""

    @abstractmethod
    def summary(self, *, quotas: Mapping[str, int] | None = None) -> LedgerSummary:
        """Counts by state, bytes, failures, offline products, workers and accounts.

        Args:
            quotas: account -> quota in bytes; accounts not named get
                :data:`DEFAULT_QUOTA_BYTES` (a ``"*"`` key sets the default).
        """

    @abstractmethod
    def entries(self, states: Iterable[str] | None = None) -> list[dict[str, Any]]:
        """Product rows (as dicts, ordered by name), optionally only those in ``states``."""

    @abstractmethod
    def file_names(self) -> dict[str, str]:
        """``product id -> file name`` of every product this job has met."""

    def stored(self, states: Iterable[str] | None = None) -> list[StoredProduct]:
        """Every product (optionally only those in ``states``) with its file name.

        Raises:
            LedgerFileError: a row's checksums are not the JSON the ledger writes.
        """
        stored = []
        for row in self.entries(states):
            checksums = self._json(row, "checksums")
            if not isinstance(checksums, dict):
                raise self._damaged(row, "checksums")
            stored.append(
                StoredProduct(
                    id=row["id"],
                    name=row["name"],
                    size=int(row["size"] or 0),
                    checksums={str(k): str(v) for k, v in checksums.items()},
                    file_name=row["file_name"],
                    state=row["state"],
                )
            )
        return stored

    def product_dicts(self, states: Iterable[str]) -> list[Mapping[str, Any]]:
        """The stored catalogue entries of products in ``states`` (for retries).

        Raises:
            LedgerFileError: an entry is not the JSON object the ledger writes.
        """
        found: list[Mapping[str, Any]] = []
        for row in self.entries(states):
            if not row["product"]:
                continue
            entry = self._json(row, "product")
            if not isinstance(entry, dict):
                raise self._damaged(row, "catalogue entry")
            found.append(entry)
        return found

    def _json(self, row: Mapping[str, Any], column: str) -> Any:
        value = row[column]
        if isinstance(value, (dict, list)):  # PostgreSQL's jsonb arrives parsed
            return value
        try:
            # Deep nesting here is damage too, not a RecursionError.
            return parse_json(value)
        except (TypeError, ValueError):
            raise self._damaged(row, column) from None

    def _damaged(self, row: Mapping[str, Any], what: str) -> LedgerFileError:
        return LedgerFileError(
            f"the job ledger {self.location} holds a damaged {what} for product {row['id']}"
            f" ({str(row['name'])[:80]}): it was changed by something other than sentinel-fetch"
        )

    # -- the batch and claims -----------------------------------------------------------

    @abstractmethod
    def enqueue(
        self,
        products: Iterable[Any],
        *,
        files: Mapping[str, Sequence[Any]] | None = None,
        retry: bool = True,
    ) -> int:
        """Add a batch (idempotent; every worker may enqueue the same batch).

        A product not in the ledger is added as ``queued`` with its catalogue entry
        (``to_dict()``), size, checksums and ``file_name``. One already there keeps its
        state and lease, except ``failed`` and ``offline`` ones, which return to
        ``queued`` when ``retry`` (a rerun retries them). ``done``, ``skipped`` and
        ``downloading`` are never touched.

        Args:
            products: objects with ``id``, ``name``, ``size``, ``checksums``,
                ``file_name`` (and optionally ``to_dict()``).
            files: product id -> its planned files (``path``, ``size``, ``checksum``),
                for band downloads: added to the file table the same way.
            retry: return failed and offline products (and files) to ``queued``.

        Returns:
            How many products were added or returned to ``queued``.
        """

    @abstractmethod
    def claim_next(
        self, worker: str, lease_s: float, *, among: Collection[str] | None = None
    ) -> Claim | None:
        """Lease the next claimable product (``queued`` or ``downloading``, no live lease).

        Exactly one of any number of concurrent callers wins a given product. Products
        are offered in the order they were first enqueued.

        Args:
            worker: the claiming worker's id.
            lease_s: lease length in seconds (``0`` expires at once: tests).
            among: only these product ids (a worker's own batch or shard).

        Returns:
            The claim, or ``None`` when nothing is claimable now (others may still hold
            leases that will expire: call again later to take over).
        """

    @abstractmethod
    def claim_next_file(
        self, worker: str, lease_s: float, *, product_id: str | None = None
    ) -> Claim | None:
        """Lease the next claimable file (of ``product_id``, or of any product).

        As :meth:`claim_next`, for rows of the file table (``queued``/``downloading``,
        no live lease). The claim's ``item.path`` names the file.
        """

    @abstractmethod
    def renew(
        self,
        worker: str,
        lease_s: float,
        *,
        held: Collection[WorkItem] = (),
        slots: Collection[tuple[str, int]] = (),
    ) -> Renewal:
        """Extend the leases in ``held`` and the slots in ``slots`` by ``lease_s``;
        heartbeat. Every OTHER lease or slot stored under ``worker`` is dropped in the
        same transaction (a release or return that failed must not be kept alive by the
        heartbeat: it would hold an account's stream and keep the batch from ending).

        Call it well within ``lease_s`` (a third of it, say). A lease that expired but
        was not taken over by anyone is still the worker's and is renewed.

        Args:
            held: the items the worker holds; those it no longer holds are returned in
                :attr:`Renewal.lost`, and so are those it held but did not name (now
                dropped).
            slots: ``(account, number)`` of the slots it holds; as ``held`` for
                :attr:`Renewal.lost_slots`.
        """

    @abstractmethod
    def release(self, worker: str, item: WorkItem) -> bool:
        """Drop ``worker``'s lease on ``item`` (record its state first).

        Returns:
            ``False`` when the worker did not hold it (lost, taken over).
        """

    @abstractmethod
    def holds(self, worker: str, item: WorkItem) -> bool:
        """Whether ``worker`` holds a live lease on ``item`` now (a check before Finish)."""

    @abstractmethod
    def pending(self, *, among: Collection[str] | None = None) -> int:
        """How many products are still to do: ``queued`` or ``downloading``, leased or not.

        When :meth:`claim_next` returns ``None`` and this is 0, the batch is finished;
        when it is not 0, other workers hold leases: wait (they finish, or their leases
        expire and can be taken over). ``claim_next`` may also return ``None`` under
        heavy contention while rows are claimable: poll, do not conclude from one call.
        """

    @abstractmethod
    def requeue(self, items: Iterable[WorkItem]) -> int:
        """Return items to ``queued`` whatever their state, unless a live lease holds them
        (a finished file that went missing). Returns how many changed."""

    # -- workers ---------------------------------------------------------------------------

    @abstractmethod
    def register_worker(
        self,
        worker: str,
        *,
        account: str,
        save_path: str,
        host: str | None = None,
        pid: int | None = None,
    ) -> None:
        """Say that ``worker`` starts working on the job (again, if it was registered).

        Sets :attr:`worker` on this object, so what it records is stamped with it.
        ``host`` and ``pid`` default to this machine and process.
        """

    @abstractmethod
    def heartbeat(self, worker: str) -> None:
        """Note that ``worker`` is alive (``renew`` does this too)."""

    @abstractmethod
    def finish_worker(self, worker: str) -> None:
        """``worker`` ended: mark it finished and drop every lease and slot it holds."""

    @abstractmethod
    def workers(self) -> list[WorkerStatus]:
        """Every worker that registered, with its figures, oldest first."""

    @abstractmethod
    def accounts(self, *, quotas: Mapping[str, int] | None = None) -> list[AccountStatus]:
        """Per account: its workers' figures and its quota meter (see :meth:`summary`)."""

    # -- connection slots -----------------------------------------------------------------

    @abstractmethod
    def take_slot(self, account: str, worker: str, limit: int, lease_s: float) -> Slot | None:
        """Lease one of ``account``'s connection slots, if fewer than ``limit`` are live.

        Live slots of the account, across every worker, never exceed ``limit`` (as seen
        by each taker: workers that disagree on the limit are each held to their own).
        Returns ``None`` when the account has ``limit`` live slots: wait and retry.
        """

    @abstractmethod
    def return_slot(self, slot: Slot) -> None:
        """Give a slot back (nothing happens if it had expired and was taken)."""

    # -- the quota meter ------------------------------------------------------------------

    @abstractmethod
    def add_bytes(self, account: str, n: int, *, worker: str | None = None) -> None:
        """Add ``n`` downloaded bytes to ``account``'s meter (this minute's bucket).

        One row per account, worker and minute, however often it is called; still, call
        it per chunk batch (every second or so), not per 64 KiB chunk. ``worker``
        defaults to :attr:`worker`.
        """

    @abstractmethod
    def bytes_since(self, account: str, since: datetime) -> int:
        """Bytes ``account`` downloaded since ``since`` (minute granularity)."""

    @abstractmethod
    def now(self) -> datetime:
        """The ledger's clock (UTC, aware): the one leases and the meter use."""

    def bytes_in_window(self, account: str, window: timedelta = QUOTA_WINDOW) -> int:
        """Bytes ``account`` downloaded over the last ``window`` (30 days) of the ledger's
        clock: the quota meter's reading."""
        return self.bytes_since(account, self.now() - window)
