"""Parallel execution within a block: the ``Precomputer`` of ``ledger.node.app``.

Transactions of ``parallel`` types whose predicted state keys (``TxType.keys``) do not
conflict run at the same time in separate processes (Python threads do not run bytecode in
parallel). ``LedgerApp.execute`` then walks the block in order and keeps a precomputed
outcome only if every value it read still holds at its place; anything else runs again
there, so the state root is always that of serial execution in block order. Nothing here
can make a block's result differ from serial execution; a bad plan only costs time.

How a block is run ahead (``ParallelExecutor.precompute``):

1. Jobs without a prediction (``keys`` returns ``None``) are left to block order.
2. Jobs whose predicted key sets intersect are joined into one component (union-find over
   keys), so they end up on the same executor, which runs its jobs one after the other in
   block order over its own overlay: a job sees the writes of the executor's earlier jobs,
   as it would in serial execution when no other executor touches those keys.
   Keys predicted by very many jobs of the block ("hubs": a contract's code, a token's
   metadata) would glue the whole block into one component; they are assumed to be read
   only and do not join components, unless such a key was seen written by a precomputed
   transaction lately, after which it joins again.
3. Components are packed onto the executors by estimated cost (largest first onto the least
   loaded executor; a moving average of measured run times per type, or per contract method
   for user-contract calls, ``cost_key``). The executors are ``workers`` persistent worker
   processes (default: one per CPU) and, with ``use_main``, this process too, which then
   starts with a handicap learnt from how much earlier or later than it the workers finished
   in earlier blocks. Measured on two cores (bench/contracts.py: 2,000 WebAssembly calls of
   about 1 ms), two workers and an idle parent gave 1.82-1.90x, one worker plus this process
   1.78-1.86x: a call runs about 5 % slower in the parent (its large heap, reads through the
   state tree), which outweighs the pickling its share saves (about 8 us a call). An idle
   parent also leaves the node's own threads some room. Blocks estimated under
   ``min_ship_s`` of work are not run ahead at all (block order runs them; a round trip to
   the workers would cost more than it saves).
4. Each worker gets one message: its jobs and the values of all keys they predicted, read
   here from the state before the block (each value once per message, so a contract's
   code travels once). In the worker a read of any other key raises ``NotPrefetched`` and
   the job is marked ``serial``: block order runs it. A handler that swallowed the
   ``NotPrefetched`` is caught too (the worker notes every miss).

Workers are started lazily with the ``forkserver`` method (never a fork of a threaded node
process), rebuild the parallel transaction types with ``types_factory`` (a picklable
top-level function), ask the kernel to kill them when their parent dies
(``PR_SET_PDEATHSIG``) and exit when their pipe closes. A worker that dies or fails
leaves its jobs to block order and is replaced at the next block. What runs inside an
executor (a run of jobs over an overlay, the worker's loop, the messages on its pipe) is
``ledger.contracts.parallel_worker``; this module plans, ships and collects.
"""

from __future__ import annotations

import contextlib
import logging
import multiprocessing
import os
import pickle
import threading
import time
import weakref
from collections.abc import Collection, Sequence
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from typing import Any

from ..tx import Transaction
from .context import Outcome, Reader, TxType
from .parallel_worker import (
    PICKLE,
    READY,
    TypesFactory,
    WireOutcome,
    cost_key,
    no_gc,
    outcome_of,
    run_jobs,
    worker_main,
)

__all__ = ["BlockStats", "ParallelExecutor", "components", "cost_key", "pack", "plan"]

Job = tuple[int, Transaction, TxType, int]  # block index, transaction, its type, fuel limit

log = logging.getLogger("rongxin.contracts")

_MAX_BACKOFF_BLOCKS = 1024
_DEFAULT_COST = 1e-4  # seconds per job of a type not measured yet


def _cpus() -> int:
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return os.cpu_count() or 1



@dataclass
class _Worker:
    proc: Any  # multiprocessing.process.BaseProcess
    conn: Connection
    ready: bool = False  # its first message (``READY``) has arrived


# --------------------------------------------------------------------------- planning
def components(keysets: Sequence[Collection[bytes]], hubs: Collection[bytes] = ()) -> list[list[int]]:
    """Group jobs (positions in ``keysets``) that share a key not in ``hubs`` (union-find);
    each group in ascending order, groups ordered by their first job."""
    n = len(keysets)
    parent = list(range(n))

    def find(x: int) -> int:
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    owner: dict[bytes, int] = {}
    for pos, keys in enumerate(keysets):
        for key in keys:
            if key in hubs:
                continue
            other = owner.setdefault(key, pos)
            if other != pos:
                a, b = find(other), find(pos)
                if a != b:
                    parent[max(a, b)] = min(a, b)
    members: dict[int, list[int]] = {}
    for pos in range(n):
        members.setdefault(find(pos), []).append(pos)
    return list(members.values())


def pack(comps: Sequence[list[int]], costs: Sequence[float], loads: Sequence[float]) -> list[list[int]]:
    """Components go, largest estimated cost first, to the executor with the least load so far
    (``loads``: what each executor has to do anyway). Each executor's list is in ascending
    position order, i.e. block order."""
    weighted = sorted(((sum(costs[p] for p in c), c) for c in comps), key=lambda wc: (-wc[0], wc[1][0]))
    load = list(loads)
    out: list[list[int]] = [[] for _ in load]
    for cost, comp in weighted:
        k = min(range(len(load)), key=lambda e: (load[e], e))
        load[k] += cost
        out[k].extend(comp)
    for lst in out:
        lst.sort()
    return out


def plan(keysets: Sequence[Collection[bytes]], costs: Sequence[float], loads: Sequence[float],
         hubs: Collection[bytes] = ()) -> list[list[int]]:
    """Assign jobs to executors: jobs sharing a non-hub key land on the same executor."""
    return pack(components(keysets, hubs), costs, loads)


# --------------------------------------------------------------------------- the executor
@dataclass
class BlockStats:
    """What one ``precompute`` call did (times in seconds)."""

    jobs: int = 0
    predicted: int = 0  # jobs with a key prediction (the others are left to block order)
    shipped: int = 0  # jobs sent to worker processes
    local: int = 0  # jobs run in this process
    serial: int = 0  # jobs that came back serial (key not shipped, handler error)
    lost: int = 0  # jobs of a worker that died or failed
    components: int = 0
    largest_component: int = 0
    hubs: int = 0
    prefetch_s: float = 0.0  # reading the shipped keys' values
    send_s: float = 0.0  # pickling and sending requests
    local_s: float = 0.0  # running this process's share
    wait_s: float = 0.0  # waiting for workers after this process's share
    recv_s: float = 0.0  # receiving and unpickling replies
    worker_compute_s: list[float] = field(default_factory=list)
    worker_unpickle_s: list[float] = field(default_factory=list)  # unpickling the request
    # when each worker finished its jobs, relative to this process finishing its own share
    # (> 0: this process waited for it)
    worker_lag_s: list[float] = field(default_factory=list)
    wall_s: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        return {k: (round(v, 6) if isinstance(v, float) else [round(x, 6) for x in v] if isinstance(v, list)
                    else v) for k, v in self.__dict__.items()}


class ParallelExecutor:
    """Runs a block's parallel transactions ahead in worker processes (see the module text).

    ``types_factory``: a picklable top-level function returning the parallel transaction types
    by name, called once in each worker. ``workers``: worker processes (default: the CPUs this
    process may use, one fewer with ``use_main``). ``use_main``: this process runs a share
    too. ``min_ship_s``: below this much estimated work nothing is run ahead (with
    ``workers=0``, a test mode, everything runs ahead in this process). ``hub_share``:
    a key predicted by more than this fraction of an executor's fair share of jobs (and
    more than ``min_hub`` jobs) is treated as read-only when planning, unless it is one of the
    last ``hub_memory`` such keys seen written. A worker that has not answered 20 times
    its estimated work (at least ``min_timeout_s``) after its share was sent is killed and its
    jobs left to block order.

    The types ``types_factory`` builds must be exactly those the node executes in block order
    (``ledger.contracts.registry`` builds both): a precomputed outcome is trusted when the
    values it read still hold, so a worker running different code would split the chain."""

    def __init__(self, types_factory: TypesFactory, *, workers: int | None = None, use_main: bool = False,
                 min_ship_s: float = 0.004, hub_share: float = 0.25, min_hub: int = 4,
                 hub_memory: int = 4096, min_timeout_s: float = 60.0, start_method: str = "forkserver",
                 wait_for_start_s: float = 60.0) -> None:
        cpus = _cpus()
        self.types_factory = types_factory
        self.n_workers = workers if workers is not None else max(1, cpus - 1 if use_main else cpus)
        if self.n_workers < 0:
            raise ValueError("workers must be 0 or more")
        self.use_main = use_main or self.n_workers == 0
        self.min_ship_s = min_ship_s
        self.hub_share = hub_share
        self.min_hub = min_hub
        self.hub_memory = hub_memory
        self.min_timeout_s = min_timeout_s
        # how long a block waits for a starting worker to load its types (a worker process
        # starts in about a second): 0 = not at all, the block runs without it (what a node
        # does: its first heavy block must not stall consensus)
        self.wait_for_start_s = wait_for_start_s
        self._mp: Any = multiprocessing.get_context(start_method)
        self._workers: list[_Worker | None] = [None] * self.n_workers
        self._ever = [False] * self.n_workers  # slot had a worker (a new one there is a restart)
        self._streak = [0] * self.n_workers  # failures since the slot's last good block
        self._skip = [0] * self.n_workers  # blocks the slot stays empty
        self._lock = threading.Lock()
        self._cost: dict[str, float] = {}  # moving average seconds per job, by type
        self._bias = 0.0  # seconds of work this process should take less than a worker (< 0: more)
        self._ship_cost = 0.0  # seconds to read the values of and send one job (moving average)
        self._written_hubs: dict[bytes, None] = {}  # hub keys seen written lately (insertion ordered)
        self._closed = False
        self.last = BlockStats()
        self.totals: dict[str, float] = {}
        self.restarts = 0
        self._finalizer = weakref.finalize(self, ParallelExecutor._shutdown, self._workers)

    # ------------------------------------------------------------ processes
    def _spawn(self) -> _Worker:
        parent, child = self._mp.Pipe(duplex=True)
        proc = self._mp.Process(target=worker_main, args=(child, self.types_factory, os.getpid()),
                                name="rongxin-exec", daemon=True)
        proc.start()
        child.close()
        return _Worker(proc, parent)

    def start(self) -> None:
        """Start any missing worker now (otherwise the first block does)."""
        with self._lock:
            self._ensure()

    def _ensure(self) -> None:
        """Start missing workers, except in slots backing off after repeated failures."""
        if self._closed:
            raise RuntimeError("the executor is closed")
        for k, w in enumerate(self._workers):
            if w is not None and w.proc.is_alive():
                continue
            if w is not None:
                self._drop(k)
            if self._skip[k] > 0:
                self._skip[k] -= 1
                continue
            if self._ever[k]:
                self.restarts += 1
            self._workers[k] = self._spawn()
            self._ever[k] = True

    def _ready(self, k: int, w: _Worker) -> bool:
        """Whether worker ``k`` has loaded its types (waiting up to ``wait_for_start_s``)."""
        if w.ready:
            return True
        try:
            if w.conn.poll(self.wait_for_start_s):
                w.ready = w.conn.recv_bytes() == READY
                if not w.ready:
                    self._failed(k, "its first message was not the ready signal")
        except (EOFError, OSError) as exc:
            self._failed(k, f"start: {exc}")
            return False
        return w.ready

    def _failed(self, k: int, why: str) -> None:
        """Worker ``k`` died or failed: drop it; after a few failures in a row without one good
        block, leave its slot empty for exponentially more blocks (a factory that cannot
        start must not cost a process start per block)."""
        self._drop(k)
        self._streak[k] += 1
        if self._streak[k] >= 3:
            self._skip[k] = min(_MAX_BACKOFF_BLOCKS, 2 ** self._streak[k])
        log.warning("parallel executor: worker %d lost (%s); its jobs run in block order%s", k, why,
                    f"; slot idle for {self._skip[k]} blocks" if self._skip[k] else "")

    def _drop(self, k: int) -> None:
        w = self._workers[k]
        self._workers[k] = None
        if w is not None:
            _stop(w, 0.0)

    @staticmethod
    def _shutdown(workers: list[_Worker | None]) -> None:
        for w in workers:
            if w is not None:
                with contextlib.suppress(OSError, ValueError):
                    w.conn.send_bytes(pickle.dumps(None))
        for k, w in enumerate(workers):
            if w is not None:
                _stop(w, 2.0)
                workers[k] = None

    def close(self) -> None:
        """Stop the workers (waiting briefly for them to exit, then killing them)."""
        with self._lock:
            self._closed = True
            self._finalizer()

    def __enter__(self) -> ParallelExecutor:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def pids(self) -> list[int]:
        """Process ids of the live workers."""
        return [w.proc.pid for w in self._workers if w is not None and w.proc.pid is not None]

    # ------------------------------------------------------------ planning
    def _est(self, key: str) -> float:
        return self._cost.get(key, _DEFAULT_COST)

    def _learn(self, costs: dict[str, list[float]]) -> None:
        for key, (count, seconds) in costs.items():
            if count:
                mean = seconds / count
                old = self._cost.get(key)
                self._cost[key] = mean if old is None else 0.5 * old + 0.5 * mean
        while len(self._cost) > 4096:
            del self._cost[next(iter(self._cost))]

    def _hubs(self, keysets: Sequence[Collection[bytes]], executors: int) -> set[bytes]:
        counts: dict[bytes, int] = {}
        for keys in keysets:
            for key in keys:
                counts[key] = counts.get(key, 0) + 1
        limit = max(self.min_hub, int(self.hub_share * len(keysets) / max(1, executors)))
        return {k for k, c in counts.items() if c > limit and k not in self._written_hubs}

    def _note_written(self, hubs: set[bytes], outs: Sequence[WireOutcome]) -> None:
        if not hubs:
            return
        for wire in outs:
            for key in wire[3]:
                if key in hubs:
                    self._written_hubs[key] = None
        while len(self._written_hubs) > self.hub_memory:
            del self._written_hubs[next(iter(self._written_hubs))]

    # ------------------------------------------------------------ one block
    def precompute(self, jobs: Sequence[Job], height: int, time_ms: int, read: Reader) -> dict[int, Outcome]:
        with self._lock:
            return self._precompute(jobs, height, time_ms, read)

    def _precompute(self, jobs: Sequence[Job], height: int, time_ms: int, read: Reader) -> dict[int, Outcome]:
        if self._closed:
            raise RuntimeError("the executor is closed")
        t_start = time.perf_counter()
        st = BlockStats(jobs=len(jobs))
        self.last = st
        todo, keysets, costs, live = self._admit(jobs, st)
        if not todo:
            return {}
        local = self.use_main or not live
        hubs, groups = self._assign(keysets, costs, live, local, st)
        local_pos = groups[-1] if local else []
        # send every worker its share first, so they work while this process runs its own
        t_ship = time.perf_counter()  # a worker's time limit runs from here (not from its start-up)
        sent = self._ship(list(zip(live, groups, strict=False)), todo, keysets, height, time_ms, read, st)
        t0 = time.perf_counter()
        outs_all: list[WireOutcome] = []
        if local_pos:
            local_costs: dict[str, list[float]] = {}
            outs_all.extend(run_jobs([todo[p] for p in local_pos], height, time_ms, read, local_costs))
            self._learn(local_costs)
            st.local = len(local_pos)
        st.local_s = time.perf_counter() - t0
        local_done = time.monotonic()
        outs_all.extend(self._collect(sent, costs, t_ship, local_done, st))
        self._learn_timing(st, bool(local_pos), t_start)
        self._note_written(hubs, outs_all)
        return self._finish(outs_all, st, t_start)

    def _admit(self, jobs: Sequence[Job], st: BlockStats) -> tuple[list[Job], list[Collection[bytes]],
                                                                   list[float], list[int]]:
        """The jobs worth running ahead with their predicted key sets and estimated costs, and
        the ready workers; no jobs when the block is not worth shipping or no worker is ready."""
        nothing: tuple[list[Job], list[Collection[bytes]], list[float], list[int]] = ([], [], [], [])
        if self.n_workers > 0 and sum(self._est(cost_key(job[1])) for job in jobs
                                      if job[2].keys is not None) < self.min_ship_s:
            return nothing  # too little work to be worth shipping: not even the keys are predicted
        todo: list[Job] = []
        keysets: list[Collection[bytes]] = []
        for job in jobs:
            predictor = job[2].keys
            keys = predictor(job[1]) if predictor is not None else None
            if keys is None:
                continue
            todo.append(job)
            keysets.append(keys if isinstance(keys, set | frozenset) else set(keys))
        st.predicted = len(todo)
        if not todo:
            return nothing
        costs = [self._est(cost_key(job[1])) for job in todo]
        live: list[int] = []
        if self.n_workers > 0:
            if sum(costs) < self.min_ship_s:
                return nothing
            self._ensure()
            live = [k for k, w in enumerate(self._workers) if w is not None and self._ready(k, w)]
            if not live:
                return nothing  # no worker ready yet: block order runs everything
        return todo, keysets, costs, live

    def _assign(self, keysets: Sequence[Collection[bytes]], costs: Sequence[float], live: Sequence[int],
                local: bool, st: BlockStats) -> tuple[set[bytes], list[list[int]]]:
        """The hub keys and the positions each executor runs (the live workers in order, then
        this process when ``local``)."""
        n_exec = len(live) + (1 if local else 0)
        hubs = self._hubs(keysets, n_exec) if n_exec > 1 else set()
        st.hubs = len(hubs)
        comps = components(keysets, hubs)
        st.components = len(comps)
        st.largest_component = max(len(c) for c in comps)
        # this process also pickles, sends and unpickles: it starts with what it is behind by
        # (``_bias``: learnt from when the workers finished relative to it, block after block)
        bias = min(abs(self._bias), 0.25 * sum(costs))
        # worker i starts once the shares of workers 0..i are read and sent
        share = len(keysets) / max(1, n_exec) * self._ship_cost
        loads = [(i + 1) * share + (bias if self._bias < 0 else 0.0) for i in range(len(live))]
        if local:
            loads.append(bias if self._bias > 0 else 0.0)
        return hubs, pack(comps, costs, loads)

    def _ship(self, shares: Sequence[tuple[int, list[int]]], todo: Sequence[Job],
              keysets: Sequence[Collection[bytes]], height: int, time_ms: int, read: Reader,
              st: BlockStats) -> list[tuple[int, list[int]]]:
        """Send each worker ``k`` its positions with the values of their predicted keys; the
        ``(k, positions)`` that were sent."""
        sent: list[tuple[int, list[int]]] = []
        for k, positions in shares:
            if not positions:
                continue
            w = self._workers[k]
            assert w is not None
            t0 = time.perf_counter()
            values: dict[bytes, bytes | None] = {}
            for p in positions:
                for key in keysets[p]:
                    if key not in values:
                        values[key] = read(key)
            t1 = time.perf_counter()
            payload = [(todo[p][0], todo[p][1], todo[p][3]) for p in positions]
            try:
                with no_gc():
                    data = pickle.dumps((height, time_ms, values, payload), PICKLE)
                w.conn.send_bytes(data)
                sent.append((k, positions))
                st.shipped += len(positions)
            except (OSError, ValueError) as exc:
                self._failed(k, f"send: {exc}")
                st.lost += len(positions)
            st.prefetch_s += t1 - t0
            st.send_s += time.perf_counter() - t1
        return sent

    def _collect(self, sent: Sequence[tuple[int, list[int]]], costs: Sequence[float], t_ship: float,
                 local_done: float, st: BlockStats) -> list[WireOutcome]:
        """The workers' outcomes; a worker that died, failed or has not answered within its time
        limit since ``t_ship`` (when the shares were sent) loses its jobs."""
        outs_all: list[WireOutcome] = []
        for k, positions in sent:
            w = self._workers[k]
            assert w is not None
            tw = time.perf_counter()
            # a worker far beyond its estimate is stuck (block order would not be): drop it
            deadline = max(self.min_timeout_s, 20 * sum(costs[p] for p in positions))
            raw: bytes | None = None
            try:
                if w.conn.poll(max(0.0, deadline - (tw - t_ship))):
                    raw = w.conn.recv_bytes()
            except (EOFError, OSError):
                raw = None
            tr = time.perf_counter()
            st.wait_s += tr - tw
            with no_gc():
                reply = pickle.loads(raw) if raw is not None else None  # noqa: S301 - our own worker
            if not isinstance(reply, tuple) or reply[0] != "ok":
                why = "died or timed out" if reply is None else str(reply[-1]).strip().splitlines()[-1]
                self._failed(k, why)
                st.lost += len(positions)
                continue
            self._streak[k] = 0
            _, outs, costs_k, unpickle_s, compute_s, done_at = reply
            st.recv_s += time.perf_counter() - tr
            st.worker_compute_s.append(compute_s)
            st.worker_unpickle_s.append(unpickle_s)
            st.worker_lag_s.append(done_at - local_done)
            self._learn(costs_k)
            outs_all.extend(outs)
        return outs_all

    def _learn_timing(self, st: BlockStats, ran_local: bool, t_start: float) -> None:
        """Update the cost of shipping a job and this process's handicap from this block."""
        if st.shipped:
            per_job = (st.prefetch_s + st.send_s) / st.shipped
            self._ship_cost = per_job if not self._ship_cost else 0.5 * self._ship_cost + 0.5 * per_job
        if ran_local and st.worker_lag_s:
            # a worker finishing before this process (lag < 0) means this process had too much
            lag = sum(st.worker_lag_s) / len(st.worker_lag_s)
            if abs(lag) < time.perf_counter() - t_start:  # (a clock oddity otherwise)
                self._bias -= 0.5 * lag

    def _finish(self, outs_all: Sequence[WireOutcome], st: BlockStats, t_start: float) -> dict[int, Outcome]:
        results: dict[int, Outcome] = {}
        for wire in outs_all:
            results[wire[0]] = outcome_of(wire)
            if wire[8]:
                st.serial += 1
        st.wall_s = time.perf_counter() - t_start
        for name, value in st.as_dict().items():
            if isinstance(value, int | float):
                self.totals[name] = self.totals.get(name, 0) + value
        return results


def _stop(w: _Worker, grace: float) -> None:
    with contextlib.suppress(OSError):
        w.conn.close()
    w.proc.join(grace)
    if w.proc.is_alive():
        w.proc.kill()
        w.proc.join(5)
    with contextlib.suppress(ValueError):
        w.proc.close()
