"""``GET /v1/status``."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import Response

from ..deps import InfoDep, QueriesDep
from ..schemas import StatusOut
from .common import json_response

router = APIRouter(prefix="/v1/status", tags=["status"])


@router.get("", response_model=StatusOut)
async def status(queries: QueriesDep, info: InfoDep) -> Response:
    """This node (id, role, organisation, chain), its last committed block (height and hash),
    its view, mempool size, the validators of the next block and the peers it sees online."""
    return json_response(queries.status(role=info.role, org=info.org, peers_online=list(info.online())))
