"""One decision per product, before any request: fetch, resume, skip or offline.

The download run and ``download --dry-run`` both ask :func:`decide`, so what the dry
run shows is what the run does. The decision is pure (the caller looks at the disk);
:func:`plan` does the looking for a whole batch.
"""

from __future__ import annotations

import enum
import hashlib
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

from sentinel_fetch.downloads.checksum import Expected, verify_file
from sentinel_fetch.downloads.paths import Layout, assign_file_names
from sentinel_fetch.downloads.transfer import Downloadable
from sentinel_fetch.errors import IntegrityError

__all__ = [
    "MAX_SHARDS",
    "Action",
    "PlannedProduct",
    "Shard",
    "decide",
    "in_shard",
    "is_offline",
    "parse_shard",
    "plan",
    "shard_of",
]


#: The most shards a batch can be split into (a SLURM array of ten thousand tasks).
MAX_SHARDS = 10_000
_SHARD = re.compile(r"\s*(\d{1,6})\s*/\s*(\d{1,6})\s*")


@dataclass(frozen=True)
class Shard:
    """Part ``index`` (1-based) of ``count``: which products of a batch one task takes.

    For clusters without a database server (a SLURM array, a Kubernetes indexed job):
    every task is given the same batch and its own ``K/N``, and the products split
    between them without any task talking to another.
    """

    index: int
    count: int

    def __post_init__(self) -> None:
        if not 1 <= self.count <= MAX_SHARDS:
            raise ValueError(f"the number of shards must be 1-{MAX_SHARDS}, got {self.count}")
        if not 1 <= self.index <= self.count:
            raise ValueError(f"shard {self.index} of {self.count}: K must be 1-{self.count}")

    def __str__(self) -> str:
        return f"{self.index}/{self.count}"


def parse_shard(text: str) -> Shard:
    """``"K/N"`` as a :class:`Shard` (``K`` counts from 1, as SLURM array tasks may).

    Raises:
        ValueError: not ``K/N``, or ``K`` outside 1..N; the message is one line.

    Example:
        >>> parse_shard("2/3")
        Shard(index=2, count=3)
        >>> parse_shard("0/3")
        Traceback (most recent call last):
        ...
        ValueError: shard 0 of 3: K must be 1-3
    """
    match = _SHARD.fullmatch(text) if isinstance(text, str) else None
    if match is None:
        shown = str(text)[:40]
        raise ValueError(f"{shown!r} is not K/N (this task's share of N, e.g. 2/8)")
    return Shard(int(match.group(1)), int(match.group(2)))


def in_shard(product_id: str, shard: Shard) -> bool:
    """Whether a product belongs to ``shard``, by a stable hash of its id alone.

    The hash (SHA-256) is the same on every machine, Python version and run, and does
    not depend on the order or the rest of the batch: a product found by one task's
    search is found in the same shard by every other task's, and a rerun of a task
    takes the same products.

    Example:
        >>> sum(in_shard("a1b2", parse_shard(f"{k}/4")) for k in range(1, 5))
        1
    """
    digest = hashlib.sha256(product_id.strip().lower().encode()).digest()
    return int.from_bytes(digest[:8], "big") % shard.count == shard.index - 1


_P = TypeVar("_P", bound=Downloadable)


def shard_of(products: Iterable[_P], shard: Shard | None) -> list[_P]:
    """The products of a batch that belong to ``shard`` (all of them for ``None``)."""
    if shard is None:
        return list(products)
    return [product for product in products if in_shard(product.id, shard)]


class Action(str, enum.Enum):
    """What a run does with one product."""

    #: Nothing of it on disk: download it whole.
    FETCH = "fetch"
    #: A partial file in the temp folder: continue it with a Range request.
    RESUME = "resume"
    #: Its verified file is in the finish folder: no request at all.
    SKIP = "skip"
    #: The catalogue says ``Online: false``: it must be ordered, not downloaded.
    OFFLINE = "offline"
    #: The finish folder holds a file of its name that this job did not put there and
    #: whose checksum is not this product's: never overwritten, the product fails.
    CONFLICT = "conflict"


def is_offline(product: object) -> bool:
    """Whether a product is known to be offline (``online`` is ``False``).

    Unknown (``None``, or no ``online`` at all) means try: the download host answers
    for an offline product, while skipping one that is online would lose it.

    Example:
        >>> class Entry:
        ...     online = None
        >>> is_offline(Entry())
        False
    """
    return getattr(product, "online", None) is False


def decide(
    product: Downloadable,
    *,
    finished_bytes: int | None,
    partial_bytes: int | None,
    finished_is_ours: bool = True,
    finished_verified: bool = False,
) -> Action:
    """The action for one product, from what is on disk (``None``: no such file).

    A finished file this job recorded counts as verified when its size is the
    catalogue's (or the catalogue gave none): only the run's own checked move put it
    there. A finished file the job did not record (no ledger, a finish folder shared
    with other jobs, a file copied in) counts only when its checksum was checked
    (``finished_verified``); otherwise it is someone else's, and never overwritten.

    Example:
        >>> from types import SimpleNamespace
        >>> product = SimpleNamespace(id="x", name="p", size=10, checksums={}, online=True)
        >>> decide(product, finished_bytes=10, partial_bytes=None).value
        'skip'
        >>> decide(product, finished_bytes=4, partial_bytes=3).value
        'resume'
        >>> decide(product, finished_bytes=None, partial_bytes=None).value
        'fetch'
    """
    if is_offline(product):
        return Action.OFFLINE
    if finished_bytes is not None and not finished_is_ours:
        return Action.SKIP if finished_verified else Action.CONFLICT
    if finished_bytes is not None and (not product.size or finished_bytes == product.size):
        return Action.SKIP
    if partial_bytes is not None:
        return Action.RESUME
    return Action.FETCH


@dataclass(frozen=True)
class PlannedProduct:
    """A product, its file name in this job, and what a run would do with it.

    Attributes:
        product: the product.
        file_name: its file in the temp and finish folders.
        action: the decision.
        path: its verified file (``SKIP``), else its partial file.
        on_disk_bytes: bytes of the partial file (``RESUME``), else 0.
    """

    product: Downloadable
    file_name: str
    action: Action
    path: Path
    on_disk_bytes: int = 0

    @property
    def bytes_to_fetch(self) -> int:
        """What the run would still download for this product."""
        if self.action in (Action.SKIP, Action.OFFLINE, Action.CONFLICT):
            return 0
        return max(self.product.size - self.on_disk_bytes, 0)


def _is_verified(product: Downloadable, path: Path) -> bool:
    """Whether a file is this product's by the catalogue's size and checksum."""
    expected = Expected.from_catalogue(product.size, product.checksums)
    try:
        verify_file(path, expected)
    except IntegrityError:
        return False
    return True


def _size(path: Path) -> int | None:
    try:
        return path.stat().st_size
    except FileNotFoundError:
        return None


def plan(
    products: Iterable[Downloadable], layout: Layout, recorded: Mapping[str, str]
) -> list[PlannedProduct]:
    """The decision for every product, with the file names the run would use.

    A finished file the ledger does not record for its product is hashed (the one
    definition of verified, :func:`~sentinel_fetch.downloads.checksum.verify_file`)
    before it is trusted.

    Args:
        products: distinct products (by id).
        layout: the temp and finish folders.
        recorded: ``product id -> file name`` the job ledger remembers.
    """
    wanted = list(products)
    file_names = assign_file_names(((p.id, p.file_name) for p in wanted), recorded)
    planned = []
    for product in wanted:
        name = file_names[product.id]
        finished, partial = layout.finished(name), layout.partial(name)
        partial_bytes = _size(partial)
        finished_bytes = _size(finished)
        ours = product.id in recorded
        verified = False
        if finished_bytes is not None and not ours and not is_offline(product):
            verified = _is_verified(product, finished)
        action = decide(
            product,
            finished_bytes=finished_bytes,
            partial_bytes=partial_bytes,
            finished_is_ours=ours,
            finished_verified=verified,
        )
        planned.append(
            PlannedProduct(
                product,
                name,
                action,
                finished if action is Action.SKIP else partial,
                (partial_bytes or 0) if action is Action.RESUME else 0,
            )
        )
    return planned
