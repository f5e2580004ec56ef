"""The node runtime: the consensus engine hosted on the peer network, with the mempool and
the application it commits to.

One asyncio loop per node process. The engine talks to the application only through the
``AppPayload`` adapter (payload.py) over the ``Application`` interface (abci.py). Messages
between nodes are checked by the validator table of ``messages`` and dispatched to the engine
(``vote``, ``timeout``), to ``Gossip`` (proposals and the bodies behind them, fetched blocks)
or to ``ChainSync`` (batched sync).

A validator (``signer`` given) votes and proposes; a full node (``signer=None``) follows
proposals and their QCs, commits by the same rule and never votes, and trusts the QC for
the signatures of the transactions in certified blocks.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Sequence
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
from ..governance import ChainParams
from ..mempool import Mempool
from ..tx import InvalidTransaction, Transaction
from .abci import BlockResult
from .app import LedgerApp
from .gossip import Gossip
from .messages import txs_message, validate
from .payload import AppPayload
from .sync import SYNC_CHECK_S, ChainSync

log = logging.getLogger("rongxin.node")


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
        if app.chain_id is None:
            app.chain_id = chain
        self.genesis = genesis
        self._head_memo: tuple[int, str] | None = None  # (height, its block's hash) for status()
        self.vset = vset
        self.signer = signer
        self.params = params or Params()
        self.keys = KeyCache()
        # no store look-ups in the mempool: ``app.check_tx``, which runs just before every
        # ``mempool.add`` (``submit``), has asked the chain store about replays already
        self.mempool = Mempool(capacity=mempool_capacity)
        self.bodies: dict[bytes, Transaction] = {}  # verified bodies not in the mempool any more
        self.net: Any = None  # ledger.net.transport.PeerNetwork once attached
        self.timers: dict[str, asyncio.TimerHandle] = {}
        self.evidence: list[Evidence] = []
        self.on_commit: Callable[[Block], None] | None = None
        self.tx_key = tx_key  # signs this node's own system transactions (evidence)
        self.genesis_attestation: dict[str, str] | None = None  # the root's (genesis.attestation.json)
        self.reported: set[tuple[str, int]] = set()
        self.schedule: list[tuple[int, ValidatorSet]] = [(0, vset)]
        self.time_bounds = (500, 2000)  # (time_precision_ms, message_delay_ms) from the chain
        self.gossip = Gossip(self)
        self.sync = ChainSync(self)
        self.handlers: dict[str, Callable[[str, dict[str, Any]], None]] = {
            "proposal": self.gossip.on_proposal,
            "vote": self._to_engine,
            "timeout": self._to_engine,
            "txs": self.gossip.on_txs,
            "get_txs": self.gossip.on_get_txs,
            "get_block": self.gossip.on_get_block,
            "block": self.gossip.on_block,
            "get_chain": self.sync.on_get_chain,
            "chain": self.sync.on_chain,
        }
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
        known: list[Block] = []
        for block, bodies in self.app.chain.pending_blocks(head):
            known.append(block)
            for raw in bodies:  # verified before they were saved with the block
                tx = Transaction.decode(raw)
                self.bodies.setdefault(tx.id, tx)
        cfg = Config(chain=self.chain, base_timeout=self.params.base_timeout,
                     block_interval=self.params.block_interval, idle_interval=self.params.idle_interval,
                     time_precision=self.time_bounds[0], message_delay=self.time_bounds[1], clock=time.monotonic)
        payload = AppPayload(self.app, _NodeTxs(self), self._committed)
        return Engine(config=cfg, signer=self.signer, vset_at=self.vset_at, genesis=self.genesis,
                      payload=payload, committed=committed, highest_voted_view=voted,
                      high_qc=high_qc, keys=self.keys, known_blocks=known)

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
        chain = gov.params(self.app.read)
        self.time_bounds = (chain.time_precision_ms, chain.message_delay_ms)
        new = runtime_params(chain)
        if new != self.params:
            log.info("consensus parameters now %s", new)
            self.params = new
        if hasattr(self, "engine"):
            self.engine.cfg.block_interval = new.block_interval
            self.engine.cfg.idle_interval = new.idle_interval
            self.engine.cfg.base_timeout = new.base_timeout
            self.engine.cfg.time_precision, self.engine.cfg.message_delay = self.time_bounds

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

    # ------------------------------------------------------------ life cycle
    def attach(self, net: Any) -> None:
        self.net = net

    def start(self) -> None:
        self._apply_membership()  # nodes admitted or revoked on chain before a restart
        with self._grouped():
            self.apply(self.engine.start())
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return
        self.timers["sync"] = loop.call_later(SYNC_CHECK_S, self._sync_tick)

    def stop(self) -> None:
        for handle in self.timers.values():
            handle.cancel()
        self.timers.clear()

    def _sync_tick(self) -> None:
        loop = asyncio.get_running_loop()
        self.timers["sync"] = loop.call_later(SYNC_CHECK_S, self._sync_tick)
        self.sync.maybe_sync()

    def _grouped(self) -> AbstractContextManager[None]:
        """Group the store's writes of one event (a message, a timer) into one durable commit
        when the store supports it (``GroupedStore``)."""
        group = getattr(self.app.store, "group", None)
        return group() if group is not None else nullcontext()

    def _durable(self) -> None:
        flush = getattr(self.app.store, "flush", None)
        if flush is not None:
            flush()

    # ------------------------------------------------------------ transactions
    def body(self, tx_id: bytes) -> Transaction | None:
        return self.mempool.get(tx_id) or self.bodies.get(tx_id)

    def submit(self, txs: list[Transaction], gossip: bool = True,
               verified: bool = False) -> list[tuple[bytes, str | None]]:
        """Verify and admit transactions; returns (id, refusal reason or None) for each.
        ``verified``: their signatures were already checked (by ``intake.TxIntake``'s workers)."""
        out: list[tuple[bytes, str | None]] = []
        admitted = []
        was_idle = len(self.mempool) == 0
        height = self.app.height + 1
        for tx in txs:
            try:
                if tx.id not in self.mempool:
                    check = self.app.check_tx(tx)
                    if not check.ok:
                        raise InvalidTransaction(check.reason)
                    if not verified:
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
                if was_idle:  # an idle leader proposes now, validators shorten their view timers
                    self.apply(self.engine.on_work())
                self.gossip.release_held()
        return out

    def uncommitted_ids(self, parent: Block) -> set[bytes]:
        ids: set[bytes] = set()
        b: Block | None = parent
        while b is not None and b.height > self.engine.committed_height:
            ids.update(b.tx_ids)
            b = self.engine.blocks.get(b.parent)
        return ids

    def save_pending(self, block: Block) -> None:
        """Keep an accepted, uncommitted block (durable with the vote it leads to)."""
        self.app.chain.save_pending(block)

    def _keep_bodies(self, block: Block) -> None:
        """The proposer also keeps its block's transaction bodies, written just after the
        proposal has gone out (an fsync of ~700 KB before it would delay every round). After a
        restart a node lacking bodies asks its peers (``BodiesMissing``); if every node
        restarted, the proposer still holds them."""
        if block.height <= self.engine.committed_height:
            return
        bodies = [self.body(t) for t in block.tx_ids]
        with self._grouped():
            self.app.chain.save_pending(block, [t for t in bodies if t is not None], overwrite=True)

    def request_bodies(self, tx_ids: Sequence[bytes]) -> None:
        if self.net is not None and tx_ids:
            self.net.broadcast(canonical({"type": "get_txs", "ids": [t.hex() for t in tx_ids[:10_000]]}))

    def deferred_wants(self, tx_id: bytes) -> bool:
        block = self.engine.deferred
        return block is not None and tx_id in block.tx_ids

    def bodies_arrived(self) -> None:
        if self.engine.deferred is not None:
            self.apply(self.engine.retry_commit())

    # ------------------------------------------------------------ execution
    def _committed(self, block: Block, qc: QuorumCertificate, txs: Sequence[Transaction],
                   result: BlockResult) -> None:
        """After the application committed ``block``: forget its transactions, follow what
        governance changed."""
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
    def apply(self, actions: list[Action]) -> None:
        for action in actions:
            if isinstance(action, Persist):
                # on disk before the vote or timeout it protects is handed to the network
                self.app.chain.save_safety(action.highest_voted_view, action.high_qc)
                self._durable()
            elif isinstance(action, Broadcast):
                if action.message.get("type") == "proposal":  # this node's own block
                    own = Block.from_wire(action.message["block"])
                    self.save_pending(own)
                    try:
                        asyncio.get_running_loop().call_soon(self._keep_bodies, own)
                    except RuntimeError:  # no event loop (unit tests): at once
                        self._keep_bodies(own)
                if self.net is not None:
                    self.net.broadcast(canonical(action.message))
            elif isinstance(action, SendTo):
                if self.net is not None:
                    self.net.send(action.target, canonical(action.message))
            elif isinstance(action, SetTimer):
                self._set_timer(action)
            elif isinstance(action, Fetch):
                if self.sync.far_behind():
                    self.sync.maybe_sync()  # far behind: batches of the committed chain, not block by block
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
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:  # a node driven without an event loop (unit tests) has no timers
            return
        self.timers[action.kind] = loop.call_later(action.delay, self._on_timer, action.kind, action.view)

    def _on_timer(self, kind: str, view: int) -> None:
        with self._grouped():
            self.apply(self.engine.on_timer(kind, view))

    # ------------------------------------------------------------ network messages
    def on_net(self, peer: str, payload: bytes) -> None:
        with self._grouped():
            self._on_net(peer, payload)

    def _on_net(self, peer: str, payload: bytes) -> None:
        kind = "message"
        try:
            msg = parse(payload)
            if not isinstance(msg, dict):
                log.warning("message from %s is not an object", peer)
                return
            if msg.get("type") in self.handlers:  # a known type (never a peer's raw text in the log)
                kind = str(msg["type"])
            kind = validate(msg)
            self.handlers[kind](peer, msg)
        except EncodingError as exc:
            log.warning("malformed message from %s: %s", peer, exc)
        except (InvalidMessage, InvalidTransaction, KeyError, TypeError, ValueError) as exc:
            log.warning("ignored %s from %s: %s", kind, peer, exc)

    def _to_engine(self, peer: str, msg: dict[str, Any]) -> None:
        self.apply(self.engine.on_message(peer, msg))

    # ------------------------------------------------------------ status
    def status(self) -> dict[str, Any]:
        head = self.app.chain.head
        return {
            "node_id": self.id,
            "genesis": self.genesis.hash.hex(),
            "height": head,
            "head_hash": self._head_hash(head),
            "view": self.engine.view,
            "mempool": len(self.mempool),
            "validators": [v.id for v in self.vset.validators],
        }

    def _head_hash(self, head: int) -> str:
        """The committed block's hash at ``head``, parsed once per height (a committed block
        never changes; ``/v1/status`` is the most frequent read)."""
        memo = self._head_memo
        if memo is not None and memo[0] == head:
            return memo[1]
        rec = self.app.chain.block_record(head) if head else None
        value = Block.from_wire(rec["block"]).hash.hex() if rec else self.genesis.hash.hex()
        self._head_memo = (head, value)
        return value


class _NodeTxs:
    """The node as the payload adapter's ``TxSource``."""

    def __init__(self, node: Node) -> None:
        self.node = node

    def candidates(self, parent: Block, height: int) -> list[Transaction]:
        n = self.node
        return n.mempool.take(n.params.max_block_txs, n.params.max_block_bytes, height, n.uncommitted_ids(parent))

    def body(self, tx_id: bytes) -> Transaction | None:
        return self.node.body(tx_id)

    def pending(self) -> bool:
        return len(self.node.mempool) > 0

    def max_block_txs(self) -> int:
        return self.node.params.max_block_txs

    def request_bodies(self, tx_ids: Sequence[bytes]) -> None:
        self.node.request_bodies(tx_ids)
