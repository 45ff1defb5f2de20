"""Sentinel-1's native ``$zip``: chosen from ``$expand=Locations``, verified by its own checksum."""

from __future__ import annotations

import hashlib

import pytest
from blake3 import blake3

from sentinel_fetch.api import download, search
from sentinel_fetch.auth import Credentials
from sentinel_fetch.catalogue.product import Product
from sentinel_fetch.catalogue.query import build_query
from sentinel_fetch.downloads.native import NativeProduct, choose_native
from sentinel_fetch.emulator import Emulator, StatusFault
from sentinel_fetch.settings import Settings


def recent_grd(settings: Settings, cdse: Emulator) -> Product:
    """A Sentinel-1 GRD published inside the 30-day window of the emulator's clock."""
    query = build_query(
        collections="SENTINEL-1",
        product_types="GRD",
        start="2025-12-10",
        end="2026-01-02",
        online=True,
    )
    for product in search(query, settings=settings):
        record = cdse.store.get(product.id)
        if record is not None and cdse.archives.native_available(record):
            return product
    pytest.fail("no Sentinel-1 GRD inside its native window")


def test_a_recent_sentinel1_product_comes_as_its_native_zip_about_half_the_bytes(
    settings: Settings, credentials: Credentials, cdse: Emulator
) -> None:
    product = recent_grd(settings, cdse)
    record = cdse.store.get(product.id)
    assert record is not None
    native = cdse.archives.native_info(record)
    cdse.stats.reset()

    report = download([product], settings=settings, credentials=credentials)

    (result,) = report.results
    assert result.status == "downloaded", result.error
    data = (settings.finish_path / product.file_name).read_bytes()
    assert len(data) == native.length < product.size * 0.7
    assert blake3(data).hexdigest() == native.blake3
    assert result.verified_by == "BLAKE3"
    assert cdse.stats.bytes_by_file(product.id)[product.id] == {"$zip": native.length}
    # A rerun skips it, whichever archive it holds.
    cdse.stats.reset()
    again = download([product], settings=settings, credentials=credentials)
    assert again.results[0].status == "skipped" and cdse.stats.bytes_served() == 0


def test_when_the_native_form_is_gone_by_the_download_the_value_archive_is_fetched(
    settings: Settings, credentials: Credentials, cdse: Emulator
) -> None:
    product = recent_grd(settings, cdse)
    # The catalogue still lists the compressed entry, but the download host answers for
    # $zip as after the window (its status there is unconfirmed; 404 is the emulator's).
    cdse.faults.add(StatusFault(status=404, path_contains="$zip", times=-1))

    report = download([product], settings=settings, credentials=credentials)

    (result,) = report.results
    assert result.status == "downloaded", result.error
    data = (settings.finish_path / product.file_name).read_bytes()
    assert len(data) == product.size
    record = cdse.store.get(product.id)
    assert record is not None
    # The store-only zip the zipper serves, exactly.
    assert hashlib.md5(data).hexdigest() == cdse.archives.info(record).md5
    assert cdse.stats.requests(host="download", status=404) >= 1


def test_only_a_usable_compressed_entry_is_chosen(settings: Settings) -> None:
    name = "S1A_IW_GRDH_1SDV_20251228T053012_20251228T053037_061612_07B2C4_0A1B.SAFE"
    product = Product(id="7c1d7e39-0e55-4f1c-9a43-52e1f0c5a0b2", name=name, size=100)
    good = {
        "FormatType": "Compressed",
        "ContentLength": 50,
        "Checksum": [{"Algorithm": "MD5", "Value": "ab" * 16}],
        "DownloadLink": "https://elsewhere.example/steal",
    }
    chosen = choose_native(product, [{"FormatType": "Extracted"}, good], settings)
    assert isinstance(chosen, NativeProduct)
    assert chosen.download_url == settings.endpoints.product_url(product.id).replace(
        "$value", "$zip"
    )
    assert (chosen.size, dict(chosen.checksums)) == (50, {"MD5": "ab" * 16})
    for broken in (
        {**good, "ContentLength": 0},
        {**good, "ContentLength": True},
        {**good, "Checksum": [{"Algorithm": "MD5", "Value": "zz" * 16}]},
        {**good, "Checksum": []},
        {**good, "FormatType": "Extracted"},
    ):
        assert choose_native(product, [broken], settings) is None
    s2 = Product(
        id=product.id, name="S2A_MSIL2A_20230101T000000_N0509_R001_T32TPS_20230101T000000.SAFE"
    )
    assert choose_native(s2, [good], settings) is None
