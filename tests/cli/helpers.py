"""Helpers of the command-line tests: run a command in-process, bad inputs, ledgers."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from sentinel_fetch.cli import main
from sentinel_fetch.emulator import Emulator

CDSE = "https://catalogue.dataspace.copernicus.eu/odata/v1/Products"


GOOD_FILTER = "Collection/Name%20eq%20%27SENTINEL-2%27"


# A search of a few online products (about 8 of ~100 kB).
FEW_PRODUCTS = (
    *("-c", "S2", "--tile", "32TPS", "--start", "2023-07-01", "--end", "2023-07-12", "--online"),
)


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    """Run ``sentinel-fetch ARGS``; return (exit status, stdout, stderr)."""
    with pytest.raises(SystemExit) as exited:
        main(list(args))
    captured = capsys.readouterr()
    code = exited.value.code
    return (code if isinstance(code, int) else 1), captured.out, captured.err


def write_file(path: Path, text: str) -> str:
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
        ("empty URL file", ["search", "--url-file", write_file(tmp / "empty.txt", "\n")], "URL"),
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
                write_file(tmp / "u.txt", "x"),
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
            ["download", "--from", write_file(tmp / "r.csv", "name\nx\n")],
            ".csv",
        ),
        (
            "deeply nested result file",
            ["download", "--from", write_file(tmp / "deep.json", "[" * 100_000 + "]" * 100_000)],
            "deep.json",
        ),
    ]


def subprocess_env(cdse: Emulator, home: Path) -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if "PROXY" not in key.upper()}
    env.update(cdse.env())
    env.update({"HOME": str(home), "SENTINEL_FETCH_CONFIG": str(home / "none.toml")})
    return env


def online_few_ids(cdse: Emulator) -> list[str]:
    return cdse.match_ids(
        "Collection/Name eq 'SENTINEL-2' and contains(Name,'_T32TPS_') and Online eq true"
        " and ContentDate/Start ge 2023-07-01T00:00:00.000Z"
        " and ContentDate/Start lt 2023-07-13T00:00:00.000Z"
    )


def assert_one_line_error(code: int, out: str, err: str, word: str) -> None:
    lines = [line for line in err.splitlines() if line.strip()]
    assert code == 2, f"exit {code}: {err}"
    assert len(lines) == 1 and lines[0].startswith("sentinel-fetch: error:"), err
    assert word in lines[0], lines[0]
    assert "Traceback" not in err and out == ""


def write_foreign_sqlite(path: Path) -> None:
    import sqlite3

    path.parent.mkdir(parents=True, exist_ok=True)
    connection = sqlite3.connect(path)
    with connection:
        connection.execute("CREATE TABLE notes (id INTEGER PRIMARY KEY, text TEXT)")
    connection.close()


def ledger_with(save_path: Path, state: str, file_bytes: bytes | None = None) -> str:
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


def damage_ledger(save_path: Path, column: str, text: str = '{"id": ') -> None:
    import sqlite3

    connection = sqlite3.connect(save_path / "sentinel-fetch-ledger.sqlite")
    with connection:
        connection.execute(f"UPDATE products SET {column} = ?", (text,))  # noqa: S608
    connection.close()


GOOD_SEARCH = ("-c", "S2", "--tile", "32TPS", "--start", "2023-07-01", "--end", "2023-07-02")


def assert_one_line_input_error(code: int, out: str, err: str, word: str) -> None:
    lines = [line for line in err.splitlines() if line.strip()]
    assert code == 2, f"exit {code}, stderr {err!r}"
    assert len(lines) == 1 and lines[0].startswith("sentinel-fetch: error:"), err
    assert word.lower() in lines[0].lower(), f"{lines[0]!r} does not mention {word!r}"
    assert "Traceback" not in err and out == ""


BAD_PORT = (
    "https://catalogue.dataspace.copernicus.eu:99999/odata/v1/Products?$filter=" + GOOD_FILTER
)


BAD_IPV6 = "https://[catalogue.dataspace.copernicus.eu/odata/v1/Products?$filter=" + GOOD_FILTER


def run_unshared(script: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """Run a shell script as root of a user and mount namespace (tmpfs, read-only mounts)."""
    return subprocess.run(
        ["unshare", "--user", "--map-root-user", "--mount", "sh", "-c", script],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
