"""Read services over a node: what the HTTP API answers, with no HTTP in it.

Every method takes keyword-only arguments, returns plain JSON-ready values (or canonical JSON
bytes where the store already holds them) and raises a typed error: ``NotFound`` (with
``details`` a client can still use, e.g. the proof that a state key is absent) or
``InvalidQuery``. The routes in ``api/routes/`` call these and nothing else of the node.
They run on the node's event loop: each is a few store reads.
"""

from __future__ import annotations

from typing import Any

from ..consensus.types import Block
from ..contracts.lifecycle import contract_history, contract_info
from ..crypto.merkle import inclusion_proof
from ..errors import LedgerError
from .runtime import Node

MAX_HEIGHT = (1 << 63) - 1  # heights are stored as 8 bytes


class QueryError(LedgerError):
    """A read that cannot be answered; ``details`` is JSON for the client (or None)."""

    def __init__(self, message: str, details: Any = None) -> None:
        super().__init__(message)
        self.details = details


class NotFound(QueryError):
    """Nothing committed (or pending) under that id, height, key or name."""


class InvalidQuery(QueryError):
    """Arguments that cannot name anything (e.g. a time range that ends before it starts)."""


class NodeQueries:
    def __init__(self, node: Node) -> None:
        self.node = node

    def status(self, *, role: str, org: str, peers_online: list[str]) -> dict[str, Any]:
        """This node, its last committed block, the validators and the peers it sees."""
        s = self.node.status()
        s.update({"role": role, "org": org, "chain": self.node.chain, "peers_online": sorted(peers_online)})
        return s

    def transaction(self, *, tx_id: str) -> dict[str, Any]:
        """Status, block, receipt, inclusion proof and (when the chain store serves one) the
        receipt proof of a transaction; ``pending`` while it waits in the mempool."""
        try:
            raw_id = bytes.fromhex(tx_id)
        except ValueError:
            raise InvalidQuery("a transaction id is 64 hex digits", {"id": tx_id}) from None
        chain = self.node.app.chain
        rec = chain.tx(raw_id)
        if rec is None:
            if raw_id in self.node.mempool:
                return {"id": tx_id, "status": "pending"}
            raise NotFound(f"no transaction {tx_id} committed or pending here", {"id": tx_id, "status": "unknown"})
        block_rec = chain.block_record(rec.height)
        if block_rec is None:  # the index names a block this store must hold
            raise NotFound(f"block {rec.height} of transaction {tx_id} is missing", {"id": tx_id})
        block = Block.from_wire(block_rec["block"])
        path = inclusion_proof(list(block.tx_ids), rec.index)
        proven = chain.receipt_proof(raw_id)
        if proven is None:
            raise NotFound(f"the receipt of transaction {tx_id} is missing", {"id": tx_id})
        receipt, receipt_proof = proven
        out = {
            "id": tx_id, "status": "committed", "height": rec.height, "index": rec.index,
            "block_hash": block.hash.hex(), "receipt": receipt, "receipt_proof": receipt_proof, "tx": rec.tx,
            "proof": {"tx": tx_id, "height": rec.height, "index": rec.index, "size": len(block.tx_ids),
                      "path": [p.hex() for p in path], "root": block.header["txs"]},
        }
        return out

    def block(self, *, height: int) -> bytes | dict[str, Any]:
        """A committed block with its QC and receipts (canonical JSON bytes as stored)."""
        if not 0 <= height <= MAX_HEIGHT:
            raise InvalidQuery(f"a height is an integer in [0, 2^63), not {height}")
        if height == 0:
            g = self.node.genesis
            return {"height": 0, "hash": g.hash.hex(), "header": g.header, "qc": None, "tx_ids": [], "receipts": []}
        view = self.node.app.chain.block_view(height)
        if view is None:
            raise NotFound(f"no committed block at height {height}", {"height": height,
                                                                        "committed": self.node.app.chain.head})
        return view

    def state(self, *, key: str) -> dict[str, Any]:
        """A raw state value with its Merkle proof against the last committed state root; an
        absent key raises ``NotFound`` whose details are the same view with the absence proof."""
        try:
            k = key.encode()
        except UnicodeEncodeError:
            raise InvalidQuery("a state key must be valid Unicode") from None
        app = self.node.app
        value = app.read(k)
        text: str | None = None
        if value is not None:
            try:
                text = value.decode("utf-8")
            except UnicodeDecodeError:
                text = None
        view = {"key": key, "height": app.height, "root": app.root().hex(), "value": text,
                "value_hex": None if value is None else value.hex(), "proof": app.tree.prove(k).to_json_obj()}
        if value is None:
            raise NotFound(f"no value under {key!r} (the proof shows its absence)", view)
        return view

    def events(self, *, type_: str, key: str | None, from_height: int, to_height: int | None,
               limit: int) -> list[dict[str, Any]]:
        """Committed events of one type (and key), oldest first."""
        if not type_:
            raise InvalidQuery("an event type is needed, e.g. ft.Transfer")
        if to_height is not None and to_height < from_height:
            raise InvalidQuery("to_height is below from_height")
        return self.node.app.chain.events(type_, key, from_height=from_height, to_height=to_height, limit=limit)

    def audit(self, *, since_ms: int, until_ms: int | None, actor: str | None, type_: str | None,
              limit: int) -> list[dict[str, Any]]:
        """Administrative operations in block-time order."""
        if until_ms is not None and until_ms < since_ms:
            raise InvalidQuery("need since_ms <= until_ms")
        return self.node.app.chain.audit(since_ms=since_ms, until_ms=until_ms, actor=actor, type_=type_,
                                         limit=limit)

    def proof_bundle(self, *, tx_ids: list[str]) -> dict[str, Any]:
        """Everything an offline verifier needs about these committed transactions
        (``ledger.node.bundle``; raises its ``BundleError``)."""
        from .bundle import proof_bundle

        return proof_bundle(self.node, tx_ids)

    def contract(self, *, name: str) -> dict[str, Any]:
        """A user contract's record, versions and lifecycle history."""
        read = self.node.app.read
        info = contract_info(read, name)
        if info is None:
            raise NotFound(f"no contract {name!r}", {"name": name})
        info["history"] = contract_history(read, name)
        return info
