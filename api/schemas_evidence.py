"""OpenAPI models of the evidence and case routes (``api/routes/evidence.py``, ``cases.py``).
The routes answer with ``Response`` objects; these models document them."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

HASH = r"^[0-9a-f]{64}$"
_REF = "#/components/schemas/{}"


class _Out(BaseModel):
    model_config = ConfigDict(extra="allow")


class MatchOut(_Out):
    """One match of an artefact against the work (``fingerprint.matching``)."""

    work_id: str
    score: float = Field(description="the fingerprint score (1.0 = the calibrated threshold)")
    method: str
    query_start_s: float | None = None
    work_start_s: float | None = None
    duration_s: float | None = None
    region: list[int] | None = Field(None, description="pictures: where the work sits in the artefact, [x, y, w, h] "
                                                        "in the artefact's pixels")
    inliers: int | None = Field(None, description="pictures: how many independent features agreed")
    spread: float | None = None
    query_share: float | None = Field(None, description="pictures: the fraction of the artefact the work explains")


class FileMatchOut(_Out):
    """Per uploaded file: whether and how well it matches the work."""

    file: str
    sm3: str = Field(pattern=HASH)
    matched: bool
    score: float = Field(description="the best match's score, 0.0 when none")
    matches: list[MatchOut]


class PreparedOut(_Out):
    """A filing matched and waiting for the legal centre's signature."""

    model_config = ConfigDict(extra="allow", json_schema_extra={"examples": [{
        "evidence_id": "e-0a0a7bcd53c009ca334d", "work_id": "w-521815b4caece1feffef", "holder": "36" * 20,
        "manifest": {"version": 1, "chain": "rongxin-local", "evidence_id": "e-0a0a7bcd53c009ca334d",
                     "filer": "b8" * 20, "work_id": "w-521815b4caece1feffef", "created_ms": 1733370000000,
                     "capture": {"method": "uploaded by the legal centre"},
                     "artefacts": [{"name": "copy.jpg", "sm3": "00" * 32, "size": 10350, "media_type": "image/jpeg",
                                    "matches": [{"work_id": "w-521815b4caece1feffef", "score_milli": 7454,
                                                 "method": "orb"}]}]},
        "matches": [{"file": "copy.jpg", "sm3": "00" * 32, "matched": True, "score": 7.4545,
                     "matches": [{"work_id": "w-521815b4caece1feffef", "score": 7.4545, "method": "orb"}]}]}]})
    evidence_id: str
    work_id: str | None = Field(description="the work; null for a capture filing (docs/works.md §4.3)")
    holder: str | None = Field(description="the work's holder (its registrant's account): a party of a new case; "
                                           "null for a capture filing")
    works: list[str] | None = Field(None, description="a capture filing: the works its files matched")
    manifest: dict[str, Any] = Field(description="docs/works.md §4.1: sign rules.manifest_message(manifest)")
    matches: list[FileMatchOut]


class FiledOut(_Out):
    """A committed filing."""

    evidence_id: str
    case_id: str | None
    work_id: str | None
    tx_id: str = Field(pattern=HASH)
    height: int
    manifest_sm3: str = Field(pattern=HASH)
    matches: list[FileMatchOut]
    timestamp: dict[str, Any] | None = Field(None, description="the RFC 3161 time stamp on the manifest "
                                                               "(docs/evidence-format.md §11), or {error}")
    works: list[str] | None = None
    case_ids: list[str] | None = None


class EvidenceOut(_Out):
    """The filing record ``evidence/e/<id>`` (docs/works.md §4.2)."""

    evidence_id: str
    case_id: str | None
    filer: str
    work_id: str | None
    works: list[str] | None = None
    case_ids: list[str] | None = None
    height: int
    time_ms: int
    tx: str
    manifest: dict[str, Any]
    manifest_sm3: str
    signature: str


class CaseStepOut(_Out):
    by: str
    height: int
    note: str
    state: str
    time_ms: int
    tx: str


class CaseOut(_Out):
    """The case record ``case/c/<id>`` (docs/works.md §5.1)."""

    case_id: str
    work_id: str
    opener: str
    parties: list[str]
    evidence: list[str]
    state: str
    height: int
    history: list[CaseStepOut]


class MovedOut(_Out):
    case_id: str
    state: str
    tx_id: str = Field(pattern=HASH)
    height: int


class CaptureIn(BaseModel):
    """``POST /v1/evidence/capture``: the address to capture."""

    model_config = ConfigDict(extra="forbid")
    url: str = Field(min_length=1, max_length=2048, description="an http(s) address")


CAPTURE_BODY = {"required": True, "content": {"application/json": {"schema": {"$ref": _REF.format("CaptureIn")}}}}
TX_BODY = {"required": True, "content": {"application/json": {"schema": {"$ref": _REF.format("TxIn")}}}}
FILES_BODY = {"required": True, "content": {"application/octet-stream": {"schema": {
    "type": "string", "format": "binary",
    "description": "the files' bytes one after another, in the order and sizes of the file=SIZE:NAME parameters"}}}}
ZIP_OK = {"content": {"application/zip": {"schema": {"type": "string", "format": "binary"}}},
          "description": "the evidence package (docs/evidence-format.md) without manifest.sig, streamed"}
