"""The application interface the node's consensus adapter calls, in the manner of CometBFT's
ABCI 2.0, and the one ``Receipt`` type of the ledger.

Life of a block, as the node runs it (``ledger.node.payload`` is the adapter):

1. ``check_tx`` admits a verified transaction into the mempool (or says why not);
2. the leader's ``prepare_proposal`` picks the transactions of a new block from the
   mempool's candidates and returns the header fields the application owns (``exec`` and
   ``results``: the state root and the results root of its last executed block);
3. every validator's ``process_proposal`` checks a proposal's transactions and those fields
   before it votes;
4. once the block is committed by consensus, ``execute_block`` runs its transactions in block
   order and returns the staged state root, one receipt per transaction and the results root;
5. ``commit`` persists the staged state, the block, its QC and its receipts in one atomic
   write; ``info`` says where a restarted node resumes and ``query`` reads committed state
   with a proof.

Which results must be identical on every honest node (ABCI's *Deterministic* column):

====================  =============  ==================================================
method                deterministic  why
====================  =============  ==================================================
check_tx              no             mempool admission; may depend on local state/time
prepare_proposal      no             the leader's choice of transactions
process_proposal      yes            a vote must mean the same thing on every node
execute_block         yes            its roots go into the header of a later block
commit                yes            persists exactly what ``execute_block`` staged
query, info           yes            values and proofs at a committed height
====================  =============  ==================================================

Receipt codes: 0 OK, 1 EXPIRED, 2 REPLAY, 3 UNKNOWN_TYPE, 4 BAD_PAYLOAD (a handler's or the
chain's refusal, with the reason in ``info``). docs/transactions.md specifies the canonical
receipt, the results tree and the receipt proof.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import TYPE_CHECKING, Any, NamedTuple

from ..codec import canonical
from ..errors import LedgerError

if TYPE_CHECKING:
    from ..consensus.types import Block, QuorumCertificate
    from ..contracts.context import Event
    from ..state.proof import Proof
    from ..tx import Transaction

__all__ = [
    "BAD_PAYLOAD",
    "EXPIRED",
    "OK",
    "REPLAY",
    "UNKNOWN_TYPE",
    "AppInfo",
    "Application",
    "BlockResult",
    "CheckResult",
    "InvalidProposal",
    "Proposal",
    "QueryResult",
    "Receipt",
]

OK, EXPIRED, REPLAY, UNKNOWN_TYPE, BAD_PAYLOAD = 0, 1, 2, 3, 4


class InvalidProposal(LedgerError):
    """``process_proposal`` refuses a block (the validator does not vote for it)."""


@dataclass(frozen=True)
class Receipt:
    """The outcome of one transaction of a block. ``code`` 0 is success."""

    code: int
    info: str
    events: tuple[Event, ...] = ()
    fuel: int = 0  # fuel a user-contract call used (charged even when it fails)
    result: Any = None  # what a call returned

    def wire(self) -> dict[str, Any]:
        out: dict[str, Any] = {"code": self.code, "info": self.info}
        if self.events:
            out["events"] = [e.wire() for e in self.events]
        if self.fuel:
            out["fuel"] = self.fuel
        if self.result is not None:
            out["result"] = self.result
        return out

    def canonical(self) -> bytes:
        """``canonical(self.wire())``, with the events' own canonical bytes spliced in (built
        once: the block record and the results tree both use it)."""
        return self._canonical

    @cached_property
    def _canonical(self) -> bytes:
        info = b'"ok"' if self.info == "ok" else canonical(self.info)
        parts = [b'"code":%d' % self.code]
        if self.events:
            parts.append(b'"events":[' + b",".join(e.canonical() for e in self.events) + b"]")
        if self.fuel:
            parts.append(b'"fuel":%d' % self.fuel)
        parts.append(b'"info":' + info)
        if self.result is not None:
            parts.append(b'"result":' + canonical(self.result))
        return b"{" + b",".join(parts) + b"}"


class CheckResult(NamedTuple):
    """Whether a transaction may enter the mempool, and if not, why (for the submitter)."""

    ok: bool
    reason: str = ""


class Proposal(NamedTuple):
    """What ``prepare_proposal`` returns: the block's transactions and the header fields the
    application owns (merged into the header by the consensus engine)."""

    txs: list[Transaction]
    fields: dict[str, Any]


class BlockResult(NamedTuple):
    """What ``execute_block`` returns: the staged state root, one receipt per transaction in
    block order, and the results root over those receipts."""

    state_root: bytes
    receipts: list[Receipt]
    results_root: bytes


class QueryResult(NamedTuple):
    """A value at a committed height (``None``: absent) with its proof against that root."""

    value: bytes | None
    proof: Proof
    height: int
    root: bytes


class AppInfo(NamedTuple):
    """The last committed height (0: none yet) and the state and results roots at it."""

    last_height: int
    last_root: bytes
    last_results_root: bytes


class Application(ABC):
    """What the node runs under consensus. Heights start at 1 and are contiguous."""

    @abstractmethod
    def info(self) -> AppInfo:
        """The last committed height and its roots (where a restarted node resumes)."""

    @abstractmethod
    def check_tx(self, tx: Transaction) -> CheckResult:
        """Admission of a transaction whose signature is verified; must not change state."""

    @abstractmethod
    def prepare_proposal(self, height: int, candidates: Sequence[Transaction]) -> Proposal:
        """The transactions of a new block at ``height`` (from the mempool's candidates, in
        order) and the application's header fields."""

    @abstractmethod
    def process_proposal(self, header: Mapping[str, Any], txs: Sequence[Transaction]) -> None:
        """Raise ``InvalidProposal`` unless a proposed block's transactions and application
        header fields are acceptable to this node."""

    @abstractmethod
    def execute_block(self, block: Block, txs: Sequence[Transaction]) -> BlockResult:
        """Execute a committed block's transactions in order (height = last committed + 1),
        staging the result. Executing again before ``commit`` discards the earlier staging."""

    @abstractmethod
    def commit(self, block: Block, qc: QuorumCertificate, txs: Sequence[Transaction],
               result: BlockResult) -> AppInfo:
        """Persist the staged block atomically with ``block``, ``qc`` and the receipts."""

    @abstractmethod
    def query(self, key: bytes, height: int | None = None) -> QueryResult:
        """The value of ``key`` at committed ``height`` (default: last) with a proof."""
