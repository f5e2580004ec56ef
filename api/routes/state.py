"""``GET /v1/state/{key}``."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path
from fastapi.responses import Response

from forensics.access import may_read_key, private_key

from ..deps import NodeDep, QueriesDep
from ..errors import ERROR_RESPONSES
from ..private import PRIVATE_RESPONSES, MaybeSigned, deny, reader
from ..schemas import StateOut
from .common import json_response

router = APIRouter(prefix="/v1/state", tags=["state"])


@router.get("/{key:path}", response_model=StateOut, responses={**ERROR_RESPONSES, **PRIVATE_RESPONSES})
async def get_state(key: Annotated[str, Path(max_length=4096, description="UTF-8 state key, e.g. kv/title")],
                    queries: QueriesDep, node: NodeDep, ident: MaybeSigned) -> Response:
    """A raw state value (e.g. ``ft/PTS/bal/<account>``) with its Merkle proof against the last
    committed state root. An absent key answers 404 whose ``details`` hold the same view with
    the proof of absence. Keys under ``evidence/``, ``case/`` and ``blob/`` need a signed
    request by someone allowed to read the record (docs/api.md §7; 401 unsigned, 403 not allowed)."""
    if private_key(key) and not may_read_key(node.app.read, key, reader(ident)):
        raise deny(ident, f"state key {key[:200]!r}")
    return json_response(queries.state(key=key))
