"""Fault injection: reproduce, on demand, every failure CDSE users report.

A :class:`FaultPlan` holds rules. Each rule names a ``kind``, the host it applies to, how
many matching requests it fires for (``times``; ``-1`` = always) and optional filters
(``product`` id or name, ``path_contains``, ``method``). Rules are set from Python
(``emulator.faults.add(CutFault(after_bytes=1000))``) or over HTTP through the admin
endpoint (``POST /_emulator/faults`` with ``{"kind": "cut", "after_bytes": 1000}``).

What each kind reproduces (peers.md §3 numbers the user reports):

==============  ===========================================================================
``status``      5xx bursts (#353), 429 with/without ``Retry-After`` (§3.3), WAF 429 on the
                catalogue (spec §6.2).
``cut``         the server closes the connection before ``Content-Length`` bytes (§3.5,
                CDSETool#67: incomplete zips).
``corrupt``     the body arrives complete but wrong (checksum failures, §3.5).
``stall``       the server stops sending for a while (hangs, §3.13).
``expire_token`` the access token expires mid-batch or mid-stream (§3.1, DAT-ZIP-109).
``ignore_range`` one answer ignores ``Range`` and sends 200 + the full body (§3.6).
``end_sessions`` the user's sessions end, so the refresh grant fails (§3.1, eodag#803).
``redirect``    a 3xx to another origin, to check that clients do not leak the token
                (§3.14, rslearn#143).
``hold``        the body pauses after ``after_bytes`` until :meth:`FaultPlan.release_holds`
                (no user report: lets a test line streams up on a busy machine, e.g. "four
                streams are open at once", without betting on timing).
``drop_handshake`` the server (or a middlebox) reads the TLS ClientHello and closes the
                connection (or resets it) without answering: a dropped handshake, which
                is not a certificate problem.
``trickle``     the body goes on a few bytes at a time with pauses in between: each read
                gets something, so a per-read timeout never fires (a dying upstream, a
                throttling middlebox).
``slow_head``   the status line and headers go out a few bytes at a time with pauses in
                between, before any body: a client waiting for the head with only a
                per-read timeout waits for ever (a slowloris-style server or middlebox).
``chunked``     the body is sent with ``Transfer-Encoding: chunked`` and no
                ``Content-Length`` (a zipper streaming an archive it builds on the fly),
                optionally followed by bytes the archive does not have, or by an endless
                stream of them (a server that lies about the size).
``gzip``        the body is compressed with ``Content-Encoding: gzip`` as nginx's gzip
                filter does: sent chunked, always the whole resource (200) because
                compression turns Range off, and only when the request accepts gzip unless
                ``ignore_accept_encoding`` (a server or proxy that compresses anyway).
``rewrite``     a catalogue or identity answer whose text differs from the store's: a
                product renamed to hostile text (escape sequences, spreadsheet formulas).
``body``        an answer no honest server sends: JSON nested 100,000 deep, hundreds of
                megabytes, a lying or missing ``Content-Length``, an envelope of the
                wrong types (every answer may be hostile).
``entity``      one product's catalogue entity altered: fields replaced or removed, to
                serve what real entities carry (``Footprint: null``, spec §12.1) and
                what a broken one might (``ContentLength: "lots"``, a non-UUID ``Id``).
==============  ===========================================================================

A ``status`` rule with ``echo`` also quotes a secret of the request in its error body
(``"password"``: the form's password; ``"authorization"``: the ``Authorization``
header), as misconfigured identity servers and gateways do, so a test can check that
the client masks secrets in everything it writes.

Rules fire at five moments. *During the TLS handshake* (a host, no filters):
``drop_handshake``. *Before dispatch* (any host): ``status``, ``redirect``, ``body``,
``end_sessions``, ``slow_head``, ``stall`` and ``expire_token`` without
``after_bytes``. *While a 2xx body is sent*: ``cut``, ``corrupt``, ``hold``,
``trickle``, ``chunked``, ``gzip``, ``rewrite``, and ``stall``/``expire_token`` with
``after_bytes``. *When a download request carries Range*: ``ignore_range``. *For each
product entity of a catalogue answer*: ``entity`` (its ``product`` filter selects the
entity, not the request). A rule only counts a firing when it actually applies, so a
HEAD request does not use up a ``cut``, a ``gzip`` rule is not used up by a request that
does not accept gzip, and ``drop_handshake`` never fires over plain HTTP.

:meth:`FaultPlan.randomize` is for soak tests: every product GET on the download host
independently draws a fault with probability ``rate``. The draw for the n-th request of
a product depends only on ``(seed, product, n)``, so a failing soak run replays the same
faults whatever the thread interleaving.
"""

from __future__ import annotations

import random
import threading
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field, fields
from typing import Any, ClassVar

__all__ = [
    "BEFORE_DISPATCH",
    "ECHOES",
    "HOSTS",
    "RANDOM_KINDS",
    "BodyFault",
    "ChunkedFault",
    "CorruptFault",
    "CutFault",
    "DropHandshakeFault",
    "EndSessionsFault",
    "EntityFault",
    "ExpireTokenFault",
    "Fault",
    "FaultPlan",
    "FaultTarget",
    "FiredFault",
    "GzipFault",
    "HoldFault",
    "IgnoreRangeFault",
    "RedirectFault",
    "RewriteFault",
    "SlowHeadFault",
    "StallFault",
    "StatusFault",
    "TrickleFault",
    "accepts_gzip",
    "fault_from_dict",
]

#: The emulator's hosts, as fault rules name them.
HOSTS = ("identity", "catalogue", "download", "zipper", "stac", "quicklook", "quicklook-files")

#: What a ``status`` rule's ``echo`` may quote from the request.
ECHOES = ("password", "authorization")

#: Kinds :meth:`FaultPlan.randomize` draws from when no list is given.
RANDOM_KINDS = ("status", "cut", "corrupt", "stall", "expire_token", "ignore_range")

BEFORE_DISPATCH = "before"
_BODY = "body"
_RANGE = "range"
_HANDSHAKE = "handshake"
_ENTITY = "entity"
# A body fault is built in memory; this keeps a typo from exhausting the test machine.
_MAX_FAULT_BODY_BYTES = 1 << 30


@dataclass(frozen=True, kw_only=True)
class Fault:
    """Common fields of every fault rule.

    Attributes:
        host: ``identity``, ``catalogue``, ``download`` (default), ``zipper``, ``stac``,
            ``quicklook`` or ``quicklook-files``.
        times: how many matching requests the rule fires for; ``-1`` = always.
        product: only requests for this product (id or name).
        path_contains: only requests whose path contains this text.
        method: only requests with this HTTP method (``GET``, ``HEAD``, ``POST``...).
    """

    kind: ClassVar[str] = ""
    host: str = "download"
    times: int = 1
    product: str | None = None
    path_contains: str | None = None
    method: str | None = None

    def __post_init__(self) -> None:
        if self.host not in HOSTS:
            raise ValueError(f"host must be one of {HOSTS}, got {self.host!r}")
        if self.times == 0 or self.times < -1:
            raise ValueError(f"times must be positive or -1 (always), got {self.times}")

    @property
    def moment(self) -> str:
        """When the rule fires: before dispatch, during the body or on a Range request."""
        return BEFORE_DISPATCH

    def matches(self, target: FaultTarget) -> bool:
        """Whether the rule's filters select this request."""
        if target.host != self.host:
            return False
        if self.method is not None and target.method.upper() != self.method.upper():
            return False
        if self.path_contains is not None and self.path_contains not in target.path:
            return False
        return self.product is None or self.product in (target.product_id, target.product_name)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form, the shape :func:`fault_from_dict` reads."""
        return {"kind": self.kind, **asdict(self)}


def _non_negative(name: str, value: float | None) -> None:
    if value is not None and value < 0:
        raise ValueError(f"{name} must be >= 0, got {value}")


@dataclass(frozen=True, kw_only=True)
class StatusFault(Fault):
    """Answer ``status`` instead of handling the request.

    Without ``body``, the body is what that host sends for that status: CDSE's
    ``{"trace-id","code","message"}`` on the download host (``code``/``message`` when
    given; 429 defaults to DAT-ZIP-100, spec §6.2), the WAF body for 429 on the
    catalogue (spec §6.2), and an nginx-style HTML page for 502/503/504, which is what a
    proxy in front of a failing service sends [INFERRED].

    Attributes:
        status: HTTP status to send.
        code: CDSE error code for the JSON body (``DAT-ZIP-100``...).
        message: message for the JSON body.
        body: explicit JSON body, replacing the default.
        retry_after_s: adds ``Retry-After`` (whole seconds, rounded up).
        echo: quote a secret of the request in the JSON error body's message:
            ``"password"`` (``password=<the form's password>``, as an identity server
            that echoes its parameters) or ``"authorization"`` (``Authorization: <the
            header>``, as a gateway that quotes the request); ``None`` quotes nothing.
    """

    kind: ClassVar[str] = "status"
    status: int = 503
    code: str | None = None
    message: str | None = None
    body: object = None
    retry_after_s: float | None = None
    echo: str | None = None

    def __post_init__(self) -> None:
        super().__post_init__()
        if not 300 <= self.status <= 599:
            raise ValueError(f"status must be a 3xx-5xx code, got {self.status}")
        _non_negative("retry_after_s", self.retry_after_s)
        if self.echo is not None and self.echo not in ECHOES:
            raise ValueError(f"echo must be one of {ECHOES}, got {self.echo!r}")
        if self.echo is not None and self.body is not None:
            raise ValueError("echo quotes into the default body; it cannot go with body")


@dataclass(frozen=True, kw_only=True)
class CutFault(Fault):
    """Close the connection after ``after_bytes`` body bytes (the client sees a short body).

    A cut at or beyond the body's length has no effect.
    """

    kind: ClassVar[str] = "cut"
    after_bytes: int = 0

    def __post_init__(self) -> None:
        super().__post_init__()
        _non_negative("after_bytes", self.after_bytes)

    @property
    def moment(self) -> str:
        """Fires while a 2xx body is sent."""
        return _BODY


@dataclass(frozen=True, kw_only=True)
class CorruptFault(Fault):
    """Flip ``length`` bytes (XOR 0xFF) at ``offset`` of the resource.

    ``offset`` counts from the start of the archive (or of the node's file), not of the
    body, so a corrupted byte stays put whatever Range the client asked for; a body
    that does not contain the offset is sent intact (but the rule still counts as fired).
    """

    kind: ClassVar[str] = "corrupt"
    offset: int = 0
    length: int = 1

    def __post_init__(self) -> None:
        super().__post_init__()
        _non_negative("offset", self.offset)
        if self.length < 1:
            raise ValueError("length must be >= 1")

    @property
    def moment(self) -> str:
        """Fires while a 2xx body is sent."""
        return _BODY


@dataclass(frozen=True, kw_only=True)
class StallFault(Fault):
    """Pause ``stall_s`` seconds before the headers, or after ``after_bytes`` body bytes."""

    kind: ClassVar[str] = "stall"
    stall_s: float = 1.0
    after_bytes: int | None = None

    def __post_init__(self) -> None:
        super().__post_init__()
        _non_negative("stall_s", self.stall_s)
        _non_negative("after_bytes", self.after_bytes)

    @property
    def moment(self) -> str:
        """Before dispatch without ``after_bytes``, else while the body is sent."""
        return BEFORE_DISPATCH if self.after_bytes is None else _BODY


@dataclass(frozen=True, kw_only=True)
class HoldFault(Fault):
    """Pause the body after ``after_bytes`` until the plan's holds are released.

    Where a stall waits a fixed time, a hold waits for the test: it opens several streams,
    waits on the stats until they are all open, then calls
    :meth:`FaultPlan.release_holds`. Adding a hold closes the gate again; clearing the plan
    releases every held stream.
    """

    kind: ClassVar[str] = "hold"
    after_bytes: int = 0

    def __post_init__(self) -> None:
        super().__post_init__()
        _non_negative("after_bytes", self.after_bytes)

    @property
    def moment(self) -> str:
        """Fires while a 2xx body is sent."""
        return _BODY


@dataclass(frozen=True, kw_only=True)
class ExpireTokenFault(Fault):
    """The requesting access token expires now, or once ``after_bytes`` body bytes are sent.

    Without ``after_bytes`` this very request is answered 401 DAT-ZIP-109. With it, the
    stream is cut at that point when ``expire_midstream`` is on, and every later request
    with the token gets 401 DAT-ZIP-109.
    """

    kind: ClassVar[str] = "expire_token"
    after_bytes: int | None = None

    def __post_init__(self) -> None:
        super().__post_init__()
        _non_negative("after_bytes", self.after_bytes)

    @property
    def moment(self) -> str:
        """Before dispatch without ``after_bytes``, else while the body is sent."""
        return BEFORE_DISPATCH if self.after_bytes is None else _BODY


@dataclass(frozen=True, kw_only=True)
class IgnoreRangeFault(Fault):
    """Answer one Range request with 200 and the full body (spec §5.4 allows both)."""

    kind: ClassVar[str] = "ignore_range"

    @property
    def moment(self) -> str:
        """Fires on download requests that carry Range."""
        return _RANGE


@dataclass(frozen=True, kw_only=True)
class EndSessionsFault(Fault):
    """End every session of the requesting user; the request itself proceeds.

    The user's refresh tokens stop working (400 ``Token is not active``), so the client
    must log in again; access tokens already issued stay valid until they expire, as
    JWTs checked offline do [INFERRED].
    """

    kind: ClassVar[str] = "end_sessions"


@dataclass(frozen=True, kw_only=True)
class RedirectFault(Fault):
    """Answer ``status`` (302) with ``Location: location``.

    ``{path}`` and ``{query}`` in ``location`` are replaced by the request's path and
    query string, so a rule can send a client to another origin with the same path and
    the test can then check (stats events) whether ``Authorization`` followed it.
    """

    kind: ClassVar[str] = "redirect"
    location: str
    status: int = 302

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.status not in (301, 302, 303, 307, 308):
            raise ValueError(f"redirect status must be 301/302/303/307/308, got {self.status}")

    def location_for(self, path: str, query: str) -> str:
        """The Location header for a request with this path and query."""
        return self.location.replace("{path}", path).replace("{query}", query)


@dataclass(frozen=True, kw_only=True)
class DropHandshakeFault(Fault):
    """Read the TLS ClientHello, then close the connection without a word.

    The client sees the handshake end early (``EOF occurred in violation of protocol``),
    or, with ``reset``, a connection reset: what an overloaded server or a middlebox
    that drops connections does. Nothing about the certificate is wrong. Only the host
    filter applies (there is no request yet), and over plain HTTP the rule never fires.
    On the catalogue host it also drops a connection meant for the admin endpoint, which
    shares that port: steer the emulator from Python, or expect one refused admin call.

    Attributes:
        reset: end with a TCP reset instead of an orderly close.
    """

    kind: ClassVar[str] = "drop_handshake"
    reset: bool = False

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.product is not None or self.path_contains is not None or self.method is not None:
            raise ValueError("drop_handshake fires before any request: only host and times apply")

    @property
    def moment(self) -> str:
        """Fires during the TLS handshake."""
        return _HANDSHAKE


@dataclass(frozen=True, kw_only=True)
class TrickleFault(Fault):
    """After ``after_bytes`` body bytes, send ``bytes_per_write`` bytes every ``interval_s``.

    The connection stays alive and every read receives something, so a client that only
    has a per-read timeout waits for the whole body at this pace.
    """

    kind: ClassVar[str] = "trickle"
    after_bytes: int = 0
    bytes_per_write: int = 1
    interval_s: float = 1.0

    def __post_init__(self) -> None:
        super().__post_init__()
        _non_negative("after_bytes", self.after_bytes)
        _non_negative("interval_s", self.interval_s)
        if self.bytes_per_write < 1:
            raise ValueError("bytes_per_write must be >= 1")

    @property
    def moment(self) -> str:
        """Fires while a 2xx body is sent."""
        return _BODY


@dataclass(frozen=True, kw_only=True)
class SlowHeadFault(Fault):
    """Send the answer's status line and headers ``bytes_per_write`` bytes every
    ``interval_s``; the body (if any) follows at the usual pace.

    Fires before dispatch, so it paces whatever the request is answered with, a
    ``status`` rule's answer included.
    """

    kind: ClassVar[str] = "slow_head"
    bytes_per_write: int = 1
    interval_s: float = 1.0

    def __post_init__(self) -> None:
        super().__post_init__()
        _non_negative("interval_s", self.interval_s)
        if self.bytes_per_write < 1:
            raise ValueError("bytes_per_write must be >= 1")


@dataclass(frozen=True, kw_only=True)
class ChunkedFault(Fault):
    """Send the body chunked, without ``Content-Length``, then ``extra_bytes`` more.

    ``extra_bytes`` (zeros) follow the real body inside the same chunked stream, so the
    client receives more than the archive has; ``-1`` keeps sending them until the
    client goes away.
    """

    kind: ClassVar[str] = "chunked"
    extra_bytes: int = 0

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.extra_bytes < -1:
            raise ValueError(f"extra_bytes must be >= 0 or -1 (endless), got {self.extra_bytes}")

    @property
    def moment(self) -> str:
        """Fires while a 2xx body is sent."""
        return _BODY


@dataclass(frozen=True, kw_only=True)
class GzipFault(Fault):
    """Compress the body with gzip (``Content-Encoding: gzip``), the way nginx does.

    The whole resource is sent (200, no ``Content-Range``: nginx serves no ranges of a
    compressed answer), chunked without ``Content-Length`` unless ``chunked`` is false,
    in which case the compressed length is announced (a pre-compressed file). The bytes
    are compressed in memory: meant for test-sized archives.

    Attributes:
        ignore_accept_encoding: compress even when the request does not accept gzip
            (``Accept-Encoding: identity``), as a misconfigured server or proxy does.
        chunked: send chunked (nginx's gzip filter) rather than with a length.
        extra_bytes: zero bytes appended to the resource before compressing, so the
            body decodes to more than the catalogue's size while only a few bytes more
            cross the wire (a decompression bomb: 64 MiB of zeros compress to 64 KiB).
    """

    kind: ClassVar[str] = "gzip"
    ignore_accept_encoding: bool = False
    chunked: bool = True
    extra_bytes: int = 0

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.extra_bytes < 0:
            raise ValueError(f"extra_bytes must be >= 0, got {self.extra_bytes}")

    @property
    def moment(self) -> str:
        """Fires while a 2xx body is sent."""
        return _BODY

    def matches(self, target: FaultTarget) -> bool:
        """Also requires a request that accepts gzip, unless told to ignore that."""
        if not super().matches(target):
            return False
        return self.ignore_accept_encoding or accepts_gzip(target.accept_encoding)


def accepts_gzip(accept_encoding: str | None) -> bool:
    """Whether an ``Accept-Encoding`` header value lets the server send gzip.

    >>> accepts_gzip("gzip, deflate"), accepts_gzip("identity"), accepts_gzip("gzip;q=0")
    (True, False, False)
    >>> accepts_gzip("*"), accepts_gzip(None)
    (True, False)
    """
    if not accept_encoding:
        return False
    for item in accept_encoding.split(","):
        name, _, parameters = item.strip().partition(";")
        if name.strip().lower() not in ("gzip", "x-gzip", "*"):
            continue
        quality = parameters.strip().lower()
        if quality.startswith("q="):
            try:
                return float(quality[2:]) > 0
            except ValueError:
                return False
        return True
    return False


@dataclass(frozen=True, kw_only=True)
class RewriteFault(Fault):
    """Replace every ``find`` with ``replace`` in a 2xx answer of the catalogue or identity.

    The text is replaced in the body bytes as sent (UTF-8), so in a JSON answer
    ``replace`` must be JSON-escaped text: ``json.dumps(name)[1:-1]``. A body without
    ``find`` is sent unchanged (the rule still counts as fired). Product archives are
    never rewritten: their checksums are the catalogue's.
    """

    kind: ClassVar[str] = "rewrite"
    host: str = "catalogue"
    find: str
    replace: str

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.host == "download":
            raise ValueError("rewrite applies to catalogue and identity answers, not downloads")
        if not self.find:
            raise ValueError("find must not be empty")

    @property
    def moment(self) -> str:
        """Fires while a 2xx body is sent."""
        return _BODY

    def apply(self, body: bytes) -> bytes:
        """The body with ``find`` replaced."""
        return body.replace(self.find.encode(), self.replace.encode())


@dataclass(frozen=True, kw_only=True)
class BodyFault(Fault):
    """Answer ``status`` (200 by default) with a body built from ``parts``.

    The body is each ``(text, count)`` part's text repeated ``count`` times, in order:
    ``[["{\"value\":", 1], ["[", 100000], ["]", 100000], ["}", 1]]`` is a catalogue page
    nested 100,000 deep, ``[["{\"value\":[", 1], [" ", 300000000], ["]}", 1]]`` one of
    300 MB. Text is sent as UTF-8.

    Attributes:
        status: HTTP status to send (a 2xx included).
        parts: ``(text, count)`` pairs.
        content_type: the ``Content-Type`` header.
        content_length: the ``Content-Length`` to announce; ``None`` announces the true
            length. After a body shorter than announced the connection closes.
        close_delimited: announce no length at all: the body ends when the connection
            closes (HTTP/1.1 allows it).
        headers: extra ``(name, value)`` header lines, sent as given, repeats included.
            With a ``Content-Length`` among them (``"lots"``, or two that disagree) no
            other is announced and the body ends when the connection closes.
    """

    kind: ClassVar[str] = "body"
    status: int = 200
    parts: tuple[tuple[str, int], ...] = ()
    content_type: str = "application/json"
    content_length: int | None = None
    close_delimited: bool = False
    headers: tuple[tuple[str, str], ...] = ()

    def __post_init__(self) -> None:
        super().__post_init__()
        try:
            headers = tuple((str(name), str(value)) for name, value in self.headers)
        except (TypeError, ValueError):
            raise ValueError("headers must be [name, value] pairs") from None
        if any(not name or "\n" in name + value or "\r" in name + value for name, value in headers):
            raise ValueError("a header needs a name, and no line breaks")
        object.__setattr__(self, "headers", headers)
        if not 200 <= self.status <= 599:
            raise ValueError(f"status must be a 2xx-5xx code, got {self.status}")
        try:
            parts = tuple((str(text), int(count)) for text, count in self.parts)
        except (TypeError, ValueError):
            raise ValueError("parts must be [text, count] pairs") from None
        if any(count < 0 for _, count in parts):
            raise ValueError("a part's count must be >= 0")
        if sum(len(text.encode()) * count for text, count in parts) > _MAX_FAULT_BODY_BYTES:
            raise ValueError(f"a body fault is at most {_MAX_FAULT_BODY_BYTES} bytes")
        object.__setattr__(self, "parts", parts)
        _non_negative("content_length", self.content_length)

    def body(self) -> bytes:
        """The bytes to send."""
        return b"".join(text.encode() * count for text, count in self.parts)

    @property
    def sets_length(self) -> bool:
        """Whether ``headers`` carry their own ``Content-Length`` lines."""
        return any(name.lower() == "content-length" for name, _ in self.headers)


@dataclass(frozen=True, kw_only=True)
class EntityFault(Fault):
    """Alter the catalogue entity of the product ``product`` names (every product if none).

    Applies to search pages, ``OData.CSC.FilterList`` answers and ``Products(<id>)``,
    wherever the entity appears; ``times`` counts altered entities. Keys keep their
    place: a replaced field stays where it was, a new one goes last.

    Attributes:
        replace: field name -> JSON value to send instead (``{"Footprint": None}``).
        drop: fields to leave out (``["GeoFootprint"]``).
    """

    kind: ClassVar[str] = "entity"
    host: str = "catalogue"
    replace: Mapping[str, object] = field(default_factory=dict)
    drop: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.host != "catalogue":
            raise ValueError("entity faults apply to the catalogue host")
        if not isinstance(self.replace, Mapping) or not all(
            isinstance(name, str) for name in self.replace
        ):
            raise ValueError("replace must map field names to values")
        object.__setattr__(self, "replace", dict(self.replace))
        object.__setattr__(self, "drop", tuple(str(name) for name in self.drop))

    @property
    def moment(self) -> str:
        """Fires for each product entity of a catalogue answer."""
        return _ENTITY

    def apply(self, entity: dict[str, object]) -> dict[str, object]:
        """The entity as this rule serves it."""
        altered = {k: v for k, v in entity.items() if k not in self.drop}
        altered.update(self.replace)
        return altered


_KINDS: dict[str, type[Fault]] = {
    cls.kind: cls
    for cls in (
        BodyFault,
        EntityFault,
        StatusFault,
        CutFault,
        CorruptFault,
        StallFault,
        HoldFault,
        ExpireTokenFault,
        IgnoreRangeFault,
        EndSessionsFault,
        RedirectFault,
        DropHandshakeFault,
        TrickleFault,
        SlowHeadFault,
        ChunkedFault,
        GzipFault,
        RewriteFault,
    )
}


def fault_from_dict(data: Mapping[str, Any]) -> Fault:
    """Build a rule from its JSON form (``{"kind": "cut", "after_bytes": 10, ...}``).

    Raises:
        ValueError: unknown kind, unknown field or invalid value.
    """
    kind = data.get("kind")
    cls = _KINDS.get(kind) if isinstance(kind, str) else None
    if cls is None:
        raise ValueError(f"unknown fault kind {kind!r}; known: {sorted(_KINDS)}")
    allowed = {f.name for f in fields(cls)}
    params = {k: v for k, v in data.items() if k != "kind"}
    unknown = set(params) - allowed
    if unknown:
        raise ValueError(f"unknown field(s) for {kind!r}: {sorted(unknown)}")
    try:
        return cls(**params)
    except TypeError as exc:
        raise ValueError(str(exc)) from exc


@dataclass(frozen=True)
class FaultTarget:
    """What a rule's filters look at.

    Attributes:
        host: the host the request arrived at.
        method: HTTP method.
        path: percent-decoded path.
        product_id: product named in the path (``Products(<id>)``), if any.
        product_name: that product's name, when the store knows it.
        accept_encoding: the request's ``Accept-Encoding`` header, if any.
    """

    host: str
    method: str
    path: str
    product_id: str | None = None
    product_name: str | None = None
    accept_encoding: str | None = None


@dataclass(frozen=True)
class FiredFault:
    """A record that a rule fired (tests assert on what was injected)."""

    fault: Fault
    host: str
    method: str
    path: str
    product_id: str | None
    randomized: bool = False


@dataclass
class _Entry:
    fault: Fault
    remaining: int


@dataclass
class _RandomPolicy:
    rate: float
    kinds: tuple[str, ...]
    seed: int
    draws: Counter[str] = field(default_factory=Counter)


class FaultPlan:
    """A thread-safe, ordered list of fault rules plus an optional random policy."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._entries: list[_Entry] = []
        self._fired: list[FiredFault] = []
        self._random: _RandomPolicy | None = None
        self._released = threading.Event()
        self._released.set()

    def add(self, fault: Fault) -> Fault:
        """Append a rule; returns it. A :class:`HoldFault` closes the hold gate."""
        with self._lock:
            self._entries.append(_Entry(fault, fault.times))
            if isinstance(fault, HoldFault):
                self._released.clear()
        return fault

    def extend(self, faults: Iterable[Fault]) -> None:
        """Append several rules, in order."""
        for fault in faults:
            self.add(fault)

    def clear(self) -> None:
        """Remove every rule, stop random faults, release held streams (fired ones stay)."""
        with self._lock:
            self._entries.clear()
            self._random = None
        self._released.set()

    def release_holds(self) -> None:
        """Let every stream paused by a :class:`HoldFault` go on (and later ones pass)."""
        self._released.set()

    def wait_released(self, stopping: threading.Event) -> bool:
        """Block a held stream until released; ``False`` if the server stops first."""
        while not self._released.wait(0.05):
            if stopping.is_set():
                return False
        return True

    def pending(self) -> list[tuple[Fault, int]]:
        """Rules still armed, with how many firings each has left (``-1`` = always)."""
        with self._lock:
            return [(e.fault, e.remaining) for e in self._entries]

    @property
    def fired(self) -> list[FiredFault]:
        """Every firing so far, oldest first."""
        with self._lock:
            return list(self._fired)

    def randomize(self, rate: float, kinds: Sequence[str] | None = None, seed: int = 0) -> None:
        """Give every product GET on the download host a ``rate`` chance of one fault.

        Args:
            rate: probability in ``[0, 1]``; 0 turns random faults off.
            kinds: kinds to draw from (default :data:`RANDOM_KINDS`; ``end_sessions``
                is allowed too, ``redirect`` is not: it needs a target).
            seed: makes the sequence of faults reproducible.
        """
        if not 0.0 <= rate <= 1.0:
            raise ValueError(f"rate must be within [0, 1], got {rate}")
        chosen = tuple(kinds) if kinds else RANDOM_KINDS
        allowed = (*RANDOM_KINDS, "end_sessions")
        bad = [k for k in chosen if k not in allowed]
        if bad:
            raise ValueError(f"cannot randomize {bad}; choose from {allowed}")
        with self._lock:
            self._random = _RandomPolicy(rate, chosen, seed) if rate > 0 else None

    # Used by the hosts -----------------------------------------------------------

    def take_before(self, target: FaultTarget) -> list[Fault]:
        """Rules that fire before the request is handled (at most one answering rule)."""
        return self._take(target, BEFORE_DISPATCH)

    def take_body(self, target: FaultTarget) -> list[Fault]:
        """Rules that act on the 2xx body about to be sent for this request."""
        return self._take(target, _BODY)

    def take_entities(self, target: FaultTarget) -> list[EntityFault]:
        """Rules that alter the entity of the product ``target`` names."""
        return [f for f in self._take(target, _ENTITY) if isinstance(f, EntityFault)]

    def alters_entities(self) -> bool:
        """Whether any rule may alter catalogue entities (lets answers skip the check)."""
        with self._lock:
            return any(entry.fault.moment == _ENTITY for entry in self._entries)

    def take_ignore_range(self, target: FaultTarget) -> bool:
        """Whether a rule makes this Range request get a full 200 answer."""
        return bool(self._take(target, _RANGE))

    def take_handshake(self, host: str) -> DropHandshakeFault | None:
        """The rule (if any) that drops the TLS handshake of a new connection to ``host``."""
        taken = self._take(FaultTarget(host, "", ""), _HANDSHAKE)
        return next((f for f in taken if isinstance(f, DropHandshakeFault)), None)

    def draw_random(self, target: FaultTarget, length: int) -> Fault | None:
        """The random fault (if any) for this product GET of a ``length``-byte body."""
        with self._lock:
            policy = self._random
            if policy is None or target.host != "download" or target.product_id is None:
                return None
            attempt = policy.draws[target.product_id]
            policy.draws[target.product_id] += 1
        rng = random.Random(f"{policy.seed}:{target.product_id}:{attempt}")
        if rng.random() >= policy.rate:
            return None
        fault = _random_fault(rng, rng.choice(policy.kinds), length)
        with self._lock:
            self._fired.append(
                FiredFault(fault, target.host, target.method, target.path, target.product_id, True)
            )
        return fault

    def _take(self, target: FaultTarget, moment: str) -> list[Fault]:
        taken: list[Fault] = []
        answered = False
        with self._lock:
            for entry in self._entries:
                fault = entry.fault
                if fault.moment != moment or not fault.matches(target):
                    continue
                answers = isinstance(
                    fault, StatusFault | RedirectFault | DropHandshakeFault | BodyFault
                )
                if answers and answered:
                    continue
                answered = answered or answers
                taken.append(fault)
                if entry.remaining > 0:
                    entry.remaining -= 1
                self._fired.append(
                    FiredFault(fault, target.host, target.method, target.path, target.product_id)
                )
            self._entries = [e for e in self._entries if e.remaining != 0]
        return taken


def _random_fault(rng: random.Random, kind: str, length: int) -> Fault:
    """A fault of ``kind`` with parameters drawn to make sense for a ``length``-byte body."""
    offset = rng.randrange(length) if length > 0 else 0
    if kind == "status":
        status = rng.choice((500, 502, 503, 429))
        retry = rng.choice((None, 1.0)) if status in (429, 503) else None
        return StatusFault(status=status, retry_after_s=retry)
    if kind == "cut":
        return CutFault(after_bytes=offset)
    if kind == "corrupt":
        return CorruptFault(offset=offset)
    if kind == "stall":
        return StallFault(stall_s=round(rng.uniform(0.05, 0.5), 3), after_bytes=offset)
    if kind == "expire_token":
        return ExpireTokenFault(after_bytes=offset)
    if kind == "ignore_range":
        return IgnoreRangeFault()
    return EndSessionsFault()
