"""Audit a finish folder: every file re-checked against the catalogue's checksums.

Files written by sentinel-fetch were verified when they arrived; an audit catches what
happened since (disk errors, copies, files put there by other tools). Each file is
matched to its product, hashed again (BLAKE3, else MD5, else the zip CRC test) and,
when it does not match, moved aside to ``<save_path>/Corrupt`` so the next download
run fetches it again.

Single files of products (bands: ``<finish>/<name>.SAFE/<path inside the SAFE>``) are
audited by :func:`audit_product_files` against the size and checksum the ledger recorded
for each file when it was planned (from STAC or ``manifest.safe``); a bad one is moved to
``Corrupt/<name>.SAFE/<path>`` and the next run with the same bands fetches it again.

Which product a file is comes from the job ledger, which records every product's file
name. A file the ledger does not know (copied in from elsewhere) is looked up in the
catalogue by the name it suggests, and only a product whose own file name is exactly
that file's counts; when several do (the same ``Name`` under two ``Id``), only a
checksum match tells which, and a file that matches none of them is left alone as
``unknown``: a file is never judged against a product it might not be.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sentinel_fetch.downloads.checksum import SIZE_ONLY, Expected, hash_file, verify_file
from sentinel_fetch.downloads.manifest import safe_relative_path
from sentinel_fetch.downloads.paths import safe_file_name
from sentinel_fetch.downloads.transfer import Downloadable
from sentinel_fetch.errors import IntegrityError, UnsafeNameError

__all__ = ["AuditReport", "FileVerdict", "audit_finished", "audit_product_files"]

log = logging.getLogger("sentinel_fetch.audit")

CORRUPT_FOLDER = "Corrupt"


@dataclass(frozen=True)
class FileVerdict:
    """The audit's finding for one file.

    Attributes:
        file: the file name in the finish folder.
        status: ``ok``, ``bad`` (moved aside), or ``unknown`` (no catalogue entry found).
        detail: how it was checked, or what was wrong.
        product_id: the catalogue id, when known.
    """

    file: str
    status: str
    detail: str
    product_id: str | None = None


@dataclass(frozen=True)
class AuditReport:
    """All verdicts of an audit."""

    verdicts: list[FileVerdict] = field(default_factory=list)

    def count(self, status: str) -> int:
        """How many files have ``status``."""
        return sum(1 for verdict in self.verdicts if verdict.status == status)

    @property
    def ok(self) -> bool:
        """No file was bad."""
        return self.count("bad") == 0


def audit_finished(
    finish_dir: Path,
    corrupt_dir: Path,
    known: Iterable[Downloadable],
    lookup: Callable[[list[str]], Iterable[Downloadable]] | None = None,
) -> AuditReport:
    """Re-check every file of ``finish_dir``.

    Args:
        finish_dir: the folder of verified products.
        corrupt_dir: where bad files are moved.
        known: products whose ``file_name`` is their file in ``finish_dir`` (the
            ledger's :class:`~sentinel_fetch.ledger.StoredProduct`).
        lookup: finds catalogue entries by product name, for files no known product
            names; ``None`` leaves such files ``unknown``.
    """
    files = (
        sorted(
            entry.name
            for entry in os.scandir(finish_dir)
            if entry.is_file() and not entry.name.startswith(".")
        )
        if finish_dir.is_dir()
        else []
    )
    candidates: dict[str, list[Downloadable]] = {}
    for product in known:
        candidates.setdefault(product.file_name, []).append(product)
    missing = {name for name in files if name not in candidates}
    if missing and lookup is not None:
        for product in lookup(sorted({_product_name(name) for name in missing})):
            # The catalogue answers a name search with what it has; the file is this
            # product's only if the product's own file name is exactly the file's.
            if product.file_name in missing and _served_as_is(product.file_name):
                found = candidates.setdefault(product.file_name, [])
                if all(other.id != product.id for other in found):
                    found.append(product)
    verdicts = []
    for name in files:
        path = finish_dir / name
        found = candidates.get(name, [])
        if not found:
            verdicts.append(FileVerdict(name, "unknown", "not found in the catalogue"))
        elif len(found) > 1:
            verdicts.append(_tell_apart(path, found))
        else:
            verdicts.append(_judge(path, found[0], corrupt_dir))
    return AuditReport(verdicts)


def _judge(path: Path, product: Downloadable, corrupt_dir: Path) -> FileVerdict:
    name = path.name
    try:
        detail = _check(product, path)
    except IntegrityError as exc:
        corrupt_dir.mkdir(parents=True, exist_ok=True)
        os.replace(path, corrupt_dir / name)
        log.warning("%s: %s; moved to %s", name, exc, corrupt_dir)
        reason = str(exc).removeprefix(f"{name}: ")
        return FileVerdict(name, "bad", reason, product.id)
    return FileVerdict(name, "ok", detail, product.id)


def _tell_apart(path: Path, products: list[Downloadable]) -> FileVerdict:
    """The one of several same-named products whose checksum this file has, if any."""
    digests: dict[str, str] = {}
    size = path.stat().st_size
    for product in products:
        expected = Expected.from_catalogue(product.size, product.checksums)
        if not expected.algorithm or not expected.digest:
            continue  # a zip test passes for any good zip: it cannot tell products apart
        if expected.size and size != expected.size:
            continue
        if expected.algorithm not in digests:
            digests[expected.algorithm] = hash_file(path, expected.algorithm)
        if digests[expected.algorithm] == expected.digest:
            return FileVerdict(path.name, "ok", expected.algorithm, product.id)
    return FileVerdict(
        path.name,
        "unknown",
        f"matches none of the {len(products)} products named so; left in place",
    )


def _served_as_is(file_name: str) -> bool:
    """Whether a product with this file name keeps it on disk (needs no change)."""
    try:
        return safe_file_name(file_name) == file_name
    except UnsafeNameError:
        return False


def _product_name(file_name: str) -> str:
    """The product name a file name suggests: a hint for the catalogue search only."""
    for suffix in (".zip", ".tgz"):
        if file_name.endswith(suffix):
            return file_name[: -len(suffix)]
    return file_name


def _check(product: Downloadable, path: Path) -> str:
    return verify_file(path, Expected.from_catalogue(product.size, product.checksums))


def audit_product_files(
    finish_dir: Path,
    corrupt_dir: Path,
    folders: Mapping[str, str],
    rows: Iterable[Mapping[str, Any]],
) -> AuditReport:
    """Re-check the single files of products that the ledger records as done.

    Args:
        finish_dir: the folder of verified products.
        corrupt_dir: where bad files are moved (under the product's folder name).
        folders: ``product id -> folder name`` in ``finish_dir`` (``<name>.SAFE``).
        rows: the ledger's file rows (``product_id``, ``path``, ``size``, ``checksum``
            as ``ALGORITHM:hex``, ``state``).
    """
    verdicts = []
    for row in rows:
        folder = folders.get(str(row.get("product_id")))
        relative = safe_relative_path(row.get("path"))
        if row.get("state") != "done" or folder is None or relative is None:
            continue
        shown = f"{folder}/{relative}"
        try:
            parts = [safe_file_name(part) for part in (folder, *relative.split("/"))]
        except UnsafeNameError:
            continue
        path = finish_dir.joinpath(*parts)
        if not path.is_file():
            verdicts.append(FileVerdict(shown, "bad", "missing", str(row["product_id"])))
            continue
        try:
            detail = _check_file(path, row)
        except IntegrityError as exc:
            target = corrupt_dir.joinpath(*parts)
            target.parent.mkdir(parents=True, exist_ok=True)
            os.replace(path, target)
            log.warning("%s: %s; moved to %s", shown, exc, corrupt_dir)
            verdicts.append(FileVerdict(shown, "bad", str(exc), str(row["product_id"])))
            continue
        verdicts.append(FileVerdict(shown, "ok", detail, str(row["product_id"])))
    return AuditReport(verdicts)


def _check_file(path: Path, row: Mapping[str, Any]) -> str:
    size = path.stat().st_size
    expected = row.get("size")
    if isinstance(expected, int) and size != expected:
        raise IntegrityError(f"{size} bytes, the listing said {expected}")
    algorithm, _, digest = str(row.get("checksum") or "").partition(":")
    if not digest:
        return SIZE_ONLY
    actual = hash_file(path, algorithm)
    if actual != digest and row.get("verified_by") != SIZE_ONLY:
        raise IntegrityError(f"{algorithm} does not match")
    return algorithm if actual == digest else SIZE_ONLY
