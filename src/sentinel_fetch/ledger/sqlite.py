"""The job ledger in SQLite: one file in the save folder, shared by every run on it.

A batch of 3,000 products runs for days, across crashes, reboots and reruns. The ledger
remembers, per product: its state (``queued``, ``downloading``, ``done``, ``failed``
with the reason, ``offline``, ``skipped``: :data:`~sentinel_fetch.progress.LEDGER_STATES`),
bytes fetched, attempts, checksums,
timestamps, and the full catalogue entry, so ``status`` and ``download --retry-failed``
need no search.

Every change goes through :meth:`JobLedger.record`: the download engine's, and
``verify``'s marking of a file it moved aside as failed (``verify`` holds the folder lock,
so it never writes while a run does). Each
product's row names its file in the temp and finish folders (see
:func:`~sentinel_fetch.downloads.paths.assign_file_names`), so a rerun finds the same
files and ``verify`` maps every file back to its product. ``status`` opens it read-only
(``read_only=True``: SQLite's ``mode=ro``), which works while a run writes it, and never
turns a file that is not a ledger into one. SQLite in WAL mode with synchronous writes
survives ``kill -9`` at any moment: at worst the last state change is lost, and the next
run re-derives it from the files (a product in the finish folder is verified by
construction).

Several processes on one machine share the file (the :class:`~sentinel_fetch.ledger.base.Ledger`
interface: claims, workers, slots, the meter). Every write is one short ``BEGIN
IMMEDIATE`` transaction, so a claim reads and takes a row with no other writer in
between; a writer that finds the file busy waits (the busy timeout, 30 s) instead of
failing. Leases use this machine's clock (``clock=``, injectable for tests); every
process on the file shares it. A ledger of schema 1 (before leases) is upgraded in
place, in one transaction, the first time a run opens it for writing.
"""

from __future__ import annotations

import math
import os
import socket
import sqlite3
import threading
import time
import uuid
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from sentinel_fetch.downloads.paths import make_folder
from sentinel_fetch.errors import LedgerFileError, StorageError
from sentinel_fetch.ledger.base import (
    AccountStatus,
    Claim,
    FailedProduct,
    Ledger,
    LedgerSummary,
    RecordRefusedError,
    Renewal,
    Slot,
    WorkerStatus,
    WorkItem,
)
from sentinel_fetch.ledger.common import (
    FILE_COLUMNS,
    PRODUCT_COLUMNS,
    SCHEMA_VERSION,
    STATES,
    account_statuses,
    catalogue_entry,
    file_values,
    now_text,
    product_values,
    stored_state,
    worker_status,
)

__all__ = ["LEDGER_FILE_NAME", "STATES", "JobLedger"]

LEDGER_FILE_NAME = "sentinel-fetch-ledger.sqlite"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS products (
    id             TEXT PRIMARY KEY,
    name           TEXT NOT NULL,
    file_name      TEXT NOT NULL,
    size           INTEGER NOT NULL DEFAULT 0,
    checksums      TEXT NOT NULL DEFAULT '{}',
    state          TEXT NOT NULL,
    reason         TEXT,
    bytes_received INTEGER NOT NULL DEFAULT 0,
    attempts       INTEGER NOT NULL DEFAULT 0,
    verified_by    TEXT,
    path           TEXT,
    first_seen     TEXT NOT NULL,
    updated        TEXT NOT NULL,
    finished       TEXT,
    product        TEXT
);
CREATE INDEX IF NOT EXISTS products_state ON products(state);
CREATE TABLE IF NOT EXISTS events (
    product_id TEXT NOT NULL,
    at         TEXT NOT NULL,
    state      TEXT NOT NULL,
    detail     TEXT
);
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
{files}
INSERT OR IGNORE INTO meta(key, value) VALUES ('schema', '1');
"""
# Single files of products (bands...): one row per file.
_FILES = """
CREATE TABLE IF NOT EXISTS files (
    product_id     TEXT NOT NULL,
    path           TEXT NOT NULL,
    size           INTEGER,
    checksum       TEXT,
    state          TEXT NOT NULL,
    reason         TEXT,
    bytes_received INTEGER NOT NULL DEFAULT 0,
    attempts       INTEGER NOT NULL DEFAULT 0,
    verified_by    TEXT,
    updated        TEXT NOT NULL,
    PRIMARY KEY (product_id, path)
);
"""
_SCHEMA = _SCHEMA.replace("{files}", _FILES)
# Schema 2: leases on product and file rows (in the rows themselves, so a claim is one
# row update), the workers, the accounts' connection slots and the quota meter. Times
# are seconds since the epoch on this machine's clock.
_UPGRADE_2 = """
ALTER TABLE products ADD COLUMN worker TEXT;
ALTER TABLE products ADD COLUMN lease_worker TEXT;
ALTER TABLE products ADD COLUMN lease_until REAL;
ALTER TABLE files ADD COLUMN worker TEXT;
ALTER TABLE files ADD COLUMN lease_worker TEXT;
ALTER TABLE files ADD COLUMN lease_until REAL;
CREATE INDEX IF NOT EXISTS products_lease ON products(lease_worker);
CREATE INDEX IF NOT EXISTS files_state ON files(state);
CREATE TABLE IF NOT EXISTS workers (
    id        TEXT PRIMARY KEY,
    host      TEXT NOT NULL,
    pid       INTEGER NOT NULL,
    account   TEXT NOT NULL,
    save_path TEXT NOT NULL,
    started   REAL NOT NULL,
    last_seen REAL NOT NULL,
    finished  REAL
);
CREATE TABLE IF NOT EXISTS slots (
    account     TEXT NOT NULL,
    number      INTEGER NOT NULL,
    worker      TEXT NOT NULL,
    lease_until REAL NOT NULL,
    PRIMARY KEY (account, number)
);
CREATE TABLE IF NOT EXISTS meter (
    account TEXT NOT NULL,
    worker  TEXT NOT NULL,
    minute  INTEGER NOT NULL,
    bytes   INTEGER NOT NULL,
    PRIMARY KEY (account, worker, minute)
);
UPDATE meta SET value = '2' WHERE key = 'schema';
"""
# Added to schema 2 in place (no new version: older code ignores them): a slot's token,
# and the indexes that keep claims and counts cheap on a batch of tens of thousands.
_COLUMNS = (("slots", "token", "TEXT"),)
_INDEXES = (
    # Covers pending(among=): the open products' ids without reading their rows.
    "CREATE INDEX IF NOT EXISTS products_state_id ON products(state, id)",
)


def _add_columns(connection: sqlite3.Connection) -> None:
    for table, column, kind in _COLUMNS:
        have = {row[1] for row in connection.execute(f"PRAGMA table_info({table})")}
        if column not in have:
            connection.execute(f"ALTER TABLE {table} ADD COLUMN {column} {kind}")
    for statement in _INDEXES:
        connection.execute(statement)


#: Seconds a writer waits for another process's transaction before it gives up.
BUSY_TIMEOUT_S = 30.0


@contextmanager
def _reading_errors(path: Path) -> Iterator[None]:
    """SQLite failures while reading as one-line errors.

    A file SQLite cannot make sense of is the user's to look at (exit 2); a lock held
    too long or a refused open is the system's (exit 1).
    """
    try:
        yield
    except sqlite3.OperationalError as exc:
        raise StorageError(f"cannot read the job ledger {path}: {exc}") from None
    except sqlite3.Error as exc:
        raise LedgerFileError(f"{path} is not a job ledger of sentinel-fetch: {exc}") from None


def _kind(connection: sqlite3.Connection) -> str:
    """``new`` (no tables yet), ``ledger`` (ours) or ``foreign`` (another program's data)."""
    tables = {row[0] for row in connection.execute("SELECT name FROM sqlite_master")}
    if not tables:
        return "new"
    if "meta" in tables and "products" in tables:
        row = connection.execute("SELECT value FROM meta WHERE key = 'schema'").fetchone()
        if row is not None:
            return "ledger"
    return "foreign"


def _version(connection: sqlite3.Connection, path: Path) -> int:
    row = connection.execute("SELECT value FROM meta WHERE key = 'schema'").fetchone()
    try:
        version = int(row[0])
    except (TypeError, ValueError):
        raise LedgerFileError(f"{path} holds an unknown schema version: {row[0]!r}") from None
    if version > SCHEMA_VERSION:
        raise LedgerFileError(
            f"{path} was written by a newer sentinel-fetch (schema {version}); upgrade"
            " sentinel-fetch to use it"
        )
    return version


@contextmanager
def _storage_errors(path: Path) -> Iterator[None]:
    """SQLite failures (a full disk, a read-only folder) as one-line StorageErrors."""
    try:
        yield
    except sqlite3.Error as exc:
        text = str(exc)
        if "full" in text:
            raise StorageError(f"the disk is full; cannot update the job ledger {path}") from None
        raise StorageError(f"cannot update the job ledger {path}: {text}") from None


def _refused(row: Sequence[Any], state: str, worker: str, now: float) -> bool:
    """Whether ``worker`` may not write ``state`` over ``row`` (state, lease_worker,
    lease_until, worker): another worker's live lease, or another worker's ``done``."""
    current, holder, until, writer = row[0], row[1], row[2], row[3]
    if holder is not None and holder != worker and until is not None and until > now:
        return True
    return current == "done" and state not in ("done", "skipped") and writer != worker


def _aware(seconds: float) -> datetime:
    return datetime.fromtimestamp(seconds, timezone.utc)


class JobLedger(Ledger):
    """The SQLite ledger of one save folder. Thread-safe; one connection, one lock.

    Use :meth:`open`; the constructor does no I/O.
    """

    def __init__(self, path: Path, *, clock: Callable[[], float] = time.time) -> None:
        self.path = path
        self.location = str(path)
        self.worker = None
        self._clock = clock
        self._connection: sqlite3.Connection | None = None
        self._lock = threading.RLock()
        self._version = SCHEMA_VERSION
        self._among: frozenset[str] | None = None
        self._among_given: Collection[str] | None = None

    @classmethod
    def open(
        cls,
        save_path: Path,
        *,
        create: bool = True,
        read_only: bool = False,
        clock: Callable[[], float] = time.time,
    ) -> JobLedger:
        """Open (or create) the ledger of ``save_path``.

        Args:
            save_path: the job's save folder.
            create: create the folder and the ledger if missing.
            read_only: open with SQLite's ``mode=ro`` (``status``): nothing is created or
                changed, the file's journal mode and schema version included; implies
                ``create=False``. Reading works while a run writes (WAL).
            clock: seconds since the epoch, for leases, heartbeats and the meter
                (tests inject one; every process on the file must use the same clock).

        Raises:
            LedgerFileError: there is no ledger and ``create`` is false or ``read_only``
                true; or the file is not a sentinel-fetch ledger (another program's
                SQLite database, a file that is not SQLite at all; a zero-length file
                too when ``read_only``), or one of a newer schema. Nothing was written.
            ConfigError: ``save_path``, or a folder above it, is a file.
            StorageError: the folder or the file cannot be created.
        """
        return cls.open_file(
            save_path / LEDGER_FILE_NAME, create=create, read_only=read_only, clock=clock
        )

    @classmethod
    def open_file(
        cls,
        path: Path,
        *,
        create: bool = True,
        read_only: bool = False,
        clock: Callable[[], float] = time.time,
    ) -> JobLedger:
        """As :meth:`open`, for a ledger file of any name (``ledger merge -o``)."""
        ledger = cls(path, clock=clock)
        if read_only or not create:
            if not path.exists():
                raise LedgerFileError(
                    f"no download job in {path.parent} (no {path.name} there)"
                    if path.name == LEDGER_FILE_NAME
                    else f"no job ledger {path}"
                )
            if not path.is_file():
                raise LedgerFileError(f"{path} is not a job ledger: it is not a file")
        if read_only:
            ledger._connection, ledger._version = cls._connect_read_only(path)
            return ledger
        make_folder(path.parent)
        try:
            # Autocommit: every write below opens its own BEGIN IMMEDIATE.
            connection = sqlite3.connect(
                path, check_same_thread=False, timeout=BUSY_TIMEOUT_S, isolation_level=None
            )
        except sqlite3.Error as exc:
            raise StorageError(f"cannot open the job ledger {path}: {exc}") from None
        try:
            with _reading_errors(path):
                kind = _kind(connection)
            if kind == "foreign":
                raise LedgerFileError(
                    f"{path} is not a job ledger of sentinel-fetch (another program's database); "
                    "move it away or choose another save folder"
                )
            if kind == "ledger":
                with _reading_errors(path):
                    _version(connection, path)
            with _storage_errors(path):
                connection.execute("PRAGMA journal_mode=WAL")
                # FULL: a state change reported as written survives power loss too.
                connection.execute("PRAGMA synchronous=FULL")
                cls._create_or_upgrade(connection, path)
        except BaseException:
            connection.close()
            raise
        ledger._connection = connection
        return ledger

    @staticmethod
    def _create_or_upgrade(connection: sqlite3.Connection, path: Path) -> None:
        """Create the tables, or upgrade a ledger of an older schema, in one transaction.

        Under ``BEGIN IMMEDIATE`` the schema is read again, so two processes opening a
        new (or old) ledger at once create (or upgrade) it once. A kill -9 midway leaves
        the file as it was: SQLite rolls the transaction back.
        """
        connection.execute("BEGIN IMMEDIATE")
        try:
            kind = _kind(connection)
            if kind == "foreign":
                raise LedgerFileError(f"{path} is not a job ledger of sentinel-fetch")
            if kind == "new":
                for statement in _SCHEMA.split(";"):
                    if statement.strip():
                        connection.execute(statement)
            version = _version(connection, path)
            if version < 2:
                connection.execute(_FILES)
                for statement in _UPGRADE_2.split(";"):
                    if statement.strip():
                        connection.execute(statement)
            _add_columns(connection)
            connection.execute("COMMIT")
        except BaseException:
            connection.execute("ROLLBACK")
            raise

    @staticmethod
    def _connect_read_only(path: Path) -> tuple[sqlite3.Connection, int]:
        # A reader of a WAL database creates its -wal and -shm side files when they are
        # missing, and leaves them. They are missing when no run has the ledger open (the
        # last one to close removes them): then nothing but the file itself holds data,
        # and "immutable" reads it without creating anything. While a run writes, they
        # exist and are read as SQLite reads them (the run's latest changes are there).
        immutable = not Path(f"{path}-wal").exists()
        uri = f"{path.resolve().as_uri()}?mode=ro" + ("&immutable=1" if immutable else "")
        with _reading_errors(path):
            connection = sqlite3.connect(
                uri, uri=True, check_same_thread=False, timeout=BUSY_TIMEOUT_S
            )
        try:
            with _reading_errors(path):
                kind = _kind(connection)
                version = _version(connection, path) if kind == "ledger" else 0
        except BaseException:
            connection.close()
            raise
        if kind != "ledger":
            connection.close()
            what = "an empty file" if kind == "new" else "another program's database"
            raise LedgerFileError(f"{path} is not a job ledger of sentinel-fetch ({what})")
        return connection, version

    def close(self) -> None:
        """Close the database."""
        with self._lock:
            if self._connection is not None:
                self._connection.close()
                self._connection = None

    def __enter__(self) -> JobLedger:
        return self

    @property
    def _db(self) -> sqlite3.Connection:
        if self._connection is None:
            raise StorageError("the job ledger is closed")
        return self._connection

    @contextmanager
    def _write(self, *, durable: bool = True) -> Iterator[sqlite3.Connection]:
        """One ``BEGIN IMMEDIATE`` transaction under this object's lock.

        IMMEDIATE takes SQLite's write lock at the start, so what the transaction reads
        no other process changes before it commits (a claim's select-then-take), and a
        busy file is waited for (busy timeout) rather than failing mid-transaction.

        ``durable=False`` commits without waiting for the disk (``synchronous=NORMAL``),
        for what only matters while the workers live: leases, slots, heartbeats. In WAL
        mode that is still atomic and survives ``kill -9``; only a power cut can lose
        the last few, and it stops every worker too. A state change (``record``) always
        waits for the disk.
        """
        with self._lock, _storage_errors(self.path):
            db = self._db
            if not durable:
                db.execute("PRAGMA synchronous=NORMAL")
            try:
                db.execute("BEGIN IMMEDIATE")
                try:
                    yield db
                except BaseException:
                    if db.in_transaction:
                        db.execute("ROLLBACK")
                    raise
                db.execute("COMMIT")
            finally:
                if not durable:
                    db.execute("PRAGMA synchronous=FULL")

    def _seconds(self) -> float:
        return float(self._clock())

    def now(self) -> datetime:
        """This machine's clock (or the injected one), UTC."""
        return _aware(self._seconds())

    # -- writing (the engine) ------------------------------------------------------------

    def record(self, product: Any, state: str, *, worker: object = None, **details: object) -> None:
        """Record that ``product`` entered ``state`` (implements the engine's recorder).

        Details understood: ``reason``, ``path``, ``verified_by``, ``bytes_received``,
        ``attempts`` and ``file_name`` (the product's file in the temp and finish folders;
        ``product.file_name`` if not given). A run's result state is recorded as
        :attr:`~sentinel_fetch.progress.ProductState.remembered_as` says: ``downloaded``
        as ``done``, ``stopped`` (the run ended first) as ``queued``, still to do.
        ``worker``: raises RecordRefusedError over another worker's live lease or ``done``
        (see :meth:`Ledger.record`).
        """
        state = stored_state(state)
        now = now_text()
        values = product_values(product, details)
        with self._write() as db:
            row = db.execute(
                "SELECT state, lease_worker, lease_until, worker FROM products WHERE id = ?",
                (values.id,),
            ).fetchone()
            if (
                worker is not None
                and row is not None
                and _refused(row, state, str(worker), self._seconds())
            ):
                raise RecordRefusedError(WorkItem(values.id), state, str(worker))
            if row is None:
                db.execute(
                    "INSERT INTO products(id, name, file_name, size, checksums, state, first_seen,"
                    " updated, product) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (
                        values.id,
                        values.name,
                        values.file_name,
                        values.size,
                        values.checksums,
                        state,
                        now,
                        now,
                        values.product,
                    ),
                )
            elif state == "skipped" and row[0] in ("done", "queued", "downloading"):
                # This job was fetching it: the file reached Finish (verified) and the run
                # ended before recording it, e.g. killed between the move and this write.
                state = "done"
            db.execute(
                "UPDATE products SET state = ?, updated = ?, reason = ?,"
                " bytes_received = bytes_received + ?,"
                " attempts = attempts + ?,"
                " verified_by = COALESCE(?, verified_by), path = COALESCE(?, path),"
                " finished = CASE WHEN ? = 'done' THEN ? ELSE finished END,"
                " product = COALESCE(?, product), size = ?, checksums = ?, file_name = ?,"
                " worker = COALESCE(?, worker)"
                " WHERE id = ?",
                (
                    state,
                    now,
                    values.reason if state in ("failed", "offline") else None,
                    values.bytes_received,
                    values.attempts,
                    values.verified_by,
                    values.path,
                    state,
                    now,
                    values.product,
                    values.size,
                    values.checksums,
                    values.file_name,
                    str(worker) if worker is not None else self.worker,
                    values.id,
                ),
            )
            db.execute(
                "INSERT INTO events(product_id, at, state, detail) VALUES (?, ?, ?, ?)",
                (values.id, now, state, values.reason),
            )

    def record_file(
        self,
        product: Any,
        planned: Any,
        state: str,
        *,
        worker: object = None,
        **details: object,
    ) -> None:
        """Record that one file of ``product`` (a planned file: ``path``, ``size``,
        ``checksum``) entered ``state`` (``downloading``, ``done``, ``failed``).

        Details understood: ``reason``, ``verified_by``, ``bytes_received``, ``attempts``.
        ``worker``: as :meth:`record`, for the file's row.
        """
        if state not in STATES:
            raise ValueError(f"unknown ledger state {state!r}")
        values = file_values(planned, details)
        with self._write() as db:
            if worker is not None:
                row = db.execute(
                    "SELECT state, lease_worker, lease_until, worker FROM files"
                    " WHERE product_id = ? AND path = ?",
                    (str(product.id), values.path),
                ).fetchone()
                if row is not None and _refused(row, state, str(worker), self._seconds()):
                    raise RecordRefusedError(
                        WorkItem(str(product.id), values.path), state, str(worker)
                    )
            db.execute(
                "INSERT INTO files(product_id, path, size, checksum, state, reason,"
                " bytes_received, attempts, verified_by, updated, worker)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
                " ON CONFLICT(product_id, path) DO UPDATE SET size = excluded.size,"
                " checksum = excluded.checksum, state = excluded.state,"
                " reason = excluded.reason,"
                " bytes_received = files.bytes_received + excluded.bytes_received,"
                " attempts = files.attempts + excluded.attempts,"
                " verified_by = COALESCE(excluded.verified_by, files.verified_by),"
                " updated = excluded.updated, worker = COALESCE(excluded.worker, files.worker)",
                (
                    str(product.id),
                    values.path,
                    values.size,
                    values.checksum,
                    state,
                    values.reason,
                    values.bytes_received,
                    values.attempts,
                    values.verified_by,
                    now_text(),
                    str(worker) if worker is not None else self.worker,
                ),
            )

    def files(self, product_id: str | None = None) -> list[dict[str, Any]]:
        """Rows of the per-file table (all products, or one), oldest first."""
        with self._lock, _reading_errors(self.path):
            db = self._db
            tables = {row[0] for row in db.execute("SELECT name FROM sqlite_master")}
            if "files" not in tables:
                return []
            cursor = db.execute(
                f"SELECT {', '.join(FILE_COLUMNS)} FROM files"  # noqa: S608 - constant names
                " WHERE ? IS NULL OR product_id = ? ORDER BY rowid",
                (product_id, product_id),
            )
            return [dict(zip(FILE_COLUMNS, row, strict=True)) for row in cursor.fetchall()]

    # -- reading (status, verify, retry-failed) ------------------------------------------

    def summary(self, *, quotas: Mapping[str, int] | None = None) -> LedgerSummary:
        """Counts by state, bytes, failures with reasons, offline products, workers and
        accounts (see :meth:`Ledger.summary`)."""
        with self._lock, _reading_errors(self.path):
            db = self._db
            counts = dict.fromkeys(STATES, 0)
            for state, number in db.execute("SELECT state, COUNT(*) FROM products GROUP BY state"):
                counts[state] = number
            total_products, total_bytes, done_bytes, received = db.execute(
                "SELECT COUNT(*), COALESCE(SUM(size), 0),"
                " COALESCE(SUM(CASE WHEN state IN ('done', 'skipped') THEN size ELSE 0 END), 0),"
                " COALESCE(SUM(bytes_received), 0) FROM products"
            ).fetchone()
            failed = [
                FailedProduct(*row)
                for row in db.execute(
                    "SELECT id, name, COALESCE(reason, ''), attempts, updated FROM products"
                    " WHERE state = 'failed' ORDER BY name"
                )
            ]
            offline = [
                row[0]
                for row in db.execute(
                    "SELECT name FROM products WHERE state = 'offline' ORDER BY name"
                )
            ]
            workers = self.workers()
            accounts = self._accounts(workers, quotas)
        return LedgerSummary(
            counts,
            total_products,
            total_bytes,
            done_bytes,
            received,
            failed,
            offline,
            workers,
            accounts,
        )

    def entries(self, states: Iterable[str] | None = None) -> list[dict[str, Any]]:
        """Ledger rows (as dicts), optionally only those in ``states``."""
        query = f"SELECT {', '.join(PRODUCT_COLUMNS)} FROM products"  # noqa: S608 - constant
        params: tuple[str, ...] = ()
        if states is not None:
            wanted = tuple(states)
            query += f" WHERE state IN ({', '.join('?' for _ in wanted)})"
            params = wanted
        with self._lock, _reading_errors(self.path):
            cursor = self._db.execute(query + " ORDER BY name", params)
            return [dict(zip(PRODUCT_COLUMNS, row, strict=True)) for row in cursor]

    def file_names(self) -> dict[str, str]:
        """``product id -> file name`` of every product this job has met."""
        with self._lock, _reading_errors(self.path):
            return dict(self._db.execute("SELECT id, file_name FROM products"))

    # -- the batch and claims ------------------------------------------------------------

    def enqueue(
        self,
        products: Iterable[Any],
        *,
        files: Mapping[str, Sequence[Any]] | None = None,
        retry: bool = True,
    ) -> int:
        """Add a batch, idempotently (see :meth:`Ledger.enqueue`).

        Written in transactions of a few hundred products, so a batch of tens of
        thousands never holds the write lock for long.
        """
        files = files or {}
        changed = 0
        batch: list[Any] = []
        for product in products:
            batch.append(product)
            if len(batch) >= 500:
                changed += self._enqueue(batch, files, retry)
                batch = []
        if batch:
            changed += self._enqueue(batch, files, retry)
        return changed

    def _enqueue(self, products: list[Any], files: Mapping[str, Sequence[Any]], retry: bool) -> int:
        now = now_text()
        changed = 0
        with self._write() as db:
            for product in products:
                values = product_values(product)
                cursor = db.execute(
                    "INSERT INTO products(id, name, file_name, size, checksums, state,"
                    " first_seen, updated, product) VALUES (?, ?, ?, ?, ?, 'queued', ?, ?, ?)"
                    " ON CONFLICT(id) DO NOTHING",
                    (
                        values.id,
                        values.name,
                        values.file_name,
                        values.size,
                        values.checksums,
                        now,
                        now,
                        values.product,
                    ),
                )
                added = cursor.rowcount > 0
                if not added and retry:
                    cursor = db.execute(
                        "UPDATE products SET state = 'queued', reason = NULL, updated = ?"
                        " WHERE id = ? AND state IN ('failed', 'offline')",
                        (now, values.id),
                    )
                if cursor.rowcount > 0:
                    changed += 1
                    db.execute(
                        "INSERT INTO events(product_id, at, state, detail)"
                        " VALUES (?, ?, 'queued', NULL)",
                        (values.id, now),
                    )
                for planned in files.get(values.id, ()):
                    file = file_values(planned)
                    db.execute(
                        "INSERT INTO files(product_id, path, size, checksum, state, updated)"
                        " VALUES (?, ?, ?, ?, 'queued', ?) ON CONFLICT(product_id, path)"
                        " DO NOTHING",
                        (values.id, file.path, file.size, file.checksum, now),
                    )
                    if retry:
                        db.execute(
                            "UPDATE files SET state = 'queued', reason = NULL, updated = ?"
                            " WHERE product_id = ? AND path = ? AND state = 'failed'",
                            (now, values.id, file.path),
                        )
        return changed

    def claim_next(
        self, worker: str, lease_s: float, *, among: Collection[str] | None = None
    ) -> Claim | None:
        """Lease the next claimable product (see :meth:`Ledger.claim_next`)."""
        # One walk per state along products_state, whose entries of one state are in
        # rowid (enqueue) order: the first claimable row ends it, with no sort of all
        # the open rows (and only open rows are read, however many are done).
        query = (
            "SELECT rowid, id, lease_worker, product, file_name FROM products"
            " INDEXED BY products_state WHERE state = ?"
            " AND (lease_until IS NULL OR lease_until <= ?)"
        )
        if among is not None:
            query += " AND id IN (SELECT id FROM temp.among_ids)"
        query += " ORDER BY rowid LIMIT 1"
        with self._lock:
            if among is not None:
                self._load_among(among)
            with self._write(durable=False) as db:
                now = self._seconds()
                found = [
                    db.execute(query, (state, now)).fetchone()
                    for state in ("queued", "downloading")
                ]
                first = min((row for row in found if row is not None), default=None)
                row = None if first is None else first[1:]
                if row is None:
                    return None
                until = now + max(lease_s, 0.0)
                db.execute(
                    "UPDATE products SET lease_worker = ?, lease_until = ? WHERE id = ?",
                    (worker, until, row[0]),
                )
        return Claim(
            item=WorkItem(row[0]),
            worker=worker,
            lease_until=_aware(until),
            taken_over=row[1] is not None,
            previous_worker=row[1],
            product=catalogue_entry(row[2]),
            file_name=row[3],
        )

    def claim_next_file(
        self, worker: str, lease_s: float, *, product_id: str | None = None
    ) -> Claim | None:
        """Lease the next claimable file (see :meth:`Ledger.claim_next_file`)."""
        with self._write(durable=False) as db:
            now = self._seconds()
            row = db.execute(
                "SELECT files.product_id, files.path, files.lease_worker, products.product,"
                " products.file_name FROM files"
                " LEFT JOIN products ON products.id = files.product_id"
                " WHERE files.state IN ('queued', 'downloading')"
                " AND (files.lease_until IS NULL OR files.lease_until <= ?)"
                " AND (? IS NULL OR files.product_id = ?) ORDER BY files.rowid LIMIT 1",
                (now, product_id, product_id),
            ).fetchone()
            if row is None:
                return None
            until = now + max(lease_s, 0.0)
            db.execute(
                "UPDATE files SET lease_worker = ?, lease_until = ?"
                " WHERE product_id = ? AND path = ?",
                (worker, until, row[0], row[1]),
            )
        return Claim(
            item=WorkItem(row[0], row[1]),
            worker=worker,
            lease_until=_aware(until),
            taken_over=row[2] is not None,
            previous_worker=row[2],
            product=catalogue_entry(row[3]),
            file_name=row[4] or "",
        )

    def renew(
        self,
        worker: str,
        lease_s: float,
        *,
        held: Collection[WorkItem] = (),
        slots: Collection[tuple[str, int]] = (),
    ) -> Renewal:
        """Extend the leases and slots of ``worker`` named in ``held`` and ``slots``; drop
        the worker's others (see :meth:`Ledger.renew`).

        A lease or slot the worker no longer tracks (its release failed: a busy file, a
        crash between the record and the release) must not live on by its heartbeat:
        it would hold an account's stream and keep the batch from ending.
        """
        wanted = {WorkItem(item.product_id, item.path) for item in held}
        wanted_slots = {(str(slot[0]), int(slot[1])) for slot in slots}
        with self._write(durable=False) as db:
            now = self._seconds()
            until = now + max(lease_s, 0.0)
            mine = {
                WorkItem(row[0])
                for row in db.execute("SELECT id FROM products WHERE lease_worker = ?", (worker,))
            }
            mine.update(
                WorkItem(row[0], row[1])
                for row in db.execute(
                    "SELECT product_id, path FROM files WHERE lease_worker = ?", (worker,)
                )
            )
            my_slots = {
                (row[0], int(row[1]))
                for row in db.execute(
                    "SELECT account, number FROM slots WHERE worker = ?", (worker,)
                )
            }
            for item in mine:
                if item.path:
                    db.execute(
                        "UPDATE files SET lease_until = ?, lease_worker = ?"
                        " WHERE product_id = ? AND path = ? AND lease_worker = ?",
                        (
                            until if item in wanted else None,
                            worker if item in wanted else None,
                            item.product_id,
                            item.path,
                            worker,
                        ),
                    )
                else:
                    db.execute(
                        "UPDATE products SET lease_until = ?, lease_worker = ?"
                        " WHERE id = ? AND lease_worker = ?",
                        (
                            until if item in wanted else None,
                            worker if item in wanted else None,
                            item.product_id,
                            worker,
                        ),
                    )
            for account, number in my_slots:
                if (account, number) in wanted_slots:
                    db.execute(
                        "UPDATE slots SET lease_until = ? WHERE account = ? AND number = ?"
                        " AND worker = ?",
                        (until, account, number, worker),
                    )
                else:
                    db.execute(
                        "DELETE FROM slots WHERE account = ? AND number = ? AND worker = ?",
                        (account, number, worker),
                    )
            db.execute("UPDATE workers SET last_seen = ? WHERE id = ?", (now, worker))
        return Renewal(
            lost=frozenset((wanted - mine) | (mine - wanted)),
            lost_slots=frozenset((wanted_slots - my_slots) | (my_slots - wanted_slots)),
            lease_until=_aware(until),
        )

    def release(self, worker: str, item: WorkItem) -> bool:
        """Drop ``worker``'s lease on ``item`` (see :meth:`Ledger.release`)."""
        with self._write(durable=False) as db:
            if item.path:
                cursor = db.execute(
                    "UPDATE files SET lease_worker = NULL, lease_until = NULL"
                    " WHERE product_id = ? AND path = ? AND lease_worker = ?",
                    (item.product_id, item.path, worker),
                )
            else:
                cursor = db.execute(
                    "UPDATE products SET lease_worker = NULL, lease_until = NULL"
                    " WHERE id = ? AND lease_worker = ?",
                    (item.product_id, worker),
                )
            return cursor.rowcount > 0

    def holds(self, worker: str, item: WorkItem) -> bool:
        """Whether ``worker`` holds a live lease on ``item``."""
        with self._lock, _reading_errors(self.path):
            now = self._seconds()
            if item.path:
                row = self._db.execute(
                    "SELECT 1 FROM files WHERE product_id = ? AND path = ? AND lease_worker = ?"
                    " AND lease_until > ?",
                    (item.product_id, item.path, worker, now),
                ).fetchone()
            else:
                row = self._db.execute(
                    "SELECT 1 FROM products WHERE id = ? AND lease_worker = ? AND lease_until > ?",
                    (item.product_id, worker, now),
                ).fetchone()
        return row is not None

    def pending(self, *, among: Collection[str] | None = None) -> int:
        """Products still to do: ``queued`` or ``downloading``, leased or not."""
        query = "SELECT COUNT(*) FROM products WHERE state IN ('queued', 'downloading')"
        if among is not None:
            # Walk the open products (index only), not the ids asked about.
            query = (
                "SELECT COUNT(*) FROM products INDEXED BY products_state_id"
                " WHERE state IN ('queued', 'downloading')"
                " AND +id IN (SELECT id FROM temp.among_ids)"  # a filter, not a seek
            )
        with self._lock:
            if among is not None:
                self._load_among(among)
            with _reading_errors(self.path):
                return int(self._db.execute(query).fetchone()[0])

    def _load_among(self, among: Collection[str]) -> None:
        """Put ``among`` in this connection's TEMP table ``among_ids``, unless already there.

        A worker passes the same few ten thousand ids to every claim: read from a JSON
        list each time they cost a parse and a sort per claim (~10-30 ms with the write
        lock held); kept in a TEMP table (this connection's own, outside the shared file,
        written without the file's lock) a claim is a few index look-ups.
        """
        if among is self._among_given and isinstance(among, (frozenset, tuple)):
            return  # the same immutable collection as last time: nothing to compare
        key = frozenset(str(value) for value in among)
        if key == self._among:
            self._among_given = among
            return
        with _storage_errors(self.path):
            db = self._db
            db.execute(
                "CREATE TEMP TABLE IF NOT EXISTS among_ids (id TEXT PRIMARY KEY) WITHOUT ROWID"
            )
            db.execute("BEGIN")
            try:
                db.execute("DELETE FROM temp.among_ids")
                db.executemany("INSERT INTO temp.among_ids(id) VALUES (?)", ((v,) for v in key))
                db.execute("COMMIT")
            except BaseException:
                db.execute("ROLLBACK")
                self._among = self._among_given = None
                raise
        self._among = key
        self._among_given = among

    def requeue(self, items: Iterable[WorkItem]) -> int:
        """Return items to ``queued`` unless a live lease holds them."""
        changed = 0
        stamp = now_text()
        with self._write() as db:
            now = self._seconds()
            for item in items:
                if item.path:
                    cursor = db.execute(
                        "UPDATE files SET state = 'queued', reason = NULL, updated = ?"
                        " WHERE product_id = ? AND path = ?"
                        " AND (lease_until IS NULL OR lease_until <= ?)",
                        (stamp, item.product_id, item.path, now),
                    )
                else:
                    cursor = db.execute(
                        "UPDATE products SET state = 'queued', reason = NULL, updated = ?"
                        " WHERE id = ? AND (lease_until IS NULL OR lease_until <= ?)",
                        (stamp, item.product_id, now),
                    )
                changed += cursor.rowcount
        return changed

    # -- workers ---------------------------------------------------------------------------

    def register_worker(
        self,
        worker: str,
        *,
        account: str,
        save_path: str,
        host: str | None = None,
        pid: int | None = None,
    ) -> None:
        """Say that ``worker`` starts working on the job (see :meth:`Ledger.register_worker`)."""
        with self._write() as db:
            now = self._seconds()
            db.execute(
                "INSERT INTO workers(id, host, pid, account, save_path, started, last_seen)"
                " VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT(id) DO UPDATE SET"
                " host = excluded.host, pid = excluded.pid, account = excluded.account,"
                " save_path = excluded.save_path, last_seen = excluded.last_seen,"
                " finished = NULL",
                (
                    worker,
                    host if host is not None else socket.gethostname(),
                    pid if pid is not None else os.getpid(),
                    account,
                    str(save_path),
                    now,
                    now,
                ),
            )
        self.worker = worker

    def heartbeat(self, worker: str) -> None:
        """Note that ``worker`` is alive."""
        with self._write(durable=False) as db:
            db.execute("UPDATE workers SET last_seen = ? WHERE id = ?", (self._seconds(), worker))

    def finish_worker(self, worker: str) -> None:
        """Mark ``worker`` finished; drop its leases and slots."""
        with self._write() as db:
            now = self._seconds()
            db.execute(
                "UPDATE workers SET finished = ?, last_seen = ? WHERE id = ?", (now, now, worker)
            )
            db.execute(
                "UPDATE products SET lease_worker = NULL, lease_until = NULL"
                " WHERE lease_worker = ?",
                (worker,),
            )
            db.execute(
                "UPDATE files SET lease_worker = NULL, lease_until = NULL WHERE lease_worker = ?",
                (worker,),
            )
            db.execute("DELETE FROM slots WHERE worker = ?", (worker,))

    def workers(self) -> list[WorkerStatus]:
        """Every registered worker with its figures, oldest first."""
        if self._version < 2:
            return []
        with self._lock, _reading_errors(self.path):
            db = self._db
            now = self._seconds()
            counts: dict[str, dict[str, int]] = {}
            for table, who in (("products", "worker"), ("files", "worker")):
                for name, done, failed in db.execute(
                    f"SELECT {who}, SUM(state = 'done'), SUM(state = 'failed') FROM {table}"  # noqa: S608
                    f" WHERE {who} IS NOT NULL GROUP BY {who}"
                ):
                    figures = counts.setdefault(name, {"done": 0, "failed": 0, "running": 0})
                    figures["done"] += int(done or 0)
                    figures["failed"] += int(failed or 0)
            for table in ("products", "files"):
                for name, running in db.execute(
                    f"SELECT lease_worker, COUNT(*) FROM {table}"  # noqa: S608 - constant names
                    " WHERE lease_worker IS NOT NULL AND lease_until > ? GROUP BY lease_worker",
                    (now,),
                ):
                    figures = counts.setdefault(name, {"done": 0, "failed": 0, "running": 0})
                    figures["running"] += int(running)
            received = dict(
                db.execute("SELECT worker, COALESCE(SUM(bytes), 0) FROM meter GROUP BY worker")
            )
            rows = db.execute(
                "SELECT id, host, pid, account, save_path, started, last_seen, finished"
                " FROM workers ORDER BY started, id"
            ).fetchall()
        statuses = []
        for row in rows:
            figures = counts.get(row[0], {"done": 0, "failed": 0, "running": 0})
            statuses.append(
                worker_status(
                    {
                        "id": row[0],
                        "host": row[1],
                        "pid": row[2],
                        "account": row[3],
                        "save_path": row[4],
                        "started": _aware(row[5]),
                        "last_seen": _aware(row[6]),
                        "finished": None if row[7] is None else _aware(row[7]),
                    },
                    now=_aware(now),
                    done=figures["done"],
                    running=figures["running"],
                    failed=figures["failed"],
                    received=int(received.get(row[0], 0)),
                )
            )
        return statuses

    def accounts(self, *, quotas: Mapping[str, int] | None = None) -> list[AccountStatus]:
        """Per account: its workers' figures and its quota meter."""
        return self._accounts(self.workers(), quotas)

    def _accounts(
        self, workers: list[WorkerStatus], quotas: Mapping[str, int] | None
    ) -> list[AccountStatus]:
        if self._version < 2:
            return []
        since = math.floor((self._seconds() - 30 * 86400) / 60)
        with self._lock, _reading_errors(self.path):
            used = dict(
                self._db.execute(
                    "SELECT account, SUM(bytes) FROM meter WHERE minute >= ? GROUP BY account",
                    (since,),
                )
            )
        return account_statuses(workers, used, quotas)

    # -- connection slots -----------------------------------------------------------------

    def take_slot(self, account: str, worker: str, limit: int, lease_s: float) -> Slot | None:
        """Lease one of ``account``'s slots if fewer than ``limit`` are live."""
        with self._write(durable=False) as db:
            now = self._seconds()
            live = {
                row[0]
                for row in db.execute(
                    "SELECT number FROM slots WHERE account = ? AND lease_until > ?",
                    (account, now),
                )
            }
            if len(live) >= limit:
                return None
            number = next(n for n in range(len(live) + 1) if n not in live)
            until = now + max(lease_s, 0.0)
            token = uuid.uuid4().hex
            db.execute(
                "INSERT OR REPLACE INTO slots(account, number, worker, lease_until, token)"
                " VALUES (?, ?, ?, ?, ?)",
                (account, number, worker, until, token),
            )
        return Slot(account, number, worker, _aware(until), token)

    def return_slot(self, slot: Slot) -> None:
        """Give this slot back (its token: not a later taking of the same number)."""
        with self._write(durable=False) as db:
            db.execute(
                "DELETE FROM slots WHERE account = ? AND number = ? AND worker = ?"
                " AND (? = '' OR token = ?)",
                (slot.account, slot.number, slot.worker, slot.token, slot.token),
            )

    # -- the quota meter ------------------------------------------------------------------

    def add_bytes(self, account: str, n: int, *, worker: str | None = None) -> None:
        """Add ``n`` bytes to ``account``'s meter, in this minute's bucket."""
        if n <= 0:
            return
        who = worker if worker is not None else (self.worker or "")
        with self._write() as db:
            minute = math.floor(self._seconds() / 60)
            db.execute(
                "INSERT INTO meter(account, worker, minute, bytes) VALUES (?, ?, ?, ?)"
                " ON CONFLICT(account, worker, minute)"
                " DO UPDATE SET bytes = bytes + excluded.bytes",
                (account, who, minute, int(n)),
            )

    def bytes_since(self, account: str, since: datetime) -> int:
        """Bytes ``account`` downloaded since ``since`` (its minute included)."""
        if self._version < 2:
            return 0
        minute = math.floor(since.timestamp() / 60)
        with self._lock, _reading_errors(self.path):
            row = self._db.execute(
                "SELECT COALESCE(SUM(bytes), 0) FROM meter WHERE account = ? AND minute >= ?",
                (account, minute),
            ).fetchone()
        return int(row[0])
