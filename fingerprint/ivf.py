"""The disk-based inverted file that finds candidate works for ORB descriptors at any scale.

A flat scan compares every query descriptor with every registered one: ~1.1 ns per pair on
one core, so a part-search query (~8 000 descriptors) costs ~3.5 s per million registered
descriptors, i.e. per 2 500 pictures. Past ``IVF_MIN_DESCRIPTORS`` the index instead
quantises descriptors into binary *visual words* and keeps, per word, the sorted list of works
holding it:

* **vocabulary**: a two-level tree of k-majority centroids (256 top words, then up to
  ``LEAF_MAX`` leaves under each, one leaf per ``LEAF_SHARE`` training descriptors), trained on
  a sample of the registered descriptors (at most ``TRAIN_SAMPLE``); a descriptor's word is
  its nearest leaf under its nearest top centroid (256 + at most 4 096 Hamming comparisons);
* **postings**: (word, work) pairs, each once, sorted: ``offsets`` (words + 1, int64) and
  ``wids`` (int32), two ``.npy`` files read memory-mapped, so a query touches only the
  postings of its own words and resident memory stays small whatever the index's size;
* **votes**: each distinct query word adds its inverse document frequency
  ``log(works / works holding it)`` to every work in its postings; words held by more than
  ``STOP_SHARE`` of the works (text corners, flat-colour corners) are skipped. The
  ``SHORTLIST`` works with the highest sums that share at least ``MIN_WORDS`` words with the
  query are returned with the number of query words they share; they are verified
  geometrically as before (:mod:`fingerprint.parts`).

The SQLite ``orb`` table stays the source of truth: the inverted file is built from it into a
folder ``orbivf-<n>`` named by a pointer file ``orbivf.json`` written atomically, so a
half-written build is never read. Works registered after a build (``wid`` above the build's
``max_wid``) are read from SQLite and quantised once per process; removed works are dropped
from the shortlist. The file is rebuilt when the works added since exceed ``REBUILD_SHARE``
of those it holds, and re-trained when the descriptors exceed ``RETRAIN_GROWTH`` times the
number the vocabulary was trained with. Figures: ``docs/fingerprints.md`` (part search at
scale).
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import sqlite3
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

U8 = npt.NDArray[np.uint8]
I64 = npt.NDArray[np.int64]
I32 = npt.NDArray[np.int32]

IVF_MIN_DESCRIPTORS = 100_000  # below this (~250 pictures) the flat scan is used
TOP_WORDS = 256
LEAF_MAX = 4096
CELL = 128  # the vocabulary has one word per this many registered descriptors
TRAIN_SAMPLE = 1 << 22
TOP_SAMPLE = 1 << 18
TRAIN_ITERS = 6
SHORTLIST = 8
REBUILD_SHARE = 0.2
RETRAIN_GROWTH = 8
BUILD_CHUNK = 1 << 20
NO_OTHER = 1 << 20
POINTER = "orbivf.json"


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
        """Each descriptor's word: its nearest leaf under its nearest top centroid."""
        out = np.zeros(desc.shape[0], np.int64)
        if desc.shape[0] == 0:
            return out
        if self._top_idx is None:
            self._top_idx = _flat(self.top)
        lab = _nearest(self._top_idx, desc)
        order = np.argsort(lab, kind="stable")
        used, first = np.unique(lab[order], return_index=True)
        for c, lo, hi in zip(used.tolist(), first.tolist(), np.append(first[1:], lab.size).tolist(), strict=True):
            idx = self._leaf_idx.get(c)
            if idx is None:
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


def _cells(qd: U8, lo: I64, n: I64, wids: Any, desc: Any) -> tuple[I64, I64, I64]:
    """For each query descriptor with candidates ``lo[i]:lo[i] + n[i]`` (n > 0) in
    (``wids``, ``desc``): the nearest distance, its work, and the nearest distance of any
    other work (``NO_OTHER`` when there is none)."""
    starts = np.concatenate([[0], np.cumsum(n)[:-1]]).astype(np.int64)
    ii = np.repeat(lo - starts, n) + np.arange(int(n.sum()))
    qi = np.repeat(np.arange(n.size), n)
    cw = np.asarray(wids[ii], np.int64)
    dist = np.bitwise_count(np.asarray(desc[ii]) ^ qd[qi]).sum(axis=1, dtype=np.int64)
    d1 = np.minimum.reduceat(dist, starts)
    hit = np.flatnonzero(dist == d1[qi])
    w1 = cw[hit[np.searchsorted(hit, starts)]]
    d2 = np.minimum.reduceat(np.where(cw != w1[qi], dist, NO_OTHER), starts)
    return d1, w1, d2


class OrbInvertedFile:
    """The inverted file of one index folder (see the module doc); ``db`` is the index's
    SQLite connection (tables ``works`` and ``orb``)."""

    def __init__(self, db: sqlite3.Connection, folder: Path) -> None:
        self.db, self.folder = db, folder
        self.build_id: str | None = None
        self.vocab: Vocabulary | None = None
        self.offsets: Any = np.zeros(1, np.int64)
        self.wids: Any = np.zeros(0, np.int32)
        self.desc: Any = np.zeros((0, 32), np.uint8)
        self.max_wid = self.n_works = 0
        self._delta: tuple[int, I64, I64, U8] = (0, np.zeros(0, np.int64), np.zeros(0, np.int64),
                                                 np.zeros((0, 32), np.uint8))

    # -- state ----------------------------------------------------------------------------------
    def _pointer(self) -> dict[str, Any] | None:
        try:
            with open(self.folder / POINTER, encoding="utf-8") as fh:
                meta = json.load(fh)
            return meta if isinstance(meta, dict) else None
        except (OSError, ValueError):
            return None

    def active(self, total_descriptors: int | None) -> bool:
        """Whether votes come from the inverted file: it exists, or the index holds at least
        ``IVF_MIN_DESCRIPTORS`` descriptors (``total_descriptors``; None: not counted)."""
        if self._pointer() is not None:
            return True
        return total_descriptors is not None and total_descriptors >= IVF_MIN_DESCRIPTORS

    def _load(self) -> bool:
        meta = self._pointer()
        if meta is None:
            return False
        if meta.get("build") == self.build_id:
            return True
        sub = self.folder / f"orbivf-{meta['build']}"
        try:
            self.vocab = Vocabulary.load(sub)
            self.offsets = np.load(sub / "offsets.npy", mmap_mode="r")
            self.wids = np.load(sub / "wids.npy", mmap_mode="r")
            self.desc = np.load(sub / "desc.npy", mmap_mode="r")
        except (OSError, ValueError, KeyError):
            return False
        self.build_id = str(meta["build"])
        self.max_wid, self.n_works = int(meta["max_wid"]), int(meta["works"])
        self._delta = (self.max_wid, np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros((0, 32), np.uint8))
        return True

    def _stale(self) -> bool:
        top = int(self.db.execute("SELECT COALESCE(MAX(wid), 0) FROM orb").fetchone()[0])
        if top < self.max_wid:
            return True  # the database was replaced under the file
        if top == self._delta[0]:
            added = int(np.unique(self._delta[2]).size)
        else:
            (added,) = self.db.execute("SELECT COUNT(*) FROM orb WHERE wid > ?", (self.max_wid,)).fetchone()
        return bool(added > REBUILD_SHARE * max(self.n_works, 1))

    def _rows(self, above: int, upto: int | None = None) -> Any:
        return self.db.execute("SELECT wid, desc FROM orb WHERE wid > ? AND wid <= ? ORDER BY wid",
                               (above, (1 << 62) if upto is None else upto))

    # -- building -------------------------------------------------------------------------------
    def _train(self, n_desc: int) -> Vocabulary:
        rng = np.random.default_rng(secrets.randbits(64))
        keep = min(1.0, TRAIN_SAMPLE / max(n_desc, 1))
        sample: list[U8] = []
        for _, d in self._rows(0):
            a = np.frombuffer(d, np.uint8).reshape(-1, 32)
            sample.append(a if keep >= 1.0 else a[rng.random(a.shape[0]) < keep])
        n_words = max(1, min(TOP_WORDS * LEAF_MAX, n_desc // CELL))
        return Vocabulary.train(np.concatenate(sample) if sample else np.zeros((0, 32), np.uint8), n_words, n_desc)

    def _quantise_all(self, vocab: Vocabulary, max_wid: int, sub: Path, n_desc: int) -> tuple[I32, I32]:
        """Words and works of every registered descriptor, in table order; the descriptors
        themselves go to ``sub/raw.npy`` (removed after the build)."""
        raw = np.lib.format.open_memmap(sub / "raw.npy", mode="w+", dtype=np.uint8, shape=(max(n_desc, 1), 32))
        words = np.zeros(n_desc, np.int32)
        wids = np.zeros(n_desc, np.int32)
        at = 0
        batch: list[U8] = []
        bw: list[int] = []
        rows = self._rows(0, max_wid)
        while True:
            chunk = rows.fetchmany(BUILD_CHUNK // 400)
            for wid, d in chunk:
                batch.append(np.frombuffer(d, np.uint8).reshape(-1, 32))
                bw.append(int(wid))
            if batch and (not chunk or sum(a.shape[0] for a in batch) >= BUILD_CHUNK):
                a = np.concatenate(batch)
                end = at + a.shape[0]
                raw[at:end] = a
                words[at:end] = vocab.words(a)
                wids[at:end] = np.repeat(bw, [x.shape[0] for x in batch])
                at, batch, bw = end, [], []
            if not chunk:
                break
        raw.flush()
        return words[:at], wids[:at]

    def build(self) -> None:
        """(Re)train the vocabulary when it was trained on too few descriptors, then write the
        postings of every registered work; the pointer file switches to them at the end."""
        (n_desc,) = self.db.execute("SELECT COALESCE(SUM(LENGTH(desc)), 0) / 32 FROM orb").fetchone()
        (n_works, max_wid) = self.db.execute("SELECT COUNT(*), COALESCE(MAX(wid), 0) FROM orb").fetchone()
        self._load()
        vocab = self.vocab
        if vocab is None or vocab.trained_on * RETRAIN_GROWTH < int(n_desc):
            vocab = self._train(int(n_desc))
        build = secrets.token_hex(6)
        sub = self.folder / f"orbivf-{build}"
        sub.mkdir()
        try:
            words, wids = self._quantise_all(vocab, int(max_wid), sub, int(n_desc))
            order = np.argsort(words, kind="stable")
            offsets = np.zeros(vocab.size + 1, np.int64)
            np.cumsum(np.bincount(words, minlength=vocab.size), out=offsets[1:])
            np.save(sub / "offsets.npy", offsets)
            np.save(sub / "wids.npy", wids[order])
            del words, wids
            raw = np.load(sub / "raw.npy", mmap_mode="r")
            out = np.lib.format.open_memmap(sub / "desc.npy", mode="w+", dtype=np.uint8, shape=(order.size, 32))
            for i in range(0, order.size, BUILD_CHUNK):
                out[i:i + BUILD_CHUNK] = raw[np.sort(order[i:i + BUILD_CHUNK])][
                    np.argsort(np.argsort(order[i:i + BUILD_CHUNK]))]
            out.flush()
            del raw, out
            (sub / "raw.npy").unlink()
            vocab.save(sub)
            for p in sub.iterdir():
                with open(p, "rb") as fh:
                    os.fsync(fh.fileno())
        except BaseException:
            shutil.rmtree(sub, ignore_errors=True)
            raise
        meta = {"build": build, "max_wid": int(max_wid), "works": int(n_works), "descriptors": int(order.size),
                "words": vocab.size}
        old = self._pointer()
        from .arrays import _atomic_write

        _atomic_write(self.folder / POINTER, json.dumps(meta).encode())
        if old is not None and old.get("build") != build:
            shutil.rmtree(self.folder / f"orbivf-{old['build']}", ignore_errors=True)

    def ready(self) -> None:
        """Load the current build, building or rebuilding it when missing or stale."""
        if not self._load() or self._stale():
            self.build()
            if not self._load():
                raise OSError(f"index {self.folder}: the inverted file cannot be read after its build")

    # -- votes ----------------------------------------------------------------------------------
    def _delta_postings(self) -> tuple[I64, I64, U8]:
        """Works registered since the build: (words, wids, descriptors) sorted by word,
        quantised once per process."""
        seen, dw, dwid, dd = self._delta
        new_w, new_id, new_d = [dw], [dwid], [dd]
        assert self.vocab is not None
        for wid, d in self._rows(seen):
            a = np.frombuffer(d, np.uint8).reshape(-1, 32)
            new_w.append(self.vocab.words(a))
            new_id.append(np.full(a.shape[0], int(wid), np.int64))
            new_d.append(a)
            seen = max(seen, int(wid))
        if len(new_w) > 1:
            w = np.concatenate(new_w)
            o = np.argsort(w, kind="stable")
            self._delta = (seen, w[o], np.concatenate(new_id)[o], np.concatenate(new_d)[o])
        return self._delta[1], self._delta[2], self._delta[3]

    def votes(self, descriptors: U8, radius: int, ratio: float | None) -> dict[int, int]:
        """wid → votes: a query descriptor votes for the work of the nearest registered
        descriptor of its word when that is within ``radius`` bits and closer than ``ratio``
        times the nearest descriptor of another work in the word (no such test when ``ratio``
        is None; see the module doc)."""
        self.ready()
        assert self.vocab is not None
        if descriptors.shape[0] == 0:
            return {}
        qw = self.vocab.words(descriptors)
        best = [np.full(qw.size, NO_OTHER, np.int64), np.full(qw.size, -1, np.int64), np.full(qw.size, NO_OTHER, np.int64)]
        dw, dwid, dd = self._delta_postings()
        for lo, hi, wids, desc in ((np.asarray(self.offsets[qw], np.int64), np.asarray(self.offsets[qw + 1], np.int64),
                                    self.wids, self.desc),
                                   (np.searchsorted(dw, qw, "left"), np.searchsorted(dw, qw, "right"), dwid, dd)):
            has = np.flatnonzero(hi > lo)
            if has.size == 0:
                continue
            d1, w1, d2 = _cells(descriptors[has], lo[has], (hi - lo)[has], wids, desc)
            b1, bw, b2 = best[0][has], best[1][has], best[2][has]
            same = bw == w1
            # merge two (nearest, its work, nearest of another work) triples exactly
            n1 = np.minimum(b1, d1)
            nw = np.where(d1 < b1, w1, bw)
            n2 = np.where(same, np.minimum(b2, d2), np.where(d1 < b1, np.minimum(d2, b1), np.minimum(b2, d1)))
            best[0][has], best[1][has], best[2][has] = n1, nw, n2
        keep = (best[1] >= 0) & (best[0] <= radius)
        if ratio is not None:
            keep &= best[0] < ratio * best[2]
        w, c = np.unique(best[1][keep], return_counts=True)
        order = np.argsort(-c, kind="stable")[:4 * SHORTLIST]
        cand = [int(x) for x in w[order]]
        live = {int(r[0]) for r in self.db.execute(
            "SELECT wid FROM works WHERE wid IN (SELECT value FROM json_each(?))", (json.dumps(cand),))}
        return {x: int(n) for x, n in zip(cand, c[order].tolist(), strict=True) if x in live}
