"""``GET /v1/identity``: who signed this request, as the node sees it (docs/api-auth.md)."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Query
from fastapi.responses import Response

from ..auth import AUTH_RESPONSES, Identity, check_role, require
from ..errors import ERROR_RESPONSES
from ..schemas import IdentityOut
from .common import json_response

router = APIRouter(prefix="/v1/identity", tags=["identity"])


@router.get("", response_model=IdentityOut, responses={422: ERROR_RESPONSES[422], **AUTH_RESPONSES})
async def identity(ident: Annotated[Identity, Depends(require())],
                   role: Annotated[Literal["holder", "legal", "court", "platform", "regulator"] | None, Query(
                       description="also require this business role (403 auth_role when the signer lacks it)")]
                   = None) -> Response:
    """The signer of this request once every check of a signed request passed: its
    certificate's common name, organisation, role and business role, its account, its
    certificate's fingerprint and serial, and its on-chain user record's height and status.
    Any registered identity may ask; with ``role`` the node also checks the signer holds that
    business role, exactly as a route that needs it would."""
    return json_response(check_role(ident, frozenset([role]) if role else None).wire())
