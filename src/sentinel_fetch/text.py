"""Text at the edges: server text we show to people.

Server text (product names, error messages) is untrusted. Shown on a terminal, an
escape sequence in it could clear the screen, retitle the window or hide text, so
:func:`printable` writes control characters as visible escapes; the command line and
its log formatter show server text only through it. In a CSV cell, text starting with
``=``, ``+``, ``-`` or ``@`` is a formula to a spreadsheet, so :func:`spreadsheet_cell`
guards it. Machine formats (JSON, NDJSON) keep text exact: their readers are programs.
"""

from __future__ import annotations

import unicodedata

from sentinel_fetch.redact import redact

__all__ = ["for_display", "printable", "spreadsheet_cell"]

# Characters a terminal or an editor acts on, besides the C0/C1 controls (category Cc):
# bidirectional overrides and isolates reorder what is shown ("Trojan Source"), and the
# Unicode line and paragraph separators break lines.
_INVISIBLE = frozenset("\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")
_BREAKS = frozenset("\u2028\u2029")
# What a spreadsheet reads as the start of a formula (or of a cell it may split).
_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def printable(text: str) -> str:
    """Text safe to show on a terminal: control characters become visible escapes.

    Example:
        >>> printable("S2A_MSIL2A\\x1b[2J.SAFE")
        'S2A_MSIL2A\\\\x1b[2J.SAFE'
        >>> printable("naïve 中文 text")
        'naïve 中文 text'
    """
    if text.isprintable():
        return text
    return "".join(_escaped(char) for char in text)


def _escaped(char: str) -> str:
    if char in _INVISIBLE or char in _BREAKS or unicodedata.category(char) == "Cc":
        code = ord(char)
        return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"
    return char


def for_display(text: str) -> str:
    """Text for a person's screen: secrets masked, control characters escaped."""
    return printable(redact(text))


def spreadsheet_cell(value: object) -> object:
    """A CSV cell a spreadsheet shows as written, never evaluates.

    Text starting like a formula gets a leading ``'``, which spreadsheets take as "this
    is text" and do not display; numbers and other values pass unchanged.

    Example:
        >>> spreadsheet_cell('=HYPERLINK("http://x")'), spreadsheet_cell(-3.5)
        ('\\'=HYPERLINK("http://x")', -3.5)
    """
    if isinstance(value, str) and value.startswith(_FORMULA_STARTS):
        return "'" + value
    return value
