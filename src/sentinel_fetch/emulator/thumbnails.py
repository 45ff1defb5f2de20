"""The thumbnail hosts of STAC items (``datahub.creodias.eu`` -> ``zipper.creodias.eu``, §5.9).

A STAC item's ``thumbnail`` points at ``<quicklook>/odata/v1/Assets(<uuid>)/$value``. As
probed on CDSE, that URL answers **301** to a second origin, which answers **200 without
any token** with a small image (cdse-api.md §5.9, §9.6). The emulator has both origins:
``quicklook`` only redirects, ``quicklook-files`` serves the bytes of the product's
thumbnail file in its SAFE (``<item id>-ql.jpg`` for Sentinel-2, ``preview/thumbnail.png``
for Sentinel-1), exactly what the item's ``file:size`` and MD5 describe.

The asset UUID is the product's OData quicklook asset Id (see :mod:`.stac.items`). The
catalogue's own ``Assets(<id>)/$value`` is unchanged (its small PNG; §3.1).

"Some quicklooks answer 403 or 404" (§5.9): ``quicklook_failure_share`` of the products,
chosen by product id, answer 403 or 404 (half each) on the second origin.
"""

from __future__ import annotations

import re
import uuid

from .archive import ArchiveStore
from .config import EmulatorConfig
from .model import Handler, ProductStore, Request, Response
from .safe import thumbnail_path
from .stats import Stats

__all__ = ["files_handler", "redirect_handler"]

_ROUTE = re.compile(r"/odata/v1/Assets\(([0-9a-fA-F-]{36})\)/\$value")


def _product_id(asset: str) -> str | None:
    # Imported here: the catalogue package is loaded only once an emulator starts.
    from .catalogue.entity import product_uid_of_asset

    try:
        raw = uuid.UUID(asset).bytes
    except ValueError:
        return None
    return str(uuid.UUID(bytes=product_uid_of_asset(raw)))


def redirect_handler(files_base_url: str) -> Handler:
    """The first origin: every ``Assets(<uuid>)/$value`` is a 301 to the second one."""

    def handle(request: Request) -> Response:
        if request.method not in ("GET", "HEAD") or _ROUTE.fullmatch(request.path) is None:
            return Response.json(404, {"detail": "Not Found"})
        location = files_base_url + request.path
        if request.raw_query:
            location += "?" + request.raw_query
        return Response(301, [("Location", location)], b"")

    return handle


def files_handler(
    config: EmulatorConfig, store: ProductStore, archives: ArchiveStore, stats: Stats
) -> Handler:
    """The second origin: the thumbnail's bytes, no token needed."""
    from .catalogue.quicklook import quicklook_refusal

    def handle(request: Request) -> Response:
        match = _ROUTE.fullmatch(request.path)
        if request.method not in ("GET", "HEAD") or match is None:
            return Response.json(404, {"detail": "Not Found"})
        product_id = _product_id(match.group(1))
        record = store.get(product_id) if product_id is not None else None
        path = thumbnail_path(record) if record is not None else None
        if record is None or path is None:
            return Response.json(404, {"detail": "Asset not found"})
        status = quicklook_refusal(record.id, config.quicklook_failure_share)
        if status is not None:
            return Response.json(status, {"detail": "Forbidden" if status == 403 else "Not Found"})
        data = archives.member_bytes(record, path)
        if data is None:
            return Response.json(404, {"detail": "Asset not found"})
        if request.method == "GET":
            stats.add_file_bytes(record.id, path, len(data))
        kind = "image/jpeg" if path.endswith(".jpg") else "image/png"
        return Response(200, [("Content-Type", kind)], data)

    return handle
