"""Several SQLite ledgers as one: the report of a job split into shards.

A cluster without a database server (a SLURM array, Kubernetes jobs) runs one shard of
the batch per task (``download --shard K/N``), each with its own save folder and
ledger. :func:`merge_ledgers` reads them (read-only: a shard still running is safe to
read) and writes one new ledger with every product, file, event, worker and meter
bucket, so ``status`` reports the whole job.

A product in several shards (a batch split twice, a rerun elsewhere) keeps the row
that got furthest: done over skipped over in flight over failed over offline over
queued, with the bytes and attempts of all its rows added up (each was fetched). Meter
buckets of the same account, worker and minute add up; a worker in several ledgers
keeps its latest row.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from sentinel_fetch.errors import LedgerFileError
from sentinel_fetch.ledger.common import FILE_COLUMNS, PRODUCT_COLUMNS
from sentinel_fetch.ledger.sqlite import LEDGER_FILE_NAME, JobLedger

__all__ = ["ledger_file", "merge_ledgers"]

# Which of two rows of one product got further (higher wins).
_RANK = {"done": 6, "skipped": 5, "downloading": 4, "failed": 3, "offline": 2, "queued": 1}
_WORKER_COLUMNS = ("id", "host", "pid", "account", "save_path", "started", "last_seen", "finished")


def ledger_file(location: str | Path) -> Path:
    """A shard's ledger file: the folder's ``sentinel-fetch-ledger.sqlite``, or the file.

    Raises:
        LedgerFileError: neither a folder with a ledger nor a file.
    """
    path = Path(location)
    if path.is_dir():
        path = path / LEDGER_FILE_NAME
    if not path.is_file():
        raise LedgerFileError(f"no download job in {location} (no {LEDGER_FILE_NAME} there)")
    return path


def _read(path: Path) -> dict[str, list[dict[str, Any]]]:
    """Every row of one ledger, through the read-only opening ``status`` uses."""
    with JobLedger.open_file(path, read_only=True) as ledger:
        db = ledger._db
        tables = {row[0] for row in db.execute("SELECT name FROM sqlite_master")}
        columns = {row[1] for row in db.execute("PRAGMA table_info(products)")}
        rows: dict[str, list[dict[str, Any]]] = {}
        wanted = [*PRODUCT_COLUMNS, "worker"] if "worker" in columns else list(PRODUCT_COLUMNS)
        rows["products"] = _select(db, "products", wanted)
        rows["events"] = _select(db, "events", ["product_id", "at", "state", "detail"])
        if "files" in tables:
            file_columns = {row[1] for row in db.execute("PRAGMA table_info(files)")}
            wanted = [*FILE_COLUMNS, "worker"] if "worker" in file_columns else list(FILE_COLUMNS)
            rows["files"] = _select(db, "files", wanted)
        if "workers" in tables:
            rows["workers"] = _select(db, "workers", list(_WORKER_COLUMNS))
        if "meter" in tables:
            rows["meter"] = _select(db, "meter", ["account", "worker", "minute", "bytes"])
    return rows


def _select(db: sqlite3.Connection, table: str, columns: list[str]) -> list[dict[str, Any]]:
    cursor = db.execute(f"SELECT {', '.join(columns)} FROM {table} ORDER BY rowid")  # noqa: S608
    return [dict(zip(columns, row, strict=True)) for row in cursor]


def _better(old: dict[str, Any], new: dict[str, Any]) -> dict[str, Any]:
    """The row that got further, carrying the bytes and attempts of both."""
    best = new if _RANK.get(new["state"], 0) > _RANK.get(old["state"], 0) else old
    merged = dict(best)
    merged["bytes_received"] = int(old["bytes_received"] or 0) + int(new["bytes_received"] or 0)
    merged["attempts"] = int(old["attempts"] or 0) + int(new["attempts"] or 0)
    return merged


def merge_ledgers(sources: Sequence[str | Path], target: Path) -> JobLedger:
    """Write one new ledger ``target`` holding every row of ``sources``; return it open.

    Args:
        sources: shard save folders (or ledger files); read only.
        target: the merged ledger file to create; it must not exist yet.

    Raises:
        LedgerFileError: a source is no ledger (or a newer one), two sources are the
            same file, or ``target`` exists.
        StorageError: ``target`` cannot be written.
    """
    paths = [ledger_file(source) for source in sources]
    resolved = [path.resolve() for path in paths]
    if len(set(resolved)) != len(resolved):
        raise LedgerFileError("the same ledger was given twice")
    if target.exists():
        raise LedgerFileError(f"{target} exists: the merged ledger is written to a new file")
    if target.resolve() in resolved:
        raise LedgerFileError(f"{target} is one of the ledgers to merge")
    products: dict[str, dict[str, Any]] = {}
    files: dict[tuple[str, str], dict[str, Any]] = {}
    workers: dict[str, dict[str, Any]] = {}
    meter: dict[tuple[str, str, int], int] = {}
    events: list[dict[str, Any]] = []
    for path in paths:
        rows = _read(path)
        for row in rows["products"]:
            old = products.get(row["id"])
            products[row["id"]] = row if old is None else _better(old, row)
        for row in rows.get("files", []):
            key = (row["product_id"], row["path"])
            old = files.get(key)
            files[key] = row if old is None else _better(old, row)
        for row in rows.get("workers", []):
            old = workers.get(row["id"])
            if old is None or row["last_seen"] > old["last_seen"]:
                workers[row["id"]] = row
        for row in rows.get("meter", []):
            key3 = (row["account"], row["worker"], int(row["minute"]))
            meter[key3] = meter.get(key3, 0) + int(row["bytes"])
        events.extend(rows["events"])
    merged = JobLedger.open_file(target)
    try:
        with merged._write() as db:
            _insert(db, "products", products.values())
            _insert(db, "files", files.values())
            _insert(db, "events", events)
            _insert(db, "workers", workers.values())
            db.executemany(
                "INSERT INTO meter(account, worker, minute, bytes) VALUES (?, ?, ?, ?)",
                [(*key, number) for key, number in meter.items()],
            )
    except BaseException:
        merged.close()
        raise
    return merged


def _insert(db: sqlite3.Connection, table: str, rows: Iterable[dict[str, Any]]) -> None:
    for row in rows:
        names = list(row)
        db.execute(
            f"INSERT INTO {table}({', '.join(names)})"  # noqa: S608 - names are our columns
            f" VALUES ({', '.join('?' for _ in names)})",
            [row[name] for name in names],
        )
