"""Products whose names collide once made safe: one file each, found again, verified right.

The emulator serves a small store of its own whose names clash on disk in every way we
know: ``/`` vs ``_`` vs ``:``, NFC vs NFD, the same first 240 bytes, upper vs lower case
(one file on Windows and macOS), and the same ``Name`` under two ``Id``. The client meets
them the way it meets real products: from a catalogue search.
"""

from __future__ import annotations

import json
import logging
import sqlite3
import uuid
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path
from urllib.parse import parse_qsl

import pytest
from blake3 import blake3

from sentinel_fetch.api import download, search
from sentinel_fetch.auth import Credentials
from sentinel_fetch.catalogue.product import Product
from sentinel_fetch.catalogue.query import build_query
from sentinel_fetch.cli import main
from sentinel_fetch.emulator import Emulator, EmulatorConfig
from sentinel_fetch.emulator.model import (
    ArchiveSource,
    Handler,
    ProductRecord,
    ProductStore,
    Request,
    Response,
)
from sentinel_fetch.settings import Endpoints, Limits, Settings

BASE = "S2B_MSIL2A_20230601T101031_N0509_R022_T32TPS_20230601T120000"
NAMES = [
    f"{BASE}.SAFE",  # plain: stays <Name>.zip
    f"{BASE}.SAFE",  # the same Name under another Id
    f"{BASE.lower()}.SAFE",  # one file with the first on Windows and macOS
    f"{BASE.replace('_', '/', 1)}.SAFE",  # "/" and ":" are cleaned to "_": the first again
    f"{BASE.replace('_', ':', 1)}.SAFE",
    f"Caf\u00e9_{BASE}.SAFE",  # NFC
    f"Cafe\u0301_{BASE}.SAFE",  # NFD
    "x" * 300 + "A.SAFE",  # the same first 240 bytes
    "x" * 300 + "B.SAFE",
    "y" * 1000 + ".SAFE",  # cut: must keep .zip
    f"\u202eevil_{BASE}.SAFE",  # bidi override
    "lpt9 .SAFE",  # a Windows device
]
PLAIN = 0


def _record(index: int, name: str) -> ProductRecord:
    return ProductRecord(
        id=str(uuid.uuid5(uuid.NAMESPACE_URL, f"hostile-name:{index}")),
        name=name,
        collection="SENTINEL-2",
        product_type="S2MSI2A",
        content_start=datetime(2023, 6, 1, tzinfo=timezone.utc) + timedelta(minutes=index),
        nominal_size=300_000_000,
    )


RECORDS = [_record(index, name) for index, name in enumerate(NAMES)]


class NameStore:
    """The download host's view: these records, by id."""

    def __init__(self, records: list[ProductRecord]) -> None:
        self.by_id = {record.id: record for record in records}

    def get(self, product_id: str) -> ProductRecord | None:
        return self.by_id.get(product_id)


def listing_catalogue(store: ProductStore, archives: ArchiveSource, download_base: str) -> Handler:
    """A catalogue that answers every search with every record (a server sending names).

    It honours ``$skip``, ``$top`` and ``$count``; every filter matches everything, so
    the client must never take a search result for proof that a file is a product's.
    """
    assert isinstance(store, NameStore)

    def entity(record: ProductRecord) -> dict[str, object]:
        info = archives.info(record)
        start = record.content_start.strftime("%Y-%m-%dT%H:%M:%S.000000Z")
        return {
            "@odata.mediaContentType": "application/octet-stream",
            "Id": record.id,
            "Name": record.name,
            "ContentType": "application/octet-stream",
            "ContentLength": info.length,
            "Online": True,
            "Checksum": [
                {"Value": info.md5, "Algorithm": "MD5"},
                {"Value": info.blake3, "Algorithm": "BLAKE3"},
            ],
            "ContentDate": {"Start": start, "End": start},
        }

    def handle(request: Request) -> Response:
        if request.path.endswith("/$value"):
            return Response(301, [("Location", download_base + request.path)])
        if request.path != "/odata/v1/Products":
            return Response.json(404, {"detail": "Not found"})
        query = dict(parse_qsl(request.raw_query))
        records = list(store.by_id.values())
        skip, top = int(query.get("$skip", 0)), int(query.get("$top", 20))
        body: dict[str, object] = {"value": [entity(r) for r in records[skip : skip + top]]}
        if query.get("$count", "").lower() == "true":
            body["@odata.count"] = len(records)
        return Response.json(200, body)

    return handle


@pytest.fixture(scope="module")
def named_cdse() -> Iterator[Emulator]:
    """An emulator serving the clashing names, and nothing else."""
    emulator = Emulator(
        EmulatorConfig(size_scale=1e-4), store=NameStore(RECORDS), catalogue=listing_catalogue
    )
    with emulator:
        yield emulator


@pytest.fixture
def named_settings(named_cdse: Emulator, tmp_path: Path, fast_limits: Limits) -> Settings:
    named_cdse.faults.clear()
    named_cdse.stats.reset()
    return Settings(
        endpoints=Endpoints(
            named_cdse.identity_url, named_cdse.catalogue_url, named_cdse.download_url
        ),
        limits=fast_limits,
        ca_bundle=str(named_cdse.ca_bundle),
        save_path=tmp_path / "save",
    )


@pytest.fixture
def named_env(
    named_cdse: Emulator, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[None]:
    """The command line's environment, pointed at the emulator of this module."""
    for name, value in named_cdse.env().items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("SENTINEL_FETCH_CONFIG", str(tmp_path / "no-config.toml"))
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.chdir(tmp_path)
    yield
    root = logging.getLogger()
    for handler in [h for h in root.handlers if getattr(h, "_sentinel_fetch", False)]:
        root.removeHandler(handler)
        handler.close()


def _cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as exited:
        main(list(args))
    captured = capsys.readouterr()
    code = exited.value.code
    return (code if isinstance(code, int) else 1), captured.out, captured.err


def _recorded_files(save_path: Path) -> dict[str, str]:
    """``file name -> product id`` as the job ledger records it."""
    uri = f"file:{save_path / 'sentinel-fetch-ledger.sqlite'}?mode=ro"
    with sqlite3.connect(uri, uri=True) as connection:
        rows = connection.execute("SELECT file_name, id FROM products").fetchall()
    files = dict(rows)
    assert len(files) == len(rows), "two products recorded with one file"
    return files


def _served(settings: Settings) -> list[Product]:
    """Every product of the store, as the catalogue describes them."""
    query = build_query(collections="SENTINEL-2", start="2023-06-01", end="2023-06-02")
    return list(search(query, settings=settings))


def _served_blake3(emulator: Emulator, product_id: str) -> str:
    record = emulator.store.get(product_id)
    assert record is not None
    return emulator.archives.info(record).blake3


def test_every_product_gets_a_file_of_its_own_and_verify_agrees(
    named_cdse: Emulator,
    named_settings: Settings,
    credentials: Credentials,
    named_env: None,
    capsys: pytest.CaptureFixture[str],
) -> None:
    products = _served(named_settings)
    assert len({p.id for p in products}) == len(NAMES)

    report = download(products, settings=named_settings, credentials=credentials)

    assert [r.status for r in report.results] == ["downloaded"] * len(NAMES)
    finish = named_settings.finish_path
    on_disk = sorted(path.name for path in finish.iterdir())
    assert len(on_disk) == len(NAMES), on_disk
    assert len({name.casefold() for name in on_disk}) == len(NAMES), "one file on macOS"
    assert all(name.endswith(".zip") for name in on_disk), on_disk
    assert f"{NAMES[PLAIN]}.zip" in on_disk, "a plain name keeps exactly <Name>.zip"
    recorded = _recorded_files(named_settings.save_path)
    assert sorted(recorded) == on_disk
    for file_name, product_id in recorded.items():
        data = (finish / file_name).read_bytes()
        assert blake3(data).hexdigest() == _served_blake3(named_cdse, product_id), file_name
    for result in report.results:
        assert result.path is not None and recorded[result.path.name] == result.product.id

    code, out, err = _cli(capsys, "verify", str(named_settings.save_path), "--json")
    verdicts = json.loads(out)
    assert code == 0, err
    assert {v["status"] for v in verdicts} == {"ok"}, verdicts
    assert {v["file"]: v["product_id"] for v in verdicts} == recorded
    assert not (named_settings.save_path / "Corrupt").exists()

    named_cdse.stats.reset()
    again = download(products, settings=named_settings, credentials=credentials)
    assert [r.status for r in again.results] == ["skipped"] * len(NAMES)
    assert named_cdse.stats.requests("download") == 0
    assert _recorded_files(named_settings.save_path) == recorded


def test_verify_without_a_ledger_tells_same_named_products_apart_by_checksum(
    named_cdse: Emulator,
    named_settings: Settings,
    credentials: Credentials,
    named_env: None,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Files copied from elsewhere: a name is a hint, never proof of which product it is.

    Only the second of two products named alike is in Finish, under the plain name; the
    catalogue lists the first one first. The file is that second product's, and good.
    """
    products = {p.id: p for p in _served(named_settings)}
    same_name, renamed = products[RECORDS[1].id], products[RECORDS[3].id]
    download([same_name, renamed], settings=named_settings, credentials=credentials, ledger=False)
    finish = named_settings.finish_path
    before = {path.name: path.read_bytes() for path in finish.iterdir()}
    assert f"{NAMES[PLAIN]}.zip" in before

    code, out, err = _cli(capsys, "verify", str(named_settings.save_path), "--json")

    verdicts = {v["file"]: v for v in json.loads(out)}
    assert code == 0, err
    plain = verdicts.pop(f"{NAMES[PLAIN]}.zip")
    assert (plain["status"], plain["product_id"]) == ("ok", same_name.id)
    # The renamed file's name says which product it is only through the ledger.
    assert [v["status"] for v in verdicts.values()] == ["unknown"]
    assert {path.name: path.read_bytes() for path in finish.iterdir()} == before
    assert not (named_settings.save_path / "Corrupt").exists()
