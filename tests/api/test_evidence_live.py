"""The evidence flow on a real consortium (`rongxin up --detach`: six node processes, demo
identities): a legal centre files a transformed copy and an unrelated picture (the copy
matches the work), a rights holder may not; the exported package verifies with no network and
fails, naming the check, when a member is changed, removed or added; cases move by signed
transactions; every bad input is refused with a clear 4xx / exit 2 and leaves nothing behind.

The work is registered through the works routes (``LedgerClient.register_work``): the evidence
desk shares the works registry's content store and fingerprint index."""

from __future__ import annotations

import json
import os
import subprocess
import urllib.error
import urllib.parse
import urllib.request
import zipfile
from pathlib import Path
from typing import Any

import pytest

from api.sdk import ClientError, Identity, LedgerClient
from api.signing import sign_request
from ledger.crypto import SM2PrivateKey, sm3_file
from ledger.crypto.ca import ConsortiumCA
from tests.conftest import RONGXIN, run_rongxin
from tests.forensics.conftest import picture

pytestmark = [pytest.mark.slow]

UPLOAD_MAX = 1024 * 1024  # the test consortium's upload limit (RONGXIN_MAX_UPLOAD_BYTES)


class Live:
    def __init__(self, data: Path, media: Path) -> None:
        self.data, self.media = data, media
        nodes = json.loads((data / "cluster.json").read_text())["nodes"]
        self.api = next(n["api"] for n in nodes if n["role"] == "supervisor")
        self.ids = data / "identities"
        self.root = data / "ca" / "root.crt.pem"
        self.node = Path(next(n["data"] for n in nodes if n["role"] == "supervisor"))
        self.work_id = ""
        self.filed: dict[str, Any] = {}

    def who(self, name: str) -> Identity:
        return Identity.load(self.ids / name)

    def rx(self, *args: str, cwd: Path | None = None, net: bool = True) -> subprocess.CompletedProcess[str]:
        cmd = [str(RONGXIN), *args] if net else ["unshare", "-n", str(RONGXIN), *args]
        return subprocess.run(cmd, capture_output=True, text=True, timeout=300, cwd=cwd, check=False)

    def blobs(self) -> set[str]:
        return {p.name for p in (self.node / "blobs").rglob("*") if p.is_file() and len(p.name) == 64}

    def uploads(self) -> list[Path]:
        return [p for p in (self.node / "works" / "evidence").iterdir() if not p.name.startswith("pkg-")]


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory):
    import cv2

    t = tmp_path_factory.mktemp("evidence-live")
    w = picture(11)
    cv2.imwrite(str(t / "work.png"), w)
    h, wd = w.shape[:2]
    cv2.imwrite(str(t / "copy.jpg"), cv2.resize(w[int(.05 * h):, int(.05 * wd):], None, fx=.7, fy=.7),
                [cv2.IMWRITE_JPEG_QUALITY, 60])
    cv2.imwrite(str(t / "other.png"), picture(12))
    data = t / "c"
    old = os.environ.get("RONGXIN_MAX_UPLOAD_BYTES")
    os.environ["RONGXIN_MAX_UPLOAD_BYTES"] = str(UPLOAD_MAX)
    try:
        proc = run_rongxin("up", "--detach", "--data", str(data), timeout=240)
    finally:
        if old is None:
            os.environ.pop("RONGXIN_MAX_UPLOAD_BYTES")
        else:
            os.environ["RONGXIN_MAX_UPLOAD_BYTES"] = old
    assert proc.returncode == 0, proc.stderr
    lv = Live(data, t)
    try:
        holder = LedgerClient(lv.api, identity=lv.who("holder"), timeout=120)
        lv.work_id = holder.register_work(t / "work.png", {"title": "Live work", "type": "picture"})["work_id"]
        yield lv
    finally:
        run_rongxin("down", "--data", str(data), timeout=120)


def call(live: Live, method: str, target: str, body: bytes | None, headers: dict[str, str]) -> tuple[int, Any]:
    req = urllib.request.Request(live.api + target, data=body, method=method, headers=headers)
    try:
        with urllib.request.urlopen(req, timeout=60) as r:
            return r.status, json.load(r)
    except urllib.error.HTTPError as e:
        return e.code, json.load(e)


def prepare_target(work: str, files: list[tuple[int, str]]) -> str:
    return "/v1/evidence/prepare?" + urllib.parse.urlencode([("work", work), *[("file", f"{n}:{name}")
                                                                                for n, name in files]])


def test_a_rights_holder_may_not_file(live: Live) -> None:
    before, filed = live.blobs(), filings(live)
    r = live.rx("evidence", "file", str(live.media / "copy.jpg"), "--as", str(live.ids / "holder"), "--api", live.api,
                "--work", live.work_id, "--json")
    assert r.returncode == 2, r
    assert "legal" in r.stderr and "Traceback" not in r.stderr and r.stdout == ""
    _nothing_left(live, before, filed)


def test_the_legal_centre_files_a_copy_and_an_unrelated_picture(live: Live) -> None:
    r = live.rx("evidence", "file", str(live.media / "copy.jpg"), str(live.media / "other.png"), "--as",
                str(live.ids / "legal"), "--api", live.api, "--work", live.work_id, "--json")
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert {"evidence_id", "case_id", "tx_id", "height", "matches"} <= set(out)
    by = {m["file"]: m for m in out["matches"]}
    assert by["copy.jpg"]["matched"] and isinstance(by["copy.jpg"]["score"], float) and by["copy.jpg"]["score"] > 0
    assert by["copy.jpg"]["matches"][0]["work_id"] == live.work_id
    assert not by["other.png"]["matched"] and by["other.png"]["matches"] == []
    client = LedgerClient(live.api, identity=live.who("legal"))
    ev = client.state_json(f"evidence/e/{out['evidence_id']}")
    assert ev["tx"] == out["tx_id"] and ev["height"] == out["height"] and ev["case_id"] == out["case_id"]
    assert [a["name"] for a in ev["manifest"]["artefacts"]] == ["copy.jpg", "other.png"]
    assert {a["sm3"] for a in ev["manifest"]["artefacts"]} <= live.blobs()  # kept in the content store
    assert ev["manifest"]["artefacts"][0]["sm3"] == sm3_file(live.media / "copy.jpg").hex()
    case = client.case(out["case_id"])
    assert case["state"] == "open" and case["parties"] == [live.who("holder").account]
    assert case["evidence"] == [out["evidence_id"]]
    assert live.uploads() == []  # the staging folder is gone once filed
    live.filed = out


def _filed(live: Live) -> dict[str, Any]:
    """The filing of the test above, or (when that test ran elsewhere or later) the same
    filing made now (the copy and the unrelated picture): later tests only need one."""
    if not live.filed:
        r = live.rx("evidence", "file", str(live.media / "copy.jpg"), str(live.media / "other.png"), "--as",
                    str(live.ids / "legal"), "--api", live.api, "--work", live.work_id, "--json")
        assert r.returncode == 0, r.stderr
        live.filed = json.loads(r.stdout)
    return live.filed


def _export(live: Live, who: str, out: Path) -> subprocess.CompletedProcess[str]:
    return live.rx("evidence", "export", _filed(live)["evidence_id"], "--as", str(live.ids / who), "--api", live.api,
                   "--out", str(out))


def test_the_package_verifies_offline_and_every_tampering_fails(live: Live, tmp_path: Path) -> None:
    _filed(live)
    pkg = tmp_path / "pkg.zip"
    r = _export(live, "legal", pkg)
    assert r.returncode == 0, r.stderr
    assert not pkg.with_name("pkg.zip.part").exists()
    names = zipfile.ZipFile(pkg).namelist()
    assert "manifest.sig" in names and "artefacts/copy.jpg" in names and "artefacts/other.png" in names
    assert sum(n.startswith("artefacts/work-") for n in names) == 0  # the work's file is not the filer's to read
    v = live.rx("evidence", "verify", str(pkg), "--root", str(live.root), "--json", net=False)
    assert v.returncode == 0, v.stdout + v.stderr
    report = json.loads(v.stdout)
    assert report["ok"] and report["failed"] == []
    assert [s["type"] for s in report["statements"]] == ["works.register", "evidence.file"]
    assert report["statements"][1]["tx"] == _filed(live)["tx_id"]
    data = {n: zipfile.ZipFile(pkg).read(n) for n in names}

    def verify(members: dict[str, bytes]) -> tuple[int, list[str]]:
        p = tmp_path / "t.zip"
        with zipfile.ZipFile(p, "w") as z:
            for n, b in members.items():
                z.writestr(n, b)
        res = live.rx("evidence", "verify", str(p), "--root", str(live.root), "--json", net=False)
        assert "Traceback" not in res.stdout + res.stderr
        return res.returncode, json.loads(res.stdout)["failed"] if res.returncode == 1 else []

    changed = dict(data)
    b = bytearray(changed["artefacts/copy.jpg"])
    b[len(b) // 2] ^= 1
    changed["artefacts/copy.jpg"] = bytes(b)
    code, failed = verify(changed)
    assert code == 1 and "member-hashes" in failed
    removed = {n: v for n, v in data.items() if n != "artefacts/other.png"}
    code, failed = verify(removed)
    assert code == 1 and "members" in failed
    added = {**data, "artefacts/extra.png": b"not evidence"}
    code, failed = verify(added)
    assert code == 1 and "members" in failed


def test_who_may_export(live: Live, tmp_path: Path) -> None:
    _filed(live)
    held = tmp_path / "holder.zip"
    r = _export(live, "holder", held)  # the work's holder sent the works.register statement
    assert r.returncode == 0, r.stderr
    assert sum(n.startswith("artefacts/work-") for n in zipfile.ZipFile(held).namelist()) == 1  # its own file
    v = live.rx("evidence", "verify", str(held), "--root", str(live.root), net=False)
    assert v.returncode == 0, v.stdout
    r = _export(live, "holder2", tmp_path / "no.zip")
    assert r.returncode == 2 and "only the filer" in r.stderr and not (tmp_path / "no.zip").exists()
    assert not (tmp_path / "no.zip.part").exists()
    court = live.rx("evidence", "show", _filed(live)["evidence_id"], "--as", str(live.ids / "court"), "--api", live.api)
    assert court.returncode == 0 and json.loads(court.stdout)["tx"] == _filed(live)["tx_id"]


def test_a_second_filing_joins_the_case(live: Live) -> None:
    _filed(live)
    cid = _filed(live)["case_id"]
    r = live.rx("evidence", "file", str(live.media / "copy.jpg"), "--as", str(live.ids / "legal"), "--api", live.api,
                "--work", live.work_id, "--case", cid, "--json")
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert out["case_id"] == cid and out["evidence_id"] != _filed(live)["evidence_id"]
    case = LedgerClient(live.api, identity=live.who("legal")).case(cid)
    assert case["evidence"] == sorted([_filed(live)["evidence_id"], out["evidence_id"]])
    assert case["parties"] == [live.who("holder").account] and case["state"] == "open"


def test_case_moves_by_signed_transactions(live: Live) -> None:
    assert live.filed
    cid = _filed(live)["case_id"]

    def rx(*a: str) -> subprocess.CompletedProcess[str]:
        return live.rx("case", *a, "--api", live.api)

    assert rx("show", cid, "--as", str(live.ids / "holder2")).returncode == 2  # neither opener nor party
    r = rx("move", cid, "settled", "--as", str(live.ids / "legal"))
    assert r.returncode == 2 and "may move to notified" in r.stderr
    r = rx("move", cid, "notified", "--as", str(live.ids / "holder"))
    assert r.returncode == 2 and "opener" in r.stderr
    r = rx("move", cid, "notified", "--as", str(live.ids / "legal"), "--note", "letter sent", "--json")
    assert r.returncode == 0 and json.loads(r.stdout)["state"] == "notified"
    r = rx("move", cid, "litigated", "--as", str(live.ids / "holder"), "--json")
    assert r.returncode == 0 and json.loads(r.stdout)["state"] == "litigated"
    r = rx("move", cid, "closed", "--as", str(live.ids / "court"), "--json")
    assert r.returncode == 0, r.stderr
    shown = json.loads(rx("show", cid, "--as", str(live.ids / "court"), "--json").stdout)
    states = [s["state"] for s in shown["history"]]
    # opened, then one step per filing attached later (the test before attaches one when it ran first)
    assert states[-3:] == ["notified", "litigated", "closed"] and set(states[:-3]) == {"open"}
    assert len([s for s in shown["history"] if "attached" in s]) == len(shown["evidence"]) - 1 == len(states) - 4
    assert shown["history"][-3]["note"] == "letter sent"


def filings(live: Live) -> int:
    """The evidence.Filed events a court sees (all of them; the events route needs a signer)."""
    target = "/v1/events?type=evidence.Filed&limit=1000"
    req = urllib.request.Request(live.api + target, headers=live.who("court").headers("GET", target))
    with urllib.request.urlopen(req, timeout=30) as r:
        return len(json.load(r)["events"])


def _nothing_left(live: Live, blobs: set[str], filed: int) -> None:
    assert live.blobs() == blobs
    assert live.uploads() == []
    assert filings(live) == filed  # nothing on chain


def test_bad_input_is_refused_and_leaves_nothing(live: Live, tmp_path: Path) -> None:
    legal = live.who("legal")
    before, filed = live.blobs(), filings(live)
    empty = tmp_path / "empty.png"
    empty.write_bytes(b"")
    junk = tmp_path / "junk.png"
    junk.write_bytes(os.urandom(5000))
    big = tmp_path / "big.png"
    big.write_bytes(os.urandom(UPLOAD_MAX + 1))
    for f, why in ((empty, "empty"), (junk, "cannot be fingerprinted"), (big, "larger than"),
                   (tmp_path / "missing.png", "not a readable file")):
        r = live.rx("evidence", "file", str(f), "--as", str(live.ids / "legal"), "--api", live.api, "--work",
                    live.work_id)
        assert r.returncode == 2 and why in r.stderr and "Traceback" not in r.stderr, (f, r.stderr)
        assert str(live.data) not in r.stderr  # the node's folders are not shown
    r = live.rx("evidence", "file", str(live.media / "copy.jpg"), "--as", str(live.ids / "legal"), "--api", live.api,
                "--work", "w-not-registered")
    assert r.returncode == 2 and "not registered" in r.stderr
    _nothing_left(live, before, filed)

    body = (live.media / "copy.jpg").read_bytes()
    target = prepare_target(live.work_id, [(len(body), "copy.jpg")])
    # the route itself: empty file, body shorter than announced, body not the signed one, replay
    st, out = call(live, "POST", prepare_target(live.work_id, [(0, "e.png")]), b"",
                   sign_request(legal.key, legal.certificate, "POST", prepare_target(live.work_id, [(0, "e.png")])))
    assert (st, out["error"]["code"]) == (400, "empty_file")
    short = prepare_target(live.work_id, [(len(body) + 10, "copy.jpg")])
    st, out = call(live, "POST", short, body, sign_request(legal.key, legal.certificate, "POST", short, body))
    assert st == 400 and "shorter" in out["error"]["message"]
    h = sign_request(legal.key, legal.certificate, "POST", target, body)
    st, out = call(live, "POST", target, body[:-1] + bytes([body[-1] ^ 1]), h)
    assert (st, out["error"]["code"]) == (401, "auth_body_mismatch")
    h = sign_request(legal.key, legal.certificate, "POST", target, body)
    st, out = call(live, "POST", target, body, h)
    assert st == 200, out
    st, out = call(live, "POST", target, body, h)
    assert (st, out["error"]["code"]) == (401, "auth_replay")
    # over the limit, announced: refused before a byte is read
    big_t = prepare_target(live.work_id, [(UPLOAD_MAX + 1, "big.png")])
    try:
        st, out = call(live, "POST", big_t, big.read_bytes(),
                       sign_request(legal.key, legal.certificate, "POST", big_t, big.read_bytes()))
        assert st == 413
    except (BrokenPipeError, ConnectionResetError, urllib.error.URLError) as exc:
        # the node answered 413 and closed while this client (no Expect: 100-continue, unlike
        # the SDK) was still sending: on a loaded machine the pipe breaks before it reads the answer
        assert isinstance(exc, (BrokenPipeError, ConnectionResetError)) or isinstance(
            getattr(exc, "reason", None), (BrokenPipeError, ConnectionResetError)), exc
    assert live.blobs() == before  # a prepared, unsigned filing stores nothing in the content store
    assert filings(live) == filed


def test_unregistered_or_revoked_identities_may_not_file(live: Live) -> None:
    ca = ConsortiumCA(live.data / "ca")
    key = SM2PrivateKey.generate()
    cert = ca.issue(kind="user", name="Stranger", org="Demo Legal Centre", public_key=key.public_key(),
                    business="legal")
    stranger = Identity(key, cert)
    with pytest.raises(ClientError) as err:
        LedgerClient(live.api, identity=stranger).file_evidence([live.media / "copy.jpg"], live.work_id)
    assert (err.value.status, err.value.code) == (403, "auth_unregistered")
    # registered, then revoked on chain by itself
    from ledger.tx import Transaction

    client = LedgerClient(live.api)
    st = client.status()
    reg = Transaction.build(key, chain=st["chain"], type="user.register", expiry=st["height"] + 1000,
                            payload={"certificate": cert.to_pem().decode()})
    assert client.wait(client.submit(reg), 60, certified=False)["receipt"]["code"] == 0
    own = LedgerClient(live.api, identity=stranger)
    rec = own.wait(own.submit(own.build("user.revoke", {"account": stranger.account, "reason": "left"})), 60,
                   certified=False)
    assert rec["receipt"]["code"] == 0, rec["receipt"]
    before, staged, filed = live.blobs(), live.uploads(), filings(live)
    with pytest.raises(ClientError) as err:
        own.file_evidence([live.media / "copy.jpg"], live.work_id)
    assert (err.value.status, err.value.code) == (403, "auth_user_revoked")
    assert live.blobs() == before and live.uploads() == staged and filings(live) == filed


def test_a_filing_whose_manifest_was_changed_is_refused(live: Live) -> None:
    from api import sdk_evidence as se
    from forensics.rules import manifest_message, sign

    legal = live.who("legal")
    client = LedgerClient(live.api, identity=legal)
    prep = se.prepare_evidence(client, [live.media / "other.png"], live.work_id)
    manifest = dict(prep["manifest"], capture={"method": "changed"})
    tx = client.build("evidence.file", {"evidence_id": prep["evidence_id"], "manifest": manifest,
                                        "signature": sign(legal.key, manifest_message(manifest))})
    with pytest.raises(ClientError) as err:
        se._json_call(client, "POST", "/v1/evidence", tx.encode())
    assert (err.value.status, err.value.code) == (409, "manifest_differs")
    assert client.state_json(f"evidence/e/{prep['evidence_id']}") is None
    # another legal centre's key cannot take over the prepared filing either
    holder = LedgerClient(live.api, identity=live.who("holder"))
    with pytest.raises(ClientError) as err:
        se._json_call(holder, "POST", "/v1/evidence", tx.encode())
    assert (err.value.status, err.value.code) == (403, "auth_role")
    assert client.state_json(f"evidence/e/{prep['evidence_id']}") is None


def test_a_legal_centre_cannot_read_the_works_file_by_naming_it_as_evidence(live: Live, tmp_path: Path) -> None:
    """C2 on a live node: the legal centre may not read the registered work's file; naming its
    SM3 as an artefact of its own signed filing (sent straight to POST /v1/txs, past the desk)
    is refused in the receipt, and it still may not read it. The holder may."""
    from api import sdk_evidence as se
    from forensics.rules import manifest_message, sign

    legal, holder = live.who("legal"), live.who("holder")
    client = LedgerClient(live.api, identity=legal)
    work = client.state_json(f"works/w/{live.work_id}")
    with pytest.raises(ClientError) as err:
        client.blob(work["sm3"], tmp_path / "stolen.png")
    assert (err.value.status, err.value.code) == (403, "not_allowed")
    prep = se.prepare_evidence(client, [live.media / "copy.jpg"], live.work_id)
    manifest = json.loads(json.dumps(prep["manifest"]))
    manifest["artefacts"][0].update(name="original.png", sm3=work["sm3"], size=work["size"])
    tx = client.build("evidence.file", {"evidence_id": prep["evidence_id"], "manifest": manifest,
                                        "signature": sign(legal.key, manifest_message(manifest))})
    rec = client.wait(client.submit(tx), 60, certified=False)
    assert rec["receipt"]["code"] == 4, rec["receipt"]
    assert "a filing may name only files its filer uploaded" in rec["receipt"]["info"]
    assert client.state_json(f"evidence/e/{prep['evidence_id']}") is None
    with pytest.raises(ClientError) as err:
        client.blob(work["sm3"], tmp_path / "stolen.png")
    assert (err.value.status, err.value.code) == (403, "not_allowed")
    assert not (tmp_path / "stolen.png").exists()
    got = LedgerClient(live.api, identity=holder).blob(work["sm3"], tmp_path / "mine.png")
    assert sm3_file(got).hex() == work["sm3"]


def test_the_node_refuses_what_the_contract_would_before_storing_anything(live: Live, tmp_path: Path) -> None:
    """I9: prepare (evidence and works) and the evidence submission run the contract's checks:
    a 4xx with its reason, nothing in the content store, nothing on chain."""
    import cv2

    from api import sdk_evidence as se
    from api import sdk_works as sw
    from forensics.rules import manifest_message, sign

    fresh = tmp_path / "fresh.png"
    cv2.imwrite(str(fresh), picture(13))
    legal = LedgerClient(live.api, identity=live.who("legal"))
    before, filed = live.blobs(), filings(live)
    staged = set(live.uploads())  # filings earlier tests prepared and never signed

    def nothing_left() -> None:
        assert live.blobs() == before and set(live.uploads()) == staged and filings(live) == filed
    with pytest.raises(ClientError) as err:  # 1,000 characters (the route's limit) but 3,000 bytes
        se.prepare_evidence(legal, [fresh], live.work_id, source="源" * 1000)
    assert (err.value.status, err.value.code) == (422, "filing_refused")
    assert "manifest.capture.source must be 0 to 1024 bytes" in str(err.value)
    nothing_left()
    with pytest.raises(ClientError) as err:
        sw.prepare_work(LedgerClient(live.api, identity=live.who("holder2")), fresh,
                        {"title": "Fresh", "type": "picture"}, pledge="我" * 1000)
    assert (err.value.status, err.value.code) == (422, "registration_refused")
    assert "pledge.text must be 1 to 2048 bytes" in str(err.value)
    nothing_left()
    # signed, but its case cannot be opened: refused before the files are stored or it is sent
    prep = se.prepare_evidence(legal, [fresh], live.work_id)
    staged |= set(live.uploads())  # this filing waits for its signature
    ident = live.who("legal")

    def send(case: dict[str, Any]) -> dict[str, Any]:
        tx = legal.build("evidence.file", {"case": case, "evidence_id": prep["evidence_id"],
                                           "manifest": prep["manifest"],
                                           "signature": sign(ident.key, manifest_message(prep["manifest"]))})
        return se._json_call(legal, "POST", "/v1/evidence", tx.encode())

    with pytest.raises(ClientError) as err:
        send({"case_id": "c-never-opened"})
    assert (err.value.status, err.value.code) == (409, "filing_refused")
    assert "case c-never-opened does not exist: give its parties to open it" in str(err.value)
    nothing_left()
    out = send({"case_id": "c-fresh", "parties": [live.who("holder").account]})  # the same filing, mended
    assert out["case_id"] == "c-fresh" and sm3_file(fresh).hex() in live.blobs()
