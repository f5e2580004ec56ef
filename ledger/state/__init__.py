"""Deterministic state, storage and Merkle roots of the ledger core.

Owns: the authenticated versioned key-value state (``smt`` on top of ``proof``), the
crash-safe embedded store (``store``) and the narrow ABCI-like interface the consensus
engine calls (``abc``). Must not
import ``ledger.consensus``, ``ledger.net`` or anything above ``ledger``; must not define
the transaction format (opaque bytes here). The transaction Merkle tree is
``ledger.crypto.merkle`` (below consensus). Modules, in dependency order:

- ``errors``   every error raised here
- ``proof``    pure SMT hashing rules, ``Proof`` and ``verify_proof`` (no storage)
- ``abc``      the interfaces: ``KVStore``, ``AuthenticatedState``, ``Application``
- ``store``    ``MemoryStore``, ``LMDBStore``, ``SQLiteStore``: atomic batches
- ``smt``      the versioned compact sparse Merkle tree over a ``KVStore``

The reference applications (``BaseApplication``, ``KVApplication``) and the nested-snapshot
write buffer (``StateBuffer``) are test helpers in ``tests/state/``. Canonical JSON comes from
``ledger.codec``. The formats are specified in
``docs/spec/state.md``. This ``__init__`` imports nothing, so an offline verifier that
imports ``ledger.state.proof`` does not load the store (``lmdb``).
"""
