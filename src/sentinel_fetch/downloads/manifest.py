"""Per-file sizes and checksums from a SAFE product's ``manifest.safe``.

The manifest lists every file of the SAFE (``dataObject`` / ``byteStream size`` /
``fileLocation href`` / ``checksum checksumName``); CDSE's STAC checksums are taken from
it (cdse-api.md §9.7), so it is where a file's checksum comes from when STAC has none or
a malformed one, and the only source of checksums on the Nodes fallback. Sentinel-2
manifests carry SHA3-256 (upper-case hex), Sentinel-1 manifests MD5.

The text comes from the server: a document type (entity declarations) is refused
outright, the size is bounded, and every path is checked to stay inside the SAFE.
"""

from __future__ import annotations

import posixpath
import xml.etree.ElementTree as ElementTree
from dataclasses import dataclass

from sentinel_fetch.downloads.multihash import Checksum
from sentinel_fetch.errors import IntegrityError

__all__ = ["MAX_MANIFEST_BYTES", "ManifestEntry", "parse_manifest", "safe_relative_path"]

#: Real manifests are tens to hundreds of kB; anything this big is not one.
MAX_MANIFEST_BYTES = 16 << 20

#: ``checksumName`` -> the verifier's algorithm name.
_ALGORITHMS = {"SHA3-256": "SHA3-256", "SHA3_256": "SHA3-256", "MD5": "MD5", "SHA-256": "SHA256"}
_DIGEST_HEX = {"SHA3-256": 64, "MD5": 32, "SHA256": 64}


@dataclass(frozen=True)
class ManifestEntry:
    """One file the manifest lists: its size (``None`` if not given) and checksum."""

    path: str
    size: int | None
    checksum: Checksum | None


def safe_relative_path(path: object) -> str | None:
    """A path inside the SAFE in normal form, or ``None`` if it could leave it.

    Example:
        >>> safe_relative_path("./GRANULE/x/IMG_DATA/B04.jp2")
        'GRANULE/x/IMG_DATA/B04.jp2'
        >>> safe_relative_path("../etc/passwd") is None, safe_relative_path("/abs") is None
        (True, True)
    """
    if not isinstance(path, str) or not path or len(path) > 1024 or "\\" in path:
        return None
    if any(ord(character) < 32 for character in path):
        return None
    text = path[2:] if path.startswith("./") else path
    if text.startswith("/"):
        return None
    parts = text.split("/")
    if any(part in ("", ".", "..") for part in parts):
        return None
    normal = posixpath.normpath(text)
    return normal if normal == text else None


def parse_manifest(data: bytes) -> dict[str, ManifestEntry]:
    """``path inside the SAFE -> entry`` for every file a ``manifest.safe`` lists.

    Entries with a path that could leave the SAFE are dropped; a checksum whose length
    does not fit its algorithm is dropped (the entry's size is kept).

    Raises:
        IntegrityError: not a manifest (too big, a document type, not XML).
    """
    if len(data) > MAX_MANIFEST_BYTES:
        raise IntegrityError(f"manifest.safe is over {MAX_MANIFEST_BYTES} bytes: not a manifest")
    if b"<!DOCTYPE" in data or b"<!ENTITY" in data:
        raise IntegrityError("manifest.safe declares a document type: refused")
    try:
        # No document type gets this far, so no entity can expand (nor reach a file).
        root = ElementTree.fromstring(data)  # noqa: S314
    except ElementTree.ParseError as exc:
        raise IntegrityError(f"manifest.safe is not XML ({exc})") from None
    entries: dict[str, ManifestEntry] = {}
    for element in root.iter():
        if _local(element.tag) != "byteStream":
            continue
        location = next((c for c in element if _local(c.tag) == "fileLocation"), None)
        if location is None:
            continue
        path = safe_relative_path(location.get("href"))
        if path is None:
            continue
        entries[path] = ManifestEntry(path, _size(element.get("size")), _checksum(element))
    return entries


def _local(tag: object) -> str:
    return tag.rsplit("}", 1)[-1] if isinstance(tag, str) else ""


def _size(value: str | None) -> int | None:
    if value is None or not value.isdigit() or len(value) > 15:
        return None
    return int(value)


def _checksum(byte_stream: ElementTree.Element) -> Checksum | None:
    for child in byte_stream:
        if _local(child.tag) != "checksum":
            continue
        algorithm = _ALGORITHMS.get((child.get("checksumName") or "").strip().upper())
        digest = (child.text or "").strip().lower()
        if algorithm is None or len(digest) != _DIGEST_HEX[algorithm]:
            continue
        try:
            bytes.fromhex(digest)
        except ValueError:
            continue
        return Checksum(algorithm, digest, source="manifest")
    return None
