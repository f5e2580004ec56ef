"""The threads one query's work is shared among (latency, not throughput: the CPU time is the
same). What runs in them spends most of its time in code that releases the GIL — OpenCV's
detectors and filters, numpy on large arrays, the compiled cell scan (:mod:`fingerprint.scan`)
— so they run side by side on separate cores. One pool per process (a forked worker makes its
own). A task in the pool never submits to it or waits on it (no deadlock however many
threads share the pool)."""

from __future__ import annotations

import os
import threading
from concurrent.futures import ThreadPoolExecutor


def _cores() -> int:
    try:
        return len(os.sched_getaffinity(0))  # the cores this process may run on
    except (AttributeError, OSError):
        return os.cpu_count() or 1


# threads that share one task (two at most: the rest of a query is serial; one on a one-core
# machine, and in the worker processes of a batch, which already use every core)
THREADS = min(2, _cores())
_POOL: tuple[int, ThreadPoolExecutor] | None = None
_LOCK = threading.Lock()
_PREFIX = "fingerprint-pool"


def pool() -> ThreadPoolExecutor:
    """The process's pool: ``THREADS`` + 1 workers, so that one long task (the rectangles of
    a query) can run beside a task shared among ``THREADS`` (its tiles) without either
    waiting for a worker."""
    global _POOL
    with _LOCK:
        if _POOL is None or _POOL[0] != os.getpid():
            _POOL = (os.getpid(), ThreadPoolExecutor(THREADS + 1, thread_name_prefix=_PREFIX))
        return _POOL[1]


def shared() -> int:
    """How many threads a task may be shared among here: ``THREADS``, or 1 inside the pool
    itself (a task there must not wait on the pool)."""
    return 1 if threading.current_thread().name.startswith(_PREFIX) else THREADS


def single() -> None:
    """Share no task among threads in this process (a batch's worker processes: one per core)."""
    global THREADS
    THREADS = 1
