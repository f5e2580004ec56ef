"""Deterministic state, storage and Merkle roots of the ledger core.

Owns: the authenticated versioned key-value state (``smt`` on top of ``proof``), the
crash-safe embedded store (``store``) and the narrow ABCI-like interface the consensus engine calls (``abc``, ``machine``). Must not
import ``ledger.consensus``, ``ledger.net`` or anything above ``ledger``; must not define
the transaction format (opaque bytes here). The transaction Merkle tree is
``ledger.crypto.merkle`` (below consensus). Modules, in dependency order:

- ``errors``   every error raised here
- ``proof``    pure SMT hashing rules, ``Proof`` and ``verify_proof`` (no storage)
- ``abc``      the interfaces: ``KVStore``, ``AuthenticatedState``, ``Application``
- ``store``    ``MemoryStore``, ``LMDBStore``, ``SQLiteStore``: atomic batches
- ``smt``      the versioned compact sparse Merkle tree over a ``KVStore``
- ``buffer``   one block's pending writes with nested snapshot/revert (py-evm style)
- ``machine``  ``BaseApplication`` (does nothing) and ``KVApplication`` (reference app)

Canonical JSON comes from ``ledger.codec``. The formats are specified in
``docs/spec/state.md``. This ``__init__`` imports nothing, so an offline verifier that
imports ``ledger.state.proof`` does not load the store (``lmdb``).
"""
