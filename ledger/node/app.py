"""The ledger application: the ``Application`` (ledger/node/abci.py) the node runs under
consensus; executes committed blocks deterministically over the state tree.

Per transaction, in block order (receipt codes from ``abci``):

1. ``expiry < height`` → ``EXPIRED``;
2. its id or ``(sender, nonce)`` already committed, or earlier in this block → ``REPLAY``
   (no effect, not indexed);
3. dispatch on ``type``; an unknown type → ``UNKNOWN_TYPE``; a sender the chain does not
   admit, or a handler's refusal → ``BAD_PAYLOAD`` with the reason; otherwise the handler's
   writes are applied.

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
from typing import TYPE_CHECKING, Any, Protocol

from ..consensus.types import Block, QuorumCertificate
from ..contracts.context import Context, Outcome, Refused, TxType, handler_from_writes, run_handler
from ..state.abc import KVStore
from ..state.smt import SparseMerkleTree
from ..tx import InvalidTransaction, Transaction
from .abci import (
    BAD_PAYLOAD,
    EXPIRED,
    OK,
    REPLAY,
    UNKNOWN_TYPE,
    AppInfo,
    Application,
    BlockResult,
    CheckResult,
    InvalidProposal,
    Proposal,
    QueryResult,
    Receipt,
)
from .admissions import Admissions, BlockAdmissions
from .chainstore import ChainStore
from .results import results_root

if TYPE_CHECKING:
    from ..governance import Governance

SYS_PREFIX = b"sys/"  # where governance keeps users, validators, parameters and revocations

__all__ = ["DEFAULT_HANDLERS", "LedgerApp", "Precomputer", "Refused", "kv_set"]

Reader = Callable[[bytes], bytes | None]
PlainHandler = Callable[[Transaction, Reader], Mapping[bytes, bytes | None]]

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


DEFAULT_HANDLERS: dict[str, TxType] = {"kv.set": TxType(handler_from_writes(kv_set), keys=_kv_keys)}


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


def _as_type(h: TxType | PlainHandler) -> TxType:
    return h if isinstance(h, TxType) else TxType(handler_from_writes(h))


class _BlockRun:
    """The state of one block's execution: staged writes and the committed reads behind them."""

    def __init__(self, tree: SparseMerkleTree) -> None:
        self.tree = tree
        self.staged: dict[bytes, bytes | None] = {}
        self.committed: dict[bytes, bytes | None] = {}  # the tree's values are fixed during a block

    def read(self, key: bytes) -> bytes | None:
        if key in self.staged:
            return self.staged[key]
        try:
            return self.committed[key]
        except KeyError:
            value = self.committed[key] = self.tree.get(key)
            return value


def _header_root(header: Mapping[str, Any], field: str) -> tuple[int, str]:
    value = header.get(field)
    if not isinstance(value, dict) or set(value) != {"height", "root"}:
        raise InvalidProposal(f"header field {field!r} must be {{height, root}}")
    k, root = value["height"], value["root"]
    if isinstance(k, bool) or not isinstance(k, int) or k < 0 or not isinstance(root, str):
        raise InvalidProposal(f"header field {field!r} must hold an integer height and a hex root")
    return k, root


class LedgerApp(Application):
    def __init__(self, store: KVStore, handlers: Mapping[str, TxType | PlainHandler] | None = None,
                 governance: Governance | None = None, precomputer: Precomputer | None = None,
                 chain_id: str | None = None) -> None:
        self.store = store
        self.tree = SparseMerkleTree(store)
        self.chain = ChainStore(store)
        self.chain_id = chain_id if chain_id is not None else (governance.chain if governance else None)
        self.types: dict[str, TxType] = {k: _as_type(v) for k, v in (handlers or DEFAULT_HANDLERS).items()}
        self.governance = governance
        if governance is not None:
            self.types.update(governance.types())
        self.precomputer = precomputer
        self.admin_types = frozenset(name for name, t in self.types.items() if t.admin)
        self.sys_changed = False  # the last executed block changed validators, params or revocations
        self.last_stats: dict[str, int] = {}
        self.admissions = Admissions()  # sender verdicts carried across blocks (admissions.py)
        self._block_admissions: BlockAdmissions | None = None  # of the block executed last

    # ------------------------------------------------------------ reads
    def read(self, key: bytes) -> bytes | None:
        """A committed state value (latest version)."""
        return self.tree.get(key)

    @property
    def height(self) -> int:
        return self.tree.version

    def root(self) -> bytes:
        return self.tree.root()

    def info(self) -> AppInfo:
        h = self.tree.version
        results = self.chain.results_root(h)
        return AppInfo(h, self.tree.root(), results if results is not None else b"")

    def query(self, key: bytes, height: int | None = None) -> QueryResult:
        h = self.tree.version if height is None else height
        return QueryResult(self.tree.get(key, h), self.tree.prove(key, h), h, self.tree.root(h))

    # ------------------------------------------------------------ mempool and proposals
    def check_tx(self, tx: Transaction) -> CheckResult:
        """Chain id, expiry, replays and admission of a verified transaction."""
        # every committed transaction records its nonce (ChainStore.commit_records), so one
        # look-up answers both replays; the second only picks the message
        if self.chain.nonce_used(tx.nonce_key):
            if self.chain.has_tx(tx.id):
                return CheckResult(False, "already committed")
            return CheckResult(False, f"nonce {tx.nonce} of this sender is already used")
        try:
            tx.check_for_chain(self.chain_id if self.chain_id is not None else tx.chain, self.height + 1)
        except InvalidTransaction as exc:
            return CheckResult(False, str(exc))
        if self.governance is not None:
            reason = self._admission(tx)
            if reason is not None:
                return CheckResult(False, reason)
        return CheckResult(True)

    def _admission(self, tx: Transaction) -> str | None:
        """``governance.admission_error`` now, remembered per sender (``admissions.py``)."""
        assert self.governance is not None
        return self.admissions.mempool(self.governance, self.read, tx, self.height)

    def header_fields(self) -> dict[str, Any]:
        """``exec`` and ``results``: the roots of the last executed (committed) block."""
        h = self.tree.version
        results = self.chain.results_root(h)
        assert results is not None, f"no results root stored for committed height {h}"
        return {"exec": {"height": h, "root": self.tree.root().hex()},
                "results": {"height": h, "root": results.hex()}}

    def prepare_proposal(self, height: int, candidates: Sequence[Transaction]) -> Proposal:
        return Proposal(list(candidates), self.header_fields())

    def process_proposal(self, header: Mapping[str, Any], txs: Sequence[Transaction]) -> None:
        k, root = _header_root(header, "exec")
        if k > self.height:
            raise InvalidProposal(f"exec height {k} is ahead of this node's committed {self.height}")
        if self.tree.root(k).hex() != root:
            raise InvalidProposal(f"exec root for height {k} differs from this node's state")
        rk, rroot = _header_root(header, "results")
        stored = self.chain.results_root(rk)
        if rk != k or stored is None or stored.hex() != rroot:
            raise InvalidProposal(f"results for height {rk} differ from this node's receipts")

    # ------------------------------------------------------------ execution
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

    def _screen(self, height: int, txs: Sequence[Transaction],
                receipts: list[Receipt | None]) -> list[tuple[int, Transaction, TxType]]:
        """Pass 1: what no handler decides (replays, expiry, unknown types)."""
        seen_nonces: set[bytes] = set()
        todo: list[tuple[int, Transaction, TxType]] = []
        for i, tx in enumerate(txs):
            nk = tx.nonce_key
            # the same id means the same nonce key, and a committed transaction's nonce is
            # recorded with it: the nonce look-ups cover repeated ids too
            if nk in seen_nonces or self.chain.nonce_used(nk):
                receipts.append(Receipt(REPLAY, "replay: this transaction or its nonce is already committed"))
                continue
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
        return todo

    def _run_in_order(self, run: _BlockRun, todo: list[tuple[int, Transaction, TxType]],
                      pre: dict[int, Outcome], height: int, time_ms: int, caps: tuple[int, int],
                      receipts: list[Receipt | None]) -> BlockAdmissions:
        """Pass 3: block order; a precomputed outcome counts only if everything it read is unchanged."""
        call_cap, block_fuel = caps
        fuel_left = block_fuel
        reused = 0
        gov = self.governance
        read = run.read
        perms = gov.perms(read) if gov is not None else {}
        senders = self.admissions.block(height, not any(k.startswith(SYS_PREFIX) for k in run.staged))
        for i, tx, ttype in todo:
            if gov is not None:
                denied = senders.error(gov, read, tx, time_ms) or (
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
            run.staged.update(out.writes)
            if gov is not None and any(k.startswith(SYS_PREFIX) for k in out.writes):
                senders.sys_written()  # users, validators or parameters changed
                if gov.PERMS_KEY in out.writes:
                    perms = gov.perms(read)
            receipts[i] = Receipt(OK, "ok", tuple(out.events), out.fuel_used, out.result)
        self.last_stats = {"txs": len(receipts), "precomputed": len(pre), "reused": reused,
                           "fuel": block_fuel - fuel_left}
        return senders

    def execute_block(self, block: Block, txs: Sequence[Transaction]) -> BlockResult:
        """Stage committed block ``block`` (height = last committed + 1)."""
        height = block.height
        time_ms = int(block.header.get("time", 0))
        run = _BlockRun(self.tree)
        if self.governance is not None:
            run.staged.update(self.governance.begin_block(height, block, run.read))
        caps = self._fuel_caps(run.read)
        receipts: list[Receipt | None] = []
        todo = self._screen(height, txs, receipts)
        # pass 2: transactions that may run ahead, in worker processes, against the state so far
        pre: dict[int, Outcome] = {}
        if self.precomputer is not None:
            jobs = [(i, tx, t, self._call_fuel(tx, caps[0]) if t.metered else 0)
                    for i, tx, t in todo if t.parallel]
            if jobs:
                pre = self.precomputer.precompute(jobs, height, time_ms, run.read)
        self._block_admissions = self._run_in_order(run, todo, pre, height, time_ms, caps, receipts)
        self.sys_changed = self.governance is not None and self.governance.changed(run.staged)
        root = self.tree.apply(height, run.staged)
        done = [r for r in receipts if r is not None]
        assert len(done) == len(txs)
        return BlockResult(root, done, results_root([t.id for t in txs], [r.canonical() for r in done]))

    def commit(self, block: Block, qc: QuorumCertificate, txs: Sequence[Transaction],
               result: BlockResult) -> AppInfo:
        """Persist the staged state with the block, its receipts and index entries, atomically."""
        extra: dict[bytes, bytes | None] = dict(ChainStore.commit_records(
            block, qc, txs, result.receipts, result.results_root, self.admin_types))
        certified = block.header.get("results")
        if isinstance(certified, dict) and isinstance(certified.get("height"), int):
            key = b"C" + int(certified["height"]).to_bytes(8, "big")
            if self.store.get(key) is None:
                extra[key] = block.height.to_bytes(8, "big")
        root = self.tree.commit(extra=extra)
        senders, self._block_admissions = self._block_admissions, None
        carried = senders.carried() if senders is not None and senders.height == block.height else None
        self.admissions.committed(block.height, carried)
        return AppInfo(block.height, root, result.results_root)

