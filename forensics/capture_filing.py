"""Filing a browser capture as evidence: which of its files are matched against the registry,
the manifest of a capture filing, and the cases it opens (docs/works.md §4.3).

A capture (``forensics.capture.capture``) leaves files in a folder, each with a *role*
(``cases.CAPTURE_ROLES``). Its works are only known after matching, so a capture is filed
once, as one ``evidence.file`` whose manifest names, instead of one ``work_id``, the sorted
list ``works`` of every work any artefact matched (maybe none), every file as an artefact with
its ``role``, and each match as its own entry in its artefact's ``matches`` (score, offsets for
audio and video, region for a picture found inside the screenshot). The same transaction
opens or joins one case per matched work (``cases``). The node that received the files
countersigns the upload as for any filing.

Matching (E3): the screenshot and every page resource (``screenshot``, ``resource``) are
fingerprinted as queries (pictures: part search finds a registered picture inside the
screenshot and gives its region; audio and video: the offsets) and matched against every work
of the node's index with the fingerprint package's calibrated thresholds (``fingerprint.
matching``: a match it reports is above them). A file that cannot be fingerprinted (an icon
too small, an SVG, a format it does not read) is filed with no match and a ``note`` saying why.
The other roles (recording, WARC, HAR, DOM, environment report, custody log, facts) are filed
and hashed, not matched.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from ledger.codec import canonical
from ledger.errors import LedgerError

from .cases import CAPTURE_ROLES, MANIFEST_VERSION, MAX_ARTEFACTS, MAX_CAPTURE_FIELDS, MAX_MANIFEST_BYTES
from .media import media_type

if TYPE_CHECKING:  # the node's side only: a station filing through the API never loads the matcher
    from .service import PreparedFiling, WorksService

__all__ = ["CAPTURE_METHOD", "MATCHED_ROLES", "CaptureFile", "CaptureFilingError", "CapturedArtefact", "CapturedPage", "capture_facts",
           "capture_files", "file_capture", "safe_name"]

MATCHED_ROLES = ("screenshot", "resource")
CAPTURE_METHOD = "browser capture (headless Chromium, clean profile)"
#: the media type of a file no magic number identifies, by its role
ROLE_TYPES = {"warc": "application/warc", "har": "application/json", "dom": "text/html",
              "environment": "application/json", "custody": "application/json", "facts": "application/json"}
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]")
FACTS_BUDGET = 8 * 1024  # bytes of canonical JSON the capture facts may take in the manifest
FACT_BYTES = 512  # each fact's text at most


class CaptureFilingError(LedgerError):
    """A capture this module cannot file (an artefact with an unknown role)."""


class CapturedArtefact(Protocol):
    """``forensics.capture.Artefact``, as far as filing needs it."""

    @property
    def name(self) -> str: ...
    @property
    def path(self) -> Path: ...
    @property
    def sm3(self) -> str: ...
    @property
    def size(self) -> int: ...
    @property
    def role(self) -> str: ...


class CapturedPage(Protocol):
    """``forensics.capture.CaptureResult``, as far as filing needs it."""

    @property
    def url(self) -> str: ...
    @property
    def final_url(self) -> str | None: ...
    @property
    def artefacts(self) -> Sequence[CapturedArtefact]: ...
    @property
    def resources(self) -> Sequence[CapturedArtefact]: ...
    @property
    def facts(self) -> dict[str, Any]: ...


@dataclass(frozen=True)
class CaptureFile:
    """One file of a capture to file: where it is, its name in the filing, its role."""

    path: Path
    name: str
    role: str


def safe_name(name: str, taken: set[str]) -> str:
    """``name`` as a package artefact name (``[A-Za-z0-9][A-Za-z0-9._-]{0,127}``), unique
    among ``taken`` (which it joins)."""
    base = _UNSAFE.sub("_", name.rsplit("/", 1)[-1]).lstrip("._-")[:100] or "artefact"
    out, n = base, 1
    while out in taken:
        n += 1
        stem, dot, ext = base.rpartition(".")
        out = f"{stem}-{n}.{ext}" if dot and stem else f"{base}-{n}"
    taken.add(out)
    return out


def capture_files(page: CapturedPage, limit: int = MAX_ARTEFACTS) -> list[CaptureFile]:
    """The files of a capture to file, at most ``limit``: every artefact of the capture itself
    first, then the page's resources in the capture's order (the WARC holds every resource in
    any case). A resource byte-identical to one already listed is left out."""
    out: list[CaptureFile] = []
    taken: set[str] = set()
    seen: set[str] = set()
    for a in [*page.artefacts, *page.resources]:
        if len(out) >= limit:
            break
        if a.role not in CAPTURE_ROLES:
            raise CaptureFilingError(f"capture artefact {a.name[:80]} has the unknown role {a.role[:40]!r}")
        if a.size <= 0 or (a.role == "resource" and a.sm3 in seen):
            continue
        seen.add(a.sm3)
        out.append(CaptureFile(Path(a.path), safe_name(a.name, taken), a.role))
    return out


def _scalars(facts: dict[str, Any], prefix: str = "") -> Iterable[tuple[str, str | int]]:
    for k in sorted(facts):
        v = facts[k]
        key = f"{prefix}{k}"[:64]
        if isinstance(v, bool):
            yield key, str(v).lower()
        elif isinstance(v, int) and abs(v) < 1 << 53:
            yield key, v
        elif isinstance(v, float):
            yield key, repr(v)[:64]
        elif isinstance(v, str):
            yield key, v[:1024]
        elif isinstance(v, dict) and not prefix:
            yield from _scalars(v, f"{k}.")


def capture_facts(page: CapturedPage, *, where: str) -> dict[str, str | int]:
    """``manifest.capture`` of a capture filing: the method, the address asked for and the one
    reached, where the capture ran (``where``: ``station`` or ``node <id>``), then the capture's
    own scalar facts (top level and one level down, keys ``a.b``; text cut at 1024 bytes) up to
    the manifest's 32 fields and ``FACTS_BUDGET`` bytes (each fact's text cut at ``FACT_BYTES``).
    Every fact is in the ``facts`` artefact in full."""
    out: dict[str, str | int] = {"method": CAPTURE_METHOD, "source": page.url[:1024], "where": where[:1024]}
    if page.final_url:
        out["final_url"] = page.final_url[:1024]
    size = len(canonical(out))
    for k, v in _scalars(page.facts):
        if len(out) >= MAX_CAPTURE_FIELDS:
            break
        if k in out or len(k.encode()) > 64:
            continue
        value = v if isinstance(v, int) else v.encode()[:FACT_BYTES].decode("utf-8", "ignore")
        more = len(canonical({k: value})) + 1
        if size + more > FACTS_BUDGET:
            continue
        out[k], size = value, size + more
    return out


def _unmatched(service: WorksService, f: CaptureFile, note: str = "") -> tuple[dict[str, Any], dict[str, Any]]:
    sm3, size = service.blobs.put_file(f.path)
    with f.path.open("rb") as fh:
        mt = media_type(fh.read(16), None)
    if mt == "application/octet-stream":
        mt = ROLE_TYPES.get(f.role, mt)
    art: dict[str, Any] = {"matches": [], "media_type": mt, "name": f.name, "role": f.role, "sm3": sm3, "size": size}
    if note:
        art["note"] = note.encode()[:512].decode("utf-8", "ignore")
    return art, {"file": f.name, "matches": [], "role": f.role, "score": 0.0, "sm3": sm3}


def _artefact(service: WorksService, f: CaptureFile) -> tuple[dict[str, Any], dict[str, Any]]:
    from fingerprint.errors import EmptyMedia, FingerprintError, MediaTooLarge, UnreadableMedia

    from .service import FilingError

    if f.role not in MATCHED_ROLES:
        return _unmatched(service, f)
    try:
        art, shown = service.match_artefact(f.path, None)
    except (EmptyMedia, UnreadableMedia, MediaTooLarge, FingerprintError, FilingError) as exc:
        return _unmatched(service, f, f"not fingerprinted: {exc}")
    art = {**art, "name": f.name, "role": f.role}
    shown = {**shown, "file": f.name, "role": f.role, "matches": [{**m, "file": f.name} for m in shown["matches"]]}
    return art, shown


def file_capture(service: WorksService, files: Sequence[CaptureFile], *, filer: str, created_ms: int,
                 capture: dict[str, Any], evidence_id: str | None = None) -> PreparedFiling:
    """Store, match and countersign a capture's files: the manifest (``works`` form) for the
    legal centre ``filer`` to sign, and per file what it matched."""
    from .service import FilingError, PreparedFiling

    if not files:
        raise FilingError("a capture files at least one artefact")
    if len(files) > MAX_ARTEFACTS:
        raise FilingError(f"a filing holds at most {MAX_ARTEFACTS} artefacts")
    if len({f.name for f in files}) != len(files):
        raise FilingError("two artefacts have the same file name")
    for f in files:
        if f.role not in CAPTURE_ROLES:
            raise FilingError(f"{f.name[:80]}: unknown role {f.role[:40]!r}; one of {', '.join(CAPTURE_ROLES)}")
    pairs = [_artefact(service, f) for f in files]
    eid = evidence_id or "e-" + secrets.token_hex(10)
    while True:
        arts = [a for a, _ in pairs]
        works = sorted({m["work_id"] for a in arts for m in a["matches"]})
        manifest = {"artefacts": arts, "capture": dict(capture), "chain": service.chain, "created_ms": created_ms,
                    "evidence_id": eid, "filer": filer, "upload": {"node": service.node_id, "signature": "00" * 72},
                    "version": MANIFEST_VERSION, "works": works}
        # over the manifest's size limit: the last resource that matched nothing goes (the WARC keeps it)
        spare = [i for i, (a, _) in enumerate(pairs) if a["role"] == "resource" and not a["matches"]]
        if len(canonical(manifest)) <= MAX_MANIFEST_BYTES or not spare:
            break
        del pairs[spare[-1]]
    manifest["upload"] = service.upload_signature(filer, eid, arts)
    return PreparedFiling(eid, manifest, [sh for _, sh in pairs])


def match_rows(prepared_matches: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """The capture's matches as the CLI prints them: one row per match, the best first:
    ``{"work_id", "artefact", "role", "score", "work_start_s", "query_start_s", "duration_s",
    "region", "method"}`` (offsets ``None`` for pictures, ``region`` ``None`` for audio)."""
    rows = []
    for shown in prepared_matches:
        for m in shown.get("matches", []):
            rows.append({"artefact": shown["file"], "duration_s": m.get("duration_s"), "method": m.get("method"),
                         "query_start_s": m.get("query_start_s"), "region": m.get("region"),
                         "role": shown.get("role"), "score": float(m.get("score", 0.0)), "work_id": m["work_id"],
                         "work_start_s": m.get("work_start_s")})
    return sorted(rows, key=lambda r: (-r["score"], r["work_id"], r["artefact"]))
