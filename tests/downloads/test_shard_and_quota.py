"""``--shard K/N`` and the quota meter: pure decisions, tested without a network."""

from __future__ import annotations

import uuid

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sentinel_fetch.downloads.plan import MAX_SHARDS, Shard, in_shard, parse_shard, shard_of
from sentinel_fetch.downloads.quota import (
    QUOTA_BYTES,
    QuotaMeter,
    parse_byte_count,
    parse_quota_stop,
)

IDS = [str(uuid.UUID(int=n * 7919 + 13)) for n in range(3000)]


class _Item:
    def __init__(self, product_id: str) -> None:
        self.id = product_id


@pytest.mark.parametrize("count", [1, 2, 3, 7, 16])
def test_shards_cover_the_batch_exactly_once(count: int) -> None:
    owners = [
        [k for k in range(1, count + 1) if in_shard(product_id, Shard(k, count))]
        for product_id in IDS
    ]
    assert all(len(found) == 1 for found in owners), "every product in exactly one shard"
    sizes = [sum(1 for found in owners if found == [k]) for k in range(1, count + 1)]
    # A fair hash: no shard gets far more than its share (3000 ids; loose on purpose).
    assert max(sizes) < 1.3 * len(IDS) / count


def test_a_shard_does_not_depend_on_the_order_or_the_rest_of_the_batch() -> None:
    shard = Shard(2, 5)
    whole = {item.id for item in shard_of([_Item(i) for i in IDS], shard)}
    backwards = {item.id for item in shard_of([_Item(i) for i in reversed(IDS[:500])], shard)}
    assert backwards == whole & set(IDS[:500])
    # Fixed forever: a rerun on another machine or Python takes the same products.
    assert [in_shard(IDS[n], Shard(1, 3)) for n in range(8)] == [
        in_shard(IDS[n].upper(), Shard(1, 3)) for n in range(8)
    ]
    assert sum(in_shard(IDS[n], Shard(1, 3)) for n in range(300)) == len(
        [1 for n in range(300) if in_shard(IDS[n], Shard(1, 3))]
    )


def test_the_hash_is_pinned() -> None:
    """A changed hash would re-split running jobs: pinned with known answers."""
    ids = [
        "4b1a9e9c-0c6a-4f6e-9d7f-1c2b3a4d5e6f",
        "00000000-0000-0000-0000-000000000001",
        "ffffffff-ffff-ffff-ffff-ffffffffffff",
    ]
    owners = [[k for k in range(1, 9) if in_shard(i, Shard(k, 8))] for i in ids]
    assert owners == [[2], [6], [3]]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("3", "is not K/N"),
        ("a/b", "is not K/N"),
        ("0/3", "K must be 1-3"),
        ("4/3", "K must be 1-3"),
        ("1/0", "must be 1-"),
        (f"1/{MAX_SHARDS + 1}", "must be 1-"),
        ("1/2/3", "is not K/N"),
        ("-1/2", "is not K/N"),
    ],
)
def test_bad_shards_are_one_line(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=message) as refused:
        parse_shard(text)
    assert "\n" not in str(refused.value)


@given(st.integers(1, 50).flatmap(lambda n: st.tuples(st.integers(1, n), st.just(n))))
def test_every_k_of_n_reads_back(pair: tuple[int, int]) -> None:
    k, n = pair
    assert parse_shard(f" {k} / {n} ") == Shard(k, n)
    assert str(Shard(k, n)) == f"{k}/{n}"


# -- the quota meter -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("95%", 950),
        ("80 %", 800),
        ("100%", 1000),
        ("900", 900),
        (900, 900),
        ("0.5 kB", 500),
    ],
)
def test_quota_stop_values(text: str | int, expected: int) -> None:
    assert parse_quota_stop(text, 1000) == expected


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("0%", "up to 100%"),
        ("101%", "up to 100%"),
        ("2000", "past the account's quota"),
        ("lots", "not a percentage"),
        ("", "not a percentage"),
        ("-5", "not a percentage"),
        (0, "at least 1"),
        (True, "not a percentage"),
    ],
)
def test_bad_quota_stops_are_one_line(text: str | int, message: str) -> None:
    with pytest.raises(ValueError, match=message) as refused:
        parse_quota_stop(text, 1000)
    assert "\n" not in str(refused.value)


def test_byte_counts_use_decimal_units_as_cdse_does() -> None:
    assert parse_byte_count("12TB") == QUOTA_BYTES
    assert parse_byte_count("1 GiB") == 1 << 30
    with pytest.raises(ValueError):
        parse_byte_count("12 parsecs")


def test_warnings_at_80_and_95_percent_once_each() -> None:
    meter = QuotaMeter(0, quota_bytes=1000)
    assert meter.start() == []
    assert meter.add(799) == []
    crossed = meter.add(1)
    assert [c.fraction for c in crossed] == [0.80]
    assert meter.add(100) == []
    assert [c.fraction for c in meter.update(960)] == [0.95]
    assert meter.add(10) == [] and meter.update(990) == []


def test_one_jump_past_both_tells_the_higher_one() -> None:
    meter = QuotaMeter(100, quota_bytes=1000)
    assert [c.fraction for c in meter.add(900)] == [0.95]
    assert meter.add(1) == []


def test_a_run_that_starts_past_a_threshold_says_so_once() -> None:
    meter = QuotaMeter(850, quota_bytes=1000)
    assert [c.fraction for c in meter.start()] == [0.80]
    assert meter.start() == []
    assert meter.add(10) == []
    assert [c.fraction for c in meter.add(100)] == [0.95]


def test_the_stop_comes_before_the_quota_is_used_up() -> None:
    meter = QuotaMeter(0, quota_bytes=1000, stop_at_bytes=950)
    assert not meter.must_stop(900)
    assert meter.must_stop(951), "a product that would pass the line is not started"
    meter.add(940)
    assert not meter.must_stop(10)
    assert meter.must_stop(11)
    assert "940 of 1000 bytes" in meter.describe_stop()
    assert not QuotaMeter(999, quota_bytes=1000).must_stop(10**9), "no stop: never"


def test_other_workers_bytes_never_lower_the_meter() -> None:
    meter = QuotaMeter(500, quota_bytes=1000)
    meter.update(100)
    assert meter.used_bytes == 500


def test_products_in_flight_count_against_the_stop() -> None:
    """Four workers starting at once must not overshoot the line by four products."""
    meter = QuotaMeter(0, quota_bytes=1000, stop_at_bytes=500)
    meter.reserve("a", 300)
    assert meter.must_stop(201) and not meter.must_stop(200)
    meter.add(300)
    meter.release("a")
    assert not meter.must_stop(200) and meter.must_stop(201)
