"""The node-side services the routes call: prepare a work's registration (hash, fingerprint,
store, match, countersign) and prepare an evidence filing (hash, store, match against the
work). They return transaction payloads; the holder or the legal centre signs and submits the
transaction (its signature is the sender's). The index is fed from the committed chain
(``api/works_index.py`` adds each registered work with ``confirm`` and moves ``index_height``,
the height the index covers, which the countersignature names). docs/works.md §6.

Matching uses the fingerprint package's calibrated thresholds (``fingerprint.matching``): every
match it reports is a conflict, with its score; a work with the same SM3 hash is a conflict of
score 1.0 whatever its fingerprint says.
"""

from __future__ import annotations

import dataclasses
import secrets
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from fingerprint.errors import EmptyMedia, FingerprintError, MediaTooLarge, UnreadableMedia
from fingerprint.formats import Fingerprint, fingerprint_file, recognition, require_registrable
from fingerprint.index import LocalIndex
from fingerprint.matching import Match, match
from ledger.blobs import BlobStore
from ledger.crypto import SM3, SM2PrivateKey
from ledger.errors import LedgerError

from .cases import MANIFEST_VERSION, MAX_MATCHES
from .media import media_type
from .rules import countersign_message, pledge_message, sign, upload_message, verify

__all__ = ["FilingError", "PreparedFiling", "PreparedWork", "WorksService", "fingerprint_digest", "media_type"]

DIGEST_DOMAIN = b"rongxin/fingerprint-digest/1\x00"


def _occurrences(m: Match) -> list[Match]:
    """A match with several segments (a looped passage, a repeated clip) as one match per
    segment, in the match's order (its best first); any other match as it is."""
    if len(m.segments) < 2:
        return [m]
    return [dataclasses.replace(m, score=s.score, query_start_s=s.query_start_s, work_start_s=s.work_start_s,
                                duration_s=s.duration_s, segments=[s]) for s in m.segments]


class FilingError(LedgerError):
    """A registration or filing cannot be prepared (bad pledge, unknown work, bad file)."""


def fingerprint_digest(fp: Fingerprint) -> str:
    """SM3 over a framed encoding of the fingerprint: the domain string, then for the envelope
    (modality, version, sm3, size) and each field of the modality's payload in declaration
    order: name, then the value as canonical bytes (arrays: dtype, shape and little-endian
    data; numbers: their ``repr``; tuples: each item), every piece preceded by its 8-byte
    big-endian length. docs/works.md §6.1."""
    h = SM3(DIGEST_DOMAIN)

    def piece(b: bytes) -> None:
        h.update(len(b).to_bytes(8, "big"))
        h.update(b)

    def value(v: Any) -> None:
        if isinstance(v, np.ndarray):
            a = np.ascontiguousarray(v)
            piece(a.dtype.newbyteorder("<").str.encode())
            piece(repr(tuple(a.shape)).encode())
            piece(a.astype(a.dtype.newbyteorder("<"), copy=False).tobytes())
        elif isinstance(v, tuple | list):
            piece(b"seq:%d" % len(v))
            for item in v:
                value(item)
        elif dataclasses.is_dataclass(v) and not isinstance(v, type):
            for f in dataclasses.fields(v):
                if f.metadata.get("digest", True) is False:
                    continue  # a query-side field added after the digest's format (image: thumb, rect_cuts)
                piece(f.name.encode())
                value(getattr(v, f.name))
        elif isinstance(v, bytes):
            piece(v)
        else:
            piece(repr(v).encode())

    for name in ("modality", "version", "sm3", "size_bytes"):
        piece(name.encode())
        piece(str(getattr(fp, name)).encode())
    payload = fp.image or fp.audio or fp.video or fp.text
    value(payload)
    return h.hexdigest()


def _score_milli(score: float) -> int:
    return max(0, min(round(float(score) * 1000), 1_000_000_000))


@dataclass
class PreparedWork:
    """A registration ready to sign: ``payload`` is the ``works.register`` payload (with the
    node's countersignature); ``conflicts`` repeats it with float scores for display."""

    work_id: str
    payload: dict[str, Any]
    conflicts: list[dict[str, Any]]
    fingerprint: Fingerprint = field(repr=False)
    # how well the work can be recognised (fingerprint.formats.recognition): shown to the
    # holder, not part of the signed payload
    recognition: dict[str, Any] = field(default_factory=dict)


@dataclass
class PreparedFiling:
    """An evidence manifest ready for the legal centre to sign (``rules.manifest_message``);
    ``matches`` lists, per file, its matches against the work for display."""

    evidence_id: str
    manifest: dict[str, Any]
    matches: list[dict[str, Any]]


class WorksService:
    """The registering node's side of the registry: its blob store, fingerprint index, node id
    and SM2 key (which countersigns match results), on chain ``chain``."""

    def __init__(self, blobs: BlobStore, index: LocalIndex, *, chain: str, node_id: str, node_key: SM2PrivateKey) -> None:
        self.blobs = blobs
        self.index = index
        self.chain = chain
        self.node_id = node_id
        self._key = node_key
        self._lock = threading.Lock()  # the index is written by one thread at a time
        self.index_height = 0  # every work registered at or below this height is in the index

    # ------------------------------------------------------------ registration
    def _fingerprint(self, path: Path, *, query: bool) -> Fingerprint:
        try:
            return fingerprint_file(path, query=query)
        except (EmptyMedia, UnreadableMedia, MediaTooLarge):
            raise
        except FingerprintError as exc:
            raise FilingError(f"{path.name}: cannot be fingerprinted: {exc}") from None

    def _conflicts(self, fp: Fingerprint) -> list[dict[str, Any]]:
        found: dict[str, dict[str, Any]] = {}
        result = match(self.index, fp)
        same = self.index.by_sm3(fp.sm3)
        for m in result.matches:
            found[m.work_id] = {"method": m.method or fp.modality.value, "score": float(m.score),
                                "score_milli": _score_milli(m.score), "work_id": m.work_id}
        for wid in same:
            found[wid] = {"method": "sm3", "score": 1.0, "score_milli": 1000, "work_id": wid}
        return [found[w] for w in sorted(found)]

    def register_work(self, file_path: str | Path, *, holder: str, holder_key: bytes, attributes: dict[str, Any],
                      pledge: str, pledge_signature: str, work_id: str | None = None,
                      check: Callable[[dict[str, Any]], None] | None = None,
                      index_height: int | None = None) -> PreparedWork:
        """Fingerprint the file (refusing one too poor to register), check the holder's pledge
        (signed by ``holder_key``, the 65-byte point of ``holder``'s key, over
        ``rules.pledge_message``), match it against the index and countersign the result with
        the height the index covers (``index_height``, default the service's);
        ``check(payload)`` (the node's dry run of the contract, ``precheck.check_registration``)
        may then refuse it by raising; only then is the file stored, claimed for ``holder``
        (``ledger.blobs``: swept if no registration ever names it). Nothing is added to the
        index until ``confirm``."""
        path = Path(file_path)
        fp = self._fingerprint(path, query=False)  # what the index will hold (and its digest)
        try:
            require_registrable(fp, path.name)
        except FingerprintError as exc:
            raise FilingError(str(exc)) from None
        try:
            sig = bytes.fromhex(pledge_signature)
        except ValueError:
            raise FilingError("the pledge signature must be hex") from None
        if not verify(holder_key, sig, pledge_message(self.chain, holder, fp.sm3, pledge)):
            raise FilingError("the originality pledge is not signed by the holder's key")
        sm3, size = fp.sm3, path.stat().st_size
        with path.open("rb") as fh:
            mt = media_type(fh.read(16), fp.modality.value)
        wid = work_id or "w-" + secrets.token_hex(10)
        query = self._fingerprint(path, query=True) if fp.modality.value in ("image", "video") else fp
        with self._lock:
            covered = self.index_height if index_height is None else index_height
            conflicts = self._conflicts(query)
        wire = [{k: c[k] for k in ("method", "score_milli", "work_id")} for c in conflicts]
        digest = fingerprint_digest(fp)
        msg = countersign_message(self.chain, holder, wid, sm3, size, mt, digest, wire, covered)
        payload = {"attributes": attributes, "conflicts": wire,
                   "countersign": {"index_height": covered, "node": self.node_id, "signature": sign(self._key, msg)},
                   "fingerprints": digest, "media_type": mt, "pledge": {"signature": pledge_signature, "text": pledge},
                   "size": size, "sm3": sm3, "work_id": wid}
        if check is not None:
            check(payload)
        if self.blobs.put_file(path, claim=holder) != (sm3, size):
            raise FilingError(f"{path.name} changed while it was being registered")
        return PreparedWork(wid, payload, conflicts, fp, recognition(fp))

    def confirm(self, prepared: PreparedWork) -> None:
        """Add a registered work's fingerprint to the index (after its transaction is accepted),
        so later registrations and filings match it: the registration-side fingerprint whose
        digest is on chain. A work already indexed is left as it is."""
        with self._lock:
            if self.index.info(prepared.work_id) is None:
                self.index.add(prepared.work_id, prepared.fingerprint)

    def covered(self, height: int) -> None:
        """Every work registered at or below ``height`` is now in the index."""
        with self._lock:
            self.index_height = max(self.index_height, height)

    # ------------------------------------------------------------ evidence
    def match_artefact(self, path: Path, work_id: str | None = None, *,
                       fp: Fingerprint | None = None) -> tuple[dict[str, Any], dict[str, Any]]:
        """Store ``path`` (the service's content store) and match it: against ``work_id``, or
        with ``work_id=None`` against every work of the index (a capture, docs/works.md
        §4.3). (The manifest's artefact entry, what to show.)"""
        return self._artefact(path, work_id, fp)

    def _artefact(self, path: Path, work_id: str | None,
                  fp: Fingerprint | None = None) -> tuple[dict[str, Any], dict[str, Any]]:
        fp = fp or self._fingerprint(path, query=True)
        sm3, size = self.blobs.put_file(path)
        with path.open("rb") as fh:
            mt = media_type(fh.read(16), fp.modality.value)
        with self._lock:
            result = match(self.index, fp)
            same = set(self.index.by_sm3(sm3))
        ms: list[Match] = [m for m in result.matches if work_id is None or m.work_id == work_id]
        # every occurrence of a work in the artefact is its own match entry (the best first)
        ms = [o for m in sorted(ms, key=lambda m: -m.score) for o in _occurrences(m)]
        for wid in sorted(same if work_id is None else same & {work_id}):  # the very file: sm3 says it
            best = max([1.0, *[m.score for m in ms if m.work_id == wid]])
            ms = [Match(wid, best, method="sm3"), *[m for m in ms if m.work_id != wid]]
        ms = ms[:MAX_MATCHES]
        wire: list[dict[str, Any]] = []
        shown: list[dict[str, Any]] = []
        for m in ms:
            w: dict[str, Any] = {"method": m.method or fp.modality.value, "score_milli": _score_milli(m.score),
                                 "work_id": m.work_id}
            for name, v in (("query_start_ms", m.query_start_s), ("work_start_ms", m.work_start_s),
                            ("duration_ms", m.duration_s)):
                if v is not None:
                    w[name] = max(0, round(float(v) * 1000))
            if m.region is not None:  # a picture found inside the artefact: where, and on how much evidence
                w["region"] = [max(0, int(v)) for v in m.region]
            if m.inliers is not None:
                w["inliers"] = int(m.inliers)
            if m.query_share is not None:
                w["query_share_milli"] = min(1000, max(0, round(float(m.query_share) * 1000)))
            wire.append(w)
            shown.append({**{k: v for k, v in m.as_dict().items() if k != "segments"},  # one entry each
                          "file": path.name, "method": w["method"]})
        art = {"matches": wire, "media_type": mt, "name": path.name, "sm3": sm3, "size": size}
        return art, {"file": path.name, "matches": shown, "sm3": sm3,
                     "score": max((m.score for m in ms), default=0.0)}

    def upload_signature(self, filer: str, evidence_id: str, artefacts: list[dict[str, Any]]) -> dict[str, Any]:
        """``manifest.upload``: this node attests that these files came from ``filer`` for
        filing ``evidence_id`` (docs/works.md §4.2, check 4)."""
        return {"node": self.node_id,
                "signature": sign(self._key, upload_message(self.chain, filer, evidence_id, artefacts))}

    def file_evidence(self, files: Sequence[str | Path], work_id: str, *, filer: str, created_ms: int,
                      capture: dict[str, Any] | None = None, evidence_id: str | None = None) -> PreparedFiling:
        """Hash, store and match each file against the work's fingerprints; the manifest for the
        legal centre ``filer`` to sign. ``created_ms``: when the filing was prepared (the
        caller's clock)."""
        if not files:
            raise FilingError("file at least one artefact")
        if self.index.info(work_id) is None:
            raise FilingError(f"work {work_id} is not in this node's registry")
        names = [Path(f).name for f in files]
        if len(set(names)) != len(names):
            raise FilingError("two artefacts have the same file name")
        arts, shown = zip(*(self._artefact(Path(f), work_id) for f in files), strict=True)
        eid = evidence_id or "e-" + secrets.token_hex(10)
        # the node attests that these files came from this filer (docs/works.md §4.2, check 4)
        upload = self.upload_signature(filer, eid, list(arts))
        manifest = {"artefacts": list(arts), "capture": dict(capture or {}), "chain": self.chain,
                    "created_ms": created_ms, "evidence_id": eid, "filer": filer, "upload": upload,
                    "version": MANIFEST_VERSION, "work_id": work_id}
        return PreparedFiling(eid, manifest, list(shown))
