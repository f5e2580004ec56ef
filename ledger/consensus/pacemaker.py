"""When the chain needs a block although no transaction waits (the idle rule).

A block that carries transactions is not finished when it commits: the header of a later
block certifies its execution (the payload's header fields, such as ``exec``, each name the
executed height they certify), and that block must commit too, on every node. Once both
have happened, and the block after the certifying one has committed too (its QC, stored
with it, is the commit certificate a receipt proof carries), the chain is *settled*: an idle leader then proposes at most one heartbeat
block per idle interval, and no validator arms a view timer, so an idle chain has no
timeouts and no missed leader turns. docs/spec/consensus.md ("Block interval and idle chain").
"""

from __future__ import annotations

from dataclasses import dataclass

from .types import Block

# the header fields the engine writes; every other field comes from the payload
ENGINE_FIELDS = frozenset({"chain", "height", "view", "parent", "justify", "proposer", "txs", "count",
                           "validators", "time"})


def certified_height(block: Block) -> int:
    """The executed height a block's header certifies: the least ``height`` among the
    payload's header fields that are objects with an integer ``height`` (``exec``, and
    ``results`` when present); a header without such a field certifies its own height."""
    heights = [v["height"] for k, v in block.header.items()
               if k not in ENGINE_FIELDS and isinstance(v, dict)
               and isinstance(v.get("height"), int) and not isinstance(v.get("height"), bool)]
    return min(heights) if heights else block.height


@dataclass
class Settlement:
    """What this node knows of the last transactions' progress, by height.

    ``tx_height``: the greatest height of a block with transactions this node has held;
    ``certified``: the greatest height certified by the header of a block it committed;
    ``settle_height``: the first committed block whose header certified ``tx_height``;
    ``delivered``: the greatest height a proposal's justify QC is known to have committed
    (on every node that received that proposal);
    ``proved``: ``settle_height + 1`` once a settlement happened: its commit stores the QC that
    commits the certifying block, which a receipt's proof (``GET /v1/proofs``) carries.
    """

    tx_height: int = 0
    certified: int = 0
    settle_height: int = 0
    delivered: int = 0
    proved: int = 0

    @classmethod
    def at(cls, tip: Block, known: list[Block]) -> Settlement:
        """After a (re)start at committed block ``tip``, with uncommitted ``known`` blocks."""
        s = cls(tx_height=tip.height if tip.tx_ids else 0, certified=certified_height(tip),
                settle_height=tip.height, delivered=tip.height)
        for b in known:
            s.saw(b)
        return s

    def saw(self, block: Block) -> None:
        if block.tx_ids and block.height > self.tx_height:
            self.tx_height = block.height

    def committed(self, block: Block) -> None:
        self.saw(block)
        c = certified_height(block)
        if self.certified < self.tx_height <= c:
            self.settle_height = block.height
            self.proved = block.height + 1
        self.certified = max(self.certified, c)

    def delivered_up_to(self, height: int) -> None:
        self.delivered = max(self.delivered, height)

    def pending(self) -> bool:
        """True while blocks are needed: a block with transactions whose execution no
        committed header certifies yet, or the commit of that header and of the block after
        it not yet delivered (without the latter a receipt would wait for the next heartbeat
        to become provable)."""
        return self.certified < self.tx_height or self.delivered < max(self.settle_height, self.proved)
