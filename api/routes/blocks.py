"""``GET /v1/blocks/{height}``."""

from __future__ import annotations

import re
from typing import Annotated

from fastapi import APIRouter, Path
from fastapi.responses import Response

from ledger.codec import parse
from ledger.node.queries import MAX_HEIGHT

from ..deps import NodeDep, QueriesDep
from ..errors import ERROR_RESPONSES
from ..private import PRIVATE_RESPONSES, MaybeSigned, reader, redact_block
from ..schemas import BlockOut
from .common import json_response

router = APIRouter(prefix="/v1/blocks", tags=["blocks"])


# a block whose receipts may need redacting: a private event, or a refused transaction
_MAYBE_PRIVATE = re.compile(rb'"type":"(?:evidence|case)\.|"code":[1-9]')


@router.get("/{height}", response_model=BlockOut, responses={**ERROR_RESPONSES, **PRIVATE_RESPONSES})
async def get_block(height: Annotated[int, Path(ge=0, le=MAX_HEIGHT, description="0 is genesis")],
                    queries: QueriesDep, node: NodeDep, ident: MaybeSigned) -> Response:
    """A committed block: header, hash, the QC that certifies it, transaction ids and receipts.
    The receipt of an ``evidence.file`` or ``case.*`` transaction the requester may not read
    (docs/api.md §7) is shown as ``{"code", "info": "", "redacted": true}``."""
    view = queries.block(height=height)
    if isinstance(view, bytes):
        if not _MAYBE_PRIVATE.search(view):
            return json_response(view)
        view = dict(parse(view))
    return json_response(redact_block(view, node, reader(ident)))
