"""Sharing a product's ranges between its owner and helping connections (pure logic)."""

from __future__ import annotations

from pathlib import Path

from sentinel_fetch.downloads.pieces import Board, Shared

MIB = 1 << 20


def _shared(tmp_path: Path, size: int = 100 * MIB, start: int = 0) -> Shared:
    board = Board(tmp_path, min_piece=8 * MIB)
    return board.register("https://d/x", "id", "P", size, start, tmp_path / "P.zip.part")


def test_a_helper_takes_the_second_half_of_what_is_still_to_come(tmp_path: Path) -> None:
    shared = _shared(tmp_path, start=20 * MIB)
    piece = shared.split(8 * MIB)
    assert piece is not None
    assert (piece.start, piece.end) == (60 * MIB, 100 * MIB)
    assert shared.owner.end == 60 * MIB
    assert piece.path is not None and piece.path.parent == tmp_path / ".pieces"
    # The next split halves the largest range left: the helper's 40 MiB, not the owner's.
    shared.advance(shared.owner, 10 * MIB)
    second = shared.split(8 * MIB)
    assert second is not None and (second.start, second.end) == (80 * MIB, 100 * MIB)
    assert shared.next_after(shared.owner) is piece
    assert shared.next_after(piece) is second
    assert shared.next_after(second) is None


def test_ranges_too_small_to_share_are_not_split(tmp_path: Path) -> None:
    shared = _shared(tmp_path, size=40 * MIB, start=25 * MIB)
    assert shared.split(8 * MIB) is None  # 15 MiB left: less than two pieces
    assert shared.remaining(8 * MIB) == 0


def test_a_split_never_cuts_into_a_read_in_progress(tmp_path: Path) -> None:
    shared = _shared(tmp_path, size=32 * MIB)
    assert shared.reserve(shared.owner, 20 * MIB) == 20 * MIB
    assert shared.split(8 * MIB) is None, "12 MiB beyond the read: less than two pieces"
    piece = shared.split(2 * MIB)
    assert piece is not None and piece.start == 26 * MIB  # half of what lies past the read
    # The owner may read up to the split, and no further.
    shared.advance(shared.owner, 20 * MIB)
    assert shared.reserve(shared.owner, 64 * MIB) == piece.start - 20 * MIB


def test_a_piece_that_ends_short_is_failed_and_a_closed_product_deletes_pieces(
    tmp_path: Path,
) -> None:
    shared = _shared(tmp_path)
    piece = shared.split(8 * MIB)
    assert piece is not None and piece.path is not None
    piece.path.parent.mkdir(parents=True)
    piece.path.write_bytes(b"x" * 10)
    shared.advance(piece, 10)
    shared.finish(piece)
    assert piece.finished.is_set() and piece.failed
    assert shared.split(8 * MIB) is not None, "the owner's range can still be shared"
    shared.close()
    assert not piece.path.exists()
    assert shared.split(8 * MIB) is None, "a closed product is not shared any more"


def test_a_board_offers_the_product_with_most_to_come_and_stops_when_refused(
    tmp_path: Path,
) -> None:
    board = Board(tmp_path, min_piece=MIB)
    small = board.register("u", "a", "A", 10 * MIB, 0, tmp_path / "A.part")
    large = board.register("u", "b", "B", 50 * MIB, 0, tmp_path / "B.part")
    claim = board.split()
    assert claim is not None and claim[0] is large
    assert board.splits == 1
    board.unregister(large)
    claim = board.split()
    assert claim is not None and claim[0] is small
    board.refuse()
    assert not board.splittable()
    assert board.split() is None


def test_clear_removes_pieces_a_killed_run_left(tmp_path: Path) -> None:
    board = Board(tmp_path)
    board.folder.mkdir()
    (board.folder / "stale-123.piece").write_bytes(b"old")
    board.clear()
    assert not board.folder.exists()
