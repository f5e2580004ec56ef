"""A browser capture filed through a real consortium (`rongxin up --detach`, its nodes time-
stamping filed manifests with a local RFC 3161 TSA built on `openssl ts -reply`): the capture's
files (real files made here; the browser side is tested with Chromium after the merge) are
uploaded with their roles, the node finds the registered picture in a page resource and inside
the screenshot and the registered song in the page's audio clip with its offset, one filing
opens a case per work, and the exported package verifies offline with every capture artefact
covered and the time stamp checked; a package whose token or TSA certificate is replaced fails
exactly the check `timestamp`."""

from __future__ import annotations

import io
import json
import os
import subprocess
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import cv2
import pytest

from api import sdk_capture
from api.sdk import Identity, LedgerClient
from bench.fingerprint.media import music, wav_bytes
from bench.tsa_local import LocalTSA
from forensics.package import format as pf
from forensics.tsa import stamp
from ledger.crypto import sm3_hex
from tests.conftest import RONGXIN, run_rongxin
from tests.forensics.conftest import picture
from tests.forensics.test_capture_filing import Page, art, page

# a second group of consortium tests: it runs beside "cluster" (own port range per worker)
pytestmark = [pytest.mark.slow]


class Live:
    def __init__(self, data: Path, media: Path, tsa: LocalTSA) -> None:
        self.data, self.media, self.tsa = data, media, tsa
        nodes = json.loads((data / "cluster.json").read_text())["nodes"]
        self.api = next(n["api"] for n in nodes if n["role"] == "supervisor")
        self.ids = data / "identities"
        self.root = data / "ca" / "root.crt.pem"
        self.work_id = self.song_id = ""

    def who(self, name: str) -> Identity:
        return Identity.load(self.ids / name)

    def verify(self, pkg: Path) -> tuple[int, dict[str, Any]]:
        r = subprocess.run(["unshare", "-n", str(RONGXIN), "evidence", "verify", str(pkg), "--root", str(self.root),
                            "--json"], capture_output=True, text=True, timeout=120, check=False)
        assert "Traceback" not in r.stderr
        return r.returncode, json.loads(r.stdout) if r.stdout else {}


def capture_page(t: Path) -> Page:
    """The hand-made capture of a page showing a copy of picture 21 and playing seconds 17-37
    of the song, with a short screen recording."""
    pg = page(t, picture(21))
    subprocess.run(["ffmpeg", "-y", "-loglevel", "error", "-ss", "17", "-t", "20", "-i", str(t / "song.wav"),
                    "-b:a", "96k", str(t / "res" / "clip.mp3")], check=True, timeout=60)
    subprocess.run(["ffmpeg", "-y", "-loglevel", "error", "-f", "lavfi", "-i", "testsrc=size=160x120:rate=5", "-t", "2",
                    "-pix_fmt", "yuv420p", str(t / "recording.mp4")], check=True, timeout=60)
    return Page(pg.url, pg.final_url, (*pg.artefacts, art(t / "recording.mp4", "recording")),
                (*pg.resources, art(t / "res" / "clip.mp3", "resource", "http://127.0.0.1/media/clip.mp3")), pg.facts)


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Live]:
    t = tmp_path_factory.mktemp("capture-live")
    cv2.imwrite(str(t / "work.png"), picture(21))
    (t / "song.wav").write_bytes(wav_bytes(music(60.0, 22), 22050))
    data = t / "c"
    with LocalTSA(t / "tsa") as tsa:
        old = os.environ.get("RONGXIN_TSA_URL")
        os.environ["RONGXIN_TSA_URL"] = tsa.url
        try:
            proc = run_rongxin("up", "--detach", "--data", str(data), timeout=240)
        finally:
            if old is None:
                os.environ.pop("RONGXIN_TSA_URL")
            else:
                os.environ["RONGXIN_TSA_URL"] = old
        assert proc.returncode == 0, proc.stderr
        lv = Live(data, t, tsa)
        try:
            holder = LedgerClient(lv.api, identity=lv.who("holder"), timeout=120)
            lv.work_id = holder.register_work(t / "work.png", {"title": "Picture", "type": "picture"})["work_id"]
            lv.song_id = holder.register_work(t / "song.wav", {"title": "Song", "type": "music"})["work_id"]
            yield lv
        finally:
            run_rongxin("down", "--data", str(data), timeout=120)


def _rewrite(src: Path, dst: Path, legal: Identity, **replace: bytes) -> None:
    """``src`` with members replaced, its manifest updated and signed again by ``legal``: only
    what the replaced members prove can fail."""
    with zipfile.ZipFile(src) as z:
        members = {n: z.read(n) for n in z.namelist()}
    m = json.loads(members[pf.MANIFEST])
    for name, data in replace.items():
        members[name] = data
        m["members"][name] = {"sm3": sm3_hex(data), "size": len(data)}
    members[pf.MANIFEST] = pf.canonical(m)
    members[pf.SIGNATURE] = legal.key.sign(members[pf.MANIFEST])
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        for n, data in members.items():
            z.writestr(n, data)
    dst.write_bytes(buf.getvalue())


def test_capture_is_matched_filed_with_cases_and_verifies_offline_with_its_time_stamp(live: Live) -> None:
    pg = capture_page(live.media)
    legal = live.who("legal")
    client = LedgerClient(live.api, identity=legal, timeout=120)
    out = sdk_capture.file_capture(client, pg)

    assert sorted(out["works"]) == sorted([live.work_id, live.song_id])
    found = {(m["work_id"], m["artefact"]) for m in out["matches"]}
    assert {(live.work_id, "photo.jpg"), (live.work_id, "screenshot.png"), (live.song_id, "clip.mp3")} <= found
    assert all(m["work_id"] in (live.work_id, live.song_id) for m in out["matches"])
    song = next(m for m in out["matches"] if m["work_id"] == live.song_id)
    assert abs(song["work_start_s"] - (song["query_start_s"] or 0) - 17.0) <= 0.5, song
    assert len(out["case_ids"]) == 2 and out["timestamp"] and "gen_time" in out["timestamp"], out
    names = {a["name"] for a in out["artefacts"]}
    assert {"screenshot.png", "recording.mp4", "page.warc", "page.har", "clip.mp3", "photo.jpg"} <= names
    holder = live.who("holder").account
    for cid in out["case_ids"]:
        case = client.case(cid)
        assert case["evidence"] == [out["evidence_id"]] and case["parties"] == [holder]
    assert {client.case(c)["work_id"] for c in out["case_ids"]} == {live.work_id, live.song_id}

    pkg = live.media / "capture.zip"
    client.export_evidence(out["evidence_id"], pkg)
    code, rep = live.verify(pkg)
    assert code == 0 and rep["ok"], rep.get("failed")
    assert rep["checks"]["timestamp"]["ok"] and rep["timestamp"]["tsa_certificate_sm3"]
    with zipfile.ZipFile(pkg) as z:
        man = json.loads(z.read(pf.MANIFEST))
    held = {v["sm3"] for n, v in man["members"].items() if n.startswith(pf.ARTEFACT_DIR)}
    assert {a["sm3"] for a in out["artefacts"]} <= held  # every capture artefact is in the package
    assert [s["type"] for s in rep["statements"]] == ["works.register", "works.register", "evidence.file"]
    roles = {a["name"]: a["role"] for a in rep["statements"][-1]["payload"]["manifest"]["artefacts"]}
    assert roles["screenshot.png"] == "screenshot" and roles["recording.mp4"] == "recording"
    shown = {a["name"].split("/", 1)[1]: a.get("role") for a in rep["statements"][-1]["artefacts"]}
    assert shown["screenshot.png"] == "screenshot" and shown["clip.mp3"] == "resource", shown  # the report names roles

    other = stamp(live.tsa.url, b"another manifest")  # a genuine token over something else
    bad = live.media / "bad-token.zip"
    _rewrite(pkg, bad, legal, **{pf.TIMESTAMP_TOKEN: other.token})
    code, rep = live.verify(bad)
    assert code == 1 and rep["failed"] == ["timestamp"] and "imprint" in rep["checks"]["timestamp"]["why"]
    with LocalTSA(live.media / "tsa2") as tsa2:
        _rewrite(pkg, bad, legal, **{pf.TIMESTAMP_CERT: tsa2.certificate})
    code, rep = live.verify(bad)
    assert code == 1 and rep["failed"] == ["timestamp"] and "signer" in rep["checks"]["timestamp"]["why"]


def test_capture_requests_refused_before_anything_runs(live: Live) -> None:
    from api.sdk import ClientError
    from api.sdk_evidence import _json_call
    from forensics.capture_filing import CaptureFile

    client = LedgerClient(live.api, identity=live.who("legal"), timeout=60)
    for url in ("file:///etc/passwd", "javascript:alert(1)", "chrome://version", "http://", "ftp://127.0.0.1/"):
        with pytest.raises(ClientError) as e:
            _json_call(client, "POST", "/v1/evidence/capture", json.dumps({"url": url}).encode())
        assert e.value.status == 400 and e.value.code == "capture_refused", (url, e.value)
    for body in (b"[]", b'{"url": 1}', b'{"url": "http://a/", "x": 1}', b"x" * 5000):
        with pytest.raises(ClientError) as e:
            _json_call(client, "POST", "/v1/evidence/capture", body)
        assert e.value.status == 400, body[:40]
    holder = LedgerClient(live.api, identity=live.who("holder"), timeout=60)
    with pytest.raises(ClientError) as e:  # a rights holder may not capture on the node
        _json_call(holder, "POST", "/v1/evidence/capture", json.dumps({"url": "http://127.0.0.1:9/"}).encode())
    assert e.value.status == 403
    dom = live.media / "dom-only.html"
    dom.write_text("<html></html>")
    with pytest.raises(ClientError) as e:
        sdk_capture.prepare_capture(client, [CaptureFile(dom, "dom-only.html", "wallpaper")], {})
    assert e.value.status == 400 and "role" in str(e.value)


def _site(t: Path) -> Path:
    """A page on loopback showing a cropped, scaled JPEG copy of picture 21 among other pictures
    and text, and playing seconds 17-37 of the registered song (as G-capture builds it)."""
    site = t / "site"
    site.mkdir(exist_ok=True)
    w = picture(21)
    h, wd = w.shape[:2]
    cv2.imwrite(str(site / "photo.jpg"), cv2.resize(w[int(.06 * h):, :int(.95 * wd)], None, fx=.65, fy=.65),
                [cv2.IMWRITE_JPEG_QUALITY, 70])
    for k in range(3):
        cv2.imwrite(str(site / f"other{k}.jpg"), picture(100 + k))
    subprocess.run(["ffmpeg", "-y", "-loglevel", "error", "-ss", "17", "-t", "20", "-i", str(t / "song.wav"),
                    "-b:a", "96k", str(site / "clip.mp3")], check=True, timeout=60)
    imgs = "".join(f'<img src="other{k}.jpg" width="200">' for k in range(3))
    (site / "index.html").write_text(
        '<!doctype html><html><head><meta charset="utf-8"><title>Reposted</title></head><body>'
        f"<h1>今日精选</h1><p>{'Lorem ipsum dolor sit amet. ' * 40}</p>{imgs}"
        '<figure><img src="photo.jpg"><figcaption>A picture</figcaption></figure>'
        f'<audio controls autoplay src="clip.mp3"></audio><p>{"More text. " * 200}</p></body></html>',
        encoding="utf-8")
    return site


def test_one_click_capture_in_chromium_finds_both_works_and_its_package_verifies(live: Live) -> None:
    """The whole flow of issue 15 with the real browser: `rongxin evidence capture` on the
    station (its own environment checked), filed through the node's API."""
    from tests.forensics.capture.servers import serve

    srv, hits = serve(_site(live.media))
    try:
        url = f"http://127.0.0.1:{srv.server_address[1]}/"
        proc = run_rongxin("evidence", "capture", url, "--as", str(live.ids / "legal"), "--api", live.api, "--json",
                           timeout=180)
    finally:
        srv.shutdown()
    assert proc.returncode == 0 and "Traceback" not in proc.stderr, proc.stderr[-2000:]
    out = json.loads(proc.stdout)
    assert {"evidence_id", "case_ids", "tx_id", "height", "artefacts", "matches"} <= set(out)
    assert "/photo.jpg" in hits and "/clip.mp3" in hits
    roles = " ".join(a["name"] for a in out["artefacts"])
    for word in ("screenshot", "recording", ".warc", ".har", "environment", "custody"):
        assert word in roles, (word, roles)
    assert any(m["work_id"] == live.work_id for m in out["matches"]), out["matches"]
    song = [m for m in out["matches"] if m["work_id"] == live.song_id]
    assert song and abs(song[0]["work_start_s"] - (song[0]["query_start_s"] or 0) - 17.0) <= 0.5, song
    assert {m["work_id"] for m in out["matches"]} <= {live.work_id, live.song_id}
    assert len(out["case_ids"]) == 2

    client = LedgerClient(live.api, identity=live.who("legal"), timeout=120)
    pkg = live.media / "browser-capture.zip"
    client.export_evidence(out["evidence_id"], pkg)
    code, rep = live.verify(pkg)
    assert code == 0 and rep["ok"], rep.get("failed")
    with zipfile.ZipFile(pkg) as z:
        man = json.loads(z.read(pf.MANIFEST))
        held = {v["sm3"] for n, v in man["members"].items() if n.startswith(pf.ARTEFACT_DIR)}
        warcs = [n for n in z.namelist() if ".warc" in n]
        assert len(warcs) == 1
        (live.media / "capture.warc.gz").write_bytes(z.read(warcs[0]))
    assert {a["sm3"] for a in out["artefacts"]} <= held  # every capture artefact is covered
    warcio = Path(RONGXIN).parent / "warcio"
    chk = subprocess.run([str(warcio), "check", str(live.media / "capture.warc.gz")], capture_output=True, text=True,
                         timeout=60, check=False)
    assert chk.returncode == 0, chk.stdout + chk.stderr
    idx = subprocess.run([str(warcio), "index", str(live.media / "capture.warc.gz")], capture_output=True, text=True,
                         timeout=60, check=True).stdout
    assert "photo.jpg" in idx and "clip.mp3" in idx


def test_capture_on_the_node_and_its_own_address_refused(live: Live) -> None:
    """The route: the node captures on its own host and files; its own API is refused."""
    from tests.forensics.capture.servers import serve

    site = live.media / "plain"
    site.mkdir(exist_ok=True)
    (site / "index.html").write_text("<!doctype html><title>t</title><h1>Plain page</h1>" + "<p>text</p>" * 50)
    srv, hits = serve(site)
    client = LedgerClient(live.api, identity=live.who("legal"), timeout=180)
    try:
        out = sdk_capture.capture_on_node(client, f"http://127.0.0.1:{srv.server_address[1]}/")
    finally:
        srv.shutdown()
    assert hits and out["evidence_id"] and out["matches"] == [] and out["case_ids"] == []
    assert any("warc" in a["name"] for a in out["artefacts"])
    proc = run_rongxin("evidence", "capture", live.api + "/v1/status", "--as", str(live.ids / "legal"),
                       "--api", live.api, "--json", timeout=120)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr and proc.stderr.strip(), proc.stderr
