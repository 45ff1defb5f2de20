"""Deterministic pseudo-randomness keyed by what it decides, not by call order.

Every random choice of the synthetic catalogue (is this datatake in the archive, its cloud
cover, a product's Id) is a hash of the catalogue seed and the thing decided, so adding a
mission or changing a loop order never reshuffles the rest, and numpy or Python upgrades
cannot change the catalogue (the ``random`` module's streams are not promised stable).
The mixer is SplitMix64's finaliser.
"""

from __future__ import annotations

import hashlib

import numpy as np
import numpy.typing as npt

__all__ = ["fraction", "key", "key_array", "mix", "stable_hash", "unit", "unit_array"]

_MASK = (1 << 64) - 1
_GOLDEN = 0x9E3779B97F4A7C15


def mix(value: int) -> int:
    """SplitMix64 finaliser: a bijective scrambling of a 64-bit integer.

    >>> mix(0) != mix(1)
    True
    """
    z = (value + _GOLDEN) & _MASK
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & _MASK
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & _MASK
    return z ^ (z >> 31)


def key(seed: int, *parts: int) -> int:
    """64-bit hash of a seed and integer parts (order matters).

    >>> key(1, 2, 3) == key(1, 2, 3), key(1, 2, 3) == key(1, 3, 2)
    (True, False)
    """
    h = mix(seed & _MASK)
    for part in parts:
        h = mix(h ^ (part & _MASK))
    return h


def stable_hash(text: str) -> int:
    """64-bit integer of a string, identical on every Python run (unlike ``hash``)."""
    return int.from_bytes(hashlib.blake2b(text.encode(), digest_size=8).digest(), "little")


def fraction(h: int, field: int = 0) -> float:
    """A uniform number in [0, 1) from 16 bits of a hash; ``field`` 0..3 picks the bits,
    so one hash gives four independent-looking draws.

    >>> 0.0 <= fraction(key(7, 1), 3) < 1.0
    True
    """
    return ((h >> (16 * field)) & 0xFFFF) / 65536.0


def unit(h: int) -> float:
    """A uniform number in [0, 1) from the top 53 bits of a hash (full double precision)."""
    return (h >> 11) / 9007199254740992.0


def key_array(seed: int, *parts: npt.NDArray[np.uint64] | int) -> npt.NDArray[np.uint64]:
    """:func:`key` over numpy arrays (broadcast), bit-for-bit the same values.

    >>> int(key_array(7, np.array([1, 2], dtype=np.uint64), 3)[1]) == key(7, 2, 3)
    True
    """
    h = np.full(1, mix(seed & _MASK), dtype=np.uint64)
    for part in parts:
        h = _mix_array(h ^ np.asarray(part, dtype=np.uint64))
    return h


def unit_array(h: npt.NDArray[np.uint64]) -> npt.NDArray[np.float64]:
    """:func:`unit` over an array of hashes."""
    units: npt.NDArray[np.float64] = (h >> np.uint64(11)).astype(np.float64) / 9007199254740992.0
    return units


def _mix_array(value: npt.NDArray[np.uint64]) -> npt.NDArray[np.uint64]:
    with np.errstate(over="ignore"):
        z = value + np.uint64(_GOLDEN)
        z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        mixed: npt.NDArray[np.uint64] = z ^ (z >> np.uint64(31))
        return mixed
