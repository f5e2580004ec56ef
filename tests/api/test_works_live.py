"""The works flow on a real consortium (`rongxin up --detach`, six node processes, the demo
identities): two holders register pictures through `rongxin works register`; a repeat and a
transformed copy are flagged against the first work, an unrelated picture is not; the
certificate's QR code decodes (pdftoppm + zbarimg) and `verify-certificate` passes with no
network and fails on an edited certificate or a swapped bundle; every bad input is refused
with a clear 4xx / exit 2 and leaves nothing stored or on chain; a prepared registration
committed while its node is down is indexed when the node comes back."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest

from api.node_main import is_running
from api.sdk import ClientError, Identity, LedgerClient
from api.signing import sign_request
from forensics.certificate import ATTACHMENT_NAME
from tests.conftest import run_rongxin
from tests.forensics.conftest import picture

pytestmark = [pytest.mark.slow]


@pytest.fixture(scope="module")
def cons(tmp_path_factory: pytest.TempPathFactory) -> Any:
    t = tmp_path_factory.mktemp("works")
    data = t / "c"
    proc = run_rongxin("up", "--detach", "--data", str(data), timeout=240)
    assert proc.returncode == 0, proc.stderr
    nodes = json.loads((data / "cluster.json").read_text())["nodes"]
    sup = next(n for n in nodes if n["role"] == "supervisor")
    w = picture(11)
    cv2.imwrite(str(t / "work.png"), w)
    h, wd = w.shape[:2]
    c = w[int(.05 * h):, int(.05 * wd):]
    cv2.imwrite(str(t / "copy.jpg"), cv2.resize(c, None, fx=.7, fy=.7), [cv2.IMWRITE_JPEG_QUALITY, 60])
    cv2.imwrite(str(t / "other.png"), picture(12))
    yield {"t": t, "data": data, "api": sup["api"], "sup": sup, "ids": data / "identities",
           "root": data / "ca" / "root.crt.pem"}
    run_rongxin("down", "--data", str(data), timeout=120)


def register(cons: Any, file: str, who: str, *extra: str) -> subprocess.CompletedProcess[str]:
    return run_rongxin("works", "register", str(cons["t"] / file), "--as", str(cons["ids"] / who),
                       "--api", cons["api"], *extra, "--json", cwd=cons["t"], timeout=180)


@pytest.fixture(scope="module")
def first(cons: Any) -> dict[str, Any]:
    p = register(cons, "work.png", "holder", "--title", "星空 Starry", "--author", "Li Hua", "--created", "2024-05-01",
                 "--licence", "CC BY-NC 4.0")
    assert p.returncode == 0, p.stderr
    out = json.loads(p.stdout)
    assert set(out) == {"work_id", "tx_id", "height", "sm3", "conflicts", "certificate", "recognition"}
    assert out["recognition"]["level"] == "robust" and out["recognition"]["keypoints"] > 100
    return dict(out)


def test_registrations_flag_copies_of_the_first_work_only(cons: Any, first: dict[str, Any]) -> None:
    assert first["conflicts"] == []
    assert Path(first["certificate"]).read_bytes()[:4] == b"%PDF"
    for f in ("work.png", "copy.jpg"):
        p = register(cons, f, "holder2", "--title", f"Again {f}")
        assert p.returncode == 0, p.stderr
        out = json.loads(p.stdout)
        hit = [c for c in out["conflicts"] if c["work_id"] == first["work_id"]]
        assert hit and isinstance(hit[0]["score"], float) and hit[0]["score"] > 0, out
    p = register(cons, "other.png", "holder2", "--title", "Other")
    assert p.returncode == 0, p.stderr
    assert json.loads(p.stdout)["conflicts"] == []
    # a picture with nothing to fingerprint is registered (not refused), and says so
    cv2.imwrite(str(cons["t"] / "flat.png"), np.full((240, 320, 3), (40, 90, 160), np.uint8))
    p = register(cons, "flat.png", "holder2", "--title", "Flat")
    assert p.returncode == 0, p.stderr
    assert json.loads(p.stdout)["recognition"]["level"] == "exact-only"
    p = run_rongxin("works", "register", str(cons["t"] / "flat.png"), "--as", str(cons["ids"] / "holder"),
                    "--api", cons["api"], "--title", "Flat again", cwd=cons["t"], timeout=180)
    assert p.returncode == 0 and "recognition: exact-only" in p.stdout, p.stdout + p.stderr
    # the chain holds the conflict, countersigned by the node
    rec = LedgerClient(cons["api"]).work(json.loads(register(cons, "work.png", "holder2").stdout)["work_id"])
    assert first["work_id"] in [c["work_id"] for c in rec["conflicts"]] and rec["confirmed"] is True


def test_show_and_public_record(cons: Any, first: dict[str, Any]) -> None:
    p = run_rongxin("works", "show", first["work_id"], "--api", cons["api"], "--json")
    assert p.returncode == 0, p.stderr
    rec = json.loads(p.stdout)
    assert rec["sm3"] == first["sm3"] and rec["tx"] == first["tx_id"] and rec["height"] == first["height"]
    assert rec["attributes"]["title"] == "星空 Starry" and rec["holder_name"]
    p = run_rongxin("works", "show", "w-nope", "--api", cons["api"])
    assert p.returncode == 2 and "not registered" in p.stderr and "Traceback" not in p.stderr


def test_certificate_qr_and_offline_verification(cons: Any, first: dict[str, Any], tmp_path: Path) -> None:
    cert = Path(first["certificate"])
    subprocess.run(["pdftoppm", "-png", "-r", "200", str(cert), str(tmp_path / "page")], check=True)
    qr = subprocess.run(["zbarimg", "-q", "--raw", *map(str, tmp_path.glob("page*.png"))], capture_output=True,
                        text=True).stdout.strip().splitlines()
    d = json.loads(qr[0])
    assert d["work_id"] == first["work_id"] and d["sm3"] == first["sm3"] and d["tx_id"] == first["tx_id"]
    rx = shutil.which("rongxin", path=str(Path(os.environ.get("VIRTUAL_ENV", ".venv")) / "bin")) or ".venv/bin/rongxin"
    off = subprocess.run(["unshare", "-n", rx, "works", "verify-certificate", str(cert), "--root", str(cons["root"]),
                          "--json"], capture_output=True, text=True, timeout=120)
    assert off.returncode == 0, off.stdout + off.stderr
    assert json.loads(off.stdout)["ok"] is True
    # an edited fact: the same length, so only the comparison can catch it
    raw = cert.read_bytes()
    facts_at = raw.index(b'"title":"')
    edited = tmp_path / "edited.pdf"
    edited.write_bytes(raw[:facts_at] + raw[facts_at:].replace(b"Starry", b"Stormy", 1))
    p = run_rongxin("works", "verify-certificate", str(edited), "--root", str(cons["root"]))
    assert p.returncode in (1, 2) and "Traceback" not in p.stderr
    assert p.returncode == 2 or "FAIL" in p.stdout


def test_swapped_bundle_fails_naming_the_checks(cons: Any, first: dict[str, Any], tmp_path: Path) -> None:
    from forensics.certificate import read_certificate, render_certificate_bytes

    other = json.loads(register(cons, "other.png", "holder2", "--title", "Other again").stdout)
    mine = read_certificate(Path(first["certificate"]).read_bytes())
    theirs = read_certificate(Path(other["certificate"]).read_bytes())
    swapped = tmp_path / "swapped.pdf"
    swapped.write_bytes(render_certificate_bytes(mine.facts, theirs.bundle))
    p = run_rongxin("works", "verify-certificate", str(swapped), "--root", str(cons["root"]), "--json")
    assert p.returncode == 1, p.stdout + p.stderr
    failed = json.loads(p.stdout)["failed"]
    assert {"work_id", "sm3", "tx_id"} <= set(failed) and not any(f.startswith("bundle:") for f in failed)
    # the right bundle under a re-rendered page that states another title and holder
    import dataclasses

    forged = tmp_path / "forged.pdf"
    forged.write_bytes(render_certificate_bytes(dataclasses.replace(mine.facts, title="Another title",
                                                                    holder_cn="Someone else"), mine.bundle))
    p = run_rongxin("works", "verify-certificate", str(forged), "--root", str(cons["root"]), "--json")
    assert p.returncode == 1, p.stdout + p.stderr
    assert set(json.loads(p.stdout)["failed"]) == {"attributes", "holder"}
    run_rongxin("ca", "init", "--dir", str(tmp_path / "ca2"), "--name", "Other Consortium")
    p = run_rongxin("works", "verify-certificate", first["certificate"], "--root", str(tmp_path / "ca2" / "root.crt.pem"))
    assert p.returncode == 1 and "bundle:" in p.stdout
    junk = tmp_path / "junk.pdf"
    junk.write_bytes(b"not a pdf at all")
    p = run_rongxin("works", "verify-certificate", str(junk), "--root", str(cons["root"]))
    assert p.returncode == 2 and "Traceback" not in p.stderr
    assert ATTACHMENT_NAME


def _stored(cons: Any) -> tuple[int, int]:
    node = Path(cons["sup"]["data"])
    blobs = [p for p in (node / "blobs").rglob("*") if p.is_file() and "tmp" not in p.parts]
    return len(blobs), len(list((node / "works" / "pending").glob("*.json")))


def _height(cons: Any) -> int:
    return int(LedgerClient(cons["api"]).status()["height"])


def test_bad_input_is_refused_and_leaves_nothing(cons: Any, first: dict[str, Any], tmp_path: Path) -> None:
    before = _stored(cons)
    before_height = _height(cons)
    empty = tmp_path / "empty.png"
    empty.write_bytes(b"")
    p = run_rongxin("works", "register", str(empty), "--as", str(cons["ids"] / "holder"), "--api", cons["api"])
    assert p.returncode == 2 and "empty" in p.stderr
    junk = tmp_path / "junk.png"
    junk.write_bytes(b"\x89PNG\r\n\x1a\n" + os.urandom(3000))
    p = run_rongxin("works", "register", str(junk), "--as", str(cons["ids"] / "holder"), "--api", cons["api"])
    assert p.returncode == 2 and "Traceback" not in p.stderr, p.stderr
    p = run_rongxin("works", "register", str(cons["t"] / "other.png"), "--as", str(cons["ids"] / "legal"),
                    "--api", cons["api"])
    assert p.returncode == 2 and ("auth_role" in p.stderr or "business role" in p.stderr), p.stderr
    p = run_rongxin("works", "register", str(tmp_path / "missing.png"), "--as", str(cons["ids"] / "holder"),
                    "--api", cons["api"])
    assert p.returncode == 2 and "Traceback" not in p.stderr
    # replay: the same signed upload twice
    holder = Identity.load(cons["ids"] / "holder")
    body = (cons["t"] / "other.png").read_bytes()
    target = "/v1/works?attributes=%7B%22title%22%3A%22x%22%2C%22type%22%3A%22picture%22%7D&pledge=p&pledge_signature=" + "ab" * 40
    h = sign_request(holder.key, holder.certificate, "POST", target, body)
    codes = []
    for _ in range(2):
        req = urllib.request.Request(cons["api"] + target, data=body, method="POST", headers=h)
        try:
            urllib.request.urlopen(req, timeout=30)
            codes.append(200)
        except urllib.error.HTTPError as e:
            codes.append((e.code, json.load(e)["error"]["code"]))
    assert codes[0][0] == 400 and codes[1] == (401, "auth_replay"), codes  # the pledge signature is refused first
    # an upload over the configured limit: the announced length is refused before any byte
    big = urllib.request.Request(cons["api"] + target, data=b"x", method="POST",
                                 headers={**sign_request(holder.key, holder.certificate, "POST", target, b"x"),
                                          "Content-Length": str(3 * 1024 ** 3)})
    with pytest.raises(urllib.error.HTTPError) as e:
        urllib.request.urlopen(big, timeout=30)
    assert e.value.code == 413
    # an unregistered identity
    from ledger.crypto import SM2PrivateKey
    from ledger.crypto.ca import ConsortiumCA

    ca = ConsortiumCA(cons["data"] / "ca")
    key = SM2PrivateKey.generate()
    stranger = Identity(key, ca.issue(kind="user", name="stranger", org="Demo Legal Centre",
                                      public_key=key.public_key(), business="holder"))
    with pytest.raises(ClientError) as err:
        LedgerClient(cons["api"], identity=stranger).prepare_work(cons["t"] / "other.png", {"title": "x", "type": "p"})
    assert (err.value.status, err.value.code) == (403, "auth_unregistered")
    # a holder registered, then revoked on chain (user.revoke by itself): the CLI exits 2
    gone = _register_user(cons, "gone", "holder")
    client = LedgerClient(cons["api"], identity=gone)
    rec = client.wait(client.submit(client.build("user.revoke", {"account": gone.account, "reason": "left"})),
                      60, certified=False)
    assert rec["receipt"]["code"] == 0, rec["receipt"]
    gone_dir = tmp_path / "gone"
    gone_dir.mkdir()
    (gone_dir / "key.pem").write_bytes(gone.key.to_pem())
    (gone_dir / "cert.pem").write_bytes(gone.certificate.to_pem())
    p = run_rongxin("works", "register", str(cons["t"] / "other.png"), "--as", str(gone_dir), "--api", cons["api"])
    assert p.returncode == 2 and "revoked" in p.stderr and "Traceback" not in p.stderr, p.stderr
    assert _stored(cons) == before
    assert _height_txs(cons, before_height) == 2  # only the revoked user's register and revoke reached the chain


def _register_user(cons: Any, name: str, business: str) -> Identity:
    from ledger.crypto import SM2PrivateKey
    from ledger.crypto.ca import ConsortiumCA
    from ledger.tx import Transaction

    ca = ConsortiumCA(cons["data"] / "ca")
    key = SM2PrivateKey.generate()
    cert = ca.issue(kind="user", name=name, org="Demo Legal Centre", public_key=key.public_key(), business=business)
    client = LedgerClient(cons["api"])
    st = client.status()
    tx = Transaction.build(key, chain=st["chain"], type="user.register", expiry=st["height"] + 1000,
                           payload={"certificate": cert.to_pem().decode()})
    rec = client.wait(client.submit(tx), 60, certified=False)
    assert rec["receipt"]["code"] == 0, rec["receipt"]
    return Identity(key, cert)


def _height_txs(cons: Any, since: int) -> int:
    """Transactions committed above height ``since``, except heartbeats (none carry any)."""
    client = LedgerClient(cons["api"])
    top = _height(cons)
    return sum(len(client.block(h)["tx_ids"]) for h in range(since + 1, top + 1))


def test_blob_reading_rules(cons: Any, first: dict[str, Any], tmp_path: Path) -> None:
    def read(who: str) -> int | Path:
        client = LedgerClient(cons["api"], identity=Identity.load(cons["ids"] / who))
        try:
            return client.blob(first["sm3"], tmp_path / f"{who}.bin")
        except ClientError as exc:
            assert exc.status is not None
            return exc.status

    for who in ("holder", "court", "regulator"):
        got = read(who)
        assert isinstance(got, Path) and got.read_bytes() == (cons["t"] / "work.png").read_bytes()
    assert read("legal") == 403 and read("platform-a") == 403


def test_a_registration_committed_while_its_node_is_down_is_indexed_on_restart(cons: Any) -> None:
    holder = Identity.load(cons["ids"] / "holder")
    client = LedgerClient(cons["api"], identity=holder)
    pic = cons["t"] / "late.png"
    cv2.imwrite(str(pic), picture(31))
    prep = client.prepare_work(pic, {"title": "late", "type": "picture"})
    node_dir = Path(cons["sup"]["data"])
    pid = int((node_dir / "pid").read_text())
    os.kill(pid, signal.SIGKILL)  # no clean shutdown: only the pending record on disk survives
    deadline = time.monotonic() + 30
    while is_running(node_dir) and time.monotonic() < deadline:
        time.sleep(0.1)
    other = next(n for n in json.loads((cons["data"] / "cluster.json").read_text())["nodes"]
                 if n["id"] != cons["sup"]["id"] and n["role"] != "full")
    peer = LedgerClient(other["api"], identity=holder)
    rec = peer.wait(peer.submit(peer.build("works.register", prep["payload"])), 90, certified=False)
    assert rec["receipt"]["code"] == 0, rec["receipt"]
    assert (node_dir / "works" / "pending" / f"{prep['work_id']}.json").is_file()
    p = run_rongxin("up", "--detach", "--data", str(cons["data"]), timeout=120)
    assert p.returncode == 0, p.stderr
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        if not (node_dir / "works" / "pending" / f"{prep['work_id']}.json").exists():
            break
        time.sleep(0.5)
    assert (node_dir / "works" / "registered" / f"{prep['work_id']}.json").is_file()
    assert LedgerClient(cons["api"]).work(prep["work_id"])["confirmed"] is True
    # a refused registration is never indexed: the same prepared payload again is a duplicate
    again = client.prepare_work(pic, {"title": "late again", "type": "picture"})
    assert [c["work_id"] for c in again["conflicts"]] == [prep["work_id"]]


def test_a_registration_refused_on_chain_is_never_indexed(cons: Any) -> None:
    holder = Identity.load(cons["ids"] / "holder2")
    client = LedgerClient(cons["api"], identity=holder)
    pic = cons["t"] / "refused.png"
    cv2.imwrite(str(pic), picture(41))
    prep = client.prepare_work(pic, {"title": "refused", "type": "picture"})
    assert prep["conflicts"] == []
    bad = dict(prep["payload"], conflicts=[{"work_id": "w-made-up", "score_milli": 1000, "method": "sm3"}])
    rec = client.wait(client.submit(client.build("works.register", bad)), 90, certified=False)
    assert rec["receipt"]["code"] != 0 and "countersignature" in rec["receipt"]["info"], rec["receipt"]
    time.sleep(2.5)  # two rounds of the node's reconciler
    node_dir = Path(cons["sup"]["data"])
    assert (node_dir / "works" / "pending" / f"{prep['work_id']}.json").is_file()
    assert not (node_dir / "works" / "registered" / f"{prep['work_id']}.json").exists()
    with pytest.raises(ClientError) as err:
        client.work(prep["work_id"])
    assert err.value.status == 404
    # the same picture prepared again is matched against nothing: the refused one is not indexed
    assert client.prepare_work(pic, {"title": "again", "type": "picture"})["conflicts"] == []
