"""Privacy computing: MPC, homomorphic encryption, PSI, zero-knowledge proofs, differential
privacy and private data collections (REQUIREMENTS P1–P7).

It uses its own engines (MPyC, TenSEAL, py_ecc, PSI) directly, and the ledger only through
``ledger``'s public API (to authorise computations and record their transcripts).
Nothing is implemented here yet; the package exists so the layer has its place.
"""
