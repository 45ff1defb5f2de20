"""Turn a search URL copied from the Copernicus Browser into a :class:`Query`.

Most users draw their area in the Copernicus Browser, open the developer tools and copy
the catalogue request (often saved as ``SearchURL.txt``; peers.md §2, "Chinese-community
scripts"). :func:`parse_search_url` takes that text however it arrives, with
surrounding whitespace, a byte-order mark, quotes, or as a whole ``curl`` command
("Copy as cURL", bash or Windows cmd form), and returns a Query that selects exactly the
same products as the pasted filter.

Browser quirks handled (cdse-api.md §4): the empty first parameter of ``?&``, repeated
``$expand``, ``$count=True``, ``$top=50`` and ``$skip`` (page mechanics: ignored, since
we fetch every page), ``%20``/``%27``/``+`` encodings, deep nesting, ``or`` between
collection groups and ``not contains(...)``. ``$orderby`` is kept.

Decisions:

* **Truncation**: a filter cut short usually fails to parse (an open parenthesis or
  quote, a bare name where a condition belongs); a browser URL (``?&`` first) whose
  ``$filter`` is its last parameter is refused too, because the browser always sends
  ``$orderby``, ``$expand``, ``$top`` and ``$skip`` after it.
* **Placeholders**: ``{word}`` anywhere in the URL, even inside quotes (URL 3 of §4 has
  ``'{platform_name}'``), is an unfilled template, so a search text cannot contain
  braces around a word.
* **Doubly encoded URLs** (``%2520`` for a space, e.g. copied from a log of a URL
  encoded twice) are decoded twice: a filter decoded once cannot legitimately consist
  of percent escapes with no space and no quote.
* **Mapping to fields is exact**: each top-level ``and`` condition that has precisely
  the form a field is rendered in fills that field; everything else stays in
  ``Query.extra_filters`` word for word (in canonical spelling). This module only finds
  the ``$filter`` and ``$orderby`` in the URL: the mapping between fields and OData
  conditions, both ways, lives in :mod:`.conditions` (its table lists every field),
  and the checks of each field's value in :mod:`.inputs`. So
  ``ContentDate/Start le X`` and ``gt X`` stay extra filters rather than being shifted
  by a microsecond into ``end``/``start``, and a second ``contains(Name,...)`` stays
  ANDed rather than joining an OR group. Date literals are compared by instant, so the
  browser's ``...T23:59:59.999Z`` becomes ``end`` unchanged (products sensed in the
  last millisecond of the day stay excluded, as in the browser).
* Values a field would refuse (an unknown collection, cloud cover 150) stay extra
  filters, so the catalogue judges them as it would have; an invalid area raises
  :class:`~sentinel_fetch.errors.AreaError`, since the catalogue rejects those.

Example:
    >>> url = ("https://catalogue.dataspace.copernicus.eu/odata/v1/Products?&$filter="
    ...        "Collection/Name%20eq%20%27SENTINEL-2%27%20and%20Online%20eq%20true"
    ...        "&$count=True&$top=50&$skip=0")
    >>> query = parse_search_url(url, Endpoints())
    >>> query.collections, query.online
    (('SENTINEL-2',), True)
"""

from __future__ import annotations

import shlex
from pathlib import Path
from urllib.parse import SplitResult, parse_qsl, unquote, unquote_plus, urlsplit

from sentinel_fetch.catalogue.filter import find_placeholder
from sentinel_fetch.catalogue.odata import SEARCH_PATH
from sentinel_fetch.catalogue.query import Query
from sentinel_fetch.errors import BrowserURLError
from sentinel_fetch.settings import CDSE_CATALOGUE_URL, Endpoints, origin_of, url_problem
from sentinel_fetch.text import read_text_file

__all__ = [
    "MAX_URL_FILE_BYTES",
    "extract_search_url",
    "parse_search_url",
    "read_search_url_file",
]

_CDSE_HOST = urlsplit(CDSE_CATALOGUE_URL).hostname or ""
_CDSE_SEARCH_PATH = urlsplit(CDSE_CATALOGUE_URL).path + SEARCH_PATH
_EXPECTED = (
    "paste the catalogue request https://catalogue.dataspace.copernicus.eu/odata/v1/"
    "Products?$filter=... from the browser's developer tools (Network tab)"
)
_COMMANDS = ("curl", "curl.exe", "wget", "invoke-webrequest", "invoke-restmethod", "iwr", "irm")
_SCHEMES = ("http://", "https://")
#: Largest search URL file read. The browser keeps its URLs near 6,000 characters and a
#: "Copy as cURL" command with every header is some kB more; a bigger file is another file.
MAX_URL_FILE_BYTES = 1_000_000


def read_search_url_file(path: str | Path) -> str:
    """Read a file holding a search URL (``SearchURL.txt``) and return the URL.

    The file may be UTF-8 (with or without a byte-order mark) or UTF-16 (Windows
    Notepad's "Unicode"), and hold the URL with blank lines, quotes or as a ``curl``
    command around it. A file over :data:`MAX_URL_FILE_BYTES` is refused unread.

    Raises:
        BrowserURLError: the file cannot be read, is too big or holds no single URL.
    """
    file = Path(path)
    text = read_text_file(
        file, what="search URL file", max_bytes=MAX_URL_FILE_BYTES, error=BrowserURLError
    )
    try:
        return extract_search_url(text)
    except BrowserURLError as error:
        raise BrowserURLError(f"{file.name}: {error}") from None


def extract_search_url(text: str) -> str:
    """The URL inside pasted text: trimmed, unquoted, taken out of a command if needed.

    Raises:
        BrowserURLError: the text is empty, holds no URL or several.

    Example:
        >>> extract_search_url("curl 'https://example.org/Products?$top=1' -H 'accept: */*'")
        'https://example.org/Products?$top=1'
        >>> extract_search_url('\\ufeff  "https://example.org/a"\\n')
        'https://example.org/a'
    """
    stripped = text.replace("\ufeff", "").strip()
    while len(stripped) > 1 and (stripped[0], stripped[-1]) in (("'", "'"), ('"', '"'), ("<", ">")):
        stripped = stripped[1:-1].strip()
    if not stripped:
        raise BrowserURLError(f"the search URL is empty: {_EXPECTED}")
    if not stripped.lower().startswith(_SCHEMES):
        stripped = _url_in_command(stripped)
    lines = [line.strip() for line in stripped.splitlines() if line.strip()]
    found = sum(line.lower().startswith(_SCHEMES) for line in lines)
    if found > 1:
        raise BrowserURLError(f"the text holds {found} URLs: give one search URL")
    # An editor may have wrapped a long URL; DevTools URLs contain no raw spaces.
    return "".join(lines)


def _url_in_command(text: str) -> str:
    command = text
    if '^"' in command:
        # Chrome's "Copy as cURL (cmd)" escapes with carets: ^" ^& ^% and ^ at line ends.
        command = _remove_carets(command)
    try:
        tokens = shlex.split(command, posix=True)
    except ValueError:
        tokens = command.split()
    urls = [token.lstrip("$").strip("'\"") for token in tokens]
    urls = [token for token in urls if token.lower().startswith(_SCHEMES)]
    if urls:
        return urls[0]
    first = text.split()[0].lower()
    if first in _COMMANDS:
        raise BrowserURLError(f"the {first} command holds no http(s) URL: {_EXPECTED}")
    raise BrowserURLError(f"the text is not a URL (it starts {text[:30]!r}): {_EXPECTED}")


def _remove_carets(command: str) -> str:
    result: list[str] = []
    index = 0
    while index < len(command):
        char = command[index]
        if char == "^" and index + 1 < len(command):
            following = command[index + 1]
            result.append("" if following in "\r\n" else following)
            index += 2
            continue
        result.append(char)
        index += 1
    return "".join(result)


def parse_search_url(text: str, endpoints: Endpoints) -> Query:
    """Read a Copernicus Browser search URL (or a curl command holding one) as a Query.

    Args:
        text: the pasted URL, as copied (see :func:`extract_search_url` for what may
            surround it).
        endpoints: the configured hosts; besides the real catalogue
            (``catalogue.dataspace.copernicus.eu/odata/v1/Products``), URLs on
            ``endpoints.catalogue`` are accepted (the emulator in tests).

    Returns:
        A Query selecting exactly what the URL's ``$filter`` selects, with its
        ``$orderby``; ``$top``, ``$skip``, ``$count`` and ``$expand`` are ignored.

    Raises:
        BrowserURLError: not a catalogue search URL (another host, OpenSearch, STAC, a
            single-product URL...), a ``{placeholder}`` left in it, no ``$filter``.
        FilterSyntaxError: the filter does not parse (including a URL cut short).
        QueryError: the filter's dates make an empty range, or ``$orderby`` is unknown.
        AreaError: the filter's area is not a valid geometry.
    """
    url = extract_search_url(text)
    problem = url_problem(url)
    if problem is not None:
        raise BrowserURLError(f"the URL {problem}: {_EXPECTED}")
    _check_placeholders(url)
    parts = urlsplit(url)
    _check_address(parts, endpoints)
    pairs = parse_qsl(parts.query, keep_blank_values=True)
    if "$filter" not in {name for name, _ in pairs}:
        # Encoded twice: %2524filter decodes to %24filter.
        pairs = [(unquote_plus(name), unquote_plus(value)) for name, value in pairs]
    filters = [value for name, value in pairs if name == "$filter"]
    orders = [value for name, value in pairs if name == "$orderby"]
    if not filters:
        raise BrowserURLError(
            "the URL has no $filter: it looks truncated or is not a search; "
            "copy the whole request URL again"
        )
    if len(filters) > 1 or len(orders) > 1:
        name = "$filter" if len(filters) > 1 else "$orderby"
        raise BrowserURLError(f"the URL has {name} twice: give a URL with one {name}")
    # The browser's "?&" requests always go on after the filter ($orderby, $expand, $top,
    # $skip; §4): one that ends with its filter was cut, maybe mid-date, where the rest
    # could still parse and silently search for something else.
    if parts.query.startswith("&") and pairs[-1][0] == "$filter":
        raise BrowserURLError(
            "the URL ends inside its $filter (a browser URL goes on with &$top=...): "
            "it looks truncated, copy the whole request URL again"
        )
    filter_text = filters[0]
    if not filter_text.strip():
        raise BrowserURLError("the URL's $filter is empty: copy the request after a search")
    if "%" in filter_text and " " not in filter_text and "'" not in filter_text:
        filter_text = unquote_plus(filter_text)
    return Query(extra_filters=(filter_text,), order_by=orders[0] if orders else None)


def _check_placeholders(url: str) -> None:
    found = find_placeholder(unquote(unquote(url)))
    if found is not None:
        raise BrowserURLError(
            f"the URL still holds the placeholder {{{found[1]}}}: replace it with a value"
        )


def _check_address(parts: SplitResult, endpoints: Endpoints) -> None:
    scheme = parts.scheme.lower()
    host = (parts.hostname or "").lower()
    if scheme not in ("http", "https") or not host:
        raise BrowserURLError(f"this is not an http(s) URL: {_EXPECTED}")
    path = unquote(parts.path).rstrip("/")
    url = parts.geturl()
    configured_path = urlsplit(endpoints.catalogue).path.rstrip("/") + SEARCH_PATH
    search_paths = []
    if host == _CDSE_HOST:
        search_paths.append(_CDSE_SEARCH_PATH)
    if origin_of(url) == origin_of(endpoints.catalogue):
        search_paths.append(configured_path)
    if path in search_paths:
        return
    if "/resto/" in path + "/":
        raise BrowserURLError(
            f"this is an OpenSearch (resto) URL, which the tool does not read: {_EXPECTED}"
        )
    if host.startswith("stac.") or path.startswith("/stac"):
        raise BrowserURLError(f"this is a STAC URL, not an OData search: {_EXPECTED}")
    if any(path.startswith(search + "(") for search in [*search_paths, _CDSE_SEARCH_PATH]):
        raise BrowserURLError(
            "this URL addresses a single product (Products(<id>)), not a search: "
            "download it by id ('sentinel-fetch download <id>') "
            "or paste a .../Products?$filter=... URL"
        )
    if host.startswith("browser."):
        raise BrowserURLError(
            "this is the Copernicus Browser's page address, not its search request: " + _EXPECTED
        )
    if search_paths:
        raise BrowserURLError(
            f"the path {path or '/'} is not the catalogue's product search "
            f"(/odata/v1/Products): {_EXPECTED}"
        )
    configured = urlsplit(endpoints.catalogue).hostname
    also = "" if endpoints.is_real_cdse else f" or the configured catalogue {configured}"
    raise BrowserURLError(
        f"the host {host} is not the CDSE catalogue ({_CDSE_HOST}){also}: {_EXPECTED}"
    )
