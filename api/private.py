"""Evidence and case records on the general routes (docs/api.md §7): the routes that are
public in general (state, proofs, transactions, blocks, events) take an optional signed
request and show a private record, transaction, receipt or event only to those
``forensics.access`` admits.

An unsigned request for something private is answered 401 ``auth_missing``; a signed one
that fails its checks (docs/api-auth.md) with that refusal; one by someone not admitted 403
``not_allowed``. A refused signed request is otherwise served like an unsigned one. A transaction (``GET /v1/txs``) is then shown without
its body and receipt contents; a block shows the receipts of private transactions
redacted (``{"code", "info": "", "redacted": true}``), an event list leaves their events out.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Depends

from forensics.access import Reader, may_read_event, may_read_tx, private_tx

from .auth import AUTH_RESPONSES, Identity, optional, refuse
from .errors import ApiError

__all__ = ["PRIVATE_RESPONSES", "MaybeSigned", "deny", "reader", "redact_block", "visible_events"]

MaybeSigned = Annotated[Identity | ApiError | None, Depends(optional())]
PRIVATE_RESPONSES: dict[int | str, dict[str, Any]] = {
    **AUTH_RESPONSES,
    403: {**AUTH_RESPONSES[403], "description": "not_allowed: an evidence or case record (or its transaction) this "
                                                "signer may not read; and " + AUTH_RESPONSES[403]["description"]},
}


def reader(ident: Identity | ApiError | None) -> Reader | None:
    """Who asks, for ``forensics.access``: None for an unsigned or refused signed request."""
    return Reader(ident.account, ident.business) if isinstance(ident, Identity) else None


def deny(ident: Identity | ApiError | None, what: str) -> ApiError:
    """401 for an unsigned request, the refusal of a signed request that failed its checks,
    403 for a signer who may not read ``what``."""
    if isinstance(ident, ApiError):
        return ident
    if ident is None:
        return refuse("auth_missing", f"{what} is readable only by its parties, courts and regulators: sign the "
                                      "request (docs/api-auth.md)")
    return ApiError(403, "not_allowed", f"account {ident.account} may not read {what}")


def redact_block(view: dict[str, Any], node: Any, who: Reader | None) -> dict[str, Any]:
    """The block view with the receipts of transactions ``who`` may not read redacted: those
    with an ``evidence.*``/``case.*`` event, and refused ones whose transaction is private."""
    read = node.app.read
    receipts = list(view.get("receipts") or [])
    for i, (tx_id, rec) in enumerate(zip(view.get("tx_ids") or [], receipts, strict=False)):
        events = rec.get("events") or []
        if any(str(e.get("type", "")).startswith(("evidence.", "case.")) for e in events) or rec.get("code"):
            body = _body(node.app.chain.tx(bytes.fromhex(tx_id)))
            if private_tx(body.get("type")) and not may_read_tx(read, body, who):
                receipts[i] = {"code": rec.get("code"), "info": "", "redacted": True}
    return dict(view, receipts=receipts)


def _body(found: Any) -> dict[str, Any]:
    """The body of a committed transaction's record (``ChainStore.tx``), {} without one."""
    tx = getattr(found, "tx", None)
    body = tx.get("body") if isinstance(tx, dict) else None
    return body if isinstance(body, dict) else {}


def visible_events(events: list[dict[str, Any]], node: Any, who: Reader | None) -> list[dict[str, Any]]:
    read = node.app.read
    return [e for e in events if may_read_event(read, e, who)]
