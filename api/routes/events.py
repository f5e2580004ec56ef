"""``GET /v1/events``."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query
from fastapi.responses import Response

from ledger.node.chainstore import MAX_QUERY
from ledger.node.queries import MAX_HEIGHT

from ..deps import QueriesDep
from ..errors import ERROR_RESPONSES
from ..schemas import EventsOut
from .common import json_response

router = APIRouter(prefix="/v1/events", tags=["events"])


@router.get("", response_model=EventsOut, responses=ERROR_RESPONSES)
async def events(
    queries: QueriesDep,
    type: Annotated[str, Query(min_length=1, max_length=256, description="event type, e.g. ft.Transfer")],
    key: Annotated[str | None, Query(max_length=1024, description="only events indexed under this key")] = None,
    from_height: Annotated[int, Query(ge=0, le=MAX_HEIGHT)] = 0,
    to_height: Annotated[int | None, Query(ge=0, le=MAX_HEIGHT)] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_QUERY)] = 100,
) -> Response:
    """Committed contract events of one type (e.g. ``ft.Transfer``), optionally only those
    indexed under ``key`` (an account, a token id, a contract name), oldest first."""
    return json_response({"events": queries.events(type_=type, key=key, from_height=from_height,
                                                   to_height=to_height, limit=limit)})
