"""``GET /v1/events``."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query
from fastapi.responses import Response

from forensics.access import PRIVATE_EVENTS
from ledger.node.chainstore import MAX_QUERY
from ledger.node.queries import MAX_HEIGHT

from ..deps import NodeDep, QueriesDep
from ..errors import ERROR_RESPONSES
from ..private import PRIVATE_RESPONSES, MaybeSigned, deny, reader, visible_events
from ..schemas import EventsOut
from .common import json_response

router = APIRouter(prefix="/v1/events", tags=["events"])


@router.get("", response_model=EventsOut, responses={**ERROR_RESPONSES, **PRIVATE_RESPONSES})
async def events(
    queries: QueriesDep,
    node: NodeDep,
    ident: MaybeSigned,
    type: Annotated[str, Query(min_length=1, max_length=256, description="event type, e.g. ft.Transfer")],
    key: Annotated[str | None, Query(max_length=1024, description="only events indexed under this key")] = None,
    from_height: Annotated[int, Query(ge=0, le=MAX_HEIGHT)] = 0,
    to_height: Annotated[int | None, Query(ge=0, le=MAX_HEIGHT)] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_QUERY)] = 100,
) -> Response:
    """Committed contract events of one type (e.g. ``ft.Transfer``), optionally only those
    indexed under ``key`` (an account, a token id, a contract name), oldest first. Events of
    types ``evidence.*`` and ``case.*`` need a signed request and list only those of records
    the requester may read (docs/api.md §7), so a page may hold fewer than ``limit``."""
    found = queries.events(type_=type, key=key, from_height=from_height, to_height=to_height, limit=limit)
    if type.startswith(PRIVATE_EVENTS):
        if reader(ident) is None:
            raise deny(ident, f"{type} events")
        found = visible_events(found, node, reader(ident))
    return json_response({"events": found})
