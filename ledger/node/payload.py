"""The consensus engine's ``Payload``: a thin adapter over the ``Application`` (abci.py).

The engine asks for the contents of a new block, has a proposal checked before it votes, and
hands over committed blocks. This adapter turns those calls into ``prepare_proposal``,
``process_proposal``, ``execute_block`` and ``commit``, finding transaction bodies through a
``TxSource`` (the node's mempool and the verified bodies it holds). It keeps no state.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, Protocol

from ..consensus.errors import InvalidMessage, NotReady
from ..consensus.types import Block, QuorumCertificate
from ..crypto.merkle import merkle_root
from ..tx import Transaction
from .abci import Application, BlockResult, InvalidProposal

__all__ = ["AppPayload", "BodiesMissing", "StateDiverged", "TxSource", "check_tx_root"]


class BodiesMissing(NotReady):
    """A committed block cannot run yet: this node lacks some of its transaction bodies (it
    asks its peers for them and the engine retries the block)."""


class StateDiverged(RuntimeError):
    """A committed block's header certifies roots (``exec``, ``results``) that differ from
    what this node computed: its state has diverged from the quorum's. The node stops
    executing (every later commit fails the same way) rather than build on a wrong state."""


class TxSource(Protocol):
    """Where the adapter finds transactions: the node's mempool and verified bodies."""

    def candidates(self, parent: Block, height: int) -> list[Transaction]:
        """Mempool transactions for a new block on ``parent`` (none already in its chain)."""
        ...

    def body(self, tx_id: bytes) -> Transaction | None: ...

    def pending(self) -> bool:
        """True when transactions wait to be proposed."""
        ...

    def max_block_txs(self) -> int: ...

    def request_bodies(self, tx_ids: Sequence[bytes]) -> None:
        """Ask peers for bodies this node lacks."""
        ...


def check_tx_root(block: Block) -> None:
    """The block hash covers the header only; its ``txs`` root and ``count`` bind the ids."""
    if block.header.get("count") != len(block.tx_ids) or merkle_root(list(block.tx_ids)).hex() != block.header["txs"]:
        raise InvalidMessage(f"block {block.height}: transaction ids do not match the header's txs root")


Committed = Callable[[Block, QuorumCertificate, Sequence[Transaction], BlockResult], None]


class AppPayload:
    """``ledger.consensus`` ``Payload`` over an ``Application``."""

    def __init__(self, app: Application, source: TxSource, on_committed: Committed) -> None:
        self.app = app
        self.source = source
        self.on_committed = on_committed

    def propose(self, parent: Block, height: int) -> tuple[list[bytes], dict[str, Any]]:
        proposal = self.app.prepare_proposal(height, self.source.candidates(parent, height))
        return [t.id for t in proposal.txs], proposal.fields

    def validate(self, block: Block, parent: Block) -> None:
        check_tx_root(block)
        if len(set(block.tx_ids)) != len(block.tx_ids):
            raise InvalidMessage("a transaction id appears twice in the block")
        if len(block.tx_ids) > self.source.max_block_txs():
            raise InvalidMessage("block has more transactions than the limit")
        txs = self._bodies(block)
        missing = len(block.tx_ids) - len(txs)
        if missing:
            raise InvalidMessage(f"{missing} transaction bodies unknown")
        try:
            self.app.process_proposal(block.header, txs)
        except InvalidProposal as exc:
            raise InvalidMessage(str(exc)) from None

    def has_work(self) -> bool:
        return self.source.pending()

    def commit(self, blocks: tuple[tuple[Block, QuorumCertificate], ...]) -> None:
        for block, qc in blocks:
            txs = self._bodies(block)
            if len(txs) != len(block.tx_ids):
                have = {t.id for t in txs}
                lacking = [t for t in block.tx_ids if t not in have]
                self.source.request_bodies(lacking)
                raise BodiesMissing(f"block {block.height}: {len(lacking)} transaction bodies not here yet")
            if "results" in block.header:  # (blocks made before results roots existed lack it)
                try:
                    # what n - f validators certified must be what this node computed (a full
                    # node, or a node catching up by sync, never ran process_proposal on it)
                    self.app.process_proposal(block.header, txs)
                except InvalidProposal as exc:
                    raise StateDiverged(f"committed block {block.height}: {exc}") from None
            result = self.app.execute_block(block, txs)
            self.app.commit(block, qc, txs, result)
            self.on_committed(block, qc, txs, result)

    def _bodies(self, block: Block) -> list[Transaction]:
        out = []
        for tx_id in block.tx_ids:
            tx = self.source.body(tx_id)
            if tx is not None:
                out.append(tx)
        return out
