"""The Python API: :func:`search`, :func:`count` and :func:`download`.

Example::

    import sentinel_fetch as sf

    products = sf.search(collections="SENTINEL-2", product_types="L2A",
                         start="2023-06-01", end="2023-06-30",
                         area="POLYGON((11 46, 12 46, 12 47, 11 47, 11 46))",
                         max_cloud_cover=20)
    report = sf.download(products, save_path="data")     # verified files in data/Finish
    for result in report.failed:
        print(result.product.name, result.error)

    # or a URL copied from the Copernicus Browser's developer tools:
    products = sf.search(open("SearchURL.txt").read())
"""

from __future__ import annotations

import dataclasses
import difflib
import inspect
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from sentinel_fetch.auth import Credentials, TokenManager
from sentinel_fetch.catalogue.browser_url import parse_search_url
from sentinel_fetch.catalogue.query import Query, build_query
from sentinel_fetch.catalogue.search import Search
from sentinel_fetch.credentials import find_credentials
from sentinel_fetch.downloads.engine import BatchReport, DownloadEngine, JobRecorder
from sentinel_fetch.downloads.folderlock import FolderLock
from sentinel_fetch.downloads.paths import Layout, make_folder
from sentinel_fetch.downloads.transfer import Downloadable
from sentinel_fetch.errors import ConfigError, InputError, QueryError
from sentinel_fetch.http import Transport
from sentinel_fetch.ledger import JobLedger
from sentinel_fetch.progress import Progress
from sentinel_fetch.retry import Backoff
from sentinel_fetch.settings import Settings

__all__ = ["count", "download", "lock_folders", "make_query", "run_folders", "search"]


#: Keyword fields :func:`make_query` takes: those of build_query.
_SEARCH_KEYWORDS = tuple(inspect.signature(build_query).parameters)
_QUERY_FIELDS = tuple(field.name for field in dataclasses.fields(Query))
#: What :func:`download` needs of each product (the transfer's Downloadable).
_PRODUCT_ATTRIBUTES = ("id", "name", "size", "checksums", "file_name")


def _checked_products(products: object) -> list[Downloadable]:
    """The products as a list; something else (names as text, a number) is an InputError."""
    if isinstance(products, (str, bytes)) or not isinstance(products, Iterable):
        raise InputError(
            f"download takes products (a search result, read_products(...)), not "
            f"{type(products).__name__}"
        )
    items = list(products)
    for item in items:
        if not all(hasattr(item, name) for name in _PRODUCT_ATTRIBUTES):
            hint = (
                ": search for names first, sf.download(sf.search(names=[...]))"
                if isinstance(item, str)
                else ""
            )
            raise InputError(
                f"download takes products (with {', '.join(_PRODUCT_ATTRIBUTES)}), not "
                f"{type(item).__name__}{hint}"
            )
    return items


def _checked_settings(settings: object) -> Settings:
    """The caller's settings, or the environment's; a wrong type is a ConfigError, not a crash."""
    if settings is None:
        return Settings.from_env()
    if not isinstance(settings, Settings):
        raise ConfigError(
            f"settings must be a sentinel_fetch.Settings, got {type(settings).__name__}",
            setting="settings",
        )
    return settings


def make_query(
    query: Query | str | None = None, settings: Settings | None = None, **fields: Any
) -> Query:
    """One :class:`Query` from a Query, a pasted browser URL, or keyword fields.

    Keyword fields are those of :func:`~sentinel_fetch.catalogue.query.build_query`
    (``collections``, ``product_types``, ``start``, ``end``, ``area``,
    ``max_cloud_cover``, ``tiles``, ``relative_orbits``, ``orbit_direction``,
    ``platforms``, ``online``, ``name_contains``, ``processing_baselines``, ``names``,
    ``ids``, ``extra_filters``, ``order_by``). With a URL or Query, keyword fields
    refine it (they replace the same fields).
    """
    settings = _checked_settings(settings)
    _check_fields(fields)
    base: Query | None
    if isinstance(query, str):
        base = parse_search_url(query, settings.endpoints)
    elif isinstance(query, Query) or query is None:
        base = query
    else:
        raise QueryError(f"a search is a Query or a URL, not {type(query).__name__}")
    if base is None:
        return build_query(**fields)
    if not fields:
        return base
    refined = build_query(**fields)
    changes = {name: getattr(refined, name) for name in fields if name in _QUERY_FIELDS}
    return base.with_changes(**changes)


def _check_fields(fields: dict[str, Any]) -> None:
    """A misspelled keyword is the user's input to fix: a QueryError, not a TypeError."""
    unknown = sorted(set(fields) - set(_SEARCH_KEYWORDS))
    if unknown:
        close = difflib.get_close_matches(unknown[0], _SEARCH_KEYWORDS, n=1)
        hint = f"did you mean {close[0]}?" if close else "use " + ", ".join(_QUERY_FIELDS)
        raise QueryError(f"unknown search field {unknown[0]!r}: {hint}")


def search(
    query: Query | str | None = None,
    /,
    *,
    settings: Settings | None = None,
    transport: Transport | None = None,
    **fields: Any,
) -> Search:
    """Search the catalogue; iterate the result for every matching product.

    Nothing is sent until the result is iterated or counted. Every product comes back
    exactly once, however many match (the search is split past the catalogue's 10,000
    paging limit).

    Args:
        query: a :class:`Query`, or a search URL pasted from the Copernicus Browser.
        settings: endpoints, proxy, limits; defaults to the environment.
        transport: reuse an existing network road.
        **fields: search fields (see :func:`make_query`).
    """
    settings = _checked_settings(settings)
    return Search(
        make_query(query, settings, **fields),
        transport=transport or Transport(settings),
        page_size=settings.limits.page_size,
        max_attempts=settings.limits.max_attempts,
        backoff=Backoff(settings.limits.backoff_base_s, settings.limits.backoff_max_s),
    )


def count(
    query: Query | str | None = None, /, *, settings: Settings | None = None, **fields: Any
) -> int:
    """How many products match, without listing them."""
    return search(query, settings=settings, **fields).count()


def run_folders(settings: Settings) -> list[Path]:
    """Every folder a download run writes: the save folder (ledger, reports), temp, finish."""
    return [settings.save_path, settings.temp_path, settings.finish_path]


def lock_folders(settings: Settings, *, command: str | None = None) -> FolderLock:
    """Check the folders of a run, create them, and lock them all for this process.

    Nothing is created when the temp and finish folders would be on different file
    systems. Release the lock (or use it as a context manager) when the run ends; the
    operating system releases it if the process dies.

    Raises:
        ConfigError: the temp and finish folders are on different file systems, or a
            folder's path is a file.
        FolderInUseError: another run holds one of the folders.
        StorageError: a folder cannot be created.
    """
    layout = Layout(settings.temp_path, settings.finish_path)
    layout.check()
    make_folder(settings.save_path)
    layout.prepare()
    return FolderLock.acquire(run_folders(settings), command=command)


def download(
    products: Iterable[Downloadable],
    *,
    settings: Settings | None = None,
    save_path: str | Path | None = None,
    workers: int | None = None,
    credentials: Credentials | None = None,
    progress: Progress | None = None,
    ledger: bool = True,
    transport: Transport | None = None,
) -> BatchReport:
    """Download products into ``<save_path>/Finish``, verified; resume what is partial.

    The run holds the save, temp and finish folders (:func:`lock_folders`) from start to
    end: a second run on any of them, in this process or another, on this machine or
    another one sharing the folder, stops at once with :class:`FolderInUseError`.

    Args:
        products: products (e.g. a :func:`search` result or a saved result file's list).
        settings: endpoints, proxy, folders, limits; defaults to the environment.
        save_path: overrides ``settings.save_path``.
        workers: products at once (default 4, a free account's connection limit).
        credentials: the CDSE account; default: environment, ``~/.netrc``, keyring.
        progress: receives progress events.
        ledger: keep the job ledger in the save folder (sync semantics, ``status``, and
            the record of which file is which product's; without it, products are
            told apart by the batch alone).
        transport: reuse an existing network road.

    Returns:
        One result per distinct product; ``report.ok`` when all are verified.

    Raises:
        FolderInUseError: another run holds one of the folders.
        ConfigError: the folders cannot be used (different file systems, a file).
        LedgerFileError: the save folder holds a file that is not a job ledger.
        StorageError: the disk refused; the report of what was done is lost with it.
        AuthError: the account cannot log in or cannot download.
    """
    settings = _checked_settings(settings)
    wanted = _checked_products(products)
    if credentials is not None and not isinstance(credentials, Credentials):
        raise InputError(
            f"credentials must be a sentinel_fetch.Credentials, got {type(credentials).__name__}"
        )
    if progress is not None and not callable(progress):
        raise InputError(f"progress must be callable, got {type(progress).__name__}")
    if save_path is not None:
        # As given: the settings refuse an empty or non-path value (Path("") is ".").
        settings = settings.with_changes(save_path=save_path)
    if workers is not None:
        from dataclasses import replace

        settings = settings.with_changes(limits=replace(settings.limits, workers=workers))
    with lock_folders(settings):
        transport = transport or Transport(settings)
        account: Credentials | Any = credentials or (lambda: find_credentials(settings.endpoints))
        tokens = TokenManager(
            transport,
            settings.endpoints,
            account,
            refresh_margin_s=settings.limits.token_refresh_margin_s,
        )
        recorder: JobRecorder | None = JobLedger.open(settings.save_path) if ledger else None
        try:
            engine = DownloadEngine(
                settings, tokens, transport=transport, progress=progress, recorder=recorder
            )
            return engine.run(wanted)
        finally:
            if isinstance(recorder, JobLedger):
                recorder.close()
