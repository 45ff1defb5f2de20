"""One meaning per option: global options after the command, --out everywhere, old spellings."""

from __future__ import annotations

import json
import shlex
from pathlib import Path
from urllib.parse import quote

import pytest

from sentinel_fetch.cli import _COMMANDS
from sentinel_fetch.emulator import Emulator
from tests.cli.helpers import CDSE, FEW_PRODUCTS, run

# The few products of FEW_PRODUCTS, as a Copernicus Browser URL (real CDSE host).
FEW_FILTER = (
    "Collection/Name eq 'SENTINEL-2' and contains(Name,'_T32TPS_') and Online eq true"
    " and ContentDate/Start ge 2023-07-01T00:00:00.000Z"
    " and ContentDate/Start lt 2023-07-13T00:00:00.000Z"
)
SEARCH_URL = f"{CDSE}?$filter={quote(FEW_FILTER)}&$top=50"
AOI = {
    "type": "Polygon",
    "coordinates": [[[11.0, 46.0], [12.0, 46.0], [12.0, 47.0], [11.0, 47.0], [11.0, 46.0]]],
}


def downloaded(capsys: pytest.CaptureFixture[str], folder: str = "data") -> None:
    code, _, err = run(capsys, "download", *FEW_PRODUCTS, "--out", folder)
    assert code == 0, err


def test_global_options_work_after_the_command(
    cli_env: Path, cdse: Emulator, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = run(capsys, "download", *FEW_PRODUCTS, "--out", "data", "-q")
    assert code == 0 and err == "", err
    assert len(list((cli_env / "data" / "Finish").iterdir())) > 2

    code, out, err = run(capsys, "verify", "data", "-v")
    assert code == 0 and out.count("ok ") > 2, "-v lists every verified file"

    code, _, err = run(capsys, "status", "--out", "data", "--log-file", "status.log", "-vv")
    assert code == 0 and (cli_env / "status.log").exists()

    (cli_env / "other.toml").write_text('save_path = "data"\n')
    code, out, _ = run(capsys, "config", "--config", "other.toml", "--json")
    assert code == 0
    assert json.loads(out)["files"] == [str(Path("other.toml"))]

    code, _, err = run(capsys, "-q", "status", "data", "-q")
    assert code == 0


def test_an_empty_global_option_after_the_command_is_refused(
    cli_env: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = run(capsys, "status", "data", "--config", "")
    assert code == 2 and "--config" in err and "empty" in err and len(err.splitlines()) == 1


def test_the_save_folder_is_out_in_every_command_and_old_spellings_still_work(
    cli_env: Path, cdse: Emulator, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = run(capsys, "download", *FEW_PRODUCTS, "-o", "old")  # the former -o
    assert code == 0, err
    assert (cli_env / "old" / "Finish").is_dir()
    for args in (["status", "old"], ["status", "--out", "old"]):
        code, out, err = run(capsys, *args, "--json")
        assert code == 0 and json.loads(out)["counts"]["done"] > 2, err
    for args in (["verify", "old"], ["verify", "--out", "old"]):
        code, _, err = run(capsys, *args)
        assert code == 0, err

    code, _, err = run(capsys, "status", "old", "--out", "elsewhere")
    assert code == 2 and "given twice" in err

    # -o in help means one thing: search's output file.
    code, _, _ = run(capsys, "search", *FEW_PRODUCTS, "-o", "found.json")
    assert code == 0 and (cli_env / "found.json").is_file()
    for command in _COMMANDS:
        if command == "emulator":
            continue
        _, out, _ = run(capsys, command, "--help")
        assert ("-o, --output" in out) == (command == "search"), command


def help_examples(capsys: pytest.CaptureFixture[str], *command: str) -> list[list[str]]:
    """The command lines a help text shows, continuation lines joined."""
    _, out, _ = run(capsys, *command, "--help")
    examples: list[list[str]] = []
    pending = ""
    for line in out.splitlines():
        if pending:
            pending += " " + line.strip()
        elif "sentinel-fetch " in line and not line.lstrip().startswith("Usage:"):
            pending = line[line.index("sentinel-fetch ") :].strip()
        if pending.endswith("\\"):
            pending = pending[:-1].strip()
            continue
        if pending:
            words = shlex.split(pending)
            assert words[0] == "sentinel-fetch"
            examples.append(words[1:])
            pending = ""
    return examples


def test_every_example_in_help_works_against_the_emulator(
    cli_env: Path, cdse: Emulator, capsys: pytest.CaptureFixture[str]
) -> None:
    """What the help shows, as written; only the files it names are put in place."""
    (cli_env / "SearchURL.txt").write_text(SEARCH_URL + "\n")
    (cli_env / "aoi.geojson").write_text(json.dumps(AOI))
    examples = [
        *help_examples(capsys, "search"),
        *help_examples(capsys, "download"),
        *help_examples(capsys),
    ]
    assert len(examples) >= 10 and ["demo"] in examples
    for words in examples:
        code, _, err = run(capsys, *words)
        assert code == 0, f"sentinel-fetch {shlex.join(words)}: exit {code}: {err}"
    assert (cli_env / "results.json").is_file()
    assert len(list((cli_env / "data" / "Finish").iterdir())) > 2
    assert len(list((cli_env / "sentinel-data" / "Finish").iterdir())) == 1
