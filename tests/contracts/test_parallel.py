"""Parallel execution within a block: whatever the executor plans, and however wrong the
key predictions are, a block's state root and receipts equal those of serial execution."""

from __future__ import annotations

import itertools
import multiprocessing
import os
import signal
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ledger.consensus.engine import genesis_block
from ledger.consensus.types import Block, QuorumCertificate, Validator, ValidatorSet
from ledger.contracts.context import Context, Refused, TxType
from ledger.contracts.parallel import ParallelExecutor, components, pack, plan
from ledger.crypto import SM2PrivateKey
from ledger.crypto.merkle import merkle_root
from ledger.node.abci import OK, Receipt
from ledger.node.app import DEFAULT_HANDLERS, LedgerApp
from ledger.state.store import MemoryStore
from ledger.tx import Transaction

CHAIN = "par"


# --------------------------------------------------------------------------- test transaction types
def _bal_key(acct: str) -> bytes:
    return b"bal/" + acct.encode()


def _balance(ctx: Context, acct: str) -> int:
    raw = ctx.get(_bal_key(acct))
    return 1000 if raw is None else int(raw)


def _spin(n: int) -> int:
    acc = 0
    for i in range(n):
        acc = (acc * 31 + i) % 1_000_003
    return acc


def transfer(ctx: Context) -> None:
    """``bank.transfer {"from", "to", "amount", "work"?, "peek"?, "stamp"?, "emit"?, "result"?}``."""
    p = ctx.tx.payload
    src, dst, amount = p["from"], p["to"], p["amount"]
    _spin(p.get("work", 0))
    if "peek" in p:  # a read the prediction never mentions
        ctx.get(_bal_key(p["peek"]))
    have = _balance(ctx, src)
    if amount > have:
        raise Refused(f"{src} has {have}, not {amount}")
    ctx.put(_bal_key(src), str(have - amount).encode())
    ctx.put(_bal_key(dst), str(_balance(ctx, dst) + amount).encode())
    if "stamp" in p:  # a write the prediction never mentions
        ctx.put(b"stamp/" + p["stamp"].encode(), f"{ctx.height}:{ctx.time_ms}:{src}".encode())
    if p.get("emit"):
        ctx.emit("bank.Transfer", [src, dst], {"amount": amount})
    if p.get("result"):
        ctx.result = {"left": have - amount}


def transfer_keys(tx: Transaction) -> list[bytes] | None:
    p = tx.payload
    if p.get("blind"):
        return None
    names = p["predict"] if "predict" in p else [p["from"], p["to"]]
    return [_bal_key(a) for a in names]


def copy_stamp(ctx: Context) -> None:
    """``bank.copy {"stamp"}``: copies a stamp (written unpredicted by transfers) elsewhere."""
    s = ctx.tx.payload["stamp"].encode()
    ctx.put(b"copy/" + s, ctx.get(b"stamp/" + s) or b"none")


def copy_keys(tx: Transaction) -> list[bytes]:
    s = tx.payload["stamp"].encode()
    return [b"stamp/" + s, b"copy/" + s]


def swallow(ctx: Context) -> None:
    """A handler that (wrongly) swallows every error of an unpredicted read."""
    p = ctx.tx.payload
    try:
        seen = ctx.get(_bal_key(p["peek"])) or b"none"
    except Exception:
        seen = b"?"
    ctx.put(b"swallow/" + p["tag"].encode(), seen)


def swallow_keys(tx: Transaction) -> list[bytes]:
    return [b"swallow/" + tx.payload["tag"].encode()]


def burn(ctx: Context) -> None:
    """A metered type: uses ``burn`` fuel, refused past its limit."""
    p = ctx.tx.payload
    want = p["burn"]
    ctx.fuel_used = min(want, ctx.fuel_limit)
    if want > ctx.fuel_limit:
        raise Refused("out of fuel")
    key = b"burnt/" + p["acct"].encode()
    ctx.put(key, str(int(ctx.get(key) or b"0") + want).encode())
    ctx.result = ctx.fuel_limit


def burn_keys(tx: Transaction) -> list[bytes]:
    return [b"burnt/" + tx.payload["acct"].encode()]


def boom(ctx: Context) -> None:
    raise RuntimeError("handler bug")


def stall(ctx: Context) -> None:
    """Hangs in a worker process only (a stuck worker; block order is unaffected)."""
    if multiprocessing.parent_process() is not None:
        time.sleep(30)
    ctx.put(b"stall/" + ctx.tx.payload["tag"].encode(), b"1")


def hub(ctx: Context) -> None:
    """Reads a shared counter and bumps it: a hot key that every such call writes."""
    raw = ctx.get(b"counter")
    ctx.put(b"counter", str(int(raw or b"0") + 1).encode())
    ctx.put(b"hub/" + ctx.tx.payload["tag"].encode(), raw or b"0")


def hub_keys(tx: Transaction) -> list[bytes]:
    return [b"counter", b"hub/" + tx.payload["tag"].encode()]


TYPES: dict[str, TxType] = {
    "bank.transfer": TxType(transfer, keys=transfer_keys, parallel=True),
    "bank.copy": TxType(copy_stamp, keys=copy_keys, parallel=True),
    "bank.swallow": TxType(swallow, keys=swallow_keys, parallel=True),
    "bank.burn": TxType(burn, keys=burn_keys, parallel=True, metered=True),
    "bank.boom": TxType(boom, keys=lambda tx: [b"boom"], parallel=True),
    "bank.hub": TxType(hub, keys=hub_keys, parallel=True),
    "bank.stall": TxType(stall, keys=lambda tx: [b"stall/" + tx.payload["tag"].encode()], parallel=True),
    # parallel in the node, but unknown to the workers' factory: always comes back serial
    "bank.local": TxType(transfer, keys=transfer_keys, parallel=True),
    # not parallel at all
    "bank.serial": TxType(transfer, keys=transfer_keys),
}


def bank_types() -> dict[str, TxType]:
    """The workers' factory (picklable: a top-level function)."""
    return {name: t for name, t in TYPES.items() if t.parallel and name != "bank.local"}


def handlers() -> dict[str, TxType]:
    return {**DEFAULT_HANDLERS, **TYPES}


# --------------------------------------------------------------------------- transactions and blocks
KEYS = [SM2PrivateKey.generate() for _ in range(3)]
_NONCES = itertools.count(1)
VSET = ValidatorSet((Validator("v0", KEYS[0].public_key().point, "org", "supervisor"),))


def tx(type_: str, payload: dict[str, Any], *, signer: int = 0, expiry: int = 1000) -> Transaction:
    return Transaction.build(KEYS[signer % len(KEYS)], chain=CHAIN, type=type_, payload=payload,
                             expiry=expiry, nonce=next(_NONCES))


class Chain:
    """A LedgerApp on a MemoryStore, committing every block it executes."""

    def __init__(self, precomputer: ParallelExecutor | None = None) -> None:
        self.app = LedgerApp(MemoryStore(), handlers(), precomputer=precomputer)
        self.parent = genesis_block(CHAIN, VSET, bytes(32))

    def run(self, txs: list[Transaction]) -> tuple[bytes, list[Receipt]]:
        height = self.app.height + 1
        ids = [t.id for t in txs]
        header = dict(self.parent.header, height=height, view=height, parent=self.parent.hash.hex(),
                      txs=merkle_root(ids).hex(), count=len(ids), time=1_700_000_000_000 + height)
        block = Block.make(header, ids)
        res = self.app.execute_block(block, txs)
        root, receipts = res.state_root, res.receipts
        self.app.commit(block, QuorumCertificate(CHAIN, height, height, block.hash, ()), txs, res)
        self.parent = block
        return root, receipts


def run_both(blocks: list[list[Transaction]], ex: ParallelExecutor) -> list[dict[str, int]]:
    """Run the blocks serially and through ``ex``; assert equal roots and receipts per block."""
    serial, parallel = Chain(), Chain(ex)
    stats = []
    for txs in blocks:
        root_s, rec_s = serial.run(txs)
        root_p, rec_p = parallel.run(txs)
        assert rec_p == rec_s
        assert root_p == root_s
        stats.append(dict(parallel.app.last_stats))
    return stats


@pytest.fixture(scope="module")
def ex() -> Iterator[ParallelExecutor]:
    with ParallelExecutor(bank_types, workers=2, min_ship_s=0.0) as e:
        yield e


@pytest.fixture(scope="module")
def eager() -> Iterator[ParallelExecutor]:
    """Splits conflicting jobs eagerly: any key of more than two jobs counts as a hub, written
    or not, so wrong plans (and their re-execution in block order) are common. This process
    runs a share of every block too."""
    with ParallelExecutor(bank_types, workers=1, use_main=True, min_ship_s=0.0, min_hub=2, hub_share=0.0,
                          hub_memory=0) as e:
        yield e


# --------------------------------------------------------------------------- planning
def test_components_join_jobs_sharing_keys_except_hubs() -> None:
    keysets = [{b"a", b"code"}, {b"b", b"code"}, {b"a", b"c"}, {b"d", b"code"}, {b"c"}]
    assert components(keysets) == [[0, 1, 2, 3, 4]]
    assert sorted(components(keysets, {b"code"})) == [[0, 2, 4], [1], [3]]


def test_pack_balances_cost_and_keeps_block_order() -> None:
    comps = [[0, 3], [1], [2], [4, 5, 6]]
    out = pack(comps, [1.0] * 7, [0.0, 0.0])
    assert sorted(p for lst in out for p in lst) == list(range(7))
    assert all(lst == sorted(lst) for lst in out)
    assert sorted(len(lst) for lst in out) == [3, 4]
    assert [4, 5, 6] in [[p for p in lst if p >= 4] for lst in out]
    # a preloaded executor gets less
    assert plan([{b"x"}, {b"y"}, {b"z"}], [1.0, 1.0, 1.0], [5.0, 0.0]) == [[], [0, 1, 2]]


# --------------------------------------------------------------------------- equivalence
def _mixed_block(tag: str, work: int = 0) -> list[Transaction]:
    accts = [f"a{i}" for i in range(12)]
    txs = []
    for i in range(40):
        src, dst = accts[i % 12], accts[(i * 5 + 1) % 12]
        txs.append(tx("bank.transfer", {"from": src, "to": dst, "amount": 150 + i, "emit": i % 3 == 0,
                                        "result": i % 4 == 0, **({"work": work} if work else {})}, signer=i))
    txs += [
        tx("bank.transfer", {"from": "a1", "to": "a2", "amount": 10, "predict": ["a1"]}),  # incomplete
        tx("bank.transfer", {"from": "a3", "to": "a4", "amount": 10, "peek": "a5"}),  # unpredicted read
        tx("bank.transfer", {"from": "a3", "to": "a4", "amount": 10, "peek": "p" + tag}),  # ... never shipped
        tx("bank.transfer", {"from": "a6", "to": "zz", "amount": 5, "stamp": tag}),  # unpredicted write
        tx("bank.copy", {"stamp": tag}),
        tx("bank.transfer", {"from": "a7", "to": "a8", "amount": 10, "blind": True}),  # no prediction
        tx("bank.swallow", {"peek": "a2", "tag": tag}),
        tx("bank.swallow", {"peek": "q" + tag, "tag": tag}),
        tx("bank.burn", {"acct": "a1", "burn": 500}),
        tx("bank.burn", {"acct": "a1", "burn": 900, "fuel": 600}),  # refused: over its own limit
        tx("bank.local", {"from": "a9", "to": "a0", "amount": 1}),
        tx("bank.serial", {"from": "a10", "to": "a11", "amount": 1}),
        tx("kv.set", {"key": "k", "value": tag}),
        tx("bank.transfer", {"from": "a0", "to": "a1", "amount": 10**9}),  # refused
    ]
    return txs


def test_mixed_blocks_equal_serial(ex: ParallelExecutor) -> None:
    stats = run_both([_mixed_block("one"), _mixed_block("two"), _mixed_block("three")], ex)
    assert all(s["precomputed"] > 0 for s in stats)
    assert ex.last.shipped > 0


def test_disjoint_transfers_are_all_reused(ex: ParallelExecutor) -> None:
    txs = [tx("bank.transfer", {"from": f"s{i}", "to": f"r{i}", "amount": 7, "emit": True}, signer=i)
           for i in range(60)]
    chained = [tx("bank.transfer", {"from": f"r{i}", "to": f"s{i + 1}", "amount": 900}, signer=i)
               for i in range(0, 60, 3)]
    (s,) = run_both([txs + chained], ex)
    assert s["precomputed"] == s["reused"] == 80
    assert ex.last.shipped > 0 and ex.last.serial == 0


def test_written_hub_key_is_learned(ex: ParallelExecutor) -> None:
    """A key every call writes is first assumed read-only (its calls are split and most run
    again in block order); the executor learns it was written and joins them afterwards."""
    tags = itertools.count()
    blocks = [[tx("bank.hub", {"tag": f"{next(tags)}"}, signer=i) for i in range(40)] for _ in range(3)]
    stats = run_both(blocks, ex)
    assert stats[0]["reused"] < 40
    assert stats[1]["reused"] == stats[2]["reused"] == 40


def test_handler_error_is_raised_in_block_order(ex: ParallelExecutor) -> None:
    for precomputer in (None, ex):
        chain = Chain(precomputer)
        with pytest.raises(RuntimeError, match="handler bug"):
            chain.run([tx("bank.transfer", {"from": "a", "to": "b", "amount": 1}), tx("bank.boom", {})])


def test_main_process_only_main_and_worker_and_workers_only_modes() -> None:
    blocks = [_mixed_block("m1"), _mixed_block("m2")]
    with ParallelExecutor(bank_types, workers=0) as local_only:
        run_both(blocks, local_only)
        assert local_only.last.shipped == 0 and local_only.pids() == []
    with ParallelExecutor(bank_types, workers=1, use_main=True, min_ship_s=0.0) as both:
        # jobs worth shipping (tiny ones all stay in this process: shipping costs more)
        run_both([_mixed_block("m1", 2000), _mixed_block("m2", 2000)], both)
        assert both.last.local > 0 and both.last.shipped > 0
    with ParallelExecutor(bank_types, workers=1, min_ship_s=0.0) as workers_only:
        run_both(blocks, workers_only)
        last = workers_only.last
        assert last.local == 0 and last.shipped == last.predicted
        assert last.serial >= 3  # peek, swallow and local came back serial from the worker


def test_small_blocks_are_not_run_ahead() -> None:
    """Under ``min_ship_s`` of estimated work a round trip to the workers costs more than it
    saves: nothing is precomputed, no key predicted and no worker even started."""
    with ParallelExecutor(bank_types, workers=1) as e:
        (s,) = run_both([_slow_block(5, 10)], e)
        assert s["precomputed"] == 0 and e.pids() == [] and e.last.predicted == 0 and e.last.jobs == 5


def test_a_node_never_waits_for_workers_to_start() -> None:
    """With ``wait_for_start_s=0`` (the node's setting) the first block worth shipping runs in
    block order while the workers start; once they report ready, blocks are shipped."""
    with ParallelExecutor(bank_types, workers=1, wait_for_start_s=0.0) as e:
        (first,) = run_both([_slow_block(80, 2000)], e)
        assert first["precomputed"] == 0 and len(e.pids()) == 1
        deadline = time.monotonic() + 60
        shipped = 0
        while time.monotonic() < deadline and not shipped:
            time.sleep(0.2)
            (later,) = run_both([_slow_block(80, 2000)], e)
            shipped = e.last.shipped
        assert shipped > 0 and later["precomputed"] == 80


# --------------------------------------------------------------------------- property test
ACCOUNTS = ["h0", "h1", "h2"] + [f"c{i}" for i in range(10)]
account = st.sampled_from(ACCOUNTS) | st.sampled_from(["h0", "h1"])  # hot accounts come up often

transfer_op = st.fixed_dictionaries(
    {"from": account, "to": account, "amount": st.integers(0, 1200)},
    optional={"emit": st.booleans(), "result": st.booleans(), "peek": account,
              "predict": st.lists(account, max_size=3), "blind": st.just(True),
              "stamp": st.sampled_from(["s0", "s1"])},
).map(lambda p: ("bank.transfer", p))
other_op = st.one_of(
    st.builds(lambda s: ("bank.copy", {"stamp": s}), st.sampled_from(["s0", "s1"])),
    st.builds(lambda a, t: ("bank.swallow", {"peek": a, "tag": t}), account, st.sampled_from(["t0", "t1"])),
    st.builds(lambda a, b, f: ("bank.burn", {"acct": a, "burn": b, **({"fuel": f} if f else {})}),
              account, st.integers(0, 2000), st.integers(0, 1500)),
    st.builds(lambda t: ("bank.hub", {"tag": t}), st.sampled_from(["x", "y", "z"])),
    st.builds(lambda a, b: ("bank.local", {"from": a, "to": b, "amount": 3}), account, account),
    st.builds(lambda a, b: ("bank.serial", {"from": a, "to": b, "amount": 3}), account, account),
    st.builds(lambda v: ("kv.set", {"key": "k", "value": v}), st.sampled_from(["p", "q"])),
)
op = st.one_of(transfer_op, transfer_op, transfer_op, other_op)
blocks_st = st.lists(st.lists(st.tuples(op, st.integers(0, 2)), min_size=8, max_size=40), min_size=1, max_size=3)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                  HealthCheck.too_slow])
@given(blocks=blocks_st, replay=st.booleans(), eager_plan=st.booleans())
def test_property_parallel_equals_serial(ex: ParallelExecutor, eager: ParallelExecutor,
                                         blocks: list[list[Any]], replay: bool, eager_plan: bool) -> None:
    built = [[tx(t, p, signer=s) for (t, p), s in ops] for ops in blocks]
    if replay:
        built[-1].append(built[0][0])  # a replay (same block or a later one): no effect
    run_both(built, eager if eager_plan else ex)


# --------------------------------------------------------------------------- worker failures
def _pid_gone(pid: int, timeout: float = 5.0) -> bool:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        try:
            with open(f"/proc/{pid}/stat") as f:
                if f.read().split(")")[-1].split()[0] == "Z":
                    return True  # a zombie: exited, not reaped yet by its parent (the fork server)
        except OSError:
            return True
        time.sleep(0.02)
    return False


def _slow_block(n: int, work: int) -> list[Transaction]:
    return [tx("bank.transfer", {"from": f"w{i}", "to": f"v{i}", "amount": 1, "work": work}, signer=i)
            for i in range(n)]


def _cpu_ticks(pid: int) -> int:
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])  # utime + stime


def _kill_when_busy(pid: int, ticks: int = 3) -> None:
    """SIGKILL ``pid`` once it has used ``ticks`` more clock ticks of CPU (it is mid-block)."""
    base = _cpu_ticks(pid)
    end = time.monotonic() + 30
    while time.monotonic() < end and _cpu_ticks(pid) - base < ticks:
        time.sleep(0.002)
    os.kill(pid, signal.SIGKILL)


def test_killed_worker_mid_block_is_replaced_and_results_stay_serial() -> None:
    with ParallelExecutor(bank_types, workers=2, use_main=False, min_ship_s=0.0) as e:
        serial, parallel = Chain(), Chain(e)
        warm = _slow_block(6, 10)
        assert parallel.run(warm) == serial.run(warm)
        victim = e.pids()[0]
        block = _slow_block(60, 100_000)  # several ms a call: each worker is busy for a while
        killer = threading.Thread(target=_kill_when_busy, args=(victim,))
        killer.start()
        root_p, rec_p = parallel.run(block)
        killer.join()
        root_s, rec_s = serial.run(block)
        assert (root_p, rec_p) == (root_s, rec_s)
        assert e.last.lost > 0, "the victim's jobs were left to block order"
        # the next block gets a fresh worker and runs ahead again
        block2 = _slow_block(20, 10)
        assert parallel.run(block2) == serial.run(block2)
        assert e.restarts == 1 and victim not in e.pids() and len(e.pids()) == 2
        assert e.last.lost == 0 and e.last.shipped == 20


def test_close_leaves_no_child_processes() -> None:
    e = ParallelExecutor(bank_types, workers=2, min_ship_s=0.0)
    e.start()
    pids = e.pids()
    assert len(pids) == 2
    run_both([_slow_block(10, 10)], e)
    e.close()
    assert all(_pid_gone(p) for p in pids)
    assert e.pids() == []
    with pytest.raises(RuntimeError):
        e.precompute([], 1, 0, lambda k: None)


def test_stuck_worker_is_killed_and_its_jobs_run_in_block_order() -> None:
    with ParallelExecutor(bank_types, workers=1, min_ship_s=0.0, min_timeout_s=0.5) as e:
        block = [*_slow_block(4, 10), tx("bank.stall", {"tag": "t"})]
        t0 = time.monotonic()
        (s,) = run_both([block], e)
        assert time.monotonic() - t0 < 10
        assert e.last.lost == 5 and s["reused"] == 0
        block2 = _slow_block(4, 10)
        (s2,) = run_both([block2], e)
        assert s2["reused"] == 4 and e.restarts == 1


# --------------------------------------------------------------------------- WebAssembly contract calls
def test_wasm_contract_calls_with_wrong_key_hints_equal_serial() -> None:
    """The benchmark's contract through the real lifecycle: calls whose ``keys`` hint is
    missing, incomplete or absent, conflicting calls, reverts and out-of-fuel calls give the
    same root and receipts run ahead in a worker as in block order."""
    from bench.contracts import BenchChain, _fuel
    from ledger.contracts.registry import parallel_types

    with ParallelExecutor(parallel_types, workers=2, min_ship_s=0.0) as e:
        chain = BenchChain(e)
        chain.install()

        def call(i: int, a: str, b: str, amount: int = 5, keys: list[str] | None = None,
                 fuel: int | None = None) -> Transaction:
            return chain.call("work", {"from": a, "to": b, "amount": amount, "rounds": 2000},
                              [f"b/{a}", f"b/{b}"] if keys is None else keys, fuel or _fuel(2000), i)

        txs = [call(i, f"x{i}", f"y{i}") for i in range(12)]
        txs += [
            call(20, "x1", "z1"),  # conflicts with an earlier call
            call(21, "y2", "x3"),
            call(22, "m1", "m2", keys=["b/m1"]),  # incomplete hint: reads b/m2 unshipped
            call(23, "m3", "m4", keys=[]),  # no own keys at all
            call(24, "x4", "m5", amount=10**12),  # reverts: insufficient balance
            call(25, "x5", "m6", fuel=5000),  # out of fuel
            chain.tx("contract.call", {"contract": "work", "method": "work",
                                       "args": {"from": "x6", "to": "x7", "amount": 1, "rounds": 10},
                                       "fuel": _fuel(10)}, chain.users[0]),  # no hint: meta and code only
        ]
        block = chain.block(txs)
        _, root_s, rec_s = chain.stage(txs, block, parallel=False)
        for _ in range(2):
            _, root_p, rec_p = chain.stage(txs, block, parallel=True)
            assert (root_p, rec_p) == (root_s, rec_s)
        codes = [r.code for r in rec_s]
        assert codes.count(OK) == len(txs) - 2
        stats = chain.app.last_stats
        assert e.last.shipped == len(txs) and e.last.serial >= 2  # the incomplete and missing hints
        assert e.last.hubs == 2  # the contract's record and code do not join the calls
        assert stats["precomputed"] - stats["reused"] >= 1
