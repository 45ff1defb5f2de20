"""``sentinel-fetch verify``: audits a finish folder."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from sentinel_fetch.emulator import Emulator
from tests.cli.helpers import (
    assert_one_line_error,
    damage_ledger,
    ledger_with,
    run,
    run_unshared,
    subprocess_env,
)


def test_verify_reads_the_files_of_a_ledger_with_damaged_entries(
    cli_env: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The catalogue entry is not needed to check a file; damaged checksums are."""
    ledger_with(cli_env / "data", "done", file_bytes=b"product bytes")
    damage_ledger(cli_env / "data", "product")

    code, out, err = run(capsys, "verify", "data")

    assert code == 0, err
    assert "1 files: 1 ok, 0 bad, 0 unknown" in err and "Traceback" not in err

    damage_ledger(cli_env / "data", "checksums")
    code, out, err = run(capsys, "verify", "data")

    assert_one_line_error(code, out, err, "damaged")
    assert (cli_env / "data" / "Finish").iterdir()


@pytest.mark.skipif(shutil.which("unshare") is None, reason="needs util-linux unshare")
def test_verify_checks_a_finish_folder_on_read_only_media(cdse: Emulator, tmp_path: Path) -> None:
    """Nothing can write there, so there is nothing to lock: verify reads and reports."""
    probe = subprocess.run(
        ["unshare", "--user", "--map-root-user", "--mount", "true"], capture_output=True
    )
    if probe.returncode != 0:
        pytest.skip("user namespaces are not available here")
    save = tmp_path / "job"
    ledger_with(save, "done", file_bytes=b"product bytes")
    finish = save / "Finish"
    script = (
        f"mount --bind {finish} {finish} && mount -o remount,ro,bind {finish} && "
        f"{sys.executable} -m sentinel_fetch verify {save}"
    )
    result = run_unshared(script, subprocess_env(cdse, tmp_path))
    assert result.returncode == 0, result.stderr
    assert "1 files: 1 ok, 0 bad, 0 unknown" in result.stderr
    assert sorted(path.name for path in finish.iterdir()) == [
        "S2A_MSIL2A_20230624T101427_N0509_R051_T33TTN_20230624T120538.SAFE.zip"
    ]
