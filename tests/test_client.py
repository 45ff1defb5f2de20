"""The Client: one network road and one login for a run, against the emulator."""

from __future__ import annotations

import gc
import json
import runpy
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import psutil
import pytest
import shapely.geometry

import sentinel_fetch as sf
from sentinel_fetch.auth import Credentials
from sentinel_fetch.catalogue.product import Product
from sentinel_fetch.client import Action, Client, write_products
from sentinel_fetch.emulator import DEMO_USERNAME, CorruptFault, Emulator, StatusFault
from sentinel_fetch.errors import (
    ClientClosedError,
    ConfigError,
    InputError,
    ProductNotFoundError,
    ProxyError,
)
from sentinel_fetch.settings import Settings

# A few online Sentinel-2 products of about 100 kB (see tests/conftest.py).
FEW = {
    "collections": "SENTINEL-2",
    "tiles": "32TPS",
    "start": "2023-07-01",
    "end": "2023-07-31",
    "online": True,
}
BBOX = (11.0, 46.0, 12.0, 47.0)
BBOX_GEOJSON = dict(shapely.geometry.mapping(shapely.geometry.box(*BBOX)))


@pytest.fixture(autouse=True)
def _no_earlier_garbage() -> None:
    """Collect what earlier tests in this process left unclosed, before counting.

    Connection counts are of the whole process: a road another test left to the garbage
    collector would otherwise be counted here. Only garbage from before the test goes;
    what a Client opens must still be closed by ``close()`` itself.
    """
    gc.collect()


def open_connections(cdse: Emulator) -> int:
    """This process's TCP connections to the emulator (the client's side of them)."""
    ports = {
        urlsplit(url).port for url in (cdse.identity_url, cdse.catalogue_url, cdse.download_url)
    }
    return sum(
        1
        for connection in psutil.Process().net_connections(kind="tcp")
        if connection.raddr and connection.raddr.port in ports
    )


@pytest.fixture
def client(settings: Settings, credentials: Credentials) -> Iterator[Client]:
    """A Client on the emulator with the demo account."""
    with Client(settings, credentials) as opened:
        yield opened


def few_products(client: Client, count: int) -> list[Product]:
    found = [p for p in client.search(**FEW) if p.size and p.checksums]
    assert len(found) >= count
    return found[:count]


def test_one_client_three_downloads_one_login(cdse: Emulator, client: Client) -> None:
    products = few_products(client, 6)
    reports = [client.download(products[i : i + 2]) for i in (0, 2, 4)]

    assert all(report.ok and report.count("downloaded") == 2 for report in reports)
    assert cdse.stats.logins == {DEMO_USERNAME: 1}, "one password login for three downloads"
    assert [report.logins for report in reports] == [1, 0, 0]
    assert client.logins == 1


def test_a_login_ahead_is_the_one_the_downloads_use(cdse: Emulator, client: Client) -> None:
    products = few_products(client, 2)
    client.log_in_ahead()
    assert cdse.stats.wait_for(lambda stats: stats.logins == {DEMO_USERNAME: 1}, 120)
    report = client.download(products)
    assert report.ok
    assert cdse.stats.logins == {DEMO_USERNAME: 1}
    # Everything is already there: the rerun plans no request, so it logs in no more.
    again = client.download(products)
    assert again.count("skipped") == 2 and again.logins == 0


def test_a_refused_login_ahead_is_reported_by_the_download(
    cdse: Emulator, settings: Settings
) -> None:
    from sentinel_fetch.errors import InvalidCredentialsError

    with Client(settings, Credentials(DEMO_USERNAME, "wrong", source="test")) as client:
        products = few_products(client, 1)
        client.log_in_ahead()  # raises nothing
        with pytest.raises(InvalidCredentialsError):
            client.download(products)
    assert cdse.stats.failed_logins == {DEMO_USERNAME: 1}, "a refusal is not tried again"


def test_the_module_level_download_logs_in_once_per_call(
    cdse: Emulator, settings: Settings, credentials: Credentials
) -> None:
    """The one-shot wrapper owns a Client per call: a login per call, closed after it.

    The products come from a Client closed before the downloads: ``sf.search`` leaves its
    road to the garbage collector (documented), which would make the count below depend
    on when the collector runs.
    """
    with Client(settings) as finder:
        products = few_products(finder, 2)
    for product in products:
        sf.download([product], settings=settings, credentials=credentials)
    assert cdse.stats.logins == {DEMO_USERNAME: 2}
    assert open_connections(cdse) == 0


def test_closing_closes_every_connection_and_a_closed_client_refuses(
    cdse: Emulator, settings: Settings, credentials: Credentials
) -> None:
    client = Client(settings, credentials)
    client.download(few_products(client, 3), workers=3)
    assert open_connections(cdse) > 0, "connections are kept for reuse while open"

    client.close()

    assert open_connections(cdse) == 0
    assert client.closed
    for call in (
        lambda: client.search(**FEW),
        lambda: client.count(**FEW),
        lambda: client.download([]),
        lambda: client.status(),
        lambda: client.login(),
        lambda: client.products(**FEW),
    ):
        with pytest.raises(ClientClosedError, match="closed"):
            call()
    client.close()  # twice is fine


def test_a_with_block_closes_the_client(cdse: Emulator, settings: Settings) -> None:
    with Client(settings) as client:
        assert client.count(**FEW) > 0
        assert open_connections(cdse) > 0
    assert client.closed and open_connections(cdse) == 0
    with pytest.raises(ClientClosedError), client:
        pass


def test_constructing_a_client_sends_nothing(cdse: Emulator, settings: Settings) -> None:
    with Client(settings):
        pass
    assert cdse.stats.requests() == 0


@pytest.mark.parametrize(
    "area",
    [
        BBOX,
        list(BBOX),
        shapely.geometry.box(*BBOX),
        BBOX_GEOJSON,
        {"type": "Feature", "properties": {}, "geometry": BBOX_GEOJSON},
        "11,46,12,47",
    ],
    ids=["tuple", "list", "shapely", "geojson-dict", "feature-dict", "text"],
)
def test_an_area_is_what_python_users_pass(client: Client, area: object) -> None:
    fields = {"collections": "SENTINEL-2", "start": "2023-07-01", "end": "2023-07-10"}
    assert client.count(area=area, **fields) == client.count(area="11,46,12,47", **fields) > 0


@pytest.mark.parametrize(
    ("call", "error"),
    [
        (lambda c: c.download("S2A_MSIL2A.SAFE"), InputError),
        (lambda c: c.download(["S2A_MSIL2A.SAFE"]), InputError),
        (lambda c: c.download(42), InputError),
        (lambda c: c.download([], progress="bars"), InputError),
        (lambda c: c.search(colections="S2"), InputError),
        (lambda c: c.search(42), InputError),
    ],
    ids=["text", "names", "number", "progress", "misspelled", "query"],
)
def test_wrong_argument_types_raise_the_documented_errors(
    client: Client, call: object, error: type[Exception]
) -> None:
    with pytest.raises(error):
        call(client)  # type: ignore[operator]


def test_wrong_settings_or_credentials_types_are_input_errors() -> None:
    with pytest.raises(ConfigError, match="Settings"):
        Client(settings={"proxy": "x"})  # type: ignore[arg-type]
    with pytest.raises(InputError, match="Credentials"):
        Client(Settings(), credentials=("me", "pw"))  # type: ignore[arg-type]


def test_products_from_names_files_and_failures_each_once(
    cdse: Emulator, client: Client, settings: Settings, tmp_path: Path
) -> None:
    products = few_products(client, 3)
    saved = tmp_path / "saved.json"
    write_products(products[:2], saved)
    names = tmp_path / "names.txt"
    names.write_text(products[2].name + "\n")

    selection = client.products(names=[products[0].name, products[1].id], files=[saved, names])
    assert [p.id for p in selection.products] == [p.id for p in products[:2]] + [products[2].id]
    assert selection.rejected == []

    with pytest.raises(ProductNotFoundError, match="not in the catalogue") as info:
        client.products(names=["S2Z_MSIL2A_NOT_A_PRODUCT.SAFE"])
    assert info.value.missing == ["S2Z_MSIL2A_NOT_A_PRODUCT.SAFE"]

    cdse.faults.add(StatusFault(product=products[0].id, status=403, code="DAT-ZIP-608", times=-1))
    report = client.download(products)
    assert report.count("failed") == 1
    retried = client.products(retry_failed=True)
    assert [p.id for p in retried] == [products[0].id]

    cdse.faults.clear()
    assert client.download(retried).ok
    assert client.status().counts["done"] == 3
    assert cdse.stats.logins == {DEMO_USERNAME: 1}


def test_plan_is_the_runs_own_decision(client: Client, settings: Settings) -> None:
    products = few_products(client, 3)
    offline = Product.from_dict({**products[2].to_dict(), "online": False})
    client.download(products[:1])
    part = settings.temp_path / (products[1].file_name + ".part")
    part.write_bytes(b"x" * 10)

    planned = client.plan([products[0], products[1], offline, products[0]])

    assert [item.action for item in planned] == [Action.SKIP, Action.RESUME, Action.OFFLINE]
    assert planned[1].on_disk_bytes == 10
    assert planned[1].bytes_to_fetch == products[1].size - 10


def test_verify_and_status_go_through_the_client(
    cdse: Emulator, client: Client, settings: Settings
) -> None:
    products = few_products(client, 2)
    assert client.download(products).ok
    bad = settings.finish_path / products[1].file_name
    data = bytearray(bad.read_bytes())
    data[100] ^= 0xFF
    bad.write_bytes(bytes(data))

    audit = client.verify()

    assert (audit.count("ok"), audit.count("bad")) == (1, 1)
    assert (settings.save_path / "Corrupt" / products[1].file_name).exists()
    summary = client.status()
    assert summary.counts["failed"] == 1 and summary.failed[0].id == products[1].id
    # The next run fetches it again, with the Client's login.
    assert client.download(products).count("downloaded") == 1
    assert cdse.stats.logins == {DEMO_USERNAME: 1}


def test_login_checks_the_account_once_and_downloads_reuse_it(
    cdse: Emulator, client: Client
) -> None:
    assert client.login().username == DEMO_USERNAME
    client.download(few_products(client, 1))
    assert cdse.stats.logins == {DEMO_USERNAME: 1}


def test_the_failure_report_is_written_and_removed_by_the_client(
    cdse: Emulator, client: Client, settings: Settings
) -> None:
    products = few_products(client, 2)
    cdse.faults.add(CorruptFault(product=products[0].id, offset=10, times=-1))
    report = client.download(products)
    path = client.write_report(report)
    assert path is not None and path.exists()
    rows = json.loads(path.with_suffix(".json").read_text())
    assert [row["id"] for row in rows] == [products[0].id]

    cdse.faults.clear()
    report = client.download(products)
    assert client.write_report(report) is None and not path.exists()


def test_a_broken_proxy_fails_the_login_once(
    cdse: Emulator, settings: Settings, credentials: Credentials
) -> None:
    """A proxy that is not running is a setting to fix: no second try, however asked."""
    import socket

    with socket.socket() as unused:
        unused.bind(("127.0.0.1", 0))
        port = unused.getsockname()[1]
    broken = settings.with_changes(proxy=f"http://127.0.0.1:{port}")
    with Client(broken, credentials) as client:
        with pytest.raises(ProxyError) as first:
            client.login()
        with pytest.raises(ProxyError) as second:
            client.login()
    assert second.value is first.value


def readme_python_blocks(path: Path) -> list[str]:
    """The fenced Python blocks of a README's Python API section."""
    text = path.read_text(encoding="utf-8")
    heading = "## Python API" if path.name == "README.md" else "## Python 接口"
    section = text.split(heading, 1)[1].split("\n## ", 1)[0]
    return [block.split("\n", 1)[1] for block in section.split("```python")[1:]]


@pytest.mark.parametrize("readme", ["README.md", "README.zh-CN.md"])
def test_the_readme_client_example_runs(
    cdse: Emulator,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    readme: str,
) -> None:
    """The Client example both READMEs open their Python section with, as written."""
    for name, value in cdse.env().items():
        monkeypatch.setenv(name, value)
    monkeypatch.chdir(tmp_path)
    block = readme_python_blocks(Path(__file__).resolve().parent.parent / readme)[0]
    code = block.split("```", 1)[0]
    assert "sf.Client()" in code
    script = tmp_path / "example.py"
    script.write_text(code, encoding="utf-8")
    runpy.run_path(str(script))
    assert cdse.stats.logins == {DEMO_USERNAME: 1}
    assert "True" in capsys.readouterr().out


def test_progress_events_name_their_product_by_id(client: Client) -> None:
    """Bars are kept by product id: two products may share a name, never an id."""
    from sentinel_fetch.progress import BytesReceived, ProductFinished, ProductStarted

    products = few_products(client, 2)
    events: list[object] = []
    client.download(products, progress=events.append)
    per_product = [
        e for e in events if isinstance(e, (ProductStarted, BytesReceived, ProductFinished))
    ]
    assert per_product
    assert {e.product_id for e in per_product} == {p.id for p in products}  # type: ignore[attr-defined]


def test_a_file_in_finish_the_job_did_not_record_is_checked_and_never_overwritten(
    cdse: Emulator, client: Client, settings: Settings, tmp_path: Path
) -> None:
    """Without a ledger (or with a finish folder shared by jobs), the checksum decides."""
    products = few_products(client, 2)
    elsewhere = tmp_path / "elsewhere"
    assert client.download(products, save_path=elsewhere).ok
    settings.finish_path.mkdir(parents=True)
    good, other = (settings.finish_path / p.file_name for p in products)
    good.write_bytes((elsewhere / "Finish" / products[0].file_name).read_bytes())
    foreign = bytes(products[1].size)  # the right size, not the right bytes
    other.write_bytes(foreign)
    served = cdse.stats.bytes_served()

    planned = client.plan(products)
    report = client.download(products, ledger=False)

    assert [item.action for item in planned] == [Action.SKIP, Action.CONFLICT]
    assert [r.status for r in report.results] == ["skipped", "failed"]
    assert "move it away" in (report.results[1].error or "")
    assert other.read_bytes() == foreign, "a file the job did not put there is left alone"
    assert cdse.stats.bytes_served() == served
