"""Fungible tokens (``ledger.contracts.ft``): every method, every class of bad input, key
predictions against what each call actually touched, conservation under random operation
sequences, and the same behaviour through ``LedgerApp`` with real signed transactions."""

from __future__ import annotations

import pickle
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ledger.codec import parse
from ledger.consensus.types import Block, QuorumCertificate
from ledger.contracts import ft, nft
from ledger.contracts.context import Context, Event, Refused, account_of
from ledger.contracts.parallel import ParallelExecutor
from ledger.crypto import SM2PrivateKey
from ledger.crypto.merkle import merkle_root
from ledger.node.abci import BAD_PAYLOAD, OK, Receipt
from ledger.node.app import LedgerApp
from ledger.state.store import MemoryStore
from ledger.tx import Transaction

CHAIN = "tok"
KEYS = [SM2PrivateKey.generate() for _ in range(4)]
ALICE, BOB, CAROL, DAVE = (account_of(k.public_key().point) for k in KEYS)
SHOP = "contract:shop"
TX = Transaction.build(KEYS[0], chain=CHAIN, type="ft.transfer", payload={}, expiry=10**6, nonce=1)
MAX = 2**127 - 1


# --------------------------------------------------------------------------- a direct harness
@dataclass
class Call:
    refused: str | None
    result: Any
    events: list[Event]
    reads: set[bytes]
    writes: dict[bytes, bytes | None]


@dataclass
class Ledger:
    """State in a dict; methods called directly acting as any account. Every call checks that
    the prediction covers what it read and wrote, and that a refusal changed nothing."""

    methods: dict[str, Callable[[Context, dict[str, Any]], Any]]
    predict: Callable[[str, str, Any], list[bytes] | None]
    unpredicted_write: Callable[[bytes], bool] = lambda key: False
    invariant: Callable[[dict[bytes, bytes]], None] = lambda state: None
    height: int = 1
    time_ms: int = 1_000
    state: dict[bytes, bytes] = field(default_factory=dict)
    log: list[Event] = field(default_factory=list)

    def call(self, type_: str, args: Any, caller: str, serial: bool = False) -> Call:
        """``serial``: the call may read keys its prediction lacks (a documented path that runs
        in block order rather than ahead in a worker)."""
        before = dict(self.state)
        ctx = Context(TX, self.height, self.time_ms, self.state.get, caller_override=caller)
        try:
            result = self.methods[type_](ctx, args)
            refused = None
        except Refused as exc:
            result, refused = None, str(exc)
        predicted = self.predict(type_, caller, args)
        if predicted is not None:
            missing = set(ctx.reads) - set(predicted)
            assert serial or not missing, f"{type_} read keys it did not predict: {sorted(missing)}"
            unwritten = {k for k in ctx.writes if k not in predicted and not self.unpredicted_write(k)}
            assert serial or not unwritten or refused, f"{type_} wrote keys it did not predict: {sorted(unwritten)}"
        else:
            assert refused is not None, f"{type_} ran although its arguments have no prediction"
        if refused is None:
            for k, v in ctx.writes.items():
                if v is None:
                    self.state.pop(k, None)
                else:
                    self.state[k] = v
            self.log.extend(ctx.events)
        assert refused is None or self.state == before
        self.invariant(self.state)
        return Call(refused, result, list(ctx.events), set(ctx.reads), dict(ctx.writes))

    def ok(self, type_: str, args: Any, caller: str, serial: bool = False) -> Any:
        out = self.call(type_, args, caller, serial)
        assert out.refused is None, f"{type_} {args} refused: {out.refused}"
        return out.result

    def no(self, type_: str, args: Any, caller: str, why: str, serial: bool = False) -> str:
        before = dict(self.state)
        out = self.call(type_, args, caller, serial)
        assert out.refused is not None, f"{type_} {args} was accepted"
        assert re.search(why, out.refused), f"{out.refused!r} does not say {why!r}"
        assert self.state == before
        return out.refused

    def read(self, key: bytes) -> bytes | None:
        return self.state.get(key)


def ft_invariant(state: dict[bytes, bytes]) -> None:
    """Per token: every stored balance and allowance a positive integer below 2**127; the sum of
    balances equals the supply, which is within the cap."""
    sums: dict[str, int] = {}
    for key, raw in state.items():
        parts = key.decode().split("/")
        if parts[0] != "ft":
            continue
        value = parse(raw)
        if parts[2] in ("bal", "allow"):
            assert type(value) is int and 0 < value <= MAX, (key, value)
            if parts[2] == "bal":
                sums[parts[1]] = sums.get(parts[1], 0) + value
    for key, raw in state.items():
        parts = key.decode().split("/")
        if parts[0] == "ft" and parts[2] == "meta":
            meta = parse(raw)
            supply = parse(state[ft.k_supply(parts[1])])
            assert sums.get(parts[1], 0) == supply <= meta["cap"] <= MAX


def ledger() -> Ledger:
    return Ledger(ft.METHODS, ft.predict, invariant=ft_invariant)


def issued(cap: int = 1_000, initial: int = 500, **more: Any) -> Ledger:
    led = ledger()
    led.ok("ft.issue", {"symbol": "PTS", "name": "积分", "cap": cap, "initial": initial, **more}, ALICE)
    return led


def bal(led: Ledger, who: str, symbol: str = "PTS") -> int:
    return ft.balance(led.read, symbol, who)


# --------------------------------------------------------------------------- ft.issue
def test_issue_creates_the_token_and_mints_the_initial_amount_to_the_issuer() -> None:
    led = ledger()
    out = led.call("ft.issue", {"symbol": "PTS", "name": "积分", "cap": 1_000, "initial": 400, "decimals": 2},
                   ALICE)
    assert out.refused is None
    assert out.result == {"cap": 1_000, "decimals": 2, "height": 1, "issuer": ALICE, "name": "积分",
                          "supply": 400, "symbol": "PTS", "template": "ft/1"}
    assert ft.info(led.read, "PTS") == out.result
    assert ft.total_supply(led.read, "PTS") == 400 and bal(led, ALICE) == 400
    assert [(e.type, e.keys) for e in out.events] == [("ft.Issue", ("PTS", ALICE)), ("ft.Mint", ("PTS", ALICE))]
    assert out.events[1].data == {"amount": 400, "supply": 400, "symbol": "PTS", "to": ALICE}
    # defaults: no decimals, nothing minted
    out = led.call("ft.issue", {"symbol": "RS2024", "name": "revenue share", "cap": MAX}, BOB)
    assert out.result["decimals"] == 0 and out.result["supply"] == 0
    assert [e.type for e in out.events] == ["ft.Issue"]
    assert ft.info(led.read, "NONE") is None and ft.total_supply(led.read, "NONE") == 0


@pytest.mark.parametrize(("args", "why"), [
    ({"symbol": "pts", "name": "x", "cap": 1}, "symbol must be 2-16 characters"),
    ({"symbol": "P", "name": "x", "cap": 1}, "symbol must be 2-16"),
    ({"symbol": "1PT", "name": "x", "cap": 1}, "starting with a letter"),
    ({"symbol": "P" * 17, "name": "x", "cap": 1}, "symbol must be 2-16"),
    ({"symbol": "PT/X", "name": "x", "cap": 1}, "symbol must be"),
    ({"symbol": 7, "name": "x", "cap": 1}, "symbol must be a string, not an integer"),
    ({"symbol": "PT", "name": "", "cap": 1}, r"name must be 1 to 128 bytes"),
    ({"symbol": "PT", "name": "名" * 43, "cap": 1}, r"name must be 1 to 128 bytes of UTF-8, got 129"),
    ({"symbol": "PT", "name": "a\nb", "cap": 1}, r"control characters \(found U\+000A\)"),
    ({"symbol": "PT", "name": "a\x85", "cap": 1}, r"control characters"),
    ({"symbol": "PT", "name": ["x"], "cap": 1}, "name must be a string, not a list"),
    ({"symbol": "PT", "name": "x", "cap": 0}, "cap must be positive"),
    ({"symbol": "PT", "name": "x", "cap": -5}, "cap must be positive"),
    ({"symbol": "PT", "name": "x", "cap": True}, "cap must be an integer, not a boolean"),
    ({"symbol": "PT", "name": "x", "cap": 1.5}, "cap must be an integer, not float"),
    ({"symbol": "PT", "name": "x", "cap": "100"}, "cap must be an integer, not a string"),
    ({"symbol": "PT", "name": "x", "cap": None}, "cap must be an integer, not null"),
    ({"symbol": "PT", "name": "x", "cap": 2**127}, r"cap overflows: amounts must be below 2\*\*127"),
    ({"symbol": "PT", "name": "x", "cap": 2**256}, "cap overflows"),
    ({"symbol": "PT", "name": "x", "cap": 10, "decimals": 19}, "decimals must be at most 18"),
    ({"symbol": "PT", "name": "x", "cap": 10, "decimals": -1}, "decimals must be at least 0"),
    ({"symbol": "PT", "name": "x", "cap": 10, "decimals": False}, "decimals must be an integer"),
    ({"symbol": "PT", "name": "x", "cap": 10, "initial": 11}, "initial 11 is above the cap 10"),
    ({"symbol": "PT", "name": "x", "cap": 10, "initial": -1}, "initial must be at least 0"),
    ({"symbol": "PT", "name": "x"}, "missing field 'cap'"),
    ({"name": "x"}, "missing fields 'symbol', 'cap'"),
    ({"symbol": "PT", "name": "x", "cap": 10, "owner": ALICE}, "unknown field 'owner'"),
])
def test_issue_refuses_bad_arguments(args: dict[str, Any], why: str) -> None:
    ledger().no("ft.issue", args, ALICE, why)


def test_issue_refuses_a_taken_symbol_and_non_object_arguments() -> None:
    led = issued()
    led.no("ft.issue", {"symbol": "PTS", "name": "again", "cap": 5}, BOB, "token PTS already exists")
    for bad in ([1, 2], "PTS", None, 3):
        led.no("ft.issue", bad, BOB, "arguments must be a JSON object")


# --------------------------------------------------------------------------- ft.mint
def test_mint_by_the_issuer_up_to_the_cap() -> None:
    led = issued(cap=1_000, initial=500)
    out = led.call("ft.mint", {"symbol": "PTS", "amount": 300, "to": BOB}, ALICE)
    assert out.refused is None and out.events[0].type == "ft.Mint" and out.events[0].keys == ("PTS", BOB)
    assert out.events[0].data == {"amount": 300, "supply": 800, "symbol": "PTS", "to": BOB}
    led.ok("ft.mint", {"symbol": "PTS", "amount": 200}, ALICE)  # to defaults to the caller: exactly the cap
    assert bal(led, ALICE) == 700 and bal(led, BOB) == 300 and ft.total_supply(led.read, "PTS") == 1_000
    led.no("ft.mint", {"symbol": "PTS", "amount": 1}, ALICE,
           "minting 1 would take the supply of PTS to 1001, above its cap 1000")
    led.ok("ft.burn", {"symbol": "PTS", "amount": 100}, BOB)
    led.ok("ft.mint", {"symbol": "PTS", "amount": 100, "to": CAROL}, ALICE)  # burning frees room under the cap


def test_mint_refusals() -> None:
    led = issued()
    led.no("ft.mint", {"symbol": "PTS", "amount": 1}, BOB, rf"only the issuer of PTS \({ALICE}\) may mint")
    led.no("ft.mint", {"symbol": "XX", "amount": 1}, ALICE, "there is no token XX")
    led.no("ft.mint", {"symbol": "PTS", "amount": 0}, ALICE, "amount must be positive")
    led.no("ft.mint", {"symbol": "PTS", "amount": 2**127}, ALICE, "amount overflows")
    led.no("ft.mint", {"symbol": "PTS", "amount": "5"}, ALICE, "amount must be an integer, not a string")
    led.no("ft.mint", {"symbol": "PTS", "amount": 5, "to": "bob"}, ALICE, "to is not an account")
    led.ok("ft.freeze", {"symbol": "PTS", "account": BOB}, ALICE)
    led.no("ft.mint", {"symbol": "PTS", "amount": 5, "to": BOB}, ALICE, f"receiver {BOB} is frozen for PTS")
    big = issued(cap=MAX, initial=MAX)
    big.no("ft.mint", {"symbol": "PTS", "amount": 1}, ALICE, "above its cap")


# --------------------------------------------------------------------------- ft.transfer
def test_transfer_moves_tokens_and_emits_an_event() -> None:
    led = issued()
    out = led.call("ft.transfer", {"symbol": "PTS", "to": BOB, "amount": 120}, ALICE)
    assert out.refused is None and out.result is None
    assert out.events == [Event("ft.Transfer", ("PTS", ALICE, BOB),
                                {"amount": 120, "from": ALICE, "symbol": "PTS", "to": BOB})]
    assert bal(led, ALICE) == 380 and bal(led, BOB) == 120
    led.ok("ft.transfer", {"symbol": "PTS", "to": SHOP, "amount": 20}, BOB)  # contracts hold tokens
    led.ok("ft.transfer", {"symbol": "PTS", "to": CAROL, "amount": 5}, SHOP)  # and send them as themselves
    led.ok("ft.transfer", {"symbol": "PTS", "to": ALICE, "amount": 100}, BOB)  # the whole balance
    assert ft.k_balance("PTS", BOB) not in led.state, "a zero balance is not stored"
    assert bal(led, BOB) == 0 and bal(led, SHOP) == 15 and bal(led, CAROL) == 5


@pytest.mark.parametrize(("args", "why"), [
    ({"symbol": "PTS", "to": BOB, "amount": 501}, f"insufficient balance: {ALICE} holds 500 PTS, needs 501"),
    ({"symbol": "PTS", "to": BOB, "amount": 2**127}, r"amount overflows: amounts must be below 2\*\*127"),
    ({"symbol": "PTS", "to": BOB, "amount": 2**127 - 1}, "insufficient balance"),
    ({"symbol": "PTS", "to": BOB, "amount": -1}, "amount must be positive, got -1"),
    ({"symbol": "PTS", "to": BOB, "amount": 0}, "amount must be positive"),
    ({"symbol": "PTS", "to": BOB, "amount": True}, "amount must be an integer, not a boolean"),
    ({"symbol": "PTS", "to": BOB, "amount": 1.0}, "amount must be an integer, not float"),
    ({"symbol": "PTS", "to": BOB, "amount": "1"}, "amount must be an integer, not a string"),
    ({"symbol": "PTS", "to": ALICE, "amount": 1}, "sender and receiver are the same account"),
    ({"symbol": "PTS", "to": BOB.upper(), "amount": 1}, "to is not an account"),
    ({"symbol": "PTS", "to": BOB[:-1], "amount": 1}, "to is not an account"),
    ({"symbol": "PTS", "to": "contract:", "amount": 1}, "to is not an account"),
    ({"symbol": "PTS", "to": "contract:a/b", "amount": 1}, "to is not an account"),
    ({"symbol": "PTS", "to": "contract:" + "a" * 65, "amount": 1}, "to is not an account"),
    ({"symbol": "PTS", "to": 5, "amount": 1}, "to must be an account string, not an integer"),
    ({"symbol": "PTS", "to": {"id": BOB}, "amount": 1}, "to must be an account string, not an object"),
    ({"symbol": "NOPE", "to": BOB, "amount": 1}, "there is no token NOPE"),
    ({"symbol": "PTS", "to": BOB}, "missing field 'amount'"),
    ({"symbol": "PTS", "to": BOB, "amount": 1, "memo": "hi"}, "unknown field 'memo'"),
])
def test_transfer_refusals(args: dict[str, Any], why: str) -> None:
    issued().no("ft.transfer", args, ALICE, why)


def test_frozen_accounts_can_neither_send_nor_receive() -> None:
    led = issued()
    led.ok("ft.transfer", {"symbol": "PTS", "to": BOB, "amount": 100}, ALICE)
    out = led.call("ft.freeze", {"symbol": "PTS", "account": BOB}, ALICE)
    assert out.events[0].type == "ft.Freeze" and out.events[0].keys == ("PTS", BOB)
    assert ft.is_frozen(led.read, "PTS", BOB) and not ft.is_frozen(led.read, "PTS", ALICE)
    led.no("ft.transfer", {"symbol": "PTS", "to": CAROL, "amount": 1}, BOB, f"sender {BOB} is frozen for PTS")
    led.no("ft.transfer", {"symbol": "PTS", "to": BOB, "amount": 1}, ALICE, f"receiver {BOB} is frozen")
    led.no("ft.burn", {"symbol": "PTS", "amount": 1}, BOB, f"holder {BOB} is frozen")
    led.ok("ft.approve", {"symbol": "PTS", "spender": CAROL, "amount": 50}, BOB)  # approving moves nothing
    led.no("ft.transfer_from", {"symbol": "PTS", "from": BOB, "to": DAVE, "amount": 1}, CAROL,
           f"sender {BOB} is frozen")
    led.ok("ft.approve", {"symbol": "PTS", "spender": BOB, "amount": 50}, ALICE)
    led.no("ft.transfer_from", {"symbol": "PTS", "from": ALICE, "to": DAVE, "amount": 1}, BOB,
           f"spender {BOB} is frozen")
    led.no("ft.burn_from", {"symbol": "PTS", "from": ALICE, "amount": 1}, BOB, f"spender {BOB} is frozen")
    led.no("ft.freeze", {"symbol": "PTS", "account": BOB}, ALICE, f"{BOB} is already frozen for PTS")
    led.no("ft.unfreeze", {"symbol": "PTS", "account": BOB}, BOB, "only the issuer of PTS .* may freeze")
    out = led.call("ft.unfreeze", {"symbol": "PTS", "account": BOB}, ALICE)
    assert out.events[0].type == "ft.Unfreeze" and not ft.is_frozen(led.read, "PTS", BOB)
    led.no("ft.unfreeze", {"symbol": "PTS", "account": BOB}, ALICE, f"{BOB} is not frozen for PTS")
    led.ok("ft.transfer", {"symbol": "PTS", "to": CAROL, "amount": 1}, BOB)


def test_freeze_refusals() -> None:
    led = issued()
    led.no("ft.freeze", {"symbol": "PTS", "account": BOB}, BOB, r"only the issuer of PTS")
    led.no("ft.freeze", {"symbol": "PTS", "account": "x"}, ALICE, "account is not an account")
    led.no("ft.freeze", {"symbol": "QQ", "account": BOB}, ALICE, "there is no token QQ")
    led.no("ft.freeze", {"symbol": "PTS"}, ALICE, "missing field 'account'")
    led.no("ft.unfreeze", {"symbol": "PTS", "account": BOB, "x": 1}, ALICE, "unknown field 'x'")


# --------------------------------------------------------------------------- ft.approve / ft.transfer_from
def test_approve_and_transfer_from_spend_the_allowance() -> None:
    led = issued()
    out = led.call("ft.approve", {"symbol": "PTS", "spender": BOB, "amount": 100}, ALICE)
    assert out.events == [Event("ft.Approval", ("PTS", ALICE, BOB),
                                {"amount": 100, "owner": ALICE, "spender": BOB, "symbol": "PTS"})]
    assert ft.allowance(led.read, "PTS", ALICE, BOB) == 100
    out = led.call("ft.transfer_from", {"symbol": "PTS", "from": ALICE, "to": CAROL, "amount": 60}, BOB)
    assert out.refused is None
    assert out.events == [Event("ft.Transfer", ("PTS", ALICE, CAROL),
                                {"amount": 60, "from": ALICE, "spender": BOB, "symbol": "PTS", "to": CAROL})]
    assert ft.allowance(led.read, "PTS", ALICE, BOB) == 40 and bal(led, CAROL) == 60 and bal(led, ALICE) == 440
    led.no("ft.transfer_from", {"symbol": "PTS", "from": ALICE, "to": CAROL, "amount": 41}, BOB,
           f"insufficient allowance: {BOB} may spend 40 PTS of {ALICE}, needs 41")
    led.no("ft.transfer_from", {"symbol": "PTS", "from": ALICE, "to": CAROL, "amount": 1}, DAVE,
           "insufficient allowance: .* may spend 0 PTS")
    led.ok("ft.transfer_from", {"symbol": "PTS", "from": ALICE, "to": BOB, "amount": 40}, BOB)  # to itself
    assert ft.k_allowance("PTS", ALICE, BOB) not in led.state, "a used-up allowance is not stored"
    # from == caller: an ordinary transfer, no allowance needed
    led.ok("ft.transfer_from", {"symbol": "PTS", "from": CAROL, "to": DAVE, "amount": 10}, CAROL)
    # an allowance larger than the balance: the balance is what is refused
    led.ok("ft.approve", {"symbol": "PTS", "spender": BOB, "amount": 10_000}, CAROL)
    led.no("ft.transfer_from", {"symbol": "PTS", "from": CAROL, "to": DAVE, "amount": 51}, BOB,
           f"insufficient balance: {CAROL} holds 50 PTS")


def test_approve_sets_compares_and_withdraws() -> None:
    led = issued()
    led.ok("ft.approve", {"symbol": "PTS", "spender": BOB, "amount": 100}, ALICE)
    led.ok("ft.approve", {"symbol": "PTS", "spender": BOB, "amount": 30}, ALICE)  # sets, does not add
    assert ft.allowance(led.read, "PTS", ALICE, BOB) == 30
    led.no("ft.approve", {"symbol": "PTS", "spender": BOB, "amount": 80, "current": 100}, ALICE,
           f"the allowance of {BOB} is 30, not 100")
    led.ok("ft.approve", {"symbol": "PTS", "spender": BOB, "amount": 80, "current": 30}, ALICE)
    led.ok("ft.approve", {"symbol": "PTS", "spender": BOB, "amount": 0}, ALICE)
    assert ft.k_allowance("PTS", ALICE, BOB) not in led.state
    led.ok("ft.approve", {"symbol": "PTS", "spender": BOB, "amount": MAX}, ALICE)  # more than exists: allowed
    led.no("ft.approve", {"symbol": "PTS", "spender": BOB, "amount": MAX + 1}, ALICE, "amount overflows")
    led.no("ft.approve", {"symbol": "PTS", "spender": ALICE, "amount": 1}, ALICE, "cannot approve itself")
    led.no("ft.approve", {"symbol": "PTS", "spender": BOB, "amount": -1}, ALICE, "amount must be at least 0")
    led.no("ft.approve", {"symbol": "PTS", "spender": BOB, "amount": 1, "current": "0"}, ALICE,
           "current must be an integer")
    led.no("ft.approve", {"symbol": "ZZ", "spender": BOB, "amount": 1}, ALICE, "there is no token ZZ")
    led.no("ft.approve", {"symbol": "PTS", "spender": None, "amount": 1}, ALICE,
           "spender must be an account string, not null")


def test_transfer_from_refusals() -> None:
    led = issued()
    led.ok("ft.approve", {"symbol": "PTS", "spender": BOB, "amount": 100}, ALICE)
    base = {"symbol": "PTS", "from": ALICE, "to": CAROL, "amount": 1}
    led.no("ft.transfer_from", {**base, "to": ALICE}, BOB, "sender and receiver are the same account")
    led.no("ft.transfer_from", {**base, "from": "alice"}, BOB, "from is not an account")
    led.no("ft.transfer_from", {**base, "amount": 2**200}, BOB, "amount overflows")
    led.no("ft.transfer_from", {**base, "amount": False}, BOB, "amount must be an integer, not a boolean")
    led.no("ft.transfer_from", {k: v for k, v in base.items() if k != "from"}, BOB, "missing field 'from'")
    led.no("ft.transfer_from", {**base, "symbol": "NO"}, BOB, "there is no token NO")


# --------------------------------------------------------------------------- ft.burn / ft.burn_from
def test_burn_and_burn_from_reduce_the_supply() -> None:
    led = issued()
    out = led.call("ft.burn", {"symbol": "PTS", "amount": 100}, ALICE)
    assert out.events == [Event("ft.Burn", ("PTS", ALICE),
                                {"amount": 100, "from": ALICE, "supply": 400, "symbol": "PTS"})]
    assert ft.total_supply(led.read, "PTS") == 400
    led.no("ft.burn", {"symbol": "PTS", "amount": 401}, ALICE, "insufficient balance")
    led.no("ft.burn", {"symbol": "PTS", "amount": 1}, BOB, f"insufficient balance: {BOB} holds 0 PTS")
    led.no("ft.burn", {"symbol": "PTS", "amount": 0}, ALICE, "amount must be positive")
    led.no("ft.burn", {"symbol": "PTS", "amount": 2**127}, ALICE, "amount overflows")
    led.no("ft.burn", {"symbol": "NO", "amount": 1}, ALICE, "there is no token NO")
    led.no("ft.burn_from", {"symbol": "PTS", "from": ALICE, "amount": 1}, BOB, "insufficient allowance")
    led.ok("ft.approve", {"symbol": "PTS", "spender": BOB, "amount": 50}, ALICE)
    out = led.call("ft.burn_from", {"symbol": "PTS", "from": ALICE, "amount": 50}, BOB)
    assert out.events[0].data == {"amount": 50, "from": ALICE, "spender": BOB, "supply": 350, "symbol": "PTS"}
    assert ft.allowance(led.read, "PTS", ALICE, BOB) == 0 and bal(led, ALICE) == 350
    led.ok("ft.burn_from", {"symbol": "PTS", "from": ALICE, "amount": 350}, ALICE)  # own tokens: no allowance
    assert ft.total_supply(led.read, "PTS") == 0 and ft.k_supply("PTS") in led.state
    led.no("ft.burn_from", {"symbol": "PTS", "from": 1, "amount": 1}, BOB, "from must be an account string")


# --------------------------------------------------------------------------- ft.set_issuer
def test_set_issuer_hands_over_the_role() -> None:
    led = issued()
    led.no("ft.set_issuer", {"symbol": "PTS", "issuer": BOB}, BOB, "only the issuer of PTS")
    led.no("ft.set_issuer", {"symbol": "PTS", "issuer": ALICE}, ALICE, "already the issuer of PTS")
    led.no("ft.set_issuer", {"symbol": "PTS", "issuer": "x"}, ALICE, "issuer is not an account")
    out = led.call("ft.set_issuer", {"symbol": "PTS", "issuer": SHOP}, ALICE)
    assert out.events == [Event("ft.IssuerChanged", ("PTS", ALICE, SHOP),
                                {"from": ALICE, "symbol": "PTS", "to": SHOP})]
    led.no("ft.mint", {"symbol": "PTS", "amount": 1}, ALICE, r"only the issuer of PTS \(contract:shop\)")
    led.ok("ft.mint", {"symbol": "PTS", "amount": 1, "to": BOB}, SHOP)
    led.ok("ft.freeze", {"symbol": "PTS", "account": ALICE}, SHOP)


# --------------------------------------------------------------------------- helpers, types, predictions
def test_read_helpers_refuse_malformed_queries() -> None:
    led = issued()
    with pytest.raises(ft.TokenRefused, match="symbol must be"):
        ft.balance(led.read, "pts", ALICE)
    with pytest.raises(ft.TokenRefused, match="account is not an account"):
        ft.balance(led.read, "PTS", "nobody")
    with pytest.raises(ft.TokenRefused, match="spender is not an account"):
        ft.allowance(led.read, "PTS", ALICE, "x")
    with pytest.raises(ft.TokenRefused, match="symbol must be"):
        ft.info(led.read, "")
    assert ft.balance(led.read, "PTS", DAVE) == 0 and ft.allowance(led.read, "PTS", ALICE, BOB) == 0


def test_types_are_parallel_predicted_and_rebuildable() -> None:
    types = ft.types()
    assert set(types) == set(ft.METHODS) == {
        "ft.issue", "ft.mint", "ft.transfer", "ft.approve", "ft.transfer_from", "ft.burn", "ft.burn_from",
        "ft.freeze", "ft.unfreeze", "ft.set_issuer"}
    assert {n for n, t in types.items() if t.admin} == {"ft.issue", "ft.freeze", "ft.unfreeze", "ft.set_issuer"}
    assert all(t.parallel and not t.metered and t.keys is not None for t in types.values())
    pay = {"symbol": "PTS", "to": BOB, "amount": 5}
    tx = Transaction.build(KEYS[0], chain=CHAIN, type="ft.transfer", payload=pay, expiry=9)
    keys = types["ft.transfer"].keys
    assert keys is not None and keys(tx) == ft.predict("ft.transfer", ALICE, pay)
    assert set(keys(tx) or ()) == {b"ft/PTS/meta", f"ft/PTS/bal/{ALICE}".encode(), f"ft/PTS/bal/{BOB}".encode(),
                                   f"ft/PTS/frozen/{ALICE}".encode(), f"ft/PTS/frozen/{BOB}".encode()}
    bad = Transaction.build(KEYS[0], chain=CHAIN, type="ft.transfer", payload={"symbol": 1}, expiry=9)
    assert keys(bad) is None, "malformed arguments have no prediction (block order refuses them)"
    assert ft.predict("ft.nothing", ALICE, pay) is None and ft.predict("ft.transfer", ALICE, [1]) is None
    again = pickle.loads(pickle.dumps(types))
    assert set(again) == set(types)


# --------------------------------------------------------------------------- property: conservation
OPS = ["mint", "transfer", "approve", "transfer_from", "burn", "burn_from", "freeze", "unfreeze", "set_issuer",
       "transfer", "transfer", "approve", "transfer_from", "mint", "burn"]  # the common ones more often
ACTORS = [ALICE, BOB, CAROL, SHOP]
WHO = st.sampled_from([ALICE, ALICE, BOB, CAROL, SHOP])  # the first issuer acts more often
BAD_AMOUNTS = st.one_of(st.integers(-3, 0), st.integers(2**127 - 2, 2**130), st.just(2**127), st.booleans(),
                        st.just("10"), st.just(None), st.just(1.0))
# mostly amounts that can succeed, so the sequences reach deep states; one in eight is malformed
AMOUNTS = st.tuples(st.integers(0, 7), st.integers(1, 200), st.integers(201, 3_000), BAD_AMOUNTS).map(
    lambda t: t[1] if t[0] < 6 else t[2] if t[0] == 6 else t[3])


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.one_of(st.integers(0, 3_000), st.just(MAX)), st.integers(0, 2_000).map(lambda n: 2_000 - n),
       st.lists(st.tuples(st.sampled_from(OPS), WHO, WHO, WHO, AMOUNTS), max_size=60))
def test_random_operations_conserve_supply_and_never_go_negative(
        headroom: int, initial: int, steps: list[tuple[str, str, str, str, Any]]) -> None:
    led = ledger()  # its invariant runs after every call: balances > 0, sum == supply <= cap
    cap = min(MAX, max(headroom + initial, 1))
    led.ok("ft.issue", {"symbol": "PTS", "name": "p", "cap": cap, "initial": initial}, ALICE)
    expected = initial
    for acct in (BOB, CAROL, SHOP):  # everyone starts with something to move
        if initial >= 4:
            led.ok("ft.transfer", {"symbol": "PTS", "to": acct, "amount": initial // 4}, ALICE)
    for op, actor, other, third, value in steps:
        args: dict[str, Any] = {"symbol": "PTS"}
        if op in ("mint", "burn", "transfer", "approve", "transfer_from", "burn_from"):
            args["amount"] = value
        if op in ("mint", "transfer", "transfer_from"):
            args["to"] = other
        if op in ("transfer_from", "burn_from"):
            args["from"] = third
        if op == "approve":
            args["spender"] = other
        if op in ("freeze", "unfreeze"):
            args["account"] = other
        if op == "set_issuer":
            args["issuer"] = other
        out = led.call("ft." + op, args, actor)
        if out.refused is None and op == "mint":
            expected += value
        if out.refused is None and op in ("burn", "burn_from"):
            expected -= value
        assert ft.total_supply(led.read, "PTS") == expected
        assert all(ft.balance(led.read, "PTS", a) >= 0 for a in ACTORS)
    assert sum(ft.balance(led.read, "PTS", a) for a in ACTORS) == expected <= cap


# --------------------------------------------------------------------------- property: any input, only refusals
JSON = st.recursive(st.none() | st.booleans() | st.integers() | st.text(max_size=12)
                    | st.sampled_from([2**127, -(2**127), 2**10_000, -(2**10_000), 1.5, ""]),
                    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3),
                    max_leaves=6)
PLAUSIBLE: dict[str, Any] = {
    "symbol": st.sampled_from(["PTS", "PTS", "PTS", "RS", "pts", "P"]), "name": st.sampled_from(["n", "名" * 50, "a\x00"]),
    "cap": st.integers(0, 2_000), "decimals": st.integers(-1, 20), "initial": st.integers(-1, 2_000),
    "amount": st.integers(-1, 600), "current": st.integers(0, 100),
    **{f: st.sampled_from([*ACTORS, DAVE, "contract:", ALICE.upper()])
       for f in ("to", "from", "spender", "account", "issuer")},
}


FT_FIELDS: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "ft.issue": (("symbol", "name", "cap"), ("decimals", "initial")),
    "ft.mint": (("symbol", "amount"), ("to",)),
    "ft.transfer": (("symbol", "to", "amount"), ()),
    "ft.approve": (("symbol", "spender", "amount"), ("current",)),
    "ft.transfer_from": (("symbol", "from", "to", "amount"), ()),
    "ft.burn": (("symbol", "amount"), ()),
    "ft.burn_from": (("symbol", "from", "amount"), ()),
    "ft.freeze": (("symbol", "account"), ()),
    "ft.unfreeze": (("symbol", "account"), ()),
    "ft.set_issuer": (("symbol", "issuer"), ()),
}


def value_for(plausible: dict[str, Any], name: str) -> st.SearchStrategy[Any]:
    """Mostly a plausible value of the field, one time in eight any JSON value."""
    good = plausible.get(name, JSON)
    return st.tuples(st.integers(0, 7), good, JSON).map(lambda t: t[1] if t[0] else t[2])


def calls_of(spec: dict[str, tuple[tuple[str, ...], tuple[str, ...]]],
             plausible: dict[str, Any]) -> st.SearchStrategy[tuple[str, dict[str, Any]]]:
    """A method and its arguments: the required fields (now and then one dropped), some of the
    optional ones, now and then a field nobody knows."""
    def build(type_: str) -> st.SearchStrategy[tuple[str, dict[str, Any]]]:
        req, opt = spec[type_]
        args = st.fixed_dictionaries({f: value_for(plausible, f) for f in req},
                                     optional={f: value_for(plausible, f) for f in opt})
        drop = st.sampled_from([None] * 12 + list(req))
        extra = st.sampled_from([None] * 12 + ["memo", "Symbol", ""])
        return st.tuples(args, drop, extra, JSON).map(
            lambda t: (type_, {**{k: v for k, v in t[0].items() if k != t[1]}, **({t[2]: t[3]} if t[2] is not None
                                                                                else {})}))
    return st.sampled_from(sorted(spec)).flatmap(build)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.tuples(calls_of(FT_FIELDS, PLAUSIBLE), WHO), max_size=12))
def test_any_arguments_are_accepted_or_refused_never_crash(calls: list[tuple[tuple[str, dict[str, Any]], str]]) -> None:
    """Whatever the arguments, a call is accepted or refused (never another exception), reads
    only predicted keys, changes nothing when refused and keeps the supply invariant."""
    assert set(FT_FIELDS) == set(ft.METHODS)
    led = issued(cap=2_000, initial=1_000)
    led.ok("ft.transfer", {"symbol": "PTS", "to": BOB, "amount": 300}, ALICE)
    for (type_, args), who in calls:
        led.call(type_, args, who)


def test_huge_and_odd_values_are_refused_with_a_readable_reason() -> None:
    led = issued()
    led.no("ft.transfer", {"symbol": "PTS", "to": BOB, "amount": -(2**20_000)}, ALICE,
           "amount must be positive, got -an integer of 20001 bits")
    led.no("ft.issue", {"symbol": "PT", "name": "x", "cap": 5, "decimals": 2**20_000}, ALICE,
           "decimals must be at most 18, got an integer of 20001 bits")
    led.no("ft.transfer", {"symbol": "PTS", "to": BOB, "amount": 1, 5: 1}, ALICE, "unknown field 5")
    led.no("ft.transfer", {"symbol": "PTS", "to": BOB, "amount": 1, "x" * 99: 1}, ALICE, "unknown field 'xxx")


# --------------------------------------------------------------------------- through the ledger application
def block_for(height: int, txs: list[Transaction], time_ms: int = 0) -> tuple[Block, QuorumCertificate]:
    ids = [t.id for t in txs]
    header = {"chain": CHAIN, "height": height, "view": height, "time": time_ms,
              "txs": merkle_root(ids).hex(), "count": len(ids)}
    b = Block.make(header, ids)
    return b, QuorumCertificate(CHAIN, height, height, b.hash, ())


def token_types() -> dict[str, Any]:
    """Picklable factory of the token types, for worker processes."""
    return {**ft.types(), **nft.types()}


class Chain:
    """A ``LedgerApp`` over a ``MemoryStore`` fed real signed transactions, block by block."""

    def __init__(self, precomputer: Any = None) -> None:
        self.app = LedgerApp(MemoryStore(), handlers=token_types(), precomputer=precomputer)
        self.height = 0

    def block(self, txs: list[Transaction], time_ms: int = 0) -> list[Receipt]:
        self.height += 1
        b, qc = block_for(self.height, txs, time_ms)
        res = self.app.execute_block(b, txs)
        self.app.commit(b, qc, txs, res)
        return res.receipts


def signed(key: SM2PrivateKey, type_: str, payload: dict[str, Any]) -> Transaction:
    return Transaction.build(key, chain=CHAIN, type=type_, payload=payload, expiry=10**6)


A, B, C, D = KEYS


def test_through_the_app_refusals_leave_state_untouched_and_receipts_say_why() -> None:
    chain = Chain()
    r = chain.block([signed(A, "ft.issue", {"symbol": "PTS", "name": "积分", "cap": 1_000, "initial": 600}),
                     signed(A, "ft.transfer", {"symbol": "PTS", "to": BOB, "amount": 100}),
                     signed(B, "ft.approve", {"symbol": "PTS", "spender": CAROL, "amount": 70})])
    assert [x.code for x in r] == [OK, OK, OK]
    assert r[0].result["supply"] == 600 and r[1].result is None
    assert [e.type for e in r[0].events] == ["ft.Issue", "ft.Mint"]
    assert r[1].events[0].wire() == {"type": "ft.Transfer", "keys": ["PTS", ALICE, BOB],
                                     "data": {"amount": 100, "from": ALICE, "symbol": "PTS", "to": BOB}}
    assert ft.balance(chain.app.read, "PTS", BOB) == 100
    assert {"ft.issue", "ft.freeze", "ft.unfreeze", "ft.set_issuer"} <= chain.app.admin_types
    root = chain.app.root()
    bad = [
        signed(A, "ft.transfer", {"symbol": "PTS", "to": BOB, "amount": 2**127}),
        signed(A, "ft.transfer", {"symbol": "PTS", "to": BOB, "amount": 501}),
        signed(B, "ft.transfer", {"symbol": "PTS", "to": CAROL, "amount": "5"}),
        signed(C, "ft.transfer_from", {"symbol": "PTS", "from": BOB, "to": DAVE, "amount": 71}),
        signed(B, "ft.mint", {"symbol": "PTS", "amount": 1}),
        signed(A, "ft.mint", {"symbol": "PTS", "amount": 401}),
        signed(D, "ft.issue", {"symbol": "PTS", "name": "dup", "cap": 5}),
        signed(D, "ft.burn", {"symbol": "PTS", "amount": 1}),
        signed(A, "ft.freeze", {"symbol": "PTS", "account": "not-an-account"}),
    ]
    r = chain.block(bad)
    assert [x.code for x in r] == [BAD_PAYLOAD] * len(bad)
    assert all(not x.events for x in r)
    assert [x.info for x in r] == [
        "amount overflows: amounts must be below 2**127",
        f"insufficient balance: {ALICE} holds 500 PTS, needs 501",
        "amount must be an integer, not a string",
        f"insufficient allowance: {CAROL} may spend 70 PTS of {BOB}, needs 71",
        f"only the issuer of PTS ({ALICE}) may mint",
        "minting 401 would take the supply of PTS to 1001, above its cap 1000",
        "token PTS already exists",
        f"insufficient balance: {DAVE} holds 0 PTS, needs 1",
        "account is not an account: expected 40 lowercase hex digits or 'contract:<name>', got 'not-an-account'",
    ]
    assert chain.app.root() == root, "refused transactions changed no state"
    # a refusal between accepted transactions of one block drops only its own writes
    r = chain.block([signed(B, "ft.transfer", {"symbol": "PTS", "to": CAROL, "amount": 30}),
                     signed(B, "ft.transfer", {"symbol": "PTS", "to": CAROL, "amount": 71}),
                     signed(C, "ft.transfer_from", {"symbol": "PTS", "from": BOB, "to": DAVE, "amount": 70})])
    assert [x.code for x in r] == [OK, BAD_PAYLOAD, OK]
    assert r[1].info == f"insufficient balance: {BOB} holds 70 PTS, needs 71"
    read = chain.app.read
    assert [ft.balance(read, "PTS", a) for a in (ALICE, BOB, CAROL, DAVE)] == [500, 0, 30, 70]
    assert ft.total_supply(read, "PTS") == 600


def test_parallel_execution_needs_no_unpredicted_key() -> None:
    """Every job shipped to a worker process, which can read only predicted keys: none falls
    back to block order and the result equals serial execution."""
    setup = [signed(A, "ft.issue", {"symbol": "PTS", "name": "p", "cap": 10**12, "initial": 10**9}),
             signed(A, "ft.issue", {"symbol": "RS", "name": "r", "cap": 10**6})]
    work = [signed(A, "ft.transfer", {"symbol": "PTS", "to": acct, "amount": 1_000 + i})
            for i, acct in enumerate([BOB, CAROL, DAVE, SHOP] * 3)]
    work += [signed(B, "ft.approve", {"symbol": "PTS", "spender": CAROL, "amount": 500}),
             signed(C, "ft.transfer_from", {"symbol": "PTS", "from": BOB, "to": DAVE, "amount": 400}),
             signed(D, "ft.burn", {"symbol": "PTS", "amount": 5}),
             signed(B, "ft.burn_from", {"symbol": "PTS", "from": BOB, "amount": 5}),
             signed(A, "ft.mint", {"symbol": "RS", "amount": 9, "to": BOB}),
             signed(A, "ft.freeze", {"symbol": "RS", "account": CAROL}),
             signed(C, "ft.transfer", {"symbol": "PTS", "to": CAROL, "amount": 1}),  # refused: self
             signed(A, "ft.set_issuer", {"symbol": "RS", "issuer": BOB})]
    serial = Chain()
    serial.block(setup)
    expected = serial.block(work)
    with ParallelExecutor(token_types, workers=1, use_main=False, min_ship_s=0.0) as executor:
        par = Chain(executor)
        par.block(setup)
        got = par.block(work)
        stats = executor.last
    assert stats.shipped == len(work) and stats.serial == 0
    assert par.app.last_stats["reused"] == len(work)
    assert [r.wire() for r in got] == [r.wire() for r in expected]
    assert par.app.root() == serial.app.root()
