"""The service of real node processes: a validator (val1, which commits alone) and a full node
(full1), started once for the module. Health, readiness and metrics; a WebSocket subscriber
that never reads is dropped while the node keeps committing and serving others; per-identity
rate limits (429 with Retry-After); a graceful shutdown that finishes the request in flight;
val1's own alerts (node down, a revoked identity still trying) delivered to a real webhook
receiver and a real SMTP server; the SDK's subscription resuming across the restart with no
gap or repeat; JSON logs with no key in them."""

from __future__ import annotations

import asyncio
import base64
import http.client
import json
import os
import signal
import socket
import subprocess
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import websockets

from api.cluster import api_ok, start_node
from api.sdk import Identity, LedgerClient, registration
from ledger.crypto import SM2PrivateKey
from ledger.crypto.ca import ConsortiumCA
from ledger.node.config import init_local_consortium

from .service_kit import MailSink, WebhookReceiver, wait_for

# a second group of consortium tests: it runs beside "cluster" (own port range per worker)
pytestmark = [pytest.mark.slow]


@dataclass
class Service:
    data: Path
    apis: dict[str, str]
    procs: dict[str, subprocess.Popen[bytes]]
    hook: WebhookReceiver
    mail: MailSink
    chain: str

    def folder(self, nid: str) -> Path:
        return self.data / "nodes" / nid

    def start(self, nid: str) -> None:
        self.procs[nid] = start_node(self.folder(nid), detach=True)
        wait_for(lambda: api_ok(self.apis[nid]), 90, f"{nid}'s API")

    def stop(self, nid: str) -> int:
        p = self.procs[nid]
        if p.poll() is None:
            p.send_signal(signal.SIGTERM)
            try:
                return p.wait(60)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait(10)
        return int(p.returncode)

    def identity(self, name: str) -> Identity:
        """A user registered on chain (on both nodes)."""
        key = SM2PrivateKey.generate()
        ca = ConsortiumCA(self.data / "ca")
        client = LedgerClient(self.apis["val1"], key=key)
        st = client.status()
        tx = registration(ca, key, chain=self.chain, org="County A Media Centre", expiry=st["height"] + 10_000,
                          name=name)
        client.submit(tx)
        height = client.wait(tx.id_hex, 60)["height"]
        wait_for(lambda: get(self.apis["full1"] + "/v1/status")["height"] >= height, 60, "full1 to follow")
        cert_pem = tx.payload["certificate"].encode()
        from ledger.crypto import Certificate

        return Identity(key, Certificate.load(cert_pem))


def get(url: str, headers: dict[str, str] | None = None) -> Any:
    with urllib.request.urlopen(urllib.request.Request(url, headers=headers or {}), timeout=30) as r:
        return json.loads(r.read())


def fetch(url: str, headers: dict[str, str] | None = None) -> tuple[int, dict[str, str], bytes]:
    try:
        with urllib.request.urlopen(urllib.request.Request(url, headers=headers or {}), timeout=30) as r:
            return r.status, {k.lower(): v for k, v in r.headers.items()}, r.read()
    except urllib.error.HTTPError as exc:
        return exc.code, {k.lower(): v for k, v in exc.headers.items()}, exc.read()


def metric(api: str, sample: str) -> float | None:
    """The value of one sample of ``/metrics``: a name, or a name with its labels as printed."""
    text = urllib.request.urlopen(api + "/metrics", timeout=30).read().decode()
    for line in text.splitlines():
        name, _, value = line.rpartition(" ")
        if name == sample:
            return float(value)
    return None


@pytest.fixture(scope="module")
def svc(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    tmp = tmp_path_factory.mktemp("service")
    data = init_local_consortium(tmp / "c", base_port=int(os.environ["RONGXIN_BASE_PORT"]) + 520,
                                 layout=(("val1", "consensus", "County A Media Centre"),
                                         ("full1", "full", "County A Media Centre")))
    hook, mail = WebhookReceiver(), MailSink()
    (data / "nodes" / "val1" / "operations.toml").write_text(
        '[alerts]\nevaluate_every_s = 0.5\nnode_down_after_s = 1\nreport_at = ""\n'
        'external_url = "http://val1.example/"\n'
        f'[[alerts.webhooks]]\nurl = "{hook.url}"\n'
        f'[alerts.smtp]\nhost = "127.0.0.1"\nport = {mail.port}\nfrom = "rongxin@val1.example"\n'
        'to = ["ops@example.org"]\n')
    (data / "nodes" / "full1" / "operations.toml").write_text(
        "[limits]\nidentity_rate = 0.5\nidentity_burst = 3\n[service]\nshutdown_grace_s = 20\n")
    apis = {}
    for nid in ("val1", "full1"):
        cfg = json.loads((data / "nodes" / nid / "node.json").read_text())
        apis[nid] = f"http://{cfg['api'][0]}:{cfg['api'][1]}"
    s = Service(data, apis, {}, hook, mail, json.loads((data / "nodes" / "val1" / "node.json").read_text())["chain"])
    try:
        for nid in ("val1", "full1"):
            s.start(nid)
        wait_for(lambda: get(apis["val1"] + "/v1/status")["peers_online"] == ["full1"], 60, "the link")
        yield s
    finally:
        for nid in list(s.procs):
            s.stop(nid)
        hook.close()
        mail.close()


def test_health_readiness_metrics_and_the_next_block_over_a_websocket(svc: Service) -> None:
    api = svc.apis["val1"]
    assert get(api + "/healthz") == {"status": "ok"}
    ready = wait_for(lambda: fetch(api + "/readyz")[0] == 200, 30, "val1 ready")
    assert ready
    body = get(api + "/readyz")
    assert body["ready"] is True and body["checks"]["peers_online"] == 1 and body["checks"]["linked"] is True
    st = get(api + "/v1/status")
    assert metric(api, "rongxin_height") in (st["height"], st["height"] + 1)
    assert metric(api, 'rongxin_peer_up{peer="full1"}') == 1.0
    assert metric(api, 'rongxin_certificate_expiry_timestamp_seconds{certificate="node-sm2"}') > time.time()
    assert metric(api, 'rongxin_certificate_expiry_timestamp_seconds{certificate="node-tls"}') > time.time()
    assert metric(api, "rongxin_store_bytes") > 0 and metric(api, "rongxin_disk_free_bytes") > 0
    assert metric(api, 'rongxin_node_info{chain="' + svc.chain + '",node_id="val1",org="County A Media Centre",'
                  'role="consensus"}') == 1.0

    async def next_block() -> dict[str, Any]:
        async with websockets.connect(api.replace("http", "ws", 1) + "/v1/ws") as w:
            await w.send(json.dumps({"subscribe": "blocks"}))
            assert json.loads(await w.recv())["kind"] == "subscribed"
            svc.identity("ws-trigger")  # a transaction: the next block
            return dict(json.loads(await asyncio.wait_for(w.recv(), 60)))

    block = asyncio.run(next_block())
    assert block["kind"] == "block" and block["height"] > st["height"]
    assert metric(api, "rongxin_commit_latency_seconds_count") >= 1


def _raw_ws(api: str, rcvbuf: int = 4096) -> socket.socket:
    """A WebSocket handshake on a raw socket with a small receive buffer (it will never read)."""
    u = urllib.parse.urlparse(api)
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
    s.connect((u.hostname, u.port))
    key = base64.b64encode(os.urandom(16)).decode()
    s.sendall((f"GET /v1/ws HTTP/1.1\r\nHost: {u.hostname}:{u.port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
               f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n").encode())
    head = b""
    while b"\r\n\r\n" not in head:
        head += s.recv(1)
    assert head.startswith(b"HTTP/1.1 101"), head
    return s


def _frame(text: str) -> bytes:
    data = text.encode()
    mask = os.urandom(4)
    assert len(data) < 126
    return bytes([0x81, 0x80 | len(data)]) + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(data))


def test_a_subscriber_that_never_reads_is_dropped_and_the_node_keeps_serving(svc: Service) -> None:
    api = svc.apis["val1"]
    me = svc.identity("bulk-writer")
    client = LedgerClient(api, identity=me)
    stuck = _raw_ws(api)
    stuck.sendall(_frame(json.dumps({"subscribe": "txs", "type": "kv.set"})))
    heights: list[int] = []
    stop = threading.Event()

    start = get(api + "/v1/status")["height"]

    def follow() -> None:  # a subscriber that reads: it gets every block
        for item in LedgerClient(api).subscribe("blocks", from_height=start + 1):
            heights.append(item["height"])
            if stop.is_set():
                return

    t = threading.Thread(target=follow, daemon=True)
    t.start()
    value = "x" * 48_000
    from ledger.tx import Transaction

    for batch in range(3):  # ~7 MB of items for the stuck subscriber
        txs = [Transaction.build(me.key, chain=svc.chain, type="kv.set", payload={"key": f"big{batch}-{i}",
                                                                                   "value": value},
                                 expiry=start + 10_000) for i in range(50)]
        assert all(r["accepted"] for r in client.submit_many(txs))
        client.wait(txs[-1].id_hex, 120)
    wait_for(lambda: (metric(api, "rongxin_ws_dropped_total") or 0) >= 1, 60, "the stuck subscriber dropped")
    end = client.submit_and_wait("kv.set", {"key": "after", "value": "1"}, timeout=60)["height"]
    wait_for(lambda: heights and heights[-1] >= end, 60, "the reading subscriber to get the last block")
    stop.set()
    assert heights == list(range(start + 1, heights[-1] + 1))
    # the stuck socket was given up: reading it now ends (close or reset) after what was buffered
    stuck.settimeout(30)
    total = 0
    try:
        while chunk := stuck.recv(1 << 20):
            total += len(chunk)
            assert total < 64 << 20, "the server kept sending to a dropped subscriber"
    except ConnectionResetError:
        pass
    finally:
        stuck.close()
    assert get(api + "/healthz") == {"status": "ok"}


def test_per_identity_rate_limits_answer_429_with_retry_after(svc: Service) -> None:
    api = svc.apis["full1"]
    a, b = svc.identity("limited-a"), svc.identity("limited-b")
    codes = [fetch(api + "/v1/identity", a.headers("GET", "/v1/identity"))[0] for _ in range(5)]
    assert codes[:3] == [200, 200, 200] and 429 in codes[3:], codes
    status, headers, body = fetch(api + "/v1/identity", a.headers("GET", "/v1/identity"))
    assert status == 429
    err = json.loads(body)["error"]
    assert err["code"] == "rate_limited" and int(headers["retry-after"]) == err["details"]["retry_after"] >= 1
    assert fetch(api + "/v1/identity", b.headers("GET", "/v1/identity"))[0] == 200  # another identity: its own
    assert fetch(api + "/v1/status")[0] == 200  # unsigned requests: no address limit set
    time.sleep(int(headers["retry-after"]) + 0.5)
    assert fetch(api + "/v1/identity", a.headers("GET", "/v1/identity"))[0] == 200
    assert (metric(api, "rongxin_rate_limited_total") or 0) >= 2


def _alert_posts(svc: Service, name: str, status: str, since: int = 0) -> list[dict[str, Any]]:
    """Webhook bodies received after the first ``since`` that hold alert ``name`` in ``status``."""
    return [p["json"] for p in svc.hook.posts[since:]
            if any(a["labels"]["alertname"] == name and a["status"] == status for a in p["json"]["alerts"])]


def test_graceful_shutdown_node_down_alert_and_the_sdk_resuming(svc: Service) -> None:
    full, val = svc.apis["full1"], svc.apis["val1"]
    me = svc.identity("restart-writer")
    seen: list[int] = []
    stop = threading.Event()

    def follow() -> None:
        from api.sdk import ClientError

        try:  # gives up once the consortium is gone (about a minute of retries), not for ever
            for item in LedgerClient(full).subscribe("blocks", from_height=1, retry_s=0.2, max_retries=8):
                seen.append(item["height"])
                if stop.is_set():
                    return
        except ClientError:
            return

    t = threading.Thread(target=follow, daemon=True)
    t.start()
    wait_for(lambda: len(seen) > 2, 60, "the replay")
    from ledger.tx import Transaction

    # a request in flight when SIGTERM comes: its body arrives after the signal, it is answered
    tx = Transaction.build(me.key, chain=svc.chain, type="kv.set", payload={"key": "inflight", "value": "1"},
                           expiry=10**6)
    body = json.dumps(tx.wire()).encode()
    u = urllib.parse.urlparse(full)
    conn = http.client.HTTPConnection(u.hostname, u.port, timeout=60)
    conn.putrequest("POST", "/v1/txs")
    conn.putheader("Content-Type", "application/json")
    conn.putheader("Content-Length", str(len(body)))
    conn.endheaders()
    conn.send(body[:10])
    time.sleep(0.5)
    posts, mails = len(svc.hook.posts), len(svc.mail.messages)
    svc.procs["full1"].send_signal(signal.SIGTERM)
    time.sleep(1.0)
    conn.send(body[10:])
    r = conn.getresponse()
    assert r.status in (200, 202), r.read()
    assert json.loads(r.read())["accepted"] is True
    assert svc.stop("full1") == 0
    log = (svc.folder("full1") / "node.log").read_text()
    assert "finishing requests in flight" in log and "stopped at height" in log and "Traceback" not in log
    # val1 sees full1 down: its alert reaches the webhook and the mailbox
    fired = wait_for(lambda: _alert_posts(svc, "RongxinNodeDown", "firing", posts), 60, "the node-down webhook")
    alert = next(a for a in fired[0]["alerts"] if a["labels"]["alertname"] == "RongxinNodeDown")
    assert alert["labels"]["peer"] == "full1" and alert["labels"]["node"] == "val1"
    assert fired[0]["externalURL"] == "http://val1.example/"
    mail = wait_for(lambda: [m for m in svc.mail.messages[mails:] if "RongxinNodeDown" in m["Subject"]], 60,
                    "the mail")
    assert "node full1 is down" in mail[0].get_content() and mail[0]["To"] == "ops@example.org"
    assert any(a["labels"]["alertname"] == "RongxinNodeDown" for a in get(val + "/v1/alerts")["firing"])
    # blocks committed while full1 is down, then full1 restarts: the alert resolves, the SDK resumes
    committed = LedgerClient(val, identity=me).submit_and_wait("kv.set", {"key": "while-down", "value": "1"},
                                                               timeout=60)["height"]
    posts = len(svc.hook.posts)
    svc.start("full1")
    wait_for(lambda: _alert_posts(svc, "RongxinNodeDown", "resolved", posts), 60, "the resolved webhook")
    later = LedgerClient(val, identity=me).submit_and_wait("kv.set", {"key": "after", "value": "1"},
                                                           timeout=60)["height"]
    wait_for(lambda: seen and seen[-1] >= later, 90, "the SDK to resume past the restart")
    stop.set()
    assert seen == list(range(1, len(seen) + 1)), seen  # every block once, in order, across the restart
    assert committed in seen


def test_a_revoked_identity_still_trying_raises_an_alert(svc: Service) -> None:
    api = svc.apis["val1"]
    who = svc.identity("soon-revoked")
    assert fetch(api + "/v1/identity", who.headers("GET", "/v1/identity"))[0] == 200
    ConsortiumCA(svc.data / "ca").revoke(who.certificate.serial, "key_compromise")
    status, _h, body = fetch(api + "/v1/identity", who.headers("GET", "/v1/identity"))
    assert status == 401 and json.loads(body)["error"]["code"] == "auth_revoked"
    posts = wait_for(lambda: _alert_posts(svc, "RongxinRevokedIdentityActive", "firing"), 30, "the alert")
    alert = next(a for a in posts[0]["alerts"] if a["labels"]["alertname"] == "RongxinRevokedIdentityActive")
    assert alert["labels"]["kind"] == "certificate" and "soon-revoked" in alert["labels"]["identity"]
    assert (metric(api, 'rongxin_revoked_identity_attempts_total{kind="certificate"}') or 0) >= 1


def test_logs_are_json_lines_and_hold_no_key(svc: Service) -> None:
    for nid in ("val1", "full1"):
        text = (svc.folder(nid) / "node.log").read_text()
        lines = [ln for ln in text.splitlines() if ln.strip()]
        assert lines  # full1's log starts again when the shutdown test restarts it: its "up" line at least
        for ln in lines:
            rec = json.loads(ln)
            assert {"ts", "level", "logger", "msg"} <= set(rec), ln
        assert any(json.loads(ln)["msg"].startswith(f"node {nid} (") for ln in lines)
        for secret in ("sm2.key.pem", "tls.key"):
            body = [b for b in (svc.folder(nid) / secret).read_text().splitlines() if b and not b.startswith("-----")]
            assert not any(b in text for b in body), f"{nid}'s log holds its {secret}"
        assert "PRIVATE KEY" not in text


def test_private_subscriptions_need_a_signed_handshake(svc: Service) -> None:
    from websockets.sync.client import connect

    url = svc.apis["val1"].replace("http", "ws", 1) + "/v1/ws"
    who = svc.identity("case-watcher")
    with connect(url) as ws:  # unsigned: refused, the connection stays
        ws.send(json.dumps({"subscribe": "cases"}))
        err = json.loads(ws.recv(timeout=30))
        assert err["kind"] == "error" and err["error"]["code"] == "auth_missing"
        ws.send(json.dumps({"subscribe": "blocks"}))
        assert json.loads(ws.recv(timeout=30))["kind"] == "subscribed"
    with connect(url, additional_headers=who.headers("GET", "/v1/ws")) as ws:  # signed: accepted
        ws.send(json.dumps({"subscribe": "cases", "id": "c"}))
        ws.send(json.dumps({"subscribe": "events", "type": "evidence.*", "id": "e"}))
        acks = [json.loads(ws.recv(timeout=30)) for _ in range(2)]
        assert [(a["kind"], a["subscription"]) for a in acks] == [("subscribed", "c"), ("subscribed", "e")]
    bad = dict(who.headers("GET", "/v1/ws"), **{"X-Rongxin-Signature": base64.b64encode(b"x" * 70).decode()})
    with connect(url, additional_headers=bad) as ws:  # a signature that fails: its refusal, for private topics
        ws.send(json.dumps({"subscribe": "cases"}))
        assert json.loads(ws.recv(timeout=30))["error"]["code"] == "auth_bad_signature"
