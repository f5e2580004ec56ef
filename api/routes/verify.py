"""``POST /v1/evidence/verify``: the court verifier (``forensics.verify``) run by the node on an
uploaded package, for the console's court page (docs/console.md §6.2).

The package is the raw body (signed, business role ``court`` or ``regulator``), streamed to a
temporary file of at most ``VERIFY_PACKAGE_LIMIT`` bytes, verified against this node's
consortium root and deleted: nothing is stored, filed or written on chain. The answer is the
report ``rongxin evidence verify --json`` prints, with the root's fingerprint, so the court can
compare it with the root it holds (or run the same verifier offline on its own computer).
"""

from __future__ import annotations

import asyncio
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response
from pydantic import BaseModel, Field

from forensics.package.format import PackageUnreadable
from forensics.verify import verify_package

from ..auth import AUTH_RESPONSES, Identity, require
from ..deps import NodeDep
from ..errors import ERROR_RESPONSES, ApiError
from ..limits import VERIFY_PACKAGE_LIMIT
from ..schemas import ErrorBody
from .common import json_response
from .works import UPLOAD_BODY, WorksDep

router = APIRouter(tags=["evidence"])
VERIFY_ROLES = ("court", "regulator")


class VerifyOut(BaseModel):
    """The court verifier's report (docs/evidence-format.md §5) and the root it used."""

    ok: bool
    failed: list[str]
    checks: dict[str, dict[str, Any]] = Field(description="check id -> ok, why, en, zh, weighed_under")
    filer: dict[str, Any]
    statements: list[dict[str, Any]]
    timestamp: dict[str, Any] | None
    root: dict[str, str] = Field(description="the consortium root verified against: name, fingerprint (SM3)")


@router.post("/v1/evidence/verify", response_model=VerifyOut, openapi_extra={"requestBody": UPLOAD_BODY}, responses={
    **ERROR_RESPONSES, **AUTH_RESPONSES,
    400: {"model": ErrorBody, "description": "unreadable_package: not an evidence package; empty_file"},
    413: {"model": ErrorBody, "description": "body_too_large: a package over VERIFY_PACKAGE_LIMIT (64 MiB)"},
    409: {"model": ErrorBody, "description": "no_root: this chain has no consortium root certificate"}})
async def verify(request: Request, node: NodeDep, works: WorksDep,
                 ident: Annotated[Identity, Depends(require(roles=VERIFY_ROLES, stream_body=True))]) -> Response:
    """Run the offline court verifier on the uploaded package (the body, a zip) against this
    node's consortium root; answers the report (200 whether the checks hold or not: ``ok``
    says), 400 ``unreadable_package`` for a body that is not a package. Nothing is kept."""
    gov = node.app.governance
    if gov is None or gov.root is None:
        raise ApiError(409, "no_root", "this chain has no consortium root certificate")
    root = gov.root
    path, _sm3, _size = await works.receive(request.stream(), ident.body_sm3, VERIFY_PACKAGE_LIMIT)
    try:
        report = await asyncio.to_thread(verify_package, path, root.to_pem())
    except PackageUnreadable as exc:
        raise ApiError(400, "unreadable_package", f"not an evidence package: {exc}") from None
    finally:
        path.unlink(missing_ok=True)
    return json_response({**report.wire(), "root": {"fingerprint": root.fingerprint,
                                                          "name": root.common_name}})
