"""Permissioned by default (REQUIREMENTS L1): only a key bound to a valid, unrevoked consortium
certificate transacts; anything else is refused at the mempool (``Node.submit``) and, if a
leader puts it in a block anyway, at execution. An open chain is the chain parameter
``open_admission`` = 1, set in the genesis or by governance."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest

from api.sdk import registration
from ledger.consensus.engine import genesis_block
from ledger.contracts.context import account_of
from ledger.crypto import SM2PrivateKey
from ledger.governance import ChainParams
from ledger.node.abci import BAD_PAYLOAD, OK
from ledger.node.app import LedgerApp
from ledger.node.config import Genesis, init_local_consortium
from ledger.node.runtime import Node
from ledger.tx import Transaction

from .test_governance import CHAIN, World


@pytest.fixture
def w(tmp_path: Path) -> World:
    return World(tmp_path)


def kv(key: SM2PrivateKey, value: str = "v") -> Transaction:
    return Transaction.build(key, chain=CHAIN, type="kv.set", payload={"key": "k", "value": value}, expiry=10**6)


def node_of(w: World) -> Node:
    """A node over the world's app (not started: only its mempool admission is used)."""
    genesis = genesis_block(CHAIN, w.vset, LedgerApp(w.app.store).root())
    return Node(node_id="s1", chain=CHAIN, app=w.app, genesis=genesis, vset=w.vset, signer=None)


def test_a_strangers_transaction_is_refused_at_the_mempool_and_at_execution(w: World) -> None:
    stranger = SM2PrivateKey.generate()
    tx = kv(stranger)
    reason = node_of(w).submit([tx])[0][1]
    assert reason is not None and "not admitted" in reason and account_of(stranger.public_key().point) in reason
    assert w.gov.admission_error(w.app.read, tx) == reason
    # a Byzantine leader includes it anyway: every node refuses it in block order, changing nothing
    root = w.app.root()
    code, info = w.run(tx)[0]
    assert code == BAD_PAYLOAD and info == reason
    assert w.app.read(b"kv/k") is None and w.app.root() == root
    # other types too, including contract and token transactions
    ft = Transaction.build(stranger, chain=CHAIN, type="ft.issue", expiry=10**6,
                           payload={"symbol": "PTS", "name": "p", "cap": 10, "initial": 1})
    assert "not admitted" in (w.gov.admission_error(w.app.read, ft) or "")


def test_a_registered_user_and_a_validator_transact(w: World) -> None:
    node = node_of(w)
    user = w.register("ann")
    assert node.submit([kv(user, "1")])[0][1] is None
    assert node.submit([kv(w.keys["c1"], "2")])[0][1] is None
    assert w.run(kv(user, "3"), kv(w.keys["c1"], "4")) == [(OK, "ok"), (OK, "ok")]
    assert w.app.read(b"kv/k") == b"4"


def test_registration_is_admitted_from_an_unbound_key_only_with_a_good_certificate(w: World) -> None:
    key = SM2PrivateKey.generate()
    good = registration(w.ca, key, chain=CHAIN, org="org", expiry=10**6)
    node = node_of(w)
    assert node.submit([good])[0][1] is None
    wrong_key = Transaction.build(SM2PrivateKey.generate(), chain=CHAIN, type="user.register",
                                  payload=good.payload, expiry=10**6)
    assert "not for the key" in (node.submit([wrong_key])[0][1] or "")
    stranger_org = registration(w.ca, SM2PrivateKey.generate(), chain=CHAIN, org="Elsewhere", expiry=10**6)
    assert "not a member organisation" in (node.submit([stranger_org])[0][1] or "")
    # a registration and the user's first transaction in one block: block order decides
    assert w.run(good, kv(key)) == [(OK, "ok"), (OK, "ok")]
    # a join request needs no certificate (it is inert until the supervisors admit it); junk
    # evidence from an unbound key is refused at the door, real evidence is not (tested in
    # test_governance: anyone may prove an offence)
    join = Transaction.build(SM2PrivateKey.generate(), chain=CHAIN, type="node.join", expiry=10**6,
                             payload={"id": "n9", "org": "o", "role": "full", "address": ["h", 1]})
    assert node.submit([join])[0][1] is None
    junk = Transaction.build(SM2PrivateKey.generate(), chain=CHAIN, type="node.evidence", expiry=10**6,
                             payload={"kind": "double-vote", "a": {}, "b": {}})
    assert "evidence does not prove an offence" in (node.submit([junk])[0][1] or "")


def test_a_revoked_user_and_a_revoked_validator_are_refused(w: World) -> None:
    user = w.register("bob")
    assert w.run(w.tx("bob", "user.revoke", {"account": account_of(user.public_key().point),
                                             "reason": "left"})) == [(OK, "ok")]
    tx = kv(user)
    reason = w.gov.admission_error(w.app.read, tx)
    assert reason is not None and "was revoked" in reason
    assert w.run(tx) == [(BAD_PAYLOAD, reason)]
    # a validator that announced its exit is revoked at once, before it leaves the set
    assert w.run(w.tx("c2", "node.exit", {"node": "c2"})) == [(OK, "ok")]
    code, info = w.run(kv(w.keys["c2"]))[0]
    assert code == BAD_PAYLOAD and "node c2 was revoked" in info


def test_a_user_whose_certificate_expired_at_block_time_is_refused(w: World) -> None:
    key = w.keys["eve"] = SM2PrivateKey.generate()
    end = dt.datetime.fromtimestamp(w.time_ms / 1000 + 3600, tz=dt.UTC)
    cert = w.ca.issue(kind="user", name="eve", org="org", public_key=key.public_key(), not_after=end)
    assert w.run(w.tx("eve", "user.register", {"certificate": cert.to_pem().decode()})) == [(OK, "ok")]
    assert w.run(kv(key, "in time")) == [(OK, "ok")]
    w.time_ms += 3600 * 1000 + 1  # the next block's time is past the certificate's notAfter
    code, info = w.run(kv(key, "late"))[0]
    assert code == BAD_PAYLOAD and "expired" in info
    assert w.app.read(b"kv/k") == b"in time"
    late = int(end.timestamp() * 1000) + 1
    assert "expired" in (w.gov.admission_error(w.app.read, kv(key), time_ms=late) or "")


def test_an_open_chain_admits_strangers(tmp_path: Path) -> None:
    open_world = World(tmp_path / "open", ChainParams(exit_delay=5, missed_turns_limit=3, open_admission=1))
    stranger = SM2PrivateKey.generate()
    assert open_world.gov.admission_error(open_world.app.read, kv(stranger)) is None
    assert open_world.run(kv(stranger)) == [(OK, "ok")]
    # governance opens (and closes) a permissioned chain: a params action like any other
    w = World(tmp_path / "closed")
    prop = w.tx("s1", "gov.propose", {"action": {"kind": "params", "set": {"open_admission": 1}}})
    assert w.run(prop, w.tx("s2", "gov.vote", {"proposal": prop.id.hex()}), kv(stranger)) == [(OK, "ok")] * 3
    assert w.params().open_admission == 1
    code, info = w.run(w.tx("s1", "gov.propose", {"action": {"kind": "params", "set": {"open_admission": 2}}}))[0]
    assert code == BAD_PAYLOAD and "open_admission must be an integer in [0, 1]" in info


def test_the_genesis_sets_admission_and_the_new_chain_parameters(tmp_path: Path) -> None:
    data = init_local_consortium(tmp_path / "c", base_port=27900, governance={"open_admission": 1})
    raw = json.loads((data / "genesis.json").read_text())
    assert raw["governance"]["open_admission"] == 1 and raw["governance"]["time_precision_ms"] == 500
    params = Genesis.load(data / "genesis.json").make_governance().genesis_params
    assert (params.open_admission, params.time_precision_ms, params.message_delay_ms) == (1, 500, 2000)
    default = init_local_consortium(tmp_path / "d", base_port=27950)
    assert Genesis.load(default / "genesis.json").make_governance().genesis_params.open_admission == 0


@pytest.mark.parametrize(("name", "good", "bad"), [
    ("time_precision_ms", 1, 0), ("time_precision_ms", 60_000, 60_001),
    ("message_delay_ms", 600_000, 600_001), ("idle_interval_ms", 3_600_000, 3_600_001),
])
def test_chain_parameter_bounds(name: str, good: int, bad: int) -> None:
    p = ChainParams()
    assert (p.idle_interval_ms, p.time_precision_ms, p.message_delay_ms, p.open_admission) == (60_000, 500, 2000, 0)
    assert getattr(p.updated({name: good}), name) == good
    with pytest.raises(Exception, match=f"{name} must be an integer"):
        p.updated({name: bad})


def test_admission_follows_registrations_and_revocations_inside_one_block(w: World) -> None:
    """Execution remembers each sender's verdict within a block, but never past a write under
    sys/: the verdicts follow block order exactly."""
    key = SM2PrivateKey.generate()
    good = registration(w.ca, key, chain=CHAIN, org="org", expiry=10**6)
    before, after = kv(key, "before"), kv(key, "after")
    results = w.run(before, good, after)
    assert results[0][0] == BAD_PAYLOAD and "not admitted" in results[0][1]
    assert results[1:] == [(OK, "ok"), (OK, "ok")]
    assert w.app.read(b"kv/k") == b"after"
    carol = w.register("carol")
    revoke = w.tx("carol", "user.revoke", {"account": account_of(carol.public_key().point), "reason": "left"})
    ok, late = kv(carol, "ok"), kv(carol, "late")
    results = w.run(ok, revoke, late)
    assert results[:2] == [(OK, "ok"), (OK, "ok")]
    assert results[2][0] == BAD_PAYLOAD and "was revoked" in results[2][1]
    assert w.app.read(b"kv/k") == b"ok"


def test_verdicts_carried_across_blocks_are_looked_up_once_and_dropped_on_any_sys_write(
        w: World, monkeypatch: pytest.MonkeyPatch) -> None:
    """A sender's "yes" is remembered from block to block (node-local, ledger/node/admissions.py)
    until a block writes under sys/; the answers stay what a fresh look-up gives."""
    carol, dave = w.register("carol"), w.register("dave")
    calls: list[bytes] = []
    real = w.gov.sender_until

    def counted(read: object, tx: Transaction, time_ms: int) -> tuple[str | None, int]:
        calls.append(tx.sender)
        return real(read, tx, time_ms)  # type: ignore[arg-type]

    monkeypatch.setattr(w.gov, "sender_until", counted)
    assert w.run(kv(carol, "1"), kv(dave, "1")) == [(OK, "ok"), (OK, "ok")]
    assert len(calls) == 2
    assert w.run(kv(carol, "2"), kv(dave, "2")) == [(OK, "ok"), (OK, "ok")]
    assert len(calls) == 2  # carried from the block before: no look-up
    assert w.app.check_tx(kv(carol, "3")).ok
    assert len(calls) == 2  # the mempool (check_tx) shares the carried verdicts
    # a block that writes under sys/ (carol revoked): nothing read before it is kept
    revoke = w.tx("carol", "user.revoke", {"account": account_of(carol.public_key().point), "reason": "left"})
    assert w.run(revoke) == [(OK, "ok")]
    code, info = w.run(kv(carol, "4"), kv(dave, "4"))[0]
    assert code == BAD_PAYLOAD and "was revoked" in info
    assert "was revoked" in w.app.check_tx(kv(carol, "5")).reason
    assert w.app.read(b"kv/k") == b"4"  # dave's write, after carol's refusal
    # a "yes" lasts only until the certificate's notAfter, even while carried
    eve = w.keys["eve"] = SM2PrivateKey.generate()
    end = dt.datetime.fromtimestamp(w.time_ms / 1000 + 3600, tz=dt.UTC)
    cert = w.ca.issue(kind="user", name="eve", org="org", public_key=eve.public_key(), not_after=end)
    assert w.run(w.tx("eve", "user.register", {"certificate": cert.to_pem().decode()})) == [(OK, "ok")]
    assert w.run(kv(eve, "a")) == [(OK, "ok")]
    assert w.run(kv(eve, "b")) == [(OK, "ok")]
    w.time_ms += 3600 * 1000 + 1
    code, info = w.run(kv(eve, "c"))[0]
    assert code == BAD_PAYLOAD and "expired" in info
