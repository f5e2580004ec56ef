"""``GET /v1/state/{key}``."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path
from fastapi.responses import Response

from ..deps import QueriesDep
from ..errors import ERROR_RESPONSES
from ..schemas import StateOut
from .common import json_response

router = APIRouter(prefix="/v1/state", tags=["state"])


@router.get("/{key:path}", response_model=StateOut, responses=ERROR_RESPONSES)
async def get_state(key: Annotated[str, Path(max_length=4096, description="UTF-8 state key, e.g. kv/title")],
                    queries: QueriesDep) -> Response:
    """A raw state value (e.g. ``ft/PTS/bal/<account>``) with its Merkle proof against the last
    committed state root. An absent key answers 404 whose ``details`` hold the same view with
    the proof of absence."""
    return json_response(queries.state(key=key))
