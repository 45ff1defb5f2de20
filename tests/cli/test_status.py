"""``sentinel-fetch status``: reads the ledger only."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.cli.helpers import (
    assert_one_line_error,
    run,
    write_foreign_sqlite,
)


@pytest.mark.parametrize("kind", ["zero-length", "foreign SQLite", "not SQLite"])
def test_status_only_reads_and_refuses_a_file_that_is_no_ledger(
    cli_env: Path, capsys: pytest.CaptureFixture[str], kind: str
) -> None:
    ledger = cli_env / "data" / "sentinel-fetch-ledger.sqlite"
    ledger.parent.mkdir()
    if kind == "zero-length":
        ledger.write_bytes(b"")
    elif kind == "foreign SQLite":
        write_foreign_sqlite(ledger)
    else:
        ledger.write_bytes(b"PK\x03\x04 a zip, perhaps" * 50)
    before = ledger.read_bytes()

    code, out, err = run(capsys, "status", "data")

    assert_one_line_error(code, out, err, "not a job ledger of sentinel-fetch")
    assert ledger.read_bytes() == before
    assert sorted(p.name for p in ledger.parent.iterdir()) == [ledger.name]
