"""The connection governor never exceeds its limit and adapts to 429."""

from __future__ import annotations

import threading
import time

import pytest

from sentinel_fetch.downloads.governor import Governor, StoppedError


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


def test_throttle_lowers_limit_once_per_burst_and_restores_after_cooldown() -> None:
    clock = FakeClock()
    governor = Governor(4, cooldown_s=60.0, clock=clock)
    for _ in range(4):  # four workers refused at the same moment
        governor.throttled()
    assert governor.current_limit == 3
    clock.now += 2
    governor.throttled()
    assert governor.current_limit == 2
    clock.now += 59
    assert governor.current_limit == 2
    clock.now += 2
    assert governor.current_limit == 3
    clock.now += 60
    assert governor.current_limit == 4


def test_limit_never_drops_below_one() -> None:
    clock = FakeClock()
    governor = Governor(2, cooldown_s=60.0, clock=clock)
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
    governor = Governor(4, cooldown_s=10.0)
    governor.throttled(retry_after_s=0.3)
    started = time.monotonic()
    with governor.slot():
        pass
    assert time.monotonic() - started >= 0.25


def test_retry_after_pauses_no_longer_than_the_configured_maximum() -> None:
    clock = FakeClock()
    governor = Governor(4, cooldown_s=10.0, clock=clock, max_pause_s=120.0)
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
