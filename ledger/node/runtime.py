"""The node runtime: the consensus engine hosted on the peer network, with the mempool,
transaction gossip, block fetching and execution of committed blocks.

One asyncio loop per node process. Messages between nodes are canonical JSON objects with a
``type``: ``proposal``/``vote``/``timeout`` go to the engine; ``txs`` gossips signed
transactions (each node verifies each signature once); ``get_txs``/``txs`` fill in bodies
a proposal names but this node has not seen; ``get_block``/``block`` let the engine fetch
ancestors. A proposal is handed to the engine only once every body it names is known and
verified, so a vote always means "I checked every signature in this block".

A validator (``signer`` given) votes and proposes; a full node (``signer=None``) follows
proposals and their QCs, commits by the same rule and never votes, and trusts the QC for
the signatures of the transactions in certified blocks.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from typing import Any

from ..codec import EncodingError, canonical, parse
from ..consensus.engine import (
    Action,
    Broadcast,
    Config,
    Engine,
    Evidence,
    Fetch,
    Persist,
    SendTo,
    SetTimer,
)
from ..consensus.errors import InvalidMessage
from ..consensus.types import Block, QuorumCertificate, Signer, ValidatorSet
from ..crypto import SM2PrivateKey
from ..crypto.keycache import KeyCache
from ..crypto.merkle import merkle_root
from ..mempool import Mempool
from ..net.transport import PeerNetwork
from ..tx import InvalidTransaction, Transaction
from .app import LedgerApp
from .governance import ChainParams

log = logging.getLogger("rongxin.node")


SYNC_CHECK_S = 0.5  # how often a node compares its height with its peers'
SYNC_GAP = 3  # blocks behind before batched sync starts (live consensus fetches fewer itself)
SYNC_BATCH = 256  # blocks per request
SYNC_MAX_BYTES = 8 * 1024 * 1024
SYNC_RETRY_S = 3.0


@dataclass
class Params:
    """Consensus parameters (changeable at run time by governance, issue 3 item 2)."""

    max_block_txs: int = 2000
    max_block_bytes: int = 4 * 1024 * 1024
    block_interval: float = 0.2
    idle_interval: float = 60.0
    base_timeout: float = 3.0


def chain_params(p: Params, exit_delay: int = 10, missed_turns_limit: int = 100) -> ChainParams:
    """The on-chain (integer) form of the run-time parameters."""
    return ChainParams(block_interval_ms=round(p.block_interval * 1000), idle_interval_ms=round(p.idle_interval * 1000),
                       base_timeout_ms=round(p.base_timeout * 1000), max_block_txs=p.max_block_txs,
                       max_block_bytes=p.max_block_bytes, exit_delay=exit_delay,
                       missed_turns_limit=missed_turns_limit)


def runtime_params(c: ChainParams) -> Params:
    return Params(max_block_txs=c.max_block_txs, max_block_bytes=c.max_block_bytes,
                  block_interval=c.block_interval_ms / 1000, idle_interval=c.idle_interval_ms / 1000,
                  base_timeout=c.base_timeout_ms / 1000)


def _evidence_part(kind: str, msg: dict[str, Any]) -> dict[str, Any]:
    """What a ``node.evidence`` transaction carries of one signed message: a proposal's
    header and signature (the hash covers the header only), or the whole vote."""
    if kind == "double-proposal":
        return {"header": msg["block"]["header"], "sig": msg["sig"]}
    return {k: msg[k] for k in ("block", "by", "height", "sig", "view")}


def check_tx_root(block: Block) -> None:
    """The block hash covers the header only; its ``txs`` root and ``count`` bind the ids."""
    if block.header.get("count") != len(block.tx_ids) or merkle_root(list(block.tx_ids)).hex() != block.header["txs"]:
        raise InvalidMessage(f"block {block.height}: transaction ids do not match the header's txs root")


def txs_message(txs: list[Transaction]) -> bytes:
    """``canonical({"txs": [...], "type": "txs"})`` built from each transaction's own
    canonical bytes, without decoding and re-encoding them (the gossip hot path)."""
    return b'{"txs":[' + b",".join(t.encode() for t in txs) + b'],"type":"txs"}'


class LedgerPayload:
    """The engine's view of blocks' contents: mempool batches in, validation and execution."""

    def __init__(self, node: Node) -> None:
        self.node = node

    def propose(self, parent: Block, height: int) -> tuple[list[bytes], dict[str, Any]]:
        n = self.node
        exclude = n.uncommitted_ids(parent)
        txs = n.mempool.take(n.params.max_block_txs, n.params.max_block_bytes, height, exclude)
        return [t.id for t in txs], {"exec": {"height": n.app.height, "root": n.app.root().hex()}}

    def validate(self, block: Block, parent: Block) -> None:
        n = self.node
        check_tx_root(block)  # the block time is checked by the engine (proposer-based time)
        if len(set(block.tx_ids)) != len(block.tx_ids):
            raise InvalidMessage("a transaction id appears twice in the block")
        if len(block.tx_ids) > n.params.max_block_txs:
            raise InvalidMessage("block has more transactions than the limit")
        missing = [t for t in block.tx_ids if n.body(t) is None]
        if missing:
            raise InvalidMessage(f"{len(missing)} transaction bodies unknown")
        ex = block.header["exec"]
        k = int(ex["height"])
        if k > n.app.height:
            raise InvalidMessage(f"exec height {k} is ahead of this node's committed {n.app.height}")
        if n.app.tree.root(k).hex() != ex["root"]:
            raise InvalidMessage(f"exec root for height {k} differs from this node's state")

    def has_work(self) -> bool:
        return len(self.node.mempool) > 0

    def commit(self, blocks: tuple[tuple[Block, QuorumCertificate], ...]) -> None:
        for block, qc in blocks:
            self.node.execute_committed(block, qc)


class Node:
    def __init__(
        self,
        *,
        node_id: str,
        chain: str,
        app: LedgerApp,
        genesis: Block,
        vset: ValidatorSet,
        signer: Signer | None,
        params: Params | None = None,
        mempool_capacity: int = 100_000,
        tx_key: SM2PrivateKey | None = None,
    ) -> None:
        self.id = node_id
        self.chain = chain
        self.app = app
        self.genesis = genesis
        self.vset = vset
        self.signer = signer
        self.params = params or Params()
        self.keys = KeyCache()
        self.mempool = Mempool(capacity=mempool_capacity, is_committed=app.chain.has_tx,
                               nonce_used=app.chain.nonce_used)
        self.bodies: dict[bytes, Transaction] = {}  # verified bodies not in the mempool any more
        self.net: PeerNetwork | None = None
        # proposals waiting for bodies: (peer, message, missing ids, arrival on the wall clock in ms)
        self.held: dict[bytes, tuple[str, dict[str, Any], set[bytes], int]] = {}
        self.timers: dict[str, asyncio.TimerHandle] = {}
        self.evidence: list[Evidence] = []
        self.on_commit: Callable[[Block], None] | None = None
        self.tx_key = tx_key  # signs this node's own system transactions (evidence)
        self.reported: set[tuple[str, int]] = set()
        self.sync_asked = 0.0
        self.schedule: list[tuple[int, ValidatorSet]] = [(0, vset)]
        self._load_governance()
        self.engine = self._make_engine()

    # ------------------------------------------------------------ set-up
    def _make_engine(self) -> Engine:
        committed: tuple[Block, QuorumCertificate] | None = None
        head = self.app.chain.head
        if head > 0:
            rec = self.app.chain.block(head)
            assert rec is not None
            committed = (rec[0], rec[1])
        safety = self.app.chain.safety()
        voted, high_qc = safety if safety is not None else (0, None)
        cfg = Config(chain=self.chain, base_timeout=self.params.base_timeout,
                     block_interval=self.params.block_interval, idle_interval=self.params.idle_interval,
                     clock=time.monotonic)
        return Engine(config=cfg, signer=self.signer, vset_at=self.vset_at, genesis=self.genesis,
                      payload=LedgerPayload(self), committed=committed, highest_voted_view=voted,
                      high_qc=high_qc, keys=self.keys, known_blocks=self.app.chain.pending_blocks(head))

    # ------------------------------------------------------------ governance
    def vset_at(self, height: int) -> ValidatorSet:
        """The validator set that votes on block ``height`` (from the committed schedule)."""
        gov = self.app.governance
        if gov is None:
            return self.vset
        return gov.vset_in(self.schedule, height)

    def _load_governance(self) -> None:
        gov = self.app.governance
        if gov is None:
            return
        self.schedule = gov.schedule(self.app.read)
        self.vset = gov.vset_in(self.schedule, self.app.height + 1)
        new = runtime_params(gov.params(self.app.read))
        if new != self.params:
            log.info("consensus parameters now %s", new)
            self.params = new
        if hasattr(self, "engine"):
            self.engine.cfg.block_interval = new.block_interval
            self.engine.cfg.idle_interval = new.idle_interval
            self.engine.cfg.base_timeout = new.base_timeout

    def _apply_membership(self) -> None:
        """Link with admitted nodes, cut revoked ones (after a block changed either)."""
        gov = self.app.governance
        if gov is None or self.net is None:
            return
        for peer_id in list(self.net.peers):
            rec = gov.revoked(self.app.read, peer_id)
            if rec is not None:
                self.net.drop_peer(peer_id, f"revoked at height {rec['height']}: {rec['reason']}")
        for _h, vs in self.schedule:
            for v in vs.validators:
                m = gov.member(self.app.read, v.id)
                if m is not None and m["status"] != "revoked" and v.id not in self.net.peers:
                    self.net.add_peer(v.id, (str(m["address"][0]), int(m["address"][1])))

    def member(self, node_id: str) -> dict[str, Any] | None:
        """A node admitted on chain (``node.certify``), unless revoked."""
        gov = self.app.governance
        m = gov.member(self.app.read, node_id) if gov is not None else None
        return m if m is not None and m["status"] != "revoked" else None

    def is_revoked(self, node_id: str) -> bool:
        gov = self.app.governance
        return gov is not None and gov.revoked(self.app.read, node_id) is not None

    def attach(self, net: PeerNetwork) -> None:
        self.net = net

    def start(self) -> None:
        self._apply_membership()  # nodes admitted or revoked on chain before a restart
        with self._grouped():
            self._apply(self.engine.start())
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return
        self.timers["sync"] = loop.call_later(SYNC_CHECK_S, self._sync_tick)

    # ------------------------------------------------------------ batched sync
    def _sync_tick(self) -> None:
        loop = asyncio.get_running_loop()
        self.timers["sync"] = loop.call_later(SYNC_CHECK_S, self._sync_tick)
        self._maybe_sync()

    def _peers_ahead(self) -> int:
        """The highest committed height an online peer reports in its heartbeats."""
        if self.net is None:
            return 0
        online = self.net.online()
        heights = [p.status.get("height") for pid, p in self.net.peers.items()
                   if pid in online and isinstance(p.status, dict)]
        return max((h for h in heights if isinstance(h, int)), default=0)

    def _maybe_sync(self) -> None:
        """Behind the peers (as their heartbeats say) by more than a few blocks: ask the one
        furthest ahead for a batch of its committed chain."""
        if self.net is None:
            return
        best, best_height = None, self.engine.committed_height + SYNC_GAP
        for pid, peer in self.net.peers.items():
            h = peer.status.get("height") if isinstance(peer.status, dict) else None
            if isinstance(h, int) and h > best_height and pid in self.net.online():
                best, best_height = pid, h
        now = time.monotonic()
        if best is None or now - self.sync_asked < SYNC_RETRY_S:
            return
        self.sync_asked = now
        self.net.send(best, canonical({"type": "get_chain", "from": self.engine.committed_height + 1,
                                       "count": SYNC_BATCH}))

    def _on_get_chain(self, peer: str, msg: dict[str, Any]) -> None:
        start, count = msg.get("from"), msg.get("count")
        if self.net is None or not isinstance(start, int) or not isinstance(count, int) or start < 1:
            raise InvalidMessage("get_chain needs integer from >= 1 and count")
        items: list[bytes] = []
        size = 0
        for h in range(start, min(start + min(count, SYNC_BATCH), self.app.chain.head + 1)):
            rec = self.app.chain.block_record(h)
            if rec is None:
                break
            bodies = []
            for t in rec["block"]["tx_ids"]:
                txr = self.app.chain.tx(bytes.fromhex(t))
                if txr is not None:
                    bodies.append(txr.tx)
            item = canonical({"block": rec["block"], "qc": rec["qc"], "txs": bodies}, check=False)
            items.append(item)
            size += len(item)
            if size > SYNC_MAX_BYTES:
                break
        self.net.send(peer, b'{"items":[' + b",".join(items) + b'],"type":"chain"}')

    def _on_chain(self, peer: str, msg: dict[str, Any]) -> None:
        items = msg.get("items")
        if not isinstance(items, list):
            raise InvalidMessage("chain items must be a list")
        batch: list[tuple[Block, QuorumCertificate]] = []
        for item in items:
            block = Block.from_wire(item["block"])
            check_tx_root(block)
            qc = QuorumCertificate.from_wire(item["qc"])
            wanted = set(block.tx_ids)
            for raw in item["txs"]:
                tx = Transaction.decode(raw)
                if tx.id not in wanted or self.body(tx.id) is not None:
                    continue
                if self.signer is not None:
                    tx.verify_signature(self.keys)  # a validator checks every signature itself
                self.bodies[tx.id] = tx
            if any(self.body(t) is None for t in block.tx_ids):
                log.warning("sync: %s sent block %d without all its transactions", peer, block.height)
                break
            batch.append((block, qc))
        before = self.engine.committed_height
        self._apply(self.engine.on_chain(batch))
        after = self.engine.committed_height
        if after > before:
            log.info("synced blocks %d..%d from %s", before + 1, after, peer)
            self.sync_asked = 0.0
            self._maybe_sync()  # next batch at once while behind

    def _grouped(self) -> AbstractContextManager[None]:
        """Group the store's writes of one event (a message, a timer) into one durable commit
        when the store supports it (``GroupedStore``)."""
        group = getattr(self.app.store, "group", None)
        return group() if group is not None else nullcontext()

    def _durable(self) -> None:
        flush = getattr(self.app.store, "flush", None)
        if flush is not None:
            flush()

    def stop(self) -> None:
        for handle in self.timers.values():
            handle.cancel()
        self.timers.clear()

    # ------------------------------------------------------------ transactions
    def body(self, tx_id: bytes) -> Transaction | None:
        return self.mempool.get(tx_id) or self.bodies.get(tx_id)

    def submit(self, txs: list[Transaction], gossip: bool = True) -> list[tuple[bytes, str | None]]:
        """Verify and admit transactions; returns (id, refusal reason or None) for each."""
        out: list[tuple[bytes, str | None]] = []
        admitted = []
        was_idle = len(self.mempool) == 0
        height = self.app.height + 1
        for tx in txs:
            try:
                if self.app.chain.has_tx(tx.id):
                    raise InvalidTransaction("already committed")
                tx.check_for_chain(self.chain, height)
                if tx.id not in self.mempool:
                    tx.verify_signature(self.keys)
                    self.mempool.add(tx, height)
                    admitted.append(tx)
                out.append((tx.id, None))
            except InvalidTransaction as exc:
                out.append((tx.id, str(exc)))
        if admitted and gossip and self.net is not None:
            self.net.broadcast(txs_message(admitted))
        if admitted:
            with self._grouped():
                if was_idle:  # an idle leader proposes now, validators arm their view timers
                    self._apply(self.engine.on_work())
                self._release_held()
        return out

    def uncommitted_ids(self, parent: Block) -> set[bytes]:
        ids: set[bytes] = set()
        b: Block | None = parent
        while b is not None and b.height > self.engine.committed_height:
            ids.update(b.tx_ids)
            b = self.engine.blocks.get(b.parent)
        return ids

    # ------------------------------------------------------------ execution
    def execute_committed(self, block: Block, qc: QuorumCertificate) -> None:
        txs = []
        for tx_id in block.tx_ids:
            tx = self.body(tx_id)
            if tx is None:  # cannot happen for a block this node validated; a bug if it does
                raise RuntimeError(f"body of committed transaction {tx_id.hex()} is missing")
            txs.append(tx)
        _root, receipts = self.app.execute(block.height, txs, block)
        self.app.commit(block, qc, txs, receipts)
        self.mempool.remove(block.tx_ids)
        for tx_id in block.tx_ids:
            self.bodies.pop(tx_id, None)
        self.app.chain.prune_pending(block.height)
        if self.app.sys_changed:
            self._load_governance()
            self._apply_membership()
        else:
            self.vset = self.vset_at(block.height + 1)
        if self.on_commit is not None:
            self.on_commit(block)

    # ------------------------------------------------------------ actions
    def _apply(self, actions: list[Action]) -> None:
        for action in actions:
            if isinstance(action, Persist):
                # on disk before the vote or timeout it protects is handed to the network
                self.app.chain.save_safety(action.highest_voted_view, action.high_qc)
                self._durable()
            elif isinstance(action, Broadcast):
                if action.message.get("type") == "proposal":  # this node's own block
                    self.app.chain.save_pending(Block.from_wire(action.message["block"]))
                if self.net is not None:
                    self.net.broadcast(canonical(action.message))
            elif isinstance(action, SendTo):
                if self.net is not None:
                    self.net.send(action.target, canonical(action.message))
            elif isinstance(action, SetTimer):
                self._set_timer(action)
            elif isinstance(action, Fetch):
                if self._peers_ahead() > self.engine.committed_height + SYNC_GAP:
                    self._maybe_sync()  # far behind: batches of the committed chain, not block by block
                elif self.net is not None:
                    self.net.send(action.peer, canonical({"type": "get_block", "hash": action.block.hex()}))
            elif isinstance(action, Evidence):
                log.warning("equivocation by %s in view %d (%s)", action.offender, action.view, action.kind)
                self.evidence.append(action)
                self._report(action)

    def _report(self, ev: Evidence) -> None:
        """Turn evidence of equivocation into a ``node.evidence`` transaction (anyone may
        submit one; the chain verifies it and evicts the offender)."""
        if self.tx_key is None or (ev.offender, ev.view) in self.reported or self.app.governance is None:
            return
        self.reported.add((ev.offender, ev.view))
        try:
            tx = Transaction.build(self.tx_key, chain=self.chain, type="node.evidence",
                                   payload={"kind": ev.kind, "a": _evidence_part(ev.kind, ev.first),
                                            "b": _evidence_part(ev.kind, ev.second)},
                                   expiry=self.app.height + 1000)
        except (InvalidTransaction, EncodingError) as exc:
            log.warning("cannot report evidence against %s: %s", ev.offender, exc)
            return
        result = self.submit([tx])
        log.warning("reported %s by %s in view %d as transaction %s (%s)", ev.kind, ev.offender, ev.view,
                    tx.id_hex, result[0][1] or "accepted")

    def _set_timer(self, action: SetTimer) -> None:
        old = self.timers.pop(action.kind, None)
        if old is not None:
            old.cancel()
        loop = asyncio.get_running_loop()
        self.timers[action.kind] = loop.call_later(action.delay, self._on_timer, action.kind, action.view)

    def _on_timer(self, kind: str, view: int) -> None:
        with self._grouped():
            self._apply(self.engine.on_timer(kind, view))

    # ------------------------------------------------------------ network messages
    def on_net(self, peer: str, payload: bytes) -> None:
        with self._grouped():
            self._on_net(peer, payload)

    def _on_net(self, peer: str, payload: bytes) -> None:
        try:
            msg = parse(payload)
        except EncodingError as exc:
            log.warning("malformed message from %s: %s", peer, exc)
            return
        if not isinstance(msg, dict):
            log.warning("message from %s is not an object", peer)
            return
        kind = msg.get("type")
        try:
            if kind == "proposal":
                self._on_proposal(peer, msg)
            elif kind in ("vote", "timeout"):
                self._apply(self.engine.on_message(peer, msg))
            elif kind == "txs":
                self._on_txs(peer, msg)
            elif kind == "get_txs":
                self._on_get_txs(peer, msg)
            elif kind == "get_block":
                self._on_get_block(peer, msg)
            elif kind == "get_chain":
                self._on_get_chain(peer, msg)
            elif kind == "chain":
                self._on_chain(peer, msg)
            elif kind == "block":
                fetched = Block.from_wire(msg.get("block"))
                check_tx_root(fetched)
                self._apply(self.engine.on_block(fetched))
            else:
                log.warning("unknown message type %r from %s", kind, peer)
        except (InvalidMessage, InvalidTransaction, KeyError, TypeError, ValueError) as exc:
            log.warning("ignored %s from %s: %s", kind, peer, exc)

    def _on_proposal(self, peer: str, msg: dict[str, Any]) -> None:
        ids = msg["block"]["tx_ids"]
        if not isinstance(ids, list):
            raise InvalidMessage("tx_ids must be a list")
        if self.signer is None:  # validators check it in validate(); a full node never validates
            check_tx_root(Block.from_wire(msg["block"]))
        missing = {bytes.fromhex(t) for t in ids if self.body(bytes.fromhex(t)) is None}
        if missing:
            block_hash = Block.from_wire(msg["block"]).hash
            self.held[block_hash] = (peer, msg, missing, self.engine.cfg.wall())
            if self.net is not None:
                self.net.send(peer, canonical({"type": "get_txs", "ids": [m.hex() for m in missing]}))
            return
        self._accept_proposal(peer, msg)

    def _accept_proposal(self, peer: str, msg: dict[str, Any], received_ms: int | None = None) -> None:
        """Hand a proposal (bodies known) to the engine; a block it keeps is persisted in the
        same durable commit as the vote's safety record, before the vote leaves: a QC's block
        then survives even a restart of every node."""
        actions = self.engine.on_message(peer, msg, received_ms)
        try:
            block = Block.from_wire(msg["block"])
        except (InvalidMessage, KeyError, TypeError, ValueError):
            block = None
        if block is not None and block.hash in self.engine.blocks and block.height > self.engine.committed_height:
            self.app.chain.save_pending(block)
        self._apply(actions)

    def _on_txs(self, peer: str, msg: dict[str, Any]) -> None:
        items = msg.get("txs")
        if not isinstance(items, list):
            raise InvalidMessage("txs must be a list")
        txs = [Transaction.decode(t) for t in items if isinstance(t, dict)]
        if self.signer is None:
            # a full node relies on the QC for signatures; it only keeps the bodies
            for tx in txs:
                self.bodies.setdefault(tx.id, tx)
            self._release_held()
            return
        for (tx_id, reason), tx in zip(self.submit(txs, gossip=False), txs, strict=True):
            if reason is not None and reason not in ("already committed",) and tx_id not in self.mempool:
                # still keep a verified body a held proposal needs (e.g. refused as a replay)
                if any(tx_id in missing for _, _, missing, _ in self.held.values()):
                    try:
                        tx.verify_signature(self.keys)
                        self.bodies[tx_id] = tx
                    except InvalidTransaction:
                        pass
        self._release_held()

    def _release_held(self) -> None:
        for block_hash, (peer, msg, missing, received_ms) in list(self.held.items()):
            missing -= {t for t in missing if self.body(t) is not None}
            if not missing:
                del self.held[block_hash]
                self._accept_proposal(peer, msg, received_ms)

    def _on_get_txs(self, peer: str, msg: dict[str, Any]) -> None:
        ids = msg.get("ids")
        if not isinstance(ids, list) or self.net is None:
            return
        found = [self.body(bytes.fromhex(t)) for t in ids[:10_000] if isinstance(t, str)]
        self.net.send(peer, txs_message([t for t in found if t is not None]))

    def _on_get_block(self, peer: str, msg: dict[str, Any]) -> None:
        if self.net is None:
            return
        h = bytes.fromhex(str(msg.get("hash", "")))
        block = self.engine.blocks.get(h)
        if block is None:
            height = self.app.chain.height_of(h)
            rec = self.app.chain.block(height) if height is not None else None
            block = rec[0] if rec is not None else None
        if block is not None:
            # the bodies first (one link keeps order), so the asker can execute the block
            known = []
            for t in block.tx_ids:
                body = self.body(t)
                if body is not None:
                    known.append(body.wire())
                else:
                    rec_tx = self.app.chain.tx(t)
                    if rec_tx is not None:
                        known.append(rec_tx.tx)
            if known:
                self.net.send(peer, canonical({"type": "txs", "txs": known}))
            self.net.send(peer, canonical({"type": "block", "block": block.wire()}))

    # ------------------------------------------------------------ status
    def status(self) -> dict[str, Any]:
        head = self.app.chain.head
        rec = self.app.chain.block_record(head) if head else None
        return {
            "node_id": self.id,
            "height": head,
            "head_hash": Block.from_wire(rec["block"]).hash.hex() if rec else self.genesis.hash.hex(),
            "view": self.engine.view,
            "mempool": len(self.mempool),
            "validators": [v.id for v in self.vset.validators],
        }
