"""Governance transactions on the ledger application: parameters, admission, exit,
evidence and missed leader turns; every refusal leaves the state untouched."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest

from api.sdk import registration
from ledger.codec import canonical
from ledger.consensus.types import (
    Block,
    QuorumCertificate,
    Validator,
    ValidatorSet,
    proposal_bytes,
    vote_bytes,
)
from ledger.crypto import SM2PrivateKey
from ledger.crypto.ca import ConsortiumCA
from ledger.governance import ChainParams, Governance
from ledger.node.abci import BAD_PAYLOAD, OK
from ledger.node.app import LedgerApp
from ledger.state.store import MemoryStore
from ledger.tx import Transaction

CHAIN = "gov-chain"
ROLES = {"s1": "supervisor", "s2": "supervisor", "s3": "supervisor", "c1": "consensus", "c2": "consensus"}


class World:
    """Five validators (three supervisors), a CA, and an app that executes block by block."""

    def __init__(self, tmp: Path, params: ChainParams | None = None, handlers: Any = None) -> None:
        self.ca = ConsortiumCA.init(tmp / "ca", "Gov Test")
        self.keys = {i: SM2PrivateKey.generate() for i in ROLES}
        self.vset = ValidatorSet(tuple(Validator(i, k.public_key().point, "org", ROLES[i])
                                       for i, k in self.keys.items()))
        self.gov = Governance(CHAIN, self.vset, params or ChainParams(exit_delay=5, missed_turns_limit=3),
                              self.ca.root.to_pem())
        self.app = LedgerApp(MemoryStore(), handlers, governance=self.gov)
        self.height = 0
        self.view = 0
        self.time_ms = int(time.time() * 1000)  # block time: certificates are checked at it

    def tx(self, who: str | SM2PrivateKey, type_: str, payload: dict[str, Any]) -> Transaction:
        key = self.keys[who] if isinstance(who, str) else who
        return Transaction.build(key, chain=CHAIN, type=type_, payload=payload, expiry=10**6)

    def run(self, *txs: Transaction, skip_views: int = 0) -> list[tuple[int, str]]:
        self.height += 1
        justify_view = self.view
        self.view += 1 + skip_views
        vset = self.gov.vset_in(self.gov.schedule(self.app.read), self.height)
        header = {"chain": CHAIN, "height": self.height, "view": self.view, "parent": "00" * 32,
                  "justify": {"view": justify_view}, "proposer": vset.leader(self.view), "txs": "",
                  "count": len(txs), "exec": {}, "validators": vset.digest().hex(), "time": self.time_ms}
        block = Block.make(header, [t.id for t in txs])
        res = self.app.execute_block(block, list(txs))
        receipts = res.receipts
        self.app.commit(block, QuorumCertificate(CHAIN, self.height, self.view, block.hash, ()), list(txs), res)
        return [(r.code, r.info) for r in receipts]

    def register(self, name: str, org: str = "org", role: str = "user") -> SM2PrivateKey:
        """A new key under ``name``, bound to a user certificate of ``org`` on this chain (the
        chain is permissioned: an unbound key's transactions are refused)."""
        key = self.keys[name] = SM2PrivateKey.generate()
        tx = registration(self.ca, key, chain=CHAIN, org=org, role=role, expiry=10**6, name=name)
        assert self.run(tx) == [(OK, "ok")]
        return key

    def vset_at(self, height: int) -> ValidatorSet:
        return self.gov.vset_in(self.gov.schedule(self.app.read), height)

    def params(self) -> ChainParams:
        return self.gov.params(self.app.read)


@pytest.fixture
def w(tmp_path: Path) -> World:
    return World(tmp_path)


def test_parameter_change_needs_a_majority_of_supervisors(w: World) -> None:
    prop = w.tx("s1", "gov.propose", {"action": {"kind": "params", "set": {"block_interval_ms": 500}}})
    assert w.run(prop) == [(OK, "ok")]
    assert w.params().block_interval_ms == 200  # one of three approvals is not enough
    assert w.run(w.tx("s1", "gov.vote", {"proposal": prop.id.hex()}))[0] == (
        BAD_PAYLOAD, f"s1 already voted on proposal {prop.id.hex()}")
    assert w.run(w.tx("c1", "gov.vote", {"proposal": prop.id.hex()}))[0] == (BAD_PAYLOAD, "only a supervisor may do this")
    assert w.run(w.tx("s2", "gov.vote", {"proposal": prop.id.hex()})) == [(OK, "ok")]
    assert w.params().block_interval_ms == 500
    code, info = w.run(w.tx("s3", "gov.vote", {"proposal": prop.id.hex()}))[0]
    assert code == BAD_PAYLOAD and "is executed" in info


@pytest.mark.parametrize(("action", "reason"), [
    ({"kind": "params", "set": {"block_interval_ms": -1}}, "block_interval_ms must be an integer"),
    ({"kind": "params", "set": {"block_interval_ms": 1.5}}, None),  # floats never reach a handler
    ({"kind": "params", "set": {"colour": 3}}, "unknown parameter 'colour'"),
    ({"kind": "params", "set": {}}, "non-empty object"),
    ({"kind": "remove", "node": "nobody", "reason": "x"}, "'nobody' is not a validator"),
    ({"kind": "admit", "node": "n9"}, "no open join request"),
    ({"kind": "launch"}, "unknown action kind"),
])
def test_bad_proposals_are_refused_and_change_nothing(w: World, action: dict[str, Any], reason: str | None) -> None:
    root = w.app.root()
    if reason is None:
        with pytest.raises(Exception, match="float"):
            w.tx("s1", "gov.propose", {"action": action})
        return
    code, info = w.run(w.tx("s1", "gov.propose", {"action": action}))[0]
    assert code == BAD_PAYLOAD and reason in info
    assert w.app.root() == root


def test_an_expired_proposal_cannot_be_voted(w: World) -> None:
    prop = w.tx("s1", "gov.propose", {"action": {"kind": "params", "set": {"max_block_txs": 10}}, "ttl": 1})
    w.run(prop)
    w.run()
    code, info = w.run(w.tx("s2", "gov.vote", {"proposal": prop.id.hex()}))[0]
    assert code == BAD_PAYLOAD and "expired" in info
    assert w.params().max_block_txs == 2000


def _admit(w: World, node: str, key: SM2PrivateKey, from_height: int | None = None,
           cert_key: SM2PrivateKey | None = None) -> list[tuple[int, str]]:
    assert w.run(w.tx(key, "node.join", {"id": node, "org": "New Org", "role": "consensus",
                                         "address": ["127.0.0.1", 29999]})) == [(OK, "ok")]
    prop = w.tx("s1", "gov.propose", {"action": {"kind": "admit", "node": node}})
    assert w.run(prop, w.tx("s2", "gov.vote", {"proposal": prop.id.hex()})) == [(OK, "ok"), (OK, "ok")]
    cert = w.ca.issue(kind="node", name=node, org="New Org", role="consensus",
                      public_key=(cert_key or key).public_key())
    return w.run(w.tx("s3", "node.certify", {"node": node, "certificate": cert.to_pem().decode(),
                                             "from_height": from_height or w.height + 1 + 5}))


def test_join_approve_certify_makes_a_validator_from_the_stated_height(w: World) -> None:
    key = SM2PrivateKey.generate()
    assert _admit(w, "n6", key, from_height=20) == [(OK, "ok")]
    assert "n6" not in w.vset_at(19)
    assert "n6" in w.vset_at(20) and w.vset_at(20).n == 6 and w.vset_at(1).n == 5
    member = w.gov.member(w.app.read, "n6")
    assert member is not None and member["status"] == "validator" and member["from_height"] == 20


def test_certify_refuses_a_certificate_for_another_key_or_too_early(w: World) -> None:
    key = SM2PrivateKey.generate()
    code, info = _admit(w, "n6", key, cert_key=SM2PrivateKey.generate())[0]
    assert code == BAD_PAYLOAD and "differs from the join request" in info
    cert = w.ca.issue(kind="node", name="n6", org="New Org", role="consensus", public_key=key.public_key())
    code, info = w.run(w.tx("s1", "node.certify", {"node": "n6", "certificate": cert.to_pem().decode(),
                                                   "from_height": w.height + 2}))[0]
    assert code == BAD_PAYLOAD and "from_height must be" in info
    foreign = ConsortiumCA.init(w.ca.folder.parent / "other", "Other")
    fcert = foreign.issue(kind="node", name="n6", org="New Org", role="consensus", public_key=key.public_key())
    code, info = w.run(w.tx("s1", "node.certify", {"node": "n6", "certificate": fcert.to_pem().decode(),
                                                   "from_height": w.height + 10}))[0]
    assert code == BAD_PAYLOAD and "certificate refused" in info
    assert "n6" not in w.vset_at(w.height + 100)


def test_join_refuses_a_taken_id_and_bad_fields(w: World) -> None:
    key = SM2PrivateKey.generate()
    for payload, reason in [
        ({"id": "c1", "org": "o", "role": "consensus", "address": ["h", 1]}, "is taken"),
        ({"id": "Bad Id", "org": "o", "role": "consensus", "address": ["h", 1]}, "node ids are"),
        ({"id": "n7", "org": "o", "role": "king", "address": ["h", 1]}, "role is 'consensus' or 'full'"),
        ({"id": "n7", "org": "o", "role": "consensus", "address": ["h", 70000]}, "address is [host, port]"),
    ]:
        code, info = w.run(w.tx(key, "node.join", payload))[0]
        assert code == BAD_PAYLOAD and reason in info, (payload, info)


def test_active_exit_by_the_validator_itself_revokes_it_after_the_delay(w: World) -> None:
    code, info = w.run(w.tx("s1", "node.exit", {"node": "c2"}))[0]
    assert code == BAD_PAYLOAD and "only the validator itself" in info
    assert w.run(w.tx("c2", "node.exit", {"node": "c2"})) == [(OK, "ok")]
    h = w.height
    assert "c2" in w.vset_at(h + 4) and "c2" not in w.vset_at(h + 5)
    rec = w.gov.revoked(w.app.read, "c2")
    assert rec is not None and rec["reason"] == "active exit" and rec["effective"] == h + 5
    # four validators is the floor: the next exit is refused
    code, info = w.run(w.tx("c1", "node.exit", {"node": "c1"}))[0]
    assert code == BAD_PAYLOAD and "minimum is 4" in info


def _proposal(w: World, who: str, view: int, height: int, salt: str) -> dict[str, Any]:
    header = {"chain": CHAIN, "height": height, "view": view, "proposer": who, "salt": salt}
    from ledger.crypto import sm3

    block_hash = sm3(canonical(header))
    return {"header": header, "sig": w.keys[who].sign(proposal_bytes(CHAIN, block_hash)).hex()}


def test_evidence_of_a_double_proposal_evicts_the_leader_once(w: World) -> None:
    a, b = _proposal(w, "c1", 7, 7, "a"), _proposal(w, "c1", 7, 7, "b")
    same = w.run(w.tx("s2", "node.evidence", {"kind": "double-proposal", "a": a, "b": a}))[0]
    assert same[0] == BAD_PAYLOAD and "same block" in same[1]
    forged = dict(b, sig=w.keys["c2"].sign(b"x").hex())
    bad = w.run(w.tx("s2", "node.evidence", {"kind": "double-proposal", "a": a, "b": forged}))[0]
    assert bad[0] == BAD_PAYLOAD and "does not verify" in bad[1]
    assert "c1" in w.vset_at(w.height + 100)
    anyone = SM2PrivateKey.generate()  # evidence needs no privilege
    assert w.run(w.tx(anyone, "node.evidence", {"kind": "double-proposal", "a": a, "b": b})) == [(OK, "ok")]
    assert "c1" not in w.vset_at(w.height + 5)
    again = w.run(w.tx(anyone, "node.evidence", {"kind": "double-proposal", "a": b, "b": a}))[0]
    assert again[0] == BAD_PAYLOAD and "already punished" in again[1]


def test_evidence_of_a_double_vote(w: World) -> None:
    def vote(block: bytes) -> dict[str, Any]:
        return {"block": block.hex(), "by": "s3", "height": 4, "view": 4,
                "sig": w.keys["s3"].sign(vote_bytes(CHAIN, 4, 4, block)).hex()}

    ok = w.run(w.tx("c1", "node.evidence", {"kind": "double-vote", "a": vote(b"\x01" * 32), "b": vote(b"\x02" * 32)}))
    assert ok == [(OK, "ok")]
    rec = w.gov.revoked(w.app.read, "s3")
    assert rec is not None and "double-vote in view 4" in rec["reason"]


def test_missed_leader_turns_evict_after_the_limit(w: World) -> None:
    """A validator whose turns as leader pass without its block (views skipped between a
    block's QC and the block) leaves after missed_turns_limit (3 here) turns in a row."""
    dead = "c2"
    turns = 0
    while turns < 3:
        nxt = w.vset_at(w.height + 1).leader(w.view + 1)
        if nxt == dead:
            w.run(skip_views=1)  # its view timed out; the next leader's block carries the QC
            turns += 1
        else:
            w.run()
        if turns < 3:
            assert dead in w.vset_at(w.height + 100)
    missed_before_eviction = w.app.read(b"sys/missed")
    assert dead not in w.vset_at(w.height + 5) and dead in w.vset_at(w.height + 4)
    rec = w.gov.revoked(w.app.read, dead)
    assert rec is not None and "missed 3 leader turns" in rec["reason"]
    assert missed_before_eviction is None or b'"c2"' not in missed_before_eviction


def test_a_block_from_the_validator_resets_its_count(w: World) -> None:
    dead, its_turns = "c2", 0
    for _ in range(60):  # c2 misses every other turn of its own: never 3 in a row
        skip = 0
        if w.vset_at(w.height + 1).leader(w.view + 1) == dead:
            its_turns += 1
            skip = its_turns % 2
        w.run(skip_views=skip)
    assert its_turns >= 8
    assert dead in w.vset_at(w.height + 100)


def test_governance_state_is_deterministic(tmp_path: Path) -> None:
    """Two apps fed the same blocks reach the same root (what every node relies on)."""
    w1 = World(tmp_path / "a")
    w2 = World.__new__(World)
    w2.__dict__.update(w1.__dict__)
    w2.gov = Governance(CHAIN, w1.vset, ChainParams(exit_delay=5, missed_turns_limit=3), w1.ca.root.to_pem())
    w2.app = LedgerApp(MemoryStore(), governance=w2.gov)
    txs = [w1.tx("c2", "node.exit", {"node": "c2"}),
           w1.tx("s1", "gov.propose", {"action": {"kind": "params", "set": {"max_block_txs": 99}}})]
    for world in (w1, w2):
        world.height = world.view = 0
        world.run(*txs)
        world.run(skip_views=2)
    assert w1.app.root() == w2.app.root()


def test_two_spellings_of_one_vote_are_not_a_double_vote(w: World) -> None:
    """bytes.fromhex would read "ab cd" as "abcd": strict hex keeps one spelling per hash, so an
    honest vote and a re-spelled copy of it cannot evict the voter."""
    block = b"\xab" * 32
    honest = {"block": block.hex(), "by": "c1", "height": 3, "view": 3,
              "sig": w.keys["c1"].sign(vote_bytes(CHAIN, 3, 3, block)).hex()}
    for spelling in (" ".join(block.hex()[i:i + 2] for i in range(0, 64, 2)), block.hex().upper()):
        code, info = w.run(w.tx("s1", "node.evidence", {"kind": "double-vote", "a": honest,
                                                        "b": dict(honest, block=spelling)}))[0]
        assert code == BAD_PAYLOAD and "lowercase hex" in info, info
    assert "c1" in w.vset_at(w.height + 100) and w.gov.revoked(w.app.read, "c1") is None


def test_a_former_supervisors_approval_no_longer_counts(w: World) -> None:
    prop = w.tx("s1", "gov.propose", {"action": {"kind": "params", "set": {"max_block_txs": 5}}})
    assert w.run(prop) == [(OK, "ok")]
    assert w.run(w.tx("s1", "node.exit", {"node": "s1"})) == [(OK, "ok")]
    for _ in range(6):  # past exit_delay: s1 is out of the set
        w.run()
    assert "s1" not in w.vset_at(w.height)
    # s2 alone: with two supervisors left a majority is 2, and s1's approval is void
    assert w.run(w.tx("s2", "gov.vote", {"proposal": prop.id.hex()})) == [(OK, "ok")]
    assert w.params().max_block_txs == 2000
    assert w.run(w.tx("s3", "gov.vote", {"proposal": prop.id.hex()})) == [(OK, "ok")]
    assert w.params().max_block_txs == 5
