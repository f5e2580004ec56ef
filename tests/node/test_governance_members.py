"""Governance of members: organisations, users bound to certificates, voting policies with
approvals and rejections, per-type permissions, and the audit log of every administrative
operation. Every refusal leaves the state untouched."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from ledger.contracts.context import account_of
from ledger.crypto import SM2PrivateKey
from ledger.governance import ChainParams, Governance
from ledger.node.abci import BAD_PAYLOAD, OK
from ledger.node.app import LedgerApp
from ledger.state.store import MemoryStore

from .test_governance import World


@pytest.fixture
def w(tmp_path: Path) -> World:
    return World(tmp_path)


def passed(w: World, action: dict[str, Any], voters: tuple[str, ...] = ("s1", "s2")) -> str:
    """Propose ``action`` and vote it through with the supervisors ``voters``."""
    prop = w.tx(voters[0], "gov.propose", {"action": action})
    assert w.run(prop) == [(OK, "ok")], action
    for v in voters[1:]:
        assert w.run(w.tx(v, "gov.vote", {"proposal": prop.id.hex()})) == [(OK, "ok")]
    rec = w.gov.read_proposal(w.app.read, prop.id.hex())
    assert rec["status"] == "executed", rec
    return prop.id.hex()


def user(w: World, name: str, org: str, role: str = "user") -> tuple[SM2PrivateKey, str]:
    key = SM2PrivateKey.generate()
    cert = w.ca.issue(kind="user", name=name, org=org, role=role, public_key=key.public_key())
    w.keys[name] = key
    return key, cert.to_pem().decode()


def test_rejections_close_a_proposal_that_can_no_longer_pass(w: World) -> None:
    prop = w.tx("s1", "gov.propose", {"action": {"kind": "params", "set": {"block_interval_ms": 300}}})
    w.run(prop)
    pid = prop.id.hex()
    assert w.run(w.tx("s2", "gov.vote", {"proposal": pid, "approve": False})) == [(OK, "ok")]
    assert w.gov.read_proposal(w.app.read, pid)["status"] == "open"  # 1 yes, 1 no, 1 to go
    assert w.run(w.tx("s3", "gov.vote", {"proposal": pid, "approve": False})) == [(OK, "ok")]
    assert w.gov.read_proposal(w.app.read, pid)["status"] == "rejected"
    assert w.params().block_interval_ms == 200
    root = w.app.root()
    code, info = w.run(w.tx("s2", "gov.vote", {"proposal": pid}))[0]
    assert code == BAD_PAYLOAD and "is rejected" in info
    code, info = w.run(w.tx("s1", "gov.vote", {"proposal": pid, "approve": "yes"}))[0]
    assert code == BAD_PAYLOAD and "approve" in info
    assert w.app.root() == root


def test_expired_proposals_and_votes_by_non_members_are_refused(w: World) -> None:
    prop = w.tx("s1", "gov.propose", {"action": {"kind": "params", "set": {"block_interval_ms": 300}}, "ttl": 1})
    w.run(prop)
    w.run()
    member = w.register("member")  # a registered user who is not a supervisor
    root = w.app.root()
    code, info = w.run(w.tx("s2", "gov.vote", {"proposal": prop.id.hex()}))[0]
    assert code == BAD_PAYLOAD and "expired" in info
    outsider = SM2PrivateKey.generate()  # no certificate: not admitted at all (a permissioned chain)
    code, info = w.run(w.tx(outsider, "gov.vote", {"proposal": prop.id.hex()}))[0]
    assert code == BAD_PAYLOAD and "not admitted" in info
    code, info = w.run(w.tx(outsider, "gov.propose", {"action": {"kind": "org.add", "org": "X", "roles": ["media"]}}))[0]
    assert code == BAD_PAYLOAD and "not admitted" in info
    code, info = w.run(w.tx(member, "gov.vote", {"proposal": prop.id.hex()}))[0]
    assert code == BAD_PAYLOAD and "only a supervisor" in info
    assert w.app.root() == root


def test_organisations_users_and_an_organisation_majority_policy(w: World) -> None:
    # validators' organisation is a member from genesis; a media centre joins by vote
    assert set(w.gov.orgs(w.app.read)) == {"org"}
    passed(w, {"kind": "org.add", "org": "County Media", "roles": ["media"]})
    passed(w, {"kind": "org.add", "org": "Legal Centre", "roles": ["legal", "consensus"]})
    assert set(w.gov.orgs(w.app.read)) == {"org", "County Media", "Legal Centre"}
    # users bound to certificates of member organisations
    _, pem = user(w, "alice", "County Media", "admin")
    assert w.run(w.tx("alice", "user.register", {"certificate": pem})) == [(OK, "ok")]
    rec = w.gov.user(w.app.read, account_of(w.keys["alice"].public_key().point))
    assert rec is not None and rec["org"] == "County Media" and rec["role"] == "admin" and rec["status"] == "active"
    _, bob_pem = user(w, "bob", "Legal Centre", "admin")
    assert w.run(w.tx("bob", "user.register", {"certificate": bob_pem})) == [(OK, "ok")]
    root = w.app.root()
    _, eve_pem = user(w, "eve", "Not A Member")
    bad = [
        (w.tx("eve", "user.register", {"certificate": eve_pem}), "not a member organisation"),
        (w.tx("alice", "user.register", {"certificate": pem}), "already registered"),
        (w.tx("s1", "user.register", {"certificate": pem}), "not for the key"),
        (w.tx("eve", "user.register", {"certificate": "junk"}), "certificate refused"),
        (w.tx("eve", "user.register", {"certificate": pem, "x": 1}), "payload is"),
    ]
    for tx, why in bad:
        code, info = w.run(tx)[0]
        assert code == BAD_PAYLOAD and why in info, (why, info)
    assert w.app.root() == root
    # policy: admissions of organisations now need a majority of organisations with role "consensus"
    passed(w, {"kind": "policy", "set": {"org.add": {"rule": "orgs", "role": "consensus", "need": "majority"}}})
    assert w.gov.policy(w.app.read, "org.add")["rule"] == "orgs"
    prop = w.tx("alice", "gov.propose", {"action": {"kind": "org.add", "org": "Court", "roles": ["court"]}})
    code, info = w.run(prop)[0]
    assert code == BAD_PAYLOAD and "organisation counted by the policy" in info  # media is not consensus
    prop = w.tx("bob", "gov.propose", {"action": {"kind": "org.add", "org": "Court", "roles": ["court"]}})
    assert w.run(prop) == [(OK, "ok")]
    pid = prop.id.hex()
    rec = w.gov.read_proposal(w.app.read, pid)
    assert rec["approvals"] == ["Legal Centre"] and rec["status"] == "open"  # 1 of 2 organisations
    code, info = w.run(w.tx("c1", "gov.vote", {"proposal": pid}))[0]  # a validator votes for "org"
    assert code == OK, info
    assert w.gov.read_proposal(w.app.read, pid)["status"] == "executed"
    assert "Court" in w.gov.orgs(w.app.read)
    # a second validator of the same organisation cannot vote twice for it
    prop2 = w.tx("s1", "gov.propose", {"action": {"kind": "org.add", "org": "Court2", "roles": ["court"]}})
    w.run(prop2)
    code, info = w.run(w.tx("s2", "gov.vote", {"proposal": prop2.id.hex()}))[0]
    assert code == BAD_PAYLOAD and "org already voted" in info


def test_user_revocation_by_self_admin_or_governance_only(w: World) -> None:
    passed(w, {"kind": "org.add", "org": "Media", "roles": ["media"]})
    for name, role in (("adm", "admin"), ("u1", "user"), ("u2", "user")):
        _, pem = user(w, name, "Media", role)
        assert w.run(w.tx(name, "user.register", {"certificate": pem})) == [(OK, "ok")]
    acct = {n: account_of(w.keys[n].public_key().point) for n in ("adm", "u1", "u2")}
    code, info = w.run(w.tx("u1", "user.revoke", {"account": acct["u2"], "reason": "x"}))[0]
    assert code == BAD_PAYLOAD and "only the user or an admin" in info
    assert w.run(w.tx("adm", "user.revoke", {"account": acct["u2"], "reason": "left"})) == [(OK, "ok")]
    assert w.gov.user(w.app.read, acct["u2"])["status"] == "revoked"  # type: ignore[index]
    passed(w, {"kind": "user.revoke", "account": acct["u1"], "reason": "court order"})
    assert w.gov.user(w.app.read, acct["u1"])["status"] == "revoked"  # type: ignore[index]
    code, info = w.run(w.tx("u1", "user.revoke", {"account": acct["u1"], "reason": "again"}))[0]
    assert code == BAD_PAYLOAD and "certificate of user" in info and "was revoked" in info  # not admitted now
    code, info = w.run(w.tx("adm", "user.revoke", {"account": acct["u1"], "reason": "again"}))[0]
    assert code == BAD_PAYLOAD and "no active user" in info


def test_permissions_per_transaction_type(tmp_path: Path) -> None:
    # the subject is per-type rules, so strangers are admitted to the chain (open_admission)
    w = World(tmp_path, ChainParams(exit_delay=5, missed_turns_limit=3, open_admission=1))
    passed(w, {"kind": "org.add", "org": "Media", "roles": ["media"]})
    _, pem = user(w, "ed", "Media", "user")
    assert w.run(w.tx("ed", "user.register", {"certificate": pem})) == [(OK, "ok")]
    stranger = SM2PrivateKey.generate()
    assert w.run(w.tx(stranger, "kv.set", {"key": "a", "value": "1"})) == [(OK, "ok")]  # open by default
    passed(w, {"kind": "perms", "set": {"kv.*": {"roles": ["user", "admin"], "validators": True}}})
    root = w.app.root()
    code, info = w.run(w.tx(stranger, "kv.set", {"key": "a", "value": "2"}))[0]
    assert code == BAD_PAYLOAD and "permission denied" in info
    assert w.app.root() == root
    assert w.run(w.tx("ed", "kv.set", {"key": "a", "value": "3"})) == [(OK, "ok")]
    assert w.run(w.tx("c1", "kv.set", {"key": "a", "value": "4"})) == [(OK, "ok")]
    # a rule change takes effect for the next transaction of the same block
    prop = w.tx("s1", "gov.propose", {"action": {"kind": "perms", "set": {"kv.*": None}}})
    w.run(prop)
    res = w.run(w.tx("s2", "gov.vote", {"proposal": prop.id.hex()}), w.tx(stranger, "kv.set", {"key": "a", "value": "5"}))
    assert res == [(OK, "ok"), (OK, "ok")]
    code, info = w.run(w.tx("s1", "gov.propose", {"action": {"kind": "perms", "set": {"gov.vote": None}}}))[0]
    assert code == BAD_PAYLOAD and "cannot be restricted" in info
    code, info = w.run(w.tx("s1", "gov.propose", {"action": {"kind": "perms", "set": {"kv.set": {"roles": ["god"]}}}}))[0]
    assert code == BAD_PAYLOAD and "roles are" in info


def test_audit_log_records_administrative_operations_with_who_what_when(w: World) -> None:
    t0 = w.time_ms
    pid = passed(w, {"kind": "org.add", "org": "Media", "roles": ["media"]})
    w.time_ms += 60_000
    _, pem = user(w, "ann", "Media", "admin")
    w.run(w.tx("ann", "user.register", {"certificate": pem}))
    w.run(w.tx("ann", "kv.set", {"key": "x", "value": "y"}))  # not administrative
    bad = w.tx("ann", "gov.vote", {"proposal": "00" * 32})
    w.run(bad)
    recs = w.app.chain.audit()
    assert [r["type"] for r in recs] == ["gov.propose", "gov.vote", "user.register", "gov.vote"]
    assert recs[0]["tx"] == pid and recs[0]["actor"] == account_of(w.keys["s1"].public_key().point)
    assert recs[0]["payload"]["action"]["org"] == "Media" and recs[0]["code"] == OK
    assert recs[-1]["code"] == BAD_PAYLOAD and "no proposal" in recs[-1]["info"], "refused attempts are audited"
    ann = account_of(w.keys["ann"].public_key().point)
    assert [r["type"] for r in w.app.chain.audit(actor=ann)] == ["user.register", "gov.vote"]
    assert [r["type"] for r in w.app.chain.audit(type_="gov.*")] == ["gov.propose", "gov.vote", "gov.vote"]
    assert [r["type"] for r in w.app.chain.audit(since_ms=t0 + 1)] == ["user.register", "gov.vote"]
    assert [r["type"] for r in w.app.chain.audit(until_ms=t0)] == ["gov.propose", "gov.vote"]
    assert len(w.app.chain.audit(limit=1)) == 1


def test_one_user_on_two_chains(tmp_path: Path) -> None:
    """L10: the certificate the consortium CA issued works on every chain of the consortium;
    each chain keeps its own record of the user."""
    w = World(tmp_path)
    key, pem = user(w, "multi", "org", "user")
    other = Governance("second-chain", w.vset, ChainParams(exit_delay=5), w.ca.root.to_pem())
    app2 = LedgerApp(MemoryStore(), governance=other)
    assert w.run(w.tx("multi", "user.register", {"certificate": pem})) == [(OK, "ok")]
    from ledger.tx import Transaction

    tx2 = Transaction.build(key, chain="second-chain", type="user.register", payload={"certificate": pem},
                            expiry=10**6)
    from ledger.consensus.types import Block

    header = {"chain": "second-chain", "height": 1, "view": 1, "parent": "00" * 32, "justify": {"view": 0},
              "proposer": w.vset.leader(1), "txs": "", "count": 1, "exec": {}, "validators": w.vset.digest().hex(),
              "time": w.time_ms}
    receipts = app2.execute_block(Block.make(header, [tx2.id]), [tx2]).receipts
    assert receipts[0].code == OK, receipts[0].info
    acct = account_of(key.public_key().point)
    assert w.gov.user(w.app.read, acct) is not None
    assert tx2.id != w.tx("multi", "user.register", {"certificate": pem}).id  # chain is in the signed body
