"""Privacy computing: MPC, homomorphic encryption, PSI, zero-knowledge proofs, differential
privacy and private data collections (REQUIREMENTS P1–P7).

It uses the ledger only through ``ledger``'s public API (``ledger.crypto`` for TLS, keys and
hashes; later, the chain to authorise computations and record their transcripts).
``privacy.mpc`` is the secure multiparty computation engine for joint statistics (issue 13's
core: party transport, sum / count / mean / variance / shares; docs/privacy.md).
"""
