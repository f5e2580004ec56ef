"""The queries that need comparisons: ``histogram`` and ``topk`` (docs/privacy.md).

Both start like ``variance``: the parties share their vectors into a replicated sharing of the
per-id totals (round 2), then shuffle it (``shuffle``), so that everything opened afterwards
is about elements in an order no coalition of ``t`` parties knows.

- ``histogram``: for every shuffled element and every edge, the bit ``[total < e]``
  (``compare``); the parties open, per element, the bits ``[e_(i-1) <= total < e_i]`` of the
  ``m`` bins (at most one is 1): the bin of each shuffled element, i.e. the counts and nothing
  linkable to an id.
- ``topk``: unique keys ``(total - n*min) * N + (N - 1 - rank(id))`` and the ranks are shuffled
  together; a partial sample sort over the shuffled keys opens comparison outcomes between
  shuffled elements until the first ``K`` are ordered; then the ranks (or the keys, when the
  totals are asked for) of those ``K`` positions are opened.
"""

from __future__ import annotations

import itertools
from typing import Any

import numpy as np

from . import noise
from .compare import less_than
from .data import Column, Schema
from .errors import PartyError, QueryError
from .protocols import ROUND_PROTOCOL, Context, aggregate, share_input
from .replicated import ROWS, Replicated
from .shuffle import shuffle

OPS = ("histogram", "topk")
MAX_BINS = 100
BUDGET = 1 << 15  # comparisons per sorting level
MAX_PIVOTS = 255
MAX_HISTOGRAM_COMPARISONS = 4_000_000  # ids x edges: bounds the memory of one comparison batch
MAX_TOPK_IDS = 200_000


def check_query(query: dict[str, Any], schema: Schema, parties: int) -> None:
    """Refuse a malformed histogram or top-k query, or one whose values could overflow."""
    col = schema.column(query.get("column"))
    count = len(query["ids"])
    if parties * col.magnitude >= 2**61:
        raise QueryError("the totals could exceed 2^61 with these bounds and parties")
    if query["op"] == "histogram":
        bins = query.get("bins")
        if (not isinstance(bins, list) or not 2 <= len(bins) <= MAX_BINS + 1
                or not all(isinstance(b, int) and not isinstance(b, bool) for b in bins)
                or any(b >= c for b, c in itertools.pairwise(bins))):
            raise QueryError(f"bins must be 2 to {MAX_BINS + 1} strictly increasing integers")
        elements = count + noise.dummy_elements(noise.for_query(query, schema, parties), len(bins) - 1)
        if elements * len(bins) > MAX_HISTOGRAM_COMPARISONS:
            raise QueryError(f"a histogram compares at most {MAX_HISTOGRAM_COMPARISONS} ((ids + the noise's dummy "
                             f"elements) x edges) totals; this one {elements * len(bins)}")
        if set(query) - {"op", "column", "ids", "bins", "dp"}:
            raise QueryError("a histogram query has only op, column, ids, bins and dp")
        return
    if count > MAX_TOPK_IDS:
        raise QueryError(f"a top-k query covers at most {MAX_TOPK_IDS} ids")
    k = query.get("k")
    if not isinstance(k, int) or isinstance(k, bool) or not 1 <= k <= count:
        raise QueryError("k must be an integer from 1 to the number of ids")
    if not isinstance(query.get("with_totals", False), bool):
        raise QueryError("with_totals must be true or false")
    if set(query) - {"op", "column", "ids", "k", "with_totals"}:
        raise QueryError("a topk query has only op, column, ids, k and with_totals")
    if (parties * (col.hi - col.lo) + 1) * count >= 2**62:
        raise QueryError("the top-k keys (total * N + rank) could exceed 2^62 with these bounds and ids")


async def run(ctx: Context, query: dict[str, Any], x: np.ndarray, schema: Schema) -> dict[str, Any]:
    col = schema.column(query["column"])
    dp = noise.for_query(query, schema, ctx.n)  # histogram noise: dummy elements (noise.histogram_dummies)
    dummies = None if dp is None else noise.histogram_dummies(dp, ctx.me, query["bins"], ctx.n * col.lo,
                                                              ctx.n * col.hi)
    shares = await share_input(ctx, ROUND_PROTOCOL, x if dummies is None else np.concatenate([x, dummies.values]))
    rep = Replicated(ctx, ROUND_PROTOCOL + 1)
    totals = np.stack([shares[k] for k in rep.held])
    if query["op"] == "histogram":
        out = await histogram(rep, totals, col, query["bins"])
        if dummies is not None:
            out["counts"] = [c - o for c, o in zip(out["counts"], dummies.offsets, strict=True)]
        return out
    return await topk(rep, totals, col, query["ids"], query["k"], bool(query.get("with_totals", False)))


def _others(rep: Replicated) -> str:
    return ",".join(rep.ctx.pid(k) for k in rep.ctx.others())


async def histogram(rep: Replicated, totals: ROWS, col: Column, bins: list[int]) -> dict[str, Any]:
    n, size = rep.n, totals.shape[1]
    rows = await shuffle(rep, totals, 1)
    lo, hi = n * col.lo, n * col.hi + 1
    edges = [min(max(e, lo), hi) for e in [*bins[:-1], bins[-1] + 1]]
    inner = [e for e in edges if lo < e < hi]  # an edge at lo or hi has a known answer: skip it
    found = (await less_than(rep, rows, inner)).reshape(len(inner), size) if inner else None
    lt = np.zeros((len(edges), size), dtype=np.uint8)  # XOR-additive terms of [total < e_i]
    for i, e in enumerate(edges):
        if lo < e < hi:
            assert found is not None
            lt[i] = found[inner.index(e)]
        elif e == hi and rep.me == 0:
            lt[i] = 1
    in_bin = lt[1:] ^ lt[:-1]  # bin i: [e_(i-1) <= total < e_i], XOR-additive terms
    opened = (await rep.open_bits(in_bin.reshape(-1))).reshape(len(edges) - 1, size)
    if int(opened.sum(axis=0).max(initial=0)) > 1:
        raise PartyError(_others(rep), "one of these parties made an element fall in two bins")
    return {"counts": [int(c) for c in opened.sum(axis=1)]}


async def topk(rep: Replicated, totals: ROWS, col: Column, ids: list[str], k: int,
               with_totals: bool) -> dict[str, Any]:
    n, count = rep.n, totals.shape[1]
    order = sorted(range(count), key=lambda i: ids[i])
    rank = np.empty(count, dtype=np.int64)
    rank[order] = np.arange(count)
    offset = (count - 1 - rank).astype(np.uint64) - np.uint64((n * col.lo * count) % 2**64)
    keys = totals * np.uint64(count) + rep.public(offset)
    rows = await shuffle(rep, np.concatenate([keys, rep.public(rank.astype(np.uint64))], axis=1), 2)
    keys, ranks = rows[:, :count], rows[:, count:]
    top = await partial_sort(rep, keys, k)
    sorted_ids = [ids[i] for i in order]
    if with_totals:
        top_keys = keys[:, top]
        hi = (n * (col.hi - col.lo) + 1) * count - 1
        opened = await aggregate(rep.ctx, rep.next_round(), rep.additive(top_keys, xor=False), 0, hi)
        rep.next_round()
        values = [int(v) for v in opened.tolist()]
        if any(a <= b for a, b in itertools.pairwise(values)):
            raise PartyError(_others(rep), "the opened top-k keys are not in descending order")
        return {"ids": [sorted_ids[count - 1 - v % count] for v in values],
                "totals": [v // count + n * col.lo for v in values]}
    opened = await aggregate(rep.ctx, rep.next_round(), rep.additive(ranks[:, top], xor=False), 0, count - 1)
    rep.next_round()
    picked = [int(v) for v in opened.tolist()]
    if len(set(picked)) != len(picked):
        raise PartyError(_others(rep), "the opened top-k ranks repeat")
    return {"ids": [sorted_ids[v] for v in picked]}


async def partial_sort(rep: Replicated, keys: ROWS, k: int) -> list[int]:
    """Positions (in the shuffled order) of the ``k`` largest keys, largest first: a sample sort
    that only refines the segments overlapping the first ``k`` places (see docs/privacy.md)."""
    segments: list[list[int]] = [list(range(keys.shape[1]))]
    while True:
        segments, active = _active(segments, k)
        if not active:
            return [seg[0] for seg in segments[:k]]
        total = sum(len(segments[s]) for s in active)
        pivots = max(1, min(MAX_PIVOTS, BUDGET // total))
        plan = [_plan(segments[s], pivots) for s in active]
        a = np.array([i for pa, _ in plan for i in pa], dtype=np.int64)
        b = np.array([i for _, pb in plan for i in pb], dtype=np.int64)
        bits = await less_than(rep, keys[:, a] - keys[:, b])
        opened = await rep.open_bits(bits)
        at = 0
        refined: dict[int, list[list[int]]] = {}
        for s in active:
            seg = segments[s]
            used = len(_plan(seg, pivots)[0])
            refined[s] = _split(seg, min(pivots, len(seg) - 1), opened[at:at + used], rep)
            at += used
        segments = [piece for s, seg in enumerate(segments) for piece in refined.get(s, [seg])]


def _active(segments: list[list[int]], k: int) -> tuple[list[list[int]], list[int]]:
    """Keep the segments that start before place ``k``; the active ones still need ordering."""
    kept: list[list[int]] = []
    active: list[int] = []
    start = 0
    for seg in segments:
        if start >= k:
            break
        if len(seg) > 1:
            active.append(len(kept))
        kept.append(seg)
        start += len(seg)
    return kept, active


def _plan(seg: list[int], pivots: int) -> tuple[list[int], list[int]]:
    """Comparisons ``[key_a < key_b]`` of a segment: every non-pivot with every pivot (row-major),
    then the pivot pairs ``i < j``. Pivots are the segment's first elements in shuffled order."""
    p = min(pivots, len(seg) - 1)
    piv, rest = seg[:p], seg[p:]
    a = [r for r in rest for _ in piv] + [piv[i] for i in range(p) for j in range(i + 1, p)]
    b = [q for _ in rest for q in piv] + [piv[j] for i in range(p) for j in range(i + 1, p)]
    return a, b


def _split(seg: list[int], p: int, bits: np.ndarray, rep: Replicated) -> list[list[int]]:
    """Order a segment's pivots and put every other element between them (descending)."""
    piv, rest = seg[:p], seg[p:]
    pair_bits = bits[len(rest) * p:]
    below = np.zeros(p, dtype=np.int64)  # pivots smaller than pivot i
    at = 0
    for i in range(p):
        for j in range(i + 1, p):
            if pair_bits[at]:  # key_i < key_j
                below[j] += 1
            else:
                below[i] += 1
            at += 1
    if sorted(below.tolist()) != list(range(p)):
        raise PartyError(_others(rep), "the opened comparisons of the pivots are not a total order")
    desc = np.argsort(-below, kind="stable")  # pivot indices, largest first
    table = bits[:len(rest) * p].reshape(len(rest), p)[:, desc].astype(np.int64)
    above = table.sum(axis=1)  # pivots larger than the element
    if len(rest) and np.any(np.diff(table, axis=1) > 0):
        raise PartyError(_others(rep), "the opened comparisons with the pivots are inconsistent")
    out: list[list[int]] = []
    for g in range(p + 1):
        bucket = [r for r, c in zip(rest, above.tolist(), strict=True) if c == g]
        if bucket:
            out.append(bucket)
        if g < p:
            out.append([piv[int(desc[g])]])
    return out
