"""Names from the server never escape the save folder."""

from __future__ import annotations

from pathlib import Path

import pytest

from sentinel_fetch.downloads.paths import Layout, safe_file_name
from sentinel_fetch.errors import UnsafeNameError

HOSTILE = [
    "../../../etc/passwd",
    "..\\..\\Windows\\System32\\evil.dll",
    "/absolute/path.zip",
    "C:\\Users\\x\\file.zip",
    "name\x00with-nul.zip",
    "..",
    ".hidden.zip",
    "a/../../b.zip",
    "CON.zip",
    "x" * 400 + ".zip",
    "\u202eevil.zip",
]


@pytest.mark.parametrize("name", HOSTILE)
def test_hostile_names_stay_inside_the_folders(tmp_path: Path, name: str) -> None:
    layout = Layout(tmp_path / "Temp", tmp_path / "Finish")
    layout.prepare()
    try:
        finished = layout.finished(name)
        partial = layout.partial(name)
    except UnsafeNameError:
        return
    assert finished.resolve().parent == (tmp_path / "Finish").resolve()
    assert partial.resolve().parent == (tmp_path / "Temp").resolve()
    assert len(finished.name.encode()) <= 245
    partial.write_bytes(b"x")  # the file system accepts the name
    assert partial.exists()


def test_real_product_names_are_kept_exactly() -> None:
    for name in (
        "S2B_MSIL2A_20231001T103019_N0509_R108_T32TQM_20231001T132714.SAFE.zip",
        "S5P_OFFL_L2__NO2____20230801T002912_20230801T021042_30069_03_020500_20230802T163423.nc.zip",
        "S3B_SL_2_LST____20230824T223252_20230824T223552_20230825T011047_0179_083_158_1080_PS2_O_NR_004.SEN3.zip",
    ):
        assert safe_file_name(name) == name


@pytest.mark.parametrize("name", ["", "..", "...", " . ", "/", "\\\\"])
def test_unusable_names_are_refused(name: str) -> None:
    with pytest.raises(UnsafeNameError):
        safe_file_name(name)


def test_layout_creates_folders(tmp_path: Path) -> None:
    layout = Layout(tmp_path / "a" / "Temp", tmp_path / "a" / "Finish")
    layout.prepare()
    assert (tmp_path / "a" / "Temp").is_dir() and (tmp_path / "a" / "Finish").is_dir()
