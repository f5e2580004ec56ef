"""Catching up: the blocks a restarted engine loads from its store, and the checks on a
peer's committed chain received by batched sync (``Engine.on_chain``)."""

from __future__ import annotations

import logging
from collections.abc import Callable

from ..crypto.keycache import KeyCache
from .errors import InvalidMessage
from .types import Block, QuorumCertificate, ValidatorSet

log = logging.getLogger("rongxin.consensus")


def verified_prefix(items: list[tuple[Block, QuorumCertificate]], *, height: int, head: bytes, chain: str,
                    vset_at: Callable[[int], ValidatorSet], keys: KeyCache,
                    genesis: bytes) -> list[tuple[Block, QuorumCertificate]]:
    """The longest prefix of ``items`` that extends the block ``head`` at ``height``, one
    block at a time, each with a QC for that very block valid under the set of its height."""
    verified: list[tuple[Block, QuorumCertificate]] = []
    for block, qc in items:
        if block.height != height + 1 or block.parent != head:
            break
        if qc.block != block.hash or qc.height != block.height or block.header["chain"] != chain:
            log.warning("sync: block %d comes with a QC for another block", block.height)
            break
        try:
            qc.verify(vset_at(block.height), keys, genesis)
        except InvalidMessage as exc:
            log.warning("sync: block %d carries a bad QC: %s", block.height, exc)
            break
        verified.append((block, qc))
        height, head = block.height, block.hash
    return verified


def last_committable(verified: list[tuple[Block, QuorumCertificate]]) -> int:
    """The index of the last block followed by its certified child in the next view (the
    2-chain rule), or -1."""
    last = -1
    for i in range(len(verified) - 1):
        if verified[i + 1][0].view == verified[i][0].view + 1:
            last = i
    return last


def load_known(blocks: dict[bytes, Block], qc_of: dict[bytes, QuorumCertificate], known: list[Block],
               high_qc: QuorumCertificate) -> None:
    """Add the uncommitted blocks a restarted node kept (``blocks`` holds the committed tip)
    and what certifies them to the engine's tables."""
    for b in sorted(known, key=lambda blk: blk.height):
        # only blocks that connect to the committed chain: one whose parent is missing (a
        # proposal this node never accepted, e.g. killed while fetching its bodies) would make
        # a later commit walk off the chain; such a parent is fetched again when needed
        if b.parent in blocks:
            blocks[b.hash] = b
    # what certifies the known blocks: each one's justify QC certifies its parent, and the
    # high QC its own block (a commit after a restart needs the QC of every block it executes)
    for b in known:
        if b.justify.block in blocks:
            qc_of.setdefault(b.justify.block, b.justify)
    if high_qc.block in blocks:
        qc_of.setdefault(high_qc.block, high_qc)
