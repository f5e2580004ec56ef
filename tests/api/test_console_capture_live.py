"""The console's signed-in capture page in headless Chromium on a real consortium (`rongxin up
--detach`): a legal centre loads its identity (key.pem + cert.pem) into the page, pastes the
address of a page on loopback that shows a copy of a registered picture, presses one button;
the node captures and matches, the page checks and signs the manifest and the `evidence.file`
transaction itself (SM2 in the browser, sm-crypto), files, shows the evidence id, the match
and the case, and hands over the package it signed, which verifies offline. The browser's
request signatures and transaction signature verify with ledger.crypto; the key never
appears in any request; a holder identity is refused with the node's error shown as text.
One consortium and one Chromium for the module."""

from __future__ import annotations

import base64
import json
import subprocess
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import cv2
import pytest
from playwright.sync_api import Browser, ConsoleMessage, Page, Request, sync_playwright

from api.signing import canonical_request
from forensics.package import format as pf
from ledger.crypto import Certificate, SM2PrivateKey, sm3
from ledger.tx import Transaction
from tests.conftest import RONGXIN, run_rongxin
from tests.forensics.conftest import picture

# a second group of consortium tests: it runs beside "cluster" (own port range per worker)
pytestmark = [pytest.mark.slow]

FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
         "--disable-sync", "--no-first-run"]
VENDOR = Path(__file__).resolve().parents[2] / "api" / "console" / "vendor"


@pytest.fixture(scope="module")
def cons(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    from tests.forensics.capture.servers import serve

    # the page's libraries, as `make test` installs them (idempotent: nothing to do when done)
    subprocess.run(["make", "-s", "console-js"], cwd=VENDOR.parents[2], check=True, timeout=300)
    t = tmp_path_factory.mktemp("console-capture")
    data = t / "c"
    proc = run_rongxin("up", "--detach", "--data", str(data), timeout=240)
    assert proc.returncode == 0, proc.stderr
    try:
        sup = next(n for n in json.loads((data / "cluster.json").read_text())["nodes"] if n["role"] == "supervisor")
        w = picture(33)
        cv2.imwrite(str(t / "work.png"), w)
        p = run_rongxin("works", "register", str(t / "work.png"), "--as", str(data / "identities" / "holder"),
                        "--api", sup["api"], "--title", "Registered picture", "--json", cwd=t, timeout=180)
        assert p.returncode == 0, p.stderr
        site = t / "site"
        site.mkdir()
        h, wd = w.shape[:2]
        cv2.imwrite(str(site / "photo.jpg"), cv2.resize(w[int(.05 * h):, :int(.95 * wd)], None, fx=.6, fy=.6),
                    [cv2.IMWRITE_JPEG_QUALITY, 75])
        cv2.imwrite(str(site / "other.jpg"), picture(140))
        (site / "index.html").write_text(
            '<!doctype html><html><head><meta charset="utf-8"><title>Reposted</title></head><body>'
            f'<h1>转载</h1><p>{"Some text. " * 60}</p><img src="other.jpg" width="240">'
            '<figure><img src="photo.jpg"><figcaption>A picture</figcaption></figure></body></html>',
            encoding="utf-8")
        srv, hits = serve(site)
        try:
            yield {"api": sup["api"], "ids": data / "identities", "root": data / "ca" / "root.crt.pem",
                   "work": json.loads(p.stdout)["work_id"], "url": f"http://127.0.0.1:{srv.server_address[1]}/",
                   "hits": hits, "tmp": t}
        finally:
            srv.shutdown()
    finally:
        run_rongxin("down", "--data", str(data), timeout=120)


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path="/usr/bin/chromium", args=FLAGS)
        yield b
        b.close()


class Watched:
    """A fresh page that records console errors, page errors, dialogs and every request to the
    node's API (method, URL, headers, body)."""

    def __init__(self, browser: Browser, expected_http: tuple[str, ...] = ()) -> None:
        self.ctx = browser.new_context(accept_downloads=True)
        self.page: Page = self.ctx.new_page()
        self.problems: list[str] = []
        self.requests: list[Request] = []
        self.expected = expected_http  # (status, path part) of answers Chromium logs as an error

        def console(m: ConsoleMessage) -> None:
            if m.type != "error":
                return
            where = str(m.location.get("url", "")) if m.location else ""
            if "Failed to load resource" in m.text and any(s in m.text and p in where for s, p in self.expected):
                return  # a refusal the page handles (shown to the user), logged by Chromium anyway
            self.problems.append(f"{m.text} @ {where}")

        self.page.on("console", console)
        self.page.on("pageerror", lambda e: self.problems.append(f"pageerror {e}"))
        self.page.on("dialog", lambda d: (self.problems.append(f"dialog {d.message}"), d.dismiss()))
        self.page.on("request", lambda r: self.requests.append(r) if "/v1/" in r.url else None)

    def close(self) -> None:
        self.ctx.close()


def load_identity(pg: Page, api: str, folder: Path) -> None:
    pg.goto(api + "/capture")
    pg.set_input_files("#id-files", [str(folder / "key.pem"), str(folder / "cert.pem")])
    pg.wait_for_selector("#id-status.ok", timeout=20_000)


def check_request_signature(r: Request, cert: Certificate) -> None:
    """The browser's signature over the canonical request (docs/api-auth.md §3) verifies here."""
    h = r.all_headers()
    assert base64.b64decode(h["x-rongxin-certificate"]) == cert.der
    target = r.url.split("://", 1)[1]
    target = target[target.index("/"):]
    body = r.post_data_buffer or b""
    assert h["x-rongxin-content-sm3"] == sm3(body).hex()
    msg = canonical_request(r.method, target, h["x-rongxin-content-sm3"], int(h["x-rongxin-timestamp"]),
                            h["x-rongxin-nonce"])
    assert cert.public_key().is_valid_signature(base64.b64decode(h["x-rongxin-signature"]), msg), r.url


def test_legal_centre_captures_files_and_downloads_a_package_that_verifies(cons: dict[str, Any],
                                                                          browser: Browser) -> None:
    legal = cons["ids"] / "legal"
    w = Watched(browser, expected_http=(("404", "/v1/cases/"), ("409", "/package")))
    pg = w.page
    try:
        load_identity(pg, cons["api"], legal)
        cert = Certificate.load((legal / "cert.pem").read_bytes())
        account = sm3(cert.public_key().point)[:20].hex()
        assert account in pg.inner_text("#id-status")
        pg.fill("#url", cons["url"])
        pg.click("#go")
        pg.wait_for_selector("#result:not([hidden])", timeout=180_000)
        assert pg.is_hidden("#error")
        for s in ("env", "capture", "match", "check", "file", "confirm"):
            assert pg.get_attribute(f'#stages li[data-stage="{s}"]', "class") == "done", s
        eid = pg.inner_text("#r-evidence").strip()
        assert eid and eid in pg.content()
        assert pg.locator(f'#r-matches tr[data-work="{cons["work"]}"]').count() >= 1
        cases = pg.inner_text("#r-cases")
        assert cons["work"] in cases  # the case opened for the matched work: c-<work>-<account>
        assert "/photo.jpg" in cons["hits"]

        with pg.expect_download(timeout=120_000) as dl:
            pg.click("#package")
        pkg = cons["tmp"] / "from-browser.zip"
        dl.value.save_as(pkg)
        r = subprocess.run(["unshare", "-n", str(RONGXIN), "evidence", "verify", str(pkg), "--root", str(cons["root"]),
                            "--json"], capture_output=True, text=True, timeout=120, check=False)
        assert "Traceback" not in r.stderr
        rep = json.loads(r.stdout)
        assert r.returncode == 0 and rep["ok"], rep.get("failed")
        with zipfile.ZipFile(pkg) as z:  # the filer's signature the page added, over manifest.json
            assert cert.public_key().is_valid_signature(z.read(pf.SIGNATURE), z.read(pf.MANIFEST))

        # every signed request the browser sent verifies; the key itself never left the page
        key = SM2PrivateKey.load_file(legal / "key.pem")
        secret = key.scalar().hex()
        key_pem = (legal / "key.pem").read_text().split("-----")[2].strip()[:40]
        signed = [q for q in w.requests if "x-rongxin-signature" in q.all_headers()]
        paths = {(q.method, q.url.split("?")[0].split("/v1/", 1)[1].split("/")[0]) for q in signed}
        assert {("POST", "evidence"), ("GET", "cases")} <= paths, paths
        for q in w.requests:
            blob = (q.post_data_buffer or b"") + json.dumps(q.all_headers()).encode() + q.url.encode()
            assert secret.encode() not in blob.lower() and key_pem.encode() not in blob
        for q in signed:
            check_request_signature(q, cert)
        filing = next(q for q in signed if q.method == "POST" and q.url.endswith("/v1/evidence"))
        tx = Transaction.decode(filing.post_data_buffer or b"")
        tx.verify_signature()  # the browser's transaction signature, checked by the ledger's code
        assert tx.sender == cert.public_key().point and tx.type == "evidence.file"
        assert tx.payload["evidence_id"] == eid and tx.payload["cases"][0]["work_id"] == cons["work"]
    finally:
        w.close()
    assert not w.problems, w.problems[:5]


def test_holder_is_refused_and_sees_the_reason(cons: dict[str, Any], browser: Browser) -> None:
    w = Watched(browser, expected_http=(("403", "/v1/evidence/capture"),))
    pg = w.page
    try:
        load_identity(pg, cons["api"], cons["ids"] / "holder")
        pg.fill("#url", cons["url"] + "?<script>alert(1)</script>")
        pg.click("#go")
        pg.wait_for_selector("#error:not([hidden])", timeout=60_000)
        text = pg.inner_text("#error")
        assert "auth_role" in text and "403" in text, text
        assert pg.is_hidden("#result")
        assert pg.get_attribute('#stages li[data-stage="file"]', "class") == "waiting"
        assert pg.is_enabled("#go")  # the page lives on: another try is possible
        # a file that is not a key is an error shown as text, and no key stays loaded
        bogus = cons["tmp"] / "notes.pem"
        bogus.write_text("<b>not a key</b>")
        pg.set_input_files("#id-files", [str(bogus)])
        # (a selector, not wait_for_function: the page's CSP forbids the eval its polling uses)
        pg.locator("#error", has_text="key.pem").wait_for(timeout=10_000)
        assert pg.is_visible("#error") and pg.is_disabled("#go")
    finally:
        w.close()
    assert not w.problems, w.problems[:5]


def test_refused_address_is_shown_as_text(cons: dict[str, Any], browser: Browser) -> None:
    """The node refuses a javascript: address before any browser starts; its message, which
    quotes the address, is shown as text (no element made, no dialog)."""
    w = Watched(browser, expected_http=(("400", "/v1/evidence/capture"),))
    pg = w.page
    try:
        load_identity(pg, cons["api"], cons["ids"] / "legal")
        pg.fill("#url", "javascript:alert('<b id=x>x</b>')")
        pg.click("#go")
        pg.wait_for_selector("#error:not([hidden])", timeout=60_000)
        text = pg.inner_text("#error")
        assert "capture_refused" in text and "<b id=x>" in text, text
        assert pg.locator("#x").count() == 0 and pg.is_hidden("#result")
        assert pg.get_attribute('#stages li[data-stage="capture"]', "class") == "failed"
    finally:
        w.close()
    assert not w.problems, w.problems[:5]
