"""The node's record of the committed chain, in the same crash-safe store as the state tree.

Key layout (the state tree owns prefix ``T``):

=====================  ==============================================================
key                    value
=====================  ==============================================================
``B`` + height (8)     canonical ``{"block", "qc", "receipts"}`` of a committed block
``H`` + block hash     height (8 bytes)
``X`` + tx id          canonical ``{"height", "index", "code", "info", "tx"}``
``N`` + nonce key      tx id: the ``(sender, nonce)`` pair is used
``Mhead``              last committed height (8 bytes)
``Msafety``            canonical ``{"voted", "high_qc"}``: consensus safety state
``P`` + height + hash  canonical block: a proposal this node accepted but has not committed
                       yet (so the block of a QC survives a restart of every node); pruned
                       once its height is committed
=====================  ==============================================================

``commit_records`` returns the records of one committed block, which the caller writes in
the same atomic batch as the state tree's version (``SparseMerkleTree.commit(extra=…)``):
a block, its transactions' index entries and the state they produced survive a crash
together or not at all.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from ..codec import canonical, parse
from ..consensus.types import Block, QuorumCertificate
from ..state.abc import KVStore
from ..tx import Transaction

HEAD = b"Mhead"
# receipt codes
OK, EXPIRED, REPLAY, UNKNOWN_TYPE, BAD_PAYLOAD = 0, 1, 2, 3, 4
SAFETY = b"Msafety"


def _h8(height: int) -> bytes:
    return height.to_bytes(8, "big")


@dataclass(frozen=True)
class TxRecord:
    height: int
    index: int
    code: int
    info: str
    tx: dict[str, Any]


@dataclass(frozen=True)
class Receipt:
    code: int
    info: str

    def wire(self) -> dict[str, Any]:
        return {"code": self.code, "info": self.info}


class ChainStore:
    def __init__(self, store: KVStore) -> None:
        self.store = store
        self._pending: set[bytes] | None = None  # keys of the P records (read once, then kept)

    # ------------------------------------------------------------ reads
    @property
    def head(self) -> int:
        raw = self.store.get(HEAD)
        return 0 if raw is None else int.from_bytes(raw, "big")

    def block(self, height: int) -> tuple[Block, QuorumCertificate, list[dict[str, Any]]] | None:
        raw = self.store.get(b"B" + _h8(height))
        if raw is None:
            return None
        rec = parse(raw)
        return Block.from_wire(rec["block"]), QuorumCertificate.from_wire(rec["qc"]), list(rec["receipts"])

    def block_record(self, height: int) -> dict[str, Any] | None:
        raw = self.store.get(b"B" + _h8(height))
        return None if raw is None else dict(parse(raw))

    def height_of(self, block_hash: bytes) -> int | None:
        raw = self.store.get(b"H" + block_hash)
        return None if raw is None else int.from_bytes(raw, "big")

    def tx(self, tx_id: bytes) -> TxRecord | None:
        raw = self.store.get(b"X" + tx_id)
        if raw is None:
            return None
        r = parse(raw)
        return TxRecord(r["height"], r["index"], r["code"], r["info"], r["tx"])

    def has_tx(self, tx_id: bytes) -> bool:
        return self.store.get(b"X" + tx_id) is not None

    def nonce_used(self, nonce_key: bytes) -> bool:
        return self.store.get(b"N" + nonce_key) is not None

    def safety(self) -> tuple[int, QuorumCertificate] | None:
        raw = self.store.get(SAFETY)
        if raw is None:
            return None
        rec = parse(raw)
        return int(rec["voted"]), QuorumCertificate.from_wire(rec["high_qc"])

    def pending_blocks(self, above: int) -> list[Block]:
        """Accepted, uncommitted proposals above height ``above`` (for the engine at start)."""
        out = []
        self._pending = set()
        for key, raw in self.store.iterate(b"P"):
            self._pending.add(key)
            if int.from_bytes(key[1:9], "big") > above:
                out.append(Block.from_wire(parse(raw)))
        return out

    # ------------------------------------------------------------ writes
    def save_pending(self, block: Block) -> None:
        key = b"P" + _h8(block.height) + block.hash
        if self._pending is None:
            self.pending_blocks(0)
        assert self._pending is not None
        if key not in self._pending:
            self._pending.add(key)
            self.store.write({key: canonical(block.wire(), check=False)})

    def prune_pending(self, committed: int) -> None:
        if self._pending is None:
            self.pending_blocks(0)
        assert self._pending is not None
        stale = [key for key in self._pending if int.from_bytes(key[1:9], "big") <= committed]
        if stale:
            self._pending.difference_update(stale)
            self.store.write(dict.fromkeys(stale))

    def save_safety(self, voted: int, high_qc: QuorumCertificate) -> None:
        """Durable before the vote or timeout it protects leaves the node."""
        self.store.write({SAFETY: canonical({"voted": voted, "high_qc": high_qc.wire()})})

    @staticmethod
    def commit_records(block: Block, qc: QuorumCertificate, txs: Sequence[Transaction],
                       receipts: Sequence[Receipt]) -> Mapping[bytes, bytes]:
        h = block.height
        out: dict[bytes, bytes] = {
            # built from checked parts: a validated block, a verified QC, receipts of ints and str
            b"B" + _h8(h): canonical({"block": block.wire(), "qc": qc.wire(),
                                       "receipts": [r.wire() for r in receipts]}, check=False),
            b"H" + block.hash: _h8(h),
            HEAD: _h8(h),
        }
        for i, (tx, r) in enumerate(zip(txs, receipts, strict=True)):
            if r.code == REPLAY:
                continue  # the first inclusion keeps its index entry
            # canonical({"code", "height", "index", "info", "tx"}) with the transaction's own
            # canonical bytes spliced in (keys in sorted order), not re-encoded
            info = b'"ok"' if r.info == "ok" else canonical(r.info)
            out[b"X" + tx.id] = (b'{"code":%d,"height":%d,"index":%d,"info":%s,"tx":%s}'
                                 % (r.code, h, i, info, tx.encode()))
            out[b"N" + tx.nonce_key] = tx.id
        return out
