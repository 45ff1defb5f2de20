"""The failure report of a run: what was not downloaded, why, and what to do.

Written to ``<save_path>/sentinel-fetch-report.csv`` (people, spreadsheets) and the
same rows as ``.json`` (programs) after every run that left something undone; removed
after a run that left nothing, so an old report never describes problems that are gone.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterable, Sequence
from pathlib import Path

from sentinel_fetch.catalogue.product import Product
from sentinel_fetch.catalogue.search import RejectedEntry
from sentinel_fetch.downloads.engine import BatchReport, ProductResult
from sentinel_fetch.progress import PROBLEM_STATES
from sentinel_fetch.redact import redact
from sentinel_fetch.text import spreadsheet_cell

__all__ = ["PROBLEM_STATES", "REPORT_FILE", "problems_of", "unreadable_results", "write_report"]

REPORT_FILE = "sentinel-fetch-report.csv"
_ADVICE = {
    "unverified": "no checksum exists for these files anywhere: checked by size only",
    "failed": "rerun to retry; if it keeps failing, see the reason",
    "offline": "order it in the CDSE Data Workspace, then rerun",
    "stopped": "rerun to resume",
}


def unreadable_results(rejected: Iterable[RejectedEntry]) -> list[ProductResult]:
    """Catalogue entries no search could read, as failed products of the report."""
    return [
        ProductResult(
            Product(id=entry.id or "", name=entry.name or ""),
            "failed",
            error=f"the catalogue entry could not be read: {entry.reason}",
        )
        for entry in rejected
    ]


def problems_of(
    report: BatchReport | None, rejected: Iterable[RejectedEntry] = ()
) -> list[ProductResult]:
    """Everything a report lists: unreadable entries first, then the run's problems."""
    problems = unreadable_results(rejected)
    if report is not None:
        # A product with files nothing could verify is listed too: never accepted silently.
        problems += [
            result
            for result in report.results
            if result.status in PROBLEM_STATES or result.unverified
        ]
    return problems


def write_report(save_path: Path, problems: Sequence[ProductResult]) -> Path | None:
    """Write the report of ``problems`` (or remove a stale one); return its path, if any.

    Reasons quote servers, so they are masked in both files. CSV cells are guarded so a
    spreadsheet shows a name like ``=HYPERLINK(...)`` rather than evaluating it; the
    JSON keeps names exact.
    """
    path = save_path / REPORT_FILE
    if not problems:
        for stale in (path, path.with_suffix(".json")):
            stale.unlink(missing_ok=True)
        return None
    rows = [
        {
            "name": result.product.name,
            "id": result.product.id,
            "status": _status(result),
            "reason": redact(result.error) if result.error else _unverified(result),
            "attempts": result.attempts,
            "advice": _ADVICE[_status(result)],
        }
        for result in problems
    ]
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["name", "id", "status", "reason", "attempts", "what to do"])
        for row in rows:
            writer.writerow(
                [spreadsheet_cell("" if value is None else value) for value in row.values()]
            )
    path.with_suffix(".json").write_text(json.dumps(rows, indent=2), encoding="utf-8")
    return path


def _status(result: ProductResult) -> str:
    """``unverified`` for a product done but with files checked by size only."""
    if result.status not in PROBLEM_STATES and result.unverified:
        return "unverified"
    return str(result.status)


def _unverified(result: ProductResult) -> str | None:
    if not result.unverified:
        return None
    return "no checksum in STAC nor in manifest.safe for: " + ", ".join(result.unverified)
