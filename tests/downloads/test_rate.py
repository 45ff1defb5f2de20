"""The minimum-rate rule, on a simulated clock: what it decides, never how long it takes."""

from __future__ import annotations

import pytest

from sentinel_fetch.downloads.rate import MinimumRate

MINIMUM = 1024.0
WINDOW_S = 60.0


def _simulate(
    rate_bytes_per_s: float,
    *,
    largest: int = 1 << 20,
    seconds: float = 3600,
    rule: MinimumRate | None = None,
) -> bool:
    """A transfer at a steady rate, read the way the transfer reads, judged every second.

    Bytes only count once a read has filled (that is how the transfer sees them).
    Returns whether the rule ever called it too slow.
    """
    rule = rule or MinimumRate(bytes_per_s=MINIMUM, window_s=WINDOW_S, now=0.0)
    now = received = 0.0
    next_judgement = 1.0
    while now < seconds:
        piece = rule.read_size(largest)
        done_at = now + piece / rate_bytes_per_s
        while next_judgement <= done_at:
            if rule.too_slow(now=next_judgement, received=int(received)):
                return True
            next_judgement += 1.0
        rule.read_done(size=piece, duration_s=done_at - now)
        now, received = done_at, received + piece
    return False


@pytest.mark.parametrize("rate", [1.2 * MINIMUM, 2 * MINIMUM, 50_000, 20e6])
def test_a_transfer_above_the_minimum_is_never_called_too_slow(rate: float) -> None:
    assert not _simulate(rate)


@pytest.mark.parametrize("rate", [1.0, 100.0, 0.8 * MINIMUM])
def test_a_transfer_below_the_minimum_is_called_too_slow(rate: float) -> None:
    assert _simulate(rate, seconds=WINDOW_S * 3)


def test_a_trickle_is_judged_after_one_window_not_before() -> None:
    rule = MinimumRate(bytes_per_s=MINIMUM, window_s=WINDOW_S, now=100.0)
    assert not rule.too_slow(now=100.0 + WINDOW_S - 0.001, received=5)
    assert rule.too_slow(now=100.0 + WINDOW_S, received=5)


def test_a_stall_after_a_fast_start_is_judged_in_the_next_window() -> None:
    rule = MinimumRate(bytes_per_s=MINIMUM, window_s=WINDOW_S, now=0.0)
    assert not rule.too_slow(now=WINDOW_S, received=500_000_000)
    assert not rule.too_slow(now=2 * WINDOW_S - 1, received=500_000_000)
    assert rule.too_slow(now=2 * WINDOW_S, received=500_000_000)


def test_reads_grow_to_whole_buffers_when_quick_and_shrink_when_slow() -> None:
    rule = MinimumRate(bytes_per_s=MINIMUM, window_s=WINDOW_S, now=0.0)
    sizes = []
    for _ in range(8):
        sizes.append(rule.read_size(1 << 20))
        rule.read_done(size=sizes[-1], duration_s=0.01)
    assert sizes == [
        16 << 10,
        32 << 10,
        64 << 10,
        128 << 10,
        256 << 10,
        512 << 10,
        1 << 20,
        1 << 20,
    ]
    assert rule.read_size(4096) == 4096
    rule.read_done(size=1000, duration_s=0.01)  # a short read (end of body) proves nothing
    assert rule.read_size(1 << 30) == 2 << 20
    for _ in range(20):
        rule.read_done(size=rule.read_size(1 << 20), duration_s=WINDOW_S)
    assert rule.read_size(1 << 20) == 16 << 10


def test_reads_shrink_again_when_a_fast_transfer_slows_down() -> None:
    """Reads grown to 1 MiB at full speed shrink as soon as they take long.

    (A drop to just above the minimum can still cost the one 1 MiB read begun before it:
    that attempt is abandoned and resumed at once, with small reads again.)
    """
    rule = MinimumRate(bytes_per_s=MINIMUM, window_s=WINDOW_S, now=0.0)
    for _ in range(10):
        rule.read_done(size=rule.read_size(1 << 20), duration_s=0.001)
    assert rule.read_size(1 << 20) == 1 << 20
    assert not _simulate(40 * MINIMUM, rule=rule)
    assert rule.read_size(1 << 20) < 1 << 20
