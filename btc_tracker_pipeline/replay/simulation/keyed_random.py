"""Deterministic random numbers keyed by integers and text.

A simulated world draws nothing from a shared generator: each number is a function of
a key (a market, the Chainlink feed, …), an index (usually a minute) and a salt (what
the number is for). The same world arguments therefore give the same numbers whatever
was asked before, and ``unit`` (one Python int) and ``unit_array`` (vectorised) agree
bit for bit.
"""

from __future__ import annotations

import hashlib
import math

import numpy as np

_M64 = (1 << 64) - 1
_GOLDEN, _MUL1, _MUL2 = 0x9E3779B97F4A7C15, 0xBF58476D1CE4E5B9, 0x94D049BB133111EB


def _mix(x: int) -> int:
    """splitmix64 finaliser on a Python int (same bits as ``_mix_array``)."""
    x = (x + _GOLDEN) & _M64
    x = ((x ^ (x >> 30)) * _MUL1) & _M64
    x = ((x ^ (x >> 27)) * _MUL2) & _M64
    return x ^ (x >> 31)


def _mix_array(x: np.ndarray) -> np.ndarray:
    """splitmix64 finaliser on a uint64 array (wrapping arithmetic)."""
    x = x + np.uint64(_GOLDEN)
    x = (x ^ (x >> np.uint64(30))) * np.uint64(_MUL1)
    x = (x ^ (x >> np.uint64(27))) * np.uint64(_MUL2)
    return x ^ (x >> np.uint64(31))


def unit(key: int, n: int, salt: int) -> float:
    """A uniform number in [0, 1) for (key, n, salt)."""
    return (_mix(key ^ _mix((n + (salt << 40)) & _M64)) >> 11) * 2.0**-53


def unit_array(keys: np.ndarray, n: np.ndarray, salt: int) -> np.ndarray:
    """``unit`` over arrays of keys (uint64) and indices, with identical values."""
    inner = _mix_array(n.astype(np.int64).astype(np.uint64) + np.uint64((salt << 40) & _M64))
    return (_mix_array(keys ^ inner) >> np.uint64(11)).astype(np.float64) * 2.0**-53


def normal_array(key: int, n: np.ndarray, salt: int) -> np.ndarray:
    """Standard normals for (key, n[i], salt), by Box-Muller."""
    u1 = 1.0 - unit_array(np.full(len(n), key, dtype=np.uint64), n, salt)  # (0, 1]
    u2 = unit_array(np.full(len(n), key, dtype=np.uint64), n, salt + 1)
    return np.sqrt(-2.0 * np.log(u1)) * np.cos(2.0 * math.pi * u2)


def digest(*parts: object) -> bytes:
    """SHA-256 of the parts' text joined by ``|``: identifiers that look real."""
    return hashlib.sha256("|".join(map(str, parts)).encode()).digest()


def hash64(*parts: object) -> int:
    """A 64-bit key for ``unit`` from the parts (the first 8 bytes of ``digest``)."""
    return int.from_bytes(digest(*parts)[:8], "little")
