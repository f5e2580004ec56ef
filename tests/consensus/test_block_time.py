"""Proposer-based block time (R7) on the seeded network: skewed, lying and Byzantine clocks.

Times are in ms. ``P`` is the precision, ``D`` the message delay, ``E`` the largest error of
an honest clock. docs/spec/consensus.md ("Block time") derives the bound these tests check:
a committed block's time ``t`` satisfies ``τp − D − P − E ≤ t ≤ τc + P + E`` where ``τp`` is
the true time it was first proposed and ``τc`` the true time its QC was formed.
"""

from __future__ import annotations

import itertools
import logging
import random

import pytest

from ledger.consensus.engine import Engine
from ledger.consensus.types import Block

from .sim import EPOCH_MS, Network

P, D = 500, 2000  # the Config defaults


def _bound_holds(net: Network, block: Block, err_ms: int) -> tuple[bool, str]:
    """Whether ``block``'s time lies within the bound of true time (against the network's
    records: the first broadcast of the block, and the first proposal carrying its QC)."""
    t = int(block.header["time"])
    proposed = EPOCH_MS + net.proposed_at[block.hash] * 1000
    certified = EPOCH_MS + net.justified_at[block.hash] * 1000  # the QC formed before this
    low, high = proposed - D - P - err_ms, certified + P + err_ms
    return low <= t <= high, f"block {block.height} by {block.proposer}: {t} not in [{low:.0f}, {high:.0f}]"


def _check_committed_times(net: Network, node_id: str, err_ms: int) -> list[Block]:
    blocks = [b for b, _ in net.nodes[node_id].committed]
    times = [int(b.header["time"]) for b in blocks]
    assert all(a < b for a, b in itertools.pairwise(times)), "block times strictly increase"
    for block in blocks[:-1]:  # the last one's QC may not have been carried by a proposal yet
        ok, why = _bound_holds(net, block, err_ms)
        assert ok, why
    return blocks


@pytest.mark.parametrize("seed", range(3))
def test_clocks_skewed_within_the_precision_keep_the_chain_live_and_times_true(seed: int) -> None:
    rng = random.Random(seed)
    skews = {f"v{i}": rng.uniform(-P / 2000, P / 2000) for i in range(5)}  # seconds, within ±P/2
    net = Network(5, seed=300 + seed, clocks={k: (lambda s: lambda now: now + s)(v) for k, v in skews.items()})
    net.start()
    net.run(6.0)
    net.assert_safety()
    assert net.min_committed() >= 20, "skews within the precision cost no liveness"
    assert not [m for _, m in net.broadcasts if m["type"] == "timeout"], "no honest leader is refused"
    for node_id in net.nodes:
        blocks = _check_committed_times(net, node_id, err_ms=P // 2)
        for block in blocks:  # an honest leader stamps its own clock when it proposes
            true_ms = EPOCH_MS + net.proposed_at[block.hash] * 1000
            assert abs(int(block.header["time"]) - true_ms) <= P / 2 + 1


LIES = {  # the clock, and until when (true time, s) it is within the precision of the truth
    "ahead": (lambda now: now + 300.0, 0.0),  # five minutes ahead
    "behind": (lambda now: now - 300.0, 0.0),  # five minutes behind
    "frozen": (lambda now: min(now, 0.5), 0.5 + P / 1000),  # stops half a second after the start
}


@pytest.mark.parametrize("lie", sorted(LIES))
def test_a_leader_whose_clock_lies_gets_no_votes_and_the_next_leader_stamps_true_time(
        lie: str, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="rongxin.consensus")
    clock, trusted_until = LIES[lie]
    net = Network(5, seed=41, clocks={"v2": clock})
    net.start()
    net.run(15.0)
    net.assert_safety()
    honest = ["v0", "v1", "v3", "v4"]
    assert net.min_committed(honest) >= 15, "the four honest validators keep the chain live"
    # once its clock lies, v2 gets no QC (no proposal carries one for its blocks), commits
    # nothing, and its views time out
    v2_blocks = {Block.from_wire(m["block"]).hash for _, m in net.broadcasts
                 if m["type"] == "proposal" and m["block"]["header"]["proposer"] == "v2"
                 and net.proposed_at[Block.from_wire(m["block"]).hash] >= trusted_until}
    assert not v2_blocks & set(net.justified_at), "no block of v2 was certified"
    assert not [b for b, _ in net.nodes["v0"].committed if b.proposer == "v2" and b.hash in v2_blocks]
    late = [m for _, m in net.broadcasts if m["type"] == "proposal" and m["tc"]]
    assert len(late) >= 3 and all(net.vset.leader(m["tc"]["view"]) == "v2" for m in late), "only v2's views time out"
    tcs = late
    for m in tcs:  # the next honest leader's block carries a timely time
        block = Block.from_wire(m["block"])
        assert abs(int(block.header["time"]) - (EPOCH_MS + net.proposed_at[block.hash] * 1000)) <= 1
    _check_committed_times(net, "v0", err_ms=0)
    if lie == "ahead":  # v2 proposed; the others said why they refused, with the numbers
        assert v2_blocks
        assert "no vote for block" in caplog.text and "outside [" in caplog.text and "received at" in caplog.text
    else:  # v2 waits for its clock to pass its parent's time: it never proposes
        assert not v2_blocks


class ByzantineClockEngine(Engine):
    """A validator that stamps whatever time it likes (no waiting) and votes for any time."""

    lies = random.Random(7)

    def _stamp(self, now_ms: int, parent: Block) -> int | None:
        parent_t = int(parent.header["time"])
        offset = self.lies.choice([-600_000, -D - P - 200, -D - P + 100, -D, -D, -P, P - 100, P - 100,
                                   P + 200, P + 400, 600_000, None])  # in and out of the bound
        return parent_t if offset is None else now_ms + offset  # None: not after the parent

    def _timely(self, block: Block, parent: Block, received_ms: int) -> str | None:
        return None


@pytest.mark.parametrize("seed", range(3))
def test_f_byzantine_validators_with_lying_clocks_cannot_move_committed_time_out_of_the_bound(seed: int) -> None:
    rng = random.Random(seed)
    n = 7  # f = 2
    skews = {f"v{i}": rng.uniform(-P / 2000, P / 2000) for i in range(2, n)}
    net = Network(n, seed=500 + seed, clocks={k: (lambda s: lambda now: now + s)(v) for k, v in skews.items()},
                  engines={"v0": ByzantineClockEngine, "v1": ByzantineClockEngine})
    net.start()
    net.run(20.0)
    net.assert_safety()
    honest = [f"v{i}" for i in range(2, n)]
    assert net.min_committed(honest) >= 20
    byz_committed = 0
    for node_id in honest:
        blocks = _check_committed_times(net, node_id, err_ms=P // 2)
        byz_committed = max(byz_committed, sum(b.proposer in ("v0", "v1") for b in blocks))
    assert byz_committed > 0, "the Byzantine leaders' timely lies do commit (within the bound)"
