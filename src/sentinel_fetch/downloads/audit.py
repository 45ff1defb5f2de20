"""Audit a finish folder: every file re-checked against the catalogue's checksums.

Files written by sentinel-fetch were verified when they arrived; an audit catches what
happened since (disk errors, copies, files put there by other tools). Each file is
matched to its catalogue entry (from the job ledger, else looked up by name), hashed
again (BLAKE3, else MD5, else the zip CRC test) and, when it does not match, moved
aside to ``<save_path>/Corrupt`` so the next download run fetches it again.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

from sentinel_fetch.downloads.checksum import Expected, check_zip, hash_file
from sentinel_fetch.downloads.transfer import Downloadable
from sentinel_fetch.errors import IntegrityError

__all__ = ["AuditReport", "FileVerdict", "audit_finished"]

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
        known: catalogue entries already known (the ledger's).
        lookup: finds catalogue entries for file names not in ``known`` (by product
            name); ``None`` leaves such files ``unknown``.
    """
    by_file = {product.file_name: product for product in known}
    files = (
        sorted(
            entry.name
            for entry in os.scandir(finish_dir)
            if entry.is_file() and not entry.name.startswith(".")
        )
        if finish_dir.is_dir()
        else []
    )
    missing = [name for name in files if name not in by_file]
    if missing and lookup is not None:
        for product in lookup([_product_name(name) for name in missing]):
            by_file.setdefault(product.file_name, product)
    verdicts = []
    for name in files:
        found = by_file.get(name)
        if found is None:
            verdicts.append(FileVerdict(name, "unknown", "not found in the catalogue"))
            continue
        product = found
        path = finish_dir / name
        try:
            detail = _check(product, path)
        except IntegrityError as exc:
            corrupt_dir.mkdir(parents=True, exist_ok=True)
            os.replace(path, corrupt_dir / name)
            log.warning("%s: %s; moved to %s", name, exc, corrupt_dir)
            reason = str(exc).removeprefix(f"{name}: ")
            verdicts.append(FileVerdict(name, "bad", reason, product.id))
            continue
        verdicts.append(FileVerdict(name, "ok", detail, product.id))
    return AuditReport(verdicts)


def _product_name(file_name: str) -> str:
    for suffix in (".zip", ".tgz"):
        if file_name.endswith(suffix):
            return file_name[: -len(suffix)]
    return file_name


def _check(product: Downloadable, path: Path) -> str:
    expected = Expected.from_catalogue(product.size, product.checksums)
    size = path.stat().st_size
    if expected.size and size != expected.size:
        raise IntegrityError(f"{path.name}: {size} bytes, the catalogue says {expected.size}")
    if expected.algorithm and expected.digest:
        actual = hash_file(path, expected.algorithm)
        if actual != expected.digest:
            raise IntegrityError(f"{path.name}: {expected.algorithm} does not match the catalogue")
        return expected.algorithm
    check_zip(path.name, path)
    return "zip-crc"
