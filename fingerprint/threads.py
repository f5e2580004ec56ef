"""The threads one query's work is shared among (latency, not throughput: the CPU time is the
same). Only code that releases the GIL runs in them — OpenCV's detectors, FAISS searches, the
compiled cell scan (:mod:`fingerprint.scan`) — so they run side by side on separate cores.
One pool per process (a forked worker makes its own)."""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor

# threads that share one task (two: the machines this runs on have two cores or more; more
# would add little, the rest of a query is serial)
THREADS = min(2, os.cpu_count() or 1)
_POOL: tuple[int, ThreadPoolExecutor] | None = None


def pool() -> ThreadPoolExecutor:
    """The process's pool: ``THREADS`` + 1 workers, so that one long task (the rectangles of
    a query) can run beside a task shared among ``THREADS`` (its tiles) without either
    waiting for a worker."""
    global _POOL
    if _POOL is None or _POOL[0] != os.getpid():
        _POOL = (os.getpid(), ThreadPoolExecutor(THREADS + 1, thread_name_prefix="fingerprint"))
    return _POOL[1]
