"""``POST /v1/txs`` and ``GET /v1/txs/{id}``.

A submission's bytes go to the intake's worker processes, which parse them, decode each
transaction and verify its signature (``ledger.node.intake``); this loop then only admits the
verified ones into the mempool (chain id, expiry, replay) and gossips them.
"""

from __future__ import annotations

import collections
from typing import Annotated, Any

from fastapi import APIRouter, Path, Request
from fastapi.responses import Response

from forensics.access import may_read_tx
from ledger.node.intake import Checked
from ledger.node.queries import NodeQueries

from ..deps import IntakeDep, NodeDep, QueriesDep
from ..errors import ERROR_RESPONSES, ApiError
from ..private import PRIVATE_RESPONSES, MaybeSigned, reader
from ..schemas import BatchOut, ErrorBody, SubmitOut, TxBatchIn, TxIn, TxOut
from .common import json_response

router = APIRouter(prefix="/v1/txs", tags=["transactions"])

_REF = "#/components/schemas/{}"
SUBMIT_BODY = {"required": True, "content": {"application/json": {"schema": {
    "anyOf": [{"$ref": _REF.format(TxIn.__name__)}, {"$ref": _REF.format(TxBatchIn.__name__)}]}}}}
# models the request body names (the route reads raw bytes: the OpenAPI document adds them)
REQUEST_MODELS = (TxIn, TxBatchIn)


def results(checked: Checked, outcome: dict[bytes, str | None]) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for tx, reason in checked.items:
        if tx is None:
            out.append({"id": None, "accepted": False, "reason": reason})
            continue
        r = reason if reason is not None else outcome.get(tx.id)
        if r == "already committed":
            out.append({"id": tx.id_hex, "accepted": True, "status": "committed"})
        elif r is None:
            out.append({"id": tx.id_hex, "accepted": True, "status": "pending"})
        else:
            out.append({"id": tx.id_hex, "accepted": False, "reason": r})
    return out


@router.post("", response_model=SubmitOut | BatchOut, openapi_extra={"requestBody": SUBMIT_BODY}, responses={
    202: {"model": SubmitOut, "description": "one transaction accepted into the mempool (status pending)"},
    400: {"model": ErrorBody, "description": "malformed JSON, or the one transaction refused (bad signature, "
                                             "wrong chain, expired, replayed, mempool full) with the reason"},
    413: {"model": ErrorBody, "description": "body over the limit (8 MiB) or more than 2,000 transactions"},
    422: {"model": ErrorBody, "description": "neither a transaction nor {\"txs\": [...]}, unknown fields, or "
                                             "the one transaction not in the wire form (missing, unknown or "
                                             "mistyped fields, over 64 KiB)"},
    503: {"model": ErrorBody, "description": "too many submissions being checked, or the verification workers "
                                             "restarting: retry"}})
async def submit(request: Request, node: NodeDep, intake: IntakeDep) -> Response:
    """Submit one signed transaction (202 with its id, 200 if already committed, 400 with the
    reason when refused, 422 when it is not a transaction's wire form), or a batch as ``{"txs": [...]}`` (200 with one result per
    transaction, in order). Signatures are verified off the consensus loop."""
    with intake.slot():  # a bounded number of submissions read and checked at once
        raw = await request.body()  # the body limit refuses oversized bodies while they stream in
        checked = await intake.check(raw)
    valid = checked.verified
    outcome = dict(node.submit(valid, verified=True)) if valid else {}
    out = results(checked, outcome)
    if checked.batch:
        return json_response({"results": out})
    one = out[0]
    if one["id"] is None:  # not in the wire form: missing, unknown or mistyped fields, too big
        raise ApiError(422, "invalid_transaction", str(one["reason"]), {"id": None})
    if not one["accepted"]:  # well formed, refused: signature, chain, expiry, replay, mempool full
        raise ApiError(400, "transaction_refused", str(one["reason"]), {"id": one["id"]})
    return json_response(one, 202 if one.get("status") == "pending" else 200)


TX_VIEWS = 1024  # committed transactions' views a node keeps (a view is a few KiB; a body at most 64 KiB)


def _transaction(request: Request, queries: NodeQueries, tx_id: str) -> dict[str, Any]:
    """``NodeQueries.transaction``, its view kept once final. Building it parses the block
    record and hashes every transaction id and receipt of the block (two Merkle trees) on the
    event loop: 5 ms for a transaction of a 200-transaction block. A committed transaction
    whose results root a later header certifies (``certified_in`` set) never changes, so its
    view is kept (least recently used out first); who may read it is decided per request."""
    views: collections.OrderedDict[str, dict[str, Any]] | None = getattr(request.app.state, "tx_views", None)
    if views is None:
        views = request.app.state.tx_views = collections.OrderedDict()
    out = views.get(tx_id)
    if out is not None:
        views.move_to_end(tx_id)
        return out
    out = queries.transaction(tx_id=tx_id)
    if out.get("status") == "committed" and out["receipt_proof"].get("certified_in") is not None:
        views[tx_id] = out
        if len(views) > TX_VIEWS:
            views.popitem(last=False)
    return out


@router.get("/{tx_id}", response_model=TxOut, responses={**ERROR_RESPONSES, **PRIVATE_RESPONSES})
async def get_tx(tx_id: Annotated[str, Path(pattern=r"^[0-9a-fA-F]{64}$", description="transaction id (SM3, hex)")],
                 request: Request, queries: QueriesDep, node: NodeDep, ident: MaybeSigned) -> Response:
    """A transaction's status (``pending`` here, or ``committed``), its block, receipt,
    inclusion proof and receipt proof. Unknown ids answer 404. Of a committed ``evidence.file``
    or ``case.*`` transaction, a requester who is not its sender nor allowed to read its record
    (docs/api.md §7; unsigned included) sees the status, block, proofs and receipt code only:
    ``tx`` null, the receipt ``{"code", "info": "", "redacted": true}``, ``redacted`` true."""
    out = _transaction(request, queries, tx_id.lower())
    tx = out.get("tx")
    if isinstance(tx, dict) and not may_read_tx(node.app.read, tx.get("body"), reader(ident)):
        out = dict(out, tx=None, redacted=True, receipt={"code": out["receipt"]["code"], "info": "", "redacted": True})
    return json_response(out)
