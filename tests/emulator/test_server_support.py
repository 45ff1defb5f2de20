"""Helpers for the emulator's server-side tests: a small product store and HTTP shortcuts.

These tests exercise the identity and download hosts, faults, stats and the admin
endpoint; they do not need the synthetic catalogue, so the emulator is started with a
handful of in-memory products and a trivial catalogue handler. No tests live here.
"""

from __future__ import annotations

import http.client
import ssl
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import requests

from sentinel_fetch.emulator import DEMO_PASSWORD, DEMO_USERNAME, Emulator, EmulatorConfig
from sentinel_fetch.emulator.model import (
    ArchiveSource,
    Handler,
    ProductRecord,
    ProductStore,
    Request,
    Response,
)

_START = datetime(2024, 7, 9, 7, 46, 19, tzinfo=timezone.utc)


def _record(
    name: str, collection: str, product_type: str, size: int, **extra: Any
) -> ProductRecord:
    return ProductRecord(
        id=str(uuid.uuid5(uuid.NAMESPACE_URL, f"test-product:{name}")),
        name=name,
        collection=collection,
        product_type=product_type,
        content_start=_START,
        nominal_size=size,
        **extra,
    )


S2 = _record(
    "S2B_MSIL2A_20240709T074619_N0510_R135_T40XFF_20240709T080457.SAFE",
    "SENTINEL-2",
    "S2MSI2A",
    1_000_000_000,
)
S1 = _record(
    "S1A_IW_GRDH_1SDV_20240604T110100_20240604T110131_054172_069690_E33E.SAFE",
    "SENTINEL-1",
    "IW_GRDH_1S",
    1_700_000_000,
)
S3 = _record(
    "S3B_SL_2_LST____20230824T223252_20230824T223552_20230825T011047_0179_083_158_1080_PS2_O_NR_004.SEN3",
    "SENTINEL-3",
    "SL_2_LST___",
    63_000_000,
)
S5P = _record(
    "S5P_OFFL_L2__NO2____20240101T000000_20240101T013000_32123_03_020600_20240102T000000.nc",
    "SENTINEL-5P",
    "L2__NO2___",
    500_000_000,
)
OFFLINE = _record(
    "S2A_MSIL1C_20150704T101006_N0204_R022_T32TQM_20150704T101337.SAFE",
    "SENTINEL-2",
    "S2MSI1C",
    700_000_000,
    online=False,
)
RECORDS = (S2, S1, S3, S5P, OFFLINE)


class MemoryStore:
    """A :class:`ProductStore` over a few records."""

    def __init__(self, records: tuple[ProductRecord, ...] = RECORDS) -> None:
        self._by_id = {r.id: r for r in records}

    def get(self, product_id: str) -> ProductRecord | None:
        return self._by_id.get(product_id)

    def match_ids(
        self, filter_text: str, orderby: str | None = None, *, twins: bool = True
    ) -> list[str]:
        return sorted(i for i, r in self._by_id.items() if filter_text in r.name)


def simple_catalogue(
    store: ProductStore, archives: ArchiveSource, download_base_url: str
) -> Handler:
    """A catalogue that only lists ids and redirects ``$value`` to the download host."""

    def handle(request: Request) -> Response:
        if request.path.endswith("/$value"):
            return Response(301, [("Location", download_base_url + request.path)])
        if request.path == "/odata/v1/Products":
            return Response.json(200, {"value": [{"Id": S2.id, "Name": S2.name}]})
        return Response.json(404, {"detail": "Not found"})

    return handle


@contextmanager
def running(data_dir: Path, **settings: Any) -> Iterator[Emulator]:
    """An emulator with the in-memory products, stopped on exit."""
    settings.setdefault("tls", True)
    config = EmulatorConfig(data_dir=data_dir, **settings)
    emulator = Emulator(config, store=MemoryStore(), catalogue=simple_catalogue)
    with emulator:
        yield emulator


def client(emulator: Emulator) -> requests.Session:
    """A requests session that trusts the emulator's CA."""
    session = requests.Session()
    session.verify = str(emulator.ca_bundle) if emulator.ca_bundle else True
    session.trust_env = False
    return session


def login(
    emulator: Emulator,
    session: requests.Session | None = None,
    username: str = DEMO_USERNAME,
    password: str = DEMO_PASSWORD,
    **fields: str,
) -> requests.Response:
    """A password grant, as CDSE documents it (spec §2.1)."""
    form = {"client_id": "cdse-public", "grant_type": "password"}
    form.update(username=username, password=password, **fields)
    return (session or client(emulator)).post(emulator.token_url, data=form, timeout=10)


def token(emulator: Emulator, session: requests.Session | None = None, **fields: str) -> str:
    """A fresh access token for the demo account."""
    response = login(emulator, session, **fields)
    response.raise_for_status()
    value: str = response.json()["access_token"]
    return value


def product_url(emulator: Emulator, record: ProductRecord) -> str:
    """The download URL of a product (spec §5.1)."""
    return f"{emulator.download_url}/Products({record.id})/$value"


def bearer(value: str) -> dict[str, str]:
    """The Authorization header for a token."""
    return {"Authorization": f"Bearer {value}"}


def fetch(
    emulator: Emulator, url: str, headers: dict[str, str] | None = None, method: str = "GET"
) -> tuple[int, dict[str, str], bytes]:
    """One request with http.client, tolerant of short bodies: ``(status, headers, body)``.

    http.client hands back what arrived before a cut (``IncompleteRead.partial``), which
    is exactly what a test of the ``cut`` fault wants to look at.
    """
    split = urlsplit(url)
    host, port = address(url)
    connection: http.client.HTTPConnection
    if split.scheme == "https":
        context = ssl.create_default_context(cafile=str(emulator.ca_bundle))
        connection = http.client.HTTPSConnection(host, port, context=context)
    else:
        connection = http.client.HTTPConnection(host, port)
    try:
        target = split.path + (f"?{split.query}" if split.query else "")
        connection.request(method, target, headers=headers or {})
        response = connection.getresponse()
        try:
            body = response.read()
        except http.client.IncompleteRead as short:
            body = short.partial
        return response.status, dict(response.getheaders()), body
    finally:
        connection.close()


def address(url: str) -> tuple[str, int]:
    """``(host, port)`` of a URL."""
    split = urlsplit(url)
    assert split.hostname is not None and split.port is not None
    return split.hostname, split.port
