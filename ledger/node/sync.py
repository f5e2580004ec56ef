"""Batched sync: a node that is behind its peers fetches their committed chain in batches.

Every ``SYNC_CHECK_S`` the node compares its committed height with the heights its online
peers report in their heartbeats; more than ``SYNC_GAP`` behind, it asks the peer furthest
ahead for up to ``SYNC_BATCH`` blocks (``get_chain``). The answer (``chain``) carries each
block with the QC that certifies it and its transaction bodies; the engine's ``on_chain``
checks every QC and the 2-chain rule before it commits anything (docs/spec/consensus.md).
"""

from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING, Any

from ..codec import canonical
from ..consensus.types import Block, QuorumCertificate
from ..tx import Transaction
from .payload import check_tx_root

if TYPE_CHECKING:
    from .runtime import Node

log = logging.getLogger("rongxin.node")

SYNC_CHECK_S = 0.5  # how often a node compares its height with its peers'
SYNC_GAP = 3  # blocks behind before batched sync starts (live consensus fetches fewer itself)
SYNC_BATCH = 256  # blocks per request
SYNC_MAX_BYTES = 8 * 1024 * 1024
SYNC_RETRY_S = 3.0
HINT_TTL_S = 10.0  # how long a height a peer showed in a block counts without a heartbeat


class ChainSync:
    def __init__(self, node: Node) -> None:
        self.node = node
        self.asked = 0.0
        # heights peers showed before their heartbeats did: peer -> (height, when)
        self.hints: dict[str, tuple[int, float]] = {}

    def hint(self, peer: str, height: int) -> None:
        """``peer`` sent a block at ``height``: it holds the chain below it. A node that just
        started learns this from the first proposal, before any heartbeat reports a height,
        and syncs in batches instead of fetching hundreds of blocks one by one."""
        if height > self.node.engine.committed_height + SYNC_GAP:
            self.hints[peer] = (height - 1, time.monotonic())

    def _heights(self) -> dict[str, int]:
        """Each online peer's committed height: its heartbeat's, or a recent hint's."""
        net = self.node.net
        if net is None:
            return {}
        online = net.online()
        now = time.monotonic()
        out: dict[str, int] = {}
        for pid, peer in net.peers.items():
            h = peer.status.get("height") if isinstance(peer.status, dict) else None
            if isinstance(h, int) and not isinstance(h, bool) and pid in online:
                out[pid] = h
        for pid, (h, when) in list(self.hints.items()):
            if now - when > HINT_TTL_S:
                del self.hints[pid]
            elif pid in net.peers:
                out[pid] = max(out.get(pid, 0), h)
        return out

    def peers_ahead(self) -> int:
        """The highest committed height a peer reports (heartbeats, recent hints)."""
        return max(self._heights().values(), default=0)

    def far_behind(self) -> bool:
        return self.peers_ahead() > self.node.engine.committed_height + SYNC_GAP

    def maybe_sync(self) -> None:
        """Behind the peers by more than a few blocks: ask the one furthest ahead for a batch."""
        net = self.node.net
        if net is None:
            return
        committed = self.node.engine.committed_height
        best, best_height = None, committed + SYNC_GAP
        for pid, h in self._heights().items():
            if h > best_height:
                best, best_height = pid, h
        now = time.monotonic()
        if best is None or now - self.asked < SYNC_RETRY_S:
            return
        self.asked = now
        net.send(best, canonical({"type": "get_chain", "from": committed + 1, "count": SYNC_BATCH}))

    def on_get_chain(self, peer: str, msg: dict[str, Any]) -> None:
        node = self.node
        if node.net is None:
            return
        start, count = int(msg["from"]), int(msg["count"])
        chain = node.app.chain
        items: list[bytes] = []
        size = 0
        for h in range(start, min(start + min(count, SYNC_BATCH), chain.head + 1)):
            rec = chain.block_record(h)
            if rec is None:
                break
            bodies = []
            for t in rec["block"]["tx_ids"]:
                txr = chain.tx(bytes.fromhex(t))
                if txr is not None:
                    bodies.append(txr.tx)
            item = canonical({"block": rec["block"], "qc": rec["qc"], "txs": bodies}, check=False)
            items.append(item)
            size += len(item)
            if size > SYNC_MAX_BYTES:
                break
        node.net.send(peer, b'{"items":[' + b",".join(items) + b'],"type":"chain"}')

    def on_chain(self, peer: str, msg: dict[str, Any]) -> None:
        node = self.node
        batch: list[tuple[Block, QuorumCertificate]] = []
        for item in msg["items"]:
            block = Block.from_wire(item.get("block"))
            check_tx_root(block)
            qc = QuorumCertificate.from_wire(item.get("qc"))
            wanted = set(block.tx_ids)
            for raw in item["txs"]:
                tx = Transaction.decode(raw)
                if tx.id not in wanted or node.body(tx.id) is not None:
                    continue
                if node.signer is not None:
                    tx.verify_signature(node.keys)  # a validator checks every signature itself
                node.bodies[tx.id] = tx
            if any(node.body(t) is None for t in block.tx_ids):
                log.warning("sync: %s sent block %d without all its transactions", peer, block.height)
                break
            batch.append((block, qc))
        if not batch:
            return
        before = node.engine.committed_height
        node.apply(node.engine.on_chain(batch))
        after = node.engine.committed_height
        if after > before:
            log.info("synced blocks %d..%d from %s", before + 1, after, peer)
            self.asked = 0.0
            self.maybe_sync()  # next batch at once while behind
