"""The STAC API (spec §9): documents, items built from the catalogue, search, paging, limits.

Items are checked with pystac (``Item.from_dict``, ``ItemCollection.from_dict``) and
against the STAC 1.1.0 core JSON schemas pystac ships. Full ``validate()`` is not used:
it fetches every extension's schema from the network, which tests cannot reach; the
extension fields a client relies on (``file:*``, ``alternate``, ``auth:refs``) are
checked by hand, and ``file:checksum`` against the bytes actually served.
"""

from __future__ import annotations

import copy
import hashlib
import io
import json
import zipfile
from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

import pystac
import pytest
import requests
import shapely
import shapely.geometry
from jsonschema import Draft7Validator
from pystac.validation.local_validator import get_local_schema_cache
from referencing import Registry, Resource

from sentinel_fetch.emulator import Emulator

from .test_server_support import bearer, client, token

MUNICH = "10.3,47.7,11.8,48.8"
JUNE_2023 = "2023-06-01T00:00:00Z/2023-06-30T23:59:59Z"
ITEM_SCHEMA = "https://schemas.stacspec.org/v1.1.0/item-spec/json-schema/item.json"


def get(cdse: Emulator, path: str, **params: Any) -> requests.Response:
    return client(cdse).get(cdse.stac_url + path, params=params or None, timeout=60)


def post(cdse: Emulator, body: dict[str, Any]) -> requests.Response:
    return client(cdse).post(cdse.stac_url + "/search", json=body, timeout=60)


def one_item(cdse: Emulator, collection: str, **params: Any) -> dict[str, Any]:
    page = get(cdse, f"/collections/{collection}/items", limit=1, **params).json()
    assert page["features"], f"no item in {collection}"
    item: dict[str, Any] = page["features"][0]
    return item


@pytest.fixture(scope="module")
def core_schema() -> Draft7Validator:
    cache = get_local_schema_cache()
    registry: Registry[Any] = Registry().with_resources(
        [(uri, Resource.from_contents(schema)) for uri, schema in cache.items()]
    )
    return Draft7Validator(cache[ITEM_SCHEMA], registry=registry)


def decode_multihash(value: str) -> tuple[int, bytes]:
    """``(code, digest)`` of a hex multihash (varint code, length byte, digest)."""
    raw = bytes.fromhex(value)
    code = shift = index = 0
    while True:
        byte = raw[index]
        code |= (byte & 0x7F) << shift
        index += 1
        shift += 7
        if not byte & 0x80:
            break
    length = raw[index]
    digest = raw[index + 1 :]
    assert len(digest) == length
    return code, digest


# Documents ------------------------------------------------------------------------------


def test_landing_page_conformance_and_collections(cdse: Emulator) -> None:
    landing = get(cdse, "/").json()
    rels = {(link["rel"], link.get("method")) for link in landing["links"]}
    conformance = get(cdse, "/conformance").json()["conformsTo"]
    collections = get(cdse, "/collections").json()["collections"]
    l2a = get(cdse, "/collections/sentinel-2-l2a").json()

    assert landing["type"] == "Catalog" and landing["stac_version"] == "1.1.0"
    assert {("search", "GET"), ("search", "POST"), ("conformance", None), ("data", None)} <= rels
    assert "https://api.stacspec.org/v1.0.0/item-search" in conformance
    assert "http://www.opengis.net/spec/cql2/1.0/conf/basic-cql2" in conformance
    assert [c["id"] for c in collections] == [
        "sentinel-1-grd",
        "sentinel-1-slc",
        "sentinel-2-l1c",
        "sentinel-2-l2a",
    ]
    assert {"B04_10m", "B04_20m", "B04_60m", "SCL_20m", "thumbnail", "Product"} <= set(
        l2a["item_assets"]
    )
    pystac.Collection.from_dict(l2a)
    assert [c["id"] for c in get(cdse, "/collections", q="sar").json()["collections"]] == [
        "sentinel-1-grd",
        "sentinel-1-slc",
    ]
    missing = get(cdse, "/collections/sentinel-3-olci")
    assert missing.status_code == 404 and missing.json()["code"] == "NotFoundError"
    assert get(cdse, "/queryables").json()["properties"]["eo:cloud_cover"]["type"] == "number"


# Items ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("collection", "keys"),
    [
        ("sentinel-2-l2a", {"B04_10m", "B04_20m", "B04_60m", "SCL_20m", "SCL_60m", "B09_60m"}),
        ("sentinel-2-l1c", {"B01", "B04", "B8A", "B10", "TCI"}),
        ("sentinel-1-grd", {"schema-product-vv", "schema-calibration-vh", "schema-noise-vv"}),
        ("sentinel-1-slc", {"iw1-vv", "iw3-vh", "schema-product-iw2-vv"}),
    ],
)
def test_items_are_valid_stac(
    cdse: Emulator, core_schema: Draft7Validator, collection: str, keys: set[str]
) -> None:
    params = {"bbox": MUNICH, "datetime": JUNE_2023} if "sentinel-2" in collection else {}
    item = one_item(cdse, collection, **params)
    if collection == "sentinel-1-grd" and "vv" not in item["assets"]:
        item = one_item(cdse, collection, filter="sar:instrument_mode = 'IW'")
    core = copy.deepcopy(item)
    core["stac_extensions"] = []

    core_schema.validate(core)
    parsed = pystac.Item.from_dict(item)
    assert parsed.id == item["id"] and parsed.collection_id == collection
    assert keys <= set(item["assets"])
    common = {"safe_manifest", "thumbnail", "Product"}
    if "sentinel-2" in collection:
        common |= {"product_metadata", "granule_metadata", "datastrip_metadata", "inspire_metadata"}
    assert common <= set(item["assets"])
    for key, asset in item["assets"].items():
        assert set(asset) >= {"href", "type", "roles"}, key
        if key == "Product":
            assert asset["auth:refs"] == ["oidc"]
            continue
        assert asset["file:local_path"].startswith(item["id"] + ".SAFE/")
        assert isinstance(asset["file:size"], int) and asset["file:size"] > 0
        https = asset["href"] if key == "thumbnail" else asset["alternate"]["https"]["href"]
        assert https.startswith("http")
        if key != "thumbnail":
            assert asset["href"].startswith("s3://eodata/")
            assert asset["alternate"]["https"]["auth:refs"] == ["oidc"]
        else:
            assert "auth:refs" not in asset
    if collection == "sentinel-2-l2a":
        # CDSE's example item has 43 assets: 36 images, 5 metadata files, thumbnail, Product.
        assert len(item["assets"]) == 43


def _instant(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def test_an_item_describes_the_same_product_as_odata(cdse: Emulator) -> None:
    item = one_item(cdse, "sentinel-2-l2a", bbox=MUNICH, datetime=JUNE_2023)
    odata = (
        client(cdse)
        .get(
            f"{cdse.catalogue_url}/Products",
            params={"$filter": f"Name eq '{item['id']}.SAFE'", "$expand": "Attributes"},
        )
        .json()["value"][0]
    )
    md5 = next(c["Value"] for c in odata["Checksum"] if c["Algorithm"] == "MD5")
    product = item["assets"]["Product"]
    own = get(cdse, f"/collections/sentinel-2-l2a/items/{item['id']}").json()

    assert own == item
    # The same product, whatever the catalogue's text quirks (spec §12.1): the GeoJSON
    # footprint may be left out there and older dates carry 3 fraction digits.
    wkt = odata["Footprint"].removeprefix("geography'SRID=4326;").removesuffix("'")
    assert shapely.geometry.shape(item["geometry"]).equals(shapely.from_wkt(wkt))
    for stac_name, odata_time in (
        ("datetime", odata["ContentDate"]["Start"]),
        ("published", odata["PublicationDate"]),
    ):
        # Old entities show milliseconds only: the same instant to the millisecond.
        gap = _instant(item["properties"][stac_name]) - _instant(odata_time)
        assert timedelta(0) <= gap < timedelta(milliseconds=1), stac_name
    cloud = next(a["Value"] for a in odata["Attributes"] if a["Name"] == "cloudCover")
    assert item["properties"]["eo:cloud_cover"] == round(cloud, 2)
    assert product["href"] == f"{cdse.download_url}/Products({odata['Id']})/$value"
    assert product["file:size"] == odata["ContentLength"]
    assert product["file:checksum"] == "d50110" + md5
    assert (
        f"/Products({odata['Id']})/Nodes({item['id']}.SAFE)/"
        in (item["assets"]["B04_10m"]["alternate"]["https"]["href"])
    )
    assert (
        urlsplit(item["assets"]["B04_10m"]["alternate"]["https"]["href"]).netloc
        == urlsplit(cdse.zipper_url).netloc
    )
    wrong = get(cdse, f"/collections/sentinel-2-l1c/items/{item['id']}")
    assert wrong.status_code == 404 and wrong.json()["code"] == "NotFoundError"


def fetch_assets(cdse: Emulator, item: dict[str, Any]) -> dict[str, bytes]:
    """Every file asset's bytes, fetched as a client would (token only where needed)."""
    session = client(cdse)
    access = token(cdse)
    found: dict[str, bytes] = {}
    for key, asset in item["assets"].items():
        if key == "Product":
            continue
        if key == "thumbnail":
            response = session.get(asset["href"], timeout=30)
        else:
            response = session.get(
                asset["alternate"]["https"]["href"], headers=bearer(access), timeout=30
            )
        assert response.status_code == 200, key
        found[key] = response.content
    return found


@pytest.mark.parametrize("collection", ["sentinel-2-l2a", "sentinel-1-slc"])
def test_each_asset_checksum_is_that_of_the_bytes_served(cdse: Emulator, collection: str) -> None:
    params = {"bbox": MUNICH, "datetime": JUNE_2023} if "sentinel-2" in collection else {}
    item = one_item(cdse, collection, **params)
    fetched = fetch_assets(cdse, item)
    archive = zipfile.ZipFile(
        io.BytesIO(
            client(cdse)
            .get(item["assets"]["Product"]["href"], headers=bearer(token(cdse)), timeout=60)
            .content
        )
    )

    for key, data in fetched.items():
        asset = item["assets"][key]
        code, digest = decode_multihash(asset["file:checksum"])
        assert len(data) == asset["file:size"], key
        assert data == archive.read(asset["file:local_path"]), key
        if code == 0x16:
            assert digest == hashlib.sha3_256(data).digest(), key
        elif len(digest) == 16:
            assert code == 0xD5 and digest == hashlib.md5(data, usedforsecurity=False).digest()
        else:
            # The malformed case of §9.7: the MD5 code with a SHA3-256 digest.
            assert key.endswith("_metadata") and code == 0xD5, key
            assert digest == hashlib.sha3_256(data).digest(), key
    images = [
        k for k in fetched if item["assets"][k]["type"].startswith("image/") and k != "thumbnail"
    ]
    assert images and all(item["assets"][k]["file:checksum"].startswith("1620") for k in images)
    assert item["assets"]["safe_manifest"]["file:checksum"].startswith("d50110")
    assert item["assets"]["thumbnail"]["file:checksum"].startswith("d50110")


def test_sentinel2_image_checksums_are_those_of_the_manifest(cdse: Emulator) -> None:
    import xml.etree.ElementTree as ElementTree

    item = one_item(cdse, "sentinel-2-l2a", bbox=MUNICH, datetime=JUNE_2023)
    manifest = fetch_assets(cdse, {"assets": {"safe_manifest": item["assets"]["safe_manifest"]}})
    tree = ElementTree.fromstring(manifest["safe_manifest"])  # noqa: S314 (the emulator's)
    listed = {
        stream.find("fileLocation").attrib["href"][2:]: stream.find("checksum").text  # type: ignore[union-attr]
        for stream in tree.iter("byteStream")
    }
    root = f"{item['id']}.SAFE/"

    for key, asset in item["assets"].items():
        if asset["type"] == "image/jp2":
            relative = asset["file:local_path"].removeprefix(root)
            assert asset["file:checksum"] == "1620" + str(listed[relative]).lower(), key


def test_metadata_checksums_are_well_formed_when_switched(cdse: Emulator) -> None:
    cdse.config.stac_malformed_metadata_checksums = False
    item = one_item(cdse, "sentinel-2-l2a", bbox=MUNICH, datetime=JUNE_2023)
    fetched = fetch_assets(
        cdse, {"assets": {"product_metadata": item["assets"]["product_metadata"]}}
    )

    code, digest = decode_multihash(item["assets"]["product_metadata"]["file:checksum"])
    assert code == 0xD5
    assert digest == hashlib.md5(fetched["product_metadata"], usedforsecurity=False).digest()


def test_stats_show_exactly_the_files_fetched(cdse: Emulator) -> None:
    item = one_item(cdse, "sentinel-2-l2a", bbox=MUNICH, datetime=JUNE_2023)
    assets = {k: item["assets"][k] for k in ("B04_10m", "SCL_20m")}
    product_id = item["assets"]["Product"]["href"].split("(")[1].split(")")[0]
    cdse.stats.reset()

    fetch_assets(cdse, {"assets": assets})

    assert cdse.stats.bytes_by_file() == {
        product_id: {a["file:local_path"]: a["file:size"] for a in assets.values()}
    }
    assert cdse.stats.bytes_served() == sum(a["file:size"] for a in assets.values())
    assert cdse.stats.requests_by_host() == {"identity": 1, "zipper": 2}


# Search ---------------------------------------------------------------------------------


def all_ids(cdse: Emulator, **params: Any) -> list[str]:
    page = get(cdse, "/search", limit=1000, **params).json()
    assert not [link for link in page["links"] if link["rel"] == "next"]
    return [f["id"] for f in page["features"]]


def odata_names(cdse: Emulator, filter_text: str) -> set[str]:
    ids = cdse.match_ids(filter_text)
    return {r.name.removesuffix(".SAFE") for r in (cdse.store.get(i) for i in ids) if r}


def test_search_selects_what_odata_selects(cdse: Emulator) -> None:
    """The same query through STAC and through OData gives the same products."""
    stac = all_ids(
        cdse,
        collections="sentinel-2-l2a",
        bbox=MUNICH,
        datetime=JUNE_2023,
        filter="eo:cloud_cover <= 30",
    )
    odata = odata_names(
        cdse,
        "Collection/Name eq 'SENTINEL-2' and "
        "Attributes/OData.CSC.StringAttribute/any(att:att/Name eq 'productType' and "
        "att/OData.CSC.StringAttribute/Value eq 'S2MSI2A') and "
        "OData.CSC.Intersects(area=geography'SRID=4326;POLYGON((10.3 47.7, 11.8 47.7, "
        "11.8 48.8, 10.3 48.8, 10.3 47.7))') and "
        "ContentDate/Start ge 2023-06-01T00:00:00.000Z and "
        "ContentDate/Start le 2023-06-30T23:59:59.000Z and "
        "Attributes/OData.CSC.DoubleAttribute/any(att:att/Name eq 'cloudCover' and "
        "att/OData.CSC.DoubleAttribute/Value lt 30.005)",
    )

    assert stac and set(stac) == odata
    assert len(stac) == len(set(stac))


@pytest.mark.parametrize(
    "variant",
    [
        {"filter": "eo:cloud_cover <= 30 AND NOT (platform = 'sentinel-2b')"},
        {
            "filter-lang": "cql2-json",
            "filter": json.dumps(
                {
                    "op": "and",
                    "args": [
                        {"op": "<=", "args": [{"property": "eo:cloud_cover"}, 30]},
                        {"op": "<>", "args": [{"property": "platform"}, "sentinel-2b"]},
                    ],
                }
            ),
        },
        {"query": json.dumps({"eo:cloud_cover": {"lte": 30}, "platform": {"neq": "sentinel-2b"}})},
    ],
    ids=["cql2-text", "cql2-json", "query"],
)
def test_filter_forms_agree(cdse: Emulator, variant: dict[str, str]) -> None:
    base = {"collections": "sentinel-2-l2a", "bbox": MUNICH, "datetime": JUNE_2023}
    expected = [
        i for i in all_ids(cdse, **base, filter="eo:cloud_cover <= 30") if not i.startswith("S2B")
    ]

    found = all_ids(cdse, **base, **variant)

    assert found and sorted(found) == sorted(expected)


def test_ids_intersects_and_post_search(cdse: Emulator) -> None:
    chosen = all_ids(cdse, collections="sentinel-2-l2a", bbox=MUNICH, datetime=JUNE_2023)[:3]
    by_ids = post(cdse, {"collections": ["sentinel-2-l2a"], "ids": chosen, "limit": 100}).json()
    area = {
        "type": "Polygon",
        "coordinates": [[[10.3, 47.7], [11.8, 47.7], [11.8, 48.8], [10.3, 48.8], [10.3, 47.7]]],
    }
    by_area = post(
        cdse,
        {
            "collections": ["sentinel-2-l2a"],
            "intersects": area,
            "datetime": JUNE_2023,
            "limit": 1000,
        },
    ).json()
    spatial = post(
        cdse,
        {
            "collections": ["sentinel-2-l2a"],
            "datetime": JUNE_2023,
            "limit": 1000,
            "filter": {"op": "s_intersects", "args": [{"property": "geometry"}, area]},
        },
    ).json()
    text = all_ids(
        cdse,
        collections="sentinel-2-l2a",
        datetime=JUNE_2023,
        filter="S_INTERSECTS(geometry, POLYGON((10.3 47.7, 11.8 47.7, 11.8 48.8, 10.3 48.8, "
        "10.3 47.7)))",
    )
    expected = set(all_ids(cdse, collections="sentinel-2-l2a", bbox=MUNICH, datetime=JUNE_2023))

    assert sorted(f["id"] for f in by_ids["features"]) == sorted(chosen)
    assert {f["id"] for f in by_area["features"]} == expected
    assert {f["id"] for f in spatial["features"]} == expected
    assert set(text) == expected
    pystac.ItemCollection.from_dict(by_ids)


def walk(cdse: Emulator, first: requests.Response) -> Iterator[dict[str, Any]]:
    """Pages of a search, following ``next`` links as a client does (GET or POST)."""
    page = first.json()
    while True:
        yield page
        following = [link for link in page["links"] if link["rel"] == "next"]
        if not following:
            return
        link = following[0]
        assert "token=next:" in link["href"] or link["body"]["token"].startswith("next:")
        if link.get("method") == "POST":
            assert link["merge"] is False and link["href"] == cdse.stac_url + "/search"
            page = client(cdse).post(link["href"], json=link["body"], timeout=60).json()
        else:
            page = client(cdse).get(link["href"], timeout=60).json()


@pytest.mark.parametrize("method", ["GET", "POST"])
def test_next_links_page_through_every_item_once(cdse: Emulator, method: str) -> None:
    expected = all_ids(cdse, collections="sentinel-2-l2a", bbox=MUNICH, datetime=JUNE_2023)
    query = {"collections": "sentinel-2-l2a", "bbox": MUNICH, "datetime": JUNE_2023, "limit": 4}
    if method == "GET":
        first = get(cdse, "/search", **query)
    else:
        body: dict[str, Any] = {
            **query,
            "collections": ["sentinel-2-l2a"],
            "bbox": [float(v) for v in MUNICH.split(",")],
        }
        first = post(cdse, body)

    pages = list(walk(cdse, first))
    seen = [f["id"] for page in pages for f in page["features"]]

    assert len(pages) == -(-len(expected) // 4)
    assert all(page["numberReturned"] == len(page["features"]) for page in pages)
    assert seen == expected


def test_sortby_orders_and_pages_by_any_key(cdse: Emulator) -> None:
    base = {"collections": "sentinel-2-l2a", "bbox": MUNICH, "datetime": JUNE_2023}
    pages = walk(cdse, get(cdse, "/search", sortby="+eo:cloud_cover", limit=5, **base))
    clouds = [f["properties"]["eo:cloud_cover"] for page in pages for f in page["features"]]
    posted = post(
        cdse,
        {
            "collections": ["sentinel-2-l2a"],
            "bbox": [float(v) for v in MUNICH.split(",")],
            "datetime": JUNE_2023,
            "sortby": [{"field": "properties.eo:cloud_cover", "direction": "desc"}],
            "limit": 1000,
        },
    ).json()

    assert len(clouds) == len(all_ids(cdse, **base))
    assert clouds == sorted(clouds)
    assert [f["properties"]["eo:cloud_cover"] for f in posted["features"]] == sorted(
        clouds, reverse=True
    )


def test_fields_trim_items(cdse: Emulator) -> None:
    base = {"collections": "sentinel-2-l2a", "bbox": MUNICH, "datetime": JUNE_2023, "limit": 2}
    slim = get(cdse, "/search", fields="id,properties.datetime,properties.eo:cloud_cover", **base)
    without = get(cdse, "/search", fields="-assets,-geometry", **base)
    posted = post(
        cdse,
        {
            "collections": ["sentinel-2-l2a"],
            "limit": 1,
            "fields": {"include": ["assets.thumbnail"], "exclude": ["assets.thumbnail.alternate"]},
        },
    )

    feature = slim.json()["features"][0]
    assert set(feature) == {"type", "id", "collection", "properties"}
    assert set(feature["properties"]) == {"datetime", "eo:cloud_cover"}
    trimmed = without.json()["features"][0]
    assert "assets" not in trimmed and "geometry" not in trimmed and "properties" in trimmed
    thumbnail = posted.json()["features"][0]["assets"]
    assert list(thumbnail) == ["thumbnail"] and "alternate" not in thumbnail["thumbnail"]


@pytest.mark.parametrize(
    "params",
    [
        {"bbox": "1,2,3"},
        {"bbox": "a,b,c,d"},
        {"datetime": "yesterday"},
        {"limit": "0"},
        {"filter": "eo:cloud_cover <= "},
        {"filter": "eo:cloud_cover = 'cloudy'"},
        {"filter-lang": "cql2-json", "filter": "{not json"},
        {"token": "next:S2Z_NOTHING"},
    ],
)
def test_bad_parameters_are_400(cdse: Emulator, params: dict[str, str]) -> None:
    answer = get(cdse, "/search", **params)

    assert answer.status_code == 400
    assert answer.json()["code"] == "InvalidQueryParameter" and answer.json()["description"]


def test_limits_and_unknown_names(cdse: Emulator) -> None:
    cdse.config.stac_max_limit = 3
    capped = get(cdse, "/search", collections="sentinel-2-l2a", limit=50).json()
    cdse.config.stac_max_limit = 10_000
    default = get(cdse, "/search", collections="sentinel-2-l2a").json()
    unknown_collection = get(cdse, "/search", collections="sentinel-9-x").json()
    unknown_property = get(cdse, "/search", collections="sentinel-2-l2a", filter="s2:foo = 1")
    negated = get(cdse, "/search", collections="sentinel-2-l2a", filter="NOT (s2:foo = 1)")
    missing = get(cdse, "/collections/sentinel-2-l2a/items/S2A_MSIL2A_NOPE")

    assert len(capped["features"]) == 3
    assert len(default["features"]) == 10
    assert unknown_collection["features"] == []
    # Like pgstac, an unknown property is null: neither the test nor its negation holds.
    assert unknown_property.json()["features"] == negated.json()["features"] == []
    assert missing.status_code == 404 and missing.json()["code"] == "NotFoundError"


# Rate limit and thumbnails --------------------------------------------------------------


class Clock:
    """A monotonic clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 1e9

    def __call__(self) -> float:
        return self.now


def test_the_rate_limiter_answers_429_with_retry_after(cdse: Emulator) -> None:
    clock = Clock()
    cdse.config.stac_clock = clock
    cdse.config.stac_requests_per_s = 5.0
    cdse.stats.reset()

    burst = [get(cdse, "/conformance").status_code for _ in range(5)]
    refused = get(cdse, "/conformance")
    clock.now += 0.2
    one_more = get(cdse, "/conformance").status_code
    again = get(cdse, "/conformance").status_code
    clock.now += 1.0
    refilled = [get(cdse, "/").status_code for _ in range(5)]

    assert burst == [200] * 5
    assert refused.status_code == 429
    assert refused.headers["Retry-After"] == "2"
    assert refused.json() == {"error": "WAF", "message": "Rate limit exceeded", "status": 429}
    assert (one_more, again) == (200, 429)
    assert refilled == [200] * 5
    assert cdse.stats.requests(host="stac", status=429) == 2


def test_thumbnails_redirect_to_a_second_origin_and_need_no_token(cdse: Emulator) -> None:
    item = one_item(cdse, "sentinel-2-l2a", bbox=MUNICH, datetime=JUNE_2023)
    thumbnail = item["assets"]["thumbnail"]
    session = client(cdse)
    cdse.stats.reset()

    hop = session.get(thumbnail["href"], allow_redirects=False, timeout=30)
    image = session.get(hop.headers["Location"], timeout=30)

    assert hop.status_code == 301
    assert urlsplit(hop.headers["Location"]).netloc != urlsplit(thumbnail["href"]).netloc
    assert image.status_code == 200 and image.headers["Content-Type"] == "image/jpeg"
    assert image.content[:2] == b"\xff\xd8"
    assert len(image.content) == thumbnail["file:size"]
    assert (
        "d50110" + hashlib.md5(image.content, usedforsecurity=False).hexdigest()
        == (thumbnail["file:checksum"])
    )
    assert cdse.stats.requests_by_host() == {"quicklook": 1, "quicklook-files": 1}
    assert not any(e.authorization for e in cdse.stats.events())


def test_a_share_of_thumbnails_can_fail(cdse: Emulator) -> None:
    items = get(cdse, "/search", collections="sentinel-2-l2a", bbox=MUNICH, limit=40).json()
    session = client(cdse)

    def statuses() -> list[int]:
        return [
            session.get(f["assets"]["thumbnail"]["href"], timeout=30).status_code
            for f in items["features"]
        ]

    cdse.config.quicklook_failure_share = 0.5
    half = statuses()
    cdse.config.quicklook_failure_share = 1.0
    every = statuses()

    assert set(every) <= {403, 404} and {403, 404} & set(every)
    assert 200 in half and set(half) - {200}
    assert set(half) <= {200, 403, 404}
    assert half == statuses_again(session, items, cdse, 0.5)


def statuses_again(
    session: requests.Session, items: dict[str, Any], cdse: Emulator, share: float
) -> list[int]:
    """The same draw again: failures depend on the product, never on chance."""
    cdse.config.quicklook_failure_share = share
    return [
        session.get(f["assets"]["thumbnail"]["href"], timeout=30).status_code
        for f in items["features"]
    ]


def test_env_names_the_stac_endpoint(cdse: Emulator) -> None:
    from sentinel_fetch.emulator.standalone import describe

    assert cdse.env()["SENTINEL_FETCH_STAC_URL"] == cdse.stac_url
    assert cdse.stac_url.endswith("/v1")
    assert any(line.strip() == f"STAC:      {cdse.stac_url}" for line in describe(cdse))
