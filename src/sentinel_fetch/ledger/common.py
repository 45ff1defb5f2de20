"""What both ledger implementations share: values to write, figures to compute.

Pure functions, no database: the SQLite and the PostgreSQL ledger turn a product and a
state into the same column values and a job's raw rows into the same figures, so the
two can only differ in SQL, never in meaning.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from sentinel_fetch.ledger.base import (
    DEFAULT_QUOTA_BYTES,
    WORKER_GONE_AFTER,
    AccountStatus,
    WorkerStatus,
)
from sentinel_fetch.progress import LEDGER_STATES, ProductState
from sentinel_fetch.redact import redact
from sentinel_fetch.untrusted import parse_json

__all__ = [
    "CLAIMABLE",
    "FILE_COLUMNS",
    "PRODUCT_COLUMNS",
    "RETRIED",
    "SCHEMA_VERSION",
    "STATES",
    "FileValues",
    "ProductValues",
    "account_statuses",
    "catalogue_entry",
    "file_values",
    "now_text",
    "product_values",
    "quota_for",
    "stored_state",
    "worker_status",
]

#: Every state the ledger records (``verifying`` was listed once but never written).
STATES = tuple(state.value for state in LEDGER_STATES)
#: The schema both implementations write. 1: products, events, files; 2: leases,
#: workers, slots, the quota meter.
SCHEMA_VERSION = 2
#: States a claim may take: to do, or in flight when its worker died.
CLAIMABLE = ("queued", "downloading")
#: States :meth:`~sentinel_fetch.ledger.base.Ledger.enqueue` returns to ``queued``.
RETRIED = ("failed", "offline")
#: The product columns of schema 1, in order: what ``entries()`` returns.
PRODUCT_COLUMNS = (
    "id",
    "name",
    "file_name",
    "size",
    "checksums",
    "state",
    "reason",
    "bytes_received",
    "attempts",
    "verified_by",
    "path",
    "first_seen",
    "updated",
    "finished",
    "product",
)
#: The file columns of schema 1, in order: what ``files()`` returns.
FILE_COLUMNS = (
    "product_id",
    "path",
    "size",
    "checksum",
    "state",
    "reason",
    "bytes_received",
    "attempts",
    "verified_by",
    "updated",
)


def now_text() -> str:
    """This machine's time as the ledger's text timestamps spell it (``...Z``)."""
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def stored_state(state: str) -> str:
    """The state the ledger stores for ``state`` (a run's result states are mapped).

    Raises:
        ValueError: not a state the ledger knows.
    """
    if state in ProductState._value2member_map_:
        state = ProductState(state).remembered_as.value
    if state not in STATES:
        raise ValueError(f"unknown ledger state {state!r}")
    return state


@dataclass(frozen=True)
class ProductValues:
    """A product's columns as :meth:`record` and :meth:`enqueue` write them."""

    id: str
    name: str
    file_name: str
    size: int
    checksums: str
    product: str | None
    reason: str | None
    bytes_received: int
    attempts: int
    verified_by: str | None
    path: str | None


def _count(details: Mapping[str, object], key: str) -> int:
    value: Any = details.get(key, 0) or 0
    return int(value)


def product_values(product: Any, details: Mapping[str, object] | None = None) -> ProductValues:
    """Columns of ``product`` (and a record's details), masked where they quote servers."""
    details = details or {}
    to_dict = getattr(product, "to_dict", None)
    product_json = json.dumps(to_dict(), default=str) if callable(to_dict) else None
    # Reasons quote servers; whatever reaches the ledger is masked, whoever wrote it.
    reason = redact(str(details["reason"])) if details.get("reason") else None
    verified_by = details.get("verified_by")
    path = details.get("path")
    return ProductValues(
        id=str(product.id),
        name=str(product.name),
        file_name=str(details.get("file_name") or product.file_name),
        size=int(product.size or 0),
        checksums=json.dumps(dict(getattr(product, "checksums", {}) or {})),
        product=product_json,
        reason=reason,
        bytes_received=_count(details, "bytes_received"),
        attempts=_count(details, "attempts"),
        verified_by=None if verified_by is None else str(verified_by),
        path=None if path is None else str(path),
    )


@dataclass(frozen=True)
class FileValues:
    """One planned file's columns as :meth:`record_file` and :meth:`enqueue` write them."""

    path: str
    size: int | None
    checksum: str | None
    reason: str | None
    bytes_received: int
    attempts: int
    verified_by: str | None


def file_values(planned: Any, details: Mapping[str, object] | None = None) -> FileValues:
    """Columns of a planned file (``path``, ``size``, ``checksum``) and a record's details."""
    details = details or {}
    checksum = getattr(planned, "checksum", None)
    described = f"{checksum.algorithm}:{checksum.digest}" if checksum is not None else None
    verified_by = details.get("verified_by")
    size = getattr(planned, "size", None)
    return FileValues(
        path=str(planned.path),
        size=None if size is None else int(size),
        checksum=described,
        reason=redact(str(details["reason"])) if details.get("reason") else None,
        bytes_received=_count(details, "bytes_received"),
        attempts=_count(details, "attempts"),
        verified_by=None if verified_by is None else str(verified_by),
    )


def catalogue_entry(text: str | None) -> Mapping[str, Any] | None:
    """A stored catalogue entry (JSON text) as a dict; ``None`` if absent or not an object."""
    if not text:
        return None
    try:
        entry = parse_json(text)
    except ValueError:
        return None
    return entry if isinstance(entry, dict) else None


def quota_for(account: str, quotas: Mapping[str, int] | None) -> int:
    """An account's quota: its own, else the ``"*"`` default, else 12 TB."""
    quotas = quotas or {}
    return int(quotas.get(account, quotas.get("*", DEFAULT_QUOTA_BYTES)))


def worker_status(
    row: Mapping[str, Any],
    *,
    now: datetime,
    done: int,
    running: int,
    failed: int,
    received: int,
) -> WorkerStatus:
    """A worker's figures from its row (``id``, ``host``, ``pid``, ``account``,
    ``save_path``, ``started``, ``last_seen``, ``finished``: aware datetimes) and counts."""
    started: datetime = row["started"]
    last_seen: datetime = row["last_seen"]
    finished: datetime | None = row["finished"]
    end = finished or last_seen
    elapsed = max((end - started).total_seconds(), 1.0)
    return WorkerStatus(
        id=str(row["id"]),
        host=str(row["host"]),
        pid=int(row["pid"]),
        account=str(row["account"]),
        save_path=str(row["save_path"]),
        started=started,
        last_seen=last_seen,
        finished=finished,
        alive=finished is None and now - last_seen <= WORKER_GONE_AFTER,
        done=done,
        running=running,
        failed=failed,
        bytes=received,
        rate=received / elapsed,
    )


def account_statuses(
    workers: Iterable[WorkerStatus],
    used: Mapping[str, int],
    quotas: Mapping[str, int] | None,
) -> list[AccountStatus]:
    """Per account: sums over its workers, its meter reading ``used`` (30 days), its quota.

    Accounts that downloaded without a registered worker (``used`` only) are listed too.
    """
    by_account: dict[str, list[WorkerStatus]] = {}
    for worker in workers:
        by_account.setdefault(worker.account, []).append(worker)
    for account in used:
        by_account.setdefault(account, [])
    statuses = []
    for account in sorted(by_account):
        members = by_account[account]
        statuses.append(
            AccountStatus(
                account=account,
                workers=len(members),
                alive=sum(w.alive for w in members),
                done=sum(w.done for w in members),
                running=sum(w.running for w in members),
                failed=sum(w.failed for w in members),
                bytes=sum(w.bytes for w in members),
                rate=sum(w.rate for w in members if w.alive),
                quota_used=int(used.get(account, 0)),
                quota=quota_for(account, quotas),
            )
        )
    return statuses
