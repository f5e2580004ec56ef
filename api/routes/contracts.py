"""``GET /v1/contracts/{name}``."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path
from fastapi.responses import Response

from ..deps import QueriesDep
from ..errors import ERROR_RESPONSES
from ..schemas import ContractOut
from .common import json_response

router = APIRouter(prefix="/v1/contracts", tags=["contracts"])


@router.get("/{name}", response_model=ContractOut, responses=ERROR_RESPONSES)
async def contract(name: Annotated[str, Path(max_length=256)], queries: QueriesDep) -> Response:
    """A user contract: owner, status, installed version, versions under review or approved,
    method permissions, and its lifecycle history (every step with its transaction)."""
    return json_response(queries.contract(name=name))
