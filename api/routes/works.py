"""The works registry over HTTP (docs/api.md "Works"): a holder uploads a work to prepare its
registration, signs and submits the ``works.register`` transaction itself (``POST /v1/txs``),
and reads back the public facts, the certificate PDF and, if allowed, the stored file.

- ``POST /v1/works`` (signed, business role ``holder``): the file is the raw body, streamed to
  disk; the attributes and the pledge are in the query (so they are signed too). Answers the
  countersigned ``works.register`` payload to sign and the conflicts found.
- ``GET /v1/works/{work_id}``: the registration record (public), after confirming it at this
  node if it was prepared here.
- ``GET /v1/works/{work_id}/certificate``: the certificate PDF with its proof bundle.
- ``GET /v1/blobs/{sm3}`` (signed, any role allowed by ``forensics.rules.may_read_blob``).
"""

from __future__ import annotations

import asyncio
import json
import secrets
import tempfile
from pathlib import Path as FsPath
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query, Request
from fastapi.responses import FileResponse, Response, StreamingResponse
from pydantic import BaseModel, Field

from fingerprint.errors import EmptyMedia, FingerprintError, MediaTooLarge, UnreadableMedia
from forensics.certificate import CertificatePdfError
from forensics.certificate_check import check_certificate
from forensics.contracts import _attributes as check_attributes
from forensics.contracts import work as work_record
from forensics.package.export import ExportError, export_package
from forensics.package.fetch import latest_block_ms
from forensics.package.format import PackageUnreadable
from forensics.registration import registration_certificate
from forensics.rules import FormRefused, may_read_blob
from forensics.service import FilingError
from ledger.blobs import BlobNotFound
from ledger.crypto import Certificate, CertificateRevocationList, CryptoError
from ledger.files import FileInputError
from ledger.node.bundle import BundleError

from ..auth import AUTH_RESPONSES, Identity, require
from ..deps import NodeDep, QueriesDep
from ..errors import ERROR_RESPONSES, ApiError
from ..limits import PROOF_PACKAGE_LIMIT
from ..schemas import ErrorBody
from ..works_index import require_node
from ..works_node import WorksNode
from .common import json_response

router = APIRouter(tags=["works"])
WORK_ID = r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,127}$"
PACKAGE_BODY = {"required": True, "content": {"application/octet-stream": {"schema": {"type": "string", "format": "binary"}}}}
_PDF: dict[int | str, dict[str, Any]] = {200: {
    "content": {"application/pdf": {"schema": {"type": "string", "format": "binary"}}},
    "description": "the certificate PDF (docs/certificate.md)"}}
UPLOAD_BODY = {"required": True, "content": {"application/octet-stream": {"schema": {"type": "string",
                                                                                      "format": "binary"}}}}


class ConflictOut(BaseModel):
    work_id: str
    score: float
    score_milli: int
    method: str


class PreparedOut(BaseModel):
    """A prepared registration: sign ``payload`` as a ``works.register`` transaction."""

    work_id: str
    sm3: str
    size: int
    media_type: str
    payload: dict[str, Any]
    conflicts: list[ConflictOut]
    recognition: dict[str, Any] = Field(description=(
        "how well the work can be recognised: level robust, limited or exact-only, and the evidence "
        "(docs/fingerprints.md, Recognition)"))


class WorkOut(BaseModel):
    """The on-chain registration record (docs/works.md §3.3), with ``confirmed``: whether this
    node's fingerprint index holds the work, and ``holder_name`` / ``holder_org`` when known."""

    work_id: str
    holder: str
    sm3: str
    size: int
    media_type: str
    attributes: dict[str, Any]
    conflicts: list[dict[str, Any]]
    height: int
    time_ms: int
    tx: str
    certificate: dict[str, Any]
    confirmed: bool
    holder_name: str | None = None
    holder_org: str | None = None


async def works_of(request: Request) -> WorksNode:
    works: WorksNode | None = getattr(request.app.state, "works", None)
    if works is None:
        raise ApiError(503, "works_unavailable", "this node does not run the works registry")
    return works


WorksDep = Annotated[WorksNode, Depends(works_of)]
_NOT_CERTIFIED: dict[int | str, dict[str, Any]] = {409: {
    "model": ErrorBody, "description": "not_certified: the registration's receipt is not certified and committed "
                                       "yet; ask again a few blocks later"}}
_UPLOAD_ERRORS: dict[int | str, dict[str, Any]] = {400: {"model": ErrorBody, "description": "empty_file, unreadable_file, bad attributes or "
                                                          "pledge (refused), a file too poor to register"},
                  413: {"model": ErrorBody, "description": "the file is over the configured maximum"},
                  422: {"model": ErrorBody, "description": "invalid_request (query parameters); "
                                                           "registration_refused: works.register would refuse "
                                                           "it (the contract's reason in details.info)"}}


def _attributes(raw: str, title: str | None) -> dict[str, Any]:
    try:
        attrs = json.loads(raw) if raw else {}
    except ValueError:
        raise ApiError(400, "bad_attributes", "attributes must be a JSON object") from None
    if not isinstance(attrs, dict):
        raise ApiError(400, "bad_attributes", "attributes must be a JSON object")
    if title is not None:
        attrs["title"] = title
    try:
        return check_attributes(attrs)
    except FormRefused as exc:
        raise ApiError(400, "bad_attributes", str(exc)) from None


@router.post("/v1/works", response_model=PreparedOut, openapi_extra={"requestBody": UPLOAD_BODY},
             responses={**_UPLOAD_ERRORS, **AUTH_RESPONSES})
async def prepare_work(request: Request, works: WorksDep,
                       ident: Annotated[Identity, Depends(require(roles=("holder",), stream_body=True))],
                       attributes: Annotated[str, Query(max_length=8192, description=(
                           "JSON object: title, type (required), authors, created (YYYY-MM-DD), licence"))],
                       pledge: Annotated[str, Query(min_length=1, max_length=2048)],
                       pledge_signature: Annotated[str, Query(pattern=r"^[0-9a-f]{16,160}$")]) -> Response:
    """Prepare a registration: the body is the work's file (streamed to disk, up to the
    node's configured maximum), the query its attributes and the holder's originality pledge
    with its signature (docs/works.md §1). The node fingerprints and stores the file, matches
    it against every registered work and countersigns; the holder then signs the returned
    ``payload`` as a ``works.register`` transaction and submits it (``POST /v1/txs``). Nothing
    is indexed or written on chain here."""
    attrs = _attributes(attributes, None)
    path, _sm3, _size = await works.receive(request.stream(), ident.body_sm3)
    try:
        await works.indexer.refresh()  # match against every work committed so far
        prep = await works.call(
            works.prepare, path, holder=ident.account, holder_point=ident.certificate.public_key().point,
            holder_cert_pem=ident.certificate.to_pem(), attributes=attrs, pledge=pledge,
            pledge_signature=pledge_signature)
    except EmptyMedia as exc:
        raise ApiError(400, "empty_file", str(exc)) from None
    except MediaTooLarge as exc:
        raise ApiError(413, "body_too_large", str(exc)) from None
    except (UnreadableMedia, FingerprintError) as exc:
        raise ApiError(400, "unreadable_file", str(exc)) from None
    except FilingError as exc:
        raise ApiError(400, "refused", str(exc)) from None
    except FormRefused as exc:  # the contract's own reason (docs/works.md §3.2): nothing stored
        raise ApiError(422, "registration_refused", f"works.register would be refused: {exc}",
                       {"info": str(exc)}) from None
    finally:
        path.unlink(missing_ok=True)
    p = prep.payload
    body = {"work_id": prep.work_id, "sm3": p["sm3"], "size": p["size"], "media_type": p["media_type"],
            "payload": p, "conflicts": prep.conflicts, "recognition": prep.recognition}
    # plain JSON: the conflicts' scores are floats, which canonical JSON has not
    return Response(json.dumps(body, ensure_ascii=True, sort_keys=True, separators=(",", ":")).encode(),
                    media_type="application/json")


async def _record(works: WorksNode, node: Any, work_id: str) -> dict[str, Any]:
    await works.indexer.refresh()
    await works.reconcile(work_id)
    rec = work_record(node.app.read, work_id)
    if rec is None:
        raise ApiError(404, "not_found", f"work {work_id} is not registered (or its transaction is not committed yet)")
    return rec


@router.get("/v1/works/{work_id}", response_model=WorkOut, responses=ERROR_RESPONSES)
async def get_work(work_id: Annotated[str, Path(pattern=WORK_ID)], works: WorksDep, node: NodeDep) -> Response:
    """The registration record of a work, public. A registration this node prepared is
    confirmed first (its fingerprint added to the index) if the chain holds it."""
    rec = await _record(works, node, work_id)
    mine = works.registered(work_id)
    out = {k: rec[k] for k in WorkOut.model_fields if k in rec}
    out["confirmed"] = await works.call(works.indexed, work_id)
    if mine is not None:
        cert = Certificate.load(mine["holder_certificate"].encode())
        out.update(holder_name=cert.common_name, holder_org=cert.organization)
    return json_response(out)


class ProofOut(BaseModel):
    """What the holder needs to build the registration's proof package offline."""

    bundle: dict[str, Any]
    crl: str
    validators: list[str]


@router.get("/v1/works/{work_id}/proof", response_model=ProofOut, responses={**ERROR_RESPONSES, **_NOT_CERTIFIED})
async def get_proof(work_id: Annotated[str, Path(pattern=WORK_ID)], works: WorksDep, node: NodeDep,
                    queries: QueriesDep) -> Response:
    """The registration's proof bundle (as ``GET /v1/proofs`` of its transaction), the
    consortium's CRL and the validators' certificates (PEM): the holder signs them into an
    evidence package (``forensics.registration.proof_package``) for its certificate."""
    rec = await _record(works, node, work_id)
    try:
        bundle = queries.proof_bundle(tx_ids=[rec["tx"]])
    except BundleError as exc:
        raise ApiError(409, "not_certified", str(exc)) from None
    try:
        crl = works.crl_pem(latest_block_ms(bundle))
    except (ExportError, CryptoError, FileInputError, OSError) as exc:
        raise ApiError(409, "not_certified", f"no CRL newer than the registration: {exc}") from None
    return json_response({"bundle": bundle, "crl": crl.decode(),
                          "validators": [p.decode() for p in works.validator_certificates()]})


@router.get("/v1/works/{work_id}/proof-package", response_class=Response, responses={
    200: {"content": {"application/zip": {"schema": {"type": "string", "format": "binary"}}},
          "description": "the registration's proof package, unsigned, made out to the holder"},
    **ERROR_RESPONSES, **_NOT_CERTIFIED, **AUTH_RESPONSES})
async def get_proof_package(work_id: Annotated[str, Path(pattern=WORK_ID)], works: WorksDep, node: NodeDep,
                            queries: QueriesDep,
                            ident: Annotated[Identity, Depends(require(roles=("holder",)))]) -> Response:
    """The proof package ``forensics.registration.proof_package`` would write, made out to the
    holder's certificate and without ``manifest.sig`` (the node does not hold the key): the
    holder checks it, adds ``manifest.sig`` and gives it back with ``PUT .../certificate``.
    For the console's register page (docs/console.md §6.2), whose browser cannot rebuild the
    package's JSON members byte for byte (63-bit nonces). Only the work's holder (403)."""
    rec = await _record(works, node, work_id)
    if rec["holder"] != ident.account:
        raise ApiError(403, "not_holder", f"only the holder of {work_id} may have its proof package")
    try:
        bundle = queries.proof_bundle(tx_ids=[rec["tx"]])
        crl = CertificateRevocationList.load(works.crl_pem(latest_block_ms(bundle)))
    except BundleError as exc:
        raise ApiError(409, "not_certified", str(exc)) from None
    except (ExportError, CryptoError, FileInputError, OSError) as exc:
        raise ApiError(409, "not_certified", f"no CRL newer than the registration: {exc}") from None
    with tempfile.TemporaryDirectory(prefix="rongxin-proof-") as tmp:
        out = FsPath(tmp) / "proof.zip"
        try:
            await asyncio.to_thread(export_package, out, bundle, [[]], ident.certificate, crl,
                                    sender_certificates=[ident.certificate.to_pem()],
                                    validator_certificates=works.validator_certificates())
        except ExportError as exc:
            raise ApiError(409, "export_failed", str(exc)) from None
        data = out.read_bytes()
    return Response(data, media_type="application/zip",
                    headers={"Content-Disposition": f'attachment; filename="{work_id}-proof.zip"'})


def _render(rec: dict[str, Any], package: FsPath, holder: Certificate, chain: str, root_pem: bytes,
            out: FsPath) -> list[str]:
    """Render and check the certificate; the failed checks (nothing stored) or [] (stored)."""
    pdf = registration_certificate(rec, package.read_bytes(), holder, chain)
    result = check_certificate(pdf, root_pem)
    if not result.ok:
        return result.failed()
    tmp = out.with_name(out.name + f".{secrets.token_hex(6)}.part")
    tmp.write_bytes(pdf)
    tmp.replace(out)
    return []


@router.put("/v1/works/{work_id}/certificate", response_class=FileResponse, openapi_extra={"requestBody": PACKAGE_BODY},
            responses={**_PDF, **ERROR_RESPONSES, **_NOT_CERTIFIED, **AUTH_RESPONSES,
                       413: {"model": ErrorBody, "description": "body_too_large: a package over 4 MiB "
                                                                "(PROOF_PACKAGE_LIMIT)"}})
async def put_certificate(request: Request, work_id: Annotated[str, Path(pattern=WORK_ID)], works: WorksDep,
                          node: NodeDep, ident: Annotated[Identity, Depends(require(roles=("holder",),
                                                                                       stream_body=True))]) -> Response:
    """The holder gives the registration's proof package it signed (the body, a zip); the
    node renders the certificate PDF with it embedded, checks the PDF as ``rongxin works
    verify-certificate`` would (400 ``bad_proof`` naming the failed checks, nothing stored)
    and answers it. Only the work's holder may (403 ``not_holder``)."""
    rec = await _record(works, node, work_id)
    if rec["holder"] != ident.account:
        raise ApiError(403, "not_holder", f"only the holder of {work_id} may give its proof")
    path, _sm3, _size = await works.receive(request.stream(), ident.body_sm3, PROOF_PACKAGE_LIMIT)
    out = works.root / "certificates" / f"{work_id}.pdf"
    gov = node.app.governance
    if gov is None or gov.root is None:
        raise ApiError(409, "no_root", "this chain has no consortium root certificate")
    try:
        failed = await asyncio.to_thread(_render, rec, path, ident.certificate, works.chain, gov.root.to_pem(), out)
    except (CertificatePdfError, PackageUnreadable) as exc:
        raise ApiError(400, "bad_proof", f"the package cannot be used: {exc}") from None
    finally:
        path.unlink(missing_ok=True)
    if failed:
        raise ApiError(400, "bad_proof", f"the certificate would not verify: {', '.join(failed)}", {"failed": failed})
    return FileResponse(out, media_type="application/pdf", filename=f"{work_id}.pdf")


@router.get("/v1/works/{work_id}/certificate", response_class=FileResponse, responses={**_PDF, **ERROR_RESPONSES})
async def get_certificate(work_id: Annotated[str, Path(pattern=WORK_ID)], works: WorksDep) -> Response:
    """The registration certificate (PDF, docs/certificate.md) of a work registered through
    this node, once its holder gave the signed proof (``PUT``); 404 before."""
    out = works.root / "certificates" / f"{work_id}.pdf"
    if not out.is_file():
        raise ApiError(404, "not_found", f"no certificate of {work_id} here (yet)")
    return FileResponse(out, media_type="application/pdf", filename=f"{work_id}.pdf")


@router.get("/v1/works/{work_id}/file", response_class=StreamingResponse, responses={
    200: {"content": {"application/octet-stream": {"schema": {"type": "string", "format": "binary"}}},
          "description": "the registered work's file, streamed"}, **ERROR_RESPONSES, **AUTH_RESPONSES})
async def get_work_file(work_id: Annotated[str, Path(pattern=WORK_ID)], works: WorksDep, node: NodeDep,
                        _peer: Annotated[str, Depends(require_node)]) -> Response:
    """A registered work's file, to consortium nodes only (a request signed with a node's key
    and certificate, ``works_index.check_node_request``): how a node's chain-fed index gets
    the file of a work registered through another node (docs/works.md §6.3). 404 if the work
    is not registered or this node does not store its file."""
    rec = work_record(node.app.read, work_id)
    if rec is None:
        raise ApiError(404, "not_found", f"work {work_id} is not registered")
    try:
        info = works.blobs.stat(rec["sm3"])
        reader = works.blobs.open(rec["sm3"])
    except BlobNotFound:
        raise ApiError(404, "not_found", f"this node stores no file of work {work_id}") from None

    def chunks() -> Any:
        with reader:
            yield from reader

    return StreamingResponse(chunks(), media_type="application/octet-stream",
                             headers={"content-length": str(info.size), "x-rongxin-sm3": info.sm3})


@router.get("/v1/blobs/{sm3}", response_class=StreamingResponse, responses={
    200: {"content": {"application/octet-stream": {"schema": {"type": "string", "format": "binary"}}},
          "description": "the stored file, streamed"}, **ERROR_RESPONSES, **AUTH_RESPONSES})
async def get_blob(sm3: Annotated[str, Path(pattern=r"^[0-9a-f]{64}$")], works: WorksDep, node: NodeDep,
                   ident: Annotated[Identity, Depends(require())]) -> Response:
    """A stored file, to the accounts ``may_read_blob`` admits (the holder of a work with this
    file, the filer of evidence with it, the holder of that evidence's work, courts and the
    regulator); 403 ``not_allowed`` for anyone else, 404 if this node does not store it."""
    if not may_read_blob(node.app.read, sm3, ident.account):
        raise ApiError(403, "not_allowed", f"account {ident.account} may not read {sm3}")
    try:
        info = works.blobs.stat(sm3)
        reader = works.blobs.open(sm3)
    except BlobNotFound:
        raise ApiError(404, "not_found", f"this node stores no file {sm3}") from None

    def chunks() -> Any:
        with reader:
            yield from reader

    return StreamingResponse(chunks(), media_type="application/octet-stream",
                             headers={"content-length": str(info.size), "x-rongxin-sm3": sm3})

