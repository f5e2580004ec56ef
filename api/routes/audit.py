"""``GET /v1/audit``."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query
from fastapi.responses import Response

from ledger.node.chainstore import MAX_QUERY

from ..deps import QueriesDep
from ..errors import ERROR_RESPONSES
from ..schemas import AuditOut
from .common import json_response

router = APIRouter(prefix="/v1/audit", tags=["audit"])
MAX_MS = (1 << 63) - 1


@router.get("", response_model=AuditOut, responses=ERROR_RESPONSES)
async def audit(
    queries: QueriesDep,
    since_ms: Annotated[int, Query(ge=0, le=MAX_MS, description="block time from (ms, inclusive)")] = 0,
    until_ms: Annotated[int | None, Query(ge=0, le=MAX_MS, description="block time to (ms, inclusive)")] = None,
    actor: Annotated[str | None, Query(max_length=256, description="account id or sender key hex")] = None,
    type: Annotated[str | None, Query(max_length=256, description="exact, or a prefix ending in *")] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_QUERY)] = 100,
) -> Response:
    """Administrative operations (governance, certificates and users, contract lifecycle,
    token administration, parameter changes), accepted or refused, in time order: who
    (account and key), what (type and payload), when (block time and height), the
    transaction id and the outcome."""
    return json_response({"records": queries.audit(since_ms=since_ms, until_ms=until_ms, actor=actor,
                                                   type_=type, limit=limit)})
