"""Read STAC ``file:checksum`` values: hex multihashes, parsed defensively (cdse-api.md §9.7).

A multihash is the hash function's code as an unsigned varint, the digest length as a
varint, then the digest. CDSE's STAC items carry SHA3-256 (``1620…``) for image files and
MD5 (``d50110…``) for the zip, the manifest and the thumbnail; its metadata XML assets
carry a malformed value seen in real items, ``d50120…``: the MD5 code with a 32-byte
digest, most likely a SHA3-256 under the wrong code. Such a value is read as a
*tentative* SHA3-256: a match verifies the file, a mismatch makes the checksum unusable
(the size and ``manifest.safe`` still judge), never "corrupt".

Everything here is pure: no I/O, no exceptions for a bad value (``None`` instead), since
a server's value is only ever a hint to be checked against the bytes.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["Checksum", "parse_multihash"]

#: Multihash code -> (algorithm name used by the verifier, digest size in bytes).
_CODES = {
    0xD5: ("MD5", 16),
    0x16: ("SHA3-256", 32),
    0x12: ("SHA256", 32),
    0x1E: ("BLAKE3", 32),
}
#: Digest size -> the algorithm a mislabelled digest of that size is tried as.
_BY_SIZE = {32: "SHA3-256", 16: "MD5"}
#: No real multihash value is longer (a varint code, a length, a 64-byte digest at most).
_MAX_HEX = 160


@dataclass(frozen=True)
class Checksum:
    """An expected digest of one file.

    Attributes:
        algorithm: ``SHA3-256``, ``MD5``, ``SHA256`` or ``BLAKE3``.
        digest: lower-case hex.
        tentative: read from a value whose code and length disagree: a match verifies,
            a mismatch only means the value cannot be used.
        source: where it came from (``stac``, ``manifest``), for reports.
    """

    algorithm: str
    digest: str
    tentative: bool = False
    source: str = "stac"


def _varint(data: bytes, start: int) -> tuple[int, int] | None:
    """An unsigned LEB128 varint at ``start``: ``(value, next index)``; at most 9 bytes."""
    value = 0
    for index in range(start, min(len(data), start + 9)):
        byte = data[index]
        value |= (byte & 0x7F) << (7 * (index - start))
        if not byte & 0x80:
            return value, index + 1
    return None


def parse_multihash(text: object) -> Checksum | None:
    """The checksum a ``file:checksum`` value declares, or ``None`` if it cannot be used.

    Example:
        >>> parse_multihash("d50110" + "ab" * 16).algorithm
        'MD5'
        >>> parse_multihash("1620" + "ab" * 32).algorithm
        'SHA3-256'
        >>> parse_multihash("d50120" + "cd" * 32).tentative
        True
        >>> parse_multihash("1620" + "00" * 31) is None  # too short for its length byte
        True
    """
    if not isinstance(text, str) or len(text) > _MAX_HEX or len(text) % 2:
        return None
    try:
        data = bytes.fromhex(text)
    except ValueError:
        return None
    code = _varint(data, 0)
    if code is None:
        return None
    length = _varint(data, code[1])
    if length is None:
        return None
    digest = data[length[1] :]
    if length[0] != len(digest) or not digest:
        return None
    known = _CODES.get(code[0])
    if known is not None and known[1] == len(digest):
        return Checksum(known[0], digest.hex())
    guess = _BY_SIZE.get(len(digest))
    if guess is None:
        return None
    return Checksum(guess, digest.hex(), tentative=True)
