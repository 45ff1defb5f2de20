"""Products from a pipe: names, ids or the tool's own NDJSON, one per line.

``sentinel-fetch search ... | jq -c 'select(...)' | sentinel-fetch download --from -``
works because each line is read by what it is: a JSON object as a saved product (the
form ``search`` prints when piped), a UUID as an id, anything else as a name. Blank
lines and ``#`` comments are skipped. The text is the user's, but may come from
anything: each JSON line is parsed within bounds and checked like a result file.
"""

from __future__ import annotations

import uuid

from sentinel_fetch.catalogue.product import Product
from sentinel_fetch.catalogue.query import Query
from sentinel_fetch.errors import ResultFileError
from sentinel_fetch.untrusted import UntrustedJSONError, parse_json

__all__ = ["MAX_LINE_BYTES", "read_piped"]

#: A product line of ``search`` output is a few kB; one far longer is not one.
MAX_LINE_BYTES = 1_000_000


def read_piped(text: str) -> tuple[list[Product], Query | None]:
    """The products given as JSON lines, and a Query for the names and ids given.

    Raises:
        ResultFileError: a JSON line that is not a product, or no product at all.

    >>> products, query = read_piped('S2A_MSIL2A_X.SAFE\\n# note\\n'
    ...     '{"id": "67468f5c-4c73-44be-8116-a97824d07776", "name": "S2B_Y.SAFE"}\\n')
    >>> [p.name for p in products], query.names
    (['S2B_Y.SAFE'], ('S2A_MSIL2A_X.SAFE',))
    """
    products: list[Product] = []
    names: list[str] = []
    ids: list[str] = []
    for number, line in enumerate(text.splitlines(), start=1):
        entry = line.strip().lstrip("\ufeff")
        if not entry or entry.startswith("#"):
            continue
        if entry.startswith("{"):
            try:
                data = parse_json(entry, max_bytes=MAX_LINE_BYTES)
            except UntrustedJSONError as error:
                raise ResultFileError(f"line {number} of the input is not JSON: {error}") from None
            if not isinstance(data, dict):
                raise ResultFileError(f"line {number} of the input is not a product object")
            try:
                products.append(Product.from_dict(data))
            except ResultFileError as error:
                raise ResultFileError(f"line {number} of the input: {error}") from None
            continue
        try:
            ids.append(str(uuid.UUID(entry)))
        except ValueError:
            names.append(entry)
    if not products and not names and not ids:
        raise ResultFileError("the input lists no product (names, ids or search --json lines)")
    query = Query(names=tuple(names), ids=tuple(ids)) if names or ids else None
    return products, query
