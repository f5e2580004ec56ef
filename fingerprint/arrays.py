"""The index's in-memory structures: FAISS binary flat indexes over 256-bit codes and sorted
posting arrays (both rebuilt from the SQLite source of truth, see ``fingerprint.index``),
and the atomic file write their caches use."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

U8 = npt.NDArray[np.uint8]
I64 = npt.NDArray[np.int64]
# a code search of at least this many code pairs (query rows × indexed codes) is shared among
# threads.THREADS threads: at 10⁶ registered pictures a screenshot's ~136 codes cost ~170 ms of CPU
SPLIT_PAIRS = 10_000_000


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
    """Codes (a FAISS binary flat index for range searches, built on first use; the nearest
    ``k`` of 256-bit codes by the compiled scan, :func:`fingerprint.scan.knn`, which returns
    what FAISS does) with the work and time of each row."""

    def __init__(self, codes: U8, wids: I64, times: npt.NDArray[np.float64], bits: int) -> None:
        self.codes = np.ascontiguousarray(codes, np.uint8).reshape(-1, bits // 8)
        self.bits = bits
        self.ntotal = int(self.codes.shape[0])
        self._faiss: Any = None
        self.wids = wids
        self.times = times

    @property
    def index(self) -> Any:
        """The FAISS index of the codes (built on first use)."""
        if self._faiss is None:
            import faiss

            # one thread: a query is one request among many on a machine whose cores the node,
            # its peers and its workers already use; FAISS's OpenMP pool then only adds waiting
            # (measured ~10x slower wall time on a loaded 2-core machine)
            faiss.omp_set_num_threads(1)
            idx = faiss.IndexBinaryFlat(self.bits)
            if self.ntotal:
                idx.add(self.codes)
            self._faiss = idx
        return self._faiss

    def _shared(self, queries: U8, search: Any) -> list[Any]:
        """``search`` over row ranges of ``queries``: cut in ``threads.shared()`` parts when
        they are many enough against a large index (FAISS releases the GIL: the parts run on
        separate cores; every query row is searched alone, so the results are the same)."""
        import faiss

        from . import threads

        nq = queries.shape[0]
        parts = threads.shared() if nq >= 2 and nq * self.ntotal >= SPLIT_PAIRS else 1
        q = np.ascontiguousarray(queries)
        cuts = [nq * k // parts for k in range(parts + 1)]

        def part(k: int) -> Any:
            # OpenMP's thread count is a setting of each thread: one here too (see ``index``),
            # whichever thread (a pool's, a server's) searches
            faiss.omp_set_num_threads(1)
            return search(q[cuts[k]:cuts[k + 1]])

        return [part(0)] if parts == 1 else list(threads.pool().map(part, range(parts)))

    def range(self, queries: U8, radius: int) -> tuple[I64, I64, I64]:
        if self.ntotal == 0 or queries.shape[0] == 0:
            z = np.zeros(0, np.int64)
            return z, z, z
        index = self.index
        done = self._shared(queries, lambda q: index.range_search(q, radius + 1))
        counts = np.concatenate([np.diff(lims.astype(np.int64)) for lims, _, _ in done])
        rows = np.repeat(np.arange(queries.shape[0]), counts)
        return (rows.astype(np.int64), np.concatenate([np.asarray(ids, np.int64) for _, _, ids in done]),
                np.concatenate([np.asarray(dist, np.int64) for _, dist, _ in done]))

    def knn(self, queries: U8, k: int) -> tuple[I64, I64, I64]:
        if self.ntotal == 0 or queries.shape[0] == 0:
            z = np.zeros(0, np.int64)
            return z, z, z
        k = min(k, self.ntotal)
        if self.bits == 256:
            from .scan import knn

            dist, ids = knn(queries, self.codes.view(np.uint64), k)
        else:
            index = self.index
            done = self._shared(queries, lambda q: index.search(q, k))
            dist = np.concatenate([d for d, _ in done])
            ids = np.concatenate([i for _, i in done])
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
