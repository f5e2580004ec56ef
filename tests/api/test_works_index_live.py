"""Conflicts do not depend on which node you ask (docs/works.md §3.6, §6.2), on a real
consortium (`rongxin up --detach`, six node processes): a near-duplicate registered through
another node than the original is flagged, because every node's fingerprint index is fed from
the committed chain (the file fetched from the node that stored it); a node stopped, with its
index and content store deleted, rebuilds both from the chain when it starts again and still
flags; a countersignature prepared before a later registration is refused on chain."""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import signal
import sqlite3
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import cv2
import pytest

from api.node_main import is_running
from api.sdk import Identity, LedgerClient
from api.signing import sign_request
from forensics.certificate import read_certificate, render_certificate_bytes
from tests.api.test_works_live import cons
from tests.conftest import run_rongxin
from tests.forensics.conftest import picture

pytestmark = [pytest.mark.slow]
__all__ = ["cons"]


def nodes(c: Any) -> dict[str, dict[str, Any]]:
    return {n["id"]: n for n in json.loads((c["data"] / "cluster.json").read_text())["nodes"]}


def consensus(c: Any) -> list[dict[str, Any]]:
    return sorted((n for n in nodes(c).values() if n["role"] == "consensus"), key=lambda n: n["id"])


def register(c: Any, file: Path, who: str, api: str) -> dict[str, Any]:
    p = run_rongxin("works", "register", str(file), "--as", str(c["ids"] / who), "--api", api, "--title", file.stem,
                    "--json", cwd=c["t"], timeout=240)
    assert p.returncode == 0, p.stdout + p.stderr
    return dict(json.loads(p.stdout))


def crop(src: Path, dst: Path, frac: float) -> Path:
    w = cv2.imread(str(src))
    h, wd = w.shape[:2]
    cv2.imwrite(str(dst), cv2.resize(w[int(frac * h):, :int((1 - frac) * wd)], None, fx=.8, fy=.8),
                [cv2.IMWRITE_JPEG_QUALITY, 70])
    return dst


@pytest.fixture(scope="module")
def original(cons: Any) -> dict[str, Any]:
    """work.png registered through the supervisory node."""
    return register(cons, cons["t"] / "work.png", "holder", cons["api"])


def test_a_near_duplicate_through_another_node_is_flagged(cons: Any, original: dict[str, Any]) -> None:
    b = consensus(cons)[0]
    assert b["api"] != cons["api"]
    out = register(cons, cons["t"] / "copy.jpg", "holder2", b["api"])
    assert original["work_id"] in [c["work_id"] for c in out["conflicts"]], out
    rec = LedgerClient(b["api"]).state_json(f"works/w/{out['work_id']}")
    assert rec["conflicts"][0]["work_id"] == original["work_id"] and "source" not in rec["conflicts"][0]
    assert rec["countersign"]["node"] == b["id"] and rec["countersign"]["index_height"] >= original["height"]
    # node b holds the original's file now: fetched from the supervisory node, checked by its SM3
    sm3 = original["sm3"]
    assert (Path(b["data"]) / "blobs" / sm3[:2] / sm3[2:4] / sm3).read_bytes() == (cons["t"] / "work.png").read_bytes()
    # the file route serves nodes only: a holder's signed request is refused
    target = f"/v1/works/{original['work_id']}/file"
    holder = Identity.load(cons["ids"] / "holder")
    req = urllib.request.Request(b["api"] + target, headers=sign_request(holder.key, holder.certificate, "GET", target))
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(req, timeout=30)
    assert refused.value.code == 403 and json.load(refused.value)["error"]["code"] == "auth_not_a_node"
    # the certificate states the conflict, on the page and in its facts, checked against the receipt
    cert = Path(out["certificate"])
    facts = read_certificate(cert.read_bytes()).facts
    assert [(c.work_id, c.kind, c.source) for c in facts.conflicts] == [
        (x["work_id"], x["method"], "node") for x in rec["conflicts"]]
    page = subprocess.run(["pdftotext", "-enc", "UTF-8", str(cert), "-"], capture_output=True, text=True,
                          check=True).stdout
    assert f"1: {original['work_id']} (" in page
    p = run_rongxin("works", "verify-certificate", str(cert), "--root", str(cons["root"]), "--json")
    assert p.returncode == 0 and json.loads(p.stdout)["checks"]["conflicts"] is None, p.stdout + p.stderr
    hidden = cert.with_name("hidden.pdf")
    contents = read_certificate(cert.read_bytes())
    hidden.write_bytes(render_certificate_bytes(dataclasses.replace(contents.facts, conflicts=()), contents.bundle))
    p = run_rongxin("works", "verify-certificate", str(hidden), "--root", str(cons["root"]), "--json")
    assert p.returncode == 1 and json.loads(p.stdout)["failed"] == ["conflicts"], p.stdout + p.stderr


def _synced(api: str, height: int) -> None:
    deadline = time.monotonic() + 90
    while int(LedgerClient(api).status()["height"]) < height:
        assert time.monotonic() < deadline, f"{api} did not reach height {height}"
        time.sleep(0.2)


def _stop(node: dict[str, Any]) -> None:
    folder = Path(node["data"])
    os.kill(int((folder / "pid").read_text()), signal.SIGTERM)
    deadline = time.monotonic() + 60
    while is_running(folder) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not is_running(folder)


def test_a_node_restarted_with_its_index_deleted_rebuilds_it_and_still_flags(cons: Any,
                                                                          original: dict[str, Any]) -> None:
    c = consensus(cons)[1]
    folder = Path(c["data"])
    _stop(c)
    shutil.rmtree(folder / "index")
    shutil.rmtree(folder / "blobs")
    p = run_rongxin("up", "--detach", "--data", str(cons["data"]), timeout=180)
    assert p.returncode == 0, p.stderr
    c = nodes(cons)[c["id"]]
    _synced(c["api"], LedgerClient(cons["api"]).status()["height"])
    out = register(cons, crop(cons["t"] / "work.png", cons["t"] / "crop.jpg", .08), "holder2", c["api"])
    assert original["work_id"] in [x["work_id"] for x in out["conflicts"]], out
    rec = LedgerClient(c["api"]).work(original["work_id"])
    assert rec["confirmed"] is True  # node c's rebuilt index holds the original
    db = sqlite3.connect(f"file:{folder / 'index' / 'fingerprints.sqlite'}?mode=ro", uri=True)
    try:
        height = int(db.execute("SELECT value FROM meta WHERE key='note:chain_height'").fetchone()[0])
        ids = {r[0] for r in db.execute("SELECT work_id FROM works")}
    finally:
        db.close()
    assert height >= original["height"] and original["work_id"] in ids


def test_a_countersignature_older_than_the_latest_registration_is_refused(cons: Any,
                                                                          original: dict[str, Any]) -> None:
    b = consensus(cons)[0]
    holder2 = LedgerClient(b["api"], identity=Identity.load(cons["ids"] / "holder2"))
    pic = cons["t"] / "stale.png"
    cv2.imwrite(str(pic), picture(51))
    prep = holder2.prepare_work(pic, {"title": "prepared early", "type": "picture"})
    height = prep["payload"]["countersign"]["index_height"]
    cv2.imwrite(str(cons["t"] / "between.png"), picture(52))
    between = register(cons, cons["t"] / "between.png", "holder", cons["api"])
    assert between["height"] > height
    rec = holder2.wait(holder2.submit(holder2.build("works.register", prep["payload"])), 90, certified=False)
    info = rec["receipt"]["info"]
    assert rec["receipt"]["code"] == 4 and f"but work {between['work_id']} was registered at height" in info, info
    # prepared again (once node b has committed it), it covers the registration in between
    _synced(b["api"], between["height"])
    again = holder2.prepare_work(pic, {"title": "prepared again", "type": "picture"})
    assert again["payload"]["countersign"]["index_height"] >= between["height"]
    rec = holder2.wait(holder2.submit(holder2.build("works.register", again["payload"])), 90, certified=False)
    assert rec["receipt"]["code"] == 0, rec["receipt"]


def test_evidence_about_a_work_registered_elsewhere_is_matched_at_once(cons: Any) -> None:
    """Filed through a node the work was not registered through, right after it is committed:
    that node indexes it from the chain before matching."""
    cv2.imwrite(str(cons["t"] / "fresh.png"), picture(61))
    w = cv2.imread(str(cons["t"] / "fresh.png"))
    cv2.imwrite(str(cons["t"] / "fresh-copy.jpg"), cv2.resize(w[30:, 40:], None, fx=.75, fy=.75),
                [cv2.IMWRITE_JPEG_QUALITY, 65])
    fresh = register(cons, cons["t"] / "fresh.png", "holder", cons["api"])
    d = consensus(cons)[2]
    _synced(d["api"], fresh["height"])
    p = run_rongxin("evidence", "file", str(cons["t"] / "fresh-copy.jpg"), "--as", str(cons["ids"] / "legal"),
                    "--api", d["api"], "--work", fresh["work_id"], "--json", cwd=cons["t"], timeout=240)
    assert p.returncode == 0, p.stdout + p.stderr
    m = json.loads(p.stdout)["matches"][0]
    assert m["file"] == "fresh-copy.jpg" and m["matches"] and m["matches"][0]["work_id"] == fresh["work_id"], m
