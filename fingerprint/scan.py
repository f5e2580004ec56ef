"""The inverted file's cell scan, compiled: for each query descriptor, its candidates'
Hamming distances and the nearest of its own and of another work, in one pass.

The same result as a dozen numpy passes (gather, XOR, popcount, per-cell minima), at about
7 ns per candidate instead of ~100–300 ns: at 10⁶ registered pictures a screenshot-sized
query reads ~6 × 10⁶ candidates (``docs/fingerprints.md``, part search at scale). Compiled
by Numba (LLVM) on first use; ``cache=True`` keeps the machine code on disk (next to this
module, or in the user's cache folder when that is read-only), so later processes load it
in milliseconds.
"""

from __future__ import annotations

import itertools
from typing import Any

import numba
import numpy as np
import numpy.typing as npt
from numba import types
from numba.extending import intrinsic

from . import threads
from .errors import IndexCorrupt

I64 = npt.NDArray[np.int64]
U8 = npt.NDArray[np.uint8]
SPLIT_PAIRS = 200_000  # a scan of at least this many candidates is shared among threads.THREADS


def _ctpop(typingctx: Any, x: Any) -> Any:
    """LLVM's ctpop on a uint64: one POPCNT instruction."""
    def codegen(context: Any, builder: Any, signature: Any, args: Any) -> Any:
        return builder.ctpop(args[0])
    return types.uint64(types.uint64), codegen


_popcount: Any = intrinsic(_ctpop)


def _scan(q64: Any, lo: Any, n: Any, wids: Any, d64: Any, dead: Any, none: int) -> Any:  # pragma: no cover
    m = lo.size
    d1 = np.empty(m, np.int64)
    w1 = np.empty(m, np.int64)
    d2 = np.empty(m, np.int64)
    nd = dead.size
    for i in range(m):
        a0, a1, a2, a3 = q64[i, 0], q64[i, 1], q64[i, 2], q64[i, 3]
        b1: Any = none
        bw: Any = -1
        b2: Any = none
        for j in range(lo[i], lo[i] + n[i]):
            w = np.int64(wids[j])
            if w < nd and dead[w]:
                continue
            d = np.int64(_popcount(d64[j, 0] ^ a0) + _popcount(d64[j, 1] ^ a1)
                         + _popcount(d64[j, 2] ^ a2) + _popcount(d64[j, 3] ^ a3))
            if d < b1:  # the first nearest candidate wins a tie, as the numpy passes did
                if w != bw:
                    b2 = b1
                b1, bw = d, w
            elif w != bw and d < b2:
                b2 = d
        d1[i], w1[i], d2[i] = b1, bw, b2
    return d1, w1, d2


def _knn(qt: Any, d64: Any, k: int, none: int) -> Any:  # pragma: no cover - compiled
    nq = qt.shape[1]
    bd = np.full((nq, k), none, np.int64)
    bi = np.full((nq, k), -1, np.int64)
    lim = np.full(nq, none, np.int64)  # a row enters a query's list when nearer than this
    dist = np.empty(nq, np.int64)
    q0, q1, q2, q3 = qt[0], qt[1], qt[2], qt[3]
    for j in range(d64.shape[0]):
        b0, b1, b2, b3 = d64[j, 0], d64[j, 1], d64[j, 2], d64[j, 3]
        near = False
        for i in range(nq):  # every query against this row: one vectorised pass
            d = np.int64(_popcount(q0[i] ^ b0) + _popcount(q1[i] ^ b1)
                         + _popcount(q2[i] ^ b2) + _popcount(q3[i] ^ b3))
            dist[i] = d
            near |= d < lim[i]
        if not near:
            continue
        for i in range(nq):
            d = dist[i]
            if d >= lim[i]:
                continue
            p = k - 1  # after every listed row at distance <= d: the earlier row first at a tie
            while p > 0 and bd[i, p - 1] > d:
                bd[i, p] = bd[i, p - 1]
                bi[i, p] = bi[i, p - 1]
                p -= 1
            bd[i, p] = d
            bi[i, p] = j
            if bi[i, k - 1] >= 0:
                lim[i] = bd[i, k - 1]
    return bd, bi


def _within(qt: Any, d64: Any, radius: int) -> Any:  # pragma: no cover - compiled
    nq = qt.shape[1]
    cap = 1024
    rows = np.empty(cap, np.int64)
    ids = np.empty(cap, np.int64)
    dists = np.empty(cap, np.int64)
    n = 0
    dist = np.empty(nq, np.int64)
    q0, q1, q2, q3 = qt[0], qt[1], qt[2], qt[3]
    for j in range(d64.shape[0]):
        b0, b1, b2, b3 = d64[j, 0], d64[j, 1], d64[j, 2], d64[j, 3]
        near: Any = False
        for i in range(nq):
            d = np.int64(_popcount(q0[i] ^ b0) + _popcount(q1[i] ^ b1)
                         + _popcount(q2[i] ^ b2) + _popcount(q3[i] ^ b3))
            dist[i] = d
            near |= d <= radius
        if not near:
            continue
        for i in range(nq):
            if dist[i] <= radius:
                if n == cap:  # grow
                    cap *= 2
                    r2 = np.empty(cap, np.int64)
                    i2 = np.empty(cap, np.int64)
                    d2 = np.empty(cap, np.int64)
                    r2[:n], i2[:n], d2[:n] = rows[:n], ids[:n], dists[:n]
                    rows, ids, dists = r2, i2, d2
                rows[n], ids[n], dists[n] = i, j, dist[i]
                n += 1
    return rows[:n].copy(), ids[:n].copy(), dists[:n].copy()


def compiled(fn: Any) -> Any:
    """``fn`` compiled by Numba without the GIL, its machine code cached on disk; where no cache
    folder can be written (a read-only install and no home), compiled once per process."""
    try:
        return numba.njit(cache=True, nogil=True, boundscheck=False)(fn)
    except RuntimeError:
        return numba.njit(nogil=True, boundscheck=False)(fn)


_kernel: Any = compiled(_scan)
_knn_kernel: Any = compiled(_knn)
_within_kernel: Any = compiled(_within)
SPLIT_CODES = 10_000_000  # a code search of at least this many pairs is shared among threads.THREADS


def _frozen(a: Any, dtype: Any) -> Any:
    """``a`` as a read-only C-contiguous array of ``dtype`` (no copy when it is one already):
    every call then has the same argument types, so the kernel is compiled (and cached) once."""
    v = np.ascontiguousarray(a, dtype=dtype).view()
    v.flags.writeable = False
    return v


def nearest_in_cells(qd: U8, lo: I64, n: I64, wids: Any, desc: Any, masked: I64 | None,
                     none: int) -> tuple[I64, I64, I64]:
    """For each query descriptor ``qd[i]`` (32 bytes) with candidates ``lo[i]:lo[i] + n[i]``
    of (``wids``, ``desc``): the nearest distance, its work (the first such candidate), and
    the nearest distance of any other work; ``none`` and work -1 where there is no
    candidate. Candidates of the works in ``masked`` are skipped."""
    dead = np.zeros(0, np.bool_)
    if masked is not None and masked.size:
        dead = np.zeros(int(masked.max()) + 1, np.bool_)
        dead[masked] = True
    lo, n = _frozen(lo, np.int64), _frozen(n, np.int64)
    wids = _frozen(wids, np.int32)
    if desc.ndim != 2 or desc.shape[1] != 32 or desc.dtype != np.uint8 or desc.shape[0] < wids.shape[0]:
        raise IndexCorrupt(f"descriptors of shape {desc.shape} ({desc.dtype}) for {wids.shape[0]} postings")
    if n.size and (int(lo.min()) < 0 or int((lo + n).max()) > wids.shape[0]):
        raise IndexCorrupt(f"a word's postings lie outside the {wids.shape[0]} postings (offsets corrupt)")
    d64 = np.asarray(desc).view(np.uint64)
    if not d64.flags.aligned:  # a .npy file's data starts 64-byte aligned; anything else is not one
        raise IndexCorrupt("descriptors are not 8-byte aligned")
    d64 = _frozen(d64, np.uint64)
    q64 = _frozen(np.ascontiguousarray(qd, dtype=np.uint8).view(np.uint64), np.uint64)
    dead = _frozen(dead, np.bool_)
    total = int(n.sum())
    parts = threads.shared() if total >= SPLIT_PAIRS else 1
    # query rows cut where the candidates before them reach k / parts of the total
    cuts = [0, *np.searchsorted(np.cumsum(n), [total * k // parts for k in range(1, parts)]).tolist(), n.size]
    runs = [(q64[a:b], lo[a:b], n[a:b], wids, d64, dead, int(none)) for a, b in itertools.pairwise(cuts)]
    if len(runs) == 1:
        out = [_kernel(*runs[0])]
    else:  # the kernel releases the GIL: the halves run on separate cores
        out = list(threads.pool().map(lambda r: _kernel(*r), runs))
    return (np.concatenate([o[0] for o in out]), np.concatenate([o[1] for o in out]),
            np.concatenate([o[2] for o in out]))


def _codes_args(queries: U8, codes64: Any) -> tuple[Any, Any]:
    """The queries transposed (4 × nq uint64) and the codes (n × 4 uint64), checked."""
    q = np.asarray(queries)
    if q.ndim != 2 or q.shape[1] != 32 or q.dtype != np.uint8:
        raise ValueError(f"queries must be rows of 32 bytes, not {q.shape} ({q.dtype})")
    d64 = np.asarray(codes64)
    if d64.ndim != 2 or d64.shape[1] != 4 or d64.dtype != np.uint64:
        raise ValueError(f"codes must be rows of 4 uint64 (256 bits), not {d64.shape} ({d64.dtype})")
    if not d64.flags.aligned:  # the kernel would read it as aligned
        d64 = d64.copy()
    qt = np.ascontiguousarray(np.ascontiguousarray(q).view(np.uint64).T)
    return qt, _frozen(d64, np.uint64)


def _query_parts(nq: int, n: int) -> list[tuple[int, int]]:
    parts = threads.shared() if nq >= 2 and nq * n >= SPLIT_CODES else 1
    return list(itertools.pairwise([nq * p // parts for p in range(parts + 1)]))


def knn(queries: U8, codes64: Any, k: int) -> tuple[I64, I64]:
    """The ``k`` nearest of ``codes64`` (n × 4 uint64: 256-bit codes) to each row of
    ``queries`` (rows of 32 bytes) by Hamming distance: (distances, rows), each nq × k,
    nearest first, the lower row first at equal distance — what FAISS's
    ``IndexBinaryFlat.search`` returns (tested), about four times faster (every query against
    one indexed code at a time, in one vectorised pass). ``k`` must be 1 to n. At least
    ``SPLIT_CODES`` pairs are cut by query rows among ``threads.shared()`` threads."""
    qt, d64 = _codes_args(queries, codes64)
    if not 0 < k <= d64.shape[0]:
        raise ValueError(f"k = {k} nearest of {d64.shape[0]} codes")
    runs = [(_frozen(qt[:, a:b], np.uint64), d64, int(k), 1 << 20) for a, b in _query_parts(qt.shape[1], d64.shape[0])]
    if len(runs) == 1:
        out = [_knn_kernel(*runs[0])]
    else:
        out = list(threads.pool().map(lambda r: _knn_kernel(*r), runs))
    return np.concatenate([o[0] for o in out]), np.concatenate([o[1] for o in out])


def within(queries: U8, codes64: Any, radius: int) -> tuple[I64, I64, I64]:
    """Every code of ``codes64`` within ``radius`` bits of each row of ``queries``: (query
    rows, code rows, distances), by query row, then code row — what FAISS's
    ``IndexBinaryFlat.range_search`` with ``radius + 1`` returns (tested). Shared among threads
    as :func:`knn` is."""
    qt, d64 = _codes_args(queries, codes64)
    parts = _query_parts(qt.shape[1], d64.shape[0])
    runs = [(_frozen(qt[:, a:b], np.uint64), d64, int(radius)) for a, b in parts]
    if len(runs) == 1:
        out = [_within_kernel(*runs[0])]
    else:
        out = list(threads.pool().map(lambda r: _within_kernel(*r), runs))
    rows = np.concatenate([o[0] + a for o, (a, _) in zip(out, parts, strict=True)])
    ids = np.concatenate([o[1] for o in out])
    dist = np.concatenate([o[2] for o in out])
    order = np.lexsort((ids, rows))  # the kernel finds them code by code
    return rows[order], ids[order], dist[order]
