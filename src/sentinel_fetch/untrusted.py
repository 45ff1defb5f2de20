"""Reading JSON we did not write: servers' answers and result files found on disk.

Python's parser recurses once per nesting level, so ``[[[[…]]]]`` 100,000 deep ends in a
``RecursionError`` (a traceback, not an error message), and a structure a little under
the interpreter's limit parses but breaks the code that walks it later (``repr``,
``json.dumps``). Every reader therefore goes through :func:`parse_json`, which measures
the nesting before parsing and refuses more than :data:`MAX_DEPTH` levels, optionally
refuses more than ``max_bytes``, and turns every flaw into :class:`UntrustedJSONError`
(a ``ValueError``) that the caller words as its own error.

The deepest structure real answers carry is a MultiPolygon footprint inside a product
inside a page, seven levels; result files add two.
"""

from __future__ import annotations

import itertools
import json
import re
from typing import Any

__all__ = ["MAX_DEPTH", "UntrustedJSONError", "nesting_depth", "parse_json"]

#: Nesting levels accepted: several times what any real answer or result file needs.
MAX_DEPTH = 64

# One token of the depth scan: a JSON string (escapes included; an unterminated one runs
# to the end of the text, so a match never fails and is never retried from a later
# quote, which made the scan quadratic), an opening bracket (group 1) or a closing one.
# A JSON string, escapes included; an unterminated one runs to the end of the text.
_STRING = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*(?:"|\\?\Z)', re.DOTALL)
_NOT_BRACKET = re.compile(r"[^\[\]{}]+")
_STEP = {"[": 1, "{": 1, "]": -1, "}": -1}
# Deletes every ASCII character but quotes and brackets.
_QUOTES_AND_BRACKETS = str.maketrans(dict.fromkeys(set(map(chr, range(128))) - set('"[]{}')))
# A string with no escapes in it; an unterminated one runs to the end of the text.
_QUOTED = re.compile(r'"[^"]*(?:"|\Z)')


class UntrustedJSONError(ValueError):
    """JSON that cannot be used: invalid, too deep or too large.

    Attributes:
        hostile: the text is too deep or too large, which no honest server sends and no
            retry will change (an invalid document may be a cut transfer).
    """

    def __init__(self, message: str, *, hostile: bool = False) -> None:
        super().__init__(message)
        self.hostile = hostile


def parse_json(
    data: bytes | str, *, max_bytes: int | None = None, max_depth: int = MAX_DEPTH
) -> Any:
    """The value of a JSON text from an untrusted source.

    Args:
        data: the text; bytes must be UTF-8 (a byte-order mark is allowed).
        max_bytes: refuse longer texts (``None``: no limit).
        max_depth: refuse texts nested deeper than this.

    Raises:
        UntrustedJSONError: the text is not valid JSON (``NaN`` and ``Infinity``
            included, which are not JSON), or breaks one of the bounds.

    Example:
        >>> parse_json(b'{"value": [{"Id": "x"}]}')
        {'value': [{'Id': 'x'}]}
        >>> parse_json("[" * 100_000 + "]" * 100_000)
        Traceback (most recent call last):
        ...
        sentinel_fetch.untrusted.UntrustedJSONError: JSON nested deeper than 64 levels
    """
    if max_bytes is not None and len(data) > max_bytes:
        raise UntrustedJSONError(f"JSON larger than {_size(max_bytes)}", hostile=True)
    if isinstance(data, bytes):
        try:
            text = data.decode("utf-8-sig")
        except UnicodeDecodeError:
            raise UntrustedJSONError("not valid JSON: the text is not UTF-8") from None
    else:
        text = data
    if nesting_depth(text) > max_depth:
        raise UntrustedJSONError(f"JSON nested deeper than {max_depth} levels", hostile=True)
    try:
        return json.loads(text, parse_constant=_refuse_constant)
    except (ValueError, RecursionError) as error:
        # RecursionError only if the interpreter's limit is below max_depth.
        raise UntrustedJSONError(f"not valid JSON: {error}") from None


def nesting_depth(text: str) -> int:
    """How deeply the arrays and objects of a JSON text nest (brackets in strings ignored).

    One pass over the text, linear in its length whatever it holds: the regular
    expression reads each string in one match that cannot fail, and the loop sees only
    strings and brackets (a 5 MB catalogue page costs less than parsing it). For
    invalid JSON the result is only an estimate, which is all the parser that follows
    needs.

    Example:
        >>> nesting_depth('{"a": [1, {"b": "]]]"}]}')
        3
    """
    if "\\" in text:
        # Escapes: strings are read by the regular expression, then dropped.
        brackets = _NOT_BRACKET.sub("", _STRING.sub("", text))
    else:
        # No escapes (catalogue pages): every quote opens or closes a string. Keep only
        # quotes and brackets (in C: a 5 MB page in milliseconds, where a Python loop
        # over its tokens took longer than the parse), then drop what the strings hold.
        # Two quotes side by side enclose nothing, or nothing but text between strings.
        brackets = text.translate(_QUOTES_AND_BRACKETS).replace('""', "")
        if '"' in brackets:
            brackets = _QUOTED.sub("", brackets)
    if not brackets:
        return 0
    # Anything left that is not a bracket (text outside strings: invalid JSON) counts 0.
    return max(0, max(itertools.accumulate(map(_STEP.get, brackets, itertools.repeat(0)))))


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON value")


def _size(count: int) -> str:
    for unit, scale in (("MB", 1_000_000), ("kB", 1000)):
        if count >= scale:
            return f"{count / scale:g} {unit}"
    return f"{count} bytes"
