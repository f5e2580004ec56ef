"""The console's pages through the real app around a real committing node (no browser): what
a user wrote stays text, every page carries the strict Content-Security-Policy, search finds a
block, a transaction and an account, bad input gets a 4xx page, and both languages are
complete (every template string has its Chinese text, every transaction type its names)."""

from __future__ import annotations

import re
from pathlib import Path

from api.console.i18n import TX_TYPES, ZH
from ledger.contracts.context import account_of
from ledger.node.app import standard_types

from .conftest import Api

TEMPLATES = Path(__file__).resolve().parents[2] / "api" / "console" / "templates"
SCRIPT = "<script>alert(1)</script>"


def test_every_template_string_and_transaction_type_has_both_languages() -> None:
    texts = set()
    for f in TEMPLATES.glob("*.html"):
        texts |= set(re.findall(r'_\("((?:[^"\\]|\\.)*)"', f.read_text()))
        texts |= set(re.findall(r"_\('((?:[^'\\]|\\.)*)'", f.read_text()))
    assert len(texts) > 80
    missing = sorted(t for t in texts if t not in ZH)
    assert not missing, missing
    kinds = {"block", "transaction", "account", "work", "contract", "supervisor", "consensus", "full"}
    assert kinds <= set(ZH)
    governance = {"gov.propose", "gov.vote", "user.register", "user.revoke", "node.join", "node.exit"}
    forensics = {"works.register", "evidence.file", "case.open", "case.attach", "case.move"}
    untranslated = (set(standard_types()) | governance | forensics) - set(TX_TYPES)
    assert not untranslated, untranslated
    assert all(en and zh and en != zh for en, zh in TX_TYPES.values())


def test_pages_escape_what_users_wrote_under_a_strict_policy(api: Api) -> None:
    tx = api.tx("note", SCRIPT)
    assert api.client.post("/v1/txs", content=tx.encode()).status_code == 202
    rec = api.wait_committed(tx.id_hex)
    page = api.client.get(f"/txs/{tx.id_hex}")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert SCRIPT not in page.text and "&lt;script&gt;alert(1)&lt;/script&gt;" in page.text
    assert "kv.set" in page.text and rec["block_hash"] in page.text  # decoded type, its block
    for p in ("/", "/blocks", f"/blocks/{rec['height']}", "/txs", "/accounts", "/contracts", "/works",
              "/evidence", "/nodes", f"/accounts/{account_of(api.user.public_key().point)}"):
        r = api.client.get(p)
        assert r.status_code == 200, p
        csp = r.headers["content-security-policy"]
        assert "script-src 'self'" in csp and "default-src 'none'" in csp and "unsafe" not in csp, p
        assert '<input type="search" name="q"' in r.text, p
        assert "<script>" not in r.text.replace('<script src="/console/static/console.js" defer></script>', ""), p
    # the query is echoed escaped on the results page
    r = api.client.get("/search", params={"q": SCRIPT})
    assert r.status_code == 200 and SCRIPT not in r.text and "&lt;script&gt;" in r.text


def test_search_goes_to_the_block_the_transaction_and_the_account(api: Api) -> None:
    tx = api.tx("k", "v")
    api.client.post("/v1/txs", content=tx.encode())
    rec = api.wait_committed(tx.id_hex)
    acct = account_of(api.user.public_key().point)
    for q, where in ((tx.id_hex, f"/txs/{tx.id_hex}"), (tx.id_hex.upper(), f"/txs/{tx.id_hex}"),
                     (rec["block_hash"], f"/blocks/{rec['height']}"), (str(rec["height"]), f"/blocks/{rec['height']}"),
                     (acct, f"/accounts/{acct}")):
        r = api.client.get("/search", params={"q": q}, follow_redirects=False)
        assert r.status_code == 303 and r.headers["location"] == where, q
        assert api.client.get(where).status_code == 200
    assert rec["block_hash"] in api.client.get(f"/blocks/{rec['height']}").text
    nothing = api.client.get("/search", params={"q": "no-such-thing " * 40})
    assert nothing.status_code == 200 and "未找到" in nothing.text


def test_bad_input_gets_a_page_not_a_500(api: Api) -> None:
    for path, status in (("/blocks/abc", 400), ("/blocks/99999999", 404), ("/blocks/" + "9" * 30, 400),
                         ("/txs/zz", 400), ("/txs/" + "0" * 64, 404), ("/accounts/nothex", 400),
                         ("/works/no-such-work", 404), ("/works/%3Cb%3E", 404), ("/contracts/none", 404),
                         ("/contracts/%3Cscript%3E", 400), ("/console/static/x.js", 404),
                         ("/console/static/..%2Fpages.py", 404)):
        r = api.client.get(path)
        assert r.status_code == status, (path, r.status_code)
        assert "<b>" not in r.text and "<script>" not in r.text.replace(
            '<script src="/console/static/console.js" defer></script>', "")
    assert api.client.get("/console/static/console.js").headers["content-type"].startswith("text/javascript")
    assert api.client.get("/favicon.ico").status_code == 200


def test_language_switch_sets_the_cookie_and_stays_on_this_node(api: Api) -> None:
    assert '<html lang="zh-CN">' in api.client.get("/").text
    r = api.client.get("/lang", params={"to": "en", "next": "/blocks"}, follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/blocks" and "rx_lang=en" in r.headers["set-cookie"]
    page = api.client.get("/blocks")
    assert '<html lang="en">' in page.text and ">Blocks<" in page.text and "区块" not in page.text
    for bad in ("//evil.example/x", "https://evil.example", "/\\evil.example", "javascript:alert(1)"):
        r = api.client.get("/lang", params={"to": "zh", "next": bad}, follow_redirects=False)
        assert r.headers["location"] == "/", bad
    assert '<html lang="zh-CN">' in api.client.get("/").text


def test_latest_events_are_the_newest_first_and_the_account_page_shows_the_balance(api: Api) -> None:
    from ledger.tx import Transaction

    from .conftest import CHAIN

    me = account_of(api.user.public_key().point)
    other = "ab" * 20

    def send(type_: str, payload: dict[str, object]) -> dict[str, object]:
        tx = Transaction.build(api.user, chain=CHAIN, type=type_, payload=payload, expiry=10**9)
        assert api.client.post("/v1/txs", content=tx.encode()).status_code == 202
        return api.wait_committed(tx.id_hex)

    assert send("ft.issue", {"symbol": "PTS", "name": "<i>points</i>", "cap": 10**6, "initial": 1000})["receipt"]["code"] == 0
    for amount in (1, 2, 3):
        assert send("ft.transfer", {"symbol": "PTS", "to": other, "amount": amount})["receipt"]["code"] == 0
    chain = api.node.app.chain
    oldest_first = chain.events("ft.Transfer", other)
    assert [e["event"]["data"]["amount"] for e in oldest_first] == [1, 2, 3]
    assert chain.latest_events("ft.Transfer", other, 2) == oldest_first[::-1][:2]
    assert chain.latest_events("ft.Transfer", None, 5) == chain.events("ft.Transfer")[::-1]
    assert chain.latest_events("ft.Transfer", other, 1) == oldest_first[-1:]
    assert chain.latest_events("ft.Transfer", "cd" * 20, 5) == []
    page = api.client.get(f"/accounts/{other}").text
    assert "<td>PTS</td><td>6</td>" in page and f'href="/accounts/{me}"' in page


def test_contract_page_shows_its_lifecycle_and_audit_log(api: Api) -> None:
    import base64

    from ledger.contracts.wasm import example

    up = api.tx(type="contract.upload", payload={"name": "points", "code": base64.b64encode(example("token")).decode()})
    api.client.post("/v1/txs", content=up.encode())
    assert api.wait_committed(up.id_hex)["receipt"]["code"] == 0
    assert 'href="/contracts/points"' in api.client.get("/contracts").text
    page = api.client.get("/contracts/points")
    assert page.status_code == 200
    text = page.text
    assert "uploaded" in text and f'href="/txs/{up.id_hex}"' in text and "合约上传" in text  # history and audit
    assert text.count(f'href="/txs/{up.id_hex}"') >= 2
    assert len(max(re.findall(r"<code[^>]*>([^<]*)</code>", text), key=len)) < 260  # the module is not dumped
