"""The block-time rule (R7) and the idle bookkeeping (R8) as pure functions, at their edges,
and the engine judging a held proposal by its arrival time."""

from __future__ import annotations

import logging

import pytest

from ledger.consensus.actions import SendTo
from ledger.consensus.pacemaker import Settlement, certified_height
from ledger.consensus.timing import stamp, untimely
from ledger.consensus.types import Block, proposal_bytes
from ledger.crypto.merkle import merkle_root

from .sim import CHAIN, Network

P, D = 500, 2000


def test_stamp_is_the_clock_only_once_past_the_parent() -> None:
    assert stamp(1_000, 999) == 1_000
    assert stamp(1_000, 1_000) is None  # never a copy of the parent's time
    assert stamp(900, 1_000) is None


@pytest.mark.parametrize(("t", "ok"), [
    (10_000 - D - P, True), (10_000 - D - P - 1, False),  # the lower edge is inclusive
    (10_000 + P, True), (10_000 + P + 1, False),  # so is the upper one
    (10_000, True),
])
def test_the_window_around_the_arrival_time(t: int, ok: bool) -> None:
    reason = untimely(t, parent_time=0, received_ms=10_000, precision=P, message_delay=D)
    assert (reason is None) is ok
    if not ok:
        assert "outside [7500, 10500]" in reason and "received at 10000" in reason


def test_a_time_not_after_the_parent_is_refused_even_inside_the_window() -> None:
    assert "not after its parent's time" in untimely(9_000, 9_000, 10_000, P, D)
    assert untimely(9_001, 9_000, 10_000, P, D) is None


def _block(height: int, txs: int = 0, **fields: object) -> Block:
    header = {"chain": "c", "height": height, "view": height, "parent": "00" * 32, "justify": {},
              "proposer": "v0", "txs": "00" * 32, "count": txs, "validators": "00" * 32, "time": height,
              **fields}
    return Block.make(header, [bytes([i]) * 32 for i in range(txs)])


def test_certified_height_is_the_least_height_among_the_payload_fields() -> None:
    assert certified_height(_block(9, exec={"height": 7, "root": "ab"})) == 7
    assert certified_height(_block(9, exec={"height": 7}, results={"height": 6})) == 6
    assert certified_height(_block(9, exec={"height": True}, note="x")) == 9  # none: its own height
    assert certified_height(_block(9)) == 9


def test_settlement_needs_the_certifying_block_committed_and_delivered() -> None:
    s = Settlement()
    assert not s.pending()
    s.saw(_block(5, txs=2))
    assert s.pending() and s.tx_height == 5
    for h in (5, 6):  # committed, but nothing certifies 5's execution yet
        s.committed(_block(h, txs=2 if h == 5 else 0, exec={"height": h - 2}))
        assert s.pending()
    s.committed(_block(7, exec={"height": 5}))
    assert s.settle_height == 7 and s.pending(), "committed here, not yet delivered to all"
    s.delivered_up_to(7)
    assert s.pending(), "the block after the certifying one must commit too (its QC proves 7's commit)"
    s.committed(_block(8, exec={"height": 6}))  # a later block moves the settlement nothing
    assert s.settle_height == 7 and s.pending()
    s.delivered_up_to(8)
    assert not s.pending()
    s.committed(_block(9, exec={"height": 7}))
    assert s.settle_height == 7 and not s.pending()


def test_a_restart_at_a_block_with_transactions_is_pending_until_certified() -> None:
    assert Settlement.at(_block(4, txs=1, exec={"height": 2}), []).pending()
    assert not Settlement.at(_block(4, exec={"height": 2}), []).pending()
    assert Settlement.at(_block(4, exec={"height": 2}), [_block(5, txs=1)]).pending()


def _next_proposal(net: Network, time_ms: int) -> tuple[str, dict]:
    """A validator waiting for the proposal of its current view, and that proposal (signed by
    the view's leader, on the validator's high QC), stamped ``time_ms``."""
    for voter, node in net.nodes.items():
        e = node.engine
        view = e.view
        leader, after = net.vset.leader(view), net.vset.leader(view + 1)
        if voter in (leader, after) or view != e.high_qc.view + 1 or view <= e.highest_voted_view:
            continue
        parent = e.blocks[e.high_qc.block]
        header = {"chain": CHAIN, "height": parent.height + 1, "view": view, "parent": parent.hash.hex(),
                  "justify": e.high_qc.wire(), "proposer": leader, "txs": merkle_root([]).hex(), "count": 0,
                  "exec": {"height": 0, "root": bytes(32).hex()}, "validators": net.vset.digest().hex(),
                  "time": time_ms}
        block = Block.make(header, [])
        sig = net.nodes[leader].signer.sign(proposal_bytes(CHAIN, block.hash)).hex()
        return voter, {"type": "proposal", "block": block.wire(), "tc": None, "sig": sig}
    raise AssertionError("no validator waits for a proposal")


def test_a_held_proposal_is_judged_by_its_arrival_time(caplog: pytest.LogCaptureFixture) -> None:
    """A proposal the host held (fetching bodies) for longer than the window is voted for
    when it arrived in time, and refused when it did not, whatever the clock says now."""
    caplog.set_level(logging.WARNING, logger="rongxin.consensus")
    for late, votes in ((0, True), (D + P + 1, False)):
        net = Network(5, seed=61)
        net.start()  # every validator waits for the proposal of view 1
        t = net.wall_ms("v0")
        voter, msg = _next_proposal(net, t)
        net.now += 60.0  # the host held it a minute: the clock is now far past the window
        assert net.wall_ms(voter) > t + D + P
        actions = net.nodes[voter].engine.on_message("v0", msg, received_ms=t + late)
        voted = any(isinstance(a, SendTo) and a.message["type"] == "vote" for a in actions)
        assert voted is votes, (late, caplog.text)
    assert "no vote for block" in caplog.text and f"received at {t + D + P + 1}" in caplog.text
