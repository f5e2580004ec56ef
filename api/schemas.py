"""Pydantic models of every request (``...In``) and response (``...Out``) of the node API.

They are what the OpenAPI document (``/openapi.json``) publishes. Routes answer canonical JSON
built by ``ledger.node.queries`` (block records straight from the store, without a re-encode on
the hot path), so the models document those answers; ``tests/api`` validates real answers
against them and a schemathesis run checks a live node against the document.
Field formats are those of docs/transactions.md.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, JsonValue

from ledger.node.intake import MAX_BATCH

HEX = r"^(?:[0-9a-f]{2})*$"
HASH = r"^[0-9a-f]{64}$"
TX_ID = r"^[0-9a-fA-F]{64}$"

_TX_EXAMPLE: dict[str, JsonValue] = {
    "body": {"chain": "rongxin-local", "expiry": 120000, "nonce": 5731298734,
             "payload": {"key": "title", "value": "县域融媒体"},
             "sender": "04" + "3a" * 64, "type": "kv.set"},
    "sig": "3045022100" + "ab" * 32 + "0220" + "cd" * 32,
}


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid")


class _Out(BaseModel):
    model_config = ConfigDict(extra="allow")


# ---------------------------------------------------------------- requests
class TxBodyIn(_In):
    """The signed part of a transaction (docs/transactions.md §3)."""

    chain: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$", description="the chain id")
    expiry: int = Field(ge=0, le=(1 << 63) - 1, description="last block height that may include it")
    nonce: int = Field(ge=0, le=(1 << 63) - 1, description="(sender, nonce) is used at most once")
    payload: dict[str, Any] = Field(description="a JSON object; integers only, no floats")
    sender: str = Field(pattern=r"^04[0-9a-f]{128}$", description="the signer's SM2 point, 65 bytes hex")
    type: str = Field(pattern=r"^[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*){0,3}$", description="e.g. kv.set")


class TxIn(_In):
    """One signed transaction: SM2 signature (DER, hex) over ``canonical(body)``."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [_TX_EXAMPLE]})
    body: TxBodyIn
    sig: str = Field(pattern=HEX, min_length=2, description="DER SM2 signature, lowercase hex")


class TxBatchIn(_In):
    """Several transactions at once; each is answered on its own."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{"txs": [_TX_EXAMPLE]}]})
    txs: list[TxIn] = Field(max_length=MAX_BATCH, description=f"at most {MAX_BATCH} transactions")


# ---------------------------------------------------------------- errors
class ErrorOut(_Out):
    code: str = Field(description="stable, machine-readable: malformed_json, invalid_request, invalid_transaction, "
                                  "transaction_refused, "
                                  "not_found, body_too_large, too_many_transactions, method_not_allowed, ...")
    message: str = Field(description="what is wrong, for a person")
    details: Any = Field(default=None, description="anything else the client can use (or null)")


class ErrorBody(BaseModel):
    """Every error answer of the API has this one shape."""

    model_config = ConfigDict(json_schema_extra={"examples": [
        {"error": {"code": "transaction_refused", "message": "bad signature: signature does not verify",
                   "details": {"id": "9f" * 32}}}]})
    error: ErrorOut


# ---------------------------------------------------------------- status
class IdentityOut(_Out):
    """The signer of a request (docs/api-auth.md §7)."""
    model_config = ConfigDict(extra="allow", json_schema_extra={"examples": [{
        "common_name": "legal", "account": "3f" * 20, "organization": "Legal Centre (demo)", "role": "user",
        "business": "legal", "fingerprint": "a1" * 32, "serial": "5c" * 19, "not_after": "2029-03-09T02:29:22+00:00",
        "registered_at": 14, "status": "active"}]})
    common_name: str
    account: str = Field(pattern=r"^[0-9a-f]{40}$")
    organization: str
    role: Literal["admin", "user"]
    business: Literal["holder", "legal", "court", "platform", "regulator"] | None
    fingerprint: str = Field(pattern=HASH, description="SM3 of the certificate's DER")
    serial: str = Field(pattern=r"^[0-9a-f]+$")
    not_after: str
    registered_at: int | None = Field(description="height of the user.register that bound the certificate")
    status: str


class StatusOut(_Out):
    model_config = ConfigDict(extra="allow", json_schema_extra={"examples": [{
        "node_id": "val1", "role": "consensus", "org": "County A", "chain": "rongxin-local",
        "genesis": "9c" * 32, "height": 812,
        "head_hash": "5e" * 32, "view": 815, "mempool": 0, "validators": ["sup1", "val1", "val2", "val3", "val4"],
        "peers_online": ["full1", "sup1", "val2", "val3", "val4"]}]})
    node_id: str
    role: str
    org: str
    chain: str
    genesis: str = Field(pattern=HASH, description="hash of the chain's genesis block (tells one local consortium from another)")
    height: int = Field(ge=0, description="last committed height")
    head_hash: str = Field(pattern=HASH, description="hash of the last committed block")
    view: int = Field(ge=0)
    mempool: int = Field(ge=0, description="transactions waiting for a block")
    validators: list[str]
    peers_online: list[str]


# ---------------------------------------------------------------- transactions
class SubmitOut(_Out):
    """One transaction's answer: accepted (pending, or already committed) or refused with a reason."""

    model_config = ConfigDict(extra="allow", json_schema_extra={"examples": [
        {"id": "9f" * 32, "accepted": True, "status": "pending"},
        {"id": "9f" * 32, "accepted": False, "reason": "transaction expired at height 10 (chain is at 12)"}]})
    id: str | None = Field(pattern=HASH, description="null when the transaction could not be decoded")
    accepted: bool
    status: Literal["pending", "committed"] | None = None
    reason: str | None = None


class BatchOut(_Out):
    results: list[SubmitOut] = Field(description="one per submitted transaction, in order")


class TxBodyOut(_Out):
    chain: str
    expiry: int
    nonce: int
    payload: dict[str, Any]
    sender: str
    type: str


class TxWireOut(_Out):
    body: TxBodyOut
    sig: str = Field(pattern=HEX)


class EventOut(_Out):
    type: str
    keys: list[str]
    data: Any


class ReceiptOut(_Out):
    """What executing a transaction did: ``code`` 0 is success (docs/contracts.md)."""

    code: int
    info: str
    events: list[EventOut] | None = None
    fuel: int | None = None
    result: Any = None
    tx: str | None = Field(default=None, pattern=HASH,
                           description="the transaction id; present where the receipt is a results-tree leaf")
    redacted: bool | None = Field(default=None, description="true: the receipt of an evidence or case transaction the "
                                  "requester may not read, shown as its code only (docs/api.md §7)")


class InclusionProofOut(_Out):
    """The transaction id is leaf ``index`` of ``size`` under the block header's ``txs`` root."""

    tx: str = Field(pattern=HASH)
    height: int
    index: int
    size: int
    path: list[str]
    root: str = Field(pattern=HASH)


class ReceiptProofOut(_Out):
    """The receipt is leaf ``index`` of ``size`` under ``root``, which the header of block
    ``certified_in`` carries as ``results`` (docs/transactions.md)."""

    height: int
    index: int
    size: int
    path: list[str]
    root: str = Field(pattern=HASH)
    certified_in: int | None


class TxOut(_Out):
    """A transaction by id: ``pending`` (in this node's mempool) or ``committed`` with its
    block, receipt, inclusion proof and, once its block's results are certified, receipt proof."""

    model_config = ConfigDict(extra="allow", json_schema_extra={"examples": [
        {"id": "9f" * 32, "status": "pending"},
        {"id": "9f" * 32, "status": "committed", "height": 12, "index": 0, "block_hash": "5e" * 32,
         "receipt": {"code": 0, "info": "ok"}, "tx": _TX_EXAMPLE,
         "proof": {"tx": "9f" * 32, "height": 12, "index": 0, "size": 1, "path": [], "root": "9f" * 32}}]})
    id: str
    status: Literal["pending", "committed"]
    height: int | None = None
    index: int | None = None
    block_hash: str | None = Field(default=None, pattern=HASH)
    receipt: ReceiptOut | None = None
    tx: TxWireOut | None = None
    proof: InclusionProofOut | None = None
    receipt_proof: ReceiptProofOut | None = None
    redacted: bool | None = Field(default=None, description="true: an evidence or case transaction the requester "
                                  "may not read: tx null, receipt code only (docs/api.md §7)")


# ---------------------------------------------------------------- blocks
class QcSigOut(_Out):
    by: str
    sig: str = Field(pattern=HEX)


class QcOut(_Out):
    """A quorum certificate: n - f validators' SM2 signatures over the block's vote."""

    chain: str
    height: int
    view: int
    block: str = Field(pattern=HASH)
    sigs: list[QcSigOut]


class ExecOut(_Out):
    """A root a header certifies for committed block ``height``."""

    height: int
    root: str = Field(pattern=HASH)


class HeaderOut(_Out):
    """Block header (docs/transactions.md §4); its SM3 hash is the block hash."""

    chain: str
    height: int
    view: int
    parent: str = Field(pattern=HASH)
    justify: QcOut
    proposer: str
    txs: str = Field(pattern=HASH)
    count: int
    exec: ExecOut
    results: ExecOut | None = Field(default=None, description="the results root of block exec.height "
                                    "(docs/transactions.md §10); absent only in the genesis")
    validators: str = Field(pattern=HASH)
    time: int


class BlockOut(_Out):
    model_config = ConfigDict(extra="allow", json_schema_extra={"examples": [{
        "height": 0, "hash": "5e" * 32, "qc": None, "tx_ids": [], "receipts": [],
        "header": {"chain": "rongxin-local", "height": 0, "view": 0, "parent": "00" * 32,
                   "justify": {"chain": "rongxin-local", "height": 0, "view": 0, "block": "00" * 32, "sigs": []},
                   "proposer": "genesis", "txs": "1a" * 32, "count": 0, "exec": {"height": 0, "root": "00" * 32},
                   "validators": "7c" * 32, "time": 0}}]})
    height: int
    hash: str = Field(pattern=HASH)
    header: HeaderOut
    qc: QcOut | None = Field(description="the QC certifying this block (null for genesis)")
    tx_ids: list[str]
    receipts: list[ReceiptOut]


# ---------------------------------------------------------------- state, events, audit, contracts
class StateProofOut(_Out):
    format: str
    leaf: dict[str, str] | None
    siblings: list[str]


class StateOut(_Out):
    """A state value and its sparse-Merkle proof against ``root`` (docs/spec/state.md)."""

    model_config = ConfigDict(extra="allow", json_schema_extra={"examples": [{
        "key": "kv/title", "height": 12, "root": "ab" * 32, "value": "县域融媒体", "value_hex": "e58ebf",
        "proof": {"format": "smt-sm3-v1", "leaf": {"key_hash": "01" * 32, "value_hash": "02" * 32},
                  "siblings": []}}]})
    key: str
    height: int
    root: str = Field(pattern=HASH)
    value: str | None = Field(description="the value as UTF-8 text, null when it is not text")
    value_hex: str | None
    proof: StateProofOut


class EventRecordOut(_Out):
    event: EventOut
    height: int
    index: int
    seq: int
    tx: str = Field(pattern=HASH)


class EventsOut(_Out):
    model_config = ConfigDict(extra="allow", json_schema_extra={"examples": [{"events": [{
        "event": {"type": "ft.Transfer", "keys": ["a1" * 20, "b2" * 20],
                  "data": {"symbol": "PTS", "from": "a1" * 20, "to": "b2" * 20, "amount": 70}},
        "height": 40, "index": 3, "seq": 0, "tx": "9f" * 32}]}]})
    events: list[EventRecordOut]


class AuditRecordOut(_Out):
    actor: str
    sender: str
    type: str
    payload: dict[str, Any]
    code: int
    info: str
    height: int
    index: int
    time_ms: int
    tx: str = Field(pattern=HASH)


class AuditOut(_Out):
    records: list[AuditRecordOut]


class ContractOut(_Out):
    """A user contract: record, versions by number, and every lifecycle step."""

    model_config = ConfigDict(extra="allow", json_schema_extra={"examples": [{
        "name": "points", "owner": "a1" * 20, "status": "active", "version": 1, "next": 2, "steps": 4,
        "permissions": {}, "description": "",
        "versions": {"1": {"code_hash": "c3" * 32, "size": 812, "methods": ["transfer"], "has_init": True,
                           "status": "installed", "by": "a1" * 20, "height": 20, "approvals": []}},
        "history": [{"step": "upload", "by": "a1" * 20, "height": 20, "time_ms": 0, "tx": "9f" * 32,
                     "version": 0}]}]})
    name: str
    owner: str
    status: str
    version: int
    next: int
    steps: int
    permissions: dict[str, list[str]]
    versions: dict[str, dict[str, Any]]
    history: list[dict[str, Any]]


class ProofBundleOut(_Out):
    """``GET /v1/proofs``: what an evidence package carries about committed transactions
    (docs/evidence-format.md §3)."""

    model_config = ConfigDict(extra="forbid")
    chain: str
    genesis: dict[str, JsonValue] = Field(description="the genesis header (its hash covers the root fingerprint)")
    genesis_attestation: dict[str, str] | None = Field(
        description="the consortium root's signature over the genesis hash, {chain, format, genesis, sig} "
                    "(docs/evidence-format.md §3.2); null when the node's consortium folder has none")
    validators: list[dict[str, JsonValue]] = Field(description="validator-set history from genesis: "
                                                              "{from_height, set[, handover]}")
    blocks: list[dict[str, JsonValue]] = Field(description="{header, qc, tx_ids} of every block the proofs need")
    statements: list[dict[str, JsonValue]] = Field(description="{tx, proof, receipt, receipt_proof} per id")
    certificates: dict[str, str] = Field(description="sender key (hex) -> the PEM its user.register carried")
    crl: str | None = Field(description="the CA's CRL (PEM) from the node's consortium folder, if it has one")
    node_certificates: list[str] = Field(description="node certificates (PEM) from the node's consortium folder")
