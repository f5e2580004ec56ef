"""``GET /v1/identity``: who signed this request, as the node sees it (docs/api-auth.md)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends
from fastapi.responses import Response

from ..auth import AUTH_RESPONSES, Identity, require
from ..schemas import IdentityOut
from .common import json_response

router = APIRouter(prefix="/v1/identity", tags=["identity"])


@router.get("", response_model=IdentityOut, responses=AUTH_RESPONSES)
async def identity(ident: Annotated[Identity, Depends(require())]) -> Response:
    """The signer of this request once every check of a signed request passed: its
    certificate's common name, organisation, role and business role, its account, its
    certificate's fingerprint and serial, and its on-chain user record's height and status.
    Any registered identity may ask (no business role needed)."""
    return json_response(ident.wire())
