"""A seeded, virtual-time network for driving consensus engines exactly.

Messages get random delays from one ``random.Random(seed)``; a test may drop links
(partitions), crash nodes (they stop receiving and acting; a restarted node keeps only what
it persisted) and replace a node's behaviour (a Byzantine leader). Every node has its own
wall clock, a function of the true (virtual) time that may be skewed, frozen or lying.
The real network and processes are tested elsewhere; this harness pins the protocol's
safety and liveness.
"""

from __future__ import annotations

import dataclasses
import heapq
import itertools
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ledger.consensus.engine import (
    Action,
    Broadcast,
    Committed,
    Config,
    Engine,
    Evidence,
    Fetch,
    Persist,
    SendTo,
    SetTimer,
    genesis_block,
)
from ledger.consensus.types import Block, QuorumCertificate, Signer, Validator, ValidatorSet
from ledger.crypto import SM2PrivateKey, sm3
from ledger.crypto.keycache import KeyCache

CHAIN = "sim-chain"
EPOCH_MS = 1_700_000_000_000  # the wall clocks' reading at virtual time 0
_KEYS: list[SM2PrivateKey] = []


def keys(n: int) -> list[SM2PrivateKey]:
    while len(_KEYS) < n:
        _KEYS.append(SM2PrivateKey.generate())
    return _KEYS[:n]


class CountingPayload:
    """Proposes a few synthetic transaction ids per block; checks nothing but their form."""

    def __init__(self, node: str) -> None:
        self.node = node
        self.counter = itertools.count()

    def propose(self, parent: Block, height: int) -> tuple[list[bytes], dict[str, Any]]:
        ids = [sm3(f"{self.node}-{next(self.counter)}".encode()) for _ in range(3)]
        return ids, {"exec": {"height": 0, "root": bytes(32).hex()}}

    def validate(self, block: Block, parent: Block) -> None:
        return None

    def has_work(self) -> bool:
        return True

    def commit(self, blocks: tuple[tuple[Block, QuorumCertificate], ...]) -> None:
        return None


class WorkPayload:
    """Proposes the transaction ids submitted to the network (``Network.submit``) and heads
    its blocks with ``exec``: the height it last executed, like the node's application."""

    def __init__(self, node: str) -> None:
        self.node = node
        self.pending: dict[bytes, None] = {}  # insertion-ordered set
        self.executed = 0
        self.engine: Engine | None = None

    def propose(self, parent: Block, height: int) -> tuple[list[bytes], dict[str, Any]]:
        assert self.engine is not None
        taken: set[bytes] = set()
        b: Block | None = parent
        while b is not None and b.height > self.engine.committed_height:
            taken.update(b.tx_ids)
            b = self.engine.blocks.get(b.parent)
        ids = [t for t in self.pending if t not in taken][:50]
        return ids, {"exec": {"height": self.executed, "root": sm3(str(self.executed).encode()).hex()}}

    def validate(self, block: Block, parent: Block) -> None:
        return None

    def has_work(self) -> bool:
        return bool(self.pending)

    def commit(self, blocks: tuple[tuple[Block, QuorumCertificate], ...]) -> None:
        for block, _qc in blocks:
            for t in block.tx_ids:
                self.pending.pop(t, None)
            self.executed = block.height


@dataclass
class Node:
    id: str
    engine: Engine
    signer: Signer
    alive: bool = True
    committed: list[tuple[Block, QuorumCertificate]] = field(default_factory=list)
    persisted: tuple[int, QuorumCertificate] | None = None
    evidence: list[Evidence] = field(default_factory=list)
    timer_gen: dict[str, int] = field(default_factory=dict)


class Network:
    def __init__(self, n: int, seed: int, *, min_delay: float = 0.005, max_delay: float = 0.05,
                 base_timeout: float = 1.0, work: bool = False, clocks: dict[str, Callable[[float], float]] | None = None,
                 engines: dict[str, type[Engine]] | None = None, **config: Any) -> None:
        self.rng = random.Random(seed)
        self.now = 0.0
        self.min_delay, self.max_delay = min_delay, max_delay
        self.queue: list[tuple[float, int, Callable[[], None]]] = []
        self.seq = itertools.count()
        ks = keys(n)
        self.vset = ValidatorSet(tuple(Validator(f"v{i}", k.public_key().point, f"org{i}", "consensus")
                                       for i, k in enumerate(ks)))
        self.genesis = genesis_block(CHAIN, self.vset, bytes(32))
        settings: dict[str, Any] = {"block_interval": 0.02, "idle_interval": 0.05, **config}
        self.config = Config(chain=CHAIN, base_timeout=base_timeout, **settings)
        self.work = work  # WorkPayload (transactions from submit) instead of CountingPayload
        self.clocks = clocks or {}  # node id -> its clock (seconds) as a function of true time
        self.engines = engines or {}  # node id -> engine class (a Byzantine node's)
        self.proposed_at: dict[bytes, float] = {}  # block hash -> true time of its first proposal
        self.justified_at: dict[bytes, float] = {}  # block hash -> first proposal carrying its QC
        self.committed_at: dict[tuple[str, int], float] = {}  # (node id, height) -> true time
        self.key_cache = KeyCache()
        self.nodes: dict[str, Node] = {}
        self.blocked: set[tuple[str, str]] = set()
        self.broadcasts: list[tuple[str, dict[str, Any]]] = []
        self.intercept: dict[str, Callable[[Node, Action], list[Action] | None]] = {}
        for i, k in enumerate(ks):
            signer = Signer(f"v{i}", k)
            self.nodes[signer.id] = Node(signer.id, self._engine(signer), signer)

    def wall_ms(self, node_id: str) -> int:
        """The reading of ``node_id``'s wall clock now (ms)."""
        clock = self.clocks.get(node_id)
        return EPOCH_MS + round((clock(self.now) if clock else self.now) * 1000)

    def _engine(self, signer: Signer, **kw: Any) -> Engine:
        cfg = dataclasses.replace(self.config, wall=lambda nid=signer.id: self.wall_ms(nid))
        payload: CountingPayload | WorkPayload = WorkPayload(signer.id) if self.work else CountingPayload(signer.id)
        engine = self.engines.get(signer.id, Engine)(config=cfg, signer=signer, vset_at=lambda h: self.vset,
                                                     genesis=self.genesis, payload=payload, keys=self.key_cache, **kw)
        if isinstance(payload, WorkPayload):
            payload.engine = engine
        return engine

    def submit(self, count: int, tag: str = "tx", spread: float = 0.01) -> list[bytes]:
        """``count`` new transaction ids gossiped to every live node within ``spread`` seconds;
        a node whose payload had nothing pending calls ``on_work``."""
        ids = [sm3(f"{tag}-{self.now}-{i}".encode()) for i in range(count)]

        def arrive(node_id: str) -> None:
            node = self.nodes[node_id]
            payload = node.engine.payload
            if not node.alive or not isinstance(payload, WorkPayload):
                return
            was_idle = not payload.pending
            done = {t for b, _ in node.committed for t in b.tx_ids}
            payload.pending.update(dict.fromkeys(t for t in ids if t not in done))
            if was_idle and payload.pending:
                self.apply(node, node.engine.on_work())

        for node_id in self.nodes:
            self.at(self.rng.uniform(0, spread), lambda nid=node_id: arrive(nid))
        return ids

    # ------------------------------------------------------------ scheduling
    def at(self, delay: float, fn: Callable[[], None]) -> None:
        heapq.heappush(self.queue, (self.now + delay, next(self.seq), fn))

    def start(self) -> None:
        for node in self.nodes.values():
            self.apply(node, node.engine.start())

    def run(self, until: float) -> None:
        while self.queue and self.queue[0][0] <= until:
            t, _, fn = heapq.heappop(self.queue)
            self.now = t
            fn()
        self.now = until

    def partition(self, side_a: set[str], side_b: set[str]) -> None:
        for a in side_a:
            for b in side_b:
                self.blocked |= {(a, b), (b, a)}

    def heal(self) -> None:
        self.blocked.clear()

    def crash(self, node_id: str) -> None:
        self.nodes[node_id].alive = False

    def restart(self, node_id: str, known_blocks: list[Block] | None = None) -> None:
        """A new engine from what the node persisted and committed (kill -9 semantics), with
        the uncommitted blocks it had saved (``known_blocks``), if any."""
        old = self.nodes[node_id]
        voted, high_qc = old.persisted or (0, None)
        committed = old.committed[-1] if old.committed else None
        engine = self._engine(old.signer, committed=committed, highest_voted_view=voted, high_qc=high_qc,
                              known_blocks=known_blocks)
        if isinstance(engine.payload, WorkPayload) and committed is not None:
            engine.payload.executed = committed[0].height
        node = Node(node_id, engine, old.signer, committed=list(old.committed), persisted=old.persisted)
        self.nodes[node_id] = node
        self.apply(node, engine.start())

    # ------------------------------------------------------------ delivery
    def deliver(self, src: str, dst: str, message: dict[str, Any]) -> None:
        if (src, dst) in self.blocked:
            return
        delay = self.rng.uniform(self.min_delay, self.max_delay)

        def go() -> None:
            node = self.nodes[dst]
            if node.alive and (src, dst) not in self.blocked:
                self.apply(node, node.engine.on_message(src, message))

        self.at(delay, go)

    def apply(self, node: Node, actions: list[Action]) -> None:
        for action in actions:
            hook = self.intercept.get(node.id)
            if hook is not None:
                replaced = hook(node, action)
                if replaced is not None:
                    self.apply_raw(node, replaced)
                    continue
            self.apply_raw(node, [action])

    def apply_raw(self, node: Node, actions: list[Action]) -> None:
        for action in actions:
            if isinstance(action, Broadcast):
                self.broadcasts.append((node.id, action.message))
                if action.message.get("type") == "proposal":
                    block = Block.from_wire(action.message["block"])
                    self.proposed_at.setdefault(block.hash, self.now)
                    self.justified_at.setdefault(block.parent, self.now)
                for other in self.nodes:
                    if other != node.id:
                        self.deliver(node.id, other, action.message)
            elif isinstance(action, SendTo):
                self.deliver(node.id, action.target, action.message)
            elif isinstance(action, Persist):
                node.persisted = (action.highest_voted_view, action.high_qc)
            elif isinstance(action, Committed):
                node.committed.extend(action.blocks)
                for block, _qc in action.blocks:
                    self.committed_at[(node.id, block.height)] = self.now
            elif isinstance(action, SetTimer):
                gen = node.timer_gen.get(action.kind, 0) + 1
                node.timer_gen[action.kind] = gen

                def fire(node_id: str = node.id, kind: str = action.kind, view: int = action.view,
                         g: int = gen) -> None:
                    current = self.nodes[node_id]
                    if current.alive and current.timer_gen.get(kind) == g:
                        self.apply(current, current.engine.on_timer(kind, view))

                self.at(action.delay, fire)
            elif isinstance(action, Fetch):
                self._fetch(node, action)
            elif isinstance(action, Evidence):
                node.evidence.append(action)

    def _fetch(self, node: Node, action: Fetch) -> None:
        for peer in [action.peer, *self.nodes]:
            if peer == node.id or (peer, node.id) in self.blocked or not self.nodes[peer].alive:
                continue
            block = self.nodes[peer].engine.blocks.get(action.block)
            if block is None:
                block = next((b for b, _ in self.nodes[peer].committed if b.hash == action.block), None)
            if block is not None:
                def give(b: Block = block, nid: str = node.id) -> None:
                    if self.nodes[nid].alive:
                        self.apply(self.nodes[nid], self.nodes[nid].engine.on_block(b))
                self.at(self.rng.uniform(self.min_delay, self.max_delay), give)
                return

    # ------------------------------------------------------------ checks
    def committed_hashes(self, node_id: str) -> list[bytes]:
        return [b.hash for b, _ in self.nodes[node_id].committed]

    def assert_safety(self) -> None:
        """No two nodes committed different blocks at one height; heights are contiguous."""
        by_height: dict[int, bytes] = {}
        for node in self.nodes.values():
            heights = [b.height for b, _ in node.committed]
            assert heights == list(range(1, len(heights) + 1)), f"{node.id} committed heights {heights[:10]}…"
            for block, qc in node.committed:
                assert qc.block == block.hash
                seen = by_height.setdefault(block.height, block.hash)
                assert seen == block.hash, f"fork at height {block.height}"

    def min_committed(self, ids: list[str] | None = None) -> int:
        return min(len(self.nodes[i].committed) for i in (ids or list(self.nodes)))
