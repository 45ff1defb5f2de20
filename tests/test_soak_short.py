"""The short soak in CI: 300 products, faults of every kind, random ``kill -9``; 0 lost.

``benchmarks/soak.py --short`` runs as a script (its own process, its own emulator on
loopback) and writes its results under the test's tmp folder; the test holds them to
the invariants. The soak's figures are what the README's "Reliability" section quotes,
so the test also checks that they measure what they claim: faults were injected at the
promised rate and of every kind, kills happened, resumes happened.

One test function on purpose: the soak runs once, whichever worker picks it up.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.slow

SOAK = Path(__file__).resolve().parents[1] / "benchmarks" / "soak.py"
FAULT_KINDS = {
    "5xx",
    "429",
    "429 + Retry-After",
    "cut",
    "corrupt",
    "stall",
    "expire_token",
    "end_sessions",
    "ignore_range",
    "redirect",
}


def run_short_soak(output: Path) -> dict[str, Any]:
    """Run ``soak.py --short``; return its results (and check its files and exit status)."""
    run = subprocess.run(
        [sys.executable, str(SOAK), "--short", "--output-dir", str(output)],
        # The script's helper modules sit in the repository: no bytecode written there.
        env={**os.environ, "PYTHONDONTWRITEBYTECODE": "1"},
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
    print(run.stdout)
    path = output / "soak-latest.json"
    assert path.exists(), run.stderr[-4000:]
    results: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    assert run.returncode == (0 if results["ok"] else 1), run.stderr[-4000:]
    assert (output / "soak-latest.md").read_text(encoding="utf-8").startswith("## Soak (short)")
    return results


def test_short_soak_keeps_every_invariant(tmp_path: Path) -> None:
    """0 corrupt, 0 lost, never more than 4 streams, logins within budget; and it was hostile."""
    results = run_short_soak(tmp_path)
    assert results["violations"] == []

    # Nothing lost, nothing corrupt, nothing left behind, nothing fetched twice.
    products = results["batch"]["products"]
    integrity = results["integrity"]
    assert products >= 300
    assert integrity["verified"] == products
    assert integrity["corrupt_in_finish"] == 0
    assert integrity["lost"] == 0
    assert integrity["ledger_states"] == {"done": products}
    assert integrity["part_files_left"] == 0
    assert integrity["stray_files"] == []
    assert results["soak"]["products_failed_in_a_run"] == 0
    assert results["idempotent_rerun"] == {"exit_code": 0, "product_requests": 0, "bytes_served": 0}

    # The emulator tolerates more than 4 streams; the client must still never open more.
    concurrency = results["concurrency"]
    assert concurrency["emulator_tolerates"] > concurrency["limit"] == 4
    assert 1 <= concurrency["peak_streams"] <= 4

    # One login per client process, plus one per session the emulator ended.
    logins = results["logins"]
    assert logins["failed"] == 0
    assert logins["budget"] == logins["client_processes"] + logins["sessions_ended_by_faults"]
    assert logins["used"] <= logins["budget"]

    # The figures mean something only if the soak really was hostile.
    faults = results["faults"]
    assert faults["effective_rate"] >= 0.10
    assert set(faults["fired_by_kind"]) >= FAULT_KINDS
    assert results["soak"]["kills"] >= 10
    assert results["soak"]["completed"]
    assert results["retries"]["resumes_with_range"] > 0
    assert results["retries"]["extra_product_requests"] > 0
    assert results["soak"]["wall_vs_baseline"] > 1
