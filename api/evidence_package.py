"""The node's side of ``GET /v1/evidence/{id}/package``: an evidence package
(docs/evidence-format.md) with two statements, the work's ``works.register`` and the
``evidence.file``, their artefacts from the node's content store, the proof bundle, the
certificates of both senders (the bundle carries them, from their ``user.register``
transactions), of the genesis validators and the CRL (``forensics.package.fetch.
consortium_material`` of the node's consortium folder).

The node does not hold the requester's key: the package is made out to the requester's
certificate and written without ``manifest.sig``; the client signs ``manifest.json`` and adds
it (``forensics.package.export.sign_package``).
"""

from __future__ import annotations

import re
import tempfile
from pathlib import Path
from typing import Any

from forensics.access import Reader, may_read_evidence
from forensics.package.export import ExportError, export_package
from forensics.package.fetch import consortium_material, latest_block_ms
from forensics.rules import may_read_blob
from ledger.blobs import LocalBlobStore
from ledger.codec import parse
from ledger.crypto import Certificate, CertificateRevocationList, CryptoError
from ledger.files import FileInputError
from ledger.node.bundle import BundleError, proof_bundle
from ledger.node.runtime import Node

from .errors import ApiError

__all__ = ["EXPORT_ROLES", "build_package", "evidence_record"]

EXPORT_ROLES = ("court", "regulator")  # besides the filer and the work's holder
_EXT = {"image/png": ".png", "image/jpeg": ".jpg", "image/gif": ".gif", "image/bmp": ".bmp", "image/tiff": ".tif",
        "image/webp": ".webp", "audio/wav": ".wav", "audio/flac": ".flac", "audio/ogg": ".ogg",
        "audio/mpeg": ".mp3", "video/mp4": ".mp4", "video/x-matroska": ".mkv", "video/x-msvideo": ".avi",
        "application/pdf": ".pdf", "text/plain": ".txt"}


def _json(node: Node, key: str) -> Any:
    raw = node.app.read(key.encode())
    return None if raw is None else parse(raw)


def evidence_record(node: Node, evidence_id: str) -> dict[str, Any]:
    rec = _json(node, f"evidence/e/{evidence_id}")
    if not isinstance(rec, dict):
        raise ApiError(404, "not_found", f"no evidence {evidence_id} is filed", {"evidence_id": evidence_id})
    return rec


def _consortium(consortium: Path | None, since_ms: int) -> tuple[CertificateRevocationList, list[bytes]]:
    if consortium is None:
        raise ApiError(409, "export_failed", "this node knows no consortium folder (CRL, node certificates)")
    try:
        return consortium_material(consortium, since_ms)
    except (ExportError, CryptoError, FileInputError, OSError) as exc:
        raise ApiError(409, "export_failed", f"the consortium CRL or node certificates cannot be read: {exc}") from None


def _link(folder: Path, blobs: LocalBlobStore, sm3: str, name: str) -> Path:
    if not blobs.has(sm3):
        raise ApiError(409, "export_failed", f"this node does not hold the file {sm3} ({name})")
    safe = re.sub(r"[^A-Za-z0-9._-]", "_", name).lstrip("._-")[:100] or "artefact"
    link = Path(tempfile.mkdtemp(dir=folder)) / safe
    link.symlink_to(blobs.path(sm3))
    return link


def may_export(node: Node, ev: dict[str, Any], account: str, business: str | None) -> bool:
    """``forensics.access.may_read_evidence``: the filer, the work's holder, the case's
    opener and parties, a court or a regulator."""
    return may_read_evidence(node.app.read, ev, Reader(account, business))


def build_package(node: Node, blobs: LocalBlobStore, consortium: Path | None, evidence_id: str, *, account: str,
                  business: str | None, certificate: Certificate, out: Path,
                  timestamp: tuple[bytes, bytes] | None = None) -> Path:
    """Write the (unsigned) package of ``evidence_id`` for the requester to ``out``: the
    ``works.register`` of each work the filing is about (one, or a capture's matched works),
    then the ``evidence.file``; ``timestamp`` (token, TSA certificate) adds §11's members."""
    ev = evidence_record(node, evidence_id)
    wids = [ev["work_id"]] if ev.get("work_id") is not None else list(ev.get("works") or [])
    works = [_json(node, f"works/w/{w}") for w in wids]
    for w, work in zip(wids, works, strict=True):
        if not isinstance(work, dict):
            raise ApiError(409, "export_failed", f"work {w} has no record")
    if not may_export(node, ev, account, business):
        raise ApiError(403, "forbidden", "only the filer, the work's holder, the case's parties, a court or a "
                       f"regulator may export evidence {evidence_id}", {"account": account, "business": business})
    try:
        bundle = proof_bundle(node, [*(w["tx"] for w in works), ev["tx"]])
    except BundleError as exc:
        raise ApiError(409, "not_yet_provable", f"{exc}; ask again a few blocks later") from None
    crl, vcerts = _consortium(consortium, latest_block_ms(bundle))
    with tempfile.TemporaryDirectory(dir=out.parent) as tmp:
        t = Path(tmp)
        artefacts: list[list[Path]] = []
        for work in works:
            work_name = "work-" + str(work["work_id"]) + _EXT.get(str(work["media_type"]), ".bin")
            # the registered file goes in only for those who may read it (docs/works.md §8): the
            # filer's package proves the registration (its hash) without handing over the original
            readable = may_read_blob(node.app.read, str(work["sm3"]), account)
            artefacts.append([_link(t, blobs, work["sm3"], work_name)] if readable else [])
        artefacts.append([_link(t, blobs, a["sm3"], a["name"]) for a in ev["manifest"]["artefacts"]])
        try:
            return export_package(out, bundle, artefacts, certificate, crl, validator_certificates=vcerts,
                                  timestamp=timestamp)
        except ExportError as exc:
            raise ApiError(409, "export_failed", str(exc)) from None
