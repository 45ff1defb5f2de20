"""The command line's looks before a download: --dedupe, --min-coverage, --map and the
quicklooks command, against the emulator."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from sentinel_fetch.emulator import Emulator
from tests.cli.helpers import run

DATATAKE = ("-c", "S2", "--name", "S2A_MSIL2A_20200701T091700")
ALPS = ("-c", "S2", "-t", "L2A", "-s", "2023-07-01", "-e", "2023-07-10", "--area", "10.5,46,12,47")


@pytest.fixture
def twins(cdse: Emulator) -> Emulator:
    cdse.config.reprocessed_twins = True
    return cdse


def test_dedupe_drops_twins_and_says_why(
    twins: Emulator, cli_env: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = run(capsys, "search", *DATATAKE)
    assert code == 0 and len(out.splitlines()) == 123
    code, out, err = run(capsys, "search", *DATATAKE, "--dedupe")
    assert code == 0
    names = [json.loads(line)["name"] for line in out.splitlines()]
    assert len(names) == 115
    assert "--dedupe dropped 8 reprocessed twins:" in err
    assert err.count("preferred over 99.99") == 2
    assert "115 products" in err
    # Both partial tiles of one tile stay.
    assert sum("_T35UPA_" in name for name in names) == 2


def test_dedupe_and_limit_cut_after_the_triage(
    twins: Emulator, cli_env: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = run(capsys, "search", *DATATAKE, "--dedupe", "--limit", "120")
    assert code == 0 and len(out.splitlines()) == 115


def test_download_dry_run_lists_the_twins_it_leaves_out(
    twins: Emulator, cli_env: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = run(capsys, "download", *DATATAKE, "--dedupe", "--dry-run", "--out", "d")
    assert code == 0
    assert "--dedupe dropped 8 reprocessed twins:" in err
    assert "115 products" in err
    assert not Path("d").exists() or not any(Path("d").rglob("*.zip"))


def test_min_coverage_keeps_products_covering_the_area(
    cdse: Emulator, cli_env: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = run(capsys, "search", *ALPS)
    everything = len(out.splitlines())
    code, out, err = run(capsys, "search", *ALPS, "--min-coverage", "30")
    assert code == 0
    kept = len(out.splitlines())
    assert 0 < kept < everything
    assert f"--min-coverage 30 dropped {everything - kept} products:" in err
    assert "% of the area" in err


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (("search", "-c", "S2", "--min-coverage", "50"), "--min-coverage needs --area"),
        (("search", *ALPS, "--min-coverage", "150"), "150"),
        (("search", *ALPS, "--map", "map.pdf"), ".html or .png"),
        (("quicklooks", *ALPS), "--out"),
    ],
)
def test_bad_triage_input_is_one_line_and_exit_2(
    cdse: Emulator,
    cli_env: Path,
    capsys: pytest.CaptureFixture[str],
    arguments: tuple[str, ...],
    message: str,
) -> None:
    code, _, err = run(capsys, *arguments)
    assert code == 2
    assert message in err and "Traceback" not in err
    assert cdse.stats.requests("catalogue") == 0


def test_search_map_writes_html_and_png(
    cdse: Emulator, cli_env: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    for name in ("maps/footprints.html", "footprints.png"):
        code, _, err = run(capsys, "search", *ALPS, "--map", name)
        assert code == 0 and f"map of 20 products: {name}" in err
    assert "<svg" in Path("maps/footprints.html").read_text(encoding="utf-8")
    with Image.open("footprints.png") as image:
        assert image.format == "PNG"


def test_quicklooks_command_saves_images_and_a_contact_sheet(
    cdse: Emulator, cli_env: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cdse.config.quicklook_failure_share = 0.3
    code, out, err = run(capsys, "quicklooks", *ALPS, "--out", "looks")
    assert code == 0 and out == ""
    missing = [line for line in err.splitlines() if line.startswith("no quicklook for ")]
    assert missing and all(line.endswith(("HTTP 403", "HTTP 404")) for line in missing)
    saved = sorted(Path("looks").glob("*-ql.png"))
    assert f"{len(saved)} of {len(saved) + len(missing)} quicklooks saved" in err
    with Image.open("looks/contact-sheet.png") as sheet:
        assert sheet.width > 6 * 160
    assert cdse.stats.logins == {}


def _lines(out: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in out.splitlines()]


def _cloud(product: dict[str, Any]) -> float:
    return next(float(a["value"]) for a in product["attributes"] if a["name"] == "cloudCover")


def test_sort_orders_and_limit_cuts_after_it(
    cdse: Emulator, cli_env: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _, out, _ = run(capsys, "search", *ALPS, "--sort", "cloud")
    clouds = [_cloud(p) for p in _lines(out)]
    assert clouds == sorted(clouds) and len(clouds) == 20
    _, out, _ = run(capsys, "search", *ALPS, "--sort", "-date", "--limit", "3")
    newest = [str(p["content_start"]) for p in _lines(out)]
    _, out, _ = run(capsys, "search", *ALPS)
    every = sorted((str(p["content_start"]) for p in _lines(out)), reverse=True)
    assert newest == every[:3]


def test_download_limit_takes_the_first_n(
    cdse: Emulator, cli_env: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = run(capsys, "download", *ALPS, "--limit", "2", "--dry-run", "--out", "d")
    assert code == 0 and "2 products" in err
    assert cdse.stats.requests("download") == 0


def test_relative_dates_count_back_from_now(
    cdse: Emulator, cli_env: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # The synthetic catalogue ends in 2025: 100,000 days back covers all of it.
    tile = ("-c", "S2", "--tile", "32TPS", "-e", "2023-07-12")
    _, every, _ = run(capsys, "search", *tile)
    code, relative, _ = run(capsys, "search", *tile, "--start", "100000d")
    assert code == 0 and relative == every and every
    code, last, _ = run(capsys, "search", *tile, "--last", "5000w")
    assert code == 0 and last == every


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (("--last", "7d", "--start", "2023-01-01"), "--last or --start"),
        (("--last", "yesterday"), "12h, 7d or 2w"),
        (("--start", "0d"), "no time at all"),
    ],
)
def test_bad_relative_dates_are_one_line_and_exit_2(
    cdse: Emulator,
    cli_env: Path,
    capsys: pytest.CaptureFixture[str],
    arguments: tuple[str, ...],
    message: str,
) -> None:
    code, _, err = run(capsys, "search", "-c", "S2", *arguments)
    assert code == 2 and message in err and "Traceback" not in err
    assert cdse.stats.requests("catalogue") == 0


def test_download_from_a_pipe_reads_ndjson_names_and_ids(
    cdse: Emulator,
    cli_env: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    _, out, _ = run(capsys, "search", *ALPS, "--limit", "4")
    lines = out.splitlines()
    products = _lines(out)
    piped = "\n".join(
        [lines[0], lines[1], f"# a comment\n{products[2]['name']}", str(products[3]["id"]), ""]
    )
    monkeypatch.setattr("sys.stdin", io.StringIO(piped))
    code, _, err = run(capsys, "download", "--from", "-", "--dry-run", "--out", "d")
    assert code == 0, err
    assert "4 products" in err
    monkeypatch.setattr("sys.stdin", io.StringIO('{"name": "no id"}\n'))
    code, _, err = run(capsys, "download", "--from", "-", "--dry-run", "--out", "d")
    assert code == 2 and "line 1 of the input" in err


def test_an_unknown_product_type_is_pointed_out_with_the_closest_known(
    cdse: Emulator, cli_env: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = run(capsys, "search", "-c", "S2", "-t", "MSIL2A", "--tile", "32TPS")
    assert code == 0 and out == ""
    assert "warning: no product type 'MSIL2A' is known: did you mean S2MSI2A?" in err
    code, _, err = run(capsys, "search", "-c", "S2", "-t", "L2A,S2MSI1C", "--tile", "32TPS")
    assert "warning" not in err


def test_download_new_fetches_only_what_was_published_since_the_last_run(
    cdse: Emulator, cli_env: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    few = ("-c", "S2", "--tile", "32TPS", "-s", "2023-07-01", "-e", "2023-07-12", "--online")
    by_publication = ("--order", "PublicationDate asc")
    _, out, _ = run(capsys, "search", *few, *by_publication)
    every = [p["name"] for p in _lines(out)]
    assert len(every) >= 5
    code, _, err = run(capsys, "download", *few, *by_publication, "--limit", "3", "--out", "d")
    assert code == 0 and "3 downloaded" in err
    # The next run asks the catalogue only for what was published after those three.
    code, _, err = run(capsys, "download", *few, "--new", "--out", "d")
    assert code == 0, err
    assert f"{len(every) - 3} downloaded" in err and "0 already done" in err
    finished = sorted(p.name.removesuffix(".zip") for p in Path("d/Finish").iterdir())
    assert finished == sorted(every)
    # And then there is nothing new.
    code, _, err = run(capsys, "download", *few, "--new", "--out", "d")
    assert code == 0 and "nothing to download" in err


def test_unzip_extracts_verified_products_and_a_rerun_knows_they_are_done(
    cdse: Emulator, cli_env: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    few = ("-c", "S2", "--tile", "32TPS", "-s", "2023-07-01", "-e", "2023-07-12", "--online")
    _, out, _ = run(capsys, "search", *few)
    names = sorted(p["name"] for p in _lines(out))
    code, _, err = run(capsys, "download", *few, "--unzip", "--out", "d")
    assert code == 0, err
    finish = Path("d/Finish")
    assert sorted(p.name for p in finish.iterdir() if not p.name.startswith(".")) == names
    assert all((finish / name / "manifest.safe").is_file() for name in names)
    served = cdse.stats.requests("download")
    code, _, err = run(capsys, "download", *few, "--unzip", "--out", "d")
    assert code == 0 and f"{len(names)} products already extracted" in err
    assert cdse.stats.requests("download") == served
    code, _, err = run(capsys, "download", *few, "--keep-zip", "--out", "d")
    assert code == 2 and "--keep-zip goes with --unzip" in err
    # verify re-checks zips; extracted products (checked before extraction) are not bad.
    code, _, _ = run(capsys, "verify", "d")
    assert code == 0
    assert all((finish / name).is_dir() for name in names)
