"""The WebAssembly sandbox (ledger.contracts.wasm) with real wasmtime and the example contracts
in ledger/contracts/examples/."""

from __future__ import annotations

import time
from typing import Any

import pytest

from ledger.consensus.types import Block
from ledger.contracts.context import MAX_EVENTS_PER_TX, Context, NotPrefetched, Refused, TxType, account_of
from ledger.contracts.wasm import (
    EXAMPLES_DIR,
    FUEL_CALL,
    FUEL_CALL_SYSTEM,
    MAX_EXPORTS,
    MAX_MEMORY_PAGES,
    AbiError,
    BadArgs,
    InvalidModule,
    MemoryLimit,
    OutOfFuel,
    Reverted,
    SystemCallRefused,
    UnknownMethod,
    WasmError,
    WasmRuntime,
    WasmTrap,
    compile_wat,
    example,
    validate_module,
)
from ledger.node.abci import BAD_PAYLOAD, OK
from ledger.node.app import DEFAULT_CALL_FUEL, LedgerApp
from ledger.state.store import MemoryStore
from ledger.tx import Transaction

ALICE, BOB = b"alice-key", b"bob-key"
A, B = account_of(ALICE), account_of(BOB)
FUEL = 10_000_000

_nonce = 0


def tx(sender: bytes = ALICE, payload: dict[str, Any] | None = None, type_: str = "wasm.call") -> Transaction:
    global _nonce
    _nonce += 1
    return Transaction("test", sender, _nonce, type_, payload or {}, 100, b"", b"",
                       _nonce.to_bytes(8, "big"))


@pytest.fixture(scope="module")
def rt() -> WasmRuntime:
    return WasmRuntime()


class Ledger:
    """Calls against a dict state, committing what succeeds."""

    def __init__(self, rt: WasmRuntime) -> None:
        self.rt = rt
        self.state: dict[bytes, bytes] = {}
        self.system_calls: list[tuple[str, str, dict[str, Any]]] = []

    def system(self, ctx: Context, type_: str, args: dict[str, Any]) -> Any:
        self.system_calls.append((ctx.caller, type_, args))
        if type_ == "ft.fail":
            raise Refused("insufficient funds")
        ctx.put(b"sys/" + ctx.caller.encode(), b"touched")
        ctx.emit("ft.Done", [ctx.caller], args)
        return {"by": ctx.caller, "ok": True}

    def ctx(self, sender: bytes = ALICE, fuel: int = FUEL) -> Context:
        return Context(tx(sender), 7, 1_700_000_000_000, self.state.get, fuel_limit=fuel)

    def call(self, name: str, method: str, args: Any = None, *, contract: str | None = None,
             sender: bytes = ALICE, fuel: int = FUEL, code: bytes | None = None) -> tuple[Any, Context]:
        ctx = self.ctx(sender, fuel)
        result = self.rt.call(ctx, contract=contract or name, code=code or example(name), method=method,
                              args={} if args is None else args, system=self.system)
        for k, v in ctx.writes.items():
            if v is None:
                self.state.pop(k, None)
            else:
                self.state[k] = v
        return result, ctx

    def fail(self, name: str, method: str, args: Any = None, **kw: Any) -> tuple[WasmError, Context]:
        ctx = self.ctx(kw.pop("sender", ALICE), kw.pop("fuel", FUEL))
        with pytest.raises(WasmError) as info:
            self.rt.call(ctx, contract=kw.pop("contract", name), code=kw.pop("code", None) or example(name),
                         method=method, args={} if args is None else args, system=self.system)
        assert not ctx.writes and not ctx.events, "a failed call leaves no writes or events"
        assert 0 < ctx.fuel_used <= ctx.fuel_limit
        return info.value, ctx


@pytest.fixture
def led(rt: WasmRuntime) -> Ledger:
    return Ledger(rt)


# ---------------------------------------------------------------- the examples


def test_every_example_builds_and_the_forbidden_one_is_refused() -> None:
    sources = sorted(p.stem for p in EXAMPLES_DIR.glob("*.wat"))
    assert {"token", "work", "bad", "probe", "forbidden"} <= set(sources)
    for name in sources:
        if name == "forbidden":
            with pytest.raises(InvalidModule, match=r"import wasi_snapshot_preview1\.clock_time_get is not in "
                                                    r"the host API"):
                validate_module(example(name))
            continue
        info = validate_module(example(name))
        assert info.size == len(example(name)) and info.methods == tuple(sorted(info.methods))
    token = validate_module(example("token"))
    assert token.methods == ("balance", "init", "mint", "supply", "transfer") and token.has_init
    assert validate_module(example("work")).methods == ("noop", "seed", "work")
    assert (EXAMPLES_DIR / "README.md").exists()


def test_token_contract(led: Ledger) -> None:
    assert led.call("token", "init", {"owner": A})[0] is None
    assert led.state[b"c/s/token/owner"] == A.encode()
    err, _ = led.fail("token", "init", {"owner": B})
    assert isinstance(err, Reverted) and str(err) == "reverted: already initialised"
    led.call("token", "init", contract="token2", sender=BOB)  # no owner: the caller
    assert led.state[b"c/s/token2/owner"] == B.encode()
    err, _ = led.fail("token", "mint", {"to": B, "amount": 5}, sender=BOB)
    assert str(err) == "reverted: only the owner may mint"

    _, ctx = led.call("token", "mint", {"to": A, "amount": 100})
    assert [e.wire() for e in ctx.events] == [
        {"type": "token:Mint", "keys": [A], "data": {"amount": 100, "to": A}}]
    _, ctx = led.call("token", "transfer", {"to": B, "amount": 30})
    assert [e.wire() for e in ctx.events] == [
        {"type": "token:Transfer", "keys": [A, B], "data": {"amount": 30, "from": A, "to": B}}]
    assert ctx.writes == {b"c/s/token/b/" + A.encode(): b"70", b"c/s/token/b/" + B.encode(): b"30"}
    assert led.call("token", "balance", {"account": A})[0] == 70
    assert led.call("token", "balance", {"account": B})[0] == 30
    assert led.call("token", "balance", {"account": "nobody"})[0] == 0
    assert led.call("token", "supply")[0] == 100

    err, _ = led.fail("token", "transfer", {"to": A, "amount": 31}, sender=BOB)
    assert str(err) == "reverted: insufficient balance"
    err, _ = led.fail("token", "transfer", {"to": A, "amount": 0}, sender=BOB)
    assert str(err) == 'reverted: "amount" must be a positive integer below 2^63'
    err, _ = led.fail("token", "transfer", {"to": 7, "amount": 1}, sender=BOB)
    assert str(err).startswith('reverted: "to" must be an account')
    err, _ = led.fail("token", "transfer", {"to": 'x"y', "amount": 1}, sender=BOB)  # escapes refused
    assert str(err).startswith('reverted: "to" must be an account')
    err, _ = led.fail("token", "mint", {"to": A, "amount": 2**63 - 1})
    assert str(err) == "reverted: supply overflow"
    err, _ = led.fail("token", "mint", {"to": A, "amount": 2**63})
    assert str(err) == 'reverted: "amount" must be a positive integer below 2^63'
    # a transfer to oneself changes nothing; a nested decoy key does not fool the arguments parser
    led.call("token", "transfer", {"to": B, "amount": 10, "zz": {"amount": 99, "to": "decoy"}}, sender=BOB)
    assert led.call("token", "balance", {"account": B})[0] == 30


def test_work_contract(led: Ledger) -> None:
    mix, ctx = led.call("work", "work", {"from": "a", "to": "b", "amount": 5, "rounds": 1000})
    assert isinstance(mix, int) and 0 <= mix < 2**64
    assert ctx.writes == {b"c/s/work/b/a": b"999999995", b"c/s/work/b/b": b"1000000005"}
    assert set(ctx.reads) == {b"c/s/work/b/a", b"c/s/work/b/b"}, "conflicts show in the reads"
    again, _ = led.call("work", "work", {"from": "a", "to": "b", "amount": 5, "rounds": 1000})
    assert again == mix
    led.call("work", "seed", {"account": "c", "balance": 3})
    err, _ = led.fail("work", "work", {"from": "c", "to": "a", "amount": 4, "rounds": 1})
    assert str(err) == "reverted: insufficient balance"
    # the default is 600000 rounds of 21 fuel each
    _, short = led.call("work", "work", {"from": "a", "to": "b", "amount": 1, "rounds": 0}, fuel=10**9)
    _, full = led.call("work", "work", {"from": "a", "to": "b", "amount": 1}, fuel=10**9)
    assert abs(full.fuel_used - short.fuel_used - 21 * 600_000) < 10_000  # the loop, give or take parsing
    _, ctx = led.call("work", "noop")
    assert ctx.fuel_used < FUEL_CALL + 100


# ---------------------------------------------------------------- misbehaviour


@pytest.mark.parametrize(("method", "kind", "message"), [
    ("loop", OutOfFuel, f"out of fuel: used {FUEL} of {FUEL}"),
    ("hostloop", OutOfFuel, f"out of fuel: used {FUEL} of {FUEL}"),
    ("trap", WasmTrap, "trap: unreachable"),
    ("oob", WasmTrap, "trap: out-of-bounds memory access"),
    ("div0", WasmTrap, "trap: integer division by zero"),
    ("recurse", WasmTrap, "trap: stack overflow"),
    ("grow", MemoryLimit, "memory limit: the contract grew its memory to the 4194304-byte maximum (64 pages) "
                          "and then trapped (unreachable)"),
    ("badptr", AbiError, "bad host call state_get key: bytes 4294967040..4294967056 are outside memory "
                         "(65536 bytes)"),
    ("badkey", AbiError, "bad host call state_set key: 300 bytes; the limit is 256"),
    ("revert", Reverted, "reverted: nope"),
    ("status", Reverted, "reverted with status 7"),
    ("badresult", AbiError, "bad result: return_data is not JSON"),
    ("emitbomb", AbiError, f"bad host call emit: a transaction may emit at most {MAX_EVENTS_PER_TX} events"),
])
def test_a_misbehaving_call_fails_alone_with_its_reason(led: Ledger, method: str, kind: type[WasmError],
                                                        message: str) -> None:
    err, ctx = led.fail("bad", method)
    assert type(err) is kind and isinstance(err, Refused)
    assert str(err).startswith(message)
    if kind is OutOfFuel:
        assert ctx.fuel_used == ctx.fuel_limit
    else:
        assert ctx.fuel_used < ctx.fuel_limit


def test_out_of_fuel_costs_exactly_the_budget_at_any_budget(led: Ledger) -> None:
    for fuel in (1, 1000, FUEL_CALL, FUEL_CALL + 1, 123_457, 2_000_001):
        for method in ("loop", "hostloop"):
            err, ctx = led.fail("bad", method, fuel=fuel)
            assert isinstance(err, OutOfFuel) and str(err) == f"out of fuel: used {fuel} of {fuel}"
            assert ctx.fuel_used == fuel
    # an ordinary call that does not fit its budget either
    err, ctx = led.fail("work", "work", {"from": "a", "to": "b", "amount": 1}, fuel=FUEL)
    assert isinstance(err, OutOfFuel) and ctx.fuel_used == FUEL


def test_a_budget_already_partly_used_is_honoured(led: Ledger) -> None:
    ctx = led.ctx(fuel=2_000_000)
    ctx.fuel_used = 1_500_000
    with pytest.raises(OutOfFuel, match="out of fuel: used 2000000 of 2000000"):
        led.rt.call(ctx, contract="bad", code=example("bad"), method="loop", args={})
    assert ctx.fuel_used == 2_000_000
    with pytest.raises(OutOfFuel):
        led.rt.call(ctx, contract="bad", code=example("bad"), method="trap", args={})
    with pytest.raises(WasmError, match="needs a fuel limit"):
        led.rt.call(led.ctx(fuel=0), contract="bad", code=example("bad"), method="trap", args={})


def test_refusals_before_running(led: Ledger) -> None:
    err, ctx = led.fail("token", "nope")
    assert isinstance(err, UnknownMethod)
    assert str(err) == "contract token has no method 'nope' (methods: balance, init, mint, supply, transfer)"
    assert ctx.fuel_used == FUEL_CALL
    for args, why in [({"x": 1.5}, "bad args: canonical JSON has no floats"),
                      ({"x": "y" * 70_000}, "bad args: 70008 bytes; the limit is 65536")]:
        err, _ = led.fail("token", "balance", args)
        assert isinstance(err, BadArgs) and str(err).startswith(why)
    with pytest.raises(WasmError, match="bad contract name"):
        led.rt.call(led.ctx(), contract="a/b", code=example("token"), method="supply", args={})


def test_a_failed_call_keeps_the_transactions_earlier_writes(led: Ledger) -> None:
    ctx = led.ctx()
    ctx.put(b"earlier", b"1")
    ctx.emit("x.Before", [], None)
    with pytest.raises(Reverted):
        led.rt.call(ctx, contract="bad", code=example("bad"), method="revert", args={})
    assert ctx.writes == {b"earlier": b"1"} and len(ctx.events) == 1  # bad.revert's own write is gone
    with pytest.raises(Reverted):  # a failed call's reads stay recorded (parallel execution checks them)
        led.rt.call(ctx, contract="token", code=example("token"), method="init", args={"owner": 5})
    assert b"c/s/token/owner" not in ctx.reads
    with pytest.raises(Reverted):
        led.rt.call(ctx, contract="token", code=example("token"), method="mint", args={})
    assert ctx.reads == {b"c/s/token/owner": None}


def test_a_key_a_worker_was_not_given_is_not_a_refusal(led: Ledger) -> None:
    """NotPrefetched (a parallel worker's state view) goes through the sandbox untouched, so the
    scheduler can run the transaction in block order instead."""
    def view(key: bytes) -> bytes | None:
        raise NotPrefetched(key.hex())

    ctx = Context(tx(), 1, 0, view, fuel_limit=FUEL)
    with pytest.raises(NotPrefetched):
        led.rt.call(ctx, contract="token", code=example("token"), method="supply", args={})


# ---------------------------------------------------------------- determinism and isolation


def test_determinism(led: Ledger) -> None:
    led.call("token", "init", {"owner": A})
    led.call("token", "mint", {"to": A, "amount": 1000})
    snapshot = dict(led.state)
    runs = []
    for runtime in (led.rt, led.rt, WasmRuntime(module_cache=1)):  # cached and freshly compiled
        led.state = dict(snapshot)
        led.rt = runtime
        result, ctx = led.call("token", "transfer", {"to": B, "amount": 7})
        runs.append((result, ctx.fuel_used, ctx.writes, [e.wire() for e in ctx.events]))
        err, bad = led.fail("bad", "recurse")
        runs.append((str(err), bad.fuel_used))
    assert runs[0] == runs[2] == runs[4] and runs[1] == runs[3] == runs[5]


def test_contracts_see_only_their_own_keys(led: Ledger) -> None:
    _, ctx = led.call("probe", "put", "k", contract="p1")
    assert ctx.writes == {b"c/s/p1/k": b'"k"'}
    assert led.call("probe", "get", "k", contract="p1")[0] == "k"
    led.state[b"c/s/p2x/k"] = b'"other"'
    led.state[b"kv/k"] = b'"system"'
    result, ctx = led.call("probe", "get", "k", contract="p2")
    assert result is None and set(ctx.reads) == {b"c/s/p2/k"}
    result, ctx = led.call("probe", "get", "../p1/k", contract="p2")
    assert result is None and set(ctx.reads) == {b"c/s/p2/../p1/k"}, "a key is opaque bytes under the prefix"
    _, ctx = led.call("probe", "del", "k", contract="p1")
    assert ctx.writes == {b"c/s/p1/k": None}


def test_host_facts_and_events(led: Ledger) -> None:
    assert led.call("probe", "caller", sender=BOB)[0] == B
    assert led.call("probe", "name", contract="probe-7")[0] == "probe-7"
    assert led.call("probe", "height")[0] == 7
    assert led.call("probe", "time")[0] == 1_700_000_000_000
    _, ctx = led.call("probe", "emit", ["x", "y"])
    assert [e.wire() for e in ctx.events] == [{"type": "probe:Ping", "keys": ["x", "y"], "data": ["x", "y"]}]
    err, _ = led.fail("probe", "emit", {"not": "a list"})
    assert str(err) == "bad host call emit: keys must be a JSON array of strings"


def test_call_system_acts_as_the_contract(led: Ledger) -> None:
    result, ctx = led.call("probe", "sys", {"type": "ft.transfer", "args": {"amount": 1}}, contract="pr")
    assert result == {"by": "contract:pr", "ok": True}
    assert led.system_calls == [("contract:pr", "ft.transfer", {"amount": 1})]
    assert ctx.writes == {b"sys/contract:pr": b"touched"}
    assert [e.type for e in ctx.events] == ["ft.Done"]
    err, ctx = led.fail("probe", "sys", {"type": "ft.fail", "args": {}})
    assert isinstance(err, SystemCallRefused)
    assert str(err) == "call_system ft.fail refused: insufficient funds"
    err, _ = led.fail("probe", "sys", {"type": "ft.transfer"})
    assert str(err) == 'bad host call call_system: the request is {"type": string, "args": object}'
    ctx = led.ctx()
    with pytest.raises(AbiError, match="no system contracts are reachable"):
        led.rt.call(ctx, contract="p", code=example("probe"), method="sys", args={"type": "t", "args": {}})


def test_nested_contract_calls_share_the_budget(led: Ledger) -> None:
    """A system contract that calls another user contract: the callee's fuel is charged to the
    caller, and running out deep inside fails the outer call as out of fuel."""
    def system(ctx: Context, type_: str, args: dict[str, Any]) -> Any:
        return led.rt.call(ctx, contract=args["c"], code=example(args["c"]), method=args["m"], args={})

    for method, fuel in (("noop", FUEL), ("loop", FUEL)):
        name = "work" if method == "noop" else "bad"
        ctx = led.ctx(fuel=fuel)
        try:
            led.rt.call(ctx, contract="probe", code=example("probe"), method="sys",
                        args={"type": "contract.call", "args": {"c": name, "m": method}}, system=system)
        except OutOfFuel as exc:
            assert method == "loop" and str(exc) == f"out of fuel: used {fuel} of {fuel}"
            assert ctx.fuel_used == fuel
        else:
            base = 2 * FUEL_CALL + FUEL_CALL_SYSTEM  # two calls (the callee's charged to the caller)
            assert method == "noop" and base < ctx.fuel_used < base + 200_000


# ---------------------------------------------------------------- validation


def _module(body: str, *, memory: str = '(memory (export "memory") 1)',
            alloc: str = '(func (export "alloc") (param i32) (result i32) (i32.const 0))') -> bytes:
    return compile_wat(f"(module {body} {memory} {alloc})")


@pytest.mark.parametrize(("code", "why"), [
    (b"", "a module is 1 to"),
    (b"(module)", "not a WebAssembly binary"),
    (b"\0asm\x0d\x00\x01\x00", "not a core WebAssembly module"),
    (b"\0asm\x01\x00\x00\x00\x01\xff", "invalid module:"),
    (b"\0asm\x01\x00\x00\x00" + b"\0" * 300_000, "a module is 1 to 262144 bytes"),
    (_module("", memory=""), "must export its linear memory as 'memory'"),
    (_module("", alloc=""), "must export 'alloc' of type (i32 len) -> i32 ptr"),
    (_module('(import "env" "state_get" (func (param i32) (result i32)))'),
     "import env.state_get has type (('i32',), ('i32',)), the host API's is (('i32', 'i32'), ('i32',))"),
    (_module('(import "env" "random" (func (result i64)))'), "import env.random is not in the host API"),
    (_module("", memory='(import "env" "memory" (memory 1))'), "import env.memory is not in the host API"),
    (_module('(func (export "m") (param i32) (result i32) (i32.const 0))'),
     "export 'm' has type (('i32',), ('i32',)); a method takes"),
    (_module('(func (export "bad-name") (param i32 i32) (result i32) (i32.const 0))'),
     "export 'bad-name': a method name is"),
    (_module("", memory=f'(memory (export "memory") {MAX_MEMORY_PAGES + 1})'),
     f"memory of {MAX_MEMORY_PAGES + 1} pages"),
    (_module("(table 20000 funcref)"), "a table of 20000 elements; the limit is 10000"),
    (_module('(func (result v128) (v128.const i64x2 0 0))'), "SIMD support is not enabled"),
    (_module("", memory='(memory (export "memory") 1 1 shared)'), "threads must be enabled for shared memories"),
    (_module("", memory='(memory (export "memory") i64 1)'), "memory64 must be enabled"),
    (_module("".join(f'(func (export "m{i}") (param i32 i32) (result i32) (i32.const 0))'
                     for i in range(MAX_EXPORTS))), f"the limit is {MAX_EXPORTS}"),
])
def test_validate_refuses(code: bytes, why: str) -> None:
    with pytest.raises(InvalidModule) as info:
        validate_module(code)
    assert why in str(info.value)


def test_validate_accepts_helpers_and_data() -> None:
    code = _module('(import "env" "height" (func (result i64)))'
                   '(func (export "_helper") (result i32) (i32.const 1))'
                   '(func (export "init") (param i32 i32) (result i32) (i32.const 0))'
                   '(global (export "__heap_base") i32 (i32.const 4096))'
                   '(func (export "go") (param i32 i32) (result i32) (f32.eq (f32.const nan) (f32.const nan)))')
    info = validate_module(code)
    assert info.methods == ("go", "init") and info.has_init


def test_a_bad_alloc_is_refused(led: Ledger) -> None:
    code = _module('(func (export "m") (param i32 i32) (result i32) (i32.const 0))',
                   alloc='(func (export "alloc") (param i32) (result i32) (i32.const 65535))')
    err, _ = led.fail("x", "m", code=code)
    assert str(err) == "bad alloc: alloc(2) returned 65535, outside memory (65536 bytes)"


# ---------------------------------------------------------------- in a block


def test_in_a_block_a_failing_call_fails_alone(rt: WasmRuntime) -> None:
    codes = {n: example(n) for n in ("work", "bad")}

    def run(ctx: Context) -> None:
        p = ctx.tx.payload
        ctx.result = rt.call(ctx, contract=p["c"], code=codes[p["c"]], method=p["m"], args=p.get("args", {}))

    app = LedgerApp(MemoryStore(), {"wasm.call": TxType(run, metered=True)})
    txs = [tx(payload={"c": "work", "m": "work", "args": {"from": "a", "to": "b", "amount": 1, "rounds": 10}}),
           tx(payload={"c": "bad", "m": "loop"}),
           tx(payload={"c": "bad", "m": "trap"}),
           tx(payload={"c": "bad", "m": "loop", "fuel": 5000}),
           tx(payload={"c": "work", "m": "work", "args": {"from": "b", "to": "c", "amount": 1, "rounds": 10}})]
    receipts = app.execute_block(Block.make({"height": 1, "time": 0}, [t.id for t in txs]), txs).receipts
    codes_infos = [(r.code, r.info) for r in receipts]
    limit = DEFAULT_CALL_FUEL
    assert codes_infos[1:4] == [(BAD_PAYLOAD, f"out of fuel: used {limit} of {limit}"),
                                (BAD_PAYLOAD, "trap: unreachable"),
                                (BAD_PAYLOAD, "out of fuel: used 5000 of 5000")]
    assert receipts[0].code == receipts[4].code == OK and isinstance(receipts[0].result, int)
    assert [r.fuel for r in receipts][1:4] == [limit, receipts[2].fuel, 5000]
    assert app.last_stats["fuel"] == sum(r.fuel for r in receipts)
    assert app.tree.get(b"c/s/work/b/a") == b"999999999"
    assert app.tree.get(b"c/s/work/b/b") == b"1000000000"
    assert app.tree.get(b"c/s/work/b/c") == b"1000000001"


# ---------------------------------------------------------------- cost (printed, not asserted)


def test_time_grows_with_the_budget(led: Ledger) -> None:
    """An out-of-fuel call takes time proportional to its budget (printed: run with -s)."""
    rows = []
    for fuel in (1_000_000, 10_000_000, 100_000_000):
        for method in ("loop", "hostloop"):
            t = time.perf_counter()
            err, ctx = led.fail("bad", method, fuel=fuel)
            rows.append((method, fuel, (time.perf_counter() - t) * 1e3))
            assert isinstance(err, OutOfFuel) and ctx.fuel_used == fuel
    t = time.perf_counter()
    led.call("work", "noop")
    noop = (time.perf_counter() - t) * 1e3
    print("\nout-of-fuel calls: " + ", ".join(f"{m} {f:,} fuel {ms:.2f} ms" for m, f, ms in rows)
          + f"; noop call {noop:.3f} ms")
