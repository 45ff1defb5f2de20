"""The part-file writer: every byte lands in its place, direct or buffered; errors surface."""

from __future__ import annotations

import errno
import os
import random
from collections.abc import Iterator
from pathlib import Path

import pytest

from sentinel_fetch.downloads import partfile
from sentinel_fetch.downloads.partfile import ALIGNMENT, PartWriter

BUFFER = 64 * 1024


def _payload(size: int, seed: int = 1) -> bytes:
    return random.Random(seed).randbytes(size)


def _pieces(data: bytes, seed: int) -> Iterator[bytes]:
    """``data`` in uneven pieces: full buffers, odd sizes, single bytes."""
    rng = random.Random(seed)
    position = 0
    while position < len(data):
        size = rng.choice(
            [BUFFER, BUFFER, 1, 7, ALIGNMENT - 1, ALIGNMENT + 3, rng.randrange(BUFFER)]
        )
        size = max(1, min(size, len(data) - position))
        yield data[position : position + size]
        position += size


def _feed(writer: PartWriter, data: bytes, seed: int) -> None:
    for piece in _pieces(data, seed):
        view = writer.buffer()
        assert len(view) == BUFFER
        view[: len(piece)] = piece
        writer.commit(len(piece))


def _direct_supported(folder: Path) -> bool:
    probe = folder / "probe"
    writer = PartWriter(probe, start=0, buffer_size=BUFFER)
    writer.close()
    probe.unlink()
    return writer.direct


@pytest.mark.parametrize("direct", [True, False])
@pytest.mark.parametrize("seed", [1, 2, 3])
def test_uneven_pieces_are_written_in_order(tmp_path: Path, direct: bool, seed: int) -> None:
    data = _payload(1_000_003, seed)
    path = tmp_path / "p.zip.part"
    with PartWriter(path, start=0, buffer_size=BUFFER, direct=direct) as writer:
        _feed(writer, data, seed)
    assert path.read_bytes() == data
    assert writer.bytes_on_disk == len(data)


def test_direct_io_is_used_on_this_disk(tmp_path: Path) -> None:
    if not partfile._O_DIRECT:
        pytest.skip("no O_DIRECT on this system")
    if _filesystem_of(tmp_path) not in partfile.DIRECT_IO_FILESYSTEMS:
        pytest.skip("the test folder is not on a disk filesystem known to take O_DIRECT")
    data = _payload(300_000)
    with PartWriter(tmp_path / "p.part", start=0, buffer_size=BUFFER) as writer:
        _feed(writer, data, 4)
    assert writer.direct
    assert (tmp_path / "p.part").read_bytes() == data


def _filesystem_of(path: Path) -> str:
    """The type of the filesystem holding ``path`` (Linux), or ``""``."""
    mounts = Path("/proc/self/mountinfo")
    if not mounts.exists():
        return ""
    return partfile.filesystem_type(path.resolve(), mounts.read_text()) or ""


@pytest.mark.parametrize("direct", [True, False])
@pytest.mark.parametrize("start", [1, ALIGNMENT - 1, ALIGNMENT, 3 * ALIGNMENT + 5, 200_000])
def test_resume_from_any_offset_keeps_the_prefix(tmp_path: Path, direct: bool, start: int) -> None:
    data = _payload(400_000, start)
    path = tmp_path / "p.zip.part"
    path.write_bytes(data[:start])
    with PartWriter(path, start=start, buffer_size=BUFFER, direct=direct) as writer:
        _feed(writer, data[start:], start)
    assert path.read_bytes() == data


def test_start_zero_empties_an_existing_file(tmp_path: Path) -> None:
    path = tmp_path / "p.part"
    path.write_bytes(b"x" * 100_000)
    with PartWriter(path, start=0, buffer_size=BUFFER) as writer:
        _feed(writer, b"fresh", 1)
    assert path.read_bytes() == b"fresh"


def test_an_interrupted_stream_keeps_every_committed_byte(tmp_path: Path) -> None:
    data = _payload(150_001)
    path = tmp_path / "p.part"
    with pytest.raises(ConnectionResetError), PartWriter(path, start=0, buffer_size=BUFFER) as w:
        _feed(w, data, 5)
        w.buffer()[:10] = b"not commit"  # filled but never committed: not kept
        raise ConnectionResetError
    assert path.read_bytes() == data


def test_a_full_disk_is_raised_and_the_file_is_a_prefix(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = _payload(1_000_000)
    real_write = os.write
    budget = [300_000]

    def write(descriptor: int, view: memoryview) -> int:
        if budget[0] <= 0:
            raise OSError(errno.ENOSPC, "No space left on device")
        count = real_write(descriptor, view[: budget[0]])
        budget[0] -= count
        return count

    monkeypatch.setattr(partfile.os, "write", write)
    path = tmp_path / "p.part"
    with pytest.raises(OSError) as caught, PartWriter(path, start=0, buffer_size=BUFFER) as w:
        _feed(w, data, 6)
    assert caught.value.errno == errno.ENOSPC
    written = path.read_bytes()
    assert 0 < len(written) <= 300_000
    assert data.startswith(written)


def test_the_disk_error_wins_over_the_error_that_ended_the_stream(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def write(descriptor: int, view: memoryview) -> int:
        raise OSError(errno.EIO, "Input/output error")

    monkeypatch.setattr(partfile.os, "write", write)
    path = tmp_path / "p.part"
    with pytest.raises(OSError) as caught, PartWriter(path, start=0, buffer_size=BUFFER) as w:
        view = w.buffer()
        view[:5] = b"bytes"
        w.commit(5)
        raise ConnectionResetError  # a network error is an OSError too
    assert caught.value.errno == errno.EIO


def test_a_refused_direct_write_falls_back_to_buffered(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    if not _direct_supported(tmp_path):
        pytest.skip("O_DIRECT not available here")
    real_write = os.write
    refused = []

    def write(descriptor: int, view: memoryview) -> int:
        if not refused:
            refused.append(True)
            raise OSError(errno.EINVAL, "Invalid argument")
        return real_write(descriptor, view)

    monkeypatch.setattr(partfile.os, "write", write)
    data = _payload(500_000)
    path = tmp_path / "p.part"
    with PartWriter(path, start=0, buffer_size=BUFFER) as writer:
        _feed(writer, data, 7)
    assert refused
    assert not writer.direct
    assert path.read_bytes() == data


def test_a_filesystem_refusing_direct_io_is_written_buffered(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    if not _direct_supported(tmp_path):
        pytest.skip("O_DIRECT not available here")
    real_open = os.open
    refused = []

    def open_(path: Path, flags: int, mode: int = 0o777) -> int:
        if flags & partfile._O_DIRECT:  # as some filesystems do
            refused.append(path)
            raise OSError(errno.EINVAL, "Invalid argument")
        return real_open(path, flags, mode)

    monkeypatch.setattr(partfile.os, "open", open_)
    data = _payload(200_000)
    path = tmp_path / "p.part"
    path.write_bytes(data[:5000])
    with PartWriter(path, start=5000, buffer_size=BUFFER) as writer:
        _feed(writer, data[5000:], 8)
    assert refused
    assert not writer.direct
    assert path.read_bytes() == data


def test_commit_without_buffer_is_a_programming_error(tmp_path: Path) -> None:
    with (
        PartWriter(tmp_path / "p.part", start=0, buffer_size=BUFFER) as w,
        pytest.raises(RuntimeError),
    ):
        w.commit(1)


MOUNTINFO = r"""22 27 0:21 / /proc rw,relatime - proc proc rw
27 1 254:0 / / rw,relatime - ext4 /dev/vda rw
25 24 0:23 / /dev/shm rw,relatime - tmpfs tmpfs rw,size=24684084k
40 27 0:50 / /mnt/nas rw,relatime - nfs4 nas:/export rw,vers=4.2
41 40 0:51 / /mnt/nas/scratch rw,relatime - xfs /dev/sdb1 rw
42 27 0:52 / /media/My\040Disk rw,relatime - btrfs /dev/sdc1 rw
43 27 0:53 / /mnt/nas rw,relatime - cifs //nas/share rw
"""


@pytest.mark.parametrize(
    ("path", "kind"),
    [
        ("/", "ext4"),
        ("/home/me/sentinel-data/Temp", "ext4"),
        ("/dev/shm/x", "tmpfs"),
        ("/mnt/nas/sentinel/Temp", "cifs"),  # mounted over the nfs4 mount: the later one wins
        ("/mnt/nas/scratch/Temp", "xfs"),
        ("/mnt/nasty/Temp", "ext4"),  # a prefix of the name is not a parent folder
        ("/media/My Disk/sentinel", "btrfs"),
    ],
)
def test_the_filesystem_of_a_folder_is_read_from_mountinfo(path: str, kind: str) -> None:
    assert partfile.filesystem_type(Path(path), MOUNTINFO) == kind


def test_network_shares_and_tmpfs_are_written_through_the_page_cache(tmp_path: Path) -> None:
    shm = Path("/dev/shm")
    if not (partfile._O_DIRECT and shm.is_dir() and _filesystem_of(shm) == "tmpfs"):
        pytest.skip("needs Linux with a tmpfs /dev/shm")
    path = shm / f"sentinel-fetch-test-{os.getpid()}.part"
    data = _payload(200_000)
    try:
        with PartWriter(path, start=0, buffer_size=BUFFER) as writer:
            _feed(writer, data, 8)
        assert not writer.direct  # tmpfs takes O_DIRECT on new kernels, but gains nothing
        assert path.read_bytes() == data
    finally:
        path.unlink(missing_ok=True)
