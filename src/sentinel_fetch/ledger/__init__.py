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

from pathlib import Path

from sentinel_fetch.ledger.base import (
    DEFAULT_QUOTA_BYTES,
    QUOTA_WINDOW,
    AccountStatus,
    Claim,
    FailedProduct,
    Ledger,
    LedgerSummary,
    RecordRefusedError,
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
    "RecordRefusedError",
    "Renewal",
    "Slot",
    "StoredProduct",
    "WorkItem",
    "WorkerStatus",
    "check_ledger_location",
    "new_worker_id",
    "open_ledger",
]


def check_ledger_location(location: str | Path) -> None:
    """Check a ledger location before any search or login, without connecting.

    Pure but for one side effect: a URL's passwords are registered with
    :func:`~sentinel_fetch.redact.register_secret` (in every spelling), so nothing
    printed after this can show them. A folder is not looked at (``open_ledger`` does).

    Raises:
        LedgerLocationError: a ``postgresql://`` URL that cannot be used (libpq cannot
            read it, a port that is no number, psycopg missing), or a URL of another
            scheme. One line, the password masked.
    """
    from sentinel_fetch.ledger.postgres import check_ledger_url, is_postgres_url

    text = str(location)
    if is_postgres_url(text):
        check_ledger_url(text)
        return
    scheme, sep, _ = text.partition("://")
    if sep and scheme.isalnum():
        from sentinel_fetch.errors import LedgerLocationError
        from sentinel_fetch.redact import redact_url, register_secret, url_passwords

        for password in url_passwords(text):
            register_secret(password)
        raise LedgerLocationError(
            f"unknown ledger location {redact_url(text)}: give a folder or a postgresql:// URL"
        )


def open_ledger(location: str | Path, *, create: bool = True, read_only: bool = False) -> Ledger:
    """Open the ledger of a job: a save folder's SQLite file, or a PostgreSQL database.

    Args:
        location: a save folder (the ledger is ``sentinel-fetch-ledger.sqlite`` in it), or
            a ``postgresql://`` / ``postgres://`` URL. Its password is registered with
            :func:`~sentinel_fetch.redact.register_secret` before anything can quote it.
        create: create the ledger (folder and file, or tables) if missing.
        read_only: only read (``status``): nothing is created or changed.

    Raises:
        LedgerLocationError: a URL that cannot be used, a server that cannot be reached
            or refuses us, psycopg missing.
        LedgerFileError: no job there (``create`` false or ``read_only``), or not ours.
        StorageError: the folder or file cannot be created.
    """
    from sentinel_fetch.ledger.postgres import PostgresLedger, is_postgres_url

    check_ledger_location(location)
    if is_postgres_url(location):
        return PostgresLedger.open(str(location), create=create, read_only=read_only)
    return JobLedger.open(Path(location), create=create, read_only=read_only)
