"""A real capture in Debian's Chromium of a loopback page (text, two pictures, an audio clip,
long enough to scroll) and of an HTTPS page: every artefact is there, hashed with SM3 as
written, the WARC passes `warcio check` and lists every resource with real headers, the
recording is a recording, the resources are the served bytes, the custody log is chained."""

from __future__ import annotations

import asyncio
import gzip
import json
import shutil
import ssl
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest

from forensics.capture import CaptureResult, CaptureSettings, capture
from ledger.crypto import sm3_file, sm3_hex
from tests.conftest import run_openssl
from tests.forensics.capture.servers import serve

pytestmark = [pytest.mark.slow]
WARCIO = Path(sys.executable).with_name("warcio")


def _site(root: Path) -> Path:
    site = root / "site"
    site.mkdir()
    rng = np.random.default_rng(7)
    for name in ("photo.png", "other.png"):
        cv2.imwrite(str(site / name), (rng.random((120, 160, 3)) * 255).astype(np.uint8))
    subprocess.run(["ffmpeg", "-loglevel", "error", "-f", "lavfi", "-i", "sine=frequency=440:duration=3",
                    "-b:a", "64k", str(site / "clip.mp3")], check=True, timeout=60)
    (site / "index.html").write_text(
        '<!doctype html><html><head><meta charset="utf-8"><title>Reposted</title></head><body>'
        "<h1>今日精选 Today's picks</h1><p>" + "Lorem ipsum dolor sit amet. " * 60 + "</p>"
        '<img src="photo.png" width="320"><img src="other.png"><audio controls autoplay src="clip.mp3"></audio>'
        '<div style="height:2400px">more</div><p id="end">the end</p></body></html>', encoding="utf-8")
    return site


@pytest.fixture(scope="module")
def captured(tmp_path_factory: pytest.TempPathFactory) -> tuple[CaptureResult, Path, Path, list[str]]:
    root = tmp_path_factory.mktemp("capture")
    site = _site(root)
    srv, hits = serve(site)
    try:
        url = f"http://127.0.0.1:{srv.server_address[1]}/"
        result = capture(url, root / "out", CaptureSettings(chain_time_s=time.time(), time_limit_s=40))
    finally:
        srv.shutdown()
    return result, root / "out", site, hits


def _by_role(result: CaptureResult) -> dict[str, Any]:
    return {a.role: a for a in result.artefacts}


def test_every_artefact_is_written_and_hashed_as_written(captured: Any) -> None:
    result, out, _site_dir, _hits = captured
    roles = _by_role(result)
    assert set(roles) == {"environment", "screenshot", "recording", "warc", "har", "dom", "facts", "custody"}
    for art in (*result.artefacts, *result.resources):
        assert art.path == out / art.name and art.path.is_file()
        assert art.size == art.path.stat().st_size and art.sm3 == sm3_file(art.path).hex()
    assert not [f for f in out.rglob("*") if f.is_file() and f not in {a.path for a in (*result.artefacts,
                                                                                     *result.resources)}]
    assert result.final_url == result.url and not result.facts["failures"], result.facts["failures"]


def test_the_warc_checks_and_holds_every_resource_with_real_headers(captured: Any) -> None:
    result, _out, site, _hits = captured
    warc = _by_role(result)["warc"].path
    assert subprocess.run([str(WARCIO), "check", str(warc)], capture_output=True, timeout=120).returncode == 0
    index = [json.loads(line) for line in subprocess.run([str(WARCIO), "index", "-f", "warc-type,warc-target-uri",
                                                          str(warc)], capture_output=True, text=True,
                                                         timeout=120, check=True).stdout.splitlines()]
    for name in ("", "photo.png", "other.png", "clip.mp3"):
        kinds = {r["warc-type"] for r in index if r.get("warc-target-uri") == result.url + name}
        assert kinds == {"request", "response"}, (name, index)  # a replay tool serves the response
    assert [r["warc-target-uri"] for r in index if r["warc-type"] == "metadata"] == ["metadata://rongxin/capture/requests"]
    raw = gzip.decompress(warc.read_bytes())
    assert b"WARC/1.1\r\n" in raw and b"Server: SimpleHTTP/" in raw and b"User-Agent: Mozilla/5.0" in raw
    assert b"WARC-IP-Address: 127.0.0.1" in raw
    assert (site / "photo.png").read_bytes() in raw


def test_resources_are_the_served_bytes(captured: Any) -> None:
    result, _out, site, _hits = captured
    got = {a.path.read_bytes() for a in result.resources}
    for name in ("photo.png", "other.png", "clip.mp3"):
        assert (site / name).read_bytes() in got, name
    assert {a.media_type.split(";")[0] for a in result.resources} >= {"image/png", "audio/mpeg"}


def test_the_recording_screenshot_dom_and_har_show_the_page(captured: Any) -> None:
    result, _out, _site_dir, _hits = captured
    roles = _by_role(result)
    probe = subprocess.run(["ffprobe", "-v", "error", "-count_frames", "-select_streams", "v:0", "-show_entries",
                            "stream=nb_read_frames,width,height:format=duration", "-of", "json",
                            str(roles["recording"].path)], capture_output=True, text=True, timeout=60, check=True)
    info = json.loads(probe.stdout)
    assert float(info["format"]["duration"]) >= 2 and int(info["streams"][0]["nb_read_frames"]) >= 10
    shot = cv2.imread(str(roles["screenshot"].path))
    assert shot.shape[1] == 1280 and shot.shape[0] > 2400  # the full page, not the viewport
    dom = roles["dom"].path.read_text(encoding="utf-8")
    assert "今日精选" in dom and 'id="end"' in dom
    har = json.loads(roles["har"].path.read_text(encoding="utf-8"))
    assert any(e["request"]["url"].endswith("clip.mp3") for e in har["log"]["entries"])
    assert result.facts["scroll"]["reached_end"] is True


def test_facts_environment_and_custody_log(captured: Any) -> None:
    result, _out, _site_dir, _hits = captured
    facts, roles = result.facts, _by_role(result)
    port = result.url.rsplit(":", 1)[1].strip("/")
    assert facts["addresses"]["127.0.0.1"] == [f"127.0.0.1:{port}"]
    assert facts["viewport"] == [1280, 800] and "HeadlessChrome" in facts["user_agent"]
    assert facts["browser"]["product"].startswith("Chrome/") and len(facts["browser"]["sm3"]) == 64
    assert json.loads(roles["facts"].path.read_bytes()) == facts
    env = json.loads(roles["environment"].path.read_bytes())
    assert env["clean"] and env["launch"]["ok"] and env["launch"]["executable"] == env["checks"]["browser"]["binary"]
    assert env["checks"]["browser"]["sm3"] == facts["browser"]["sm3"]
    lines = roles["custody"].path.read_bytes().splitlines()
    prev = "0" * 64
    for i, line in enumerate(lines):
        entry = json.loads(line)
        assert entry["seq"] == i and entry["prev"] == prev and entry["time"].endswith("Z")
        prev = sm3_hex(line)
    steps = [json.loads(line)["step"] for line in lines]
    assert steps.index("environment checked") < steps.index("browser started") < steps.index("navigation started")
    logged = {json.loads(line).get("name"): json.loads(line).get("sm3") for line in lines}
    assert all(logged[a.name] == a.sm3 for a in (*result.artefacts, *result.resources) if a.role != "custody")


def _https_server(site: Path, cert: Path, key: Path) -> Any:
    from tests.forensics.capture.servers import Handler, Server

    handler = type("H", (Handler,), {"site": site, "hits": []})
    srv = Server(("127.0.0.1", 0), handler)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(str(cert), str(key))
    srv.socket = ctx.wrap_socket(srv.socket, server_side=True)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    return srv


def test_https_records_tls_facts_and_the_certificate_chain(tmp_path: Path) -> None:
    site = tmp_path / "site"
    site.mkdir()
    (site / "index.html").write_text("<!doctype html><title>tls</title><p>secure page</p>")
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    run_openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout",
                str(key), "-out", str(cert), "-days", "2", "-subj", "/CN=capture-test/O=Rongxin tests",
                "-addext", "subjectAltName=IP:127.0.0.1,DNS:capture.test")
    srv = _https_server(site, cert, key)
    url = f"https://127.0.0.1:{srv.server_address[1]}/"

    async def from_a_running_loop() -> CaptureResult:  # as an ASGI route calling it directly would
        return capture(url, tmp_path / "out", CaptureSettings(chain_time_s=time.time(), time_limit_s=40,
                                                              ignore_tls_errors=True))

    try:
        result = asyncio.run(from_a_running_loop())
    finally:
        srv.shutdown()
    tls = result.facts["tls"][url.rstrip("/")]
    assert tls["security_details"]["protocol"] in ("TLS 1.3", "TLS 1.2")
    leaf = tls["chain"][0]
    assert "capture-test" in leaf["subject"] and leaf["dns_names"] == ["capture.test"]
    assert leaf["pem"].strip() == cert.read_text().strip()
    assert result.facts["main_response"]["security_details"]["subjectName"] == "capture-test"
    assert result.facts["tls_errors_ignored"] is True
    assert shutil.which("ffprobe")
