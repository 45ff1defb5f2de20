"""Text at the edges: small files users hand us, and server text we show to people.

Users hand over search URL files, lists of product names and config files, saved by
whatever editor they had: UTF-8 with or without a byte-order mark, or UTF-16 (Windows
Notepad's "Unicode"). :func:`read_text_file` reads all of them the same way, refuses
anything else with one line, and refuses a file bigger than its kind can be *before*
reading it, so a wrong file (a 20 MB log picked by mistake) is refused at once.

Server text (product names, error messages) is untrusted. Shown on a terminal, an
escape sequence in it could clear the screen, retitle the window or hide text, so
:func:`printable` writes control characters as visible escapes; the command line and
its log formatter show server text only through it. In a CSV cell, text starting with
``=``, ``+``, ``-`` or ``@`` is a formula to a spreadsheet, so :func:`spreadsheet_cell`
guards it. Machine formats (JSON, NDJSON) keep text exact: their readers are programs.
"""

from __future__ import annotations

import codecs
import os
import unicodedata
from pathlib import Path

from sentinel_fetch.errors import InputError
from sentinel_fetch.redact import redact

__all__ = ["for_display", "one_line", "printable", "read_text_file", "spreadsheet_cell"]

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
        >>> printable("name\\udc80")
        'name\\\\udc80'
    """
    if text.isprintable():
        return text
    return "".join(_escaped(char) for char in text)


def _escaped(char: str) -> str:
    # Cs: a lone surrogate, which no terminal encoding can write.
    if char in _INVISIBLE or char in _BREAKS or unicodedata.category(char) in ("Cc", "Cs"):
        code = ord(char)
        return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"
    return char


def one_line(text: str, max_chars: int | None = None) -> str:
    """Text on one line, at most ``max_chars`` long, secrets masked.

    The order matters: secrets are masked first, on the text as received, because a
    password with a newline or two spaces no longer matches once whitespace is folded,
    and one cut at the limit no longer matches at all.

    Example:
        >>> one_line("HTTP 400:  bad\\n  request", 12)
        'HTTP 400: ba'
    """
    folded = " ".join(redact(text).split())
    return folded if max_chars is None else folded[:max_chars]


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


def read_text_file(
    path: str | os.PathLike[str], *, what: str, max_bytes: int, error: type[InputError]
) -> str:
    """The text of a small file: UTF-8 (with or without BOM) or UTF-16 with a BOM.

    Args:
        path: the file.
        what: what the file is, for messages ("search URL file", "list of names").
        max_bytes: the largest file accepted; bigger ones are refused by their size,
            before a byte is read.
        error: the error type to raise (each caller's own, so exit codes stay right).

    Raises:
        InputError: (``error``) unreadable, too big, or not UTF-8/UTF-16 text.
    """
    file = Path(path)
    limit = f"{max_bytes / 1e6:g} MB"
    try:
        with file.open("rb") as handle:
            size = os.fstat(handle.fileno()).st_size
            if size > max_bytes:
                raise error(
                    f"{file} is {size / 1e6:.1f} MB; a {what} is at most {limit}: "
                    "is it the right file?"
                )
            # A pipe or a growing file has no useful size: read one byte past the limit.
            data = handle.read(max_bytes + 1)
    except OSError as exc:
        raise error(f"cannot read {file}: {exc.strerror or exc}") from None
    if len(data) > max_bytes:
        raise error(f"{file} is over {limit}; a {what} is at most {limit}: is it the right file?")
    try:
        if data.startswith(codecs.BOM_UTF8):
            text = data[len(codecs.BOM_UTF8) :].decode("utf-8")
        elif data.startswith((codecs.BOM_UTF32_LE, codecs.BOM_UTF32_BE)):
            raise UnicodeDecodeError("utf-32", data, 0, 4, "UTF-32 is not read")
        elif data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
            text = data.decode("utf-16")
        else:
            text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise error(
            f"{file} is not UTF-8 or UTF-16 text (byte {data[exc.start]:#04x} at offset "
            f"{exc.start}): save the {what} as UTF-8"
        ) from None
    if "\x00" in text:
        raise error(
            f"{file} holds NUL characters: it is not a text file, or UTF-16 without a "
            f"byte-order mark; save the {what} as UTF-8"
        )
    return text
