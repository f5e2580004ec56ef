"""``/healthz``, ``/readyz``, ``/metrics`` and ``/v1/alerts`` (docs/operations.md §1-§3).

Outside the OpenAPI document: they are for probes, Prometheus and dashboards, not for
clients of the ledger, and their formats are those docs/operations.md gives.
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response

from ..errors import error_response
from ..metrics import CONTENT_TYPE
from ..service import Service
from .common import json_response

router = APIRouter(include_in_schema=False)


def _service(request: Request) -> Service:
    service: Service = request.app.state.service
    return service


@router.get("/healthz")
async def healthz() -> Response:
    """The process is alive and its event loop answers."""
    return json_response({"status": "ok"})


@router.get("/readyz")
async def readyz(request: Request) -> Response:
    """200 when the node serves and is in step with its peers; 503 ``not_ready`` otherwise,
    with the failed checks in ``details``."""
    ready, checks = _service(request).ready()
    if ready:
        return json_response({"ready": True, "checks": checks})
    return error_response(503, "not_ready", "the node is not ready: " + ", ".join(
        k for k in ("serving", "synced", "linked") if not checks[k]), checks)


@router.get("/metrics")
async def metrics(request: Request) -> Response:
    """Prometheus text format (version 0.0.4). Built on the event loop (the node's state belongs
    to it): a few reads and ``stat`` calls."""
    return Response(_service(request).metrics.exposition(), media_type=CONTENT_TYPE)


@router.get("/v1/alerts")
async def alerts(request: Request) -> Response:
    """The node's own alerts: ``{"firing": [...], "recent": [...], "rules": [...]}``, each alert as
    in Alertmanager's webhook payload."""
    return json_response(_service(request).alerts.view())
