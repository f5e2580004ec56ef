"""The SDK's browser-capture filing (docs/api.md §6.1; docs/works.md §4.3).

Two ways, both filing through the node's API:

- ``file_capture(client, page)``: a capture made here (the legal centre's capture station,
  ``forensics.capture.capture``) is uploaded with its roles and facts (``POST
  /v1/evidence/prepare`` without ``work``), the node matches every picture, audio and video
  file against the registry and countersigns the upload, this client checks the manifest
  (``check_capture_filing``), signs it and files it with one case per matched work;
- ``capture_on_node(client, url)``: the node captures the page on its own host (``POST
  /v1/evidence/capture``), matches and prepares the manifest; this client checks it (every
  artefact with its SM3, the works exactly the matches' works, this chain and identity), signs
  and files it the same way.

The answer of both: ``{"evidence_id", "case_ids", "tx_id", "height", "artefacts": [{"name",
"sm3", "size", "role"}], "matches": [{"work_id", "artefact", "score", "work_start_s",
"query_start_s", ...}], "works", "timestamp", "manifest_sm3"}``.
"""

from __future__ import annotations

import json
import time
import urllib.parse
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from forensics.capture_filing import CapturedPage, CaptureFile, capture_facts, capture_files, match_rows
from forensics.cases import CAPTURE_ROLES, MANIFEST_VERSION, MAX_CAPTURE_WORKS
from forensics.rules import ID_RE, manifest_message, sign

from .sdk_check import CLOCK_SLACK_MS, LocalFile, UnsafeToSign, hash_files
from .sdk_evidence import _case_exists, _json_call, _need_identity, _upload, show_case

if TYPE_CHECKING:
    from .sdk import LedgerClient

__all__ = ["capture_on_node", "case_for", "check_capture_filing", "file_capture", "file_prepared_capture",
           "prepare_capture"]

MANIFEST_FIELDS = frozenset({"artefacts", "capture", "chain", "created_ms", "evidence_id", "filer", "upload",
                             "version", "works"})
ARTEFACT_FIELDS = frozenset({"matches", "media_type", "name", "role", "size", "sm3"})


def _need(cond: bool, why: str) -> None:
    if not cond:
        raise UnsafeToSign(f"refusing to sign the capture manifest the node prepared: {why}")


def check_capture_filing(prep: Any, *, chain: str, filer: str, files: Sequence[LocalFile] | None,
                         roles: Sequence[str] | None, capture: dict[str, Any] | None,
                         now_ms: int | None = None) -> dict[str, Any]:
    """The manifest of a capture filing the node prepared, if it is for this chain and filer,
    at a time within ``CLOCK_SLACK_MS`` of this clock, names exactly the files uploaded (name,
    SM3, size, role; ``files=None`` when the node captured them itself), the capture facts sent
    (``capture=None``: the node's), every match's work among ``works`` and ``works`` exactly
    those works, sorted."""
    _need(isinstance(prep, dict) and isinstance(prep.get("manifest"), dict), "no manifest")
    m: dict[str, Any] = prep["manifest"]
    _need(set(m) == MANIFEST_FIELDS, f"its fields are {sorted(m)}, not {sorted(MANIFEST_FIELDS)}")
    _need(m["version"] == MANIFEST_VERSION and not isinstance(m["version"], bool), f"version {m['version']!r}")
    _need(m["chain"] == chain, f"it is for chain {m['chain']!r}, not {chain!r}")
    _need(m["filer"] == filer, f"it names filer {str(m['filer'])[:80]}, not this identity's account {filer}")
    _need(isinstance(m["evidence_id"], str) and ID_RE.fullmatch(m["evidence_id"]) is not None
          and prep.get("evidence_id") == m["evidence_id"], "its evidence id is malformed or differs")
    _need(capture is None or m["capture"] == capture, "its capture facts are not the ones sent")
    now = int(time.time() * 1000) if now_ms is None else now_ms
    _need(isinstance(m["created_ms"], int) and abs(m["created_ms"] - now) <= CLOCK_SLACK_MS,
          f"its time {m['created_ms']!r} is not this client's clock")
    arts = m["artefacts"]
    _need(isinstance(arts, list) and all(isinstance(a, dict) and set(a) - {"note"} == ARTEFACT_FIELDS for a in arts),
          "an artefact has other fields")
    _need(all(a["role"] in CAPTURE_ROLES and isinstance(a["matches"], list) for a in arts), "an artefact's role")
    if files is not None:
        _need(roles is not None and len(roles) == len(files), "roles and files differ in number")
        sent = {f.name: (f, r) for f, r in zip(files, roles or (), strict=True)}
        _need([a["name"] for a in arts] == [f.name for f in files if f.name in {a["name"] for a in arts}],
              "its artefacts are not the files sent, in their order")
        for a in arts:
            f, r = sent[a["name"]]
            _need(a["sm3"] == f.sm3 and a["size"] == f.size and a["role"] == r,
                  f"artefact {str(a['name'])[:80]!r} is not the file sent as {f.name!r} ({r})")
        left = [n for n, (_, r) in sent.items() if n not in {a["name"] for a in arts}]
        _need(all(sent[n][1] == "resource" for n in left), f"it leaves out {left[:3]}, not page resources")
    named = sorted({x.get("work_id") for a in arts for x in a["matches"] if isinstance(x, dict)}, key=str)
    _need(m["works"] == named and len(named) <= MAX_CAPTURE_WORKS, "its works are not exactly the works matched")
    return m


def _local(files: Sequence[CaptureFile]) -> tuple[list[LocalFile], str]:
    from .sdk import ClientError

    try:
        local, body_sm3 = hash_files([f.path for f in files])
    except OSError as exc:
        raise ClientError(f"{getattr(exc, 'filename', None) or 'a file'}: cannot be read: {exc.strerror or exc}") \
            from None
    # the names the filing gives (package-safe, unique), not the files' own
    return [LocalFile(f.path, c.name, f.sm3, f.size, f.head) for f, c in zip(local, files, strict=True)], body_sm3


def prepare_capture(client: LedgerClient, files: Sequence[CaptureFile], capture: dict[str, Any]) -> dict[str, Any]:
    """``POST /v1/evidence/prepare`` of a capture's files (no ``work``; ``role`` per file,
    ``capture`` the facts): the node's checked manifest and matches."""
    ident = _need_identity(client)
    local, body_sm3 = _local(files)
    query = [*[("file", f"{f.size}:{f.name}") for f in local], *[("role", f.role) for f in files],
             ("capture", json.dumps(capture, sort_keys=True, separators=(",", ":"), ensure_ascii=False))]
    target = "/v1/evidence/prepare?" + urllib.parse.urlencode(query)
    prep = _upload(client, target, [f.path for f in local], body_sm3, sum(f.size for f in local))
    check_capture_filing(prep, chain=client.chain, filer=ident.account, files=local, roles=[f.role for f in files],
                         capture=capture)
    return prep


def case_for(client: LedgerClient, work_id: str) -> tuple[str, bool]:
    """The case a capture joins for ``work_id``: this legal centre's case ``c-<work>-<account
    prefix>`` while it is not closed, else a new ``c-<work>-<account prefix>-<n>``. (id, exists)"""
    base = f"c-{work_id}-{_need_identity(client).account[:12]}"[:128]
    for n in range(1, 64):
        cid = base if n == 1 else f"{base[:120]}-{n}"
        if not _case_exists(client, cid):
            return cid, False
        if _joinable(client, cid):
            return cid, True
    raise UnsafeToSign(f"no free case id for work {work_id}")


def _joinable(client: LedgerClient, case_id: str) -> bool:
    """Whether this identity may join case ``case_id``: it can read it and it is not closed (a
    case it may not read is another centre's)."""
    from .sdk import ClientError

    try:
        return show_case(client, case_id).get("state") != "closed"
    except ClientError:
        return False


def file_prepared_capture(client: LedgerClient, prep: dict[str, Any], *, parties: Sequence[str] = (),
                          note: str = "") -> dict[str, Any]:
    """Sign a checked capture manifest and file it (``evidence.file`` with ``cases``: per matched
    work, the case ``case_for`` gives, opened with the work's holder and ``parties``)."""
    ident = _need_identity(client)
    manifest = prep["manifest"]
    cases = []
    for wid in manifest["works"]:
        cid, exists = case_for(client, wid)
        case: dict[str, Any] = {"case_id": cid, "work_id": wid}
        if not exists:
            case["parties"] = sorted({str(client.work(wid)["holder"]), *parties})
        if note:
            case["note"] = note
        cases.append(case)
    payload: dict[str, Any] = {"evidence_id": prep["evidence_id"], "manifest": manifest,
                               "signature": sign(ident.key, manifest_message(manifest))}
    if cases:
        payload["cases"] = cases
    filed = _json_call(client, "POST", "/v1/evidence", client.build("evidence.file", payload).encode())
    return {"artefacts": [{"name": a["name"], "role": a["role"], "sm3": a["sm3"], "size": a["size"]}
                          for a in manifest["artefacts"]],
            "case_ids": filed.get("case_ids", []), "evidence_id": filed["evidence_id"], "height": filed["height"],
            "manifest_sm3": filed.get("manifest_sm3"), "matches": match_rows(prep.get("matches", [])),
            "timestamp": filed.get("timestamp"), "tx_id": filed["tx_id"], "works": manifest["works"]}


def file_capture(client: LedgerClient, page: CapturedPage, *, where: str = "station", parties: Sequence[str] = (),
                 note: str = "") -> dict[str, Any]:
    """File a capture made here (``forensics.capture.capture``'s result) through the node."""
    files = capture_files(page)
    prep = prepare_capture(client, files, capture_facts(page, where=where))
    return file_prepared_capture(client, prep, parties=parties, note=note)


def capture_on_node(client: LedgerClient, url: str, *, parties: Sequence[str] = (), note: str = "",
                    timeout: float = 300.0) -> dict[str, Any]:
    """``POST /v1/evidence/capture``: the node captures ``url`` on its host and prepares the
    filing; checked, signed and filed here."""
    ident = _need_identity(client)
    body = json.dumps({"url": url}, separators=(",", ":")).encode()
    old = client.timeout
    client.timeout = max(old, timeout)
    try:
        prep = _json_call(client, "POST", "/v1/evidence/capture", body)
    finally:
        client.timeout = old
    check_capture_filing(prep, chain=client.chain, filer=ident.account, files=None, roles=None, capture=None)
    return file_prepared_capture(client, prep, parties=parties, note=note)
