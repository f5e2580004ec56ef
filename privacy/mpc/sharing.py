"""Arithmetic over Z_2^64 with numpy ``uint64`` vectors: the pseudo-random generator, pairwise
zero sharings and replicated secret sharing for ``n`` parties with threshold ``t = (n-1)//2``.

Replicated sharing: a secret ``x`` is split into one additive share ``x_T`` per ``t``-subset
``T`` of the parties (``x = sum_T x_T mod 2^64``); party ``p`` holds every ``x_T`` with
``p not in T``. Any ``t`` parties miss the share of their own subset and learn nothing; any
``t + 1`` hold every share. Products of two shared values are computed locally as additive
shares: the term ``x_A * y_B`` is computed by one party outside ``A | B`` (one exists since
``|A | B| <= 2t < n``).
"""

from __future__ import annotations

import hashlib
import itertools
from functools import cache

import numpy as np
import numpy.typing as npt

from ledger.crypto.sm3 import sm3

U64 = npt.NDArray[np.uint64]
SEED_BYTES = 32


def threshold(n: int) -> int:
    return (n - 1) // 2


@cache
def subsets(n: int) -> tuple[tuple[int, ...], ...]:
    """The ``t``-subsets of ``range(n)`` in lexicographic order (the order of every share list)."""
    return tuple(itertools.combinations(range(n), threshold(n)))


def held_by(n: int, p: int) -> list[int]:
    """Indices (into ``subsets(n)``) of the shares party ``p`` holds."""
    return [k for k, t in enumerate(subsets(n)) if p not in t]


def designated(n: int, owner: int) -> int:
    """The subset whose share of ``owner``'s input is sent explicitly: the first one containing it."""
    return next(k for k, t in enumerate(subsets(n)) if owner in t)


def prg(seed: bytes, label: bytes, count: int) -> U64:
    """``count`` pseudo-random elements of Z_2^64: SHAKE128(seed || label), little-endian words."""
    raw = hashlib.shake_128(seed + label).digest(8 * count)
    return np.frombuffer(raw, dtype="<u8").astype(np.uint64, copy=False)


def pair_key(lo_to_hi: bytes, hi_to_lo: bytes) -> bytes:
    """The key two parties share: SM3 over the seeds each sent the other (lower index first)."""
    return sm3(b"rongxin-mpc pair v1" + lo_to_hi + hi_to_lo)


def zero_mask(me: int, keys: dict[int, bytes], label: bytes, count: int) -> U64:
    """This party's part of a pseudo-random sharing of zero: sum over peers ``j`` of
    ``+PRG(k_mj)`` if ``me < j`` else ``-PRG(k_mj)``; the parts of all parties add up to zero."""
    mask = np.zeros(count, dtype=np.uint64)
    for j, key in keys.items():
        r = prg(key, label, count)
        if me < j:
            mask += r
        else:
            mask -= r
    return mask


def product_owner(n: int, a: int, b: int) -> int:
    """Which party computes the cross term of shares ``a`` and ``b`` (indices into ``subsets``):
    the parties outside both subsets take the pairs in turn."""
    sa, sb = subsets(n)[a], subsets(n)[b]
    eligible = [p for p in range(n) if p not in sa and p not in sb]
    return eligible[(a + b) % len(eligible)]


def to_ints(words: U64, signed: bool) -> list[int]:
    """Elements of Z_2^64 as Python ints, read as two's complement when ``signed``."""
    out: list[int] = (words.view(np.int64) if signed else words).tolist()
    return out
