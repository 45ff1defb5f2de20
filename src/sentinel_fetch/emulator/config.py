"""Emulator settings. Switches for behaviour the specification marks unconfirmed."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

__all__ = [
    "CATALOGUE_NOW",
    "COMPRESSED_LOCATION_STYLES",
    "DEMO_PASSWORD",
    "DEMO_USERNAME",
    "PATCHABLE_FIELDS",
    "EmulatorConfig",
    "default_data_dir",
]

DEMO_USERNAME = "demo@sentinel-fetch.test"
DEMO_PASSWORD = "demo-password"  # noqa: S105 (public demo account of the emulator)

#: The emulator's default "now" for the archive (not for tokens): just after the last
#: publication of the synthetic catalogue (which covers 2019-2025), so the products of its
#: last month are inside Sentinel-1's 30-day native ``$zip`` window (cdse-api.md §5.8):
#: about 1,100 Sentinel-1 GRD/SLC products, 1.1 % of them, with the default seed.
CATALOGUE_NOW = datetime(2026, 1, 3, tzinfo=timezone.utc)

#: Values of ``compressed_location`` (the compressed ``Locations`` entry's fields).
COMPRESSED_LOCATION_STYLES = ("full", "no-eviction-date", "absent")


def _catalogue_now() -> datetime:
    return CATALOGUE_NOW


def default_data_dir() -> Path:
    """Cache for the catalogue database, large product files and the TLS CA.

    ``SENTINEL_FETCH_EMULATOR_DIR`` overrides the per-user cache folder.
    """
    import os

    override = os.environ.get("SENTINEL_FETCH_EMULATOR_DIR")
    if override:
        return Path(override)
    from platformdirs import user_cache_dir

    return Path(user_cache_dir("sentinel-fetch")) / "emulator"


@dataclass
class EmulatorConfig:
    """How the emulator behaves. Mutable: tests and the admin endpoint flip switches at run time.

    Every host reads the fields it needs on each request, so a change made while the
    emulator runs applies to the next request (a stream already running keeps the
    bandwidth cap it started with).

    Attributes:
        seed: seed of the synthetic catalogue (same seed, same products, same bytes).
        host: address every host binds to (loopback).
        tls: serve HTTPS with a locally generated CA (like CDSE) instead of plain HTTP.
        identity_port, catalogue_port, download_port: 0 picks free ports.
        data_dir: cache folder (catalogue SQLite, products materialised on disk, CA).
        users: username -> password of accounts the identity host accepts.
        totp_secrets: username -> base32 TOTP secret for accounts with 2FA.
        oauth_clients: client_id -> client_secret of Sentinel Hub OAuth clients (``sh-…``).
            Their client-credentials tokens lack the ``CLOUDFERRO_PUBLIC`` audience, so the
            catalogue ignores them and the download host answers 401 DAT-ZIP-609 (spec §2.1).
        access_token_lifetime_s / refresh_token_lifetime_s: CDSE: 600 s / 3600 s.
        max_sessions: active sessions allowed per account (CDSE: 100).
        session_limit_answer: how a login past ``max_sessions`` is refused: ``json``
            (401 ``generic_authentication_error`` / ``sessionLimitExceeded``) or ``html``
            (403 and an HTML page). Stock Keycloak sends one or the other depending on
            its version; CDSE's answer was never captured (spec §2.3).
        size_scale: served archive size = nominal size × scale (tests use ~1e-5).
        product_size_bytes: if set, every archive is about this many bytes instead
            (benchmarks use 1 GiB); overrides ``size_scale``.
        min_product_size_bytes: floor of the served archive size, so that scaled-down
            products still hold a SAFE-like folder with real-looking files.
        max_concurrent_downloads: per-user open product streams before 429 DAT-ZIP-100.
        session_number_in_message: the 429 DAT-ZIP-100 message names the account's
            limit ("Max session number 4 exceeded", as CDSE's FAQ quotes it) instead of
            the DAT-ZIP body's "Max session number exceeded" (spec §6.2).
        retry_after_s: if set, the 429 DAT-ZIP-100 answer carries ``Retry-After`` with
            this many seconds. CDSE's use of the header is unconfirmed (spec §11), so
            it is off by default.
        bandwidth_bytes_per_s: per-connection cap on product streams (CDSE: 20 MB/s).
        range_supported: honour ``Range`` (the real host's support is unconfirmed).
        expire_midstream: cut a stream whose token expires while it is being served.
        offline_status: status of ``$value`` for an ``Online: false`` product. The real
            answer is unknown (spec §5.6, §11); 404 is the inferred default.
        count_offset: ``@odata.count`` is this many products off (negative: too few,
            never below 0). CDSE's count was exact in the one capture that could be
            checked, but clients distrust it and the catalogue changes while a long
            search pages (spec §3.7), so the default is exact and tests switch it.
        catalogue_quoted_keys: the catalogue host accepts the quoted key
            ``Products('<uuid>')``. Real CDSE rejects it on the download host; its answer
            on the catalogue host is unconfirmed (spec §3.1), so rejecting is the default.
        latency_s: added delay before every response (a WAN-like round trip).
        idle_timeout_s: how long a keep-alive connection may sit idle (and how long a
            send may block on a client that stopped reading) before it is closed.
        memory_archive_max_bytes: archives smaller than this are built in memory; larger
            ones are written once under ``data_dir`` and served from disk.
        archive_cache_bytes: memory budget of the in-memory archive cache (LRU).
        max_request_events: how many request events the stats keep (oldest dropped).
        zipper_port, stac_port, quicklook_port, quicklook_files_port: the other origins
            (0: free ports): the download host's old name serving the same paths (the
            host of STAC's per-file URLs, spec §1, §9.6), the STAC API (§9), the
            thumbnail host of STAC items and the second origin it redirects to (§5.9).
        now: the archive's clock (UTC, aware): the ``$zip`` window counts against it.
            Tests inject their own; tokens keep the wall clock.
        compressed_window_days: how long after ``PublicationDate`` Sentinel-1 RAW/GRD/SLC
            keep their native compressed form (spec §5.8: "one month").
        compressed_location: fields of the compressed ``Locations`` entry, unconfirmed
            (§5.8): ``full``, ``no-eviction-date`` or ``absent``.
        compressed_expired_status: status of ``$zip`` after the window (unknown, §15).
        node_range_supported: honour ``Range`` on Nodes ``$value`` (unknown, §5.7), on
            top of ``range_supported``.
        nodes_count_as_streams: a Nodes file GET takes one of the user's stream slots
            ([INFERRED] §5.7: it shares the download quota).
        stac_requests_per_s: per-client STAC rate (CDSE ≈ 5/s, §9.4); above it 429 with
            the WAF body and ``Retry-After``; ``None`` switches the limiter off.
        stac_retry_after_s: the ``Retry-After`` of that 429 (CDSE: 2).
        stac_clock: monotonic seconds for the rate limiter (tests inject their own).
        stac_default_limit / stac_max_limit: items per page when ``limit`` is absent, and
            the cap a larger ``limit`` is cut to (stac-fastapi-pgstac: 10 and 10 000).
        stac_malformed_metadata_checksums: metadata XML assets carry the MD5 multihash
            code with a 32-byte (SHA3-256) digest, as CDSE's do (§9.7); off: a real MD5.
        quicklook_failure_share: share of products whose quicklook answers 403 or 404,
            on the catalogue's ``Assets(<id>)/$value`` and the STAC thumbnail host alike
            (§5.9: "some quicklooks answer 403 or 404"), chosen by product id.
        reprocessed_twins: serve the catalogue's twins (§11.3: reprocessed baselines,
            replaced products, CloudFerro L2A, a datatake split into two partial tiles;
            about 3.5 % of Sentinel-2 tiles, see :mod:`.catalogue.generator`). Off, each
            such tile is one product, as in catalogues built before twins existed.
        published_until: the catalogue serves only products whose ``PublicationDate``
            is not later (``None``: every product). Moving it forward publishes the
            products in between, at their own dates, while a search pages (spec §3.7:
            the catalogue changes while a long search pages).
        publish_step_s: after each catalogue search it answers, ``published_until``
            moves this many seconds forward (0: it stays): new products appear between
            every two pages of a listing, whatever the client's order of requests.
    """

    seed: int = 20231001
    host: str = "127.0.0.1"
    tls: bool = True
    identity_port: int = 0
    catalogue_port: int = 0
    download_port: int = 0
    data_dir: Path = field(default_factory=default_data_dir)
    users: dict[str, str] = field(default_factory=lambda: {DEMO_USERNAME: DEMO_PASSWORD})
    totp_secrets: dict[str, str] = field(default_factory=dict)
    oauth_clients: dict[str, str] = field(default_factory=dict)
    access_token_lifetime_s: float = 600.0
    refresh_token_lifetime_s: float = 3600.0
    max_sessions: int = 100
    session_limit_answer: str = "json"
    size_scale: float = 1e-5
    product_size_bytes: int | None = None
    min_product_size_bytes: int = 4096
    max_concurrent_downloads: int = 4
    session_number_in_message: bool = False
    retry_after_s: float | None = None
    bandwidth_bytes_per_s: float | None = None
    range_supported: bool = True
    expire_midstream: bool = False
    offline_status: int = 404
    count_offset: int = 0
    catalogue_quoted_keys: bool = False
    latency_s: float = 0.0
    idle_timeout_s: float = 120.0
    memory_archive_max_bytes: int = 8 * 1024 * 1024
    archive_cache_bytes: int = 256 * 1024 * 1024
    max_request_events: int = 10_000
    zipper_port: int = 0
    stac_port: int = 0
    quicklook_port: int = 0
    quicklook_files_port: int = 0
    now: Callable[[], datetime] = _catalogue_now
    compressed_window_days: float = 30.0
    compressed_location: str = "full"
    compressed_expired_status: int = 404
    node_range_supported: bool = True
    nodes_count_as_streams: bool = True
    stac_requests_per_s: float | None = 5.0
    stac_retry_after_s: float = 2.0
    stac_clock: Callable[[], float] = time.monotonic
    stac_default_limit: int = 10
    stac_max_limit: int = 10_000
    stac_malformed_metadata_checksums: bool = True
    quicklook_failure_share: float = 0.0
    reprocessed_twins: bool = True
    published_until: datetime | None = None
    publish_step_s: float = 0.0

    def patch(self, changes: dict[str, Any]) -> dict[str, Any]:
        """Apply run-time changes (the admin endpoint's ``PATCH config``).

        Only the fields in :data:`PATCHABLE_FIELDS` can change while the emulator runs:
        ports, TLS and the data folder are fixed once it has started.

        Args:
            changes: field name -> new value (JSON types).

        Returns:
            The patchable fields after the change.

        Raises:
            ValueError: unknown or fixed field, or a value of the wrong type.
        """
        validated: dict[str, Any] = {}
        for name, value in changes.items():
            kind = PATCHABLE_FIELDS.get(name)
            if kind is None:
                raise ValueError(f"{name!r} cannot be changed at run time")
            validated[name] = _coerce(name, value, kind)
        for name, value in validated.items():
            setattr(self, name, value)
        return self.patchable()

    def patchable(self) -> dict[str, Any]:
        """The current values of the fields :meth:`patch` accepts (JSON types)."""
        values = {name: getattr(self, name) for name in PATCHABLE_FIELDS}
        return {
            name: value.isoformat() if isinstance(value, datetime) else value
            for name, value in values.items()
        }

    def advance_publication(self) -> None:
        """One catalogue search answered: publish ``publish_step_s`` more (if set)."""
        until = self.published_until
        if until is not None and self.publish_step_s > 0:
            self.published_until = until + timedelta(seconds=self.publish_step_s)


#: Fields the admin endpoint may change, with their type: ``"bool"``, ``"int"``
#: (non-negative), ``"signed int"``, ``"float"``, ``"float?"`` (a float or ``null``), or
#: the allowed words separated by ``|``.
PATCHABLE_FIELDS: dict[str, str] = {
    "range_supported": "bool",
    "bandwidth_bytes_per_s": "float?",
    "max_concurrent_downloads": "int",
    "session_number_in_message": "bool",
    "retry_after_s": "float?",
    "expire_midstream": "bool",
    "latency_s": "float",
    "access_token_lifetime_s": "float",
    "refresh_token_lifetime_s": "float",
    "max_sessions": "int",
    "session_limit_answer": "json|html",
    "offline_status": "int",
    "count_offset": "signed int",
    "catalogue_quoted_keys": "bool",
    "compressed_window_days": "float",
    "compressed_location": "choice:" + ",".join(COMPRESSED_LOCATION_STYLES),
    "compressed_expired_status": "int",
    "node_range_supported": "bool",
    "nodes_count_as_streams": "bool",
    "stac_requests_per_s": "float?",
    "stac_retry_after_s": "float",
    "stac_default_limit": "int",
    "stac_max_limit": "int",
    "stac_malformed_metadata_checksums": "bool",
    "quicklook_failure_share": "float",
    "reprocessed_twins": "bool",
    "published_until": "datetime?",
    "publish_step_s": "float",
}


def _coerce(name: str, value: Any, kind: str) -> Any:
    if kind.startswith("choice:"):
        choices = kind.removeprefix("choice:").split(",")
        if value in choices:
            return value
        raise ValueError(f"{name} must be one of {choices}, got {value!r}")
    if kind.endswith("?"):
        if value is None:
            return None
        kind = kind[:-1]
    if "|" in kind:
        words = kind.split("|")
        if value in words:
            return value
        raise ValueError(f"{name} must be one of {', '.join(words)}, got {value!r}")
    if kind == "datetime":
        if isinstance(value, str):
            try:
                moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
            except ValueError:
                moment = None
            if moment is not None and moment.tzinfo is not None:
                return moment
        raise ValueError(f"{name} must be an ISO 8601 time with its zone, got {value!r}")
    if kind == "bool":
        if isinstance(value, bool):
            return value
    elif kind == "signed int":
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        raise ValueError(f"{name} must be an integer, got {value!r}")
    elif kind == "int":
        if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
            return value
    elif (
        kind == "float"
        and isinstance(value, int | float)
        and not isinstance(value, bool)
        and value >= 0
    ):
        return float(value)
    raise ValueError(f"{name} must be a non-negative {kind}, got {value!r}")
