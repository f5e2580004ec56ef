"""The node's evidence desk: where a legal centre's uploads are staged, matched and kept until
the legal centre signs the filing (docs/api.md, "Evidence and cases").

A filing takes two calls. ``prepare`` streams the uploaded files to a private folder under the
node's data folder (``works/evidence/<random>/``), runs ``WorksService.file_evidence`` on them
with a *staging* content store in that folder, and keeps the manifest for the legal centre to
sign; the manifest carries the node's countersignature of the upload (``manifest.upload``).
Before answering, ``prepare`` runs the contract's own checks of the manifest
(``WorksNode.check_filing``): a filing ``evidence.file`` would refuse is refused here. ``take``
hands the prepared filing to the route that submits the signed ``evidence.file`` transaction;
the route runs the contract on it (``WorksNode.refusal``) and only then are the files put into
the node's content store, claimed for the filer (removed by the sweep if the filing never
reaches the chain). Nothing reaches the content store or the chain for a refused upload, and a
prepared filing that is never signed is forgotten (its folder removed) after
``PREPARED_TTL_S`` or when more than ``MAX_PREPARED`` are waiting.
"""

from __future__ import annotations

import asyncio
import copy
import functools
import logging
import os
import secrets
import shutil
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from forensics import tsa
from forensics.capture_filing import CaptureFile, file_capture
from forensics.rules import ID_RE, manifest_message
from forensics.service import WorksService
from forensics.tsa import TSAUnavailable
from ledger.blobs import LocalBlobStore
from ledger.crypto.tsp import MAX_TOKEN_BYTES
from ledger.errors import LedgerError

from .works_node import WorksNode

__all__ = ["EvidenceDesk", "Prepared", "UploadRefused", "attach_evidence"]

T = TypeVar("T")
log = logging.getLogger(__name__)
PREPARED_TTL_S = 3600.0
MAX_PREPARED = 64


class UploadRefused(LedgerError):
    """An upload the desk will not take (a file changed on disk after it was matched)."""


@dataclass
class Prepared:
    """A filing matched and waiting for its filer's signature."""

    evidence_id: str
    filer: str
    work_id: str | None  # None: a capture filing (manifest.works)
    holder: str | None
    manifest: dict[str, Any]
    matches: list[dict[str, Any]]
    folder: Path
    files: list[Path]
    expires: float = field(default=0.0)


class EvidenceDesk:
    """Staging and prepared filings of one node, over the node's ``WorksService`` (the works
    registry's, ``api.works_node.WorksNode.service``: the same content store and fingerprint
    index). Every call that touches the index runs on ``pool``, the registry's one worker
    thread (``run``): the index's SQLite connection belongs to that thread, and
    fingerprinting stays off the event loop."""

    def __init__(self, works: WorksService, pool: ThreadPoolExecutor, folder: str | Path, *, max_upload: int,
                 registry: WorksNode | None = None, tsa_url: str | None = None, tsa_hash: str = "sm3") -> None:
        self._pool = pool
        self.tsa_url = tsa_url or None  # RFC 3161 time stamps on filed manifests (docs/evidence-format.md §11)
        self.tsa_hash = tsa_hash
        self.timestamps = Path(folder).parent / "timestamps"  # kept across restarts, unlike the staging folders
        self.works = works
        self.registry = registry  # the node's works registry: the contracts' checks (None: none run)
        self.folder = Path(folder)
        self.max_upload = max_upload
        self._prepared: dict[str, Prepared] = {}
        self._lock = threading.Lock()
        self.folder.mkdir(parents=True, exist_ok=True)
        for old in self.folder.iterdir():  # a restart forgets every unsigned filing
            shutil.rmtree(old, ignore_errors=True)

    async def run(self, fn: Callable[..., T], *args: Any) -> T:
        """``fn(*args)`` on the desk's worker thread."""
        return await asyncio.get_running_loop().run_in_executor(self._pool, functools.partial(fn, *args))

    def new_folder(self) -> Path:
        d = self.folder / secrets.token_hex(12)
        d.mkdir(mode=0o700)
        return d

    def discard_folder(self, folder: Path) -> None:
        shutil.rmtree(folder, ignore_errors=True)

    def prepare(self, folder: Path, files: list[Path], work_id: str, *, filer: str, holder: str,
                capture: dict[str, Any], filer_key: bytes | None = None) -> Prepared:
        """Match ``files`` (already in ``folder``) against the work; nothing enters the node's
        content store (a staging store in ``folder`` takes the service's puts). With
        ``filer_key`` (the filer's 65-byte point) and a registry, ``FormRefused`` if the
        contract would refuse the manifest."""
        staged = copy.copy(self.works)  # shares the index and its lock; only the content store differs
        staged.blobs = LocalBlobStore(folder / "stage", max_bytes=max(self.max_upload, 1))
        filing = staged.file_evidence(files, work_id, filer=filer, created_ms=int(time.time() * 1000),
                                      capture=capture)
        if self.registry is not None and filer_key is not None:
            self.registry.check_filing(filer_key, filing.evidence_id, filing.manifest)
        prep = Prepared(filing.evidence_id, filer, work_id, holder, filing.manifest, filing.matches, folder,
                        list(files), time.monotonic() + PREPARED_TTL_S)
        with self._lock:
            self._expire()
            self._prepared[prep.evidence_id] = prep
        return prep

    def prepare_capture(self, folder: Path, files: list[CaptureFile], *, filer: str, capture: dict[str, Any],
                        filer_key: bytes | None = None) -> Prepared:
        """``prepare`` for a capture's files (``forensics.capture_filing.file_capture``): each
        matched against every work of the index; the manifest names the works matched."""
        staged = copy.copy(self.works)
        staged.blobs = LocalBlobStore(folder / "stage", max_bytes=max(self.max_upload, 1))
        filing = file_capture(staged, files, filer=filer, created_ms=int(time.time() * 1000), capture=capture)
        if self.registry is not None and filer_key is not None:
            self.registry.check_filing(filer_key, filing.evidence_id, filing.manifest)
        kept = {a["name"] for a in filing.manifest["artefacts"]}  # a resource may be left out (size limit)
        prep = Prepared(filing.evidence_id, filer, None, None, filing.manifest, filing.matches, folder,
                        [f.path for f in files if f.name in kept], time.monotonic() + PREPARED_TTL_S)
        with self._lock:
            self._expire()
            self._prepared[prep.evidence_id] = prep
        return prep

    def _expire(self) -> None:
        now = time.monotonic()
        for eid in [e for e, p in self._prepared.items() if p.expires < now]:
            self.discard_folder(self._prepared.pop(eid).folder)
        while len(self._prepared) >= MAX_PREPARED:
            oldest = min(self._prepared.values(), key=lambda p: p.expires)
            self.discard_folder(self._prepared.pop(oldest.evidence_id).folder)

    def take(self, evidence_id: str, filer: str) -> Prepared | None:
        """The prepared filing ``evidence_id`` of ``filer`` (removed from the desk), or None."""
        with self._lock:
            self._expire()
            prep = self._prepared.get(evidence_id)
            if prep is None or prep.filer != filer:
                return None
            return self._prepared.pop(evidence_id)

    def give_back(self, prep: Prepared) -> None:
        """Keep a filing whose transaction was refused before it reached the chain."""
        with self._lock:
            self._prepared[prep.evidence_id] = prep

    def store(self, prep: Prepared) -> None:
        """Put the filing's files into the node's content store (each checked against the
        manifest's SM3), before its transaction is submitted."""
        for path, art in zip(prep.files, prep.manifest["artefacts"], strict=True):
            sm3, _ = self.works.blobs.put_file(path, claim=prep.filer)
            if sm3 != art["sm3"]:
                raise UploadRefused(f"{art['name']} changed on the node's disk after it was matched")

    def done(self, prep: Prepared) -> None:
        self.discard_folder(prep.folder)

    def stamp(self, evidence_id: str, manifest: dict[str, Any]) -> dict[str, Any] | None:
        """With a TSA configured, an RFC 3161 token on the manifest message (whose SM3 the
        filing records), kept as ``timestamps/<evidence id>.tsr`` with the TSA's certificate
        (``.der``) for the evidence package. What it says, ``{"error": why}`` when the TSA
        gave none (the filing goes on without), or None without a TSA (blocking)."""
        if self.tsa_url is None:
            return None
        try:
            got = tsa.stamp(self.tsa_url, manifest_message(manifest), hash_name=self.tsa_hash)
        except TSAUnavailable as exc:
            log.warning("evidence %s: no time stamp: %s", evidence_id, exc)
            return {"error": str(exc)}
        self.timestamps.mkdir(parents=True, exist_ok=True)
        for ext, data in ((".der", got.certificate), (".tsr", got.token)):
            tmp = self.timestamps / f"{evidence_id}{ext}.part"
            tmp.write_bytes(data)
            tmp.replace(self.timestamps / f"{evidence_id}{ext}")
        return {"gen_time": got.info.gen_time.isoformat().replace("+00:00", "Z"), "hash": got.info.hash_name,
                "tsa": got.info.tsa_subject, "tsa_certificate_sm3": got.info.tsa_fingerprint}

    def timestamp_of(self, evidence_id: str) -> tuple[bytes, bytes] | None:
        """The token and TSA certificate kept for ``evidence_id`` (DER each), or None."""
        tok, cert = self.timestamps / f"{evidence_id}.tsr", self.timestamps / f"{evidence_id}.der"
        if not (ID_RE.fullmatch(evidence_id) and tok.is_file() and cert.is_file()):
            return None
        return tok.read_bytes()[:MAX_TOKEN_BYTES + 1], cert.read_bytes()[:MAX_TOKEN_BYTES + 1]


def attach_evidence(app: Any, works: WorksNode, node_folder: Path) -> EvidenceDesk:
    """The node's evidence desk on ``app.state.evidence``, over its works registry ``works``;
    uploads are staged in ``NODE/works/evidence/`` (``api.node_main`` calls this)."""
    desk = EvidenceDesk(works.service, works.pool, node_folder / "works" / "evidence", max_upload=works.max_upload,
                        registry=works, tsa_url=os.environ.get("RONGXIN_TSA_URL") or None,
                        tsa_hash=os.environ.get("RONGXIN_TSA_HASH", "sm3"))
    app.state.evidence = desk
    return desk
