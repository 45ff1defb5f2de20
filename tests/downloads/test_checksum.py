"""Streaming verification: BLAKE3, MD5, size, zip fallback."""

from __future__ import annotations

import hashlib
import io
import zipfile
from pathlib import Path

import pytest
from blake3 import blake3

from sentinel_fetch.downloads.checksum import Expected, StreamVerifier, check_zip, hash_file
from sentinel_fetch.errors import IntegrityError


def _zip_bytes() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_STORED) as archive:
        archive.writestr("P.SAFE/manifest.safe", b"<xfdu/>" * 100)
        archive.writestr("P.SAFE/measurement/band.tiff", bytes(range(256)) * 400)
    return buffer.getvalue()


def test_prefers_blake3_and_accepts_matching_bytes(tmp_path: Path) -> None:
    data = _zip_bytes()
    path = tmp_path / "p.zip"
    path.write_bytes(data)
    expected = Expected.from_catalogue(
        len(data),
        {"MD5": hashlib.md5(data).hexdigest(), "BLAKE3": blake3(data).hexdigest().upper()},
    )
    assert expected.algorithm == "BLAKE3"
    verifier = StreamVerifier(expected)
    for start in range(0, len(data), 1000):
        verifier.update(data[start : start + 1000])
    assert verifier.verify("p", path) == "BLAKE3"


def test_md5_only(tmp_path: Path) -> None:
    data = b"abc" * 1000
    path = tmp_path / "p"
    path.write_bytes(data)
    verifier = StreamVerifier(
        Expected.from_catalogue(len(data), {"MD5": hashlib.md5(data).hexdigest()})
    )
    verifier.update(data)
    assert verifier.verify("p", path) == "MD5"


def test_one_flipped_byte_is_caught(tmp_path: Path) -> None:
    data = bytearray(b"0123456789" * 10000)
    expected = Expected.from_catalogue(len(data), {"BLAKE3": blake3(bytes(data)).hexdigest()})
    data[54321] ^= 0x01
    path = tmp_path / "p"
    path.write_bytes(data)
    verifier = StreamVerifier(expected)
    verifier.update(bytes(data))
    with pytest.raises(IntegrityError, match="BLAKE3 mismatch"):
        verifier.verify("p", path)


def test_short_file_is_caught_by_size(tmp_path: Path) -> None:
    data = b"x" * 5000
    verifier = StreamVerifier(Expected.from_catalogue(6000, {"MD5": hashlib.md5(data).hexdigest()}))
    verifier.update(data)
    with pytest.raises(IntegrityError, match="received 5000 bytes"):
        verifier.verify("p", tmp_path / "unused")


def test_resume_prefix_hash_equals_single_pass(tmp_path: Path) -> None:
    data = bytes(range(256)) * 5000
    path = tmp_path / "p.part"
    path.write_bytes(data[:300_001])
    expected = Expected.from_catalogue(len(data), {"BLAKE3": blake3(data).hexdigest()})
    verifier = StreamVerifier(expected)
    verifier.feed_file_prefix(path, 300_001, chunk_size=65536)
    verifier.update(data[300_001:])
    path.write_bytes(data)
    assert verifier.verify("p", path) == "BLAKE3"


def test_without_checksum_the_zip_test_decides(tmp_path: Path) -> None:
    data = _zip_bytes()
    good = tmp_path / "good.zip"
    good.write_bytes(data)
    verifier = StreamVerifier(Expected.from_catalogue(0, {}))
    verifier.update(data)
    assert verifier.verify("good", good) == "zip-crc"
    corrupt = bytearray(data)
    corrupt[len(data) // 2] ^= 0xFF
    bad = tmp_path / "bad.zip"
    bad.write_bytes(corrupt)
    with pytest.raises(IntegrityError):
        check_zip("bad", bad)
    truncated = tmp_path / "trunc.zip"
    truncated.write_bytes(data[: len(data) - 100])
    with pytest.raises(IntegrityError, match="not a valid zip"):
        check_zip("trunc", truncated)


def test_hash_file(tmp_path: Path) -> None:
    data = b"hello" * 100000
    path = tmp_path / "f"
    path.write_bytes(data)
    assert hash_file(path, "MD5") == hashlib.md5(data).hexdigest()
    assert hash_file(path, "BLAKE3") == blake3(data).hexdigest()
