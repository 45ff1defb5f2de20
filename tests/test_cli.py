"""The command line: one-line errors with exit 2 for bad input, outputs, exit statuses.

Commands run in-process through :func:`sentinel_fetch.cli.main` (the console entry
point) with the environment pointing at the emulator; a few run as real subprocesses
where the process boundary matters (Ctrl-C, a full disk).
"""

from __future__ import annotations

import csv
import json
import logging
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from sentinel_fetch.cli import main
from sentinel_fetch.emulator import Emulator, EntityFault, StatusFault

CDSE = "https://catalogue.dataspace.copernicus.eu/odata/v1/Products"
GOOD_FILTER = "Collection/Name%20eq%20%27SENTINEL-2%27"
# A search of a few online products (about 8 of ~100 kB).
FEW_PRODUCTS = (
    *("-c", "S2", "--tile", "32TPS", "--start", "2023-07-01", "--end", "2023-07-12", "--online"),
)


@pytest.fixture
def cli_env(cdse: Emulator, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """Environment of a user pointed at the emulator, in an empty working folder."""
    for name, value in cdse.env().items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("SENTINEL_FETCH_CONFIG", str(tmp_path / "no-user-config.toml"))
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.delenv("NETRC", raising=False)
    for name in (
        "HTTPS_PROXY",
        "https_proxy",
        "ALL_PROXY",
        "all_proxy",
        "HTTP_PROXY",
        "http_proxy",
    ):
        monkeypatch.delenv(name, raising=False)
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    yield work
    # The CLI configures logging for its process; in-process runs must not leave its
    # handlers writing to this test's (soon closed) captured stderr.
    root = logging.getLogger()
    for handler in [h for h in root.handlers if getattr(h, "_sentinel_fetch", False)]:
        root.removeHandler(handler)
        handler.close()
    root.setLevel(logging.WARNING)


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    """Run ``sentinel-fetch ARGS``; return (exit status, stdout, stderr)."""
    with pytest.raises(SystemExit) as exited:
        main(list(args))
    captured = capsys.readouterr()
    code = exited.value.code
    return (code if isinstance(code, int) else 1), captured.out, captured.err


def _write(path: Path, text: str) -> str:
    path.write_text(text)
    return str(path)


def bad_inputs(tmp: Path, cdse_catalogue: str) -> list[tuple[str, list[str], str]]:
    """(label, arguments, a word the error must contain)."""
    s1_template = (
        f"{cdse_catalogue}/Products?&$filter=(Collection/Name%20eq%20%27SENTINEL-1%27%20and%20"
        "ContentDate/Start%20ge%20{query_date}T00:00:00.000Z)&$top=50"
    )
    truncated = (
        f"{cdse_catalogue}/Products?&$filter="
        "((Collection/Name%20eq%20%27SENTINEL-2%27%20and%20(cont"
    )
    return [
        ("not a URL", ["search", "--url", "hello world"], "URL"),
        ("placeholder left", ["search", "--url", s1_template], "placeholder"),
        ("truncated URL", ["search", "--url", truncated], "truncated"),
        (
            "another host",
            ["search", "--url", f"https://example.com/odata/v1/Products?$filter={GOOD_FILTER}"],
            "example.com",
        ),
        (
            "OpenSearch URL",
            [
                "search",
                "--url",
                "https://catalogue.dataspace.copernicus.eu/resto/api/collections/Sentinel2/search.json?maxRecords=10",
            ],
            "OpenSearch",
        ),
        ("URL without filter", ["search", "--url", f"{CDSE}?$top=50"], "$filter"),
        ("missing URL file", ["search", "--url-file", str(tmp / "nope.txt")], "nope.txt"),
        ("empty URL file", ["search", "--url-file", _write(tmp / "empty.txt", "\n")], "URL"),
        ("impossible date", ["search", "-c", "S2", "--start", "2023-02-30"], "2023-02-30"),
        (
            "end before start",
            ["search", "-c", "S2", "--start", "2023-05-01", "--end", "2023-04-01"],
            "end",
        ),
        ("cloud over 100", ["search", "-c", "S2", "--cloud", "150"], "cloud"),
        ("cloud not a number", ["search", "-c", "S2", "--cloud", "low"], "cloud"),
        (
            "self-intersecting area",
            ["search", "--area", "POLYGON((0 0, 1 1, 1 0, 0 1, 0 0))"],
            "intersect",
        ),
        ("open ring", ["search", "--area", "POLYGON((0 0, 1 0, 1 1, 0 1))"], "clos"),
        (
            "latitude out of range",
            ["search", "--area", "POLYGON((10 95, 11 95, 11 96, 10 96, 10 95))"],
            "lat,lon",
        ),
        ("lat/lon swapped bbox", ["search", "--area", "46.2,11.1,46.5,200"], "lat,lon"),
        ("bbox west > east", ["search", "--area", "12,46,11,47"], "west"),
        ("missing shapefile", ["search", "--area", str(tmp / "aoi.shp")], "aoi.shp"),
        (
            "broken GeoJSON",
            ["search", "--area", '{"type": "Polygon", "coordinates": [[[0, 0], [1'],
            "GeoJSON",
        ),
        ("unknown collection", ["search", "-c", "SENTINEL-9"], "SENTINEL-9"),
        ("unknown platform", ["search", "-c", "S2", "--platform", "X"], "platform"),
        ("orbit out of range", ["search", "-c", "S1", "--orbit", "999"], "orbit"),
        ("bad tile", ["search", "-c", "S2", "--tile", "99ZZZ9"], "tile"),
        ("bad order", ["search", "-c", "S2", "--order", "Name asc"], "order"),
        ("bad extra filter", ["search", "-c", "S2", "--filter", "Name eq 'unterminated"], "filter"),
        ("bad direction", ["search", "-c", "S1", "--direction", "sideways"], "direction"),
        ("nothing to search", ["search"], "nothing to search"),
        (
            "URL and URL file",
            [
                "search",
                "--url",
                f"{CDSE}?$filter={GOOD_FILTER}",
                "--url-file",
                _write(tmp / "u.txt", "x"),
            ],
            "either",
        ),
        ("zero workers", ["download", "-c", "S2", "--workers", "0"], "workers"),
        (
            "malformed proxy",
            [
                "search",
                "-c",
                "S2",
                "--tile",
                "32TPS",
                "--start",
                "2023-07-01",
                "--end",
                "2023-07-02",
                "--proxy",
                "ftp://127.0.0.1:21",
            ],
            "proxy",
        ),
        ("unknown command", ["frobnicate"], "frobnicate"),
        ("unknown option", ["search", "--clouds", "3"], "--clouds"),
        ("status of no job", ["status", str(tmp / "empty-folder")], "no download job"),
        (
            "result file of another kind",
            ["download", "--from", _write(tmp / "r.csv", "name\nx\n")],
            ".csv",
        ),
        (
            "deeply nested result file",
            ["download", "--from", _write(tmp / "deep.json", "[" * 100_000 + "]" * 100_000)],
            "deep.json",
        ),
    ]


def test_bad_inputs_are_one_line_errors_with_exit_status_2(
    cli_env: Path, cdse: Emulator, capsys: pytest.CaptureFixture[str]
) -> None:
    cases = bad_inputs(cli_env, cdse.catalogue_url)
    assert len(cases) >= 20
    for label, args, word in cases:
        code, out, err = run(capsys, *args)
        lines = [line for line in err.splitlines() if line.strip()]
        assert code == 2, f"{label}: exit {code}, stderr {err!r}"
        assert len(lines) == 1, f"{label}: not one line: {err!r}"
        assert word.lower() in lines[0].lower(), f"{label}: {lines[0]!r} does not mention {word!r}"
        assert lines[0].startswith("sentinel-fetch: error:"), label
        assert "Traceback" not in err and out == "", label


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


def test_search_outputs(cli_env: Path, cdse: Emulator, capsys: pytest.CaptureFixture[str]) -> None:
    args = ["search", "-c", "S2", "--tile", "32TPS", "--start", "2023-07-01", "--end", "2023-07-31"]
    code, out, err = run(capsys, *args, "--count")
    count = int(out.strip())
    assert code == 0 and count > 3

    code, out, err = run(capsys, *args)  # piped: one JSON object per line
    rows = [json.loads(line) for line in out.splitlines()]
    assert code == 0 and len(rows) == count
    assert f"{count} products" in err

    for suffix in ("json", "geojson", "csv", "txt"):
        code, out, err = run(capsys, *args, "--output", f"results.{suffix}")
        assert code == 0 and (cli_env / f"results.{suffix}").exists(), err
    geojson = json.loads((cli_env / "results.geojson").read_text())
    assert geojson["type"] == "FeatureCollection" and len(geojson["features"]) == count
    with (cli_env / "results.csv").open() as handle:
        assert len(list(csv.DictReader(handle))) == count

    code, out, _ = run(capsys, *args, "--limit", "2")
    assert len(out.splitlines()) == 2


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


def _subprocess_env(cdse: Emulator, home: Path) -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if "PROXY" not in key.upper()}
    env.update(cdse.env())
    env.update({"HOME": str(home), "SENTINEL_FETCH_CONFIG": str(home / "none.toml")})
    return env


def _online_few(cdse: Emulator) -> list[str]:
    return cdse.match_ids(
        "Collection/Name eq 'SENTINEL-2' and contains(Name,'_T32TPS_') and Online eq true"
        " and ContentDate/Start ge 2023-07-01T00:00:00.000Z"
        " and ContentDate/Start lt 2023-07-13T00:00:00.000Z"
    )


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


def test_an_unreadable_catalogue_entry_is_reported_and_the_rest_goes_on(
    cli_env: Path, cdse: Emulator, capsys: pytest.CaptureFixture[str]
) -> None:
    ids = _online_few(cdse)
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


def test_a_name_with_a_lone_surrogate_is_an_unreadable_entry(
    cli_env: Path, cdse: Emulator, capsys: pytest.CaptureFixture[str]
) -> None:
    """A JSON "\\ud800" escape in a name fails that product, not a later write."""
    ids = _online_few(cdse)
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
        command, env=_subprocess_env(cdse, tmp_path), stderr=subprocess.PIPE, text=True,
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
        command, env=_subprocess_env(cdse, tmp_path), capture_output=True, text=True,
        timeout=120, cwd=tmp_path,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert cdse.stats.range_requests >= 1
    audit = subprocess.run(
        [sys.executable, "-m", "sentinel_fetch", "verify", str(tmp_path / "data")],
        env=_subprocess_env(cdse, tmp_path), capture_output=True, text=True, timeout=120,
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
    result = subprocess.run(
        ["unshare", "--user", "--map-root-user", "--mount", "sh", "-c", script],
        env=_subprocess_env(cdse, tmp_path),
        capture_output=True,
        text=True,
        timeout=120,
    )
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


def test_every_command_answers_help(capsys: pytest.CaptureFixture[str]) -> None:
    from sentinel_fetch.cli import _COMMANDS

    for command in _COMMANDS:
        code, out, _ = run(capsys, command, "--help")
        assert code == 0 and len(out) > 100, command


def test_python_dash_m_and_version() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "sentinel_fetch", "--version"], capture_output=True, text=True
    )
    assert result.returncode == 0 and "sentinel-fetch" in result.stdout


def test_debug_logs_never_contain_a_token_or_password(
    cli_env: Path, cdse: Emulator, capsys: pytest.CaptureFixture[str]
) -> None:
    """The most verbose log of a download with a token refresh and a proxy password."""
    cdse.config.access_token_lifetime_s = 1.0  # force refreshes during the run
    cdse.config.bandwidth_bytes_per_s = 50_000  # a run of a few seconds: several token lives
    code, _, err = run(
        capsys, "-vv", "--log-file", "debug.log", "download", *FEW_PRODUCTS, "--out", "data"
    )
    assert code == 0, err
    log = (cli_env / "debug.log").read_text()
    assert "POST" in log and "$value" in log, "the log really is a debug log"
    assert cdse.stats.refreshes, "the run refreshed its token"
    password = os.environ["CDSE_PASSWORD"]
    for text in (log, err):
        assert password not in text
        # Every CDSE access and refresh token is a JWT: base64url JSON starting "eyJ".
        assert "eyJ" not in text
        assert "Authorization" not in text


def _one_line_error(code: int, out: str, err: str, word: str) -> None:
    lines = [line for line in err.splitlines() if line.strip()]
    assert code == 2, f"exit {code}: {err}"
    assert len(lines) == 1 and lines[0].startswith("sentinel-fetch: error:"), err
    assert word in lines[0], lines[0]
    assert "Traceback" not in err and out == ""


def _foreign_sqlite(path: Path) -> None:
    import sqlite3

    path.parent.mkdir(parents=True, exist_ok=True)
    connection = sqlite3.connect(path)
    with connection:
        connection.execute("CREATE TABLE notes (id INTEGER PRIMARY KEY, text TEXT)")
    connection.close()


@pytest.mark.parametrize("kind", ["zero-length", "foreign SQLite", "not SQLite"])
def test_status_only_reads_and_refuses_a_file_that_is_no_ledger(
    cli_env: Path, capsys: pytest.CaptureFixture[str], kind: str
) -> None:
    ledger = cli_env / "data" / "sentinel-fetch-ledger.sqlite"
    ledger.parent.mkdir()
    if kind == "zero-length":
        ledger.write_bytes(b"")
    elif kind == "foreign SQLite":
        _foreign_sqlite(ledger)
    else:
        ledger.write_bytes(b"PK\x03\x04 a zip, perhaps" * 50)
    before = ledger.read_bytes()

    code, out, err = run(capsys, "status", "data")

    _one_line_error(code, out, err, "not a job ledger of sentinel-fetch")
    assert ledger.read_bytes() == before
    assert sorted(p.name for p in ledger.parent.iterdir()) == [ledger.name]


def _ledger_with(save_path: Path, state: str, file_bytes: bytes | None = None) -> str:
    """A job ledger holding one product in ``state`` (and its file in Finish); its id."""
    import hashlib

    from sentinel_fetch.catalogue.product import Product
    from sentinel_fetch.ledger import JobLedger

    data = file_bytes or b""
    product = Product(
        id="0d2f9d28-8d51-4a5c-9d5c-0123456789ab",
        name="S2A_MSIL2A_20230624T101427_N0509_R051_T33TTN_20230624T120538.SAFE",
        size=len(data),
        checksums={"MD5": hashlib.md5(data).hexdigest()},
    )
    with JobLedger.open(save_path) as ledger:
        ledger.record(product, state, reason="gave up" if state == "failed" else None)
    if file_bytes is not None:
        (save_path / "Finish").mkdir(parents=True, exist_ok=True)
        (save_path / "Finish" / product.file_name).write_bytes(file_bytes)
    return product.id


def _damage(save_path: Path, column: str, text: str = '{"id": ') -> None:
    import sqlite3

    connection = sqlite3.connect(save_path / "sentinel-fetch-ledger.sqlite")
    with connection:
        connection.execute(f"UPDATE products SET {column} = ?", (text,))  # noqa: S608
    connection.close()


@pytest.mark.parametrize("damage", ['{"id": ', '{"id": 5, "name": []}'], ids=["text", "shape"])
def test_retry_failed_with_a_damaged_ledger_entry_is_one_line(
    cli_env: Path, cdse: Emulator, capsys: pytest.CaptureFixture[str], damage: str
) -> None:
    _ledger_with(cli_env / "data", "failed")
    _damage(cli_env / "data", "product", damage)

    code, out, err = run(capsys, "download", "--retry-failed", "--out", "data")

    _one_line_error(code, out, err, "damaged")
    assert cdse.stats.requests() == 0


def test_verify_reads_the_files_of_a_ledger_with_damaged_entries(
    cli_env: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The catalogue entry is not needed to check a file; damaged checksums are."""
    _ledger_with(cli_env / "data", "done", file_bytes=b"product bytes")
    _damage(cli_env / "data", "product")

    code, out, err = run(capsys, "verify", "data")

    assert code == 0, err
    assert "1 files: 1 ok, 0 bad, 0 unknown" in err and "Traceback" not in err

    _damage(cli_env / "data", "checksums")
    code, out, err = run(capsys, "verify", "data")

    _one_line_error(code, out, err, "damaged")
    assert (cli_env / "data" / "Finish").iterdir()


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

    _one_line_error(code, out, err, "different file systems")
    assert list(other_file_system.iterdir()) == []
    assert not (cli_env / "data").exists()
    assert cdse.stats.requests() == 0, "refused before any search or login"


@pytest.mark.skipif(shutil.which("unshare") is None, reason="needs util-linux unshare")
def test_verify_checks_a_finish_folder_on_read_only_media(cdse: Emulator, tmp_path: Path) -> None:
    """Nothing can write there, so there is nothing to lock: verify reads and reports."""
    probe = subprocess.run(
        ["unshare", "--user", "--map-root-user", "--mount", "true"], capture_output=True
    )
    if probe.returncode != 0:
        pytest.skip("user namespaces are not available here")
    save = tmp_path / "job"
    _ledger_with(save, "done", file_bytes=b"product bytes")
    finish = save / "Finish"
    script = (
        f"mount --bind {finish} {finish} && mount -o remount,ro,bind {finish} && "
        f"{sys.executable} -m sentinel_fetch verify {save}"
    )
    result = subprocess.run(
        ["unshare", "--user", "--map-root-user", "--mount", "sh", "-c", script],
        env=_subprocess_env(cdse, tmp_path),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert "1 files: 1 ok, 0 bad, 0 unknown" in result.stderr
    assert sorted(path.name for path in finish.iterdir()) == [
        "S2A_MSIL2A_20230624T101427_N0509_R051_T33TTN_20230624T120538.SAFE.zip"
    ]


# --- empty values, malformed addresses, settings out of range: one line, exit 2 ---------

GOOD_SEARCH = ("-c", "S2", "--tile", "32TPS", "--start", "2023-07-01", "--end", "2023-07-02")


def _one_line_input_error(code: int, out: str, err: str, word: str) -> None:
    lines = [line for line in err.splitlines() if line.strip()]
    assert code == 2, f"exit {code}, stderr {err!r}"
    assert len(lines) == 1 and lines[0].startswith("sentinel-fetch: error:"), err
    assert word.lower() in lines[0].lower(), f"{lines[0]!r} does not mention {word!r}"
    assert "Traceback" not in err and out == ""


@pytest.mark.parametrize(
    ("args", "word"),
    [
        (["search", "-c", ""], "--collection"),
        (["search", "-c", "S2", "-t", "L2A,"], "--product-type"),
        (["search", "-c", "S2", "--tile", ","], "--tile"),
        (["search", "-c", "S2", "--tile", "32TPS", "--name", ""], "--name"),
        (["search", "-c", "S2", "--orbit", " "], "--orbit"),
        (["search", "-c", "S2", "--platform", "A,,B"], "--platform"),
        (["search", "-c", "S2", "--baseline", ""], "--baseline"),
        (["search", "-c", "S2", "--url", ""], "--url"),
        (["search", "-c", "S2", "--start", ""], "--start"),
        (["search", "-c", "S2", "--area", ""], "--area"),
        (["search", "-c", "S2", "--filter", ""], "--filter"),
        (["search", "-c", "S2", "--order", ""], "--order"),
        (["search", *GOOD_SEARCH, "--proxy", ""], "--proxy"),
        (["search", *GOOD_SEARCH, "--output", ""], "--output"),
        (["download", *GOOD_SEARCH, "--out", ""], "--out"),
        (["download", *GOOD_SEARCH, "--temp-dir", ""], "--temp-dir"),
        (["download", *GOOD_SEARCH, "--totp", ""], "--totp"),
        (["download", ""], "NAME_OR_ID"),
        (["--config", "", "config"], "--config"),
        (["--log-file", "", "config"], "--log-file"),
        (["status", ""], "SAVE_PATH"),
    ],
    ids=lambda value: " ".join(value) if isinstance(value, list) else value,
)
def test_an_empty_value_is_an_input_error_and_nothing_is_searched(
    cli_env: Path, cdse: Emulator, capsys: pytest.CaptureFixture[str], args: list[str], word: str
) -> None:
    """An unset shell variable (-c "$COLLECTION") must not widen the search to everything."""
    code, out, err = run(capsys, *args)
    _one_line_input_error(code, out, err, word)
    assert cdse.stats.requests() == 0


BAD_PORT = (
    "https://catalogue.dataspace.copernicus.eu:99999/odata/v1/Products?$filter=" + GOOD_FILTER
)
BAD_IPV6 = "https://[catalogue.dataspace.copernicus.eu/odata/v1/Products?$filter=" + GOOD_FILTER


@pytest.mark.parametrize(
    ("args", "environment", "word"),
    [
        (["search", "--url", BAD_PORT], {}, "99999"),
        (["search", "--url", BAD_IPV6], {}, "IPv6"),
        (["search", "--url-file", "port.txt"], {}, "99999"),
        (["search", "--url-file", "ipv6.txt"], {}, "IPv6"),
        (
            ["search", *GOOD_SEARCH],
            {"SENTINEL_FETCH_CATALOGUE_URL": "https://127.0.0.1:99999/odata/v1"},
            "SENTINEL_FETCH_CATALOGUE_URL",
        ),
        (
            ["search", *GOOD_SEARCH],
            {"SENTINEL_FETCH_IDENTITY_URL": "https://[::1/auth/realms/CDSE"},
            "SENTINEL_FETCH_IDENTITY_URL",
        ),
        (["search", *GOOD_SEARCH, "--proxy", "http://127.0.0.1:99999"], {}, "99999"),
        (["search", *GOOD_SEARCH, "--proxy", "http://user:secret-pw@[::1"], {}, "IPv6"),
    ],
    ids=[
        "url port",
        "url ipv6",
        "url file port",
        "url file ipv6",
        "endpoint port",
        "endpoint ipv6",
        "proxy port",
        "proxy ipv6",
    ],
)
def test_a_malformed_address_is_one_line_never_a_traceback(
    cli_env: Path,
    cdse: Emulator,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    args: list[str],
    environment: dict[str, str],
    word: str,
) -> None:
    (cli_env / "port.txt").write_text(BAD_PORT + "\n")
    (cli_env / "ipv6.txt").write_text(BAD_IPV6 + "\n", encoding="utf-16")
    for name, value in environment.items():
        monkeypatch.setenv(name, value)
    code, out, err = run(capsys, *args)
    _one_line_input_error(code, out, err, word)
    assert "secret-pw" not in err
    assert cdse.stats.requests() == 0


@pytest.mark.parametrize(
    ("config_file", "environment", "word"),
    [
        ("", {"SENTINEL_FETCH_WORKERS": "1000"}, "SENTINEL_FETCH_WORKERS"),
        ("workers = 1000\n", {}, "sentinel-fetch.toml"),
        ("[limits]\nworkers = 64\n", {}, "limits.workers"),
        ("[limits]\npage_size = true\n", {}, "limits.page_size"),
        ("[limits]\nchunk_size_bytes = 1000000000000\n", {}, "limits.chunk_size_bytes"),
        ("[limits]\nthrottle_cooldown_s = -5\n", {}, "limits.throttle_cooldown_s"),
        # The emulator's variables would win over the file: these cases unset them ("").
        (
            "[endpoints]\ncatalogue = 'ftp://mirror.example/odata/v1'\n",
            {"SENTINEL_FETCH_CATALOGUE_URL": ""},
            "endpoints.catalogue",
        ),
        ("[account]\nusername = 5\n", {"CDSE_USERNAME": ""}, "account.username"),
        ("save_path = 5\n", {}, "save_path"),
        ("temp_dir = [1, 2]\n", {}, "temp_dir"),
        ("proxy = 5\n", {}, "proxy"),
    ],
)
@pytest.mark.parametrize("command", ["config", "download"])
def test_a_setting_out_of_range_is_one_line_wherever_it_is_set(
    cli_env: Path,
    cdse: Emulator,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    config_file: str,
    environment: dict[str, str],
    word: str,
    command: str,
) -> None:
    if config_file:
        (cli_env / "sentinel-fetch.toml").write_text(config_file)
    for name, value in environment.items():
        if value:
            monkeypatch.setenv(name, value)
        else:
            monkeypatch.delenv(name)
    # No --out: the file's save_path must be the one in force.
    args = ["config"] if command == "config" else ["download", *FEW_PRODUCTS]
    code, out, err = run(capsys, *args)
    _one_line_input_error(code, out, err, word)
    assert cdse.stats.requests() == 0


@pytest.mark.parametrize("encoding", ["utf-8-sig", "utf-16"])
def test_config_reads_a_file_saved_by_windows_notepad(
    cli_env: Path, capsys: pytest.CaptureFixture[str], encoding: str
) -> None:
    (cli_env / "sentinel-fetch.toml").write_text("workers = 2\n", encoding=encoding)
    code, out, err = run(capsys, "config")
    assert code == 0, err
    assert "(effective) workers: 2" in out


# --- small files, the log file, dry runs -------------------------------------------------


def test_a_log_file_in_a_missing_folder_is_an_input_error(
    cli_env: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = run(capsys, "--log-file", "no-such-folder/debug.log", "config")
    _one_line_input_error(code, out, err, "--log-file")


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


@pytest.mark.parametrize(
    ("args", "limit"),
    [
        (["search", "--url-file", "huge.txt"], "at most 1 MB"),
        (["download", "--from", "huge.txt", "--dry-run"], "at most 10 MB"),
    ],
    ids=["url file", "names list"],
)
def test_an_oversize_text_file_is_refused_by_its_size(
    cli_env: Path,
    cdse: Emulator,
    capsys: pytest.CaptureFixture[str],
    args: list[str],
    limit: str,
) -> None:
    """A 20 MB file picked by mistake is refused for its size: the message says the cap."""
    with (cli_env / "huge.txt").open("wb") as handle:
        handle.truncate(20_000_000)  # sparse: no time spent writing it either
    code, out, err = run(capsys, *args)
    _one_line_input_error(code, out, err, limit)
    assert "20.0 MB" in err
    assert cdse.stats.requests() == 0


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
