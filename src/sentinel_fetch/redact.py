"""Keep secrets out of logs, URLs, messages, files and exceptions.

Tokens and passwords are registered here the moment the library learns them, and every
place text goes passes it through :func:`redact`: the error base class masks its
message (so ``str()`` of any :class:`~sentinel_fetch.errors.SentinelFetchError` is
clean, whoever prints it), the job ledger and the failure reports mask what they store,
and the :class:`RedactingFilter` (installed by the command line on its log handlers, and
available to any application) masks every log record, whichever library emitted it.
URLs are shown through :func:`redact_url`.

A secret is also masked in the spellings a server may quote it in (URL-encoded as in a
form body, JSON-escaped), and anything after ``Bearer`` is masked even when it is not a
registered token: a server that quotes an ``Authorization`` header may cut it short.
"""

from __future__ import annotations

import json
import logging
import re
import threading
from collections import deque
from urllib.parse import (
    parse_qsl,
    quote,
    quote_plus,
    unquote,
    unquote_plus,
    urlencode,
    urlsplit,
    urlunsplit,
)

__all__ = [
    "MASK",
    "RedactingFilter",
    "forget_secrets",
    "redact",
    "redact_url",
    "register_secret",
    "url_passwords",
]

MASK = "***"
# Query parameters that carry credentials: CDSE's download host accepts ?token=.
_SECRET_PARAMS = frozenset({"token", "access_token", "refresh_token", "password", "totp"})
# Short strings are too likely to occur by accident in ordinary text.
_MIN_SECRET_LENGTH = 6

_lock = threading.Lock()
# Passwords, TOTP secrets, proxy passwords: few, and needed for the whole run.
_lasting: dict[str, None] = {}
# Tokens: bounded, since a week-long run refreshes its token a thousand times and memory
# must stay flat; the oldest leave first, long expired. They never push out a password.
_rotating: deque[str] = deque(maxlen=256)


# A bearer credential as an Authorization header or a quote of one spells it.
_BEARER = re.compile(r"(\bBearer\s+)[A-Za-z0-9\-._~+/]+=*")
# The user-info part of something URL-like that urlsplit cannot read (a broken port).
_USER_INFO = re.compile(r"(//[^/@\s:]*:)[^/@\s]*@")


# The user-info of a URL, read without urlsplit (which refuses a broken host or port):
# everything between the scheme and the last "@" before the path.
_URL_USER_INFO = re.compile(r"^[A-Za-z][A-Za-z0-9+.\-]*://([^/?#]*)@")
# A ?password= (or &password=) query parameter, however the rest of the URL looks.
_URL_PASSWORD_PARAM = re.compile(r"[?&]password=([^&#]*)", re.IGNORECASE)


def url_passwords(url: str) -> list[str]:
    """Every spelling of the passwords a URL carries: as written and percent-decoded.

    Read with regular expressions, not :func:`urllib.parse.urlsplit`, so a URL it
    refuses (``postgresql://bob:pw@[::1:1/db``) still gives its password up; libpq
    quotes a URL as written, a server may quote the decoded password.

    Example:
        >>> url_passwords("postgresql://bob:p%40ss@[::1:1/db?password=two")
        ['p%40ss', 'p@ss', 'two']
    """
    found: list[str] = []
    match = _URL_USER_INFO.match(url)
    if match is not None:
        _, colon, password = match.group(1).partition(":")
        if colon and password:
            found.append(password)
    found += [value for value in _URL_PASSWORD_PARAM.findall(url) if value]
    spellings: list[str] = []
    for raw in found:
        for spelling in (raw, unquote(raw), unquote_plus(raw)):
            if spelling and spelling not in spellings:
                spellings.append(spelling)
    return spellings


def register_secret(secret: str | None, *, rotating: bool = False) -> None:
    """Remember a secret so :func:`redact` and :class:`RedactingFilter` hide it.

    Its URL-encoded and JSON-escaped spellings are remembered too: a server that echoes
    a form body or a JSON request quotes the secret that way.

    Args:
        secret: the secret; ``None`` and very short strings are ignored.
        rotating: a token replaced as the run goes on; only the latest few hundred are
            kept. Other secrets (passwords) are kept for the whole run.
    """
    if not secret or len(secret) < _MIN_SECRET_LENGTH:
        return
    spellings = dict.fromkeys(
        (secret, quote(secret, safe=""), quote_plus(secret), json.dumps(secret)[1:-1])
    )
    with _lock:
        for spelling in spellings:
            if spelling in _lasting:
                continue
            if not rotating:
                _lasting[spelling] = None
            elif spelling not in _rotating:
                _rotating.append(spelling)


def forget_secrets() -> None:
    """Drop every registered secret (tests use this between cases)."""
    with _lock:
        _lasting.clear()
        _rotating.clear()


def redact(text: str) -> str:
    """Replace every registered secret in ``text`` with ``***``.

    Example:
        >>> register_secret("s3cr3t-token-value")
        >>> redact("Authorization: Bearer s3cr3t-token-value")
        'Authorization: Bearer ***'
    """
    with _lock:
        # Longest first: a secret that contains another must not leave its rest behind.
        secrets = sorted((*_lasting, *_rotating), key=len, reverse=True)
    for secret in secrets:
        if secret in text:
            text = text.replace(secret, MASK)
    return _BEARER.sub(rf"\g<1>{MASK}", text)


def redact_url(url: str) -> str:
    """A URL safe to show: no password in the user-info part, no token parameters.

    Example:
        >>> redact_url("socks5://alice:pw@127.0.0.1:7890")
        'socks5://alice:***@127.0.0.1:7890'
        >>> redact_url("https://download.example/odata/v1/Products(1)/$value?token=abc")
        'https://download.example/odata/v1/Products(1)/$value?token=***'
    """
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises ValueError for a malformed port
    except ValueError:
        # Not a URL urlsplit can read, yet it may still carry user:password@.
        return redact(_USER_INFO.sub(rf"\g<1>{MASK}@", url))
    netloc = parts.netloc
    if parts.password is not None:
        user, _, host = netloc.rpartition("@")
        name = user.split(":", 1)[0]
        netloc = f"{name}:{MASK}@{host}"
    query = parts.query
    if query:
        pairs = parse_qsl(query, keep_blank_values=True)
        if any(key.lower() in _SECRET_PARAMS for key, _ in pairs):
            masked = [(k, MASK if k.lower() in _SECRET_PARAMS else v) for k, v in pairs]
            query = urlencode(masked, safe="*$(),'/:")
    return redact(urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment)))


class RedactingFilter(logging.Filter):
    """A logging filter that removes registered secrets from every record it sees.

    Attach it to handlers (not loggers): handler filters see records from every
    library, including urllib3's debug lines.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        cleaned = redact(message)
        if cleaned != message or record.args:
            record.msg = cleaned
            record.args = None
        if record.exc_info and record.exc_info[1] is not None:
            # The formatted traceback is produced later from exc_info; pre-render it clean.
            formatter = logging.Formatter()
            record.exc_text = redact(formatter.formatException(record.exc_info))
            record.exc_info = None
        return True
