"""The operations callers use (the CLI, the registry, the evidence flow): add a file, add a
folder in bulk, query a file, query a folder. Fingerprinting of many files runs in worker
processes; only the parent writes to the index, one transaction per work.

Workers die with their parent: a killed ``rongxin fp add-dir`` leaves no worker behind
holding the index open (forked workers inherit its descriptors). Each worker, in its pool
initializer, asks Linux for ``SIGKILL`` when the thread that forked it exits
(``prctl(PR_SET_PDEATHSIG)``; only when that thread is the main thread, which lives as long as
the process), exits at once if its parent is already gone, and runs a thread that exits the
process within half a second of the parent's death (the portable fallback).
"""

from __future__ import annotations

import contextlib
import ctypes
import multiprocessing
import os
import signal
import sys
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from . import threads
from .errors import FingerprintError, UnreadableMedia
from .formats import Fingerprint, fingerprint_file, require_registrable
from .index import IndexBackend, LocalIndex, open_index
from .matching import QueryResult, match


@dataclass
class BulkReport:
    added: list[str] = field(default_factory=list)
    failed: list[tuple[str, str]] = field(default_factory=list)  # (file, reason)


def add_file(path: str | Path, work_id: str, index: IndexBackend | str | Path, *,
             replace: bool = False) -> Fingerprint:
    """Fingerprint ``path`` and register it under ``work_id``; a picture with too little
    information is refused (:class:`~fingerprint.errors.LowInformation`)."""
    fp = fingerprint_file(path)
    require_registrable(fp, str(path))
    if isinstance(index, IndexBackend):
        index.add(work_id, fp, replace=replace)
    else:
        with open_index(index) as idx:
            idx.add(work_id, fp, replace=replace)
    return fp


def list_files(folder: str | Path) -> list[Path]:
    root = Path(folder)
    if not root.is_dir():
        raise UnreadableMedia(str(root), "is not a folder")
    return sorted(p for p in root.rglob("*") if p.is_file() and not p.name.startswith("."))


def _fp_job(args: tuple[str, bool]) -> tuple[str, Fingerprint | None, str | None]:
    path, query = args
    try:
        return path, fingerprint_file(path, query=query), None
    except FingerprintError as exc:
        return path, None, str(exc)
    except (MemoryError, ValueError, RuntimeError) as exc:  # a decoder choking on hostile input
        return path, None, f"{path}: cannot be fingerprinted ({type(exc).__name__}: {exc})"


_PR_SET_PDEATHSIG = 1
PARENT_POLL_S = 0.5


def _watch_parent(parent_pid: int) -> None:
    while True:
        time.sleep(PARENT_POLL_S)
        if os.getppid() != parent_pid:
            os._exit(1)


def _die_with_parent(parent_pid: int, forked_by_main_thread: bool) -> None:
    """Pool initializer of the fingerprinting workers (see the module's docstring)."""
    if forked_by_main_thread and sys.platform.startswith("linux"):
        with contextlib.suppress(OSError, AttributeError):
            libc = ctypes.CDLL(None, use_errno=True)
            libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    if os.getppid() != parent_pid:  # the parent died before the request took effect
        os._exit(1)
    threading.Thread(target=_watch_parent, args=(parent_pid,), name="watch-parent", daemon=True).start()
    threads.single()  # one worker per core already: a query's tiles are not shared among threads


def _worker_pool(n: int) -> ProcessPoolExecutor:
    """``n`` forked workers, the caller's direct children, that die with it. (With the fork
    start method the pool starts every worker from the thread of its first submission.)"""
    return ProcessPoolExecutor(
        max_workers=n, mp_context=multiprocessing.get_context("fork"), initializer=_die_with_parent,
        initargs=(os.getpid(), threading.current_thread() is threading.main_thread()))


def fingerprint_many(paths: list[Path], *, query: bool = False, workers: int | None = None,
                     progress: bool = False, desc: str = "fingerprint"
                     ) -> Iterator[tuple[str, Fingerprint | None, str | None]]:
    """(path, fingerprint or None, error or None) for each path, in order; ``workers``
    processes (default: the cores, serial for a handful of files)."""
    jobs = [(str(p), query) for p in paths]
    n = workers if workers is not None else (os.cpu_count() or 1)
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=len(jobs), desc=desc, unit="file", file=sys.stderr)
    try:
        if n <= 1 or len(jobs) < 4:
            for job in jobs:
                yield _fp_job(job)
                if bar is not None:
                    bar.update(1)
        else:
            with _worker_pool(n) as pool:
                for item in pool.map(_fp_job, jobs, chunksize=1):
                    yield item
                    if bar is not None:
                        bar.update(1)
    finally:
        if bar is not None:
            bar.close()


def add_dir(folder: str | Path, index: IndexBackend | str | Path, *, replace: bool = False,
            workers: int | None = None, progress: bool = False) -> BulkReport:
    """Register every file under ``folder`` with its name (relative path) as work id. A bad
    file is reported in ``failed`` and skipped; each good file is committed on its own."""
    root = Path(folder)
    files = list_files(root)
    report = BulkReport()
    idx = index if isinstance(index, IndexBackend) else open_index(index)
    try:
        for path, fp, err in fingerprint_many(files, workers=workers, progress=progress, desc="ingest"):
            rel = Path(path).relative_to(root).as_posix()
            if fp is None:
                report.failed.append((rel, err or "unknown error"))
                continue
            try:
                require_registrable(fp, rel)
                idx.add(rel, fp, replace=replace)
            except FingerprintError as exc:
                report.failed.append((rel, str(exc)))
                continue
            report.added.append(rel)
        ivf = idx.inverted_file() if isinstance(idx, LocalIndex) and report.added else None
        if ivf is not None:
            ivf.ready()  # a bulk ingest brings the ORB inverted file up to date, not the next query
    finally:
        if not isinstance(index, IndexBackend):
            idx.close()
    return report


def query_file(path: str | Path, index: IndexBackend | str | Path) -> QueryResult:
    fp = fingerprint_file(path, query=True)
    if isinstance(index, IndexBackend):
        return match(index, fp)
    with open_index(index, create=False) as idx:
        return match(idx, fp)


def query_dir(folder: str | Path, index: IndexBackend | str | Path, *, workers: int | None = None,
              progress: bool = False) -> Iterator[tuple[str, QueryResult | None, str | None]]:
    """(file relative to ``folder``, result or None, error or None) for every file."""
    root = Path(folder)
    files = list_files(root)
    idx = index if isinstance(index, IndexBackend) else open_index(index, create=False)
    try:
        for path, fp, err in fingerprint_many(files, query=True, workers=workers, progress=progress,
                                              desc="query"):
            rel = Path(path).relative_to(root).as_posix()
            yield rel, (match(idx, fp) if fp is not None else None), err
    finally:
        if not isinstance(index, IndexBackend):
            idx.close()
