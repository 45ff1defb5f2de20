"""``sentinel-fetch status`` of a shared job: --ledger, workers, accounts, the quota meter,
and several shard ledgers as one (``status A B``, ``ledger merge``)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from sentinel_fetch.ledger import LEDGER_FILE_NAME, open_ledger
from tests.cli.helpers import assert_one_line_error, run


@dataclass(frozen=True)
class P:
    id: str
    name: str
    size: int = 1000
    checksums: Any = None

    @property
    def file_name(self) -> str:
        return f"{self.name}.zip"


def _fill(location: str, worker: str, host: str, names: list[str], done: int) -> None:
    """A worker that enqueued ``names``, verified the first ``done`` and holds the next."""
    with open_ledger(location) as ledger:
        ledger.register_worker(worker, account="alice@example.com", save_path="/d", host=host)
        products = [P(f"id-{name}", name) for name in names]
        ledger.enqueue(products)
        for product in products[:done]:
            ledger.record(product, "downloaded", bytes_received=product.size)
        ledger.add_bytes("alice@example.com", 1000 * done)
        if done < len(products):
            ledger.claim_next(worker, 600)


def test_status_of_a_shared_ledger_lists_workers_accounts_and_the_meter(
    cli_env: Path, capsys: pytest.CaptureFixture[str], ledger_location: str
) -> None:
    _fill(ledger_location, "w1", "node-a", ["A", "B", "C"], done=2)
    _fill(ledger_location, "w2", "node-b", ["D"], done=1)
    (cli_env / "sentinel-fetch.toml").write_text('[account]\nquota = "3.5kB"\n')

    code, out, err = run(capsys, "status", "--ledger", ledger_location)

    assert (code, err) == (0, "")
    assert "4 products" in out
    assert "workers (2 running):" in out
    assert "node-a pid" in out and "done 2, running 1, failed 0, 2.00 kB" in out
    assert "node-b pid" in out and "done 1, running 0, failed 0, 1.00 kB" in out
    assert "alice@example.com: 2 worker(s), 2 running; done 3, running 1" in out
    assert "quota meter: 3.00 kB of 3.50 kB in the last 30 days (85.7 %): over 80 %" in out

    code, out, _ = run(capsys, "status", "--ledger", ledger_location, "--json")
    data = json.loads(out)
    assert code == 0
    assert {w["host"] for w in data["workers"]} == {"node-a", "node-b"}
    assert data["accounts"][0]["quota_used"] == 3000
    assert data["accounts"][0]["quota"] == 3500


def test_the_config_file_names_the_ledger(
    cli_env: Path, capsys: pytest.CaptureFixture[str], postgres_url: str
) -> None:
    _fill(postgres_url, "w1", "node-a", ["A"], done=1)
    (cli_env / "sentinel-fetch.toml").write_text(f"ledger = {json.dumps(postgres_url)}\n")
    code, out, _ = run(capsys, "status")
    assert code == 0
    assert "job in postgresql://postgres@127.0.0.1" in out
    assert "1 products" in out and "quota meter: 1.00 kB of 12.00 TB" in out


@pytest.mark.parametrize(
    ("ledger", "words"),
    [
        ("postgresql://alice:pw-s3cret-xyz@127.0.0.1:1/job", "cannot connect"),
        ("ftp://alice:pw-s3cret-xyz@example.com/job", "must be a folder or a postgresql"),
    ],
)
def test_a_ledger_that_cannot_be_used_is_one_line_without_its_password(
    cli_env: Path, capsys: pytest.CaptureFixture[str], ledger: str, words: str
) -> None:
    code, out, err = run(capsys, "status", "--ledger", ledger)
    assert_one_line_error(code, out, err, words)
    assert "pw-s3cret-xyz" not in out + err
    assert "alice:***@" in err


def test_no_job_in_a_database_is_one_line(
    cli_env: Path, capsys: pytest.CaptureFixture[str], postgres_url: str
) -> None:
    code, out, err = run(capsys, "status", "--ledger", postgres_url)
    assert_one_line_error(code, out, err, "no download job")


def _shard(folder: Path, names: list[str], done: int) -> str:
    _fill(str(folder), f"w-{folder.name}", folder.name, names, done)
    return str(folder)


def test_several_shard_ledgers_are_one_report(
    cli_env: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    a = _shard(cli_env / "a", ["A", "B"], done=2)
    b = _shard(cli_env / "b", ["C", "D", "E"], done=1)
    before = sorted(p.name for p in (cli_env / "a").iterdir())

    code, out, err = run(capsys, "status", a, b)

    assert (code, err) == (0, "")
    assert "2 ledgers, one job: 5 products, 5.00 kB" in out
    assert "  done         3" in out and "  queued       2" in out
    assert "workers (2 running):" in out
    assert "quota meter: 3.00 kB of 12.00 TB" in out
    assert sorted(p.name for p in (cli_env / "a").iterdir()) == before  # only read

    code, out, err = run(capsys, "ledger", "merge", a, b, "-o", "merged.sqlite")
    assert (code, err) == (0, "")
    assert "merged 2 ledgers into merged.sqlite: 5 products (3 verified)" in out
    code, out, _ = run(capsys, "status", "merged.sqlite")
    assert code == 0
    assert "job in merged.sqlite: 5 products" in out and "  done         3" in out
    job = cli_env / "job"
    job.mkdir()
    (cli_env / "merged.sqlite").rename(job / LEDGER_FILE_NAME)
    code, out, _ = run(capsys, "status", str(job), "--json")
    assert code == 0
    assert json.loads(out)["counts"]["done"] == 3

    code, out, err = run(capsys, "ledger", "merge", a, b, "-o", str(job / LEDGER_FILE_NAME))
    assert_one_line_error(code, out, err, "exists")
    code, out, err = run(capsys, "status", a, str(cli_env / "nothing"))
    assert_one_line_error(code, out, err, "no download job")
    code, out, err = run(capsys, "status", a, a)
    assert_one_line_error(code, out, err, "twice")
