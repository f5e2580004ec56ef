"""The index's in-memory structures: flat indexes of 256-bit codes (searched by the compiled
scans of ``fingerprint.scan``) and sorted posting arrays (both rebuilt from the SQLite source
of truth, see ``fingerprint.index``),
and the atomic file write their caches use."""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt

U8 = npt.NDArray[np.uint8]
I64 = npt.NDArray[np.int64]


def _atomic_write(path: Path, data: bytes) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
        dfd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(dfd)
        finally:
            os.close(dfd)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


@dataclass(frozen=True)
class CodeHits:
    """Hamming search result: for each hit the query row, the work, the item time (frames of
    a video; 0 for an image) and the distance."""

    query_rows: I64
    work_ids: list[str]
    times: npt.NDArray[np.float64]
    distances: I64

    def rows(self, lo: int, hi: int) -> CodeHits:
        """The hits of query rows ``lo`` to ``hi - 1``, renumbered from 0 (several searches
        made as one)."""
        k = np.flatnonzero((self.query_rows >= lo) & (self.query_rows < hi))
        return CodeHits(self.query_rows[k] - lo, [self.work_ids[i] for i in k.tolist()], self.times[k],
                        self.distances[k])


class _BinaryIndex:
    """256-bit codes with the work and time of each row, searched by the compiled scans of
    :mod:`fingerprint.scan` (``knn``, ``within``: what FAISS's flat binary index returns,
    faster, and shared among threads for large searches)."""

    def __init__(self, codes: U8, wids: I64, times: npt.NDArray[np.float64], bits: int) -> None:
        c = np.ascontiguousarray(codes, np.uint8)
        if bits != 256 or c.ndim != 2 or c.shape[1] != 32 or not wids.shape == times.shape == (c.shape[0],):
            raise ValueError(f"codes {c.shape} of {bits} bits with {wids.shape} works and {times.shape} times")
        if c.ctypes.data % 8:  # read as uint64 by the scans (bytes from SQLite need not be aligned)
            c = c.copy()
        self.codes = c
        self.bits = bits
        self.ntotal = int(c.shape[0])
        self.wids = wids
        self.times = times

    def range(self, queries: U8, radius: int) -> tuple[I64, I64, I64]:
        from .scan import within

        if self.ntotal == 0 or queries.shape[0] == 0:
            z = np.zeros(0, np.int64)
            return z, z, z
        return within(queries, self.codes.view(np.uint64), radius)

    def knn(self, queries: U8, k: int) -> tuple[I64, I64, I64]:
        from .scan import knn

        if self.ntotal == 0 or queries.shape[0] == 0:
            z = np.zeros(0, np.int64)
            return z, z, z
        k = min(k, self.ntotal)
        dist, ids = knn(queries, self.codes.view(np.uint64), k)
        rows = np.repeat(np.arange(queries.shape[0]), k)
        return rows.astype(np.int64), ids.reshape(-1).astype(np.int64), dist.reshape(-1).astype(np.int64)


class _Postings:
    """An inverted table as sorted arrays (hash, work, time, extra) for works up to
    ``max_wid``; ``removals`` is the index's removal counter when it was built."""

    def __init__(self, hashes: I64, wids: npt.NDArray[np.int32], times: npt.NDArray[np.int32],
                 extra: npt.NDArray[np.int32], removals: int, max_wid: int, n_works: int) -> None:
        self.hashes, self.wids, self.times, self.extra = hashes, wids, times, extra
        self.removals, self.max_wid, self.n_works = removals, max_wid, n_works

    def lookup(self, uniq: I64) -> tuple[I64, I64, I64, I64]:
        lo = np.searchsorted(self.hashes, uniq, "left")
        hi = np.searchsorted(self.hashes, uniq, "right")
        n = hi - lo
        idx = np.repeat(lo - np.concatenate([[0], np.cumsum(n)[:-1]]), n) + np.arange(int(n.sum()))
        return (self.hashes[idx], self.wids[idx].astype(np.int64), self.times[idx].astype(np.int64),
                self.extra[idx].astype(np.int64))

    def save(self, path: Path) -> None:
        import io

        buf = io.BytesIO()
        np.savez(buf, hashes=self.hashes, wids=self.wids, times=self.times, extra=self.extra,
                 meta=np.array([self.removals, self.max_wid, self.n_works], np.int64))
        _atomic_write(path, buf.getvalue())

    @staticmethod
    def load(path: Path) -> _Postings | None:
        try:
            with np.load(path) as z:
                removals, max_wid, n_works = (int(x) for x in z["meta"])
                return _Postings(z["hashes"], z["wids"], z["times"], z["extra"], removals, max_wid, n_works)
        except (OSError, KeyError, ValueError):
            return None
