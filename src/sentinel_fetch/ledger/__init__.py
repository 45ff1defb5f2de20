"""The job ledger: every product of a batch, its state, and the workers sharing the job.

Two implementations of one interface (:class:`~sentinel_fetch.ledger.base.Ledger`):

* :class:`JobLedger` (:mod:`~sentinel_fetch.ledger.sqlite`): an SQLite file in the save
  folder, ``sentinel-fetch-ledger.sqlite``; the default, for one machine (any number of
  processes on it).
* :class:`~sentinel_fetch.ledger.postgres.PostgresLedger`: a PostgreSQL database, for a
  job shared by many machines (``--ledger postgresql://...``).

:func:`open_ledger` opens either from a location: a folder or a URL.
"""

from __future__ import annotations

from sentinel_fetch.ledger.base import (
    DEFAULT_QUOTA_BYTES,
    QUOTA_WINDOW,
    AccountStatus,
    Claim,
    FailedProduct,
    Ledger,
    LedgerSummary,
    Renewal,
    Slot,
    StoredProduct,
    WorkerStatus,
    WorkItem,
    new_worker_id,
)
from sentinel_fetch.ledger.sqlite import LEDGER_FILE_NAME, STATES, JobLedger

__all__ = [
    "DEFAULT_QUOTA_BYTES",
    "LEDGER_FILE_NAME",
    "QUOTA_WINDOW",
    "STATES",
    "AccountStatus",
    "Claim",
    "FailedProduct",
    "JobLedger",
    "Ledger",
    "LedgerSummary",
    "Renewal",
    "Slot",
    "StoredProduct",
    "WorkItem",
    "WorkerStatus",
    "new_worker_id",
]
