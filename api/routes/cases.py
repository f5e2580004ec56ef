"""Cases (docs/works.md §5): ``GET /v1/cases/{id}`` and ``POST /v1/cases/{id}/move``."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Request
from fastapi.responses import Response

from forensics.access import Reader, may_read_case
from forensics.cases import case as case_record
from forensics.rules import ID_RE

from ..auth import AUTH_RESPONSES, Identity, require
from ..deps import IntakeDep, NodeDep
from ..errors import ERROR_RESPONSES, ApiError
from ..schemas import ErrorBody
from ..schemas_evidence import TX_BODY, CaseOut, MovedOut
from .common import json_response
from .submit import one_tx, submit_and_wait

router = APIRouter(prefix="/v1/cases", tags=["cases"])

CaseId = Annotated[str, Path(pattern="^" + ID_RE.pattern + "$", max_length=128, description="a case id")]
RESPONSES: dict[int | str, dict[str, Any]] = {**ERROR_RESPONSES, **AUTH_RESPONSES}
MOVE_RESPONSES: dict[int | str, dict[str, Any]] = {**RESPONSES, 409: {
    "model": ErrorBody, "description": "transaction_failed: the contract's reason (docs/works.md §5.2)"}}


def _case(node: Any, case_id: str) -> dict[str, Any]:
    if not ID_RE.fullmatch(case_id):
        raise ApiError(400, "invalid_request", "not a case id")
    rec = case_record(node.app.read, case_id)
    if rec is None:
        raise ApiError(404, "not_found", f"there is no case {case_id}", {"case_id": case_id})
    return rec


@router.get("/{case_id}", response_model=CaseOut, responses=RESPONSES)
async def show(node: NodeDep, case_id: CaseId, ident: Annotated[Identity, Depends(require())]) -> Response:
    """The case record with its history (docs/works.md §5.1): for its opener, its parties, a
    court or the regulator."""
    rec = _case(node, case_id)
    if not may_read_case(node.app.read, rec, Reader(ident.account, ident.business)):
        raise ApiError(403, "forbidden", f"only the opener, a party, the work's holder, a filer of its evidence, a "
                       f"court or a regulator may read case {case_id}")
    return json_response(rec)


@router.post("/{case_id}/move", response_model=MovedOut, responses=MOVE_RESPONSES,
             openapi_extra={"requestBody": TX_BODY})
async def move(request: Request, node: NodeDep, intake: IntakeDep, case_id: CaseId,
               ident: Annotated[Identity, Depends(require())]) -> Response:
    """Submit a signed ``case.move`` transaction for this case (the body: its wire form) and
    answer once committed: ``{case_id, state, tx_id, height}``. The contract decides who may
    make which move (409 ``transaction_failed`` with its reason)."""
    _case(node, case_id)
    tx = await one_tx(intake, await request.body(), ident, "case.move")
    if tx.payload.get("case_id") != case_id:
        raise ApiError(422, "invalid_transaction", f"the transaction moves case {tx.payload.get('case_id')!r}, "
                       f"not {case_id}")
    rec = await submit_and_wait(node, tx)
    return json_response({"case_id": case_id, "height": rec["height"], "state": _case(node, case_id)["state"],
                          "tx_id": tx.id_hex})
