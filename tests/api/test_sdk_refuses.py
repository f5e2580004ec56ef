"""The SDK signs only what it asked for (docs/api.md §8), against a node that lies.

A real HTTPS server on loopback (TLS with a transport certificate of a real consortium CA)
plays the node: it hashes what it receives and answers a prepared registration or evidence
manifest, honest or with one thing changed (another file hash or size, other attributes,
another pledge, another filer, chain, work, capture, time, holder, a file dropped). The SDK
and the CLI must refuse every changed one before signing (``UnsafeToSign``; ``rongxin``
exit 1) and submit nothing; the honest one goes through. The upload is streamed with
``Expect: 100-continue`` over TLS (a TLS socket refuses ``MSG_PEEK``), and a node that refuses
before reading the body is heard over TLS too.
"""

from __future__ import annotations

import base64
import json
import os
import ssl
import subprocess
import threading
import time
import urllib.parse
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from api.sdk import ClientError, Identity, LedgerClient
from api.sdk_check import UnsafeToSign
from forensics.contracts import _attributes
from forensics.media import media_type
from ledger.contracts.context import account_of
from ledger.crypto import Certificate, SM2PrivateKey, sm3
from ledger.crypto.ca import ConsortiumCA
from tests.conftest import RONGXIN

CHAIN = "fake-chain"
PNG = b"\x89PNG\r\n\x1a\n"


@dataclass
class Fake:
    """What the fake node does and what it saw."""

    mode: str = "honest"
    holder: str = ""
    submitted: list[str] = field(default_factory=list)


def _error(h: BaseHTTPRequestHandler, status: int, code: str) -> None:
    body = json.dumps({"error": {"code": code, "message": code, "details": None}}).encode()
    h.send_response(status)
    h.send_header("content-type", "application/json")
    h.send_header("content-length", str(len(body)))
    h.end_headers()
    h.wfile.write(body)


def _json(h: BaseHTTPRequestHandler, obj: Any, status: int = 200) -> None:
    body = json.dumps(obj).encode()
    h.send_response(status)
    h.send_header("content-type", "application/json")
    h.send_header("content-length", str(len(body)))
    h.end_headers()
    h.wfile.write(body)


def _registration(fake: Fake, q: dict[str, list[str]], body: bytes) -> dict[str, Any]:
    attrs = _attributes(json.loads(q["attributes"][0]))
    p: dict[str, Any] = {
        "attributes": attrs, "conflicts": [], "countersign": {"node": "n1", "signature": "30" * 35},
        "fingerprints": "ab" * 32, "media_type": media_type(body[:16], None),
        "pledge": {"signature": q["pledge_signature"][0], "text": q["pledge"][0]}, "size": len(body),
        "sm3": sm3(body).hex(), "work_id": "w-fake"}
    m = fake.mode
    if m == "other-sm3":
        p["sm3"] = "00" * 32
    elif m == "other-size":
        p["size"] += 1
    elif m == "other-attributes":
        p["attributes"] = dict(attrs, title="Someone else's title")
    elif m == "other-pledge":
        p["pledge"] = dict(p["pledge"], text="I give this work away")
    elif m == "other-media":
        p["media_type"] = "audio/wav"
    elif m == "extra-field":
        p["holder"] = "acct-of-another"
    return {"conflicts": [], "media_type": p["media_type"], "payload": p, "sm3": sm3(body).hex() if m != "other-sm3"
            else p["sm3"], "size": p["size"], "work_id": "w-fake"}


def _filing(fake: Fake, h: BaseHTTPRequestHandler, q: dict[str, list[str]], body: bytes) -> dict[str, Any]:
    cert = Certificate(base64.b64decode(h.headers["X-Rongxin-Certificate"]))
    arts, at = [], 0
    for spec in q["file"]:
        size_s, _, name = spec.partition(":")
        part = body[at:at + int(size_s)]
        at += int(size_s)
        arts.append({"matches": [{"method": "image", "score_milli": 990, "work_id": q["work"][0]}],
                     "media_type": media_type(part[:16], None), "name": name, "sm3": sm3(part).hex(),
                     "size": len(part)})
    capture = {"method": q["method"][0], **({"source": q["source"][0]} if "source" in q else {})}
    m: dict[str, Any] = {"artefacts": arts, "capture": capture, "chain": CHAIN, "created_ms": int(time.time() * 1000),
                         "evidence_id": "e-fake", "filer": account_of(cert.public_key().point),
                         "upload": {"node": "val1", "signature": "00" * 70}, "version": 1,
                         "work_id": q["work"][0]}
    holder = fake.holder
    mode = fake.mode
    if mode == "other-filer":
        m["filer"] = "0" * 40
    elif mode == "other-sm3":
        arts[0]["sm3"] = "00" * 32
    elif mode == "other-size":
        arts[0]["size"] += 1
    elif mode == "other-work":
        m["work_id"] = "w-other"
    elif mode == "other-chain":
        m["chain"] = "another-chain"
    elif mode == "dropped-file":
        arts.pop()
    elif mode == "other-capture":
        m["capture"] = dict(capture, source="https://elsewhere.example/")
    elif mode == "old-time":
        m["created_ms"] -= 3600 * 1000
    elif mode == "match-other-work":
        arts[0]["matches"][0]["work_id"] = "w-other"
    elif mode == "other-holder":
        holder = "1" * 40
    return {"evidence_id": "e-fake", "holder": holder, "manifest": m, "matches": [], "work_id": q["work"][0]}


def make_handler(fake: Fake) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *_: Any) -> None:
            pass

        def handle_expect_100(self) -> bool:
            if fake.mode == "refuse-upload":  # a refusal before a byte of the body is read
                _error(self, 403, "auth_role")
                self.close_connection = True
                return False
            return super().handle_expect_100()

        def do_GET(self) -> None:
            path = urllib.parse.urlsplit(self.path).path
            if path == "/v1/status":
                _json(self, {"chain": CHAIN, "height": 5})
            elif path == "/v1/identity":
                _json(self, {"account": "x", "business": "holder"})
            elif path.startswith("/v1/works/"):
                _json(self, {"holder": fake.holder, "work_id": path.rsplit("/", 1)[1]})
            elif path.startswith("/v1/cases/"):
                _error(self, 404, "not_found")
            else:
                _error(self, 404, "not_found")

        def do_POST(self) -> None:
            url = urllib.parse.urlsplit(self.path)
            q = urllib.parse.parse_qs(url.query)
            body = self.rfile.read(int(self.headers.get("content-length", "0")))
            if url.path == "/v1/works":
                _json(self, _registration(fake, q, body))
            elif url.path == "/v1/evidence/prepare":
                _json(self, _filing(fake, self, q, body))
            elif url.path in ("/v1/txs", "/v1/evidence"):
                fake.submitted.append(url.path)
                _json(self, {"id": "ab" * 32, "evidence_id": "e-fake", "case_id": "c-fake", "tx_id": "ab" * 32,
                             "height": 6, "matches": []}, 202 if url.path == "/v1/txs" else 200)
            else:
                _error(self, 404, "not_found")

    return Handler


@dataclass
class Node:
    url: str
    ca_file: Path
    fake: Fake
    ids: Path
    files: list[Path]


@pytest.fixture(scope="module")
def node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Node]:
    t = tmp_path_factory.mktemp("fake-node")
    ca = ConsortiumCA.init(t / "ca", "Fake Consortium")
    nkey = SM2PrivateKey.generate()
    ncert = ca.issue(kind="node", name="n1", org="Fake Consortium", role="consensus", public_key=nkey.public_key())
    tls_key, tls_cert = ca.issue_transport("n1", ncert)
    (t / "tls.key").write_bytes(tls_key)
    (t / "tls.crt").write_bytes(tls_cert)
    for name, business in (("holder", "holder"), ("legal", "legal")):
        key = SM2PrivateKey.generate()
        cert = ca.issue(kind="user", name=name, org="Fake Consortium", public_key=key.public_key(), business=business)
        (t / "ids" / name).mkdir(parents=True)
        (t / "ids" / name / "key.pem").write_bytes(key.to_pem())
        (t / "ids" / name / "cert.pem").write_bytes(cert.to_pem())
    files = [t / "copy.png", t / "other.png"]
    for f in files:
        f.write_bytes(PNG + os.urandom(200_000))
    fake = Fake()
    server = ThreadingHTTPServer(("127.0.0.1", 0), make_handler(fake))
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(str(t / "tls.crt"), str(t / "tls.key"))
    server.socket = ctx.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield Node(f"https://127.0.0.1:{server.server_address[1]}", t / "ca" / "transport-ca.crt.pem", fake,
                   t / "ids", files)
    finally:
        server.shutdown()
        server.server_close()


def client(node: Node, who: str) -> LedgerClient:
    return LedgerClient(node.url, identity=Identity.load(node.ids / who), ca_file=node.ca_file, timeout=10)


def test_honest_registration_over_tls_is_accepted(node: Node) -> None:
    node.fake.mode = "honest"
    prep = client(node, "holder").prepare_work(node.files[0], {"title": "Mine", "type": "picture"})
    assert prep["payload"]["sm3"] == sm3(node.files[0].read_bytes()).hex()


@pytest.mark.parametrize("mode", ["other-sm3", "other-size", "other-attributes", "other-pledge", "other-media",
                                  "extra-field"])
def test_tampered_registration_is_not_signed(node: Node, mode: str) -> None:
    node.fake.mode, node.fake.submitted[:] = mode, []
    with pytest.raises(UnsafeToSign, match="refusing to sign the registration"):
        client(node, "holder").register_work(node.files[0], {"title": "Mine", "type": "picture"})
    assert node.fake.submitted == []


def test_honest_filing_streams_over_tls(node: Node) -> None:
    """The whole evidence flow's upload (100-continue, then the body) over TLS."""
    node.fake.mode, node.fake.submitted[:] = "honest", []
    legal = client(node, "legal")
    node.fake.holder = "2" * 40
    out = legal.file_evidence(node.files, "w-1", source="https://pirate.example/x")
    assert out["evidence_id"] == "e-fake" and node.fake.submitted == ["/v1/evidence"]


def test_refusal_before_the_body_is_heard_over_tls(node: Node) -> None:
    node.fake.mode = "refuse-upload"
    with pytest.raises(ClientError) as err:
        client(node, "legal").file_evidence(node.files, "w-1")
    assert err.value.status == 403 and err.value.code == "auth_role"


@pytest.mark.parametrize("mode", ["other-filer", "other-sm3", "other-size", "other-work", "other-chain",
                                  "dropped-file", "other-capture", "old-time", "match-other-work", "other-holder"])
def test_tampered_filing_is_not_signed(node: Node, mode: str) -> None:
    node.fake.mode, node.fake.submitted[:] = mode, []
    node.fake.holder = "2" * 40
    with pytest.raises(UnsafeToSign, match="refusing to sign"):
        client(node, "legal").file_evidence(node.files, "w-1", source="https://pirate.example/x")
    assert node.fake.submitted == []


def test_cli_exit_1_and_nothing_submitted(node: Node, tmp_path: Path) -> None:
    env = dict(os.environ, RONGXIN_CA_FILE=str(node.ca_file))
    node.fake.holder = "2" * 40
    for mode, args in (("other-sm3", ["works", "register", str(node.files[0]), "--as", str(node.ids / "holder")]),
                       ("other-filer", ["evidence", "file", *map(str, node.files), "--work", "w-1",
                                        "--as", str(node.ids / "legal")])):
        node.fake.mode, node.fake.submitted[:] = mode, []
        r = subprocess.run([str(RONGXIN), *args, "--api", node.url, "--json"], capture_output=True, text=True,
                           timeout=120, env=env, cwd=tmp_path, check=False)
        assert r.returncode == 1, (mode, r.stdout, r.stderr)
        assert "refusing to sign" in r.stderr and "Traceback" not in r.stderr and r.stderr.count("\n") == 1
        assert node.fake.submitted == []
