"""The folder lock against real processes: refused while held, free once the holder dies.

A holder is a separate Python process that takes the lock, says so on stdout and keeps
it until its stdin closes; the tests wait for that line, never for time.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from sentinel_fetch.downloads import folderlock
from sentinel_fetch.downloads.folderlock import LOCK_FILE_NAME, FolderLock
from sentinel_fetch.errors import FolderInUseError, StorageError

HOLDER = """
import sys
from pathlib import Path
from sentinel_fetch.downloads.folderlock import FolderLock
lock = FolderLock.acquire([Path(p) for p in sys.argv[1:]], command="the test's holder")
print("held", flush=True)
sys.stdin.read()
lock.release()
print("released", flush=True)
"""


class Holder:
    """A process holding the lock on some folders until :meth:`release` or a kill."""

    def __init__(self, *folders: Path) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-c", HOLDER, *map(str, folders)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self.process.stdout is not None
        line = self.process.stdout.readline()
        assert line == "held\n", f"the holder did not take the lock: {line!r}"

    @property
    def pid(self) -> int:
        return self.process.pid

    def release(self) -> None:
        assert self.process.stdin is not None and self.process.stdout is not None
        self.process.stdin.close()
        assert self.process.stdout.readline() == "released\n"
        assert self.process.wait() == 0

    def kill(self) -> None:
        self.process.send_signal(signal.SIGKILL)
        assert self.process.wait() == -signal.SIGKILL

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()
        for stream in (self.process.stdin, self.process.stdout):
            if stream is not None:
                stream.close()


@pytest.fixture
def folders(tmp_path: Path) -> list[Path]:
    made = [tmp_path / "save", tmp_path / "save" / "Temp", tmp_path / "elsewhere" / "Finish"]
    for folder in made:
        folder.mkdir(parents=True, exist_ok=True)
    return made


@pytest.fixture
def holders() -> Iterator[list[Holder]]:
    started: list[Holder] = []
    yield started
    for holder in started:
        holder.stop()


def test_a_second_run_is_refused_with_who_holds_the_folder(
    folders: list[Path], holders: list[Holder]
) -> None:
    holder = Holder(*folders)
    holders.append(holder)

    with pytest.raises(FolderInUseError) as refused:
        FolderLock.acquire([folders[2]])

    message = str(refused.value)
    assert "\n" not in message
    assert str(folders[2]) in message
    assert f"pid {holder.pid} on {socket.gethostname()}, since 20" in message
    assert "the test's holder" in message
    assert (refused.value.pid, refused.value.host) == (holder.pid, socket.gethostname())
    with pytest.raises(FolderInUseError):
        FolderLock.check_free(folders)

    holder.release()

    with FolderLock.acquire(folders) as lock:
        assert lock.folders
    for folder in folders:
        assert not (folder / LOCK_FILE_NAME).exists(), "a clean end leaves no lock file"


def test_a_killed_holder_never_blocks_anyone(folders: list[Path], holders: list[Holder]) -> None:
    holder = Holder(*folders)
    holders.append(holder)
    holder.kill()
    assert (folders[0] / LOCK_FILE_NAME).exists(), "kill -9 leaves the file, not the lock"

    FolderLock.check_free(folders)
    with FolderLock.acquire(folders):
        record = (folders[0] / LOCK_FILE_NAME).read_text()
        assert f'"pid": {os.getpid()}' in record


def test_the_same_folder_twice_in_one_process_is_refused(folders: list[Path]) -> None:
    """Two runs in one program (threads, a notebook) collide just as two processes do."""
    with FolderLock.acquire(folders), pytest.raises(FolderInUseError, match=f"pid {os.getpid()}"):
        FolderLock.acquire([folders[1]])


def test_all_folders_or_none(folders: list[Path], holders: list[Holder]) -> None:
    holder = Holder(folders[2])
    holders.append(holder)

    with pytest.raises(FolderInUseError):
        FolderLock.acquire(folders)

    # The folders before the held one were let go again.
    with FolderLock.acquire(folders[:2]):
        pass


def test_one_folder_reached_by_two_paths_is_locked_once(tmp_path: Path) -> None:
    real = tmp_path / "real"
    real.mkdir()
    (tmp_path / "link").symlink_to(real)
    with FolderLock.acquire([real, tmp_path / "link", tmp_path / "real" / "."]) as lock:
        assert len(lock.folders) == 1


def test_checking_changes_nothing(tmp_path: Path) -> None:
    FolderLock.check_free([tmp_path, tmp_path / "not-yet"])
    assert list(tmp_path.iterdir()) == []


@pytest.mark.skipif(sys.platform == "win32", reason="symbolic links need privileges there")
def test_a_link_planted_at_the_lock_path_is_refused_and_its_target_left_alone(
    tmp_path: Path,
) -> None:
    folder = tmp_path / "data"
    folder.mkdir()
    victim = tmp_path / "victim.txt"
    victim.write_text("precious\n")
    (folder / LOCK_FILE_NAME).symlink_to(victim)

    with pytest.raises(StorageError, match="not a regular file") as raised:
        FolderLock.acquire([folder])
    assert "\n" not in str(raised.value)
    assert victim.read_text() == "precious\n"
    FolderLock.check_free([folder])  # nothing to say: acquire() is the one that refuses
    assert victim.read_text() == "precious\n"


@pytest.mark.skipif(sys.platform == "win32", reason="no FIFOs there")
@pytest.mark.parametrize("kind", ["fifo", "folder", "dangling link"])
def test_anything_but_a_regular_file_at_the_lock_path_is_refused(tmp_path: Path, kind: str) -> None:
    folder = tmp_path / "data"
    folder.mkdir()
    path = folder / LOCK_FILE_NAME
    if kind == "fifo":
        os.mkfifo(path)
    elif kind == "folder":
        path.mkdir()
    else:
        path.symlink_to(tmp_path / "elsewhere.txt")

    with pytest.raises(StorageError, match="not a regular file"):
        FolderLock.acquire([folder])
    assert not (tmp_path / "elsewhere.txt").exists()


@pytest.mark.parametrize("record", [b"[" * 4000, b'{"pid": ' * 1000, b"\xff\xfe", b"{}"])
def test_a_lock_record_that_is_not_ours_names_no_holder(record: bytes) -> None:
    assert folderlock.Holder.from_bytes(record) is None


# -- cooperating downloads: the shared mode ------------------------------------------------

SHARED_HOLDER = HOLDER.replace(
    'command="the test\'s holder"', 'mode="shared", command="a download"'
)


class SharedHolder(Holder):
    """A process holding the folders in the shared mode (a cooperating download)."""

    def __init__(self, *folders: Path) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-c", SHARED_HOLDER, *map(str, folders)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self.process.stdout is not None
        line = self.process.stdout.readline()
        assert line == "held\n", f"the holder did not take the lock: {line!r}"


@pytest.mark.skipif(sys.platform == "win32", reason="a shared hold is exclusive on Windows")
def test_downloads_share_a_folder_that_verify_may_not_take(
    folders: list[Path], holders: list[Holder]
) -> None:
    first, second = SharedHolder(*folders), SharedHolder(*folders)
    holders += [first, second]

    with FolderLock.acquire(folders, mode="shared") as third:
        assert third.mode == "shared"
        FolderLock.check_free(folders, mode="shared")
        with pytest.raises(FolderInUseError) as refused:
            FolderLock.acquire(folders)  # exclusive: verify, a download without a ledger
        with pytest.raises(FolderInUseError):
            FolderLock.check_free(folders)
    message = str(refused.value)
    assert "\n" not in message
    assert "more download(s) sharing it" in message
    assert any(f"pid {pid} " in message for pid in (first.pid, second.pid, os.getpid()))

    first.release()
    assert (folders[0] / LOCK_FILE_NAME).exists(), "the file stays while others share it"
    second.kill()  # kill -9: its share goes with its process
    with FolderLock.acquire(folders) as alone:
        assert alone.mode == "exclusive"
        record = (folders[0] / LOCK_FILE_NAME).read_bytes()
        assert record.count(b"\n") == 1, "a fresh record: the dead ones are not named"
    assert not (folders[0] / LOCK_FILE_NAME).exists()


@pytest.mark.skipif(sys.platform == "win32", reason="a shared hold is exclusive on Windows")
def test_a_download_is_refused_while_verify_holds_the_folder(
    folders: list[Path], holders: list[Holder]
) -> None:
    holder = Holder(*folders)
    holders.append(holder)
    with pytest.raises(FolderInUseError, match=f"pid {holder.pid}"):
        FolderLock.acquire(folders, mode="shared")
    with pytest.raises(FolderInUseError):
        FolderLock.check_free(folders, mode="shared")
    holder.release()
    with FolderLock.acquire(folders, mode="shared"):
        pass
    for folder in folders:
        assert not (folder / LOCK_FILE_NAME).exists(), "the last sharer removes the file"


def test_an_unknown_mode_is_refused(folders: list[Path]) -> None:
    with pytest.raises(ValueError, match="mode"):
        FolderLock(folders, mode="both")  # type: ignore[arg-type]


def test_a_part_lock_has_one_holder_and_goes_with_it(tmp_path: Path) -> None:
    from sentinel_fetch.downloads.folderlock import PartLock

    first, second = PartLock(tmp_path, "a.zip"), PartLock(tmp_path, "a.zip")
    assert first.try_acquire() and first.held
    assert not second.try_acquire(), "a slow writer keeps the file until it lets go"
    assert PartLock(tmp_path, "b.zip").try_acquire(), "other products are not held up"
    first.release()
    first.release()  # idempotent
    assert second.try_acquire()
    second.release()
    assert not (tmp_path / ".a.zip.lock").exists()


@pytest.mark.skipif(sys.platform == "win32", reason="a shared hold is exclusive on Windows")
def test_downloads_of_another_job_may_not_share_a_folder(
    folders: list[Path], holders: list[Holder]
) -> None:
    """Two jobs (two ledgers) on one Finish would be two writers that never meet."""
    holder = SharedHolder(*folders)  # its job: "" (the test's holder names none)
    holders.append(holder)
    with pytest.raises(FolderInUseError, match="another job") as refused:
        FolderLock.acquire([folders[2]], mode="shared", job="/elsewhere/save")
    assert "\n" not in str(refused.value) and f"pid {holder.pid} " in str(refused.value)
    with pytest.raises(FolderInUseError, match="another job"):
        FolderLock.check_free([folders[2]], mode="shared", job="/elsewhere/save")
    FolderLock.check_free(folders, mode="shared")  # the same job: welcome
    holder.kill()
    # A dead holder's record decides nothing: the folder is free for any job.
    FolderLock.check_free(folders, mode="shared", job="/elsewhere/save")
    with FolderLock.acquire(folders, mode="shared", job="/elsewhere/save"):
        pass


def test_part_locks_left_by_a_killed_run_are_swept_and_live_ones_kept(tmp_path: Path) -> None:
    from sentinel_fetch.downloads.folderlock import PartLock, sweep_part_locks

    (tmp_path / ".dead.zip.lock").write_bytes(b"")
    (tmp_path / "product.zip.part").write_bytes(b"data")
    live = PartLock(tmp_path, "live.zip")
    assert live.try_acquire()
    assert sweep_part_locks(tmp_path) == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == [".live.zip.lock", "product.zip.part"]
    live.release()
    assert sweep_part_locks(tmp_path / "missing") == 0


RACER = """
import os, sys
from pathlib import Path
from sentinel_fetch.downloads.folderlock import FolderLock
from sentinel_fetch.errors import FolderInUseError
folder, marks, job, loops = Path(sys.argv[1]), Path(sys.argv[2]), sys.argv[3], int(sys.argv[4])
refused = together = 0
mine = marks / f"{job}-{os.getpid()}"
print("ready", flush=True)
sys.stdin.readline()
for _ in range(loops):
    try:
        lock = FolderLock.acquire([folder], mode="shared", job=job)
    except FolderInUseError:
        refused += 1
        continue
    mine.touch()
    together += any(not p.name.startswith(job + "-") for p in marks.iterdir())
    mine.unlink()
    lock.release()
print(refused, together, flush=True)
"""


def _race(tmp_path: Path, jobs: list[str], loops: int) -> list[tuple[str, int, int]]:
    folder, marks = tmp_path / "save", tmp_path / "marks"
    folder.mkdir()
    marks.mkdir()
    racers = [
        subprocess.Popen(
            [sys.executable, "-c", RACER, str(folder), str(marks), job, str(loops)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        for job in jobs
    ]
    for racer in racers:
        assert racer.stdout is not None and racer.stdout.readline() == "ready\n"
    for racer in racers:  # a start line, not a timer: they begin together
        assert racer.stdin is not None
        racer.stdin.write("go\n")
        racer.stdin.flush()
    results = []
    for job, racer in zip(jobs, racers, strict=True):
        out, _ = racer.communicate(timeout=300)
        refused, together = map(int, out.split())
        results.append((job, refused, together))
    return results


@pytest.mark.skipif(sys.platform == "win32", reason="a shared hold is exclusive on Windows")
def test_sharers_of_one_job_are_never_refused_in_a_race(tmp_path: Path) -> None:
    """Every sharer probes with the exclusive lock: a probe must not refuse the others."""
    results = _race(tmp_path, ["A", "A", "A", "A"], 400)
    assert [refused for _, refused, _ in results] == [0, 0, 0, 0], results


@pytest.mark.skipif(sys.platform == "win32", reason="a shared hold is exclusive on Windows")
def test_two_jobs_never_hold_one_folder_together_in_a_race(tmp_path: Path) -> None:
    """The first sharer's fresh record is written under the exclusive lock: never wiped."""
    results = _race(tmp_path, ["A", "B", "A", "B"], 400)
    assert [together for _, _, together in results] == [0, 0, 0, 0], results
    assert all(refused < 400 for _, refused, _ in results), "each job got its turns"
