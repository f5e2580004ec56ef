"""Response schemas of the joint-computation routes (``/v1/mpc/...``, docs/api.md §8)."""

from __future__ import annotations

from typing import Any

from pydantic import ConfigDict, Field

from .schemas_evidence import HASH, _Out


class ProposedOut(_Out):
    computation_id: str = Field(pattern=HASH)
    proposal_sm3: str = Field(pattern=HASH)
    tx_id: str = Field(pattern=HASH)
    height: int


class ApprovedOut(_Out):
    computation_id: str = Field(pattern=HASH)
    tx_id: str = Field(pattern=HASH)
    height: int
    waiting_for: list[str]


class ComputationOut(_Out):
    """A computation: proposal, approvals, commitments filed, status and recorded result."""

    model_config = ConfigDict(extra="allow", json_schema_extra={"examples": [{
        "computation_id": "ab" * 32, "status": "done", "proposal_sm3": "cd" * 32,
        "outputs": {"totals": {"w0001": 1234}}, "outputs_sm3": "ef" * 32, "transcript_sm3": "01" * 32,
        "tx_id": "23" * 32, "height": 42, "error": None}]})
    computation_id: str = Field(pattern=HASH)
    status: str
    proposal: dict[str, Any]
    proposal_sm3: str = Field(pattern=HASH)
    approvals: dict[str, Any]
    committed: list[str]
    outputs: Any = None
    outputs_sm3: str | None = None
    transcript_sm3: str | None = None
    tx_id: str | None = None
    height: int | None = None
    error: str | None = None


class AuditOut(_Out):
    computation_id: str = Field(pattern=HASH)
    ok: bool
    reason: str | None
    buckets: int
    buckets_checked: int
