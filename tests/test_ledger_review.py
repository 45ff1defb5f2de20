"""Defects a hostile review found in the ledger's storage, each shown on real databases.

Renewals that kept leases alive the worker no longer tracked, a slot given back twice,
a PostgreSQL transaction run again after its COMMIT landed, records over another
worker's lease. No test waits for a clock: SQLite's is injected, PostgreSQL's leases
are made long or 0 s long.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from sentinel_fetch.ledger import JobLedger, Ledger, WorkItem, open_ledger
from tests.test_ledger_interface import LONG, P, products


@pytest.fixture
def ledger(ledger_location: str) -> Iterator[Ledger]:
    with open_ledger(ledger_location) as opened:
        yield opened


def test_renew_drops_leases_and_slots_the_worker_no_longer_names(ledger: Ledger) -> None:
    ledger.enqueue(products(1))
    slot = ledger.take_slot("a", "w1", 1, LONG)
    claim = ledger.claim_next("w1", LONG)
    assert slot is not None and claim is not None
    # w1's return_slot and release failed (a busy file, a dropped connection): it
    # tracks neither any more, and its heartbeat must not keep them alive.
    renewal = ledger.renew("w1", LONG, held=(), slots=())
    assert renewal.lost == {claim.item}
    assert renewal.lost_slots == {("a", slot.number)}
    assert ledger.take_slot("a", "w2", 1, LONG) is not None
    other = ledger.claim_next("w2", LONG)
    assert other is not None and other.item == claim.item


def test_renew_keeps_what_is_named_and_reports_nothing_lost(ledger: Ledger) -> None:
    ledger.enqueue(products(2))
    slot = ledger.take_slot("a", "w1", 1, LONG)
    first = ledger.claim_next("w1", LONG)
    second = ledger.claim_next("w1", LONG)
    assert slot is not None and first is not None and second is not None
    renewal = ledger.renew("w1", LONG, held=[first.item], slots=[("a", slot.number)])
    assert renewal.lost == {second.item}  # not named: dropped and reported
    assert renewal.lost_slots == frozenset()
    assert ledger.holds("w1", first.item)
    assert not ledger.holds("w1", second.item)
    assert ledger.take_slot("a", "w2", 1, LONG) is None


def test_heartbeats_on_an_injected_clock_never_strand_a_stream_or_the_batch(
    tmp_path: Path,
) -> None:
    now = [1_000_000.0]
    with JobLedger.open(tmp_path / "job", clock=lambda: now[0]) as ledger:
        ledger.enqueue(products(1))
        assert ledger.take_slot("a", "w1", 1, 60) is not None
        assert ledger.claim_next("w1", 60) is not None
        for _ in range(10):
            now[0] += 20
            ledger.renew("w1", 60, held=(), slots=())
        assert ledger.take_slot("a", "w2", 1, 60) is not None
        claim = ledger.claim_next("w2", 60)
        assert claim is not None
        ledger.record(P("id-0000", "S2A_0000"), "done")
        assert ledger.release("w2", claim.item)
        assert ledger.pending() == 0


def test_return_slot_gives_back_only_that_taking_of_the_slot(ledger: Ledger) -> None:
    old = ledger.take_slot("a", "w1", 1, 0)  # expires at once
    assert old is not None
    new = ledger.take_slot("a", "w1", 1, LONG)  # the same number, the same worker
    assert new is not None and new.number == old.number
    assert new.token and new.token != old.token
    ledger.return_slot(old)  # late: a retry of the first return
    assert ledger.take_slot("a", "w2", 1, LONG) is None  # the new one still holds
    ledger.return_slot(new)
    assert ledger.take_slot("a", "w2", 1, LONG) is not None


# -- PostgreSQL: a COMMIT that landed, its answer lost ----------------------------------


def _lose_connection_once(ledger: Any, server_url: str) -> list[int]:
    """After the next COMMIT, kill this ledger's backend from another connection, and
    let the ledger find out by using it: the transaction landed, its answer is lost."""
    import psycopg

    killed: list[int] = []

    def hook(connection: Any) -> None:
        if killed:
            return
        pid = connection.info.backend_pid
        with psycopg.connect(server_url, autocommit=True) as admin:
            admin.execute("SELECT pg_terminate_backend(%s)", (pid,))
        killed.append(pid)
        connection.execute("SELECT 1")  # raises: the server closed the connection

    ledger._after_commit = hook
    return killed


def test_a_claim_run_again_after_its_commit_landed_takes_nothing_more(
    postgres_url: str, postgres_server: str
) -> None:
    with open_ledger(postgres_url) as ledger:
        ledger.enqueue(products(3))
        killed = _lose_connection_once(ledger, postgres_server)
        claim = ledger.claim_next("w1", LONG)
        assert killed  # the connection was lost after the commit, and reopened
        assert claim is not None and claim.item == WorkItem("id-0000")
        # Exactly one lease of w1: the other two products are still free.
        others = [ledger.claim_next("w2", LONG), ledger.claim_next("w2", LONG)]
        assert sorted(c.item.product_id for c in others if c) == ["id-0001", "id-0002"]
        assert ledger.claim_next("w3", LONG) is None


def test_a_file_claim_run_again_after_its_commit_landed_takes_nothing_more(
    postgres_url: str, postgres_server: str
) -> None:
    from tests.test_ledger_interface import F

    with open_ledger(postgres_url) as ledger:
        ledger.enqueue([P("a", "A")], files={"a": [F("x"), F("y")]})
        killed = _lose_connection_once(ledger, postgres_server)
        claim = ledger.claim_next_file("w1", LONG)
        assert killed and claim is not None and claim.item == WorkItem("a", "x")
        other = ledger.claim_next_file("w2", LONG)
        assert other is not None and other.item == WorkItem("a", "y")


def test_a_slot_taken_again_after_its_commit_landed_is_the_same_slot(
    postgres_url: str, postgres_server: str
) -> None:
    with open_ledger(postgres_url) as ledger:
        killed = _lose_connection_once(ledger, postgres_server)
        slot = ledger.take_slot("a", "w1", 2, LONG)
        assert killed and slot is not None and slot.number == 0
        # One slot taken, not two: a second worker still finds one free.
        assert ledger.take_slot("a", "w2", 2, LONG) is not None
        assert ledger.take_slot("a", "w3", 2, LONG) is None


# -- a PostgreSQL URL's password never printed ------------------------------------------

LEAKY_URLS = [
    # urlsplit refuses it (a broken IPv6 host), libpq quotes it whole.
    ("postgresql://bob:s3cr3tpw@[::1:1/db", ["s3cr3tpw"]),
    # Short, and percent-encoded: libpq quotes the encoded form of a bad escape.
    ("postgresql://bob:pw%zz@127.0.0.1:1/db", ["pw%zz"]),
    ("postgresql://bob:s3cr%25pw9@127.0.0.1:1/db", ["s3cr%25pw9", "s3cr%pw9"]),
    ("postgresql://bob@[::1:1/db?password=qu3ry-pw", ["qu3ry-pw"]),
    ("postgresql://bob:s3cr3tpw@127.0.0.1:99999/db", ["s3cr3tpw"]),
]


@pytest.mark.parametrize(("url", "secrets"), LEAKY_URLS)
def test_status_never_prints_the_password_of_a_bad_ledger_url(
    tmp_path: Path, url: str, secrets: list[str]
) -> None:
    import os
    import subprocess
    import sys

    env = {
        **os.environ,
        "HOME": str(tmp_path),
        "SENTINEL_FETCH_CONFIG": str(tmp_path / "none.toml"),
    }
    env.pop("SENTINEL_FETCH_LEDGER", None)
    done = subprocess.run(
        [sys.executable, "-m", "sentinel_fetch", "status", "--ledger", url],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        timeout=120,
        check=False,
    )
    assert done.returncode == 2, done.stderr
    assert len(done.stderr.strip().splitlines()) == 1, done.stderr
    assert "Traceback" not in done.stderr
    for secret in secrets:
        assert secret not in done.stdout + done.stderr
    assert "bob:***@" in done.stderr or "password=***" in done.stderr


@pytest.mark.parametrize(
    ("url", "secrets"), [case for case in LEAKY_URLS if "s3cr%25pw9" not in case[0]]
)
def test_check_ledger_location_refuses_a_bad_url_without_its_password(
    url: str, secrets: list[str]
) -> None:
    from sentinel_fetch.errors import LedgerLocationError
    from sentinel_fetch.ledger import check_ledger_location

    with pytest.raises(LedgerLocationError) as refused:
        check_ledger_location(url)
    for secret in secrets:
        assert secret not in str(refused.value)


def test_check_ledger_location_connects_to_nothing_and_passes_good_locations(
    tmp_path: Path,
) -> None:
    from sentinel_fetch.errors import LedgerLocationError
    from sentinel_fetch.ledger import check_ledger_location

    check_ledger_location("postgresql://bob:s3cr3tpw@127.0.0.1:1/db")  # nobody listens
    check_ledger_location("postgresql://bob:s3cr%25pw9@127.0.0.1:1/db")
    check_ledger_location(tmp_path / "job")
    with pytest.raises(LedgerLocationError, match="give a folder"):
        check_ledger_location("ftp://bob:s3cr3tpw@example.com/job")


def test_url_passwords_reads_what_urlsplit_refuses() -> None:
    from sentinel_fetch.redact import url_passwords

    assert url_passwords("postgresql://bob:p%40ss@[::1:1/db?password=two") == [
        "p%40ss",
        "p@ss",
        "two",
    ]
    assert url_passwords("postgresql://bob@host/db") == []


# -- records of a worker that lost its lease --------------------------------------------


def test_a_stalled_holder_cannot_write_over_the_new_holders_lease_or_done(ledger: Ledger) -> None:
    from sentinel_fetch.ledger import RecordRefusedError

    product = products(1)[0]
    ledger.enqueue([product])
    old = ledger.claim_next("old", 0)  # its lease expires at once: it stalled
    new = ledger.claim_next("new", LONG)
    assert old is not None and new is not None and new.taken_over
    ledger.record(product, "downloading", worker="new")
    with pytest.raises(RecordRefusedError):
        ledger.record(product, "failed", worker="old", reason="HTTP 500")
    assert ledger.entries()[0]["state"] == "downloading"
    ledger.record(product, "downloaded", worker="new", bytes_received=100)
    assert ledger.release("new", new.item)
    # Released: no lease now, but the row is "new"'s done; "old" cannot undo it.
    for late in ("failed", "queued", "stopped", "offline"):
        with pytest.raises(RecordRefusedError):
            ledger.record(product, late, worker="old", reason="late")
    ledger.record(product, "skipped", worker="old")  # its file is there: still done
    entry = ledger.entries()[0]
    assert (entry["state"], entry["reason"], entry["bytes_received"]) == ("done", None, 100)
    assert ledger.pending() == 0
    # Without worker= the write applies, as before (the engine's own records).
    ledger.record(product, "failed", reason="moved aside by verify")
    assert ledger.entries()[0]["state"] == "failed"


def test_the_lease_holder_and_a_free_row_are_written(ledger: Ledger) -> None:
    a, b = products(2)
    ledger.enqueue([a, b])
    claim = ledger.claim_next("w1", LONG)
    assert claim is not None and claim.item.product_id == a.id
    ledger.record(a, "failed", worker="w1", reason="HTTP 404")
    ledger.record(b, "downloading", worker="w2")  # not leased by anyone: applies
    states = {entry["id"]: entry["state"] for entry in ledger.entries()}
    assert states == {a.id: "failed", b.id: "downloading"}


def test_file_records_follow_the_file_lease(ledger: Ledger) -> None:
    from sentinel_fetch.ledger import RecordRefusedError
    from tests.test_ledger_interface import F

    product = P("a", "A")
    band = F("B04.jp2")
    ledger.enqueue([product], files={"a": [band]})
    assert ledger.claim_next_file("old", 0) is not None
    new = ledger.claim_next_file("new", LONG)
    assert new is not None and new.taken_over
    with pytest.raises(RecordRefusedError):
        ledger.record_file(product, band, "failed", worker="old", reason="cut")
    ledger.record_file(product, band, "done", worker="new", verified_by="MD5")
    assert ledger.release("new", new.item)
    with pytest.raises(RecordRefusedError):
        ledger.record_file(product, band, "failed", worker="old", reason="late")
    assert [row["state"] for row in ledger.files("a")] == ["done"]


# -- claims among tens of thousands of ids ----------------------------------------------


def test_among_follows_each_call_even_a_list_changed_in_place(ledger: Ledger) -> None:
    ledger.enqueue(products(4))
    among = ["id-0002"]
    first = ledger.claim_next("w", LONG, among=among)
    assert first is not None and first.item.product_id == "id-0002"
    assert ledger.pending(among=among) == 1
    among[0] = "id-0003"  # the same list object, other contents
    second = ledger.claim_next("w", LONG, among=among)
    assert second is not None and second.item.product_id == "id-0003"
    fixed = frozenset({"id-0000", "id-0003"})
    third = ledger.claim_next("w", LONG, among=fixed)
    assert third is not None and third.item.product_id == "id-0000"
    assert ledger.claim_next("w", LONG, among=fixed) is None
    assert ledger.pending(among=fixed) == 2
    assert ledger.pending(among=()) == 0
    assert ledger.claim_next("w", LONG, among=()) is None


def test_a_claim_among_many_ids_sorts_nothing_and_reads_only_open_rows(tmp_path: Path) -> None:
    """The query shape, by SQLite's own plan (not by timing): a walk of products_state
    in rowid order, stopped by LIMIT 1; the ids asked about are a look-up."""
    with JobLedger.open(tmp_path / "job") as ledger:
        ledger.enqueue(products(50))
        assert ledger.claim_next("w", LONG, among=frozenset({"id-0007"})) is not None
        db = ledger._db
        claim = " ".join(
            row[3]
            for row in db.execute(
                "EXPLAIN QUERY PLAN SELECT rowid, id FROM products INDEXED BY products_state"
                " WHERE state = 'queued' AND (lease_until IS NULL OR lease_until <= 0)"
                " AND id IN (SELECT id FROM temp.among_ids) ORDER BY rowid LIMIT 1"
            )
        )
        assert "products_state" in claim and "TEMP B-TREE" not in claim
        pending = " ".join(
            row[3]
            for row in db.execute(
                "EXPLAIN QUERY PLAN SELECT COUNT(*) FROM products INDEXED BY products_state_id"
                " WHERE state IN ('queued', 'downloading')"
                " AND +id IN (SELECT id FROM temp.among_ids)"
            )
        )
        assert "COVERING INDEX products_state_id" in pending
