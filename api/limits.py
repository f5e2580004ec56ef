"""Request-body limits enforced before and while a body is read (pure ASGI, nothing buffered).

A request announcing a ``Content-Length`` above its route's limit is answered 413 at once,
without reading a byte of the body; a body sent in chunks (or one that sends more than it
announced) is cut off with 413 as soon as the running total passes the limit. Limits are per
route: ``POST /v1/txs`` takes a bounded batch of transactions, every other route no more than
a small body (none of them reads one).
"""

from __future__ import annotations

from collections.abc import Callable

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ledger.node.intake import MAX_BATCH

from .errors import ApiError, error_body

TXS_BODY_LIMIT = 8 * 1024 * 1024  # ~2,000 ordinary transactions (a few hundred bytes each), 128 of 64 KiB
DEFAULT_BODY_LIMIT = 64 * 1024
EVIDENCE_TX_LIMIT = 128 * 1024  # one evidence.file transaction (its manifest is at most 48 KiB)
#: a registration's proof package (PUT /v1/works/{id}/certificate): measured at 8.5 KB zipped
#: (21 KB of members: validators.json 6.3 KB, blocks.json 8.6 KB) on a 4-validator chain; it
#: grows with the validator-set history and the CRL, so the limit leaves ~500 times that
PROOF_PACKAGE_LIMIT = 4 * 1024 * 1024
#: a package a court verifies on the node (POST /v1/evidence/verify); bigger ones: the CLI verifier
VERIFY_PACKAGE_LIMIT = 64 * 1024 * 1024


def body_limit(method: str, path: str) -> int:
    if method == "POST" and path.rstrip("/") == "/v1/txs":
        return TXS_BODY_LIMIT
    if method == "POST" and path.rstrip("/") in ("/v1/works", "/v1/evidence/prepare"):  # uploads, streamed to disk
        from .works_node import max_upload_bytes

        return max_upload_bytes()
    if method == "PUT" and path.startswith("/v1/works/") and path.endswith("/certificate"):  # a proof package
        return PROOF_PACKAGE_LIMIT
    if method == "POST" and path.rstrip("/") == "/v1/evidence/verify":
        return VERIFY_PACKAGE_LIMIT
    if method == "POST" and path.rstrip("/") == "/v1/evidence":
        return EVIDENCE_TX_LIMIT
    return DEFAULT_BODY_LIMIT


def _too_large(limit: int) -> ApiError:
    return ApiError(413, "body_too_large", f"request body larger than {limit} bytes",
                    {"limit": limit, "max_transactions": MAX_BATCH})


class BodyLimit:
    """ASGI middleware: refuse oversized request bodies early (413, the uniform error body)."""

    def __init__(self, app: ASGIApp, limit_for: Callable[[str, str], int] = body_limit) -> None:
        self.app = app
        self.limit_for = limit_for

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.limit_for(scope["method"], scope["path"])
        for name, value in scope.get("headers", ()):
            if name == b"content-length":
                try:
                    announced = int(value)
                except ValueError:
                    announced = -1
                if announced > limit or announced < 0:
                    err = _too_large(limit) if announced > limit else ApiError(
                        400, "bad_request", "Content-Length is not a non-negative integer")
                    await _send_error(send, err)
                    return
        seen = 0

        async def limited() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > limit:
                    # the route is reading the body: its exception handler answers 413
                    raise _too_large(limit)
            return message

        await self.app(scope, limited, send)


async def _send_error(send: Send, err: ApiError) -> None:
    body = error_body(err.code, err.message, err.details)
    await send({"type": "http.response.start", "status": err.status,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
                            (b"connection", b"close")]})
    await send({"type": "http.response.body", "body": body})
