"""The one-call Python API: :func:`search`, :func:`count` and :func:`download`.

Each opens a :class:`~sentinel_fetch.client.Client` for the call and closes it after
(a search: when the caller closes it, or when it is exhausted, see :func:`search`).
A script that downloads more than once should hold one Client instead: one login for
all its downloads, where each :func:`download` call logs in anew.

Example::

    import sentinel_fetch as sf

    products = sf.search(collections="SENTINEL-2", product_types="L2A",
                         start="2023-06-01", end="2023-06-30",
                         area=(11, 46, 12, 47), max_cloud_cover=20)
    report = sf.download(products, save_path="data")     # verified files in data/Finish
    for result in report.failed:
        print(result.product.name, result.error)

    # or a URL copied from the Copernicus Browser's developer tools:
    products = sf.search(open("SearchURL.txt").read())
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

from sentinel_fetch.auth import Credentials
from sentinel_fetch.catalogue.query import Query
from sentinel_fetch.catalogue.search import Search
from sentinel_fetch.client import (
    Client,
    checked_settings,
    lock_folders,
    make_query,
    run_folders,
)
from sentinel_fetch.downloads.engine import BatchReport
from sentinel_fetch.downloads.transfer import Downloadable
from sentinel_fetch.errors import InputError
from sentinel_fetch.http import Transport
from sentinel_fetch.progress import Progress
from sentinel_fetch.retry import Backoff
from sentinel_fetch.settings import Settings

__all__ = ["count", "download", "lock_folders", "make_query", "run_folders", "search"]


def search(
    query: Query | str | None = None,
    /,
    *,
    settings: Settings | None = None,
    transport: Transport | None = None,
    **fields: Any,
) -> Search:
    """Search the catalogue; iterate the result for every matching product.

    Nothing is sent until the result is iterated or counted. A search needs no login,
    so it holds only a network road: the caller's ``transport``, or one of its own
    whose connections close when the result is garbage-collected (use
    :meth:`Client.search <sentinel_fetch.client.Client.search>` to close them at a
    known point).

    Args:
        query: a :class:`Query`, or a search URL pasted from the Copernicus Browser.
        settings: endpoints, proxy, limits; defaults to the environment.
        transport: reuse an existing network road.
        **fields: search fields (see :func:`~sentinel_fetch.client.make_query`).
    """
    settings = checked_settings(settings)
    if transport is None:
        # The Client is closed at once: the Search keeps its (lazily reopened) road.
        with Client(settings) as client:
            return client.search(query, **fields)
    limits = settings.limits
    return Search(
        make_query(query, settings, **fields),
        transport=transport,
        page_size=limits.page_size,
        max_attempts=limits.max_attempts,
        backoff=Backoff(limits.backoff_base_s, limits.backoff_max_s),
    )


def count(
    query: Query | str | None = None, /, *, settings: Settings | None = None, **fields: Any
) -> int:
    """How many products match, without listing them."""
    with Client(settings) as client:
        return client.count(query, **fields)


def download(
    products: Iterable[Downloadable],
    *,
    settings: Settings | None = None,
    save_path: str | Path | None = None,
    workers: int | None = None,
    credentials: Credentials | None = None,
    progress: Progress | None = None,
    ledger: bool = True,
    bands: str | Iterable[str] | None = None,
    files: str | Iterable[str] | None = None,
    preset: str | None = None,
) -> BatchReport:
    """Download products into ``<save_path>/Finish`` with a Client of its own.

    See :meth:`Client.download <sentinel_fetch.client.Client.download>` for the
    arguments, the result and the errors; ``credentials`` defaults to the environment,
    ``~/.netrc`` or the keyring. Each call logs in once. ``bands``, ``files`` and
    ``preset`` fetch only those files of each product (see :meth:`Client.download`).
    """
    if credentials is not None and not isinstance(credentials, Credentials):
        raise InputError(
            f"credentials must be a sentinel_fetch.Credentials, got {type(credentials).__name__}"
        )
    with Client(settings, credentials) as client:
        return client.download(
            products,
            save_path=save_path,
            workers=workers,
            progress=progress,
            ledger=ledger,
            bands=bands,
            files=files,
            preset=preset,
        )
