"""The files of products from CDSE's STAC catalogue, in batches (cdse-api.md §9).

A STAC item lists every file of a product as an asset with its path inside the SAFE
(``file:local_path``), its size and a checksum, so a band-level download needs no tree
walk: one ``POST /v1/search`` with up to :data:`BATCH_SIZE` ``ids`` per request (never one
request per product), then one GET per file.

The catalogue allows about 5 requests per second per client; beyond that it answers 429
with ``Retry-After: 2``. :class:`StacLookup` spaces its requests at least
``1 / MAX_REQUESTS_PER_S`` apart, and every request goes through the one retry loop
(:func:`~sentinel_fetch.retry.retrying`): ``Retry-After`` honoured, 5xx and connection
failures retried with capped backoff, bounded in attempts.

This module is written without pystac: the client only needs assets' paths, sizes and
checksums out of the JSON, read defensively, and pystac would validate nothing of what
matters here (a checksum's bytes) while parsing the whole ~72 kB item into objects.

Everything from the server is untrusted: a ``next`` link is followed only on the
configured STAC origin, pages are bounded in number and size, and asset paths that could
leave the SAFE are dropped.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sentinel_fetch.downloads.manifest import safe_relative_path
from sentinel_fetch.downloads.multihash import Checksum, parse_multihash
from sentinel_fetch.errors import ServiceError, StacError, StoppedError
from sentinel_fetch.http import Transport, error_from_response, read_json
from sentinel_fetch.retry import RetryPolicy, Sleep, is_transient, pause, retrying
from sentinel_fetch.settings import origin_of
from sentinel_fetch.untrusted import UntrustedJSONError

__all__ = [
    "BATCH_SIZE",
    "MAX_REQUESTS_PER_S",
    "StacFile",
    "StacLookup",
    "files_of_item",
    "item_id",
    "request_with_retries",
]

log = logging.getLogger("sentinel_fetch.stac")

#: Ids per search request: tens per request keeps an answer (~72 kB per item) small.
BATCH_SIZE = 50
#: Below CDSE's ~5 requests/s, with room for a second tool on the same address.
MAX_REQUESTS_PER_S = 4.0
#: Largest answer read: a full page of 50 items is about 4 MB.
MAX_PAGE_BYTES = 64 << 20


@dataclass(frozen=True)
class StacFile:
    """One file of a product as STAC lists it.

    Attributes:
        path: path inside the SAFE (``GRANULE/.../B04_10m.jp2``).
        size: bytes (``file:size``), or ``None`` if not given.
        checksum: the parsed ``file:checksum``, or ``None`` if absent or unusable.
    """

    path: str
    size: int | None
    checksum: Checksum | None


def item_id(product_name: str) -> str:
    """The STAC item id of a product: its name without ``.SAFE`` (cdse-api.md §9.8).

    Example:
        >>> item_id("S2B_MSIL2A_20240612T103629_N0510_R008_T32UNE_20240612T134455.SAFE")
        'S2B_MSIL2A_20240612T103629_N0510_R008_T32UNE_20240612T134455'
    """
    return product_name.removesuffix(".SAFE")


def files_of_item(item: Mapping[str, Any], product_name: str) -> list[StacFile]:
    """The files of the SAFE an item lists, from its assets' ``file:local_path``.

    Assets outside ``<product name>/`` (the zipped ``Product``) or with a path that
    could leave the SAFE are left out.
    """
    assets = item.get("assets")
    if not isinstance(assets, Mapping):
        return []
    prefix = f"{product_name}/"
    files: dict[str, StacFile] = {}
    for asset in assets.values():
        if not isinstance(asset, Mapping):
            continue
        local = asset.get("file:local_path")
        if not isinstance(local, str) or not local.startswith(prefix):
            continue
        path = safe_relative_path(local[len(prefix) :])
        if path is None:
            continue
        size = asset.get("file:size")
        known = size if isinstance(size, int) and not isinstance(size, bool) and size >= 0 else None
        files[path] = StacFile(path, known, parse_multihash(asset.get("file:checksum")))
    return list(files.values())


def request_with_retries(
    transport: Transport,
    method: str,
    url: str,
    *,
    what: str,
    policy: RetryPolicy,
    stop: threading.Event | None = None,
    sleep: Sleep | None = None,
    bearer: Callable[[], str] | None = None,
    json_body: Any = None,
    before: Callable[[], None] | None = None,
    max_bytes: int = MAX_PAGE_BYTES,
    raw: bool = False,
) -> Any:
    """One small request (JSON, or bytes with ``raw``) through the retry loop.

    429, 5xx, connection failures and a cut answer are retried as
    :func:`~sentinel_fetch.retry.retrying` does (a ``Retry-After`` honoured, capped by the
    settings); ``before`` runs before every attempt (a request pacer).

    Raises:
        StacError: a permanent error answer, an answer too large or too deep, or the
            attempts ran out (the last status kept).
        StoppedError: ``stop`` was set while waiting.
    """

    def attempt() -> Any:
        if before is not None:
            before()
        response = transport.request(method, url, bearer=bearer, json_body=json_body, stream=True)
        with response:
            if response.status_code != 200:
                raise error_from_response(response, StacError)
            if not raw:
                return read_json(response, max_bytes=max_bytes)
            body = response.raw.read(max_bytes + 1, decode_content=True)
            if len(body) > max_bytes:
                raise UntrustedJSONError(f"the answer is over {max_bytes} bytes", hostile=True)
            return body

    def transient(error: Exception) -> bool:
        if isinstance(error, UntrustedJSONError):
            return not error.hostile  # a cut answer, not a hostile one
        return is_transient(error)

    spent: list[StacError] = []

    def give_up(error: Exception, attempts: int) -> StacError:
        status = error.status if isinstance(error, ServiceError) else 0
        spent.append(
            StacError(f"{what}: gave up after {attempts} attempts: {error}", status=status)
        )
        return spent[-1]

    try:
        return retrying(
            attempt,
            policy,
            give_up=give_up,
            what=what,
            logger=log,
            classify=transient,
            stop=stop,
            sleep=sleep,
        )
    except ServiceError as exc:
        if spent and exc is spent[-1]:
            raise
        raise StacError(f"{what}: {exc}", status=exc.status, code=exc.code) from None
    except UntrustedJSONError as exc:
        raise StacError(f"{what}: {exc}") from None


class StacLookup:
    """Looks STAC items up by product name, in batches, within the rate limit.

    Args:
        transport: the network road (the STAC host never gets the token).
        base_url: the STAC API base (``Endpoints.stac``).
        policy: attempts per request and the waits between them.
        stop: setting it ends every wait (the run is stopping).
        sleep: how to wait, instead of waiting on ``stop`` (tests).
        clock: monotonic clock for the request pacer.
        batch_size: ids per request.
    """

    def __init__(
        self,
        transport: Transport,
        base_url: str,
        *,
        policy: RetryPolicy | None = None,
        stop: threading.Event | None = None,
        sleep: Sleep | None = None,
        clock: Callable[[], float] = time.monotonic,
        batch_size: int = BATCH_SIZE,
    ) -> None:
        self.transport = transport
        self.base_url = base_url.rstrip("/")
        self.policy = policy or RetryPolicy()
        self.stop = stop
        self.sleep = sleep
        self.clock = clock
        self.batch_size = max(1, batch_size)
        self.requests = 0
        self._last_request: float | None = None

    def _pace(self) -> None:
        """Keep requests at least ``1 / MAX_REQUESTS_PER_S`` apart."""
        now = self.clock()
        if self._last_request is not None:
            gap = 1.0 / MAX_REQUESTS_PER_S - (now - self._last_request)
            if gap > 0:
                if pause(gap, stop=self.stop, sleep=self.sleep):
                    raise StoppedError("stopped while waiting to ask the STAC catalogue")
                now = self.clock()
        self._last_request = now
        self.requests += 1

    def items(self, product_names: Iterable[str]) -> dict[str, Mapping[str, Any]]:
        """``item id -> item`` for the products STAC has; missing ones are simply absent.

        Raises:
            StacError: the catalogue kept failing (the caller may fall back to Nodes).
        """
        ids = list(dict.fromkeys(item_id(name) for name in product_names))
        found: dict[str, Mapping[str, Any]] = {}
        for start in range(0, len(ids), self.batch_size):
            batch = ids[start : start + self.batch_size]
            found.update(self._search(batch))
        return found

    def _search(self, ids: Sequence[str]) -> dict[str, Mapping[str, Any]]:
        wanted = set(ids)
        url = f"{self.base_url}/search"
        body: Any = {"ids": list(ids), "limit": len(ids)}
        found: dict[str, Mapping[str, Any]] = {}
        # Every id is on some page; a page that adds nothing new ends the paging too.
        for _ in range(len(ids) + 2):
            page = request_with_retries(
                self.transport,
                "POST",
                url,
                what="STAC search",
                policy=self.policy,
                stop=self.stop,
                sleep=self.sleep,
                json_body=body,
                before=self._pace,
            )
            features = page.get("features") if isinstance(page, Mapping) else None
            if not isinstance(features, list):
                raise StacError("STAC search: the answer is not a FeatureCollection")
            added = 0
            for feature in features:
                if isinstance(feature, Mapping) and feature.get("id") in wanted:
                    identifier = str(feature["id"])
                    if identifier not in found:
                        found[identifier] = feature
                        added += 1
            following = self._next(page)
            if following is None or not added or len(found) == len(wanted):
                break
            url, body = following
        return found

    def _next(self, page: Mapping[str, Any]) -> tuple[str, Any] | None:
        """The next page's URL and body, when the link stays on the STAC origin."""
        links = page.get("links")
        if not isinstance(links, list):
            return None
        for link in links:
            if not isinstance(link, Mapping) or link.get("rel") != "next":
                continue
            href = link.get("href")
            body = link.get("body")
            if not isinstance(href, str) or not isinstance(body, Mapping):
                return None
            try:
                same = origin_of(href) == origin_of(self.base_url)
            except ValueError:
                return None
            if not same or "@" in href.split("/", 3)[2]:
                log.warning("STAC: not following a next link to another host")
                return None
            return href, dict(body)
        return None
