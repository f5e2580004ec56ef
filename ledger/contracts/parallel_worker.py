"""What runs inside an executor of ``ledger.contracts.parallel``: a run of jobs over one
overlay (``run_jobs``, used by worker processes and by the parent for its own share) and the
worker process's main loop (``worker_main``).

The wire format between the parent and a worker (pickled over a private pipe):

- the worker's first message is ``READY`` (its transaction types are built);
- a request is ``(height, time_ms, values, [(index, tx, fuel_limit), ...])``, ``None`` to stop;
- a reply is ``("ok", [wire outcome, ...], {cost key: [count, seconds]}, unpickle_s,
  compute_s, done_at)`` or ``("error", traceback text)``; a wire outcome is the tuple
  ``WireOutcome``.
"""

from __future__ import annotations

import contextlib
import ctypes
import gc
import os
import pickle
import signal
import sys
import time
import traceback
from collections.abc import Callable, Iterator, Sequence
from multiprocessing.connection import Connection
from typing import Any

from ..tx import Transaction
from .context import Context, Event, NotPrefetched, Outcome, Reader, TxType, run_handler

TypesFactory = Callable[[], dict[str, TxType]]

# one outcome on the wire: index, refused, reads, writes, events, fuel_limit, fuel_used, result, serial
WireOutcome = tuple[int, str | None, dict[bytes, bytes | None], dict[bytes, bytes | None],
                    list[Event], int, int, Any, bool]

_PR_SET_PDEATHSIG = 1
PICKLE = pickle.HIGHEST_PROTOCOL
READY = b"ready"  # a worker's first message: its types are loaded


# --------------------------------------------------------------------------- running jobs
def run_jobs(jobs: Sequence[tuple[int, Transaction, TxType | None, int]], height: int, time_ms: int,
              snapshot: Reader, costs: dict[str, list[float]]) -> list[WireOutcome]:
    """Run ``jobs`` in order over one overlay on ``snapshot``; what an executor does.

    ``snapshot`` raises ``NotPrefetched`` for a key it does not have (in a worker). A job that
    met such a key, or whose handler failed with anything but ``Refused``, comes back
    ``serial``; block order runs it (and meets the same error there, if it is one)."""
    overlay: dict[bytes, bytes | None] = {}
    out: list[WireOutcome] = []
    clock = time.perf_counter
    for index, tx, ttype, limit in jobs:
        if ttype is None:
            out.append((index, None, {}, {}, [], limit, 0, None, True))
            continue
        missed = False

        def base(key: bytes) -> bytes | None:
            nonlocal missed
            if key in overlay:
                return overlay[key]
            try:
                return snapshot(key)
            except NotPrefetched:
                missed = True
                raise

        t0 = clock()
        try:
            o: Outcome | None = run_handler(ttype, Context(tx, height, time_ms, base, fuel_limit=limit))
        except Exception:  # noqa: BLE001 - block order runs it again and meets the same error
            o = None
        spent = clock() - t0
        acc = costs.setdefault(cost_key(tx), [0, 0.0])
        acc[0] += 1
        acc[1] += spent
        if o is None or missed:  # (a handler may have swallowed the NotPrefetched)
            out.append((index, None, {}, {}, [], limit, 0, None, True))
            continue
        if o.refused is None:
            overlay.update(o.writes)
        out.append((index, o.refused, o.reads, o.writes, o.events, o.fuel_limit, o.fuel_used, o.result, False))
    return out


@contextlib.contextmanager
def no_gc() -> Iterator[None]:
    """(Un)pickling thousands of small containers, which hold no cycles, triggers the cyclic
    collector over and over for nothing; pause it meanwhile."""
    was = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was:
            gc.enable()


def cost_key(tx: Transaction) -> str:
    """What run times are averaged by: the transaction type, and for a call into a user
    contract (a payload with string ``contract`` and ``method``) the contract and method."""
    p = tx.payload
    contract, method = p.get("contract"), p.get("method")
    if isinstance(contract, str) and isinstance(method, str):
        return f"{tx.type} {contract[:64]}.{method[:64]}"
    return tx.type


def outcome_of(w: WireOutcome) -> Outcome:
    _, refused, reads, writes, events, limit, used, result, serial = w
    return Outcome(refused, reads, writes, events, limit, used, result, serial)


# --------------------------------------------------------------------------- the worker process
def _die_with_parent() -> None:
    """Linux: SIGKILL this process when the process that started it exits."""
    if not sys.platform.startswith("linux"):
        return
    with contextlib.suppress(OSError, AttributeError):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)


def worker_main(conn: Connection, types_factory: TypesFactory, parent_pid: int) -> None:
    """A worker: rebuild the types, then answer one message per block until the pipe closes.

    Request: ``(height, time_ms, values, [(index, tx, fuel_limit), ...])``.
    Reply: ``("ok", [wire outcome, ...], {cost key: [count, seconds]}, unpickle_s, compute_s, done_at)``
    or ``("error", text)``."""
    _die_with_parent()
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's business
    if os.getppid() == 1 or not _alive(parent_pid):
        return
    types = types_factory()
    gc.freeze()  # what the worker loaded stays: keep it out of every later collection
    try:
        conn.send_bytes(READY)
    except OSError:
        return
    while True:
        try:
            raw = conn.recv_bytes()
        except (EOFError, OSError):
            return
        t0 = time.perf_counter()
        try:
            with no_gc():
                request = pickle.loads(raw)  # noqa: S301 - from our own parent over a private pipe
            if request is None:
                return
            height, time_ms, values, jobs = request

            def snapshot(key: bytes, values: dict[bytes, bytes | None] = values) -> bytes | None:
                try:
                    return values[key]
                except KeyError:
                    raise NotPrefetched(key.hex()) from None

            t1 = time.perf_counter()
            costs: dict[str, list[float]] = {}
            runnable = [(i, tx, types.get(tx.type), limit) for i, tx, limit in jobs]
            outs = run_jobs(runnable, height, time_ms, snapshot, costs)
            t2 = time.perf_counter()
            with no_gc():
                reply = pickle.dumps(("ok", outs, costs, t1 - t0, t2 - t1, time.monotonic()), PICKLE)
        except Exception:  # noqa: BLE001 - reported to the parent, which leaves the jobs to block order
            reply = pickle.dumps(("error", traceback.format_exc()), PICKLE)
        try:
            conn.send_bytes(reply)
        except OSError:
            return


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
