"""Bad input and limits with servers on loopback and real Chromium: a page whose resources are
10 GB (Content-Length), never-ending (chunked), hanging after the headers, redirecting
forever, on the node's own API (directly, by alias, by redirect), unresolvable, refused or
silent; and main documents of each bad kind. Each capture returns (the pytest timeout is the
hang guard), records the failure in its custody log, leaves no browser behind, and the node
stand-in is never reached."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest

from forensics.capture import CaptureResult, CaptureSettings, capture
from forensics.capture.browser import browser_pids
from tests.forensics.capture.servers import closed_port, serve, silent_socket

pytestmark = [pytest.mark.slow, pytest.mark.timeout(180)]
LIMIT_S = 18.0


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Any:
    root = tmp_path_factory.mktemp("bad")
    site = root / "site"
    site.mkdir()
    cv2.imwrite(str(site / "ok.png"), (np.random.default_rng(3).random((60, 80, 3)) * 255).astype(np.uint8))
    srv, _hits = serve(site)
    node, node_hits = serve(site)
    silent = silent_socket()
    port, nport = srv.server_address[1], node.server_address[1]
    (site / "bad.html").write_text(
        "<!doctype html><html><body><h1>bad resources</h1>"
        '<img src="/huge.jpg"><audio autoplay src="/endless.mp3"></audio><img src="/hang.png"><img src="/loop">'
        f'<img src="http://127.0.0.1:{nport}/v1/status"><img src="http://localhost:{nport}/a.png">'
        f'<img src="/to/127.0.0.1:{nport}/redirected.png"><img src="http://nothing.invalid/x.png">'
        f'<img src="http://127.0.0.1:{closed_port()}/x.png"><img src="http://127.0.0.1:{silent.getsockname()[1]}/x.png">'
        '<img src="ok.png">'
        f'<script>try {{ new WebSocket("ws://127.0.0.1:{nport}/v1/ws"); }} catch (e) {{}}</script></body></html>')
    settings = CaptureSettings(chain_time_s=time.time(), time_limit_s=LIMIT_S, forbidden=(("127.0.0.1", nport),))
    yield {"root": root, "base": f"http://127.0.0.1:{port}", "settings": settings, "node_hits": node_hits,
           "site": site, "silent": silent}
    srv.shutdown()
    node.shutdown()
    silent.close()


def _run(world: Any, url: str, name: str) -> tuple[CaptureResult, list[dict[str, Any]]]:
    out = world["root"] / name
    result = capture(url, out, world["settings"])
    log = [json.loads(line) for line in (out / "custody.jsonl").read_bytes().splitlines()]
    assert log[-1]["step"] == "custody log closed"
    profile = Path(next(e["path"] for e in log if e["step"] == "profile created"))
    assert not browser_pids(profile), "browser processes left behind"
    assert not profile.exists()  # the fresh profile is removed with the capture
    assert world["node_hits"] == [], world["node_hits"]
    return result, log


def test_a_page_of_bad_resources_is_captured_with_every_failure_logged(world: Any) -> None:
    result, log = _run(world, world["base"] + "/bad.html", "resources")
    blocked = {b["url"]: b["kind"] for b in result.facts["blocked"]}
    nport = world["settings"].forbidden[0][1]
    assert blocked[f"http://127.0.0.1:{nport}/v1/status"] == "forbidden_target"
    assert blocked[f"http://localhost:{nport}/a.png"] == "forbidden_target"
    assert blocked[f"http://127.0.0.1:{nport}/redirected.png"] == "forbidden_target"  # after a redirect
    assert blocked["http://nothing.invalid/x.png"] == "unresolved"
    assert blocked[world["base"] + "/huge.jpg"] == "size_limit"  # 10 GB declared: refused at the headers
    assert blocked[f"ws://127.0.0.1:{nport}/v1/ws"] == "forbidden_target"  # WebSockets are guarded too
    assert sum(1 for e in log if e["step"] == "request blocked") >= 4
    ok = (world["site"] / "ok.png").read_bytes()
    assert any(a.path.read_bytes() == ok for a in result.resources)
    assert {a.role for a in result.artefacts} >= {"screenshot", "warc", "dom", "har", "environment", "facts"}
    warc_requests = json.dumps(result.facts["requests"])
    assert result.facts["requests"]["bytes_saved"] <= world["settings"].size_limit_bytes, warc_requests
    assert all(a.size <= world["settings"].response_limit_bytes for a in result.resources)


@pytest.mark.parametrize("path, expect", [
    ("/hang.html", ("navigation did not complete",)),  # headers, then nothing: times out
    # chunked, never ends: the limit stops it, or on a slow machine the navigation's time share
    ("/endless.html", ("limit reached", "navigation did not complete")),
    ("/loop", ("ERR_TOO_MANY_REDIRECTS",)),
])
def test_a_bad_main_document_is_captured_as_far_as_it_goes(world: Any, path: str, expect: tuple[str, ...]) -> None:
    result, log = _run(world, world["base"] + path, "main" + path.replace("/", "-").replace(".", "-"))
    assert any(x in (e.get("failure") or "") or e["step"] == x for e in log for x in expect), log
    assert result.facts["failures"]
    assert {a.role for a in result.artefacts} >= {"warc", "har", "environment", "facts", "custody"}


@pytest.mark.parametrize("kind", ["refused", "unresolved"])
def test_an_unreachable_page_is_captured_with_the_failure(world: Any, kind: str) -> None:
    url = f"http://127.0.0.1:{closed_port()}/" if kind == "refused" else "http://nothing.invalid/"
    result, _log = _run(world, url, kind)
    text = json.dumps(result.facts["failures"])
    assert ("ERR_CONNECTION_REFUSED" in text) if kind == "refused" else ("does not resolve" in text)
    assert result.final_url is None or result.final_url.startswith(("chrome-error:", "http", "about:"))
