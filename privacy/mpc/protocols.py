"""The protocols behind each query. Notation: ``n`` parties, ``t = (n-1)//2``, ``N`` ids,
``x_i`` party ``i``'s vector (its column's value per id, 0 where it has no row).

- ``aggregate`` (sum, count, mean, shares): each party masks its vector with its part of a
  pseudo-random zero sharing and the parties reduce-scatter (party ``k`` adds up everybody's
  masked slice ``k``) then all-gather the slice totals. Only the totals are revealed: a masked
  vector is uniformly random to any coalition missing one of its pairwise keys.
- ``variance``: each party shares its vector in replicated form (one explicit share, the others
  from seeds sent in the set-up round); the parties add the shares into a sharing of the
  totals, compute the additive shares of ``sum_id total_id`` and ``sum_id total_id^2`` locally
  (cross terms by the parties outside both subsets) and aggregate these two numbers only.
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction
from typing import Any

import numpy as np

from . import noise
from .data import Schema
from .errors import PartyError, QueryError
from .sharing import U64, designated, held_by, prg, product_owner, subsets, to_ints, zero_mask
from .transport import Network

ROUND_PROTOCOL = 2
INPUT_LABEL = b"input"


@dataclass
class Context:
    """What a protocol needs: the network, this party's index, its pairwise keys and input seeds."""

    net: Network
    n: int
    me: int
    keys: dict[int, bytes]  # peer index -> pairwise key
    input_seeds: dict[tuple[int, int], bytes]  # (owner index, share index) -> seed
    my_seeds: dict[int, bytes]  # share index -> seed of my own input's share

    def pid(self, k: int) -> str:
        return self.net.parties[k].id

    def others(self) -> list[int]:
        return [k for k in range(self.n) if k != self.me]


def prepare(query: dict[str, Any], data: dict[str, dict[str, int]]) -> U64:
    """This party's input vector for the query (computed before any link is opened)."""
    return column_vector(data, query["ids"], None if query["op"] == "count" else query["column"])


def check_range(query: dict[str, Any], schema: Schema, n: int) -> None:
    """Refuse a query whose revealed sums could leave the signed 64-bit range (the shares are
    added modulo 2^64: a wrapped total would come back as a wrong, even negative, number): per
    id ``n·max|bound|`` for sum, ``n·N·max|bound|`` for the one sum of mean and shares, the
    sum of squared totals for variance and stats."""
    op, count = query["op"], len(query["ids"])
    if op not in ("sum", "mean", "shares", "variance", "stats"):
        return
    mag = schema.column(query["column"]).magnitude
    if op == "sum" and n * mag >= 2**63:
        raise QueryError("a per-id total could exceed 2^63 with these bounds and parties")
    if op in ("mean", "shares") and n * count * mag >= 2**63:
        raise QueryError("the sum over every id could exceed 2^63 with these bounds, ids and parties")
    if op in ("variance", "stats") and count * (n * mag) ** 2 >= 2**63:
        raise QueryError("the sum of squared totals could exceed 2^63 with these bounds and ids")


async def run(ctx: Context, query: dict[str, Any], x: U64, schema: Schema) -> dict[str, Any]:
    op = query["op"]
    ids: list[str] = query["ids"]
    dp = noise.for_query(query, schema, ctx.n)  # differential privacy: None unless the query has "dp"
    if op == "count":
        v, lo, hi = noise.apply(dp, x, 0, ctx.n)
        totals = await aggregate(ctx, ROUND_PROTOCOL, v, lo, hi)
        return {"totals": totals.view(np.int64) if lo < 0 else totals}
    col = schema.column(query["column"])
    n, count = ctx.n, len(ids)
    if op == "sum":
        v, lo, hi = noise.apply(dp, x, n * col.lo, n * col.hi)
        totals = await aggregate(ctx, ROUND_PROTOCOL, v, lo, hi)
        return {"totals": totals.view(np.int64) if lo < 0 else totals}  # formatted by Outputs
    if op == "mean":
        v, lo, hi = noise.apply(dp, _sum(x), n * count * col.lo, n * count * col.hi)
        s = await aggregate(ctx, ROUND_PROTOCOL, v, lo, hi)
        return {"mean": float(Fraction(to_ints(s, lo < 0)[0], count))}
    if op == "shares":
        own = int(x.view(np.int64).sum())
        s = await aggregate(ctx, ROUND_PROTOCOL, _sum(x), n * count * col.lo, n * count * col.hi)
        pool = to_ints(s, col.lo < 0)[0]
        return {"pool": pool, "share": float(Fraction(own, pool)) if pool else 0.0}
    if count * (n * col.magnitude) ** 2 >= 2**63:
        raise QueryError("the sum of squared totals could exceed 2^63 with these bounds and ids")
    total, squares = await sum_and_squares(ctx, x, col.lo, col.hi)
    mean = Fraction(total, count)
    out = {"variance": float(Fraction(squares, count) - mean * mean)}
    if op == "stats":
        out["mean"] = float(mean)
    return out


def _sum(x: U64) -> U64:
    return np.array([x.sum(dtype=np.uint64)], dtype=np.uint64)


async def aggregate(ctx: Context, rnd: int, vec: U64, lo: int, hi: int) -> U64:
    """Reveal ``sum_i vec_i`` (uses rounds ``rnd`` and ``rnd + 1``); every revealed element must
    lie in ``[lo, hi]`` (read as signed when ``lo < 0``), else the party that published it is named."""
    n, me, size = ctx.n, ctx.me, len(vec)
    bounds = [k * size // n for k in range(n + 1)]
    y = vec + zero_mask(me, ctx.keys, b"aggregate %d" % rnd, size)
    out = {ctx.pid(k): _bytes(y[bounds[k]:bounds[k + 1]]) for k in ctx.others()}
    mine = 8 * (bounds[me + 1] - bounds[me])
    got = await ctx.net.exchange(rnd, out, {ctx.pid(k): mine for k in ctx.others()})
    part = y[bounds[me]:bounds[me + 1]].copy()
    for blob in got.values():
        part += _words(blob)
    if not _in_range(part, lo, hi):
        raise PartyError(",".join(ctx.pid(k) for k in ctx.others()),
                         "one of these parties sent shares whose totals are out of range")
    expect = {ctx.pid(k): 8 * (bounds[k + 1] - bounds[k]) for k in ctx.others()}
    got = await ctx.net.exchange(rnd + 1, {ctx.pid(k): _bytes(part) for k in ctx.others()}, expect)
    pieces = []
    for k in range(n):
        piece = part if k == me else _words(got[ctx.pid(k)])
        if not _in_range(piece, lo, hi):
            raise PartyError(ctx.pid(k), "published totals outside the range the schema allows")
        pieces.append(piece)
    return np.concatenate(pieces)


async def share_input(ctx: Context, rnd: int, x: U64) -> dict[int, U64]:
    """Replicated sharing of the sum of all parties' vectors: share index -> this party's share."""
    n, me, size = ctx.n, ctx.me, len(x)
    subs = subsets(n)
    mine = designated(n, me)
    explicit = x.copy()
    for k in range(len(subs)):
        if k != mine:
            explicit -= prg(ctx.my_seeds[k], INPUT_LABEL, size)
    out = {ctx.pid(j): _bytes(explicit) for j in ctx.others() if j not in subs[mine]}
    senders = [j for j in ctx.others() if me not in subs[designated(n, j)]]
    got = await ctx.net.exchange(rnd, out, {ctx.pid(j): 8 * size for j in senders})
    shares: dict[int, U64] = {}
    for k in held_by(n, me):
        acc = explicit.copy() if k == mine else prg(ctx.my_seeds[k], INPUT_LABEL, size).copy()
        for j in ctx.others():
            if k == designated(n, j):
                acc += _words(got[ctx.pid(j)])
            else:
                acc += prg(ctx.input_seeds[(j, k)], INPUT_LABEL, size)
        shares[k] = acc
    return shares


async def sum_and_squares(ctx: Context, x: U64, lo: int, hi: int) -> tuple[int, int]:
    """``(sum_id total_id, sum_id total_id^2)`` and nothing else (rounds 2 to 4)."""
    n, me, count = ctx.n, ctx.me, len(x)
    shares = await share_input(ctx, ROUND_PROTOCOL, x)
    total = squares = 0  # additive shares, kept as Python ints modulo 2^64
    held = held_by(n, me)
    for k in held:
        holders = [p for p in range(n) if p not in subsets(n)[k]]
        if holders[k % len(holders)] == me:
            total += int(shares[k].sum(dtype=np.uint64))
    for a in held:
        for b in held:
            if a <= b and product_owner(n, a, b) == me:
                squares += int(np.dot(shares[a], shares[b])) * (1 if a == b else 2)
    z = np.array([total % 2**64, squares % 2**64], dtype=np.uint64)
    top = n * count * max(abs(lo), abs(hi))
    r = await aggregate(ctx, ROUND_PROTOCOL + 1, z, -top if lo < 0 else 0, max(top, count * (n * max(abs(lo), abs(hi))) ** 2))
    total, squares = to_ints(r, lo < 0)
    return total, squares


def column_vector(data: dict[str, dict[str, int]], ids: list[str], column: str | None) -> U64:
    """This party's values for ``ids`` (missing ids count 0; ``column`` None: 1 where the id is present)."""
    if column is None:
        vals = [1 if cid in data else 0 for cid in ids]
    else:
        vals = [data[cid].get(column, 0) if cid in data else 0 for cid in ids]
    return np.array(vals, dtype=np.int64).view(np.uint64)


def _bytes(words: U64) -> bytes:
    return words.astype("<u8", copy=False).tobytes()


def _words(blob: bytes) -> U64:
    return np.frombuffer(blob, dtype="<u8").astype(np.uint64)


def _in_range(words: U64, lo: int, hi: int) -> bool:
    if not len(words):
        return True
    view = words.view(np.int64) if lo < 0 else words
    return bool(int(view.min()) >= lo and int(view.max()) <= hi)
