"""The token manager: one login, refreshed tokens, a new login only when it must.

CDSE counts every password login as a session and refuses an account's 101st active
session (spec §2.4); tools that log in per product get banned. So:

* one password grant per refresh window (CDSE: 60 minutes);
* the access token (CDSE: 10 minutes) is refreshed shortly before it expires, with the
  refresh grant, by whichever worker needs it first, under one lock: the others wait
  and reuse the result;
* a server that says a token expired early (401 ``DAT-ZIP-109``) makes the next caller
  refresh, once, not every worker;
* wrong credentials fail at once with one clear error: no retry storm.

Tokens are registered with :mod:`sentinel_fetch.redact` and never logged or put in URLs.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import logging
import struct
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace

from sentinel_fetch.errors import (
    AuthError,
    InvalidCredentialsError,
    ProxyError,
    ServiceError,
    SessionLimitError,
)
from sentinel_fetch.http import Transport, error_from_response, read_json
from sentinel_fetch.redact import register_secret
from sentinel_fetch.retry import Backoff, RetryPolicy, Sleep, retrying
from sentinel_fetch.settings import Endpoints
from sentinel_fetch.untrusted import UntrustedJSONError

__all__ = ["CLIENT_ID", "Credentials", "TokenManager", "totp_code"]

log = logging.getLogger("sentinel_fetch.auth")

#: The public Keycloak client every CDSE download tool uses (spec §2.1).
CLIENT_ID = "cdse-public"
# A token answer is about 4 kB (two JWTs and a few fields).
_MAX_TOKEN_ANSWER_BYTES = 1_000_000


def totp_code(secret_base32: str, *, at: float | None = None, step_s: int = 30) -> str:
    """The current 6-digit TOTP code (RFC 6238) for a base32 secret.

    Lets an account with two-factor authentication log in again unattended after the
    60-minute refresh window, which a one-time code typed at start cannot.

    Example:
        >>> totp_code("GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ", at=59)
        '287082'
    """
    key = base64.b32decode(secret_base32.replace(" ", "").upper() + "=" * (-len(secret_base32) % 8))
    counter = int((time.time() if at is None else at) // step_s)
    digest = hmac.new(key, struct.pack(">Q", counter), hashlib.sha1).digest()
    offset = digest[-1] & 0x0F
    value = struct.unpack(">I", digest[offset : offset + 4])[0] & 0x7FFFFFFF
    return f"{value % 1_000_000:06d}"


@dataclass(frozen=True)
class Credentials:
    """A CDSE account. The password never appears in ``repr``.

    Attributes:
        username: the account e-mail.
        password: the account password.
        totp: a one-time 2FA code typed by the user (usable once, for the first login).
        totp_secret: the base32 2FA secret, to generate codes for every login.
        source: where these came from (``environment``, ``netrc``, ``keyring``...),
            shown in messages so users know which credentials were rejected.
    """

    username: str
    password: str = field(repr=False)
    totp: str | None = field(default=None, repr=False)
    totp_secret: str | None = field(default=None, repr=False)
    source: str = "arguments"

    def __post_init__(self) -> None:
        register_secret(self.password)
        register_secret(self.totp_secret)


class TokenManager:
    """Hands out valid access tokens to any number of threads.

    Args:
        transport: the network road (identity requests go through it, without bearer).
        endpoints: where the token endpoint is.
        credentials: the account, or a callable producing it on first use (so a
            prompt only happens when a token is really needed).
        refresh_margin_s: refresh when less than this remains, capped at 20 % of the
            token's lifetime so short-lived test tokens behave like real ones.
        max_attempts: tries for transient identity-server failures (5xx, 429, resets);
            by default the settings' ``max_attempts``.
        backoff: waits between those tries; by default the settings' backoff, so no
            wait exceeds ``backoff_max_s``, whatever a ``Retry-After`` asks.
        clock: monotonic clock (tests may substitute it).
        sleep: how to wait between tries, instead of waiting on the stop event (tests).
        stop: setting it ends a wait between tries at once
            (:class:`~sentinel_fetch.errors.StoppedError`); :meth:`access_token` may
            be given another for one call.
    """

    def __init__(
        self,
        transport: Transport,
        endpoints: Endpoints,
        credentials: Credentials | Callable[[], Credentials],
        *,
        refresh_margin_s: float = 60.0,
        max_attempts: int | None = None,
        backoff: Backoff | None = None,
        clock: Callable[[], float] = time.monotonic,
        sleep: Sleep | None = None,
        stop: threading.Event | None = None,
    ) -> None:
        self._transport = transport
        self._endpoints = endpoints
        self._credentials_source = credentials
        self._credentials: Credentials | None = (
            credentials if isinstance(credentials, Credentials) else None
        )
        self._margin_s = refresh_margin_s
        policy = RetryPolicy.from_limits(transport.settings.limits)
        if max_attempts is not None:
            policy = replace(policy, max_attempts=max_attempts)
        self._policy = replace(policy, backoff=backoff) if backoff is not None else policy
        self._clock = clock
        self._sleep = sleep
        self._stop = stop
        self._lock = threading.Lock()
        self._access_token: str | None = None
        self._access_expiry = 0.0
        self._access_margin = 0.0
        self._refresh_token: str | None = None
        self._refresh_expiry = 0.0
        self._refresh_margin = 0.0
        self._one_time_code_used = False
        # A definite refusal (wrong password, session limit) is remembered: the other
        # workers get the same error without asking again, so a batch never turns a
        # wrong password into a burst of failed logins.
        self._refusal: AuthError | ProxyError | None = None
        #: Password grants made (each one is a CDSE session).
        self.logins = 0
        #: Refresh grants made.
        self.refreshes = 0

    @property
    def username(self) -> str:
        """The account name (resolving credentials if needed)."""
        return self._resolve_credentials().username

    @property
    def credentials(self) -> Credentials:
        """The account (resolving it if needed: a prompt may run)."""
        return self._resolve_credentials()

    def access_token(self, *, stop: threading.Event | None = None) -> str:
        """A token valid for at least the refresh margin; refreshes or logs in if needed.

        Args:
            stop: ends a wait between tries at once, for this call (a download batch
                passes its own); without it, the manager's.

        Raises:
            StoppedError: the stop event was set while waiting to try again.
        """
        with self._lock:
            return self._access_token_locked(stop or self._stop)

    def _access_token_locked(self, stop: threading.Event | None) -> str:
        if self._refusal is not None:
            raise self._refusal
        now = self._clock()
        if self._access_token and now < self._access_expiry - self._access_margin:
            return self._access_token
        if self._refresh_token and now < self._refresh_expiry - self._refresh_margin:
            try:
                self._grant_refresh(stop)
                assert self._access_token is not None
                return self._access_token
            except _RefreshRejectedError:
                log.info("refresh token no longer accepted; logging in again")
        try:
            self._grant_password(stop)
        except (InvalidCredentialsError, SessionLimitError, ProxyError) as exc:
            # A proxy that is not running or refuses us is a setting to fix: every
            # later login through it would fail the same way.
            self._refusal = exc
            raise
        assert self._access_token is not None
        return self._access_token

    def invalidate(self, token: str) -> None:
        """The server called ``token`` expired: the next caller gets a fresh one.

        Only acts if ``token`` is still the current one, so four workers reporting the
        same expiry cause one refresh, not four.
        """
        with self._lock:
            if token == self._access_token:
                self._access_expiry = 0.0

    def end_session(self) -> None:
        """Forget both tokens, forcing a password login on next use."""
        with self._lock:
            self._access_token = self._refresh_token = None
            self._access_expiry = self._refresh_expiry = 0.0

    # -- grants -------------------------------------------------------------------------

    def _resolve_credentials(self) -> Credentials:
        if self._credentials is None:
            source = self._credentials_source
            assert callable(source)
            self._credentials = source()
        return self._credentials

    def _grant_password(self, stop: threading.Event | None) -> None:
        credentials = self._resolve_credentials()
        form = {
            "client_id": CLIENT_ID,
            "grant_type": "password",
            "username": credentials.username,
            "password": credentials.password,
        }
        # A code typed for this run is used for the first login; the configured secret
        # generates codes for the logins after it (one per refresh window).
        if credentials.totp and not self._one_time_code_used:
            form["totp"] = credentials.totp
        elif credentials.totp_secret:
            form["totp"] = totp_code(credentials.totp_secret)
        elif credentials.totp:
            raise AuthError(
                f"the 2FA account {credentials.username} must log in again (the 60-minute "
                "refresh window closed) but a one-time TOTP code cannot be reused; "
                "configure totp_secret for unattended runs"
            )
        payload = self._post(form, grant="password", stop=stop)
        self._one_time_code_used = bool(credentials.totp)
        self.logins += 1
        self._store(payload)
        log.info(
            "logged in to CDSE as %s (session %d of this run)", credentials.username, self.logins
        )

    def _grant_refresh(self, stop: threading.Event | None) -> None:
        assert self._refresh_token is not None
        form = {
            "client_id": CLIENT_ID,
            "grant_type": "refresh_token",
            "refresh_token": self._refresh_token,
        }
        payload = self._post(form, grant="refresh", stop=stop)
        self.refreshes += 1
        self._store(payload)
        log.debug("access token refreshed")

    def _store(self, payload: dict[str, object]) -> None:
        now = self._clock()
        access = payload.get("access_token")
        if not isinstance(access, str) or not access:
            raise AuthError("the identity server answered without an access token")
        register_secret(access, rotating=True)
        expires_in = _seconds(payload.get("expires_in"), default=600.0)
        self._access_token = access
        self._access_expiry = now + expires_in
        self._access_margin = min(self._margin_s, 0.2 * expires_in)
        refresh = payload.get("refresh_token")
        if isinstance(refresh, str) and refresh:
            register_secret(refresh, rotating=True)
            refresh_in = _seconds(payload.get("refresh_expires_in"), default=3600.0)
            self._refresh_token = refresh
            self._refresh_expiry = now + refresh_in
            self._refresh_margin = min(self._margin_s, 0.2 * refresh_in)

    def _post(
        self, form: dict[str, str], *, grant: str, stop: threading.Event | None
    ) -> dict[str, object]:
        def attempt() -> dict[str, object]:
            try:
                response = self._transport.request(
                    "POST", self._endpoints.token_url, data=form, stream=True
                )
            except ServiceError as exc:  # connection-level failure
                if not exc.transient:  # a certificate that does not verify stays that way
                    raise AuthError(f"could not obtain a CDSE token: {exc}") from None
                raise
            with response:
                if response.status_code == 200:
                    try:
                        payload = read_json(response, max_bytes=_MAX_TOKEN_ANSWER_BYTES)
                    except UntrustedJSONError as flaw:
                        raise AuthError(
                            f"the identity server sent an unreadable token answer: {flaw}"
                        ) from None
                    if not isinstance(payload, dict):
                        raise AuthError("the identity server sent an unreadable token answer")
                    return payload
                error = error_from_response(response)
            self._raise_for_grant_error(error, grant)
            raise error

        return retrying(
            attempt,
            self._policy,
            give_up=lambda error, attempts: AuthError(f"could not obtain a CDSE token: {error}"),
            what="identity server",
            logger=log,
            stop=stop,
            sleep=self._sleep,
        )

    def _raise_for_grant_error(self, error: ServiceError, grant: str) -> None:
        """Turn a definite refusal into the right error; return for transient ones."""
        if error.transient:
            return
        text = str(error).lower()
        if grant == "refresh" and error.status in (400, 401):
            raise _RefreshRejectedError(str(error))
        # Keycloak refuses a login past the session limit with 401 sessionLimitExceeded
        # or, in other versions, with a 403 HTML page; CDSE's own answer was never seen
        # (spec §2.3), so any 403 from the token endpoint is read as this (or as a
        # temporary ban, which calls for the same: stop logging in).
        session_words = "session" in text and any(
            word in text for word in ("maximum", "too many", "limit")
        )
        if error.status == 403 or session_words:
            raise SessionLimitError(
                "CDSE refuses new logins: probably too many active sessions for this "
                "account (100 max) or a temporary ban; stop logging in, and wait up to an "
                f"hour for old sessions to end ({error})"
            )
        if error.status == 401 or error.code == "invalid_grant":
            credentials = self._resolve_credentials()
            # CDSE answers a missing or expired TOTP code exactly like a wrong password
            # (spec §2.3): both causes are named, whatever the body says.
            if credentials.totp or credentials.totp_secret:
                second = "or the TOTP code is wrong or expired (a code typed with --totp "
                second += "lasts seconds; configure totp_secret for long or unattended runs)"
            else:
                second = "or, if the account uses two-factor authentication, no TOTP code "
                second += "was given (pass --totp, or configure totp_secret)"
            raise InvalidCredentialsError(
                f"CDSE rejected the username or password for {credentials.username} "
                f"(from {credentials.source}), {second}"
            )
        raise AuthError(f"the identity server refused the {grant} request: {error}")


class _RefreshRejectedError(Exception):
    """The refresh token is no longer accepted; a password login follows."""


def _seconds(value: object, *, default: float) -> float:
    if isinstance(value, (int, float)) and value > 0:
        return float(value)
    return default
