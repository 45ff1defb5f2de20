"""Where a product's bytes live: ``Temp/<file>.part``, then ``Finish/<file>`` once verified.

Names come from the server (the catalogue's ``Name`` and ``Id``), so they are untrusted.
Two pure rules turn them into file names:

* :func:`safe_file_name` reduces one name to one safe path component: no separators,
  no control, format or bidi characters, no Windows device name, at most 240 bytes
  with its extension kept;
* :func:`assign_file_names` gives every product of a batch a name of its own. A name
  that needed no change stays exactly as the service names the download
  (``<Name>.zip``); a name that had to be changed, or that another product already
  owns (the same ``Name`` under another ``Id``, or the same letters in another case
  or Unicode normalisation, which macOS and Windows treat as one file), gets a piece of
  the product id before its extension: ``<cleaned name>~<id>.zip``.

Which file belongs to which product is recorded in the job ledger, so a rerun finds the
same files and ``verify`` maps every file back to its product. Every path is checked,
once more, to lie inside its folder.
"""

from __future__ import annotations

import hashlib
import itertools
import os
import re
import unicodedata
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

from sentinel_fetch.errors import ConfigError, StorageError, UnsafeNameError

__all__ = [
    "PART_SUFFIX",
    "TAG_SEPARATOR",
    "Layout",
    "assign_file_names",
    "file_name_key",
    "make_folder",
    "safe_file_name",
    "tagged_file_name",
]

# Windows forbids these characters; products downloaded on Linux are often copied to
# Windows machines, so the same rules apply everywhere.
_FORBIDDEN = frozenset('<>:"/\\|?*') | {chr(c) for c in range(32)} | {"\x7f"}
# Characters that are invisible or reorder the text around them (a right-to-left
# override makes "evil\u202efdp.zip" display as "evilpiz.pdf"): controls (Cc, C1
# included), format characters (Cf: bidi controls, zero-width space and joiners, BOM,
# soft hyphen), surrogates that UTF-8 cannot encode (Cs), line and paragraph separators.
_INVISIBLE_CATEGORIES = frozenset({"Cc", "Cf", "Cs", "Zl", "Zp"})
# Default-ignorable characters outside those categories: fillers and variation selectors.
_INVISIBLE = frozenset(
    {"\u034f", "\u115f", "\u1160", "\u17b4", "\u17b5", "\u3164", "\uffa0"}
    | {chr(c) for c in range(0x180B, 0x1810)}
    | {chr(c) for c in range(0xFE00, 0xFE10)}
    | {chr(c) for c in range(0xE0100, 0xE01F0)}
)
# Device names Windows opens instead of a file, whatever the extension and case, and
# with trailing spaces or dots ignored: "lpt9 .SAFE" is the printer port.
_DEVICES = frozenset(
    {"CON", "PRN", "AUX", "NUL", "CONIN$", "CONOUT$"}
    | {f"{port}{digit}" for port in ("COM", "LPT") for digit in "0123456789¹²³"}
)
_MAX_NAME_BYTES = 240  # leaves room for ".part" within the usual 255-byte limit
# What is kept when a name is cut: the archive's own extension (.zip, .tgz, .EOF, .nc).
_EXTENSION = re.compile(r"\.[A-Za-z0-9]{1,8}\Z")
PART_SUFFIX = ".part"
#: Separates a changed or shared name from the piece of the product id that makes it unique.
TAG_SEPARATOR = "~"
# Lengths of id tag tried in turn: 8 hex digits read well; longer ones only when an
# earlier one is taken (two ids sharing their first 8 digits, or a name built to clash).
_TAG_LENGTHS = (8, 32, 64)


def _replaced(character: str) -> bool:
    return (
        character in _FORBIDDEN
        or character in _INVISIBLE
        or unicodedata.category(character) in _INVISIBLE_CATEGORIES
        or (character != " " and unicodedata.category(character) == "Zs")
    )


def _is_device(name: str) -> bool:
    return name.split(".", 1)[0].rstrip(" .").upper() in _DEVICES


def _split_extension(name: str) -> tuple[str, str]:
    match = _EXTENSION.search(name)
    if match is None or match.start() == 0:
        return name, ""
    return name[: match.start()], match.group()


def _cut(text: str, max_bytes: int) -> str:
    """The longest prefix of ``text`` that fits ``max_bytes`` of UTF-8 (no split character)."""
    return text.encode()[:max_bytes].decode(errors="ignore")


def safe_file_name(name: str) -> str:
    """Reduce an untrusted name to one safe file name component.

    Path separators, control, format and bidi characters and Windows-forbidden
    characters become ``_``; leading dots and spaces and trailing dots and spaces go
    (hidden files, ``..``, and names Windows silently changes); a Windows device name
    (``CON``, ``lpt9 .SAFE``, ``COM¹.zip``...) gets a ``_`` in front; the text is put in
    Unicode NFC form; a name over 240 bytes is cut, keeping its extension. A name that
    needs none of this comes back unchanged, and the rule is idempotent.

    Raises:
        UnsafeNameError: nothing usable is left (empty, only dots...).

    Example:
        >>> safe_file_name("S2A_MSIL2A_20230101T000000.SAFE.zip")
        'S2A_MSIL2A_20230101T000000.SAFE.zip'
        >>> safe_file_name("../../etc/passwd")
        '_.._etc_passwd'
        >>> safe_file_name("\\u202eevil.zip")
        '_evil.zip'
        >>> safe_file_name("lpt9 .SAFE.zip")
        '_lpt9 .SAFE.zip'
        >>> cut = safe_file_name("x" * 1000 + ".SAFE.zip")
        >>> len(cut), cut[-8:]
        (240, 'xxxx.zip')
    """
    text = unicodedata.normalize("NFC", name)
    cleaned = "".join("_" if _replaced(ch) else ch for ch in text).strip(" .")
    if not cleaned.strip("._- "):
        raise UnsafeNameError(f"the server sent an unusable product name: {name[:80]!r}")
    if _is_device(cleaned):
        cleaned = f"_{cleaned}"
    if len(cleaned.encode()) > _MAX_NAME_BYTES:
        stem, extension = _split_extension(cleaned)
        stem = _cut(stem, _MAX_NAME_BYTES - len(extension.encode())).rstrip(" .")
        cleaned = stem + extension
    return cleaned


def _id_tag(product_id: str, length: int) -> str:
    """``length`` hex digits that stand for the product id (its own digits for a UUID)."""
    try:
        digits = uuid.UUID(product_id).hex
    except ValueError:
        digits = ""
    if length > len(digits):
        # Not a UUID, or a longer tag than one holds: a digest of the exact text.
        digits = hashlib.sha256(product_id.encode("utf-8", "surrogatepass")).hexdigest()
    return digits[:length]


#: The stem of a name of which nothing is left once cleaned (only dots, only controls).
NAMELESS_STEM = "product"


def tagged_file_name(file_name: str, product_id: str, tag_length: int = 8) -> str:
    """``file_name`` made safe, with a piece of the product id before its extension.

    The extension is split off the name as served, before cleaning strips dots, so
    ``....zip`` keeps ``.zip``. A name of which nothing is left once cleaned (only dots,
    or only control or bidi characters, which become ``_``) is called
    ``product~<id>``: never an empty or hidden name. The name is cut, if need be, so that
    the tag and the extension always fit.

    Example:
        >>> tagged_file_name("a/b.SAFE.zip", "67468f5c-4c73-44be-8116-a97824d07776")
        'a_b.SAFE~67468f5c.zip'
        >>> tagged_file_name("\u202e\u202e.zip", "67468f5c-4c73-44be-8116-a97824d07776")
        'product~67468f5c.zip'
    """
    served_stem, extension = _split_extension(file_name)
    try:
        stem = safe_file_name(served_stem)
    except UnsafeNameError:
        stem = ""
    if not stem.strip("._- "):
        stem = NAMELESS_STEM
    tag = TAG_SEPARATOR + _id_tag(product_id, tag_length)
    stem = _cut(stem, _MAX_NAME_BYTES - len(tag) - len(extension.encode())).rstrip(" .")
    return safe_file_name(f"{stem}{tag}{extension}")


def file_name_key(file_name: str) -> str:
    """What two file names are compared by: equal keys may be one file somewhere.

    Windows and macOS ignore case, and macOS ignores the Unicode normalisation form, so
    ``ABC.zip``, ``abc.zip``, ``Café.zip`` (NFC) and ``Café.zip`` (NFD) must never be
    the names of two products.

    Example:
        >>> file_name_key("ABC.SAFE.zip") == file_name_key("abc.safe.zip")
        True
    """
    return unicodedata.normalize("NFC", unicodedata.normalize("NFD", file_name).casefold())


def _is_safe(file_name: str) -> bool:
    try:
        return safe_file_name(file_name) == file_name
    except UnsafeNameError:
        return False


def assign_file_names(
    products: Iterable[tuple[str, str]], recorded: Mapping[str, str] | None = None
) -> dict[str, str]:
    """The local file name of every product: one file per product id, stable across runs.

    Args:
        products: ``(product id, file name as the service serves it)`` in batch order,
            e.g. ``(Id, "<Name>.zip")``.
        recorded: ``product id -> file name`` from earlier runs (the job ledger); these
            are kept, and no other product is given one of them.

    The rule, in order:

    1. a product with a recorded, safe name keeps it, unless two products recorded the
       same name (an older version could do that): then that name goes to neither;
    2. a name that needs no change (:func:`safe_file_name` returns it as it is) is used
       as it is, unless its :func:`file_name_key` is already taken;
    3. otherwise :func:`tagged_file_name`, with the shortest id tag not yet taken.

    Example:
        >>> names = assign_file_names([
        ...     ("11111111-aaaa-4aaa-8aaa-aaaaaaaaaaaa", "S2A_X.SAFE.zip"),
        ...     ("22222222-bbbb-4bbb-8bbb-bbbbbbbbbbbb", "S2A_X.SAFE.zip"),
        ...     ("33333333-cccc-4ccc-8ccc-cccccccccccc", "S2A/X.SAFE.zip"),
        ... ])
        >>> sorted(names.values())
        ['S2A_X.SAFE.zip', 'S2A_X.SAFE~22222222.zip', 'S2A_X.SAFE~33333333.zip']
    """
    owners: dict[str, set[str]] = {}
    earlier = dict(recorded or {})
    for product_id, recorded_name in earlier.items():
        # A name an older version recorded unsafely was written under its cleaned form.
        key = file_name_key(_cleaned_or_self(recorded_name))
        owners.setdefault(key, set()).add(product_id)
    taken = set(owners)
    assigned: dict[str, str] = {}
    for product_id, served in products:
        if product_id in assigned:
            continue
        name = earlier.get(product_id)
        if name is None or not _is_safe(name) or owners[file_name_key(name)] != {product_id}:
            name = _free_name(served, product_id, taken)
            taken.add(file_name_key(name))
        assigned[product_id] = name
    return assigned


def _cleaned_or_self(name: str) -> str:
    try:
        return safe_file_name(name)
    except UnsafeNameError:
        return name


def _free_name(served: str, product_id: str, taken: set[str]) -> str:
    candidates = [served] if _is_safe(served) else []
    candidates += [tagged_file_name(served, product_id, length) for length in _TAG_LENGTHS]
    for candidate in candidates:
        if file_name_key(candidate) not in taken:
            return candidate
    # Only a batch built to clash gets here: every tag of this id is some other name.
    for number in itertools.count(2):
        candidate = tagged_file_name(served, f"{product_id}#{number}", _TAG_LENGTHS[-1])
        if file_name_key(candidate) not in taken:
            return candidate
    raise AssertionError("unreachable")


def make_folder(path: Path) -> None:
    """Create ``path`` and its parents, with one-line errors.

    Raises:
        ConfigError: ``path``, or a folder above it, is a file.
        StorageError: the file system refused (permissions, read-only, full).
    """
    try:
        path.mkdir(parents=True, exist_ok=True)
    except (FileExistsError, NotADirectoryError):
        message = f"{path} cannot be a folder: it, or a folder above it, is a file"
        raise ConfigError(message) from None
    except OSError as exc:
        raise StorageError(f"cannot create the folder {path}: {exc.strerror or exc}") from None


def _existing_ancestor(path: Path) -> Path:
    """``path`` or its nearest existing parent: where it will be created."""
    path = path.absolute()
    while not path.exists() and path != path.parent:
        path = path.parent
    return path


@dataclass(frozen=True)
class Layout:
    """The folders of one download job.

    Attributes:
        temp_dir: in-progress ``.part`` files.
        finish_dir: verified products only.
    """

    temp_dir: Path
    finish_dir: Path

    def check(self) -> None:
        """Refuse a temp folder on another file system, before anything is created.

        The final step is an atomic ``os.replace`` from temp to finish, which only exists
        within one file system; across file systems a crash mid-copy could leave half a
        product in the finish folder. Folders that do not exist yet are judged by the
        nearest folder above them, where they will be created.

        Raises:
            ConfigError: the two folders are (or would be) on different file systems.
        """
        temp, finish = _existing_ancestor(self.temp_dir), _existing_ancestor(self.finish_dir)
        try:
            same = os.stat(temp).st_dev == os.stat(finish).st_dev
        except OSError:
            return  # make_folder reports the problem with the path itself
        if not same:
            raise ConfigError(
                f"the temp folder {self.temp_dir} and the finish folder {self.finish_dir} are on "
                "different file systems; put them on the same one so finished files move atomically"
            )

    def prepare(self) -> None:
        """:meth:`check`, then create both folders.

        Raises:
            ConfigError: different file systems, or a folder's path is a file.
            StorageError: a folder cannot be created.
        """
        self.check()
        make_folder(self.temp_dir)
        make_folder(self.finish_dir)
        # Before, the nearest existing folders stood in for the new ones; now it is exact.
        self.check()

    def _inside(self, folder: Path, component: str) -> Path:
        path = folder / component
        if path.resolve().parent != folder.resolve():
            raise UnsafeNameError(f"refusing to write outside {folder}: {component[:80]!r}")
        return path

    def finished(self, file_name: str) -> Path:
        """Path of a verified product in the finish folder."""
        return self._inside(self.finish_dir, safe_file_name(file_name))

    def partial(self, file_name: str) -> Path:
        """Path of the in-progress file in the temp folder."""
        return self._inside(self.temp_dir, safe_file_name(file_name) + PART_SUFFIX)
