"""A validator restarted (kill -9) with saved blocks that do not connect to its committed chain.

Found by killing a validator under load: its restart logged "commit target … does not extend
the committed chain" and stalled until batched sync healed it. Cause: the engine loaded every
saved, uncommitted block, including one whose parent it never accepted (killed while it was
still fetching that parent's transaction bodies); a later QC made it commit through the gap,
and the walk back from the commit target fell off the chain. Fix: only blocks that connect are
loaded, and a commit whose ancestor is missing fetches it instead of giving up.
"""

from __future__ import annotations

import logging

import pytest

from .sim import Network


@pytest.mark.parametrize("seed", [11, 12, 13])
def test_restart_with_a_saved_block_whose_parent_is_missing_commits_without_error(
        seed: int, caplog: pytest.LogCaptureFixture) -> None:
    net = Network(5, seed=seed)
    net.start()
    net.run(2.0)
    node = net.nodes["v1"]
    c = len(node.committed)
    net.crash("v1")
    net.run(net.now + 1.0)
    # kill -9 left v1 with blocks c+2 and c+3 saved and a persisted high QC certifying c+3,
    # but not block c+1 (it was still fetching its bodies): the start fetches nothing
    chain = {b.height: (b, qc) for b, qc in net.nodes["v0"].committed}
    assert c + 3 in chain, "the others went on"
    gap = [chain[c + 2][0], chain[c + 3][0]]
    node.persisted = (node.persisted[0] if node.persisted else 0, chain[c + 3][1])
    caplog.set_level(logging.INFO, logger="rongxin.consensus")
    net.restart("v1", known_blocks=gap)
    net.run(net.now + 6.0)
    net.assert_safety()
    assert not [r for r in caplog.records if "does not extend" in r.getMessage()]
    assert len(net.nodes["v1"].committed) >= max(len(n.committed) for n in net.nodes.values()) - 3, \
        "the restarted validator keeps up with the others"
