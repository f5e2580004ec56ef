"""The embedded, crash-safe key-value stores under the state tree and the blocks.

Owns ``MemoryStore`` (tests), ``LMDBStore`` (the default: one LMDB write transaction per
batch) and ``SQLiteStore`` (the stdlib alternative, WAL mode), all implementing
``abc.KVStore``. Each ``write`` is one atomic, durable commit, so one block written as
one batch survives ``kill -9`` whole or not at all. Must not know what keys mean (the tree
and the application own their prefixes) and must not be shared between threads.
"""

from __future__ import annotations

import os
import sqlite3
import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import lmdb

from .errors import InvalidArgument, StoreClosed, StoreError

DEFAULT_MAP_SIZE = 1 << 34  # 16 GiB of address space to start; grows by doubling when full


def _check_batch(batch: Mapping[bytes, bytes | None]) -> None:
    for key, value in batch.items():
        if not isinstance(key, bytes) or not key:
            raise InvalidArgument(f"store keys must be non-empty bytes, got {key!r}")
        if value is not None and not isinstance(value, bytes):
            raise InvalidArgument(f"store values must be bytes or None (delete), got {type(value).__name__}")


class MemoryStore:
    """A dict behind the ``KVStore`` interface, for tests; batches are atomic by construction."""

    def __init__(self) -> None:
        self._data: dict[bytes, bytes] | None = {}

    def _live(self) -> dict[bytes, bytes]:
        if self._data is None:
            raise StoreClosed("the in-memory store is closed")
        return self._data

    def get(self, key: bytes) -> bytes | None:
        return self._live().get(key)

    def write(self, batch: Mapping[bytes, bytes | None]) -> None:
        data = self._live()
        _check_batch(batch)
        for key, value in batch.items():
            if value is None:
                data.pop(key, None)
            else:
                data[key] = value

    def iterate(self, prefix: bytes) -> Iterator[tuple[bytes, bytes]]:
        data = self._live()
        keys = sorted(k for k in data if k.startswith(prefix))
        snapshot = [(k, data[k]) for k in keys]
        yield from snapshot

    def close(self) -> None:
        self._data = None

    def __len__(self) -> int:
        return len(self._live())


class LMDBStore:
    """LMDB in a folder (``data.mdb`` + ``lock.mdb``): one write transaction per batch.

    ``sync=True`` (the default) fsyncs at every commit, so a committed batch also survives
    power loss; ``sync=False`` survives ``kill -9`` but not power loss. Open a folder once
    per process (LMDB's rule: a second handle in the same process breaks its locks); keeping
    a second node process off the folder is the node's ``flock``, not this class.
    """

    def __init__(self, path: str | os.PathLike[str], *, map_size: int = DEFAULT_MAP_SIZE,
                 sync: bool = True) -> None:
        folder = Path(path)
        try:
            folder.mkdir(parents=True, exist_ok=True)
            self._env: lmdb.Environment | None = lmdb.open(
                str(folder), map_size=map_size, subdir=True, max_dbs=0, sync=sync, metasync=sync,
                readahead=False, meminit=False, lock=True)
            self._env.reader_check()  # free reader slots left by a process killed with -9
        except (OSError, lmdb.Error) as exc:
            raise StoreError(f"cannot open the LMDB store in {folder}: {exc}") from exc
        self._path = folder
        self._reader: Any = None
        self._owner = threading.get_ident()

    def _live(self) -> lmdb.Environment:
        if self._env is None:
            raise StoreClosed(f"the store in {self._path} is closed")
        return self._env

    def _read_txn(self) -> Any:
        if self._reader is None:
            self._reader = self._live().begin(buffers=False)
        return self._reader

    def _drop_reader(self) -> None:
        if self._reader is not None:
            self._reader.abort()
            self._reader = None

    def get(self, key: bytes) -> bytes | None:
        if threading.get_ident() != self._owner:
            # the cached snapshot belongs to the thread that writes; another thread reads
            # through its own short transaction so it never pins or races that snapshot
            with self._live().begin(buffers=False) as txn:
                other: bytes | None = txn.get(key)
                return other
        reader = self._reader if self._reader is not None else self._read_txn()
        value: bytes | None = reader.get(key)
        return value

    def write(self, batch: Mapping[bytes, bytes | None]) -> None:
        env = self._live()
        self._drop_reader()
        while True:
            try:
                with env.begin(write=True) as txn:
                    delete = txn.delete
                    puts = []
                    for key, value in batch.items():
                        if value is None:
                            delete(key)
                        else:
                            puts.append((key, value))
                    txn.cursor().putmulti(puts)  # one C loop: ~30 % faster than put() per key
                return
            except lmdb.MapFullError:
                env.set_mapsize(env.info()["map_size"] * 2)
            except (TypeError, lmdb.BadValsizeError) as exc:
                _check_batch(batch)  # names the offending key or value; the transaction was aborted
                raise StoreError(f"LMDB refused the batch ({exc}); keys are limited to "
                                 f"{env.max_key_size()} bytes") from exc
            except lmdb.Error as exc:
                raise StoreError(f"writing to the store in {self._path} failed: {exc}") from exc

    def iterate(self, prefix: bytes) -> Iterator[tuple[bytes, bytes]]:
        env = self._live()
        with env.begin(buffers=False) as txn:
            cursor = txn.cursor()
            if not cursor.set_range(prefix):
                return
            for key, value in cursor:
                if not key.startswith(prefix):
                    return
                yield key, value

    def disk_bytes(self) -> int:
        """Bytes the store uses on disk (LMDB's last used page, not the sparse file size)."""
        env = self._live()
        info = env.info()
        stat = env.stat()
        return int((info["last_pgno"] + 1) * stat["psize"])

    def live_bytes(self) -> int:
        """Bytes in pages that hold data now (freed pages are reused by later commits)."""
        stat = self._live().stat()
        return int((stat["branch_pages"] + stat["leaf_pages"] + stat["overflow_pages"]) * stat["psize"])

    def close(self) -> None:
        if self._env is not None:
            self._drop_reader()
            self._env.close()
            self._env = None


def _prefix_end(prefix: bytes) -> bytes | None:
    """The smallest key greater than every key starting with ``prefix`` (``None``: no bound)."""
    trimmed = prefix.rstrip(b"\xff")
    if not trimmed:
        return None
    return trimmed[:-1] + bytes([trimmed[-1] + 1])


class SQLiteStore:
    """SQLite (stdlib) in WAL mode, one table, one transaction per batch.

    ``synchronous=FULL`` by default (durable on power loss); ``NORMAL`` survives ``kill -9``.
    """

    def __init__(self, path: str | os.PathLike[str], *, sync: bool = True) -> None:
        folder = Path(path)
        try:
            folder.mkdir(parents=True, exist_ok=True)
            self._db: sqlite3.Connection | None = sqlite3.connect(
                str(folder / "store.sqlite"), isolation_level=None, check_same_thread=True)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute(f"PRAGMA synchronous={'FULL' if sync else 'NORMAL'}")
            self._db.execute("CREATE TABLE IF NOT EXISTS kv (k BLOB PRIMARY KEY, v BLOB NOT NULL) WITHOUT ROWID")
        except sqlite3.Error as exc:
            raise StoreError(f"cannot open the SQLite store in {folder}: {exc}") from exc
        self._path = folder

    def _live(self) -> sqlite3.Connection:
        if self._db is None:
            raise StoreClosed(f"the store in {self._path} is closed")
        return self._db

    def get(self, key: bytes) -> bytes | None:
        row = self._live().execute("SELECT v FROM kv WHERE k = ?", (key,)).fetchone()
        return None if row is None else bytes(row[0])

    def write(self, batch: Mapping[bytes, bytes | None]) -> None:
        db = self._live()
        _check_batch(batch)
        puts = [(k, v) for k, v in batch.items() if v is not None]
        deletes = [(k,) for k, v in batch.items() if v is None]
        try:
            db.execute("BEGIN IMMEDIATE")
            try:
                db.executemany("DELETE FROM kv WHERE k = ?", deletes)
                db.executemany("INSERT OR REPLACE INTO kv (k, v) VALUES (?, ?)", puts)
            except BaseException:
                db.execute("ROLLBACK")
                raise
            db.execute("COMMIT")
        except sqlite3.Error as exc:
            raise StoreError(f"writing to the store in {self._path} failed: {exc}") from exc

    def iterate(self, prefix: bytes) -> Iterator[tuple[bytes, bytes]]:
        db = self._live()
        end = _prefix_end(prefix)
        if end is None:
            rows = db.execute("SELECT k, v FROM kv WHERE k >= ? ORDER BY k", (prefix,)).fetchall()
        else:
            rows = db.execute("SELECT k, v FROM kv WHERE k >= ? AND k < ? ORDER BY k", (prefix, end)).fetchall()
        for key, value in rows:
            yield bytes(key), bytes(value)

    def disk_bytes(self) -> int:
        return sum(p.stat().st_size for p in self._path.glob("store.sqlite*"))

    def live_bytes(self) -> int:
        """Bytes in database pages that hold data now (free pages excluded)."""
        db = self._live()
        pages = db.execute("PRAGMA page_count").fetchone()[0] - db.execute("PRAGMA freelist_count").fetchone()[0]
        return int(pages * db.execute("PRAGMA page_size").fetchone()[0])

    def close(self) -> None:
        if self._db is not None:
            self._db.close()
            self._db = None


_ABSENT = object()


class GroupedStore:
    """Group commit over any ``KVStore``: inside ``group()``, ``write`` batches collect in an
    overlay that reads see at once, and leave the group as ONE atomic, durable commit (one
    fsync instead of one per batch). Outside a group, writes pass straight through.

    Each grouped batch is complete when it is added, so flushing on an exception too keeps
    exactly the batches that a store without grouping would hold. What a group defers is
    only the point where its batches become durable: call ``flush()`` before anything that
    must not leave the process until the data is on disk (e.g. a vote after the safety
    record). ``iterate`` flushes first, so it sees everything written.
    """

    def __init__(self, inner: LMDBStore | SQLiteStore | MemoryStore) -> None:
        self.inner = inner
        self._overlay: dict[bytes, bytes | None] = {}
        self._flushing: dict[bytes, bytes | None] | None = None  # being written to ``inner``
        self._depth = 0

    def get(self, key: bytes) -> bytes | None:
        # Reads may come from other threads (the works worker reads committed state) while
        # the loop flushes: a batch stays visible in ``_flushing`` until ``inner`` holds it,
        # so a reader never finds a key in neither place. Each dict is read once.
        overlay = self._overlay
        value = overlay.get(key, _ABSENT)
        if value is not _ABSENT:
            return value  # type: ignore[return-value]
        flushing = self._flushing
        if flushing is not None:
            value = flushing.get(key, _ABSENT)
            if value is not _ABSENT:
                return value  # type: ignore[return-value]
        return self.inner.get(key)

    def write(self, batch: Mapping[bytes, bytes | None]) -> None:
        if self._depth == 0:
            self.inner.write(batch)
            return
        _check_batch(batch)
        self._overlay.update(batch)

    def flush(self) -> None:
        if self._overlay:
            pending = self._flushing = self._overlay  # visible to readers until written
            self._overlay = {}
            try:
                self.inner.write(pending)
            finally:
                self._flushing = None

    @contextmanager
    def group(self) -> Iterator[None]:
        self._depth += 1
        try:
            yield
        finally:
            self._depth -= 1
            if self._depth == 0:
                self.flush()

    def iterate(self, prefix: bytes) -> Iterator[tuple[bytes, bytes]]:
        self.flush()
        return self.inner.iterate(prefix)

    def close(self) -> None:
        self.flush()
        self.inner.close()


def open_store(path: str | os.PathLike[str], *, backend: str = "lmdb", sync: bool = True) -> LMDBStore | SQLiteStore:
    """Open (creating if needed) the node's store in folder ``path``: ``lmdb`` or ``sqlite``."""
    if backend == "lmdb":
        return LMDBStore(path, sync=sync)
    if backend == "sqlite":
        return SQLiteStore(path, sync=sync)
    raise InvalidArgument(f"unknown store backend {backend!r}; use 'lmdb' or 'sqlite'")
