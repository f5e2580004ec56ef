"""Every error raised by ``ledger.state``: one flat module.

Owns the typed errors of the state layer (store, Merkle trees, state machine). Must not
import anything else from ``ledger.state`` so that every module can import it.
"""

from __future__ import annotations

from ledger.errors import LedgerError


class StateError(LedgerError):
    """Base of every error raised by ``ledger.state``."""


class StoreError(StateError):
    """The embedded store failed (I/O, full disk, closed handle, wrong folder)."""


class StoreClosed(StoreError):
    """An operation was attempted on a store that was already closed."""


class StoreCorrupted(StoreError):
    """The store holds data that does not decode; restore the node's data folder from a peer."""


class VersionNotFound(StateError):
    """A state version (block height) that was never committed or has been pruned."""


class HeightOutOfOrder(StateError):
    """A block height that does not follow the last committed height."""


class PendingChanges(StateError):
    """A call that needs no staged (uncommitted) block while one is staged, or the reverse."""


class MalformedProof(StateError):
    """A proof that does not parse (wrong JSON shape, bad hex, wrong lengths)."""


class TransactionRejected(StateError):
    """A transaction the application rejects; the message says why. (Distinct from
    ``ledger.tx.InvalidTransaction``, a transaction that does not decode or verify.)"""


class InvalidArgument(StateError):
    """An argument of the wrong type or out of range; the message names it."""
