"""Building the inverted file of :mod:`fingerprint.ivf` outside the queries that use it.

A build runs in its own process (``python -m fingerprint.ivf build FOLDER``, started by
:func:`start` when a query finds the file stale), at a lower CPU priority, and never inside
a query: queries keep answering from the previous build plus the works registered since.

On disk, in the index folder:

* ``orbivf.json`` — the pointer: which build is current and what it holds (``build``,
  ``max_wid``, ``works``, ``descriptors``, ``words``, ``removals``, ``built_at``);
  replaced atomically (temp file, fsync, rename, fsync of the folder);
* ``orbivf-<id>/`` — one build: ``offsets.npy``, ``wids.npy``, ``desc.npy``,
  ``works.npy``, ``vocab.npz``; every file fsynced before the pointer names it;
* ``orbivf.lock`` — an exclusive ``flock``: one builder at a time; the kernel releases it
  when its holder exits or is killed, so a dead builder never leaves it held. Its text is
  the holder's pid, stage and start time (for people; never trusted for locking);
* ``orbivf.log`` — the last builder's standard error.

A crash at any moment leaves the pointer naming a complete build (the old one until the
rename, the new one after); folders no pointer names are leftovers of a killed builder or
of a switch, and the next builder deletes them while it holds the lock.
"""

from __future__ import annotations

import fcntl
import json
import os
import secrets
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from .arrays import _atomic_write
from .ivf_vocab import LEAF_MAX, TOP_WORDS, U8, Vocabulary

I32 = npt.NDArray[np.int32]

POINTER = "orbivf.json"
LOCK = "orbivf.lock"
LOG = "orbivf.log"
PREFIX = "orbivf-"
CELL = 128  # the vocabulary has one word per this many registered descriptors
TRAIN_SAMPLE = 1 << 22
RETRAIN_GROWTH = 8
BUILD_CHUNK = 1 << 20
REBUILD_SHARE = 0.2
DELTA_REBUILD = 1 << 20  # descriptors registered since the build that start a rebuild (~2 600 pictures)
BUILD_NICE = 10
STOP_ENV = "RONGXIN_IVF_STOP_AT"  # fault injection (tests): the builder stops itself at this stage


def needs_rebuild(works: int, added_works: int, added_descriptors: int, removed: int) -> bool:
    """Whether a build holding ``works`` works is stale, given the works registered since
    (and their descriptors) and the removals since."""
    return (added_works + removed > REBUILD_SHARE * max(works, 1)) or added_descriptors > DELTA_REBUILD


def read_pointer(folder: Path) -> dict[str, Any] | None:
    try:
        with open(folder / POINTER, encoding="utf-8") as fh:
            meta = json.load(fh)
    except (OSError, ValueError):
        return None
    return meta if isinstance(meta, dict) and isinstance(meta.get("build"), str) else None


class BuildLock:
    """The exclusive ``flock`` on ``orbivf.lock`` (see the module doc). ``fd`` adopts a
    descriptor already locked by the process that started this one."""

    def __init__(self, folder: Path, fd: int | None = None) -> None:
        self.path = folder / LOCK
        self.fd = fd

    def acquire(self, wait: bool) -> bool:
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX if wait else fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return False
        self.fd = fd
        return True

    def release(self) -> None:
        if self.fd is not None:
            os.close(self.fd)  # closing the last descriptor of the open file drops the flock
            self.fd = None

    def note(self, stage: str) -> None:
        """Record the stage in the lock file; under fault injection, stop here."""
        if self.fd is not None:
            text = json.dumps({"pid": os.getpid(), "stage": stage, "at": round(time.time(), 3)}).encode()
            os.ftruncate(self.fd, 0)
            os.pwrite(self.fd, text, 0)
        if os.environ.get(STOP_ENV) == stage:
            os.kill(os.getpid(), signal.SIGSTOP)


def building(folder: Path) -> bool:
    """Whether a builder holds the lock of ``folder`` now."""
    lock = BuildLock(folder)
    try:
        if not lock.acquire(wait=False):
            return True
    except OSError:  # no lock file can be made here (read-only folder): no builder either
        return False
    lock.release()
    return False


def start(folder: Path, *, force: bool = False) -> subprocess.Popen[bytes] | None:
    """Start a builder process for ``folder`` unless one is running (then None). The lock is
    taken here and its descriptor handed to the child, so of two processes that find the
    file stale at once only one starts a builder."""
    lock = BuildLock(folder)
    if not lock.acquire(wait=False):
        return None
    assert lock.fd is not None
    try:
        with open(folder / LOG, "wb") as log:
            cmd = [sys.executable, "-m", "fingerprint.ivf", "build", str(folder), "--lock-fd", str(lock.fd)]
            proc = subprocess.Popen(cmd + (["--force"] if force else []), pass_fds=(lock.fd,),
                                    stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=log,
                                    start_new_session=True)
        # the lock file names its holder from now on, not the previous builder, until the child
        # (still importing) records its own first stage
        text = json.dumps({"pid": proc.pid, "stage": "starting", "at": round(time.time(), 3)}).encode()
        os.ftruncate(lock.fd, 0)
        os.pwrite(lock.fd, text, 0)
        return proc
    finally:
        lock.release()  # the child's inherited descriptor keeps the lock


def _snapshot(db: sqlite3.Connection) -> dict[str, Any]:
    """What the build will hold, read in the caller's open read transaction."""
    n_desc, n_works, max_wid = db.execute(
        "SELECT COALESCE(SUM(LENGTH(desc)), 0) / 32, COUNT(*), COALESCE(MAX(wid), 0) FROM orb").fetchone()
    (built_at,) = db.execute("SELECT COALESCE(MAX(added_at), 0) FROM works").fetchone()
    row = db.execute("SELECT value FROM meta WHERE key='removals'").fetchone()
    return {"descriptors": int(n_desc), "works": int(n_works), "max_wid": int(max_wid),
            "built_at": float(built_at), "removals": int(row[0]) if row else 0}


def stale(db: sqlite3.Connection, meta: dict[str, Any] | None) -> bool:
    """Whether the build ``meta`` (the pointer) must be replaced, from the database alone."""
    if meta is None or "removals" not in meta:
        return True
    row = db.execute("SELECT value FROM meta WHERE key='removals'").fetchone()
    removals = int(row[0]) if row else 0
    if removals < int(meta["removals"]):
        return True  # the database was replaced under the file
    n, d = db.execute("SELECT COUNT(*), COALESCE(SUM(LENGTH(desc)), 0) / 32 FROM orb WHERE wid > ?",
                      (int(meta["max_wid"]),)).fetchone()
    return needs_rebuild(int(meta["works"]), int(n), int(d), removals - int(meta["removals"]))


def _rows(db: sqlite3.Connection, upto: int) -> Any:
    return db.execute("SELECT wid, desc FROM orb WHERE wid <= ? ORDER BY wid", (upto,))


def _train(db: sqlite3.Connection, snap: dict[str, Any]) -> Vocabulary:
    n_desc = snap["descriptors"]
    rng = np.random.default_rng(secrets.randbits(64))
    keep = min(1.0, TRAIN_SAMPLE / max(n_desc, 1))
    sample: list[U8] = []
    for _, d in _rows(db, snap["max_wid"]):
        a = np.frombuffer(d, np.uint8).reshape(-1, 32)
        sample.append(a if keep >= 1.0 else a[rng.random(a.shape[0]) < keep])
    n_words = max(1, min(TOP_WORDS * LEAF_MAX, n_desc // CELL))
    return Vocabulary.train(np.concatenate(sample) if sample else np.zeros((0, 32), np.uint8), n_words, n_desc)


def _quantise_all(db: sqlite3.Connection, vocab: Vocabulary, snap: dict[str, Any], sub: Path) -> tuple[I32, I32]:
    """Words and works of every descriptor of the snapshot, in table order; the descriptors
    themselves go to ``sub/raw.npy`` (removed after the build)."""
    n_desc = snap["descriptors"]
    raw = np.lib.format.open_memmap(sub / "raw.npy", mode="w+", dtype=np.uint8, shape=(max(n_desc, 1), 32))
    words = np.zeros(n_desc, np.int32)
    wids = np.zeros(n_desc, np.int32)
    at = 0
    batch: list[U8] = []
    bw: list[int] = []
    rows = _rows(db, snap["max_wid"])
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


def _write(db: sqlite3.Connection, vocab: Vocabulary, snap: dict[str, Any], sub: Path, lock: BuildLock) -> int:
    """The postings of the snapshot into ``sub``, every file fsynced; returns their count."""
    words, wids = _quantise_all(db, vocab, snap, sub)
    lock.note("quantised")
    order = np.argsort(words, kind="stable")
    offsets = np.zeros(vocab.size + 1, np.int64)
    np.cumsum(np.bincount(words, minlength=vocab.size), out=offsets[1:])
    np.save(sub / "offsets.npy", offsets)
    np.save(sub / "works.npy", np.unique(wids).astype(np.int32))
    np.save(sub / "wids.npy", wids[order])
    del words, wids
    raw = np.load(sub / "raw.npy", mmap_mode="r")
    out = np.lib.format.open_memmap(sub / "desc.npy", mode="w+", dtype=np.uint8, shape=(order.size, 32))
    for i in range(0, order.size, BUILD_CHUNK):
        part = order[i:i + BUILD_CHUNK]
        out[i:i + BUILD_CHUNK] = raw[np.sort(part)][np.argsort(np.argsort(part))]
    out.flush()
    del raw, out
    (sub / "raw.npy").unlink()
    vocab.save(sub)
    for p in sub.iterdir():
        with open(p, "rb") as fh:
            os.fsync(fh.fileno())
    _fsync_dir(sub)
    return int(order.size)


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def clean(folder: Path, keep: str | None) -> list[str]:
    """Delete build folders and pointer temp files other than build ``keep`` (call with the
    lock held: they are a killed builder's or a finished switch's leftovers)."""
    gone = []
    for p in folder.iterdir():
        if p.name.startswith(PREFIX) and p.is_dir() and p.name != f"{PREFIX}{keep}":
            shutil.rmtree(p, ignore_errors=True)
            gone.append(p.name)
        elif p.name.startswith(f".{POINTER}.") and p.name.endswith(".tmp"):
            p.unlink(missing_ok=True)
            gone.append(p.name)
    return gone


def build(db: sqlite3.Connection, folder: Path, lock: BuildLock, *, force: bool = False) -> dict[str, Any] | None:
    """With ``lock`` held: clean leftovers, and unless the current build is fresh (and not
    ``force``), write a new one and switch the pointer to it. Returns the new pointer."""
    lock.note("started")
    old = read_pointer(folder)
    clean(folder, old["build"] if old else None)
    if not force and not stale(db, old):
        return None
    db.execute("BEGIN")  # one read snapshot for the whole build: counts and rows agree
    try:
        snap = _snapshot(db)
        vocab = None
        if old is not None:
            try:
                vocab = Vocabulary.load(folder / f"{PREFIX}{old['build']}")
            except (OSError, ValueError, KeyError):
                vocab = None
        if vocab is None or vocab.trained_on * RETRAIN_GROWTH < snap["descriptors"]:
            vocab = _train(db, snap)
        lock.note("trained")
        bid = secrets.token_hex(6)
        sub = folder / f"{PREFIX}{bid}"
        sub.mkdir()
        try:
            n = _write(db, vocab, snap, sub, lock)
        except BaseException:
            shutil.rmtree(sub, ignore_errors=True)
            raise
    finally:
        db.execute("COMMIT")
    meta = {"build": bid, **snap, "descriptors": n, "words": vocab.size}
    lock.note("written")
    _atomic_write(folder / POINTER, json.dumps(meta).encode())
    lock.note("switched")
    if old is not None:
        shutil.rmtree(folder / f"{PREFIX}{old['build']}", ignore_errors=True)
    return meta


def main(argv: list[str]) -> int:
    """``build FOLDER [--lock-fd N] [--force] [--wait]``: the builder process."""
    import argparse

    from .index import DB_NAME

    ap = argparse.ArgumentParser(prog="python -m fingerprint.ivf")
    sub = ap.add_subparsers(dest="cmd", required=True)
    b = sub.add_parser("build", help="bring the ORB inverted file of an index folder up to date")
    b.add_argument("folder", type=Path)
    b.add_argument("--lock-fd", type=int, default=None, help=argparse.SUPPRESS)
    b.add_argument("--force", action="store_true", help="build even when the current build is fresh")
    b.add_argument("--wait", action="store_true", help="wait for a running builder instead of leaving")
    a = ap.parse_args(argv)
    if not (a.folder / DB_NAME).is_file():
        print(f"error: {a.folder}: no fingerprint index here", file=sys.stderr)
        return 2
    lock = BuildLock(a.folder, a.lock_fd)
    if a.lock_fd is None and not lock.acquire(wait=a.wait):
        print(f"{a.folder}: another builder is running", file=sys.stderr)
        return 0
    try:
        os.nice(BUILD_NICE)
    except OSError:
        pass
    db = sqlite3.connect(a.folder / DB_NAME, isolation_level=None, timeout=60)
    try:
        t0 = time.perf_counter()
        meta = build(db, a.folder, lock, force=a.force)
        print(json.dumps({"built": meta, "seconds": round(time.perf_counter() - t0, 1)}), file=sys.stderr)
    except (OSError, sqlite3.Error, ValueError) as exc:  # the previous build stays in use
        print(f"error: {a.folder}: build failed: {exc}", file=sys.stderr)
        return 1
    finally:
        db.close()
        lock.release()
    return 0
