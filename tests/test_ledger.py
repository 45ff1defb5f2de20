"""The job ledger records every product's state and survives reopening."""

from __future__ import annotations

import os
import sqlite3
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from sentinel_fetch.errors import InputError
from sentinel_fetch.ledger import LEDGER_FILE_NAME, JobLedger


@dataclass(frozen=True)
class P:
    id: str
    name: str
    size: int = 100
    checksums: dict[str, str] = field(default_factory=lambda: {"MD5": "00" * 16})

    @property
    def file_name(self) -> str:
        return f"{self.name}.zip"

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "name": self.name, "size": self.size}


def test_states_counts_bytes_and_failures(tmp_path: Path) -> None:
    with JobLedger.open(tmp_path) as ledger:
        a, b, c, d = P("a", "A"), P("b", "B"), P("c", "C"), P("d", "D")
        for product in (a, b, c, d):
            ledger.record(product, "queued")
        ledger.record(a, "downloading")
        ledger.record(a, "done", bytes_received=100, verified_by="BLAKE3", path="/x/A.zip")
        ledger.record(b, "downloading")
        ledger.record(b, "failed", reason="HTTP 404 Not Found", bytes_received=0, attempts=3)
        ledger.record(c, "offline", reason="offline: order it")
        summary = ledger.summary()
    assert summary.counts["done"] == 1
    assert summary.counts["failed"] == 1
    assert summary.counts["offline"] == 1
    assert summary.counts["queued"] == 1
    assert summary.total_products == 4
    assert summary.total_bytes == 400
    assert summary.done_bytes == 100
    assert summary.bytes_received == 100
    assert [(f.name, f.reason, f.attempts) for f in summary.failed] == [
        ("B", "HTTP 404 Not Found", 3)
    ]
    assert summary.offline == ["C"]


def test_reopen_keeps_state_and_stored_products(tmp_path: Path) -> None:
    with JobLedger.open(tmp_path) as ledger:
        ledger.record(P("a", "A"), "failed", reason="gave up")
    with JobLedger.open(tmp_path, create=False) as ledger:
        assert ledger.product_dicts(["failed"]) == [{"id": "a", "name": "A", "size": 100}]
        assert ledger.entries(["failed"])[0]["reason"] == "gave up"


def test_stopped_means_still_to_do_and_skipped_keeps_done(tmp_path: Path) -> None:
    with JobLedger.open(tmp_path) as ledger:
        ledger.record(P("a", "A"), "stopped")
        ledger.record(P("b", "B"), "done")
        ledger.record(P("b", "B"), "skipped")
        ledger.record(P("c", "C"), "skipped")
        states = {row["id"]: row["state"] for row in ledger.entries()}
    assert states == {"a": "queued", "b": "done", "c": "skipped"}


def test_concurrent_writers_lose_nothing(tmp_path: Path) -> None:
    ledger = JobLedger.open(tmp_path)
    products = [P(str(i), f"N{i}") for i in range(200)]

    def work(chunk: list[P]) -> None:
        for product in chunk:
            ledger.record(product, "downloading")
            ledger.record(product, "done", bytes_received=100)

    threads = [threading.Thread(target=work, args=(products[i::4],)) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    summary = ledger.summary()
    ledger.close()
    assert summary.counts["done"] == 200
    assert summary.bytes_received == 20000


def test_missing_ledger_and_foreign_file(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="no download job"):
        JobLedger.open(tmp_path / "nothing", create=False)
    garbage = b"this is not sqlite" * 100
    (tmp_path / LEDGER_FILE_NAME).write_bytes(garbage)
    with pytest.raises(InputError, match="not a job ledger of sentinel-fetch"):
        JobLedger.open(tmp_path)
    assert (tmp_path / LEDGER_FILE_NAME).read_bytes() == garbage


def _foreign_database(path: Path) -> bytes:
    """Another program's SQLite file (rollback journal, its own tables); its bytes."""
    with sqlite3.connect(path) as connection:
        connection.execute("CREATE TABLE photos (id INTEGER PRIMARY KEY, title TEXT)")
        connection.execute("INSERT INTO photos(title) VALUES ('holiday')")
    connection.close()
    return path.read_bytes()


@pytest.mark.parametrize("read_only", [True, False], ids=["read-only", "for-writing"])
def test_a_foreign_sqlite_file_is_refused_and_left_as_it_was(
    tmp_path: Path, read_only: bool
) -> None:
    path = tmp_path / LEDGER_FILE_NAME
    before = _foreign_database(path)
    with pytest.raises(InputError, match="not a job ledger of sentinel-fetch"):
        JobLedger.open(tmp_path, read_only=read_only)
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == [LEDGER_FILE_NAME]
    with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as connection:
        assert connection.execute("PRAGMA journal_mode").fetchone() == ("delete",)


@pytest.mark.parametrize("content", [b"", b"\0" * 10], ids=["empty", "zeros"])
def test_reading_a_file_that_is_no_ledger_changes_nothing(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / LEDGER_FILE_NAME
    path.write_bytes(content)
    with pytest.raises(InputError, match="not a job ledger of sentinel-fetch"):
        JobLedger.open(tmp_path, read_only=True)
    assert path.read_bytes() == content
    assert sorted(p.name for p in tmp_path.iterdir()) == [LEDGER_FILE_NAME]


def test_reading_never_creates_a_ledger(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="no download job"):
        JobLedger.open(tmp_path / "job", read_only=True)
    assert list(tmp_path.iterdir()) == []


def test_a_reader_sees_what_is_committed_while_a_run_writes(tmp_path: Path) -> None:
    """``status`` during a download: the writer is in the middle of a transaction (WAL)."""
    with JobLedger.open(tmp_path) as ledger:
        ledger.record(P("a", "A"), "queued")
        ledger.record(P("b", "B"), "downloading")
        writer = sqlite3.connect(tmp_path / LEDGER_FILE_NAME, isolation_level=None)
        writer.execute("BEGIN IMMEDIATE")
        writer.execute("UPDATE products SET state = 'failed', reason = 'x'")
        try:
            with JobLedger.open(tmp_path, read_only=True) as reader:
                summary = reader.summary()
                assert summary.counts["queued"] == 1 and summary.counts["downloading"] == 1
                with pytest.raises(Exception, match="readonly"):
                    reader._db.execute("DELETE FROM products")
        finally:
            writer.rollback()
            writer.close()


def test_a_save_path_that_is_a_file_is_an_input_error(tmp_path: Path) -> None:
    (tmp_path / "job").write_text("not a folder")
    with pytest.raises(InputError, match="is a file"):
        JobLedger.open(tmp_path / "job")
    with pytest.raises(InputError, match="is a file"):
        JobLedger.open(tmp_path / "job" / "deeper")


def test_the_file_of_each_product_is_recorded(tmp_path: Path) -> None:
    with JobLedger.open(tmp_path) as ledger:
        ledger.record(P("a", "A/B"), "queued", file_name="A_B~aaaaaaaa.zip")
        ledger.record(P("b", "B"), "queued")
        assert ledger.file_names() == {"a": "A_B~aaaaaaaa.zip", "b": "B.zip"}
        assert {p.id: p.file_name for p in ledger.stored()} == ledger.file_names()


@pytest.mark.parametrize("damage", ["{not json", "[1, 2]", "null", "[" * 100_000 + "]" * 100_000])
def test_a_damaged_entry_is_a_clear_error(tmp_path: Path, damage: str) -> None:
    with JobLedger.open(tmp_path) as ledger:
        ledger.record(P("a", "A"), "failed", reason="gave up")
    with sqlite3.connect(tmp_path / LEDGER_FILE_NAME) as connection:
        connection.execute("UPDATE products SET product = ?, checksums = ?", (damage, damage))
    connection.close()
    with JobLedger.open(tmp_path, read_only=True) as ledger:
        with pytest.raises(InputError, match="damaged"):
            ledger.product_dicts(["failed"])
        with pytest.raises(InputError, match="damaged"):
            ledger.stored()


def test_unknown_state_is_a_bug(tmp_path: Path) -> None:
    with JobLedger.open(tmp_path) as ledger, pytest.raises(ValueError):
        ledger.record(P("a", "A"), "exploded")
    assert (
        sqlite3.connect(tmp_path / LEDGER_FILE_NAME)
        .execute("SELECT COUNT(*) FROM products")
        .fetchone()[0]
        == 0
    )


def _files(folder: Path) -> dict[str, tuple[int, int]]:
    return {p.name: (p.stat().st_mtime_ns, p.stat().st_size) for p in folder.iterdir()}


@pytest.mark.parametrize("folder_mode", [0o700, 0o500], ids=["writable", "read-only"])
def test_status_creates_and_changes_no_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], folder_mode: int
) -> None:
    from sentinel_fetch.cli import main

    with JobLedger.open(tmp_path / "job") as ledger:
        ledger.record(P("a", "A"), "failed", reason="gave up")
        ledger.record(P("b", "B"), "done")
    before = _files(tmp_path / "job")
    os.chmod(tmp_path / "job", folder_mode)
    try:
        with pytest.raises(SystemExit) as exited:
            main(["status", str(tmp_path / "job")])
        after = _files(tmp_path / "job")
    finally:
        os.chmod(tmp_path / "job", 0o700)
    assert exited.value.code == 0, capsys.readouterr().err
    assert "2 products" in capsys.readouterr().out
    assert after == before
