"""Replicated sharings in use: resharing, AND gates, conversion to additive terms and opening.

A party's part of a sharing is a ``(h, L)`` array of ``uint64`` words, row ``r`` being the
component ``held[r]`` (``held`` = ``sharing.held_by(n, me)``, ascending share indices). The
same sharing is used over two groups: **boolean** (components XOR to the secret, bitwise on
whole words so each of the 64 bit positions is an independent lane) and **arithmetic**
(components add up modulo ``2^64``).

Component seeds: ``seed_U = SM3("rongxin-mpc component v1" | U (4 bytes, big endian) |
sigma_{0,U} | ... | sigma_{n-1,U})`` over the input seeds every party sent the holders of ``U``
in the set-up round, so exactly the holders of ``U`` know it.

Resharing an additive term ``z_p`` of every party into a fresh replicated sharing (one round):
party ``q`` *owns* the component ``U_q = {q+1, ..., q+t} mod n``; every other component is
*free* and its value is ``PRG(seed_U, label)``, computed by its holders; its first holder
(the lowest party outside ``U``) cancels it in its own term. Party ``q`` sends
``w_q = z_q (+) mask_q (-) sum of the free components it cancels`` to the other holders of
``U_q``, where ``mask_q`` is its part of a pairwise pseudo-random sharing of zero.
"""

from __future__ import annotations

from functools import cache
from typing import TYPE_CHECKING

import numpy as np

from ledger.crypto.sm3 import sm3

from .errors import PartyError
from .sharing import U64, held_by, prg, product_owner, subsets, threshold

if TYPE_CHECKING:
    from .protocols import Context

ROWS = np.ndarray  # (h, L) uint64
MAX_ROUND = 0xFFFE


@cache
def owned_component(n: int, q: int) -> int:
    """The component party ``q``'s resharing term goes to: ``{q+1, ..., q+t} mod n``."""
    t = threshold(n)
    return subsets(n).index(tuple(sorted((q + 1 + i) % n for i in range(t))))


@cache
def first_holder(n: int, k: int) -> int:
    return next(p for p in range(n) if p not in subsets(n)[k])


@cache
def component_owners(n: int) -> dict[int, int]:
    return {owned_component(n, q): q for q in range(n)}


@cache
def and_pairs(n: int, me: int) -> tuple[tuple[int, tuple[int, ...]], ...]:
    """For each row ``ra`` of this party: the rows ``rb`` whose cross term ``x_a y_b`` it computes."""
    held = held_by(n, me)
    out = []
    for ra, a in enumerate(held):
        rbs = tuple(rb for rb, b in enumerate(held) if product_owner(n, a, b) == me)
        if rbs:
            out.append((ra, rbs))
    return tuple(out)


class Replicated:
    """One party's replicated-sharing machinery for one run (rounds are numbered from ``start``)."""

    def __init__(self, ctx: Context, start: int) -> None:
        self.ctx = ctx
        self.n, self.me = ctx.n, ctx.me
        self.held = held_by(self.n, self.me)
        self.row = {k: r for r, k in enumerate(self.held)}
        self.round = start
        self.seeds = {k: sm3(b"rongxin-mpc component v1" + k.to_bytes(4, "big") + b"".join(
            ctx.my_seeds[k] if j == self.me else ctx.input_seeds[(j, k)] for j in range(self.n)))
            for k in self.held}

    def next_round(self) -> int:
        rnd = self.round
        if rnd > MAX_ROUND:
            raise PartyError(self.ctx.pid(self.me), "the protocol needs more rounds than the frame format allows")
        self.round += 1
        return rnd

    # ------------------------------------------------------------------ local operations
    def public(self, values: U64) -> ROWS:
        """A sharing of a public vector: component 0 carries it, the others are 0."""
        rows = np.zeros((len(self.held), len(values)), dtype=np.uint64)
        if 0 in self.row:
            rows[self.row[0]] = values
        return rows

    def additive(self, rows: ROWS, xor: bool) -> U64:
        """This party's additive term: the components it is the first holder of."""
        mine = [r for r, k in enumerate(self.held) if first_holder(self.n, k) == self.me]
        if not mine:
            return np.zeros(rows.shape[1], dtype=np.uint64)
        out: U64 = np.bitwise_xor.reduce(rows[mine], axis=0) if xor else rows[mine].sum(axis=0, dtype=np.uint64)
        return out

    def partial_sum(self, rows: ROWS, parties: list[int]) -> U64 | None:
        """Additive term of ``self.me`` when the secret is split among ``parties`` (arithmetic):
        each component goes to the first of ``parties`` outside it; ``None`` if ``me`` is not one."""
        if self.me not in parties:
            return None
        mine = [r for r, k in enumerate(self.held)
                if next(p for p in parties if p not in subsets(self.n)[k]) == self.me]
        out = np.zeros(rows.shape[1], dtype=np.uint64)
        for r in mine:
            out += rows[r]
        return out

    def cross(self, x: ROWS, y: ROWS) -> U64:
        """This party's XOR-additive term of ``x AND y`` (its assigned cross terms)."""
        z = np.zeros(x.shape[1], dtype=np.uint64)
        for ra, rbs in and_pairs(self.n, self.me):
            acc = y[rbs[0]] if len(rbs) == 1 else np.bitwise_xor.reduce(y[list(rbs)], axis=0)
            z ^= x[ra] & acc
        return z

    def mask(self, label: bytes, count: int, xor: bool) -> U64:
        out = np.zeros(count, dtype=np.uint64)
        for j, key in self.ctx.keys.items():
            r = prg(key, label, count)
            if xor:
                out ^= r
            elif self.me < j:
                out += r
            else:
                out -= r
        return out

    # ------------------------------------------------------------------ rounds
    async def reshare(self, term: U64, xor: bool) -> ROWS:
        """One round: a fresh replicated sharing of the sum (XOR or +) of every party's ``term``."""
        n, me, size = self.n, self.me, len(term)
        rnd = self.next_round()
        label = b"reshare %d" % rnd
        w = term ^ self.mask(label, size, True) if xor else term + self.mask(label, size, False)
        for k in self.held:
            if k not in component_owners(n) and first_holder(n, k) == me:
                free = prg(self.seeds[k], label, size)
                w = w ^ free if xor else w - free
        targets = {p for p in range(n) if p != me and p not in subsets(n)[owned_component(n, me)]}
        blob = _bytes(w)
        out = {self.ctx.pid(p): blob if p in targets else b"" for p in self.ctx.others()}
        expect = {self.ctx.pid(q): 8 * size if me not in subsets(n)[owned_component(n, q)] else 0
                  for q in self.ctx.others()}
        got = await self.ctx.net.exchange(rnd, out, expect)
        rows = np.empty((len(self.held), size), dtype=np.uint64)
        owners = component_owners(n)
        for r, k in enumerate(self.held):
            q: int | None = owners.get(k)
            if q is None:
                rows[r] = prg(self.seeds[k], label, size)
            else:
                rows[r] = w if q == me else _words(got[self.ctx.pid(q)])
        return rows

    async def and_(self, x: ROWS, y: ROWS) -> ROWS:
        """A boolean sharing of ``x AND y`` (one round)."""
        return await self.reshare(self.cross(x, y), xor=True)

    async def open_bits(self, term: np.ndarray) -> np.ndarray:
        """Open bits given as this party's XOR-additive terms (uint8 0/1 array): one round,
        each party broadcasts its packed terms masked by a pairwise sharing of zero."""
        rnd = self.next_round()
        packed = np.packbits(term.astype(np.uint8))
        label = b"open bits %d" % rnd
        words = -(-len(packed) // 8)
        mask = self.mask(label, words, True).astype("<u8").view(np.uint8)[:len(packed)]
        mine = packed ^ mask
        out = {self.ctx.pid(p): mine.tobytes() for p in self.ctx.others()}
        got = await self.ctx.net.exchange(rnd, out, {self.ctx.pid(p): len(mine) for p in self.ctx.others()})
        total = mine.copy()
        for blob in got.values():
            total ^= np.frombuffer(blob, dtype=np.uint8)
        return np.unpackbits(total, count=len(term))


def _bytes(words: U64) -> bytes:
    return words.astype("<u8", copy=False).tobytes()


def _words(blob: bytes) -> U64:
    return np.frombuffer(blob, dtype="<u8").astype(np.uint64)

