"""Settings: every base URL, limit and path the library uses, in frozen dataclasses.

One source of truth per setting. Pointing the client at the emulator (or at a future
CDSE host) is a settings change, never a code change: every URL the client requests is
built from :class:`Endpoints`.

Every value is checked once, here, when the dataclasses are built, whoever builds them
(the config file, an environment variable, a command-line option, a Python call): its
type (``True`` is not a number, ``"4"`` is not a number), its range, and URL schemes,
hosts and ports. A bad value raises one :class:`~sentinel_fetch.errors.ConfigError`
naming the setting; :mod:`sentinel_fetch.config` adds where the value came from.
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from urllib.parse import SplitResult, quote, urlsplit

from sentinel_fetch.errors import ConfigError, InvalidProductIdError
from sentinel_fetch.redact import redact_url

__all__ = [
    "CDSE_CATALOGUE_URL",
    "CDSE_DOWNLOAD_URL",
    "CDSE_IDENTITY_URL",
    "CDSE_STAC_URL",
    "DEFAULT_QUOTA_BYTES",
    "ENVIRONMENT",
    "ENV_CATALOGUE_URL",
    "ENV_CA_BUNDLE",
    "ENV_DOWNLOAD_URL",
    "ENV_IDENTITY_URL",
    "ENV_STAC_URL",
    "LEDGER_SCHEMES",
    "MAX_WORKERS",
    "PROXY_SCHEMES",
    "Endpoints",
    "Limits",
    "Settings",
    "origin_of",
    "parse_limit",
    "parse_size",
    "settings_from_values",
    "url_problem",
]

CDSE_IDENTITY_URL = "https://identity.dataspace.copernicus.eu/auth/realms/CDSE"
CDSE_CATALOGUE_URL = "https://catalogue.dataspace.copernicus.eu/odata/v1"
CDSE_DOWNLOAD_URL = "https://download.dataspace.copernicus.eu/odata/v1"
# Older scripts and the 2023 redirect target; the same service under its former name.
CDSE_ZIPPER_URL = "https://zipper.dataspace.copernicus.eu/odata/v1"
#: The STAC catalogue (cdse-api.md §9): per-file sizes, checksums and paths of a product.
CDSE_STAC_URL = "https://stac.dataspace.copernicus.eu/v1"

ENV_IDENTITY_URL = "SENTINEL_FETCH_IDENTITY_URL"
ENV_CATALOGUE_URL = "SENTINEL_FETCH_CATALOGUE_URL"
ENV_DOWNLOAD_URL = "SENTINEL_FETCH_DOWNLOAD_URL"
ENV_CA_BUNDLE = "SENTINEL_FETCH_CA_BUNDLE"
ENV_STAC_URL = "SENTINEL_FETCH_STAC_URL"

#: Every environment variable sentinel-fetch reads for a setting, by the setting's name
#: as config files spell it (``section.key``). The command line (through
#: :mod:`sentinel_fetch.config`) and the Python API (:meth:`Settings.from_env`) read this
#: one table, so a variable means the same wherever the library runs.
ENVIRONMENT: dict[str, str] = {
    "endpoints.identity": ENV_IDENTITY_URL,
    "endpoints.catalogue": ENV_CATALOGUE_URL,
    "endpoints.download": ENV_DOWNLOAD_URL,
    "endpoints.stac": ENV_STAC_URL,
    "ca_bundle": ENV_CA_BUNDLE,
    "save_path": "SENTINEL_FETCH_SAVE_PATH",
    "temp_dir": "SENTINEL_FETCH_TEMP_DIR",
    "finish_dir": "SENTINEL_FETCH_FINISH_DIR",
    "limits.workers": "SENTINEL_FETCH_WORKERS",
    "proxy": "SENTINEL_FETCH_PROXY",
    "ledger": "SENTINEL_FETCH_LEDGER",
    # Read by the credentials lookup, not by Settings; listed so the table is complete.
    "account.username": "CDSE_USERNAME",
}

#: CDSE's data quota per account: 12 TB (decimal) per rolling 30 days (cdse-api.md).
DEFAULT_QUOTA_BYTES = 12 * 10**12
#: URL schemes of a ledger in a database (``--ledger``); anything else is a folder.
LEDGER_SCHEMES = ("postgresql", "postgres")
_SIZE = re.compile(r"\s*(\d+(?:\.\d+)?)\s*([kmgtp]?)(i?)b?\s*", re.IGNORECASE)

#: Most products downloaded at once. A free account allows 4 connections; Copernicus
#: Services accounts have more, but no account is helped by more than 32.
MAX_WORKERS = 32
#: Proxy URL schemes ``requests`` (with PySocks for SOCKS) can use.
PROXY_SCHEMES = ("http", "https", "socks5", "socks5h", "socks4", "socks4a")

Origin = tuple[str, str, int]

# CDSE product ids are always UUIDs (spec §3.2). Anything else put into a URL could
# change the path that receives the token ("../", "?", "#", ")").
_PRODUCT_ID = re.compile(r"[0-9a-fA-F]{8}-(?:[0-9a-fA-F]{4}-){3}[0-9a-fA-F]{12}")


def origin_of(url: str) -> Origin:
    """Return ``(scheme, host, port)`` of a URL, with the default port filled in.

    A URL whose host or port cannot be read has port ``-1``: it matches no configured
    origin, so no token is ever sent to it.

    Example:
        >>> origin_of("https://Download.dataspace.copernicus.eu/odata/v1")
        ('https', 'download.dataspace.copernicus.eu', 443)
        >>> origin_of("https://catalogue.dataspace.copernicus.eu:99999/odata/v1")[2]
        -1
    """
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return "", "", -1
    scheme = parts.scheme.lower()
    return scheme, (parts.hostname or "").lower(), port or (443 if scheme == "https" else 80)


def url_problem(url: str) -> str | None:
    """Why a URL's host or port cannot be used, or ``None`` when both can.

    ``urlsplit`` reads ``https://host:99999`` and only fails when the port is asked
    for, and fails outright on a ``[`` without its ``]``; callers turn the answer into
    their own one-line error.

    Example:
        >>> url_problem("https://127.0.0.1:99999/odata/v1")
        'has an invalid port 99999: give a port from 1 to 65535'
        >>> url_problem("https://[::1/odata/v1")
        "has a malformed IPv6 host (a '[' without its ']', or not an IPv6 address)"
        >>> url_problem("https://catalogue.dataspace.copernicus.eu/odata/v1") is None
        True
    """
    try:
        parts = urlsplit(url)
    except ValueError:
        return "has a malformed IPv6 host (a '[' without its ']', or not an IPv6 address)"
    try:
        port = parts.port
    except ValueError:
        port = -1
    if port is not None and not 1 <= port <= 65535:
        written = parts.netloc.rpartition("@")[2].rpartition(":")[2]
        return f"has an invalid port {written}: give a port from 1 to 65535"
    return None


def _invalid(setting: str, problem: str) -> ConfigError:
    return ConfigError(f"{setting} {problem}", setting=setting)


def _shown(value: object) -> str:
    """A value as the user wrote it (TOML spelling for booleans), for messages."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    return repr(value) if isinstance(value, str) else str(value)


def _check_base_url(setting: str, url: object) -> str:
    if not isinstance(url, str):
        raise _invalid(setting, f"must be an http(s) URL (text), got {_shown(url)}")
    problem = url_problem(url)
    if problem is not None:
        raise _invalid(setting, f"URL {problem}, got {redact_url(url)!r}")
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise _invalid(setting, f"must be an http(s) URL, got {redact_url(url)!r}")
    if parts.username or parts.password or parts.query or parts.fragment:
        raise _invalid(setting, "must be a plain base URL without credentials or query")
    return url.rstrip("/")


def _check_proxy(setting: str, proxy: object) -> str | None:
    if proxy is None:
        return None
    expected = "must look like http://host:port or socks5://host:port"
    if not isinstance(proxy, str):
        raise _invalid(setting, f"{expected}, got {_shown(proxy)}")
    if not proxy.strip():
        raise _invalid(setting, "is empty: give a proxy URL, or leave it unset")
    problem = url_problem(proxy)
    if problem is not None:
        raise _invalid(setting, f"{problem}, got {redact_url(proxy)!r}")
    parts: SplitResult = urlsplit(proxy)
    if parts.scheme.lower() not in PROXY_SCHEMES or not parts.hostname:
        raise _invalid(setting, f"{expected}, got {redact_url(proxy)!r}")
    return proxy


def parse_size(setting: str, value: object) -> int:
    """A byte count from a number or text with a decimal or binary unit (``quota``).

    Example:
        >>> parse_size("account.quota", "12 TB")
        12000000000000
        >>> parse_size("account.quota", "1.5TiB")
        1649267441664
        >>> parse_size("account.quota", 5000)
        5000

    Raises:
        ConfigError: not a positive size.
    """
    expected = "must be a positive size in bytes, or text like '12TB' or '500 GiB'"
    if isinstance(value, bool):
        raise _invalid(setting, f"{expected}, got {_shown(value)}")
    if isinstance(value, int):
        number = value
    elif isinstance(value, str) and (match := _SIZE.fullmatch(value)):
        power = " KMGTP".index(match[2].upper() or " ")
        base = 1024 if match[3] else 1000
        number = int(float(match[1]) * base**power)
    else:
        raise _invalid(setting, f"{expected}, got {_shown(value)}")
    if number <= 0:
        raise _invalid(setting, f"{expected}, got {_shown(value)}")
    return number


def _check_ledger(setting: str, value: object) -> str | None:
    """A save folder (text) or a ``postgresql://`` URL; ``None`` is the save folder's."""
    if value is None:
        return None
    if not isinstance(value, (str, os.PathLike)) or not os.fspath(value).strip():
        raise _invalid(
            setting, f"must be a folder or a postgresql:// URL (text), got {_shown(value)}"
        )
    text = os.fspath(value).strip()
    assert isinstance(text, str)
    scheme, sep, _ = text.partition("://")
    if sep and scheme.isalnum():
        if scheme.lower() not in LEDGER_SCHEMES:
            raise _invalid(
                setting,
                f"must be a folder or a postgresql:// URL, got {redact_url(text)!r}",
            )
        return text
    return str(Path(text).expanduser())


def _check_path(setting: str, value: object, *, what: str = "folder") -> Path:
    if not isinstance(value, (str, os.PathLike)):
        raise _invalid(setting, f"must be a {what} path (text), got {_shown(value)}")
    text = os.fspath(value)
    if not isinstance(text, str) or not text.strip():
        raise _invalid(setting, f"is empty: give a {what}, or leave it unset for the default")
    return Path(text)


@dataclass(frozen=True)
class _Range:
    """What one numeric limit accepts: its type and bounds (``above`` excludes the bound)."""

    kind: type[int] | type[float]
    low: float
    high: float
    above: bool = False

    def check(self, setting: str, value: object) -> None:
        whole = self.kind is int
        wanted = (
            f"a whole number from {int(self.low)} to {int(self.high)}"
            if whole
            else f"a number {'above' if self.above else 'from'} {self.low:g} "
            f"{'and at most' if self.above else 'to'} {self.high:g}"
        )
        number_types: tuple[type, ...] = (int,) if whole else (int, float)
        if isinstance(value, bool) or not isinstance(value, number_types):
            raise _invalid(setting, f"must be {wanted}, got {_shown(value)}")
        number = float(value)  # type: ignore[arg-type]
        too_low = number <= self.low if self.above else number < self.low
        if not math.isfinite(number) or too_low or number > self.high:
            raise _invalid(setting, f"must be {wanted}, got {_shown(value)}")


_HOUR_S = 3600.0
#: The checks of :class:`Limits`, by field.
_LIMIT_RANGES: dict[str, _Range] = {
    "workers": _Range(int, 1, MAX_WORKERS),
    # Each worker holds one chunk in memory; past 64 MiB nothing gets faster.
    "chunk_size_bytes": _Range(int, 4096, 64 << 20),
    "connect_timeout_s": _Range(float, 0, _HOUR_S, above=True),
    "read_timeout_s": _Range(float, 0, _HOUR_S, above=True),
    "answer_timeout_s": _Range(float, 0, 24 * _HOUR_S, above=True),
    "max_attempts": _Range(int, 1, 100),
    "max_total_attempts": _Range(int, 1, 1000),
    # At least one whole copy of the product must fit in its budget.
    "max_fetched_size_multiple": _Range(float, 1, 100),
    "unknown_size_max_bytes": _Range(int, 1, 1 << 50),
    # 0 turns the guard off.
    "min_rate_bytes_per_s": _Range(float, 0, 1e10),
    "min_rate_window_s": _Range(float, 0, _HOUR_S, above=True),
    "backoff_base_s": _Range(float, 0, _HOUR_S, above=True),
    "backoff_max_s": _Range(float, 0, _HOUR_S, above=True),
    "throttle_cooldown_s": _Range(float, 0, _HOUR_S),
    "probe_after_s": _Range(float, 0, _HOUR_S, above=True),
    "page_size": _Range(int, 1, 1000),
    # The catalogue sits behind a rate-limiting WAF (cdse-api.md §6.2): a few at most.
    "catalogue_requests": _Range(int, 1, 8),
    "token_refresh_margin_s": _Range(float, 0, _HOUR_S),
    # Cooperating runs: a lease renewed every third of it; a killed run's products wait
    # this long for another run.
    "lease_s": _Range(float, 0.3, _HOUR_S),
}


_LIMIT_FIELDS = (*_LIMIT_RANGES, "direct_io")


def parse_limit(name: str, text: str) -> object:
    """A limit given as text (an environment variable) as the value it stands for.

    Text that does not read as the limit's type is returned as it is, for the limit's
    own check to refuse with the usual message.

    Example:
        >>> parse_limit("workers", " 8 "), parse_limit("read_timeout_s", "2.5")
        (8, 2.5)
        >>> parse_limit("workers", "four")
        'four'
    """
    cleaned = text.strip()
    if name == "direct_io":
        return {"true": True, "false": False}.get(cleaned.lower(), text)
    range_ = _LIMIT_RANGES.get(name)
    try:
        if range_ is not None and range_.kind is int:
            return int(cleaned)
        if range_ is not None:
            return float(cleaned)
    except ValueError:
        pass
    return text


@dataclass(frozen=True)
class Endpoints:
    """Base URLs of the three CDSE services.

    Attributes:
        identity: Keycloak realm base; the token endpoint is derived from it.
        catalogue: OData catalogue base (``.../odata/v1``).
        download: OData download base (``.../odata/v1``); the only host product bytes
            are requested from.
        stac: STAC API base (``.../v1``), where the files of a product are listed with
            their sizes and checksums; it never receives the token.
    """

    identity: str = CDSE_IDENTITY_URL
    catalogue: str = CDSE_CATALOGUE_URL
    download: str = CDSE_DOWNLOAD_URL
    stac: str = CDSE_STAC_URL

    def __post_init__(self) -> None:
        for name in ("identity", "catalogue", "download", "stac"):
            object.__setattr__(self, name, _check_base_url(name, getattr(self, name)))

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
            stac=env.get(ENV_STAC_URL) or CDSE_STAC_URL,
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
    #: Longest time a whole answer that is not a download (a catalogue page, a token) may
    #: take, redirects and body included: a server trickling its headers or JSON a byte
    #: at a time never trips ``read_timeout_s``, which covers one read.
    answer_timeout_s: float = 300.0
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
    #: After a 429 DAT-ZIP-100 the download concurrency drops one stream; after this
    #: quiet interval one more stream is tried again.
    probe_after_s: float = 3.0
    #: The longest interval between tries of a level that keeps answering 429 (each
    #: try waits four times longer than the one before, from ``probe_after_s``): a
    #: persistent lower limit costs a handful of 429s.
    throttle_cooldown_s: float = 300.0
    #: Catalogue page size; 1000 is the catalogue's maximum ``$top``.
    page_size: int = 1000
    #: Catalogue requests at once while a search pages: the time windows of a split
    #: search are fetched side by side (parsing one page while the next arrives). A 429
    #: from the catalogue lowers it for the rest of the search, down to 1.
    catalogue_requests: int = 2
    #: Refresh the access token when less than this remains (capped at 20 % of its life).
    token_refresh_margin_s: float = 60.0
    #: Write part files past the page cache (``O_DIRECT``) where the filesystem allows:
    #: less CPU per GB, a cheap final fsync, and the user's page cache left alone.
    direct_io: bool = True
    #: Cooperating runs (many downloads on one job): how long a claim on a product, and
    #: one of the account's connection slots, lasts unless renewed (every third of it).
    #: A run killed with ``kill -9`` leaves its products to the others after this long.
    lease_s: float = 60.0

    def __post_init__(self) -> None:
        for name, range_ in _LIMIT_RANGES.items():
            range_.check(name, getattr(self, name))
        if not isinstance(self.direct_io, bool):
            raise _invalid("direct_io", f"must be true or false, got {_shown(self.direct_io)}")
        if self.backoff_max_s < self.backoff_base_s:
            raise _invalid(
                "backoff_max_s",
                f"({_shown(self.backoff_max_s)}) must be at least backoff_base_s "
                f"({_shown(self.backoff_base_s)}): it caps the pauses that grow from it",
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
        ledger: where the job's ledger is: ``None`` for the SQLite file in the save
            folder, another folder, or a ``postgresql://`` URL (a job shared by many
            machines).
        quota_bytes: the account's data quota over a rolling 30 days (12 TB): what the
            quota meter of ``status`` reads against.
        max_connections: the account's connection budget across every worker of a team
            job (CDSE: 4 for a free account, 20 for an organisation's); ``None``: as
            many as ``limits.workers``.
    """

    endpoints: Endpoints = field(default_factory=Endpoints)
    limits: Limits = field(default_factory=Limits)
    proxy: str | None = None
    ca_bundle: str | None = None
    save_path: Path = field(default_factory=lambda: Path("sentinel-data"))
    temp_dir: Path | None = None
    finish_dir: Path | None = None
    ledger: str | None = None
    quota_bytes: int = DEFAULT_QUOTA_BYTES
    max_connections: int | None = None

    def __post_init__(self) -> None:
        """Check every field; folders given as text become paths."""
        for name, kind in (("endpoints", Endpoints), ("limits", Limits)):
            value = getattr(self, name)
            if not isinstance(value, kind):
                raise _invalid(name, f"must be a {kind.__name__}, got {type(value).__name__}")
        object.__setattr__(self, "proxy", _check_proxy("proxy", self.proxy))
        if self.ca_bundle is not None:
            bundle = _check_path("ca_bundle", self.ca_bundle, what="file")
            object.__setattr__(self, "ca_bundle", str(bundle))
        object.__setattr__(self, "save_path", _check_path("save_path", self.save_path))
        for name in ("temp_dir", "finish_dir"):
            if getattr(self, name) is not None:
                object.__setattr__(self, name, _check_path(name, getattr(self, name)))
        object.__setattr__(self, "ledger", _check_ledger("ledger", self.ledger))
        object.__setattr__(self, "quota_bytes", parse_size("quota_bytes", self.quota_bytes))
        if self.max_connections is not None:
            _LIMIT_RANGES["workers"].check("max_connections", self.max_connections)

    @property
    def temp_path(self) -> Path:
        """Folder of in-progress files."""
        return self.temp_dir if self.temp_dir is not None else self.save_path / "Temp"

    @property
    def finish_path(self) -> Path:
        """Folder of verified products."""
        return self.finish_dir if self.finish_dir is not None else self.save_path / "Finish"

    def with_changes(self, **changes: object) -> Settings:
        """A copy with some fields replaced (the dataclass is frozen), checked again.

        Raises:
            ConfigError: a name that is no field of Settings, or a value that does not check.
        """
        unknown = sorted(set(changes) - {f.name for f in fields(self)})
        if unknown:
            where = " (a limit: change settings.limits)" if unknown[0] in _LIMIT_FIELDS else ""
            raise _invalid(unknown[0], f"is not a field of Settings{where}")
        return replace(self, **changes)  # type: ignore[arg-type]

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **overrides: object) -> Settings:
        """Settings from the environment variables of :data:`ENVIRONMENT`; the rest defaults.

        The same variables the command line reads: endpoints, CA bundle, proxy, folders
        and workers. ``overrides`` replace fields after that.

        Raises:
            ConfigError: a variable's value does not check; the message names the variable.
        """
        env = os.environ if environ is None else environ
        values = {name: env[var] for name, var in ENVIRONMENT.items() if env.get(var)}
        try:
            base = settings_from_values(values, text=set(values))
        except ConfigError as exc:
            key = exc.setting or ""
            if key not in ENVIRONMENT:
                raise
            problem = str(exc).removeprefix(f"{key} ")
            raise ConfigError(
                f"{key} {problem} (from the environment variable {ENVIRONMENT[key]})",
                setting=key,
            ) from None
        return base.with_changes(**overrides) if overrides else base


def _expanded(value: object) -> object:
    """``~`` in a folder given as text means the home folder; anything else is checked later."""
    return Path(value).expanduser() if isinstance(value, str) and value.strip() else value


def settings_from_values(values: Mapping[str, object], *, text: Collection[str] = ()) -> Settings:
    """Settings from flat ``section.key`` values (a config layer, the environment).

    Args:
        values: ``save_path``, ``proxy``, ``endpoints.catalogue``, ``limits.workers``...;
            absent names keep their defaults.
        text: names whose values are environment text, read as the limit's type.

    Raises:
        ConfigError: a value does not check; ``setting`` is its flat name.
    """
    keys = {
        **{name: f"limits.{name}" for name in _LIMIT_FIELDS},
        **{name: f"endpoints.{name}" for name in ("identity", "catalogue", "download", "stac")},
        "quota_bytes": "account.quota",
        "max_connections": "account.max_connections",
    }
    try:
        endpoints = Endpoints(
            identity=values.get("endpoints.identity", CDSE_IDENTITY_URL),  # type: ignore[arg-type]
            catalogue=values.get("endpoints.catalogue", CDSE_CATALOGUE_URL),  # type: ignore[arg-type]
            download=values.get("endpoints.download", CDSE_DOWNLOAD_URL),  # type: ignore[arg-type]
            stac=values.get("endpoints.stac", CDSE_STAC_URL),  # type: ignore[arg-type]
        )
        limit_values: dict[str, object] = {}
        for name in _LIMIT_FIELDS:
            key = f"limits.{name}"
            if key in values:
                value = values[key]
                if key in text and isinstance(value, str):
                    value = parse_limit(name, value)
                limit_values[name] = value
        return Settings(
            endpoints=endpoints,
            limits=Limits(**limit_values),  # type: ignore[arg-type]
            proxy=values.get("proxy"),  # type: ignore[arg-type]
            ca_bundle=values.get("ca_bundle"),  # type: ignore[arg-type]
            save_path=_expanded(values.get("save_path", "sentinel-data")),  # type: ignore[arg-type]
            temp_dir=_expanded(values.get("temp_dir")),  # type: ignore[arg-type]
            finish_dir=_expanded(values.get("finish_dir")),  # type: ignore[arg-type]
            ledger=values.get("ledger"),  # type: ignore[arg-type]
            quota_bytes=values.get("account.quota", DEFAULT_QUOTA_BYTES),  # type: ignore[arg-type]
            max_connections=values.get("account.max_connections"),  # type: ignore[arg-type]
        )
    except ConfigError as exc:
        if exc.setting is None or exc.setting not in keys:
            raise
        key = keys[exc.setting]
        problem = str(exc).removeprefix(f"{exc.setting} ")
        raise ConfigError(f"{key} {problem}", setting=key) from None
