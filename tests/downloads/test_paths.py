"""Names from the server never escape the save folder, never collide, never surprise Windows."""

from __future__ import annotations

import os
import tempfile
import unicodedata
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sentinel_fetch.downloads.paths import Layout, assign_file_names, safe_file_name
from sentinel_fetch.errors import ConfigError, UnsafeNameError

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
    "lpt9 .SAFE.zip",
    "é" * 300 + ".zip",
    "a\ud800b.zip",  # a lone surrogate: JSON can carry one, UTF-8 cannot
]

# Written out here rather than imported: the test is the second opinion on the rule.
WINDOWS_DEVICES = {"CON", "PRN", "AUX", "NUL", "CONIN$", "CONOUT$"} | {
    f"{port}{digit}" for port in ("COM", "LPT") for digit in "0123456789¹²³"
}
INVISIBLE_CATEGORIES = {"Cc", "Cf", "Cs", "Zl", "Zp"}


def _device(file_name: str) -> bool:
    """Whether Windows would open a device instead of this file."""
    return file_name.split(".", 1)[0].rstrip(" .").upper() in WINDOWS_DEVICES


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
    assert len(finished.name.encode()) <= 240
    assert partial.name == finished.name + ".part"
    partial.write_bytes(b"x")  # the file system accepts the name
    assert partial.exists()


def test_real_product_names_are_kept_exactly() -> None:
    for name in (
        "S2B_MSIL2A_20231001T103019_N0509_R108_T32TQM_20231001T132714.SAFE.zip",
        "S5P_OFFL_L2__NO2____20230801T002912_20230801T021042_30069_03_020500_20230802T163423.nc.zip",
        "S3B_SL_2_LST____20230824T223252_20230824T223552_20230825T011047_0179_083_158_1080_PS2_O_NR_004.SEN3.zip",
        "S1A_OPER_AUX_POEORB_OPOD_20210301T144249_V20140411T225944_20140413T005944.EOF",
        "LC08_L1TP_195028_20230703_20230703_02_RT.zip",
    ):
        assert safe_file_name(name) == name


@pytest.mark.parametrize("name", ["", "..", "...", " . ", "/", "\\\\", "\u202e", "\u200b\u200d"])
def test_unusable_names_are_refused(name: str) -> None:
    with pytest.raises(UnsafeNameError):
        safe_file_name(name)


@pytest.mark.parametrize(
    "name",
    [
        "\u202eevil\u202c.zip",  # right-to-left override: "evil" shown as "live"
        "a\u200bb.zip",  # zero-width space
        "a\u200db.zip",  # zero-width joiner
        "\ufeffbom.zip",
        "a\u2066b\u2069.zip",  # bidi isolates
        "a\u061cb.zip",  # Arabic letter mark
        "a\u2028b\u2029.zip",  # line and paragraph separators
        "a\x85b\x9bc.zip",  # C1 controls
        "a\u00adb.zip",  # soft hyphen
    ],
)
def test_invisible_and_bidi_characters_do_not_reach_the_disk(name: str) -> None:
    result = safe_file_name(name)
    assert {unicodedata.category(ch) for ch in result}.isdisjoint(INVISIBLE_CATEGORIES), result
    assert result.endswith(".zip")


@pytest.mark.parametrize(
    "name",
    [
        "CON",
        "con.zip",
        "lpt9 .SAFE",
        "LPT9.SAFE.zip",
        "Nul...",
        "aux  .tar.gz",
        "COM¹.zip",
        "lpt³ .SAFE.zip",
        "com0.zip",
        "CONIN$.zip",
        "prn. .zip",
    ],
)
def test_windows_device_names_are_never_produced(name: str) -> None:
    result = safe_file_name(name)
    assert not _device(result), result


@pytest.mark.parametrize(
    ("name", "extension"),
    [
        ("x" * 1000 + ".SAFE.zip", ".zip"),
        ("é" * 600 + ".zip", ".zip"),
        ("S1A_" + "y" * 300 + ".tgz", ".tgz"),
        ("S1A_OPER_AUX_" + "z" * 300 + ".EOF", ".EOF"),
    ],
)
def test_a_long_name_is_cut_but_keeps_its_extension(name: str, extension: str) -> None:
    result = safe_file_name(name)
    assert result.endswith(extension), result[-20:]
    assert len(result.encode()) <= 240
    assert name.startswith(result[: -len(extension)][:100])


@given(st.text(min_size=1, max_size=400))
def test_the_rule_is_idempotent_and_gives_one_safe_component(name: str) -> None:
    try:
        result = safe_file_name(name)
    except UnsafeNameError:
        return
    assert safe_file_name(result) == result
    assert "/" not in result and "\\" not in result and "\x00" not in result
    assert result not in (".", "..") and not result.startswith(".")
    assert len(result.encode("utf-8")) <= 240
    assert not _device(result)
    assert result == result.strip(" .")


def _ids(count: int) -> list[str]:
    return [str(uuid.uuid5(uuid.NAMESPACE_URL, f"product-{index}")) for index in range(count)]


def _key(file_name: str) -> str:
    """How a case-insensitive, normalisation-insensitive file system compares names."""
    return unicodedata.normalize("NFC", unicodedata.normalize("NFD", file_name).casefold())


COLLIDING = [
    "a/b.SAFE.zip",
    "a_b.SAFE.zip",
    "a:b.SAFE.zip",
    "a\\b.SAFE.zip",
    "Caf\u00e9.SAFE.zip",  # NFC
    "Cafe\u0301.SAFE.zip",  # NFD: the same name on macOS, a different one on Linux
    "x" * 300 + "A.SAFE.zip",  # the same first 240 bytes
    "x" * 300 + "B.SAFE.zip",
    "ABC.SAFE.zip",  # the same file on Windows and macOS
    "abc.SAFE.zip",
    "same.SAFE.zip",  # the same Name under two Ids
    "same.SAFE.zip",
    "a_b~" + _ids(3)[0].split("-")[0] + ".SAFE.zip",  # looks like a disambiguated name
]


def test_names_that_collide_after_cleaning_get_one_file_each() -> None:
    ids = _ids(len(COLLIDING))
    names = assign_file_names(list(zip(ids, COLLIDING, strict=True)))
    assert set(names) == set(ids)
    assert len({_key(name) for name in names.values()}) == len(ids), names
    for name in names.values():
        assert safe_file_name(name) == name
        assert name.endswith(".zip")
    # Names that needed no change keep exactly the name users expect.
    assert names[ids[1]] == "a_b.SAFE.zip"
    assert names[ids[4]] == "Caf\u00e9.SAFE.zip"
    assert names[ids[8]] == "ABC.SAFE.zip"
    assert names[ids[10]] == "same.SAFE.zip"


def test_the_rule_is_deterministic_and_a_recorded_name_is_kept() -> None:
    ids = _ids(len(COLLIDING))
    pairs = list(zip(ids, COLLIDING, strict=True))
    first = assign_file_names(pairs)
    assert assign_file_names(pairs) == first
    # A later run in another order, or with only some of the products, finds the same
    # files through the names the ledger recorded.
    assert assign_file_names(list(reversed(pairs)), recorded=first) == first
    assert assign_file_names(pairs[9:], recorded=first) == {i: first[i] for i in ids[9:]}
    # A product met for the first time never takes a name another product recorded.
    newcomer = str(uuid.uuid4())
    later = assign_file_names([(newcomer, "ABC.SAFE.zip")], recorded=first)
    assert _key(later[newcomer]) not in {_key(name) for name in first.values()}


def test_a_name_recorded_twice_is_given_to_neither() -> None:
    """An old ledger may hold one file for two products; that file can belong to neither."""
    one, two, three = _ids(3)
    names = assign_file_names(
        [(one, "X.SAFE.zip"), (two, "X.SAFE.zip"), (three, "x.safe.zip")],
        recorded={one: "X.SAFE.zip", two: "X.SAFE.zip"},
    )
    assert len({_key(name) for name in names.values()}) == 3
    assert _key("X.SAFE.zip") not in {_key(name) for name in names.values()}


def test_layout_creates_folders(tmp_path: Path) -> None:
    layout = Layout(tmp_path / "a" / "Temp", tmp_path / "a" / "Finish")
    layout.prepare()
    assert (tmp_path / "a" / "Temp").is_dir() and (tmp_path / "a" / "Finish").is_dir()


@pytest.fixture
def other_file_system(tmp_path: Path) -> Iterator[Path]:
    """An empty folder on another file system than ``tmp_path`` (a tmpfs)."""
    shm = Path("/dev/shm")
    if not shm.is_dir() or os.stat(shm).st_dev == os.stat(tmp_path).st_dev:
        pytest.skip("needs /dev/shm on a file system of its own")
    folder = Path(tempfile.mkdtemp(dir=shm, prefix="sentinel-fetch-test-"))
    try:
        yield folder
    finally:
        for path in sorted(folder.rglob("*"), reverse=True):
            path.rmdir() if path.is_dir() else path.unlink()
        folder.rmdir()


def test_a_temp_folder_on_another_file_system_is_refused_before_anything_is_created(
    tmp_path: Path, other_file_system: Path
) -> None:
    layout = Layout(other_file_system / "job" / "Temp", tmp_path / "job" / "Finish")
    with pytest.raises(ConfigError, match="different file systems"):
        layout.prepare()
    assert list(other_file_system.iterdir()) == []
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    ("served", "extension"),
    [
        ("....zip", ".zip"),
        (". . .zip", ".zip"),
        ("\u202e\u202e.zip", ".zip"),
        ("\u200b\u2066\u2069.SAFE", ".SAFE"),
        ("\x01\x02\x1b", ""),
        ("..", ""),
    ],
)
def test_a_name_of_which_nothing_is_left_is_called_product_and_its_id(
    served: str, extension: str
) -> None:
    ids = _ids(2)
    names = assign_file_names([(ids[0], served), (ids[1], served)])
    assert names == {product_id: f"product~{product_id[:8]}{extension}" for product_id in ids}, (
        names
    )
