"""The Client: one owner for a run, holding one network road and one login.

CDSE counts every password login as a session (100 per account), so a script that
searches and downloads several times should log in once. A :class:`Client` holds one
:class:`~sentinel_fetch.http.Transport` (its connections) and one
:class:`~sentinel_fetch.auth.TokenManager` (its login) for its whole life, and every
job goes through it: the command line, the module-level functions
(``sentinel_fetch.search`` and friends, which open a Client for one call and close it)
and Python programs.

Example::

    import sentinel_fetch as sf

    with sf.Client() as client:                  # settings and account from the environment
        products = list(client.search(collections="SENTINEL-2", product_types="L2A",
                                      start="2023-06-01", end="2023-06-30",
                                      area=(11, 46, 12, 47), max_cloud_cover=20))
        report = client.download(products, save_path="data")   # one login ...
        failed = client.products(retry_failed=True, save_path="data")
        client.download(failed, save_path="data")                # ... reused here
        print(client.status("data").counts, client.verify("data").ok)

Constructing a Client sends nothing: the login happens when a download first needs a
token. After :meth:`Client.close` (or the ``with`` block) the Client refuses every
call with :class:`~sentinel_fetch.errors.ClientClosedError`.
"""

from __future__ import annotations

import dataclasses
import difflib
import functools
import inspect
import logging
import threading
import uuid
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from importlib import import_module
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO, TypeAlias

from sentinel_fetch.downloads.folderlock import FolderLock, LockMode
from sentinel_fetch.downloads.paths import Layout, make_folder
from sentinel_fetch.errors import (
    ClientClosedError,
    ConfigError,
    InputError,
    LedgerFileError,
    ProductNotFoundError,
    QueryError,
    ResultFileError,
    SentinelFetchError,
)
from sentinel_fetch.ledger import (
    LEDGER_FILE_NAME,
    AccountStatus,
    JobLedger,
    Ledger,
    LedgerSummary,
    StoredProduct,
    WorkerStatus,
)
from sentinel_fetch.progress import ProductState, Progress
from sentinel_fetch.settings import Settings

# The network, the catalogue and the checksums load on first use: ``status`` needs none
# of them and starts as fast as the ledger opens.
if TYPE_CHECKING:
    from sentinel_fetch.auth import Credentials, TokenManager
    from sentinel_fetch.catalogue.browser_url import read_search_url_file
    from sentinel_fetch.catalogue.product import Product
    from sentinel_fetch.catalogue.product_types import suggest_product_types
    from sentinel_fetch.catalogue.query import Query
    from sentinel_fetch.catalogue.relative import parse_relative
    from sentinel_fetch.catalogue.results import ndjson_line, write_products
    from sentinel_fetch.catalogue.search import RejectedEntry, Search, SearchProgress
    from sentinel_fetch.catalogue.triage import SORT_ORDERS, Triage, TriageOutcome
    from sentinel_fetch.config import EffectiveConfig
    from sentinel_fetch.credentials import PromptFn
    from sentinel_fetch.downloads.audit import CORRUPT_FOLDER, AuditReport
    from sentinel_fetch.downloads.coordination import Team
    from sentinel_fetch.downloads.engine import BatchReport, ProductResult
    from sentinel_fetch.downloads.plan import (
        Action,
        PlannedProduct,
        Shard,
        is_offline,
        parse_shard,
        shard_of,
    )
    from sentinel_fetch.downloads.quota import parse_quota_stop
    from sentinel_fetch.downloads.selection import PRESETS, Selection
    from sentinel_fetch.downloads.transfer import Downloadable
    from sentinel_fetch.footprint_map import check_map_path, write_map
    from sentinel_fetch.http import Transport
    from sentinel_fetch.quicklooks import Quicklook

__all__ = [
    "CORRUPT_FOLDER",
    "PRESETS",
    "SORT_ORDERS",
    "AccountStatus",
    "Action",
    "AuditReport",
    "BatchReport",
    "Client",
    "Credentials",
    "Extraction",
    "JobActivity",
    "LedgerSummary",
    "PlannedProduct",
    "Product",
    "ProductResult",
    "ProductSelection",
    "Query",
    "Quicklook",
    "SearchProgress",
    "Selection",
    "Shard",
    "Triage",
    "TriageOutcome",
    "WorkerStatus",
    "check_map_path",
    "is_offline",
    "lock_folders",
    "make_query",
    "ndjson_line",
    "parse_quota_stop",
    "parse_relative",
    "parse_shard",
    "read_search_url_file",
    "run_folders",
    "shard_of",
    "suggest_product_types",
    "write_map",
    "write_products",
]

#: What this module hands on from the library, loaded when first asked for.
_LAZY = {
    "CORRUPT_FOLDER": "sentinel_fetch.downloads.audit",
    "PRESETS": "sentinel_fetch.downloads.selection",
    "Selection": "sentinel_fetch.downloads.selection",
    "Action": "sentinel_fetch.downloads.plan",
    "AuditReport": "sentinel_fetch.downloads.audit",
    "BatchReport": "sentinel_fetch.downloads.engine",
    "Credentials": "sentinel_fetch.auth",
    "PlannedProduct": "sentinel_fetch.downloads.plan",
    "Product": "sentinel_fetch.catalogue.product",
    "ProductResult": "sentinel_fetch.downloads.engine",
    "Query": "sentinel_fetch.catalogue.query",
    "is_offline": "sentinel_fetch.downloads.plan",
    "Shard": "sentinel_fetch.downloads.plan",
    "parse_shard": "sentinel_fetch.downloads.plan",
    "shard_of": "sentinel_fetch.downloads.plan",
    "parse_quota_stop": "sentinel_fetch.downloads.quota",
    "ndjson_line": "sentinel_fetch.catalogue.results",
    "Quicklook": "sentinel_fetch.quicklooks",
    "SearchProgress": "sentinel_fetch.catalogue.search",
    "SORT_ORDERS": "sentinel_fetch.catalogue.triage",
    "Triage": "sentinel_fetch.catalogue.triage",
    "TriageOutcome": "sentinel_fetch.catalogue.triage",
    "check_map_path": "sentinel_fetch.footprint_map",
    "parse_relative": "sentinel_fetch.catalogue.relative",
    "read_search_url_file": "sentinel_fetch.catalogue.browser_url",
    "suggest_product_types": "sentinel_fetch.catalogue.product_types",
    "write_map": "sentinel_fetch.footprint_map",
    "write_products": "sentinel_fetch.catalogue.results",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(import_module(module), name)
    globals()[name] = value
    return value


log = logging.getLogger("sentinel_fetch.client")

#: What a download needs of each product (the transfer's Downloadable).
_PRODUCT_ATTRIBUTES = ("id", "name", "size", "checksums", "file_name")
#: What :class:`Client` accepts as the account: one, or a callable that finds one on
#: first use (a prompt then only happens when a token is really needed).
CredentialsSource: TypeAlias = "Credentials | Callable[[], Credentials]"


def checked_settings(settings: object) -> Settings:
    """The caller's settings, or the environment's; a wrong type is a ConfigError, not a crash."""
    if settings is None:
        return Settings.from_env()
    if not isinstance(settings, Settings):
        raise ConfigError(
            f"settings must be a sentinel_fetch.Settings, got {type(settings).__name__}",
            setting="settings",
        )
    return settings


def checked_products(products: object) -> list[Downloadable]:
    """The products as a list; something else (names as text, a number) is an InputError."""
    if isinstance(products, ProductSelection):
        return list(products.products)
    if isinstance(products, (str, bytes)) or not isinstance(products, Iterable):
        raise InputError(
            f"download takes products (a search result, read_products(...)), not "
            f"{type(products).__name__}"
        )
    items = list(products)
    for item in items:
        if not all(hasattr(item, name) for name in _PRODUCT_ATTRIBUTES):
            hint = (
                ": search for names first, client.products(names=[...])"
                if isinstance(item, str)
                else ""
            )
            raise InputError(
                f"download takes products (with {', '.join(_PRODUCT_ATTRIBUTES)}), not "
                f"{type(item).__name__}{hint}"
            )
    return items


def make_query(
    query: Query | str | None = None, settings: Settings | None = None, **fields: Any
) -> Query:
    """One :class:`Query` from a Query, a pasted browser URL, or keyword fields.

    Keyword fields are those of :func:`~sentinel_fetch.catalogue.query.build_query`
    (``collections``, ``product_types``, ``start``, ``end``, ``area``,
    ``max_cloud_cover``, ``tiles``, ``relative_orbits``, ``orbit_direction``,
    ``platforms``, ``online``, ``name_contains``, ``processing_baselines``, ``names``,
    ``ids``, ``extra_filters``, ``order_by``). An area may be text (WKT, GeoJSON, a
    bbox, a file name), a ``(west, south, east, north)`` tuple or list, a GeoJSON dict
    or a shapely geometry. With a URL or Query, keyword fields refine it (they replace
    the same fields).

    Raises:
        QueryError: a misspelled field, or a search that is neither a Query nor a URL.
    """
    from sentinel_fetch.catalogue.browser_url import parse_search_url
    from sentinel_fetch.catalogue.query import Query, build_query

    settings = checked_settings(settings)
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
    changes = {name: getattr(refined, name) for name in fields if name in _query_fields()}
    return base.with_changes(**changes)


@functools.cache
def _search_keywords() -> tuple[str, ...]:
    """Keyword fields :func:`make_query` takes: those of build_query."""
    from sentinel_fetch.catalogue.query import build_query

    return tuple(inspect.signature(build_query).parameters)


@functools.cache
def _query_fields() -> tuple[str, ...]:
    from sentinel_fetch.catalogue.query import Query

    return tuple(f.name for f in dataclasses.fields(Query))


def _check_fields(fields: dict[str, Any]) -> None:
    """A misspelled keyword is the user's input to fix: a QueryError, not a TypeError."""
    keywords = _search_keywords()
    unknown = sorted(set(fields) - set(keywords))
    if unknown:
        close = difflib.get_close_matches(unknown[0], keywords, n=1)
        hint = f"did you mean {close[0]}?" if close else "use " + ", ".join(_query_fields())
        raise QueryError(f"unknown search field {unknown[0]!r}: {hint}")


def run_folders(settings: Settings) -> list[Path]:
    """Every folder a download run writes: the save folder (ledger, reports), temp, finish."""
    return [settings.save_path, settings.temp_path, settings.finish_path]


def lock_folders(
    settings: Settings,
    *,
    command: str | None = None,
    mode: LockMode = "exclusive",
    job: str = "",
) -> FolderLock:
    """Check the folders of a run, create them, and lock them all for this process.

    ``mode="shared"``: downloads that cooperate through the job ledger ``job`` (its
    location) hold the folders together; anything exclusive (``verify``) and runs of
    another job are refused while they do.

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
    return FolderLock.acquire(run_folders(settings), command=command, mode=mode, job=job)


def _quota_stop_bytes(quota_stop: str | int | None, quota_bytes: int) -> int | None:
    """A quota stop as bytes of the account's quota, checked before anything is locked.

    Raises:
        InputError: it cannot be read, or it is past the account's quota.
    """
    if quota_stop is None:
        return None
    from sentinel_fetch.downloads.quota import parse_quota_stop

    try:
        return parse_quota_stop(quota_stop, quota_bytes)
    except ValueError as exc:
        raise InputError(f"quota stop: {exc}") from None


def _job_location(settings: Settings) -> str:
    """Which job a download belongs to: its PostgreSQL ledger (password masked), else
    its save folder (the SQLite ledger in it)."""
    from sentinel_fetch.redact import redact_url

    location = settings.ledger
    if location and "://" in location:
        return redact_url(str(location))
    return str(Path(location or settings.save_path).expanduser().resolve())


def _shard(shard: Shard | str) -> Shard:
    """A shard given as ``"K/N"`` text, checked."""
    from sentinel_fetch.downloads.plan import Shard, parse_shard

    if isinstance(shard, Shard):
        return shard
    try:
        return parse_shard(shard)
    except ValueError as exc:
        raise InputError(f"shard: {exc}") from None


def _bounded_text(piped: TextIO | str) -> str:
    """Piped text, bounded like a list file (a pipe may never end)."""
    from sentinel_fetch.catalogue.results import MAX_NAME_LIST_BYTES

    text = piped if isinstance(piped, str) else piped.read(MAX_NAME_LIST_BYTES + 1)
    if len(text) > MAX_NAME_LIST_BYTES:
        raise ResultFileError(f"the input is over {MAX_NAME_LIST_BYTES // 1_000_000} MB")
    return text


def _is_uuid(value: str) -> bool:
    try:
        uuid.UUID(value)
    except ValueError:
        return False
    return True


@dataclass
class ProductSelection:
    """The products a job asked for, and the catalogue entries that could not be read.

    Attributes:
        products: every product asked for, in order, each once (by id).
        rejected: catalogue entries the searches could not read; a download reports
            them as failed (:meth:`Client.write_report`).
    """

    products: list[Product] = field(default_factory=list)
    rejected: list[RejectedEntry] = field(default_factory=list)

    def __iter__(self) -> Any:
        return iter(self.products)

    def __len__(self) -> int:
        return len(self.products)


@dataclass(frozen=True)
class Extraction:
    """One verified zip extracted (``folder``), or why it could not be (``problem``)."""

    product: Downloadable
    folder: Path | None = None
    problem: str | None = None


@dataclass(frozen=True)
class JobActivity:
    """What a job folder is doing now, beyond what its ledger counts.

    Attributes:
        running: who holds the job's folders (pid, host, since), or ``None`` if no run.
        in_flight: ``(name, bytes on disk)`` of every product the ledger has in flight;
            the ledger counts bytes when a product ends, so this is its ``.part`` so far.
    """

    running: str | None
    in_flight: list[tuple[str, int]]


class Client:
    """One owner for a run: one network road and one login, for search and download.

    Args:
        settings: endpoints, proxy, folders, limits; defaults to the environment
            (:meth:`Settings.from_env <sentinel_fetch.settings.Settings.from_env>`).
        credentials: the CDSE account, or a callable returning it when first needed;
            default: the environment, ``~/.netrc``, the keyring
            (:func:`~sentinel_fetch.credentials.find_credentials`).

    Raises:
        ConfigError: ``settings`` is not a :class:`Settings`.
        InputError: ``credentials`` is neither :class:`Credentials` nor callable.
    """

    def __init__(
        self, settings: Settings | None = None, credentials: CredentialsSource | None = None
    ) -> None:
        self._settings = checked_settings(settings)
        if credentials is not None:
            from sentinel_fetch.auth import Credentials

            if not (isinstance(credentials, Credentials) or callable(credentials)):
                raise InputError(
                    "credentials must be a sentinel_fetch.Credentials, got "
                    f"{type(credentials).__name__}"
                )
        self._account = credentials
        self._network: tuple[Transport, TokenManager] | None = None
        self._closed = False
        self._login_ahead: threading.Thread | None = None
        # The login count when the login ahead began: that login is the next download's.
        self._logins_base = 0
        self._login_stop = threading.Event()

    @classmethod
    def from_config(
        cls, config: EffectiveConfig, *, totp: str | None = None, prompt: PromptFn | None = None
    ) -> Client:
        """A Client from merged configuration layers (what the command line uses).

        The account is looked up on first use, with the config file's ``[account]``
        values among the sources and ``prompt`` as the last resort.
        """
        settings = config.settings()

        def account() -> Credentials:
            from sentinel_fetch.credentials import find_credentials

            return find_credentials(
                settings.endpoints,
                config_username=config.get("account.username"),
                config_password=config.get("account.password"),
                totp=totp,
                totp_secret=config.get("account.totp_secret"),
                prompt=prompt,
            )

        return cls(settings, account)

    # -- life ---------------------------------------------------------------------------

    @property
    def settings(self) -> Settings:
        """The settings every call starts from."""
        return self._settings

    @property
    def logins(self) -> int:
        """Password logins this Client made (each one is a CDSE session)."""
        return self._network[1].logins if self._network is not None else 0

    @property
    def _transport(self) -> Transport:
        return self._road()[0]

    @property
    def _tokens(self) -> TokenManager:
        return self._road()[1]

    def _road(self) -> tuple[Transport, TokenManager]:
        """The one Transport and TokenManager, made on first need (no I/O either way)."""
        self._check_open()
        if self._network is None:
            from sentinel_fetch.auth import TokenManager
            from sentinel_fetch.credentials import find_credentials
            from sentinel_fetch.http import Transport

            endpoints = self._settings.endpoints
            account = self._account or (lambda: find_credentials(endpoints))
            transport = Transport(self._settings)
            tokens = TokenManager(
                transport,
                endpoints,
                account,
                refresh_margin_s=self._settings.limits.token_refresh_margin_s,
            )
            self._network = (transport, tokens)
        return self._network

    @property
    def closed(self) -> bool:
        """Whether :meth:`close` was called."""
        return self._closed

    def close(self) -> None:
        """Close every connection; the Client refuses later calls. Safe to call twice."""
        self._closed = True
        self._login_stop.set()
        if self._login_ahead is not None:
            self._login_ahead.join()  # a login in flight ends its tries at the stop
        if self._network is not None:
            self._network[0].close()

    def log_in_ahead(self, stop: threading.Event | None = None) -> None:
        """Start the password login now, in the background, for the downloads to come.

        The first download request then finds a token instead of waiting for a login: the
        login's round trips overlap what the caller does meanwhile (planning, catalogue
        look-ups). The account is looked up here, in the calling thread, so a prompt
        stays where the user is. Nothing is raised here: a refused login is met again,
        and reported, by the download's first request (a refusal is not retried).
        Waits between tries end when ``stop`` is set (a batch's stop), or at :meth:`close`.
        """
        self._check_open()
        if self._login_ahead is not None:
            return
        tokens = self._tokens
        try:
            tokens.credentials  # noqa: B018 - looked up now, in this thread
        except SentinelFetchError:
            return

        def log_in() -> None:
            try:
                tokens.access_token(stop=stop or self._login_stop)
            except SentinelFetchError as exc:
                from sentinel_fetch.redact import redact

                log.debug("login ahead of the downloads failed: %s", redact(str(exc)))

        self._logins_base = tokens.logins
        self._login_ahead = threading.Thread(target=log_in, name="sentinel-fetch-login")
        self._login_ahead.start()

    def __enter__(self) -> Client:
        self._check_open()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __repr__(self) -> str:
        state = "closed" if self._closed else "open"
        return f"<Client {state} catalogue={self._settings.endpoints.catalogue!r}>"

    def _check_open(self) -> None:
        if self._closed:
            raise ClientClosedError(
                "this Client is closed (its connections and login are gone): make a new one"
            )

    def _job_settings(
        self, save_path: str | Path | None = None, workers: int | None = None
    ) -> Settings:
        settings = self._settings
        if save_path is not None:
            # As given: the settings refuse an empty or non-path value (Path("") is ".").
            settings = settings.with_changes(save_path=save_path)
        if workers is not None:
            limits = dataclasses.replace(settings.limits, workers=workers)
            settings = settings.with_changes(limits=limits)
        return settings

    # -- search -------------------------------------------------------------------------

    def search(self, query: Query | str | None = None, /, **fields: Any) -> Search:
        """Search the catalogue; iterate the result for every matching product.

        Nothing is sent until the result is iterated or counted. Every product comes
        back exactly once, however many match (the search is split past the catalogue's
        10,000 paging limit).

        Args:
            query: a :class:`Query`, or a search URL pasted from the Copernicus Browser.
            **fields: search fields (see :func:`make_query`); they refine ``query``.
        """
        from sentinel_fetch.catalogue.search import Search
        from sentinel_fetch.retry import Backoff

        self._check_open()
        limits = self._settings.limits
        return Search(
            make_query(query, self._settings, **fields),
            transport=self._transport,
            page_size=limits.page_size,
            max_attempts=limits.max_attempts,
            backoff=Backoff(limits.backoff_base_s, limits.backoff_max_s),
        )

    def count(self, query: Query | str | None = None, /, **fields: Any) -> int:
        """How many products match, without listing them."""
        return self.search(query, **fields).count()

    def products(
        self,
        query: Query | str | None = None,
        /,
        *,
        names: Sequence[str] = (),
        files: Sequence[str | Path] = (),
        retry_failed: bool = False,
        save_path: str | Path | None = None,
        piped: TextIO | str | None = None,
        published_after: datetime | None = None,
        **fields: Any,
    ) -> ProductSelection:
        """Every product a job asks for, from any mix of sources, each once, in order.

        Args:
            query: a search (Query or pasted URL); with ``fields``, refined by them.
            names: product names or ids; each must be in the catalogue.
            files: saved results: ``.json``/``.geojson`` (used as saved, no search) or
                a ``.txt`` list of names or ids (looked up again).
            retry_failed: add the products that failed in the save folder's ledger.
            save_path: the job whose ledger ``retry_failed`` reads (default: settings).
            piped: text (or a stream) of names, ids or ``search``'s NDJSON, one per line
                (``download --from -``); read up to the bound of a list file.
            published_after: only products published after this instant; the search
                asks the catalogue for no more, saved results and names are cut here.
            **fields: search fields (see :func:`make_query`).

        Raises:
            ProductNotFoundError: a name or id is not in the catalogue.
            LedgerFileError: the ledger holds an entry something else damaged.
            ResultFileError: the piped text is too long or holds a line that is no product.
        """
        from sentinel_fetch.catalogue.results import read_name_list, read_products

        self._check_open()
        if published_after is not None and (query is not None or fields):
            from sentinel_fetch.catalogue.filter import format_datetime

            # The catalogue does the cutting, so a nightly run asks only for what is new.
            query = make_query(query, self._settings, **fields)
            published = f"PublicationDate gt {format_datetime(published_after)}"
            query = query.with_changes(extra_filters=(*query.extra_filters, published))
            fields = {}
        selection = ProductSelection()
        collected: list[Product] = []

        def found_by(search_query: Query | str) -> list[Product]:
            result = self.search(search_query)
            found = list(result)
            selection.rejected.extend(e for e in result.rejected if e not in selection.rejected)
            return found

        if query is not None or fields:
            collected.extend(found_by(make_query(query, self._settings, **fields)))
        for file in files:
            if Path(file).suffix.lower() == ".txt":
                collected.extend(found_by(read_name_list(file)))
            else:
                collected.extend(read_products(file))
        if piped is not None:
            from sentinel_fetch.catalogue.piped import read_piped

            products, listed = read_piped(_bounded_text(piped))
            collected.extend(products)
            if listed is not None:
                collected.extend(found_by(listed))
        if names:
            collected.extend(self._named(list(names), found_by, selection.rejected))
        if retry_failed:
            collected.extend(self._failed_products(self._job_settings(save_path).save_path))
        if published_after is not None:
            # Saved results and names were not cut by the catalogue: the same rule here.
            collected = [
                p
                for p in collected
                if p.publication_date is None or p.publication_date > published_after
            ]
        unique: dict[str, Product] = {}
        for product in collected:
            unique.setdefault(product.id, product)
        selection.products = list(unique.values())
        return selection

    def newest_publication(self, save_path: str | Path | None = None) -> datetime | None:
        """The newest publication date among the products the save folder's ledger knows.

        Every product an earlier run's search found is recorded, whatever its state, so
        what was published after this is new since that run (``download --new``).
        ``None`` without an earlier run or without any date: then everything is new.

        Raises:
            LedgerFileError: a damaged ledger (never a reason to fetch everything again).
        """
        from sentinel_fetch.catalogue.product import Product
        from sentinel_fetch.ledger import STATES

        self._check_open()
        folder = self._job_settings(save_path).save_path
        if not (folder / LEDGER_FILE_NAME).is_file():
            return None
        with JobLedger.open(folder, read_only=True) as ledger:
            entries = ledger.product_dicts(STATES)
        dates = [
            product.publication_date
            for product in (Product.from_dict(entry) for entry in entries)
            if product.publication_date is not None
        ]
        return max(dates) if dates else None

    # -- triage and previews ------------------------------------------------------------

    def triage(
        self,
        products: Iterable[Product],
        triage: Triage,
        area: Any = None,
    ) -> TriageOutcome:
        """The products ``triage`` keeps (twins, coverage of ``area``, order, a cut).

        Every product left out is named with its reason in the outcome's ``drops``.

        Raises:
            InputError: a minimum coverage without an area.
        """
        from sentinel_fetch.catalogue.triage import apply_triage

        self._check_open()
        return apply_triage(list(products), triage, area)

    def quicklooks(self, products: Sequence[Product], folder: str | Path) -> list[Quicklook]:
        """Save every product's quicklook into ``folder`` (no account needed), in order.

        A product without one (none listed, a refused or hostile answer) keeps its
        place with ``path`` ``None`` and the ``problem``.
        """
        from sentinel_fetch.quicklooks import fetch_quicklooks

        self._check_open()
        return fetch_quicklooks(
            products, folder, settings=self._settings, transport=self._transport
        )

    def contact_sheets(self, looks: Sequence[Quicklook], folder: str | Path) -> list[Path]:
        """Draw the quicklooks as labelled grids (``contact-sheet.png`` and on)."""
        from sentinel_fetch.contact_sheet import write_contact_sheets

        self._check_open()
        return write_contact_sheets(looks, Path(folder))

    def _named(
        self,
        names_or_ids: list[str],
        found_by: Callable[[Query], list[Product]],
        rejected: list[RejectedEntry],
    ) -> list[Product]:
        from sentinel_fetch.catalogue.query import build_query

        ids = [value for value in names_or_ids if _is_uuid(value)]
        names = [value for value in names_or_ids if not _is_uuid(value)]
        found = found_by(build_query(names=names, ids=ids))
        known = {p.id for p in found} | {p.name for p in found}
        # A name whose entry was unreadable is in the catalogue: it is reported as failed.
        known |= {value for entry in rejected for value in (entry.id, entry.name) if value}
        missing = [v for v in names_or_ids if v.lower() not in known and v not in known]
        if missing:
            more = f" and {len(missing) - 5} more" if len(missing) > 5 else ""
            raise ProductNotFoundError(
                f"not in the catalogue: {', '.join(missing[:5])}{more}", missing=missing
            )
        return found

    @staticmethod
    def _failed_products(save_path: Path) -> list[Product]:
        """The catalogue entries the ledger stored for the products that failed."""
        from sentinel_fetch.catalogue.product import Product

        with JobLedger.open(save_path, read_only=True) as ledger:
            entries = ledger.product_dicts(["failed"])
        products = []
        for entry in entries:
            try:
                products.append(Product.from_dict(entry))
            except ResultFileError:
                which = entry.get("id") or entry.get("name") or "(no id)"
                raise LedgerFileError(
                    f"the job ledger {save_path / LEDGER_FILE_NAME} holds a damaged catalogue"
                    f" entry for product {str(which)[:80]}: it was changed by something other"
                    " than sentinel-fetch"
                ) from None
        return products

    # -- download -----------------------------------------------------------------------

    def check_folders(self, save_path: str | Path | None = None) -> None:
        """Refuse now, before a search and a login, what a download would refuse later.

        The download itself checks again and locks the folders; this only spares the
        wait, and creates nothing.

        Raises:
            ConfigError: the temp and finish folders are on different file systems.
            FolderInUseError: another run holds one of the folders.
        """
        from sentinel_fetch.ledger import check_ledger_location

        settings = self._job_settings(save_path)
        Layout(settings.temp_path, settings.finish_path).check()
        if settings.ledger:
            check_ledger_location(settings.ledger)
        # Downloads with a ledger share their folders: only an exclusive holder refuses.
        FolderLock.check_free(run_folders(settings), mode="shared", job=_job_location(settings))

    def plan(
        self, products: Iterable[Downloadable], *, save_path: str | Path | None = None
    ) -> list[PlannedProduct]:
        """What :meth:`download` would do with each product; reads the disk, sends nothing.

        The decision is the run's own (:func:`~sentinel_fetch.downloads.plan.decide`):
        only a product the catalogue marks ``Online: false`` is offline.
        """
        from sentinel_fetch.downloads.plan import plan

        self._check_open()
        wanted = checked_products(products)
        settings = self._job_settings(save_path)
        recorded: dict[str, str] = {}
        if (settings.save_path / LEDGER_FILE_NAME).exists():
            with JobLedger.open(settings.save_path, read_only=True) as ledger:
                recorded = ledger.file_names()
        unique: dict[str, Downloadable] = {}
        for product in wanted:
            unique.setdefault(product.id, product)
        return plan(unique.values(), Layout(settings.temp_path, settings.finish_path), recorded)

    def download(
        self,
        products: Iterable[Downloadable],
        *,
        save_path: str | Path | None = None,
        workers: int | None = None,
        progress: Progress | None = None,
        ledger: bool = True,
        bands: str | Iterable[str] | None = None,
        files: str | Iterable[str] | None = None,
        preset: str | None = None,
        shard: Shard | str | None = None,
        quota_stop: str | int | None = None,
    ) -> BatchReport:
        """Download products into ``<save_path>/Finish``, verified; resume what is partial.

        The run holds the save, temp and finish folders (:func:`lock_folders`) from start
        to end, shared with other downloads of the same job: any number of them (here
        or in other processes, or on other machines with a PostgreSQL ledger) share
        the batch, each product claimed by one of them through a lease in the ledger
        (:mod:`~sentinel_fetch.downloads.coordination`), and every request takes one
        of the account's connection slots, so that all of them together stay within
        the account's limit. ``verify`` (or a download with ``ledger=False``) on the
        same folders stops at once with :class:`~sentinel_fetch.errors.FolderInUseError`.
        Every call shares this Client's login: three downloads make one password login.

        Args:
            products: products (a search result, :meth:`products`, a saved result's list).
                They are held as one list for the run, unlike a search's outputs: the
                batch is planned as a whole before the first byte (duplicates dropped by
                id, file names told apart across products, the ledger's skips, offline
                products, native archives and file plans looked up in batches) and the
                report holds one result per product anyway.
            save_path: overrides ``settings.save_path``.
            workers: products at once (default 4, a free account's connection limit).
            progress: receives progress events (from worker threads).
            ledger: keep the job ledger in the save folder (sync semantics, ``status``,
                and the record of which file is which product's; without it, products
                are told apart by the batch alone).
            bands: fetch only these bands (``"B04,B08,SCL"``, ``["B04_20m"]``, ``"VV"``):
                a name takes the finest resolution the product has.
            files: fetch only the files whose path inside the SAFE matches these patterns.
            preset: a named set of bands and files
                (:data:`~sentinel_fetch.downloads.selection.PRESETS`). With any of the
                three, each product becomes its chosen files, listed by STAC in batches
                (the Nodes listing where STAC lacks it), in
                ``<finish>/<name>.SAFE/<path inside the SAFE>``, each verified. Without
                them, Sentinel-1 RAW/GRD/SLC products the catalogue still offers in their
                native compressed form (``$zip``) are fetched so, verified against it.
            shard: only part ``K/N`` of the batch (a stable hash of each product id),
                for cluster tasks that share no ledger.
            quota_stop: stop taking products before the account's 30-day volume
                reaches this share of its quota (``"95%"``) or this many bytes; the
                products not started stay queued for a later run.

        Returns:
            One result per distinct product; ``report.ok`` when all are verified.

        Raises:
            FolderInUseError: another run holds one of the folders.
            ConfigError: the folders cannot be used (different file systems, a file).
            LedgerFileError: the save folder holds a file that is not a job ledger.
            StorageError: the disk refused; the report of what was done is lost with it.
            AuthError: the account cannot log in or cannot download.
        """
        from sentinel_fetch.downloads.engine import DownloadEngine, JobRecorder
        from sentinel_fetch.downloads.files import plan_files
        from sentinel_fetch.downloads.native import native_archives, with_native
        from sentinel_fetch.downloads.plan import Action, is_offline
        from sentinel_fetch.downloads.selection import Selection

        self._check_open()
        wanted = checked_products(products)
        if shard is not None:
            from sentinel_fetch.downloads.plan import shard_of

            wanted = shard_of(wanted, _shard(shard))
        chosen = Selection.build(bands=bands, files=files, preset=preset)
        if progress is not None and not callable(progress):
            raise InputError(f"progress must be callable, got {type(progress).__name__}")
        settings = self._job_settings(save_path, workers)
        stop_at = _quota_stop_bytes(quota_stop, settings.quota_bytes)
        if ledger and settings.ledger:
            from sentinel_fetch.ledger import check_ledger_location

            check_ledger_location(settings.ledger)
        job_location = _job_location(settings) if ledger else ""
        with lock_folders(settings, mode="shared" if ledger else "exclusive", job=job_location):
            job = self._open_job_ledger(settings) if ledger else None
            recorder: JobRecorder | None = job
            team: Team | None = None
            try:
                if job is not None:
                    team = self._team(job, settings, stop_at)
                if team is not None:
                    from sentinel_fetch.downloads.folderlock import sweep_part_locks

                    sweep_part_locks(settings.temp_path)
                    team.start()
                engine = DownloadEngine(
                    settings,
                    self._tokens,
                    transport=self._transport,
                    progress=progress,
                    recorder=recorder,
                    team=team,
                )
                online = [p for p in wanted if not is_offline(p)]
                plans = None
                # A login started ahead (by the caller, before its search) is this run's.
                ahead = self._login_ahead is not None
                logins_before = self._logins_base if ahead else self._tokens.logins
                if chosen is None and any(
                    item.action in (Action.FETCH, Action.RESUME) for item in engine.plan(online)
                ):
                    # The login overlaps the look-ups below and the batch's planning.
                    self.log_in_ahead(engine.stop)
                if chosen is None:
                    # Sentinel-1 in its first month: the native archive is about half the bytes.
                    natives = native_archives(
                        online, settings=settings, transport=self._transport, stop=engine.stop
                    )
                    wanted = with_native(wanted, natives)
                else:
                    plans = plan_files(
                        online,
                        chosen,
                        settings=settings,
                        transport=self._transport,
                        tokens=self._tokens,
                        stop=engine.stop,
                    )
                report = engine.run(wanted, plans)
                # The login ahead may have ended before the run began: it is this run's.
                return dataclasses.replace(report, logins=self._tokens.logins - logins_before)
            finally:
                if self._login_ahead is not None:
                    self._login_ahead.join()
                    self._login_ahead = None
                if team is not None:
                    team.close()
                if job is not None:
                    job.close()

    def _open_job_ledger(self, settings: Settings) -> Ledger:
        """The job's ledger: ``settings.ledger`` (PostgreSQL) or the save folder's SQLite."""
        from sentinel_fetch.ledger import open_ledger

        return open_ledger(settings.ledger or settings.save_path, create=True)

    def _team(self, ledger: Ledger, settings: Settings, stop_at: int | None) -> Team:
        """This run's part in the job: its account's budget, leases and quota stop."""
        import threading

        from sentinel_fetch.downloads.coordination import Team, TeamOptions, account_key

        account = account_key(self._tokens.username)
        max_connections = settings.max_connections or settings.limits.workers
        quota_bytes = settings.quota_bytes
        options = TeamOptions(
            account=account,
            max_connections=max_connections,
            lease_s=settings.limits.lease_s,
            quota_bytes=quota_bytes,
            quota_stop_bytes=stop_at,
            own_finish=settings.ledger is None,
        )
        return Team(
            ledger, options, stop=threading.Event(), save_path=str(settings.save_path.resolve())
        )

    def extracted(
        self, products: Iterable[Product], save_path: str | Path | None = None
    ) -> list[Product]:
        """The products an earlier extraction (``download --unzip``) left in the finish
        folder: they are done, zip or no zip."""
        from sentinel_fetch.downloads.unzip import is_extracted

        finish = self._job_settings(save_path).finish_path
        if not finish.is_dir():
            return []
        return [p for p in products if is_extracted(finish, p.name, p.id)]

    def extract(
        self,
        report: BatchReport,
        *,
        keep_zip: bool = False,
        save_path: str | Path | None = None,
    ) -> list[Extraction]:
        """Extract every verified zip of a run into ``<finish>/<name>.SAFE``.

        The zip is removed once extracted, unless ``keep_zip``; a product that could
        not be extracted stays verified as a zip, with the problem told.
        """
        from sentinel_fetch.downloads.unzip import extract_product
        from sentinel_fetch.errors import SentinelFetchError

        self._check_open()
        finish = self._job_settings(save_path).finish_path
        done: list[Extraction] = []
        for result in report.results:
            path = result.path
            if result.status not in ("downloaded", "skipped") or path is None:
                continue
            if path.suffix.lower() != ".zip":
                continue
            product = result.product
            try:
                folder = extract_product(path, finish, product.name, product.id)
            except SentinelFetchError as error:
                done.append(Extraction(product, problem=str(error)))
                continue
            if not keep_zip:
                path.unlink(missing_ok=True)
            done.append(Extraction(product, folder=folder))
        return done

    def write_report(
        self,
        report: BatchReport | None,
        rejected: Iterable[RejectedEntry] = (),
        *,
        save_path: str | Path | None = None,
    ) -> Path | None:
        """Write the failure report of a run (``sentinel-fetch-report.csv`` and ``.json``).

        Lists the unreadable catalogue entries and every product not left verified,
        with the reason and what to do. After a run that left nothing undone, an old
        report is removed. Returns the CSV's path, or ``None`` when there was nothing to
        report.
        """
        from sentinel_fetch.downloads.report import problems_of, write_report

        folder = self._job_settings(save_path).save_path
        return write_report(folder, problems_of(report, rejected))

    # -- the job folder -----------------------------------------------------------------

    def status(
        self, save_path: str | Path | None = None, *, ledger: str | Path | None = None
    ) -> LedgerSummary:
        """The job at a glance, from its ledger; only reads it.

        The ledger is ``ledger`` if given, else the configured one (``settings.ledger``:
        a folder or a ``postgresql://`` URL), else the save folder's. With a shared
        ledger the summary lists every worker and account of the job, and each
        account's quota meter against ``settings.quota_bytes``. Safe while downloads run.

        Raises:
            LedgerFileError: no ledger there, or a file that is not one.
            LedgerLocationError: a ledger URL that cannot be used or reached.
        """
        from sentinel_fetch.ledger import open_ledger

        self._check_open()
        settings = self._job_settings(save_path)
        location = self.ledger_location(save_path, ledger=ledger)
        with open_ledger(location, read_only=True) as opened:
            return opened.summary(quotas={"*": settings.quota_bytes})

    def ledger_location(
        self, save_path: str | Path | None = None, *, ledger: str | Path | None = None
    ) -> str | Path:
        """Where the job's ledger is: ``ledger``, else ``settings.ledger``, else the save
        folder (the argument ``save_path`` wins over a configured ledger)."""
        if ledger is not None:
            return ledger
        settings = self._job_settings(save_path)
        if save_path is None and settings.ledger is not None:
            return settings.ledger
        return settings.save_path

    def status_of(self, locations: Sequence[str | Path]) -> LedgerSummary:
        """One report of several ledgers (the shards of a job): only reads them.

        The rows are merged as :func:`~sentinel_fetch.ledger.merge.merge_ledgers`
        merges them, into a temporary file that is deleted afterwards.

        Raises:
            LedgerFileError: a location holds no ledger, or one given twice.
        """
        import tempfile

        from sentinel_fetch.ledger.merge import merge_ledgers

        self._check_open()
        with (
            tempfile.TemporaryDirectory(prefix="sentinel-fetch-merge-") as folder,
            merge_ledgers(locations, Path(folder) / LEDGER_FILE_NAME) as merged,
        ):
            return merged.summary(quotas={"*": self._settings.quota_bytes})

    def merge_ledgers(self, sources: Sequence[str | Path], output: str | Path) -> LedgerSummary:
        """Write the ledgers of several shards into one new ledger file ``output``.

        The sources are only read (safe while their downloads run). ``status`` reads
        the result like any ledger (``sentinel-fetch status merged.sqlite``'s folder, or
        pass the file itself to :meth:`status_of`).

        Raises:
            LedgerFileError: a source holds no ledger, one is given twice, or ``output``
                exists.
            StorageError: ``output`` cannot be written.
        """
        from sentinel_fetch.ledger.merge import merge_ledgers

        self._check_open()
        with merge_ledgers(sources, Path(output)) as merged:
            return merged.summary(quotas={"*": self._settings.quota_bytes})

    def activity(self, save_path: str | Path | None = None) -> JobActivity:
        """Whether a run holds the job's folders, and the bytes of its files in flight.

        Only reads (the ledger and the temp folder): safe while a download runs.

        Raises:
            LedgerFileError: no ledger there, or a file that is not one.
        """
        from sentinel_fetch.downloads.paths import PART_SUFFIX, safe_file_name
        from sentinel_fetch.errors import FolderInUseError, UnsafeNameError

        self._check_open()
        settings = self._job_settings(save_path)
        with JobLedger.open(settings.save_path, read_only=True) as ledger:
            in_flight = ledger.stored(("downloading", "verifying"))
        try:
            FolderLock.check_free(run_folders(settings))
            running = None
        except FolderInUseError as error:
            running = str(error)

        def part_size(file_name: str) -> int:
            try:
                part = settings.temp_path / (safe_file_name(file_name) + PART_SUFFIX)
                return part.stat().st_size
            except (OSError, UnsafeNameError):
                return 0

        return JobActivity(running, [(p.name, part_size(p.file_name)) for p in in_flight])

    def verify(
        self, save_path: str | Path | None = None, *, finish_dir: str | Path | None = None
    ) -> AuditReport:
        """Re-check every file of the finish folder against the catalogue's checksums.

        Bad files are moved to ``<save_path>/Corrupt`` and marked failed in the job
        ledger, so the next download fetches them again. The ledger says which file is
        which product's; files it does not know are looked up in the catalogue by name.

        Raises:
            InputError: there is no finish folder.
            FolderInUseError: a download runs in the folder (a file it writes is never moved).
        """
        from sentinel_fetch.downloads.audit import (
            CORRUPT_FOLDER,
            AuditReport,
            audit_finished,
            audit_product_files,
        )
        from sentinel_fetch.downloads.files import safe_folder

        self._check_open()
        settings = self._job_settings(save_path)
        if finish_dir is not None:
            settings = settings.with_changes(finish_dir=finish_dir)
        folder, finish = settings.save_path, settings.finish_path
        if not finish.is_dir():
            raise InputError(f"there is no finish folder at {finish}: nothing to verify")
        held = [path for path in (folder, finish) if path.is_dir()]
        with FolderLock.acquire(held):
            has_ledger = (folder / LEDGER_FILE_NAME).exists()
            known: list[StoredProduct] = []
            file_rows: list[dict[str, Any]] = []
            if has_ledger:
                with JobLedger.open(folder, read_only=True) as ledger:
                    known = ledger.stored()
                    file_rows = ledger.files()
            report = audit_finished(finish, folder / CORRUPT_FOLDER, known, self._lookup)
            if file_rows:
                # Bands and other single files, each against what the ledger recorded.
                folders = {stored.id: safe_folder(stored.file_name) for stored in known}
                single = audit_product_files(finish, folder / CORRUPT_FOLDER, folders, file_rows)
                report = AuditReport(report.verdicts + single.verdicts)
            by_id = {stored.id: stored for stored in known}
            bad = [
                by_id[v.product_id]
                for v in report.verdicts
                if v.status == "bad" and v.product_id in by_id
            ]
            if bad:
                # The engine's own writer: one way for a state to reach the ledger.
                reason = f"corrupt in the finish folder; moved to {CORRUPT_FOLDER}/"
                with JobLedger.open(folder, create=False) as ledger:
                    for stored in bad:
                        ledger.record(stored, ProductState.FAILED.value, reason=reason)
        return report

    def write_item_collection(
        self, products: Iterable[Product], path: str | Path
    ) -> tuple[Path, int]:
        """Save products as a STAC ItemCollection (their CDSE STAC items, in batches).

        Returns the path and how many items came from the STAC catalogue itself (the
        others are built from their OData entries); see
        :func:`~sentinel_fetch.catalogue.stac_export.write_item_collection`.
        """
        from sentinel_fetch.catalogue.stac_export import write_item_collection

        self._check_open()
        return write_item_collection(
            products, path, settings=self.settings, transport=self._transport
        )

    def _lookup(self, names: list[str]) -> list[Product]:
        """Catalogue entries for file names the ledger does not know."""
        from sentinel_fetch.catalogue.query import build_query

        usable = []
        for name in names:
            try:
                build_query(names=[name])
            except QueryError:  # a file name no product name could be
                continue
            usable.append(name)
        return list(self.search(build_query(names=usable))) if usable else []

    # -- the account --------------------------------------------------------------------

    def login(self) -> Credentials:
        """Log in now to check the account; returns it (``source`` says where it came from).

        A successful check opens one CDSE session, which later downloads of this Client
        reuse.

        Raises:
            CredentialsMissingError: no source has an account.
            InvalidCredentialsError: CDSE rejected it.
        """
        self._check_open()
        self._tokens.access_token()
        return self._tokens.credentials

    def save_login(self) -> Credentials:
        """Check the account (:meth:`login`), then store it in the system keyring.

        Later runs find it there and need no password in the environment.

        Raises:
            ConfigError: no keyring package, or no usable keyring backend.
        """
        from sentinel_fetch.credentials import store_in_keyring

        credentials = self.login()
        store_in_keyring(credentials.username, credentials.password)
        return credentials
