"""Secure comparison: the sign bit of arithmetic replicated shares of ``v`` (``|v| < 2^63``).

1. Arithmetic to boolean (one round): the secret ``v = sum_U S_U`` is split into ``t + 1``
   addends ``u_0 ... u_t``, ``u_p`` being the sum of the components whose first holder among
   parties ``0 ... t`` is ``p`` (every component has one: ``|U| = t``). Party ``p <= t``
   reshares ``u_p`` (party 0: ``u_0 - e`` for each public offset ``e`` asked for) into a
   boolean sharing, all addends in one resharing of their concatenation.
2. Carry-save layers (one round each, while more than two addends): ``(a, b, c)`` becomes
   ``(a ^ b ^ c, maj(a, b, c) << 1)`` with ``maj = ((a ^ c) & (b ^ c)) ^ c``.
3. Two addends ``a + b``: ``g = a & b`` (one round), ``p = a ^ b``, then Kogge-Stone levels
   ``k = 1, 2, 4, 8, 16`` (one round each, both ANDs batched): ``G ^= P & (G << k)``,
   ``P &= P << k``; the last level ``k = 32`` is kept as XOR-additive terms (no round).
   The sign bit is bit 63 of ``p ^ (G << 1)``.

Result: this party's XOR-additive term of each sign bit (bit 63 of each word); the caller
combines the terms linearly and opens them with ``Replicated.open_bits``.
"""

from __future__ import annotations

import numpy as np

from .replicated import ROWS, Replicated
from .sharing import U64, threshold

LEVELS = (1, 2, 4, 8, 16)


async def to_boolean(rep: Replicated, v: ROWS, offsets: list[int] | None = None) -> list[ROWS]:
    """Boolean sharings of the ``t + 1`` addends of ``v`` (addend 0 per offset ``e``: ``u_0 - e``
    for each ``e`` in ``offsets``, concatenated; the others tiled to the same length)."""
    n, me = rep.n, rep.me
    t = threshold(n)
    size = v.shape[1]
    offs = offsets if offsets is not None else [0]
    parties = list(range(t + 1))
    mine = rep.partial_sum(v, parties)
    lengths = [size * len(offs)] + [size] * t
    term = np.zeros(sum(lengths), dtype=np.uint64)
    if mine is not None:
        if me == 0:
            term[:lengths[0]] = np.concatenate([mine - np.uint64(e % 2**64) for e in offs])
        else:
            start = lengths[0] + size * (me - 1)
            term[start:start + size] = mine
    rows = await rep.reshare(term, xor=True)
    out = [rows[:, :lengths[0]]]
    for p in range(1, t + 1):
        start = lengths[0] + size * (p - 1)
        out.append(np.tile(rows[:, start:start + size], (1, len(offs))))
    return out


async def carry_save(rep: Replicated, addends: list[ROWS]) -> tuple[ROWS, ROWS]:
    while len(addends) > 2:
        groups = len(addends) // 3
        a = np.concatenate(addends[0:3 * groups:3], axis=1)
        b = np.concatenate(addends[1:3 * groups:3], axis=1)
        c = np.concatenate(addends[2:3 * groups:3], axis=1)
        maj = await rep.and_(a ^ c, b ^ c)
        maj ^= c
        size = addends[0].shape[1]
        s = a ^ b ^ c
        carry = maj << np.uint64(1)
        addends = [piece for g in range(groups) for piece in (s[:, g * size:(g + 1) * size],
                                                              carry[:, g * size:(g + 1) * size])] + addends[3 * groups:]
    return addends[0], addends[1]


async def sign_terms(rep: Replicated, addends: list[ROWS]) -> U64:
    """This party's XOR-additive term of ``sign(sum of addends)`` in bit 63 of each word."""
    a, b = await carry_save(rep, addends) if len(addends) > 2 else (addends[0], addends[1])
    p0 = a ^ b
    g = await rep.and_(a, b)
    p = p0
    size = a.shape[1]
    for k in LEVELS:
        shift = np.uint64(k)
        both = await rep.and_(np.concatenate([p, p], axis=1), np.concatenate([g << shift, p << shift], axis=1))
        g = g ^ both[:, :size]
        p = both[:, size:]
    last = rep.cross(p, g << np.uint64(32)) ^ rep.additive(g, xor=True)
    return rep.additive(p0, xor=True) ^ (last << np.uint64(1))


async def less_than(rep: Replicated, v: ROWS, offsets: list[int] | None = None) -> np.ndarray:
    """XOR-additive terms (0/1, uint8) of ``[v - e < 0]``: for each offset ``e`` (default 0), all
    elements of ``v`` in order; every ``|v - e|`` must be below ``2^63``."""
    addends = await to_boolean(rep, v, offsets)
    terms = await sign_terms(rep, addends)
    out: np.ndarray = (terms >> np.uint64(63)).astype(np.uint8)
    return out
