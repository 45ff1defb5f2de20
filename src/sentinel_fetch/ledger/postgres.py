"""The job ledger in PostgreSQL: one job shared by workers on many machines.

``--ledger postgresql://user@host/db`` puts the job in a database (one job per database,
or per schema: ``?options=-csearch_path%3Dmyjob``). The tables mirror the SQLite ledger's
(:mod:`~sentinel_fetch.ledger.sqlite`), with the same meaning; what differs is how
workers are kept apart:

* A claim is one ``UPDATE`` of a row picked by ``SELECT ... FOR UPDATE SKIP LOCKED``:
  concurrent claimers skip each other's rows instead of waiting, and a row a claim has
  just taken is re-checked by PostgreSQL before another claim may take it.
* Lease times come from the server's clock (``now()``), never the workers': machines
  whose clocks disagree still agree on when a lease expired.
* Connection slots of an account are taken under a lock of the account's row, so the
  count of live slots and the new slot are one step.
* The schema is created once under an advisory lock, however many workers start at
  once; a ``meta`` row holds its version.

psycopg 3 (the ``postgresql`` extra). One connection per ledger object (a worker
process), opened with a bounded connect timeout and TCP keepalives. A connection that
drops is reopened, a bounded number of times, and the transaction it lost is run again
(it was rolled back by the server; a commit whose answer was lost may count a few bytes
twice on the quota meter, which errs on the safe side). After that the run gets a
:class:`~sentinel_fetch.errors.StorageError`.
"""

from __future__ import annotations

import os
import socket
import threading
import time
import uuid
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any, TypeVar

from sentinel_fetch.errors import LedgerFileError, LedgerLocationError, StorageError
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
from sentinel_fetch.redact import MASK, redact, redact_url, register_secret, url_passwords

if TYPE_CHECKING:
    import psycopg

__all__ = [
    "CONNECT_TIMEOUT_S",
    "RECONNECTS",
    "SCHEMES",
    "PostgresLedger",
    "check_ledger_url",
    "is_postgres_url",
]

#: URL schemes that name a PostgreSQL ledger (libpq's two spellings).
SCHEMES = ("postgresql", "postgres")
#: Seconds to wait for the server when connecting (libpq's ``connect_timeout``).
CONNECT_TIMEOUT_S = 10
#: Times a lost connection is reopened for one operation before the run is told.
RECONNECTS = 3
#: Longest any statement may run or wait for a lock: a stuck server becomes an error.
STATEMENT_TIMEOUT_MS = 60_000

# The advisory lock under which the schema is created (any constant; "sf-ledger").
_SCHEMA_LOCK = 0x73662D6C6564676572 % (2**63)

_SCHEMA = [
    "CREATE TABLE IF NOT EXISTS meta (key text PRIMARY KEY, value text NOT NULL)",
    """CREATE TABLE IF NOT EXISTS products (
        seq            bigserial,
        id             text PRIMARY KEY,
        name           text NOT NULL,
        file_name      text NOT NULL,
        size           bigint NOT NULL DEFAULT 0,
        checksums      text NOT NULL DEFAULT '{}',
        state          text NOT NULL,
        reason         text,
        bytes_received bigint NOT NULL DEFAULT 0,
        attempts       integer NOT NULL DEFAULT 0,
        verified_by    text,
        path           text,
        first_seen     text NOT NULL,
        updated        text NOT NULL,
        finished       text,
        product        text,
        worker         text,
        lease_worker   text,
        lease_until    timestamptz
    )""",
    "CREATE INDEX IF NOT EXISTS products_state ON products(state)",
    "CREATE INDEX IF NOT EXISTS products_seq ON products(seq)",
    "CREATE INDEX IF NOT EXISTS products_lease ON products(lease_worker)",
    """CREATE TABLE IF NOT EXISTS events (
        product_id text NOT NULL,
        at         text NOT NULL,
        state      text NOT NULL,
        detail     text
    )""",
    """CREATE TABLE IF NOT EXISTS files (
        seq            bigserial,
        product_id     text NOT NULL,
        path           text NOT NULL,
        size           bigint,
        checksum       text,
        state          text NOT NULL,
        reason         text,
        bytes_received bigint NOT NULL DEFAULT 0,
        attempts       integer NOT NULL DEFAULT 0,
        verified_by    text,
        updated        text NOT NULL,
        worker         text,
        lease_worker   text,
        lease_until    timestamptz,
        PRIMARY KEY (product_id, path)
    )""",
    "CREATE INDEX IF NOT EXISTS files_state ON files(state)",
    """CREATE TABLE IF NOT EXISTS workers (
        id        text PRIMARY KEY,
        host      text NOT NULL,
        pid       integer NOT NULL,
        account   text NOT NULL,
        save_path text NOT NULL,
        started   timestamptz NOT NULL,
        last_seen timestamptz NOT NULL,
        finished  timestamptz
    )""",
    "CREATE TABLE IF NOT EXISTS accounts (account text PRIMARY KEY)",
    """CREATE TABLE IF NOT EXISTS slots (
        account     text NOT NULL,
        number      integer NOT NULL,
        worker      text NOT NULL,
        lease_until timestamptz NOT NULL,
        PRIMARY KEY (account, number)
    )""",
    """CREATE TABLE IF NOT EXISTS meter (
        account text NOT NULL,
        worker  text NOT NULL,
        minute  timestamptz NOT NULL,
        bytes   bigint NOT NULL,
        PRIMARY KEY (account, worker, minute)
    )""",
    "INSERT INTO meta(key, value) VALUES ('schema', %s) ON CONFLICT DO NOTHING",
]
# Added to schema 2 in place (older code ignores them). ``claim_token``/``token``: the
# request that took a lease or a slot, so a transaction run again after its COMMIT landed
# (the answer lost with the connection) finds what it took instead of taking another.
_COLUMNS = (
    ("products", "claim_token", "text"),
    ("products", "claim_prev", "text"),
    ("files", "claim_token", "text"),
    ("files", "claim_prev", "text"),
    ("slots", "token", "text"),
)
_INDEXES = (
    "CREATE INDEX IF NOT EXISTS products_claim_token ON products(claim_token)",
    "CREATE INDEX IF NOT EXISTS files_claim_token ON files(claim_token)",
    "CREATE INDEX IF NOT EXISTS slots_token ON slots(token)",
)

T = TypeVar("T")


def is_postgres_url(location: object) -> bool:
    """Whether ``location`` is a ``postgresql://`` (or ``postgres://``) URL."""
    if not isinstance(location, str):
        return False
    scheme, sep, _ = location.partition("://")
    return bool(sep) and scheme.lower() in SCHEMES


def _one_line(exc: BaseException, url: str) -> str:
    """A driver's message on one line (libpq's are several, with tabs), with ``url``
    and its passwords masked whatever their length: libpq quotes the URL as written."""
    text = " ".join(str(exc).split()) or type(exc).__name__
    if url:
        text = text.replace(url, redact_url(url))
    for password in sorted(url_passwords(url), key=len, reverse=True):
        text = text.replace(password, MASK)
    return redact(text)


def check_ledger_url(url: str) -> None:
    """Check a PostgreSQL ledger URL without connecting; register its passwords.

    Raises:
        LedgerLocationError: not a ``postgresql://`` URL, one libpq cannot read, a port
            that is no port, or psycopg missing (one line, the password masked).
    """
    for password in url_passwords(url):
        register_secret(password)
    if not is_postgres_url(url):
        raise LedgerLocationError(f"not a PostgreSQL URL: {redact_url(url)}")
    psycopg = _psycopg()
    try:
        params = psycopg.conninfo.conninfo_to_dict(url)
    except psycopg.Error as exc:
        raise LedgerLocationError(
            f"cannot use the ledger URL {redact_url(url)}: {_one_line(exc, url)}"
        ) from None
    for port in str(params.get("port") or "").split(","):
        if port and not (port.isdigit() and 0 < int(port) < 65536):
            raise LedgerLocationError(
                f"cannot use the ledger URL {redact_url(url)}: {port!r} is not a port number"
            )


def _refused(row: Any, state: str, worker: str) -> bool:
    """Whether ``worker`` may not write ``state`` over ``row`` (state, lease_worker,
    lease live, worker): another worker's live lease, or another worker's ``done``."""
    current, holder, live, writer = row[0], row[1], row[2], row[3]
    if holder is not None and holder != worker and live:
        return True
    return bool(current == "done" and state not in ("done", "skipped") and writer != worker)


def _ROLLED_BACK(psycopg: Any) -> tuple[type[BaseException], ...]:
    """Errors after which the server rolled the transaction back: run it again."""
    errors = psycopg.errors
    return (errors.TransactionRollback, errors.DeadlockDetected, errors.SerializationFailure)


def _psycopg() -> Any:
    try:
        import psycopg
    except ImportError:
        raise LedgerLocationError(
            "a PostgreSQL ledger needs psycopg: pip install 'sentinel-fetch[postgresql]'"
        ) from None
    return psycopg


class PostgresLedger(Ledger):
    """The ledger of a job in a PostgreSQL database. Thread-safe: one connection, one lock.

    Use :meth:`open`.
    """

    def __init__(self, url: str) -> None:
        self._url = url
        self.location = redact_url(url)
        self.worker = None
        self._connection: psycopg.Connection[Any] | None = None
        self._lock = threading.RLock()
        self._read_only = False
        self._closed = False
        #: Tests only: called after each transaction committed, before its result is used.
        self._after_commit: Callable[[Any], None] | None = None

    @classmethod
    def open(cls, url: str, *, create: bool = True, read_only: bool = False) -> PostgresLedger:
        """Connect to the job's database; create the tables if ``create`` and missing.

        Raises:
            LedgerLocationError: not a usable URL, psycopg missing, the server cannot be
                reached or refuses us (one line, the password masked).
            LedgerFileError: no job there and ``create`` false (or ``read_only``); tables
                of another program; a schema of a newer sentinel-fetch.
        """
        check_ledger_url(url)
        ledger = cls(url)
        ledger._read_only = read_only
        try:
            ledger._connection = ledger._connect()
        except StorageError as exc:
            raise LedgerLocationError(str(exc)) from None
        try:
            ledger._prepare(create=create and not read_only)
        except BaseException:
            ledger.close()
            raise
        return ledger

    def _connect(self) -> Any:
        psycopg = _psycopg()
        try:
            connection: Any = psycopg.connect(
                self._url,
                autocommit=True,
                connect_timeout=CONNECT_TIMEOUT_S,
                application_name="sentinel-fetch",
                keepalives=1,
                keepalives_idle=30,
                keepalives_interval=10,
                keepalives_count=3,
            )
        except psycopg.Error as exc:
            raise StorageError(
                f"cannot connect to the job ledger {self.location}: {_one_line(exc, self._url)}"
            ) from None
        try:
            connection.execute(f"SET statement_timeout = {STATEMENT_TIMEOUT_MS}")
            connection.execute(f"SET lock_timeout = {STATEMENT_TIMEOUT_MS}")
            connection.execute("SET TIME ZONE 'UTC'")
            if self._read_only:
                connection.execute("SET default_transaction_read_only = on")
        except psycopg.Error as exc:
            connection.close()
            raise StorageError(
                f"cannot set up the job ledger {self.location}: {_one_line(exc, self._url)}"
            ) from None
        return connection

    def _prepare(self, *, create: bool) -> None:
        """Check the database holds our job (or create it, once, under an advisory lock)."""

        def check(cur: Any) -> str:
            cur.execute(
                "SELECT to_regclass('meta') IS NOT NULL, to_regclass('products') IS NOT NULL"
            )
            has_meta, has_products = cur.fetchone()
            if not has_meta and not has_products:
                return "new"
            if not has_meta:
                return "foreign"
            cur.execute("SELECT value FROM meta WHERE key = 'schema'")
            row = cur.fetchone()
            if row is None:
                return "foreign" if has_products else "new"
            try:
                version = int(row[0])
            except ValueError:
                raise LedgerFileError(
                    f"{self.location} holds an unknown schema version {row[0]!r}"
                ) from None
            if version > SCHEMA_VERSION:
                raise LedgerFileError(
                    f"{self.location} was written by a newer sentinel-fetch (schema"
                    f" {version}); upgrade sentinel-fetch to use it"
                )
            return "ledger"

        kind = self._run(check)
        if kind == "foreign":
            raise LedgerFileError(
                f"{self.location} holds tables of another program (a products table, no"
                " sentinel-fetch schema row); use another database or schema"
            )
        if kind == "ledger":
            if not self._read_only:
                self._run(self._add_columns)
            return
        if not create:
            raise LedgerFileError(f"no download job in {self.location} (no ledger tables there)")

        def make(cur: Any) -> None:
            cur.execute("SELECT pg_advisory_xact_lock(%s)", (_SCHEMA_LOCK,))
            for statement in _SCHEMA:
                cur.execute(statement, (str(SCHEMA_VERSION),) if "%s" in statement else None)
            self._add_columns(cur)

        self._run(make)

    @staticmethod
    def _add_columns(cur: Any) -> None:
        """Add the columns and indexes schema 2 gained in place, once (advisory lock)."""
        cur.execute(
            "SELECT table_name, column_name FROM information_schema.columns"
            " WHERE table_schema = current_schema()"
        )
        have = {(row[0], row[1]) for row in cur.fetchall()}
        if all((table, column) in have for table, column, _ in _COLUMNS):
            return
        cur.execute("SELECT pg_advisory_xact_lock(%s)", (_SCHEMA_LOCK,))
        for table, column, kind in _COLUMNS:
            cur.execute(f"ALTER TABLE {table} ADD COLUMN IF NOT EXISTS {column} {kind}")
        for statement in _INDEXES:
            cur.execute(statement)

    def close(self) -> None:
        """Close the connection."""
        with self._lock:
            self._closed = True
            if self._connection is not None:
                self._connection.close()
                self._connection = None

    def __enter__(self) -> PostgresLedger:
        return self

    def _run(self, body: Callable[[Any], T]) -> T:
        """Run ``body(cursor)`` in one transaction; reopen a lost connection, boundedly.

        A transaction the server rolled back (a dropped connection, a deadlock it broke)
        is run again, up to :data:`RECONNECTS` times, with a short growing pause.
        """
        psycopg = _psycopg()
        with self._lock:
            if self._closed:
                raise StorageError("the job ledger is closed")
            for attempt in range(RECONNECTS + 1):
                connection = self._connection
                try:
                    if connection is None or connection.closed or connection.broken:
                        if connection is not None:
                            connection.close()
                        self._connection = None
                        connection = self._connection = self._connect()
                    with connection.transaction(), connection.cursor() as cur:
                        result = body(cur)
                    if self._after_commit is not None:
                        # Tests: lose the connection after the COMMIT landed.
                        self._after_commit(connection)
                    return result
                except (LedgerFileError, LedgerLocationError):
                    raise
                except StorageError:
                    if attempt == RECONNECTS:
                        raise
                except _ROLLED_BACK(psycopg) as exc:
                    if attempt == RECONNECTS:
                        why = _one_line(exc, self._url)
                        raise StorageError(
                            f"the job ledger {self.location} kept refusing: {why}"
                        ) from None
                except psycopg.OperationalError as exc:
                    lost = connection is None or connection.closed or connection.broken
                    if not lost or attempt == RECONNECTS:
                        raise StorageError(
                            f"the job ledger {self.location} failed: {_one_line(exc, self._url)}"
                        ) from None
                except psycopg.Error as exc:
                    raise StorageError(
                        f"the job ledger {self.location} failed: {_one_line(exc, self._url)}"
                    ) from None
                time.sleep(min(0.2 * 2**attempt, 2.0))
        raise AssertionError("unreachable")  # pragma: no cover

    def now(self) -> datetime:
        """The database server's clock (``now()``)."""

        def body(cur: Any) -> datetime:
            cur.execute("SELECT now()")
            value: datetime = cur.fetchone()[0]
            return value

        return self._run(body)

    # -- recording -------------------------------------------------------------------------

    def record(self, product: Any, state: str, *, worker: object = None, **details: object) -> None:
        """Record that ``product`` entered ``state`` (see :meth:`Ledger.record`);
        ``worker``: raises RecordRefusedError over another worker's live lease or ``done``."""
        state = stored_state(state)
        now = now_text()
        values = product_values(product, details)
        writer = str(worker) if worker is not None else self.worker

        def body(cur: Any) -> bool:
            nonlocal state
            cur.execute(
                "INSERT INTO products(id, name, file_name, size, checksums, state, first_seen,"
                " updated, product) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s)"
                " ON CONFLICT(id) DO NOTHING RETURNING id",
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
            if cur.fetchone() is None:
                cur.execute(
                    "SELECT state, lease_worker, lease_until > now(), worker FROM products"
                    " WHERE id = %s FOR UPDATE",
                    (values.id,),
                )
                row = cur.fetchone()
                if worker is not None and _refused(row, state, str(worker)):
                    return False
                if state == "skipped" and row[0] in ("done", "queued", "downloading"):
                    # This job was fetching it: the file reached Finish (verified) and the
                    # run ended before recording it.
                    state = "done"
            cur.execute(
                "UPDATE products SET state = %s, updated = %s, reason = %s,"
                " bytes_received = bytes_received + %s, attempts = attempts + %s,"
                " verified_by = COALESCE(%s, verified_by), path = COALESCE(%s, path),"
                " finished = CASE WHEN %s = 'done' THEN %s ELSE finished END,"
                " product = COALESCE(%s, product), size = %s, checksums = %s, file_name = %s,"
                " worker = COALESCE(%s, worker) WHERE id = %s",
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
                    writer,
                    values.id,
                ),
            )
            cur.execute(
                "INSERT INTO events(product_id, at, state, detail) VALUES (%s, %s, %s, %s)",
                (values.id, now, state, values.reason),
            )
            return True

        if not self._run(body):
            raise RecordRefusedError(WorkItem(values.id), state, str(writer))

    def record_file(
        self,
        product: Any,
        planned: Any,
        state: str,
        *,
        worker: object = None,
        **details: object,
    ) -> None:
        """Record that one file of ``product`` entered ``state`` (:meth:`Ledger.record_file`)."""
        if state not in STATES:
            raise ValueError(f"unknown ledger state {state!r}")
        values = file_values(planned, details)
        writer = str(worker) if worker is not None else self.worker

        def body(cur: Any) -> bool:
            if worker is not None:
                cur.execute(
                    "SELECT state, lease_worker, lease_until > now(), worker FROM files"
                    " WHERE product_id = %s AND path = %s FOR UPDATE",
                    (str(product.id), values.path),
                )
                row = cur.fetchone()
                if row is not None and _refused(row, state, str(worker)):
                    return False
            cur.execute(
                "INSERT INTO files(product_id, path, size, checksum, state, reason,"
                " bytes_received, attempts, verified_by, updated, worker)"
                " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)"
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
                    writer,
                ),
            )
            return True

        if not self._run(body):
            raise RecordRefusedError(WorkItem(str(product.id), values.path), state, str(writer))

    def files(self, product_id: str | None = None) -> list[dict[str, Any]]:
        """Rows of the per-file table (all products, or one), oldest first."""

        def body(cur: Any) -> list[dict[str, Any]]:
            cur.execute(
                f"SELECT {', '.join(FILE_COLUMNS)} FROM files"  # noqa: S608 - constant names
                " WHERE %s::text IS NULL OR product_id = %s ORDER BY seq",
                (product_id, product_id),
            )
            return [dict(zip(FILE_COLUMNS, row, strict=True)) for row in cur.fetchall()]

        return self._run(body)

    def summary(self, *, quotas: Mapping[str, int] | None = None) -> LedgerSummary:
        """Counts by state, bytes, failures, offline products, workers and accounts."""

        def body(cur: Any) -> tuple[Any, ...]:
            counts = dict.fromkeys(STATES, 0)
            cur.execute("SELECT state, COUNT(*) FROM products GROUP BY state")
            for state, number in cur.fetchall():
                counts[state] = int(number)
            cur.execute(
                "SELECT COUNT(*), COALESCE(SUM(size), 0),"
                " COALESCE(SUM(CASE WHEN state IN ('done', 'skipped') THEN size ELSE 0 END), 0),"
                " COALESCE(SUM(bytes_received), 0) FROM products"
            )
            totals = tuple(int(value) for value in cur.fetchone())
            cur.execute(
                "SELECT id, name, COALESCE(reason, ''), attempts, updated FROM products"
                " WHERE state = 'failed' ORDER BY name"
            )
            failed = [FailedProduct(*row) for row in cur.fetchall()]
            cur.execute("SELECT name FROM products WHERE state = 'offline' ORDER BY name")
            offline = [row[0] for row in cur.fetchall()]
            return counts, totals, failed, offline

        counts, totals, failed, offline = self._run(body)
        workers = self.workers()
        return LedgerSummary(
            counts=counts,
            total_products=totals[0],
            total_bytes=totals[1],
            done_bytes=totals[2],
            bytes_received=totals[3],
            failed=failed,
            offline=offline,
            workers=workers,
            accounts=self._accounts(workers, quotas),
        )

    def entries(self, states: Iterable[str] | None = None) -> list[dict[str, Any]]:
        """Product rows (as dicts, ordered by name), optionally only those in ``states``."""
        wanted = None if states is None else list(states)

        def body(cur: Any) -> list[dict[str, Any]]:
            cur.execute(
                f"SELECT {', '.join(PRODUCT_COLUMNS)} FROM products"  # noqa: S608 - constant
                " WHERE %s::text[] IS NULL OR state = ANY(%s) ORDER BY name",
                (wanted, wanted),
            )
            return [dict(zip(PRODUCT_COLUMNS, row, strict=True)) for row in cur.fetchall()]

        return self._run(body)

    def file_names(self) -> dict[str, str]:
        """``product id -> file name`` of every product this job has met."""

        def body(cur: Any) -> dict[str, str]:
            cur.execute("SELECT id, file_name FROM products")
            return {row[0]: row[1] for row in cur.fetchall()}

        return self._run(body)

    # -- the batch and claims ---------------------------------------------------------------

    def enqueue(
        self,
        products: Iterable[Any],
        *,
        files: Mapping[str, Sequence[Any]] | None = None,
        retry: bool = True,
    ) -> int:
        """Add a batch, idempotently (see :meth:`Ledger.enqueue`); 500 products a transaction."""
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
        rows = [product_values(product) for product in products]

        def body(cur: Any) -> int:
            changed = 0
            for values in rows:
                cur.execute(
                    "INSERT INTO products(id, name, file_name, size, checksums, state,"
                    " first_seen, updated, product)"
                    " VALUES (%s, %s, %s, %s, %s, 'queued', %s, %s, %s)"
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
                touched = cur.rowcount > 0
                if not touched and retry:
                    cur.execute(
                        "UPDATE products SET state = 'queued', reason = NULL, updated = %s"
                        " WHERE id = %s AND state IN ('failed', 'offline')",
                        (now, values.id),
                    )
                    touched = cur.rowcount > 0
                if touched:
                    changed += 1
                    cur.execute(
                        "INSERT INTO events(product_id, at, state, detail)"
                        " VALUES (%s, %s, 'queued', NULL)",
                        (values.id, now),
                    )
                for planned in files.get(values.id, ()):
                    file = file_values(planned)
                    cur.execute(
                        "INSERT INTO files(product_id, path, size, checksum, state, updated)"
                        " VALUES (%s, %s, %s, %s, 'queued', %s)"
                        " ON CONFLICT(product_id, path) DO NOTHING",
                        (values.id, file.path, file.size, file.checksum, now),
                    )
                    if retry:
                        cur.execute(
                            "UPDATE files SET state = 'queued', reason = NULL, updated = %s"
                            " WHERE product_id = %s AND path = %s AND state = 'failed'",
                            (now, values.id, file.path),
                        )
            return changed

        return self._run(body)

    def claim_next(
        self, worker: str, lease_s: float, *, among: Collection[str] | None = None
    ) -> Claim | None:
        """Lease the next claimable product (see :meth:`Ledger.claim_next`)."""
        ids = None if among is None else [str(value) for value in among]
        token = uuid.uuid4().hex

        def body(cur: Any) -> Claim | None:
            # Run again after a COMMIT whose answer was lost: the lease is already ours.
            cur.execute(
                "SELECT id, claim_prev, product, file_name, lease_until FROM products"
                " WHERE claim_token = %s AND lease_worker = %s",
                (token, worker),
            )
            row = cur.fetchone()
            if row is not None:
                return Claim(
                    item=WorkItem(row[0]),
                    worker=worker,
                    lease_until=row[4],
                    taken_over=row[1] is not None,
                    previous_worker=row[1],
                    product=catalogue_entry(row[2]),
                    file_name=row[3],
                )
            # A row another claim took between this statement's snapshot and its lock is
            # re-checked and dropped, which can leave LIMIT 1 with nothing: the next
            # statement has a fresh snapshot and moves on.
            for _ in range(3):
                cur.execute(
                    "WITH picked AS (SELECT id, lease_worker FROM products"
                    " WHERE state IN ('queued', 'downloading')"
                    " AND (lease_until IS NULL OR lease_until <= now())"
                    " AND (%s::text[] IS NULL OR id = ANY(%s))"
                    " ORDER BY seq LIMIT 1 FOR UPDATE SKIP LOCKED)"
                    " UPDATE products SET lease_worker = %s,"
                    " lease_until = now() + make_interval(secs => %s),"
                    " claim_token = %s, claim_prev = picked.lease_worker"
                    " FROM picked WHERE products.id = picked.id"
                    " RETURNING products.id, picked.lease_worker, products.product,"
                    " products.file_name, products.lease_until",
                    (ids, ids, worker, max(lease_s, 0.0), token),
                )
                row = cur.fetchone()
                if row is not None:
                    return Claim(
                        item=WorkItem(row[0]),
                        worker=worker,
                        lease_until=row[4],
                        taken_over=row[1] is not None,
                        previous_worker=row[1],
                        product=catalogue_entry(row[2]),
                        file_name=row[3],
                    )
            return None

        return self._run(body)

    def claim_next_file(
        self, worker: str, lease_s: float, *, product_id: str | None = None
    ) -> Claim | None:
        """Lease the next claimable file (see :meth:`Ledger.claim_next_file`)."""
        token = uuid.uuid4().hex

        def body(cur: Any) -> Claim | None:
            # Run again after a COMMIT whose answer was lost: the lease is already ours.
            cur.execute(
                "SELECT product_id, path, claim_prev, lease_until FROM files"
                " WHERE claim_token = %s AND lease_worker = %s",
                (token, worker),
            )
            row = cur.fetchone()
            for _ in range(3):
                if row is not None:
                    break
                cur.execute(
                    "WITH picked AS (SELECT product_id, path, lease_worker FROM files"
                    " WHERE state IN ('queued', 'downloading')"
                    " AND (lease_until IS NULL OR lease_until <= now())"
                    " AND (%s::text IS NULL OR product_id = %s)"
                    " ORDER BY seq LIMIT 1 FOR UPDATE SKIP LOCKED)"
                    " UPDATE files SET lease_worker = %s,"
                    " lease_until = now() + make_interval(secs => %s),"
                    " claim_token = %s, claim_prev = picked.lease_worker"
                    " FROM picked WHERE files.product_id = picked.product_id"
                    " AND files.path = picked.path"
                    " RETURNING files.product_id, files.path, picked.lease_worker,"
                    " files.lease_until",
                    (product_id, product_id, worker, max(lease_s, 0.0), token),
                )
                row = cur.fetchone()
            if row is None:
                return None
            cur.execute("SELECT product, file_name FROM products WHERE id = %s", (row[0],))
            product = cur.fetchone() or (None, "")
            return Claim(
                item=WorkItem(row[0], row[1]),
                worker=worker,
                lease_until=row[3],
                taken_over=row[2] is not None,
                previous_worker=row[2],
                product=catalogue_entry(product[0]),
                file_name=product[1] or "",
            )

        return self._run(body)

    def renew(
        self,
        worker: str,
        lease_s: float,
        *,
        held: Collection[WorkItem] = (),
        slots: Collection[tuple[str, int]] = (),
    ) -> Renewal:
        """Extend the leases and slots of ``worker`` named in ``held`` and ``slots``; drop
        the worker's others (see :meth:`Ledger.renew`): a lease whose release failed must
        not live on by the heartbeat."""
        seconds = max(lease_s, 0.0)
        wanted = {WorkItem(item.product_id, item.path) for item in held}
        wanted_slots = {(str(slot[0]), int(slot[1])) for slot in slots}

        def body(cur: Any) -> tuple[set[WorkItem], set[tuple[str, int]], datetime]:
            cur.execute("SELECT now() + make_interval(secs => %s)", (seconds,))
            until: datetime = cur.fetchone()[0]
            cur.execute("SELECT id FROM products WHERE lease_worker = %s FOR UPDATE", (worker,))
            mine = {WorkItem(row[0]) for row in cur.fetchall()}
            cur.execute(
                "SELECT product_id, path FROM files WHERE lease_worker = %s FOR UPDATE", (worker,)
            )
            mine.update(WorkItem(row[0], row[1]) for row in cur.fetchall())
            cur.execute("SELECT account, number FROM slots WHERE worker = %s FOR UPDATE", (worker,))
            my_slots = {(row[0], int(row[1])) for row in cur.fetchall()}
            for item in mine:
                keep = item in wanted
                if item.path:
                    cur.execute(
                        "UPDATE files SET lease_until = %s, lease_worker = %s"
                        " WHERE product_id = %s AND path = %s AND lease_worker = %s",
                        (
                            until if keep else None,
                            worker if keep else None,
                            item.product_id,
                            item.path,
                            worker,
                        ),
                    )
                else:
                    cur.execute(
                        "UPDATE products SET lease_until = %s, lease_worker = %s"
                        " WHERE id = %s AND lease_worker = %s",
                        (
                            until if keep else None,
                            worker if keep else None,
                            item.product_id,
                            worker,
                        ),
                    )
            for account, number in my_slots:
                if (account, number) in wanted_slots:
                    cur.execute(
                        "UPDATE slots SET lease_until = %s"
                        " WHERE account = %s AND number = %s AND worker = %s",
                        (until, account, number, worker),
                    )
                else:
                    cur.execute(
                        "DELETE FROM slots WHERE account = %s AND number = %s AND worker = %s",
                        (account, number, worker),
                    )
            cur.execute("UPDATE workers SET last_seen = now() WHERE id = %s", (worker,))
            return mine, my_slots, until

        mine, my_slots, until = self._run(body)
        return Renewal(
            lost=frozenset((wanted - mine) | (mine - wanted)),
            lost_slots=frozenset((wanted_slots - my_slots) | (my_slots - wanted_slots)),
            lease_until=until,
        )

    def release(self, worker: str, item: WorkItem) -> bool:
        """Drop ``worker``'s lease on ``item`` (see :meth:`Ledger.release`)."""

        def body(cur: Any) -> bool:
            if item.path:
                cur.execute(
                    "UPDATE files SET lease_worker = NULL, lease_until = NULL"
                    " WHERE product_id = %s AND path = %s AND lease_worker = %s",
                    (item.product_id, item.path, worker),
                )
            else:
                cur.execute(
                    "UPDATE products SET lease_worker = NULL, lease_until = NULL"
                    " WHERE id = %s AND lease_worker = %s",
                    (item.product_id, worker),
                )
            return bool(cur.rowcount > 0)

        return self._run(body)

    def holds(self, worker: str, item: WorkItem) -> bool:
        """Whether ``worker`` holds a live lease on ``item`` (server clock)."""

        def body(cur: Any) -> bool:
            cur.execute(
                "SELECT EXISTS (SELECT 1 FROM products WHERE %s = '' AND id = %s"
                " AND lease_worker = %s AND lease_until > now())"
                " OR EXISTS (SELECT 1 FROM files WHERE %s <> '' AND product_id = %s"
                " AND path = %s AND lease_worker = %s AND lease_until > now())",
                (
                    item.path,
                    item.product_id,
                    worker,
                    item.path,
                    item.product_id,
                    item.path,
                    worker,
                ),
            )
            return bool(cur.fetchone()[0])

        return self._run(body)

    def requeue(self, items: Iterable[WorkItem]) -> int:
        """Return items to ``queued`` unless a live lease holds them."""
        wanted = list(items)
        stamp = now_text()

        def body(cur: Any) -> int:
            changed = 0
            for item in wanted:
                if item.path:
                    cur.execute(
                        "UPDATE files SET state = 'queued', reason = NULL, updated = %s"
                        " WHERE product_id = %s AND path = %s"
                        " AND (lease_until IS NULL OR lease_until <= now())",
                        (stamp, item.product_id, item.path),
                    )
                else:
                    cur.execute(
                        "UPDATE products SET state = 'queued', reason = NULL, updated = %s"
                        " WHERE id = %s AND (lease_until IS NULL OR lease_until <= now())",
                        (stamp, item.product_id),
                    )
                changed += cur.rowcount
            return changed

        return self._run(body)

    def pending(self, *, among: Collection[str] | None = None) -> int:
        """Products still to do: ``queued`` or ``downloading``, leased or not."""
        ids = None if among is None else [str(value) for value in among]

        def body(cur: Any) -> int:
            cur.execute(
                "SELECT COUNT(*) FROM products WHERE state IN ('queued', 'downloading')"
                " AND (%s::text[] IS NULL OR id = ANY(%s))",
                (ids, ids),
            )
            return int(cur.fetchone()[0])

        return self._run(body)

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

        def body(cur: Any) -> None:
            cur.execute(
                "INSERT INTO workers(id, host, pid, account, save_path, started, last_seen)"
                " VALUES (%s, %s, %s, %s, %s, now(), now()) ON CONFLICT(id) DO UPDATE SET"
                " host = excluded.host, pid = excluded.pid, account = excluded.account,"
                " save_path = excluded.save_path, last_seen = excluded.last_seen,"
                " finished = NULL",
                (
                    worker,
                    host if host is not None else socket.gethostname(),
                    pid if pid is not None else os.getpid(),
                    account,
                    str(save_path),
                ),
            )

        self._run(body)
        self.worker = worker

    def heartbeat(self, worker: str) -> None:
        """Note that ``worker`` is alive."""
        self._run(
            lambda cur: cur.execute("UPDATE workers SET last_seen = now() WHERE id = %s", (worker,))
        )

    def finish_worker(self, worker: str) -> None:
        """Mark ``worker`` finished; drop its leases and slots."""

        def body(cur: Any) -> None:
            cur.execute(
                "UPDATE workers SET finished = now(), last_seen = now() WHERE id = %s", (worker,)
            )
            cur.execute(
                "UPDATE products SET lease_worker = NULL, lease_until = NULL"
                " WHERE lease_worker = %s",
                (worker,),
            )
            cur.execute(
                "UPDATE files SET lease_worker = NULL, lease_until = NULL WHERE lease_worker = %s",
                (worker,),
            )
            cur.execute("DELETE FROM slots WHERE worker = %s", (worker,))

        self._run(body)

    def workers(self) -> list[WorkerStatus]:
        """Every registered worker with its figures, oldest first."""

        def body(cur: Any) -> list[WorkerStatus]:
            cur.execute("SELECT now()")
            now: datetime = cur.fetchone()[0]
            counts: dict[str, dict[str, int]] = {}

            def figures(name: str) -> dict[str, int]:
                return counts.setdefault(name, {"done": 0, "failed": 0, "running": 0})

            for table in ("products", "files"):
                cur.execute(
                    "SELECT worker, COUNT(*) FILTER (WHERE state = 'done'),"  # noqa: S608
                    f" COUNT(*) FILTER (WHERE state = 'failed') FROM {table}"
                    " WHERE worker IS NOT NULL GROUP BY worker"
                )
                for name, done, failed in cur.fetchall():
                    figures(name)["done"] += int(done)
                    figures(name)["failed"] += int(failed)
                cur.execute(
                    f"SELECT lease_worker, COUNT(*) FROM {table}"  # noqa: S608 - constant names
                    " WHERE lease_worker IS NOT NULL AND lease_until > now()"
                    " GROUP BY lease_worker"
                )
                for name, running in cur.fetchall():
                    figures(name)["running"] += int(running)
            cur.execute("SELECT worker, COALESCE(SUM(bytes), 0) FROM meter GROUP BY worker")
            received = {row[0]: int(row[1]) for row in cur.fetchall()}
            cur.execute(
                "SELECT id, host, pid, account, save_path, started, last_seen, finished"
                " FROM workers ORDER BY started, id"
            )
            names = ("id", "host", "pid", "account", "save_path", "started", "last_seen")
            statuses = []
            for row in cur.fetchall():
                mine = figures(row[0])
                statuses.append(
                    worker_status(
                        {**dict(zip(names, row, strict=False)), "finished": row[7]},
                        now=now,
                        done=mine["done"],
                        running=mine["running"],
                        failed=mine["failed"],
                        received=received.get(row[0], 0),
                    )
                )
            return statuses

        return self._run(body)

    def accounts(self, *, quotas: Mapping[str, int] | None = None) -> list[AccountStatus]:
        """Per account: its workers' figures and its quota meter."""
        return self._accounts(self.workers(), quotas)

    def _accounts(
        self, workers: list[WorkerStatus], quotas: Mapping[str, int] | None
    ) -> list[AccountStatus]:
        def body(cur: Any) -> dict[str, int]:
            cur.execute(
                "SELECT account, SUM(bytes) FROM meter"
                " WHERE minute >= date_trunc('minute', now() - interval '30 days')"
                " GROUP BY account"
            )
            return {row[0]: int(row[1]) for row in cur.fetchall()}

        return account_statuses(workers, self._run(body), quotas)

    # -- connection slots -----------------------------------------------------------------

    def take_slot(self, account: str, worker: str, limit: int, lease_s: float) -> Slot | None:
        """Lease one of ``account``'s slots if fewer than ``limit`` are live."""
        token = uuid.uuid4().hex

        def body(cur: Any) -> Slot | None:
            # Run again after a COMMIT whose answer was lost: the slot is already ours.
            cur.execute("SELECT number, lease_until FROM slots WHERE token = %s", (token,))
            row = cur.fetchone()
            if row is not None:
                return Slot(account, int(row[0]), worker, row[1], token)
            cur.execute(
                "INSERT INTO accounts(account) VALUES (%s) ON CONFLICT DO NOTHING", (account,)
            )
            # Every taker of this account's slots queues here; the next statement's
            # snapshot then sees the slots the one before it took.
            cur.execute("SELECT 1 FROM accounts WHERE account = %s FOR UPDATE", (account,))
            cur.execute(
                "SELECT number FROM slots WHERE account = %s AND lease_until > now()", (account,)
            )
            live = {int(row[0]) for row in cur.fetchall()}
            if len(live) >= limit:
                return None
            number = next(n for n in range(len(live) + 1) if n not in live)
            cur.execute(
                "INSERT INTO slots(account, number, worker, lease_until, token)"
                " VALUES (%s, %s, %s, now() + make_interval(secs => %s), %s)"
                " ON CONFLICT(account, number) DO UPDATE SET worker = excluded.worker,"
                " lease_until = excluded.lease_until, token = excluded.token"
                " RETURNING lease_until",
                (account, number, worker, max(lease_s, 0.0), token),
            )
            return Slot(account, number, worker, cur.fetchone()[0], token)

        return self._run(body)

    def return_slot(self, slot: Slot) -> None:
        """Give this slot back (its token: not a later taking of the same number)."""
        self._run(
            lambda cur: cur.execute(
                "DELETE FROM slots WHERE account = %s AND number = %s AND worker = %s"
                " AND (%s = '' OR token = %s)",
                (slot.account, slot.number, slot.worker, slot.token, slot.token),
            )
        )

    # -- the quota meter ------------------------------------------------------------------

    def add_bytes(self, account: str, n: int, *, worker: str | None = None) -> None:
        """Add ``n`` bytes to ``account``'s meter, in this minute's bucket (server clock)."""
        if n <= 0:
            return
        who = worker if worker is not None else (self.worker or "")
        self._run(
            lambda cur: cur.execute(
                "INSERT INTO meter(account, worker, minute, bytes)"
                " VALUES (%s, %s, date_trunc('minute', now()), %s)"
                " ON CONFLICT(account, worker, minute)"
                " DO UPDATE SET bytes = meter.bytes + excluded.bytes",
                (account, who, int(n)),
            )
        )

    def bytes_since(self, account: str, since: datetime) -> int:
        """Bytes ``account`` downloaded since ``since`` (its minute included)."""

        def body(cur: Any) -> int:
            cur.execute(
                "SELECT COALESCE(SUM(bytes), 0) FROM meter WHERE account = %s"
                " AND minute >= date_trunc('minute', %s::timestamptz)",
                (account, since),
            )
            return int(cur.fetchone()[0])

        return self._run(body)
