"""Quicklooks: the small preview image of each product, fetched in parallel, no token.

CDSE serves a product's quicklook at the ``DownloadLink`` of its ``QUICKLOOK`` asset
(``$expand=Assets``) without authentication (cdse-api.md §5.9), so none is sent: the
requests go through the :class:`~sentinel_fetch.http.Transport` without a bearer. Many
products have no quicklook, and some that do answer 403 or 404: each becomes a
:class:`Quicklook` with a ``problem`` and the others go on.

What arrives is untrusted: at most :data:`MAX_QUICKLOOK_BYTES` are read, the bytes must
decode as a PNG or JPEG no larger than :data:`MAX_QUICKLOOK_PIXELS`, and the file name is
made from the product name by :func:`~sentinel_fetch.downloads.paths.assign_file_names`,
so it stays inside the folder.
"""

from __future__ import annotations

import io
import logging
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from sentinel_fetch.catalogue.product import Product
from sentinel_fetch.downloads.paths import assign_file_names, make_folder
from sentinel_fetch.errors import ServiceError
from sentinel_fetch.http import Transport
from sentinel_fetch.redact import redact_url
from sentinel_fetch.settings import Settings

__all__ = [
    "MAX_QUICKLOOK_BYTES",
    "MAX_QUICKLOOK_PIXELS",
    "MAX_QUICKLOOK_WORKERS",
    "Quicklook",
    "fetch_quicklooks",
]

log = logging.getLogger("sentinel_fetch.quicklooks")

#: Quicklooks are about 2.5 kB, 343×343 px (§5.9); anything far larger is not one.
MAX_QUICKLOOK_BYTES = 4 * 1024 * 1024
MAX_QUICKLOOK_PIXELS = 4096 * 4096
#: Quicklooks go to other hosts than products, but are kept to the account's 4 streams.
MAX_QUICKLOOK_WORKERS = 4
_FORMATS = {"PNG": ".png", "JPEG": ".jpg"}


@dataclass(frozen=True)
class Quicklook:
    """The quicklook of one product.

    Attributes:
        product: the product.
        path: the saved image, ``None`` when there is none.
        problem: why there is none (``no quicklook in the catalogue``, ``HTTP 404``...).
    """

    product: Product
    path: Path | None = None
    problem: str | None = None


def fetch_quicklooks(
    products: Sequence[Product],
    folder: Path | str,
    *,
    settings: Settings | None = None,
    transport: Transport | None = None,
    workers: int = MAX_QUICKLOOK_WORKERS,
) -> list[Quicklook]:
    """Save every product's quicklook into ``folder``, in parallel, in product order.

    Args:
        products: search results (``quicklook_url`` comes with ``$expand=Assets``).
        folder: where the images go (created if missing).
        settings: proxy, CA bundle and timeouts (defaults to :class:`Settings`).
        transport: an existing transport to reuse (it is not closed).
        workers: parallel requests, 1 to :data:`MAX_QUICKLOOK_WORKERS`.

    Returns:
        One :class:`Quicklook` per product, in the order given.

    Raises:
        ValueError: ``workers`` out of range.
    """
    if not 1 <= workers <= MAX_QUICKLOOK_WORKERS:
        raise ValueError(f"workers must be 1-{MAX_QUICKLOOK_WORKERS}, got {workers}")
    target = Path(folder)
    make_folder(target)
    names = assign_file_names((p.id, _stem(p.name) + "-ql.jpg") for p in products)
    own = transport is None
    road = transport or Transport(settings or Settings())
    try:
        with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="quicklook") as pool:
            return list(pool.map(lambda p: _fetch_one(road, p, target / names[p.id]), products))
    finally:
        if own:
            road.close()


def _stem(name: str) -> str:
    for suffix in (".SAFE", ".SEN3", ".nc", ".zip"):
        if name.upper().endswith(suffix.upper()):
            return name[: -len(suffix)]
    return name


def _fetch_one(transport: Transport, product: Product, path: Path) -> Quicklook:
    url = product.quicklook_url
    if not url:
        return Quicklook(product, problem="no quicklook in the catalogue")
    if not url.lower().startswith(("https://", "http://")):
        return Quicklook(product, problem="the quicklook link is not an HTTP(S) URL")
    try:
        # No bearer: quicklooks need no token, and the link is the server's to choose.
        response = transport.request("GET", url, stream=True)
    except ServiceError as error:
        log.debug("quicklook of %s: %s", product.name, error)
        return Quicklook(product, problem=str(error))
    with response:
        if response.status_code != 200:
            return Quicklook(product, problem=f"HTTP {response.status_code}")
        try:
            data = _bounded_body(response)
        except ServiceError as error:
            return Quicklook(product, problem=str(error))
    kind = _image_kind(data)
    if kind is None:
        log.debug("quicklook of %s from %s is not an image", product.name, redact_url(url))
        return Quicklook(product, problem="the quicklook is not a PNG or JPEG image")
    saved = path.with_suffix(kind)
    partial = saved.with_name(saved.name + ".part")
    partial.write_bytes(data)
    partial.replace(saved)
    return Quicklook(product, path=saved)


def _bounded_body(response: object) -> bytes:
    import requests

    assert isinstance(response, requests.Response)
    chunks: list[bytes] = []
    total = 0
    try:
        for chunk in response.iter_content(65536):
            total += len(chunk)
            if total > MAX_QUICKLOOK_BYTES:
                raise ServiceError(
                    f"the quicklook is larger than {MAX_QUICKLOOK_BYTES // 1024 // 1024} MB",
                    transient=False,
                )
            chunks.append(chunk)
    except requests.RequestException as error:
        raise ServiceError(f"the quicklook transfer broke off: {error}") from None
    return b"".join(chunks)


def _image_kind(data: bytes) -> str | None:
    """``.png`` or ``.jpg`` when ``data`` decodes as such an image of a sane size."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(io.BytesIO(data)) as image:
            width, height = image.size
            if image.format not in _FORMATS or width * height > MAX_QUICKLOOK_PIXELS:
                return None
            image.load()
            return _FORMATS[image.format]
    except (UnidentifiedImageError, OSError, ValueError, Image.DecompressionBombError):
        return None
