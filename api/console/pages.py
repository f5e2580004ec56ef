"""The console's pages (HTML, server-rendered with Jinja2, autoescaped) and its static files.

Every page answers with a strict Content-Security-Policy (scripts, styles and images only
from this node, no inline script or style), so a user-written string that slipped into the
markup could still not run; autoescaping keeps it text in the first place. Pages read public
data only (``reads.Reads``); the language is Chinese by default, English with the switch
(``/lang?to=en``, a cookie).
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from jinja2 import Environment, FileSystemLoader, select_autoescape

from ledger.node.queries import MAX_HEIGHT

from .i18n import DEFAULT, LANGS, gettext, tx_label
from .reads import HEX40, HEX64, PAGE, WINDOW, Reads

HERE = Path(__file__).parent
CSP = ("default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; "
       "base-uri 'none'; form-action 'self'; frame-ancestors 'none'")
HEADERS = {"Content-Security-Policy": CSP, "X-Content-Type-Options": "nosniff", "Referrer-Policy": "no-referrer",
           "X-Frame-Options": "DENY", "Cache-Control": "no-store"}
_JS = "text/javascript; charset=utf-8"
STATIC = {"console.js": _JS, "capture.js": _JS, "signed.js": _JS, "register.js": _JS, "verify.js": _JS, "govern.js": _JS,
          "console.css": "text/css; charset=utf-8",
          "favicon.svg": "image/svg+xml"}
COOKIE = "rx_lang"
NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.:-]{0,127}")

router = APIRouter(include_in_schema=False)
env = Environment(loader=FileSystemLoader(HERE / "templates"), autoescape=select_autoescape(default=True),
                  trim_blocks=True, lstrip_blocks=True)


def utc(ms: Any) -> str:
    try:
        return datetime.fromtimestamp(int(ms) / 1000, UTC).strftime("%Y-%m-%d %H:%M:%S")
    except (TypeError, ValueError, OverflowError, OSError):
        return ""


def chart(series: list[tuple[int, float]], width: int = 560, height: int = 120) -> dict[str, Any]:
    """A line chart's polyline points (SVG user units) and its extremes."""
    if len(series) < 2:
        return {"points": "", "max": 0.0, "first": None, "last": None, "width": width, "height": height}
    top = max(v for _, v in series) or 1.0
    step = width / (len(series) - 1)
    pts = " ".join(f"{i * step:.1f},{height - v / top * (height - 4):.1f}" for i, (_, v) in enumerate(series))
    return {"points": pts, "max": top, "first": series[0][0], "last": series[-1][0], "width": width,
            "height": height}


env.filters["utc"] = utc
env.tests["account"] = lambda s: isinstance(s, str) and HEX40.fullmatch(s) is not None
env.filters["short"] = lambda s, n=16: (str(s)[:n] + "…") if s and len(str(s)) > n else (s or "")


def lang_of(request: Request) -> str:
    lang = request.cookies.get(COOKIE, DEFAULT)
    return lang if lang in LANGS else DEFAULT


def reads_of(request: Request) -> Reads:
    r: Reads | None = getattr(request.app.state, "console", None)
    if r is None:
        r = request.app.state.console = Reads(request.app.state.node)
    return r


def render(request: Request, template: str, status: int = 200, **ctx: Any) -> HTMLResponse:
    lang = lang_of(request)
    r = reads_of(request)
    html = env.get_template(template).render(
        _=gettext(lang), lang=lang, tx_label=lambda t: tx_label(t, lang), path=request.url.path,
        query=str(request.url.query), head=r.head, node_id=r.node.id, **ctx)
    return HTMLResponse(html, status_code=status, headers=HEADERS)


def missing(request: Request, what: str, status: int = 404) -> HTMLResponse:
    return render(request, "error.html", status, what=what, error=status)


def _before(request: Request) -> int | None:
    raw = request.query_params.get("before", "")
    return int(raw) if raw.isdigit() and len(raw) <= 19 else None


@router.get("/", response_class=HTMLResponse)
async def overview(request: Request) -> HTMLResponse:
    r = reads_of(request)
    info = request.app.state.info
    charts = r.charts()
    txs, _next = r.recent_txs(10)
    return render(request, "overview.html", status_=r.node.status(), chain=r.node.chain, role=info.role, org=info.org,
                  online=sorted(info.online()), blocks=r.recent(10), txs=txs[:10],
                  tps=chart(charts["tps"]), latency=chart(charts["latency"]), window=WINDOW)


@router.get("/blocks", response_class=HTMLResponse)
async def blocks(request: Request) -> HTMLResponse:
    r = reads_of(request)
    rows = r.recent(PAGE, _before(request))
    older = rows[-1].height if rows and rows[-1].height > 0 else None
    return render(request, "blocks.html", blocks=rows, older=older)


@router.get("/blocks/{height}", response_class=HTMLResponse)
async def block(request: Request, height: str) -> HTMLResponse:
    r = reads_of(request)
    if not height.isdigit() or int(height) > MAX_HEIGHT:
        return missing(request, height, 400)
    view = r.block(int(height))
    if view is None:
        return missing(request, height)
    return render(request, "block.html", b=view, txs=r.block_txs(view), more=max(0, len(view["tx_ids"]) - 200))


@router.get("/txs", response_class=HTMLResponse)
async def txs(request: Request) -> HTMLResponse:
    rows, older = reads_of(request).recent_txs(PAGE, _before(request))
    return render(request, "txs.html", txs=rows, older=older)


@router.get("/txs/{tx_id}", response_class=HTMLResponse)
async def tx(request: Request, tx_id: str) -> HTMLResponse:
    r = reads_of(request)
    tid = tx_id.lower()
    if not HEX64.fullmatch(tid):
        return missing(request, tx_id, 400)
    rec = r.transaction(tid)
    if rec is None:
        if r.pending(tid):
            return render(request, "tx.html", t={"id": tid, "pending": True})
        return missing(request, tid)
    return render(request, "tx.html", t=rec)


@router.get("/accounts", response_class=HTMLResponse)
async def accounts(request: Request) -> HTMLResponse:
    return render(request, "accounts.html", users=reads_of(request).users())


@router.get("/accounts/{account}", response_class=HTMLResponse)
async def account(request: Request, account: str) -> HTMLResponse:
    if not HEX40.fullmatch(account):
        return missing(request, account, 400)
    return render(request, "account.html", a=reads_of(request).account(account))


@router.get("/contracts", response_class=HTMLResponse)
async def contracts(request: Request) -> HTMLResponse:
    r = reads_of(request)
    return render(request, "contracts.html", names=r.contract_names(), audit=list(reversed(r.audit("contract.*", 1000)))[:PAGE])


@router.get("/contracts/{name}", response_class=HTMLResponse)
async def contract(request: Request, name: str) -> HTMLResponse:
    if not NAME.fullmatch(name):
        return missing(request, name, 400)
    c = reads_of(request).contract(name)
    return missing(request, name) if c is None else render(request, "contract.html", c=c)


@router.get("/works", response_class=HTMLResponse)
async def works(request: Request) -> HTMLResponse:
    return render(request, "works.html", works=reads_of(request).works())


@router.get("/works/{work_id}", response_class=HTMLResponse)
async def work(request: Request, work_id: str) -> HTMLResponse:
    r = reads_of(request)
    w = r.work(work_id)
    return missing(request, work_id) if w is None else render(request, "work.html", w=w,
                                                                    token=r.nft("copyright", work_id))


@router.get("/nfts/{cls}/{tid}", response_class=HTMLResponse)
async def nft(request: Request, cls: str, tid: str) -> HTMLResponse:
    tok = reads_of(request).nft(cls, tid)
    return missing(request, f"{cls}/{tid}") if tok is None else render(request, "nft.html", n=tok)


@router.get("/evidence", response_class=HTMLResponse)
async def evidence(request: Request) -> HTMLResponse:
    return render(request, "evidence.html", txs=reads_of(request).protected_txs())


@router.get("/nodes", response_class=HTMLResponse)
async def nodes(request: Request) -> HTMLResponse:
    r = reads_of(request)
    online = set(request.app.state.info.online()) | {r.node.id}
    rows = r.production()
    others = sorted(online - {v["id"] for v in rows})
    return render(request, "nodes.html", rows=rows, online=online, others=others, orgs=r.orgs(), window=WINDOW)


@router.get("/search", response_class=HTMLResponse)
async def search(request: Request) -> Response:
    q = request.query_params.get("q", "")[:256]
    hits = reads_of(request).search(q)
    if len(hits) == 1:
        return RedirectResponse(hits[0][2], status_code=303)
    return render(request, "search.html", q=q, hits=hits)


@router.get("/lang")
async def switch(request: Request) -> Response:
    """Set the language cookie (``to``: zh or en) and go back to ``next`` (a path on this
    node only; anything else goes to the overview)."""
    code = request.query_params.get("to", "")
    nxt = request.query_params.get("next", "/")
    if not nxt.startswith("/") or nxt.startswith("//") or "\\" in nxt or len(nxt) > 2048:
        nxt = "/"
    out = RedirectResponse(nxt, status_code=303)
    if code in LANGS:
        out.set_cookie(COOKIE, code, max_age=365 * 86400, samesite="lax", httponly=True)
    return out


@router.get("/console/static/{name}")
async def static(name: str) -> Response:
    kind = STATIC.get(name)
    if kind is None:
        return Response("not found", status_code=404, media_type="text/plain")
    return Response((HERE / "static" / name).read_bytes(), media_type=kind,
                    headers={"Cache-Control": "max-age=3600", "X-Content-Type-Options": "nosniff"})


@router.get("/favicon.ico")
async def favicon() -> Response:
    return Response((HERE / "static" / "favicon.svg").read_bytes(), media_type="image/svg+xml",
                    headers={"Cache-Control": "max-age=86400"})
