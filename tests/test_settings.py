"""Endpoints and limits: URLs built in one place, limits refused when they cannot work."""

from __future__ import annotations

import pytest

from sentinel_fetch.errors import ConfigError, TransferError
from sentinel_fetch.settings import Endpoints, Limits


def test_download_urls_are_built_in_one_place_from_uuids_only() -> None:
    endpoints = Endpoints(download="https://mirror.example/odata/v1")
    product_id = "5FF3C4C8-a778-40c2-bf2f-0b6b98e179c8"
    assert endpoints.product_url(product_id) == (
        f"https://mirror.example/odata/v1/Products({product_id})/$value"
    )
    hostile = (
        "../x",
        "a?b",
        "5ff3c4c8a77840c2bf2f0b6b98e179c8",
        " 5ff3c4c8-a778-40c2-bf2f-0b6b98e179c8",
        "5ff3c4c8-a778-40c2-bf2f-0b6b98e179c8\n",
    )
    for product_id in hostile:
        with pytest.raises(TransferError, match="not a UUID"):
            endpoints.product_url(product_id)


@pytest.mark.parametrize(
    "changes",
    [
        {"max_total_attempts": 0},
        {"max_fetched_size_multiple": 0.5},
        {"max_fetched_size_multiple": float("nan")},
        {"unknown_size_max_bytes": 0},
        {"min_rate_bytes_per_s": -1.0},
        {"min_rate_window_s": 0.0},
    ],
)
def test_limits_that_cannot_work_are_refused(changes: dict[str, object]) -> None:
    with pytest.raises(ConfigError, match=next(iter(changes))):
        Limits(**changes)  # type: ignore[arg-type]
