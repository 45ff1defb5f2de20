"""The examples in the catalogue modules' docstrings run and give what they show."""

from __future__ import annotations

import doctest
from types import ModuleType

import pytest

from sentinel_fetch.catalogue import (
    area,
    browser_url,
    filter,
    odata,
    product,
    query,
    results,
)


@pytest.mark.parametrize(
    "module",
    [area, browser_url, filter, odata, product, query, results],
    ids=lambda module: module.__name__.rsplit(".", 1)[-1],
)
def test_docstring_examples(module: ModuleType) -> None:
    outcome = doctest.testmod(module, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)

    assert outcome.failed == 0
