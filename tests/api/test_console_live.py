"""The console in headless Chromium on a real consortium (`rongxin up --detach`, six node
processes): every page reachable from the overview loads with no broken link and no console
error (in Chinese, and the main pages again after switching to English); a work whose title
is ``<script>alert(1)</script>`` shows it as text and opens no dialog; the search box finds a
block, a transaction and a work (by id and by title); the live height follows a commit.
One consortium and one browser for the module."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from playwright.sync_api import Browser, Page, sync_playwright

from api.sdk import Identity, LedgerClient
from tests.conftest import run_rongxin

# a second group of consortium tests: it runs beside "cluster" (own port range per worker)
pytestmark = [pytest.mark.slow]

SCRIPT = "<script>alert(1)</script>"
FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
         "--disable-sync", "--no-first-run"]


@pytest.fixture(scope="module")
def cons(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    import cv2

    from tests.forensics.conftest import picture

    t = tmp_path_factory.mktemp("console")
    data = t / "c"
    proc = run_rongxin("up", "--detach", "--data", str(data), timeout=240)
    assert proc.returncode == 0, proc.stderr
    try:
        sup = next(n for n in json.loads((data / "cluster.json").read_text())["nodes"] if n["role"] == "supervisor")
        cv2.imwrite(str(t / "work.png"), picture(41))
        p = run_rongxin("works", "register", str(t / "work.png"), "--as", str(data / "identities" / "holder"),
                        "--api", sup["api"], "--title", SCRIPT, "--json", cwd=t, timeout=180)
        assert p.returncode == 0, p.stderr
        work = json.loads(p.stdout)
        cv2.imwrite(str(t / "copy.jpg"), picture(41)[8:, 8:], [cv2.IMWRITE_JPEG_QUALITY, 70])
        p = run_rongxin("evidence", "file", str(t / "copy.jpg"), "--as", str(data / "identities" / "legal"),
                        "--api", sup["api"], "--work", work["work_id"], "--json", cwd=t, timeout=180)
        assert p.returncode == 0, p.stderr
        client = LedgerClient(sup["api"], identity=Identity.load(data / "identities" / "holder"))
        yield {"api": sup["api"], "work": work, "evidence": json.loads(p.stdout), "client": client}
    finally:
        run_rongxin("down", "--data", str(data), timeout=120)


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path="/usr/bin/chromium", args=FLAGS)
        yield b
        b.close()


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    """A fresh page (Chinese by default) that fails the test on any console error or dialog."""
    ctx = browser.new_context()
    pg = ctx.new_page()
    problems: list[str] = []
    pg.on("console", lambda m: problems.append(f"{pg.url}: {m.text}") if m.type == "error" else None)
    pg.on("pageerror", lambda e: problems.append(f"{pg.url}: {e}"))
    pg.on("dialog", lambda d: (problems.append(f"dialog {d.message}"), d.dismiss()))
    yield pg
    ctx.close()
    assert not problems, problems[:5]


def crawl(pg: Page, api: str, start: list[str], limit: int = 200,
          secrets: tuple[str, ...] = ()) -> tuple[set[str], list[str]]:
    """Every page reachable from ``start``: the pages seen, and the broken links or pages that
    show one of ``secrets``."""
    seen: set[str] = set()
    bad: list[str] = []
    todo = [api + s for s in start]
    while todo and len(seen) < limit:
        u = todo.pop(0)
        if u in seen:
            continue
        seen.add(u)
        r = pg.goto(u, wait_until="load")
        if r is None or r.status >= 400:
            bad.append(f"{u} -> {r.status if r else None}")
            continue
        html = pg.content()
        bad.extend(f"{u} shows {x}" for x in secrets if x in html)
        for h in pg.eval_on_selector_all("a[href]", "as => as.map(a => a.href)"):
            h = h.split("#")[0]
            if h.startswith(api) and h not in seen and "/v1/" not in h:
                todo.append(h)
    return seen, bad


def test_every_page_from_the_overview_loads_without_error_in_both_languages(cons: dict[str, Any], page: Page) -> None:
    api, work, ev = cons["api"], cons["work"], cons["evidence"]
    seen, bad = crawl(page, api, ["/"], secrets=(ev["evidence_id"], ev["case_id"], ev["manifest_sm3"]))
    assert not bad, bad[:5]  # no broken link, and the private filing's ids show nowhere
    paths = {u[len(api):] for u in seen}
    for kind in ("/blocks/", "/txs/", "/accounts/", "/works/"):
        assert any(p.startswith(kind) for p in paths), (kind, sorted(paths)[:20])
    assert {f"/works/{work['work_id']}", f"/txs/{work['tx_id']}", "/nodes", "/evidence", "/contracts"} <= paths
    assert f"/nfts/copyright/{work['work_id']}" in paths  # the certificate token and its provenance
    assert f"/txs/{ev['tx_id']}" in paths  # listed on the evidence page, as a protected transaction
    page.goto(f"{api}/txs/{ev['tx_id']}", wait_until="load")
    assert page.locator("h1").inner_text() == "受保护的存证或案件交易"
    page.goto(api + "/nodes", wait_until="load")
    assert page.locator("html").get_attribute("lang") == "zh-CN" and page.locator("h1").inner_text() == "节点"
    page.click("form.lang button[value=en]")
    page.wait_for_load_state("load")
    assert page.url == api + "/nodes" and page.locator("html").get_attribute("lang") == "en"
    assert page.locator("h1").inner_text() == "Nodes"
    seen_en, bad = crawl(page, api, ["/", "/blocks", "/txs", "/accounts", "/contracts", "/works", "/evidence",
                                     f"/works/{work['work_id']}", f"/txs/{work['tx_id']}"], limit=9)
    assert not bad and len(seen_en) == 9
    assert page.locator("nav").inner_text().split()[:2] == ["Overview", "Blocks"]


def test_a_title_written_as_script_stays_text(cons: dict[str, Any], page: Page) -> None:
    api, work = cons["api"], cons["work"]
    r = page.goto(f"{api}/works/{work['work_id']}", wait_until="load")
    assert r is not None and "script-src 'self'" in r.headers["content-security-policy"]
    assert page.locator("#work-title").inner_text() == SCRIPT
    page.goto(api + "/works", wait_until="load")
    assert SCRIPT in page.locator("td.title").all_inner_texts()
    box = page.locator("input[type=search]")
    box.fill("alert(1)")
    box.press("Enter")
    page.wait_for_load_state("load")
    assert page.url == f"{api}/works/{work['work_id']}" and page.locator("#work-title").inner_text() == SCRIPT


def test_the_search_box_finds_a_block_a_transaction_and_a_work(cons: dict[str, Any], page: Page) -> None:
    api, work = cons["api"], cons["work"]
    block = cons["client"].block(work["height"])
    for q, where, shown in ((block["hash"], f"/blocks/{work['height']}", block["hash"]),
                            (work["tx_id"], f"/txs/{work['tx_id']}", work["tx_id"]),
                            (work["work_id"], f"/works/{work['work_id']}", work["work_id"]),
                            (str(work["height"]), f"/blocks/{work['height']}", block["hash"])):
        page.goto(api + "/", wait_until="load")
        box = page.locator("input[type=search][name=q]")
        box.fill(q)
        box.press("Enter")
        page.wait_for_load_state("load")
        assert page.url == api + where, q
        assert shown in page.locator("main").inner_text(), q


def test_the_live_height_follows_a_commit(cons: dict[str, Any], page: Page) -> None:
    api = cons["api"]
    sockets: list[Any] = []
    frames: list[str] = []

    def opened(ws: Any) -> None:
        sockets.append(ws)
        ws.on("framereceived", lambda f: frames.append(f if isinstance(f, str) else f.decode()))

    page.on("websocket", opened)
    page.goto(api + "/", wait_until="load")
    before = int(page.locator("#live-height").inner_text())
    rec = cons["client"].submit_and_wait("kv.set", {"key": "console", "value": "<b>live</b>"})
    assert rec["height"] > before
    shown = before
    for _ in range(150):  # the page polls every 2 s: wait up to 30 s (page scripts may not eval: CSP)
        shown = int(page.locator("#live-height").inner_text())
        if shown >= rec["height"]:
            break
        page.wait_for_timeout(200)
    assert shown >= rec["height"]
    assert int(page.locator("#overview-height").inner_text()) >= rec["height"]
    # the height came over the status subscription (the poll is only the fallback)
    assert [w.url for w in sockets] == [api.replace("http", "ws", 1) + "/v1/ws"]
    # the poll may show the height before the status frame arrives (a loaded machine): wait
    # for the frame too, up to 30 s. A status frame carries the node's head when it is sent,
    # which may already be past the block that triggered it: any height from the commit on
    # shows the subscription followed it
    def status_heights() -> list[int]:
        out = []
        for f in list(frames):
            try:
                d = json.loads(f)
            except ValueError:
                continue
            if isinstance(d, dict) and d.get("kind") == "status" and isinstance(d.get("height"), int):
                out.append(d["height"])
        return out

    for _ in range(150):
        if max(status_heights(), default=0) >= rec["height"]:
            break
        page.wait_for_timeout(200)
    assert max(status_heights(), default=0) >= rec["height"], frames[-3:]
    page.remove_listener("websocket", opened)
    page.goto(f"{api}/txs/{rec['id']}", wait_until="load")
    assert "<b>live</b>" in page.locator("main").inner_text()
