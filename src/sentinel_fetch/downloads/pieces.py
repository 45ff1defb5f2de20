"""Sharing one product's bytes between connections at the end of a batch.

When every product of a batch has started and a connection slot is free, it would sit
idle while the last products trickle in one connection each (a 100 MB product refetched
after a corrupt body is 5 s alone at CDSE's 20 MB/s per connection). Instead a free slot
*helps*: it takes the second half of the largest range still to come of a product in
flight and fetches it with closed ``Range`` requests, and the stream it was taken from
stops where the helper's range begins. The owner's open-ended request is the only one
ever dropped mid-body (once per product); a helper's requests are read to their end.

Why the part file stays what it was: only the product's own transfer (its *owner*)
writes the ``.part`` file, in order, so it is always a prefix of the product (resumable,
kill -9 safe). A helper writes its range to a file of its own under ``Temp/.pieces``;
when the owner reaches that range it appends the helper's file, hashing it in order as
it goes, so the one inline BLAKE3/MD5 still covers every byte once, at the cost of one
local copy of the helped bytes. A helper's file is a throwaway: a range that ended
early (a cut, a refusal) is appended as far as it got and the owner resumes from there
as after any cut; a run that is killed leaves only pieces the next run deletes.

:class:`Board` is the batch's list of products that may be helped; :class:`Shared` holds
one product's ranges. Both only hold numbers under a lock: the network and the disk are
:mod:`~sentinel_fetch.downloads.transfer`'s.
"""

from __future__ import annotations

import contextlib
import hashlib
import shutil
import threading
from dataclasses import dataclass, field
from pathlib import Path

__all__ = ["HELPER_REQUEST_BYTES", "MIN_PIECE_BYTES", "Board", "Piece", "Shared"]

#: The smallest range worth a request of its own: a split needs twice this still to come.
#: At 20 MB/s, 8 MiB is 0.4 s of one connection; a request costs one round trip.
MIN_PIECE_BYTES = 8 << 20
#: A helper's requests ask for at most this much (one round trip per 0.8 s at 20 MB/s).
HELPER_REQUEST_BYTES = 16 << 20

PIECES_FOLDER = ".pieces"


@dataclass(eq=False)
class Piece:
    """One connection's share of a product: bytes ``start`` up to ``end`` (exclusive).

    Attributes:
        start: the first byte.
        end: the byte after the last; lowered when a helper takes the rest.
        position: the next byte to receive.
        path: the helper's file (``None`` for the owner, who writes the part file).
        reserved: the end of the read in progress (a split never cuts into it).
        failed: the piece ended before ``end``.
    """

    start: int
    end: int
    path: Path | None = None
    position: int = -1
    reserved: int = -1
    failed: bool = False
    finished: threading.Event = field(default_factory=threading.Event)

    def __post_init__(self) -> None:
        if self.position < 0:
            self.position = self.start
        self.reserved = self.position


class Shared:
    """The ranges of one product in flight: its owner's, then the helpers', in order.

    Args:
        url: where the product's bytes are (a helper asks for a range of it).
        product_id: the product's id (progress events carry it).
        name: the product's name (for progress and logs).
        size: the product's size (every range lies inside it).
        start: where the owner's request began.
        folder: where helpers write their pieces.
        key: what makes this product's piece file names its own.
    """

    def __init__(
        self, url: str, product_id: str, name: str, size: int, start: int, folder: Path, key: str
    ) -> None:
        self.url = url
        self.product_id = product_id
        self.name = name
        self.size = size
        self._folder = folder
        self._key = key
        self._lock = threading.Lock()
        self.owner = Piece(start, size)
        self._pieces = [self.owner]
        #: Set once the owner is done with the pieces: helpers stop, files go.
        self.closed = False

    def remaining(self, min_piece: int) -> int:
        """The largest range still to come that could be split (0 if none)."""
        with self._lock:
            best = self._best(min_piece)
            return 0 if best is None else best.end - max(best.position, best.reserved)

    def _best(self, min_piece: int) -> Piece | None:
        if self.closed:
            return None
        best: Piece | None = None
        for piece in self._pieces:
            left = piece.end - max(piece.position, piece.reserved)
            if piece.finished.is_set() or left < 2 * min_piece:
                continue
            if best is None or left > best.end - max(best.position, best.reserved):
                best = piece
        return best

    def split(self, min_piece: int) -> Piece | None:
        """Take the second half of the largest range still to come; ``None`` if too small."""
        with self._lock:
            best = self._best(min_piece)
            if best is None:
                return None
            base = max(best.position, best.reserved)
            middle = base + (best.end - base) // 2
            piece = Piece(middle, best.end, self._folder / f"{self._key}-{middle}.piece")
            best.end = middle
            self._pieces.insert(self._pieces.index(best) + 1, piece)
            return piece

    def reserve_request(self, piece: Piece, most: int) -> int:
        """The length of a helper's next request (0 at its end); no split cuts into it.

        A helper asks for its piece a request of at most ``most`` bytes at a time, each
        read to its end: a later split of its piece begins after the request in flight,
        so a helper never drops a connection mid-body.
        """
        with self._lock:
            count = max(0, min(most, piece.end - piece.position))
            piece.reserved = piece.position + count
            return count

    def reserve(self, piece: Piece, wanted: int) -> int:
        """How many bytes ``piece`` may read next (0 at its end); no split cuts into them."""
        with self._lock:
            count = max(0, min(wanted, piece.end - piece.position))
            piece.reserved = piece.position + count
            return count

    def advance(self, piece: Piece, count: int) -> None:
        """``count`` bytes of ``piece`` arrived (at most what was reserved)."""
        with self._lock:
            piece.position += count
            piece.reserved = max(piece.reserved, piece.position)

    def finish(self, piece: Piece) -> None:
        """``piece`` ends (complete, or failed if short of its end); the owner may go on."""
        with self._lock:
            piece.reserved = piece.position
            piece.failed = piece.position < piece.end
            piece.finished.set()

    def next_after(self, piece: Piece) -> Piece | None:
        """The piece after ``piece`` (once ``piece`` has finished, its end is final)."""
        with self._lock:
            index = self._pieces.index(piece) + 1
            return self._pieces[index] if index < len(self._pieces) else None

    def close(self) -> None:
        """No more splits; delete every helper's file (a helper still writing stops)."""
        with self._lock:
            self.closed = True
            pieces = [p for p in self._pieces if p.path is not None]
        for piece in pieces:
            discard(piece)


def discard(piece: Piece) -> None:
    """Delete a helper's file (nothing if it has none or is gone)."""
    if piece.path is not None:
        with contextlib.suppress(OSError):
            piece.path.unlink()


class Board:
    """The products of a batch that free connections may help with.

    Args:
        temp_dir: the batch's temp folder; pieces live in its ``.pieces`` folder.
        min_piece: the smallest range a helper takes.
    """

    def __init__(self, temp_dir: Path, min_piece: int = MIN_PIECE_BYTES) -> None:
        self.folder = temp_dir / PIECES_FOLDER
        self.min_piece = min_piece
        self._lock = threading.Lock()
        self._products: list[Shared] = []
        #: Ranges taken by helpers in this batch.
        self.splits = 0
        #: Set when the download host answered a range with something else: no more
        #: helping in this batch (CDSE's Range support is not documented, spec §5.4).
        self.refused = False

    def refuse(self) -> None:
        """The host does not serve ranges as asked: stop helping for the rest of the batch."""
        self.refused = True

    def clear(self) -> None:
        """Delete pieces an earlier run left (killed): no run but this one uses the folder.

        The caller holds the folder lock, so no other process writes pieces here.
        """
        shutil.rmtree(self.folder, ignore_errors=True)

    def register(
        self, url: str, product_id: str, name: str, size: int, start: int, part: Path
    ) -> Shared:
        """A product's owner streams bytes ``start..size`` of it: helpers may share them."""
        key = hashlib.blake2s(str(part).encode(), digest_size=8).hexdigest()
        shared = Shared(url, product_id, name, size, start, self.folder, key)
        with self._lock:
            self._products.append(shared)
        return shared

    def unregister(self, shared: Shared) -> None:
        """The owner is done: close the product's pieces."""
        with self._lock, contextlib.suppress(ValueError):
            self._products.remove(shared)
        shared.close()

    def splittable(self) -> bool:
        """Whether some product has a range large enough to share."""
        if self.refused:
            return False
        with self._lock:
            products = list(self._products)
        return any(shared.remaining(self.min_piece) for shared in products)

    def split(self) -> tuple[Shared, Piece] | None:
        """Take a range of the product with the most bytes still to come in one range."""
        if self.refused:
            return None
        with self._lock:
            products = list(self._products)
        for shared in sorted(products, key=lambda s: -s.remaining(self.min_piece)):
            piece = shared.split(self.min_piece)
            if piece is not None:
                self.folder.mkdir(parents=True, exist_ok=True)
                with self._lock:
                    self.splits += 1
                return shared, piece
        return None
