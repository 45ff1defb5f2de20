"""The admin endpoint (``/_emulator/`` on the catalogue host): steering over HTTP."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest
import requests

from sentinel_fetch.emulator import DEMO_USERNAME, Emulator
from sentinel_fetch.emulator.admin import AdminApp
from sentinel_fetch.emulator.model import Request

from .test_server_support import S2, bearer, client, fetch, login, product_url, running, token

# Above the floor of a complete L2A SAFE tree (~64 kB), so every archive has exactly this size.
SIZE = 100_000


@pytest.fixture(scope="module")
def emulator(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Emulator]:
    with running(tmp_path_factory.mktemp("admin"), product_size_bytes=SIZE) as emulator:
        yield emulator


@pytest.fixture
def admin(emulator: Emulator) -> Iterator[requests.Session]:
    emulator.faults.clear()
    yield client(emulator)
    emulator.faults.clear()


def test_stats_report_what_happened(emulator: Emulator, admin: requests.Session) -> None:
    admin.delete(f"{emulator.admin_url}/stats")
    access = token(emulator)
    client(emulator).get(product_url(emulator, S2), headers=bearer(access))

    stats = admin.get(f"{emulator.admin_url}/stats", params={"events": 5}).json()

    assert stats["logins"] == {DEMO_USERNAME: 1}
    assert stats["requests"] == {"download": {"200": 1}, "identity": {"200": 1}}
    assert stats["bytes_served"] == {S2.id: SIZE}
    assert stats["streams"]["peak_by_user"] == {DEMO_USERNAME: 1}
    assert [e["host"] for e in stats["events"]] == ["identity", "download"]
    assert stats["events"][1]["authorization"] is True


def test_admin_requests_are_not_counted(emulator: Emulator, admin: requests.Session) -> None:
    admin.delete(f"{emulator.admin_url}/stats")
    admin.get(f"{emulator.admin_url}/stats")

    assert emulator.stats.requests() == 0


def test_faults_are_added_listed_and_cleared(emulator: Emulator, admin: requests.Session) -> None:
    access = token(emulator)
    added = admin.post(
        f"{emulator.admin_url}/faults", json={"kind": "cut", "after_bytes": 100, "times": 2}
    )
    status, _, body = fetch(emulator, product_url(emulator, S2), bearer(access))
    listed = admin.get(f"{emulator.admin_url}/faults").json()
    cleared = admin.delete(f"{emulator.admin_url}/faults").json()
    intact = client(emulator).get(product_url(emulator, S2), headers=bearer(access))

    assert added.status_code == 201
    assert added.json()["faults"][0]["kind"] == "cut"
    assert (status, len(body)) == (200, 100)
    assert listed["faults"][0]["remaining"] == 1
    assert listed["fired"][-1]["kind"] == "cut"
    assert cleared == {"cleared": 1}
    assert len(intact.content) == SIZE


def test_several_rules_at_once(emulator: Emulator, admin: requests.Session) -> None:
    response = admin.post(
        f"{emulator.admin_url}/faults",
        json=[{"kind": "status", "status": 503}, {"kind": "stall", "stall_s": 0.01}],
    )

    assert response.status_code == 201
    assert len(emulator.faults.pending()) == 2


@pytest.mark.parametrize(
    "body", [{"kind": "nope"}, {"kind": "cut", "after_bytes": "x"}, [1, 2], "text"]
)
def test_bad_rules_get_400(emulator: Emulator, admin: requests.Session, body: object) -> None:
    response = admin.post(f"{emulator.admin_url}/faults", json=body)

    assert response.status_code == 400
    assert "error" in response.json()


def test_randomize(emulator: Emulator, admin: requests.Session) -> None:
    access = token(emulator)
    response = admin.post(
        f"{emulator.admin_url}/faults/randomize", json={"rate": 1, "kinds": ["status"], "seed": 4}
    )
    faulty = client(emulator).get(product_url(emulator, S2), headers=bearer(access))

    assert response.status_code == 200
    assert faulty.status_code in (429, 500, 502, 503)
    assert admin.post(f"{emulator.admin_url}/faults/randomize", json={"rate": 2}).status_code == 400


def test_held_streams_are_released_over_http(emulator: Emulator, admin: requests.Session) -> None:
    access = token(emulator)
    admin.post(f"{emulator.admin_url}/faults", json={"kind": "hold", "after_bytes": 10})
    statuses: list[int] = []
    reader = threading.Thread(
        target=lambda: statuses.append(
            len(client(emulator).get(product_url(emulator, S2), headers=bearer(access)).content)
        )
    )
    reader.start()
    assert emulator.stats.wait_for(lambda s: s.current_streams() == 1)

    released = admin.post(f"{emulator.admin_url}/faults/release")
    reader.join()

    assert released.status_code == 200
    assert statuses == [SIZE]


def test_patch_config(emulator: Emulator, admin: requests.Session) -> None:
    access = token(emulator)
    before = admin.get(f"{emulator.admin_url}/config").json()

    patched = admin.patch(
        f"{emulator.admin_url}/config",
        json={"range_supported": False, "bandwidth_bytes_per_s": 5e6, "latency_s": 0},
    )
    ranged = client(emulator).get(
        product_url(emulator, S2), headers={**bearer(access), "Range": "bytes=1-"}
    )
    admin.patch(
        f"{emulator.admin_url}/config",
        json={"range_supported": True, "bandwidth_bytes_per_s": None},
    )

    assert before["range_supported"] is True
    assert patched.json()["range_supported"] is False
    assert patched.json()["bandwidth_bytes_per_s"] == 5e6
    assert ranged.status_code == 200
    assert emulator.config.range_supported is True
    assert emulator.config.bandwidth_bytes_per_s is None
    inexact = admin.patch(f"{emulator.admin_url}/config", json={"count_offset": -3})
    admin.patch(f"{emulator.admin_url}/config", json={"count_offset": 0})
    assert inexact.json()["count_offset"] == -3


def test_patch_the_unconfirmed_behaviours_of_nodes_zip_and_stac(
    emulator: Emulator, admin: requests.Session
) -> None:
    changes = {
        "compressed_location": "no-eviction-date",
        "compressed_expired_status": 410,
        "node_range_supported": False,
        "nodes_count_as_streams": False,
        "stac_requests_per_s": None,
        "stac_malformed_metadata_checksums": False,
        "quicklook_failure_share": 0.25,
    }
    before = admin.get(f"{emulator.admin_url}/config").json()
    try:
        patched = admin.patch(f"{emulator.admin_url}/config", json=changes).json()
        live = {name: getattr(emulator.config, name) for name in changes}
    finally:
        admin.patch(f"{emulator.admin_url}/config", json={name: before[name] for name in changes})

    assert {name: patched[name] for name in changes} == changes == live
    assert before["compressed_location"] == "full" and before["stac_requests_per_s"] == 5.0


@pytest.mark.parametrize(
    "body",
    [
        {"tls": False},
        {"max_concurrent_downloads": "4"},
        {"range_supported": 1},
        {"latency_s": -1},
        {"count_offset": 1.5},
        {"count_offset": True},
        {"session_limit_answer": "xml"},
        {"compressed_location": "sometimes"},
        {"now": "2026-01-01"},
    ],
)
def test_patch_config_rejects_fixed_or_ill_typed_fields(
    emulator: Emulator, admin: requests.Session, body: dict[str, object]
) -> None:
    assert admin.patch(f"{emulator.admin_url}/config", json=body).status_code == 400


def test_expire_tokens_and_end_sessions(emulator: Emulator, admin: requests.Session) -> None:
    grant = login(emulator).json()

    expired = admin.post(f"{emulator.admin_url}/expire-tokens", json={"user": DEMO_USERNAME})
    ended = admin.post(f"{emulator.admin_url}/end-sessions")
    download = client(emulator).get(
        product_url(emulator, S2), headers=bearer(grant["access_token"])
    )
    refreshed = client(emulator).post(
        emulator.token_url,
        data={
            "client_id": "cdse-public",
            "grant_type": "refresh_token",
            "refresh_token": grant["refresh_token"],
        },
    )

    assert expired.json()["expired"] >= 1
    assert ended.json()["ended"] >= 1
    assert download.json()["code"] == "DAT-ZIP-109"
    assert refreshed.status_code == 400


def test_unknown_routes(emulator: Emulator, admin: requests.Session) -> None:
    assert admin.get(f"{emulator.admin_url}/nothing").status_code == 404
    assert admin.put(f"{emulator.admin_url}/stats").status_code == 405


def test_admin_answers_loopback_only(emulator: Emulator) -> None:
    app = AdminApp(
        config=emulator.config,
        faults=emulator.faults,
        stats=emulator.stats,
        identity=emulator.identity,
    )

    remote = app.handle(Request("GET", "/_emulator/stats", client="192.0.2.7:5000"))
    local = app.handle(Request("GET", "/_emulator/stats", client="::1:5000"))

    assert remote.status == 403
    assert local.status == 200
