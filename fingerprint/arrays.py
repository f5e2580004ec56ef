"""The index's in-memory structures: FAISS binary flat indexes over 256-bit codes and sorted
posting arrays (both rebuilt from the SQLite source of truth, see ``fingerprint.index``),
and the atomic file write their caches use."""

from __future__ import annotations

import os
import tempfile
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


class _BinaryIndex:
    """A FAISS binary flat index over 256-bit codes with the work and time of each row."""

    def __init__(self, codes: U8, wids: I64, times: npt.NDArray[np.float64], bits: int) -> None:
        import faiss

        # one thread: a query is one request among many on a machine whose cores the node,
        # its peers and its workers already use; FAISS's OpenMP pool then only adds waiting
        # (measured ~10x slower wall time on a loaded 2-core machine)
        faiss.omp_set_num_threads(1)
        self.index = faiss.IndexBinaryFlat(bits)
        if codes.shape[0]:
            self.index.add(np.ascontiguousarray(codes))
        self.wids = wids
        self.times = times

    def range(self, queries: U8, radius: int) -> tuple[I64, I64, I64]:
        if self.index.ntotal == 0 or queries.shape[0] == 0:
            z = np.zeros(0, np.int64)
            return z, z, z
        lims, dist, ids = self.index.range_search(np.ascontiguousarray(queries), radius + 1)
        rows = np.repeat(np.arange(queries.shape[0]), np.diff(lims.astype(np.int64)))
        return rows.astype(np.int64), np.asarray(ids, np.int64), np.asarray(dist, np.int64)

    def knn(self, queries: U8, k: int) -> tuple[I64, I64, I64]:
        if self.index.ntotal == 0 or queries.shape[0] == 0:
            z = np.zeros(0, np.int64)
            return z, z, z
        k = min(k, self.index.ntotal)
        dist, ids = self.index.search(np.ascontiguousarray(queries), k)
        rows = np.repeat(np.arange(queries.shape[0]), k)
        ids = ids.reshape(-1)
        keep = ids >= 0
        return rows[keep].astype(np.int64), ids[keep].astype(np.int64), dist.reshape(-1)[keep].astype(np.int64)


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
