"""The signed-in capture page through the real app (no browser): it carries the console's
strict policy and loads only scripts this node serves, hands the page the product's own
constants, serves the vendored sm-crypto and fflate files (and nothing else from
node_modules), and says so in the page when they are not installed."""

from __future__ import annotations

import html
import json
import re
import subprocess
from pathlib import Path
from types import SimpleNamespace

import pytest

from api.console import roles, signed
from api.limits import VERIFY_PACKAGE_LIMIT
from api.routes.verify import VERIFY_ROLES
from api.sdk import DEFAULT_TTL_BLOCKS
from api.signing import SCHEME
from forensics.cases import CAPTURE_ROLES
from forensics.rules import MANIFEST_PURPOSE, PLEDGE_PURPOSE
from ledger.consensus.types import Validator, ValidatorSet
from ledger.crypto import SM2PrivateKey
from ledger.governance.params import ChainParams
from ledger.governance.views import Views

from .conftest import Api


@pytest.fixture(autouse=True, scope="module")
def vendored() -> None:
    """The page's libraries, as `make test` installs them (idempotent: nothing to do when done)."""
    subprocess.run(["make", "-s", "console-js"], cwd=signed.HERE.parents[1], check=True, timeout=300)


def test_capture_page_policy_scripts_and_constants(api: Api) -> None:
    r = api.client.get("/capture")
    assert r.status_code == 200
    csp = r.headers["content-security-policy"]
    assert "script-src 'self'" in csp and "default-src 'none'" in csp and "unsafe" not in csp
    assert r.headers["cache-control"] == "no-store"
    scripts = re.findall(r"<script([^>]*)>", r.text)
    srcs = [re.search(r'src="([^"]+)"', s).group(1) for s in scripts]  # type: ignore[union-attr]
    assert srcs == ["/console/static/console.js", "/console/vendor/sm2.js", "/console/vendor/sm3.js",
                    "/console/vendor/fflate.js", "/console/static/signed.js", "/console/static/capture.js"]
    consts = json.loads(html.unescape(re.search(r'data-constants="([^"]+)"', r.text).group(1)))  # type: ignore[union-attr]
    assert consts["scheme"] == SCHEME and consts["manifest_purpose"] == MANIFEST_PURPOSE
    assert consts["capture_roles"] == list(CAPTURE_ROLES) and consts["ttl_blocks"] == DEFAULT_TTL_BLOCKS
    assert consts["signer_id"] == "1234567812345678"
    assert 'href="/capture"' in api.client.get("/").text  # in the navigation


def test_vendor_files_are_served_and_nothing_else(api: Api) -> None:
    for name in ("sm2.js", "sm3.js", "fflate.js"):
        r = api.client.get(f"/console/vendor/{name}")
        assert r.status_code == 200 and r.headers["content-type"].startswith("text/javascript") and len(r.content) > 1000
    for bad in ("jsbn.js", "..%2Fpackage.json", "package-lock.json", "sm2.js.map"):
        assert api.client.get(f"/console/vendor/{bad}").status_code == 404, bad
    page = api.client.get("/capture").text
    assert 'data-ready="yes"' in page and f"sm-crypto {signed.vendor_version('sm-crypto')}" in page
    lock = json.loads((signed.HERE / "vendor" / "package-lock.json").read_text())
    assert lock["packages"]["node_modules/sm-crypto"]["version"] == signed.vendor_version("sm-crypto")


def test_page_says_when_the_libraries_are_missing(api: Api, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(signed, "VENDOR", tmp_path)
    assert api.client.get("/console/vendor/sm2.js").status_code == 404
    page = api.client.get("/capture").text
    assert 'data-ready="no"' in page and "make console-js" in page
    assert "/console/vendor/" not in page  # no script tag that would only fetch a 404


@pytest.mark.parametrize(("path", "script"), [("/register", "register.js"), ("/verify", "verify.js"),
                                              ("/govern", "govern.js")])
def test_role_pages_policy_scripts_and_constants(api: Api, path: str, script: str) -> None:
    """The other roles' pages: the same policy, the shared signed.js before the page's own
    script, the product's constants, both languages, listed in the navigation."""
    r = api.client.get(path)
    assert r.status_code == 200 and r.headers["content-security-policy"] == api.client.get("/capture").headers[
        "content-security-policy"]
    srcs = re.findall(r'<script[^>]*src="([^"]+)"', r.text)
    assert srcs == ["/console/static/console.js", "/console/vendor/sm2.js", "/console/vendor/sm3.js",
                    "/console/vendor/fflate.js", "/console/static/signed.js", f"/console/static/{script}"]
    assert api.client.get(f"/console/static/{script}").status_code == 200
    consts = json.loads(html.unescape(re.search(r'data-constants="([^"]+)"', r.text).group(1)))  # type: ignore[union-attr]
    assert consts["scheme"] == SCHEME and consts["signer_id"] == "1234567812345678"
    if path == "/register":
        assert consts["pledge_purpose"] == PLEDGE_PURPOSE and consts["max_upload"] > 0
    if path == "/verify":
        assert consts["verify_roles"] == list(VERIFY_ROLES) and consts["max_package"] == min(VERIFY_PACKAGE_LIMIT, roles.PAGE_FILE_LIMIT)
    # the action is in the page but hidden until an identity with the right is loaded
    assert re.search(r'<section id="action" hidden>', r.text) or path == "/govern"
    assert f'href="{path}"' in api.client.get("/").text
    api.client.cookies.set("rx_lang", "en")
    english = api.client.get(path).text
    api.client.cookies.clear()
    assert "Forget the key" in english and "清除密钥" in r.text


def test_govern_page_without_proposals(api: Api) -> None:
    page = api.client.get("/govern").text
    assert "暂无提案" in page and 'id="proposals"' not in page


def test_voter_keys_follow_the_policy() -> None:
    """``roles.voters``: under the supervisors' rule the supervisors' keys (as their ids); under
    an organisations' rule the validators and active admin users of the counted organisations
    (as the organisation), as ``ledger.governance.voting.voter`` counts them."""
    keys = {n: SM2PrivateKey.generate().public_key().point for n in ("sup", "v1", "v2", "admin", "user")}
    vset = ValidatorSet((Validator("sup", keys["sup"], "Org S", "supervisor"),
                         Validator("v1", keys["v1"], "Org A", "consensus"),
                         Validator("v2", keys["v2"], "Org B", "consensus")))
    views = Views("c", vset, ChainParams(), None)
    users = [{"key": keys["admin"].hex(), "org": "Org A", "role": "admin", "status": "active"},
             {"key": keys["user"].hex(), "org": "Org A", "role": "user", "status": "active"}]
    r = SimpleNamespace(node=SimpleNamespace(app=SimpleNamespace(governance=views, read=lambda k: None)),
                        users=lambda: users)
    assert roles.voters(r, {"rule": "supervisors", "need": "majority"}, 5) == [(keys["sup"].hex(), "sup")]  # type: ignore[arg-type]
    got = roles.voters(r, {"rule": "orgs", "role": "consensus", "need": "all"}, 5)  # type: ignore[arg-type]
    assert sorted(got) == sorted([(keys["sup"].hex(), "Org S"), (keys["v1"].hex(), "Org A"),
                                  (keys["v2"].hex(), "Org B"), (keys["admin"].hex(), "Org A")])
    assert roles.voters(r, {"rule": "orgs", "role": "supervisor", "need": 1}, 5) == [  # type: ignore[arg-type]
        (keys["sup"].hex(), "Org S")]
