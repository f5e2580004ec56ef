"""The node's record of the committed chain, in the same crash-safe store as the state tree.

Key layout (the state tree owns prefix ``T``):

=====================  ==============================================================
key                    value
=====================  ==============================================================
``B`` + height (8)     canonical ``{"block", "qc", "receipts"}`` of a committed block
``H`` + block hash     height (8 bytes)
``X`` + tx id          canonical ``{"height", "index", "code", "info", "tx"}``
``N`` + nonce key      tx id: the ``(sender, nonce)`` pair is used
``R`` + height (8)     the results root of the block (32 bytes)
``C`` + height (8)     height (8 bytes) of the first committed block whose header's
                       ``results`` certifies this height's results root
``Mhead``              last committed height (8 bytes)
``Msafety``            canonical ``{"voted", "high_qc"}``: consensus safety state
``P`` + height + hash  canonical ``{"block", "txs"}``: a proposal this node accepted but has
                       not committed yet (so the block of a QC survives a restart of every
                       node), with its transactions' bodies when this node proposed it
                       (``txs`` empty otherwise); pruned once its height is committed
``Et`` + type 0 + pos  an event by type; ``pos`` = height (8) + tx index (4) + event
                       index (2); value canonical ``{"event", "height", "index", "seq", "tx"}``
``Ek`` + type 0 +      empty: the event at ``Et`` + type 0 + pos is indexed under ``key``
key 0 + pos
``A`` + time (8) +     the audit log: an administrative transaction (accepted or refused):
height (8) + index(4)  canonical ``{"actor", "code", "height", "index", "info", "payload",
                       "sender", "time_ms", "tx", "type"}``
=====================  ==============================================================

``commit_records`` returns the records of one committed block, which the caller writes in
the same atomic batch as the state tree's version (``SparseMerkleTree.commit(extra=…)``):
a block, its transactions' index entries and the state they produced survive a crash
together or not at all.
"""

from __future__ import annotations

import json
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from ..codec import canonical, parse
from ..consensus.types import Block, QuorumCertificate
from ..contracts.context import account_of
from ..crypto import sm3
from ..crypto.merkle import EMPTY_ROOT
from ..state.abc import KVStore
from ..tx import Transaction
from .abci import REPLAY, Receipt
from .results import receipt_proof

HEAD = b"Mhead"
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


MAX_QUERY = 1000
LATEST_BUCKETS = 1 << 16  # buckets of 256 heights ``latest_events`` looks at, at most


def _pos(height: int, index: int, seq: int) -> bytes:
    return _h8(height) + index.to_bytes(4, "big") + seq.to_bytes(2, "big")


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

    def block_view(self, height: int) -> bytes | None:
        """Canonical JSON ``{hash, header, height, qc, receipts, tx_ids}`` of a committed block,
        what ``GET /v1/blocks/{height}`` answers. The record is this node's own, written from
        checked parts: it is read with the plain JSON decoder and nothing is re-checked."""
        raw = self.store.get(b"B" + _h8(height))
        if raw is None:
            return None
        rec = json.loads(raw)
        block = rec["block"]
        header = block["header"]
        return canonical({"hash": sm3(canonical(header, check=False)).hex(), "header": header,
                          "height": height, "qc": rec["qc"], "receipts": rec["receipts"],
                          "tx_ids": block["tx_ids"]}, check=False)

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

    def results_root(self, height: int) -> bytes | None:
        """The results root of committed block ``height`` (``SM3("")`` for the genesis)."""
        if height == 0:
            return EMPTY_ROOT
        return self.store.get(b"R" + _h8(height))

    def certified_in(self, height: int) -> int | None:
        """The first committed block whose header's ``results`` covers ``height``."""
        raw = self.store.get(b"C" + _h8(height))
        return None if raw is None else int.from_bytes(raw, "big")

    def receipt_proof(self, tx_id: bytes) -> tuple[dict[str, Any], dict[str, Any]] | None:
        """A committed transaction's receipt (the results-tree leaf object) and its proof
        ``{"height", "index", "size", "path", "root", "certified_in"}``."""
        rec = self.tx(tx_id)
        if rec is None:
            return None
        block = self.block_record(rec.height)
        if block is None:
            return None
        ids = [bytes.fromhex(t) for t in block["block"]["tx_ids"]]
        return receipt_proof(ids, block["receipts"], rec.index, rec.height, self.certified_in(rec.height))

    def safety(self) -> tuple[int, QuorumCertificate] | None:
        raw = self.store.get(SAFETY)
        if raw is None:
            return None
        rec = parse(raw)
        return int(rec["voted"]), QuorumCertificate.from_wire(rec["high_qc"])

    def pending_blocks(self, above: int) -> list[tuple[Block, list[dict[str, Any]]]]:
        """Accepted, uncommitted proposals above height ``above`` with the transaction bodies
        saved with them (for the engine at start)."""
        out: list[tuple[Block, list[dict[str, Any]]]] = []
        self._pending = set()
        for key, raw in self.store.iterate(b"P"):
            self._pending.add(key)
            if int.from_bytes(key[1:9], "big") > above:
                rec = parse(raw)
                if "header" in rec:  # written before bodies were kept with the block
                    out.append((Block.from_wire(rec), []))
                else:
                    out.append((Block.from_wire(rec["block"]), list(rec["txs"])))
        return out

    # ------------------------------------------------------------ writes
    def save_pending(self, block: Block, txs: Sequence[Transaction] = (), *, overwrite: bool = False) -> None:
        """Keep an accepted proposal and the bodies of its transactions (canonical
        ``{"block", "txs"}``) until its height is committed."""
        key = b"P" + _h8(block.height) + block.hash
        if self._pending is None:
            self.pending_blocks(0)
        assert self._pending is not None
        if key not in self._pending or overwrite:
            self._pending.add(key)
            self.store.write({key: b'{"block":' + canonical(block.wire(), check=False) + b',"txs":['
                              + b",".join(t.encode() for t in txs) + b"]}"})

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

    # ------------------------------------------------------------ events and audit
    def events(self, type_: str, key: str | None = None, *, from_height: int = 0,
               to_height: int | None = None, limit: int = 100) -> list[dict[str, Any]]:
        """Committed events of one type (and key), oldest first."""
        by_type = b"Et" + type_.encode() + b"\0"
        prefix = (b"Ek" + type_.encode() + b"\0" + key.encode() + b"\0") if key is not None else by_type
        out: list[dict[str, Any]] = []
        for k, raw in self.store.iterate(prefix):
            pos = k[len(prefix):]
            h = int.from_bytes(pos[:8], "big")
            if h < from_height:
                continue
            if to_height is not None and h > to_height:
                break
            rec = raw if key is None else self.store.get(by_type + pos)
            if rec is None:
                continue
            out.append(dict(parse(rec)))
            if len(out) >= min(limit, MAX_QUERY):
                break
        return out

    def latest_events(self, type_: str, key: str | None = None, n: int = 25) -> list[dict[str, Any]]:
        """The newest ``n`` (at most ``MAX_QUERY``) committed events of one type (and key),
        newest first. The index is walked down from the head in buckets of 256 heights (one
        seek tells an empty bucket), then height by height inside a bucket that holds some,
        so the cost follows the events read, not the chain's length; at most
        ``LATEST_BUCKETS`` buckets (16.7 million heights) are looked at."""
        by_type = b"Et" + type_.encode() + b"\0"
        prefix = (b"Ek" + type_.encode() + b"\0" + key.encode() + b"\0") if key is not None else by_type
        want = max(1, min(n, MAX_QUERY))
        found: list[bytes] = []  # positions, newest first
        top = self.head
        for bucket in range(top >> 8, max((top >> 8) - LATEST_BUCKETS, -1), -1):
            if next(self.store.iterate(prefix + _h8(bucket << 8)[:7]), None) is None:
                continue
            for h in range(min(top, (bucket << 8) | 255), (bucket << 8) - 1, -1):
                rows = [k[len(prefix):] for k, _ in self.store.iterate(prefix + _h8(h))]
                found.extend(reversed(rows[-(want - len(found)):]))
                if len(found) >= want:
                    break
            if len(found) >= want:
                break
        out = []
        for pos in found:
            rec = self.store.get(by_type + pos)
            if rec is not None:
                out.append(dict(parse(rec)))
        return out

    def audit(self, *, since_ms: int = 0, until_ms: int | None = None, actor: str | None = None,
              type_: str | None = None, limit: int = 100) -> list[dict[str, Any]]:
        """Administrative operations in time order, filtered by time range, actor (account id
        or sender key) and transaction type (``gov.*`` style prefixes allowed)."""
        out: list[dict[str, Any]] = []
        for k, raw in self.store.iterate(b"A"):
            t = int.from_bytes(k[1:9], "big")
            if t < since_ms:
                continue
            if until_ms is not None and t > until_ms:
                break
            rec = parse(raw)
            if actor is not None and actor not in (rec["actor"], rec["sender"]):
                continue
            if type_ is not None and not (rec["type"] == type_ or (
                    type_.endswith("*") and rec["type"].startswith(type_[:-1]))):
                continue
            out.append(dict(rec))
            if len(out) >= min(limit, MAX_QUERY):
                break
        return out

    @staticmethod
    def commit_records(block: Block, qc: QuorumCertificate, txs: Sequence[Transaction],
                       receipts: Sequence[Receipt], results_root: bytes,
                       admin_types: Collection[str] = ()) -> Mapping[bytes, bytes]:
        h = block.height
        time_ms = int(block.header.get("time", 0))
        out: dict[bytes, bytes] = {
            # built from checked parts: a validated block, a verified QC, receipts of ints and str
            # canonical({"block", "qc", "receipts"}), the receipts spliced in
            b"B" + _h8(h): (b'{"block":' + canonical(block.wire(), check=False) + b',"qc":'
                            + canonical(qc.wire(), check=False) + b',"receipts":['
                            + b",".join(r.canonical() for r in receipts) + b"]}"),
            b"H" + block.hash: _h8(h),
            b"R" + _h8(h): results_root,
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
            for seq, ev in enumerate(r.events):
                # canonical({"event", "height", "index", "seq", "tx"}) with the event's own
                # canonical bytes spliced in
                rec = b'{"event":%s,"height":%d,"index":%d,"seq":%d,"tx":"%s"}' % (
                    ev.canonical(), h, i, seq, tx.id.hex().encode())
                pos = _pos(h, i, seq)
                t = ev.type.encode() + b"\0"
                out[b"Et" + t + pos] = rec
                for key in sorted(set(ev.keys)):
                    out[b"Ek" + t + key.encode() + b"\0" + pos] = b""
            if tx.type in admin_types:
                out[b"A" + _h8(time_ms) + _h8(h) + i.to_bytes(4, "big")] = canonical({
                    "actor": account_of(tx.sender), "code": r.code, "height": h, "index": i,
                    "info": r.info, "payload": tx.payload, "sender": tx.sender.hex(),
                    "time_ms": time_ms, "tx": tx.id.hex(), "type": tx.type})
        return out
