"""Fixtures for client tests: one CDSE emulator for the session, reset around every test.

The emulator is a real HTTPS server on loopback; tests change its behaviour (faults,
lifetimes, Range support) through its own API, never by patching the client.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from pathlib import Path

import pytest

from sentinel_fetch.auth import Credentials
from sentinel_fetch.emulator import DEMO_PASSWORD, DEMO_USERNAME, Emulator, EmulatorConfig
from sentinel_fetch.redact import forget_secrets
from sentinel_fetch.settings import Endpoints, Limits, Settings

# Archive size = nominal size x this: Sentinel-2 products of about 100 kB, enough bytes
# for cuts, corruption and resumes at arbitrary offsets, small enough to be quick.
TEST_SIZE_SCALE = 1e-4

# Run-time switches tests may flip; restored after every test.
_SWITCHES = (
    "access_token_lifetime_s",
    "refresh_token_lifetime_s",
    "max_sessions",
    "max_concurrent_downloads",
    "bandwidth_bytes_per_s",
    "range_supported",
    "expire_midstream",
    "latency_s",
    "retry_after_s",
    "count_offset",
    "session_limit_answer",
    "catalogue_quoted_keys",
    "now",
    "compressed_location",
    "compressed_expired_status",
    "node_range_supported",
    "nodes_count_as_streams",
    "stac_requests_per_s",
    "stac_clock",
    "stac_default_limit",
    "stac_max_limit",
    "stac_malformed_metadata_checksums",
    "quicklook_failure_share",
    "reprocessed_twins",
)


@pytest.fixture(scope="session")
def cdse_session() -> Iterator[Emulator]:
    """The session's emulator (HTTPS, real synthetic catalogue)."""
    # STAC's rate limit (5 requests/s) is off here: only its own tests switch it on; so are
    # the catalogue's reprocessed twins, which the tests of duplicates switch on.
    config = EmulatorConfig(
        size_scale=TEST_SIZE_SCALE, stac_requests_per_s=None, reprocessed_twins=False
    )
    with Emulator(config) as emulator:
        yield emulator


@pytest.fixture
def cdse(cdse_session: Emulator) -> Iterator[Emulator]:
    """The emulator, with no faults, fresh stats, no open sessions, default switches."""
    emulator = cdse_session
    saved = {name: getattr(emulator.config, name) for name in _SWITCHES}
    emulator.faults.clear()
    emulator.end_sessions()
    emulator.stats.reset()
    forget_secrets()
    yield emulator
    emulator.faults.clear()
    for name, value in saved.items():
        setattr(emulator.config, name, value)


@pytest.fixture
def fast_limits() -> Limits:
    """Limits that keep retries quick in tests (the policy is the same, the waits shorter)."""
    return Limits(
        backoff_base_s=0.05,
        backoff_max_s=0.4,
        throttle_cooldown_s=1.0,
        probe_after_s=0.25,
        connect_timeout_s=5.0,
        read_timeout_s=5.0,
        max_attempts=6,
        # Products are ~100 kB here; small reads make cuts leave partial files to resume.
        chunk_size_bytes=16384,
    )


@pytest.fixture
def settings(cdse: Emulator, tmp_path: Path, fast_limits: Limits) -> Settings:
    """Client settings pointing at the emulator, saving under the test's tmp folder."""
    return Settings(
        endpoints=Endpoints(cdse.identity_url, cdse.catalogue_url, cdse.download_url),
        limits=fast_limits,
        ca_bundle=str(cdse.ca_bundle),
        save_path=tmp_path / "save",
    )


@pytest.fixture
def credentials() -> Credentials:
    """The emulator's demo account."""
    return Credentials(DEMO_USERNAME, DEMO_PASSWORD, source="test")


def with_limits(settings: Settings, **changes: object) -> Settings:
    """A copy of ``settings`` with some limits changed."""
    return settings.with_changes(limits=dataclasses.replace(settings.limits, **changes))


@pytest.fixture(scope="session")
def postgres_server(request: pytest.FixtureRequest) -> str:
    """A real PostgreSQL server for this session (xdist worker): see tests/postgres.py.

    Skipped where PostgreSQL is not installed, failed in CI.
    """
    from tests.postgres import server_url

    return server_url(request)


@pytest.fixture
def postgres_url(postgres_server: str) -> Iterator[str]:
    """A ``postgresql://`` URL whose tables go to a schema of this test's own."""
    from tests.postgres import drop_schema_of, fresh_schema_url

    url = fresh_schema_url(postgres_server)
    yield url
    drop_schema_of(postgres_server, url)


@pytest.fixture(params=["sqlite", "postgresql"])
def ledger_location(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """Where a job's ledger lives, for each implementation: a save folder or a URL.

    Tests of the ledger interface take this, so the same test runs on both.
    """
    if request.param == "sqlite":
        return str(tmp_path / "job")
    url: str = request.getfixturevalue("postgres_url")
    return url
