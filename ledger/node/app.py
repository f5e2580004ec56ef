"""The ledger application: executes committed blocks deterministically over the state tree.

Per transaction, in block order (receipt codes from ``chainstore``):

1. ``expiry < height`` → ``EXPIRED``;
2. its id or ``(sender, nonce)`` already committed, or earlier in this block → ``REPLAY``
   (no effect, not indexed);
3. dispatch on ``type``; an unknown type → ``UNKNOWN_TYPE``, a handler's refusal →
   ``BAD_PAYLOAD`` with the handler's reason; otherwise the handler's writes are applied.

Handlers see only the transaction and a read view of state plus the writes staged so far
in the block; they return the keys to write. No clocks, floats or unordered iteration
reach a write. Handlers are ``TxType``s over a ``Context`` (``ledger.contracts.context``).

Parallel execution: transactions of ``parallel`` types are first run ahead by a
``Precomputer`` (worker processes) against the state before the block; in block order an
outcome is kept only if every value it read still holds at its place (and its fuel limit is
the one block order gives it), otherwise the transaction runs again there. The result is
therefore always that of serial execution in block order.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Protocol

from ..consensus.types import Block, QuorumCertificate
from ..contracts.context import Context, Outcome, Refused, TxType, legacy, run_handler
from ..state.abc import KVStore
from ..state.smt import SparseMerkleTree
from ..tx import Transaction
from .chainstore import BAD_PAYLOAD, EXPIRED, OK, REPLAY, UNKNOWN_TYPE, ChainStore, Receipt

if TYPE_CHECKING:
    from ..governance import Governance

__all__ = ["DEFAULT_HANDLERS", "LedgerApp", "Precomputer", "Refused", "kv_set"]

Reader = Callable[[bytes], bytes | None]
LegacyHandler = Callable[[Transaction, Reader], Mapping[bytes, bytes | None]]

DEFAULT_CALL_FUEL = 50_000_000
DEFAULT_BLOCK_FUEL = 30_000_000_000


def kv_set(tx: Transaction, read: Reader) -> Mapping[bytes, bytes | None]:
    """``kv.set {"key": str, "value": str}``: the reference application of the ledger core."""
    key, value = tx.payload.get("key"), tx.payload.get("value")
    if not isinstance(key, str) or not 0 < len(key.encode()) <= 256:
        raise Refused("key must be a string of 1 to 256 bytes")
    if not isinstance(value, str) or len(value.encode()) > 4096:
        raise Refused("value must be a string of at most 4096 bytes")
    return {b"kv/" + key.encode(): value.encode()}


def _kv_keys(tx: Transaction) -> list[bytes] | None:
    key = tx.payload.get("key")
    return [b"kv/" + key.encode()] if isinstance(key, str) else None


DEFAULT_HANDLERS: dict[str, TxType] = {"kv.set": TxType(legacy(kv_set), keys=_kv_keys)}


def standard_types() -> dict[str, TxType]:
    """What a node runs besides governance: key-value writes, tokens, certificates, the
    contract lifecycle and user-contract calls."""
    from ..contracts.registry import contract_types

    return {**DEFAULT_HANDLERS, **contract_types()}


class Precomputer(Protocol):
    """Runs transactions ahead of block order (e.g. in worker processes) against the state
    before the block; ``ledger.contracts.parallel``."""

    def precompute(self, jobs: Sequence[tuple[int, Transaction, TxType, int]], height: int, time_ms: int,
                   read: Reader) -> dict[int, Outcome]: ...


def _as_type(h: TxType | LegacyHandler) -> TxType:
    return h if isinstance(h, TxType) else TxType(legacy(h))


class LedgerApp:
    def __init__(self, store: KVStore, handlers: Mapping[str, TxType | LegacyHandler] | None = None,
                 governance: Governance | None = None, precomputer: Precomputer | None = None) -> None:
        self.store = store
        self.tree = SparseMerkleTree(store)
        self.chain = ChainStore(store)
        self.types: dict[str, TxType] = {k: _as_type(v) for k, v in (handlers or DEFAULT_HANDLERS).items()}
        self.governance = governance
        if governance is not None:
            self.types.update(governance.types())
        self.precomputer = precomputer
        self.admin_types = frozenset(name for name, t in self.types.items() if t.admin)
        self.sys_changed = False  # the last executed block changed validators, params or revocations
        self.last_stats: dict[str, int] = {}

    def read(self, key: bytes) -> bytes | None:
        """A committed state value (latest version)."""
        return self.tree.get(key)

    @property
    def height(self) -> int:
        return self.tree.version

    def root(self) -> bytes:
        return self.tree.root()

    def _fuel_caps(self, read: Reader) -> tuple[int, int]:
        if self.governance is None:
            return DEFAULT_CALL_FUEL, DEFAULT_BLOCK_FUEL
        p = self.governance.params(read)
        return p.max_call_fuel, p.max_block_fuel

    @staticmethod
    def _call_fuel(tx: Transaction, cap: int) -> int:
        asked = tx.payload.get("fuel")
        if isinstance(asked, int) and not isinstance(asked, bool) and 0 < asked < cap:
            return asked
        return cap

    def execute(self, height: int, txs: Sequence[Transaction],
                block: Block | None = None) -> tuple[bytes, list[Receipt]]:
        """Stage block ``height``; returns its state root and receipts."""
        staged: dict[bytes, bytes | None] = {}
        seen_ids: set[bytes] = set()
        seen_nonces: set[bytes] = set()
        receipts: list[Receipt | None] = []
        time_ms = int(block.header.get("time", 0)) if block is not None else 0

        committed: dict[bytes, bytes | None] = {}  # the tree's values are fixed during a block

        def read(key: bytes) -> bytes | None:
            if key in staged:
                return staged[key]
            try:
                return committed[key]
            except KeyError:
                value = committed[key] = self.tree.get(key)
                return value

        if self.governance is not None:
            staged.update(self.governance.begin_block(height, block, read))
        call_cap, block_fuel = self._fuel_caps(read)

        # pass 1: what no handler decides (replays, expiry, unknown types)
        todo: list[tuple[int, Transaction, TxType]] = []
        for i, tx in enumerate(txs):
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
            ttype = self.types.get(tx.type)
            if ttype is None:
                receipts.append(Receipt(UNKNOWN_TYPE, f"unknown transaction type {tx.type!r}"))
                continue
            receipts.append(None)
            todo.append((i, tx, ttype))

        # pass 2: transactions that may run ahead, in worker processes, against the state so far
        pre: dict[int, Outcome] = {}
        if self.precomputer is not None:
            jobs = [(i, tx, t, self._call_fuel(tx, call_cap) if t.metered else 0)
                    for i, tx, t in todo if t.parallel]
            if jobs:
                pre = self.precomputer.precompute(jobs, height, time_ms, read)

        # pass 3: block order; a precomputed outcome counts only if everything it read is unchanged
        fuel_left = block_fuel
        reused = 0
        gov = self.governance
        perms = gov.perms(read) if gov is not None else {}
        for i, tx, ttype in todo:
            if gov is not None:
                denied = gov.sender_error(read, tx, time_ms) or (
                    gov.permission_error(perms, tx, read, height) if perms else None)
                if denied is not None:
                    receipts[i] = Receipt(BAD_PAYLOAD, denied)
                    continue
            limit = min(self._call_fuel(tx, call_cap), fuel_left) if ttype.metered else 0
            out = pre.get(i)
            if (out is not None and not out.serial and out.fuel_limit == limit
                    and all(read(k) == v for k, v in out.reads.items())):
                reused += 1
            elif ttype.metered and limit <= 0:
                out = Outcome("the block's fuel budget is used up", {}, {}, [], 0, 0)
            else:
                out = run_handler(ttype, Context(tx, height, time_ms, read, fuel_limit=limit))
            fuel_left -= out.fuel_used
            if out.refused is not None:
                receipts[i] = Receipt(BAD_PAYLOAD, out.refused, fuel=out.fuel_used)
                continue
            staged.update(out.writes)
            if gov is not None and gov.PERMS_KEY in out.writes:
                perms = gov.perms(read)
            receipts[i] = Receipt(OK, "ok", tuple(out.events), out.fuel_used, out.result)
        self.last_stats = {"txs": len(txs), "precomputed": len(pre), "reused": reused,
                           "fuel": block_fuel - fuel_left}
        self.sys_changed = self.governance is not None and self.governance.changed(staged)
        root = self.tree.apply(height, staged)
        done = [r for r in receipts if r is not None]
        assert len(done) == len(txs)
        return root, done

    def commit(self, block: Block, qc: QuorumCertificate, txs: Sequence[Transaction],
               receipts: Sequence[Receipt]) -> bytes:
        """Persist the staged state with the block and its index entries, atomically."""
        return self.tree.commit(extra=ChainStore.commit_records(block, qc, txs, receipts, self.admin_types))


