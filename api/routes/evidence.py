"""Evidence filing and export (docs/api.md, "Evidence and cases"; docs/works.md §4).

A legal centre files evidence in two signed requests: ``POST /v1/evidence/prepare`` streams the
files (the body is the files one after another; ``file=SIZE:NAME`` says where each ends) and
answers the manifest the node matched; the legal centre signs ``rules.manifest_message`` and an
``evidence.file`` transaction, and ``POST /v1/evidence`` submits it and answers once it is
committed. ``GET /v1/evidence/{id}/package`` streams the evidence package, made out to the
requester, for the requester to sign.
"""

from __future__ import annotations

import asyncio
import hmac
import json
import os
import tempfile
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi import Path as PathParam
from fastapi.responses import FileResponse, Response
from starlette.background import BackgroundTask

from fingerprint.errors import EmptyMedia, MediaTooLarge, UnreadableMedia
from forensics.capture_filing import CaptureFile
from forensics.cases import CAPTURE_ROLES
from forensics.rules import ID_RE, FormRefused
from forensics.service import FilingError
from ledger.blobs import BlobError, LocalBlobStore
from ledger.codec import parse
from ledger.crypto import SM3

from ..auth import AUTH_RESPONSES, Identity, refuse, require
from ..deps import IntakeDep, NodeDep
from ..errors import ERROR_RESPONSES, ApiError
from ..evidence_desk import EvidenceDesk, Prepared, UploadRefused
from ..evidence_package import build_package, evidence_record, may_export
from ..schemas import ErrorBody
from ..schemas_evidence import FILES_BODY, TX_BODY, ZIP_OK, EvidenceOut, FiledOut, PreparedOut
from .submit import one_tx, submit_and_wait

router = APIRouter(prefix="/v1/evidence", tags=["evidence"])

ID_PATTERN = "^" + ID_RE.pattern + "$"
IdPath = Annotated[str, PathParam(pattern=ID_PATTERN, max_length=128, description="an evidence id")]
MAX_FILES = 64
MAX_NAME_BYTES = 255
MAX_CAPTURE_JSON = 16 * 1024

def _err(description: str) -> dict[str, Any]:
    return {"model": ErrorBody, "description": description}


RESPONSES: dict[int | str, dict[str, Any]] = {**ERROR_RESPONSES, **AUTH_RESPONSES}
PREPARE_RESPONSES: dict[int | str, dict[str, Any]] = {
    **RESPONSES,
    400: _err("invalid_request (work id, file=SIZE:NAME, body longer or shorter than the sizes), empty_file"),
    404: _err("the work is not registered"),
    413: _err("body_too_large: the files add up to more than the node's upload limit "
              "(RONGXIN_MAX_UPLOAD_BYTES, 2 GiB by default); file_too_large: over the fingerprinter's limit"),
    422: _err("unreadable_file (not a picture, audio, video or text the fingerprinter reads), filing_refused"),
}
FILE_RESPONSES: dict[int | str, dict[str, Any]] = {
    **RESPONSES,
    400: _err("transaction_refused at admission (chain, expiry, replay, mempool)"),
    409: _err("not_prepared (no prepared filing of this signer with that evidence id on this node), "
              "manifest_differs, filing_refused (evidence.file would refuse it now: its reason in details.info; "
              "nothing stored or submitted, the filing may be signed again), transaction_failed (the contract's reason, docs/works.md §4.2)"),
    422: _err("not one evidence.file transaction in the wire form, or not sent by the request's signer"),
    504: _err("not_committed within 60 s (it may still be)"),
}


async def desk_of(request: Request) -> EvidenceDesk:
    desk: EvidenceDesk | None = getattr(request.app.state, "evidence", None)
    if desk is None:
        raise ApiError(503, "unavailable", "this node keeps no content store or fingerprint index")
    return desk


DeskDep = Annotated[EvidenceDesk, Depends(desk_of)]


def plain_json(obj: Any, status: int = 200) -> Response:
    """JSON with float scores (canonical JSON has none): sorted keys, no spaces, ASCII."""
    return Response(json.dumps(obj, sort_keys=True, separators=(",", ":")).encode(), status_code=status,
                    media_type="application/json")


def parse_files(specs: list[str]) -> list[tuple[int, str]]:
    """``SIZE:NAME`` items: 1-64 files, sizes >= 1, names 1-255 bytes without path separators."""
    if not 1 <= len(specs) <= MAX_FILES:
        raise ApiError(400, "invalid_request", f"give 1 to {MAX_FILES} files as file=SIZE:NAME")
    out: list[tuple[int, str]] = []
    for spec in specs:
        size_s, sep, name = spec.partition(":")
        if not sep or not size_s.isdigit() or len(size_s) > 16:
            raise ApiError(400, "invalid_request", f"file={spec[:80]!r}: write file=SIZE:NAME")
        if int(size_s) == 0:
            raise ApiError(400, "empty_file", f"{name[:80]} is empty: there is nothing to file")
        if (not name or len(name.encode()) > MAX_NAME_BYTES or name in (".", "..")
                or any(c in name for c in "/\\\x00")):
            raise ApiError(400, "invalid_request", f"file name {name[:80]!r} must be 1-255 bytes without / or \\")
        out.append((int(size_s), name))
    if len({n for _, n in out}) != len(out):
        raise ApiError(400, "invalid_request", "two files have the same name")
    return out


async def receive_files(request: Request, folder: Path, files: list[tuple[int, str]]) -> tuple[list[Path], str]:
    """Stream the body into one file per ``files`` entry; the SM3 of the whole body."""
    h = SM3()
    paths = [folder / name for _, name in files]
    i, left = 0, files[0][0]
    fh = paths[0].open("wb")
    try:
        async for chunk in request.stream():
            h.update(chunk)
            view = memoryview(chunk)
            while view:
                if i >= len(files):
                    raise ApiError(400, "invalid_request", "the body is longer than the files' sizes add up to")
                part = view[:left]
                await asyncio.to_thread(fh.write, part)
                view, left = view[len(part):], left - len(part)
                if left == 0:
                    fh.close()
                    i += 1
                    if i < len(files):
                        fh, left = paths[i].open("wb"), files[i][0]
        if i < len(files):
            raise ApiError(400, "invalid_request", f"the body ended inside {files[i][1]}: it is shorter than the "
                                                   "files' sizes add up to")
    finally:
        fh.close()
    return paths, h.hexdigest()


def _work(node: Any, work_id: str) -> dict[str, Any]:
    raw = node.app.read(f"works/w/{work_id}".encode())
    if raw is None:
        raise ApiError(404, "not_found", f"work {work_id} is not registered", {"work_id": work_id})
    rec: dict[str, Any] = parse(raw)
    return rec


def _shown(prep: Prepared) -> list[dict[str, Any]]:
    return [{"file": m["file"], "matched": bool(m["matches"]), "matches": m["matches"], "score": float(m["score"]),
             "sm3": m["sm3"], **({"role": m["role"]} if "role" in m else {})} for m in prep.matches]


def _prepare(desk: EvidenceDesk, folder: Path, paths: list[Path], work_id: str | None, filer: str, holder: str | None,
             capture: dict[str, Any], filer_key: bytes, roles: list[str] | None = None,
             names: list[str] | None = None) -> Prepared:
    """``desk.prepare`` (one work) or, with ``roles``, ``desk.prepare_capture`` (a capture's
    files, matched against every work), the failures as the API's errors."""
    def why(exc: Exception) -> str:  # the node's folders are no business of the client
        return str(exc).replace(str(folder / "in") + os.sep, "")

    try:
        if roles is not None:
            files = [CaptureFile(p, names[i] if names else p.name, r) for i, (p, r) in enumerate(zip(paths, roles,
                                                                                                    strict=True))]
            return desk.prepare_capture(folder, files, filer=filer, capture=capture, filer_key=filer_key)
        assert work_id is not None and holder is not None
        return desk.prepare(folder, paths, work_id, filer=filer, holder=holder, capture=capture, filer_key=filer_key)
    except (EmptyMedia, UnreadableMedia) as exc:
        raise ApiError(422, "unreadable_file", why(exc)) from None
    except MediaTooLarge as exc:
        raise ApiError(413, "file_too_large", why(exc)) from None
    except (FilingError, BlobError, UploadRefused) as exc:
        raise ApiError(422, "filing_refused", why(exc)) from None
    except FormRefused as exc:  # the contract's own reason (docs/works.md §4.2)
        raise ApiError(422, "filing_refused", f"evidence.file would be refused: {exc}", {"info": str(exc)}) from None


@router.post("/prepare", response_model=PreparedOut, responses=PREPARE_RESPONSES,
             openapi_extra={"requestBody": FILES_BODY})
async def prepare(request: Request, node: NodeDep, desk: DeskDep,
                  ident: Annotated[Identity, Depends(require(roles=("legal",), stream_body=True))],
                  file: Annotated[list[str], Query(description="SIZE:NAME of each file, in body order")],
                  work: Annotated[str, Query(max_length=128, description="the registered work (absent: a capture)")] = "",
                  role: Annotated[list[str] | None, Query(description="a capture: each file's role, in body order")] = None,
                  capture: Annotated[str, Query(max_length=MAX_CAPTURE_JSON,
                                                description="a capture: manifest.capture as a JSON object")] = "",
                  source: Annotated[str, Query(max_length=1024, description="where the copies were found")] = "",
                  method: Annotated[str, Query(max_length=256)] = "uploaded by the legal centre") -> Response:
    """Upload and match evidence files (a legal centre's signed request; the body is the files'
    bytes one after another, streamed to disk). Answers the manifest to sign and per file its
    matches against the work; nothing is stored in the content store or on chain yet. Without
    ``work``, the files are a browser capture (``role`` per file, ``capture`` its facts): each
    picture, audio and video file of role ``screenshot`` or ``resource`` is matched against
    every registered work and the manifest names the works matched (docs/works.md §4.3)."""
    files = parse_files(file)
    roles, facts = _capture_form(work, role, capture, len(files))
    if roles is None and not ID_RE.fullmatch(work):
        raise ApiError(400, "invalid_request", f"work {work[:80]!r} is not a work id")
    total = sum(s for s, _ in files)
    if total > desk.max_upload:
        raise ApiError(413, "body_too_large", f"the files add up to {total} bytes, over the upload limit of "
                       f"{desk.max_upload}", {"limit": desk.max_upload})
    holder = _work(node, work)["holder"] if roles is None else None
    folder = desk.new_folder()
    try:
        (folder / "in").mkdir()
        paths, body_sm3 = await receive_files(request, folder / "in", files)
        if not hmac.compare_digest(body_sm3, ident.body_sm3):
            raise refuse("auth_body_mismatch", f"the body's SM3 is {body_sm3}, the signed one {ident.body_sm3}")
        facts = facts if roles is not None else {"method": method, **({"source": source} if source else {})}
        works = getattr(request.app.state, "works", None)
        if works is not None:  # a work registered through another node is indexed here first
            await works.indexer.refresh()
        prep = await desk.run(_prepare, desk, folder, paths, work or None, ident.account, holder, facts,
                              ident.certificate.public_key().point, roles)
    except BaseException:
        desk.discard_folder(folder)
        raise
    return plain_json({"evidence_id": prep.evidence_id, "holder": holder, "manifest": prep.manifest,
                       "matches": _shown(prep), "work_id": work or None,
                       **({"works": prep.manifest["works"]} if roles is not None else {})})


def _capture_form(work: str, role: list[str] | None, capture: str, n: int) -> tuple[list[str] | None, dict[str, Any]]:
    """A capture upload's roles and facts (None, {} for an upload about one work)."""
    if work:
        if role or capture:
            raise ApiError(400, "invalid_request", "role and capture go with a capture upload, which names no work")
        return None, {}
    if not role or len(role) != n:
        raise ApiError(400, "invalid_request", "a capture upload (no work) gives one role=ROLE per file, in body order")
    bad = [r for r in role if r not in CAPTURE_ROLES]
    if bad:
        raise ApiError(400, "invalid_request", f"role {bad[0][:40]!r} is not one of {', '.join(CAPTURE_ROLES)}")
    try:
        facts = json.loads(capture) if capture else {}
    except ValueError:
        raise ApiError(400, "invalid_request", "capture must be a JSON object") from None
    if not isinstance(facts, dict):
        raise ApiError(400, "invalid_request", "capture must be a JSON object")
    return list(role), facts


@router.post("", response_model=FiledOut, responses=FILE_RESPONSES, openapi_extra={"requestBody": TX_BODY})
async def file_evidence(request: Request, node: NodeDep, intake: IntakeDep, desk: DeskDep,
                        ident: Annotated[Identity, Depends(require(roles=("legal",)))]) -> Response:
    """Submit the legal centre's signed ``evidence.file`` transaction for a prepared filing (the
    body: the transaction's wire form); answers once it is committed."""
    raw = await request.body()
    tx = await one_tx(intake, raw, ident, "evidence.file")
    eid = str(tx.payload.get("evidence_id", ""))
    prep = desk.take(eid, ident.account)
    if prep is None:
        raise ApiError(409, "not_prepared", f"no prepared filing {eid[:80]} of yours on this node: prepare it again")
    if tx.payload.get("manifest") != prep.manifest:
        desk.give_back(prep)
        raise ApiError(409, "manifest_differs", "the transaction's manifest is not the one this node prepared")
    reason = await desk.run(desk.registry.refusal, tx) if desk.registry is not None else None
    if reason is not None:  # the contract would refuse it: nothing stored, nothing submitted
        desk.give_back(prep)
        raise ApiError(409, "filing_refused", f"evidence.file would be refused: {reason}", {"info": reason})
    try:
        await desk.run(desk.store, prep)
    except (BlobError, UploadRefused, OSError) as exc:
        desk.done(prep)
        raise ApiError(409, "filing_refused", f"the files could not be stored: {exc}") from None
    stamped = await asyncio.to_thread(desk.stamp, eid, prep.manifest)  # the optional RFC 3161 time stamp
    try:
        rec = await submit_and_wait(node, tx)
    except ApiError as exc:
        if exc.code == "transaction_refused":  # not on chain: the filing may be signed again
            desk.give_back(prep)
        else:
            desk.done(prep)
        raise
    desk.done(prep)
    ev = evidence_record(node, eid)
    out = {"case_id": ev.get("case_id"), "evidence_id": eid, "height": rec["height"],
           "manifest_sm3": ev.get("manifest_sm3"), "matches": _shown(prep), "timestamp": stamped,
           "tx_id": tx.id_hex, "work_id": prep.work_id}
    if "works" in prep.manifest:
        out.update(case_ids=ev.get("case_ids", []), works=ev.get("works", []))
    return plain_json(out)


@router.get("/{evidence_id}", response_model=EvidenceOut, responses=RESPONSES)
async def show(node: NodeDep, evidence_id: IdPath, ident: Annotated[Identity, Depends(require())]) -> Response:
    """The filing record (manifest, filer, case, height, tx); the filer, the work's holder, a
    court or the regulator may read it."""
    if not ID_RE.fullmatch(evidence_id):
        raise ApiError(400, "invalid_request", "not an evidence id")
    ev = evidence_record(node, evidence_id)
    if not may_export(node, ev, ident.account, ident.business):
        raise ApiError(403, "forbidden", f"only the filer, the work's holder, the case's parties, a court or a "
                       f"regulator may read evidence {evidence_id}")
    return plain_json(ev)


@router.get("/{evidence_id}/package", response_class=Response, responses={
    **RESPONSES, 200: ZIP_OK, 409: _err("not_yet_provable (ask again after the next blocks), export_failed")})
async def package(node: NodeDep, desk: DeskDep, evidence_id: IdPath, request: Request,
                  ident: Annotated[Identity, Depends(require())]) -> Response:
    """The evidence package of ``evidence_id`` (docs/evidence-format.md), made out to the
    requester's certificate and without ``manifest.sig``: the requester signs ``manifest.json``
    and adds it. The filer, the work's holder, a court or the regulator may export; 409 while
    the transactions are not yet certified."""
    if not ID_RE.fullmatch(evidence_id):
        raise ApiError(400, "invalid_request", "not an evidence id")
    consortium: Path | None = request.app.state.consortium
    if not isinstance(desk.works.blobs, LocalBlobStore):
        raise ApiError(503, "unavailable", "this node's content store cannot export packages")
    fd, name = tempfile.mkstemp(prefix="pkg-", suffix=".zip", dir=desk.folder)
    os.close(fd)
    out = Path(name)
    try:
        await asyncio.to_thread(build_package, node, desk.works.blobs, consortium, evidence_id, account=ident.account,
                                business=ident.business, certificate=ident.certificate, out=out,
                                timestamp=desk.timestamp_of(evidence_id))
    except BaseException:
        out.unlink(missing_ok=True)
        raise
    return FileResponse(out, media_type="application/zip", filename=f"{evidence_id}.zip",
                        background=BackgroundTask(out.unlink, missing_ok=True))
