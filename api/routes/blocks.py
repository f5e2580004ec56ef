"""``GET /v1/blocks/{height}``."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path
from fastapi.responses import Response

from ledger.node.queries import MAX_HEIGHT

from ..deps import QueriesDep
from ..errors import ERROR_RESPONSES
from ..schemas import BlockOut
from .common import json_response

router = APIRouter(prefix="/v1/blocks", tags=["blocks"])


@router.get("/{height}", response_model=BlockOut, responses=ERROR_RESPONSES)
async def get_block(height: Annotated[int, Path(ge=0, le=MAX_HEIGHT, description="0 is genesis")],
                    queries: QueriesDep) -> Response:
    """A committed block: header, hash, the QC that certifies it, transaction ids and receipts."""
    return json_response(queries.block(height=height))
