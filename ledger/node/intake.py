"""Transaction intake: decode and verify submitted transactions away from the consensus loop.

A node's one event loop runs consensus, gossip and execution; a submission (one transaction
or ``{"txs": [...]}``) costs ~0.2 ms of SM2 verification per transaction, so a flood of
batches verified on the loop would stall votes and commits. ``TxIntake`` ships the raw
request bytes to worker processes (``forkserver``, like ``ledger/crypto``'s verifier pool:
no inherited sockets or locks), where ``check_submission`` parses them, decodes each
transaction and verifies its signature; the loop gets back decoded transactions with a
verdict each and only admits them into the mempool (cheap: chain id, expiry, replay).

Workers end within ``WATCH_S`` of the node's death, even by SIGKILL.

Bounds: at most ``MAX_BATCH`` transactions per submission (more is refused whole, before any
is decoded), at most ``2 x workers`` submissions in the pool at once (later ones wait on
the loop without using it), and at most ``8 x workers`` being read or checked (``slot``):
beyond that a submission is refused before its body is read, so memory stays bounded. Each worker keeps its own key cache and SM2 tables of frequent
keys (docs/adr/0002), so hot keys verify as fast as on the loop.
"""

from __future__ import annotations

import asyncio
import logging
import multiprocessing
import os
import signal
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from ..codec import EncodingError, parse
from ..crypto.sm2 import use_tables
from ..errors import LedgerError
from ..tx import InvalidTransaction, Transaction

log = logging.getLogger("rongxin.intake")

MAX_BATCH = 2000  # transactions in one submission (a block holds at most max_block_txs, 2,000 by default)
TX_KEYS = {"body", "sig"}
WATCH_S = 0.5  # how often a worker checks that the node that started it is alive


class SubmissionError(LedgerError):
    """A submission refused as a whole, before any of its transactions is considered."""


class MalformedSubmission(SubmissionError):
    """The bytes are not JSON the canonical codec accepts (not UTF-8, a syntax error, a lone
    surrogate escape, a float, a duplicate key, an integer over 4,300 digits, too deep)."""


class InvalidSubmission(SubmissionError):
    """JSON of the wrong shape: not a transaction object nor ``{"txs": [...]}``, or unknown fields."""


class BatchTooLarge(SubmissionError):
    """More transactions in one submission than ``MAX_BATCH``."""


class IntakeUnavailable(SubmissionError):
    """The verification workers could not be reached (they are restarted; retry)."""


class IntakeBusy(IntakeUnavailable):
    """Too many submissions already being read or checked; retry shortly."""


@dataclass(frozen=True)
class Checked:
    """A submission after decoding and signature verification. ``items`` has one entry per
    submitted transaction, in order: the decoded transaction (``None`` when it could not be
    decoded) and the reason it is refused (``None`` when its signature verified)."""

    batch: bool
    items: list[tuple[Transaction | None, str | None]]

    @property
    def verified(self) -> list[Transaction]:
        return [tx for tx, reason in self.items if tx is not None and reason is None]


def _envelope(obj: Any, max_batch: int) -> tuple[bool, list[Any]]:
    if not isinstance(obj, dict):
        raise InvalidSubmission('a submission is a transaction {"body", "sig"} or {"txs": [...]}, '
                                f"not a JSON {type(obj).__name__}")
    if "txs" in obj:
        extra = sorted(set(obj) - {"txs"})[:5]
        if extra:
            raise InvalidSubmission(f'unknown fields {extra} beside "txs"')
        items = obj["txs"]
        if not isinstance(items, list):
            raise InvalidSubmission('"txs" must be a list of transactions')
        if len(items) > max_batch:
            raise BatchTooLarge(f"{len(items)} transactions in one submission; the limit is {max_batch}")
        return True, items
    extra = sorted(set(obj) - TX_KEYS)[:5]
    if extra:
        raise InvalidSubmission(f'unknown fields {extra}; a transaction has exactly "body" and "sig"')
    return False, [obj]


def check_submission(raw: bytes, max_batch: int = MAX_BATCH) -> Checked:
    """Parse a submission, decode every transaction and verify its signature (in a worker)."""
    try:
        obj = parse(raw)
    except EncodingError as exc:
        raise MalformedSubmission(str(exc)) from None
    batch, objs = _envelope(obj, max_batch)
    items: list[tuple[Transaction | None, str | None]] = []
    for item in objs:
        try:
            tx = Transaction.decode(item, parsed=True)  # parse() above checked every value
        except InvalidTransaction as exc:
            items.append((None, str(exc)))
            continue
        try:
            tx.verify_signature()
        except InvalidTransaction as exc:
            items.append((tx, str(exc)))
            continue
        items.append((tx, None))
    return Checked(batch, items)


def _worker_init(tables: bool, parent_pid: int) -> None:
    """In each worker: the parent's SM2 table setting, Ctrl-C left to the parent, and a
    watchdog that ends the worker when the process that made the pool is gone (a worker's
    own parent is the forkserver, which outlives a SIGKILLed node while workers hold it)."""
    use_tables(tables)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    threading.Thread(target=_watch, args=(parent_pid,), name="intake-watchdog", daemon=True).start()


def _watch(pid: int) -> None:
    while True:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            os._exit(0)
        except PermissionError:
            pass  # alive, under another user (not expected)
        time.sleep(WATCH_S)


def _ready(_i: int) -> bool:
    """A no-op job: importing this module in a worker loads the codec, transactions and SM2."""
    return True


class TxIntake:
    """Where ``check_submission`` runs: ``workers > 0`` worker processes; else ``threads > 0``
    threads of the node's own process (SM2 verification runs in libcrypto with the GIL
    released, so the event loop keeps running; no pickling, the node's SM2 tables shared);
    else the caller's thread (what a node did before)."""

    def __init__(self, workers: int | None = None, *, tables: bool = True, max_batch: int = MAX_BATCH,
                 threads: int = 0) -> None:
        self.workers = (os.cpu_count() or 1) if workers is None else workers
        self.threads = threads if self.workers <= 0 else 0
        self.tables = tables
        self.max_batch = max_batch
        self._threads: ThreadPoolExecutor | None = None
        self._pool: ProcessPoolExecutor | None = None
        self._lock = threading.Lock()  # start() may run on another thread than check()
        self._slots: asyncio.Semaphore | None = None
        self.max_pending = 8 * max(1, self.workers, self.threads)
        self.pending = 0

    @contextmanager
    def slot(self) -> Iterator[None]:
        """Hold one of ``max_pending`` places while a submission is read and checked; raise
        ``IntakeBusy`` when none is free (on the event loop's thread only)."""
        if self.pending >= self.max_pending:
            raise IntakeBusy(f"{self.pending} submissions are being checked; retry shortly")
        self.pending += 1
        try:
            yield
        finally:
            self.pending -= 1

    def start(self) -> None:
        """Start the workers and wait until each answers (call off the loop: it takes ~1 s)."""
        if self.workers > 0:
            list(self._get_pool().map(_ready, range(self.workers)))

    def _get_pool(self) -> ProcessPoolExecutor:
        with self._lock:
            if self._pool is None:
                ctx = multiprocessing.get_context("forkserver")
                self._pool = ProcessPoolExecutor(max_workers=self.workers, mp_context=ctx,
                                                 initializer=_worker_init, initargs=(self.tables, os.getpid()))
            return self._pool

    async def check(self, raw: bytes) -> Checked:
        """``check_submission(raw)`` in a worker; raises ``SubmissionError`` subclasses."""
        if self.workers <= 0 and self.threads > 0:
            if self._threads is None:
                self._threads = ThreadPoolExecutor(self.threads, thread_name_prefix="intake")
            return await asyncio.get_running_loop().run_in_executor(
                self._threads, check_submission, raw, self.max_batch)
        if self.workers <= 0:
            return check_submission(raw, self.max_batch)
        if self._slots is None:
            self._slots = asyncio.Semaphore(2 * self.workers)
        async with self._slots:
            pool = self._get_pool()
            try:
                return await asyncio.wrap_future(pool.submit(check_submission, raw, self.max_batch))
            except BrokenProcessPool:
                log.error("a transaction verification worker died; starting new workers")
                with self._lock:
                    if self._pool is pool:
                        self._pool = None
                pool.shutdown(wait=False, cancel_futures=True)
                raise IntakeUnavailable("the verification workers restarted; retry the submission") from None

    def close(self) -> None:
        if self._threads is not None:
            self._threads.shutdown(wait=True, cancel_futures=True)
            self._threads = None
        with self._lock:
            pool, self._pool = self._pool, None
        if pool is not None:
            pool.shutdown(wait=True, cancel_futures=True)
