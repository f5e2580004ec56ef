"""The other roles' signed-in console pages in headless Chromium on a real consortium (`rongxin
up --detach`), each identity loaded into the page from its folder (docs/console.md §6.2):

- a rights holder registers a work (a title with markup in it): the page signs the pledge and
  the `works.register` transaction, then the proof package, and links the certificate PDF;
- a court uploads a package; the node runs the court verifier and the page shows every check
  (all pass; a tampered copy shows the failed check);
- a validator of an organisation the proposal's policy counts votes on an open proposal; the
  supervisor that proposed it sees it has voted already;
- an identity without the right sees no action on any of the three pages.

The browser's transactions verify with ledger.crypto; no console error. One consortium and
one Chromium for the module."""

from __future__ import annotations

import io
import json
import subprocess
import urllib.request
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import cv2
import pytest
from playwright.sync_api import Browser, Page, sync_playwright

from api.sdk import Identity, LedgerClient
from api.sdk_works import get_proof
from forensics.registration import proof_package
from ledger.crypto import CertificateRevocationList, SM2PrivateKey
from ledger.tx import Transaction
from tests.conftest import run_rongxin
from tests.forensics.conftest import picture

from .test_console_capture_live import FLAGS, VENDOR, Watched

# a second group of consortium tests: it runs beside "cluster" (own port range per worker)
pytestmark = [pytest.mark.slow]
TITLE = "<script>alert(1)</script> 星空"
MARKUP = "<img src=x id=injected> left"


def _get(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=30) as r:
        return json.load(r)


def _propose(api: str, key: SM2PrivateKey, action: dict[str, Any]) -> str:
    c = LedgerClient(api, key)
    tx = Transaction.build(key, chain=c.chain, type="gov.propose", payload={"action": action},
                           expiry=int(c.status()["height"]) + 200)
    c.submit(tx)
    rec = c.wait(tx.id_hex, 60, certified=False)
    assert rec["receipt"]["code"] == 0, rec["receipt"]
    return tx.id_hex


@pytest.fixture(scope="module")
def cons(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    subprocess.run(["make", "-s", "console-js"], cwd=VENDOR.parents[2], check=True, timeout=300)
    t = tmp_path_factory.mktemp("console-roles")
    data = t / "c"
    proc = run_rongxin("up", "--detach", "--data", str(data), timeout=240)
    assert proc.returncode == 0, proc.stderr
    try:
        sup = next(n for n in json.loads((data / "cluster.json").read_text())["nodes"] if n["role"] == "supervisor")
        api, nodes = sup["api"], data / "nodes"
        sup_key = SM2PrivateKey.load((nodes / "sup1" / "sm2.key.pem").read_bytes())
        # params changes need every consensus organisation (five), so the proposal stays open
        # ... and org.add two supervisors, of which the local consortium has one
        _propose(api, sup_key, {"kind": "policy", "set": {
            "params": {"rule": "orgs", "role": "consensus", "need": "all"},
            "org.add": {"rule": "supervisors", "need": 2}}})
        pid = _propose(api, sup_key, {"kind": "params", "set": {"max_block_txs": 777}})
        sup_pid = _propose(api, sup_key, {"kind": "org.add", "org": "Demo Newcomer", "roles": ["media"]})
        # an executed proposal whose user-written reason holds markup (shown as text)
        spare = Identity.load(data / "identities" / "platform-e").account
        _propose(api, sup_key, {"kind": "user.revoke", "account": spare, "reason": MARKUP})
        # a package for the court: a registration's proof package signed by its holder
        cv2.imwrite(str(t / "earlier.png"), picture(51))
        holder2 = Identity.load(data / "identities" / "holder2")
        client = LedgerClient(api, identity=holder2)
        reg = client.register_work(t / "earlier.png", {"title": "Earlier", "type": "picture"})
        proof = get_proof(client, reg["work_id"], 90)
        pkg = proof_package(proof["bundle"], holder_key=holder2.key, holder_cert=holder2.certificate,
                            crl=CertificateRevocationList.load(proof["crl"].encode()),
                            validator_certificates=[v.encode() for v in proof["validators"]])
        (t / "good.zip").write_bytes(pkg)
        with zipfile.ZipFile(io.BytesIO(pkg)) as z, zipfile.ZipFile(t / "tampered.zip", "w") as out:
            for n in z.namelist():
                b = z.read(n)
                out.writestr(n, b.replace(b'"height":', b'"height": ', 1) if n == "chain/blocks.json" else b)
        cv2.imwrite(str(t / "work.png"), picture(77))
        yield {"api": api, "ids": data / "identities", "nodes": nodes, "proposal": pid, "sup_proposal": sup_pid,
               "tmp": t}
    finally:
        run_rongxin("down", "--data", str(data), timeout=120)


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path="/usr/bin/chromium", args=FLAGS)
        yield b
        b.close()


def load(pg: Page, url: str, key: Path, cert: Path) -> None:
    pg.goto(url)
    pg.set_input_files("#id-files", [str(key), str(cert)])
    pg.wait_for_selector("#id-status.ok", timeout=20_000)


def ident(cons: dict[str, Any], name: str) -> tuple[Path, Path]:
    return cons["ids"] / name / "key.pem", cons["ids"] / name / "cert.pem"


def test_holder_registers_a_work_and_gets_its_certificate(cons: dict[str, Any], browser: Browser) -> None:
    w = Watched(browser, expected_http=(("409", "/proof-package"), ("404", "/v1/txs/")))
    pg = w.page
    try:
        load(pg, cons["api"] + "/register", *ident(cons, "holder"))
        pg.wait_for_selector("#action:not([hidden])", timeout=20_000)
        assert pg.is_hidden("#no-right")
        pg.set_input_files("#w-file", str(cons["tmp"] / "work.png"))
        pg.fill("#w-title", TITLE)
        pg.select_option("#w-type", "picture")
        pg.click("#go")
        pg.wait_for_selector('#stages li[data-stage="certificate"].done, #error:not([hidden])', timeout=120_000)
        assert pg.is_hidden("#error"), pg.inner_text("#error")
        for s in ("prepare", "sign", "confirm", "certificate"):
            assert pg.get_attribute(f'#stages li[data-stage="{s}"]', "class") == "done", s
        wid = pg.inner_text("#r-work").strip()
        work = _get(f"{cons['api']}/v1/works/{wid}")
        assert work["attributes"]["title"] == TITLE and work["holder"] in pg.inner_text("#id-status")
        href = pg.get_attribute("#r-cert", "href")
        assert href == f"/v1/works/{wid}/certificate" and pg.is_visible("#r-cert")
        with urllib.request.urlopen(cons["api"] + href, timeout=30) as r:
            assert r.read(5) == b"%PDF-"
        # the transaction the browser signed verifies with the ledger's code
        sent = next(q for q in w.requests if q.method == "POST" and q.url.endswith("/v1/txs"))
        tx = Transaction.decode(sent.post_data_buffer or b"")
        tx.verify_signature()
        assert tx.type == "works.register" and tx.id_hex == work["tx"] and tx.payload["work_id"] == wid
        secret = SM2PrivateKey.load_file(cons["ids"] / "holder" / "key.pem").scalar().hex()
        assert not any(secret.encode() in (q.post_data_buffer or b"") + json.dumps(q.all_headers()).encode()
                       for q in w.requests)
        # the title with markup stays text on the work's page
        pg.goto(f"{cons['api']}/works/{wid}")
        assert TITLE in pg.inner_text("main") and pg.locator("main script").count() == 0
    finally:
        w.close()
    assert not w.problems, w.problems[:5]


def test_court_verifies_a_package_check_by_check(cons: dict[str, Any], browser: Browser) -> None:
    w = Watched(browser)
    pg = w.page
    try:
        load(pg, cons["api"] + "/verify", *ident(cons, "court"))
        pg.wait_for_selector("#action:not([hidden])", timeout=20_000)
        pg.set_input_files("#pkg", str(cons["tmp"] / "good.zip"))
        pg.click("#go")
        pg.wait_for_selector("#result:not([hidden])", timeout=60_000)
        assert pg.get_attribute("#verdict", "class") == "ok"
        rows = pg.locator("#r-checks tr[data-check]")
        assert rows.count() >= 15
        assert pg.locator("#r-checks tr[data-check].bad").count() == 0
        assert "通过" in pg.inner_text('#r-checks tr[data-check="member-hashes"]')  # Chinese by default
        assert "works.register" in pg.inner_text("#r-statements") and "holder2" in pg.inner_text("#r-statements")
        pg.set_input_files("#pkg", str(cons["tmp"] / "tampered.zip"))
        pg.click("#go")
        pg.wait_for_selector("#verdict.bad", timeout=60_000)
        assert pg.get_attribute('#r-checks tr[data-check="member-hashes"]', "class") == "bad"
        assert "chain/blocks.json" in pg.inner_text('#r-checks tr[data-check="member-hashes"]')
    finally:
        w.close()
    assert not w.problems, w.problems[:5]
    # bad input at the route: a body that is not a package is a typed 400, never a 500
    court = LedgerClient(cons["api"], identity=Identity.load(cons["ids"] / "court"))
    code, body = court._request("POST", "/v1/evidence/verify", b"PK\x03\x04 <b>not a zip</b>")
    assert code == 400 and body["error"]["code"] == "unreadable_package", body


def test_a_counted_validator_votes_and_the_proposer_sees_its_vote(cons: dict[str, Any], browser: Browser) -> None:
    pid = cons["proposal"]
    row = f'tr[data-proposal="{pid}"]'
    w = Watched(browser)
    pg = w.page
    try:
        nodes = cons["nodes"]
        load(pg, cons["api"] + "/govern", nodes / "sup1" / "sm2.key.pem", nodes / "sup1" / "sm2.crt.pem")
        assert pg.is_hidden(f"{row} .buttons") and "已投票" in pg.inner_text(f"{row} .note")
        # org.add needs two supervisors of one: it could never pass, so it was rejected at once
        sup_row = f'tr[data-proposal="{cons["sup_proposal"]}"]'
        assert pg.inner_text(f"{sup_row} .status") == "rejected" and pg.is_hidden(f"{sup_row} .buttons")
        load(pg, cons["api"] + "/govern", nodes / "val1" / "sm2.key.pem", nodes / "val1" / "sm2.crt.pem")
        assert pg.is_visible(f"{row} .buttons") and pg.is_hidden("#no-right")
        assert pg.is_hidden(f"{sup_row} .buttons")
        pg.click(f"{row} .approve")
        pg.wait_for_selector(f'{row}[data-done="yes"], #error:not([hidden])', timeout=60_000)
        assert pg.is_hidden("#error"), pg.inner_text("#error")
        state = _get(f"{cons['api']}/v1/state/sys/proposal/{pid}")
        prop = json.loads(state["value"]) if isinstance(state.get("value"), str) else state["value"]
        assert "County A Media Centre" in prop["approvals"] and prop["status"] == "open"
        pg.reload()  # the key is forgotten; the page now lists the vote
        assert "County A Media Centre" in pg.inner_text(row)
        assert MARKUP in pg.inner_text("#proposals") and pg.locator("#injected").count() == 0
    finally:
        w.close()
    assert not w.problems, w.problems[:5]


@pytest.mark.parametrize(("path", "who"), [("/register", "court"), ("/verify", "holder"), ("/govern", "holder")])
def test_identity_without_the_right_sees_no_action(cons: dict[str, Any], browser: Browser, path: str,
                                                   who: str) -> None:
    w = Watched(browser)
    pg = w.page
    try:
        load(pg, cons["api"] + path, *ident(cons, who))
        pg.wait_for_selector("#no-right:not([hidden])", timeout=20_000)
        if path == "/govern":
            assert pg.locator("tr[data-proposal] .buttons:not([hidden])").count() == 0
        else:
            assert pg.is_hidden("#action")
    finally:
        w.close()
    assert not w.problems, w.problems[:5]
    if path == "/verify":  # and the node refuses it anyway
        c = LedgerClient(cons["api"], identity=Identity.load(cons["ids"] / who))
        code, body = c._request("POST", "/v1/evidence/verify", (cons["tmp"] / "good.zip").read_bytes())
        assert code == 403 and body["error"]["code"] == "auth_role", body
