"""Reference state machines behind a bytes-in, bytes-out ``Application``, used by the tests only
(the node runs ``ledger.node.app.LedgerApp``).

Owns ``BaseApplication`` (accepts everything, keeps no state: for testing the engine
alone) and ``KVApplication``, the reference application: transactions are canonical JSON
``{"op":"set","key":K,"value":V}`` or ``{"op":"delete","key":K}`` (``K``, ``V`` strings),
state lives in a ``SparseMerkleTree``, and each committed block is stored with its state
nodes in one atomic batch. Must not define the ledger's real transaction format (that
belongs to the transaction layer) nor talk to the network.
"""

from __future__ import annotations

import json
from abc import ABC, abstractmethod
from collections.abc import Sequence
from typing import Any, NamedTuple

from ledger.codec import EncodingError, canonical, parse
from ledger.crypto.merkle import merkle_root
from ledger.node.abci import CheckResult, QueryResult, Receipt
from ledger.state.abc import KVStore
from ledger.state.errors import HeightOutOfOrder, PendingChanges, VersionNotFound
from ledger.state.proof import EMPTY_HASH, Proof
from ledger.state.smt import SparseMerkleTree

BLOCK_PREFIX = b"B"
MAX_KV_TX_BYTES = 64 * 1024
CODE_OK = 0
CODE_REJECTED = 1


# the bytes-in, bytes-out application interface these reference machines implement (the
# node's own interface is ledger.node.abci.Application)
class BlockResult(NamedTuple):  # (the node's also has the results root)
    """What ``execute_block`` returns: the staged state root and one receipt per transaction."""

    state_root: bytes
    receipts: tuple[Receipt, ...]


class AppInfo(NamedTuple):  # (the node's also has the results root)
    """The last committed height (0: none yet) and the state root at it."""

    last_height: int
    last_root: bytes


class Application(ABC):
    """What the consensus engine calls. Heights start at 1 and are contiguous.

    Life of a block: ``execute_block(h, txs)`` stages the block's effects and returns the
    state root; ``commit()`` persists them atomically with the block. Executing height ``h``
    again before ``commit`` discards the earlier staging. On start, the engine calls
    ``info()`` and replays committed blocks above ``last_height``.
    """

    @abstractmethod
    def info(self) -> AppInfo:
        """The last committed height and root."""

    @abstractmethod
    def check_tx(self, tx: bytes) -> CheckResult:
        """Cheap admission check of an opaque transaction; must not change state."""

    @abstractmethod
    def execute_block(self, height: int, txs: Sequence[bytes]) -> BlockResult:
        """Execute ``txs`` in order as block ``height`` (= last committed + 1), staging the result."""

    @abstractmethod
    def commit(self) -> AppInfo:
        """Persist the staged block atomically; return the new last height and root."""

    @abstractmethod
    def query(self, key: bytes, height: int | None = None) -> QueryResult:
        """The value of ``key`` at committed ``height`` (default: last) with a proof."""


class BaseApplication(Application):
    """Accepts every transaction and keeps no state: the root is always the empty root."""

    def __init__(self) -> None:
        self._height = 0
        self._staged: int | None = None

    def info(self) -> AppInfo:
        return AppInfo(self._height, EMPTY_HASH)

    def check_tx(self, tx: bytes) -> CheckResult:
        return CheckResult(True, "")

    def execute_block(self, height: int, txs: Sequence[bytes]) -> BlockResult:
        if height != self._height + 1:
            raise HeightOutOfOrder(f"the next block height is {self._height + 1}, not {height}")
        self._staged = height
        return BlockResult(EMPTY_HASH, tuple(Receipt(CODE_OK, "") for i in range(len(txs))))

    def commit(self) -> AppInfo:
        if self._staged is None:
            raise PendingChanges("no block is staged: call execute_block() before commit()")
        self._height, self._staged = self._staged, None
        return self.info()

    def query(self, key: bytes, height: int | None = None) -> QueryResult:
        h = self._height if height is None else height
        if not 0 <= h <= self._height:
            raise VersionNotFound(f"height {h} is not committed (last committed: {self._height})")
        return QueryResult(None, Proof((), None), h, EMPTY_HASH)


def parse_kv_tx(tx: bytes) -> tuple[bytes, bytes | None]:
    """``(key, value)`` of a reference-app transaction (``None`` value: delete); ``ValueError`` says why not."""
    if len(tx) > MAX_KV_TX_BYTES:
        raise ValueError(f"transaction is {len(tx)} bytes; the limit is {MAX_KV_TX_BYTES}")
    try:
        obj: Any = parse(tx, strict=True)
    except EncodingError as exc:
        raise ValueError(f"transaction is not canonical JSON: {exc}") from None
    if not isinstance(obj, dict):
        raise ValueError("transaction must be a JSON object")
    op = obj.get("op")
    if op == "set":
        expected = {"op", "key", "value"}
    elif op == "delete":
        expected = {"op", "key"}
    else:
        raise ValueError('"op" must be "set" or "delete"')
    if set(obj) != expected:
        raise ValueError(f'a "{op}" transaction has exactly the fields {sorted(expected)}')
    key, value = obj["key"], obj.get("value")
    if not isinstance(key, str) or not key:
        raise ValueError('"key" must be a non-empty string')
    if op == "set" and not isinstance(value, str):
        raise ValueError('"value" must be a string')
    return key.encode("utf-8"), None if value is None else value.encode("utf-8")


class KVApplication(Application):
    """The reference key-value application over a ``KVStore`` (see the module docstring)."""

    def __init__(self, store: KVStore) -> None:
        self._store = store
        self._tree = SparseMerkleTree(store)
        self._staged_block: bytes | None = None

    @property
    def tree(self) -> SparseMerkleTree:
        return self._tree

    def info(self) -> AppInfo:
        v = self._tree.version
        return AppInfo(v, self._tree.root(v))

    def check_tx(self, tx: bytes) -> CheckResult:
        try:
            parse_kv_tx(tx)
        except ValueError as exc:
            return CheckResult(False, str(exc))
        return CheckResult(True, "")

    def execute_block(self, height: int, txs: Sequence[bytes]) -> BlockResult:
        if self._tree.staged_version is not None:
            self._tree.rollback()  # re-execution of a staged, uncommitted block
        if height != self._tree.version + 1:
            raise HeightOutOfOrder(f"the next block height is {self._tree.version + 1}, not {height}")
        updates: dict[bytes, bytes | None] = {}
        receipts = []
        for i, tx in enumerate(txs):
            try:
                key, value = parse_kv_tx(tx)
            except ValueError as exc:
                receipts.append(Receipt(CODE_REJECTED, str(exc)))
                continue
            updates[key] = value
            receipts.append(Receipt(CODE_OK, ""))
        root = self._tree.apply(height, updates)
        self._staged_block = canonical({
            "height": height,
            "receipts": [[i, r.code, r.info] for i, r in enumerate(receipts)],
            "state_root": root.hex(),
            "tx_root": merkle_root(txs).hex(),
            "txs": [bytes(tx).hex() for tx in txs],
        })
        return BlockResult(root, tuple(receipts))

    def commit(self) -> AppInfo:
        height = self._tree.staged_version
        if height is None or self._staged_block is None:
            raise PendingChanges("no block is staged: call execute_block() before commit()")
        self._tree.commit({BLOCK_PREFIX + height.to_bytes(8, "big"): self._staged_block})
        self._staged_block = None
        return self.info()

    def query(self, key: bytes, height: int | None = None) -> QueryResult:
        h = self._tree.version if height is None else height
        if h > self._tree.version:
            raise VersionNotFound(f"height {h} is not committed (last committed: {self._tree.version})")
        return QueryResult(self._tree.get(key, h), self._tree.prove(key, h), h, self._tree.root(h))

    def block(self, height: int) -> dict[str, Any] | None:
        """The stored record of committed block ``height`` (txs, receipts, roots), or ``None``."""
        raw = self._store.get(BLOCK_PREFIX + height.to_bytes(8, "big"))
        if raw is None:
            return None
        record: dict[str, Any] = json.loads(raw)
        return record
