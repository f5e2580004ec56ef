"""A Byzantine validator for the fault tests: the real node process (``api.node_main``),
except that as leader it sends two different blocks for each of its views (equivocation).
Run as ``python byzantine_node.py NODE_FOLDER`` in place of the honest process."""

from __future__ import annotations

import sys
from typing import Any

from api import node_main
from ledger.consensus.engine import Broadcast
from ledger.consensus.types import Block, proposal_bytes
from ledger.node import runtime


def make_equivocating(node: runtime.Node) -> None:
    """From now on ``node``, as leader, broadcasts two different blocks for each of its views."""
    engine = node.engine
    honest_propose = engine._propose

    def propose(view: int) -> list[Any]:
        actions = honest_propose(view)
        for action in list(actions):
            if isinstance(action, Broadcast) and action.message.get("type") == "proposal":
                header = dict(action.message["block"]["header"])
                header["time"] += 1  # a second, different block for the same view
                twin = Block.make(header, [bytes.fromhex(t) for t in action.message["block"]["tx_ids"]])
                assert engine.me is not None
                actions.append(Broadcast(dict(action.message, block=twin.wire(),
                                              sig=engine.me.sign(proposal_bytes(node.chain, twin.hash)).hex())))
        return actions

    engine._propose = propose  # type: ignore[method-assign]


if __name__ == "__main__":
    _honest_start = runtime.Node.start

    def _equivocating_start(self: runtime.Node) -> None:
        make_equivocating(self)
        _honest_start(self)

    runtime.Node.start = _equivocating_start  # type: ignore[method-assign]
    sys.exit(node_main.main())
