"""The works registry in the SDK (``LedgerClient.register_work`` and friends; docs/api.md
"Works"). Uploads stream from disk and downloads stream to disk: a large file is never held in
memory. Standard library only, like ``api.sdk``.

    client = LedgerClient(api, identity=Identity.load("DATA/identities/holder"))
    reg = client.register_work("work.png", {"title": "星空", "type": "picture"}, out_dir=".")
    reg["work_id"], reg["conflicts"], reg["certificate"]
"""

from __future__ import annotations

import base64
import json
import os
import secrets
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path
from typing import TYPE_CHECKING, Any

from forensics.rules import pledge_message, sign
from ledger.crypto import sm3_file

from .sdk_check import check_registration, hash_files
from .signing import SIGNER_ID, canonical_request, new_nonce

if TYPE_CHECKING:
    from .sdk import LedgerClient

DEFAULT_PLEDGE = "I declare this work is my original creation. / 本人声明该作品为本人原创。"
CHUNK = 1 << 20
REGISTER_ATTEMPTS = 3
PREPARE_AGAIN = "prepare the registration again"  # the contract's words for an overtaken countersignature


def _signed_headers(client: LedgerClient, method: str, target: str, body_sm3: str) -> dict[str, str]:
    from .signing import H_BODY, H_CERT, H_NONCE, H_SIG, H_TIME

    ident = client.identity
    if ident is None:
        from .sdk import ClientError

        raise ClientError("this client has no identity to sign with")
    import time

    ts, nonce = int(time.time()), new_nonce()
    sig = ident.key.sign(canonical_request(method, target, body_sm3, ts, nonce), SIGNER_ID)
    return {H_CERT: base64.b64encode(ident.certificate.der).decode(), H_SIG: base64.b64encode(sig).decode(),
            H_TIME: str(ts), H_NONCE: nonce, H_BODY: body_sm3}


def _open(client: LedgerClient, method: str, target: str, *, upload: Path | None = None,
          signed: bool = False, content_type: str = "application/octet-stream", upload_sm3: str | None = None) -> Any:
    """An open HTTP response for 2xx; a ``ClientError`` with the node's error otherwise."""
    from .sdk import ClientError, error_of

    headers: dict[str, str] = {}
    data = None
    if upload is not None:
        size = upload.stat().st_size
        headers.update({"content-type": content_type, "content-length": str(size)})
        data = upload.open("rb")
        body_sm3 = upload_sm3 if upload_sm3 is not None else sm3_file(upload).hex()
    else:
        from ledger.crypto import sm3

        body_sm3 = sm3(b"").hex()
    if signed:
        headers.update(_signed_headers(client, method, target, body_sm3))
    req = urllib.request.Request(client.api + target, data=data, method=method,  # noqa: S310 - scheme checked
                                 headers=headers)
    try:
        return urllib.request.urlopen(req, timeout=client.timeout, context=client.tls)  # noqa: S310 - scheme checked
    except urllib.error.HTTPError as exc:
        try:
            body = json.load(exc)
        except ValueError:
            body = None
        err = error_of(exc.code, body)
        raise ClientError(f"{method} {target.split('?')[0]}: {err}", exc.code, err.code) from None
    except (urllib.error.URLError, OSError) as exc:
        if upload is not None and isinstance(getattr(exc, "reason", exc), ConnectionError):
            raise ClientError(f"{method} {target.split('?')[0]}: the node closed the connection while the file was "
                              f"being sent (a file over its size limit is refused before it is read)", 413,
                              "body_too_large") from None
        raise ClientError(f"cannot reach {client.api}: {exc}") from None
    finally:
        if data is not None:
            data.close()


def prepare_work(client: LedgerClient, path: str | Path, attributes: dict[str, Any], *, pledge: str = DEFAULT_PLEDGE,
                 ) -> dict[str, Any]:
    """``POST /v1/works``: upload the file with its attributes and the identity's signed
    pledge; the node's prepared registration (``work_id``, ``payload``, ``conflicts``...),
    once ``sdk_check.check_registration`` found its payload names exactly the file read here
    (SM3, size, media type), the attributes and the pledge sent (else ``UnsafeToSign``)."""
    from .sdk import ClientError

    path = Path(path)
    ident = client.identity
    if ident is None:
        raise ClientError("this client has no identity to sign with")
    # a refused identity is answered before the node reads an upload, and the connection is
    # then closed under the sender: ask first, so the refusal arrives whole
    client.whoami("holder")
    try:
        (local,), _ = hash_files([path])
    except OSError as exc:
        raise ClientError(f"{path}: cannot be read: {exc.strerror or exc}") from None
    sig = sign(ident.key, pledge_message(client.chain, ident.account, local.sm3, pledge))
    query = urllib.parse.urlencode({"attributes": json.dumps(attributes, ensure_ascii=False, sort_keys=True),
                                    "pledge": pledge, "pledge_signature": sig})
    with _open(client, "POST", "/v1/works?" + query, upload=path, signed=True, upload_sm3=local.sm3) as r:
        prep = dict(json.load(r))
    check_registration(prep, local=local, attributes=attributes, pledge=pledge, pledge_signature=sig)
    return prep


def get_work(client: LedgerClient, work_id: str) -> dict[str, Any]:
    """``GET /v1/works/{id}``: the public registration record."""
    with _open(client, "GET", "/v1/works/" + urllib.parse.quote(work_id, safe="")) as r:
        return dict(json.load(r))


def _download(resp: Any, out: Path) -> Path:
    tmp = out.with_name(f".{out.name}.{secrets.token_hex(6)}.part")
    try:
        with resp, open(tmp, "wb") as fh:
            while chunk := resp.read(CHUNK):
                fh.write(chunk)
        os.replace(tmp, out)
    finally:
        tmp.unlink(missing_ok=True)
    return out


def download_certificate(client: LedgerClient, work_id: str, out: str | Path) -> Path:
    """``GET /v1/works/{id}/certificate`` written to ``out`` (a folder: ``<work_id>.pdf`` in it)."""
    out = Path(out)
    if out.is_dir():
        out = out / f"{work_id}.pdf"
    return _download(_open(client, "GET", f"/v1/works/{urllib.parse.quote(work_id, safe='')}/certificate"), out)


def download_blob(client: LedgerClient, sm3_hex: str, out: str | Path) -> Path:
    """``GET /v1/blobs/{sm3}`` (signed) streamed to ``out``."""
    return _download(_open(client, "GET", f"/v1/blobs/{sm3_hex}", signed=True), Path(out))


def register_work(client: LedgerClient, path: str | Path, attributes: dict[str, Any], *, pledge: str = DEFAULT_PLEDGE,
                  out: str | Path | None = None, timeout: float = 90.0) -> dict[str, Any]:
    """Prepare, sign and submit the ``works.register`` transaction, wait until its receipt is
    certified, let the node confirm it, and (with ``out``) write the certificate PDF. Returns
    ``{"work_id", "tx_id", "height", "sm3", "conflicts": [{"work_id", "score"}], "certificate",
    "recognition"}`` (``recognition``: how well the work can be recognised, from the node)
    (the conflicts the node matched, and an exact duplicate the contract added itself); a
    refused transaction raises ``ClientError`` with the receipt's reason. A registration
    refused because its countersignature was overtaken by another one or expired
    (docs/works.md §3.6) is prepared and submitted again, up to three times in all."""
    from .sdk import ClientError

    for attempt in range(1, REGISTER_ATTEMPTS + 1):
        prep = prepare_work(client, path, attributes, pledge=pledge)
        tx_id = client.submit(client.build("works.register", prep["payload"]))
        rec = client.wait(tx_id, timeout, certified=False)
        receipt = rec.get("receipt") or {}
        if receipt.get("code") == 0:
            break
        info = str(receipt.get("info"))
        # a countersignature overtaken by another registration (docs/works.md §3.6): match again
        if PREPARE_AGAIN not in info or attempt == REGISTER_ATTEMPTS:
            raise ClientError(f"works.register refused on chain: {info}", 400, "registration_refused")
        time.sleep(0.5 * attempt)
    get_work(client, prep["work_id"])  # the node confirms the registration (indexes it) before answering
    cert = None
    if out is not None:
        cert = str(certify_work(client, prep["work_id"], out, timeout))
    shown = [{"work_id": c["work_id"], "score": float(c["score"])} for c in prep["conflicts"]]
    recorded = ((rec.get("receipt") or {}).get("result") or {}).get("conflicts") or []
    shown += [{"work_id": c["work_id"], "score": c["score_milli"] / 1000} for c in recorded
              if c.get("source") == "contract"]  # an exact duplicate the contract found itself
    return {"work_id": prep["work_id"], "tx_id": tx_id, "height": rec.get("height"), "sm3": prep["sm3"],
            "conflicts": sorted(shown, key=lambda c: str(c["work_id"])), "certificate": cert,
            "recognition": prep.get("recognition") or {}}


def get_proof(client: LedgerClient, work_id: str, timeout: float = 90.0) -> dict[str, Any]:
    """``GET /v1/works/{id}/proof``, once the node can prove the registration: the proof
    needs the block after the one certifying the receipt committed, which the chain adds
    right after a registration (its settlement, docs/spec/consensus.md) even when idle."""
    import time

    from .sdk import ClientError

    deadline = time.monotonic() + timeout
    while True:
        try:
            with _open(client, "GET", f"/v1/works/{urllib.parse.quote(work_id, safe='')}/proof") as r:
                return dict(json.load(r))
        except ClientError as exc:
            if exc.status != 409 or time.monotonic() > deadline:
                raise
        time.sleep(0.1)


def certify_work(client: LedgerClient, work_id: str, out: str | Path, timeout: float = 90.0) -> Path:
    """Build the registration's proof package signed by this client's identity (the holder),
    give it to the node (``PUT /v1/works/{id}/certificate``) and write the PDF it renders to
    ``out`` (a file, or a folder: ``<work_id>.pdf`` in it)."""
    import tempfile

    from forensics.registration import proof_package
    from ledger.crypto import CertificateRevocationList

    ident = client.identity
    if ident is None:
        from .sdk import ClientError

        raise ClientError("this client has no identity to sign with")
    proof = get_proof(client, work_id, timeout)
    pkg = proof_package(proof["bundle"], holder_key=ident.key, holder_cert=ident.certificate,
                        crl=CertificateRevocationList.load(proof["crl"].encode()),
                        validator_certificates=[v.encode() for v in proof["validators"]])
    out = Path(out)
    if out.is_dir():
        out = out / f"{work_id}.pdf"
    with tempfile.TemporaryDirectory(prefix="rongxin-proof-") as tmp:
        zpath = Path(tmp) / "proof.zip"
        zpath.write_bytes(pkg)
        resp = _open(client, "PUT", f"/v1/works/{urllib.parse.quote(work_id, safe='')}/certificate", upload=zpath,
                     signed=True, content_type="application/zip")
    return _download(resp, out)
