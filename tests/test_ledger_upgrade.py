"""Ledgers written before leases (schema 1) open, and are upgraded in one transaction."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from sentinel_fetch.errors import LedgerFileError, StorageError
from sentinel_fetch.ledger import LEDGER_FILE_NAME, JobLedger, WorkItem, open_ledger
from sentinel_fetch.ledger import sqlite as sqlite_ledger

# The schema sentinel-fetch wrote before version 2, as it wrote it (no files table: that
# one was added on first use), with one product of each kind.
_SCHEMA_1 = """
CREATE TABLE products (
    id TEXT PRIMARY KEY, name TEXT NOT NULL, file_name TEXT NOT NULL,
    size INTEGER NOT NULL DEFAULT 0, checksums TEXT NOT NULL DEFAULT '{}',
    state TEXT NOT NULL, reason TEXT, bytes_received INTEGER NOT NULL DEFAULT 0,
    attempts INTEGER NOT NULL DEFAULT 0, verified_by TEXT, path TEXT,
    first_seen TEXT NOT NULL, updated TEXT NOT NULL, finished TEXT, product TEXT
);
CREATE INDEX products_state ON products(state);
CREATE TABLE events (product_id TEXT NOT NULL, at TEXT NOT NULL, state TEXT NOT NULL, detail TEXT);
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
INSERT INTO meta VALUES ('schema', '1');
INSERT INTO products(id, name, file_name, size, state, first_seen, updated, product)
VALUES ('a', 'A', 'A.zip', 10, 'done', 't', 't', '{"id": "a"}'),
       ('b', 'B', 'B.zip', 20, 'downloading', 't', 't', '{"id": "b"}'),
       ('c', 'C', 'C.zip', 30, 'failed', 't', 't', NULL);
"""


def _old_ledger(folder: Path) -> Path:
    folder.mkdir(parents=True)
    path = folder / LEDGER_FILE_NAME
    with sqlite3.connect(path) as connection:
        connection.executescript(_SCHEMA_1)
    connection.close()
    return path


def _schema(path: Path) -> tuple[str, set[str], set[str]]:
    with sqlite3.connect(path) as connection:
        version = connection.execute("SELECT value FROM meta WHERE key = 'schema'").fetchone()[0]
        tables = {row[0] for row in connection.execute("SELECT name FROM sqlite_master")}
        columns = {row[1] for row in connection.execute("PRAGMA table_info(products)")}
    connection.close()
    return version, tables, columns


def test_an_old_ledger_is_read_as_it_is(tmp_path: Path) -> None:
    path = _old_ledger(tmp_path / "job")
    with open_ledger(tmp_path / "job", read_only=True) as ledger:
        summary = ledger.summary()
        assert (summary.counts["done"], summary.counts["downloading"]) == (1, 1)
        assert summary.workers == [] and summary.accounts == []
        assert ledger.workers() == []
        assert ledger.bytes_in_window("alice") == 0
    assert _schema(path)[0] == "1"


def test_an_old_ledger_is_upgraded_in_place_and_keeps_every_row(tmp_path: Path) -> None:
    path = _old_ledger(tmp_path / "job")
    with JobLedger.open(tmp_path / "job") as ledger:
        version, tables, columns = _schema(path)
        assert version == "2"
        assert {"files", "workers", "slots", "meter"} <= tables
        assert {"lease_worker", "lease_until", "worker"} <= columns
        assert {row["id"]: row["state"] for row in ledger.entries()} == {
            "a": "done",
            "b": "downloading",
            "c": "failed",
        }
        # The run that died with b in flight left no lease: b is claimable at once.
        claim = ledger.claim_next("w", 60)
        assert claim is not None and claim.item == WorkItem("b")
        assert not claim.taken_over
    with JobLedger.open(tmp_path / "job") as ledger:  # and opening again changes nothing
        assert ledger.summary().total_products == 3


def test_an_upgrade_that_fails_midway_leaves_the_old_ledger(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # As a kill -9 between two statements would: the transaction is rolled back.
    path = _old_ledger(tmp_path / "job")
    broken = sqlite_ledger._UPGRADE_2.replace(
        "CREATE TABLE IF NOT EXISTS slots", "CREATE TABLE products_broken (x); SELECT nonsense("
    )
    monkeypatch.setattr(sqlite_ledger, "_UPGRADE_2", broken)
    with pytest.raises(StorageError):
        JobLedger.open(tmp_path / "job")
    version, tables, columns = _schema(path)
    assert version == "1"
    assert "workers" not in tables and "products_broken" not in tables
    assert "lease_worker" not in columns
    monkeypatch.undo()
    with JobLedger.open(tmp_path / "job") as ledger:
        assert _schema(path)[0] == "2"
        assert ledger.summary().total_products == 3


def test_a_ledger_of_a_newer_version_is_refused_unchanged(tmp_path: Path) -> None:
    path = _old_ledger(tmp_path / "job")
    with sqlite3.connect(path) as connection:
        connection.execute("UPDATE meta SET value = '9' WHERE key = 'schema'")
    connection.close()
    for read_only in (False, True):
        with pytest.raises(LedgerFileError, match="newer sentinel-fetch"):
            JobLedger.open(tmp_path / "job", read_only=read_only)
    assert _schema(path)[0] == "9"


def test_leases_follow_an_injected_clock(tmp_path: Path) -> None:
    now = [1_000_000.0]
    with JobLedger.open(tmp_path / "job", clock=lambda: now[0]) as ledger:
        ledger.record(_P(), "queued")
        first = ledger.claim_next("w1", 30)
        assert first is not None
        assert first.lease_until.timestamp() == 1_000_030.0
        now[0] += 29.9
        assert ledger.claim_next("w2", 30) is None
        now[0] += 0.1
        taken = ledger.claim_next("w2", 30)
        assert taken is not None and taken.previous_worker == "w1"


class _P:
    id = "x"
    name = "X"
    size = 1
    checksums: dict[str, str] = {}  # noqa: RUF012
    file_name = "X.zip"
