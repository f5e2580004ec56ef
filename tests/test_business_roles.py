"""Business roles in user certificates (``businessCategory``), their record on chain
(``user.register`` writes ``business``), and the nonce store of signed requests."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from types import SimpleNamespace
from typing import Annotated

import pytest
from fastapi import Depends, FastAPI, Request
from fastapi.testclient import TestClient

from api import errors
from api.auth import Authenticator, refuse, require
from api.auth import Identity as Signer
from api.errors import ApiError
from api.nonces import NonceStore
from api.sdk import Identity, IdentityError
from api.signing import canonical_request, sign_request
from ledger.contracts.context import account_of
from ledger.crypto import CAError, Certificate, SM2PrivateKey, sm3
from ledger.crypto.ca import ConsortiumCA
from ledger.node.abci import OK

from .node.test_governance import World


@pytest.fixture
def ca(tmp_path: Path) -> ConsortiumCA:
    return ConsortiumCA.init(tmp_path / "ca", "Test Consortium")


def test_business_role_round_trips_and_is_refused_where_it_does_not_belong(ca: ConsortiumCA) -> None:
    key = SM2PrivateKey.generate()
    for business in ("holder", "legal", "court", "platform", "regulator"):
        cert = Certificate.load(ca.issue(kind="user", name=f"u-{business}", org="O", public_key=key.public_key(),
                                         business=business).to_pem())
        assert cert.business == business and cert.role == "user" and cert.info().business == business
    assert ca.issue(kind="user", name="plain", org="O", public_key=key.public_key()).business is None
    with pytest.raises(CAError):
        ca.issue(kind="user", name="x", org="O", public_key=key.public_key(), business="pirate")
    with pytest.raises(CAError):
        ca.issue(kind="node", name="n1", org="O", role="consensus", public_key=key.public_key(), business="court")


def test_openssl_reads_the_business_category(ca: ConsortiumCA, tmp_path: Path, openssl) -> None:
    key = SM2PrivateKey.generate()
    cert = ca.issue(kind="user", name="court", org="Internet Court", public_key=key.public_key(), business="court")
    path = tmp_path / "c.pem"
    path.write_bytes(cert.to_pem())
    out = openssl("x509", "-in", str(path), "-noout", "-subject", "-nameopt", "RFC2253").stdout
    assert "businessCategory=court" in out and "CN=court" in out


def test_cli_issues_with_business(ca: ConsortiumCA, tmp_path: Path, rx) -> None:
    out = rx("ca", "issue", "--dir", str(ca.folder), "--kind", "user", "--name", "legal", "--org", "Legal",
             "--business", "legal", "--new-key", str(tmp_path / "k.pem"), "--out", str(tmp_path / "c.pem"), "--json")
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["business"] == "legal"
    assert Certificate.load((tmp_path / "c.pem").read_bytes()).business == "legal"
    bad = rx("ca", "issue", "--dir", str(ca.folder), "--kind", "node", "--role", "full", "--name", "n", "--org", "O",
             "--business", "legal", "--new-key", str(tmp_path / "k2.pem"), "--out", str(tmp_path / "c2.pem"))
    assert bad.returncode == 2 and "--business" in bad.stderr and "Traceback" not in bad.stderr


def test_user_register_records_business(tmp_path: Path) -> None:
    w = World(tmp_path)
    for name, business in (("lc", "legal"), ("nobody", None)):
        key = SM2PrivateKey.generate()
        cert = w.ca.issue(kind="user", name=name, org="org", public_key=key.public_key(), business=business)
        w.keys[name] = key
        assert w.run(w.tx(name, "user.register", {"certificate": cert.to_pem().decode()})) == [(OK, "ok")]
        rec = w.gov.user(w.app.read, account_of(key.public_key().point))
        assert rec is not None and "business" in rec and rec["business"] == business


def test_identity_folder_errors(ca: ConsortiumCA, tmp_path: Path) -> None:
    key, other = SM2PrivateKey.generate(), SM2PrivateKey.generate()
    cert = ca.issue(kind="user", name="h", org="O", public_key=key.public_key(), business="holder")
    folder = tmp_path / "id"
    with pytest.raises(IdentityError, match="does not exist"):
        Identity.load(folder)
    folder.mkdir()
    (folder / "cert.pem").write_bytes(cert.to_pem())
    with pytest.raises(IdentityError, match=r"key\.pem"):
        Identity.load(folder)
    (folder / "key.pem").write_bytes(b"not a key")
    with pytest.raises(IdentityError, match="not a usable SM2 private key"):
        Identity.load(folder)
    (folder / "key.pem").write_bytes(other.to_pem())
    with pytest.raises(IdentityError, match="do not match"):
        Identity.load(folder)
    (folder / "key.pem").write_bytes(key.to_pem())
    ident = Identity.load(folder)
    h = ident.headers("POST", "/v1/x?a=1", b"body")
    text = canonical_request("POST", "/v1/x?a=1", sm3(b"body").hex(), int(h["X-Rongxin-Timestamp"]),
                             h["X-Rongxin-Nonce"])
    assert text.split(b"\n")[0] == b"RONGXIN-SM2-SM3-1" and len(text.split(b"\n")) == 6
    key.public_key().verify(base64.b64decode(h["X-Rongxin-Signature"]), text)
    assert sign_request(key, cert, "GET", "/")["X-Rongxin-Nonce"] != h["X-Rongxin-Nonce"]


def test_nonce_store_refuses_replays_across_reopen_and_stays_bounded(tmp_path: Path) -> None:
    path = tmp_path / "nonces.sqlite"
    store = NonceStore(path, max_entries=3)
    assert store.use("a", "n1", expires=1300, now=1000)
    assert not store.use("a", "n1", expires=1300, now=1001)
    assert store.use("b", "n1", expires=1300, now=1001)  # per signer
    store.close()
    store = NonceStore(path, max_entries=3)
    assert not store.use("a", "n1", expires=1300, now=1002)  # survives a restart
    assert store.use("a", "n2", expires=1300, now=1002)
    with pytest.raises(ApiError) as err:  # full of live nonces: refuse rather than forget
        store.use("a", "n3", expires=1300, now=1002)
    assert (err.value.status, err.value.code) == (503, "auth_busy")
    assert store.use("a", "n3", expires=2000, now=1301)  # expired ones pruned
    store.close()


def test_require_dependency_checks_roles_and_streamed_bodies(tmp_path: Path) -> None:
    """``require(roles=...)`` on routes of an app over real governance state (an executed
    ``user.register``): the role a route admits, and a streamed body checked by the route."""
    w = World(tmp_path)
    key = SM2PrivateKey.generate()
    cert = w.ca.issue(kind="user", name="lc", org="org", public_key=key.public_key(), business="legal")
    w.keys["lc"] = key
    assert w.run(w.tx("lc", "user.register", {"certificate": cert.to_pem().decode()})) == [(OK, "ok")]
    app = FastAPI()
    app.state.auth = Authenticator(SimpleNamespace(app=w.app))  # type: ignore[arg-type]
    errors.install(app)

    @app.post("/court-only")
    async def court_only(ident: Annotated[Signer, Depends(require(roles=("court",)))]) -> dict[str, str]:
        return {"who": ident.common_name}

    @app.post("/legal-stream")
    async def legal_stream(ident: Annotated[Signer, Depends(require(roles=("legal", "court"), stream_body=True))],
                           request: Request) -> dict[str, str]:
        got = b"".join([chunk async for chunk in request.stream()])
        if sm3(got).hex() != ident.body_sm3:
            raise refuse("auth_body_mismatch", "streamed body differs")
        return {"who": ident.common_name, "business": str(ident.business)}

    with TestClient(app) as client:
        r = client.post("/court-only", content=b"x", headers=sign_request(key, cert, "POST", "/court-only", b"x"))
        assert (r.status_code, r.json()["error"]["code"]) == (403, "auth_role")
        h = sign_request(key, cert, "POST", "/legal-stream", b"payload")
        r = client.post("/legal-stream", content=b"payload", headers=h)
        assert r.status_code == 200 and r.json() == {"who": "lc", "business": "legal"}
        h = sign_request(key, cert, "POST", "/legal-stream", b"payload")
        r = client.post("/legal-stream", content=b"PAYLOAD", headers=h)
        assert (r.status_code, r.json()["error"]["code"]) == (401, "auth_body_mismatch")
    with pytest.raises(ValueError):
        require(roles=("pirate",))


def test_demo_identity_files_are_kept_or_reissued(tmp_path: Path) -> None:
    from api.identities import _on_disk

    ca = ConsortiumCA.init(tmp_path / "ca", "X")
    first = _on_disk(tmp_path, ca, "court", "court", "Court Org")
    assert _on_disk(tmp_path, ca, "court", "court", "Court Org").certificate == first.certificate  # kept
    (tmp_path / "identities" / "court" / "cert.pem").write_bytes(b"damaged")
    second = _on_disk(tmp_path, ca, "court", "court", "Court Org")
    assert second.certificate != first.certificate and second.certificate.business == "court"
    other = ConsortiumCA.init(tmp_path / "other", "X")  # a folder left from another consortium
    third = _on_disk(tmp_path, other, "court", "court", "Court Org")
    assert third.certificate.check_signed_by(other.root) is None and third.certificate != second.certificate
