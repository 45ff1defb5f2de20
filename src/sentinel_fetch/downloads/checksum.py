"""Verify products while they stream: BLAKE3 when the catalogue has it, else MD5.

Hashing inline (never in a second pass over the file) is what keeps a verified download
as fast as an unverified one: BLAKE3 costs about 0.25 CPU-seconds per GB, MD5 about 1.4.
Products whose catalogue entry has no checksum (older holdings: ``Checksum: []``) are
checked by size and by testing every member's CRC in the zip. Single files of a SAFE
(bands, metadata) are checked against STAC's or the manifest's SHA3-256 or MD5; a file
with no checksum anywhere is checked by size and reported as such, never as verified.
"""

from __future__ import annotations

import hashlib
import zipfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from blake3 import blake3

from sentinel_fetch.errors import IntegrityError

__all__ = [
    "SIZE_ONLY",
    "Expected",
    "StreamVerifier",
    "check_zip",
    "hash_file",
    "judge",
    "preferred_algorithm",
    "verify_file",
]

#: How :func:`judge` names a file that had no usable checksum.
SIZE_ONLY = "size only"

# Strongest-and-fastest first.
_PREFERENCE = ("BLAKE3", "MD5")


class _Hasher(Protocol):
    def update(self, data: bytes | memoryview, /) -> object: ...
    def hexdigest(self) -> str: ...


def _new_hasher(algorithm: str) -> _Hasher:
    if algorithm == "BLAKE3":
        return blake3()
    if algorithm == "MD5":
        # Integrity against accidental corruption, the catalogue's own choice of digest.
        return hashlib.md5(usedforsecurity=False)
    if algorithm == "SHA3-256":
        return hashlib.sha3_256()
    if algorithm == "SHA256":
        return hashlib.sha256()
    raise ValueError(f"unsupported checksum algorithm {algorithm!r}")


def preferred_algorithm(checksums: Mapping[str, str]) -> str | None:
    """The algorithm to verify with: BLAKE3 if offered, else MD5, else ``None``.

    Example:
        >>> preferred_algorithm({"MD5": "aa", "BLAKE3": "bb"})
        'BLAKE3'
        >>> preferred_algorithm({}) is None
        True
    """
    upper = {name.upper() for name in checksums}
    return next((name for name in _PREFERENCE if name in upper), None)


@dataclass(frozen=True)
class Expected:
    """What a product's bytes must be, from the catalogue.

    Attributes:
        size: exact length in bytes, or 0 when the catalogue does not say.
        algorithm: ``BLAKE3``, ``MD5``, ``SHA3-256``, ``SHA256`` or ``None`` (then the
            zip test decides, or the size alone for a file that is not a zip).
        digest: lower-case hex digest for ``algorithm``.
        tentative: the digest was read from a malformed value (an MD5 code with a
            32-byte digest, cdse-api.md §9.7): a match verifies; a mismatch leaves the
            file checked by size only, reported so, never called corrupt.
        zip_test: without a digest, test the file as a zip archive (whole products);
            ``False`` for single files, which are then checked by size only.
    """

    size: int
    algorithm: str | None
    digest: str | None
    tentative: bool = False
    zip_test: bool = True

    @classmethod
    def from_catalogue(cls, size: int, checksums: Mapping[str, str]) -> Expected:
        """Pick the preferred checksum of a catalogue entry."""
        algorithm = preferred_algorithm(checksums)
        digest = None
        if algorithm is not None:
            digest = next(v for k, v in checksums.items() if k.upper() == algorithm).lower()
        return cls(size=max(size, 0), algorithm=algorithm, digest=digest)


class StreamVerifier:
    """Hashes bytes as they are written and judges the result.

    Args:
        expected: the catalogue's size and checksum.
    """

    def __init__(self, expected: Expected) -> None:
        self.expected = expected
        self._hasher = _new_hasher(expected.algorithm) if expected.algorithm else None
        self.bytes_seen = 0

    def update(self, chunk: bytes | memoryview) -> None:
        """Feed the next bytes of the archive, in order."""
        if self._hasher is not None:
            self._hasher.update(chunk)
        self.bytes_seen += len(chunk)

    def feed_file_prefix(self, path: Path, length: int, chunk_size: int = 1 << 20) -> None:
        """Hash the first ``length`` bytes of a partial file before resuming after them.

        Hash states cannot be saved, so resuming means re-reading what is on disk; at
        BLAKE3 speed that is a fraction of a second per GB.
        """
        with path.open("rb", buffering=0) as handle:
            remaining = length
            buffer = bytearray(chunk_size)
            view = memoryview(buffer)
            while remaining > 0:
                count = handle.readinto(view[: min(chunk_size, remaining)])
                if not count:
                    raise IntegrityError(f"{path.name}: partial file shorter than expected")
                self.update(view[:count])
                remaining -= count

    def verify(self, name: str, path: Path) -> str:
        """Check size and checksum (or zip integrity); return how it was verified.

        ``size only`` means no usable checksum existed: the caller reports it.

        Raises:
            IntegrityError: the size, checksum or zip test does not match.
        """
        digest = self._hasher.hexdigest() if self._hasher is not None else None
        return judge(self.expected, name, path, size=self.bytes_seen, digest=digest)


def judge(expected: Expected, name: str, path: Path, *, size: int, digest: str | None) -> str:
    """The one definition of a verified file: the download's and ``verify``'s.

    A file is verified when its size is the catalogue's (when it gives one) and its
    digest is the catalogue's; without a catalogue checksum, when every zip member's CRC
    is right. The download passes what it hashed while streaming, ``verify`` what it
    hashed from the disk.

    Args:
        expected: the catalogue's size and checksum.
        name: the file's name, for messages.
        path: the file (the zip test reads it).
        size: the file's length in bytes.
        digest: its hex digest for ``expected.algorithm`` (``None`` without one).

    Returns:
        How it was verified: ``BLAKE3``, ``MD5`` or ``zip-crc``.

    Raises:
        IntegrityError: the size, checksum or zip test does not match.
    """
    if expected.size and size != expected.size:
        raise IntegrityError(f"{name}: received {size} bytes, the catalogue says {expected.size}")
    if expected.algorithm and expected.digest:
        if digest != expected.digest and expected.tentative:
            return SIZE_ONLY
        if digest != expected.digest:
            shown = (digest or "")[:16]
            raise IntegrityError(
                f"{name}: {expected.algorithm} mismatch (got {shown}…, "
                f"catalogue {expected.digest[:16]}…)"
            )
        return str(expected.algorithm)
    if not expected.zip_test:
        return SIZE_ONLY
    check_zip(name, path)
    return "zip-crc"


def verify_file(path: Path, expected: Expected) -> str:
    """Judge a file on disk (:func:`judge`): hashed again from its first byte.

    Raises:
        IntegrityError: the size, checksum or zip test does not match.
    """
    size = path.stat().st_size
    digest = None
    if expected.algorithm and expected.digest and (not expected.size or size == expected.size):
        digest = hash_file(path, expected.algorithm)
    return judge(expected, path.name, path, size=size, digest=digest)


def check_zip(name: str, path: Path) -> None:
    """Test every member's CRC of a zip archive.

    The fallback for catalogue entries without a checksum: a truncated or corrupted
    archive fails here even when its size is unknown.

    Raises:
        IntegrityError: not a zip, or a member whose CRC does not match.
    """
    try:
        with zipfile.ZipFile(path) as archive:
            bad = archive.testzip()
    except (zipfile.BadZipFile, OSError, EOFError) as exc:
        raise IntegrityError(f"{name}: not a valid zip archive ({exc})") from None
    if bad is not None:
        raise IntegrityError(f"{name}: zip member {bad!r} is corrupt")


def hash_file(path: Path, algorithm: str, chunk_size: int = 1 << 20) -> str:
    """Hex digest of a whole file (``verify`` command, audits of the finish folder)."""
    hasher = _new_hasher(algorithm)
    buffer = bytearray(chunk_size)
    view = memoryview(buffer)
    with path.open("rb", buffering=0) as handle:
        while count := handle.readinto(view):
            hasher.update(view[:count])
    return hasher.hexdigest()
