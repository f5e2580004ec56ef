"""The fingerprint index: a backend interface and the embedded single-machine default.

``IndexBackend`` is what ``matching`` and ``service`` call; a distributed backend (see
``docs/fingerprints.md``) implements the same methods. ``LocalIndex`` keeps everything in one
SQLite database in WAL mode (the source of truth: one transaction per work, so a crash leaves
every earlier work intact) and serves Hamming searches from FAISS binary indexes built from it.
Those FAISS indexes are caches, written atomically (temp file, fsync, rename) and stamped
with the database's generation counter, so a stale or half-written cache is never used.
"""

from __future__ import annotations

import json
import sqlite3
import time
from abc import ABC, abstractmethod
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from .arrays import CodeHits, _atomic_write, _BinaryIndex, _Postings
from .errors import DuplicateWork, IndexCorrupt, IndexFailure, UnknownWork
from .formats import Fingerprint, require_registrable
from .ivf import OrbInvertedFile
from .marks import shared_mask, shared_with_registered

SCHEMA_VERSION = 2  # 2: every picture's colour layout (table colour); a schema 1 index is upgraded
DB_NAME = "fingerprints.sqlite"
CODE_BYTES = 32
CACHE_MIN_ROWS = 5000  # FAISS caches are written only for indexes at least this large
POSTINGS_MIN_ROWS = 500_000  # inverted tables this large are served from in-memory sorted arrays
POSTINGS_REBUILD_SHARE = 0.2  # rebuild them when the works added since exceed this share
VOTE_NEIGHBOURS = 4  # part search: neighbours looked at to find the nearest of another work

U8 = npt.NDArray[np.uint8]
I64 = npt.NDArray[np.int64]


@dataclass(frozen=True)
class WorkInfo:
    work_id: str
    modality: str
    sm3: str
    version: int
    duration_s: float | None
    size: int


class IndexBackend(ABC):
    """Storage and candidate retrieval. Implementations must make ``add`` atomic per work."""

    @abstractmethod
    def add(self, work_id: str, fp: Fingerprint, *, replace: bool = False) -> None:
        """Register ``fp`` as ``work_id``, atomically; must refuse what
        :func:`~fingerprint.formats.require_registrable` refuses."""

    @abstractmethod
    def remove(self, work_id: str) -> None: ...

    @abstractmethod
    def info(self, work_id: str) -> WorkInfo | None: ...

    @abstractmethod
    def count(self, modality: str | None = None) -> int: ...

    @abstractmethod
    def search_codes(self, kind: str, queries: U8, radius: int) -> CodeHits:
        """Registered codes of ``kind`` (``image`` or ``frame``) within ``radius`` bits."""

    @abstractmethod
    def nearest_codes(self, kind: str, queries: U8, k: int) -> CodeHits:
        """The ``k`` nearest registered codes of ``kind`` for each query row."""

    @abstractmethod
    def search_descriptors(self, descriptors: U8, radius: int) -> dict[str, int]:
        """Votes per image work: query ORB descriptors with a registered one within ``radius``."""

    def distinct_votes(self, descriptors: U8, radius: int, ratio: float) -> dict[str, int]:
        """Votes per image work, counting only query descriptors whose nearest registered
        descriptor (within ``radius``) is closer than ``ratio`` times the nearest one of any
        other work: descriptors that many works share (text, flat corners) do not vote.
        Backends without it fall back to :meth:`search_descriptors`."""
        return self.search_descriptors(descriptors, radius)

    def neighbour_votes(self, descriptors: U8, radius: int, k: int) -> dict[str, int]:
        """Votes per image work: query descriptors with one of its descriptors among their
        ``k`` nearest registered ones within ``radius`` (every work carrying a shared mark,
        not only the nearest). Backends without it fall back to :meth:`search_descriptors`."""
        return self.search_descriptors(descriptors, radius)

    @abstractmethod
    def local_features(self, work_id: str) -> tuple[npt.NDArray[np.float32], U8]: ...

    def shared_keypoints(self, work_id: str) -> npt.NDArray[np.bool_] | None:
        """Which of a picture's keypoints show a mark other registered pictures carry
        (``fingerprint.marks``); None when none do (or the backend does not record them)."""
        return None

    def image_size(self, work_id: str) -> tuple[int, int] | None:
        """A registered picture's (width, height) in pixels; None when the index predates
        the record (part search then takes the extent of its keypoints)."""
        return None

    def colour_layout(self, work_id: str) -> U8 | None:
        """A picture's colour layout (``art.layout_vector``), indexed or not; None when not kept."""
        return None

    def layouts(self) -> tuple[list[str], U8]:
        """Indexed colour layouts (image v2): work ids, N × ``art.LAYOUT_BYTES``; default none."""
        return [], np.zeros((0, 0), np.uint8)

    def by_sm3(self, sm3: str) -> list[str]:
        """Works whose file has exactly this SM3 (a byte-identical copy); default none."""
        return []

    @abstractmethod
    def lookup(self, table: str, hashes: I64) -> tuple[I64, list[str], I64, I64]:
        """Rows of an inverted table (``pairs``, ``triplets`` or ``text``) whose hash is among
        ``hashes``: (hash, work id, time or position, extra) — extra is the triplet span."""

    @abstractmethod
    def item_count(self, table: str, work_id: str) -> int:
        """How many rows of an inverted table belong to ``work_id``."""

    @abstractmethod
    def close(self) -> None: ...


_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS works (
    wid INTEGER PRIMARY KEY, work_id TEXT UNIQUE NOT NULL, modality TEXT NOT NULL,
    sm3 TEXT NOT NULL, version INTEGER NOT NULL, duration_s REAL, size INTEGER NOT NULL,
    added_at REAL NOT NULL);
CREATE INDEX IF NOT EXISTS works_sm3 ON works(sm3);
CREATE TABLE IF NOT EXISTS codes (
    wid INTEGER NOT NULL, kind TEXT NOT NULL, t REAL NOT NULL, code BLOB NOT NULL);
CREATE INDEX IF NOT EXISTS codes_wid ON codes(wid);
CREATE TABLE IF NOT EXISTS orb (wid INTEGER PRIMARY KEY, points BLOB NOT NULL, desc BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS image_size (wid INTEGER PRIMARY KEY, width INTEGER NOT NULL,
    height INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS layout (wid INTEGER PRIMARY KEY, vec BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS colour (wid INTEGER PRIMARY KEY, vec BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS shared (wid INTEGER NOT NULL, other INTEGER NOT NULL, kp BLOB NOT NULL,
    derived INTEGER NOT NULL, places INTEGER NOT NULL, PRIMARY KEY (wid, other)) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS shared_other ON shared(other);
CREATE TABLE IF NOT EXISTS pairs (hash INTEGER NOT NULL, wid INTEGER NOT NULL, t INTEGER NOT NULL,
    PRIMARY KEY (hash, wid, t)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS triplets (hash INTEGER NOT NULL, wid INTEGER NOT NULL, t INTEGER NOT NULL,
    span INTEGER NOT NULL, PRIMARY KEY (hash, wid, t, span)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS text (hash INTEGER NOT NULL, wid INTEGER NOT NULL, pos INTEGER NOT NULL,
    PRIMARY KEY (hash, wid, pos)) WITHOUT ROWID;
"""


_INVERTED = {"pairs": "t, 0", "triplets": "t, span", "text": "pos, 0"}


class LocalIndex(IndexBackend):
    """The embedded default: SQLite (WAL) + FAISS binary indexes, in one folder."""

    def __init__(self, folder: str | Path, *, create: bool = True) -> None:
        self.folder = Path(folder)
        if self.folder.exists() and not self.folder.is_dir():
            raise IndexCorrupt(f"index {self.folder}: exists and is not a folder")
        db = self.folder / DB_NAME
        if not db.exists():
            if not create:
                raise IndexCorrupt(f"index {self.folder}: no index here (missing {DB_NAME})")
            self.folder.mkdir(parents=True, exist_ok=True)
        try:
            self.db = sqlite3.connect(db, isolation_level=None, timeout=60)
            self.db.execute("PRAGMA journal_mode=WAL")
            self.db.execute("PRAGMA synchronous=NORMAL")
            self.db.executescript(_SCHEMA)
            row = self.db.execute("SELECT value FROM meta WHERE key='schema'").fetchone()
            if row is None:
                self.db.execute("INSERT OR IGNORE INTO meta VALUES ('schema', ?), ('generation', '0'), "
                                "('removals', '0')", (str(SCHEMA_VERSION),))
            elif int(row[0]) == 1:  # schema 2 adds the table colour, its rows from now on
                self.db.execute("UPDATE meta SET value=? WHERE key='schema'", (str(SCHEMA_VERSION),))
            elif int(row[0]) != SCHEMA_VERSION:
                raise IndexCorrupt(f"index {self.folder}: schema version {row[0]}, "
                                   f"this program reads {SCHEMA_VERSION}")
            self.db.execute("INSERT OR IGNORE INTO meta VALUES ('removals', '0')")
        except sqlite3.DatabaseError as exc:
            raise IndexCorrupt(f"index {self.folder}: cannot open its database ({exc})") from None
        self._cache: dict[str, tuple[int, Any]] = {}
        self._postings: dict[str, _Postings] = {}
        self._names: dict[int, str] = {}
        self._ivf = OrbInvertedFile(self.db, self.folder)
        self._ivf_gen, self._ivf_on = -1, False

    # -- bookkeeping -------------------------------------------------------------------------
    def generation(self) -> int:
        row = self.db.execute("SELECT value FROM meta WHERE key='generation'").fetchone()
        return int(row[0])

    def _name(self, wid: int) -> str:
        name = self._names.get(wid)
        if name is None:
            row = self.db.execute("SELECT work_id FROM works WHERE wid=?", (wid,)).fetchone()
            name = str(row[0]) if row else f"#{wid}"
            self._names[wid] = name
        return name

    def info(self, work_id: str) -> WorkInfo | None:
        row = self.db.execute("SELECT work_id, modality, sm3, version, duration_s, size FROM works "
                              "WHERE work_id=?", (work_id,)).fetchone()
        return WorkInfo(*row) if row else None

    def by_sm3(self, sm3: str) -> list[str]:
        return [r[0] for r in self.db.execute("SELECT work_id FROM works WHERE sm3=?", (sm3,))]

    def count(self, modality: str | None = None) -> int:
        if modality is None:
            return int(self.db.execute("SELECT COUNT(*) FROM works").fetchone()[0])
        return int(self.db.execute("SELECT COUNT(*) FROM works WHERE modality=?", (modality,)).fetchone()[0])

    def work_ids(self) -> list[str]:
        return [r[0] for r in self.db.execute("SELECT work_id FROM works ORDER BY wid")]

    def get_note(self, key: str) -> str | None:
        """A caller's bookkeeping value stored beside the works (e.g. the chain height the index
        covers), or None."""
        row = self.db.execute("SELECT value FROM meta WHERE key=?", ("note:" + key,)).fetchone()
        return None if row is None else str(row[0])

    def set_note(self, key: str, value: str) -> None:
        """Store a bookkeeping value in its own transaction, after every earlier ``add``."""
        self.db.execute("INSERT OR REPLACE INTO meta VALUES (?, ?)", ("note:" + key, value))

    # -- writing ------------------------------------------------------------------------------
    def add(self, work_id: str, fp: Fingerprint, *, replace: bool = False) -> None:
        if not work_id:
            raise IndexFailure(f"index {self.folder}: a work id must not be empty")
        require_registrable(fp, f"work {work_id!r}")
        cur = self.db.cursor()
        cur.execute("BEGIN IMMEDIATE")
        try:
            old = cur.execute("SELECT wid FROM works WHERE work_id=?", (work_id,)).fetchone()
            if old is not None:
                if not replace:
                    raise DuplicateWork(f"index {self.folder}: work {work_id!r} is already registered "
                                      "(remove it first or pass replace)")
                self._delete(cur, int(old[0]))
            marks = [] if fp.image is None else shared_with_registered(
                self, fp.image.points, fp.image.descriptors, exclude=work_id)
            cur.execute("INSERT INTO works (work_id, modality, sm3, version, duration_s, size, added_at) "
                        "VALUES (?,?,?,?,?,?,?)",
                        (work_id, fp.modality.value, fp.sm3, fp.version, fp.duration_s,
                         fp.size_bytes, time.time()))
            wid = int(cur.lastrowid or 0)
            self._insert_payload(cur, wid, fp)
            for other, mine, theirs, derived, places in marks:
                o = int(cur.execute("SELECT wid FROM works WHERE work_id=?", (other,)).fetchone()[0])
                cur.executemany("INSERT INTO shared VALUES (?,?,?,?,?)", [
                    (wid, o, mine.astype(np.int32).tobytes(), derived, places),
                    (o, wid, theirs.astype(np.int32).tobytes(), derived, places)])
            cur.execute("UPDATE meta SET value = CAST(value AS INTEGER) + 1 WHERE key='generation'")
            cur.execute("COMMIT")
        except BaseException:
            cur.execute("ROLLBACK")
            raise
        self._names[wid] = work_id

    def _insert_payload(self, cur: sqlite3.Cursor, wid: int, fp: Fingerprint) -> None:
        if fp.image is not None:
            from .art import indexed_parts

            code, layout = indexed_parts(fp.image, fp.version)  # image v2: what is worth indexing
            if code is not None:
                cur.execute("INSERT INTO codes VALUES (?, 'image', 0, ?)", (wid, code))
            if layout is not None:
                cur.execute("INSERT INTO layout VALUES (?, ?)", (wid, layout))
            cur.execute("INSERT INTO orb VALUES (?,?,?)",
                        (wid, fp.image.points.astype(np.float32).tobytes(),
                         fp.image.descriptors.astype(np.uint8).tobytes()))
            cur.execute("INSERT INTO image_size VALUES (?,?,?)", (wid, fp.image.width, fp.image.height))
            if fp.image.layout is not None:
                cur.execute("INSERT OR REPLACE INTO colour VALUES (?, ?)", (wid, fp.image.layout.tobytes()))
        audio = fp.audio
        if fp.video is not None:
            v = fp.video
            for codes in (v.codes, *v.crop_codes):
                cur.executemany("INSERT INTO codes VALUES (?, 'frame', ?, ?)",
                                [(wid, float(t), bytes(c)) for t, c in zip(v.times, codes, strict=True)])
            audio = v.audio
        if audio is not None:
            cur.executemany("INSERT OR IGNORE INTO pairs VALUES (?,?,?)",
                            zip(audio.pair_hashes.tolist(), [wid] * audio.pair_hashes.size,
                                audio.pair_times.tolist(), strict=True))
            cur.executemany("INSERT OR IGNORE INTO triplets VALUES (?,?,?,?)",
                            zip(audio.tri_hashes.tolist(), [wid] * audio.tri_hashes.size,
                                audio.tri_times.tolist(), audio.tri_spans.tolist(), strict=True))
        if fp.text is not None:
            tx = fp.text
            cur.executemany("INSERT OR IGNORE INTO text VALUES (?,?,?)",
                            zip(tx.hashes.tolist(), [wid] * tx.hashes.size, tx.positions.tolist(),
                                strict=True))

    def _delete(self, cur: sqlite3.Cursor, wid: int) -> None:
        for table in ("codes", "orb", "image_size", "layout", "colour", "pairs", "triplets", "text"):
            cur.execute(f"DELETE FROM {table} WHERE wid=?", (wid,))  # noqa: S608 - fixed names
        cur.execute("DELETE FROM shared WHERE wid=? OR other=?", (wid, wid))
        cur.execute("DELETE FROM works WHERE wid=?", (wid,))
        cur.execute("UPDATE meta SET value = CAST(value AS INTEGER) + 1 WHERE key='removals'")
        self._names.pop(wid, None)

    def remove(self, work_id: str) -> None:
        cur = self.db.cursor()
        cur.execute("BEGIN IMMEDIATE")
        try:
            row = cur.execute("SELECT wid FROM works WHERE work_id=?", (work_id,)).fetchone()
            if row is None:
                raise UnknownWork(f"index {self.folder}: no work {work_id!r}")
            self._delete(cur, int(row[0]))
            cur.execute("UPDATE meta SET value = CAST(value AS INTEGER) + 1 WHERE key='generation'")
            cur.execute("COMMIT")
        except BaseException:
            cur.execute("ROLLBACK")
            raise

    # -- FAISS caches -------------------------------------------------------------------------
    def _binary(self, kind: str) -> _BinaryIndex:
        gen = self.generation()
        hit = self._cache.get(kind)
        if hit is not None and hit[0] == gen:
            return hit[1]  # type: ignore[no-any-return]
        built = self._load_cached(kind, gen)
        if built is None:
            built = self._build(kind)
            self._store_cached(kind, gen, built)
        self._cache[kind] = (gen, built)
        return built

    def _cache_path(self, kind: str) -> Path:
        return self.folder / f"{kind}.faisscache.npz"

    def _load_cached(self, kind: str, gen: int) -> _BinaryIndex | None:
        path = self._cache_path(kind)
        try:
            with np.load(path) as z:
                if int(z["generation"]) != gen:
                    return None
                return _BinaryIndex(z["codes"], z["wids"], z["times"], int(z["bits"]))
        except (OSError, KeyError, ValueError):
            return None

    def _store_cached(self, kind: str, gen: int, idx: _BinaryIndex) -> None:
        import io

        if idx.ntotal < CACHE_MIN_ROWS:
            return  # small indexes rebuild faster than they load
        buf = io.BytesIO()
        np.savez(buf, generation=np.int64(gen), codes=idx.codes, wids=idx.wids, times=idx.times,
                 bits=np.int64(idx.bits))
        try:
            _atomic_write(self._cache_path(kind), buf.getvalue())
        except OSError:
            pass  # the cache is an optimisation; the database stays the source of truth

    def _build(self, kind: str) -> _BinaryIndex:
        if kind == "orb":
            rows = self.db.execute("SELECT wid, desc FROM orb ORDER BY wid").fetchall()
            descs = [np.frombuffer(d, np.uint8).reshape(-1, 32) for _, d in rows]
            wids = np.concatenate([np.full(d.shape[0], w, np.int64) for (w, _), d in zip(rows, descs, strict=True)]
                                  ) if rows else np.zeros(0, np.int64)
            codes = np.concatenate(descs) if descs else np.zeros((0, 32), np.uint8)
            return _BinaryIndex(codes, wids, np.zeros(wids.size), 256)
        rows = self.db.execute("SELECT wid, t, code FROM codes WHERE kind=? ORDER BY wid, t", (kind,)).fetchall()
        codes = np.frombuffer(b"".join(r[2] for r in rows), np.uint8).reshape(-1, CODE_BYTES)
        wids = np.array([r[0] for r in rows], np.int64)
        times = np.array([r[1] for r in rows], np.float64)
        return _BinaryIndex(codes, wids, times, CODE_BYTES * 8)

    # -- queries ------------------------------------------------------------------------------
    def _hits(self, idx: _BinaryIndex, rows: I64, ids: I64, dist: I64) -> CodeHits:
        wids = idx.wids[ids].tolist()
        self._learn_names(wids)
        return CodeHits(rows, [self._name(w) for w in wids], idx.times[ids], dist)

    def _learn_names(self, wids: list[int]) -> None:
        """The names of ``wids`` not yet known, read at once (a query's codes reach a thousand
        works at 10⁶ pictures: one statement per work cost ~20 ms)."""
        new = sorted({w for w in wids if w not in self._names})
        for at in range(0, len(new), 500):
            part = new[at:at + 500]
            marks = ",".join("?" * len(part))
            sql = f"SELECT wid, work_id FROM works WHERE wid IN ({marks})"  # noqa: S608 - placeholders only
            known = dict(self.db.execute(sql, part).fetchall())
            for w in part:  # as _name names a row it cannot find
                self._names[w] = str(known[w]) if w in known else f"#{w}"

    def search_codes(self, kind: str, queries: U8, radius: int) -> CodeHits:
        idx = self._binary(kind)
        return self._hits(idx, *idx.range(queries, radius))

    def nearest_codes(self, kind: str, queries: U8, k: int) -> CodeHits:
        idx = self._binary(kind)
        return self._hits(idx, *idx.knn(queries, k))

    def inverted_file(self) -> OrbInvertedFile | None:
        """The inverted file when it serves the ORB votes (it exists, or the index holds
        enough descriptors: ``fingerprint.ivf``), else None (the flat scan)."""
        if self._ivf.active(None):
            return self._ivf
        gen = self.generation()
        if self._ivf_gen != gen:
            n = self.db.execute("SELECT COALESCE(SUM(LENGTH(desc)), 0) / 32 FROM orb").fetchone()[0]
            self._ivf_gen, self._ivf_on = gen, self._ivf.active(int(n))
        return self._ivf if self._ivf_on else None

    def search_descriptors(self, descriptors: U8, radius: int) -> dict[str, int]:
        ivf = self.inverted_file()
        if ivf is not None:
            return {self._name(w): n for w, n in ivf.votes(descriptors, radius, None).items()}
        idx = self._binary("orb")
        _, ids, dist = idx.knn(descriptors, 1)
        votes: dict[str, int] = {}
        for w in idx.wids[ids[dist <= radius]].tolist():
            name = self._name(int(w))
            votes[name] = votes.get(name, 0) + 1
        return votes

    def distinct_votes(self, descriptors: U8, radius: int, ratio: float) -> dict[str, int]:
        ivf = self.inverted_file()
        if ivf is not None:
            return {self._name(w): n for w, n in ivf.votes(descriptors, radius, ratio).items()}
        idx = self._binary("orb")
        _, ids, dist = idx.knn(descriptors, VOTE_NEIGHBOURS)
        if ids.size == 0:
            return {}
        k = ids.size // descriptors.shape[0]
        wid = idx.wids[ids].reshape(-1, k)
        d = dist.reshape(-1, k).astype(np.float64)
        other = np.where(wid != wid[:, :1], d, np.inf).min(axis=1)  # nearest of another work
        keep = (d[:, 0] <= radius) & (d[:, 0] < ratio * other)
        votes: dict[str, int] = {}
        for w, n in zip(*np.unique(wid[keep, 0], return_counts=True), strict=True):
            votes[self._name(int(w))] = int(n)
        return votes

    def neighbour_votes(self, descriptors: U8, radius: int, k: int) -> dict[str, int]:
        if self.db.execute("SELECT 1 FROM orb LIMIT 1").fetchone() is None:
            return {}
        if self.inverted_file() is not None:
            return self.search_descriptors(descriptors, radius)  # the inverted file keeps the nearest only
        idx = self._binary("orb")
        rows, ids, dist = idx.knn(descriptors, k)
        near = dist <= radius
        pairs = np.unique(np.stack([rows[near], idx.wids[ids[near]]], axis=1), axis=0)
        votes: dict[str, int] = {}
        for w, n in zip(*np.unique(pairs[:, 1], return_counts=True), strict=True):
            votes[self._name(int(w))] = int(n)
        return votes

    def shared_keypoints(self, work_id: str) -> npt.NDArray[np.bool_] | None:
        rows = self.db.execute("SELECT s.kp, s.derived, s.places FROM shared s JOIN works w ON w.wid=s.wid "
                               "WHERE w.work_id=?", (work_id,)).fetchall()
        if not rows:
            return None
        pts, _ = self.local_features(work_id)
        return shared_mask(pts, [(np.frombuffer(kp, np.int32), bool(d), int(n)) for kp, d, n in rows])

    def local_features(self, work_id: str) -> tuple[npt.NDArray[np.float32], U8]:
        row = self.db.execute("SELECT o.points, o.desc FROM orb o JOIN works w ON w.wid=o.wid "
                              "WHERE w.work_id=?", (work_id,)).fetchone()
        if row is None:
            raise UnknownWork(f"index {self.folder}: no image work {work_id!r}")
        return (np.frombuffer(row[0], np.float32).reshape(-1, 2),
                np.frombuffer(row[1], np.uint8).reshape(-1, 32))

    def image_size(self, work_id: str) -> tuple[int, int] | None:
        row = self.db.execute("SELECT s.width, s.height FROM image_size s JOIN works w ON w.wid=s.wid "
                              "WHERE w.work_id=?", (work_id,)).fetchone()
        return None if row is None else (int(row[0]), int(row[1]))

    def colour_layout(self, work_id: str) -> U8 | None:
        row = self.db.execute("SELECT c.vec FROM colour c JOIN works w ON w.wid=c.wid WHERE w.work_id=?",
                              (work_id,)).fetchone()
        return None if row is None else np.frombuffer(row[0], np.uint8)

    def layouts(self) -> tuple[list[str], U8]:
        gen = self.generation()
        hit = self._cache.get("layout")
        if hit is not None and hit[0] == gen:
            return hit[1]  # type: ignore[no-any-return]
        rows = self.db.execute("SELECT wid, vec FROM layout ORDER BY wid").fetchall()
        vecs = np.frombuffer(b"".join(r[1] for r in rows), np.uint8).reshape(len(rows), -1 if rows else 0)
        out = ([self._name(int(r[0])) for r in rows], vecs)
        self._cache["layout"] = (gen, out)
        return out

    def lookup(self, table: str, hashes: I64) -> tuple[I64, list[str], I64, I64]:
        if table not in _INVERTED:
            raise ValueError(f"unknown inverted table {table!r}")
        uniq = np.unique(hashes)
        post = self._current_postings(table)
        if post is None:
            h, w, t, e = self._sql_lookup(table, uniq, 0)
        else:
            h, w, t, e = post.lookup(uniq)
            h2, w2, t2, e2 = self._sql_lookup(table, uniq, post.max_wid)
            if h2.size:
                h, w, t, e = (np.concatenate([h, h2]), np.concatenate([w, w2]),
                              np.concatenate([t, t2]), np.concatenate([e, e2]))
        names = [self._name(int(x)) for x in w.tolist()]
        return h, names, t, e

    def _sql_lookup(self, table: str, uniq: I64, above_wid: int) -> tuple[I64, I64, I64, I64]:
        col = _INVERTED[table]
        sql = (f"SELECT p.hash, p.wid, {col} FROM {table} p "  # noqa: S608 - fixed names
               "WHERE p.hash IN (SELECT value FROM json_each(?)) AND p.wid > ?")
        rows = self.db.execute(sql, (json.dumps(uniq.tolist()), above_wid)).fetchall()
        if not rows:
            z = np.zeros(0, np.int64)
            return z, z, z, z
        arr = np.array(rows, dtype=np.int64)
        return arr[:, 0], arr[:, 1], arr[:, 2], arr[:, 3]

    def _meta_int(self, key: str) -> int:
        row = self.db.execute("SELECT value FROM meta WHERE key=?", (key,)).fetchone()
        return int(row[0]) if row else 0

    def _current_postings(self, table: str) -> _Postings | None:
        """Sorted in-memory postings of a large inverted table, valid while no work was
        removed since they were built; works added since are looked up in SQLite."""
        removals = self._meta_int("removals")
        max_wid = int(self.db.execute("SELECT COALESCE(MAX(wid), 0) FROM works").fetchone()[0])
        n_works = self.count()
        post = self._postings.get(table)
        if post is None or post.removals != removals:
            post = _Postings.load(self.folder / f"{table}.postings.npz")
            if post is not None and post.removals != removals:
                post = None
        if post is not None and (post.max_wid > max_wid or
                                 n_works - post.n_works > POSTINGS_REBUILD_SHARE * max(post.n_works, 1)):
            post = None
        if post is None:
            (rows,) = self.db.execute(f"SELECT COUNT(*) FROM {table}").fetchone()  # noqa: S608
            if rows < POSTINGS_MIN_ROWS:
                self._postings.pop(table, None)
                return None
            post = self._build_postings(table, removals, max_wid, n_works)
            try:
                post.save(self.folder / f"{table}.postings.npz")
            except OSError:
                pass  # a cache only
        self._postings[table] = post
        return post

    def _build_postings(self, table: str, removals: int, max_wid: int, n_works: int) -> _Postings:
        col = _INVERTED[table]
        cur = self.db.execute(f"SELECT hash, wid, {col} FROM {table} WHERE wid <= ? "  # noqa: S608
                              "ORDER BY hash", (max_wid,))
        parts = []
        while True:
            chunk = cur.fetchmany(1_000_000)
            if not chunk:
                break
            parts.append(np.array(chunk, dtype=np.int64))
        arr = np.concatenate(parts) if parts else np.zeros((0, 4), np.int64)
        return _Postings(arr[:, 0].copy(), arr[:, 1].astype(np.int32), arr[:, 2].astype(np.int32),
                         arr[:, 3].astype(np.int32), removals, max_wid, n_works)

    def item_count(self, table: str, work_id: str) -> int:
        if table not in _INVERTED:
            raise ValueError(f"unknown inverted table {table!r}")
        sql = (f"SELECT COUNT(DISTINCT p.hash) FROM {table} p JOIN works w ON w.wid = p.wid "  # noqa: S608
               "WHERE w.work_id=?")
        return int(self.db.execute(sql, (work_id,)).fetchone()[0])

    def close(self) -> None:
        self.db.close()

    def __enter__(self) -> LocalIndex:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def open_index(folder: str | Path, *, create: bool = True) -> LocalIndex:
    return LocalIndex(folder, create=create)
