"""The interfaces of the state layer, gathered and documented in one place.

Owns the contracts between the parts: ``KVStore`` (the embedded store) and
``AuthenticatedState`` (versioned key-value state with a root and proofs). Must not hold
implementations: ``store`` and ``smt`` implement these. The application interface the node
runs under consensus (CometBFT's ABCI shape) is ``ledger.node.abci.Application``.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterator, Mapping
from typing import Protocol, runtime_checkable

from .proof import Proof

__all__ = ["AuthenticatedState", "KVStore"]


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
