"""``POST /v1/evidence/capture``: the node captures a web page on its own host and prepares its
filing (docs/api.md §6.1, docs/works.md §4.3).

A legal centre's signed request ``{"url": "http(s)://…"}``. The node checks its own capture
environment (``forensics.capture.check_environment``), captures the page in a clean headless
Chromium (``forensics.capture.capture``) with the node's own API and peer addresses forbidden
(no request forgery into the node) and the chain's head time as the clock reference, then
matches every picture, audio and video file of the capture against the registry and prepares
the capture filing (``EvidenceDesk.prepare_capture``), exactly as ``POST
/v1/evidence/prepare`` does for uploaded files. The answer is the manifest to sign; the legal
centre signs it and files it with ``POST /v1/evidence`` (``api.sdk_capture.capture_on_node``
does both). One capture runs at a time on a node; others wait for it.
"""

from __future__ import annotations

import asyncio
import importlib
import json
import urllib.parse
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response

from forensics.capture_filing import CaptureFilingError, capture_facts, capture_files
from ledger.consensus.types import Block

from ..auth import AUTH_RESPONSES, Identity, require
from ..deps import NodeDep
from ..errors import ERROR_RESPONSES, ApiError
from ..schemas import ErrorBody
from ..schemas_evidence import CAPTURE_BODY, PreparedOut
from .evidence import DeskDep, _prepare, _shown, plain_json

router = APIRouter(prefix="/v1/evidence", tags=["evidence"])

MAX_BODY = 4096
MAX_URL = 2048
CLOCK_SKEW_S = 90.0  # an idle chain adds a heartbeat block a minute: its head may be that old
_LOCK = asyncio.Lock()

RESPONSES: dict[int | str, dict[str, Any]] = {
    **ERROR_RESPONSES, **AUTH_RESPONSES,
    400: {"model": ErrorBody, "description": "invalid_request (not {\"url\": …}, not http(s)); capture_refused "
                                             "(an address the node may not capture, e.g. its own API)"},
    422: {"model": ErrorBody, "description": "filing_refused, unreadable_file"},
    503: {"model": ErrorBody, "description": "capture_refused (the node's capture environment is not clean: the "
                                             "reason in the message), unavailable (no browser capture on this node)"},
}


def capture_module() -> Any:
    """``forensics.capture`` (imported when first used: Chromium and its driver load only on a
    node that captures)."""
    try:
        return importlib.import_module("forensics.capture")
    except ImportError as exc:
        raise ApiError(503, "unavailable", f"this node cannot capture web pages: {exc}") from None


def _url(raw: bytes) -> str:
    try:
        body = json.loads(raw)
    except ValueError:
        body = None
    if not isinstance(body, dict) or set(body) != {"url"} or not isinstance(body["url"], str):
        raise ApiError(400, "invalid_request", 'the body is {"url": "http(s)://…"}')
    url = body["url"].strip()
    if not 1 <= len(url) <= MAX_URL:
        raise ApiError(400, "invalid_request", f"the url must be 1-{MAX_URL} characters")
    try:
        u = urllib.parse.urlsplit(url)
        ok = u.scheme in ("http", "https") and bool(u.hostname) and u.port != 0
    except ValueError:
        ok = False
    if not ok:  # refused before any browser starts (file:, chrome:, javascript:, no host, bad port)
        raise ApiError(400, "capture_refused", f"capture refused: {url[:200]!r} is not an http(s) address")
    return url


def chain_time_s(node: Any) -> float | None:
    """The time of the chain's latest block (s since 1970), the capture's clock reference."""
    chain = node.app.chain
    rec = chain.block_record(chain.head) if chain.head > 0 else None
    return None if rec is None else Block.from_wire(rec["block"]).header["time"] / 1000


def _capture(mod: Any, url: str, out: Path, own: list[tuple[str, int]], chain_s: float | None) -> Any:
    settings = mod.CaptureSettings(forbidden=tuple(own), chain_time_s=chain_s, max_clock_skew_s=CLOCK_SKEW_S)
    try:
        mod.check_environment(settings)
    except mod.CaptureRefused as exc:  # the node's own environment: not the client's doing
        raise ApiError(503, "capture_refused", f"capture refused: {getattr(exc, 'reason', exc)}") from None
    try:
        return mod.capture(url, out, settings)
    except mod.CaptureRefused as exc:  # the address (the node's own, file://, ...)
        raise ApiError(400, "capture_refused", f"capture refused: {getattr(exc, 'reason', exc)}") from None


@router.post("/capture", response_model=PreparedOut, responses=RESPONSES,
             openapi_extra={"requestBody": CAPTURE_BODY})
async def capture(request: Request, node: NodeDep, desk: DeskDep,
                  ident: Annotated[Identity, Depends(require(roles=("legal",)))]) -> Response:
    """Capture ``url`` on the node's host and prepare its filing: the manifest to sign, each
    file's matches against the registry and the works matched (then ``POST /v1/evidence``)."""
    raw = await request.body()
    if len(raw) > MAX_BODY:
        raise ApiError(400, "invalid_request", f"the body is at most {MAX_BODY} bytes")
    url = _url(raw)
    mod = capture_module()
    own: list[tuple[str, int]] = list(getattr(request.app.state, "own_addresses", []))
    folder = desk.new_folder()
    try:
        async with _LOCK:
            page = await asyncio.to_thread(_capture, mod, url, folder / "capture", own, chain_time_s(node))
        try:
            files = capture_files(page)
        except CaptureFilingError as exc:
            raise ApiError(422, "filing_refused", str(exc)) from None
        works = getattr(request.app.state, "works", None)
        if works is not None:  # a work registered through another node is indexed here first
            await works.indexer.refresh()
        facts = capture_facts(page, where=f"node {node.id}")
        prep = await desk.run(_prepare, desk, folder, [f.path for f in files], None, ident.account, None, facts,
                              ident.certificate.public_key().point, [f.role for f in files], [f.name for f in files])
    except BaseException:
        desk.discard_folder(folder)
        raise
    return plain_json({"evidence_id": prep.evidence_id, "holder": None, "manifest": prep.manifest,
                       "matches": _shown(prep), "url": url, "work_id": None, "works": prep.manifest["works"]})
