"""Sentinel-1's native compressed archive (``$zip``) where the catalogue offers it (§5.8).

For about a month after publication, Sentinel-1 RAW, GRD and SLC products also exist in
their native compressed form: about half the bytes of the zipper's store-only ``$value``
zip. ``$expand=Locations`` lists it as a second, ``Compressed`` entry with its own size
and checksums. :func:`native_archives` asks the catalogue for that expansion, in batches
of ids, for the Sentinel-1 products of a batch, and :func:`choose_native` (pure) decides:
a compressed entry with a size and an MD5 or BLAKE3 makes the product a
:class:`NativeProduct`, fetched from ``Products(<id>)/$zip`` and verified against that
entry, never against the product-level checksum (which describes the ``$value`` zip).

The window is the catalogue's word, not our clock's: an entry present is a form offered.
If ``$zip`` then answers "not found" (the window closed since), the engine falls back to
the ``$value`` archive.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from sentinel_fetch.catalogue.stac import request_with_retries
from sentinel_fetch.downloads.transfer import Downloadable
from sentinel_fetch.errors import SentinelFetchError, StoppedError
from sentinel_fetch.http import Transport
from sentinel_fetch.retry import RetryPolicy
from sentinel_fetch.settings import Settings

__all__ = [
    "NativeProduct",
    "choose_native",
    "is_native_candidate",
    "native_archives",
    "with_native",
]

log = logging.getLogger("sentinel_fetch.download")

#: Ids per catalogue request (an ``Id eq … or …`` filter stays well under URL limits).
_BATCH = 20
_KINDS = ("_RAW_", "_GRDH_", "_GRDM_", "_GRDF_", "_GRD_", "_SLC_")


@dataclass(frozen=True)
class NativeProduct:
    """A product to fetch as its native ``$zip``: the compressed entry's size and checksums.

    Every other attribute (``name``, ``file_name``, ``to_dict``...) is the product's own.
    """

    product: Downloadable
    size: int
    checksums: Mapping[str, str]
    download_url: str

    @property
    def id(self) -> str:
        return self.product.id

    @property
    def name(self) -> str:
        return self.product.name

    @property
    def file_name(self) -> str:
        return self.product.file_name

    def __getattr__(self, name: str) -> Any:
        return getattr(self.product, name)


def is_native_candidate(product: Downloadable) -> bool:
    """Whether a product may have a native form: a Sentinel-1 RAW, GRD or SLC SAFE.

    Example:
        >>> from sentinel_fetch.catalogue.product import Product
        >>> name = "S1A_IW_GRDH_1SDV_20251228T053012_20251228T053037_061612_07B2C4_0A1B.SAFE"
        >>> is_native_candidate(Product(id="x", name=name))
        True
    """
    name = product.name
    return name.startswith("S1") and name.endswith(".SAFE") and any(k in name for k in _KINDS)


def _checksums(value: Any) -> dict[str, str]:
    found: dict[str, str] = {}
    if not isinstance(value, list):
        return found
    for entry in value:
        if not isinstance(entry, Mapping):
            continue
        algorithm, digest = entry.get("Algorithm"), entry.get("Value")
        if not isinstance(algorithm, str) or not isinstance(digest, str):
            continue
        size = {"MD5": 32, "BLAKE3": 64}.get(algorithm.upper())
        if size is None or len(digest) != size:
            continue
        try:
            bytes.fromhex(digest)
        except ValueError:
            continue
        found[algorithm.upper()] = digest.lower()
    return found


def choose_native(
    product: Downloadable, locations: Any, settings: Settings
) -> NativeProduct | None:
    """The native form of ``product`` if its ``Locations`` offer a usable one (pure).

    Usable: ``FormatType`` ``Compressed``, a positive ``ContentLength`` and an MD5 or
    BLAKE3 checksum. The URL is built from the product's id on the configured download
    host; the entry's own ``DownloadLink`` is not followed.
    """
    if not is_native_candidate(product) or not isinstance(locations, list):
        return None
    for entry in locations:
        if not isinstance(entry, Mapping):
            continue
        if str(entry.get("FormatType", "")).lower() != "compressed":
            continue
        size = entry.get("ContentLength")
        checksums = _checksums(entry.get("Checksum"))
        if not isinstance(size, int) or isinstance(size, bool) or size <= 0 or not checksums:
            continue
        base = settings.endpoints.product_url(product.id).removesuffix("/$value")
        return NativeProduct(product, size, checksums, f"{base}/$zip")
    return None


def native_archives(
    products: Sequence[Downloadable],
    *,
    settings: Settings,
    transport: Transport,
    stop: threading.Event | None = None,
) -> dict[str, NativeProduct]:
    """``product id -> native form`` for the products the catalogue offers one for.

    A catalogue that cannot answer means no native form: the ``$value`` archive is
    always there, so a failure here is logged, never fatal.
    """
    candidates = [p for p in products if is_native_candidate(p)]
    chosen: dict[str, NativeProduct] = {}
    limits = settings.limits
    # The $value archive is always there: a catalogue that keeps failing is not waited for.
    policy = RetryPolicy(min(limits.max_attempts, 4), RetryPolicy.from_limits(limits).backoff)
    for start in range(0, len(candidates), _BATCH):
        batch = {p.id: p for p in candidates[start : start + _BATCH]}
        try:
            for product_id in batch:  # UUIDs only reach the filter text
                settings.endpoints.product_url(product_id)
            text = " or ".join(f"Id eq '{product_id}'" for product_id in batch)
            url = (
                f"{settings.endpoints.catalogue}/Products?$filter={quote(text)}"
                f"&$expand=Locations&$top={len(batch)}"
            )
            page = request_with_retries(
                transport,
                "GET",
                url,
                what="catalogue Locations",
                policy=policy,
                stop=stop,
            )
        except StoppedError:
            raise
        except SentinelFetchError as exc:
            log.info("no native Sentinel-1 archives looked up: %s", exc)
            continue
        entries = page.get("value") if isinstance(page, Mapping) else None
        for entity in entries if isinstance(entries, list) else []:
            if not isinstance(entity, Mapping):
                continue
            product = batch.get(str(entity.get("Id", "")).lower())
            if product is None:
                continue
            native = choose_native(product, entity.get("Locations"), settings)
            if native is not None:
                chosen[product.id] = native
    return chosen


def with_native(
    products: Iterable[Downloadable], natives: Mapping[str, NativeProduct]
) -> list[Downloadable]:
    """The products, each replaced by its native form where there is one."""
    return [natives.get(p.id, p) for p in products]
