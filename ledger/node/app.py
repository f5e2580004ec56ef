"""The ledger application: executes committed blocks deterministically over the state tree.

Per transaction, in block order (receipt codes from ``chainstore``):

1. ``expiry < height`` → ``EXPIRED``;
2. its id or ``(sender, nonce)`` already committed, or earlier in this block → ``REPLAY``
   (no effect, not indexed);
3. dispatch on ``type``; an unknown type → ``UNKNOWN_TYPE``, a handler's refusal →
   ``BAD_PAYLOAD`` with the handler's reason; otherwise the handler's writes are applied.

Handlers see only the transaction and a read view of state plus the writes staged so far
in the block; they return the keys to write. No clocks, floats or unordered iteration
reach a write. Contract execution (issue 4) plugs in here as more handlers.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING

from ..consensus.types import Block, QuorumCertificate
from ..state.abc import KVStore
from ..state.smt import SparseMerkleTree
from ..tx import Transaction
from .chainstore import BAD_PAYLOAD, EXPIRED, OK, REPLAY, UNKNOWN_TYPE, ChainStore, Receipt

if TYPE_CHECKING:
    from .governance import Governance

Reader = Callable[[bytes], bytes | None]
Handler = Callable[[Transaction, Reader], Mapping[bytes, bytes | None]]


class Refused(Exception):
    """A handler refuses a transaction; the message goes into its receipt."""


def kv_set(tx: Transaction, read: Reader) -> Mapping[bytes, bytes | None]:
    """``kv.set {"key": str, "value": str}``: the reference application of the ledger core."""
    key, value = tx.payload.get("key"), tx.payload.get("value")
    if not isinstance(key, str) or not 0 < len(key.encode()) <= 256:
        raise Refused("key must be a string of 1 to 256 bytes")
    if not isinstance(value, str) or len(value.encode()) > 4096:
        raise Refused("value must be a string of at most 4096 bytes")
    return {b"kv/" + key.encode(): value.encode()}


DEFAULT_HANDLERS: dict[str, Handler] = {"kv.set": kv_set}


class LedgerApp:
    def __init__(self, store: KVStore, handlers: Mapping[str, Handler] | None = None,
                 governance: Governance | None = None) -> None:
        self.store = store
        self.tree = SparseMerkleTree(store)
        self.chain = ChainStore(store)
        self.handlers = dict(handlers or DEFAULT_HANDLERS)
        self.governance = governance
        if governance is not None:
            self.handlers.update(governance.handlers())
        self.sys_changed = False  # the last executed block changed validators, params or revocations

    def read(self, key: bytes) -> bytes | None:
        """A committed state value (latest version)."""
        return self.tree.get(key)

    @property
    def height(self) -> int:
        return self.tree.version

    def root(self) -> bytes:
        return self.tree.root()

    def execute(self, height: int, txs: Sequence[Transaction],
                block: Block | None = None) -> tuple[bytes, list[Receipt]]:
        """Stage block ``height``; returns its state root and receipts."""
        staged: dict[bytes, bytes | None] = {}
        seen_ids: set[bytes] = set()
        seen_nonces: set[bytes] = set()
        receipts: list[Receipt] = []

        def read(key: bytes) -> bytes | None:
            return staged[key] if key in staged else self.tree.get(key)

        if self.governance is not None:
            staged.update(self.governance.begin_block(height, block, read))

        for tx in txs:
            nk = tx.nonce_key
            if (tx.id in seen_ids or nk in seen_nonces or self.chain.has_tx(tx.id)
                    or self.chain.nonce_used(nk)):
                receipts.append(Receipt(REPLAY, "replay: this transaction or its nonce is already committed"))
                continue
            seen_ids.add(tx.id)
            seen_nonces.add(nk)
            if tx.expiry < height:
                receipts.append(Receipt(EXPIRED, f"expired at height {tx.expiry}"))
                continue
            handler = self.handlers.get(tx.type)
            if handler is None:
                receipts.append(Receipt(UNKNOWN_TYPE, f"unknown transaction type {tx.type!r}"))
                continue
            try:
                writes = handler(tx, read)
            except Refused as exc:
                receipts.append(Receipt(BAD_PAYLOAD, str(exc)))
                continue
            staged.update(writes)
            receipts.append(Receipt(OK, "ok"))
        self.sys_changed = self.governance is not None and self.governance.ctx.changed
        root = self.tree.apply(height, staged)
        return root, receipts

    def commit(self, block: Block, qc: QuorumCertificate, txs: Sequence[Transaction],
               receipts: Sequence[Receipt]) -> bytes:
        """Persist the staged state with the block and its index entries, atomically."""
        return self.tree.commit(extra=ChainStore.commit_records(block, qc, txs, receipts))
