"""``GET /v1/proofs?tx=ID[,ID...]``: the proof bundle of committed transactions.

The bundle (``ledger.node.bundle``) is what an evidence package carries besides the filer's
signature and artefacts (docs/evidence-format.md §3): transactions with inclusion and receipt
proofs, the headers and QCs of the 2-chain commits, the genesis header and the validator-set
history, the senders' certificates, and (from the node's consortium folder) the CRL and the
node certificates. 404 while a transaction or its receipt is not yet committed and certified.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response

from forensics.access import may_read_tx
from forensics.package.export import ExportError
from forensics.package.fetch import consortium_material, latest_block_ms
from ledger.crypto import CryptoError
from ledger.files import FileInputError
from ledger.node.bundle import MAX_BUNDLE_TXS, BundleError

from ..deps import NodeDep, QueriesDep
from ..errors import ERROR_RESPONSES, ApiError
from ..private import PRIVATE_RESPONSES, MaybeSigned, deny, reader
from ..schemas import ProofBundleOut
from .common import json_response

router = APIRouter(prefix="/v1/proofs", tags=["proofs"])


@router.get("", response_model=ProofBundleOut, responses={**ERROR_RESPONSES, **PRIVATE_RESPONSES})
async def get_proofs(tx: Annotated[str, Query(max_length=MAX_BUNDLE_TXS * 65, description="comma-separated ids")],
                     queries: QueriesDep, request: Request, node: NodeDep, ident: MaybeSigned) -> Response:
    """The proof bundle of up to 64 committed transactions (ids comma-separated). A bundle
    holding an ``evidence.file`` or ``case.*`` transaction needs a signed request by someone
    allowed to read its record (docs/api.md §7; 401 unsigned, 403 not allowed)."""
    ids = [t for t in tx.split(",") if t]
    if not ids or any(len(t) != 64 or t.strip("0123456789abcdef") for t in ids):
        raise ApiError(400, "invalid_request", "tx is 1 to 64 comma-separated transaction ids (64 lowercase hex)")
    try:
        bundle = queries.proof_bundle(tx_ids=ids)
    except BundleError as exc:
        raise ApiError(404, "not_found", str(exc)) from None
    who = reader(ident)
    for st in bundle["statements"]:
        if not may_read_tx(node.app.read, st["tx"]["body"], who):
            raise deny(ident, f"transaction {st['proof']['tx']}")
    bundle["crl"], bundle["node_certificates"] = _material(request.app.state.consortium, latest_block_ms(bundle))
    return json_response(bundle)


def _material(consortium: Path | None, since_ms: int) -> tuple[str | None, list[str]]:
    """The CA's CRL (published at or after ``since_ms``, fetch.consortium_material) and the
    node certificates of this node's consortium folder, if it has them."""
    if consortium is None:
        return None, []
    try:
        crl, certs = consortium_material(consortium, since_ms)
    except (ExportError, CryptoError, FileInputError, OSError):
        return None, []
    return crl.to_pem().decode(), [c.decode() for c in certs]
