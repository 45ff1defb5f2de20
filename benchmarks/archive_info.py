"""Item 11: what the emulator pays to describe a small product (its catalogue checksum).

Listing or checksumming many small products must stay cheap: below
``memory_archive_max_bytes`` an archive is built in memory and never written to disk, so
describing one costs about as much as hashing its bytes. The baseline, run alternately
in the same rounds, is exactly that hashing (MD5 + BLAKE3 of the same number of bytes):
the ratio is the cost of building the SAFE tree on top of the digests it must compute
anyway. A test once bounded this with a clock at 1 ms for a 10 kB one-file archive;
complete SAFE trees are about 64 kB with a few dozen members, so the target is 5 ms: a
first listing of 35,000 products then spends under three minutes describing them, and
every later call is a dictionary look-up.
"""

from __future__ import annotations

import hashlib
import tempfile
import time
import uuid
from datetime import datetime, timezone
from pathlib import Path

import blake3

from harness import Context, Row, Target, ratios_of
from sentinel_fetch.emulator.archive import ArchiveStore
from sentinel_fetch.emulator.config import EmulatorConfig
from sentinel_fetch.emulator.model import ProductRecord

_NAME = "S2B_MSIL2A_20240709T074619_N0510_R135_T40XFF_20240709T080457.SAFE"


def _records(count: int, salt: int) -> list[ProductRecord]:
    return [
        ProductRecord(
            id=str(uuid.uuid5(uuid.NAMESPACE_URL, f"archive-info:{salt}:{n}")),
            name=_NAME,
            collection="SENTINEL-2",
            product_type="S2MSI2A",
            content_start=datetime(2024, 7, 9, 7, 46, 19, tzinfo=timezone.utc),
            nominal_size=1_000_000_000,
        )
        for n in range(count)
    ]


def archive_info(context: Context) -> list[Row]:
    """Milliseconds per product for ``ArchiveStore.info`` vs hashing the same bytes."""
    rounds = context.rounds_for(5, 2)
    count = 100 if context.quick else 400
    info_ms: list[float] = []
    hash_ms: list[float] = []
    with tempfile.TemporaryDirectory(dir=context.work_dir) as scratch:
        for round_number in range(rounds):
            store = ArchiveStore(EmulatorConfig(data_dir=Path(scratch) / str(round_number)))
            records = _records(count, round_number)
            began = time.perf_counter()
            lengths = [store.info(record).length for record in records]
            info_ms.append((time.perf_counter() - began) * 1000 / count)
            payload = bytes(max(lengths))
            began = time.perf_counter()
            for _ in records:
                hashlib.md5(payload, usedforsecurity=False).digest()
                blake3.blake3(payload).digest()
            hash_ms.append((time.perf_counter() - began) * 1000 / count)
            if any((Path(scratch) / str(round_number)).rglob("*.zip")):
                raise RuntimeError("a small archive was written to disk")
    context.log(f"  {count} products of {max(lengths)} bytes per round, {rounds} rounds")
    return [
        Row(
            "archive_info",
            11,
            f"emulator: describe one small product ({max(lengths)} B archive)",
            "ms",
            info_ms,
            "MD5 + BLAKE3 of the same bytes",
            hash_ms,
            ratios_of(info_ms, hash_ms),
            Target("value", "<=", 5.0),
            f"{count} products per round; nothing written to disk",
        )
    ]
