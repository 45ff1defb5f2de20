"""``--unzip``: verified archives extracted into <finish>/<name>.SAFE, safely."""

from __future__ import annotations

import zipfile
from pathlib import Path

import pytest

from sentinel_fetch.downloads.unzip import MAX_EXPANSION, extract_product, is_extracted
from sentinel_fetch.errors import IntegrityError

ID = "67468f5c-4c73-44be-8116-a97824d07776"
NAME = "S2A_MSIL2A_20230101T000000_N0509_R008_T32TQM_20230101T010000.SAFE"


def _zip(path: Path, members: dict[str, bytes]) -> Path:
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return path


def test_the_top_folder_becomes_the_product_folder(tmp_path: Path) -> None:
    archive = _zip(
        tmp_path / f"{NAME}.zip",
        {f"{NAME}/manifest.safe": b"<xml/>", f"{NAME}/GRANULE/a/IMG.jp2": b"x" * 100},
    )
    folder = extract_product(archive, tmp_path, NAME, ID)
    assert folder == tmp_path / NAME
    assert (folder / "manifest.safe").read_bytes() == b"<xml/>"
    assert (folder / "GRANULE" / "a" / "IMG.jp2").stat().st_size == 100
    assert is_extracted(tmp_path, NAME, ID)
    assert not is_extracted(tmp_path, NAME, "another-id")
    # No scratch folder is left behind.
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        [NAME, f"{NAME}.zip", f".{NAME}.unzipped"]
    )


@pytest.mark.parametrize(
    "member", ["../escape.txt", f"{NAME}/../../escape.txt", "/etc/escape.txt", "C:/escape.txt"]
)
def test_a_member_outside_the_folder_is_refused(tmp_path: Path, member: str) -> None:
    finish = tmp_path / "finish"
    finish.mkdir()
    archive = _zip(tmp_path / "bad.zip", {f"{NAME}/ok.txt": b"ok", member: b"evil"})
    with pytest.raises(IntegrityError, match="unsafe path"):
        extract_product(archive, finish, NAME, ID)
    assert list(tmp_path.rglob("escape.txt")) == []
    assert list(finish.iterdir()) == []


def test_a_link_is_refused(tmp_path: Path) -> None:
    archive = tmp_path / "link.zip"
    with zipfile.ZipFile(archive, "w") as opened:
        info = zipfile.ZipInfo(f"{NAME}/link")
        info.external_attr = 0o120777 << 16
        opened.writestr(info, "/etc/passwd")
    with pytest.raises(IntegrityError, match="link"):
        extract_product(archive, tmp_path, NAME, ID)
    assert not (tmp_path / NAME).exists()


def test_an_archive_that_expands_too_far_stops(tmp_path: Path) -> None:
    archive = _zip(tmp_path / "bomb.zip", {f"{NAME}/zeros": bytes(4_000_000)})
    assert archive.stat().st_size * MAX_EXPANSION < 4_000_000
    with pytest.raises(IntegrityError, match="expands"):
        extract_product(archive, tmp_path, NAME, ID)
    assert not (tmp_path / NAME).exists()
    assert not is_extracted(tmp_path, NAME, ID)


def test_not_a_zip_is_an_integrity_error(tmp_path: Path) -> None:
    archive = tmp_path / "x.zip"
    archive.write_bytes(b"not a zip at all")
    with pytest.raises(IntegrityError, match="not a zip"):
        extract_product(archive, tmp_path, NAME, ID)
