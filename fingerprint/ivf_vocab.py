"""The inverted file's vocabulary (:mod:`fingerprint.ivf`): a two-level tree of binary
k-majority centroids over 256-bit ORB descriptors, and the FAISS flat indexes that assign a
descriptor to its word."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

U8 = npt.NDArray[np.uint8]
I64 = npt.NDArray[np.int64]

TOP_WORDS = 256
LEAF_MAX = 4096
TOP_SAMPLE = 1 << 18
TRAIN_ITERS = 6
SPLIT_WORDS = 512  # a query of at least this many descriptors is quantised on threads.THREADS threads


def _flat(codes: U8) -> Any:
    import faiss

    faiss.omp_set_num_threads(1)
    idx = faiss.IndexBinaryFlat(256)
    idx.add(np.ascontiguousarray(codes))
    return idx


def _nearest(idx: Any, desc: U8) -> I64:
    _, lab = idx.search(np.ascontiguousarray(desc), 1)
    return np.asarray(lab, np.int64).reshape(-1)


def _kmajority(sample: U8, k: int, rng: np.random.Generator) -> U8:
    """``k`` binary centroids of ``sample``: k-majority (Lloyd's iteration with Hamming
    assignment and bitwise-majority update), started from ``k`` distinct sample rows."""
    uniq = np.unique(sample, axis=0)
    k = min(k, uniq.shape[0])
    cent = uniq[rng.choice(uniq.shape[0], k, replace=False)]
    if k <= 1:
        return np.asarray(cent, np.uint8)
    bits = np.unpackbits(sample, axis=1)
    for _ in range(TRAIN_ITERS):
        lab = _nearest(_flat(cent), sample)
        order = np.argsort(lab, kind="stable")
        used, starts = np.unique(lab[order], return_index=True)
        sums = np.add.reduceat(bits[order], starts, axis=0, dtype=np.int32)
        counts = np.diff(np.append(starts, lab.size))
        cent[used] = np.packbits((2 * sums > counts[:, None]).astype(np.uint8), axis=1)
    return np.asarray(cent, np.uint8)


class Vocabulary:
    """The two-level word tree: ``top`` (K × 32 bytes), ``leaves`` (W × 32, grouped by top
    word) and ``start`` (K + 1): the leaves of top word c are ``start[c]:start[c + 1]``."""

    def __init__(self, top: U8, leaves: U8, start: I64, trained_on: int) -> None:
        self.top, self.leaves, self.start, self.trained_on = top, leaves, start, trained_on
        self._top_idx: Any = None
        self._leaf_idx: dict[int, Any] = {}

    @property
    def size(self) -> int:
        return int(self.leaves.shape[0])

    @staticmethod
    def train(sample: U8, n_words: int, sized_for: int, seed: int = 0) -> Vocabulary:
        """About ``n_words`` words from ``sample``: min(``TOP_WORDS``, n_words) top words, and
        under each a share of the rest proportional to its share of the sample."""
        rng = np.random.default_rng(seed)
        top = _kmajority(sample[rng.permutation(sample.shape[0])[:TOP_SAMPLE]], min(TOP_WORDS, n_words), rng)
        lab = _nearest(_flat(top), sample)
        leaves, start = [], [0]
        for c in range(top.shape[0]):
            members = sample[lab == c]
            k = max(1, min(LEAF_MAX, members.shape[0], round(n_words * members.shape[0] / max(sample.shape[0], 1))))
            leaf = _kmajority(members, k, rng) if members.shape[0] and k > 1 else top[c:c + 1]
            leaves.append(leaf)
            start.append(start[-1] + leaf.shape[0])
        return Vocabulary(top, np.concatenate(leaves), np.array(start, np.int64), sized_for)

    def words(self, desc: U8) -> I64:
        """Each descriptor's word: its nearest leaf under its nearest top centroid. At least
        ``SPLIT_WORDS`` descriptors are cut in ``threads.shared()`` parts, quantised side by
        side (FAISS releases the GIL): the same words."""
        from . import threads

        if self._top_idx is None:
            self._top_idx = _flat(self.top)
        parts = threads.shared() if desc.shape[0] >= SPLIT_WORDS else 1
        if parts == 1:
            return self._words(desc)
        cuts = [desc.shape[0] * k // parts for k in range(parts + 1)]
        return np.concatenate(list(threads.pool().map(lambda k: self._words(desc[cuts[k]:cuts[k + 1]]), range(parts))))

    def _words(self, desc: U8) -> I64:
        import faiss

        out = np.zeros(desc.shape[0], np.int64)
        if desc.shape[0] == 0:
            return out
        faiss.omp_set_num_threads(1)  # OpenMP's setting is per thread: this one may be a pool thread
        lab = _nearest(self._top_idx, desc)
        order = np.argsort(lab, kind="stable")
        used, first = np.unique(lab[order], return_index=True)
        for c, lo, hi in zip(used.tolist(), first.tolist(), np.append(first[1:], lab.size).tolist(), strict=True):
            idx = self._leaf_idx.get(c)
            if idx is None:  # two threads may both build it: the same index, either one kept
                idx = self._leaf_idx[c] = _flat(self.leaves[self.start[c]:self.start[c + 1]])
            rows = order[lo:hi]
            out[rows] = self.start[c] + _nearest(idx, desc[rows])
        return out

    def save(self, folder: Path) -> None:
        np.savez(folder / "vocab.npz", top=self.top, leaves=self.leaves, start=self.start,
                 trained_on=np.int64(self.trained_on))

    @staticmethod
    def load(folder: Path) -> Vocabulary:
        with np.load(folder / "vocab.npz") as z:
            return Vocabulary(z["top"], z["leaves"], z["start"], int(z["trained_on"]))
