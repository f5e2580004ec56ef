"""The node's HTTP API (FastAPI). Routes are thin: they parse, call the node, shape JSON.

- ``GET /v1/status``: who this node is, the last committed height and hash, validators,
  who is online.
- ``POST /v1/txs``: one signed transaction (202 with its id; 400 with the reason), or
  ``{"txs": [...]}`` (200 with one result per transaction). A transaction that is already
  committed is answered ``"status": "committed"``, not refused.
- ``GET /v1/txs/{id}``: status, block height, receipt, and the inclusion proof.
- ``GET /v1/blocks/{height}``: header, hash, the QC certifying it, transaction ids, receipts.

Bodies are read as raw bytes and parsed with the canonical-JSON codec (no model layer on
the hot path). Errors map to status codes here and nowhere else. Every route is ``async``:
FastAPI runs plain ``def`` routes on a thread pool, and the node (its engine, mempool and
store handles) belongs to the event loop's thread alone.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response

from ledger.codec import EncodingError, canonical, parse
from ledger.consensus.types import Block
from ledger.contracts.lifecycle import contract_history, contract_info
from ledger.crypto.merkle import inclusion_proof
from ledger.node.runtime import Node
from ledger.tx import InvalidTransaction, Transaction

MAX_BODY = 64 * 1024 * 1024


def _json(obj: Any, status: int = 200) -> Response:
    return Response(canonical(obj), status_code=status, media_type="application/json")


def create_app(node: Node, *, role: str, org: str, online: Any) -> FastAPI:
    app = FastAPI(title="Rongxin node API", version="1", docs_url="/docs", redoc_url=None)

    @app.get("/v1/status")
    async def status() -> Response:
        """This node, its last committed block and the validators and peers it sees."""
        s = node.status()
        s.update({"role": role, "org": org, "chain": node.chain, "peers_online": sorted(online())})
        return _json(s)

    @app.post("/v1/txs")
    async def submit(request: Request) -> Response:
        """Submit one signed transaction, or a batch as {"txs": [...]}."""
        raw = await request.body()
        if len(raw) > MAX_BODY:
            return _json({"detail": f"request larger than {MAX_BODY} bytes"}, 413)
        try:
            obj = parse(raw)
        except EncodingError as exc:
            return _json({"detail": f"malformed JSON: {exc}"}, 400)
        batch = isinstance(obj, dict) and set(obj) == {"txs"}
        items = obj["txs"] if batch else [obj]
        if not isinstance(items, list):
            return _json({"detail": "txs must be a list"}, 400)
        txs: list[Transaction | None] = []
        reasons: list[str | None] = []
        for item in items:
            try:
                txs.append(Transaction.decode(item))
                reasons.append(None)
            except InvalidTransaction as exc:
                txs.append(None)
                reasons.append(str(exc))
        valid = [t for t in txs if t is not None]
        outcome = dict(node.submit(valid)) if valid else {}
        results = []
        for tx, reason in zip(txs, reasons, strict=True):
            if tx is None:
                results.append({"id": None, "accepted": False, "reason": reason})
                continue
            r = outcome.get(tx.id)
            if r == "already committed":
                results.append({"id": tx.id_hex, "accepted": True, "status": "committed"})
            elif r is None:
                results.append({"id": tx.id_hex, "accepted": True, "status": "pending"})
            else:
                results.append({"id": tx.id_hex, "accepted": False, "reason": r})
        if batch:
            return _json({"results": results})
        one = results[0]
        if not one["accepted"]:
            return _json({"detail": one["reason"], "id": one["id"]}, 400)
        return _json(one, 202 if one.get("status") == "pending" else 200)

    @app.get("/v1/txs/{tx_id}")
    async def get_tx(tx_id: str) -> Response:
        """A transaction's status, block, receipt and inclusion proof."""
        try:
            raw_id = bytes.fromhex(tx_id)
        except ValueError:
            return _json({"detail": "transaction id must be hex"}, 400)
        rec = node.app.chain.tx(raw_id)
        if rec is None:
            status = "pending" if raw_id in node.mempool else "unknown"
            return _json({"id": tx_id, "status": status}, 200 if status == "pending" else 404)
        block_rec = node.app.chain.block_record(rec.height)
        assert block_rec is not None
        block = Block.from_wire(block_rec["block"])
        path = inclusion_proof(list(block.tx_ids), rec.index)
        proven = node.app.chain.receipt_proof(raw_id)
        assert proven is not None
        receipt, receipt_proof = proven
        return _json({
            "id": tx_id, "status": "committed", "height": rec.height, "index": rec.index,
            "block_hash": block.hash.hex(), "receipt": receipt, "receipt_proof": receipt_proof, "tx": rec.tx,
            "proof": {"tx": tx_id, "height": rec.height, "index": rec.index, "size": len(block.tx_ids),
                      "path": [p.hex() for p in path], "root": block.header["txs"]},
        })

    @app.get("/v1/blocks/{height}")
    async def get_block(height: int) -> Response:
        """A committed block with the QC that certifies it."""
        if height == 0:
            g = node.genesis
            return _json({"height": 0, "hash": g.hash.hex(), "header": g.header, "qc": None,
                          "tx_ids": [], "receipts": []})
        view = node.app.chain.block_view(height)
        if view is None:
            return _json({"detail": f"no committed block at height {height}"}, 404)
        return Response(view, media_type="application/json")

    @app.get("/v1/audit")
    async def audit(since_ms: int = 0, until_ms: int | None = None, actor: str | None = None,
                    type: str | None = None, limit: int = 100) -> Response:
        """Administrative operations (governance, certificates and users, contract lifecycle,
        token administration, parameter changes), accepted or refused, in time order: who
        (account and key), what (type and payload), when (block time and height), the
        transaction id and the outcome. Filter by block-time range in ms (inclusive), actor
        (account id or sender key hex) and type (exact, or a prefix ending in ``*``)."""
        if limit < 1 or since_ms < 0 or (until_ms is not None and until_ms < since_ms):
            return _json({"detail": "need limit >= 1 and 0 <= since_ms <= until_ms"}, 400)
        return _json({"records": node.app.chain.audit(since_ms=since_ms, until_ms=until_ms, actor=actor,
                                                      type_=type, limit=limit)})

    @app.get("/v1/events")
    async def events(type: str, key: str | None = None, from_height: int = 0, to_height: int | None = None,
                     limit: int = 100) -> Response:
        """Committed contract events of one type (e.g. ``ft.Transfer``), optionally only those
        indexed under ``key`` (an account, a token id, a contract name), oldest first."""
        if not type or limit < 1 or from_height < 0:
            return _json({"detail": "need a type, limit >= 1 and from_height >= 0"}, 400)
        return _json({"events": node.app.chain.events(type, key, from_height=from_height, to_height=to_height,
                                                      limit=limit)})

    @app.get("/v1/contracts/{name}")
    async def contract(name: str) -> Response:
        """A user contract: owner, status, installed version, versions under review or approved,
        method permissions, and its lifecycle history (every step with its transaction)."""
        info = contract_info(node.app.read, name)
        if info is None:
            return _json({"detail": f"no contract {name!r}"}, 404)
        info["history"] = contract_history(node.app.read, name)
        return _json(info)

    @app.get("/v1/state/{key:path}")
    async def state(key: str) -> Response:
        """A raw state value (UTF-8 key, e.g. ``ft/PTS/bal/<account>``) with its Merkle proof
        against the last committed state root."""
        k = key.encode()
        value = node.app.read(k)
        proof = node.app.tree.prove(k)
        text: str | None = None
        if value is not None:
            try:
                text = value.decode("utf-8")
            except UnicodeDecodeError:
                text = None
        body = {"key": key, "height": node.app.height, "root": node.app.root().hex(),
                "value": text, "value_hex": None if value is None else value.hex(),
                "proof": proof.to_json_obj()}
        return _json(body, 200 if value is not None else 404)

    @app.exception_handler(Exception)
    async def internal(_request: Request, exc: Exception) -> JSONResponse:
        return JSONResponse({"detail": f"internal error: {type(exc).__name__}"}, status_code=500)

    return app
