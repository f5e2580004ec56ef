"""The API's one error shape and the one handler that produces it.

Every error answer is ``{"error": {"code": str, "message": str, "details": any}}``. Typed
errors of the layers below (``ledger.node.intake``, ``ledger.node.queries``, ``ledger.tx``,
``ledger.codec``), FastAPI's request validation, Starlette's 404/405 and anything unexpected
(500, named only by its type: no traceback or internal value reaches the client) all go
through ``handle_error``; ``ERRORS`` maps each type to its status and code.
"""

from __future__ import annotations

import json
import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from ledger.codec import EncodingError
from ledger.errors import LedgerError
from ledger.node.intake import (
    BatchTooLarge,
    IntakeBusy,
    IntakeUnavailable,
    InvalidSubmission,
    MalformedSubmission,
)
from ledger.node.queries import InvalidQuery, NotFound, QueryError
from ledger.tx import InvalidTransaction

from .schemas import ErrorBody

log = logging.getLogger("rongxin.api")


class ApiError(Exception):
    """An error raised by the API layer itself (e.g. a body over the route's limit)."""

    def __init__(self, status: int, code: str, message: str, details: Any = None,
                 headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status, self.code, self.message, self.details = status, code, message, details
        self.headers = headers  # e.g. Retry-After of a 429


# most specific first: the first entry the error is an instance of decides
ERRORS: list[tuple[type[Exception], int, str]] = [
    (MalformedSubmission, 400, "malformed_json"),
    (EncodingError, 400, "malformed_json"),
    (InvalidSubmission, 422, "invalid_request"),
    (BatchTooLarge, 413, "too_many_transactions"),
    (IntakeBusy, 503, "busy"),
    (IntakeUnavailable, 503, "unavailable"),
    (InvalidTransaction, 422, "invalid_transaction"),
    (NotFound, 404, "not_found"),
    (InvalidQuery, 400, "invalid_query"),
    (LedgerError, 400, "refused"),
]
HTTP_CODES = {400: "bad_request", 404: "not_found", 405: "method_not_allowed", 413: "body_too_large",
              415: "unsupported_media_type", 429: "rate_limited"}

# what routes that take input document (each with the shape above)
ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    400: {"model": ErrorBody, "description": "malformed JSON (a lone surrogate escape, an integer over 4,300 "
                                             "digits, a float) or a refused request"},
    404: {"model": ErrorBody, "description": "nothing under that id, height, key or name"},
    422: {"model": ErrorBody, "description": "wrong types, missing or unknown fields, values out of range"},
}


def error_body(code: str, message: str, details: Any = None) -> bytes:
    """The JSON of an error (ASCII escapes: any string, even an unpaired surrogate, encodes)."""
    return json.dumps({"error": {"code": code, "message": message, "details": details}},
                      ensure_ascii=True, default=str).encode()


def error_response(status: int, code: str, message: str, details: Any = None) -> Response:
    return Response(error_body(code, message, details), status_code=status, media_type="application/json")


def _validation_details(exc: RequestValidationError) -> list[dict[str, Any]]:
    return [{"loc": [str(p) for p in e.get("loc", ())], "msg": str(e.get("msg", "")), "type": str(e.get("type", ""))}
            for e in exc.errors()[:20]]


def classify(exc: Exception) -> tuple[int, str, str, Any]:
    """(status, code, message, details) of any exception."""
    if isinstance(exc, ApiError):
        return exc.status, exc.code, exc.message, exc.details
    if isinstance(exc, RequestValidationError):
        details = _validation_details(exc)
        where = ".".join(details[0]["loc"]) if details else ""
        msg = str(details[0]["msg"]) if details else "invalid request"
        return 422, "invalid_request", f"{where}: {msg}" if where else msg, details
    if isinstance(exc, StarletteHTTPException):
        return exc.status_code, HTTP_CODES.get(exc.status_code, "http_error"), str(exc.detail), None
    for kind, status, code in ERRORS:
        if isinstance(exc, kind):
            return status, code, str(exc), exc.details if isinstance(exc, QueryError) else None
    return 500, "internal", f"internal error: {type(exc).__name__}", None


async def handle_error(request: Request, exc: Exception) -> Response:
    """The one exception handler: every error becomes the uniform body with its status."""
    status, code, message, details = classify(exc)
    if status >= 500 and code == "internal":
        # the server logs the traceback too: Starlette re-raises after this answer
        log.error("%s %s failed: %s", request.method, request.url.path, type(exc).__name__)
    headers = {"Allow": exc.headers["Allow"]} if isinstance(exc, StarletteHTTPException) and exc.headers and \
        "Allow" in exc.headers else None
    if isinstance(exc, ApiError) and exc.headers:
        headers = dict(exc.headers)
    return Response(error_body(code, message, details), status_code=status, media_type="application/json",
                    headers=headers)


def install(app: FastAPI) -> None:
    for kind in (ApiError, RequestValidationError, StarletteHTTPException, LedgerError, Exception):
        app.add_exception_handler(kind, handle_error)
