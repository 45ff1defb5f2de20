"""Where a product's bytes live: ``Temp/<file>.part``, then ``Finish/<file>`` once verified.

Names come from the server (the catalogue's ``Name``), so they are untrusted: a name is
reduced to one safe path component and the result is checked to lie inside its folder.
"""

from __future__ import annotations

import os
import unicodedata
from dataclasses import dataclass
from pathlib import Path

from sentinel_fetch.errors import ConfigError, StorageError, UnsafeNameError

__all__ = ["Layout", "safe_file_name"]

# Windows forbids these characters and names; products downloaded on Linux are often
# copied to Windows machines, so the same rules apply everywhere.
_FORBIDDEN = set('<>:"/\\|?*') | {chr(c) for c in range(32)} | {"\x7f"}
_RESERVED = {"CON", "PRN", "AUX", "NUL"} | {f"{p}{i}" for p in ("COM", "LPT") for i in range(1, 10)}
_MAX_NAME_BYTES = 240  # leaves room for ".part" within the usual 255-byte limit
PART_SUFFIX = ".part"


def safe_file_name(name: str) -> str:
    """Reduce an untrusted name to one safe file name component.

    Path separators, control characters, Windows-forbidden characters and leading dots
    are replaced; ``..`` cannot survive; over-long names are shortened.

    Raises:
        UnsafeNameError: nothing usable is left (empty, only dots...).

    Example:
        >>> safe_file_name("S2A_MSIL2A_20230101T000000.SAFE.zip")
        'S2A_MSIL2A_20230101T000000.SAFE.zip'
        >>> safe_file_name("../../etc/passwd")
        '_.._etc_passwd'
    """
    text = unicodedata.normalize("NFC", name)
    # Separators become "_", so the result is always a single component; leading dots
    # would make it hidden (or "." / ".."), trailing dots and spaces vanish on Windows.
    cleaned = "".join("_" if ch in _FORBIDDEN else ch for ch in text).strip(" .")
    if not cleaned.strip("._- "):
        raise UnsafeNameError(f"the server sent an unusable product name: {name[:80]!r}")
    if cleaned.split(".", 1)[0].upper() in _RESERVED:
        cleaned = f"_{cleaned}"
    encoded = cleaned.encode()
    if len(encoded) > _MAX_NAME_BYTES:
        cleaned = encoded[:_MAX_NAME_BYTES].decode(errors="ignore")
    return cleaned


@dataclass(frozen=True)
class Layout:
    """The folders of one download job.

    Attributes:
        temp_dir: in-progress ``.part`` files.
        finish_dir: verified products only.
    """

    temp_dir: Path
    finish_dir: Path

    def prepare(self) -> None:
        """Create both folders; refuse a temp folder on another file system.

        The final step is an atomic ``os.replace`` from temp to finish, which only exists
        within one file system; across file systems a crash mid-copy could leave half a
        product in the finish folder.
        """
        try:
            self.temp_dir.mkdir(parents=True, exist_ok=True)
            self.finish_dir.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StorageError(
                f"cannot create the save folders: {exc.strerror} ({exc.filename})"
            ) from None
        if os.stat(self.temp_dir).st_dev != os.stat(self.finish_dir).st_dev:
            raise ConfigError(
                f"the temp folder {self.temp_dir} and the finish folder {self.finish_dir} are on "
                "different file systems; put them on the same one so finished files move atomically"
            )

    def _inside(self, folder: Path, file_name: str) -> Path:
        path = folder / safe_file_name(file_name)
        if path.resolve().parent != folder.resolve():
            raise UnsafeNameError(f"refusing to write outside {folder}: {file_name[:80]!r}")
        return path

    def finished(self, file_name: str) -> Path:
        """Path of a verified product in the finish folder."""
        return self._inside(self.finish_dir, file_name)

    def partial(self, file_name: str) -> Path:
        """Path of the in-progress file in the temp folder."""
        return self._inside(self.temp_dir, safe_file_name(file_name) + PART_SUFFIX)
