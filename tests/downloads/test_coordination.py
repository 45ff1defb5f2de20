"""One worker's part in a team job, against a real SQLite ledger and an injected clock.

Leases expire by the ledger's clock, which the tests move by hand: nothing here waits
for time to pass. The three-process must-show is tests/test_team_job.py.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace

import pytest

from sentinel_fetch.downloads.coordination import LinkedStop, Team, TeamOptions, claims
from sentinel_fetch.errors import StoppedError
from sentinel_fetch.ledger import JobLedger
from sentinel_fetch.progress import QuotaWarning


class Clock:
    """The ledger's clock, moved by the test."""

    def __init__(self) -> None:
        self.now = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def ledger(tmp_path: Path, clock: Clock) -> Iterator[JobLedger]:
    with JobLedger.open(tmp_path, clock=clock) as opened:
        yield opened


def product(n: int) -> SimpleNamespace:
    return SimpleNamespace(
        id=f"00000000-0000-0000-0000-{n:012d}",
        name=f"S2A_MSIL2A_{n:04d}.SAFE",
        size=1000,
        checksums={},
        file_name=f"S2A_MSIL2A_{n:04d}.SAFE.zip",
    )


def team(ledger: JobLedger, name: str, **options: object) -> Team:
    settings = TeamOptions(account="me@example.com", **options)  # type: ignore[arg-type]
    return Team(ledger, settings, stop=threading.Event(), save_path="/data", worker=name)


def test_a_linked_stop_answers_for_its_product_and_for_the_batch() -> None:
    batch = threading.Event()
    one, other = LinkedStop(batch), LinkedStop(batch)
    one.set()
    assert one.is_set() and one.wait(0) and not other.is_set() and not batch.is_set()
    batch.set()
    assert other.is_set() and other.wait(None)


def test_a_lost_lease_stops_its_writer_and_the_new_holder_is_told_to_resume(
    ledger: JobLedger, clock: Clock
) -> None:
    first, second = team(ledger, "first", lease_s=30.0), team(ledger, "second", lease_s=30.0)
    batch = [product(n) for n in range(3)]
    first.enqueue(batch)
    second.enqueue(batch)  # idempotent: the second worker finds the batch there
    ids = [p.id for p in batch]
    claim = first.claim(ids)
    assert claim is not None and not claim.taken_over
    stop = first.hold(claim)

    clock.now += 31  # the first worker stalled past its lease
    taken = second.claim([claim.item.product_id])
    assert taken is not None and taken.taken_over and taken.previous_worker == "first"
    first.renew()
    assert stop.is_set(), "the stalled writer stops before its next chunk"
    assert first.lost_lease(claim.item)
    assert second.claim([claim.item.product_id]) is None, "exactly one holder"


def test_claims_end_when_every_product_is_done_and_wait_while_others_hold_some(
    ledger: JobLedger, clock: Clock
) -> None:
    mine, theirs = team(ledger, "mine", poll_s=0.0), team(ledger, "theirs")
    batch = [product(n) for n in range(2)]
    mine.enqueue(batch)
    held = theirs.claim([batch[0].id])
    assert held is not None
    sizes = {p.id: p.size for p in batch}
    source = claims(mine, sizes, {})
    got = next(source)
    assert got is not None and got.item.product_id == batch[1].id
    ledger.record(batch[1], "done")
    assert next(source) is None, "the other worker's product is not done yet: wait"
    ledger.record(batch[0], "done")
    theirs.let_go(held.item)
    assert list(source) == [], "all done: the source ends"


def test_the_account_budget_holds_across_workers_and_waiting_is_stoppable(
    ledger: JobLedger,
) -> None:
    workers = [team(ledger, f"w{n}", max_connections=2) for n in range(3)]
    with workers[0].account_slot(None), workers[1].account_slot(None):
        stop = threading.Event()
        stop.set()
        with pytest.raises(StoppedError), workers[2].account_slot(stop):
            pass
        assert ledger.take_slot("me@example.com", "w2", 2, 60.0) is None
    with workers[2].account_slot(None) as slot:
        assert slot.account == "me@example.com"


def test_quota_warnings_and_the_quota_stop(ledger: JobLedger) -> None:
    told: list[QuotaWarning] = []
    worker = team(ledger, "w", quota_bytes=1000, quota_stop_bytes=900)
    worker.emit = told.append
    worker.add_bytes(850)
    assert [(w.fraction, w.used_bytes) for w in told] == [(0.8, 850)]
    assert not worker.quota_refuses(50)
    assert worker.quota_refuses(51)
    assert worker.stopped_because is not None and "850 of 1000" in worker.stopped_because
    worker.renew()  # sends nothing yet: bytes go out with the heartbeat's tick
    worker.close()
    assert ledger.bytes_in_window("me@example.com") == 850
