"""The command line of band-level downloads and of the STAC export."""

from __future__ import annotations

import copy
import csv
import json
from pathlib import Path

import pystac
import pystac.validation
import pytest

from sentinel_fetch.emulator import Emulator, RewriteFault, StatusFault
from tests.cli.helpers import FEW_PRODUCTS, run


def _saved(
    cli_env: Path, capsys: pytest.CaptureFixture[str], count: int
) -> list[dict[str, object]]:
    code, _, err = run(
        capsys,
        "search",
        *FEW_PRODUCTS,
        "-t",
        "L2A",
        "--limit",
        str(count),
        "--output",
        "chosen.json",
    )
    assert code == 0, err
    products: list[dict[str, object]] = json.loads((cli_env / "chosen.json").read_text())[
        "products"
    ]
    return products


def _files(folder: Path) -> set[str]:
    return {str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file()}


def test_download_bands_then_files_then_a_preset(
    cli_env: Path, cdse: Emulator, capsys: pytest.CaptureFixture[str]
) -> None:
    (product,) = _saved(cli_env, capsys, 1)
    folder = cli_env / "data" / "Finish" / str(product["name"])

    code, _, err = run(
        capsys, "download", "--from", "chosen.json", "--out", "data", "--bands", "B04,SCL"
    )
    assert code == 0, err
    assert "only these files of each product: B04, SCL" in err
    assert {p.rsplit("_", 2)[-2] + "_" + p.rsplit("_", 1)[-1] for p in _files(folder)} == {
        "B04_10m.jp2",
        "SCL_20m.jp2",
    }

    code, _, err = run(
        capsys,
        "download",
        "--from",
        "chosen.json",
        "--out",
        "data",
        "--files",
        "GRANULE/*/MTD_TL.xml",
    )
    assert code == 0, err
    assert any(p.endswith("/MTD_TL.xml") and p.startswith("GRANULE/") for p in _files(folder))

    code, _, err = run(
        capsys, "download", "--from", "chosen.json", "--out", "data", "--preset", "metadata"
    )
    assert code == 0, err
    assert {"manifest.safe", "INSPIRE.xml"} <= _files(folder)
    assert not (cli_env / "data" / "sentinel-fetch-report.csv").exists()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--bands", "B99"], "unknown band 'B99'"),
        (["--bands", "B04,"], "empty item"),
        (["--preset", "everything"], "everything"),
        (["--bands", "B04_15m"], "resolutions"),
    ],
)
def test_a_bad_selection_is_one_line_and_exit_2_before_anything_is_sent(
    cli_env: Path, cdse: Emulator, capsys: pytest.CaptureFixture[str], args: list[str], message: str
) -> None:
    cdse.stats.reset()
    code, _, err = run(capsys, "download", *FEW_PRODUCTS, "--out", "data", *args)
    assert code == 2
    assert message in err
    assert "Traceback" not in err and len(err.strip().splitlines()) <= 3
    assert cdse.stats.requests() == 0


def test_help_lists_the_presets(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "download", "--help")
    assert code == 0
    for name in ("rgbnir", "vegetation", "metadata", "vv", "vh"):
        assert name in out


def test_a_file_without_checksum_is_a_warning_and_a_report_row(
    cli_env: Path, cdse: Emulator, capsys: pytest.CaptureFixture[str]
) -> None:
    _saved(cli_env, capsys, 1)
    # STAC refuses (a 404 is not retried): the Nodes listing and manifest.safe stand in,
    # and CDSE's own quicklook is in no manifest.
    cdse.faults.add(StatusFault(host="stac", status=404, times=-1))

    code, _, err = run(
        capsys, "download", "--from", "chosen.json", "--out", "data", "--files", "*-ql.jpg"
    )

    assert code == 0, err
    assert "no checksum anywhere" in err and "checked by size only" in err
    with (cli_env / "data" / "sentinel-fetch-report.csv").open() as handle:
        (row,) = list(csv.DictReader(handle))
    assert row["status"] == "unverified" and "-ql.jpg" in row["reason"]


def test_search_exports_an_item_collection_pystac_reads_and_validates(
    cli_env: Path, cdse: Emulator, capsys: pytest.CaptureFixture[str]
) -> None:
    run(capsys, "search", *FEW_PRODUCTS, "--output", "chosen.json")
    names = [p["name"] for p in json.loads((cli_env / "chosen.json").read_text())["products"]]
    assert len(names) >= 3
    # One product is missing from STAC: it is written from its OData entry.
    gone = names[0].removesuffix(".SAFE")
    cdse.faults.add(RewriteFault(host="stac", find=f'"{gone}"', replace=f'"{gone}-X"', times=-1))
    cdse.stats.reset()

    code, _, err = run(capsys, "search", *FEW_PRODUCTS, "--output", "results.stac.json")

    assert code == 0, err
    assert f"({len(names) - 1} from the STAC catalogue)" in err
    assert cdse.stats.requests("stac") == 1  # one batch for every product
    collection = pystac.ItemCollection.from_file(str(cli_env / "results.stac.json"))
    assert [item.id for item in collection] == [n.removesuffix(".SAFE") for n in names]
    for item in collection:
        # Extension schemas live on the internet; the core schema ships with pystac.
        core = copy.deepcopy(item.to_dict(transform_hrefs=False))
        core["stac_extensions"] = []
        pystac.validation.validate_dict(core)
        assert "Product" in item.assets
    assert "B04_10m" in collection.items[1].assets
    assert collection.items[0].assets["Product"].href.endswith("/$value")


def test_verify_rechecks_band_files_and_the_rerun_fetches_only_the_bad_one(
    cli_env: Path, cdse: Emulator, capsys: pytest.CaptureFixture[str]
) -> None:
    (product,) = _saved(cli_env, capsys, 1)
    args = ["download", "--from", "chosen.json", "--out", "data", "--bands", "B04,B08"]
    code, _, err = run(capsys, *args)
    assert code == 0, err
    folder = cli_env / "data" / "Finish" / str(product["name"])
    (b08,) = list(folder.rglob("*_B08_10m.jp2"))
    data = bytearray(b08.read_bytes())
    data[10] ^= 0xFF
    b08.write_bytes(bytes(data))

    code, out, err = run(capsys, "verify", "data")

    assert code == 1
    assert "bad" in out and "_B08_10m.jp2" in out and "_B04_10m.jp2" not in out
    moved = cli_env / "data" / "Corrupt" / b08.relative_to(cli_env / "data" / "Finish")
    assert moved.is_file() and not b08.exists()

    cdse.stats.reset()
    code, _, err = run(capsys, *args)
    assert code == 0, err
    assert b08.is_file()
    served = cdse.stats.bytes_by_file()[str(product["id"])]
    assert [path.rsplit("_", 2)[-2] for path in served] == ["B08"]
    code, _, err = run(capsys, "verify", "data")
    assert code == 0, err


def test_the_config_file_chooses_bands_and_the_options_override_it(
    cli_env: Path, cdse: Emulator, capsys: pytest.CaptureFixture[str]
) -> None:
    (product,) = _saved(cli_env, capsys, 1)
    (cli_env / "sentinel-fetch.toml").write_text('[download]\nbands = ["B04"]\n')
    folder = cli_env / "data" / "Finish" / str(product["name"])

    code, _, err = run(capsys, "download", "--from", "chosen.json", "--out", "data")
    assert code == 0, err
    assert [p.rsplit("_", 2)[-2] for p in _files(folder)] == ["B04"]

    code, _, err = run(
        capsys, "download", "--from", "chosen.json", "--out", "data", "--bands", "B08"
    )
    assert code == 0, err
    assert sorted(p.rsplit("_", 2)[-2] for p in _files(folder)) == ["B04", "B08"]

    (cli_env / "sentinel-fetch.toml").write_text('[download]\nbands = "B99"\n')
    code, _, err = run(capsys, "download", "--from", "chosen.json", "--out", "data")
    assert code == 2 and "B99" in err
