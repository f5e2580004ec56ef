"""The SDK's evidence and case calls (docs/api.md, "Evidence and cases"), used through
``LedgerClient.file_evidence``, ``export_evidence``, ``case``, ``move_case``.

Uploads are streamed from the files (hashed once for the request signature, then sent in 1 MiB
chunks); a package is streamed to ``OUT.part``, signed (``manifest.sig`` added) and renamed.
"""

from __future__ import annotations

import http.client
import io
import json
import os
import socket
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from forensics.package.export import ExportError, sign_package
from forensics.package.export import Identity as PackageFiler
from forensics.rules import manifest_message, sign

from .sdk_check import LocalFile, UnsafeToSign, check_filing, check_package, hash_files

if TYPE_CHECKING:
    from .sdk import LedgerClient

CHUNK = 1 << 20
MAX_HEAD = 64 * 1024  # bytes of a response head read before the body is sent
PACKAGE_WAIT_S = 150.0  # a just-filed statement is provable once the block after its certifying block commits


def _errors() -> tuple[type[Exception], Any]:
    from .sdk import ClientError, error_of

    return ClientError, error_of


def _need_identity(client: LedgerClient) -> Any:
    if client.identity is None:
        ClientError, _ = _errors()
        raise ClientError("this client has no identity to sign with")
    return client.identity


def _open(client: LedgerClient, method: str, target: str, body: Any, body_sm3: bytes | None, size: int | None,
          timeout: float | None = None) -> Any:
    """Send a signed request whose body is ``body`` (bytes or an iterator of chunks)."""
    from ledger.crypto import sm3

    ident = _need_identity(client)
    # a streamed body is signed by its hash, computed beforehand
    headers = _sign_hash(ident, method, target, (body_sm3 if body_sm3 is not None else sm3(b"")).hex())
    headers["content-type"] = "application/octet-stream" if size is not None else "application/json"
    if size is not None:
        headers["content-length"] = str(size)
    req = urllib.request.Request(client.api + target, data=body, method=method, headers=headers)  # noqa: S310
    ClientError, error_of = _errors()
    try:
        return urllib.request.urlopen(req, timeout=timeout or client.timeout,  # noqa: S310 - scheme checked
                                      context=client.tls)
    except urllib.error.HTTPError as exc:
        try:
            body_json = json.load(exc)
        except ValueError:
            body_json = {"error": {"code": "http_error", "message": str(exc.reason), "details": None}}
        raise error_of(exc.code, body_json) from None
    except (urllib.error.URLError, OSError) as exc:
        raise ClientError(f"cannot reach {client.api}: {exc}") from None


def _sign_hash(ident: Any, method: str, target: str, body_sm3: str) -> dict[str, str]:
    import base64

    from .signing import H_BODY, H_CERT, H_NONCE, H_SIG, H_TIME, SIGNER_ID, canonical_request, new_nonce

    ts, nonce = int(time.time()), new_nonce()
    sig = ident.key.sign(canonical_request(method, target, body_sm3, ts, nonce), SIGNER_ID)
    return {H_CERT: base64.b64encode(ident.certificate.der).decode(), H_SIG: base64.b64encode(sig).decode(),
            H_TIME: str(ts), H_NONCE: nonce, H_BODY: body_sm3}


def _chunks(paths: Sequence[Path]) -> Iterator[bytes]:
    for p in paths:
        with p.open("rb") as f:
            while chunk := f.read(CHUNK):
                yield chunk


def _json_call(client: LedgerClient, method: str, target: str, body: bytes | None = None) -> dict[str, Any]:
    from ledger.crypto import sm3

    with _open(client, method, target, body, None if body is None else sm3(body), None) as r:
        return dict(json.load(r))


DEFAULT_METHOD = "uploaded by the legal centre"


def _local_files(files: Sequence[str | Path]) -> tuple[list[LocalFile], str]:
    ClientError, _ = _errors()
    paths = [Path(f) for f in files]
    try:
        local, body_sm3 = hash_files(paths)
    except OSError as exc:
        raise ClientError(f"{getattr(exc, 'filename', None) or 'a file'}: cannot be read: {exc.strerror or exc}") \
            from None
    for f in local:
        if f.size == 0:
            raise ClientError(f"{f.path} is empty: there is nothing to file")
    return local, body_sm3


def prepare_evidence(client: LedgerClient, files: Sequence[str | Path], work_id: str, *,
                     source: str = "", method: str = DEFAULT_METHOD) -> dict[str, Any]:
    """``POST /v1/evidence/prepare``: upload and match; the node's manifest and matches, once
    ``sdk_check.check_filing`` found it names exactly the files read here (SM3, sizes, names),
    this identity, this chain, the work and the capture facts sent (else ``UnsafeToSign``)."""
    ident = _need_identity(client)
    local, body_sm3 = _local_files(files)
    query = [("work", work_id), *[("file", f"{f.size}:{f.name}") for f in local], ("method", method)]
    if source:
        query.append(("source", source))
    target = "/v1/evidence/prepare?" + urllib.parse.urlencode(query)
    prep = _upload(client, target, [f.path for f in local], body_sm3, sum(f.size for f in local))
    capture = {"method": method, **({"source": source} if source else {})}
    check_filing(prep, chain=client.chain, filer=ident.account, work_id=work_id, files=local, capture=capture)
    return prep


class _Replay(io.RawIOBase):
    """The bytes already read from a response's head, then the rest from the socket."""

    def __init__(self, head: bytes, sock: socket.socket) -> None:
        self._head, self._sock = head, sock

    def readable(self) -> bool:
        return True

    def readinto(self, b: Any) -> int:
        view = memoryview(b).cast("B")
        if self._head:
            n = min(len(view), len(self._head))
            view[:n] = self._head[:n]
            self._head = self._head[n:]
            return n
        data = self._sock.recv(len(view))
        view[:len(data)] = data
        return len(data)


class _ReplaySocket:
    """What ``http.client.HTTPResponse`` needs of a socket: ``makefile`` over ``_Replay``."""

    def __init__(self, head: bytes, sock: socket.socket) -> None:
        self._head, self._sock = head, sock

    def makefile(self, mode: str) -> io.BufferedReader:
        return io.BufferedReader(_Replay(self._head, self._sock))


def _response_head(sock: socket.socket, wait: float = 5.0) -> bytes | None:
    """The head (status line and headers) of the node's first answer, read byte by byte so no
    byte of a following body is taken; None when it says nothing within ``wait`` s (a server
    that ignores ``Expect``: then the body is sent anyway). Plain recv without flags: a TLS
    socket refuses ``MSG_PEEK``."""
    old = sock.gettimeout()
    sock.settimeout(wait)
    head = b""
    try:
        first = sock.recv(1)
    except TimeoutError:
        return None
    finally:
        sock.settimeout(old)
    head = first
    while head and not head.endswith(b"\r\n\r\n") and len(head) < MAX_HEAD:
        byte = sock.recv(1)
        if not byte:
            break
        head += byte
    return head


def _upload(client: LedgerClient, target: str, paths: Sequence[Path], body_sm3: str, size: int) -> dict[str, Any]:
    """POST the files' bytes with ``Expect: 100-continue``: the node refuses (role, limit, ...)
    before a byte is sent, and the body streams only once it says ``100 Continue``."""
    ClientError, error_of = _errors()
    url = urllib.parse.urlsplit(client.api)
    if url.scheme == "https":
        conn: http.client.HTTPConnection = http.client.HTTPSConnection(
            url.hostname or "", url.port, timeout=max(client.timeout, 600), context=client.tls)
    else:
        conn = http.client.HTTPConnection(url.hostname or "", url.port, timeout=max(client.timeout, 600))
    try:
        conn.putrequest("POST", url.path.rstrip("/") + target, skip_accept_encoding=True)
        headers = {**_sign_hash(_need_identity(client), "POST", target, body_sm3), "Expect": "100-continue",
                   "Content-Type": "application/octet-stream", "Content-Length": str(size)}
        for k, v in headers.items():
            conn.putheader(k, v)
        conn.endheaders()
        sock = conn.sock
        head = _response_head(sock)
        if head is not None and head.split(b" ", 2)[1:2] != [b"100"]:  # refused before the body: its answer
            resp = http.client.HTTPResponse(_ReplaySocket(head, sock), method="POST")  # type: ignore[arg-type]
        else:
            for chunk in _chunks(paths):
                sock.sendall(chunk)
            resp = http.client.HTTPResponse(sock, method="POST")
        resp.begin()
        body = resp.read()
    except (OSError, http.client.HTTPException) as exc:
        raise ClientError(f"cannot reach {client.api}: {exc}") from None
    finally:
        conn.close()
    try:
        out = json.loads(body)
    except ValueError:
        out = {"error": {"code": "http_error", "message": f"HTTP {resp.status}", "details": None}}
    if resp.status != 200:
        raise error_of(resp.status, out)
    return dict(out)


def file_evidence(client: LedgerClient, files: Sequence[str | Path], work_id: str, *, case_id: str | None = None,
                  parties: Sequence[str] = (), note: str = "", source: str = "") -> dict[str, Any]:
    """Upload, match, sign and file evidence about ``work_id``: opens case ``case_id`` (default
    ``c-`` + the evidence id's random part) with the work's holder and ``parties``, or attaches
    to it if it exists. ``{evidence_id, case_id, tx_id, height, matches, ...}``."""
    ident = _need_identity(client)
    holder = str(client.work(work_id)["holder"])  # the public registration record names the holder
    prep = prepare_evidence(client, files, work_id, source=source)
    if prep.get("holder") != holder:
        raise UnsafeToSign(f"refusing to sign: the node names {str(prep.get('holder'))[:80]} as the holder of "
                           f"{work_id}, its registration record names {holder}")
    eid, manifest = prep["evidence_id"], prep["manifest"]
    cid = case_id or "c-" + eid.split("-", 1)[-1]
    case: dict[str, Any] = {"case_id": cid}
    if not _case_exists(client, cid):
        case["parties"] = sorted({holder, *parties})
    if note:
        case["note"] = note
    payload = {"case": case, "evidence_id": eid, "manifest": manifest,
               "signature": sign(ident.key, manifest_message(manifest))}
    tx = client.build("evidence.file", payload)
    return _json_call(client, "POST", "/v1/evidence", tx.encode())


def _case_exists(client: LedgerClient, case_id: str) -> bool:
    """Whether case ``case_id`` exists (``GET /v1/cases/{id}``, signed: 404 when it does not;
    a case this identity may not read exists too, and only its opener may attach to it)."""
    from .sdk import ClientError

    try:
        show_case(client, case_id)
    except ClientError as exc:
        if exc.status == 404:
            return False
        if exc.status == 403:
            return True
        raise
    return True


def export_evidence(client: LedgerClient, evidence_id: str, out: str | Path, *,
                    wait: float = PACKAGE_WAIT_S) -> Path:
    """``GET /v1/evidence/{id}/package`` streamed to ``out``, signed by this client's identity
    (``manifest.sig``); waits up to ``wait`` s while the transactions are not yet certified."""
    ClientError, _ = _errors()
    ident = _need_identity(client)
    out = Path(out)
    part = out.with_name(out.name + ".part")
    target = f"/v1/evidence/{urllib.parse.quote(evidence_id, safe='')}/package"
    deadline = time.monotonic() + wait
    while True:
        try:
            r = _open(client, "GET", target, None, None, None, timeout=max(client.timeout, 600))
            break
        except ClientError as exc:
            if getattr(exc, "code", None) != "not_yet_provable" or time.monotonic() > deadline:
                raise
            time.sleep(0.5)
    try:
        with r, part.open("wb") as f:
            while chunk := r.read(CHUNK):
                f.write(chunk)
        check_package(part, chain=client.chain, certificate_fingerprint=ident.certificate.fingerprint,
                      evidence_id=evidence_id)
        sign_package(part, PackageFiler(ident.key, ident.certificate))
        os.replace(part, out)
    except (ExportError, OSError) as exc:
        part.unlink(missing_ok=True)
        raise ClientError(f"the package could not be written: {exc}") from None
    except BaseException:
        part.unlink(missing_ok=True)
        raise
    return out


def show_evidence(client: LedgerClient, evidence_id: str) -> dict[str, Any]:
    return _json_call(client, "GET", f"/v1/evidence/{urllib.parse.quote(evidence_id, safe='')}")


def show_case(client: LedgerClient, case_id: str) -> dict[str, Any]:
    return _json_call(client, "GET", f"/v1/cases/{urllib.parse.quote(case_id, safe='')}")


def move_case(client: LedgerClient, case_id: str, to: str, note: str = "") -> dict[str, Any]:
    """Sign a ``case.move`` and submit it through ``POST /v1/cases/{id}/move``."""
    payload: dict[str, Any] = {"case_id": case_id, "to": to}
    if note:
        payload["note"] = note
    tx = client.build("case.move", payload)
    return _json_call(client, "POST", f"/v1/cases/{urllib.parse.quote(case_id, safe='')}/move", tx.encode())
