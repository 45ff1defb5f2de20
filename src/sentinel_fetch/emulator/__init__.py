"""A real HTTP server that behaves like CDSE (identity, catalogue, download, STAC).

Every client test, the demo and every benchmark talk to this emulator over loopback
sockets: it follows our specification of CDSE (``shared/cdse-api.md``), never the client,
and reproduces on demand the failures CDSE users report (token expiry, session caps,
429s, truncated, corrupt, oversize and compressed archives, stalls, trickles, dropped
TLS handshakes, redirects; see :mod:`.faults`).

>>> from sentinel_fetch.emulator import Emulator, EmulatorConfig
>>> with Emulator(EmulatorConfig(tls=False)) as emulator:  # doctest: +SKIP
...     emulator.env()["SENTINEL_FETCH_CATALOGUE_URL"]
'http://127.0.0.1:…/odata/v1'

Nothing here imports the client (the rest of ``sentinel_fetch``).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from types import TracebackType
from typing import Any

from .admin import ADMIN_PREFIX, AdminApp
from .archive import ArchiveStore
from .config import DEMO_PASSWORD, DEMO_USERNAME, EmulatorConfig
from .download import DownloadHost
from .faults import (
    BodyFault,
    ChunkedFault,
    CorruptFault,
    CutFault,
    DropHandshakeFault,
    EndSessionsFault,
    EntityFault,
    ExpireTokenFault,
    Fault,
    FaultPlan,
    FiredFault,
    GzipFault,
    HoldFault,
    IgnoreRangeFault,
    RedirectFault,
    RewriteFault,
    SlowHeadFault,
    StallFault,
    StatusFault,
    TrickleFault,
    fault_from_dict,
)
from .identity import REALM_PATH, IdentityProvider, totp_code
from .model import ArchiveSource, Handler, ProductStore, Request, Response
from .server import EmulatorServer, PureApp
from .stats import RequestEvent, Stats
from .thumbnails import files_handler, redirect_handler
from .tls import load_or_create, server_context

__all__ = [
    "DEMO_PASSWORD",
    "DEMO_USERNAME",
    "BodyFault",
    "CatalogueFactory",
    "ChunkedFault",
    "CorruptFault",
    "CutFault",
    "DropHandshakeFault",
    "Emulator",
    "EmulatorConfig",
    "EndSessionsFault",
    "EntityFault",
    "ExpireTokenFault",
    "Fault",
    "FaultPlan",
    "FiredFault",
    "GzipFault",
    "HoldFault",
    "IgnoreRangeFault",
    "RedirectFault",
    "RequestEvent",
    "RewriteFault",
    "SlowHeadFault",
    "StallFault",
    "Stats",
    "StatusFault",
    "TrickleFault",
    "fault_from_dict",
    "totp_code",
]

#: Builds the catalogue host's handler: ``(store, archives, download_base_url) -> Handler``.
CatalogueFactory = Callable[[ProductStore, ArchiveSource, str], Handler]


class Emulator:
    """The CDSE hosts on loopback ports, with faults, stats and an admin endpoint.

    Seven origins: identity, catalogue, download and its old name zipper, STAC, and the
    two thumbnail hosts of STAC items (the one they name, and the one it redirects to).

    The constructor does no I/O; :meth:`start` opens the catalogue, binds the ports and
    starts serving (archives are built lazily, when first listed or downloaded).

    Args:
        config: settings (default: HTTPS, free ports, the per-user cache folder).
        store: products to serve instead of the synthetic catalogue (tests of the
            download side bring a small in-memory store).
        catalogue: handler factory to use instead of the real catalogue's.

    Attributes:
        config: the live configuration; the hosts read it per request.
        faults: the fault plan (add rules at any time).
        stats: counters the tests assert on.
        archives: product bytes (``info()`` gives length and checksums).
        identity_url: realm base, ``…/auth/realms/CDSE``.
        catalogue_url: ``…/odata/v1`` on the catalogue host.
        download_url: ``…/odata/v1`` on the download host.
        zipper_url: ``…/odata/v1`` on the download host's second origin (the host of the
            per-file URLs in STAC items, spec §1, §9.6): same app, same stream slots.
        stac_url: ``…/v1`` of the STAC API (spec §9).
        quicklook_url: ``…/odata/v1`` of the thumbnail host STAC items point at; it
            redirects to a second origin that serves the images (spec §5.9).
        ca_bundle: PEM file of the CA to trust, or ``None`` over plain HTTP.
    """

    def __init__(
        self,
        config: EmulatorConfig | None = None,
        *,
        store: ProductStore | None = None,
        catalogue: CatalogueFactory | None = None,
    ) -> None:
        self.config = config if config is not None else EmulatorConfig()
        self.faults = FaultPlan()
        self.stats = Stats(self.config.max_request_events)
        self.archives = ArchiveStore(self.config)
        self.identity_url = ""
        self.catalogue_url = ""
        self.download_url = ""
        self.zipper_url = ""
        self.stac_url = ""
        self.quicklook_url = ""
        self.ca_bundle: Path | None = None
        self._given_store = store
        self._catalogue_factory = catalogue
        self._store: ProductStore | None = None
        self._identity: IdentityProvider | None = None
        self._server: EmulatorServer | None = None
        self._download: DownloadHost | None = None
        self._catalogue_origin = ""

    # Lifecycle ---------------------------------------------------------------------

    def start(self) -> Emulator:
        """Open the catalogue, bind the ports and start serving; returns ``self``."""
        if self._server is not None:
            return self
        config = self.config
        config.data_dir.mkdir(parents=True, exist_ok=True)
        tls_context = None
        if config.tls:
            files = load_or_create(config.data_dir / "tls")
            tls_context = server_context(files)
            self.ca_bundle = files.ca_bundle
        store, catalogue_handler = self._catalogue()
        identity = IdentityProvider(config, self.stats)
        self.stats.bind_sessions(identity.active_sessions)
        server = EmulatorServer(
            config,
            faults=self.faults,
            stats=self.stats,
            hooks=identity,
            lookup=store.get,
            tls_context=tls_context,
        )
        try:
            identity_origin = server.bind("identity", config.identity_port)
            catalogue_origin = server.bind("catalogue", config.catalogue_port)
            download_origin = server.bind("download", config.download_port)
            zipper_origin = server.bind("zipper", config.zipper_port)
            stac_origin = server.bind("stac", config.stac_port)
            quicklook_origin = server.bind("quicklook", config.quicklook_port)
            files_origin = server.bind("quicklook-files", config.quicklook_files_port)
            identity.set_base_url(identity_origin)
            self.identity_url = identity_origin + REALM_PATH
            self.catalogue_url = catalogue_origin + "/odata/v1"
            self.download_url = download_origin + "/odata/v1"
            self.zipper_url = zipper_origin + "/odata/v1"
            self.stac_url = stac_origin + "/v1"
            self.quicklook_url = quicklook_origin + "/odata/v1"
            self._catalogue_origin = catalogue_origin
            download = DownloadHost(
                config,
                store=store,
                archives=self.archives,
                identity=identity,
                faults=self.faults,
                stats=self.stats,
            )
            server.mount("identity", PureApp(identity.handle))
            server.mount("catalogue", PureApp(catalogue_handler(download_origin)))
            server.mount("download", download)
            server.mount("zipper", download)
            server.mount("stac", PureApp(self._stac(store, identity_origin)))
            server.mount("quicklook", PureApp(redirect_handler(files_origin)))
            server.mount(
                "quicklook-files",
                PureApp(files_handler(config, store, self.archives, self.stats)),
            )
            server.mount_admin(
                AdminApp(config=config, faults=self.faults, stats=self.stats, identity=identity)
            )
            server.start()
        except BaseException:
            server.stop()
            self._close_store(store)
            raise
        self._store = store
        self._identity = identity
        self._download = download
        self._server = server
        return self

    def stop(self) -> None:
        """Stop serving: close the listeners and live connections, then the catalogue."""
        server, self._server = self._server, None
        if server is not None:
            server.stop()
        store, self._store = self._store, None
        if store is not None:
            self._close_store(store)

    def __enter__(self) -> Emulator:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    @property
    def running(self) -> bool:
        """Whether the emulator is serving."""
        return self._server is not None

    # Access --------------------------------------------------------------------------

    @property
    def store(self) -> ProductStore:
        """The product store (available once started)."""
        if self._store is None:
            raise RuntimeError("the emulator is not running: call start() first")
        return self._store

    @property
    def identity(self) -> IdentityProvider:
        """The identity host (token and session table; available once started)."""
        if self._identity is None:
            raise RuntimeError("the emulator is not running: call start() first")
        return self._identity

    @property
    def token_url(self) -> str:
        """The token endpoint (spec §2.1)."""
        return self.identity_url + "/protocol/openid-connect/token"

    @property
    def admin_url(self) -> str:
        """Base of the admin endpoint, ``…/_emulator`` on the catalogue host."""
        return self._catalogue_origin + ADMIN_PREFIX.rstrip("/")

    def env(self) -> dict[str, str]:
        """Environment variables that point the client (and CDSE tools) at this emulator."""
        if self._server is None:
            raise RuntimeError("the emulator is not running: call start() first")
        password = self.config.users.get(DEMO_USERNAME, DEMO_PASSWORD)
        variables = {
            "SENTINEL_FETCH_IDENTITY_URL": self.identity_url,
            "SENTINEL_FETCH_CATALOGUE_URL": self.catalogue_url,
            "SENTINEL_FETCH_DOWNLOAD_URL": self.download_url,
            "SENTINEL_FETCH_STAC_URL": self.stac_url,
            "CDSE_USERNAME": DEMO_USERNAME,
            "CDSE_PASSWORD": password,
        }
        if self.ca_bundle is not None:
            variables["SENTINEL_FETCH_CA_BUNDLE"] = str(self.ca_bundle)
        return variables

    def expire_access_tokens(self, user: str | None = None) -> int:
        """Expire every access token issued so far (of one user); returns how many."""
        return self.identity.expire_access_tokens(user)

    def end_sessions(self, user: str | None = None) -> int:
        """End every session (of one user): refresh grants fail until a new login."""
        return self.identity.end_sessions(user)

    def match_ids(self, filter_text: str, orderby: str | None = None) -> list[str]:
        """Ids of the products an OData ``$filter`` selects (delegates to the catalogue)."""
        match: Any = getattr(self.store, "match_ids", None)
        if match is None:
            raise TypeError("this emulator's store cannot evaluate OData filters")
        result: list[str] = match(filter_text, orderby, twins=self.config.reprocessed_twins)
        return result

    # Wiring --------------------------------------------------------------------------

    def _catalogue(self) -> tuple[ProductStore, Callable[[str], Handler]]:
        """The store, and how to build the catalogue handler once the download URL is known.

        Without overrides this is the real catalogue (``catalogue/``), imported here so that
        importing the emulator stays cheap until it starts.
        """
        store = self._given_store
        factory = self._catalogue_factory
        if store is not None and factory is not None:
            return store, lambda origin: factory(store, self.archives, origin)
        from .catalogue import CatalogueStore, make_catalogue_handler

        if store is None:
            store = CatalogueStore.open(self.config.data_dir, self.config.seed)
        if factory is not None:
            return store, lambda origin: factory(store, self.archives, origin)
        if not isinstance(store, CatalogueStore):
            raise TypeError("the real catalogue handler needs a CatalogueStore: pass catalogue=")
        catalogue_store = store
        return store, lambda origin: make_catalogue_handler(
            catalogue_store, self.archives, origin, self.config
        )

    def _stac(self, store: ProductStore, identity_origin: str) -> Handler:
        """The STAC API over the real catalogue; without it, every request is a 503.

        Imported here, like the catalogue, so that importing the emulator stays cheap.
        """
        from .catalogue import CatalogueStore

        if not isinstance(store, CatalogueStore):

            def unavailable(request: Request) -> Response:
                return Response.json(
                    503,
                    {
                        "code": "ServiceUnavailable",
                        "description": "this emulator runs without the synthetic catalogue",
                    },
                )

            return unavailable
        from .stac import ItemLinks, StacApp

        links = ItemLinks(
            stac="",
            zipper=self.zipper_url,
            download=self.download_url,
            quicklook=self.quicklook_url,
            realm=identity_origin + REALM_PATH,
        )
        return StacApp(self.config, store, self.archives, links)

    def _close_store(self, store: ProductStore) -> None:
        if store is self._given_store:
            return
        close = getattr(store, "close", None)
        if close is not None:
            close()
