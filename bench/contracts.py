"""``rongxin bench contracts``: parallel execution of user-contract calls within one block.

``python -m bench.contracts [--txs 2000] [--accounts 10000] [--conflicts 0.1] [--work-ms 1.0]
[--repeats 5] [--workers N] [--main]``; prints one JSON object.

A single-validator chain (its supervisor approves contract versions) gets the WebAssembly
contract ``ledger/contracts/examples/work.wat`` through real transactions executed by the
ledger application: ``contract.upload``, a ``gov.propose`` of ``contract.approve`` (passed by
the one supervisor), ``contract.install`` and ``contract.init``. Then ``--accounts`` balances
are seeded by ``seed`` calls (blocks of 2,000), so the state holds that many accounts.

The measured block: ``--txs`` ``contract.call`` transactions of the method ``work`` (a
transfer between two accounts after ``rounds`` of integer mixing), each naming the two
balance keys it touches in ``keys``. ``rounds`` is calibrated on this machine so that one
call, executed by the ledger in block order, costs about ``--work-ms`` (the call's own
overhead included). A fraction ``--conflicts`` of the calls touch an account an earlier call
of the block touched (one of their two accounts; the other is fresh), the rest touch two
accounts no earlier call did. The block is executed (state staged, then rolled back, so every
run starts from the same state) alternately serially and with the parallel executor
(``ledger.contracts.parallel``); every run must give the same state root and receipts.

Figures: ``serial_s`` / ``parallel_s`` (median wall time of ``LedgerApp.execute`` over the
repeats), ``parallel_speedup`` = serial_s / parallel_s, ``speedups`` (each repeat's pair),
``roots_equal``, ``reexecuted`` (calls run ahead whose result was discarded and that ran again
in block order), ``conflict_rate`` (measured on the generated block), ``ms_per_call``
(serial_s / txs), ``ipc_us_per_shipped_call`` (pickling, sending, receiving and unpickling in
this process and unpickling in the worker, per call run in a worker), the executor's
per-block statistics and the load average before and after.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import random
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from api.sdk import registration
from ledger.consensus.types import Block, QuorumCertificate, Validator, ValidatorSet
from ledger.contracts.parallel import ParallelExecutor
from ledger.contracts.registry import contract_types, parallel_types
from ledger.contracts.wasm import example
from ledger.crypto import SM2PrivateKey
from ledger.crypto.ca import ConsortiumCA
from ledger.governance import ChainParams, Governance
from ledger.node.abci import OK, Receipt
from ledger.node.app import LedgerApp
from ledger.state.store import MemoryStore
from ledger.tx import Transaction

CHAIN = "bench-contracts"
CONTRACT = "work"
DEFAULT_ROUNDS = 600_000
FUEL_PER_ROUND = 21
FUEL_BASE = 2_000_000  # the call's own price, with room to spare
SEED_BLOCK = 2000


class BenchChain:
    """A one-validator chain executing and committing blocks through ``LedgerApp``."""

    def __init__(self, executor: ParallelExecutor | None) -> None:
        self.admin = SM2PrivateKey.generate()
        self.users = [SM2PrivateKey.generate() for _ in range(8)]
        vset = ValidatorSet((Validator("s1", self.admin.public_key().point, "bench", "supervisor"),))
        # calls of ~1 ms are ~13 million fuel each: above the default per-call cap, and 2,000 of
        # them above the default block budget
        params = ChainParams(max_call_fuel=1_000_000_000, max_block_fuel=1_000_000_000_000, max_block_txs=100_000)
        # a permissioned chain: the callers are users bound to certificates of the chain's CA
        self.time_ms = int(time.time() * 1000)
        with tempfile.TemporaryDirectory(prefix="rongxin-bench-ca-") as tmp:
            ca = ConsortiumCA.init(Path(tmp) / "ca", "Bench Consortium")
            root = ca.root.to_pem()
            self.registrations = [registration(ca, k, chain=CHAIN, org="bench", expiry=10**9) for k in self.users]
        self.gov = Governance(CHAIN, vset, params, root)
        self.app = LedgerApp(MemoryStore(), contract_types(), governance=self.gov, precomputer=executor)
        self.executor = executor
        self.nonce = 0
        self.view = 0
        self.parent = bytes(32).hex()

    def tx(self, type_: str, payload: dict[str, Any], key: SM2PrivateKey | None = None) -> Transaction:
        self.nonce += 1
        return Transaction.build(key or self.admin, chain=CHAIN, type=type_, payload=payload,
                                 expiry=10**9, nonce=self.nonce)

    def block(self, txs: list[Transaction]) -> Block:
        height = self.app.height + 1
        header = {"chain": CHAIN, "height": height, "view": height, "parent": self.parent,
                  "justify": {"view": height - 1}, "proposer": "s1", "txs": "", "count": len(txs),
                  "exec": {}, "validators": "", "time": self.time_ms + height * 1000}
        return Block.make(header, [t.id for t in txs])

    def run(self, txs: list[Transaction], *, parallel: bool = True) -> list[Receipt]:
        """Execute and commit one block; every transaction must succeed."""
        self.app.precomputer = self.executor if parallel else None
        block = self.block(txs)
        res = self.app.execute_block(block, txs)
        receipts = res.receipts
        bad = [(i, r.info) for i, r in enumerate(receipts) if r.code != OK]
        if bad:
            raise RuntimeError(f"block {block.height}: transactions refused: {bad[:3]}")
        self.app.commit(block, QuorumCertificate(CHAIN, block.height, block.height, block.hash, ()), txs, res)
        self.parent = block.hash.hex()
        return receipts

    def stage(self, txs: list[Transaction], block: Block, *, parallel: bool) -> tuple[float, bytes, list[Receipt]]:
        """Execute ``block`` (timed), then roll the staged state back."""
        self.app.precomputer = self.executor if parallel else None
        t0 = time.perf_counter()
        res = self.app.execute_block(block, txs)
        root, receipts = res.state_root, res.receipts
        elapsed = time.perf_counter() - t0
        self.app.tree.rollback()
        return elapsed, root, receipts

    def call(self, method: str, args: dict[str, Any], keys: list[str], fuel: int, user: int) -> Transaction:
        return self.tx("contract.call", {"contract": CONTRACT, "method": method, "args": args, "keys": keys,
                                         "fuel": fuel}, self.users[user % len(self.users)])

    def install(self) -> None:
        self.run(self.registrations)
        code = base64.b64encode(example(CONTRACT)).decode()
        self.run([self.tx("contract.upload", {"name": CONTRACT, "code": code, "description": "benchmark"})])
        action = {"kind": "contract.approve", "contract": CONTRACT, "version": 1}
        self.run([self.tx("gov.propose", {"action": action})])
        self.run([self.tx("contract.install", {"name": CONTRACT, "version": 1})])
        self.run([self.tx("contract.init", {"name": CONTRACT})])


def _account(i: int) -> str:
    return f"acct{i:05d}"


def _fuel(rounds: int) -> int:
    return FUEL_PER_ROUND * rounds + FUEL_BASE


def calibrate(chain: BenchChain, work_ms: float, calls: int = 60) -> tuple[int, float]:
    """Rounds for one call of about ``work_ms`` in block order, from the time of blocks of
    calls with no rounds and with the default rounds (serially, staged and rolled back)."""
    def per_call(rounds: int) -> float:
        txs = [chain.call("work", {"from": _account(2 * i), "to": _account(2 * i + 1), "amount": 1,
                                   "rounds": rounds}, [f"b/{_account(2 * i)}", f"b/{_account(2 * i + 1)}"],
                          _fuel(rounds), i) for i in range(calls)]
        block = chain.block(txs)
        chain.stage(txs, block, parallel=False)  # warm
        return min(chain.stage(txs, block, parallel=False)[0] for _ in range(2)) / calls

    base = per_call(0)
    full = per_call(DEFAULT_ROUNDS)
    per_round = max(1e-12, (full - base) / DEFAULT_ROUNDS)
    rounds = max(0, round((work_ms / 1e3 - base) / per_round))
    return rounds, base * 1e3


def make_block(chain: BenchChain, n: int, accounts: int, conflicts: float, rounds: int,
               rng: random.Random) -> tuple[list[Transaction], float]:
    """``n`` work calls; a fraction ``conflicts`` share an account with an earlier call."""
    fresh = list(range(accounts))
    rng.shuffle(fresh)
    touched: list[int] = []
    txs = []
    for i in range(n):
        if touched and rng.random() < conflicts:
            pair = [rng.choice(touched), fresh.pop()]
            rng.shuffle(pair)
        else:
            pair = [fresh.pop(), fresh.pop()]
        touched.extend(pair)
        a, b = (_account(x) for x in pair)
        txs.append(chain.call("work", {"from": a, "to": b, "amount": 1 + i % 7, "rounds": rounds},
                              [f"b/{a}", f"b/{b}"], _fuel(rounds), i))
    seen: set[str] = set()
    conflicting = 0
    for t in txs:
        names = {t.payload["args"]["from"], t.payload["args"]["to"]}
        conflicting += bool(names & seen)
        seen |= names
    return txs, conflicting / n


def run(txs: int = 2000, accounts: int = 10_000, conflicts: float = 0.10, work_ms: float = 1.0,
        repeats: int = 5, workers: int | None = None, use_main: bool = False, seed: int = 7) -> dict[str, Any]:
    """Set up the chain, run the block ``repeats`` times each way; see the module text."""
    if accounts < 2 * txs:
        raise ValueError("need at least two fresh accounts per call")
    load_before = os.getloadavg()
    rng = random.Random(seed)
    t_setup = time.perf_counter()
    with ParallelExecutor(parallel_types, workers=workers, use_main=use_main) as ex:
        ex.start()  # the workers boot while the chain is set up
        chain = BenchChain(ex)
        chain.install()
        for lo in range(0, accounts, SEED_BLOCK):
            chain.run([chain.call("seed", {"account": _account(i), "balance": 1_000_000}, [f"b/{_account(i)}"],
                                  FUEL_BASE, i) for i in range(lo, min(accounts, lo + SEED_BLOCK))])
        rounds, overhead_ms = calibrate(chain, work_ms)
        block_txs, conflict_rate = make_block(chain, txs, accounts, conflicts, rounds, rng)
        block = chain.block(block_txs)
        setup_s = time.perf_counter() - t_setup

        cold_s, ref_root, ref_receipts = chain.stage(block_txs, block, parallel=True)  # warm-up, not counted
        if any(r.code != OK for r in ref_receipts):
            raise RuntimeError("a work call was refused")
        serial: list[float] = []
        parallel: list[float] = []
        roots_equal = True
        stats: list[dict[str, Any]] = []
        reexecuted = 0
        for rep in range(repeats):
            order = (False, True) if rep % 2 == 0 else (True, False)
            for par in order:
                elapsed, root, receipts = chain.stage(block_txs, block, parallel=par)
                roots_equal &= root == ref_root and receipts == ref_receipts
                if par:
                    parallel.append(elapsed)
                    last = chain.app.last_stats
                    reexecuted = max(reexecuted, last["precomputed"] - last["reused"])
                    stats.append(ex.last.as_dict())
                else:
                    serial.append(elapsed)
        n_workers = ex.n_workers

    serial_s = statistics.median(serial)
    parallel_s = statistics.median(parallel)
    speedups = [s / p for s, p in zip(serial, parallel, strict=True)]
    ipc = [(s["send_s"] + s["recv_s"] + sum(s["worker_unpickle_s"])) / s["shipped"] for s in stats if s["shipped"]]
    return {
        "txs": txs,
        "accounts": accounts,
        "conflict_rate": round(conflict_rate, 4),
        "rounds": rounds,
        "call_overhead_ms": round(overhead_ms, 3),
        "ms_per_call": round(serial_s / txs * 1e3, 3),
        "serial_s": round(serial_s, 3),
        "parallel_s": round(parallel_s, 3),
        "parallel_speedup": round(serial_s / parallel_s, 3),
        "speedups": [round(x, 3) for x in speedups],
        "speedup_min": round(min(speedups), 3),
        "speedup_max": round(max(speedups), 3),
        "serial_runs_s": [round(x, 3) for x in serial],
        "parallel_runs_s": [round(x, 3) for x in parallel],
        "parallel_cold_s": round(cold_s, 3),
        "roots_equal": roots_equal,
        "reexecuted": reexecuted,
        "workers": n_workers,
        "main_runs_a_share": use_main,
        "cores": os.cpu_count(),
        "ipc_us_per_shipped_call": round(statistics.median(ipc) * 1e6, 2) if ipc else None,
        "executor": stats[len(stats) // 2] if stats else {},
        "setup_s": round(setup_s, 1),
        "load_before": [round(x, 2) for x in load_before],
        "load_after": [round(x, 2) for x in os.getloadavg()],
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    ap.add_argument("--txs", type=int, default=2000)
    ap.add_argument("--accounts", type=int, default=10_000)
    ap.add_argument("--conflicts", type=float, default=0.10)
    ap.add_argument("--work-ms", type=float, default=1.0)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--workers", type=int, default=None)
    ap.add_argument("--main", action="store_true",
                    help="this process runs a share of the calls too (default: it only schedules)")
    args = ap.parse_args()
    result = run(args.txs, args.accounts, args.conflicts, args.work_ms, args.repeats, args.workers,
                 args.main)
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
