"""What every route module shares: answering canonical JSON."""

from __future__ import annotations

from typing import Any

from fastapi.responses import Response

from ledger.codec import canonical


def json_response(obj: Any, status: int = 200) -> Response:
    """``obj`` (or JSON bytes already canonical) as the answer."""
    body = obj if isinstance(obj, bytes) else canonical(obj)
    return Response(body, status_code=status, media_type="application/json")
