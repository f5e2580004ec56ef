"""Joint computations (docs/api.md §8, docs/privacy.md "On chain"):
``POST /v1/mpc/computations`` (propose), ``POST /v1/mpc/computations/{id}/approve``,
``GET /v1/mpc/computations/{id}`` (status and result) and ``GET /v1/mpc/computations/{id}/audit``.

The POST routes take a signed request whose body is the signer's own signed ``mpc.propose`` /
``mpc.approve`` transaction, submit it and answer once it is committed (as ``POST /v1/evidence``).
"""

from __future__ import annotations

import json
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Request
from fastapi.responses import Response

from ledger.codec import parse
from privacy.chain import PUBLIC, AuditFailed, audit
from privacy.contracts import computation, k_commit, k_out

from ..auth import AUTH_RESPONSES, Identity, require
from ..deps import IntakeDep, NodeDep
from ..errors import ERROR_RESPONSES, ApiError
from ..private import MaybeSigned
from ..schemas_evidence import TX_BODY
from ..schemas_mpc import ApprovedOut, AuditOut, ComputationOut, ProposedOut
from .common import json_response
from .submit import one_tx, submit_and_wait

router = APIRouter(prefix="/v1/mpc", tags=["mpc"])

ComputationId = Annotated[str, Path(pattern="^[0-9a-f]{64}$", description="a computation id (its proposal's tx id)")]
RESPONSES: dict[int | str, dict[str, Any]] = {**ERROR_RESPONSES, **AUTH_RESPONSES}


def _record(node: Any, cid: str) -> dict[str, Any]:
    rec = computation(node.app.read, cid)
    if rec is None:
        raise ApiError(404, "not_found", f"there is no computation {cid}", {"computation_id": cid})
    return rec


def result_view(rec: dict[str, Any], outputs: str | None, may_read: bool) -> dict[str, Any]:
    """What ``GET /v1/mpc/computations/{id}`` answers."""
    res = rec.get("result") or {}
    return {"computation_id": rec["computation_id"], "status": rec["status"], "proposal": rec["proposal"],
            "proposal_sm3": rec["proposal_sm3"], "approvals": rec["approvals"], "committed": rec["committed"],
            "outputs": json.loads(outputs) if outputs is not None and may_read else None,
            "sealed": json.loads(outputs)["sealed"] if outputs is not None and not may_read else None,
            "outputs_sm3": res.get("outputs_sm3"), "transcript_sm3": res.get("transcript_sm3"),
            "tx_id": res.get("tx"), "height": res.get("height"), "error": res.get("error"),
            "blame": res.get("blame"), "recorded_by": res.get("by"), "confirmations": rec.get("confirmations", {})}


@router.post("/computations", response_model=ProposedOut, responses=RESPONSES, openapi_extra={"requestBody": TX_BODY})
async def propose(request: Request, node: NodeDep, intake: IntakeDep,
                  ident: Annotated[Identity, Depends(require())]) -> Response:
    """Submit the signer's ``mpc.propose`` transaction; once committed
    ``{computation_id, proposal_sm3, tx_id, height}`` (409 with the contract's reason)."""
    tx = await one_tx(intake, await request.body(), ident, "mpc.propose")
    await submit_and_wait(node, tx)
    rec = _record(node, tx.id_hex)
    return json_response({"computation_id": tx.id_hex, "proposal_sm3": rec["proposal_sm3"], "tx_id": tx.id_hex,
                          "height": rec["height"]})


@router.post("/computations/{cid}/approve", response_model=ApprovedOut, responses=RESPONSES, openapi_extra={"requestBody": TX_BODY})
async def approve(request: Request, node: NodeDep, intake: IntakeDep, cid: ComputationId,
                  ident: Annotated[Identity, Depends(require())]) -> Response:
    """Submit the signer's ``mpc.approve`` transaction of this computation; once committed
    ``{computation_id, tx_id, height, waiting_for}``."""
    _record(node, cid)
    tx = await one_tx(intake, await request.body(), ident, "mpc.approve")
    if tx.payload.get("computation_id") != cid:
        raise ApiError(422, "invalid_transaction", "the transaction approves another computation")
    done = await submit_and_wait(node, tx)
    rec = _record(node, cid)
    waiting = [n for n in rec["proposal"]["parties"]
               if rec["approvals"].get(n, {}).get("proposal_sm3") != rec["proposal_sm3"]]
    return json_response({"computation_id": cid, "tx_id": tx.id_hex, "height": done["height"],
                          "waiting_for": waiting})


@router.get("/computations/{cid}", response_model=ComputationOut, responses=RESPONSES)
async def show(node: NodeDep, cid: ComputationId, ident: MaybeSigned) -> Response:
    """The computation: proposal, approvals, commitments filed, status (proposed, running,
    done, aborted), and the result (outputs, their SM3, transcript digest, recording tx, error).
    When the proposal named readers, ``outputs`` is null and ``sealed`` holds them encrypted to
    each reader (docs/privacy.md "On chain")."""
    rec = _record(node, cid)
    raw = node.app.read(k_out(cid))
    public = rec["proposal"]["readers"] == [PUBLIC]
    del ident  # outputs for named readers are sealed to their keys: the SDK opens them
    return json_response(result_view(rec, None if raw is None else raw.decode(), public))


@router.get("/computations/{cid}/audit", response_model=AuditOut, responses=RESPONSES)
async def audit_route(node: NodeDep, cid: ComputationId) -> Response:
    """The node's own audit of the recorded result against the commitments on chain:
    ``{ok, buckets_checked, buckets, reason}`` (``rongxin mpc audit`` does the same check
    on the client from the chain's records)."""
    rec = _record(node, cid)
    read = node.app.read
    commits = {}
    for p in rec["proposal"]["parties"]:
        raw = read(k_commit(cid, p))
        if raw is not None:
            commits[p] = str(parse(raw)["commitments"])
    out = read(k_out(cid))
    if rec["proposal"]["readers"] != [PUBLIC] and rec["status"] == "done":
        return json_response({"computation_id": cid, "ok": False, "buckets": rec["buckets"], "buckets_checked": 0,
                              "reason": "the outputs are sealed to the readers the proposal named: a reader audits "
                                        "them (rongxin mpc audit ID --as READER)"})
    try:
        checked = audit(rec, commits, None if out is None else out.decode())
    except AuditFailed as exc:
        return json_response({"computation_id": cid, "ok": False, "reason": str(exc), "buckets": rec["buckets"],
                              "buckets_checked": 0})
    return json_response({"computation_id": cid, "ok": True, "reason": None, "buckets": rec["buckets"],
                          "buckets_checked": checked})
