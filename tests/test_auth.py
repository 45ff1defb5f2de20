"""The token manager against the emulator's identity host (real sockets, HTTPS)."""

from __future__ import annotations

import functools
import threading
from collections.abc import Iterator

import pytest
import requests

from sentinel_fetch.auth import Credentials, TokenManager
from sentinel_fetch.emulator import DEMO_USERNAME, BodyFault, Emulator, SlowHeadFault, StatusFault
from sentinel_fetch.errors import (
    AuthError,
    InvalidCredentialsError,
    SessionLimitError,
    StoppedError,
)
from sentinel_fetch.http import Transport
from sentinel_fetch.settings import Settings
from tests.conftest import with_limits
from tests.interrupting import raised_when_stopped


def _tokens(settings: Settings, credentials: Credentials) -> TokenManager:
    return TokenManager(Transport(settings), settings.endpoints, credentials)


def _token_works(cdse: Emulator, settings: Settings, token: str) -> bool:
    """Whether the download host accepts the token (HEAD of a real product)."""
    product_id = _any_product(cdse)
    response = requests.head(
        f"{cdse.download_url}/Products({product_id})/$value",
        headers={"Authorization": f"Bearer {token}"},
        verify=settings.ca_bundle,
        timeout=10,
    )
    return response.status_code == 200


@functools.cache
def _any_product(cdse: Emulator) -> str:
    return cdse.match_ids("Collection/Name eq 'SENTINEL-2' and contains(Name,'_T32TPS_')")[0]


def test_many_threads_share_one_login(
    cdse: Emulator, settings: Settings, credentials: Credentials
) -> None:
    tokens = _tokens(settings, credentials)
    seen: list[str] = []
    barrier = threading.Barrier(8)

    def work() -> None:
        barrier.wait()
        seen.append(tokens.access_token())

    threads = [threading.Thread(target=work) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(set(seen)) == 1
    assert tokens.logins == 1
    assert cdse.stats.logins.get(DEMO_USERNAME) == 1
    assert _token_works(cdse, settings, seen[0])


class _ManualClock:
    """A clock both the client and the emulator read, moved only by the test."""

    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


def test_refresh_before_expiry_then_login_when_the_window_closes(
    cdse: Emulator, settings: Settings, credentials: Credentials
) -> None:
    """4.2 s of token use in 0.1 s steps, on a clock that moves only when told to."""
    cdse.config.access_token_lifetime_s = 1.0
    cdse.config.refresh_token_lifetime_s = 3.0
    clock = _ManualClock()
    tokens = TokenManager(Transport(settings), settings.endpoints, credentials, clock=clock)
    _any_product(cdse)
    with cdse.identity.clock_for_test(clock):
        for _ in range(42):
            token = tokens.access_token()
            assert _token_works(cdse, settings, token), "a token handed out must be valid"
            clock.now += 0.1
    # Refreshed within each 3 s window, one new login when the first window closed.
    assert tokens.refreshes >= 3
    assert tokens.logins == 2
    assert cdse.stats.logins.get(DEMO_USERNAME) == 2


def test_server_side_expiry_causes_one_refresh(
    cdse: Emulator, settings: Settings, credentials: Credentials
) -> None:
    tokens = _tokens(settings, credentials)
    old = tokens.access_token()
    cdse.expire_access_tokens()
    for _ in range(4):  # four workers report the same expired token
        tokens.invalidate(old)
    new = tokens.access_token()
    assert new != old
    assert tokens.refreshes == 1
    assert tokens.logins == 1
    assert _token_works(cdse, settings, new)


def test_ended_session_means_a_new_login(
    cdse: Emulator, settings: Settings, credentials: Credentials
) -> None:
    tokens = _tokens(settings, credentials)
    old = tokens.access_token()
    cdse.end_sessions()
    tokens.invalidate(old)
    assert _token_works(cdse, settings, tokens.access_token())
    assert tokens.logins == 2


def test_wrong_password_is_one_request_and_one_clear_error(
    cdse: Emulator, settings: Settings
) -> None:
    tokens = _tokens(settings, Credentials(DEMO_USERNAME, "not-the-password", source="test"))
    with pytest.raises(InvalidCredentialsError) as info:
        tokens.access_token()
    message = str(info.value)
    assert DEMO_USERNAME in message and "\n" not in message
    assert "not-the-password" not in message
    assert info.value.exit_code == 2
    assert cdse.stats.failed_logins.get(DEMO_USERNAME) == 1


@pytest.mark.parametrize("answer", ["json", "html"])
def test_session_limit_is_reported_once_whatever_its_shape(
    cdse: Emulator, settings: Settings, credentials: Credentials, answer: str
) -> None:
    cdse.config.max_sessions = 2
    cdse.config.session_limit_answer = answer
    _tokens(settings, credentials).access_token()
    _tokens(settings, credentials).access_token()
    refused = _tokens(settings, credentials)
    for _ in range(3):  # three workers asking: one request, no retry storm
        with pytest.raises(SessionLimitError, match="too many active sessions") as info:
            refused.access_token()
    assert "temporary ban" in str(info.value)
    assert cdse.stats.failed_logins.get(DEMO_USERNAME) == 1


def test_any_403_from_the_token_endpoint_is_a_probable_session_limit(
    cdse: Emulator, settings: Settings, credentials: Credentials
) -> None:
    cdse.faults.add(StatusFault(host="identity", status=403, times=-1))
    with pytest.raises(SessionLimitError, match="too many active sessions"):
        _patient_tokens(settings, credentials).access_token()
    assert cdse.stats.requests("identity", 403) == 1


TWO_FACTOR = "twofa@example.com"


@pytest.fixture
def two_factor_account(cdse: Emulator) -> Iterator[str]:
    secret = "JBSWY3DPEHPK3PXP"
    cdse.config.users[TWO_FACTOR] = "pw-2fa-account"
    cdse.config.totp_secrets[TWO_FACTOR] = secret
    yield secret
    cdse.config.users.pop(TWO_FACTOR)
    cdse.config.totp_secrets.pop(TWO_FACTOR)


@pytest.mark.parametrize(
    ("password", "totp"),
    [("wrong-password", None), ("pw-2fa-account", None), ("pw-2fa-account", "000000")],
    ids=["wrong password", "2FA without a code", "2FA with a wrong code"],
)
def test_every_refused_login_mentions_the_totp_code(
    cdse: Emulator, settings: Settings, two_factor_account: str, password: str, totp: str | None
) -> None:
    # CDSE answers all three alike (spec §2.3): the message must cover both causes.
    tokens = _tokens(settings, Credentials(TWO_FACTOR, password, totp=totp, source="test"))
    with pytest.raises(InvalidCredentialsError) as info:
        tokens.access_token()
    message = str(info.value)
    assert "rejected the username or password" in message
    assert "--totp" in message and "totp_secret" in message
    assert password not in message and (totp is None or totp not in message)


def test_two_factor_account(cdse: Emulator, settings: Settings) -> None:
    secret = "JBSWY3DPEHPK3PXP"
    cdse.config.users["twofa@example.com"] = "pw-2fa-account"
    cdse.config.totp_secrets["twofa@example.com"] = secret
    try:
        without = _tokens(settings, Credentials("twofa@example.com", "pw-2fa-account"))
        with pytest.raises(InvalidCredentialsError):
            without.access_token()
        with_secret = _tokens(
            settings, Credentials("twofa@example.com", "pw-2fa-account", totp_secret=secret)
        )
        assert _token_works(cdse, settings, with_secret.access_token())
    finally:
        cdse.config.users.pop("twofa@example.com")
        cdse.config.totp_secrets.pop("twofa@example.com")


def test_transient_identity_errors_are_retried(
    cdse: Emulator, settings: Settings, credentials: Credentials
) -> None:
    from sentinel_fetch.emulator import StatusFault

    cdse.faults.add(StatusFault(host="identity", status=503, times=2))
    tokens = TokenManager(
        Transport(settings), settings.endpoints, credentials, sleep=lambda seconds: None
    )
    assert _token_works(cdse, settings, tokens.access_token())
    assert cdse.stats.requests("identity", 503) == 2


def _patient_tokens(settings: Settings, credentials: Credentials) -> TokenManager:
    return TokenManager(
        Transport(settings), settings.endpoints, credentials, sleep=lambda seconds: None
    )


def test_a_deeply_nested_token_answer_is_one_auth_error(
    cdse: Emulator, settings: Settings, credentials: Credentials
) -> None:
    nested = (("[", 100_000), ("]", 100_000))
    cdse.faults.add(BodyFault(host="identity", parts=nested, times=-1))

    with pytest.raises(AuthError, match="nested deeper than"):
        _patient_tokens(settings, credentials).access_token()


def test_a_token_answer_of_megabytes_is_refused_while_it_arrives(
    cdse: Emulator, settings: Settings, credentials: Credentials
) -> None:
    # No Content-Length: only counting the bytes as they arrive can stop it.
    parts = (('{"access_token":"', 1), ("a", 3_000_000), ('","expires_in":600}', 1))
    cdse.faults.add(BodyFault(host="identity", parts=parts, close_delimited=True, times=-1))

    with pytest.raises(AuthError, match="larger than"):
        _patient_tokens(settings, credentials).access_token()


def test_a_deeply_nested_refusal_is_still_a_refusal(
    cdse: Emulator, settings: Settings, credentials: Credentials
) -> None:
    nested = (("[", 30_000), ("]", 30_000))
    cdse.faults.add(BodyFault(host="identity", status=401, parts=nested))

    with pytest.raises(InvalidCredentialsError):
        _patient_tokens(settings, credentials).access_token()


def test_token_waits_never_exceed_the_configured_backoff_maximum(
    cdse: Emulator, settings: Settings, credentials: Credentials
) -> None:
    """A Retry-After of ten minutes waits backoff_max_s (0.4 s here), not a fixed cap."""
    cdse.faults.add(StatusFault(host="identity", status=503, retry_after_s=600, times=2))
    waits: list[float] = []
    tokens = TokenManager(Transport(settings), settings.endpoints, credentials, sleep=waits.append)
    assert _token_works(cdse, settings, tokens.access_token())
    assert len(waits) == 2
    assert all(wait <= settings.limits.backoff_max_s for wait in waits), waits


def test_token_requests_stop_after_the_configured_attempts(
    cdse: Emulator, settings: Settings, credentials: Credentials
) -> None:
    cdse.faults.add(StatusFault(host="identity", status=503, times=-1))
    bounded = with_limits(settings, max_attempts=3)
    tokens = TokenManager(
        Transport(bounded), bounded.endpoints, credentials, sleep=lambda seconds: None
    )
    with pytest.raises(AuthError, match="could not obtain a CDSE token"):
        tokens.access_token()
    assert cdse.stats.requests("identity", 503) == 3


@pytest.mark.parametrize("given_to", ["manager", "call"])
def test_a_stop_event_ends_a_wait_between_token_requests(
    cdse: Emulator, settings: Settings, credentials: Credentials, given_to: str
) -> None:
    cdse.faults.add(StatusFault(host="identity", status=503, retry_after_s=600, times=-1))
    patient = with_limits(settings, backoff_base_s=600.0, backoff_max_s=600.0)
    stop = threading.Event()
    tokens = TokenManager(
        Transport(patient),
        patient.endpoints,
        credentials,
        stop=stop if given_to == "manager" else None,
    )
    call_stop = stop if given_to == "call" else None
    outcome = raised_when_stopped(
        lambda: tokens.access_token(stop=call_stop), stop, cdse, "identity"
    )
    assert len(outcome) == 1 and isinstance(outcome[0], StoppedError), outcome
    assert cdse.stats.requests("identity", 503) == 1


def test_a_login_answer_whose_head_trickles_ends_at_answer_timeout_s(
    cdse: Emulator, settings: Settings, credentials: Credentials
) -> None:
    """Every byte of the head arrives within the read timeout; the whole never does."""
    cdse.faults.add(SlowHeadFault(host="identity", interval_s=0.05, times=-1))
    settings = with_limits(settings, answer_timeout_s=0.5)

    with pytest.raises(AuthError, match="did not arrive within answer_timeout_s") as raised:
        _patient_tokens(settings, credentials).access_token()
    assert "\n" not in str(raised.value)
