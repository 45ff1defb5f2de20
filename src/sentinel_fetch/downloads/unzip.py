"""``--unzip``: a verified product archive extracted into ``<finish>/<name>.SAFE``.

Only archives that passed verification are extracted, so the bytes are the catalogue's;
the member names are still the server's, and are checked like any other name from it:
no absolute paths, no ``..``, no links, nothing outside the product's folder, and no
more than :data:`MAX_EXPANSION` times the archive's size in total (a zip bomb stops).
Extraction goes to a hidden folder beside the target and is renamed into place, so a
crash never leaves a half-extracted ``.SAFE`` that looks complete.

A marker beside the folder (``.<name>.SAFE.unzipped``) names the product id, so a later
run knows the product is done even when the zip was removed (no ``--keep-zip``).
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import stat
import zipfile
from pathlib import Path, PurePosixPath

from sentinel_fetch.downloads.paths import safe_file_name
from sentinel_fetch.errors import IntegrityError, StorageError

__all__ = ["MAX_EXPANSION", "extract_product", "extracted_folder", "is_extracted"]

#: SAFE archives are mostly JPEG 2000 and barely compress; 20× is far past any real one.
MAX_EXPANSION = 20
_CHUNK_BYTES = 1024 * 1024


def extracted_folder(finish: Path, product_name: str) -> Path:
    """Where a product is extracted: ``<finish>/<name>.SAFE`` (``.SAFE`` added if absent).

    >>> extracted_folder(Path("/f"), "S2A_X.SAFE").as_posix()
    '/f/S2A_X.SAFE'
    """
    name = safe_file_name(product_name)
    if not name.upper().endswith((".SAFE", ".SEN3")):
        name += ".SAFE"
    return finish / name


def _marker(folder: Path) -> Path:
    return folder.with_name(f".{folder.name}.unzipped")


def is_extracted(finish: Path, product_name: str, product_id: str) -> bool:
    """Whether an earlier run extracted this very product (its marker names the id)."""
    folder = extracted_folder(finish, product_name)
    try:
        recorded = json.loads(_marker(folder).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return isinstance(recorded, dict) and recorded.get("id") == product_id and folder.is_dir()


def _member_path(name: str) -> PurePosixPath:
    path = PurePosixPath(name.replace("\\", "/"))
    if path.is_absolute() or ".." in path.parts or ":" in name:
        raise IntegrityError(f"the archive holds an unsafe path: {name[:120]!r}")
    return path


def extract_product(archive: Path, finish: Path, product_name: str, product_id: str) -> Path:
    """Extract a verified archive into ``<finish>/<name>.SAFE`` and return that folder.

    The archive's own top folder (``<name>.SAFE/``) becomes the target; an archive
    without one is extracted into it as it is.

    Raises:
        IntegrityError: not a zip, an unsafe member (absolute, ``..``, a link), or more
            than :data:`MAX_EXPANSION` times the archive's size.
        StorageError: the disk refused.
    """
    target = extracted_folder(finish, product_name)
    scratch = finish / f".unzip-{product_id}"
    budget = max(archive.stat().st_size, 1) * MAX_EXPANSION
    try:
        shutil.rmtree(scratch, ignore_errors=True)
        scratch.mkdir(parents=True)
        with zipfile.ZipFile(archive) as opened:
            written = 0
            for info in opened.infolist():
                path = _member_path(info.filename)
                if stat.S_ISLNK(info.external_attr >> 16):
                    raise IntegrityError(f"the archive holds a link: {info.filename[:120]!r}")
                destination = scratch.joinpath(*path.parts)
                if info.is_dir():
                    destination.mkdir(parents=True, exist_ok=True)
                    continue
                destination.parent.mkdir(parents=True, exist_ok=True)
                with opened.open(info) as source, destination.open("wb") as sink:
                    while chunk := source.read(_CHUNK_BYTES):
                        written += len(chunk)
                        if written > budget:
                            raise IntegrityError(
                                f"the archive expands past {MAX_EXPANSION}× its size"
                            )
                        sink.write(chunk)
        entries = list(scratch.iterdir())
        inner = entries[0] if len(entries) == 1 and entries[0].is_dir() else scratch
        if target.exists():
            shutil.rmtree(target)
        os.replace(inner, target)
        _marker(target).write_text(json.dumps({"id": product_id}), encoding="utf-8")
    except zipfile.BadZipFile as error:
        raise IntegrityError(f"{archive.name} is not a zip archive: {error}") from None
    except OSError as error:
        raise StorageError(f"cannot extract {archive.name}: {error}") from None
    finally:
        with contextlib.suppress(OSError):
            shutil.rmtree(scratch, ignore_errors=True)
    return target
