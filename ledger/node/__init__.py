"""A ledger node: the chain store, the ledger application, and the runtime that ties the
consensus engine, the mempool and the peer network together. The process entry point and
the HTTP API live in ``api/``."""
