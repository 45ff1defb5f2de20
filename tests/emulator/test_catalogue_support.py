"""Shared fixtures and helpers of the catalogue tests. No tests live here.

The synthetic catalogue is built once into the emulator's data folder (the same cached
file every emulator run uses) and opened once per test module. Handlers get a small fake
:class:`ArchiveSource` that hashes a deterministic byte string per product and counts
calls, so tests can check that archive info is asked lazily.

Expectations are computed independently of the catalogue's SQL compiler: ``raw_products``
reads the stored rows and footprints directly, and tests filter them in Python with
shapely.
"""

from __future__ import annotations

import hashlib
import json
import re
import sqlite3
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

import blake3
import pytest
import shapely
from shapely.geometry.base import BaseGeometry

from sentinel_fetch.emulator.catalogue import CatalogueStore, make_catalogue_handler
from sentinel_fetch.emulator.config import EmulatorConfig
from sentinel_fetch.emulator.model import ArchiveInfo, Handler, ProductRecord, Request, Response

CATALOGUE_BASE = "https://catalogue.test"
DOWNLOAD_BASE = "https://download.test"
EUROPE_WKT = "POLYGON((-10 35, 30 35, 30 70, -10 70, -10 35))"


class FakeArchives:
    """Deterministic archive info (MD5/BLAKE3 of a byte string derived from the Id)."""

    def __init__(self) -> None:
        self.calls: list[str] = []

    @staticmethod
    def data(record: ProductRecord) -> bytes:
        return f"{record.id}|{record.name}".encode() * 7

    def info(self, record: ProductRecord) -> ArchiveInfo:
        self.calls.append(record.id)
        data = self.data(record)
        return ArchiveInfo(
            length=len(data),
            md5=hashlib.md5(data, usedforsecurity=False).hexdigest(),
            blake3=blake3.blake3(data).hexdigest(),
        )

    def iter_range(self, record: ProductRecord, start: int, end: int, chunk_size: int) -> Any:
        raise NotImplementedError


@pytest.fixture(scope="module")
def store() -> Iterator[CatalogueStore]:
    config = EmulatorConfig()
    opened = CatalogueStore.open(config.data_dir, config.seed)
    yield opened
    opened.close()


@pytest.fixture()
def archives() -> FakeArchives:
    return FakeArchives()


@pytest.fixture()
def handler(store: CatalogueStore, archives: FakeArchives) -> Handler:
    return make_catalogue_handler(store, archives, DOWNLOAD_BASE)


@dataclass
class Reply:
    """A handler response with its decoded JSON body (``None`` if not JSON)."""

    response: Response

    @property
    def status(self) -> int:
        return self.response.status

    @property
    def json(self) -> Any:
        return json.loads(self.response.body)

    def header(self, name: str) -> str | None:
        for key, value in self.response.headers:
            if key.lower() == name.lower():
                return value
        return None


def call(
    handler: Handler,
    path: str,
    query: str = "",
    method: str = "GET",
    body: bytes = b"",
) -> Reply:
    """Call the handler like the server does."""
    request = Request(method, path, query, {}, body, CATALOGUE_BASE, "127.0.0.1:5000")
    return Reply(handler(request))


def search(handler: Handler, query: str) -> Reply:
    return call(handler, "/odata/v1/Products", query)


def follow(handler: Handler, url: str) -> Reply:
    """GET an absolute URL (a nextLink or a browser URL) through the handler."""
    parts = urlsplit(url)
    assert parts.path.startswith("/odata/v1/")
    return call(handler, parts.path, parts.query)


def all_pages(handler: Handler, url: str, limit: int = 200) -> list[dict[str, Any]]:
    """Every product of a search, following nextLinks."""
    products: list[dict[str, Any]] = []
    reply = follow(handler, url)
    for _ in range(limit):
        assert reply.status == 200, reply.json
        products.extend(reply.json["value"])
        link = reply.json.get("@odata.nextLink")
        if link is None:
            return products
        assert link.startswith(CATALOGUE_BASE + "/odata/v1/Products?")
        reply = follow(handler, link)
    raise AssertionError("too many pages")


def geometry(entity: dict[str, Any]) -> BaseGeometry:
    """The footprint a client sees: GeoFootprint, or the WKT when that key is absent."""
    if "GeoFootprint" in entity:
        return shapely.geometry.shape(entity["GeoFootprint"])
    text = entity["Footprint"]
    assert text.startswith("geography'SRID=4326;") and text.endswith("'"), text
    return shapely.from_wkt(text[len("geography'SRID=4326;") : -1])


def attribute(entity: dict[str, Any], name: str) -> Any:
    """An attribute's value; Integer values sent as text (a real quirk) read as numbers."""
    for item in entity["Attributes"]:
        if item["Name"] == name:
            value = item["Value"]
            if item["ValueType"] == "Integer" and isinstance(value, str):
                return int(value)
            return value
    raise KeyError(name)


# The forms CDSE writes datetimes in (cdse-api.md §3.2, §3.3): 6 or 3 fraction digits and
# Z, or (attributes before 2025-03-17) +00:00 with or without a fraction.
_TIME_FORMS = re.compile(
    r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{6}Z|\.\d{3}Z|\.\d{6}\+00:00|\+00:00)"
)


def parse_time(text: str) -> datetime:
    assert _TIME_FORMS.fullmatch(text), text
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def epoch_us(moment: datetime) -> int:
    return round(moment.timestamp() * 1_000_000)


@dataclass(frozen=True)
class RawProduct:
    """A stored row read without the catalogue's query code."""

    id: str
    name: str
    collection: str
    product_type: str
    platform: str | None
    start_us: int
    online: bool
    legacy: bool
    cloud_cover: float | None
    footprint: BaseGeometry


def raw_products(
    store: CatalogueStore, collection: str, start_us: int, end_us: int
) -> list[RawProduct]:
    """Rows of a collection sensed in ``[start, end)``, straight from the SQLite file."""
    connection = sqlite3.connect(store.path.resolve().as_uri() + "?mode=ro", uri=True)
    try:
        rows = connection.execute(
            "SELECT p.uid, p.name, p.collection, p.product_type, p.platform, p.start_us,"
            " p.online, p.legacy, p.cloud_cover, f.wkb FROM products p"
            " JOIN footprints f ON f.fid = p.footprint_id"
            " WHERE p.collection = ? AND p.start_us >= ? AND p.start_us < ?",
            (collection, start_us, end_us),
        ).fetchall()
    finally:
        connection.close()
    shapes = shapely.from_wkb([r[9] for r in rows])
    return [
        RawProduct(
            id=str(uuid.UUID(bytes=r[0])),
            name=r[1],
            collection=r[2],
            product_type=r[3],
            platform=r[4],
            start_us=r[5],
            online=bool(r[6]),
            legacy=bool(r[7]),
            cloud_cover=r[8],
            footprint=shape,
        )
        for r, shape in zip(rows, shapes, strict=True)
    ]
