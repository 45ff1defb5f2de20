"""Bands and files of products: STAC look-ups, per-file transfers, verification, reruns.

Every test checks the finish folder the way a user would: each chosen file is at
``<finish>/<name>.SAFE/<path inside the SAFE>`` with the SHA3-256 of the bytes the
emulator holds for it, nothing else was fetched (the emulator counts bytes per file),
and nothing partial is left.
"""

from __future__ import annotations

import dataclasses
import hashlib

import pytest

from sentinel_fetch.api import download, search
from sentinel_fetch.auth import Credentials, TokenManager
from sentinel_fetch.catalogue.product import Product
from sentinel_fetch.catalogue.query import build_query
from sentinel_fetch.catalogue.stac import StacLookup, item_id
from sentinel_fetch.downloads.engine import BatchReport
from sentinel_fetch.downloads.files import plan_files
from sentinel_fetch.downloads.selection import PRESETS, Selection
from sentinel_fetch.emulator import CorruptFault, CutFault, Emulator, RewriteFault, StatusFault
from sentinel_fetch.emulator.model import FileDigest
from sentinel_fetch.errors import SelectionError
from sentinel_fetch.http import Transport
from sentinel_fetch.ledger import JobLedger
from sentinel_fetch.settings import Settings


@pytest.fixture
def band_settings(settings: Settings, cdse: Emulator) -> Settings:
    """The client's settings with the emulator's STAC endpoint."""
    return settings.with_changes(
        endpoints=dataclasses.replace(settings.endpoints, stac=cdse.stac_url)
    )


def l2a(settings: Settings, count: int) -> list[Product]:
    """Online Sentinel-2 L2A products, largest first (their bands are above the floor)."""
    query = build_query(
        collections="SENTINEL-2",
        product_types="L2A",
        tiles="32TPS",
        start="2023-06-01",
        end="2023-09-30",
        online=True,
    )
    found = sorted(search(query, settings=settings), key=lambda p: -p.size)
    assert len(found) >= count
    return found[:count]


def grd(settings: Settings, count: int) -> list[Product]:
    query = build_query(
        collections="SENTINEL-1",
        product_types="GRD",
        start="2023-06-01",
        end="2023-06-30",
        online=True,
        name_contains="1SDV",
    )
    found = [p for p in search(query, settings=settings) if p.name.endswith(".SAFE")]
    assert len(found) >= count
    return found[:count]


def digests(cdse: Emulator, product: Product) -> dict[str, FileDigest]:
    """``path inside the SAFE -> digests`` of what the emulator serves for ``product``."""
    record = cdse.store.get(product.id)
    assert record is not None
    prefix = f"{product.name}/"
    return {
        d.path.removeprefix(prefix): d
        for d in cdse.archives.info(record).files
        if d.path.startswith(prefix)
    }


def chosen(cdse: Emulator, product: Product, *endings: str) -> dict[str, FileDigest]:
    files = digests(cdse, product)
    picked = {p: d for p, d in files.items() if p.endswith(endings)}
    assert len(picked) == len(endings), (endings, sorted(files))
    return picked


def assert_files(
    settings: Settings, cdse: Emulator, product: Product, expected: dict[str, FileDigest]
) -> None:
    """The product's folder holds exactly ``expected``, each with its SHA3-256."""
    folder = settings.finish_path / product.name
    on_disk = {str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file()}
    assert on_disk == set(expected)
    for path, digest in expected.items():
        data = (folder / path).read_bytes()
        assert len(data) == digest.size, path
        assert hashlib.sha3_256(data).hexdigest() == digest.sha3_256, path
    assert not list(settings.temp_path.rglob("*.part"))


def served(cdse: Emulator, product: Product) -> dict[str, int]:
    """Bytes the emulator sent per file of ``product`` (paths inside the SAFE)."""
    by_file = cdse.stats.bytes_by_file(product.id).get(product.id, {})
    return {path.removeprefix(f"{product.name}/"): count for path, count in by_file.items()}


def run(
    settings: Settings, credentials: Credentials, products: list[Product], **chosen: object
) -> BatchReport:
    return download(products, settings=settings, credentials=credentials, **chosen)  # type: ignore[arg-type]


# Selection ------------------------------------------------------------------------------


def test_bands_fetch_only_those_files_at_their_finest_resolution(
    band_settings: Settings, credentials: Credentials, cdse: Emulator
) -> None:
    products = l2a(band_settings, 3)
    cdse.stats.reset()

    report = run(band_settings, credentials, products, bands="B04,B08,SCL")

    assert report.ok
    for product, result in zip(products, report.results, strict=True):
        expected = chosen(cdse, product, "_B04_10m.jp2", "_B08_10m.jp2", "_SCL_20m.jp2")
        assert_files(band_settings, cdse, product, expected)
        assert served(cdse, product) == {p: d.size for p, d in expected.items()}
        assert result.status == "downloaded"
        assert result.verified_by == "SHA3-256"
        assert result.path == band_settings.finish_path / product.name
    # One STAC request for the batch; no whole archive was asked for.
    assert cdse.stats.requests("stac") == 1
    assert not any(p.endswith("$value") and "Nodes" not in p for p in _paths(cdse))


def _paths(cdse: Emulator) -> list[str]:
    return [event.path for event in cdse.stats.events() if event.host == "download"]


def test_a_resolution_and_file_patterns_pick_exactly_those_files(
    band_settings: Settings, credentials: Credentials, cdse: Emulator
) -> None:
    product = l2a(band_settings, 1)[0]

    report = run(
        band_settings,
        credentials,
        [product],
        bands=["B04_20m"],
        files=["GRANULE/*/MTD_TL.xml", "manifest.safe"],
    )

    assert report.ok
    expected = chosen(cdse, product, "_B04_20m.jp2", "/MTD_TL.xml", "manifest.safe")
    assert_files(band_settings, cdse, product, expected)


@pytest.mark.parametrize("name", ["rgbnir", "vegetation", "metadata"])
def test_each_sentinel2_preset(
    band_settings: Settings, credentials: Credentials, cdse: Emulator, name: str
) -> None:
    product = l2a(band_settings, 1)[0]
    endings = {
        "rgbnir": ("_B02_10m.jp2", "_B03_10m.jp2", "_B04_10m.jp2", "_B08_10m.jp2"),
        "vegetation": ("_B04_10m.jp2", "_B08_10m.jp2", "_SCL_20m.jp2"),
        "metadata": (
            "manifest.safe",
            "MTD_MSIL2A.xml",
            "INSPIRE.xml",
            "/MTD_TL.xml",
            "/MTD_DS.xml",
        ),
    }[name]

    report = run(band_settings, credentials, [product], preset=name)

    assert report.ok, report.results
    # The metadata XML carry STAC's malformed MD5-coded checksums: manifest.safe's SHA3-256
    # verifies them, so nothing is left unverified.
    assert report.results[0].unverified == ()
    assert_files(band_settings, cdse, product, chosen(cdse, product, *endings))


@pytest.mark.parametrize("name", ["vv", "vh"])
def test_each_sentinel1_preset_takes_one_polarisation(
    band_settings: Settings, credentials: Credentials, cdse: Emulator, name: str
) -> None:
    product = grd(band_settings, 1)[0]
    files = digests(cdse, product)
    expected = {p: d for p, d in files.items() if p.startswith("measurement/") and f"-{name}-" in p}
    assert expected

    report = run(band_settings, credentials, [product], preset=name)

    assert report.ok, report.results
    assert_files(band_settings, cdse, product, expected)
    assert PRESETS[name].bands == (name.upper(),)


def test_a_band_no_product_has_is_refused_before_anything_is_sent(
    band_settings: Settings, credentials: Credentials, cdse: Emulator
) -> None:
    products = l2a(band_settings, 1)
    cdse.stats.reset()

    with pytest.raises(SelectionError, match="B99"):
        run(band_settings, credentials, products, bands="B04,B99")

    assert cdse.stats.requests() == 0


def test_a_product_without_the_band_fails_with_its_reason_and_the_others_go_on(
    band_settings: Settings, credentials: Credentials, cdse: Emulator
) -> None:
    products = [*l2a(band_settings, 1), *grd(band_settings, 1)]

    report = run(band_settings, credentials, products, bands="B04")

    assert [r.status for r in report.results] == ["downloaded", "failed"]
    assert "no file matches B04" in (report.results[1].error or "")


# Transfers ------------------------------------------------------------------------------


def test_a_band_cut_in_the_middle_resumes_where_it_stopped(
    band_settings: Settings, credentials: Credentials, cdse: Emulator
) -> None:
    product = l2a(band_settings, 1)[0]
    expected = chosen(cdse, product, "_B04_10m.jp2")
    ((path, digest),) = expected.items()
    assert digest.size > 1000
    cut = digest.size // 2
    cdse.faults.add(CutFault(product=product.id, path_contains="_B04_10m.jp2", after_bytes=cut))
    cdse.stats.reset()

    report = run(band_settings, credentials, [product], bands="B04")

    assert report.ok
    assert_files(band_settings, cdse, product, expected)
    # The second request asked for the rest only: every byte was sent once.
    assert served(cdse, product) == {path: digest.size}
    assert cdse.stats.range_requests == 1
    assert report.results[0].attempts == 2


def test_a_corrupted_band_is_fetched_again_and_verified(
    band_settings: Settings, credentials: Credentials, cdse: Emulator
) -> None:
    product = l2a(band_settings, 1)[0]
    expected = chosen(cdse, product, "_B08_10m.jp2", "_SCL_20m.jp2")
    cdse.faults.add(CorruptFault(product=product.id, path_contains="_B08_10m.jp2", offset=100))

    report = run(band_settings, credentials, [product], bands="B08,SCL")

    assert report.ok
    assert report.results[0].attempts == 3  # B08 twice, SCL once
    assert_files(band_settings, cdse, product, expected)


def test_a_rerun_that_adds_a_band_fetches_only_that_band(
    band_settings: Settings, credentials: Credentials, cdse: Emulator
) -> None:
    products = l2a(band_settings, 2)
    assert run(band_settings, credentials, products, bands="B04").ok
    cdse.stats.reset()

    report = run(band_settings, credentials, products, bands="B04,B08")

    assert report.ok
    for product in products:
        expected = chosen(cdse, product, "_B04_10m.jp2", "_B08_10m.jp2")
        assert_files(band_settings, cdse, product, expected)
        b08 = next(p for p in expected if p.endswith("_B08_10m.jp2"))
        assert served(cdse, product) == {b08: expected[b08].size}
    # Asked once more, nothing is fetched at all: every product is skipped.
    cdse.stats.reset()
    again = run(band_settings, credentials, products, bands="B04,B08")
    assert [r.status for r in again.results] == ["skipped", "skipped"]
    assert cdse.stats.bytes_served() == 0


def test_the_ledger_records_every_file(
    band_settings: Settings, credentials: Credentials, cdse: Emulator
) -> None:
    product = l2a(band_settings, 1)[0]
    cdse.faults.add(CorruptFault(product=product.id, path_contains="_B08_10m.jp2", offset=10))

    assert run(band_settings, credentials, [product], bands="B04,B08").ok

    with JobLedger.open(band_settings.save_path) as ledger:
        rows = ledger.files(product.id)
        (entry,) = [r for r in ledger.entries() if r["id"] == product.id]
    assert {r["path"].rsplit("_", 2)[-2] for r in rows} == {"B04", "B08"}
    assert all(r["state"] == "done" and r["verified_by"] == "SHA3-256" for r in rows)
    assert {r["path"].rsplit("_", 2)[-2]: r["attempts"] for r in rows} == {"B04": 1, "B08": 2}
    assert all(r["checksum"].startswith("SHA3-256:") for r in rows)
    assert entry["state"] == "done"


# Look-ups -------------------------------------------------------------------------------


def test_stac_look_ups_are_batched(band_settings: Settings, cdse: Emulator) -> None:
    products = l2a(band_settings, 5)
    cdse.stats.reset()
    lookup = StacLookup(Transport(band_settings), cdse.stac_url, batch_size=2)

    items = lookup.items(p.name for p in products)

    assert set(items) == {item_id(p.name) for p in products}
    assert cdse.stats.requests("stac") == 3


class FakeClock:
    """The emulator's STAC rate-limit clock and the client's pacer, advanced by waits only."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.waits: list[float] = []

    def __call__(self) -> float:
        return self.now

    def wait(self, seconds: float) -> bool:
        self.waits.append(seconds)
        self.now += seconds
        return False


def test_a_stac_429_is_honoured_with_its_retry_after(
    band_settings: Settings, cdse: Emulator
) -> None:
    products = l2a(band_settings, 4)
    clock = FakeClock()
    # A bucket of one request a second: the pacer's 0.25 s gaps outrun it, so the
    # catalogue refuses with 429 Retry-After: 2 and only the wait lets a request through.
    cdse.config.stac_clock = clock
    cdse.config.stac_requests_per_s = 1.0
    cdse.stats.reset()
    lookup = StacLookup(
        Transport(band_settings), cdse.stac_url, batch_size=1, sleep=clock.wait, clock=clock
    )

    items = lookup.items(p.name for p in products)

    assert set(items) == {item_id(p.name) for p in products}
    refused = cdse.stats.requests(host="stac", status=429)
    assert refused >= 1
    # Every 429 waited its Retry-After (plus the retry loop's jitter of up to 10 %); the
    # pacer's own waits are shorter.
    assert len([w for w in clock.waits if 2.0 <= w <= 2.2]) == refused
    assert cdse.stats.requests(host="stac", status=200) == 4


def test_when_stac_lacks_a_product_the_nodes_listing_and_the_manifest_stand_in(
    band_settings: Settings, credentials: Credentials, cdse: Emulator
) -> None:
    missing, present = l2a(band_settings, 2)
    # STAC answers, but without the first product (its id no longer matches).
    gone = item_id(missing.name)
    cdse.faults.add(RewriteFault(host="stac", find=f'"{gone}"', replace=f'"{gone}-X"', times=-1))
    selection = Selection.build(bands="B04,SCL")
    assert selection is not None
    transport = Transport(band_settings)
    tokens = TokenManager(transport, band_settings.endpoints, credentials)

    plans = plan_files(
        [missing, present],
        selection,
        settings=band_settings,
        transport=transport,
        tokens=tokens,
    )

    assert (plans[missing.id].source, plans[present.id].source) == ("nodes", "stac")
    for product in (missing, present):
        truth = chosen(cdse, product, "_B04_10m.jp2", "_SCL_20m.jp2")
        planned = {f.path: f for f in plans[product.id].files}
        assert set(planned) == set(truth)
        for path, digest in truth.items():
            assert planned[path].size == digest.size
            checksum = planned[path].checksum
            assert checksum is not None and checksum.digest == digest.sha3_256
        source = {f.checksum.source for f in plans[product.id].files if f.checksum}
        assert source == ({"manifest"} if product is missing else {"stac"})

    report = run(band_settings, credentials, [missing, present], bands="B04,SCL")
    assert report.ok
    for product in (missing, present):
        assert_files(
            band_settings, cdse, product, chosen(cdse, product, "_B04_10m.jp2", "_SCL_20m.jp2")
        )


def test_a_file_with_no_checksum_anywhere_is_reported_never_accepted_silently(
    band_settings: Settings, credentials: Credentials, cdse: Emulator
) -> None:
    product = l2a(band_settings, 1)[0]
    # STAC down: the Nodes listing gives paths and sizes, manifest.safe the checksums,
    # but CDSE's own quicklook is in no manifest.
    cdse.faults.add(StatusFault(host="stac", status=503, times=-1))

    report = run(band_settings, credentials, [product], files=["*-ql.jpg", "*_B04_10m.jp2"])

    (result,) = report.results
    assert result.status == "downloaded"
    assert [p.rsplit("/", 1)[-1] for p in result.unverified] == [f"{item_id(product.name)}-ql.jpg"]
    assert result.verified_by == "SHA3-256"
    expected = chosen(cdse, product, "-ql.jpg", "_B04_10m.jp2")
    assert_files(band_settings, cdse, product, expected)


def test_a_listing_that_claims_a_file_bigger_than_its_product_is_not_trusted(
    band_settings: Settings, credentials: Credentials, cdse: Emulator
) -> None:
    product = l2a(band_settings, 1)[0]
    ((_, digest),) = chosen(cdse, product, "_B04_10m.jp2").items()
    huge = product.size * 1000
    cdse.faults.add(
        RewriteFault(
            host="stac", find=f'"file:size":{digest.size},', replace=f'"file:size":{huge},'
        )
    )
    cdse.stats.reset()

    report = run(band_settings, credentials, [product], bands="B04")

    (result,) = report.results
    assert result.status == "failed"
    assert "more than the whole product" in (result.error or "")
    assert cdse.stats.bytes_served() == 0
