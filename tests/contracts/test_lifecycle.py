"""The user-contract lifecycle through signed transactions on the ledger application:
upload → review (a governance proposal under its voting policy) → install → init → call →
permit → upgrade (state kept, version recorded) → freeze / unfreeze → destroy. Every step is
in the contract's history and the audit log; every refusal states why and changes nothing."""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any

import pytest

from ledger.codec import parse
from ledger.contracts.context import account_of
from ledger.contracts.lifecycle import contract_history, contract_info, k_state
from ledger.contracts.wasm import compile_wat, example
from ledger.governance import ChainParams
from ledger.node.abci import BAD_PAYLOAD, OK
from ledger.node.app import standard_types
from tests.node.test_governance import World

EXAMPLES = Path(__file__).resolve().parents[2] / "ledger" / "contracts" / "examples"


def token_v2() -> bytes:
    """The example token with one more method, ``version`` -> 2 (an upgrade)."""
    text = (EXAMPLES / "token.wat").read_text()
    extra = ('  (func (export "version") (param i32 i32) (result i32)\n'
             '    (i32.store8 (i32.const 65000) (i32.const 50))\n'
             '    (call $return_data (i32.const 65000) (i32.const 1))\n'
             '    (i32.const 0))\n)\n')
    return compile_wat(text[: text.rstrip().rfind(")")] + extra)


def b64(code: bytes) -> str:
    return base64.b64encode(code).decode()


class Chain(World):
    def ok(self, who: str, type_: str, payload: dict[str, Any]) -> Any:
        tx = self.tx(who, type_, payload)
        self.last = tx
        self._receipts = self.app_run(tx)
        code, info = self._receipts[0].code, self._receipts[0].info
        assert code == OK, (type_, info)
        return self._receipts[0].result

    def refused(self, who: str, type_: str, payload: dict[str, Any], why: str) -> None:
        root = self.app.root()
        tx = self.tx(who, type_, payload)
        r = self.app_run(tx)[0]
        assert r.code == BAD_PAYLOAD and why in r.info, (why, r.info)
        assert self.app.root() == root, "a refusal changes nothing"

    def app_run(self, *txs: Any) -> Any:
        from ledger.consensus.types import Block, QuorumCertificate

        self.height += 1
        self.view += 1
        vset = self.gov.vset_in(self.gov.schedule(self.app.read), self.height)
        header = {"chain": "gov-chain", "height": self.height, "view": self.view, "parent": "00" * 32,
                  "justify": {"view": self.view - 1}, "proposer": vset.leader(self.view), "txs": "",
                  "count": len(txs), "exec": {}, "validators": vset.digest().hex(), "time": self.time_ms}
        block = Block.make(header, [t.id for t in txs])
        res = self.app.execute_block(block, list(txs))
        receipts = res.receipts
        self.app.commit(block, QuorumCertificate("gov-chain", self.height, self.view, block.hash, ()),
                        list(txs), res)
        return receipts

    def approve(self, name: str, version: int) -> str:
        prop = self.tx("s1", "gov.propose", {"action": {"kind": "contract.approve", "contract": name,
                                                        "version": version}})
        assert self.app_run(prop)[0].code == OK
        assert self.app_run(self.tx("s2", "gov.vote", {"proposal": prop.id.hex()}))[0].code == OK
        return prop.id.hex()

    def acct(self, who: str) -> str:
        return account_of(self.keys[who].public_key().point)


@pytest.fixture
def c(tmp_path: Path) -> Chain:
    chain = Chain(tmp_path, ChainParams(exit_delay=5, missed_turns_limit=1000), handlers=standard_types())
    for who in ("owner", "alice", "bob"):
        chain.register(who)  # a permissioned chain: users hold consortium certificates
    return chain


def installed(c: Chain, name: str = "points") -> None:
    c.ok("owner", "contract.upload", {"name": name, "code": b64(example("token")), "description": "points"})
    c.approve(name, 1)
    c.ok("owner", "contract.install", {"name": name, "version": 1})
    c.ok("owner", "contract.init", {"name": name, "args": {}})


def test_the_whole_lifecycle_with_history_events_and_audit(c: Chain) -> None:
    res = c.ok("owner", "contract.upload", {"name": "points", "code": b64(example("token"))})
    assert res["version"] == 1 and len(res["code_hash"]) == 64
    info = contract_info(c.app.read, "points")
    assert info is not None and info["owner"] == c.acct("owner") and info["status"] == "uploaded"
    assert info["versions"]["1"]["status"] == "review"
    # not approved yet: cannot install
    c.refused("owner", "contract.install", {"name": "points", "version": 1}, "is review, not approved")
    pid = c.approve("points", 1)
    assert contract_info(c.app.read, "points")["versions"]["1"]["status"] == "approved"  # type: ignore[index]
    c.refused("alice", "contract.install", {"name": "points", "version": 1}, "only the owner")
    c.ok("owner", "contract.install", {"name": "points", "version": 1})
    c.refused("alice", "contract.call", {"contract": "points", "method": "supply"}, "is installed")
    c.ok("owner", "contract.init", {"name": "points", "args": {}})
    c.refused("owner", "contract.init", {"name": "points"}, "only an installed, uninitialised")
    # calls
    c.ok("owner", "contract.call", {"contract": "points", "method": "mint",
                                    "args": {"to": c.acct("alice"), "amount": 100}})
    c.ok("alice", "contract.call", {"contract": "points", "method": "transfer",
                                    "args": {"to": c.acct("bob"), "amount": 30}})
    ev = c._receipts[0].events
    assert ev and ev[0].type == "points:Transfer" and c.acct("bob") in ev[0].keys
    assert c.ok("bob", "contract.call", {"contract": "points", "method": "balance",
                                         "args": {"account": c.acct("bob")}}) == 30
    c.refused("alice", "contract.call", {"contract": "points", "method": "mint",
                                         "args": {"to": c.acct("alice"), "amount": 1}}, "only the owner may mint")
    c.refused("alice", "contract.call", {"contract": "points", "method": "transfer",
                                         "args": {"to": c.acct("bob"), "amount": 10**6}}, "insufficient")
    c.refused("alice", "contract.call", {"contract": "points", "method": "init"}, "not callable")
    c.refused("alice", "contract.call", {"contract": "points", "method": "nope"}, "nope")
    c.refused("alice", "contract.call", {"contract": "nothing", "method": "balance"}, "no contract 'nothing'")
    c.refused("alice", "contract.call", {"contract": "points", "method": "balance", "args": {"account": 5}},
              "")
    # permissions per method
    c.ok("owner", "contract.permit", {"name": "points", "method": "transfer", "accounts": [c.acct("bob")]})
    c.refused("alice", "contract.call", {"contract": "points", "method": "transfer",
                                         "args": {"to": c.acct("bob"), "amount": 1}}, "may not call points.transfer")
    c.ok("bob", "contract.call", {"contract": "points", "method": "transfer",
                                  "args": {"to": c.acct("alice"), "amount": 5}})
    c.refused("alice", "contract.permit", {"name": "points", "method": "transfer", "accounts": ["*"]}, "only the owner")
    c.ok("owner", "contract.permit", {"name": "points", "method": "transfer", "accounts": ["*"]})
    # upgrade: v2 uploaded, reviewed, installed over v1 with the state kept
    c.ok("owner", "contract.upload", {"name": "points", "code": b64(token_v2())})
    c.refused("owner", "contract.upgrade", {"name": "points", "version": 2}, "is review, not approved")
    c.refused("alice", "contract.upload", {"name": "points", "code": b64(token_v2())}, "only the owner")
    c.approve("points", 2)
    c.refused("owner", "contract.upgrade", {"name": "points", "version": 1}, "not newer")
    c.ok("owner", "contract.upgrade", {"name": "points", "version": 2})
    info = contract_info(c.app.read, "points")
    assert info is not None and info["version"] == 2
    assert info["versions"]["1"]["status"] == "superseded" and info["versions"]["2"]["status"] == "installed"
    assert c.ok("bob", "contract.call", {"contract": "points", "method": "version"}) == 2
    assert c.ok("bob", "contract.call", {"contract": "points", "method": "balance",
                                         "args": {"account": c.acct("bob")}}) == 25, "state kept across upgrade"
    # freeze / unfreeze / destroy
    c.refused("alice", "contract.freeze", {"name": "points", "reason": "x"}, "only the owner")
    c.ok("owner", "contract.freeze", {"name": "points", "reason": "audit"})
    c.refused("bob", "contract.call", {"contract": "points", "method": "supply"}, "is frozen: it refuses calls")
    c.refused("owner", "contract.freeze", {"name": "points", "reason": "again"}, "only an active contract")
    c.ok("owner", "contract.unfreeze", {"name": "points", "reason": "audit done"})
    assert c.ok("bob", "contract.call", {"contract": "points", "method": "supply"}) == 100
    c.ok("owner", "contract.destroy", {"name": "points", "reason": "retired"})
    c.refused("bob", "contract.call", {"contract": "points", "method": "supply"}, "is destroyed")
    c.refused("owner", "contract.unfreeze", {"name": "points", "reason": "x"}, "is destroyed")
    c.refused("owner", "contract.upload", {"name": "points", "code": b64(example("token"))}, "is destroyed")
    # history: every step, in order, with its transaction
    steps = [h["step"] for h in contract_history(c.app.read, "points")]
    assert steps == ["upload", "review", "install", "init", "permit", "permit", "upload", "review", "upgrade",
                     "freeze", "unfreeze", "destroy"]
    hist = contract_history(c.app.read, "points")
    assert hist[1]["proposal"] == pid and hist[1]["approvals"] == ["s1", "s2"]
    assert hist[8]["previous"] == 1 and hist[8]["version"] == 2
    assert all(len(h["tx"]) == 64 and h["height"] > 0 for h in hist)
    # the audit log holds every lifecycle step (accepted or refused), never the calls
    types = [r["type"] for r in c.app.chain.audit(type_="contract.*", limit=1000)]
    assert "contract.call" not in types and types.count("contract.upgrade") == 3  # two refused, one done
    assert types.count("contract.destroy") == 1
    # events of lifecycle steps are queryable by contract name
    names = [e["event"]["type"] for e in c.app.chain.events("contract.upgrade", "points")]
    assert names == ["contract.upgrade"]


def test_governance_can_freeze_and_destroy_a_contract(c: Chain) -> None:
    installed(c)
    prop = c.tx("s1", "gov.propose", {"action": {"kind": "contract.freeze", "contract": "points",
                                                 "reason": "court order"}})
    c.app_run(prop)
    c.app_run(c.tx("s2", "gov.vote", {"proposal": prop.id.hex()}))
    assert contract_info(c.app.read, "points")["status"] == "frozen"  # type: ignore[index]
    c.refused("owner", "contract.call", {"contract": "points", "method": "supply"}, "frozen")
    hist = contract_history(c.app.read, "points")
    assert hist[-1]["step"] == "freeze" and "court order" in hist[-1]["reason"]
    r = c.app_run(c.tx("s1", "gov.propose", {"action": {"kind": "contract.destroy", "contract": "nothing",
                                                        "reason": "x"}}))[0]
    assert r.code == BAD_PAYLOAD and "no contract" in r.info


def test_bad_uploads_and_reviews_are_refused(c: Chain) -> None:
    forbidden = compile_wat((EXAMPLES / "forbidden.wat").read_text())
    c.refused("owner", "contract.upload", {"name": "x", "code": b64(forbidden)}, "")
    c.refused("owner", "contract.upload", {"name": "x", "code": "!!!"}, "base64")
    c.refused("owner", "contract.upload", {"name": "x", "code": b64(b"\0asm junk")}, "")
    c.refused("owner", "contract.upload", {"name": "Bad Name", "code": b64(example("token"))}, "contract name")
    c.refused("owner", "contract.upload", {"name": "-x", "code": b64(example("token"))}, "contract name")
    c.refused("owner", "contract.upload", {"name": "x", "code": b64(example("token")), "extra": 1}, "unexpected")
    r = c.app_run(c.tx("s1", "gov.propose", {"action": {"kind": "contract.approve", "contract": "x",
                                                        "version": 1}}))[0]
    assert r.code == BAD_PAYLOAD and "no contract" in r.info
    c.ok("owner", "contract.upload", {"name": "x", "code": b64(example("token"))})
    c.approve("x", 1)
    r = c.app_run(c.tx("s1", "gov.propose", {"action": {"kind": "contract.approve", "contract": "x",
                                                        "version": 1}}))[0]
    assert r.code == BAD_PAYLOAD and "not under review" in r.info
    # a rejected review leaves the version under review, not approved
    c.ok("owner", "contract.upload", {"name": "x", "code": b64(token_v2())})
    prop = c.tx("s1", "gov.propose", {"action": {"kind": "contract.approve", "contract": "x", "version": 2}})
    c.app_run(prop)
    c.app_run(c.tx("s2", "gov.vote", {"proposal": prop.id.hex(), "approve": False}))
    c.app_run(c.tx("s3", "gov.vote", {"proposal": prop.id.hex(), "approve": False}))
    assert contract_info(c.app.read, "x")["versions"]["2"]["status"] == "review"  # type: ignore[index]


def test_a_contract_holds_and_moves_system_tokens_as_itself(c: Chain) -> None:
    """call_system: a user contract acts as ``contract:<name>`` on the token system contract."""
    c.ok("owner", "contract.upload", {"name": "probe", "code": b64(example("probe"))})
    c.approve("probe", 1)
    c.ok("owner", "contract.install", {"name": "probe", "version": 1})
    c.ok("owner", "contract.init", {"name": "probe"})
    c.ok("owner", "ft.issue", {"symbol": "PTS", "name": "points", "cap": 1000, "initial": 1000})
    c.ok("owner", "ft.transfer", {"symbol": "PTS", "to": "contract:probe", "amount": 400})
    c.ok("alice", "contract.call", {"contract": "probe", "method": "sys", "args": {
        "type": "ft.transfer", "args": {"symbol": "PTS", "to": c.acct("bob"), "amount": 150}}})
    from ledger.contracts import ft

    assert ft.balance(c.app.read, "PTS", "contract:probe") == 250
    assert ft.balance(c.app.read, "PTS", c.acct("bob")) == 150
    c.refused("alice", "contract.call", {"contract": "probe", "method": "sys", "args": {
        "type": "ft.transfer", "args": {"symbol": "PTS", "to": c.acct("bob"), "amount": 10**6}}}, "")
    assert parse(c.app.read(k_state("probe", b"never")) or b"null") is None
