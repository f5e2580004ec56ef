"""The Python SDK: build, sign and submit transactions to a node, and wait for commit.

    from api.sdk import LedgerClient
    client = LedgerClient("http://127.0.0.1:26601", key=SM2PrivateKey.generate())
    receipt = client.submit_and_wait("kv.set", {"key": "title", "value": "县域融媒体"})

Standard library only (``urllib``), so a script or a court's tool can use it as is.
"""

from __future__ import annotations

import json
import ssl
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from ledger.contracts.context import account_of
from ledger.crypto import Certificate, CryptoError, SM2PrivateKey
from ledger.crypto.ca import ConsortiumCA
from ledger.errors import LedgerError
from ledger.files import FileInputError, read_regular
from ledger.tx import Transaction

from .signing import sign_request

DEFAULT_TTL_BLOCKS = 100_000


class ClientError(LedgerError):
    """The node refused a request, or could not be reached; the message says which.
    ``status`` is the HTTP status and ``code`` the error code of the node's answer (both
    ``None`` when the node was not reached)."""

    def __init__(self, message: str, status: int | None = None, code: str | None = None) -> None:
        super().__init__(message)
        self.status, self.code = status, code


def error_of(status: int, body: Any) -> ClientError:
    """The node's uniform error body ``{"error": {"code", "message", "details"}}`` as an exception."""
    err = body.get("error") if isinstance(body, dict) else None
    if isinstance(err, dict):
        return ClientError(str(err.get("message", status)), status, str(err.get("code", "")))
    return ClientError(f"HTTP {status}", status)


class IdentityError(LedgerError):
    """An identity folder that cannot be used: the message names the file and the reason."""


class Identity:
    """A signing identity: an SM2 key and the consortium certificate for it. On disk an
    ``ID_DIR`` holding ``key.pem`` (PKCS#8, unencrypted) and ``cert.pem``."""

    def __init__(self, key: SM2PrivateKey, certificate: Certificate) -> None:
        if key.public_key() != certificate.public_key():
            raise IdentityError(f"the key is not the one certificate {certificate.common_name!r} was issued for")
        self.key, self.certificate = key, certificate

    @classmethod
    def load(cls, folder: str | Path) -> Identity:
        folder = Path(folder)
        if not folder.is_dir():
            raise IdentityError(f"identity folder {folder} does not exist (it holds key.pem and cert.pem)")
        try:
            key_pem, cert_pem = (read_regular(folder / n, 1 << 20) for n in ("key.pem", "cert.pem"))
        except FileInputError as exc:
            raise IdentityError(f"identity {folder}: {exc}") from None
        try:
            key = SM2PrivateKey.load(key_pem)
        except CryptoError as exc:
            raise IdentityError(f"identity {folder}: key.pem is not a usable SM2 private key: {exc}") from None
        try:
            cert = Certificate.load(cert_pem)
        except CryptoError as exc:
            raise IdentityError(f"identity {folder}: cert.pem is not a usable SM2 certificate: {exc}") from None
        try:
            return cls(key, cert)
        except IdentityError as exc:
            raise IdentityError(f"identity {folder}: key.pem and cert.pem do not match ({exc})") from None

    @property
    def name(self) -> str:
        return self.certificate.common_name

    @property
    def account(self) -> str:
        return account_of(self.key.public_key().point)

    def headers(self, method: str, target: str, body: bytes = b"") -> dict[str, str]:
        """The signature headers of one request (docs/api-auth.md)."""
        return sign_request(self.key, self.certificate, method, target, body)


class LedgerClient:
    """A client of one node. With ``identity`` every request is signed (docs/api-auth.md) and
    transactions are signed by the identity's key unless ``key`` is given."""

    def __init__(self, api: str, key: SM2PrivateKey | None = None, *, identity: Identity | None = None,
                 timeout: float = 30.0, ca_file: str | Path | None = None) -> None:
        if not api.startswith(("http://", "https://")):
            raise ClientError(f"node address must be http:// or https://, not {api!r}")
        #: for https:// nodes: the system's trusted CAs, or only ``ca_file`` (PEM; for a node
        #: serving its transport certificate, ``DATA/ca/transport-ca.crt.pem``); hostnames checked
        self.tls: ssl.SSLContext | None = None
        if ca_file is not None:
            try:
                self.tls = ssl.create_default_context(cafile=str(ca_file))
            except (OSError, ssl.SSLError) as exc:
                raise ClientError(f"CA file {ca_file} cannot be used: {exc}") from None
        self.api = api.rstrip("/")
        self.identity = identity
        self.key = key if key is not None or identity is None else identity.key
        self.timeout = timeout
        self._chain: str | None = None

    # ------------------------------------------------------------ HTTP
    def _request(self, method: str, path: str, body: bytes | None = None) -> tuple[int, Any]:
        headers = {"content-type": "application/json"}
        if self.identity is not None:
            headers.update(self.identity.headers(method, path, body or b""))
        req = urllib.request.Request(self.api + path, data=body, method=method,  # noqa: S310 - scheme checked
                                     headers=headers)
        try:
            with urllib.request.urlopen(req, timeout=self.timeout, context=self.tls) as r:  # noqa: S310
                return r.status, json.load(r)
        except urllib.error.HTTPError as exc:
            try:
                return exc.code, json.load(exc)
            except ValueError:
                return exc.code, {"error": {"code": "http_error", "message": str(exc.reason), "details": None}}
        except (urllib.error.URLError, OSError) as exc:
            raise ClientError(f"cannot reach {self.api}: {exc}") from None

    def subscribe(self, topic: str, *, from_height: int | None = None, retry_s: float = 1.0,
                  max_retries: int | None = None, **filters: str) -> Iterator[dict[str, Any]]:
        """Items of a ``/v1/ws`` subscription; reconnects and resumes (``api/sdk_ws.py``)."""
        from .sdk_ws import subscribe

        return subscribe(self, topic, from_height=from_height, retry_s=retry_s, max_retries=max_retries, **filters)

    def status(self) -> dict[str, Any]:
        code, body = self._request("GET", "/v1/status")
        if code != 200:
            err = error_of(code, body)
            raise ClientError(f"status: {err}", code, err.code)
        return dict(body)

    def whoami(self, role: str | None = None) -> dict[str, Any]:
        """``GET /v1/identity``: this client's identity as the node sees it (needs ``identity``);
        with ``role`` the node also checks the identity holds that business role."""
        if self.identity is None:
            raise ClientError("this client has no identity to sign with")
        query = "?" + urllib.parse.urlencode({"role": role}) if role else ""
        code, body = self._request("GET", "/v1/identity" + query)
        if code != 200:
            err = error_of(code, body)
            raise ClientError(f"identity: {err}", code, err.code)
        return dict(body)

    def state_json(self, key: str) -> Any:
        """The JSON value under state ``key`` (e.g. ``sys/user/<account>``), ``None`` when absent."""
        code, body = self._request("GET", "/v1/state/" + urllib.parse.quote(key, safe="/"))
        if code == 404:
            return None
        if code != 200:
            raise error_of(code, body)
        try:
            return json.loads(body["value"])
        except (TypeError, ValueError, KeyError):
            raise ClientError(f"state {key!r} does not hold JSON") from None

    def block(self, height: int) -> dict[str, Any]:
        code, body = self._request("GET", f"/v1/blocks/{height}")
        if code != 200:
            err = error_of(code, body)
            raise ClientError(f"block {height}: {err}", code, err.code)
        return dict(body)

    def tx(self, tx_id: str) -> dict[str, Any]:
        """The node's record of a transaction; ``{"id", "status": "unknown"}`` when it has none."""
        code, body = self._request("GET", f"/v1/txs/{tx_id}")
        if code == 404:
            return {"id": tx_id, "status": "unknown"}
        if code != 200:
            raise error_of(code, body)
        return dict(body)

    # ------------------------------------------------------------ transactions
    @property
    def chain(self) -> str:
        if self._chain is None:
            self._chain = str(self.status()["chain"])
        return self._chain

    def build(self, type_: str, payload: dict[str, Any], *, ttl_blocks: int = DEFAULT_TTL_BLOCKS,
              nonce: int | None = None) -> Transaction:
        if self.key is None:
            raise ClientError("this client has no signing key")
        height = int(self.status()["height"])
        return Transaction.build(self.key, chain=self.chain, type=type_, payload=payload,
                                 expiry=height + ttl_blocks, nonce=nonce)

    def submit(self, tx: Transaction) -> str:
        code, body = self._request("POST", "/v1/txs", tx.encode())
        if code not in (200, 202):
            err = error_of(code, body)
            raise ClientError(f"transaction refused: {err}", code, err.code)
        return str(body["id"])

    def submit_many(self, txs: Sequence[Transaction]) -> list[dict[str, Any]]:
        body = b'{"txs":[' + b",".join(t.encode() for t in txs) + b"]}"
        code, out = self._request("POST", "/v1/txs", body)
        if code != 200:
            err = error_of(code, out)
            raise ClientError(f"batch refused: {err}", code, err.code)
        return list(out["results"])

    def wait(self, tx_id: str, timeout: float = 60.0, poll: float = 0.2, *,
             certified: bool = True) -> dict[str, Any]:
        """Block until the transaction is committed and, with ``certified``, until a committed
        header certifies its block's results root (so ``receipt_proof`` is complete: its
        ``certified_in`` names that block; docs/transactions.md §10). Returns its record
        (receipt, inclusion proof, receipt proof)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            rec = self.tx(tx_id)
            if rec.get("status") == "committed":
                proof = rec.get("receipt_proof")
                if not certified or not isinstance(proof, dict) or proof.get("certified_in") is not None:
                    return rec
            time.sleep(poll)
        raise ClientError(f"transaction {tx_id} not committed (and certified) within {timeout} s")

    def submit_and_wait(self, type_: str, payload: dict[str, Any], timeout: float = 60.0) -> dict[str, Any]:
        return self.wait(self.submit(self.build(type_, payload)), timeout)

    # ------------------------------------------------------------ works registry (api/sdk_works.py)
    def register_work(self, path: str | Path, attributes: dict[str, Any], *, pledge: str | None = None,
                      out: str | Path | None = None, timeout: float = 90.0) -> dict[str, Any]:
        """Register a work end to end (``sdk_works.register_work``); needs ``identity``."""
        from . import sdk_works

        return sdk_works.register_work(self, path, attributes, pledge=pledge or sdk_works.DEFAULT_PLEDGE, out=out,
                                       timeout=timeout)

    def prepare_work(self, path: str | Path, attributes: dict[str, Any], *, pledge: str | None = None) -> dict[str, Any]:
        """``POST /v1/works``: the node's prepared, countersigned registration."""
        from . import sdk_works

        return sdk_works.prepare_work(self, path, attributes, pledge=pledge or sdk_works.DEFAULT_PLEDGE)

    def work(self, work_id: str) -> dict[str, Any]:
        """``GET /v1/works/{id}``: a work's public registration record."""
        from . import sdk_works

        return sdk_works.get_work(self, work_id)

    def work_certificate(self, work_id: str, out: str | Path) -> Path:
        """``GET /v1/works/{id}/certificate`` written to ``out`` (a file, or a folder)."""
        from . import sdk_works

        return sdk_works.download_certificate(self, work_id, out)

    def blob(self, sm3_hex: str, out: str | Path) -> Path:
        """``GET /v1/blobs/{sm3}`` (signed) streamed to ``out``."""
        from . import sdk_works

        return sdk_works.download_blob(self, sm3_hex, out)

    # ------------------------------------------------------------ evidence and cases (api/sdk_evidence.py)
    def file_evidence(self, files: Sequence[str | Path], work_id: str, **case: Any) -> dict[str, Any]:
        """Upload, match, sign and file evidence (a legal centre); see ``sdk_evidence.file_evidence``."""
        from . import sdk_evidence

        return sdk_evidence.file_evidence(self, files, work_id, **case)

    def export_evidence(self, evidence_id: str, out: str | Path) -> Path:
        """The signed evidence package of ``evidence_id`` written to ``out``."""
        from . import sdk_evidence

        return sdk_evidence.export_evidence(self, evidence_id, out)

    def evidence(self, evidence_id: str) -> dict[str, Any]:
        from . import sdk_evidence

        return sdk_evidence.show_evidence(self, evidence_id)

    def case(self, case_id: str) -> dict[str, Any]:
        from . import sdk_evidence

        return sdk_evidence.show_case(self, case_id)

    def move_case(self, case_id: str, to: str, note: str = "") -> dict[str, Any]:
        from . import sdk_evidence

        return sdk_evidence.move_case(self, case_id, to, note)


# ------------------------------------------------------------ users (a permissioned chain)
def registration(ca: ConsortiumCA, key: SM2PrivateKey, *, chain: str, org: str, expiry: int,
                 role: str = "user", name: str | None = None) -> Transaction:
    """A ``user.register`` transaction for ``key``, carrying a user certificate the consortium
    CA ``ca`` issues now for organisation ``org`` (a member of the consortium)."""
    account = account_of(key.public_key().point)
    cert = ca.issue(kind="user", name=name or f"user-{account[:16]}", org=org, role=role,
                    public_key=key.public_key())
    return Transaction.build(key, chain=chain, type="user.register",
                             payload={"certificate": cert.to_pem().decode()}, expiry=expiry)


def register_users(api: str, data: str | Path, keys: Sequence[SM2PrivateKey], *, org: str | None = None,
                   timeout: float = 120.0) -> list[str]:
    """Bind ``keys`` to user certificates of the consortium in folder ``data`` (its CA in
    ``data/ca``; ``org`` defaults to the organisation of the first genesis validator) on the
    chain served at ``api``, and wait until every registration is committed. On a chain that
    is permissioned (the default) a key transacts only once registered. Returns the accounts;
    raises ``ClientError`` if a registration is refused."""
    data = Path(data)
    if org is None:
        org = str(json.loads((data / "genesis.json").read_text())["validators"][0]["org"])
    ca = ConsortiumCA(data / "ca")
    client = LedgerClient(api)
    status = client.status()
    txs = [registration(ca, k, chain=str(status["chain"]), org=org, expiry=int(status["height"]) + DEFAULT_TTL_BLOCKS)
           for k in keys]
    for i in range(0, len(txs), 500):
        for res in client.submit_many(txs[i:i + 500]):
            if res.get("accepted") is False:
                raise ClientError(f"user.register refused: {res.get('reason')}")
    top = 0
    for tx in txs:
        rec = client.wait(tx.id_hex, timeout)
        receipt = rec["receipt"]
        if receipt["code"] != 0 and "already registered" not in receipt["info"]:
            raise ClientError(f"user.register of {account_of(tx.sender)} refused: {receipt['info']}")
        top = max(top, int(rec.get("height", 0)))
    _settle(data, top)
    return [account_of(k.public_key().point) for k in keys]


def _settle(data: Path, height: int, timeout: float = 30.0, stall: float = 10.0) -> None:
    """Wait (at most ``timeout`` s in all) until every node of the running consortium
    (``data/cluster.json``, when present) has committed ``height``: each node's mempool admits
    a user only once it has committed the registration. A node that does not answer is left
    at once, and one that answers but has not moved for ``stall`` s (stopped, cut off from
    its peers, evicted) is left then: waiting on either could never end before ``timeout``."""
    try:
        nodes = json.loads((data / "cluster.json").read_text())["nodes"]
    except (OSError, ValueError, KeyError):
        return
    deadline = time.monotonic() + timeout
    for node in nodes:
        peer = LedgerClient(str(node["api"]), timeout=2.0)
        seen, moved = -1, time.monotonic()
        while time.monotonic() < deadline:
            try:
                now = int(peer.status()["height"])
            except (ClientError, KeyError, ValueError, TypeError):
                break
            if now >= height:
                break
            if now > seen:
                seen, moved = now, time.monotonic()
            elif time.monotonic() - moved > stall:
                break
            time.sleep(0.1)
