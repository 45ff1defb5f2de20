"""The identity host: grants, errors, TOTP, sessions and token lifetimes (spec §2)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jwt
import pytest

from sentinel_fetch.emulator import DEMO_USERNAME, Emulator, totp_code

from .test_server_support import S2, bearer, client, login, product_url, running, token

SECRET = "JBSWY3DPEHPK3PXP"
TWO_FACTOR = "twofactor@sentinel-fetch.test"


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("identity")


@pytest.fixture(scope="module")
def emulator(data_dir: Path) -> Iterator[Emulator]:
    with running(data_dir) as emulator:
        emulator.config.users[TWO_FACTOR] = "second-factor"
        emulator.config.totp_secrets[TWO_FACTOR] = SECRET
        yield emulator


def refresh(
    emulator: Emulator, refresh_token: str, client_id: str = "cdse-public"
) -> dict[str, Any]:
    response = client(emulator).post(
        emulator.token_url,
        data={
            "client_id": client_id,
            "grant_type": "refresh_token",
            "refresh_token": refresh_token,
        },
        timeout=10,
    )
    return {"status": response.status_code, **response.json()}


def test_password_grant_returns_the_cdse_fields(emulator: Emulator) -> None:
    response = login(emulator)

    assert response.status_code == 200
    body = response.json()
    assert list(body) == [
        "access_token",
        "expires_in",
        "refresh_expires_in",
        "refresh_token",
        "token_type",
        "not-before-policy",
        "session_state",
        "scope",
    ]
    assert body["expires_in"] == 600
    assert body["refresh_expires_in"] == 3600
    assert body["token_type"] == "Bearer"
    assert body["not-before-policy"] == 0
    assert "AUDIENCE_PUBLIC" in body["scope"]


def test_access_token_is_an_rs256_jwt_verifiable_with_the_jwks(emulator: Emulator) -> None:
    session = client(emulator)
    discovery = session.get(f"{emulator.identity_url}/.well-known/openid-configuration").json()
    keys = session.get(discovery["jwks_uri"]).json()["keys"]
    access = login(emulator).json()["access_token"]

    header = jwt.get_unverified_header(access)
    key = next(k for k in keys if k["kid"] == header["kid"])
    claims = jwt.decode(
        access,
        jwt.PyJWK(key).key,
        algorithms=discovery["id_token_signing_alg_values_supported"],
        audience="CLOUDFERRO_PUBLIC",
        issuer=discovery["issuer"],
    )

    assert header["alg"] == "RS256"
    assert discovery["token_endpoint"] == emulator.token_url
    assert claims["azp"] == "cdse-public"
    assert claims["aud"] == ["CLOUDFERRO_PUBLIC", "account"]
    assert claims["preferred_username"] == DEMO_USERNAME
    assert claims["sid"] == claims["session_state"]
    assert claims["exp"] - claims["iat"] == 600
    assert "copernicus-general" in claims["realm_access"]["roles"]


def test_refresh_grant_issues_a_new_access_token(emulator: Emulator) -> None:
    first = login(emulator).json()
    before = emulator.stats.refreshes.get(DEMO_USERNAME, 0)

    again = refresh(emulator, first["refresh_token"])

    assert again["status"] == 200
    assert again["access_token"] != first["access_token"]
    assert again["session_state"] == first["session_state"]
    assert emulator.stats.refreshes[DEMO_USERNAME] == before + 1
    # Keycloak keeps old refresh tokens usable within the window (spec §2.2).
    assert refresh(emulator, first["refresh_token"])["status"] == 200


@pytest.mark.parametrize(
    ("form", "status", "error", "description"),
    [
        (
            {"username": DEMO_USERNAME, "password": "wrong"},
            401,
            "invalid_grant",
            "Invalid user credentials",
        ),
        (
            {"username": "nobody@example.org", "password": "x"},
            401,
            "invalid_grant",
            "Invalid user credentials",
        ),
        (
            {"client_id": "sh-12345", "username": DEMO_USERNAME},
            401,
            "invalid_client",
            "Invalid client or Invalid client credentials",
        ),
        ({"client_id": ""}, 401, "invalid_client", "Invalid client or Invalid client credentials"),
        (
            {"grant_type": "client_credentials"},
            400,
            "unsupported_grant_type",
            "Unsupported grant_type",
        ),
        ({"grant_type": ""}, 400, "invalid_request", "Missing form parameter: grant_type"),
    ],
)
def test_token_endpoint_errors(
    emulator: Emulator, form: dict[str, str], status: int, error: str, description: str
) -> None:
    data = {"client_id": "cdse-public", "grant_type": "password", "password": "demo-password"}
    data.update(form)

    response = client(emulator).post(emulator.token_url, data=data, timeout=10)

    assert response.status_code == status
    assert response.json() == {"error": error, "error_description": description}


def test_failed_logins_are_counted(emulator: Emulator) -> None:
    before = emulator.stats.failed_logins.get(DEMO_USERNAME, 0)

    login(emulator, password="wrong")

    assert emulator.stats.failed_logins[DEMO_USERNAME] == before + 1


@pytest.mark.parametrize("stale", ["not-a-token", "eyJhbGciOiJIUzUxMiJ9.e30.c2ln"])
def test_unknown_refresh_token_is_not_active(emulator: Emulator, stale: str) -> None:
    assert refresh(emulator, stale) == {
        "status": 400,
        "error": "invalid_grant",
        "error_description": "Token is not active",
    }


def test_two_factor_account_needs_a_valid_totp(emulator: Emulator) -> None:
    missing = login(emulator, username=TWO_FACTOR, password="second-factor")
    wrong = login(emulator, username=TWO_FACTOR, password="second-factor", totp="000000")
    right = login(emulator, username=TWO_FACTOR, password="second-factor", totp=totp_code(SECRET))
    previous_step = login(
        emulator,
        username=TWO_FACTOR,
        password="second-factor",
        totp=totp_code(SECRET, time.time() - 30),
    )
    too_old = login(
        emulator,
        username=TWO_FACTOR,
        password="second-factor",
        totp=totp_code(SECRET, time.time() - 95),
    )

    wrong_password = login(emulator, username=TWO_FACTOR, password="x", totp=totp_code(SECRET))
    # Keycloak answers a missing or wrong code exactly like a wrong password (spec §2.3).
    for refused in (missing, wrong, too_old):
        assert refused.status_code == 401
        assert refused.json() == wrong_password.json()
        assert refused.json() == {
            "error": "invalid_grant",
            "error_description": "Invalid user credentials",
        }
    assert right.status_code == 200
    assert previous_step.status_code == 200


def test_totp_code_matches_rfc_6238() -> None:
    # RFC 6238 appendix B, SHA-1 secret "12345678901234567890", last 6 of the 8 digits.
    secret = "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ"
    assert totp_code(secret, 59) == "287082"
    assert totp_code(secret, 1111111109) == "081804"


def test_the_101st_session_is_refused(tmp_path: Path) -> None:
    with running(tmp_path) as emulator:
        session = client(emulator)
        statuses = [login(emulator, session).status_code for _ in range(100)]
        refused = login(emulator, session)
        emulator.config.session_limit_answer = "html"
        page = login(emulator, session)

        assert statuses == [200] * 100
        assert refused.status_code == 401
        assert refused.json() == {
            "error": "generic_authentication_error",
            "error_description": "sessionLimitExceeded",
        }
        assert page.status_code == 403
        assert page.headers["Content-Type"].startswith("text/html")
        assert "too many sessions" in page.text
        assert emulator.stats.active_sessions() == {DEMO_USERNAME: 100}
        assert emulator.stats.logins[DEMO_USERNAME] == 100

        emulator.end_sessions(DEMO_USERNAME)

        assert login(emulator, session).status_code == 200


def test_sessions_end_with_their_refresh_window_which_refresh_does_not_extend(
    tmp_path: Path,
) -> None:
    with running(tmp_path, refresh_token_lifetime_s=0.8, max_sessions=1) as emulator:
        first = login(emulator).json()
        assert first["refresh_expires_in"] == 0.8
        assert login(emulator).status_code == 401

        time.sleep(0.3)
        renewed = refresh(emulator, first["refresh_token"])
        assert renewed["status"] == 200
        assert 0 < renewed["refresh_expires_in"] < 0.6

        time.sleep(0.6)
        assert refresh(emulator, renewed["refresh_token"])["status"] == 400
        assert emulator.stats.active_sessions() == {}
        assert login(emulator).status_code == 200


def test_ended_sessions_refuse_refresh_but_access_tokens_stay_valid(emulator: Emulator) -> None:
    grant = login(emulator).json()

    ended = emulator.end_sessions(DEMO_USERNAME)

    assert ended >= 1
    assert refresh(emulator, grant["refresh_token"])["error_description"] == "Token is not active"
    response = client(emulator).head(
        product_url(emulator, S2), headers=bearer(grant["access_token"])
    )
    assert response.status_code == 200


def test_access_tokens_expire_after_their_lifetime(tmp_path: Path) -> None:
    with running(tmp_path, access_token_lifetime_s=0.4) as emulator:
        grant = login(emulator).json()
        session = client(emulator)
        url = product_url(emulator, S2)

        assert grant["expires_in"] == 0.4
        assert session.get(url, headers=bearer(grant["access_token"])).status_code == 200
        time.sleep(0.5)
        expired = session.get(url, headers=bearer(grant["access_token"]))

        assert expired.status_code == 401
        assert expired.json()["code"] == "DAT-ZIP-109"
        assert "expired" in expired.json()["message"]
        assert refresh(emulator, grant["refresh_token"])["status"] == 200


def test_expire_access_tokens_makes_every_token_stale(emulator: Emulator) -> None:
    access = token(emulator)

    assert emulator.expire_access_tokens() >= 1

    response = client(emulator).get(product_url(emulator, S2), headers=bearer(access))
    assert response.json()["code"] == "DAT-ZIP-109"


def test_logout_ends_the_session(emulator: Emulator) -> None:
    grant = login(emulator).json()

    response = client(emulator).post(
        f"{emulator.identity_url}/protocol/openid-connect/logout",
        data={"client_id": "cdse-public", "refresh_token": grant["refresh_token"]},
    )

    assert response.status_code == 204
    assert refresh(emulator, grant["refresh_token"])["status"] == 400


def test_token_endpoint_only_accepts_post(emulator: Emulator) -> None:
    assert client(emulator).get(emulator.token_url).status_code == 405
    assert client(emulator).get(f"{emulator.identity_url}/nowhere").status_code == 404


def test_sentinel_hub_client_tokens_are_refused_by_the_download_host(emulator: Emulator) -> None:
    emulator.config.oauth_clients["sh-0123"] = "hub-secret"
    form = {"grant_type": "client_credentials", "client_id": "sh-0123"}
    session = client(emulator)

    wrong = session.post(emulator.token_url, data={**form, "client_secret": "nope"})
    grant = session.post(emulator.token_url, data={**form, "client_secret": "hub-secret"}).json()
    download = session.get(product_url(emulator, S2), headers=bearer(grant["access_token"]))

    assert wrong.status_code == 401
    assert "refresh_token" not in grant
    assert (
        jwt.decode(grant["access_token"], options={"verify_signature": False})["azp"] == "sh-0123"
    )
    assert download.status_code == 401
    assert download.json()["code"] == "DAT-ZIP-609"
    assert download.json()["message"] == "Token audience not allowed"
