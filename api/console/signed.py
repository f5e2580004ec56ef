"""Signed-in views of the console (docs/console.md §6): pages whose actions the browser signs
with an identity's SM2 key, which the user loads into the page and which never leaves it.

Today: ``/capture``, a legal centre's one-click web capture (``static/capture.js`` does the
flow: ``POST /v1/evidence/capture``, the manifest check, signing, ``POST /v1/evidence``, the
package). SM2 and SM3 in the browser come from the npm package ``sm-crypto`` and the zip
reader/writer from ``fflate``, installed by ``make console-js`` from the committed
``vendor/package-lock.json`` and served here from ``/console/vendor/`` under the console's
CSP. The constants the page checks a prepared manifest against are the product's own,
handed to the script in ``data-`` attributes, never copied into it.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response

from forensics.cases import CAPTURE_ROLES, MANIFEST_VERSION, MAX_CAPTURE_WORKS
from forensics.rules import ID_RE, MANIFEST_PURPOSE

from ..sdk import DEFAULT_TTL_BLOCKS
from ..sdk_check import CLOCK_SLACK_MS
from ..signing import SCHEME, SIGNER_ID
from .pages import HERE, render

VENDOR = HERE / "vendor" / "node_modules"
# served name -> (file inside node_modules, npm package whose version the page footer shows)
VENDOR_FILES: dict[str, tuple[str, str]] = {
    "sm2.js": ("sm-crypto/dist/sm2.js", "sm-crypto"),
    "sm3.js": ("sm-crypto/dist/sm3.js", "sm-crypto"),
    "fflate.js": ("fflate/umd/index.js", "fflate"),
}
JS = "text/javascript; charset=utf-8"

router = APIRouter(include_in_schema=False)


def vendor_version(package: str) -> str | None:
    """The installed version of a vendored npm package (its package.json), or None."""
    try:
        meta = json.loads((VENDOR / package / "package.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    v = meta.get("version") if isinstance(meta, dict) else None
    return v if isinstance(v, str) else None


def page_constants(**extra: Any) -> str:
    """What the signed-in pages check and sign with, from the product's own definitions (JSON);
    ``extra``: a page's own."""
    return json.dumps({**extra,
        "scheme": SCHEME, "signer_id": SIGNER_ID.decode(), "manifest_purpose": MANIFEST_PURPOSE,
        "manifest_version": MANIFEST_VERSION, "capture_roles": list(CAPTURE_ROLES),
        "max_capture_works": MAX_CAPTURE_WORKS, "clock_slack_ms": CLOCK_SLACK_MS,
        "ttl_blocks": DEFAULT_TTL_BLOCKS, "id_re": ID_RE.pattern,
    }, separators=(",", ":"), sort_keys=True)


@router.get("/capture", response_class=HTMLResponse)
async def capture(request: Request) -> HTMLResponse:
    libs = {p: vendor_version(p) for p in ("sm-crypto", "fflate")}
    return render(request, "capture.html", constants=page_constants(), libs=libs,
                  ready=all(v is not None for v in libs.values()))


@router.get("/console/vendor/{name}")
async def vendor(name: str) -> Response:
    entry = VENDOR_FILES.get(name)
    path = None if entry is None else VENDOR / entry[0]
    if path is None or not path.is_file():
        return Response("not found", status_code=404, media_type="text/plain")
    return Response(Path(path).read_bytes(), media_type=JS,
                    headers={"Cache-Control": "max-age=3600", "X-Content-Type-Options": "nosniff"})
