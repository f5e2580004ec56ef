"""The HotStuff core on a seeded virtual network: safety, liveness, faults, lies."""

from __future__ import annotations

import dataclasses

import pytest

from ledger.consensus.engine import Action, Broadcast
from ledger.consensus.types import Block, QuorumCertificate, proposal_bytes
from ledger.crypto import SM2PrivateKey, sm3

from .sim import CHAIN, Network


def test_happy_path_commits_and_every_qc_verifies() -> None:
    net = Network(5, seed=1)
    net.start()
    net.run(3.0)
    net.assert_safety()
    assert net.min_committed() >= 20
    node = net.nodes["v0"]
    for block, qc in node.committed:
        assert len(qc.sigs) >= net.vset.quorum
        qc.verify(net.vset, net.key_cache, net.genesis.hash)
        assert block.header["proposer"] == net.vset.leader(block.view)
    proposers = {b.proposer for b, _ in node.committed}
    assert proposers == {"v0", "v1", "v2", "v3", "v4"}, "the leader rotates"


def test_one_validator_down_keeps_committing_two_down_stalls_and_return_resumes() -> None:
    net = Network(5, seed=2)
    net.start()
    net.run(1.0)
    net.crash("v1")
    before = net.min_committed(["v0", "v2", "v3", "v4"])
    net.run(6.0)
    with_one_down = net.min_committed(["v0", "v2", "v3", "v4"])
    assert with_one_down >= before + 5, "n=5 tolerates one crashed validator"
    net.crash("v2")
    net.run(7.0)
    stalled_at = net.min_committed(["v0", "v3", "v4"])
    net.run(14.0)
    assert max(len(net.nodes[i].committed) for i in ("v0", "v3", "v4")) <= stalled_at + 1, \
        "three of five are below the quorum of four: nothing new may commit"
    net.restart("v1")
    net.restart("v2")
    net.run(40.0)
    net.assert_safety()
    assert net.min_committed(["v0", "v3", "v4"]) >= stalled_at + 5, "commits resume after they return"
    assert net.min_committed() >= stalled_at + 2, "the returned validators catch up"


def test_partition_two_against_three_commits_nothing_then_heals_without_fork() -> None:
    net = Network(5, seed=3)
    net.start()
    net.run(1.0)
    base = {i: len(n.committed) for i, n in net.nodes.items()}
    net.partition({"v0", "v1"}, {"v2", "v3", "v4"})
    net.run(10.0)
    for i in ("v0", "v1"):
        assert len(net.nodes[i].committed) <= base[i] + 1, "the minority side commits nothing new"
    net.heal()
    net.run(40.0)
    net.assert_safety()
    assert net.min_committed() >= max(base.values()) + 5


def _equivocate(net: Network) -> None:
    """v0, when leader, signs two different blocks for its view and splits them."""
    signer = net.nodes["v0"].signer

    def hook(node, action: Action) -> list[Action] | None:
        if not (isinstance(action, Broadcast) and action.message.get("type") == "proposal"):
            return None
        msg = action.message
        block = Block.from_wire(msg["block"])
        other_ids = [sm3(b"forged" + block.hash + bytes([i])) for i in range(2)]
        from ledger.crypto.merkle import merkle_root

        header = dict(block.header, txs=merkle_root(other_ids).hex(), count=len(other_ids))
        twin = Block.make(header, other_ids)
        twin_msg = dict(msg, block=twin.wire(), sig=signer.sign(proposal_bytes(CHAIN, twin.hash)).hex())
        for target in ("v1", "v2"):
            net.deliver("v0", target, msg)
        net.deliver("v0", "v1", twin_msg)
        for target in ("v3", "v4"):
            net.deliver("v0", target, twin_msg)
        return []

    net.intercept["v0"] = hook


def test_equivocating_leader_breaks_no_safety_and_is_reported() -> None:
    net = Network(5, seed=4)
    _equivocate(net)
    net.start()
    net.run(20.0)
    net.assert_safety()
    honest = ["v1", "v2", "v3", "v4"]
    assert net.min_committed(honest) >= 10, "the honest four keep committing"
    reports = [e for e in net.nodes["v1"].evidence if e.kind == "double-proposal"]
    assert reports and all(e.offender == "v0" for e in reports)
    first, second = reports[0].first, reports[0].second
    assert first["block"]["header"]["view"] == second["block"]["header"]["view"]
    assert first["block"]["header"] != second["block"]["header"]


@pytest.mark.parametrize("seed", range(4))
def test_random_crashes_and_restarts_never_fork_or_double_vote(seed: int) -> None:
    net = Network(5, seed=100 + seed, max_delay=0.2)
    net.start()
    t = 0.0
    for step in range(8):
        victim = f"v{net.rng.randrange(5)}"
        t += net.rng.uniform(0.3, 2.0)
        net.run(t)
        net.crash(victim)
        t += net.rng.uniform(0.2, 2.0)
        net.run(t)
        net.restart(victim)
    net.run(t + 20.0)
    net.assert_safety()
    assert net.min_committed() >= 5
    assert not [e for n in net.nodes.values() for e in n.evidence], "an honest restarted node equivocated"


# ---------------------------------------------------------------- lies, one message at a time


def _started() -> Network:
    net = Network(5, seed=9)
    net.start()
    net.run(1.0)
    return net


def _a_proposal(net: Network) -> dict:
    """The latest real, correctly signed proposal a leader broadcast."""
    return next(m for _, m in reversed(net.broadcasts) if m["type"] == "proposal")


def test_forged_qc_unsigned_and_non_leader_proposals_are_ignored(caplog: pytest.LogCaptureFixture) -> None:
    net = _started()
    good = _a_proposal(net)
    target = next(i for i in net.nodes if i != good["block"]["header"]["proposer"])
    engine = net.nodes[target].engine
    state = engine.status()

    outsider = SM2PrivateKey.generate()
    forged_header = dict(good["block"]["header"])
    justify = dict(forged_header["justify"])
    justify["sigs"] = [{"by": s["by"], "sig": outsider.sign(b"x").hex()} for s in justify["sigs"]] or [
        {"by": f"v{i}", "sig": outsider.sign(b"x").hex()} for i in range(4)]
    justify["view"] = justify["view"] + 5
    forged_header["justify"] = justify
    proposer = good["block"]["header"]["proposer"]

    def signed_as(who: str, header: dict) -> dict:
        block = Block.make(header, [bytes.fromhex(t) for t in good["block"]["tx_ids"]])
        sig = net.nodes[who].signer.sign(proposal_bytes(CHAIN, block.hash)).hex()
        return dict(good, block=block.wire(), sig=sig)

    cases = {  # name: (message, the reason the log must give)
        "forged QC": (signed_as(proposer, forged_header), "does not verify"),
        "unsigned": ({k: v for k, v in good.items() if k != "sig"}, "ignored message"),
        "bad signature": (dict(good, sig=outsider.sign(b"y").hex()), "does not verify"),
        "non-leader": (signed_as(target, dict(good["block"]["header"], proposer=target)), "is not the leader"),
        "malformed": ({"type": "proposal", "block": "garbage"}, "a block is"),
        "unknown type": ({"type": "gossip"}, "unknown message type"),
        "wrong chain": (signed_as(proposer, dict(good["block"]["header"], chain="other")), "for chain"),
    }
    for name, (msg, reason) in cases.items():
        caplog.clear()
        assert engine.on_message("attacker", msg) == [], name
        assert engine.status() == state, name
        assert "ignored message" in caplog.text and reason in caplog.text, (name, caplog.text)


def test_forged_vote_and_timeout_are_ignored() -> None:
    net = _started()
    engine = net.nodes["v0"].engine
    state = engine.status()
    outsider = SM2PrivateKey.generate()
    vote = {"type": "vote", "height": 99, "view": engine.view, "block": bytes(32).hex(), "by": "v1",
            "sig": outsider.sign(b"z").hex()}
    timeout = {"type": "timeout", "view": engine.view, "high_qc": engine.high_qc.wire(), "by": "v2",
               "sig": outsider.sign(b"z").hex()}
    stranger_vote = dict(vote, by="intruder")
    for msg in (vote, timeout, stranger_vote):
        assert engine.on_message("v1", msg) == []
    assert engine.status() == state


def test_qc_with_too_few_or_duplicate_signatures_is_refused() -> None:
    net = _started()
    node = net.nodes["v0"]
    _block, qc = node.committed[-1]
    qc.verify(net.vset, net.key_cache)
    short = dataclasses.replace(qc, sigs=qc.sigs[: net.vset.quorum - 1])
    dup = dataclasses.replace(qc, sigs=(qc.sigs[0],) * net.vset.quorum)
    other_block = dataclasses.replace(qc, block=sm3(b"another block"))
    from ledger.consensus.errors import InvalidMessage

    for bad in (short, dup, other_block):
        with pytest.raises(InvalidMessage):
            bad.verify(net.vset, net.key_cache)
    assert QuorumCertificate.from_wire(qc.wire()) == qc
