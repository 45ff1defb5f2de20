"""The download engine against the emulator, with faults injected by the emulator.

Every test ends by checking the finish folder the way a user would: each file's bytes
hash to the catalogue's BLAKE3/MD5, nothing partial is there, nothing left the save folder.
"""

from __future__ import annotations

import hashlib
import itertools
import os
import random
import threading
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import pytest
from blake3 import blake3

from sentinel_fetch.api import search
from sentinel_fetch.auth import Credentials, TokenManager
from sentinel_fetch.catalogue.product import Product
from sentinel_fetch.catalogue.query import build_query
from sentinel_fetch.downloads.engine import BatchReport, DownloadEngine
from sentinel_fetch.emulator import (
    DEMO_USERNAME,
    BodyFault,
    ChunkedFault,
    CorruptFault,
    CutFault,
    Emulator,
    ExpireTokenFault,
    GzipFault,
    HoldFault,
    IgnoreRangeFault,
    StallFault,
    StatusFault,
    TrickleFault,
)
from sentinel_fetch.errors import InvalidCredentialsError
from sentinel_fetch.http import Transport
from sentinel_fetch.progress import ProductWaiting, ProgressEvent
from sentinel_fetch.settings import Settings
from tests.conftest import with_limits


def _products(settings: Settings, count: int, **fields: object) -> list[Product]:
    query = build_query(
        collections="SENTINEL-2",
        tiles="32TPS",
        start="2023-06-01",
        end="2023-09-30",
        online=True,
        **fields,  # type: ignore[arg-type]
    )
    found = [p for p in search(query, settings=settings) if p.checksums and p.size]
    assert len(found) >= count
    return found[:count]


def _engine(settings: Settings, credentials: Credentials, **kwargs: object) -> DownloadEngine:
    transport = Transport(settings)
    tokens = TokenManager(transport, settings.endpoints, credentials)
    return DownloadEngine(settings, tokens, transport=transport, **kwargs)  # type: ignore[arg-type]


def _assert_verified(settings: Settings, products: list[Product], report: BatchReport) -> None:
    """Every product is in Finish with the catalogue's bytes; nothing partial anywhere."""
    finish = settings.finish_path
    for product in products:
        path = finish / product.file_name
        data = path.read_bytes()
        assert len(data) == product.size, product.name
        if "BLAKE3" in product.checksums:
            assert blake3(data).hexdigest() == product.checksums["BLAKE3"], product.name
        else:
            assert hashlib.md5(data).hexdigest() == product.checksums["MD5"], product.name
    assert sorted(os.listdir(finish)) == sorted(p.file_name for p in products)
    assert not list(settings.temp_path.glob("*.part"))
    assert all(result.status in ("downloaded", "skipped") for result in report.results)


def _run_in_background(
    engine: DownloadEngine, products: list[Product]
) -> Callable[[], BatchReport]:
    """Start ``engine.run`` in a thread; the returned function waits for its report."""
    reports: list[BatchReport] = []
    errors: list[BaseException] = []

    def run() -> None:
        try:
            reports.append(engine.run(products))
        except BaseException as error:  # re-raised in the test's thread
            errors.append(error)

    thread = threading.Thread(target=run, name="engine-under-test")
    thread.start()

    def result() -> BatchReport:
        thread.join()
        if errors:
            raise errors[0]
        return reports[0]

    return result


def test_a_batch_downloads_in_parallel_and_verifies(
    cdse: Emulator, settings: Settings, credentials: Credentials
) -> None:
    products = _products(settings, 8)
    # The first four streams pause after one byte until released: four open at once is
    # then a fact the server sees, however slowly a busy machine schedules the client.
    cdse.faults.add(HoldFault(after_bytes=1, times=4))
    engine = _engine(settings, credentials)
    finished = _run_in_background(engine, products)
    assert cdse.stats.wait_for(lambda stats: stats.current_streams(DEMO_USERNAME) == 4, 120)
    cdse.faults.release_holds()
    report = finished()
    _assert_verified(settings, products, report)
    assert report.count("downloaded") == 8
    assert {r.verified_by for r in report.results} == {"BLAKE3"}
    assert cdse.stats.peak_streams(DEMO_USERNAME) == 4
    assert report.peak_connections == 4
    assert cdse.stats.logins == {DEMO_USERNAME: 1}


@pytest.mark.parametrize("direct_io", [True, False], ids=["direct-io", "page-cache"])
def test_every_fault_users_meet_ends_verified(
    cdse: Emulator, settings: Settings, credentials: Credentials, direct_io: bool
) -> None:
    settings = with_limits(settings, direct_io=direct_io)
    products = _products(settings, 10)
    rng = random.Random(7)
    cdse.config.expire_midstream = True
    plan = [
        CutFault(product=products[0].id, after_bytes=rng.randrange(1, products[0].size)),
        CutFault(product=products[0].id, after_bytes=rng.randrange(1, products[0].size)),
        CutFault(product=products[1].id, after_bytes=rng.randrange(1, products[1].size)),
        CorruptFault(product=products[2].id, offset=rng.randrange(products[2].size)),
        StatusFault(product=products[3].id, status=429, times=4),  # DAT-ZIP-100, no Retry-After
        StatusFault(product=products[4].id, status=429, times=2, retry_after_s=0.5),
        StatusFault(product=products[5].id, status=503, times=3),
        StatusFault(product=products[5].id, status=500, times=1),
        ExpireTokenFault(product=products[6].id, after_bytes=products[6].size // 3),
        CutFault(product=products[7].id, after_bytes=products[7].size // 2),
        IgnoreRangeFault(product=products[7].id),
        StallFault(product=products[8].id, after_bytes=products[8].size // 2, stall_s=7.0),
        CorruptFault(product=products[9].id, offset=0),
        CutFault(product=products[9].id, after_bytes=products[9].size - 1),
    ]
    for fault in plan:
        cdse.faults.add(fault)
    report = _engine(settings, credentials).run(products)
    _assert_verified(settings, products, report)
    assert not cdse.faults.pending(), "every planned fault really happened"
    assert cdse.stats.peak_streams(DEMO_USERNAME) <= 4
    # A token expiring mid-stream is refreshed, not a new login (one session per hour).
    assert cdse.stats.logins == {DEMO_USERNAME: 1}
    assert cdse.stats.refreshes.get(DEMO_USERNAME, 0) >= 1


def test_429_from_a_lower_account_limit_lowers_our_concurrency(
    cdse: Emulator, settings: Settings, credentials: Credentials
) -> None:
    products = _products(settings, 8)
    cdse.config.max_concurrent_downloads = 2  # another tool uses the other two slots
    # Two streams held open: every further request of ours meets the account's limit.
    cdse.faults.add(HoldFault(after_bytes=1, times=2))
    engine = _engine(settings, credentials)
    finished = _run_in_background(engine, products)
    assert cdse.stats.wait_for(lambda stats: stats.throttled > 0, 120)
    assert cdse.stats.wait_for(lambda stats: engine.governor.reductions >= 1, 120)
    cdse.faults.release_holds()
    report = finished()
    _assert_verified(settings, products, report)
    assert cdse.stats.peak_streams(DEMO_USERNAME) <= 2


def test_resume_fetches_only_what_is_missing(
    cdse: Emulator, settings: Settings, credentials: Credentials
) -> None:
    (product,) = _products(settings, 1)
    record = cdse.store.get(product.id)
    assert record is not None
    data = b"".join(
        bytes(chunk) for chunk in cdse.archives.iter_range(record, 0, product.size, 1 << 16)
    )
    prefix = product.size * 6 // 10
    settings.temp_path.mkdir(parents=True)
    (settings.temp_path / f"{product.file_name}.part").write_bytes(data[:prefix])
    report = _engine(settings, credentials).run([product])
    _assert_verified(settings, [product], report)
    assert cdse.stats.bytes_served(product.id) == product.size - prefix
    assert report.results[0].bytes_received == product.size - prefix
    (event,) = cdse.stats.events(
        "download", lambda e: e.product_id == product.id and e.method == "GET"
    )
    assert event.range == f"bytes={prefix}-" and event.status == 206


def test_a_corrupt_partial_file_is_discarded_and_fetched_again(
    cdse: Emulator, settings: Settings, credentials: Credentials
) -> None:
    (product,) = _products(settings, 1)
    settings.temp_path.mkdir(parents=True)
    (settings.temp_path / f"{product.file_name}.part").write_bytes(b"\0" * (product.size // 2))
    report = _engine(settings, credentials).run([product])
    _assert_verified(settings, [product], report)
    assert report.results[0].attempts == 2
    assert cdse.stats.bytes_served(product.id) == product.size - product.size // 2 + product.size


def test_server_that_ignores_range_restarts_from_zero(
    cdse: Emulator, settings: Settings, credentials: Credentials
) -> None:
    products = [p for p in _products(settings, 12) if p.size > 50_000][:2]
    assert len(products) == 2
    cdse.config.range_supported = False
    for product in products:
        cdse.faults.add(CutFault(product=product.id, after_bytes=product.size // 2))
    report = _engine(settings, credentials).run(products)
    _assert_verified(settings, products, report)
    resumed = cdse.stats.events("download", lambda e: e.range is not None)
    assert {e.product_id for e in resumed} == {p.id for p in products}
    assert all(e.status == 200 for e in resumed), "the server ignored Range: full bodies"
    for product in products:
        assert cdse.stats.bytes_served(product.id) == product.size // 2 + product.size


def test_finished_products_are_skipped_without_any_request(
    cdse: Emulator, settings: Settings, credentials: Credentials
) -> None:
    products = _products(settings, 3)
    _engine(settings, credentials).run(products)
    cdse.stats.reset()
    report = _engine(settings, credentials).run(products)
    assert [r.status for r in report.results] == ["skipped"] * 3
    assert cdse.stats.requests("download") == 0
    assert cdse.stats.requests("identity") == 0, "no login when there is nothing to fetch"


def test_offline_and_permanently_failing_products_do_not_stop_the_batch(
    cdse: Emulator, settings: Settings, credentials: Credentials
) -> None:
    products = _products(settings, 3)
    offline_query = build_query(
        collections="SENTINEL-2", online=False, start="2023-01-01", end="2023-12-31"
    )
    offline = next(iter(search(offline_query, settings=settings)))
    cdse.faults.add(StatusFault(product=products[0].id, status=404, times=-1))
    report = _engine(settings, credentials).run([*products, offline])
    statuses = {r.product.id: r for r in report.results}
    assert statuses[offline.id].status == "offline"
    assert "Data Workspace" in (statuses[offline.id].error or "")
    assert statuses[products[0].id].status == "failed"
    assert "404" in (statuses[products[0].id].error or "")
    assert statuses[products[1].id].status == statuses[products[2].id].status == "downloaded"
    assert not cdse.stats.events("download", lambda e: e.product_id == offline.id)
    assert not report.ok


def test_products_without_catalogue_checksum_are_checked_as_zips(
    cdse: Emulator, settings: Settings, credentials: Credentials
) -> None:
    legacy = _legacy_products(settings, 2)
    cdse.faults.add(CutFault(product=legacy[0].id, after_bytes=5000))
    report = _engine(settings, credentials).run(legacy)
    assert [r.status for r in report.results] == ["downloaded"] * len(legacy)
    assert {r.verified_by for r in report.results} == {"zip-crc"}
    corrupt = legacy[-1]
    os.remove(settings.finish_path / corrupt.file_name)
    cdse.faults.add(CorruptFault(product=corrupt.id, offset=100, times=-1))
    report = _engine(with_limits(settings, max_attempts=2), credentials).run([corrupt])
    assert report.results[0].status == "failed"
    assert report.results[0].attempts == 2
    assert "zip" in (report.results[0].error or "")
    assert not (settings.finish_path / corrupt.file_name).exists()


def test_hostile_names_cannot_escape_the_save_folder(
    cdse: Emulator, settings: Settings, credentials: Credentials, tmp_path: Path
) -> None:
    (real,) = _products(settings, 1)
    hostile = replace(real, name="../../../../escaped/evil.SAFE")
    report = _engine(settings, credentials).run([hostile])
    assert report.results[0].status == "downloaded"
    path = report.results[0].path
    assert path is not None and path.parent == settings.finish_path
    assert not (tmp_path / "escaped").exists()
    assert path.read_bytes() == (settings.finish_path / path.name).read_bytes()


def test_stop_keeps_partial_files_and_the_finish_folder_clean(
    cdse: Emulator, settings: Settings, credentials: Credentials
) -> None:
    products = [p for p in _products(settings, 12) if p.size > 40_000][:4]
    assert len(products) == 4
    # Every stream pauses 20 kB in; the stop comes while all four are held.
    cdse.faults.add(HoldFault(after_bytes=20_000, times=4))
    settings = with_limits(settings, chunk_size_bytes=4096)
    engine = _engine(settings, credentials)
    finished = _run_in_background(engine, products)
    assert cdse.stats.wait_for(
        lambda stats: all(stats.bytes_served(p.id) == 20_000 for p in products), 120
    )
    engine.stop.set()
    cdse.faults.release_holds()
    report = finished()
    assert {r.status for r in report.results} == {"stopped"}
    assert not any(settings.finish_path.iterdir())
    parts = list(settings.temp_path.glob("*.part"))
    assert len(parts) == 4
    # What arrived before the stop, plus at most the one read that noticed it.
    assert all(0 < p.stat().st_size <= 20_000 + 4096 for p in parts)
    # The server notices the closed connections at its next write; a rerun started before
    # that would meet 429 DAT-ZIP-100 for the slots they still hold.
    assert cdse.stats.wait_for(lambda stats: stats.current_streams() == 0)
    cdse.stats.reset()
    report = _engine(settings, credentials).run(products)
    _assert_verified(settings, products, report)
    assert len(cdse.stats.events("download", lambda e: e.status == 206)) == 4


@pytest.mark.parametrize("host", ["download", "identity"])
def test_a_stop_ends_a_batch_waiting_to_try_again(
    cdse: Emulator, settings: Settings, credentials: Credentials, host: str
) -> None:
    """A worker waiting out a Retry-After, for a product or for a token, stops at once."""
    products = _products(settings, 2)
    cdse.faults.add(StatusFault(host=host, status=503, retry_after_s=600, times=-1))
    patient = with_limits(settings, backoff_base_s=600.0, backoff_max_s=600.0)
    engine = _engine(patient, credentials)
    finished = _run_in_background(engine, products)
    assert cdse.stats.wait_for(lambda stats: stats.requests(host, 503) >= 1)
    engine.stop.set()
    report = finished()
    assert {r.status for r in report.results} == {"stopped"}
    assert not any(patient.finish_path.iterdir())


def test_wrong_credentials_stop_everything_after_one_attempt(
    cdse: Emulator, settings: Settings
) -> None:
    products = _products(settings, 4)
    with pytest.raises(InvalidCredentialsError):
        _engine(settings, Credentials(DEMO_USERNAME, "wrong-password-123")).run(products)
    assert cdse.stats.failed_logins == {DEMO_USERNAME: 1}
    assert cdse.stats.requests("download") == 0


def test_one_connection_serves_product_after_product(
    cdse: Emulator, settings: Settings, credentials: Credentials, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Keep-alive between products: 200 small products must not mean 200 TLS handshakes."""
    import urllib3.connection

    connects: list[str] = []
    original = urllib3.connection.HTTPSConnection.connect

    def counting_connect(self: urllib3.connection.HTTPSConnection) -> None:
        connects.append(f"{self.host}:{self.port}")
        original(self)

    monkeypatch.setattr(urllib3.connection.HTTPSConnection, "connect", counting_connect)
    products = _products(settings, 6)
    report = _engine(with_limits(settings, workers=1), credentials).run(products)
    _assert_verified(settings, products, report)
    download = settings.endpoints.download.split("/")[2]
    # Two threads (one worker plus the spare) may each open one connection.
    assert 1 <= connects.count(download) <= 2, connects


@pytest.mark.parametrize("workers", [1, 3])
def test_the_client_itself_never_opens_more_than_workers(
    cdse: Emulator, settings: Settings, credentials: Credentials, workers: int
) -> None:
    """With the server's own limit out of the way, the peak it sees is the client's."""
    products = _products(settings, 8)
    cdse.config.max_concurrent_downloads = 16
    # The first streams wait until the client has opened all it may: the peak is reached
    # whatever the machine's load.
    cdse.faults.add(HoldFault(after_bytes=1, times=workers))
    engine = _engine(with_limits(settings, workers=workers), credentials)
    finished = _run_in_background(engine, products)
    assert cdse.stats.wait_for(lambda stats: stats.current_streams(DEMO_USERNAME) == workers, 120)
    cdse.faults.release_holds()
    report = finished()
    _assert_verified(settings, products, report)
    assert cdse.stats.peak_streams(DEMO_USERNAME) == workers
    assert cdse.stats.throttled == 0


@pytest.mark.parametrize(
    "hostile_id",
    [
        "../../../auth/realms/CDSE/protocol/openid-connect/token",
        "00000000-0000-0000-0000-000000000000)/Nodes(x",
        "5ff3c4c8-a778-40c2-bf2f-0b6b98e179c8?token=x",
        "5ff3c4c8-a778-40c2-bf2f-0b6b98e179c8#",
        "{5ff3c4c8-a778-40c2-bf2f-0b6b98e179c8}",
        "",
    ],
)
def test_product_ids_that_are_not_uuids_are_refused_before_any_request(
    cdse: Emulator, settings: Settings, credentials: Credentials, hostile_id: str
) -> None:
    (real,) = _products(settings, 1)
    hostile = replace(real, id=hostile_id, name=f"{real.name}-hostile")
    report = _engine(settings, credentials).run([hostile, real])
    failed, downloaded = report.results
    assert failed.status == "failed" and failed.attempts == 0
    assert "not a UUID" in (failed.error or "")
    assert downloaded.status == "downloaded"
    # Only the real product was ever asked for (a retry of it on a loaded machine is fine).
    assert {e.product_id for e in cdse.stats.events("download")} == {real.id}


def test_a_huge_retry_after_waits_no_longer_than_backoff_max(
    cdse: Emulator, settings: Settings, credentials: Credentials
) -> None:
    products = _products(settings, 2)
    cdse.faults.add(StatusFault(product=products[0].id, status=429, retry_after_s=999_999_999))
    waits: list[float] = []
    engine: DownloadEngine | None = None

    def progress(event: ProgressEvent) -> None:
        if isinstance(event, ProductWaiting):
            waits.append(event.delay_s)
            if event.delay_s > settings.limits.backoff_max_s and engine is not None:
                engine.stop.set()  # a parked worker: fail now rather than wait it out

    engine = _engine(settings, credentials, progress=progress)
    report = engine.run(products)
    _assert_verified(settings, products, report)
    assert waits and all(wait <= settings.limits.backoff_max_s for wait in waits)
    assert engine.governor.pause_remaining_s <= settings.limits.backoff_max_s


def _run_watched(
    engine: DownloadEngine,
    products: list[Product],
    cdse: Emulator,
    ceiling: int,
    byte_ceiling: int | None = None,
) -> BatchReport:
    """Run a batch; stop it if the emulator sees more than ``ceiling`` product requests
    (or serves more than ``byte_ceiling`` bytes).

    A client without bounds would fetch forever: the ceiling turns that into a failing
    test instead of a hung one (the wait is a safety net, nothing is timed).
    """
    result: dict[str, BatchReport] = {}
    worker = threading.Thread(target=lambda: result.update(report=engine.run(products)))
    worker.start()
    cdse.stats.wait_for(
        lambda stats: (
            not worker.is_alive()
            or stats.requests("download") > ceiling
            or (byte_ceiling is not None and stats.bytes_served() > byte_ceiling)
        ),
        timeout_s=120,
    )
    engine.stop.set()
    worker.join()
    return result["report"]


def test_a_product_failing_its_checksum_on_a_cut_connection_is_bounded(
    cdse: Emulator, settings: Settings, credentials: Credentials
) -> None:
    """Every cycle resumes with progress, then fails the checksum: no counter ever fills up
    unless attempts and bytes are bounded whatever happens in each attempt."""
    (product,) = _products(settings, 1)
    cdse.faults.add(CutFault(product=product.id, after_bytes=product.size // 2, times=-1))
    cdse.faults.add(CorruptFault(product=product.id, offset=product.size // 3, times=-1))
    settings = with_limits(settings, workers=1, max_total_attempts=30, max_fetched_size_multiple=3)
    report = _run_watched(_engine(settings, credentials), [product], cdse, ceiling=60)
    (result,) = report.results
    assert result.status == "failed"
    assert (result.error or "").startswith(f"gave up after {result.attempts} attempts / ")
    assert any(reason in (result.error or "") for reason in ("mismatch", "connection closed"))
    assert result.bytes_received <= 3 * product.size
    served = cdse.stats.bytes_served(product.id)
    # What the client read is bounded exactly; the server may have pushed one body more
    # into the socket buffers before the client hung up.
    assert served <= 4 * product.size
    assert len(cdse.stats.events("download", lambda e: e.product_id == product.id)) <= 30
    assert not (settings.finish_path / product.file_name).exists()


def test_progress_a_few_bytes_at_a_time_is_bounded_in_attempts(
    cdse: Emulator, settings: Settings, credentials: Credentials
) -> None:
    products = _products(settings, 2)
    stuck = products[0]
    cdse.faults.add(CutFault(product=stuck.id, after_bytes=1000, times=-1))
    settings = with_limits(settings, max_total_attempts=10)
    report = _run_watched(_engine(settings, credentials), products, cdse, ceiling=40)
    failed, downloaded = report.results
    assert failed.status == "failed" and failed.attempts == 10
    assert (failed.error or "").startswith("gave up after 10 attempts / 10000 bytes")
    assert failed.bytes_received == 10_000
    assert downloaded.status == "downloaded", "the batch goes on"
    # Resumes with progress never wait: no backoff was spent on them.
    assert len(cdse.stats.events("download", lambda e: e.product_id == stuck.id)) == 10


def _legacy_products(settings: Settings, count: int) -> list[Product]:
    """Older holdings: Checksum [] and ContentLength 0 in the catalogue.

    Not the ``[{}]`` entries, which have a size (tests/test_real_responses.py follows those).
    """
    query = build_query(collections="SENTINEL-2", online=True, start="2019-01-01", end="2020-12-31")
    found = (p for p in search(query, settings=settings) if not p.checksums and not p.size)
    legacy = list(itertools.islice(found, count))
    assert len(legacy) == count
    return legacy


def test_a_body_is_never_written_past_the_catalogue_size(
    cdse: Emulator, settings: Settings, credentials: Credentials
) -> None:
    products = _products(settings, 3)
    endless, longer, chunked = products
    cdse.faults.add(ChunkedFault(product=endless.id, extra_bytes=-1))
    cdse.faults.add(ChunkedFault(product=longer.id, extra_bytes=5000, times=-1))
    cdse.faults.add(ChunkedFault(product=chunked.id))  # a plain chunked body is fine
    settings = with_limits(settings, max_total_attempts=4)
    total = sum(p.size for p in products)
    report = _run_watched(_engine(settings, credentials), products, cdse, 40, 50 * total)
    results = {r.product.id: r for r in report.results}
    assert results[endless.id].status == "downloaded"
    assert results[endless.id].bytes_received == 2 * endless.size, "one body cut at its size"
    assert results[chunked.id].status == "downloaded"
    assert results[longer.id].status == "failed"
    assert "more than" in (results[longer.id].error or "")
    assert results[longer.id].bytes_received == 3 * longer.size, "the byte budget ends it"
    _assert_verified(
        settings,
        [endless, chunked],
        report.__class__([results[endless.id], results[chunked.id]], report.elapsed_s),
    )


def test_a_product_of_unknown_size_is_bounded_by_unknown_size_max_bytes(
    cdse: Emulator, settings: Settings, credentials: Credentials
) -> None:
    (product,) = _legacy_products(settings, 1)
    cdse.faults.add(ChunkedFault(product=product.id, extra_bytes=-1))
    settings = with_limits(settings, unknown_size_max_bytes=300_000)
    report = _run_watched(_engine(settings, credentials), [product], cdse, 40, 50_000_000)
    (result,) = report.results
    assert result.status == "downloaded" and result.verified_by == "zip-crc"
    assert result.attempts == 2
    served = cdse.stats.events("download", lambda e: e.product_id == product.id)
    true_size = served[-1].bytes_sent
    assert result.bytes_received == 300_000 + true_size
    assert (settings.finish_path / product.file_name).stat().st_size == true_size


def test_products_are_asked_for_without_compression(
    cdse: Emulator, settings: Settings, credentials: Credentials
) -> None:
    """An nginx-like host compresses only for clients that accept it: ours never do."""
    products = _products(settings, 2)
    for product in products:
        cdse.faults.add(GzipFault(product=product.id, times=-1))
    report = _engine(settings, credentials).run(products)
    _assert_verified(settings, products, report)
    assert not [f for f in cdse.faults.fired if f.fault.kind == "gzip"]


def test_a_host_that_compresses_anyway_still_yields_the_archive(
    cdse: Emulator, settings: Settings, credentials: Credentials
) -> None:
    products = _products(settings, 3)
    with_length, chunked, resumed = products
    for product, chunked_body in ((with_length, False), (chunked, True), (resumed, True)):
        cdse.faults.add(
            GzipFault(
                product=product.id, ignore_accept_encoding=True, chunked=chunked_body, times=-1
            )
        )
    cdse.faults.add(CutFault(product=resumed.id, after_bytes=resumed.size // 3))
    report = _engine(settings, credentials).run(products)
    _assert_verified(settings, products, report)  # the bytes on disk are the archive
    fired = [f for f in cdse.faults.fired if f.fault.kind == "gzip"]
    assert {f.product_id for f in fired} == {p.id for p in products}


def test_a_compressed_body_that_decodes_past_the_size_is_bounded(
    cdse: Emulator, settings: Settings, credentials: Credentials
) -> None:
    """A gzip body of a few KiB that decodes to 16 MiB more than the product.

    The size is counted on the decoded bytes, so the part file stops at the catalogue's
    size and the byte budget ends the product, whether the host announces the compressed
    length or sends it chunked.
    """
    products = _products(settings, 2)
    for product, chunked_body in zip(products, (True, False), strict=True):
        cdse.faults.add(
            GzipFault(
                product=product.id,
                ignore_accept_encoding=True,
                chunked=chunked_body,
                extra_bytes=16 << 20,
                times=-1,
            )
        )
    settings = with_limits(settings, max_total_attempts=4)
    total = sum(p.size for p in products)
    report = _run_watched(_engine(settings, credentials), products, cdse, 40, 50 * total)
    for result in report.results:
        assert result.status == "failed"
        assert "more than" in (result.error or "")
        assert result.bytes_received <= 3 * result.product.size, "the byte budget ends it"
    for product in products:
        assert not (settings.finish_path / product.file_name).exists()
    largest = max(p.size for p in products)
    assert all(f.stat().st_size <= largest for f in settings.temp_path.rglob("*") if f.is_file())
    fired = {f.product_id for f in cdse.faults.fired if f.fault.kind == "gzip"}
    assert {p.id for p in products} <= fired


def test_a_body_trickling_below_the_minimum_rate_is_abandoned_and_resumed(
    cdse: Emulator, settings: Settings, credentials: Credentials
) -> None:
    """Each read gets a byte before the read timeout, so only the rate guard can end it.

    The trickle (20 bytes/s) stays far below the minimum whatever the machine's load, and
    the client sees none of its bytes (a read waits for a whole buffer): the outcome does
    not depend on timing, only how soon it comes.
    """
    products = _products(settings, 2)
    slow = products[0]
    cdse.faults.add(
        TrickleFault(
            product=slow.id, after_bytes=slow.size // 2, bytes_per_write=1, interval_s=0.05
        )
    )
    settings = with_limits(settings, min_rate_bytes_per_s=20_000, min_rate_window_s=0.5)
    reasons: list[str] = []
    too_slow = threading.Event()

    def progress(event: ProgressEvent) -> None:
        if isinstance(event, ProductWaiting) and event.name == slow.name:
            reasons.append(event.reason)
            if "too slow" in event.reason:
                too_slow.set()

    engine = _engine(settings, credentials, progress=progress)
    result: dict[str, BatchReport] = {}
    worker = threading.Thread(target=lambda: result.update(report=engine.run(products)))
    worker.start()
    too_slow.wait(timeout=60)  # a safety net: without the guard the trickle lasts hours
    if not too_slow.is_set():
        engine.stop.set()
    worker.join()
    report = result["report"]
    _assert_verified(settings, products, report)
    assert any("too slow" in reason for reason in reasons), reasons
    assert not cdse.faults.pending()
    resumed = cdse.stats.events("download", lambda e: e.product_id == slow.id and e.range)
    assert resumed, "the bytes received before the trickle were kept"


@pytest.mark.parametrize("multiple", [1, 3])
def test_the_byte_budget_of_a_product_of_unknown_size_follows_the_size_announced(
    cdse: Emulator, settings: Settings, credentials: Credentials, multiple: int
) -> None:
    (product,) = _legacy_products(settings, 1)
    cdse.faults.add(CorruptFault(product=product.id, offset=100, times=-1))
    settings = with_limits(settings, max_fetched_size_multiple=multiple)
    report = _engine(settings, credentials).run([product])
    (result,) = report.results
    gets = cdse.stats.events("download", lambda e: e.product_id == product.id)
    size = gets[0].bytes_sent
    budget = f"byte budget of {multiple * size} bytes"
    assert result.status == "failed" and budget in (result.error or "")
    assert result.attempts == len(gets) == multiple, "no request once the budget is spent"
    assert result.bytes_received == multiple * size


@pytest.mark.parametrize(
    "lengths",
    [("lots",), ("-5",), ("1e3",), ("10", "20"), ("", "7"), ("99999999999999999999999",)],
    ids=["text", "negative", "float", "conflicting", "empty-and-number", "huge"],
)
def test_a_malformed_or_conflicting_content_length_is_not_trusted(
    cdse: Emulator, settings: Settings, credentials: Credentials, lengths: tuple[str, ...]
) -> None:
    """The body is judged by the catalogue's size, whatever the headers say."""
    (product,) = _products(settings, 1)
    headers = tuple(("Content-Length", value) for value in lengths)
    cdse.faults.add(
        BodyFault(product=product.id, parts=(("x", 3 * product.size),), headers=headers)
    )
    report = _engine(settings, credentials).run([product])
    (result,) = report.results
    assert result.status == "downloaded", result.error
    # The first answer was the hostile one; the body was cut at the catalogue's size,
    # the attempt failed, and the retry fetched the real archive.
    first = cdse.stats.events("download", lambda e: e.product_id == product.id)[0]
    assert first.status == 200
    for part in settings.temp_path.glob("*.part"):
        assert part.stat().st_size <= product.size


def test_a_named_account_limit_is_kept_after_one_429(
    cdse: Emulator, settings: Settings, credentials: Credentials
) -> None:
    products = _products(settings, 8)
    cdse.config.max_concurrent_downloads = 3
    cdse.config.session_number_in_message = True  # "Max session number 3 exceeded"
    # Three streams held open: the fourth worker's request meets the account's limit.
    cdse.faults.add(HoldFault(after_bytes=1, times=3))
    engine = _engine(settings, credentials)
    finished = _run_in_background(engine, products)
    assert cdse.stats.wait_for(lambda stats: stats.throttled > 0, 120)
    assert cdse.stats.wait_for(lambda stats: engine.governor.reductions >= 1, 120)
    cdse.faults.release_holds()
    report = finished()
    _assert_verified(settings, products, report)
    engine.transport.close()
    assert engine.governor.ceiling == 3
    assert engine.governor.probes == 0, "never probed above the limit the server named"
    assert cdse.stats.throttled == 1
    assert cdse.stats.peak_streams(DEMO_USERNAME) == 3


def test_a_cut_connection_resumes_at_once_where_it_stopped(
    cdse: Emulator, settings: Settings, credentials: Credentials
) -> None:
    products = _products(settings, 2)
    cut = products[0]
    cdse.faults.add(CutFault(product=cut.id, after_bytes=cut.size // 3, times=2))
    waits: list[ProductWaiting] = []

    def progress(event: ProgressEvent) -> None:
        if isinstance(event, ProductWaiting):
            waits.append(event)

    engine = _engine(settings, credentials, progress=progress)
    report = engine.run(products)
    engine.transport.close()
    _assert_verified(settings, products, report)
    assert [w.name for w in waits] == [cut.name, cut.name]
    assert [w.delay_s for w in waits] == [0.0, 0.0], "bytes were flowing: no backoff"
    requests = cdse.stats.events("download", lambda e: e.product_id == cut.id)
    assert len(requests) == 3
    assert requests[0].range is None
    assert requests[1].range == f"bytes={cut.size // 3}-"
    assert report.results[0].attempts == 3


def _held_until_helped(
    cdse: Emulator, engine: DownloadEngine, product: Product
) -> Callable[[], BatchReport]:
    """Run ``product`` alone with its first stream held after one byte until a helper asked
    for a range of it: the owner is then still at its start, whatever the machine's speed."""
    cdse.faults.add(HoldFault(product=product.id, after_bytes=1, times=1))
    finished = _run_in_background(engine, [product])

    def helped(stats: object) -> bool:
        ranges = cdse.stats.events("download", lambda e: e.range is not None)
        return any(e.range and not e.range.endswith("-") for e in ranges)

    assert cdse.stats.wait_for(helped, 120)
    return finished


def test_free_connections_help_finish_the_last_product(
    cdse: Emulator, settings: Settings, credentials: Credentials
) -> None:
    (product,) = _products(settings, 1)
    engine = _engine(settings, credentials)
    engine.min_piece_bytes = 4096
    finished = _held_until_helped(cdse, engine, product)
    cdse.faults.release_holds()
    report = finished()
    engine.transport.close()
    _assert_verified(settings, [product], report)
    requests = cdse.stats.events("download", lambda e: e.product_id == product.id)
    helpers = [e for e in requests if e.range is not None]
    assert helpers and all(e.status == 206 for e in helpers)
    # Every byte was fetched once: helped ranges are not fetched again by the owner.
    assert report.results[0].attempts == 1
    assert cdse.stats.bytes_served(product.id) <= product.size + 2 * 16384
    assert cdse.stats.peak_streams(DEMO_USERNAME) <= settings.limits.workers
    assert not any((settings.temp_path / ".pieces").glob("*")), "helpers' pieces are gone"


def test_a_host_that_ignores_a_helpers_range_ends_the_helping_and_the_product_verifies(
    cdse: Emulator, settings: Settings, credentials: Credentials
) -> None:
    (product,) = _products(settings, 1)
    cdse.faults.add(IgnoreRangeFault(times=1))
    engine = _engine(settings, credentials)
    engine.min_piece_bytes = 4096
    finished = _held_until_helped(cdse, engine, product)
    cdse.faults.release_holds()
    report = finished()
    engine.transport.close()
    _assert_verified(settings, [product], report)
    assert any(
        e.range is not None and e.status == 200
        for e in cdse.stats.events("download", lambda e: e.product_id == product.id)
    ), "the range was answered with the whole product"


def test_a_cut_connection_keeps_its_slot_while_it_resumes(
    cdse: Emulator, settings: Settings, credentials: Credentials
) -> None:
    settings = with_limits(settings, workers=1)
    products = _products(settings, 2)
    cut = products[0]
    cdse.faults.add(CutFault(product=cut.id, after_bytes=cut.size // 3, times=1))
    engine = _engine(settings, credentials)
    report = engine.run(products)
    engine.transport.close()
    _assert_verified(settings, products, report)
    # The spare thread waits with the second product for the one slot: it must not get
    # the slot between the cut and the resume.
    # Events are logged as answers end: the cut's, then its resume's, with nothing
    # in between; whichever product's thread got the slot first.
    order = [e.product_id for e in cdse.stats.events("download")]
    assert order in ([cut.id, cut.id, products[1].id], [products[1].id, cut.id, cut.id])


def test_a_corrupt_body_is_fetched_again_at_once_on_its_slot(
    cdse: Emulator, settings: Settings, credentials: Credentials
) -> None:
    settings = with_limits(settings, workers=1)
    product, other = _products(settings, 2)
    cdse.faults.add(CorruptFault(product=product.id, offset=product.size // 2))
    waits: list[ProductWaiting] = []

    def progress(event: ProgressEvent) -> None:
        if isinstance(event, ProductWaiting):
            waits.append(event)

    engine = _engine(settings, credentials, progress=progress)
    report = engine.run([product, other])
    engine.transport.close()
    _assert_verified(settings, [product, other], report)
    assert [w.delay_s for w in waits] == [0.0], "the host served at full speed: no backoff"
    assert report.results[0].attempts == 2
    # Judged before its slot was given back: the second product did not get in between.
    order = [e.product_id for e in cdse.stats.events("download")]
    assert order in ([product.id, product.id, other.id], [other.id, product.id, product.id])


def test_pieces_a_killed_run_left_are_deleted_by_the_next_run(
    cdse: Emulator, settings: Settings, credentials: Credentials
) -> None:
    (product,) = _products(settings, 1)
    stale = settings.temp_path / ".pieces" / "0123456789abcdef-65536.piece"
    stale.parent.mkdir(parents=True)
    stale.write_bytes(b"left by a run killed while helping")
    engine = _engine(settings, credentials)
    report = engine.run([product])
    engine.transport.close()
    _assert_verified(settings, [product], report)
    assert not stale.exists()


def test_a_stop_while_helped_leaves_a_part_file_the_next_run_resumes(
    cdse: Emulator, settings: Settings, credentials: Credentials
) -> None:
    (product,) = _products(settings, 1)
    engine = _engine(settings, credentials)
    engine.min_piece_bytes = 4096
    finished = _held_until_helped(cdse, engine, product)
    engine.stop.set()
    cdse.faults.release_holds()
    report = finished()
    engine.transport.close()
    assert report.results[0].status == "stopped"
    part = settings.temp_path / f"{product.file_name}.part"
    kept = part.stat().st_size if part.exists() else 0
    assert kept < product.size
    # The part file is a prefix of the product: the next run appends to it and verifies
    # at the first attempt (a part file with a hole would fail its checksum first).
    again = _engine(settings, credentials)
    second = again.run([product])
    again.transport.close()
    _assert_verified(settings, [product], second)
    assert second.results[0].attempts == 1
