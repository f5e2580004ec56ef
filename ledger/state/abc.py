"""The interfaces of the state layer, gathered and documented in one place.

Owns the contracts between the parts: ``KVStore`` (the embedded store), ``AuthenticatedState``
(versioned key-value state with a root and proofs) and ``Application`` (what the consensus
engine calls, in the manner of CometBFT's ABCI), plus the small result types they return.
Must not hold implementations: ``store``, ``smt`` and ``machine`` implement these.

Which results must be identical on every honest node (the *Deterministic* column of ABCI):

=================  =============  =================================================
method             deterministic  why
=================  =============  =================================================
check_tx           no             mempool admission; may depend on local state/time
execute_block      yes            its ``state_root`` goes into the next block header
commit             yes            persists exactly what ``execute_block`` staged
query              yes            value and proof for a committed height
info               yes            after restart, says where to resume replay
=================  =============  =================================================
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterator, Mapping, Sequence
from typing import NamedTuple, Protocol, runtime_checkable

from .proof import Proof

__all__ = [
    "AppInfo",
    "Application",
    "AuthenticatedState",
    "BlockResult",
    "CheckResult",
    "KVStore",
    "QueryResult",
    "Receipt",
]


@runtime_checkable
class KVStore(Protocol):
    """An embedded byte-string store whose batches are atomic and durable.

    Requirement: after ``write(batch)`` returns, a crash (even ``kill -9``) leaves the store
    holding either every change of the batch, and of every earlier batch, or none of this
    batch. No partial batch is ever visible, after a restart or to readers.
    """

    def get(self, key: bytes) -> bytes | None:
        """The value stored under ``key``, or ``None``."""
        ...

    def write(self, batch: Mapping[bytes, bytes | None]) -> None:
        """Apply ``batch`` in one atomic, durable commit; a ``None`` value deletes the key."""
        ...

    def iterate(self, prefix: bytes) -> Iterator[tuple[bytes, bytes]]:
        """Every ``(key, value)`` whose key starts with ``prefix``, in ascending key order.

        The iteration sees one consistent snapshot; do not ``write`` while iterating.
        """
        ...

    def close(self) -> None:
        """Release the store; later calls raise ``StoreClosed``. Closing twice is allowed."""
        ...


class AuthenticatedState(ABC):
    """Versioned key-value state with a Merkle root per version (version = block height).

    Version 0 is the empty state. Each block stages one batch with ``apply``; ``commit``
    persists it atomically together with any extra records the caller passes (block data),
    ``rollback`` discards it (snapshot/revert/commit, as in py-evm).
    """

    @property
    @abstractmethod
    def version(self) -> int:
        """The last committed version (0 before any commit)."""

    @abstractmethod
    def root(self, version: int | None = None) -> bytes:
        """The root of ``version`` (default: the last committed one, or the staged one)."""

    @abstractmethod
    def apply(self, version: int, updates: Mapping[bytes, bytes | None]) -> bytes:
        """Stage ``updates`` (``None`` deletes) as ``version`` = last + 1; return its root."""

    @abstractmethod
    def commit(self, extra: Mapping[bytes, bytes | None] | None = None) -> bytes:
        """Persist the staged version and ``extra`` records in one atomic write; return its root."""

    @abstractmethod
    def rollback(self) -> None:
        """Discard the staged version, if any."""

    @abstractmethod
    def get(self, key: bytes, version: int | None = None) -> bytes | None:
        """The value of ``key`` at ``version`` (default: latest, staged included), or ``None``."""

    @abstractmethod
    def prove(self, key: bytes, version: int | None = None) -> Proof:
        """A membership or non-membership proof of ``key`` against ``root(version)``."""

    @abstractmethod
    def prune(self, keep_last: int) -> int:
        """Forget versions older than the last ``keep_last``; return how many nodes were deleted."""


class CheckResult(NamedTuple):
    """Whether a transaction may enter the mempool, and if not, why (for the submitter)."""

    ok: bool
    reason: str


class Receipt(NamedTuple):
    """The outcome of one transaction of a block. ``code`` 0 is success."""

    tx_index: int
    code: int
    info: str


class BlockResult(NamedTuple):
    """What ``execute_block`` returns: the staged state root and one receipt per transaction."""

    state_root: bytes
    receipts: tuple[Receipt, ...]


class QueryResult(NamedTuple):
    """A value at a committed height (``None``: absent) with its proof against that root."""

    value: bytes | None
    proof: Proof
    height: int
    root: bytes


class AppInfo(NamedTuple):
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
