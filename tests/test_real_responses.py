"""What real CDSE entities carry goes through search, saved results, download and verify.

The emulator serves these forms on a documented share of its catalogue
(``sentinel_fetch/emulator/catalogue/quirks.py``, cdse-api.md §12.1), so every test meets
some of them; here one product of each form is followed end to end. The forms are
recognised in the emulator's raw answers, read over HTTP like any other client would.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
import requests

from sentinel_fetch.api import download, search
from sentinel_fetch.auth import Credentials
from sentinel_fetch.catalogue.product import Product
from sentinel_fetch.catalogue.query import build_query
from sentinel_fetch.catalogue.results import read_products, write_products
from sentinel_fetch.downloads.audit import CORRUPT_FOLDER, audit_finished
from sentinel_fetch.emulator import Emulator, EntityFault
from sentinel_fetch.settings import Settings

Entity = dict[str, Any]


def _attribute_types(entity: Entity) -> set[tuple[str, str]]:
    return {(a["ValueType"], type(a["Value"]).__name__) for a in entity["Attributes"]}


def _dates(entity: Entity) -> list[str]:
    return [a["Value"] for a in entity["Attributes"] if a["ValueType"] == "DateTimeOffset"]


# One predicate per form of cdse-api.md §12.1 the emulator serves as a share.
FORMS: dict[str, Callable[[Entity], bool]] = {
    "EvictionDate empty": lambda e: e["EvictionDate"] == "",
    "rolling EvictionDate": lambda e: e["EvictionDate"][:4] not in ("", "9999"),
    "3 fraction digits": lambda e: len(e["PublicationDate"]) == 24,
    "6 fraction digits": lambda e: len(e["PublicationDate"]) == 27,
    "+00:00 with fraction": lambda e: any("." in d and d.endswith("+00:00") for d in _dates(e)),
    "+00:00 without fraction": lambda e: any(
        "." not in d and d.endswith("+00:00") for d in _dates(e)
    ),
    "Integer sent as text": lambda e: ("Integer", "str") in _attribute_types(e),
    "number typed String": lambda e: ("String", "int") in _attribute_types(e),
    "Checksum [{}]": lambda e: e["Checksum"] == [{}],
    "Checksum [] and size 0": lambda e: e["Checksum"] == [] and e["ContentLength"] == 0,
    "no GeoFootprint key": lambda e: "GeoFootprint" not in e,
}


def _raw_entities(cdse: Emulator, filter_text: str) -> list[Entity]:
    url = f"{cdse.catalogue_url}/Products?$top=300&$expand=Attributes&$filter=" + quote(
        filter_text, safe=""
    )
    response = requests.get(url, verify=str(cdse.ca_bundle), timeout=30)
    response.raise_for_status()
    entities: list[Entity] = response.json()["value"]
    return entities


@pytest.fixture
def quirky(cdse: Emulator) -> dict[str, Entity]:
    """One online entity of each form, the smallest found."""
    entities: list[Entity] = []
    for collection, start, end in (
        ("SENTINEL-2", "2019-01-01", "2021-01-01"),
        ("SENTINEL-2", "2023-07-01", "2023-07-15"),
        ("SENTINEL-2", "2025-01-01", "2026-01-01"),
        ("SENTINEL-5P", "2023-07-01", "2023-08-01"),
    ):
        entities += _raw_entities(
            cdse,
            f"Collection/Name eq '{collection}' and Online eq true and "
            f"ContentDate/Start ge {start} and ContentDate/Start lt {end}",
        )
    chosen = {}
    for form, shows in FORMS.items():
        found = sorted((e for e in entities if shows(e)), key=lambda e: e["ContentLength"])
        assert found, f"the emulator serves no entity with {form}"
        chosen[form] = found[0]
    return chosen


def test_every_real_form_survives_search_saved_results_download_and_verify(
    cdse: Emulator,
    settings: Settings,
    credentials: Credentials,
    quirky: dict[str, Entity],
    tmp_path: Path,
) -> None:
    ids = sorted({entity["Id"] for entity in quirky.values()})
    # AUX products carry no footprint at all (§3.2): shown on one of the chosen products.
    bare = quirky["6 fraction digits"]["Id"]
    cdse.faults.add(
        EntityFault(product=bare, replace={"Footprint": None, "GeoFootprint": None}, times=-1)
    )

    result = search(build_query(ids=ids), settings=settings)
    products = {product.id: product for product in result}

    assert sorted(products) == ids and not result.rejected
    _check_fields(products, quirky, bare)
    for suffix in (".json", ".geojson"):
        path = write_products(products.values(), tmp_path / f"results{suffix}")
        assert read_products(path) == list(products.values()), suffix
    report = download(
        list(products.values()), settings=settings, credentials=credentials, ledger=False
    )
    assert report.ok, [(r.product.name, r.error) for r in report.failed]
    verified = {r.product.id: r.verified_by for r in report.results}
    assert verified[quirky["Checksum [{}]"]["Id"]] == "zip-crc"
    assert verified[quirky["Checksum [] and size 0"]["Id"]] == "zip-crc"
    assert verified[quirky["6 fraction digits"]["Id"]] == "BLAKE3"
    audit = audit_finished(
        settings.finish_path,
        settings.save_path / CORRUPT_FOLDER,
        list(products.values()),
        lambda names: [],
    )
    assert audit.ok and audit.count("ok") == len(ids)


def _check_fields(products: dict[str, Product], quirky: dict[str, Entity], bare: str) -> None:
    def product(form: str) -> Product:
        return products[quirky[form]["Id"]]

    assert product("EvictionDate empty").eviction_date is None
    rolling = product("rolling EvictionDate")
    assert rolling.eviction_date is not None and rolling.publication_date is not None
    assert rolling.eviction_date > rolling.publication_date
    three = product("3 fraction digits")
    assert three.content_start is not None and three.content_start.microsecond % 1000 == 0
    for form in ("+00:00 with fraction", "+00:00 without fraction"):
        began, start = product(form).attributes["beginningDateTime"], product(form).content_start
        assert isinstance(began, datetime) and start is not None
        assert began.utcoffset() == timedelta(0) and abs(began - start) < timedelta(seconds=1)
    for form in ("Integer sent as text", "number typed String"):
        assert isinstance(product(form).relative_orbit, int)
    assert product("Checksum [{}]").checksums == {} and product("Checksum [{}]").size > 0
    assert product("Checksum [] and size 0").checksums == {}
    assert product("Checksum [] and size 0").size == 0
    geometry = product("no GeoFootprint key").geo_footprint
    assert geometry is not None and geometry["type"] in ("Polygon", "MultiPolygon")
    assert products[bare].footprint is None and products[bare].geo_footprint is None
    assert products[bare].checksums  # everything else about it is ordinary
