"""Result files are written as products arrive, byte for byte what whole documents were.

The reference writers below are the non-streamed ones: each builds the whole document
from a list and dumps it at once. The streamed writers must give the same bytes for real
emulator searches, hostile names included, and must not hold the products.
"""

from __future__ import annotations

import csv
import dataclasses
import functools
import io
import json
import weakref
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from sentinel_fetch.auth import Credentials
from sentinel_fetch.catalogue import stac_export
from sentinel_fetch.catalogue.product import Product
from sentinel_fetch.catalogue.query import Query
from sentinel_fetch.catalogue.results import (
    CSV_COLUMNS,
    _feature,
    _header,
    _summary,
    read_results,
    write_products,
)
from sentinel_fetch.catalogue.stac import StacLookup, item_id
from sentinel_fetch.catalogue.stac_export import item_collection
from sentinel_fetch.client import Client
from sentinel_fetch.emulator import Emulator
from sentinel_fetch.emulator.faults import EntityFault
from sentinel_fetch.errors import CatalogueError
from sentinel_fetch.http import Transport
from sentinel_fetch.settings import Settings
from sentinel_fetch.text import spreadsheet_cell

_SEARCH = {"collections": "S2", "tiles": "32TPS", "start": "2023-07-01", "end": "2023-07-31"}

#: Names a hostile catalogue might send: formulas, quotes, escapes, separators, markup.
HOSTILE_NAMES = (
    '=HYPERLINK("http://x","y")',
    'quote " backslash \\ tab \t newline \n end',
    "\x1b[31mred\x1b[0m \u2028 \u2029 \u200f",
    "名前 Ünïcödé 🛰️, ; | </script>",
    "../../../../escaped/evil.SAFE",
)


# --- the reference: whole documents, as the writers were before streaming -----------------


def _json_reference(products: list[Product], query: Query | None) -> str:
    document = {
        **_header(query),
        "products": [product.to_dict() for product in products],
        "count": len(products),
    }
    return json.dumps(document, indent=1, ensure_ascii=False) + "\n"


def _geojson_reference(products: list[Product], query: Query | None) -> str:
    features = [_feature(product) for product in products]
    document = {"type": "FeatureCollection", "sentinel_fetch": _header(query), "features": features}
    return json.dumps(document, ensure_ascii=False) + "\n"


def _csv_reference(products: list[Product], query: Query | None) -> str:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=CSV_COLUMNS, lineterminator="\n")
    writer.writeheader()
    for product in products:
        row = _summary(product)
        writer.writerow(
            {
                column: "" if row[column] is None else spreadsheet_cell(row[column])
                for column in CSV_COLUMNS
            }
        )
    return buffer.getvalue()


def _ndjson_reference(products: list[Product], query: Query | None) -> str:
    return "".join(
        json.dumps(p.to_dict(), ensure_ascii=False, default=str) + "\n" for p in products
    )


def _names_reference(products: list[Product], query: Query | None) -> str:
    return "".join(f"{product.name}\n" for product in products)


REFERENCES: dict[str, Callable[[list[Product], Query | None], str]] = {
    ".json": _json_reference,
    ".geojson": _geojson_reference,
    ".csv": _csv_reference,
    ".ndjson": _ndjson_reference,
    ".txt": _names_reference,
}


# --- helpers -------------------------------------------------------------------------------


def _hostile_catalogue(cdse: Emulator, settings: Settings) -> list[Product]:
    """The search's products, with hostile names served for some of them."""
    with Client(settings) as client:
        honest = list(client.search(**_SEARCH))
    assert len(honest) > len(HOSTILE_NAMES)
    for product, name in zip(honest, HOSTILE_NAMES, strict=False):
        cdse.faults.add(EntityFault(product=product.id, replace={"Name": name}, times=-1))
    return honest


def _kept_alive(products: list[Product]) -> tuple[Iterator[Product], list[int]]:
    """Fresh copies of the products, and how many earlier ones were alive at each one.

    Copies: only the writer can keep one alive, not the list (or the search's page).
    """
    alive: list[weakref.ref[Product]] = []
    counts: list[int] = []

    def watched() -> Iterator[Product]:
        for original in products:
            product = dataclasses.replace(original)
            counts.append(sum(1 for ref in alive if ref() is not None))
            alive.append(weakref.ref(product))
            yield product
            del product

    return watched(), counts


# --- tests ---------------------------------------------------------------------------------


@pytest.mark.parametrize("suffix", sorted(REFERENCES))
def test_streamed_files_are_the_whole_documents_byte_for_byte(
    cdse: Emulator, settings: Settings, tmp_path: Path, suffix: str
) -> None:
    _hostile_catalogue(cdse, settings)
    with Client(settings) as client:
        query = client.search(**_SEARCH).query
        listed = list(client.search(query))
        served = {product.name for product in listed}
        assert set(HOSTILE_NAMES) <= served, "the emulator did not serve the hostile names"
        # The search itself, not a list: products reach the file as pages arrive.
        path = write_products(client.search(query), tmp_path / f"results{suffix}", query=query)
    expected = REFERENCES[suffix](listed, query)
    assert path.read_bytes() == expected.encode("utf-8")
    if suffix in (".json", ".geojson"):
        assert [p.name for p in read_results(path).products] == [p.name for p in listed]


@pytest.mark.parametrize("suffix", sorted(REFERENCES))
def test_an_empty_listing_is_the_empty_document(tmp_path: Path, suffix: str) -> None:
    path = write_products(iter(()), tmp_path / f"none{suffix}", query=None)
    assert path.read_bytes() == REFERENCES[suffix]([], None).encode("utf-8")


@pytest.mark.parametrize("suffix", sorted(REFERENCES))
def test_writers_hold_no_earlier_product(
    cdse: Emulator, settings: Settings, tmp_path: Path, suffix: str
) -> None:
    with Client(settings) as client:
        listed = list(client.search(**_SEARCH))
    products, alive = _kept_alive(listed)
    path = write_products(products, tmp_path / f"results{suffix}")
    assert len(alive) == len(listed) > 3
    # The writer's loop still holds the product before, until the next one comes.
    assert max(alive) <= 1
    assert path.read_bytes() == REFERENCES[suffix](listed, None).encode("utf-8")


def test_the_json_count_comes_after_the_products(
    cdse: Emulator, settings: Settings, tmp_path: Path
) -> None:
    with Client(settings) as client:
        path = write_products(client.search(**_SEARCH), tmp_path / "results.json")
    text = path.read_text(encoding="utf-8")
    document = json.loads(text)
    assert list(document)[-2:] == ["products", "count"]
    assert document["count"] == len(document["products"])


def test_a_search_failing_midway_leaves_no_file(
    cdse: Emulator, settings: Settings, tmp_path: Path
) -> None:
    class Broken(CatalogueError):
        pass

    with Client(settings) as client:
        listed = list(client.search(**_SEARCH))

    def failing() -> Iterator[Product]:
        yield from listed[:3]
        raise Broken("page 2 failed")

    for suffix in REFERENCES:
        with pytest.raises(Broken):
            write_products(failing(), tmp_path / f"results{suffix}")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("batch_size", [2, 50])
def test_the_stac_export_is_the_whole_item_collection_byte_for_byte(
    cdse: Emulator,
    settings: Settings,
    credentials: Credentials,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    batch_size: int,
) -> None:
    _hostile_catalogue(cdse, settings)
    settings = settings.with_changes(
        endpoints=dataclasses.replace(settings.endpoints, stac=cdse.stac_url)
    )
    # Small batches: the file is stitched from several look-ups.
    monkeypatch.setattr(
        stac_export, "StacLookup", functools.partial(StacLookup, batch_size=batch_size)
    )
    with Client(settings, credentials) as client:
        listed = list(client.search(**_SEARCH))
        path, from_stac = client.write_item_collection(
            client.search(**_SEARCH), tmp_path / "x.stac.json"
        )
        products, alive = _kept_alive(listed)
        client.write_item_collection(products, tmp_path / "copy.stac.json")
    items = StacLookup(Transport(settings), cdse.stac_url).items(p.name for p in listed)
    expected = json.dumps(item_collection(listed, items, settings), ensure_ascii=False) + "\n"
    assert path.read_bytes() == expected.encode("utf-8")
    assert from_stac == sum(1 for p in listed if item_id(p.name) in items) > 0
    # One batch of look-ups (the one written, while the next is gathered) at most.
    assert max(alive) <= batch_size + 1
    assert (tmp_path / "copy.stac.json").read_bytes() == path.read_bytes()
