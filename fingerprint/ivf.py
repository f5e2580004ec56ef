"""The disk-based inverted file that finds candidate works for ORB descriptors at any scale.

A flat scan compares every query descriptor with every registered one: ~1.1 ns per pair on
one core, so a part-search query (~8 000 descriptors) costs ~3.5 s per million registered
descriptors, i.e. per 2 500 pictures. Past ``IVF_MIN_DESCRIPTORS`` the index instead
quantises descriptors into binary *visual words* (:mod:`fingerprint.ivf_vocab`: a two-level
tree of k-majority centroids) and keeps every registered descriptor filed under its word:
``offsets`` (words + 1), ``wids`` and ``desc``, read memory-mapped, so a query touches only
the cells of its own words. A query descriptor votes for the work of the nearest registered
descriptor of its word when that is within the radius and (part search) closer than the
ratio times the nearest descriptor of another work in the word; the ``4 × SHORTLIST`` works
with most votes go back to matching, which verifies them geometrically.

The SQLite ``orb`` table stays the source of truth; builds are written by a separate process
(:mod:`fingerprint.ivf_build`, ``python -m fingerprint.ivf build FOLDER``) and switched to
through an atomically replaced pointer. A query never builds: it answers from the current
build plus an exact search, in the same words, of the works registered since (the *delta*,
read from SQLite and quantised once per process), with the postings of works removed since
masked, so its votes are those a fresh build with the same vocabulary would give; when the
build is stale it starts a builder in the background and goes on. Until the first build
exists the index's flat scan answers. Figures: ``docs/fingerprints.md`` (part search at
scale).
"""

from __future__ import annotations

import json
import logging
import sqlite3
import subprocess
import time
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from . import ivf_build
from .errors import IndexCorrupt
from .ivf_build import CELL, DELTA_REBUILD, POINTER, REBUILD_SHARE, RETRAIN_GROWTH, TRAIN_SAMPLE, BuildLock
from .ivf_vocab import LEAF_MAX, TOP_WORDS, U8, Vocabulary

__all__ = ["CELL", "DELTA_MAX", "DELTA_REBUILD", "IVF_MIN_DESCRIPTORS", "LEAF_MAX", "NO_OTHER", "POINTER", "REBUILD_SHARE",
           "RETRAIN_GROWTH", "SHORTLIST", "TOP_WORDS", "TRAIN_SAMPLE", "OrbInvertedFile", "Vocabulary"]

I64 = npt.NDArray[np.int64]
F64 = npt.NDArray[np.float64]

IVF_MIN_DESCRIPTORS = 100_000  # below this (~250 pictures) the flat scan is used
SHORTLIST = 8
NO_OTHER = 1 << 20
DELTA_MAX = 1 << 22  # the delta's hard cap in descriptors (~10 000 pictures, ~200 MB per process)
BUILD_RETRY_S = 60.0  # a query process starts at most one builder per this many seconds
log = logging.getLogger(__name__)


def _cells(qd: U8, lo: I64, n: I64, wids: Any, desc: Any, masked: I64 | None = None) -> tuple[I64, I64, I64]:
    """For each query descriptor with candidates ``lo[i]:lo[i] + n[i]`` (n > 0) in
    (``wids``, ``desc``): the nearest distance, its work, and the nearest distance of any
    other work (``NO_OTHER`` when there is none); candidates of the works in ``masked`` are
    left out (as if absent; work -1 when all are). One compiled pass
    (:mod:`fingerprint.scan`)."""
    from .scan import nearest_in_cells

    return nearest_in_cells(qd, lo, n, wids, desc, masked, NO_OTHER)


class OrbInvertedFile:
    """The inverted file of one index folder (see the module doc); ``db`` is the index's
    SQLite connection (tables ``works``, ``orb`` and ``meta``)."""

    def __init__(self, db: sqlite3.Connection, folder: Path) -> None:
        self.db, self.folder = db, folder
        self.build_id: str | None = None
        self.meta: dict[str, Any] = {}
        self.vocab: Vocabulary | None = None
        self.offsets: Any = np.zeros(1, np.int64)
        self.wids: Any = np.zeros(0, np.int32)
        self.desc: Any = np.zeros((0, 32), np.uint8)
        self.built: I64 | None = None  # the works the build holds
        self.max_wid = self.n_works = 0
        self._proc: subprocess.Popen[bytes] | None = None
        self._started = -BUILD_RETRY_S
        self._warned = False
        self._reset_delta()

    def _reset_delta(self) -> None:
        self._seen = self.max_wid  # rows above this wid are not read yet
        self._dw, self._dwid = np.zeros(0, np.int64), np.zeros(0, np.int64)
        self._dd = np.zeros((0, 32), np.uint8)
        self._dadded: dict[int, float] = {}  # delta work → its added_at when read
        self._removals = int(self.meta.get("removals", 0))  # removals the delta and mask reflect
        self._dead = np.zeros(0, np.int64)  # works of the build removed (or their wid reused) since

    # -- state ----------------------------------------------------------------------------------
    def _meta_int(self, key: str) -> int:
        row = self.db.execute("SELECT value FROM meta WHERE key=?", (key,)).fetchone()
        return int(row[0]) if row else 0

    def _load(self) -> bool:
        """Map the build the pointer names (re-reading it if the build was switched and
        deleted meanwhile); False when there is no pointer."""
        for _ in range(3):
            meta = ivf_build.read_pointer(self.folder)
            if meta is None:
                return False
            if meta["build"] == self.build_id:
                return True
            sub = self.folder / f"{ivf_build.PREFIX}{meta['build']}"
            try:
                vocab = Vocabulary.load(sub)
                offsets = np.load(sub / "offsets.npy", mmap_mode="r")
                wids = np.load(sub / "wids.npy", mmap_mode="r")
                desc = np.load(sub / "desc.npy", mmap_mode="r")
                built = np.load(sub / "works.npy").astype(np.int64) if (sub / "works.npy").exists() else None
            except (OSError, ValueError, KeyError):
                continue
            self.vocab, self.offsets, self.wids, self.desc, self.built = vocab, offsets, wids, desc, built
            self.build_id, self.meta = str(meta["build"]), meta
            self.max_wid, self.n_works = int(meta["max_wid"]), int(meta["works"])
            self._reset_delta()
            return True
        return self.vocab is not None  # keep serving the build already mapped

    def _replaced(self) -> bool:
        """The database is not the one the build was made from (fewer removals than it saw)."""
        return "removals" in self.meta and self._meta_int("removals") < int(self.meta["removals"])

    def active(self, total_descriptors: int | None) -> bool:
        """Whether votes come from the inverted file: a build of this database exists. When
        none does (or it was made from another database) and the index holds at least
        ``IVF_MIN_DESCRIPTORS`` descriptors (``total_descriptors``; None: not counted), a
        builder is started in the background and the flat scan answers meanwhile."""
        if self._load() and not self._replaced():
            return True
        if self.vocab is not None or (total_descriptors is not None and total_descriptors >= IVF_MIN_DESCRIPTORS):
            self.request_build()
        return False

    def request_build(self) -> bool:
        """Start a builder process unless this process started one in the last
        ``BUILD_RETRY_S`` seconds or another process holds the lock; True if started."""
        if self._proc is not None and self._proc.poll() is None:
            return False
        if time.monotonic() - self._started < BUILD_RETRY_S:
            return False
        self._started = time.monotonic()
        try:
            self._proc = ivf_build.start(self.folder)
        except OSError as exc:  # e.g. a read-only folder: the current build goes on serving
            log.warning("index %s: cannot start the inverted file's builder: %s", self.folder, exc)
            return False
        return self._proc is not None

    def building(self) -> bool:
        """Whether a builder (of any process) is running on this folder now."""
        return ivf_build.building(self.folder)

    def _since(self) -> tuple[int, int, int]:
        """Works and descriptors registered since the build (as read so far), removals since."""
        return (sum(w > self.max_wid for w in self._dadded), int((self._dwid > self.max_wid).sum()),
                self._removals - int(self.meta.get("removals", 0)))

    def backlog(self) -> dict[str, Any]:
        """The delta as this process holds it: works and descriptors registered since the
        build, removals since, the hard cap, and whether a builder runs."""
        works, desc, removed = self._since()
        return {"build": self.build_id, "works": self.n_works, "added_works": works, "added_descriptors": desc,
                "removed": removed, "cap": DELTA_MAX, "building": self.building()}

    # -- building -------------------------------------------------------------------------------
    def build(self, *, force: bool = True) -> dict[str, Any] | None:
        """Build in this process (waiting for a running builder first): for tools, bulk
        ingest and benchmarks, never for queries. Without ``force`` only when stale."""
        lock = BuildLock(self.folder)
        lock.acquire(wait=True)
        try:
            return ivf_build.build(self.db, self.folder, lock, force=force)
        finally:
            lock.release()

    def ready(self) -> None:
        """Bring the build up to date in this process (see :meth:`build`) and map it."""
        self.build(force=False)
        if not self._load():
            raise IndexCorrupt(f"index {self.folder}: the inverted file cannot be read after its build")

    # -- the delta ------------------------------------------------------------------------------
    def _refilter(self) -> None:
        """After removals: the build's works that are gone (or whose wid now names another
        work), and the delta without the works removed or replaced since they were read."""
        rows = np.array(self.db.execute("SELECT wid, added_at FROM works").fetchall(), np.float64).reshape(-1, 2)
        wid, at = rows[:, 0].astype(np.int64), rows[:, 1]
        built_at = float(self.meta.get("built_at", np.inf))
        if self.built is not None:
            self._dead = np.setdiff1d(self.built, wid[(at <= built_at) & (wid <= self.max_wid)])
        live = dict(zip(wid.tolist(), at.tolist(), strict=True))
        keep = [w for w, a in self._dadded.items() if live.get(w) == a]
        k = np.isin(self._dwid, keep)
        self._dw, self._dwid, self._dd = self._dw[k], self._dwid[k], self._dd[k]
        self._dadded = {w: self._dadded[w] for w in keep}
        self._seen = max([w for w in keep if w > self.max_wid], default=self.max_wid)

    def _new_rows(self) -> list[tuple[int, bytes, float]]:
        rows = self.db.execute("SELECT o.wid, o.desc, w.added_at FROM orb o JOIN works w ON w.wid = o.wid "
                               "WHERE o.wid > ? ORDER BY o.wid", (self._seen,)).fetchall()
        if self._dead.size:  # a removed work's wid given to a new work: read it as new
            rows += [r for r in self.db.execute(
                "SELECT o.wid, o.desc, w.added_at FROM orb o JOIN works w ON w.wid = o.wid "
                "WHERE o.wid IN (SELECT value FROM json_each(?)) AND w.added_at > ?",
                (json.dumps(self._dead.tolist()), float(self.meta.get("built_at", np.inf)))) if r[0] not in self._dadded]
        return rows

    def refresh(self) -> None:
        """Map the current build, bring the delta up to date, and start a builder when the
        build is stale (every query does; a long-lived process may call it at start so that
        its first query does not pay for reading the delta)."""
        if not self._load() and self.vocab is None:
            raise IndexCorrupt(f"index {self.folder}: its inverted file cannot be read")
        assert self.vocab is not None
        removals = self._meta_int("removals")
        if removals != self._removals:
            self._removals = removals
            self._refilter()
        rows = self._new_rows()
        if rows:
            arrs = [np.frombuffer(d, np.uint8).reshape(-1, 32) for _, d, _ in rows]
            a = np.concatenate(arrs)
            w = np.concatenate([self._dw, self.vocab.words(a)])
            wid = np.concatenate([self._dwid, np.repeat([int(r[0]) for r in rows], [x.shape[0] for x in arrs])])
            d = np.concatenate([self._dd, a])
            o = np.argsort(w, kind="stable")
            self._dw, self._dwid, self._dd = w[o], wid[o], d[o]
            self._dadded.update({int(r[0]): float(r[2]) for r in rows})
            self._seen = max([self._seen] + [int(r[0]) for r in rows])
        if (self._dadded or removals != int(self.meta.get("removals", 0))) and ivf_build.needs_rebuild(
                self.n_works, *self._since()):
            self.request_build()
        if self._dd.shape[0] > DELTA_MAX and not self._warned:
            self._warned = True
            log.warning("index %s: %d descriptors registered since the inverted file's build (cap %d); "
                        "queries stay exact but slower until the builder switches", self.folder,
                        self._dd.shape[0], DELTA_MAX)

    # -- votes ----------------------------------------------------------------------------------
    def votes(self, descriptors: U8, radius: int, ratio: float | None) -> dict[int, int]:
        """wid → votes: a query descriptor votes for the work of the nearest registered
        descriptor of its word when that is within ``radius`` bits and closer than ``ratio``
        times the nearest descriptor of another work in the word (no such test when ``ratio``
        is None; see the module doc)."""
        self.refresh()
        assert self.vocab is not None
        if descriptors.shape[0] == 0:
            return {}
        qw = self.vocab.words(descriptors)
        best = [np.full(qw.size, NO_OTHER, np.int64), np.full(qw.size, -1, np.int64), np.full(qw.size, NO_OTHER, np.int64)]
        for lo, hi, wids, desc, masked in (
                (np.asarray(self.offsets[qw], np.int64), np.asarray(self.offsets[qw + 1], np.int64),
                 self.wids, self.desc, self._dead),
                (np.searchsorted(self._dw, qw, "left"), np.searchsorted(self._dw, qw, "right"),
                 self._dwid, self._dd, None)):
            has = np.flatnonzero(hi > lo)
            if has.size == 0:
                continue
            d1, w1, d2 = _cells(descriptors[has], lo[has], (hi - lo)[has], wids, desc, masked)
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


def main(argv: list[str] | None = None) -> int:
    import sys

    return ivf_build.main(sys.argv[1:] if argv is None else argv)


if __name__ == "__main__":
    raise SystemExit(main())
