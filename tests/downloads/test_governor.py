"""The connection governor never exceeds its limit and adapts to 429."""

from __future__ import annotations

import threading
import time

import pytest

from sentinel_fetch.downloads.governor import Governor, StoppedError, session_limit


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_concurrent_holders_never_exceed_limit() -> None:
    governor = Governor(3)
    active = 0
    peak = 0
    lock = threading.Lock()

    def worker() -> None:
        nonlocal active, peak
        for _ in range(20):
            with governor.slot():
                with lock:
                    active += 1
                    peak = max(peak, active)
                time.sleep(0.001)
                with lock:
                    active -= 1

    threads = [threading.Thread(target=worker) for _ in range(10)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert peak == 3
    assert governor.peak == 3
    assert governor.in_use == 0


def test_throttle_lowers_limit_once_per_burst_and_probes_back_after_a_quiet_interval() -> None:
    clock = FakeClock()
    governor = Governor(4, probe_after_s=3.0, probe_max_s=300.0, clock=clock)
    for _ in range(4):  # four workers refused at the same moment
        governor.throttled()
    assert governor.current_limit == 3
    clock.now += 2.9
    assert governor.current_limit == 3
    clock.now += 0.1
    assert governor.current_limit == 4, "a transient 429 costs one quiet interval"
    assert governor.probes == 1


def test_probing_climbs_one_stream_per_interval() -> None:
    clock = FakeClock()
    governor = Governor(4, probe_after_s=3.0, clock=clock)
    governor.throttled()
    clock.now += 2
    governor.throttled()
    assert governor.current_limit == 2
    clock.now += 3
    assert governor.current_limit == 3
    clock.now += 1
    assert governor.current_limit == 3
    clock.now += 2
    assert governor.current_limit == 4


def test_a_level_refused_when_probed_is_probed_ever_more_rarely_up_to_the_bound() -> None:
    clock = FakeClock()
    governor = Governor(4, probe_after_s=3.0, probe_max_s=100.0, clock=clock)
    governor.throttled()  # the account allows 3 (another process holds one stream)
    intervals = []
    for _ in range(6):
        started = clock.now
        while governor.current_limit == 3:
            clock.now += 0.5
        intervals.append(clock.now - started)
        governor.throttled()  # the probe to 4 is refused
        assert governor.current_limit == 3
    assert intervals == [3.0, 12.0, 48.0, 100.0, 100.0, 100.0]


def test_a_persistent_lower_limit_costs_a_handful_of_429s_over_five_minutes() -> None:
    clock = FakeClock()
    governor = Governor(4, probe_after_s=3.0, probe_max_s=300.0, clock=clock)
    end = clock.now + 300
    refused = 0
    while clock.now < end:
        if governor.current_limit > 3:
            governor.throttled()
            refused += 1
        clock.now += 0.25
    assert governor.current_limit == 3
    assert refused <= 5


def test_a_probed_level_that_holds_resets_the_interval() -> None:
    clock = FakeClock()
    governor = Governor(4, probe_after_s=3.0, clock=clock)
    governor.throttled()
    clock.now += 3
    assert governor.current_limit == 4
    governor.throttled()  # refused at once: the next probe waits 12 s
    assert governor.probe_interval_s == 12.0
    clock.now += 12
    assert governor.current_limit == 4
    clock.now += 3  # held for a quiet interval: whatever refused it is gone
    assert governor.current_limit == 4
    assert governor.probe_interval_s == 3.0
    governor.throttled()  # a fresh 429, minutes later
    clock.now += 3
    assert governor.current_limit == 4


def test_retry_after_delays_the_probe() -> None:
    clock = FakeClock()
    governor = Governor(4, probe_after_s=3.0, clock=clock)
    governor.throttled(retry_after_s=10.0)
    clock.now += 9.9
    assert governor.current_limit == 3
    clock.now += 0.1
    assert governor.current_limit == 4


def test_a_named_account_limit_becomes_the_ceiling_at_once() -> None:
    clock = FakeClock()
    governor = Governor(8, probe_after_s=3.0, clock=clock)
    governor.throttled(account_limit=3)
    assert governor.current_limit == 3
    assert governor.ceiling == 3
    clock.now += 3600
    assert governor.current_limit == 3, "never probed above the account's limit"
    assert governor.probes == 0


def test_a_named_limit_never_raises_the_ceiling() -> None:
    clock = FakeClock()
    governor = Governor(4, probe_after_s=3.0, clock=clock)
    governor.throttled(account_limit=9999)
    assert governor.ceiling == 4
    assert governor.current_limit == 3
    clock.now += 3
    assert governor.current_limit == 4


@pytest.mark.parametrize(
    ("message", "expected"),
    [
        ("Request failed with status code 429: Max session number 4 exceeded.", 4),
        ('{"detail":"Max session number 3 exceeded."}', 3),
        ("DAT-ZIP-100: Max session number exceeded", None),
        ("Max session number 0 exceeded", None),
        ("Max session number 123456789 exceeded", None),
        ("Too many requests", None),
    ],
)
def test_session_limit_is_read_from_the_429_text(message: str, expected: int | None) -> None:
    assert session_limit(message) == expected


def test_limit_never_drops_below_one() -> None:
    clock = FakeClock()
    governor = Governor(2, probe_after_s=60.0, clock=clock)
    for _ in range(10):
        clock.now += 5
        governor.throttled()
    assert governor.current_limit == 1


def test_stop_interrupts_a_waiting_request() -> None:
    governor = Governor(1)
    stop = threading.Event()
    errors: list[BaseException] = []

    def waiter() -> None:
        try:
            with governor.slot(stop):
                pass
        except StoppedError as exc:
            errors.append(exc)

    with governor.slot():
        thread = threading.Thread(target=waiter)
        thread.start()
        time.sleep(0.05)
        stop.set()
        thread.join(2)
    assert not thread.is_alive()
    assert len(errors) == 1


def test_retry_after_pauses_new_requests() -> None:
    governor = Governor(4, probe_after_s=10.0)
    governor.throttled(retry_after_s=0.3)
    started = time.monotonic()
    with governor.slot():
        pass
    assert time.monotonic() - started >= 0.25


def test_retry_after_pauses_no_longer_than_the_configured_maximum() -> None:
    clock = FakeClock()
    governor = Governor(4, probe_after_s=10.0, clock=clock, max_pause_s=120.0)
    governor.throttled(retry_after_s=999_999_999.0)
    assert governor.pause_remaining_s == 120.0
    clock.now += 100
    governor.throttled(retry_after_s=30.0)
    assert governor.pause_remaining_s == 30.0
    clock.now += 30
    assert governor.pause_remaining_s == 0.0


def test_invalid_limit() -> None:
    with pytest.raises(ValueError):
        Governor(0)


def test_a_slot_is_kept_for_a_resume_only_within_the_limit_in_force() -> None:
    clock = FakeClock()
    governor = Governor(2, probe_after_s=3.0, clock=clock)
    with governor.slot(), governor.slot():
        assert governor.may_keep(), "two held of two: the resume keeps its slot"
        governor.throttled()  # the limit is now 1: one of the two must go back
        assert not governor.may_keep()
    with governor.slot():
        assert governor.may_keep()
        governor.throttled(retry_after_s=10)  # a pause: no new request, kept slot or not
        assert not governor.may_keep()
        clock.now += 10
        assert governor.may_keep()


def test_a_spare_request_gives_way_to_a_waiting_one() -> None:
    governor = Governor(1)
    order: list[str] = []
    stop = threading.Event()

    def take(name: str, spare: bool) -> None:
        with governor.slot(stop, spare=spare):
            order.append(name)

    with governor.slot():
        waiting = threading.Thread(target=take, args=("product", False))
        waiting.start()
        for _ in range(10_000):  # bounded: until the thread is inside its wait
            if governor.waiting == 1:
                break
            stop.wait(0.001)
        assert governor.waiting == 1
        helper = threading.Thread(target=take, args=("helper", True))
        helper.start()
    waiting.join()
    helper.join()
    assert order == ["product", "helper"]
