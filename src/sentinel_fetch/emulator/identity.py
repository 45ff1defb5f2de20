"""The identity host: CDSE's Keycloak realm ``CDSE`` as clients see it (spec §2).

Endpoints under ``/auth/realms/CDSE``: the token endpoint (password and refresh grants,
``client_id=cdse-public``, optional ``totp``), OIDC discovery, the JWKS, the realm's
public-key document and logout.

Access tokens are RS256 JWTs with a ``kid`` header and the claims of spec §2.2 (``aud``
contains ``CLOUDFERRO_PUBLIC``, ``azp`` is ``cdse-public``), so a client that validates
them against the JWKS like CDSETool does works unchanged. The server also keeps a table
token -> (user, session, expiry) that the download host checks, which is how tests expire
a token early or end a user's sessions.

Sessions follow CDSE's quota (spec §2.4, §6.1): every password grant opens one; its
refresh window closes ``refresh_token_lifetime_s`` after the login and refreshing does not
extend it (a new login is needed after the window, eodag#803); at ``max_sessions`` active
sessions a further login is refused (eodag#858).

Error bodies follow standard Keycloak [INFERRED except the 401 status of bad credentials,
spec §2.3]:

======================================  ======  ==========================================
case                                    status  body
======================================  ======  ==========================================
wrong password / unknown user           401     invalid_grant, "Invalid user credentials"
2FA account, TOTP missing or wrong      401     the same body, with no hint of 2FA
                                                (Keycloak's direct-grant OTP check,
                                                spec §2.3; eodag#1538)
unknown / expired / ended refresh       400     invalid_grant, "Token is not active"
bad or missing ``client_id``            401     invalid_client
grant type not supported                400     unsupported_grant_type
``max_sessions`` sessions already open  401     generic_authentication_error,
                                                "sessionLimitExceeded" (``json``), or
                                                403 and Keycloak's HTML error page
                                                (``html``): ``config.session_limit_answer``,
                                                CDSE's own answer is unknown (spec §2.3)
======================================  ======  ==========================================

Sentinel Hub OAuth clients listed in ``config.oauth_clients`` may use the
``client_credentials`` grant; their tokens lack the ``CLOUDFERRO_PUBLIC`` audience, which
the download host refuses with 401 DAT-ZIP-609 (spec §2.1).
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import hmac
import json
import os
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Literal
from urllib.parse import parse_qs

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from .config import EmulatorConfig
from .model import Request, Response
from .stats import Stats

__all__ = [
    "AUDIENCE",
    "CLIENT_ID",
    "REALM_PATH",
    "IdentityProvider",
    "TokenCheck",
    "bearer_token",
    "totp_code",
]

#: Path of the realm on the identity host (spec §1).
REALM_PATH = "/auth/realms/CDSE"
#: The public client every CDSE user logs in with (spec §2.1).
CLIENT_ID = "cdse-public"
#: Audience the download host requires (spec §2.2; eodag's ``allowed_audiences``).
AUDIENCE = "CLOUDFERRO_PUBLIC"
_SCOPE = "AUDIENCE_PUBLIC openid email profile user-context"
_TOTP_STEP_S = 30
_PRUNE_EVERY = 512


def totp_code(secret: str, at: float | None = None) -> str:
    """The RFC 6238 code (6 digits, 30 s step, HMAC-SHA1) for a base32 secret.

    >>> totp_code("GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ", at=59)
    '287082'
    """
    cleaned = secret.replace(" ", "").upper()
    key = base64.b32decode(cleaned + "=" * (-len(cleaned) % 8))
    counter = int((time.time() if at is None else at) // _TOTP_STEP_S)
    mac = hmac.new(key, counter.to_bytes(8, "big"), hashlib.sha1).digest()
    start = mac[-1] & 0x0F
    value = int.from_bytes(mac[start : start + 4], "big") & 0x7FFFFFFF
    return f"{value % 1_000_000:06d}"


def bearer_token(request: Request) -> str | None:
    """The access token of a request: ``Authorization: Bearer`` or ``?token=`` (spec §5.1)."""
    header = request.headers.get("authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() == "bearer" and value.strip():
        return value.strip()
    if "token=" in request.raw_query:
        values = parse_qs(request.raw_query).get("token")
        if values and values[0]:
            return values[0]
    return None


@dataclass(frozen=True)
class TokenCheck:
    """Outcome of checking an access token on the download host.

    Attributes:
        status: ``ok``; ``missing`` (no token); ``unknown`` (not issued here);
            ``expired``; ``audience`` (no ``CLOUDFERRO_PUBLIC`` in ``aud``).
        user: the token's account when known.
        expires_at: the token's expiry (``time.time()`` scale) when known.
    """

    status: Literal["ok", "missing", "unknown", "expired", "audience"]
    user: str | None = None
    expires_at: float = 0.0


@dataclass
class _Session:
    id: str
    user: str
    started: float
    ends_at: float
    ended: bool = False

    def active(self, now: float) -> bool:
        return not self.ended and now < self.ends_at


@dataclass
class _Access:
    user: str
    session_id: str
    expires_at: float
    audience: tuple[str, ...]


@lru_cache(maxsize=1)
def _signing_key() -> rsa.RSAPrivateKey:
    """One RSA key per process: generating it takes ~0.1 s, and tokens are still told apart
    by each emulator's token table and issuer."""
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


class IdentityProvider:
    """Keycloak stand-in: grants, sessions, token table, discovery and JWKS.

    Args:
        config: users, TOTP secrets, lifetimes and session limit (read per request).
        stats: login, refresh and failure counters.
        clock: wall clock (``time.time``), replaceable in tests.
    """

    def __init__(
        self, config: EmulatorConfig, stats: Stats, clock: Callable[[], float] = time.time
    ) -> None:
        self._config = config
        self._stats = stats
        self._clock = clock
        self._lock = threading.Lock()
        self._sessions: dict[str, _Session] = {}
        self._access: dict[str, _Access] = {}
        self._refresh: dict[str, str] = {}
        self._issued = 0
        self._key = _signing_key()
        public_der = self._key.public_key().public_bytes(
            encoding=serialization.Encoding.DER,
            format=serialization.PublicFormat.SubjectPublicKeyInfo,
        )
        self._public_der = public_der
        self.key_id = base64.urlsafe_b64encode(hashlib.sha256(public_der).digest()[:18]).decode()
        self._refresh_secret = os.urandom(64)
        self.issuer = f"http://localhost{REALM_PATH}"

    def set_base_url(self, base_url: str) -> None:
        """Where the host is reached (``scheme://host:port``); sets the token issuer."""
        self.issuer = base_url.rstrip("/") + REALM_PATH

    # HTTP ------------------------------------------------------------------------

    def handle(self, request: Request) -> Response:
        """Answer one request to the identity host."""
        if not request.path.startswith(REALM_PATH):
            return _not_found()
        route = request.path[len(REALM_PATH) :].rstrip("/")
        if route == "/protocol/openid-connect/token":
            if request.method != "POST":
                return _method_not_allowed()
            return self._token(_form(request))
        if route == "/protocol/openid-connect/logout" and request.method == "POST":
            return self._logout(_form(request))
        if request.method not in ("GET", "HEAD"):
            return _method_not_allowed()
        if route == "/.well-known/openid-configuration":
            return Response.json(200, self.discovery())
        if route == "/protocol/openid-connect/certs":
            return Response.json(200, self.jwks())
        if route == "":
            return Response.json(
                200,
                {
                    "realm": "CDSE",
                    "public_key": base64.b64encode(self._public_der).decode(),
                    "token-service": f"{self.issuer}/protocol/openid-connect",
                    "account-service": f"{self.issuer}/account",
                    "tokens-not-before": 0,
                },
            )
        return _not_found()

    def discovery(self) -> dict[str, Any]:
        """The OIDC discovery document (CDSETool resolves the token endpoint from it)."""
        base = f"{self.issuer}/protocol/openid-connect"
        return {
            "issuer": self.issuer,
            "authorization_endpoint": f"{base}/auth",
            "token_endpoint": f"{base}/token",
            "introspection_endpoint": f"{base}/token/introspect",
            "userinfo_endpoint": f"{base}/userinfo",
            "end_session_endpoint": f"{base}/logout",
            "jwks_uri": f"{base}/certs",
            "grant_types_supported": ["authorization_code", "refresh_token", "password"],
            "response_types_supported": ["code", "none", "id_token", "token"],
            "subject_types_supported": ["public", "pairwise"],
            "id_token_signing_alg_values_supported": ["RS256"],
            "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post"],
            "scopes_supported": ["openid", "email", "profile", "AUDIENCE_PUBLIC", "user-context"],
            "claims_supported": ["aud", "sub", "iss", "auth_time", "name", "email"],
        }

    def jwks(self) -> dict[str, Any]:
        """The realm's signing keys as a JWK set."""
        key: dict[str, Any] = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(self._key.public_key()))
        key.update({"kid": self.key_id, "use": "sig", "alg": "RS256"})
        return {"keys": [key]}

    # Grants ----------------------------------------------------------------------

    def _token(self, form: dict[str, str]) -> Response:
        client_id = form.get("client_id", "")
        if client_id in self._config.oauth_clients:
            return self._client_credentials(client_id, form)
        if client_id != CLIENT_ID:
            return _error(401, "invalid_client", "Invalid client or Invalid client credentials")
        grant = form.get("grant_type")
        if not grant:
            return _error(400, "invalid_request", "Missing form parameter: grant_type")
        if grant == "password":
            return self._password_grant(form)
        if grant == "refresh_token":
            return self._refresh_grant(form)
        return _error(400, "unsupported_grant_type", "Unsupported grant_type")

    def _password_grant(self, form: dict[str, str]) -> Response:
        given = form.get("username", "")
        user = self._canonical_user(given)
        password = self._config.users.get(user) if user is not None else None
        if (
            user is None
            or password is None
            or not hmac.compare_digest(password.encode(), form.get("password", "").encode())
        ):
            self._stats.record_failed_login(given)
            return _invalid_credentials()
        secret = self._config.totp_secrets.get(user)
        if secret is not None:
            code = form.get("totp", "")
            # Missing and wrong codes get the wrong password's answer: Keycloak says
            # nothing about 2FA, so a client must not rely on being told.
            if not code or not self._totp_ok(secret, code):
                self._stats.record_failed_login(user)
                return _invalid_credentials()
        now = self._clock()
        with self._lock:
            active = sum(1 for s in self._sessions.values() if s.user == user and s.active(now))
            if active >= self._config.max_sessions:
                refused = True
            else:
                refused = False
                session = _Session(
                    id=str(uuid.uuid4()),
                    user=user,
                    started=now,
                    ends_at=now + self._config.refresh_token_lifetime_s,
                )
                self._sessions[session.id] = session
        if refused:
            self._stats.record_failed_login(user)
            return self._session_limit_answer()
        self._stats.record_login(user)
        return self._grant(session, now)

    def _session_limit_answer(self) -> Response:
        """The refusal past ``max_sessions``, in the shape the configuration picks."""
        if self._config.session_limit_answer == "html":
            page = _SESSION_LIMIT_PAGE.encode()
            return Response(403, [("Content-Type", "text/html;charset=utf-8")], page)
        return _error(401, "generic_authentication_error", "sessionLimitExceeded")

    def _client_credentials(self, client_id: str, form: dict[str, str]) -> Response:
        """A Sentinel Hub client's token: valid JWT, but not for the download host.

        CDSE accepts these on the catalogue and refuses them on the zipper with 401
        DAT-ZIP-609 "Token audience not allowed" (spec §2.1). No user session is opened
        and no refresh token is issued (standard Keycloak client credentials [INFERRED]).
        """
        secret = self._config.oauth_clients[client_id]
        if not hmac.compare_digest(secret.encode(), form.get("client_secret", "").encode()):
            return _error(401, "invalid_client", "Invalid client or Invalid client credentials")
        if form.get("grant_type") != "client_credentials":
            return _error(400, "unsupported_grant_type", "Unsupported grant_type")
        now = self._clock()
        lifetime = self._config.access_token_lifetime_s
        user = f"service-account-{client_id}"
        issued = int(now)
        claims = {
            "exp": _numeric(issued + lifetime),
            "iat": issued,
            "jti": str(uuid.uuid4()),
            "iss": self.issuer,
            "aud": "account",
            "sub": str(uuid.uuid5(uuid.NAMESPACE_URL, f"cdse-client:{client_id}")),
            "typ": "Bearer",
            "azp": client_id,
            "scope": "email profile",
            "clientId": client_id,
            "preferred_username": user,
        }
        access_token = jwt.encode(
            claims, self._key, algorithm="RS256", headers={"kid": self.key_id}
        )
        with self._lock:
            self._access[access_token] = _Access(user, "", now + lifetime, ("account",))
        body = {
            "access_token": access_token,
            "expires_in": _numeric(lifetime),
            "refresh_expires_in": 0,
            "token_type": "Bearer",
            "not-before-policy": 0,
            "scope": "email profile",
        }
        return Response.json(200, body, [("Cache-Control", "no-store"), ("Pragma", "no-cache")])

    def _refresh_grant(self, form: dict[str, str]) -> Response:
        token = form.get("refresh_token")
        if not token:
            return _error(400, "invalid_request", "Missing parameter: refresh_token")
        now = self._clock()
        with self._lock:
            session_id = self._refresh.get(token)
            session = self._sessions.get(session_id) if session_id is not None else None
        if session is None or not session.active(now):
            return _error(400, "invalid_grant", "Token is not active")
        self._stats.record_refresh(session.user)
        return self._grant(session, now)

    def _logout(self, form: dict[str, str]) -> Response:
        with self._lock:
            session_id = self._refresh.get(form.get("refresh_token", ""))
            session = self._sessions.get(session_id) if session_id is not None else None
            if session is not None:
                session.ended = True
        if session is None:
            return _error(400, "invalid_grant", "Invalid refresh token")
        return Response(204)

    def _grant(self, session: _Session, now: float) -> Response:
        """A token response for a session: new access token, new refresh token."""
        lifetime = self._config.access_token_lifetime_s
        access_exp = now + lifetime
        audience = (AUDIENCE, "account")
        # Claims in whole seconds like Keycloak's, rounded down: a client that plans its
        # refresh from ``exp`` refreshes a little early, never late.
        issued = int(now)
        claims = {
            "exp": _numeric(issued + lifetime),
            "iat": issued,
            "auth_time": int(session.started),
            "jti": str(uuid.uuid4()),
            "iss": self.issuer,
            "aud": list(audience),
            "sub": str(uuid.uuid5(uuid.NAMESPACE_URL, f"cdse-user:{session.user}")),
            "typ": "Bearer",
            "azp": CLIENT_ID,
            "session_state": session.id,
            "sid": session.id,
            "scope": _SCOPE,
            "realm_access": {
                "roles": ["copernicus-general", "offline_access", "uma_authorization"]
            },
            "email_verified": True,
            "preferred_username": session.user,
            "email": session.user,
            "group_membership": ["/Copernicus General"],
            "organizations": ["default-" + session.user.split("@", 1)[0]],
        }
        access_token = jwt.encode(
            claims, self._key, algorithm="RS256", headers={"kid": self.key_id}
        )
        refresh_claims = {
            "exp": int(session.ends_at),
            "iat": issued,
            "jti": str(uuid.uuid4()),
            "iss": self.issuer,
            "aud": self.issuer,
            "sub": claims["sub"],
            "typ": "Refresh",
            "azp": CLIENT_ID,
            "session_state": session.id,
            "sid": session.id,
            "scope": _SCOPE,
        }
        refresh_token = jwt.encode(refresh_claims, self._refresh_secret, algorithm="HS512")
        with self._lock:
            self._access[access_token] = _Access(session.user, session.id, access_exp, audience)
            self._refresh[refresh_token] = session.id
            self._issued += 1
            if self._issued % _PRUNE_EVERY == 0:
                self._prune(now)
        body = {
            "access_token": access_token,
            "expires_in": _numeric(lifetime),
            "refresh_expires_in": self._remaining(session, now),
            "refresh_token": refresh_token,
            "token_type": "Bearer",
            "not-before-policy": 0,
            "session_state": session.id,
            "scope": _SCOPE,
        }
        return Response.json(200, body, [("Cache-Control", "no-store"), ("Pragma", "no-cache")])

    def _remaining(self, session: _Session, now: float) -> int | float:
        """``refresh_expires_in``: what is left of the session's window (spec §2.2)."""
        remaining = max(0.0, session.ends_at - now)
        if float(self._config.refresh_token_lifetime_s).is_integer():
            return int(remaining)
        return round(remaining, 3)

    def _prune(self, now: float) -> None:
        """Forget long-dead tokens and sessions (caller holds the lock).

        A pruned access token is still recognised as ours and expired by its signature.
        """
        horizon = now - max(3600.0, self._config.refresh_token_lifetime_s)
        self._access = {t: a for t, a in self._access.items() if a.expires_at > horizon}
        dead = {sid for sid, s in self._sessions.items() if s.ends_at < horizon}
        if dead:
            self._sessions = {k: v for k, v in self._sessions.items() if k not in dead}
            self._refresh = {t: sid for t, sid in self._refresh.items() if sid not in dead}

    def _canonical_user(self, given: str) -> str | None:
        # Keycloak matches usernames and e-mails case-insensitively.
        wanted = given.strip().lower()
        for user in self._config.users:
            if user.lower() == wanted:
                return user
        return None

    def _totp_ok(self, secret: str, code: str) -> bool:
        now = self._clock()
        return any(
            hmac.compare_digest(totp_code(secret, now + step * _TOTP_STEP_S), code.strip())
            for step in (-1, 0, 1)
        )

    # Token table (download host, admin endpoint, faults) ---------------------------

    def check_access_token(self, token: str | None) -> TokenCheck:
        """Whether a bearer token lets its holder download now (spec §6.2 codes)."""
        if not token:
            return TokenCheck("missing")
        now = self._clock()
        with self._lock:
            record = self._access.get(token)
        if record is None:
            return self._check_unlisted(token, now)
        if now >= record.expires_at:
            return TokenCheck("expired", record.user, record.expires_at)
        if AUDIENCE not in record.audience:
            return TokenCheck("audience", record.user, record.expires_at)
        return TokenCheck("ok", record.user, record.expires_at)

    def _check_unlisted(self, token: str, now: float) -> TokenCheck:
        """A token not in the table: ours but pruned (hence expired), or not ours."""
        try:
            claims = jwt.decode(
                token,
                self._key.public_key(),
                algorithms=["RS256"],
                options={"verify_exp": False, "verify_aud": False},
            )
        except jwt.InvalidTokenError:
            return TokenCheck("unknown")
        if claims.get("iss") != self.issuer or float(claims.get("exp", 0)) > now:
            return TokenCheck("unknown")
        return TokenCheck("expired", str(claims.get("preferred_username")), float(claims["exp"]))

    def token_alive(self, token: str) -> Callable[[], bool]:
        """A cheap check, for use between chunks, that ``token`` has not expired."""

        def alive() -> bool:
            record = self._access.get(token)
            return record is not None and self._clock() < record.expires_at

        return alive

    @contextlib.contextmanager
    def clock_for_test(self, clock: Callable[[], float]) -> Iterator[None]:
        """Read lifetimes on ``clock`` instead of the wall clock, for the ``with`` body.

        Token lifetimes are the one place the emulator reads time; a test that drives a
        token through its refresh window moves this clock (and the client's) by hand
        instead of waiting for seconds to pass.
        """
        previous = self._clock
        self._clock = clock
        try:
            yield
        finally:
            self._clock = previous

    def expire_token(self, token: str) -> bool:
        """Make one access token expire now; returns whether it was known."""
        now = self._clock()
        with self._lock:
            record = self._access.get(token)
            if record is None:
                return False
            record.expires_at = min(record.expires_at, now)
        return True

    def expire_access_tokens(self, user: str | None = None) -> int:
        """Expire every access token (of one user); returns how many were still valid."""
        now = self._clock()
        count = 0
        with self._lock:
            for record in self._access.values():
                if (user is None or record.user == user) and record.expires_at > now:
                    record.expires_at = now
                    count += 1
        return count

    def end_sessions(self, user: str | None = None) -> int:
        """End every active session (of one user); returns how many ended.

        Refresh tokens of ended sessions get 400 ``Token is not active``; access tokens
        already issued stay valid until they expire [INFERRED: CDSE's download host
        checks JWTs, not sessions].
        """
        now = self._clock()
        count = 0
        with self._lock:
            for session in self._sessions.values():
                if (user is None or session.user == user) and session.active(now):
                    session.ended = True
                    count += 1
        return count

    def active_sessions(self) -> dict[str, int]:
        """Open sessions per user (refresh window not over, not ended)."""
        now = self._clock()
        counts: dict[str, int] = {}
        with self._lock:
            for session in self._sessions.values():
                if session.active(now):
                    counts[session.user] = counts.get(session.user, 0) + 1
        return counts

    # RequestHooks (the server asks about requests for faults and stats) -------------

    def user_for(self, request: Request) -> str | None:
        """The account a request acts for: its access token, refresh token or username."""
        token = bearer_token(request)
        if token is not None:
            with self._lock:
                record = self._access.get(token)
            if record is not None:
                return record.user
        if request.method == "POST" and request.path.startswith(REALM_PATH):
            form = _form(request)
            if form.get("grant_type") == "password":
                return self._canonical_user(form.get("username", "")) or form.get("username")
            with self._lock:
                session_id = self._refresh.get(form.get("refresh_token", ""))
                session = self._sessions.get(session_id) if session_id else None
            if session is not None:
                return session.user
        return None

    def expire_request_token(self, request: Request) -> None:
        """Expire the access token a request carries (``expire_token`` fault)."""
        token = bearer_token(request)
        if token is not None:
            self.expire_token(token)

    def end_request_sessions(self, request: Request) -> None:
        """End the sessions of the request's user (``end_sessions`` fault)."""
        user = self.user_for(request)
        if user is not None:
            self.end_sessions(user)


def _numeric(seconds: float) -> int | float:
    """Whole seconds as an int (as Keycloak sends); sub-second test lifetimes stay exact."""
    return int(seconds) if float(seconds).is_integer() else round(seconds, 3)


def _form(request: Request) -> dict[str, str]:
    try:
        text = request.body.decode("utf-8")
    except UnicodeDecodeError:
        return {}
    return {k: v[0] for k, v in parse_qs(text, keep_blank_values=True).items()}


def _error(status: int, error: str, description: str) -> Response:
    return Response.json(status, {"error": error, "error_description": description})


def _invalid_credentials() -> Response:
    return _error(401, "invalid_grant", "Invalid user credentials")


# Keycloak's error page, reduced to what a client may look at (status, type, the text).
_SESSION_LIMIT_PAGE = """<!DOCTYPE html>
<html lang="en">
<head><meta charset="utf-8"><title>Sign in to CDSE</title></head>
<body>
<div id="kc-content"><div id="kc-content-wrapper">
<div class="alert-error pf-c-alert pf-m-inline pf-m-danger">
<span class="kc-feedback-text">There are too many sessions</span>
</div>
</div></div>
</body>
</html>
"""


def _not_found() -> Response:
    return Response.json(404, {"error": "Unable to find matching target resource method"})


def _method_not_allowed() -> Response:
    return Response.json(405, {"error": "HTTP 405 Method Not Allowed"})
