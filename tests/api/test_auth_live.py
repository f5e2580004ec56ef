"""Signed requests against a real consortium (`rongxin up --detach`: six node processes over
real sockets): the demo identities `up` makes, a signed request that passes, and each refusal
of docs/api-auth.md with its own code, including a nonce replayed after a node restart."""

from __future__ import annotations

import base64
import datetime as dt
import json
import os
import signal
import stat
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from api.node_main import is_running
from api.sdk import ClientError, Identity, LedgerClient
from api.signing import sign_request
from ledger.contracts.context import account_of
from ledger.crypto import SM2PrivateKey, sm3
from ledger.crypto.ca import ConsortiumCA
from ledger.tx import Transaction

pytestmark = [pytest.mark.slow]

DEMO = {"holder": "holder", "holder2": "holder", "legal": "legal", "court": "court", "regulator": "regulator",
        "platform-a": "platform", "platform-b": "platform", "platform-c": "platform",
        "platform-d": "platform", "platform-e": "platform"}


@pytest.fixture(scope="module")
def consortium(tmp_path_factory: pytest.TempPathFactory):
    from tests.conftest import run_rongxin

    data = tmp_path_factory.mktemp("auth") / "c"
    t0 = time.monotonic()
    proc = run_rongxin("up", "--detach", "--data", str(data), timeout=240)
    first_up = time.monotonic() - t0
    assert proc.returncode == 0, proc.stderr
    nodes = {n["id"]: n for n in json.loads((data / "cluster.json").read_text())["nodes"]}
    yield data, nodes, first_up
    run_rongxin("down", "--data", str(data), timeout=120)


def call(url: str, method: str = "GET", body: bytes | None = None,
         headers: dict[str, str] | None = None) -> tuple[int, Any]:
    req = urllib.request.Request(url, data=body, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            return r.status, json.load(r)
    except urllib.error.HTTPError as e:
        return e.code, json.load(e)


def refused(api: str, headers: dict[str, str], target: str = "/v1/identity", body: bytes | None = None) -> tuple[int, str]:
    status, out = call(api + target, "GET", body, headers)
    assert status != 200, out
    assert set(out) == {"error"} and set(out["error"]) == {"code", "message", "details"}, out
    return status, out["error"]["code"]


def register(api: str, ca: ConsortiumCA, name: str, business: str | None, org: str = "Demo Legal Centre") -> Identity:
    key = SM2PrivateKey.generate()
    cert = ca.issue(kind="user", name=name, org=org, public_key=key.public_key(), business=business)
    client = LedgerClient(api)
    st = client.status()
    tx = Transaction.build(key, chain=st["chain"], type="user.register", expiry=st["height"] + 1000,
                           payload={"certificate": cert.to_pem().decode()})
    rec = client.wait(client.submit(tx), 60, certified=False)
    assert rec["receipt"]["code"] == 0, rec["receipt"]
    return Identity(key, cert)


def test_up_makes_demo_identities_once(consortium, rx) -> None:
    data, nodes, first_up = consortium
    assert first_up < 60
    assert (data / "ca" / "root.crt.pem").is_file()
    client = LedgerClient(nodes["val1"]["api"])
    orgs = set()
    before = {}
    for name, business in DEMO.items():
        folder = data / "identities" / name
        assert stat.S_IMODE((folder / "key.pem").stat().st_mode) == 0o600
        ident = Identity.load(folder)
        assert ident.certificate.common_name == name and ident.certificate.business == business
        orgs.add(ident.certificate.organization)
        rec = client.state_json(f"sys/user/{ident.account}")
        assert rec["status"] == "active" and rec["business"] == business and rec["name"] == name
        assert rec["certificate"] == ident.certificate.fingerprint
        before[name] = (folder / "cert.pem").read_bytes()
    assert len(orgs) == len(DEMO)  # each in its own organisation, a member of the consortium
    members = client.state_json("sys/orgs")
    assert all(members[o]["status"] == "member" for o in orgs)
    again = rx("up", "--detach", "--data", str(data), timeout=120)
    assert again.returncode == 0, again.stderr
    assert {n: (data / "identities" / n / "cert.pem").read_bytes() for n in DEMO} == before


def test_signed_request_passes_sdk_and_cli(consortium, rx) -> None:
    data, nodes, _ = consortium
    legal = Identity.load(data / "identities" / "legal")
    me = LedgerClient(nodes["val2"]["api"], identity=legal).whoami()
    assert me["common_name"] == "legal" and me["business"] == "legal" and me["status"] == "active"
    assert me["account"] == legal.account and me["organization"] == "Demo Legal Centre"
    assert LedgerClient(nodes["full1"]["api"], identity=legal).whoami(role="legal")["business"] == "legal"
    out = rx("identity", "show", "--as", str(data / "identities" / "court"), "--api", nodes["sup1"]["api"], "--json")
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["business"] == "court"
    out = rx("identity", "show", "--as", str(data / "identities" / "holder"), "--api", nodes["sup1"]["api"])
    assert out.returncode == 0 and "holder" in out.stdout
    # a folder whose key is not the certificate's: one line, exit 2, nothing sent
    bad = data.parent / "mismatched"
    bad.mkdir()
    (bad / "key.pem").write_bytes((data / "identities" / "legal" / "key.pem").read_bytes())
    (bad / "cert.pem").write_bytes((data / "identities" / "court" / "cert.pem").read_bytes())
    out = rx("identity", "show", "--as", str(bad), "--api", nodes["sup1"]["api"])
    assert out.returncode == 2 and "do not match" in out.stderr and "Traceback" not in out.stderr


def test_independent_client_following_the_document(consortium) -> None:
    """Headers built from docs/api-auth.md with ledger.crypto only (not api.signing)."""
    data, nodes, _ = consortium
    ident = Identity.load(data / "identities" / "platform-b")
    ts, nonce, target = int(time.time()), os.urandom(16).hex(), "/v1/identity?role=platform"
    body_sm3 = sm3(b"").hex()
    text = f"RONGXIN-SM2-SM3-1\nGET\n{target}\n{body_sm3}\n{ts}\n{nonce}".encode()
    sig = ident.key.sign(text, b"1234567812345678")
    headers = {"X-Rongxin-Certificate": base64.b64encode(ident.certificate.der).decode(),
               "X-Rongxin-Signature": base64.b64encode(sig).decode(), "X-Rongxin-Timestamp": str(ts),
               "X-Rongxin-Nonce": nonce, "X-Rongxin-Content-SM3": body_sm3}
    status, out = call(nodes["val3"]["api"] + target, headers=headers)
    assert status == 200 and out["common_name"] == "platform-b", out


def test_each_refusal_has_its_code(consortium) -> None:
    data, nodes, _ = consortium
    api = nodes["val1"]["api"]
    holder = Identity.load(data / "identities" / "holder")

    def signed(target: str = "/v1/identity", body: bytes = b"", **kw: Any) -> dict[str, str]:
        return sign_request(holder.key, holder.certificate, "GET", target, body, **kw)

    assert refused(api, {}) == (401, "auth_missing")
    h = signed()
    del h["X-Rongxin-Nonce"]
    assert refused(api, h) == (401, "auth_missing")
    assert refused(api, {**signed(), "X-Rongxin-Timestamp": "12e3"}) == (401, "auth_malformed")
    assert refused(api, {**signed(), "X-Rongxin-Certificate": "%%%"}) == (401, "auth_malformed")
    assert refused(api, {**signed(), "X-Rongxin-Certificate": base64.b64encode(b"junk").decode()}) == \
        (401, "auth_bad_certificate")
    # bad signature: another request's signature, and one byte flipped
    other = signed("/v1/status")
    assert refused(api, {**signed(), "X-Rongxin-Signature": other["X-Rongxin-Signature"]}) == (401, "auth_bad_signature")
    raw = bytearray(base64.b64decode(signed()["X-Rongxin-Signature"]))
    raw[-3] ^= 1
    assert refused(api, {**signed(), "X-Rongxin-Signature": base64.b64encode(bytes(raw)).decode()})[1] == \
        "auth_bad_signature"
    # body changed: the same signed hash, another body; or the hash header changed with it
    assert refused(api, signed(body=b"one"), body=b"two") == (401, "auth_body_mismatch")
    assert refused(api, {**signed(body=b"one"), "X-Rongxin-Content-SM3": sm3(b"two").hex()},
                   body=b"two") == (401, "auth_bad_signature")
    # path changed (the query is signed too)
    assert refused(api, signed("/v1/identity?role=holder"), "/v1/identity?role=court") == (401, "auth_bad_signature")
    assert refused(api, signed("/v1/identity"), "/v1/identity?role=holder") == (401, "auth_bad_signature")
    # stale and future timestamps (the window is 300 s)
    assert refused(api, signed(timestamp=int(time.time()) - 400)) == (401, "auth_stale")
    assert refused(api, signed(timestamp=int(time.time()) + 400)) == (401, "auth_future")
    # wrong business role
    assert refused(api, signed("/v1/identity?role=court"), "/v1/identity?role=court") == (403, "auth_role")


def test_certificates_and_records_refused(consortium) -> None:
    data, nodes, _ = consortium
    api = nodes["val4"]["api"]
    ca = ConsortiumCA(data / "ca")
    # another root, same names
    other_ca = ConsortiumCA.init(data.parent / "other-ca", "Rongxin Local Consortium")
    k = SM2PrivateKey.generate()
    foreign = other_ca.issue(kind="user", name="legal", org="Demo Legal Centre", public_key=k.public_key(),
                             business="legal")
    assert refused(api, sign_request(k, foreign, "GET", "/v1/identity")) == (401, "auth_untrusted")
    # expired
    k = SM2PrivateKey.generate()
    now = dt.datetime.now(dt.UTC)
    old = ca.issue(kind="user", name="old", org="Demo Legal Centre", public_key=k.public_key(), business="legal",
                   not_before=now - dt.timedelta(days=30), not_after=now - dt.timedelta(days=1))
    assert refused(api, sign_request(k, old, "GET", "/v1/identity")) == (401, "auth_expired")
    # issued by the consortium but never registered
    k = SM2PrivateKey.generate()
    fresh = ca.issue(kind="user", name="fresh", org="Demo Legal Centre", public_key=k.public_key(), business="legal")
    assert refused(api, sign_request(k, fresh, "GET", "/v1/identity")) == (403, "auth_unregistered")
    # registered, then revoked on chain by itself (user.revoke)
    gone = register(api, ca, "gone", "court")
    client = LedgerClient(api, identity=gone)
    assert client.whoami()["business"] == "court"
    rec = client.wait(client.submit(client.build("user.revoke", {"account": gone.account, "reason": "left"})),
                      60, certified=False)
    assert rec["receipt"]["code"] == 0, rec["receipt"]
    with pytest.raises(ClientError) as err:
        client.whoami()
    assert (err.value.status, err.value.code) == (403, "auth_user_revoked")
    # registered, then revoked by the CA: the node reads the consortium's CRL
    crl_victim = register(api, ca, "crl-victim", "holder")
    assert LedgerClient(api, identity=crl_victim).whoami()["business"] == "holder"
    ca.revoke(crl_victim.certificate.serial, "key_compromise")
    with pytest.raises(ClientError) as err:
        LedgerClient(api, identity=crl_victim).whoami()
    assert (err.value.status, err.value.code) == (401, "auth_revoked")
    # the on-chain record binds another certificate for the same key
    base = register(api, ca, "base", "platform")
    twin = ca.issue(kind="user", name="twin", org="Demo Legal Centre", public_key=base.key.public_key(),
                    business="platform")
    assert account_of(twin.public_key().point) == base.account
    with pytest.raises(ClientError) as err:
        LedgerClient(api, identity=Identity(base.key, twin)).whoami()
    assert (err.value.status, err.value.code) == (403, "auth_certificate_mismatch")


def test_replay_refused_also_after_restart(consortium, rx) -> None:
    data, nodes, _ = consortium
    node = nodes["val2"]
    api = node["api"]
    court = Identity.load(data / "identities" / "court")
    h = sign_request(court.key, court.certificate, "GET", "/v1/identity")
    status, out = call(api + "/v1/identity", headers=h)
    assert status == 200 and out["common_name"] == "court"
    assert refused(api, h) == (401, "auth_replay")
    # the same nonce under a new signature (same signer, another target) is a replay too
    h2 = sign_request(court.key, court.certificate, "GET", "/v1/identity?role=court", nonce=h["X-Rongxin-Nonce"])
    assert refused(api, h2, "/v1/identity?role=court") == (401, "auth_replay")
    folder = Path(node["data"])
    os.kill(int((folder / "pid").read_text()), signal.SIGTERM)
    deadline = time.monotonic() + 30
    while is_running(folder) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not is_running(folder)
    up = rx("up", "--detach", "--data", str(data), timeout=120)
    assert up.returncode == 0, up.stderr
    assert refused(api, h) == (401, "auth_replay")
    fresh = sign_request(court.key, court.certificate, "GET", "/v1/identity")
    status, out = call(api + "/v1/identity", headers=fresh)
    assert status == 200, out
