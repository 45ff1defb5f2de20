"""``sentinel-fetch search``: outputs, and one-line errors with exit 2 for bad input."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from sentinel_fetch.emulator import Emulator
from tests.cli.helpers import (
    assert_one_line_input_error,
    bad_inputs,
    run,
)


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


def test_search_outputs(cli_env: Path, cdse: Emulator, capsys: pytest.CaptureFixture[str]) -> None:
    args = ["search", "-c", "S2", "--tile", "32TPS", "--start", "2023-07-01", "--end", "2023-07-31"]
    code, out, err = run(capsys, *args, "--count")
    count = int(out.strip())
    assert code == 0 and count > 3

    code, out, err = run(capsys, *args)  # piped: one JSON object per line
    rows = [json.loads(line) for line in out.splitlines()]
    assert code == 0 and len(rows) == count
    assert f"{count} products" in err

    piped = out
    for suffix in ("json", "geojson", "csv", "ndjson", "txt"):
        code, out, err = run(capsys, *args, "--output", f"results.{suffix}")
        assert code == 0 and (cli_env / f"results.{suffix}").exists(), err
        assert f"wrote {count} products" in err and f"{count} products, " in err
    assert (cli_env / "results.ndjson").read_text(encoding="utf-8") == piped
    geojson = json.loads((cli_env / "results.geojson").read_text())
    assert geojson["type"] == "FeatureCollection" and len(geojson["features"]) == count
    with (cli_env / "results.csv").open() as handle:
        assert len(list(csv.DictReader(handle))) == count

    code, out, _ = run(capsys, *args, "--limit", "2")
    assert len(out.splitlines()) == 2


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
    assert_one_line_input_error(code, out, err, limit)
    assert "20.0 MB" in err
    assert cdse.stats.requests() == 0
