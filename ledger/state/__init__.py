"""Deterministic state, storage and Merkle roots of the ledger core.

Owns: the transaction Merkle tree (``merkle``), the authenticated versioned key-value
state (``smt`` on top of ``proof``), the crash-safe embedded store (``store``) and the
narrow ABCI-like interface the consensus engine calls (``abc``, ``machine``). Must not
import ``ledger.consensus``, ``ledger.net`` or anything above ``ledger``; must not define
the transaction format (opaque bytes here). Modules, in dependency order:

- ``errors``   every error raised here
- ``codec``    canonical JSON (sorted keys, no floats, no whitespace, UTF-8)
- ``merkle``   RFC 6962-style binary Merkle tree over a block's transactions (SM3)
- ``proof``    pure SMT hashing rules, ``Proof`` and ``verify_proof`` (no storage)
- ``abc``      the interfaces: ``KVStore``, ``AuthenticatedState``, ``Application``
- ``store``    ``MemoryStore``, ``LMDBStore``, ``SQLiteStore``: atomic batches
- ``smt``      the versioned compact sparse Merkle tree over a ``KVStore``
- ``machine``  ``BaseApplication`` (does nothing) and ``KVApplication`` (reference app)

The formats are specified in ``docs/spec/state.md``.
"""
