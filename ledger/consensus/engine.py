"""The chained HotStuff core (2-chain commit, DiemBFT v4 / Jolteon rules): events in,
actions out, no I/O and no clock of its own (``Config`` carries the host's wall clock and,
optionally, a monotonic one), so a seeded simulation can drive it exactly.

Rules, numbered as in docs/spec/consensus.md:

- R1 (leader) the leader of view ``v`` is ``vset(h).leader(v)`` for the height ``h`` it
  proposes; a proposal from anyone else is ignored.
- R2 (vote) a validator votes for block ``B`` at most once per view, only if
  ``B.view > highest_voted_view`` and either ``B.view == B.justify.view + 1`` or ``B`` carries a
  timeout certificate ``TC`` for ``B.view − 1`` with ``B.justify.view ≥ TC.high_qc.view``.
  ``highest_voted_view`` is persisted (action ``Persist``) before the vote is sent.
- R3 (timeout) a validator that times out in view ``v`` stops voting in ``v`` (raises
  ``highest_voted_view`` to ``v``, persisted) and broadcasts a signed timeout carrying its
  highest QC; ``n − f`` timeouts form a TC; ``f + 1`` timeouts for a view make a lagging
  validator time out too.
- R4 (commit) when a QC certifies ``B1`` whose parent ``B0`` has ``B1.view == B0.view + 1``,
  ``B0`` and its uncommitted ancestors are committed, in height order.
- R5 (pacemaker) a QC or TC for view ``v`` moves every validator to view ``v + 1``; the view
  timer doubles after each consecutive timeout (capped at 8x) and resets on progress.
- R6 (evidence) two different proposals signed by one leader for one view, or two votes of
  one validator for different blocks in one view, are reported as equivocation evidence.
- R7 (block time) the leader stamps its block with its wall clock, after the parent's time
  (it waits until its clock passes it); a validator votes only for a proposal whose time is
  after its parent's and within ``received − message_delay − precision … received +
  precision`` of its own clock when the proposal arrived (``timing``).
- R8 (idle) with no transaction waiting and the chain settled (``pacemaker``), a leader
  proposes a heartbeat per idle interval and view timers wait that long too; ``on_work``
  (the host's mempool is no longer empty) brings back the block interval and view timeout.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ..codec import EncodingError, hexbytes
from ..crypto.keycache import KeyCache
from ..crypto.merkle import merkle_root
from .actions import Action, Broadcast, Committed, Evidence, Fetch, Persist, SendTo, SetTimer
from .catchup import last_committable, load_known, verified_prefix
from .config import Config, Payload
from .errors import InvalidMessage, NotReady
from .pacemaker import ENGINE_FIELDS, Settlement
from .timing import stamp, untimely
from .types import (
    Block,
    QuorumCertificate,
    Signer,
    TimeoutCertificate,
    ValidatorSet,
    check_signature,
    genesis_block,
    proposal_bytes,
    timeout_bytes,
    vote_bytes,
)

__all__ = ["Action", "Broadcast", "Committed", "Config", "Engine", "Evidence", "Fetch", "Payload", "Persist",
           "SendTo", "SetTimer", "genesis_block"]  # the engine's interface, defined beside it

log = logging.getLogger("rongxin.consensus")

MAX_BACKOFF_STEPS = 3  # the view timer grows to at most 8x the base


@dataclass
class _Votes:
    sigs: dict[str, bytes] = field(default_factory=dict)
    done: bool = False


class Engine:
    """One validator's (or, with ``signer=None``, one observer's) view of the protocol."""

    def __init__(
        self,
        *,
        config: Config,
        signer: Signer | None,
        vset_at: Callable[[int], ValidatorSet],
        genesis: Block,
        payload: Payload,
        committed: tuple[Block, QuorumCertificate] | None = None,
        highest_voted_view: int = 0,
        high_qc: QuorumCertificate | None = None,
        known_blocks: list[Block] | None = None,
        keys: KeyCache | None = None,
    ) -> None:
        self.cfg = config
        self.me = signer
        self.vset_at = vset_at
        self.genesis = genesis
        self.payload = payload
        self.keys = keys or KeyCache()
        self.blocks: dict[bytes, Block] = {genesis.hash: genesis}
        self.qc_of: dict[bytes, QuorumCertificate] = {genesis.hash: QuorumCertificate.genesis(config.chain, genesis.hash)}
        tip, tip_qc = committed or (genesis, self.qc_of[genesis.hash])
        self.blocks[tip.hash] = tip
        self.qc_of[tip.hash] = tip_qc
        self.committed_height = tip.height
        self.committed_hash = tip.hash
        self.highest_voted_view = highest_voted_view
        self.high_qc = high_qc if high_qc is not None and high_qc.view >= tip_qc.view else tip_qc
        load_known(self.blocks, self.qc_of, known_blocks or [], self.high_qc)
        self.view = max(self.high_qc.view + 1, 1)
        self.timeouts_in_a_row = 0
        self.deferred: Block | None = None  # a commit target the payload was not ready for
        self.votes: dict[tuple[int, bytes], _Votes] = {}
        self.timeout_msgs: dict[int, dict[str, dict[str, Any]]] = {}
        self.seen_proposals: dict[tuple[int, str], dict[str, Any]] = {}
        self.seen_votes: dict[tuple[int, str], dict[str, Any]] = {}
        self.waiting: dict[bytes, list[tuple[str, dict[str, Any], int]]] = {}  # by missing parent
        self.last_tc: TimeoutCertificate | None = None
        self.proposed_views: set[int] = set()
        self.requested: dict[bytes, str] = {}
        self.pending_qcs: dict[bytes, QuorumCertificate] = {}
        self.seen_at: dict[bytes, float] = {}  # block hash -> when its proposal arrived (cfg.clock)
        self.timer_view = -1  # the view the view timer was last armed for
        self.timer_idle = False  # whether that timer waits for a heartbeat (R8)
        self.idle_wait_view = -1  # the view whose propose timer waits the idle interval
        self.settlement = Settlement.at(tip, list(known_blocks or []))

    # ------------------------------------------------------------ helpers
    def vset_for_next(self) -> ValidatorSet:
        return self.vset_at(self.high_qc.height + 1)

    def is_validator(self) -> bool:
        return self.me is not None and self.me.id in self.vset_for_next()

    def _timer(self, idle: bool = False) -> SetTimer:
        """The view timer; on an idle chain it also waits the idle interval, for the heartbeat."""
        steps = min(self.timeouts_in_a_row, MAX_BACKOFF_STEPS)
        self.timer_view, self.timer_idle = self.view, idle
        extra = self.cfg.idle_interval if idle else 0.0
        return SetTimer("view", self.view, self.cfg.base_timeout * (2**steps) + extra)

    def _hurry(self) -> list[Action]:
        """The view timer at its normal length, unless it runs already (the chain is busy)."""
        return [self._timer()] if self.timer_view != self.view or self.timer_idle else []

    def busy(self) -> bool:
        """R8: transactions wait, or blocks are needed to settle the last ones (``pacemaker``)."""
        return self.payload.has_work() or self.settlement.pending()

    def _store(self, block: Block) -> None:
        self.blocks[block.hash] = block
        self.settlement.saw(block)

    # ------------------------------------------------------------ start
    def start(self) -> list[Action]:
        actions = self._enter_view(self.view)
        qc = self.high_qc  # after a restart the block of the persisted high QC is not in memory: fetch it
        if qc.block not in self.blocks:
            self.pending_qcs[qc.block] = qc
            for signer, _sig in qc.sigs:
                if self.me is None or signer != self.me.id:
                    self.requested[qc.block] = signer
                    actions.append(Fetch(qc.block, signer))
        return actions

    def on_work(self) -> list[Action]:
        """The host's mempool went from empty to non-empty (transactions are gossiped to every
        validator, so each one calls this): an idle leader proposes after the block interval
        instead of the idle interval, and a validator waiting for a heartbeat shortens its view
        timer to the normal length (a leader that died while the chain was idle is replaced)."""
        actions = self._hurry()
        if self.idle_wait_view == self.view and self.view not in self.proposed_views:
            self.idle_wait_view = -1
            actions.append(SetTimer("propose", self.view, self.cfg.block_interval))
        return actions

    def _enter_view(self, view: int) -> list[Action]:
        busy = self.busy()
        actions: list[Action] = [self._timer(idle=not busy)]
        self.idle_wait_view = -1
        leader = self.vset_for_next().leader(view)
        if self.me is not None and leader == self.me.id and view not in self.proposed_views:
            delay = self.cfg.block_interval if busy else self.cfg.idle_interval
            seen = self.seen_at.get(self.high_qc.block)
            if busy and self.cfg.clock is not None and seen is not None:
                # the interval is a spacing between blocks: the rounds' own latency counts toward it
                delay = min(delay, max(0.0, seen + delay - self.cfg.clock()))
            if not busy:
                self.idle_wait_view = view
            actions.append(SetTimer("propose", view, delay))
        return actions

    def _advance(self, to_view: int, via: TimeoutCertificate | None = None, progress: bool = True) -> list[Action]:
        if to_view <= self.view:
            return []
        self.view = to_view
        if progress:
            self.timeouts_in_a_row = 0
        if via is not None:
            self.last_tc = via
        # forget per-view bookkeeping far behind us
        for k in [k for k in self.votes if k[0] < to_view - 2]:
            del self.votes[k]
        for v in [v for v in self.timeout_msgs if v < to_view - 2]:
            del self.timeout_msgs[v]
        for k2 in [k for k in self.seen_proposals if k[0] < to_view - 10]:
            del self.seen_proposals[k2]
        for k3 in [k for k in self.seen_votes if k[0] < to_view - 10]:
            del self.seen_votes[k3]
        return self._enter_view(to_view)

    # ------------------------------------------------------------ timers
    def on_timer(self, kind: str, view: int) -> list[Action]:
        if view != self.view:
            return []
        if kind == "propose":
            return self._propose(view)
        if not self.timer_idle and not self.busy():  # R8: became idle in this view: wait for the heartbeat
            return [self._timer(idle=True)]
        return self._local_timeout(view)

    def _propose(self, view: int) -> list[Action]:
        assert self.me is not None
        parent = self.blocks.get(self.high_qc.block)
        # never a second proposal in a view this node already voted in (e.g. before a restart)
        if parent is None or view in self.proposed_views or view <= self.highest_voted_view:
            return []
        height = parent.height + 1
        vset = self.vset_at(height)
        if vset.leader(view) != self.me.id:
            return []
        now = self.cfg.wall()
        time_ms = self._stamp(now, parent)
        if time_ms is None:  # R7: wait until this node's clock is past the parent's time
            wait = (int(parent.header["time"]) + 1 - now) / 1000
            log.info("view %d: waiting %.3f s for the clock to pass the parent's time", view, wait)
            return [SetTimer("propose", view, wait)]
        tx_ids, fields = self.payload.propose(parent, height)
        header = {k: v for k, v in fields.items() if k not in ENGINE_FIELDS}
        header.update({
            "chain": self.cfg.chain, "height": height, "view": view, "parent": parent.hash.hex(),
            "justify": self.high_qc.wire(), "proposer": self.me.id,
            "txs": merkle_root(tx_ids).hex(), "count": len(tx_ids),
            "validators": vset.digest().hex(), "time": time_ms,
        })
        block = Block.make(header, tx_ids)
        tc = self.last_tc if self.last_tc is not None and self.last_tc.view == view - 1 else None
        msg = {"type": "proposal", "block": block.wire(), "tc": tc.wire() if tc else None,
               "sig": self.me.sign(proposal_bytes(self.cfg.chain, block.hash)).hex()}
        self.proposed_views.add(view)
        self.idle_wait_view = -1
        # the view now waits for the next leader: the timer counts from here, as on the others
        actions: list[Action] = [Broadcast(msg), self._timer(idle=not self.busy())]
        actions += self.on_message(self.me.id, msg, received_ms=now)
        return actions

    def _stamp(self, now_ms: int, parent: Block) -> int | None:
        """R7: the time of this node's block on ``parent`` (``None``: wait)."""
        return stamp(now_ms, int(parent.header["time"]))

    def _timely(self, block: Block, parent: Block, received_ms: int) -> str | None:
        """R7: why this node must not vote for ``block`` (``None``: its time is timely)."""
        return untimely(int(block.header["time"]), int(parent.header["time"]), received_ms,
                        self.cfg.time_precision, self.cfg.message_delay)

    def _local_timeout(self, view: int) -> list[Action]:
        if not self.is_validator():
            return [self._timer(idle=not self.busy())]
        assert self.me is not None
        self.timeouts_in_a_row += 1
        self.highest_voted_view = max(self.highest_voted_view, view)
        msg = {"type": "timeout", "view": view, "high_qc": self.high_qc.wire(), "by": self.me.id,
               "sig": self.me.sign(timeout_bytes(self.cfg.chain, view, self.high_qc.view)).hex()}
        actions: list[Action] = [Persist(self.highest_voted_view, self.high_qc), Broadcast(msg),
                                 self._timer(idle=not self.busy())]
        actions += self._on_timeout_msg(self.me.id, msg)
        return actions

    # ------------------------------------------------------------ messages
    def on_message(self, sender: str, msg: dict[str, Any], received_ms: int | None = None) -> list[Action]:
        """Handle one message; an invalid one is logged and ignored (never raises).
        ``received_ms`` is this node's wall clock when the message arrived (a host that held a
        proposal while fetching its transactions passes the arrival time); default: now."""
        try:
            kind = msg.get("type") if isinstance(msg, dict) else None
            if kind == "proposal":
                return self._on_proposal(sender, msg, self.cfg.wall() if received_ms is None else received_ms)
            if kind == "vote":
                return self._on_vote(sender, msg)
            if kind == "timeout":
                return self._on_timeout_msg(sender, msg)
            raise InvalidMessage(f"unknown message type {kind!r}")
        except KeyError as exc:  # e.g. an unsigned vote: name the missing field
            log.warning("ignored message from %s: %s lacks %s", sender, kind, exc)
            return []
        except (InvalidMessage, EncodingError, TypeError, ValueError) as exc:
            log.warning("ignored message from %s: %s", sender, exc)
            return []

    def on_block(self, block: Block) -> list[Action]:
        """A block fetched from a peer after a ``Fetch``. It is accepted only if it was asked
        for (its hash came from a QC or a child we hold); its justify QC is verified and
        processed once its parent is known, fetching further back until the chain meets
        the committed one, so a node that was down catches up through the same rules."""
        peer = self.requested.pop(block.hash, None)
        if peer is None and block.hash not in self.blocks and block.height > self.committed_height:
            log.warning("ignored block %s at height %d: not asked for", block.hash.hex()[:12], block.height)
        if peer is None or block.hash in self.blocks:
            return []
        self._store(block)
        actions: list[Action] = []
        if block.parent not in self.blocks and block.height > self.committed_height + 1:
            self.requested[block.parent] = peer
            actions.append(Fetch(block.parent, peer))
            # what waited on this block waits until its ancestors connect (a vote needs them)
            self.waiting.setdefault(block.parent, []).extend(self.waiting.pop(block.hash, []))
        actions += self._connect(block)
        pending = self.pending_qcs.pop(block.hash, None)
        if pending is not None:
            actions += self._process_qc(pending)
        for sender, msg, received_ms in self.waiting.pop(block.hash, []):
            actions += self.on_message(sender, msg, received_ms)
        return actions

    def on_chain(self, items: list[tuple[Block, QuorumCertificate]]) -> list[Action]:
        """Blocks of a peer's committed chain (batched sync), in height order from this node's
        committed height + 1, each with the QC that certifies it. Each must extend the previous
        one and carry a QC valid under the validator set of its height; a block is committed
        here only when the next one in the batch is certified in the following view (the
        2-chain rule, so a Byzantine peer cannot make a certified-but-abandoned block stick).
        Returns what committing them produces; stops at the first block that does not hold."""
        verified = verified_prefix(items, height=self.committed_height, head=self.committed_hash, chain=self.cfg.chain,
                                   vset_at=self.vset_at, keys=self.keys, genesis=self.genesis.hash)
        last = last_committable(verified)
        for block, qc in verified:
            self._store(block)
            self.qc_of[block.hash] = qc
        if last < 0:
            return []
        actions = self._commit(verified[last][0])
        # a committed chain served by a peer: its commits reached the validators that certified it
        self.settlement.delivered_up_to(self.committed_height)
        actions += self._process_qc(verified[-1][1])
        return actions

    def _connect(self, block: Block) -> list[Action]:
        """Process the justify QCs of ``block`` and of stored descendants now linked to it."""
        actions: list[Action] = []
        stack = [block]
        while stack:
            b = stack.pop()
            if b.parent not in self.blocks:
                continue
            qc = b.justify
            try:
                qc.verify(self.vset_at(qc.height), self.keys, self.genesis.hash)
            except InvalidMessage as exc:
                log.warning("fetched block %s carries a bad QC: %s", b.hash.hex()[:12], exc)
                self.blocks.pop(b.hash, None)
                continue
            actions += self._process_qc(qc)
            own = self.qc_of.get(b.hash)  # b's own QC arrived before b's parent did
            if own is not None and own is not qc:
                actions += self._process_qc(own)
            stack.extend(c for c in self.blocks.values() if c.parent == b.hash and c.height > self.committed_height)
        return actions

    def _process_qc(self, qc: QuorumCertificate) -> list[Action]:
        if qc.view > self.high_qc.view:
            self.high_qc = qc
        self.qc_of.setdefault(qc.block, qc)
        actions: list[Action] = []
        b1 = self.blocks.get(qc.block)
        if b1 is not None:
            b0 = self.blocks.get(b1.parent)
            if b0 is not None and b1.view == b0.view + 1 and b0.height > self.committed_height:
                actions += self._commit(b0)
        actions += self._advance(qc.view + 1)
        return actions

    def retry_commit(self) -> list[Action]:
        """Commit again what a ``NotReady`` payload deferred (the node calls it when what was
        missing arrives)."""
        target, self.deferred = self.deferred, None
        if target is None or target.height <= self.committed_height:
            return []
        return self._commit(target)

    def _commit(self, target: Block) -> list[Action]:
        chain: list[Block] = []
        b: Block | None = target
        while b is not None and b.height > self.committed_height:
            chain.append(b)
            b = self.blocks.get(b.parent)
        if b is None:
            # an ancestor is not here yet (e.g. fetched blocks still connecting after a restart):
            # fetch it from the proposer of its child and commit once the chain connects
            lowest = chain[-1]
            self.requested[lowest.parent] = lowest.proposer
            log.info("commit of block %d waits for its ancestor %s", target.height, lowest.parent.hex()[:12])
            return [Fetch(lowest.parent, lowest.proposer)]
        if b.hash != self.committed_hash:
            log.error("commit target %s does not extend the committed chain", target.hash.hex()[:12])
            return []
        chain.reverse()
        done: list[tuple[Block, QuorumCertificate]] = []
        for blk in chain:
            item = (blk, self.qc_of[blk.hash])
            try:
                self.payload.commit((item,))
            except NotReady as exc:  # e.g. bodies still on their way: see retry_commit
                log.info("committed block %d waits: %s", blk.height, exc)
                self.deferred = target
                break
            except Exception:  # execution failed: stay at the last executed block, retry later
                log.exception("executing committed block %d failed; will retry", blk.height)
                break
            self.committed_height = blk.height
            self.committed_hash = blk.hash
            self.settlement.committed(blk)
            done.append(item)
        if not done:
            return []
        out = tuple(done)
        # prune what can no longer commit
        for h in [h for h, blk in self.blocks.items() if blk.height < self.committed_height]:
            if h != self.genesis.hash:
                self.blocks.pop(h, None)
                self.qc_of.pop(h, None)
        return [Committed(out)]

    def _check_proposal(self, msg: dict[str, Any]) -> tuple[Block, TimeoutCertificate | None]:
        """R1 and the certificates: raises ``InvalidMessage`` before anything is changed."""
        block = Block.from_wire(msg.get("block"))
        h = block.header
        if h["chain"] != self.cfg.chain:
            raise InvalidMessage(f"proposal for chain {h['chain']!r}")
        vset = self.vset_at(block.height)
        if vset.leader(block.view) != block.proposer:
            raise InvalidMessage(f"{block.proposer!r} is not the leader of view {block.view}")
        sig = bytes.fromhex(str(msg.get("sig", "")))
        check_signature(self.keys, vset, block.proposer, proposal_bytes(self.cfg.chain, block.hash), sig)
        if h["validators"] != vset.digest().hex():
            raise InvalidMessage("proposal names another validator set")
        justify = block.justify
        if justify.block != block.parent or justify.height != block.height - 1:
            raise InvalidMessage(f"justify QC does not certify the parent (QC height {justify.height}, "
                                 f"block height {block.height})")
        justify.verify(self.vset_at(justify.height), self.keys, self.genesis.hash)
        tc = TimeoutCertificate.from_wire(msg["tc"]) if msg.get("tc") else None
        if tc is not None:
            tc.verify(self.vset_at(tc.high_qc.height + 1), self.keys, self.genesis.hash)
        return block, tc

    def _on_proposal(self, sender: str, msg: dict[str, Any], received_ms: int) -> list[Action]:
        block = Block.from_wire(msg.get("block"))
        key = (block.view, block.proposer)
        first = self.seen_proposals.get(key)
        if first is not None and first["block"]["header"] != msg["block"]["header"]:
            self._check_proposal(msg)  # both must be signed by the leader to be evidence
            return [Evidence("double-proposal", block.proposer, block.view, first, msg)]
        block, tc = self._check_proposal(msg)
        self.seen_proposals[key] = msg
        parent = self.blocks.get(block.parent)
        if parent is None:
            if block.height <= self.committed_height:
                return []
            self.waiting.setdefault(block.parent, []).append((sender, msg, received_ms))
            self.requested[block.parent] = sender
            return [Fetch(block.parent, sender)]
        if parent.height != block.height - 1:
            raise InvalidMessage("height is not parent height + 1")
        actions: list[Action] = []
        self._store(block)
        if self.cfg.clock is not None:
            self.seen_at[block.hash] = self.cfg.clock()
            if len(self.seen_at) > 512:
                for old in list(self.seen_at)[:256]:
                    del self.seen_at[old]
        actions += self._process_qc(block.justify)
        self._note_delivered(block.justify)
        if tc is not None:
            actions += self._advance(tc.view + 1, via=tc, progress=False)
        if block.view == self.view and self.is_validator():
            try:
                actions += self._vote(block, parent, tc, received_ms)
            except InvalidMessage as exc:
                log.warning("no vote for block %d in view %d from %s: %s", block.height, block.view,
                            block.proposer, exc)
        pending = self.pending_qcs.pop(block.hash, None)  # its QC formed here before it arrived
        if pending is not None:
            self.requested.pop(block.hash, None)
            actions += self._process_qc(pending)
        if self.busy():
            actions += self._hurry()
        return actions

    def _note_delivered(self, justify: QuorumCertificate) -> None:
        """A proposal carrying ``justify`` went to every validator: what it commits (R4) has
        been delivered to all of them."""
        b1 = self.blocks.get(justify.block)
        b0 = self.blocks.get(b1.parent) if b1 is not None else None
        if b1 is not None and b0 is not None and b1.view == b0.view + 1:
            self.settlement.delivered_up_to(min(b0.height, self.committed_height))

    def _vote(self, block: Block, parent: Block, tc: TimeoutCertificate | None, received_ms: int) -> list[Action]:
        """R2 and R7, then the payload's checks; raises ``InvalidMessage`` to withhold the vote."""
        assert self.me is not None
        if block.view <= self.highest_voted_view:
            return []
        justify = block.justify
        extends_qc = block.view == justify.view + 1
        extends_tc = tc is not None and block.view == tc.view + 1 and justify.view >= tc.high_qc.view
        if not (extends_qc or extends_tc):
            raise InvalidMessage("proposal neither follows its QC's view nor a TC")
        late = self._timely(block, parent, received_ms)
        if late is not None:
            raise InvalidMessage(late)
        self.payload.validate(block, parent)
        self.highest_voted_view = block.view
        vote = {"type": "vote", "height": block.height, "view": block.view, "block": block.hash.hex(),
                "by": self.me.id,
                "sig": self.me.sign(vote_bytes(self.cfg.chain, block.height, block.view, block.hash)).hex()}
        next_leader = self.vset_at(block.height + 1).leader(block.view + 1)
        actions: list[Action] = [Persist(self.highest_voted_view, self.high_qc)]
        if next_leader == self.me.id:
            actions += self._on_vote(self.me.id, vote)
        else:
            actions.append(SendTo(next_leader, vote))
        return actions

    def _on_vote(self, sender: str, msg: dict[str, Any]) -> list[Action]:
        height, view = int(msg["height"]), int(msg["view"])
        block_hash = hexbytes(msg["block"], "block", 32)  # one spelling per hash (see evidence below)
        voter = str(msg["by"])
        vset = self.vset_at(height)
        check_signature(self.keys, vset, voter, vote_bytes(self.cfg.chain, height, view, block_hash),
                        bytes.fromhex(str(msg["sig"])))
        prior = self.seen_votes.get((view, voter))
        if prior is not None and hexbytes(prior["block"], "block", 32) != block_hash:
            return [Evidence("double-vote", voter, view, prior, msg)]
        self.seen_votes[(view, voter)] = msg
        if view < self.view - 1:
            return []
        entry = self.votes.setdefault((view, block_hash), _Votes())
        if entry.done:
            return []
        entry.sigs[voter] = bytes.fromhex(str(msg["sig"]))
        if len(entry.sigs) < vset.quorum:
            return []
        entry.done = True
        qc = QuorumCertificate(self.cfg.chain, height, view, block_hash, tuple(sorted(entry.sigs.items())))
        if block_hash not in self.blocks:
            self.requested[block_hash] = sender
            self.pending_qcs[block_hash] = qc
            return [Fetch(block_hash, sender)]
        return self._process_qc(qc)

    def _on_timeout_msg(self, sender: str, msg: dict[str, Any]) -> list[Action]:
        view = int(msg["view"])
        voter = str(msg["by"])
        qc = QuorumCertificate.from_wire(msg["high_qc"])
        vset = self.vset_for_next()
        check_signature(self.keys, vset, voter, timeout_bytes(self.cfg.chain, view, qc.view),
                        bytes.fromhex(str(msg["sig"])))
        if view < self.view:
            return []
        qc.verify(self.vset_at(qc.height), self.keys, self.genesis.hash)
        actions: list[Action] = []
        if qc.view > self.high_qc.view and qc.block in self.blocks:
            actions += self._process_qc(qc)
        elif qc.view > self.high_qc.view and qc.block not in self.requested and sender != (self.me.id if self.me else None):
            # a higher QC whose block this node lacks (e.g. after a restart): fetch the block
            self.requested[qc.block] = sender
            self.pending_qcs[qc.block] = qc
            actions.append(Fetch(qc.block, sender))
        bucket = self.timeout_msgs.setdefault(view, {})
        bucket[voter] = msg
        # R3: f + 1 timeouts for a view mean at least one honest node gave up on it; a node
        # behind that view (e.g. just restarted) jumps to it, so the quorum re-forms quickly
        if len(bucket) >= vset.f + 1 and view > self.view:
            actions += self._advance(view, progress=False)
        if (self.me is not None and self.me.id not in bucket and len(bucket) >= vset.f + 1
                and view == self.view and self.is_validator()):
            actions += self._local_timeout(view)
            bucket = self.timeout_msgs.get(view, {})
        if len(bucket) >= vset.quorum and view >= self.view:
            tc = TimeoutCertificate.of_timeouts(self.cfg.chain, view, bucket)
            high = tc.high_qc
            if high.view > self.high_qc.view and high.block in self.blocks:
                actions += self._process_qc(high)
            actions += self._advance(view + 1, via=tc, progress=False)
        return actions

    # ------------------------------------------------------------ introspection
    def status(self) -> dict[str, Any]:
        return {"view": self.view, "committed_height": self.committed_height,
                "committed_hash": self.committed_hash.hex(), "high_qc_view": self.high_qc.view,
                "highest_voted_view": self.highest_voted_view}
