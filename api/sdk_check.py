"""What the SDK checks before it signs anything a node prepared (docs/api.md §8).

A node prepares a registration payload, an evidence manifest or an evidence package; the SDK
signs it with the user's key. A node that is malicious or broken could slip in other hashes,
another holder or filer, another work: so the SDK recomputes, from the files it sent, the SM3
hash and size of each, and signs only a prepared object that names exactly those, its own
identity, this chain and the fields of its own request. Anything else raises
``UnsafeToSign`` (``rongxin``: exit 1, nothing signed, nothing submitted).

What the client cannot recompute is said where it is checked: the fingerprint digest and the
conflicts of a registration and the match scores of a filing come from the node's index (the
node countersigns the conflicts, the contract checks that countersignature); they are checked
for form here, not for truth.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from forensics.cases import MANIFEST_VERSION
from forensics.contracts import _attributes as normal_attributes
from forensics.media import media_type
from forensics.package import format as pf
from forensics.rules import HEX64, ID_RE, FormRefused
from ledger.crypto import SM3
from ledger.errors import LedgerError

__all__ = ["CLOCK_SLACK_MS", "LocalFile", "UnsafeToSign", "check_filing", "check_package", "check_registration",
           "hash_files"]

CHUNK = 1 << 20
CLOCK_SLACK_MS = 10 * 60 * 1000  # a prepared time further than this from the client's clock is refused
REGISTRATION_FIELDS = frozenset({"attributes", "conflicts", "countersign", "fingerprints", "media_type", "pledge",
                                 "size", "sm3", "work_id"})
MANIFEST_FIELDS = frozenset({"artefacts", "capture", "chain", "created_ms", "evidence_id", "filer", "upload",
                             "version", "work_id"})
ARTEFACT_FIELDS = frozenset({"matches", "media_type", "name", "size", "sm3"})
GENERIC_TYPES = ("application/octet-stream", "text/plain")


class UnsafeToSign(LedgerError):
    """What the node prepared is not what this client asked for: nothing was signed."""


@dataclass(frozen=True)
class LocalFile:
    """A file as this client read it: its name as sent, SM3 (hex), size and leading bytes."""

    path: Path
    name: str
    sm3: str
    size: int
    head: bytes


def hash_files(paths: Sequence[Path]) -> tuple[list[LocalFile], str]:
    """Each file's SM3, size and first 16 bytes, read once in 1 MiB chunks, and the SM3 of all
    of them one after another (the body of a multi-file upload). ``OSError`` if one cannot be read."""
    whole, out = SM3(), []
    for p in paths:
        h, size, head = SM3(), 0, b""
        with p.open("rb") as f:
            while chunk := f.read(CHUNK):
                if size < 16:
                    head = (head + chunk)[:16]
                h.update(chunk)
                whole.update(chunk)
                size += len(chunk)
        out.append(LocalFile(p, p.name, h.hexdigest(), size, head))
    return out, whole.hexdigest()


def _need(cond: bool, what: str, why: str) -> None:
    if not cond:
        raise UnsafeToSign(f"refusing to sign the {what} the node prepared: {why}")


def _media_type_ok(claimed: Any, head: bytes) -> bool:
    sniffed = media_type(head, None)
    if sniffed != "application/octet-stream":
        return bool(claimed == sniffed)
    return claimed in GENERIC_TYPES


def check_registration(prep: Any, *, local: LocalFile, attributes: dict[str, Any], pledge: str,
                       pledge_signature: str) -> dict[str, Any]:
    """The ``works.register`` payload of ``POST /v1/works``'s answer, if it names exactly the
    uploaded file (SM3, size, the media type its bytes show), the attributes and pledge this
    client sent and the pledge signature it made (over its own account and the file's SM3)."""
    w = "registration"
    _need(isinstance(prep, dict) and isinstance(prep.get("payload"), dict), w, "no payload")
    p: dict[str, Any] = prep["payload"]
    _need(set(p) == REGISTRATION_FIELDS, w, f"its fields are {sorted(p)}, not {sorted(REGISTRATION_FIELDS)}")
    _need(p["sm3"] == local.sm3, w, f"it names file SM3 {str(p['sm3'])[:64]}, the uploaded file's is {local.sm3}")
    _need(p["size"] == local.size and not isinstance(p["size"], bool), w,
          f"it names size {p['size']!r}, the uploaded file has {local.size} bytes")
    _need(prep.get("sm3") == local.sm3 and prep.get("work_id") == p["work_id"], w,
          "its summary and its payload differ")
    _need(isinstance(p["work_id"], str) and ID_RE.fullmatch(p["work_id"]) is not None, w, "no valid work id")
    _need(_media_type_ok(p["media_type"], local.head), w, f"media type {p['media_type']!r} is not the file's")
    try:
        want = normal_attributes(attributes)
    except FormRefused as exc:
        raise UnsafeToSign(f"the attributes asked for are not valid: {exc}") from None
    _need(p["attributes"] == want, w, "its attributes are not the ones sent")
    _need(p["pledge"] == {"signature": pledge_signature, "text": pledge}, w,
          "its pledge is not the text and signature this client made")
    _need(isinstance(p["fingerprints"], str) and HEX64.fullmatch(p["fingerprints"]) is not None, w,
          "its fingerprint digest is not an SM3 digest")
    conflicts = p["conflicts"]
    _need(isinstance(conflicts, list) and all(isinstance(c, dict) and c.get("work_id") != p["work_id"]
                                              for c in conflicts), w, "its conflicts are malformed")
    shown = prep.get("conflicts")
    _need(isinstance(shown, list) and sorted(str(c.get("work_id")) for c in shown if isinstance(c, dict))
          == sorted(str(c.get("work_id")) for c in conflicts), w, "the conflicts shown differ from those to sign")
    return p


def check_filing(prep: Any, *, chain: str, filer: str, work_id: str, files: Sequence[LocalFile],
                 capture: dict[str, Any], now_ms: int | None = None) -> dict[str, Any]:
    """The manifest of ``POST /v1/evidence/prepare``'s answer, if it is for this chain, this
    filer, this work, the capture facts sent, a time within ``CLOCK_SLACK_MS`` of the client's
    clock, and exactly the uploaded files in order: each name, SM3 and size as read here, a
    media type its bytes show, matches (if any) only against this work."""
    w = "evidence manifest"
    _need(isinstance(prep, dict) and isinstance(prep.get("manifest"), dict), w, "no manifest")
    m: dict[str, Any] = prep["manifest"]
    _need(set(m) == MANIFEST_FIELDS, w, f"its fields are {sorted(m)}, not {sorted(MANIFEST_FIELDS)}")
    _need(m["version"] == MANIFEST_VERSION and not isinstance(m["version"], bool), w, f"version {m['version']!r}")
    _need(m["chain"] == chain, w, f"it is for chain {m['chain']!r}, not {chain!r}")
    _need(m["filer"] == filer, w, f"it names filer {str(m['filer'])[:80]}, not this identity's account {filer}")
    _need(m["work_id"] == work_id, w, f"it is about work {str(m['work_id'])[:80]}, not {work_id}")
    _need(isinstance(m["evidence_id"], str) and ID_RE.fullmatch(m["evidence_id"]) is not None
          and prep.get("evidence_id") == m["evidence_id"], w, "its evidence id is malformed or differs")
    _need(m["capture"] == capture, w, f"its capture facts {m['capture']!r} are not the ones sent {capture!r}")
    now = int(time.time() * 1000) if now_ms is None else now_ms
    _need(isinstance(m["created_ms"], int) and abs(m["created_ms"] - now) <= CLOCK_SLACK_MS, w,
          f"its time {m['created_ms']!r} is more than {CLOCK_SLACK_MS // 60000} min from this client's clock")
    arts = m["artefacts"]
    _need(isinstance(arts, list) and len(arts) == len(files), w,
          f"it lists {len(arts) if isinstance(arts, list) else '?'} artefacts, {len(files)} files were sent")
    for a, f in zip(arts, files, strict=True):
        _need(isinstance(a, dict) and set(a) == ARTEFACT_FIELDS, w, f"artefact {f.name}: other fields")
        _need(a["name"] == f.name, w, f"artefact {str(a['name'])[:80]!r} is not the file sent as {f.name!r}")
        _need(a["sm3"] == f.sm3 and a["size"] == f.size and not isinstance(a["size"], bool), w,
              f"{f.name}: it names SM3 {str(a['sm3'])[:64]} and size {a['size']!r}, the file read here has "
              f"{f.sm3} and {f.size}")
        _need(_media_type_ok(a["media_type"], f.head), w, f"{f.name}: media type {a['media_type']!r} is not the file's")
        _need(isinstance(a["matches"], list) and all(isinstance(x, dict) and x.get("work_id") == work_id
                                                       for x in a["matches"]), w,
              f"{f.name}: its matches name another work")
    return m


def _package_json(pkg: pf.Package, name: str) -> Any:
    try:
        return pf.parse_canonical(pkg.read(name))
    except (pf.NotCanonical, KeyError) as exc:
        raise UnsafeToSign(f"refusing to sign the package: {name} is missing or not canonical JSON ({exc})") from None


def _filing_statement(pkg: pf.Package, m: dict[str, Any], evidence_id: str) -> None:
    doc = _package_json(pkg, pf.STATEMENTS)
    stmts = doc.get("statements") if isinstance(doc, dict) else None
    ids = [s.get("tx") for s in m["statements"] if isinstance(s, dict)]
    if not isinstance(stmts, list) or len(stmts) != len(ids):
        raise UnsafeToSign("refusing to sign the package: its statements do not match its manifest")
    for st, tx_id in zip(stmts, ids, strict=True):
        body = st.get("tx", {}).get("body") if isinstance(st, dict) and isinstance(st.get("tx"), dict) else None
        if not isinstance(body, dict):
            continue
        if (body.get("type") == "evidence.file" and isinstance(body.get("payload"), dict)
                and body["payload"].get("evidence_id") == evidence_id
                and SM3(pf.canonical(body)).hexdigest() == tx_id):
            return
    raise UnsafeToSign(f"refusing to sign the package: it holds no evidence.file statement of {evidence_id}")


def check_package(path: Path, *, chain: str, certificate_fingerprint: str, evidence_id: str,
                  now_ms: int | None = None) -> None:
    """An unsigned evidence package (``GET /v1/evidence/{id}/package``) this client may sign:
    made out to its certificate, for this chain, signed-at time within ``CLOCK_SLACK_MS`` of
    the client's clock, every member present and listed with the SM3 and size recomputed here,
    and a statement that is the ``evidence.file`` of ``evidence_id`` with the id the manifest
    gives it. (Whether the proofs hold is the court verifier's job: ``rongxin evidence verify``.)"""
    w = "package"
    try:
        pkg = pf.open_package(path)
    except pf.PackageUnreadable as exc:
        raise UnsafeToSign(f"refusing to sign the package: {exc}") from None
    try:
        m = _package_json(pkg, pf.MANIFEST)
        _need(isinstance(m, dict) and set(m) == {"chain", "created_ms", "filer", "format", "genesis", "members",
                                                 "statements"}, w, "its manifest has other fields")
        _need(m["format"] == pf.FORMAT and m["chain"] == chain, w, f"it is for chain {m['chain']!r}, not {chain!r}")
        _need(m["filer"] == {"certificate": certificate_fingerprint}, w, "it is made out to another certificate")
        now = int(time.time() * 1000) if now_ms is None else now_ms
        _need(isinstance(m["created_ms"], int) and abs(m["created_ms"] - now) <= CLOCK_SLACK_MS, w,
              "its signing time is not this client's clock")
        members = m["members"]
        _need(isinstance(members, dict) and isinstance(m["statements"], list), w, "malformed manifest")
        _need(set(pkg.sizes) == set(members) | {pf.MANIFEST}, w, "its members are not the ones its manifest lists")
        for name, want in members.items():
            h, size = SM3(), 0
            for chunk in pkg.chunks(name):
                h.update(chunk)
                size += len(chunk)
            _need(want == {"sm3": h.hexdigest(), "size": size}, w, f"member {name}: SM3 or size recomputed here differ")
        _filing_statement(pkg, m, evidence_id)
    except pf.PackageUnreadable as exc:
        raise UnsafeToSign(f"refusing to sign the package: {exc}") from None
    finally:
        pkg.close()
