"""The one road to the network.

Every request sentinel-fetch makes goes through :class:`Transport`, which owns:

* one ``requests.Session`` per thread (sessions are not thread-safe; connection reuse
  inside a thread is what makes 200 small downloads fast);
* certificate verification (always on; an extra CA bundle can be trusted), set per
  request because ``requests`` otherwise lets ``REQUESTS_CA_BUNDLE`` override it;
* the proxy: an explicit ``http://``/``socks5://`` URL, or the standard environment
  variables (and, through the standard library, the Windows system proxy); a proxy that
  is not running or refuses our credentials is a :class:`~sentinel_fetch.errors.ProxyError`
  (a setting to fix, never retried), other proxy trouble is transient;
* redirects, followed by our code, because the ``Authorization`` header is a policy
  decision: it goes only to the configured CDSE hosts, never to anywhere a redirect
  points, and never over plain HTTP when it was asked for over HTTPS;
* turning error answers into :class:`~sentinel_fetch.errors.ServiceError` with the CDSE
  error code and ``Retry-After``;
* reading JSON answers within a size bound (:func:`read_json`): a server may send
  anything, and hundreds of megabytes of it;
* a deadline for each whole answer (``Limits.answer_timeout_s``): the read timeout bounds
  one socket read, so a server sending its status line, headers or JSON a byte at a time
  would hold a search or a login for ever. One watchdog thread shuts the connection of
  every request past its deadline. Downloads are not watched: their bodies may rightly
  take hours, and a minimum transfer rate guards them instead.
"""

from __future__ import annotations

import contextlib
import heapq
import itertools
import logging
import os
import socket
import ssl
import sys
import threading
import time
import weakref
from collections.abc import Callable, Iterator, Mapping
from typing import Any
from urllib.parse import urljoin, urlsplit

import requests
from requests.adapters import HTTPAdapter
from requests.models import PreparedRequest
from urllib3.exceptions import LocationParseError
from urllib3.util import parse_url
from urllib3.util.ssl_match_hostname import CertificateError

from sentinel_fetch.errors import ConfigError, ProxyError, SentinelFetchError, ServiceError
from sentinel_fetch.redact import redact_url, register_secret
from sentinel_fetch.retry import parse_retry_after
from sentinel_fetch.settings import PROXY_SCHEMES, Origin, Settings, url_problem
from sentinel_fetch.text import one_line, printable
from sentinel_fetch.untrusted import UntrustedJSONError, parse_json

__all__ = [
    "BearerSource",
    "Transport",
    "declared_length",
    "error_from_response",
    "error_text",
    "proxy_for_display",
    "read_bounded",
    "read_json",
    "redirect_target",
    "requested_origin",
]

log = logging.getLogger("sentinel_fetch.http")

#: Something that hands out a valid access token (``TokenManager.access_token``).
BearerSource = Callable[[], str]

_REDIRECTS = (301, 302, 303, 307, 308)
_MAX_REDIRECTS = 8
_USER_AGENT = "sentinel-fetch/0.1 (+https://github.com/sentinel-fetch/sentinel-fetch)"
# The longest error code kept: real ones are a dozen characters.
_MAX_CODE_CHARS = 64
# Error answers are a line of JSON; the first 64 kB say everything there is to say.
_ERROR_BODY_BYTES = 65536


def proxy_for_display(proxy: str | None) -> str:
    """A proxy URL with its password masked, for logs and ``config`` output."""
    return redact_url(proxy) if proxy else "none"


def _default_verify(settings: Settings) -> str | bool:
    if settings.ca_bundle:
        if not os.path.isfile(settings.ca_bundle):
            raise ConfigError(f"CA bundle not found: {settings.ca_bundle}")
        return settings.ca_bundle
    # Honour the bundle variables users already set for pip and curl (corporate CAs).
    for name in ("REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE", "SSL_CERT_FILE"):
        value = os.environ.get(name)
        if value and os.path.isfile(value):
            return value
    return True


def error_from_response(
    response: requests.Response, error_type: type[ServiceError] = ServiceError
) -> ServiceError:
    """Build a one-line :class:`ServiceError` from an error answer.

    Reads the CDSE code from the JSON body (``code`` on the download host, ``error`` on
    the identity host, ``detail`` on the catalogue, ``error.code`` in OData's
    ``{"error": {"code", "message"}}``) without ever echoing headers.
    """
    code: str | None = None
    detail = ""
    try:
        body: Any = parse_json(_prefix(response, _ERROR_BODY_BYTES) or b"null")
    except UntrustedJSONError:
        body = None
    if isinstance(body, dict):
        raw_code = body.get("code") or body.get("error")
        if isinstance(raw_code, dict):  # OData: {"error": {"code": ..., "message": ...}}
            raw_code = raw_code.get("code")
        if isinstance(raw_code, str | int) and not isinstance(raw_code, bool):
            # A code is a short token (DAT-ZIP-109, invalid_grant); longer is not one.
            code = printable(one_line(str(raw_code)))[:_MAX_CODE_CHARS] or None
        detail = error_text(body.get("message") or body.get("error_description"))
        detail = detail or error_text(body.get("detail"))
        if isinstance(body.get("error"), dict):
            detail = detail or error_text(body["error"])
    reason = response.reason or ""
    where = redact_url(response.url.split("?", 1)[0]) if response.url else "CDSE"
    parts = [f"HTTP {response.status_code} {reason}".strip()]
    if code:
        parts.append(code)
    if detail:
        parts.append(one_line(detail, 300))
    message = f"{': '.join(parts)} ({where})"
    return error_type(
        message,
        status=response.status_code,
        code=code,
        retry_after_s=parse_retry_after(response.headers.get("Retry-After")),
    )


def error_text(value: Any) -> str:
    """The readable part of an error body's ``message``/``detail``, whatever its shape.

    CDSE's services answer in several shapes (cdse-api.md §3.8): a string; FastAPI's list
    of pydantic problems (``loc``, ``msg``), often more than one; objects holding a
    ``message`` (Subscriptions) or an ``ErrorMessage`` with an ``ErrorDetail`` list (the
    retired OpenSearch); and OData's ``{"error": {"code": ..., "message": ...}}``, whose
    ``message`` is read (the code is the caller's). Request ids and input echoes are left
    out.

    Example:
        >>> error_text([{"loc": ["query", "$top"], "msg": "Input should be <= 1000"}])
        '$top: Input should be <= 1000'
        >>> error_text({"ErrorMessage": "Validation error.", "ErrorDetail": [{"msg": "bad"}]})
        'Validation error.: bad'
        >>> error_text({"error": {"code": "BadRequest", "message": "Invalid filter"}})
        'Invalid filter'
    """
    if isinstance(value, str):
        return value
    if isinstance(value, list):
        return "; ".join(text for text in (error_text(item) for item in value[:10]) if text)
    if not isinstance(value, dict):
        return ""
    nested = value.get("error")
    message = error_text(
        value.get("message")
        or value.get("ErrorMessage")
        or value.get("msg")
        or (nested if isinstance(nested, dict) else "")
    )
    location = value.get("loc")
    if isinstance(location, list) and location and message:
        names = [str(part) for part in location if isinstance(part, str | int)]
        # "query"/"body"/"path" say where FastAPI looked, not what was wrong.
        if len(names) > 1 and names[0] in ("query", "body", "path", "header"):
            names = names[1:]
        message = f"{'.'.join(names)}: {message}"
    details = error_text(value.get("ErrorDetail") or value.get("detail") or "")
    return ": ".join(text for text in (message, details) if text)


# Bytes of the longest Content-Length taken seriously: 19 digits pass 2**63 already.
_MAX_LENGTH_DIGITS = 19


def declared_length(headers: Mapping[str, str]) -> int | None:
    """The body length the ``Content-Length`` header declares, or ``None``.

    ``None`` when there is none, when it is not a plain decimal number (``"lots"``,
    ``"-5"``, ``"1e3"``, 30 digits), or when the header came several times with
    different values (joined as ``"10, 20"``): a length nobody can trust is no length,
    and the body is then bounded by what the caller expects, never by the header.

    Example:
        >>> declared_length({"Content-Length": "1024"}), declared_length({"Content-Length": "8, 8"})
        (1024, 8)
        >>> declared_length({"Content-Length": "10, 20"}), declared_length({}) is None
        (None, True)
    """
    value = headers.get("Content-Length")
    if value is None:
        return None
    values = {part.strip() for part in value.split(",")}
    if len(values) != 1:
        return None
    (text,) = values
    if not (text.isascii() and text.isdigit()) or len(text) > _MAX_LENGTH_DIGITS:
        return None
    return int(text)


def read_json(response: requests.Response, *, max_bytes: int) -> Any:
    """The JSON value of a response body of at most ``max_bytes``.

    :func:`read_bounded` then :func:`~sentinel_fetch.untrusted.parse_json`.

    Open the response with ``stream=True``: a body announced longer than the bound is
    refused before a byte of it is read, and one without (or with a false)
    ``Content-Length`` is read only up to the bound.

    Raises:
        UntrustedJSONError: the body is too large, too deep or not JSON (``hostile`` says
            whether a retry could help).
        ServiceError: the connection broke while the body arrived.
    """
    return parse_json(read_bounded(response, max_bytes=max_bytes))


def read_bounded(response: requests.Response, *, max_bytes: int) -> bytes:
    """The whole body of a response, refused past ``max_bytes`` (``stream=True``).

    Separate from parsing so a caller can let the connection go (the catalogue's
    request bound) before it spends its CPU on the text.

    Raises:
        UntrustedJSONError: the body is larger than ``max_bytes`` (``hostile``).
        ServiceError: the connection broke while the body arrived.
    """
    too_large = UntrustedJSONError(
        f"the answer is larger than {max_bytes / 1_000_000:g} MB", hostile=True
    )
    announced = declared_length(response.headers)
    if announced is not None and announced > max_bytes:
        raise too_large
    body = _prefix(response, max_bytes + 1)
    if len(body) > max_bytes:
        raise too_large
    return body


def _prefix(response: requests.Response, limit: int) -> bytes:
    """At most ``limit`` bytes of the body (all of it, if shorter), never more in memory."""
    # Joined once at the end: a 5 MB catalogue page is not copied again and again.
    chunks: list[bytes] = []
    size = 0
    try:
        for chunk in response.iter_content(chunk_size=min(limit, 1 << 20)):
            chunks.append(chunk)
            size += len(chunk)
            if size >= limit:
                break
    except requests.exceptions.RequestException as exc:
        watch = _RESPONSE_WATCHES.get(response)
        if watch is not None and watch.expired:
            raise watch.error(response.url) from None
        raise ServiceError(
            f"the answer from {_host(response.url)} broke off: {_short(exc)}"
        ) from None
    received = b"".join(chunks)
    return received if size <= limit else received[:limit]


class _AnswerWatch:
    """The deadline of one request's whole answer, and the connections it uses.

    When the deadline passes, every connection the request was handed is shut down:
    the blocked read in the request's thread then ends at once, whatever the server
    trickles, and :meth:`error` says why.
    """

    def __init__(self, timeout_s: float) -> None:
        self.timeout_s = timeout_s
        self.deadline = time.monotonic() + timeout_s
        self.expired = False
        self._released = False
        self._connections: list[object] = []
        self._lock = threading.Lock()

    def attach(self, connection: object) -> None:
        """Watch one more connection (a redirect's next hop, a fresh connection)."""
        with self._lock:
            if self._released:
                return
            self._connections.append(connection)
            if self.expired:
                _shut(connection)

    def expire(self) -> bool:
        """Shut the watched connections; ``False`` once the answer is complete."""
        with self._lock:
            if self._released:
                return False
            self.expired = True
            for connection in self._connections:
                _shut(connection)
            return True

    def release(self) -> None:
        """The answer is complete (or abandoned): never touch its connections again."""
        with self._lock:
            self._released = True
            self._connections.clear()

    def error(self, url: str | None) -> ServiceError:
        """The error for an answer cut off at its deadline (worth another try)."""
        where = _host(url) if url else "the server"
        return ServiceError(
            f"the answer from {where} did not arrive within answer_timeout_s "
            f"({self.timeout_s:g} s): the server sends it too slowly"
        )


def _shut(connection: object) -> None:
    """Shut a urllib3 connection's socket down, from any thread.

    ``socket.socket.shutdown`` acts on the file descriptor itself: the TLS layer of the
    reading thread is left alone, and its blocked read returns at once. A connection
    still connecting has no socket yet; the watchdog comes back to it.
    """
    sock = getattr(connection, "sock", None)
    if isinstance(sock, socket.socket):
        with contextlib.suppress(OSError):  # already closed: nothing left to cut
            socket.socket.shutdown(sock, socket.SHUT_RDWR)


class _Watchdog:
    """One thread for every watched request of the process: it sleeps until the earliest
    deadline, and shuts the connections of each request still unanswered at its own."""

    # How soon an expired request is visited again, for a connection attached late.
    _AGAIN_S = 0.1

    def __init__(self) -> None:
        self._condition = threading.Condition()
        self._heap: list[tuple[float, int, _AnswerWatch]] = []
        self._order = itertools.count()
        self._thread: threading.Thread | None = None

    def watch(self, timeout_s: float) -> _AnswerWatch:
        """A new watch with a deadline ``timeout_s`` from now."""
        watch = _AnswerWatch(timeout_s)
        with self._condition:
            heapq.heappush(self._heap, (watch.deadline, next(self._order), watch))
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._run, name="sentinel-fetch-answer-watchdog", daemon=True
                )
                self._thread.start()
            self._condition.notify()
        return watch

    def _run(self) -> None:
        with self._condition:
            while True:
                if not self._heap:
                    self._condition.wait()
                    continue
                deadline, _, watch = self._heap[0]
                now = time.monotonic()
                if deadline > now:
                    self._condition.wait(deadline - now)
                    continue
                heapq.heappop(self._heap)
                if watch.expire():
                    again = now + self._AGAIN_S
                    heapq.heappush(self._heap, (again, next(self._order), watch))


_WATCHDOG = _Watchdog()
# The watches of the requests this thread is sending, innermost last (a login runs
# inside another request when the token is fetched for it).
_SENDING = threading.local()
# The watch of each streamed answer whose body is still to be read.
_RESPONSE_WATCHES: weakref.WeakKeyDictionary[requests.Response, _AnswerWatch] = (
    weakref.WeakKeyDictionary()
)


def _sending() -> list[_AnswerWatch]:
    stack: list[_AnswerWatch] | None = getattr(_SENDING, "stack", None)
    if stack is None:
        stack = _SENDING.stack = []
    return stack


def _watch_pool(pool: Any) -> Any:
    """Make a urllib3 pool hand its connections to the watch of the request taking them.

    The pool's ``_get_conn`` is where every request, proxied or not, takes its
    connection; wrapping it there (once per pool) is the one place the watchdog can
    learn which socket to shut.
    """
    if getattr(pool, "_sentinel_fetch_watched", False):
        return pool
    # The pool is held weakly: a closure holding it would be a cycle that keeps its
    # connections open until the garbage collector runs, past Transport.close().
    held = weakref.ref(pool)
    take = type(pool)._get_conn

    def get_connection(timeout: float | None = None) -> Any:
        target = held()
        if target is None:  # pragma: no cover - a pool in use is alive
            raise ServiceError("the connection pool was closed")
        connection = take(target, timeout=timeout)
        stack = _sending()
        if stack:
            stack[-1].attach(connection)
        return connection

    pool._get_conn = get_connection
    pool._sentinel_fetch_watched = True
    return pool


class _WatchedAdapter(HTTPAdapter):
    """An adapter whose pools report their connections to the answer watchdog."""

    def get_connection_with_tls_context(self, *args: Any, **kwargs: Any) -> Any:
        return _watch_pool(super().get_connection_with_tls_context(*args, **kwargs))

    def get_connection(self, *args: Any, **kwargs: Any) -> Any:  # requests < 2.32
        return _watch_pool(super().get_connection(*args, **kwargs))


class Transport:
    """Sends HTTP requests for the whole library. Thread-safe.

    Args:
        settings: endpoints, proxy, CA bundle and timeouts.
        environ: environment used for proxy variables (defaults to ``os.environ``).
    """

    def __init__(self, settings: Settings, *, environ: Mapping[str, str] | None = None) -> None:
        self.settings = settings
        # Checked when the settings were built (scheme, host, port).
        self._proxy = settings.proxy
        if self._proxy:
            register_secret(urlsplit(self._proxy).password)
        self._verify = _default_verify(settings)
        self._environ = environ
        self._bearer_origins = settings.endpoints.bearer_origins()
        self._local = threading.local()
        self._sessions: list[requests.Session] = []
        self._sessions_lock = threading.Lock()
        self._pool_size = max(4, settings.limits.workers + 2)

    # -- sessions -----------------------------------------------------------------------

    def session(self) -> requests.Session:
        """This thread's session (created on first use)."""
        session: requests.Session | None = getattr(self._local, "session", None)
        if session is None:
            session = requests.Session()
            # Proxies, CA bundle and .netrc are decided here, not by requests' environment
            # lookups: .netrc could otherwise add Basic auth to the token request.
            session.trust_env = False
            session.headers["User-Agent"] = _USER_AGENT
            adapter = _WatchedAdapter(
                pool_connections=4, pool_maxsize=self._pool_size, max_retries=0
            )
            session.mount("https://", adapter)
            session.mount("http://", adapter)
            self._local.session = session
            with self._sessions_lock:
                self._sessions.append(session)
        return session

    def close_thread_session(self) -> None:
        """Close this thread's session, if it has one (a worker thread about to end).

        A session lives until :meth:`close` otherwise: a thread that ends without this
        leaves its kept-alive connections open for as long as the transport lives.
        """
        session: requests.Session | None = getattr(self._local, "session", None)
        if session is None:
            return
        self._local.session = None
        with self._sessions_lock:
            if session in self._sessions:
                self._sessions.remove(session)
        session.close()

    def close(self) -> None:
        """Close every session's connections."""
        with self._sessions_lock:
            sessions, self._sessions = self._sessions, []
        for session in sessions:
            session.close()
        self._local = threading.local()

    def __enter__(self) -> Transport:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # -- policy -------------------------------------------------------------------------

    def proxies_for(self, url: str) -> dict[str, str]:
        """The proxy mapping for one URL (explicit proxy, else environment/system).

        A proxy from the environment is checked like one from the settings (scheme,
        host, port): a malformed ``HTTPS_PROXY`` is one clear error, not a traceback
        from deep inside the connection code.

        Raises:
            ProxyError: the environment names a proxy that cannot be used.
        """
        if self._proxy:
            return {"http": self._proxy, "https": self._proxy}
        if self._environ is None:
            proxies = dict(requests.utils.get_environ_proxies(url))
            proxies.pop("no", None)
        else:
            proxies = self._proxies_from(self._environ, url)
        for value in proxies.values():
            problem = _proxy_problem(value)
            if problem is not None:
                raise ProxyError(
                    f"the proxy environment variable (HTTPS_PROXY, HTTP_PROXY or ALL_PROXY) "
                    f"{problem}, got {printable(redact_url(value))[:200]!r}: fix or unset it"
                )
        return proxies

    @staticmethod
    def _proxies_from(environ: Mapping[str, str], url: str) -> dict[str, str]:
        """The proxy an explicit environment mapping gives ``url`` (tests, embedders)."""
        scheme = urlsplit(url).scheme
        no_proxy = environ.get("NO_PROXY") or environ.get("no_proxy")
        if no_proxy and requests.utils.should_bypass_proxies(url, no_proxy=no_proxy):
            return {}
        for name in (f"{scheme}_proxy", "all_proxy"):
            value = environ.get(name) or environ.get(name.upper())
            if value:
                return {scheme: value}
        return {}

    def may_receive_token(self, url: str) -> bool:
        """Whether ``url`` is one of the configured CDSE hosts that may see the token.

        Decided on the origin the request will really be sent to (:func:`requested_origin`),
        not on another parser's reading of the same text.
        """
        return requested_origin(url) in self._bearer_origins

    @property
    def timeout(self) -> tuple[float, float]:
        """``(connect, read)`` timeouts in seconds."""
        limits = self.settings.limits
        return (limits.connect_timeout_s, limits.read_timeout_s)

    # -- requests -----------------------------------------------------------------------

    def request(
        self,
        method: str,
        url: str,
        *,
        bearer: BearerSource | None = None,
        headers: Mapping[str, str] | None = None,
        params: Any = None,
        data: Any = None,
        json_body: Any = None,
        stream: bool = False,
        timeout: tuple[float, float] | None = None,
        whole_answer_deadline: bool = True,
    ) -> requests.Response:
        """Send one request, following redirects under our Authorization policy.

        Args:
            method: HTTP method.
            url: absolute URL.
            bearer: token source; the token is attached only when the (current) URL is a
                configured CDSE host, and re-fetched for each hop so a refreshed token is
                used after a redirect.
            headers: extra headers (kept across redirects, except Authorization).
            params: query parameters for the first hop only.
            data: form body (first hop only; a 303 turns the request into a GET).
            json_body: JSON body (first hop only).
            stream: leave the body unread for the caller to stream.
            timeout: ``(connect, read)`` override.
            whole_answer_deadline: cut the answer off after ``Limits.answer_timeout_s``,
                redirects and (for ``stream``) the body until the response is closed
                included. Downloads turn it off: their minimum rate guards them.

        Returns:
            The final response, whatever its status (callers decide what is an error).

        Raises:
            ServiceError: connection failures (status 0), an answer past its deadline,
                too many redirects, or a redirect from HTTPS to plain HTTP.
            ProxyError: the proxy is not running, or refuses our credentials (407).
        """
        if not whole_answer_deadline:
            return self._send(
                method, url, bearer, headers, params, data, json_body, stream, timeout, None
            )
        watch = _WATCHDOG.watch(self.settings.limits.answer_timeout_s)
        stack = _sending()
        stack.append(watch)
        try:
            response = self._send(
                method, url, bearer, headers, params, data, json_body, stream, timeout, watch
            )
        except BaseException:
            watch.release()
            raise
        finally:
            stack.remove(watch)
        if not stream:
            watch.release()
            return response
        # The body is still to come: the deadline holds until the response is closed,
        # or dropped. The closure holds the response weakly: a cycle would keep an
        # unclosed response, and its socket, alive until the garbage collector runs.
        _RESPONSE_WATCHES[response] = watch
        held = weakref.ref(response)

        def close_and_release() -> None:
            try:
                target = held()
                if target is not None:
                    requests.Response.close(target)
            finally:
                watch.release()

        response.close = close_and_release  # type: ignore[method-assign]
        weakref.finalize(response, watch.release)
        return response

    def _send(
        self,
        method: str,
        url: str,
        bearer: BearerSource | None,
        headers: Mapping[str, str] | None,
        params: Any,
        data: Any,
        json_body: Any,
        stream: bool,
        timeout: tuple[float, float] | None,
        watch: _AnswerWatch | None,
    ) -> requests.Response:
        session = self.session()
        current_url = url
        current_method = method
        hops = 0
        while True:
            send_headers = dict(headers or {})
            if bearer is not None and self.may_receive_token(current_url):
                send_headers["Authorization"] = f"Bearer {bearer()}"
            started = time.monotonic()
            try:
                response = session.request(
                    current_method,
                    current_url,
                    headers=send_headers,
                    params=params if hops == 0 else None,
                    data=data if hops == 0 else None,
                    json=json_body if hops == 0 else None,
                    stream=stream,
                    timeout=timeout or self.timeout,
                    allow_redirects=False,
                    verify=self._verify,
                    proxies=self.proxies_for(current_url),
                )
            except requests.exceptions.RequestException as exc:
                if watch is not None and watch.expired:
                    raise watch.error(current_url) from None
                raise self._request_error(exc, current_url) from None
            if response.status_code == 407:
                # Over plain HTTP the proxy's refusal arrives as the answer itself.
                response.close()
                proxy = self._proxy or _env_proxy_name(self, current_url)
                raise _credentials_refused(
                    proxy, f"HTTP 407 from the proxy for {_host(current_url)}"
                )
            log.debug(
                "%s %s -> %s (%.0f ms)",
                current_method,
                redact_url(response.url),
                response.status_code,
                (time.monotonic() - started) * 1000,
            )
            if response.status_code not in _REDIRECTS or "Location" not in response.headers:
                return response
            hops += 1
            location = response.headers["Location"]
            response.close()
            target = redirect_target(current_url, location)
            if hops > _MAX_REDIRECTS:
                raise ServiceError(
                    f"too many redirects starting at {redact_url(url)}", transient=False
                )
            if urlsplit(current_url).scheme == "https" and urlsplit(target).scheme != "https":
                raise ServiceError(
                    f"refusing a redirect from HTTPS to {redact_url(target)}: "
                    "it would expose the download to the network",
                    transient=False,
                )
            if response.status_code == 303 or (
                response.status_code in (301, 302) and current_method == "POST"
            ):
                current_method = "GET"
            if not self.may_receive_token(target) and bearer is not None:
                log.debug("redirect to %s: not a CDSE host, token withheld", redact_url(target))
            current_url = target

    def _request_error(
        self, exc: requests.exceptions.RequestException, url: str
    ) -> SentinelFetchError:
        """What a request that got no answer at all failed on, as one of our errors."""
        if isinstance(exc, requests.exceptions.SSLError):
            return _tls_error(exc, url)
        if isinstance(exc, requests.exceptions.InvalidSchema):
            return ConfigError(f"{_short(exc)} (SOCKS proxies need the PySocks package)")
        proxy = self._proxy or _env_proxy_name(self, url)
        failure = _proxy_failure(exc, proxy) if proxy else None
        if failure is not None:
            return failure
        return ServiceError(f"cannot reach {_host(url)}: {_short(exc)}")


def _proxy_problem(proxy: str) -> str | None:
    """Why a proxy URL cannot be used, or ``None`` (the same rules as the settings').

    ``host:port`` without a scheme is the plain HTTP proxy ``requests`` and curl take it
    for.
    """
    proxy = proxy.strip()
    if "://" not in proxy:
        proxy = f"http://{proxy}"
    problem = url_problem(proxy)
    if problem is not None:
        return problem
    parts = urlsplit(proxy)
    if parts.scheme.lower() not in PROXY_SCHEMES or not parts.hostname:
        return "must look like http://host:port or socks5://host:port"
    return None


def requested_origin(url: str) -> Origin:
    """``(scheme, host, port)`` of ``url`` as requests and urllib3 will connect to it.

    The text is first prepared the way ``requests`` prepares it (IDNA, percent-decoding
    of the host, lower case) and then read by ``urllib3.util.parse_url``, the parser
    that picks the host the socket connects to. A URL neither can read has port ``-1``
    and matches no configured origin.

    Example:
        >>> requested_origin("https://Download.dataspace.copernicus.eu/odata/v1")
        ('https', 'download.dataspace.copernicus.eu', 443)
        >>> requested_origin("https://evil.example\\\\@download.dataspace.copernicus.eu/")[1]
        'evil.example'
    """
    try:
        parts = parse_url(_prepared(url))
    except (LocationParseError, ValueError, requests.exceptions.RequestException):
        return "", "", -1
    scheme = (parts.scheme or "").lower()
    host = (parts.host or "").lower().strip("[]")
    return scheme, host, parts.port or (443 if scheme == "https" else 80)


def _prepared(url: str) -> str:
    """``url`` exactly as ``requests`` will put it on the wire."""
    request = PreparedRequest()
    request.prepare_url(url, None)
    return str(request.url)


def redirect_target(current_url: str, location: str) -> str:
    """The URL a redirect's ``Location`` leads to, as it will be requested.

    Whether the token may follow a redirect is decided on one reading of the URL, the
    one the connection uses; so a ``Location`` that different URL parsers read as
    different hosts (a backslash, which ``urllib3`` ends the host at and the standard
    library does not; a tab or newline, which one drops and another keeps; an encoded
    or non-ASCII host) is refused, as is one that carries a user name or password (which
    ``requests`` would turn into a Basic ``Authorization`` header). No honest server sends
    either.

    Raises:
        ServiceError: (not transient) the redirect is refused; the message shows the
            target with secrets masked and control characters escaped.
    """
    shown = printable(redact_url(location.strip()))[:300]

    def refused(why: str) -> ServiceError:
        return ServiceError(f"refusing a redirect to {shown}: {why}", transient=False)

    if any(ord(char) <= 0x20 or ord(char) == 0x7F for char in location.strip()):
        raise refused("the address holds spaces or control characters")
    try:
        joined = urljoin(current_url, location.strip())
        ours = urlsplit(joined)
        our_port = ours.port
        wire = _prepared(joined)
        theirs = parse_url(wire)
    except (LocationParseError, ValueError, requests.exceptions.RequestException):
        raise refused("the address cannot be read") from None
    if "@" in ours.netloc or theirs.auth is not None:
        raise refused("the address carries a user name or password")
    our_scheme = ours.scheme.lower()
    our_origin = (
        our_scheme,
        (ours.hostname or "").lower(),
        our_port or (443 if our_scheme == "https" else 80),
    )
    if our_origin != requested_origin(wire):
        raise refused("the address reads as different hosts to different URL parsers")
    return wire


def _host(url: str) -> str:
    """``scheme://host:port`` of a URL: enough to say where, never a query or a secret."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.hostname}" + (f":{parts.port}" if parts.port else "")


def _causes(exc: BaseException) -> Iterator[BaseException]:
    """``exc`` and the errors beneath it, outermost first.

    requests wraps urllib3, which wraps socket, ssl and PySocks errors, through
    ``reason``, the first argument, ``__cause__`` or only ``__context__``.
    """
    current: BaseException | None = exc
    seen: set[int] = set()
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        yield current
        inner = getattr(current, "reason", None)
        if not isinstance(inner, BaseException):
            inner = getattr(current, "socket_err", None)  # PySocks keeps it here
        if not isinstance(inner, BaseException):
            first = current.args[0] if current.args else None
            inner = first if isinstance(first, BaseException) else None
        current = inner or current.__cause__ or current.__context__


# The certificate chain or the host name did not verify (urllib3 checks some names itself).
_VERIFICATION_FAILED = (ssl.SSLCertVerificationError, CertificateError)
# A handshake the peer hung up on (a server or middlebox dropping connections): worth
# another try, and nothing to do with certificates.
_DROPPED_HANDSHAKE = (
    ssl.SSLEOFError,
    ssl.SSLZeroReturnError,
    ssl.SSLSyscallError,
    ConnectionError,
    TimeoutError,
)


def _tls_error(exc: requests.exceptions.SSLError, url: str) -> ServiceError:
    """Name a TLS failure for what it is: only a failed verification is a certificate error."""
    causes = list(_causes(exc))
    if any(isinstance(cause, _VERIFICATION_FAILED) for cause in causes):
        return ServiceError(
            f"TLS certificate verification failed for {_host(url)}: {_short(exc)}; "
            "if a proxy or mirror uses its own CA, pass --ca-bundle",
            transient=False,
        )
    if any(isinstance(cause, _DROPPED_HANDSHAKE) for cause in causes):
        return ServiceError(f"the TLS handshake with {_host(url)} was cut off: {_short(exc)}")
    # A protocol mismatch (TLS spoken to a plain-HTTP port, no common version or cipher)
    # stays a mismatch however often it is tried.
    return ServiceError(
        f"the TLS handshake with {_host(url)} failed: {_short(exc)}", transient=False
    )


def _has_socks_error(causes: list[BaseException], name: str) -> bool:
    """Whether one of ``causes`` is PySocks' ``name`` error class.

    PySocks is imported by urllib3 only when a SOCKS proxy is used, so when it is not
    loaded no SOCKS error can be in the chain.
    """
    kind = getattr(sys.modules.get("socks"), name, None)
    return isinstance(kind, type) and any(isinstance(cause, kind) for cause in causes)


def _proxy_failure(
    exc: requests.exceptions.RequestException, proxy: str
) -> SentinelFetchError | None:
    """What the proxy did wrong, or ``None`` when the proxy is not to blame.

    A proxy nothing listens on, or one that refuses our credentials, stays that way:
    :class:`ProxyError`, never retried. A proxy that cannot reach CDSE for the moment
    (a 502 for the tunnel, a SOCKS "host unreachable") is transient.
    """
    causes = list(_causes(exc))
    shown = proxy_for_display(proxy)
    detail = _short(exc)
    if any("Tunnel connection failed: 407" in str(cause) for cause in causes) or (
        _has_socks_error(causes, "SOCKS5AuthError")
    ):
        return _credentials_refused(proxy, detail)
    http_proxy = isinstance(exc, requests.exceptions.ProxyError)
    if not http_proxy and not _has_socks_error(causes, "ProxyError"):
        return None
    refused = any(isinstance(cause, ConnectionRefusedError) for cause in causes)
    if refused and (http_proxy or _has_socks_error(causes, "ProxyConnectionError")):
        return ProxyError(f"cannot use the proxy {shown}: {detail}; is it running?")
    timed_out = isinstance(exc, requests.exceptions.Timeout) or any(
        isinstance(cause, TimeoutError) for cause in causes
    )
    if not timed_out and _has_socks_error(causes, "GeneralProxyError"):
        # The proxy accepted the connection and then broke off the SOCKS negotiation:
        # what some proxies (pproxy among them) do to credentials they refuse, rather
        # than answer with an authentication failure.
        if urlsplit(proxy).password is not None:
            hint = "it may have refused the user name and password: check them"
        else:
            hint = "does it need a user name and password? Put them in the proxy URL"
        return ProxyError(
            f"cannot use the proxy {shown}: it ended the SOCKS handshake ({detail}); "
            f"{hint}, and check that it is a SOCKS proxy"
        )
    return ServiceError(f"cannot use the proxy {shown}: {detail}")


def _credentials_refused(proxy: str | None, detail: str) -> ProxyError:
    """A proxy that wants credentials it did not get (or did not accept)."""
    if proxy is None:
        return ProxyError(f"a proxy on the way asks for credentials ({detail})")
    shown = proxy_for_display(proxy)
    if urlsplit(proxy).password is not None:
        return ProxyError(
            f"cannot use the proxy {shown}: it refused the user name and password "
            f"({detail}); check them"
        )
    return ProxyError(
        f"cannot use the proxy {shown}: it asks for a user name and password ({detail}); "
        "put them in the proxy URL, as in http://user:password@host:port"
    )


def _short(exc: BaseException) -> str:
    """The innermost cause of a requests/urllib3 error, in a few words.

    The user needs the last link ("Connection refused", "certificate verify failed:
    ..."), not the chain's reprs.
    """
    *_, current = _causes(exc)
    verify_message = getattr(current, "verify_message", None)
    if verify_message:
        text = f"certificate verify failed: {verify_message}"
    elif isinstance(current, OSError) and current.strerror:
        text = current.strerror
    else:
        text = str(current) or type(current).__name__
        text = text.split(": ", 1)[-1] if text.startswith("<") else text
    return one_line(text, 200)


def _env_proxy_name(transport: Transport, url: str) -> str | None:
    proxies = transport.proxies_for(url)
    return next(iter(proxies.values()), None)
