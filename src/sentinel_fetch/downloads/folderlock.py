"""One writer per folder: an operating-system lock on every folder a run writes.

Why: two runs on one save folder (overlapping cron jobs, a second terminal) write the
same ``Temp/<file>.part``; one moves it into ``Finish`` while the other still appends
to it, and each records what it believes in the ledger. A run therefore locks every
folder it writes before it writes anything: the save folder (ledger, reports,
``Corrupt``), the temp folder and the finish folder, each on its own, so that a
``--temp-dir`` or ``--finish-dir`` shared by two save folders is locked too.

How: each folder holds a small file, ``.sentinel-fetch.lock``, and the run holds an OS
lock on it (``flock`` on Linux and macOS, ``msvcrt.locking`` on Windows). The kernel
drops the lock when the process ends in any way, ``kill -9`` and a crash included, so
a lock left by a dead run never blocks anyone: there is no pid to check and no "stale
lock" to clear by hand. What the file says (pid, host, since when, command) only serves
the error message of a second run; it is never trusted to decide anything. A run that
ends normally removes the file again (POSIX; see :meth:`FolderLock.release` for why
that is safe), so ``Temp`` and ``Finish`` hold only product files between runs.

``status`` takes no lock (it reads the ledger in SQLite's read-only mode); ``verify``
takes the save and finish folders, so it never moves a file a download is writing.

Cooperating runs. A folder is held in one of two modes:

* ``"exclusive"`` (``verify``, a download without a ledger, a run of an older version):
  nobody else may hold the folder in any mode;
* ``"shared"`` (``download`` with its job ledger): any number of downloads hold it
  together (``LOCK_SH``), each claiming its products through leases in the ledger
  (:mod:`~sentinel_fetch.downloads.coordination`), while anything exclusive is refused,
  and waits for none of them. The lock file then holds one record per holder (a line
  each), so the message of a refused run can name them.

A shared holder that finds nobody else (its exclusive try succeeds) starts a fresh
record; the last one to leave (again: its exclusive try succeeds) removes the file. On
Windows (``msvcrt.locking`` knows no shared mode) a shared hold is exclusive: downloads
on one folder there are refused, not merged, which is safe.

Within a shared folder a product's ``.part`` file has a lock of its own
(:class:`PartLock`): only the run holding the product's lease writes it, and a run that
takes a product over from one whose lease expired while it was still alive (stalled,
suspended) waits until that one stops writing.
"""

from __future__ import annotations

import contextlib
import errno
import json
import logging
import os
import socket
import stat
import sys
import time
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from pathlib import Path
from types import TracebackType
from typing import Literal

from sentinel_fetch.errors import FolderInUseError, StorageError
from sentinel_fetch.redact import MASK, redact, redact_url
from sentinel_fetch.untrusted import parse_json

__all__ = [
    "LOCK_FILE_NAME",
    "FolderLock",
    "Holder",
    "LockMode",
    "PartLock",
    "describe_command",
    "sweep_part_locks",
]

log = logging.getLogger("sentinel_fetch.download")

#: The lock file kept in every folder a run writes (hidden: it is not a product).
LOCK_FILE_NAME = ".sentinel-fetch.lock"

#: How a folder is held; see the module docstring.
LockMode = Literal["exclusive", "shared"]
_MODES = ("exclusive", "shared")

# Windows locks are mandatory: a locked byte cannot be read by others. The lock is on
# a byte far past the holder record, so a second run can still read who holds it.
_WINDOWS_LOCK_OFFSET = 1 << 20
_HOLDER_MAX_BYTES = 4096
_COMMAND_MAX_CHARS = 200
# Options whose value is a secret, masked wherever a command line is shown.
_SECRET_OPTIONS = frozenset({"--totp", "--password"})
# File systems that cannot lock (some network shares): the run goes on, unprotected.
_NO_LOCKS = frozenset({errno.ENOLCK, errno.EOPNOTSUPP, errno.ENOSYS, errno.EINVAL})
_NOT_WRITABLE = frozenset({errno.EACCES, errno.EPERM, errno.EROFS})


def describe_command(argv: Sequence[str]) -> str:
    """A command line fit to show another user: secrets masked, the program short.

    Example:
        >>> describe_command(["/usr/bin/sentinel-fetch", "download", "--totp", "123456",
        ...                   "--proxy", "http://me:pw@proxy:3128", "--out", "data"])
        'sentinel-fetch download --totp *** --proxy http://me:***@proxy:3128 --out data'
    """
    if not argv:
        return "(unknown command)"
    program = Path(argv[0]).name
    if program in ("__main__.py", "sentinel-fetch", "sentinel-fetch.exe", "-c", ""):
        program = "sentinel-fetch"
    words = [program]
    masked_next = False
    for word in argv[1:]:
        option, equals, _ = word.partition("=")
        if masked_next:
            words.append(MASK)
        elif equals and option in _SECRET_OPTIONS:
            words.append(f"{option}={MASK}")
        else:
            words.append(redact_url(word) if "://" in word else redact(word))
        masked_next = word in _SECRET_OPTIONS
    text = " ".join(words)
    return text if len(text) <= _COMMAND_MAX_CHARS else text[: _COMMAND_MAX_CHARS - 1] + "…"


@dataclass(frozen=True)
class Holder:
    """Who holds a folder: what the lock file says, for messages only.

    Attributes:
        pid: the process id.
        host: the machine's name (folders on a network share are locked across machines).
        since: when the lock was taken, ISO 8601 UTC.
        command: the command line, secrets masked.
        job: for a shared hold, the job's ledger (its location, password masked): runs
            of one job share folders; a run of another job is refused.
    """

    pid: int
    host: str
    since: str
    command: str
    job: str = ""

    @classmethod
    def this_process(cls, command: str | None = None, job: str = "") -> Holder:
        """This process, now; ``command`` defaults to this process's command line."""
        now = datetime.now(timezone.utc).isoformat(timespec="seconds").replace("+00:00", "Z")
        command = command or describe_command(sys.argv)
        return cls(os.getpid(), socket.gethostname(), now, command, job)

    def to_bytes(self) -> bytes:
        """The record written into the lock file."""
        return (json.dumps(asdict(self), ensure_ascii=False) + "\n").encode()

    @classmethod
    def from_bytes(cls, data: bytes) -> Holder | None:
        """Read a record back; ``None`` if there is none yet or it is not one of ours.

        Example:
            >>> holder = Holder(42, "host", "2026-01-01T00:00:00Z", "sentinel-fetch status")
            >>> Holder.from_bytes(holder.to_bytes()) == holder
            True
            >>> Holder.from_bytes(b"") is None
            True
        """
        try:
            fields = parse_json(data)
            pid, host, since, command = (fields[k] for k in ("pid", "host", "since", "command"))
            return cls(int(pid), str(host), str(since), str(command), str(fields.get("job", "")))
        except (ValueError, TypeError, KeyError, AttributeError):
            return None

    def describe(self) -> str:
        """``pid 42 on host, since 2026-01-01T00:00:00Z: sentinel-fetch download ...``."""
        return f"pid {self.pid} on {self.host}, since {self.since}: {self.command}"


class _Busy(Exception):
    """The OS lock is held by another open file (another process, or another run here)."""


class _Unsupported(Exception):
    """The file system cannot lock at all."""


if sys.platform == "win32":
    import msvcrt

    def _try_lock(descriptor: int, *, shared: bool = False) -> None:
        # No shared mode: a shared hold is exclusive here (safe, not cooperative).
        os.lseek(descriptor, _WINDOWS_LOCK_OFFSET, os.SEEK_SET)
        try:
            msvcrt.locking(descriptor, msvcrt.LK_NBLCK, 1)
        except OSError as exc:
            raise _Busy from exc

    def _unlock(descriptor: int) -> None:
        os.lseek(descriptor, _WINDOWS_LOCK_OFFSET, os.SEEK_SET)
        with contextlib.suppress(OSError):
            msvcrt.locking(descriptor, msvcrt.LK_UNLCK, 1)

    def _read_record(descriptor: int) -> bytes:
        os.lseek(descriptor, 0, os.SEEK_SET)
        return os.read(descriptor, _HOLDER_MAX_BYTES)

    def _write_record(descriptor: int, data: bytes) -> None:
        os.ftruncate(descriptor, 0)
        os.lseek(descriptor, 0, os.SEEK_SET)
        os.write(descriptor, data)

    def _append_record(descriptor: int, data: bytes) -> None:
        _write_record(descriptor, data)  # never reached: a hold here is always alone

    # An open file cannot be deleted on Windows, so the file stays between runs.
    _REMOVES_FILE = False
    _HAS_SHARED = False

else:
    import fcntl

    def _try_lock(descriptor: int, *, shared: bool = False) -> None:
        try:
            fcntl.flock(descriptor, (fcntl.LOCK_SH if shared else fcntl.LOCK_EX) | fcntl.LOCK_NB)
        except BlockingIOError as exc:
            raise _Busy from exc
        except OSError as exc:
            if exc.errno in _NO_LOCKS:
                raise _Unsupported(exc.strerror or str(exc)) from exc
            raise

    def _unlock(descriptor: int) -> None:
        fcntl.flock(descriptor, fcntl.LOCK_UN)

    def _read_record(descriptor: int) -> bytes:
        return os.pread(descriptor, _HOLDER_MAX_BYTES, 0)

    def _write_record(descriptor: int, data: bytes) -> None:
        os.ftruncate(descriptor, 0)
        os.pwrite(descriptor, data, 0)

    def _append_record(descriptor: int, data: bytes) -> None:
        end = os.fstat(descriptor).st_size
        if end + len(data) <= _HOLDER_MAX_BYTES:
            os.pwrite(descriptor, data, end)

    _REMOVES_FILE = True
    _HAS_SHARED = True


#: A shared try that meets an exclusive lock is tried this many times more, this far
#: apart: sharers hold the exclusive lock only for a moment (to learn whether they are
#: alone), a real exclusive holder (``verify``) for its whole run.
_SHARED_TRIES = 50
_SHARED_PAUSE_S = 0.002


def _try_shared(descriptor: int) -> None:
    """The shared lock, tried again while another sharer probes with the exclusive one.

    Raises:
        _Busy: still refused after the tries: an exclusive holder.
    """
    for _ in range(_SHARED_TRIES):
        try:
            _try_lock(descriptor, shared=True)
            return
        except _Busy:
            time.sleep(_SHARED_PAUSE_S)
    _try_lock(descriptor, shared=True)


def _holders(record: bytes) -> list[Holder]:
    """Every holder a lock file names (one line each; unreadable lines are skipped)."""
    found = []
    for line in record.splitlines()[:32]:
        holder = Holder.from_bytes(line)
        if holder is not None:
            found.append(holder)
    return found


def _busy_error(folder: Path, record: bytes) -> FolderInUseError:
    holders = _holders(record)
    holder = holders[-1] if holders else None
    who = holder.describe() if holder else "a process that is just starting"
    if len(holders) > 1:
        who = f"{who}, and {len(holders) - 1} more download(s) sharing it"
    return FolderInUseError(
        f"{folder} is in use by another run ({who}); "
        "wait for it to finish, or stop it, then run again",
        folder=folder,
        pid=holder.pid if holder else None,
        host=holder.host if holder else None,
    )


def _other_job_error(folder: Path, holder: Holder) -> FolderInUseError:
    return FolderInUseError(
        f"{folder} is in use by a run of another job ({holder.describe()}; its ledger: "
        f"{holder.job or 'none'}): one folder, one job; use another folder, or the same "
        "--out/--ledger as that run",
        folder=folder,
        pid=holder.pid,
        host=holder.host,
    )


# A symbolic link at the lock path is never followed (we would truncate and write its
# target, wherever it points), and a FIFO there never blocks the open.
_SAFE_OPEN = (
    getattr(os, "O_BINARY", 0)
    | getattr(os, "O_CLOEXEC", 0)
    | getattr(os, "O_NOFOLLOW", 0)
    | getattr(os, "O_NONBLOCK", 0)
)


def _not_a_lock_file(path: Path) -> StorageError:
    return StorageError(
        f"cannot lock {path.parent}: {path.name} there is not a regular file (a link, a "
        "folder or a device); remove it and run again"
    )


def _checked(descriptor: int, path: Path) -> int:
    """``descriptor`` if it is a regular file; else closed, and refused."""
    try:
        regular = stat.S_ISREG(os.fstat(descriptor).st_mode)
    except OSError:
        regular = False
    if not regular:
        os.close(descriptor)
        raise _not_a_lock_file(path)
    return descriptor


def _open(path: Path, *, create: bool) -> int:
    flags = os.O_RDWR | _SAFE_OPEN | (os.O_CREAT if create else 0)
    try:
        descriptor = os.open(path, flags, 0o644)
    except OSError as exc:
        if exc.errno in (errno.ELOOP, errno.EISDIR, errno.ENXIO) or path.is_symlink():
            raise _not_a_lock_file(path) from None
        raise
    return _checked(descriptor, path)


def _open_read_only(path: Path) -> int:
    try:
        descriptor = os.open(path, os.O_RDONLY | _SAFE_OPEN)
    except OSError as exc:
        if exc.errno == errno.ELOOP or path.is_symlink():
            raise _not_a_lock_file(path) from None
        raise StorageError(f"cannot lock {path.parent}: {exc.strerror or exc}") from None
    return _checked(descriptor, path)


def _same_file(descriptor: int, path: Path) -> bool:
    try:
        return os.path.samestat(os.fstat(descriptor), os.stat(path))
    except FileNotFoundError:
        return False


def _distinct(folders: Iterable[Path]) -> list[Path]:
    """Folders in a fixed order, each once (a folder reached by two paths is one folder).

    Locking one folder twice would make the run wait for itself.
    """
    seen: set[tuple[int, int]] = set()
    distinct = []
    for folder in sorted({Path(os.path.abspath(f)) for f in folders}):
        try:
            identity = os.stat(folder)
        except OSError as exc:
            raise StorageError(f"cannot lock {folder}: {exc.strerror or exc}") from None
        key = (identity.st_dev, identity.st_ino)
        if key not in seen:
            seen.add(key)
            distinct.append(folder)
    return distinct


class FolderLock:
    """The folders of one run, held until :meth:`release` (or the end of the process).

    Take it with :meth:`acquire`; the constructor does no I/O. Use it as a context
    manager, or call :meth:`release`.

    Args:
        folders: every folder the run writes; they must exist.
        mode: how to hold them: ``"exclusive"`` or ``"shared"`` (see the module docstring).
        holder: what the lock files say about this run.
    """

    def __init__(
        self,
        folders: Iterable[Path],
        *,
        mode: LockMode = "exclusive",
        holder: Holder | None = None,
    ) -> None:
        if mode not in _MODES:
            raise ValueError(f"mode must be one of {_MODES}, got {mode!r}")
        self.folders = tuple(folders)
        self.mode = mode
        self.holder = holder or Holder.this_process()
        self._held: list[tuple[Path, int]] = []

    @classmethod
    def acquire(
        cls,
        folders: Iterable[Path],
        *,
        mode: LockMode = "exclusive",
        command: str | None = None,
        job: str = "",
    ) -> FolderLock:
        """Lock every folder at once, or none: never waits.

        Args:
            folders: every folder the run writes.
            mode: ``"exclusive"`` or ``"shared"``.
            command: what the lock files say the run is (default: this command line).
            job: for ``"shared"``: the job's ledger; a folder shared with runs of
                another job is refused (their leases are in another ledger).

        Raises:
            FolderInUseError: another run holds one of them (the message names it).
            StorageError: a folder does not exist, or its lock file cannot be written.
        """
        lock = cls(_distinct(folders), mode=mode, holder=Holder.this_process(command, job))
        try:
            for folder in lock.folders:
                lock._lock(folder)
        except BaseException:
            lock.release()
            raise
        return lock

    @staticmethod
    def check_free(folders: Iterable[Path], *, mode: LockMode = "exclusive", job: str = "") -> None:
        """Raise now if another run holds one of ``folders`` so that ``mode`` is refused;
        change nothing.

        For a command that has slow work to do (a search, a login) before it writes:
        it learns at once that it could not write. Only :meth:`acquire` makes sure.

        Raises:
            FolderInUseError: another run holds one of them.
        """
        for folder in folders:
            path = Path(folder) / LOCK_FILE_NAME
            try:
                descriptor = _open(path, create=False)
            except FileNotFoundError:
                continue  # no lock file: nobody holds the folder
            except StorageError:
                continue  # not a lock file at all: acquire() will say so
            except OSError:
                try:
                    descriptor = _open_read_only(path)
                except StorageError:
                    continue  # a file we may not even read: acquire() will say so
            try:
                try:
                    _try_lock(descriptor)
                    record = b""  # nobody holds it: what the file says is stale
                except _Busy:
                    if mode != "shared" or not _HAS_SHARED:
                        raise
                    _try_shared(descriptor)
                    record = _read_record(descriptor)
            except _Busy:
                raise _busy_error(Path(folder), _read_record(descriptor)) from None
            except _Unsupported:
                continue
            else:
                _unlock(descriptor)
                others = [h for h in _holders(record) if h.job != job]
                if others:
                    raise _other_job_error(Path(folder), others[-1])
            finally:
                os.close(descriptor)

    def _lock(self, folder: Path) -> None:
        path = folder / LOCK_FILE_NAME
        writable = True
        while True:
            try:
                descriptor = _open(path, create=True)
            except OSError as exc:
                if exc.errno not in _NOT_WRITABLE:
                    raise StorageError(f"cannot lock {folder}: {exc.strerror or exc}") from None
                if not path.exists():
                    # A folder we cannot write (read-only media, another user's): nothing
                    # of ours can change it, and the lock is only for those who can.
                    log.debug("%s is read-only for this process: not locked", folder)
                    return
                # Another user's lock file: the lock itself needs no write access.
                descriptor = _open_read_only(path)
                writable = False
            try:
                alone = self._take(descriptor, writable=writable)
            except _Busy:
                record = _read_record(descriptor)
                os.close(descriptor)
                raise _busy_error(folder, record) from None
            except _Unsupported as exc:
                os.close(descriptor)
                log.warning(
                    "%s: this file system cannot lock files (%s); a second run on this folder "
                    "would not be stopped",
                    folder,
                    exc,
                )
                return
            except BaseException:
                os.close(descriptor)
                raise
            # The previous holder may have removed the file between our open and our lock:
            # then we hold a lock on a file nobody else will ever open. Try again.
            if _same_file(descriptor, path):
                break
            os.close(descriptor)
        self._held.append((path, descriptor))
        if not writable:
            return
        mine = self.holder.to_bytes()
        try:
            if alone:
                if self.mode == "exclusive" or not _HAS_SHARED:
                    _write_record(descriptor, mine)
                return  # a shared first holder wrote it under the exclusive lock
            # Another job's runs claim through another ledger: sharing its Temp or
            # Finish would let two writers at one file. Refused, as an exclusive hold
            # would be (a refusal is all the records ever decide). Checked before our
            # record is added and again after (two jobs arriving at once).
            self._refuse_other_jobs(folder, _read_record(descriptor))
            _append_record(descriptor, mine)
            record = _read_record(descriptor)
        except OSError as exc:
            raise StorageError(f"cannot lock {folder}: {exc.strerror or exc}") from None
        try:
            self._refuse_other_jobs(folder, record)
        except FolderInUseError:
            with contextlib.suppress(OSError):
                _write_record(descriptor, record.replace(mine, b""))
            raise

    def _refuse_other_jobs(self, folder: Path, record: bytes) -> None:
        others = [h for h in _holders(record) if h.job != self.holder.job]
        if others:
            raise _other_job_error(folder, others[-1])

    def _take(self, descriptor: int, *, writable: bool = True) -> bool:
        """Lock ``descriptor`` in this lock's mode; ``True`` if no one else holds it.

        A shared hold first tries the exclusive lock: if that succeeds nobody else holds
        the folder, and the record is started afresh (the file may still name a run
        killed long ago) while the exclusive lock is still held, so that no holder
        arriving later can be wiped from it; then it turns into the shared lock.
        Turning is not atomic (``flock`` lets go, then locks again), and other sharers
        probe with the exclusive lock too: a shared try that meets an exclusive lock is
        tried again a few times (:func:`_try_shared`) before it counts as refused.

        Raises:
            _Busy: another holder's mode refuses this one.
            _Unsupported: the file system cannot lock.
        """
        if self.mode == "exclusive" or not _HAS_SHARED:
            _try_lock(descriptor)
            return True
        try:
            _try_lock(descriptor)
        except _Busy:
            _try_shared(descriptor)
            return False
        if writable:
            try:
                _write_record(descriptor, self.holder.to_bytes())
            except OSError:
                _unlock(descriptor)
                raise
        _try_shared(descriptor)
        return True

    def release(self) -> None:
        """Let go of every folder (idempotent).

        On POSIX the lock file is removed first, while still locked: a run that opened
        it meanwhile then finds, once it gets the lock, that the path names another
        file (or none), and starts over on the path; it never holds a lock on a file
        nobody else can see.
        """
        held, self._held = self._held, []
        for path, descriptor in reversed(held):
            if _REMOVES_FILE and self._last_holder(descriptor):
                with contextlib.suppress(OSError):
                    path.unlink()
            with contextlib.suppress(OSError):
                _unlock(descriptor)
            os.close(descriptor)

    def _last_holder(self, descriptor: int) -> bool:
        """Whether this run is the folder's only holder (then it removes the lock file).

        A shared holder asks by trying the exclusive lock: granted, nobody else holds
        the folder; refused, the file stays for the others (the try may have dropped
        this run's shared lock: it is letting go anyway).
        """
        if self.mode == "exclusive" or not _HAS_SHARED:
            return True
        try:
            _try_lock(descriptor)
        except (_Busy, _Unsupported, OSError):
            return False
        return True

    def __enter__(self) -> FolderLock:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.release()


class PartLock:
    """The right to write one product's partial file, held by the run holding its lease.

    The lease in the ledger says whose turn it is; this lock makes sure the previous
    holder has stopped writing: a run whose lease expired while it was alive (stalled,
    suspended, its heartbeat late) keeps this lock until it notices and stops, and the
    run that took the product over waits for it (or tries again later) before it
    touches the file. A killed run's lock goes with its process.

    The lock is a hidden file next to the partial files (``.<file name>.lock``),
    removed when released, the same way as :class:`FolderLock`'s.

    Args:
        temp_dir: the temp folder.
        file_name: the product's file name in this job.
    """

    def __init__(self, temp_dir: Path, file_name: str) -> None:
        self.path = temp_dir / f".{file_name}.lock"
        self._descriptor: int | None = None

    def try_acquire(self) -> bool:
        """Take the lock if free; ``False`` if another run (or thread) still writes.

        A file system that cannot lock counts as free: the lease alone decides there.

        Raises:
            StorageError: the lock file cannot be created.
        """
        if self._descriptor is not None:
            return True
        while True:
            try:
                descriptor = _open(self.path, create=True)
            except OSError as exc:
                raise StorageError(f"cannot lock {self.path}: {exc.strerror or exc}") from None
            try:
                _try_lock(descriptor)
            except _Busy:
                os.close(descriptor)
                return False
            except _Unsupported:
                os.close(descriptor)
                return True
            except BaseException:
                os.close(descriptor)
                raise
            if _same_file(descriptor, self.path):
                self._descriptor = descriptor
                return True
            os.close(descriptor)

    @property
    def held(self) -> bool:
        """Whether this object holds the lock."""
        return self._descriptor is not None

    def release(self) -> None:
        """Let go (idempotent); the file is removed while still locked (POSIX)."""
        descriptor, self._descriptor = self._descriptor, None
        if descriptor is None:
            return
        if _REMOVES_FILE:
            with contextlib.suppress(OSError):
                self.path.unlink()
        with contextlib.suppress(OSError):
            _unlock(descriptor)
        os.close(descriptor)


def sweep_part_locks(temp_dir: Path) -> int:
    """Remove the part locks runs killed with ``kill -9`` left in ``temp_dir``.

    A lock nobody holds is taken and let go, which removes its file; one a live run
    holds is left alone. Returns how many were removed.
    """
    removed = 0
    try:
        entries = list(os.scandir(temp_dir))
    except OSError:
        return 0
    for entry in entries:
        name = entry.name
        if not (name.startswith(".") and name.endswith(".lock") and entry.is_file()):
            continue
        if name == LOCK_FILE_NAME:
            continue
        lock = PartLock(temp_dir, name[1 : -len(".lock")])
        try:
            if lock.try_acquire():
                lock.release()
                removed += 1
        except StorageError:
            continue
    return removed
