"""Emulator settings. Switches for behaviour the specification marks unconfirmed."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = [
    "DEMO_PASSWORD",
    "DEMO_USERNAME",
    "PATCHABLE_FIELDS",
    "EmulatorConfig",
    "default_data_dir",
]

DEMO_USERNAME = "demo@sentinel-fetch.test"
DEMO_PASSWORD = "demo-password"  # noqa: S105 (public demo account of the emulator)


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
        """The current values of the fields :meth:`patch` accepts."""
        return {name: getattr(self, name) for name in PATCHABLE_FIELDS}


#: Fields the admin endpoint may change, with their type: ``"bool"``, ``"int"``
#: (non-negative), ``"signed int"``, ``"float"``, ``"float?"`` (a float or ``null``), or
#: the allowed words separated by ``|``.
PATCHABLE_FIELDS: dict[str, str] = {
    "range_supported": "bool",
    "bandwidth_bytes_per_s": "float?",
    "max_concurrent_downloads": "int",
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
}


def _coerce(name: str, value: Any, kind: str) -> Any:
    if kind.endswith("?"):
        if value is None:
            return None
        kind = kind[:-1]
    if "|" in kind:
        words = kind.split("|")
        if value in words:
            return value
        raise ValueError(f"{name} must be one of {', '.join(words)}, got {value!r}")
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
