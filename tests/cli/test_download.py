"""``sentinel-fetch download``: sources, reports, exit statuses, stops and full disks.

Some run as real subprocesses where the process boundary matters (Ctrl-C, a full disk).
"""

from __future__ import annotations

import csv
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from sentinel_fetch.emulator import Emulator, EntityFault, StatusFault
from tests.cli.helpers import (
    FEW_PRODUCTS,
    assert_one_line_error,
    damage_ledger,
    ledger_with,
    online_few_ids,
    run,
    run_unshared,
    subprocess_env,
)


def test_bad_config_file_and_wrong_password_exit_2(
    cli_env: Path,
    cdse: Emulator,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    (cli_env / "sentinel-fetch.toml").write_text("workers = [\n")
    code, _, err = run(capsys, "config")
    assert code == 2 and "not valid TOML" in err and len(err.strip().splitlines()) == 1
    (cli_env / "sentinel-fetch.toml").unlink()

    monkeypatch.setenv("CDSE_PASSWORD", "wrong-password-for-cli")
    code, _, err = run(capsys, "download", *FEW_PRODUCTS, "--out", "data")
    lines = [line for line in err.splitlines() if line.startswith("sentinel-fetch: error:")]
    assert code == 2
    assert lines and "rejected the username or password" in lines[0]
    assert "wrong-password-for-cli" not in err
    assert cdse.stats.failed_logins == {os.environ["CDSE_USERNAME"]: 1}


def test_name_not_in_catalogue_is_a_usage_error(
    cli_env: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = run(capsys, "download", "S2Z_MSIL2A_NOT_A_PRODUCT.SAFE", "--out", "data")
    assert code == 2 and "not in the catalogue" in err


def test_download_from_saved_results_then_status_and_rerun(
    cli_env: Path, cdse: Emulator, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = run(capsys, "search", *FEW_PRODUCTS, "--output", "chosen.json")
    assert code == 0, err
    chosen = json.loads((cli_env / "chosen.json").read_text())
    names = {product["name"] for product in chosen["products"]}

    code, out, err = run(capsys, "download", "--from", "chosen.json", "--out", "data", "--dry-run")
    assert code == 0 and out.count("fetch") == len(names)
    assert cdse.stats.requests("download") == 0

    code, _, err = run(capsys, "download", "--from", "chosen.json", "--out", "data")
    assert code == 0, err
    finished = {p.name for p in (cli_env / "data" / "Finish").iterdir()}
    assert finished == {f"{name}.zip" for name in names}

    code, out, _ = run(capsys, "status", "data", "--json")
    summary = json.loads(out)
    assert summary["counts"]["done"] == len(names) and summary["failed"] == []

    downloads = cdse.stats.requests("download")
    code, _, err = run(capsys, "download", "--from", "chosen.json", "--out", "data")
    assert code == 0 and f"{len(names)} already done" in err
    assert cdse.stats.requests("download") == downloads


def test_a_failed_product_means_exit_1_and_a_report(
    cli_env: Path, cdse: Emulator, capsys: pytest.CaptureFixture[str]
) -> None:
    run(capsys, "search", *FEW_PRODUCTS, "--output", "chosen.json")
    first = json.loads((cli_env / "chosen.json").read_text())["products"][0]
    cdse.faults.add(
        StatusFault(
            product=first["id"],
            status=403,
            code="DAT-ZIP-608",
            message="Access forbidden",
            times=-1,
        )
    )
    code, _, err = run(capsys, "download", "--from", "chosen.json", "--out", "data")
    assert code == 1
    assert "sentinel-fetch-report.csv" in err
    with (cli_env / "data" / "sentinel-fetch-report.csv").open() as handle:
        (row,) = list(csv.DictReader(handle))
    assert row["name"] == first["name"] and row["status"] == "failed"
    assert row["attempts"] == "1", "a 403 is permanent: one attempt, no retry storm"
    assert "DAT-ZIP-608" in row["reason"]


def test_an_unreadable_catalogue_entry_is_reported_and_the_rest_goes_on(
    cli_env: Path, cdse: Emulator, capsys: pytest.CaptureFixture[str]
) -> None:
    ids = online_few_ids(cdse)
    assert len(ids) >= 3
    victim = ids[1]
    name = cdse.store.get(victim).name
    cdse.faults.add(EntityFault(product=victim, replace={"ContentLength": "lots"}, times=-1))

    code, out, err = run(capsys, "search", *FEW_PRODUCTS)
    assert code == 1
    assert len(out.splitlines()) == len(ids) - 1
    assert "1 catalogue entry could not be read" in err and name in err

    code, _, err = run(capsys, "download", *FEW_PRODUCTS, "--out", "data")
    assert code == 1, err
    assert f"{len(ids) - 1} downloaded" in err
    with (cli_env / "data" / "sentinel-fetch-report.csv").open() as handle:
        (row,) = list(csv.DictReader(handle))
    assert (row["id"], row["name"], row["status"]) == (victim, name, "failed")
    assert "ContentLength" in row["reason"]


def test_a_long_hostile_error_code_is_cut_and_no_report_cell_is_a_formula(
    cli_env: Path, cdse: Emulator, capsys: pytest.CaptureFixture[str]
) -> None:
    run(capsys, "search", *FEW_PRODUCTS, "--output", "chosen.json")
    first = json.loads((cli_env / "chosen.json").read_text())["products"][0]
    code_sent = '=HYPERLINK("http://x")\x1b[2J' + "Z" * 200
    cdse.faults.add(StatusFault(product=first["id"], status=403, code=code_sent, times=-1))

    code, _, err = run(capsys, "download", "--from", "chosen.json", "--out", "data")
    assert code == 1
    assert "Z" * 65 not in err and "\x1b" not in err
    with (cli_env / "data" / "sentinel-fetch-report.csv").open(encoding="utf-8") as handle:
        rows = list(csv.reader(handle))
    for row in rows[1:]:
        for cell in row:
            assert not cell.startswith(("=", "+", "-", "@", "\t", "\r")), cell
    reason = rows[1][3]
    assert "Z" * 20 in reason and "Z" * 65 not in reason and "\x1b" not in reason


def test_a_name_with_a_lone_surrogate_is_an_unreadable_entry(
    cli_env: Path, cdse: Emulator, capsys: pytest.CaptureFixture[str]
) -> None:
    """A JSON "\\ud800" escape in a name fails that product, not a later write."""
    ids = online_few_ids(cdse)
    victim = ids[0]
    cdse.faults.add(EntityFault(product=victim, replace={"Name": "S2B_\ud800.SAFE"}, times=-1))

    code, out, err = run(capsys, "search", *FEW_PRODUCTS)
    assert code == 1, err
    assert "1 catalogue entry could not be read" in err and "surrogate" in err
    assert victim not in out
    err.encode("utf-8")

    code, _, err = run(capsys, "download", *FEW_PRODUCTS, "--out", "data")
    assert code == 1, err
    assert f"{len(ids) - 1} downloaded" in err
    report = (cli_env / "data" / "sentinel-fetch-report.csv").read_text(encoding="utf-8")
    (row,) = list(csv.DictReader(report.splitlines()))
    assert (row["id"], row["status"]) == (victim, "failed") and "surrogate" in row["reason"]


def test_ctrl_c_stops_cleanly_with_exit_130_and_resumes(cdse: Emulator, tmp_path: Path) -> None:
    cdse.config.bandwidth_bytes_per_s = 20_000
    command = [
        sys.executable, "-m", "sentinel_fetch", "download", *FEW_PRODUCTS,
        "--out", str(tmp_path / "data"),
    ]  # fmt: skip
    # Small reads, so ~100 kB products leave partial files when interrupted (the
    # default 1 MiB read would hold them in memory until complete).
    (tmp_path / "sentinel-fetch.toml").write_text("[limits]\nchunk_size_bytes = 16384\n")
    process = subprocess.Popen(
        command, env=subprocess_env(cdse, tmp_path), stderr=subprocess.PIPE, text=True,
        cwd=tmp_path,
        # A runner started in the background ignores SIGINT, and children inherit that.
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )  # fmt: skip
    assert cdse.stats.wait_for(lambda stats: stats.current_streams() >= 2, timeout_s=30)
    time.sleep(0.5)
    process.send_signal(signal.SIGINT)
    _, err = process.communicate(timeout=30)
    assert process.returncode == 130, err
    assert list((tmp_path / "data" / "Temp").glob("*.part")), "partial files kept for resume"
    cdse.config.bandwidth_bytes_per_s = None
    assert cdse.stats.wait_for(lambda stats: stats.current_streams() == 0, timeout_s=15)
    done = subprocess.run(
        command, env=subprocess_env(cdse, tmp_path), capture_output=True, text=True,
        timeout=120, cwd=tmp_path,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert cdse.stats.range_requests >= 1
    audit = subprocess.run(
        [sys.executable, "-m", "sentinel_fetch", "verify", str(tmp_path / "data")],
        env=subprocess_env(cdse, tmp_path), capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert audit.returncode == 0, audit.stdout + audit.stderr
    assert " 0 bad" in audit.stderr


@pytest.mark.skipif(shutil.which("unshare") is None, reason="needs util-linux unshare")
@pytest.mark.parametrize("full", ["data", "ledger"])
def test_a_full_disk_is_one_clear_error_and_never_a_bad_file(
    cdse: Emulator, tmp_path: Path, full: str
) -> None:
    """A 256 kB tmpfs holds the product folders (or the whole job); the batch is ~5 MB."""
    small = tmp_path / "small-disk"
    small.mkdir()
    probe = subprocess.run(
        ["unshare", "--user", "--map-root-user", "--mount", "true"], capture_output=True
    )
    if probe.returncode != 0:
        pytest.skip("user namespaces are not available here")
    if full == "data":
        where = f"--out {tmp_path / 'job'} --temp-dir {small}/Temp --finish-dir {small}/Finish"
    else:
        where = f"--out {small}"
    script = (
        f"mount -t tmpfs -o size=256k tmpfs {small} && "
        f"{sys.executable} -m sentinel_fetch download -c S2 --tile 32TPS --start 2023-06-01 "
        f"--end 2023-09-30 --online {where}; echo EXIT=$?; "
        f"echo FINISH; ls {small}/Finish; echo SIZES; du -b {small}/Finish/* 2>/dev/null; echo END"
    )
    result = run_unshared(script, subprocess_env(cdse, tmp_path))
    errors = [line for line in result.stderr.splitlines() if line.startswith("sentinel-fetch:")]
    assert "EXIT=1" in result.stdout, result.stderr
    assert "Traceback" not in result.stderr
    assert len(errors) == 1 and "disk is full" in errors[0], result.stderr
    # Whatever reached Finish before the disk filled is complete: the product being
    # written when it filled stays a .part file and is never moved there.
    from sentinel_fetch.api import search
    from sentinel_fetch.catalogue.query import build_query
    from sentinel_fetch.settings import Settings

    query = build_query(
        collections="S2", tiles="32TPS", start="2023-06-01", end="2023-09-30", online=True
    )
    sizes = {p.file_name: p.size for p in search(query, settings=Settings.from_env(cdse.env()))}
    listed = result.stdout.split("SIZES", 1)[1].split("END", 1)[0].split()
    for size, path in zip(listed[::2], listed[1::2], strict=True):
        assert int(size) == sizes[Path(path).name], path
    assert len(listed) // 2 < len(sizes)


@pytest.mark.parametrize("damage", ['{"id": ', '{"id": 5, "name": []}'], ids=["text", "shape"])
def test_retry_failed_with_a_damaged_ledger_entry_is_one_line(
    cli_env: Path, cdse: Emulator, capsys: pytest.CaptureFixture[str], damage: str
) -> None:
    ledger_with(cli_env / "data", "failed")
    damage_ledger(cli_env / "data", "product", damage)

    code, out, err = run(capsys, "download", "--retry-failed", "--out", "data")

    assert_one_line_error(code, out, err, "damaged")
    assert cdse.stats.requests() == 0


@pytest.fixture
def other_file_system(tmp_path: Path) -> Iterator[Path]:
    """An empty folder on another file system than ``tmp_path`` (a tmpfs)."""
    import tempfile

    shm = Path("/dev/shm")
    if not shm.is_dir() or os.stat(shm).st_dev == os.stat(tmp_path).st_dev:
        pytest.skip("needs /dev/shm on a file system of its own")
    folder = Path(tempfile.mkdtemp(dir=shm, prefix="sentinel-fetch-test-"))
    try:
        yield folder
    finally:
        shutil.rmtree(folder)


def test_a_temp_folder_on_another_file_system_is_refused_before_anything_happens(
    cli_env: Path, cdse: Emulator, capsys: pytest.CaptureFixture[str], other_file_system: Path
) -> None:
    temp = other_file_system / "job" / "Temp"

    code, out, err = run(
        capsys, "download", *FEW_PRODUCTS, "--out", "data", "--temp-dir", str(temp)
    )

    assert_one_line_error(code, out, err, "different file systems")
    assert list(other_file_system.iterdir()) == []
    assert not (cli_env / "data").exists()
    assert cdse.stats.requests() == 0, "refused before any search or login"


def test_a_utf16_names_list_works_like_a_utf16_url_file(
    cli_env: Path, cdse: Emulator, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = run(capsys, "search", *FEW_PRODUCTS, "--limit", "2")
    assert code == 0, err
    names = [json.loads(line)["name"] for line in out.splitlines()]
    (cli_env / "names.txt").write_text("\r\n".join(names) + "\r\n", encoding="utf-16")

    code, out, err = run(capsys, "download", "--from", "names.txt", "--out", "data", "--dry-run")

    assert code == 0, err
    assert sorted(line.split()[1] for line in out.splitlines()) == sorted(names)


def test_dry_run_treats_an_unknown_online_state_as_downloadable(
    cli_env: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Online: None (the catalogue did not say) is tried by a run, so the dry run says fetch."""
    code, _, err = run(capsys, "search", *FEW_PRODUCTS, "--limit", "1", "--output", "one.json")
    assert code == 0, err
    saved = json.loads((cli_env / "one.json").read_text())
    saved["products"][0]["online"] = None
    (cli_env / "one.json").write_text(json.dumps(saved))

    code, out, err = run(capsys, "download", "--from", "one.json", "--out", "data", "--dry-run")

    assert code == 0, err
    assert out.startswith("fetch "), out


# -- team jobs: --shard, --quota-stop ------------------------------------------------------


@pytest.mark.parametrize(
    ("arguments", "word"),
    [
        (["--shard", "3"], "is not K/N"),
        (["--shard", "0/4"], "K must be 1-4"),
        (["--shard", "5/4"], "K must be 1-4"),
        (["--quota-stop", "lots"], "not a percentage"),
        (["--quota-stop", "120%"], "up to 100%"),
    ],
)
def test_bad_shard_and_quota_stop_are_one_line_before_any_request(
    cli_env: Path,
    cdse: Emulator,
    capsys: pytest.CaptureFixture[str],
    arguments: list[str],
    word: str,
) -> None:
    cdse.stats.reset()
    code, out, err = run(capsys, "download", *FEW_PRODUCTS, "--out", "data", *arguments)
    assert_one_line_error(code, out, err, word)
    assert cdse.stats.requests() == 0


def test_a_bad_quota_stop_in_the_config_file_is_one_line(
    cli_env: Path, cdse: Emulator, capsys: pytest.CaptureFixture[str]
) -> None:
    (cli_env / "sentinel-fetch.toml").write_text('[download]\nquota_stop = "most"\n')
    code, out, err = run(capsys, "download", *FEW_PRODUCTS, "--out", "data")
    assert_one_line_error(code, out, err, "download.quota_stop")


def test_shards_split_a_batch_between_tasks(
    cli_env: Path, cdse: Emulator, capsys: pytest.CaptureFixture[str]
) -> None:
    """Two tasks, two save folders, no shared ledger: every product in exactly one."""
    fetched: list[set[str]] = []
    for k in (1, 2):
        code, _, err = run(
            capsys, "download", *FEW_PRODUCTS, "--out", f"task{k}", "--shard", f"{k}/2"
        )
        assert code == 0, err
        assert f"shard {k}/2: " in err
        fetched.append({p.name for p in (cli_env / f"task{k}" / "Finish").iterdir()})
    expected = {f"{name}.zip" for name in _few_names(cdse)}
    assert fetched[0] | fetched[1] == expected
    assert not fetched[0] & fetched[1]
    assert fetched[0] and fetched[1], "both tasks had work (the hash spreads them)"


def _few_names(cdse: Emulator) -> list[str]:
    ids = online_few_ids(cdse)
    names = []
    for product_id in ids:
        record = cdse.store.get(product_id)
        assert record is not None
        names.append(record.name)
    return names


def test_the_quota_stop_keeps_products_queued_and_says_why(
    cli_env: Path, cdse: Emulator, capsys: pytest.CaptureFixture[str]
) -> None:
    """Past the stop line nothing starts; the products wait in the ledger for the next run."""
    from sentinel_fetch.ledger import JobLedger

    cdse.stats.reset()
    code, _, err = run(capsys, "download", *FEW_PRODUCTS, "--out", "data", "--quota-stop", "1")
    assert code == 1, err
    assert "stopped early: quota stop" in err
    assert cdse.stats.requests("download") == 0, "not one product request"
    with JobLedger.open(cli_env / "data", read_only=True) as ledger:
        states = {row["state"] for row in ledger.entries()}
    assert states == {"queued"}

    code, _, err = run(capsys, "download", *FEW_PRODUCTS, "--out", "data")
    assert code == 0, err
    with JobLedger.open(cli_env / "data", read_only=True) as ledger:
        assert {row["state"] for row in ledger.entries()} == {"done"}


def test_the_login_overlaps_the_search(
    cli_env: Path, cdse: Emulator, capsys: pytest.CaptureFixture[str]
) -> None:
    """The catalogue's answer is held until the account has logged in: a download that
    logged in only after its search would wait on the hold for ever (the test's bound)."""
    import threading

    from sentinel_fetch.emulator import HoldFault

    cdse.faults.add(HoldFault(host="catalogue", after_bytes=1, times=1))
    outcome: list[tuple[int, str, str]] = []
    runner = threading.Thread(
        target=lambda: outcome.append(run(capsys, "download", *FEW_PRODUCTS, "--out", "data"))
    )
    runner.start()
    try:
        logged_in = cdse.stats.wait_for(lambda stats: sum(stats.logins.values()) == 1, 120)
    finally:
        cdse.faults.release_holds()
        runner.join()
    assert logged_in, "no login while the search was held"
    code, _, err = outcome[0]
    assert code == 0, err
    assert sum(cdse.stats.logins.values()) == 1, "the login ahead is the one the run used"
