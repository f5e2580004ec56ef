"""The SDK over real TLS, and who may read evidence and case records, on a real consortium
(six node processes; the supervisor also serves its API over HTTPS with its transport
certificate: ``node.json`` ``api_tls``).

Over HTTPS a holder registers a work, the legal centre files a copy and an unrelated picture
(the streamed ``Expect: 100-continue`` upload: a TLS socket refuses ``MSG_PEEK``), the CLI
files too, and the package exported over HTTPS verifies offline. Then every route that can
reveal an evidence or case record shows it to its parties, the filer, the work's holder and
courts, not to an unsigned request (401) nor to another holder (403; a block shows its
receipt redacted, an event list leaves it out), while registrations stay public.
"""

from __future__ import annotations

import json
import os
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from api.sdk import Identity, LedgerClient
from forensics.verify import verify_package
from ledger.node.config import init_local_consortium
from tests.conftest import RONGXIN, run_rongxin
from tests.forensics.conftest import picture
from tests.ports import free_port

pytestmark = [pytest.mark.slow]


class Tls:
    def __init__(self, data: Path, media: Path) -> None:
        self.data, self.media = data, media
        nodes = json.loads((data / "cluster.json").read_text())["nodes"]
        sup = next(n for n in nodes if n["role"] == "supervisor")
        self.api, self.https = sup["api"], sup["api_tls"]
        self.ca_file = data / "ca" / "transport-ca.crt.pem"
        self.root = data / "ca" / "root.crt.pem"
        self.ids = data / "identities"
        self.work: dict[str, Any] = {}
        self.filed: dict[str, Any] = {}

    def who(self, name: str) -> Identity:
        return Identity.load(self.ids / name)

    def client(self, name: str) -> LedgerClient:
        return LedgerClient(self.https, identity=self.who(name), ca_file=self.ca_file, timeout=120)

    def get(self, target: str, who: str | None = None) -> tuple[int, Any]:
        """GET over plain HTTP, signed as ``who`` (None: unsigned)."""
        headers = self.who(who).headers("GET", target) if who else {}
        req = urllib.request.Request(self.api + target, headers=headers)
        try:
            with urllib.request.urlopen(req, timeout=60) as r:
                return r.status, json.load(r)
        except urllib.error.HTTPError as e:
            return e.code, json.load(e)


@pytest.fixture(scope="module")
def tls(tmp_path_factory: pytest.TempPathFactory):
    import cv2

    t = tmp_path_factory.mktemp("sdk-tls")
    w = picture(21)
    cv2.imwrite(str(t / "work.png"), w)
    h, wd = w.shape[:2]
    cv2.imwrite(str(t / "copy.jpg"), cv2.resize(w[int(.05 * h):, int(.05 * wd):], None, fx=.7, fy=.7),
                [cv2.IMWRITE_JPEG_QUALITY, 60])
    cv2.imwrite(str(t / "other.png"), picture(22))
    data = t / "c"
    init_local_consortium(data, base_port=int(os.environ["RONGXIN_BASE_PORT"]))  # this worker's port range
    sup = next(p for p in (data / "nodes").iterdir() if json.loads((p / "node.json").read_text())["role"] == "supervisor")
    cfg = json.loads((sup / "node.json").read_text())
    cfg["api_tls"] = ["127.0.0.1", free_port()]
    (sup / "node.json").write_text(json.dumps(cfg))
    proc = run_rongxin("up", "--detach", "--data", str(data), timeout=240)
    try:
        assert proc.returncode == 0, proc.stderr
        lv = Tls(data, t)
        assert lv.https.startswith("https://127.0.0.1:")
        lv.work = lv.client("holder").register_work(t / "work.png", {"title": "TLS work", "type": "picture"})
        yield lv
    finally:
        run_rongxin("down", "--data", str(data), timeout=120)


def test_register_file_and_export_over_tls(tls: Tls, tmp_path: Path) -> None:
    assert tls.work["conflicts"] == [] and tls.work["sm3"]
    legal = tls.client("legal")
    out = legal.file_evidence([tls.media / "copy.jpg", tls.media / "other.png"], tls.work["work_id"])
    by = {m["file"]: m for m in out["matches"]}
    assert by["copy.jpg"]["matched"] and not by["other.png"]["matched"]
    tls.filed = out
    pkg = legal.export_evidence(out["evidence_id"], tmp_path / "pkg.zip")
    report = verify_package(pkg, tls.root.read_bytes())
    assert report.ok, report.checks
    assert [s["type"] for s in report.statements] == ["works.register", "evidence.file"]


def test_cli_files_over_tls(tls: Tls) -> None:
    env = dict(os.environ, RONGXIN_CA_FILE=str(tls.ca_file))
    r = subprocess.run([str(RONGXIN), "evidence", "file", str(tls.media / "copy.jpg"), "--as", str(tls.ids / "legal"),
                        "--api", tls.https, "--work", tls.work["work_id"], "--json"], capture_output=True, text=True,
                       timeout=300, env=env, check=False)
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["matches"][0]["matched"]
    bad = subprocess.run([str(RONGXIN), "evidence", "file", str(tls.media / "copy.jpg"), "--as",
                          str(tls.ids / "legal"), "--api", tls.https, "--work", tls.work["work_id"]],
                         capture_output=True, text=True, timeout=120, check=False,
                         env={k: v for k, v in os.environ.items() if k not in ("RONGXIN_CA_FILE", "SSL_CERT_FILE")})
    assert bad.returncode == 3 and "CERTIFICATE_VERIFY_FAILED" in bad.stderr  # an untrusted node is not talked to


def _filed(tls: Tls) -> dict[str, Any]:
    if not tls.filed:
        tls.filed = tls.client("legal").file_evidence([tls.media / "copy.jpg"], tls.work["work_id"])
    return tls.filed


def test_state_of_evidence_and_cases_only_for_those_allowed(tls: Tls) -> None:
    f = _filed(tls)
    for key in (f"evidence/e/{f['evidence_id']}", f"case/c/{f['case_id']}"):
        code, body = tls.get(f"/v1/state/{key}")
        assert code == 401 and body["error"]["code"] == "auth_missing", body
        code, body = tls.get(f"/v1/state/{key}", "holder2")
        assert code == 403 and body["error"]["code"] == "not_allowed", body
        for who in ("legal", "holder", "court", "regulator"):
            code, body = tls.get(f"/v1/state/{key}", who)
            assert code == 200 and json.loads(body["value"]), (key, who, body)
    copy_sm3 = json.loads(tls.get(f"/v1/state/evidence/e/{f['evidence_id']}", "legal")[1]["value"])[
        "manifest"]["artefacts"][0]["sm3"]
    grant = f"/v1/state/blob/{copy_sm3}/r/{tls.who('legal').account}"
    assert tls.get(grant)[0] == 401 and tls.get(grant, "holder2")[0] == 403 and tls.get(grant, "legal")[0] == 200
    assert tls.get(f"/v1/state/works/w/{tls.work['work_id']}")[0] == 200  # registrations are public
    # a signed request that fails its checks (an unregistered key): its refusal for the private
    # record, the public ones still served
    from ledger.crypto import SM2PrivateKey
    from ledger.crypto.ca import ConsortiumCA

    key = SM2PrivateKey.generate()
    cert = ConsortiumCA(tls.data / "ca").issue(kind="user", name="Stranger", org="Demo Legal Centre",
                                               public_key=key.public_key(), business="court")
    stranger = Identity(key, cert)
    for target, want in ((f"/v1/state/evidence/e/{f['evidence_id']}", 403), (f"/v1/txs/{tls.work['tx_id']}", 200)):
        req = urllib.request.Request(tls.api + target, headers=stranger.headers("GET", target))
        try:
            with urllib.request.urlopen(req, timeout=60) as r:
                code, body = r.status, json.load(r)
        except urllib.error.HTTPError as e:
            code, body = e.code, json.load(e)
        assert code == want, body
        assert want == 200 or body["error"]["code"] == "auth_unregistered"


def test_transactions_proofs_blocks_and_events(tls: Tls) -> None:
    f = _filed(tls)
    tx = f["tx_id"]
    for who in (None, "holder2"):  # status, block, proofs and code only
        code, body = tls.get(f"/v1/txs/{tx}", who)
        assert code == 200 and body["tx"] is None and body["redacted"], body
        assert body["receipt"] == {"code": 0, "info": "", "redacted": True} and body["proof"]["tx"] == tx
    code, rec = tls.get(f"/v1/txs/{tx}", "holder")
    assert code == 200 and rec["tx"]["body"]["payload"]["evidence_id"] == f["evidence_id"]
    assert tls.get(f"/v1/txs/{tls.work['tx_id']}")[0] == 200  # a registration is public
    LedgerClient(tls.api, identity=tls.who("legal")).wait(tx, 120)
    deadline = time.monotonic() + 60  # proofs exist once a later block certifies the receipt
    while (got := tls.get(f"/v1/proofs?tx={tx}", "court"))[0] == 404 and time.monotonic() < deadline:
        time.sleep(0.5)
    code, bundle = got
    assert code == 200 and bundle["statements"][0]["tx"]["body"]["type"] == "evidence.file"
    assert tls.get(f"/v1/proofs?tx={tx}")[0] == 401
    assert tls.get(f"/v1/proofs?tx={tx}", "holder2")[0] == 403
    assert tls.get(f"/v1/proofs?tx={tls.work['tx_id']}")[0] == 200
    height, index = rec["height"], rec["index"]
    code, block = tls.get(f"/v1/blocks/{height}")
    assert code == 200 and block["receipts"][index] == {"code": 0, "info": "", "redacted": True}
    code, block = tls.get(f"/v1/blocks/{height}", "legal")
    assert code == 200 and "evidence.Filed" in {e["type"] for e in block["receipts"][index]["events"]}
    target = "/v1/events?type=evidence.Filed&limit=1000"
    assert tls.get(target)[0] == 401
    seen = {w: {e["event"]["data"]["evidence_id"] for e in tls.get(target, w)[1]["events"]}
            for w in ("holder2", "holder", "court")}
    assert f["evidence_id"] not in seen["holder2"] and f["evidence_id"] in seen["holder"] & seen["court"]
    assert tls.get("/v1/events?type=works.Registered")[0] == 200


def test_a_package_is_checked_before_it_is_signed(tls: Tls, tmp_path: Path) -> None:
    """``check_package`` (what ``export_evidence`` runs before adding ``manifest.sig``) on the
    node's unsigned package: accepted as served; refused with a member changed, for another
    certificate, another evidence id or another chain."""
    import zipfile

    from api.sdk_check import UnsafeToSign, check_package

    f = _filed(tls)
    target = f"/v1/evidence/{f['evidence_id']}/package"
    req = urllib.request.Request(tls.api + target, headers=tls.who("legal").headers("GET", target))
    with urllib.request.urlopen(req, timeout=120) as r:
        raw = r.read()
    pkg = tmp_path / "unsigned.zip"
    pkg.write_bytes(raw)
    legal = tls.who("legal").certificate.fingerprint
    chain = LedgerClient(tls.api).chain
    check_package(pkg, chain=chain, certificate_fingerprint=legal, evidence_id=f["evidence_id"])
    with pytest.raises(UnsafeToSign, match="another certificate"):
        check_package(pkg, chain=chain, certificate_fingerprint=tls.who("holder").certificate.fingerprint,
                      evidence_id=f["evidence_id"])
    with pytest.raises(UnsafeToSign, match=r"no evidence\.file statement"):
        check_package(pkg, chain=chain, certificate_fingerprint=legal, evidence_id="e-someone-else")
    with pytest.raises(UnsafeToSign, match="for chain"):
        check_package(pkg, chain="another-chain", certificate_fingerprint=legal, evidence_id=f["evidence_id"])
    with zipfile.ZipFile(pkg) as z:
        members = {n: z.read(n) for n in z.namelist()}
    art = next(n for n in members if n.startswith("artefacts/copy"))
    members[art] = members[art][:-1] + bytes([members[art][-1] ^ 1])
    bad = tmp_path / "changed.zip"
    with zipfile.ZipFile(bad, "w") as z:
        for n, b in members.items():
            z.writestr(n, b)
    with pytest.raises(UnsafeToSign, match="recomputed here differ"):
        check_package(bad, chain=chain, certificate_fingerprint=legal, evidence_id=f["evidence_id"])
