"""Settings: every base URL, limit and path the library uses, in frozen dataclasses.

One source of truth per setting. Pointing the client at the emulator (or at a future
CDSE host) is a settings change, never a code change: every URL the client requests is
built from :class:`Endpoints`.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from urllib.parse import quote, urlsplit

from sentinel_fetch.errors import ConfigError, InvalidProductIdError

__all__ = [
    "CDSE_CATALOGUE_URL",
    "CDSE_DOWNLOAD_URL",
    "CDSE_IDENTITY_URL",
    "ENV_CATALOGUE_URL",
    "ENV_CA_BUNDLE",
    "ENV_DOWNLOAD_URL",
    "ENV_IDENTITY_URL",
    "Endpoints",
    "Limits",
    "Settings",
    "origin_of",
]

CDSE_IDENTITY_URL = "https://identity.dataspace.copernicus.eu/auth/realms/CDSE"
CDSE_CATALOGUE_URL = "https://catalogue.dataspace.copernicus.eu/odata/v1"
CDSE_DOWNLOAD_URL = "https://download.dataspace.copernicus.eu/odata/v1"
# Older scripts and the 2023 redirect target; the same service under its former name.
CDSE_ZIPPER_URL = "https://zipper.dataspace.copernicus.eu/odata/v1"

ENV_IDENTITY_URL = "SENTINEL_FETCH_IDENTITY_URL"
ENV_CATALOGUE_URL = "SENTINEL_FETCH_CATALOGUE_URL"
ENV_DOWNLOAD_URL = "SENTINEL_FETCH_DOWNLOAD_URL"
ENV_CA_BUNDLE = "SENTINEL_FETCH_CA_BUNDLE"

Origin = tuple[str, str, int]

# CDSE product ids are always UUIDs (spec §3.2). Anything else put into a URL could
# change the path that receives the token ("../", "?", "#", ")").
_PRODUCT_ID = re.compile(r"[0-9a-fA-F]{8}-(?:[0-9a-fA-F]{4}-){3}[0-9a-fA-F]{12}")


def origin_of(url: str) -> Origin:
    """Return ``(scheme, host, port)`` of a URL, with the default port filled in.

    Example:
        >>> origin_of("https://Download.dataspace.copernicus.eu/odata/v1")
        ('https', 'download.dataspace.copernicus.eu', 443)
    """
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    port = parts.port or (443 if scheme == "https" else 80)
    return scheme, (parts.hostname or "").lower(), port


def _check_base_url(name: str, url: str) -> str:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigError(f"{name} must be an http(s) URL, got {url!r}")
    if parts.username or parts.password or parts.query or parts.fragment:
        raise ConfigError(f"{name} must be a plain base URL without credentials or query")
    return url.rstrip("/")


@dataclass(frozen=True)
class Endpoints:
    """Base URLs of the three CDSE services.

    Attributes:
        identity: Keycloak realm base; the token endpoint is derived from it.
        catalogue: OData catalogue base (``.../odata/v1``).
        download: OData download base (``.../odata/v1``); the only host product bytes
            are requested from.
    """

    identity: str = CDSE_IDENTITY_URL
    catalogue: str = CDSE_CATALOGUE_URL
    download: str = CDSE_DOWNLOAD_URL

    def __post_init__(self) -> None:
        object.__setattr__(self, "identity", _check_base_url("identity URL", self.identity))
        object.__setattr__(self, "catalogue", _check_base_url("catalogue URL", self.catalogue))
        object.__setattr__(self, "download", _check_base_url("download URL", self.download))

    @property
    def token_url(self) -> str:
        """The OpenID Connect token endpoint (password and refresh grants)."""
        return f"{self.identity}/protocol/openid-connect/token"

    def product_url(self, product_id: str) -> str:
        """The URL of a product's archive on the download host (spec §5.1).

        Every product download URL is built here. The id must be a UUID, and is
        percent-encoded on top of that, so no id can reach another path.

        Raises:
            InvalidProductIdError: the id is not a UUID.

        Example:
            >>> Endpoints().product_url("5ff3c4c8-a778-40c2-bf2f-0b6b98e179c8")
            'https://download.dataspace.copernicus.eu/odata/v1/Products(5ff3c4c8-a778-40c2-bf2f-0b6b98e179c8)/$value'
        """
        if not _PRODUCT_ID.fullmatch(product_id):
            raise InvalidProductIdError(
                f"product id {product_id[:80]!r} is not a UUID: CDSE ids always are; "
                "no download URL is built from it"
            )
        return f"{self.download}/Products({quote(product_id, safe='')})/$value"

    @property
    def is_real_cdse(self) -> bool:
        """Whether these are the public CDSE hosts (not an emulator or a mirror)."""
        return self.catalogue == CDSE_CATALOGUE_URL

    def bearer_origins(self) -> frozenset[Origin]:
        """Origins that may receive the ``Authorization: Bearer`` header.

        Only the catalogue and the download host. When the endpoints are the real CDSE
        ones, the download host's former name (``zipper``) is included because the
        catalogue's ``$value`` redirects have pointed there.
        """
        origins = {origin_of(self.catalogue), origin_of(self.download)}
        if self.is_real_cdse:
            origins.add(origin_of(CDSE_ZIPPER_URL))
        return frozenset(origins)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Endpoints:
        """Endpoints from ``SENTINEL_FETCH_*_URL`` variables, defaulting to real CDSE."""
        env = os.environ if environ is None else environ
        return cls(
            identity=env.get(ENV_IDENTITY_URL) or CDSE_IDENTITY_URL,
            catalogue=env.get(ENV_CATALOGUE_URL) or CDSE_CATALOGUE_URL,
            download=env.get(ENV_DOWNLOAD_URL) or CDSE_DOWNLOAD_URL,
        )


@dataclass(frozen=True)
class Limits:
    """Numbers that bound what the client does. Units are in the names.

    Defaults follow CDSE's documented quotas for a free account: 4 concurrent
    connections, 10-minute access tokens refreshable for 60 minutes.
    """

    #: Products downloaded at once; also the cap on open requests to the download host.
    workers: int = 4
    #: Bytes per read/write while streaming (1 MiB measured fastest with requests).
    chunk_size_bytes: int = 1 << 20
    connect_timeout_s: float = 30.0
    #: Longest silence tolerated from a server mid-stream before the attempt is abandoned.
    read_timeout_s: float = 120.0
    #: A transfer that receives fewer than this many bytes per second over a whole
    #: ``min_rate_window_s`` is abandoned and resumed (a body trickling a byte at a time
    #: never trips ``read_timeout_s``, which covers one read); 0 turns the check off.
    min_rate_bytes_per_s: float = 1024.0
    #: The window over which ``min_rate_bytes_per_s`` is measured.
    min_rate_window_s: float = 60.0
    #: Attempts in a row that make no progress before a product (or a catalogue page) is
    #: reported as failed.
    max_attempts: int = 8
    #: Attempts per product in one run, whatever happened in each (bytes received, a
    #: resume, a refused token): the hard stop for a product that keeps failing.
    max_total_attempts: int = 30
    #: Bytes fetched per product in one run, as a multiple of its catalogue size; every
    #: byte counts against the account's 12 TB per 30 days, discarded ones too.
    max_fetched_size_multiple: float = 3.0
    #: The size assumed for a product whose catalogue size is 0 (some older holdings):
    #: twice the largest CDSE product (an S1 IW SLC of about 8 GB). No body of such a
    #: product may be longer, and its byte budget is the multiple of this.
    unknown_size_max_bytes: int = 16 << 30
    backoff_base_s: float = 2.0
    backoff_max_s: float = 120.0
    #: How long the download concurrency stays lowered after a 429 DAT-ZIP-100.
    throttle_cooldown_s: float = 60.0
    #: Catalogue page size; 1000 is the catalogue's maximum ``$top``.
    page_size: int = 1000
    #: Refresh the access token when less than this remains (capped at 20 % of its life).
    token_refresh_margin_s: float = 60.0
    #: Write part files past the page cache (``O_DIRECT``) where the filesystem allows:
    #: less CPU per GB, a cheap final fsync, and the user's page cache left alone.
    direct_io: bool = True

    def __post_init__(self) -> None:
        if self.workers < 1:
            raise ConfigError(f"workers must be at least 1, got {self.workers}")
        if not 1 <= self.page_size <= 1000:
            raise ConfigError(f"page size must be between 1 and 1000, got {self.page_size}")
        if self.max_attempts < 1:
            raise ConfigError(f"max attempts must be at least 1, got {self.max_attempts}")
        if self.max_total_attempts < 1:
            raise ConfigError(
                f"max_total_attempts must be at least 1, got {self.max_total_attempts}"
            )
        if not self.max_fetched_size_multiple >= 1.0:
            raise ConfigError(
                "max_fetched_size_multiple must be at least 1 (one whole copy), "
                f"got {self.max_fetched_size_multiple}"
            )
        if self.unknown_size_max_bytes < 1:
            raise ConfigError(
                f"unknown_size_max_bytes must be positive, got {self.unknown_size_max_bytes}"
            )
        if not isinstance(self.direct_io, bool):
            raise ConfigError(f"direct_io must be true or false, got {self.direct_io!r}")
        if self.chunk_size_bytes < 4096:
            raise ConfigError("chunk size must be at least 4096 bytes")
        for name in (
            "connect_timeout_s",
            "read_timeout_s",
            "backoff_base_s",
            "backoff_max_s",
            "min_rate_window_s",
        ):
            if not getattr(self, name) > 0:
                raise ConfigError(f"{name} must be positive")
        if not self.min_rate_bytes_per_s >= 0:
            raise ConfigError(
                f"min_rate_bytes_per_s must be 0 (off) or more, got {self.min_rate_bytes_per_s}"
            )


@dataclass(frozen=True)
class Settings:
    """Everything the library needs besides credentials.

    Attributes:
        endpoints: where the services are.
        limits: concurrency, timeouts, retries.
        proxy: ``http://``, ``https://``, ``socks5://`` or ``socks5h://`` proxy URL for
            every CDSE request, or ``None`` to use the standard ``HTTPS_PROXY`` /
            ``ALL_PROXY`` / ``NO_PROXY`` variables.
        ca_bundle: PEM file of extra trusted certificate authorities, or ``None`` for the
            system store. Certificates are always verified.
        save_path: root folder of a download job.
        temp_dir: in-progress ``.part`` files; defaults to ``<save_path>/Temp``. Must be
            on the same file system as ``finish_dir`` so the final move is atomic.
        finish_dir: verified products only; defaults to ``<save_path>/Finish``.
    """

    endpoints: Endpoints = field(default_factory=Endpoints)
    limits: Limits = field(default_factory=Limits)
    proxy: str | None = None
    ca_bundle: str | None = None
    save_path: Path = field(default_factory=lambda: Path("sentinel-data"))
    temp_dir: Path | None = None
    finish_dir: Path | None = None

    @property
    def temp_path(self) -> Path:
        """Folder of in-progress files."""
        return self.temp_dir if self.temp_dir is not None else self.save_path / "Temp"

    @property
    def finish_path(self) -> Path:
        """Folder of verified products."""
        return self.finish_dir if self.finish_dir is not None else self.save_path / "Finish"

    def with_changes(self, **changes: object) -> Settings:
        """A copy with some fields replaced (the dataclass is frozen)."""
        return replace(self, **changes)  # type: ignore[arg-type]

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **overrides: object) -> Settings:
        """Settings from the environment: endpoints and CA bundle; the rest defaults."""
        env = os.environ if environ is None else environ
        base = cls(endpoints=Endpoints.from_env(env), ca_bundle=env.get(ENV_CA_BUNDLE) or None)
        return base.with_changes(**overrides) if overrides else base
