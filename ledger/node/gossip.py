"""Transaction gossip and the bodies behind proposals and fetched blocks.

A proposal names its transactions by id. It is handed to the engine only once every body it
names is known and verified (``held`` proposals wait for ``txs`` answers to ``get_txs``), so a
vote always means "I checked every signature in this block". A block this node keeps is saved
as pending in the same durable commit as the vote's safety record (its proposer also saves
the bodies), so a block a QC certifies survives, and can be executed after, a restart of
every node. ``get_txs`` is answered from the mempool, the bodies held and committed
transactions, so a restarted node fetches what a committed block needs.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from ..codec import canonical
from ..consensus.errors import InvalidMessage
from ..consensus.types import Block
from ..tx import InvalidTransaction, Transaction
from .messages import MAX_GET_TXS, txs_message
from .payload import check_tx_root

if TYPE_CHECKING:
    from .runtime import Node

log = logging.getLogger("rongxin.node")


class Gossip:
    def __init__(self, node: Node) -> None:
        self.node = node
        # proposals waiting for bodies: block hash -> (peer, message, missing ids, arrival time
        # on the node's wall clock in ms: the engine judges the block time against it)
        self.held: dict[bytes, tuple[str, dict[str, Any], set[bytes], int]] = {}

    # ------------------------------------------------------------ proposals
    def on_proposal(self, peer: str, msg: dict[str, Any]) -> None:
        node = self.node
        block = Block.from_wire(msg["block"])
        if node.signer is None:  # validators check it in validate(); a full node never validates
            check_tx_root(block)
        node.sync.hint(peer, block.height)
        missing = {t for t in block.tx_ids if node.body(t) is None}
        if missing:
            self.held[block.hash] = (peer, msg, missing, node.engine.cfg.wall())
            if node.net is not None:
                node.net.send(peer, canonical({"type": "get_txs", "ids": [m.hex() for m in missing]}))
            return
        self.accept_proposal(peer, msg, block)

    def accept_proposal(self, peer: str, msg: dict[str, Any], block: Block, received_ms: int | None = None) -> None:
        """Hand a proposal (bodies known) to the engine; a block it keeps is persisted in the same
        durable commit as the vote's safety record, before the vote leaves."""
        node = self.node
        actions = node.engine.on_message(peer, msg, received_ms)
        if block.hash in node.engine.blocks and block.height > node.engine.committed_height:
            node.save_pending(block)
        node.apply(actions)

    def release_held(self) -> None:
        for block_hash, (peer, msg, missing, received_ms) in list(self.held.items()):
            missing -= {t for t in missing if self.node.body(t) is not None}
            if not missing:
                del self.held[block_hash]
                self.accept_proposal(peer, msg, Block.from_wire(msg["block"]), received_ms)

    def wants(self, tx_id: bytes) -> bool:
        return any(tx_id in missing for _, _, missing, _ in self.held.values())

    # ------------------------------------------------------------ bodies
    def on_txs(self, peer: str, msg: dict[str, Any]) -> None:
        node = self.node
        txs = [Transaction.decode(t, parsed=True) for t in msg["txs"] if isinstance(t, dict)]  # from codec.parse
        if node.signer is None:
            # a full node relies on the QC for signatures; it only keeps the bodies
            for tx in txs:
                node.bodies.setdefault(tx.id, tx)
        else:
            for (tx_id, reason), tx in zip(node.submit(txs, gossip=False), txs, strict=True):
                if reason is not None and tx_id not in node.mempool and (self.wants(tx_id) or node.deferred_wants(tx_id)):
                    # still keep a verified body a held proposal or a committed block needs
                    # (e.g. refused here as a replay)
                    try:
                        tx.verify_signature(node.keys)
                        node.bodies[tx_id] = tx
                    except InvalidTransaction:
                        pass
        self.release_held()
        node.bodies_arrived()

    def on_get_txs(self, peer: str, msg: dict[str, Any]) -> None:
        node = self.node
        if node.net is None:
            return
        found = []
        for t in msg["ids"][:MAX_GET_TXS]:
            try:
                tx_id = bytes.fromhex(t)
            except ValueError:
                raise InvalidMessage("get_txs: ids must be hex") from None
            body = node.body(tx_id)
            if body is None:
                rec = node.app.chain.tx(tx_id)
                body = Transaction.decode(rec.tx) if rec is not None else None
            if body is not None:
                found.append(body)
        node.net.send(peer, txs_message(found))

    # ------------------------------------------------------------ blocks
    def on_get_block(self, peer: str, msg: dict[str, Any]) -> None:
        node = self.node
        if node.net is None:
            return
        try:
            h = bytes.fromhex(msg["hash"])
        except ValueError:
            raise InvalidMessage("get_block: hash must be hex") from None
        block = node.engine.blocks.get(h)
        if block is None:
            height = node.app.chain.height_of(h)
            rec = node.app.chain.block(height) if height is not None else None
            block = rec[0] if rec is not None else None
        if block is None:
            return
        # the bodies first (one link keeps order), so the asker can execute the block
        known = []
        for t in block.tx_ids:
            body = node.body(t)
            if body is not None:
                known.append(body.wire())
            else:
                rec_tx = node.app.chain.tx(t)
                if rec_tx is not None:
                    known.append(rec_tx.tx)
        if known:
            node.net.send(peer, canonical({"type": "txs", "txs": known}))
        node.net.send(peer, canonical({"type": "block", "block": block.wire()}))

    def on_block(self, peer: str, msg: dict[str, Any]) -> None:
        fetched = Block.from_wire(msg["block"])
        check_tx_root(fetched)
        self.node.apply(self.node.engine.on_block(fetched))
