"""The ledger interface, the same tests on both implementations (SQLite, PostgreSQL).

Every test takes ``ledger_location`` (tests/conftest.py): a save folder, then a URL of a
real PostgreSQL server (tests/postgres.py). Concurrency is shown with real processes
that start together at a barrier; leases expire by being 0 s long, never by sleeping.
"""

from __future__ import annotations

import multiprocessing
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from sentinel_fetch.errors import LedgerFileError, LedgerLocationError, SentinelFetchError
from sentinel_fetch.ledger import DEFAULT_QUOTA_BYTES, Ledger, WorkItem, open_ledger

SPAWN = multiprocessing.get_context("spawn")
LONG = 600.0  # a lease that cannot expire during a test


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


@dataclass(frozen=True)
class Sum:
    algorithm: str
    digest: str


@dataclass(frozen=True)
class F:
    path: str
    size: int | None = 10
    checksum: Sum | None = None


def products(n: int) -> list[P]:
    return [P(f"id-{i:04d}", f"S2A_{i:04d}") for i in range(n)]


@pytest.fixture
def ledger(ledger_location: str) -> Iterator[Ledger]:
    with open_ledger(ledger_location) as opened:
        yield opened


def test_recording_counts_bytes_failures_and_entries(ledger: Ledger) -> None:
    a, b, c, d = P("a", "A"), P("b", "B"), P("c", "C"), P("d", "D")
    for product in (a, b, c, d):
        ledger.record(product, "queued")
    ledger.record(a, "downloading")
    ledger.record(a, "downloaded", bytes_received=100, verified_by="BLAKE3", path="/x/A.zip")
    ledger.record(b, "failed", reason="HTTP 404 Not Found", attempts=3)
    ledger.record(c, "offline", reason="offline: order it")
    ledger.record(d, "stopped")
    summary = ledger.summary()
    assert summary.counts["done"] == 1
    assert summary.counts["failed"] == 1
    assert summary.counts["offline"] == 1
    assert summary.counts["queued"] == 1
    assert (summary.total_products, summary.total_bytes, summary.done_bytes) == (4, 400, 100)
    assert summary.bytes_received == 100
    assert [(f.name, f.reason, f.attempts) for f in summary.failed] == [
        ("B", "HTTP 404 Not Found", 3)
    ]
    assert summary.offline == ["C"]
    assert [row["name"] for row in ledger.entries()] == ["A", "B", "C", "D"]
    assert [row["id"] for row in ledger.entries(["done"])] == ["a"]
    assert ledger.entries(["done"])[0]["verified_by"] == "BLAKE3"
    assert ledger.file_names() == {p.id: p.file_name for p in (a, b, c, d)}
    assert [s.state for s in ledger.stored()] == ["done", "failed", "offline", "queued"]
    assert ledger.stored(["failed"])[0].checksums == {"MD5": "00" * 16}
    assert ledger.product_dicts(["failed"]) == [{"id": "b", "name": "B", "size": 100}]
    ledger.record(a, "skipped")
    assert ledger.entries(["done"])[0]["id"] == "a"  # fetched by this job, then found


def test_files_are_recorded_per_product(ledger: Ledger) -> None:
    product = P("a", "A")
    ledger.record(product, "downloading")
    ledger.record_file(product, F("B02.jp2", 10, Sum("MD5", "ab" * 16)), "downloading")
    ledger.record_file(product, F("B02.jp2", 10, Sum("MD5", "ab" * 16)), "done", bytes_received=10)
    ledger.record_file(product, F("B03.jp2"), "failed", reason="HTTP 500", attempts=2)
    rows = ledger.files("a")
    assert [(r["path"], r["state"], r["bytes_received"]) for r in rows] == [
        ("B02.jp2", "done", 10),
        ("B03.jp2", "failed", 0),
    ]
    assert rows[0]["checksum"] == "MD5:" + "ab" * 16
    assert rows[1]["reason"] == "HTTP 500"
    assert ledger.files("other") == []


def test_enqueue_is_idempotent_and_retries_failed_and_offline(ledger: Ledger) -> None:
    batch = products(5)
    assert ledger.enqueue(batch) == 5
    assert ledger.enqueue(batch) == 0
    ledger.record(batch[0], "downloaded")
    ledger.record(batch[1], "failed", reason="x")
    ledger.record(batch[2], "offline", reason="y")
    ledger.record(batch[3], "downloading")
    assert ledger.enqueue(batch, retry=False) == 0
    assert ledger.enqueue(batch) == 2
    states = {row["id"]: row["state"] for row in ledger.entries()}
    assert states == {
        "id-0000": "done",
        "id-0001": "queued",
        "id-0002": "queued",
        "id-0003": "downloading",
        "id-0004": "queued",
    }
    assert ledger.product_dicts(["queued"])[0] == {"id": "id-0001", "name": "S2A_0001", "size": 100}


def test_claims_go_once_in_enqueue_order_and_only_among_what_was_asked(ledger: Ledger) -> None:
    batch = products(4)
    ledger.enqueue(reversed(batch))
    first = ledger.claim_next("w1", LONG)
    assert first is not None
    assert first.item == WorkItem("id-0003")
    assert first.file_name == "S2A_0003.zip"
    assert first.product == {"id": "id-0003", "name": "S2A_0003", "size": 100}
    assert not first.taken_over
    assert first.lease_until > ledger.now()
    only = ledger.claim_next("w2", LONG, among={"id-0000"})
    assert only is not None
    assert only.item.product_id == "id-0000"
    assert ledger.claim_next("w2", LONG, among={"id-0000", "id-0003"}) is None
    rest = [ledger.claim_next("w3", LONG) for _ in range(3)]
    assert [c.item.product_id if c else None for c in rest] == ["id-0002", "id-0001", None]
    assert ledger.pending() == 4
    ledger.record(batch[0], "downloaded")
    assert ledger.pending() == 3
    assert ledger.pending(among=["id-0000", "id-0001"]) == 1


def test_done_failed_and_offline_products_are_not_claimed(ledger: Ledger) -> None:
    batch = products(4)
    ledger.enqueue(batch)
    ledger.record(batch[0], "downloaded")
    ledger.record(batch[1], "failed", reason="x")
    ledger.record(batch[2], "offline", reason="y")
    ledger.record(batch[3], "skipped")
    assert ledger.claim_next("w", LONG) is None
    assert ledger.pending() == 0


def test_an_expired_lease_is_taken_over_and_its_holder_learns_it_lost_it(ledger: Ledger) -> None:
    ledger.enqueue(products(1))
    item = WorkItem("id-0000")
    dying = ledger.claim_next("dying", 0)  # expires at once: a worker killed with -9
    assert dying is not None
    assert not ledger.holds("dying", item)
    taker = ledger.claim_next("taker", LONG)
    assert taker is not None
    assert taker.item == item
    assert taker.taken_over
    assert taker.previous_worker == "dying"
    assert ledger.holds("taker", item)
    renewal = ledger.renew("dying", LONG, held=[item])
    assert renewal.lost == {item}
    assert not ledger.release("dying", item)
    assert ledger.renew("taker", LONG, held=[item]).lost == frozenset()
    assert ledger.release("taker", item)
    assert not ledger.holds("taker", item)
    again = ledger.claim_next("third", LONG)
    assert again is not None
    assert not again.taken_over  # released, not expired: nothing to take over


def test_renewing_keeps_an_expired_lease_nobody_took(ledger: Ledger) -> None:
    ledger.enqueue(products(1))
    item = WorkItem("id-0000")
    assert ledger.claim_next("slow", 0) is not None
    renewal = ledger.renew("slow", LONG, held=[item])
    assert renewal.lost == frozenset()
    assert renewal.lease_until > ledger.now()
    assert ledger.holds("slow", item)
    assert ledger.claim_next("other", LONG) is None


def test_files_are_claimed_one_by_one(ledger: Ledger) -> None:
    a, b = P("a", "A"), P("b", "B")
    ledger.enqueue([a, b], files={"a": [F("B02.jp2"), F("B03.jp2")], "b": [F("B04.jp2")]})
    ledger.enqueue([a, b], files={"a": [F("B02.jp2"), F("B03.jp2")], "b": [F("B04.jp2")]})
    first = ledger.claim_next_file("w1", LONG, product_id="a")
    second = ledger.claim_next_file("w2", LONG, product_id="a")
    assert first is not None and second is not None
    assert {first.item.path, second.item.path} == {"B02.jp2", "B03.jp2"}
    assert first.file_name == "A.zip"
    assert ledger.claim_next_file("w3", LONG, product_id="a") is None
    other = ledger.claim_next_file("w3", 0)
    assert other is not None
    assert other.item == WorkItem("b", "B04.jp2")
    assert ledger.renew("w3", LONG, held=[other.item]).lost == frozenset()
    ledger.record_file(a, F("B02.jp2"), "failed", reason="x")
    assert ledger.release("w1", WorkItem("a", "B02.jp2")) or ledger.release(
        "w2", WorkItem("a", "B02.jp2")
    )
    assert ledger.claim_next_file("w4", LONG, product_id="a") is None  # failed: not claimed
    ledger.enqueue([a], files={"a": [F("B02.jp2")]})
    assert ledger.claim_next_file("w4", LONG, product_id="a") is not None  # retried


def test_requeue_returns_a_finished_product_unless_it_is_leased(ledger: Ledger) -> None:
    batch = products(2)
    ledger.enqueue(batch)
    held = ledger.claim_next("w", LONG)
    assert held is not None
    ledger.record(batch[0], "downloaded")
    ledger.record(batch[1], "downloaded")
    assert ledger.requeue([WorkItem("id-0000"), WorkItem("id-0001")]) == 1
    states = {row["id"]: row["state"] for row in ledger.entries()}
    assert states == {"id-0000": "done", "id-0001": "queued"}


def test_workers_are_listed_with_their_figures(ledger: Ledger) -> None:
    batch = products(4)
    ledger.enqueue(batch)
    ledger.register_worker("w1", account="alice", save_path="/data/a", host="h1", pid=11)
    assert ledger.worker == "w1"
    claim = ledger.claim_next("w1", LONG)
    assert claim is not None
    ledger.record(batch[0], "downloaded", bytes_received=100)
    ledger.record(batch[1], "failed", reason="x")
    ledger.add_bytes("alice", 1000)
    ledger.add_bytes("alice", 500)
    with open_ledger(_again(ledger)) as other:
        other.register_worker("w2", account="bob", save_path="/data/b")
        other.add_bytes("bob", 7)
        other.claim_next("w2", LONG)
        other.finish_worker("w2")
    workers = {w.id: w for w in ledger.workers()}
    assert set(workers) == {"w1", "w2"}
    one, two = workers["w1"], workers["w2"]
    assert (one.host, one.pid, one.account, one.save_path) == ("h1", 11, "alice", "/data/a")
    assert (one.done, one.failed, one.running, one.bytes) == (1, 1, 1, 1500)
    assert one.alive and one.finished is None
    assert one.rate > 0
    assert (two.done, two.running, two.bytes, two.alive) == (0, 0, 7, False)
    assert two.finished is not None
    accounts = {a.account: a for a in ledger.accounts(quotas={"alice": 3000})}
    assert accounts["alice"].quota_used == 1500
    assert accounts["alice"].quota == 3000
    assert accounts["alice"].quota_fraction == pytest.approx(0.5)
    assert accounts["bob"].quota == DEFAULT_QUOTA_BYTES
    assert (accounts["alice"].workers, accounts["alice"].alive) == (1, 1)
    summary = ledger.summary(quotas={"*": 14})
    assert {a.account: a.quota for a in summary.accounts} == {"alice": 14, "bob": 14}
    data = summary.to_dict()
    assert {w["id"] for w in data["workers"]} == {"w1", "w2"}
    assert data["accounts"][1]["quota_fraction"] == pytest.approx(0.5)


def _again(ledger: Ledger) -> str:
    """The location to open the same job again with."""
    return _url(ledger) if "://" in ledger.location else str(Path(ledger.location).parent)


def _url(ledger: Ledger) -> str:
    # The test server trusts every local connection, so no password is involved.
    return str(ledger._url)  # type: ignore[attr-defined]


def test_slots_never_exceed_the_limit_and_expired_ones_are_reused(ledger: Ledger) -> None:
    taken = [ledger.take_slot("alice", f"w{i}", 3, LONG) for i in range(3)]
    assert sorted(s.number for s in taken if s) == [0, 1, 2]
    assert ledger.take_slot("alice", "w9", 3, LONG) is None
    assert ledger.take_slot("bob", "w9", 3, LONG) is not None  # per account
    assert taken[1] is not None
    ledger.return_slot(taken[1])
    again = ledger.take_slot("alice", "w9", 3, LONG)
    assert again is not None and again.number == 1
    assert ledger.take_slot("alice", "w9", 4, 0) is not None  # a fourth, for a limit of 4
    assert ledger.take_slot("alice", "w8", 4, LONG) is not None  # ...which expired
    assert ledger.take_slot("alice", "w8", 4, LONG) is None
    renewal = ledger.renew("w0", LONG, slots=[("alice", 0), ("alice", 7)])
    assert renewal.lost_slots == {("alice", 7)}
    ledger.finish_worker("w0")
    assert ledger.take_slot("alice", "w7", 4, LONG) is not None


def test_the_meter_sums_the_rolling_window(ledger: Ledger, ledger_location: str) -> None:
    ledger.add_bytes("alice", 10, worker="w1")
    ledger.add_bytes("alice", 5, worker="w2")
    ledger.add_bytes("bob", 99, worker="w1")
    ledger.add_bytes("alice", 0)
    assert ledger.bytes_in_window("alice") == 15
    _age_meter(ledger, days=31)  # all of it a month old now
    ledger.add_bytes("alice", 3, worker="w1")
    assert ledger.bytes_in_window("alice") == 3
    assert ledger.bytes_since("alice", ledger.now() - timedelta(days=40)) == 18
    assert ledger.bytes_in_window("bob") == 0
    assert ledger.accounts()[0].quota_used == 3


def _age_meter(ledger: Ledger, *, days: int) -> None:
    """Move every meter bucket ``days`` back (the server's clock cannot be injected)."""
    if "://" in ledger.location:
        import psycopg

        with psycopg.connect(_url(ledger), autocommit=True) as connection:
            connection.execute(
                "UPDATE meter SET minute = minute - make_interval(days => %s)", (days,)
            )
    else:
        import sqlite3

        with sqlite3.connect(ledger.location) as connection:
            connection.execute("UPDATE meter SET minute = minute - ?", (days * 1440,))


# -- many processes ------------------------------------------------------------------------


def _claimer(location: str, name: str, barrier: Any, out: Any) -> None:
    with open_ledger(location) as ledger:
        barrier.wait()
        got = []
        while (claim := ledger.claim_next(name, LONG)) is not None:
            got.append(claim.item.product_id)
            ledger.record(P(claim.item.product_id, claim.item.product_id), "downloaded")
            ledger.release(name, claim.item)
        out.put((name, got))


def _run_all(target: Any, args: list[tuple[Any, ...]]) -> None:
    processes = [SPAWN.Process(target=target, args=a) for a in args]
    for process in processes:
        process.start()
    for process in processes:
        process.join(timeout=240)
        assert process.exitcode == 0


def test_concurrent_processes_claim_every_product_exactly_once(ledger_location: str) -> None:
    with open_ledger(ledger_location) as ledger:
        ledger.enqueue(products(120))
    workers = 4
    barrier, out = SPAWN.Barrier(workers), SPAWN.Queue()
    _run_all(_claimer, [(ledger_location, f"w{i}", barrier, out) for i in range(workers)])
    claimed = [out.get(timeout=60) for _ in range(workers)]
    every = [product for _, got in claimed for product in got]
    assert sorted(every) == [p.id for p in products(120)]  # all, and none twice
    with open_ledger(ledger_location, read_only=True) as ledger:
        assert ledger.summary().counts["done"] == 120


def _slot_taker(location: str, name: str, limit: int, barrier: Any, out: Any) -> None:
    with open_ledger(location) as ledger:
        barrier.wait()
        slot = ledger.take_slot("alice", name, limit, LONG)
        barrier.wait()  # every process has tried once, all at the same moment
        out.put(slot.number if slot else None)


def test_concurrent_processes_never_hold_more_slots_than_the_limit(ledger_location: str) -> None:
    open_ledger(ledger_location).close()
    workers, limit = 5, 3
    barrier, out = SPAWN.Barrier(workers), SPAWN.Queue()
    _run_all(_slot_taker, [(ledger_location, f"w{i}", limit, barrier, out) for i in range(workers)])
    numbers = [out.get(timeout=60) for _ in range(workers)]
    assert sorted(n for n in numbers if n is not None) == [0, 1, 2]
    assert numbers.count(None) == 2


def _opener(location: str, barrier: Any, out: Any) -> None:
    barrier.wait()
    with open_ledger(location) as ledger:
        ledger.enqueue(products(3))
        out.put(ledger.summary().total_products)


def test_processes_creating_one_ledger_at_once_create_it_once(ledger_location: str) -> None:
    workers = 4
    barrier, out = SPAWN.Barrier(workers), SPAWN.Queue()
    _run_all(_opener, [(ledger_location, barrier, out) for _ in range(workers)])
    assert [out.get(timeout=60) for _ in range(workers)] == [3] * workers


# -- opening -------------------------------------------------------------------------------


def test_a_job_that_is_not_there_is_not_created_when_asked_not_to(ledger_location: str) -> None:
    with pytest.raises(LedgerFileError, match="no download job"):
        open_ledger(ledger_location, create=False)
    with pytest.raises(LedgerFileError, match="no download job"):
        open_ledger(ledger_location, read_only=True)
    open_ledger(ledger_location).close()
    with open_ledger(ledger_location, read_only=True) as ledger:
        assert ledger.summary().total_products == 0


def test_unknown_locations_are_one_clear_error(tmp_path: Path) -> None:
    with pytest.raises(LedgerLocationError, match="unknown ledger location") as caught:
        open_ledger("mysql://root:hunter2hunter2@db/x")
    assert "hunter2hunter2" not in str(caught.value)
    assert caught.value.exit_code == 2


def test_an_unreachable_server_is_one_line_with_the_password_masked(postgres_server: str) -> None:
    url = "postgresql://alice:s3cret-pass-word@127.0.0.1:1/job"
    with pytest.raises(LedgerLocationError) as caught:
        open_ledger(url)
    text = str(caught.value)
    assert "s3cret-pass-word" not in text and "s3cret-pass-word" not in repr(caught.value)
    assert "alice:***@127.0.0.1:1" in text
    assert "\n" not in text
    assert isinstance(caught.value, SentinelFetchError)
    with pytest.raises(LedgerLocationError, match="cannot use the ledger URL"):
        open_ledger("postgresql://alice:s3cret-pass-word@127.0.0.1:1/job?nonsense=1")


def test_the_password_of_a_url_is_masked_in_repr_and_location(postgres_url: str) -> None:
    url = postgres_url.replace("postgres@", "postgres:pg-pass-secret@")
    with open_ledger(url) as ledger:  # the test server trusts, so the password is unused
        assert "pg-pass-secret" not in repr(ledger)
        assert "pg-pass-secret" not in ledger.location
        assert "postgres:***@" in ledger.location
        with pytest.raises(SentinelFetchError) as caught:  # the server refuses the value
            ledger.bytes_since("a", "not a time")  # type: ignore[arg-type]
        assert "pg-pass-secret" not in str(caught.value)


def test_a_dropped_connection_is_reopened(postgres_url: str) -> None:
    import psycopg

    with open_ledger(postgres_url) as ledger:
        ledger.enqueue(products(2))
        with psycopg.connect(postgres_url, autocommit=True) as admin:
            admin.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                " WHERE application_name = 'sentinel-fetch' AND pid <> pg_backend_pid()"
            )
        assert ledger.claim_next("w", LONG) is not None
        assert ledger.pending() == 2


def test_tables_of_another_program_are_not_taken_over(postgres_url: str) -> None:
    import psycopg

    with psycopg.connect(postgres_url, autocommit=True) as admin:
        admin.execute("CREATE TABLE products (sku text)")
    with pytest.raises(LedgerFileError, match="another program"):
        open_ledger(postgres_url)


def _enqueuer(location: str, chunks: int, out: Any) -> None:
    with open_ledger(location) as ledger:
        for chunk in range(chunks):
            ledger.enqueue(P(f"id-{chunk}-{i:03d}", f"N{chunk}-{i:03d}") for i in range(500))
            out.put(chunk)


def test_a_writer_killed_mid_batch_leaves_whole_transactions(ledger_location: str) -> None:
    import os
    import signal

    open_ledger(ledger_location).close()
    out = SPAWN.Queue()
    writer = SPAWN.Process(target=_enqueuer, args=(ledger_location, 400, out))
    writer.start()
    try:
        out.get(timeout=120)  # one batch is in; the next is being written
        os.kill(writer.pid or 0, signal.SIGKILL)
    finally:
        writer.join(timeout=60)
    assert writer.exitcode == -signal.SIGKILL
    with open_ledger(ledger_location) as ledger:
        summary = ledger.summary()
        assert summary.total_products % 500 == 0 and summary.total_products >= 500
        assert summary.counts["queued"] == summary.total_products
        # Each product's row and its "queued" event were one transaction.
        if "://" not in ledger.location:
            import sqlite3

            with sqlite3.connect(ledger.location) as connection:
                assert connection.execute("PRAGMA integrity_check").fetchone() == ("ok",)
                events = connection.execute("SELECT COUNT(*) FROM events").fetchone()[0]
            connection.close()
            assert events == summary.total_products
        assert ledger.enqueue(products(1)) == 1  # and it takes writes again


def test_a_server_that_stays_away_is_a_storage_error_after_a_few_tries(postgres_url: str) -> None:
    import psycopg

    from sentinel_fetch.errors import StorageError
    from sentinel_fetch.ledger import postgres

    with open_ledger(postgres_url) as ledger:
        # Where it reconnects to now refuses every connection (nothing listens on port 1).
        ledger._url = "postgresql://postgres:gone-pass-w0rd@127.0.0.1:1/postgres"  # type: ignore[attr-defined]
        with psycopg.connect(postgres_url, autocommit=True) as admin:
            admin.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                " WHERE application_name = 'sentinel-fetch' AND pid <> pg_backend_pid()"
            )
        with pytest.raises(StorageError) as caught:
            ledger.pending()
    text = str(caught.value)
    assert "cannot connect" in text and "gone-pass-w0rd" not in text and "\n" not in text
    assert postgres.RECONNECTS == 3  # the bound: one try and three more, then this error
