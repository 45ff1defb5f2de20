"""The job ledger: an SQLite record of every product of a batch, in the save folder.

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
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from sentinel_fetch.downloads.paths import make_folder
from sentinel_fetch.errors import LedgerFileError, StorageError
from sentinel_fetch.ledger.base import FailedProduct, LedgerSummary, StoredProduct
from sentinel_fetch.progress import LEDGER_STATES, ProductState
from sentinel_fetch.redact import redact
from sentinel_fetch.untrusted import parse_json

__all__ = [
    "LEDGER_FILE_NAME",
    "STATES",
    "FailedProduct",
    "JobLedger",
    "LedgerSummary",
    "StoredProduct",
]

LEDGER_FILE_NAME = "sentinel-fetch-ledger.sqlite"

#: Every state the ledger records (``verifying`` was listed once but never written).
STATES = tuple(state.value for state in LEDGER_STATES)

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
# Single files of products (bands...): one row per file, added to older ledgers on use.
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
# In one transaction, so that a kill -9 while creating leaves either nothing or a whole
# ledger (a file with tables but no schema row would look like another program's).
_CREATE = "BEGIN IMMEDIATE;" + _SCHEMA + "COMMIT;"


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


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


class JobLedger:
    """The ledger of one save folder. Thread-safe; one connection, one lock.

    Use :meth:`open`; the constructor does no I/O.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self._connection: sqlite3.Connection | None = None
        self._lock = threading.Lock()

    @classmethod
    def open(cls, save_path: Path, *, create: bool = True, read_only: bool = False) -> JobLedger:
        """Open (or create) the ledger of ``save_path``.

        Args:
            save_path: the job's save folder.
            create: create the folder and the ledger if missing.
            read_only: open with SQLite's ``mode=ro`` (``status``): nothing is created or
                changed, the file's journal mode included; implies ``create=False``.
                Reading works while a run writes (WAL).

        Raises:
            LedgerFileError: there is no ledger and ``create`` is false or ``read_only``
                true; or the file is not a sentinel-fetch ledger (another program's
                SQLite database, a file that is not SQLite at all; a zero-length file
                too when ``read_only``). Nothing was written.
            ConfigError: ``save_path``, or a folder above it, is a file.
            StorageError: the folder or the file cannot be created.
        """
        ledger = cls(save_path / LEDGER_FILE_NAME)
        path = ledger.path
        if read_only or not create:
            if not path.exists():
                raise LedgerFileError(
                    f"no download job in {save_path} (no {LEDGER_FILE_NAME} there)"
                )
            if not path.is_file():
                raise LedgerFileError(f"{path} is not a job ledger: it is not a file")
        if read_only:
            ledger._connection = cls._connect_read_only(path)
            return ledger
        make_folder(save_path)
        try:
            connection = sqlite3.connect(path, check_same_thread=False, timeout=30)
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
            with _storage_errors(path):
                connection.execute("PRAGMA journal_mode=WAL")
                # FULL: a state change reported as written survives power loss too.
                connection.execute("PRAGMA synchronous=FULL")
                if kind == "new":
                    connection.executescript(_CREATE)
        except BaseException:
            connection.close()
            raise
        ledger._connection = connection
        return ledger

    @staticmethod
    def _connect_read_only(path: Path) -> sqlite3.Connection:
        # A reader of a WAL database creates its -wal and -shm side files when they are
        # missing, and leaves them. They are missing when no run has the ledger open (the
        # last one to close removes them): then nothing but the file itself holds data,
        # and "immutable" reads it without creating anything. While a run writes, they
        # exist and are read as SQLite reads them (the run's latest changes are there).
        immutable = not Path(f"{path}-wal").exists()
        uri = f"{path.resolve().as_uri()}?mode=ro" + ("&immutable=1" if immutable else "")
        with _reading_errors(path):
            connection = sqlite3.connect(uri, uri=True, check_same_thread=False, timeout=30)
        try:
            with _reading_errors(path):
                kind = _kind(connection)
        except BaseException:
            connection.close()
            raise
        if kind != "ledger":
            connection.close()
            what = "an empty file" if kind == "new" else "another program's database"
            raise LedgerFileError(f"{path} is not a job ledger of sentinel-fetch ({what})")
        return connection

    def close(self) -> None:
        """Close the database."""
        with self._lock:
            if self._connection is not None:
                self._connection.close()
                self._connection = None

    def __enter__(self) -> JobLedger:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    @property
    def _db(self) -> sqlite3.Connection:
        if self._connection is None:
            raise StorageError("the job ledger is closed")
        return self._connection

    # -- writing (the engine) ------------------------------------------------------------

    def record(self, product: Any, state: str, **details: object) -> None:
        """Record that ``product`` entered ``state`` (implements the engine's recorder).

        Details understood: ``reason``, ``path``, ``verified_by``, ``bytes_received``,
        ``attempts`` and ``file_name`` (the product's file in the temp and finish folders;
        ``product.file_name`` if not given). A run's result state is recorded as
        :attr:`~sentinel_fetch.progress.ProductState.remembered_as` says: ``downloaded``
        as ``done``, ``stopped`` (the run ended first) as ``queued``, still to do.
        """
        if state in ProductState._value2member_map_:
            state = ProductState(state).remembered_as.value
        if state not in STATES:
            raise ValueError(f"unknown ledger state {state!r}")
        now = _now()
        to_dict = getattr(product, "to_dict", None)
        product_json = json.dumps(to_dict(), default=str) if callable(to_dict) else None
        checksums = json.dumps(dict(getattr(product, "checksums", {}) or {}))
        # Reasons quote servers; whatever reaches the file is masked, whoever wrote it.
        reason = redact(str(details["reason"])) if details.get("reason") else None
        file_name = str(details.get("file_name") or product.file_name)
        received = int(details.get("bytes_received", 0) or 0)  # type: ignore[call-overload]
        with self._lock, _storage_errors(self.path):
            db = self._db
            row = db.execute("SELECT state FROM products WHERE id = ?", (product.id,)).fetchone()
            if row is None:
                db.execute(
                    "INSERT INTO products(id, name, file_name, size, checksums, state, first_seen,"
                    " updated, product) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (
                        product.id,
                        product.name,
                        file_name,
                        int(product.size or 0),
                        checksums,
                        state,
                        now,
                        now,
                        product_json,
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
                " product = COALESCE(?, product), size = ?, checksums = ?, file_name = ?"
                " WHERE id = ?",
                (
                    state,
                    now,
                    reason if state in ("failed", "offline") else None,
                    received,
                    int(details.get("attempts", 0) or 0),  # type: ignore[call-overload]
                    details.get("verified_by"),
                    details.get("path"),
                    state,
                    now,
                    product_json,
                    int(product.size or 0),
                    checksums,
                    file_name,
                    product.id,
                ),
            )
            db.execute(
                "INSERT INTO events(product_id, at, state, detail) VALUES (?, ?, ?, ?)",
                (product.id, now, state, reason),
            )
            db.commit()

    def record_file(self, product: Any, planned: Any, state: str, **details: object) -> None:
        """Record that one file of ``product`` (a planned file: ``path``, ``size``,
        ``checksum``) entered ``state`` (``downloading``, ``done``, ``failed``).

        Details understood: ``reason``, ``verified_by``, ``bytes_received``, ``attempts``.
        """
        if state not in STATES:
            raise ValueError(f"unknown ledger state {state!r}")
        reason = redact(str(details["reason"])) if details.get("reason") else None
        checksum = getattr(planned, "checksum", None)
        described = f"{checksum.algorithm}:{checksum.digest}" if checksum is not None else None
        received = int(details.get("bytes_received", 0) or 0)  # type: ignore[call-overload]
        attempts = int(details.get("attempts", 0) or 0)  # type: ignore[call-overload]
        with self._lock, _storage_errors(self.path):
            db = self._db
            db.execute(_FILES)
            db.execute(
                "INSERT INTO files(product_id, path, size, checksum, state, reason,"
                " bytes_received, attempts, verified_by, updated)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
                " ON CONFLICT(product_id, path) DO UPDATE SET size = excluded.size,"
                " checksum = excluded.checksum, state = excluded.state,"
                " reason = excluded.reason,"
                " bytes_received = files.bytes_received + excluded.bytes_received,"
                " attempts = files.attempts + excluded.attempts,"
                " verified_by = COALESCE(excluded.verified_by, files.verified_by),"
                " updated = excluded.updated",
                (
                    product.id,
                    planned.path,
                    planned.size,
                    described,
                    state,
                    reason,
                    received,
                    attempts,
                    details.get("verified_by"),
                    _now(),
                ),
            )
            db.commit()

    def files(self, product_id: str | None = None) -> list[dict[str, Any]]:
        """Rows of the per-file table (all products, or one), oldest first."""
        with _reading_errors(self.path):
            db = self._db
            tables = {row[0] for row in db.execute("SELECT name FROM sqlite_master")}
            if "files" not in tables:
                return []
            cursor = db.execute(
                "SELECT * FROM files WHERE ? IS NULL OR product_id = ? ORDER BY rowid",
                (product_id, product_id),
            )
            names = [column[0] for column in cursor.description]
            return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]

    # -- reading (status, verify, retry-failed) ------------------------------------------

    def summary(self) -> LedgerSummary:
        """Counts by state, bytes, failures with reasons, offline products."""
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
        return LedgerSummary(
            counts, total_products, total_bytes, done_bytes, received, failed, offline
        )

    def entries(self, states: Iterable[str] | None = None) -> list[dict[str, Any]]:
        """Ledger rows (as dicts), optionally only those in ``states``."""
        query = "SELECT * FROM products"
        params: tuple[str, ...] = ()
        if states is not None:
            wanted = tuple(states)
            query += f" WHERE state IN ({', '.join('?' for _ in wanted)})"
            params = wanted
        with self._lock, _reading_errors(self.path):
            cursor = self._db.execute(query + " ORDER BY name", params)
            names = [column[0] for column in cursor.description]
            return [dict(zip(names, row, strict=True)) for row in cursor]

    def file_names(self) -> dict[str, str]:
        """``product id -> file name`` of every product this job has met."""
        with self._lock, _reading_errors(self.path):
            return dict(self._db.execute("SELECT id, file_name FROM products"))

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
        try:
            # Deep nesting here is damage too, not a RecursionError.
            return parse_json(row[column])
        except (TypeError, ValueError):
            raise self._damaged(row, column) from None

    def _damaged(self, row: Mapping[str, Any], what: str) -> LedgerFileError:
        return LedgerFileError(
            f"the job ledger {self.path} holds a damaged {what} for product {row['id']}"
            f" ({str(row['name'])[:80]}): it was changed by something other than sentinel-fetch"
        )
