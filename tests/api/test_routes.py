"""Every route on its happy path, through the real app around a real committing node; each
answer is checked against the response model the OpenAPI document publishes."""

from __future__ import annotations

import base64
import urllib.parse

from api.schemas import (
    AuditOut,
    BatchOut,
    BlockOut,
    ContractOut,
    ErrorBody,
    EventsOut,
    StateOut,
    StatusOut,
    SubmitOut,
    TxOut,
)
from ledger.contracts.context import account_of
from ledger.contracts.wasm import example
from ledger.crypto.merkle import verify_inclusion
from ledger.state.proof import Proof, verify_proof

from .conftest import CHAIN, Api


def test_status(api: Api) -> None:
    r = api.client.get("/v1/status")
    assert r.status_code == 200
    s = StatusOut.model_validate(r.json())
    assert (s.node_id, s.role, s.org, s.chain, s.validators, s.peers_online) == (
        "v0", "consensus", "org", CHAIN, ["v0"], ["v0"])


def test_submit_one_then_read_it_committed_with_its_proof(api: Api) -> None:
    tx = api.tx("title", "县域融媒体")
    r = api.client.post("/v1/txs", content=tx.encode())
    assert r.status_code == 202
    assert SubmitOut.model_validate(r.json()).model_dump(exclude_none=True) == {
        "id": tx.id_hex, "accepted": True, "status": "pending"}
    rec = TxOut.model_validate(api.wait_committed(tx.id_hex))
    assert rec.receipt is not None and rec.receipt.code == 0
    assert rec.tx is not None and rec.tx.body.payload == {"key": "title", "value": "县域融媒体"}
    block = BlockOut.model_validate(api.client.get(f"/v1/blocks/{rec.height}").json())
    assert block.hash == rec.block_hash and tx.id_hex in block.tx_ids
    p = rec.proof
    assert p is not None and verify_inclusion(tx.id, p.index, p.size, [bytes.fromhex(x) for x in p.path],
                                              bytes.fromhex(block.header.txs))
    # the same transaction again: already committed is an acceptance, with 200
    again = api.client.post("/v1/txs", content=tx.encode())
    assert again.status_code == 200 and again.json()["status"] == "committed"
    # upper-case hex names the same transaction
    assert api.client.get(f"/v1/txs/{tx.id_hex.upper()}").json()["id"] == tx.id_hex


def test_batch_answers_each_transaction_in_order(api: Api) -> None:
    good = [api.tx(f"k{i}", str(i)) for i in range(5)]
    wrong_chain = api.tx("x", "y", chain="elsewhere")
    tampered = good[0].encode().replace(b'"k0"', b'"kX"')
    body = b'{"txs":[' + b",".join([*(t.encode() for t in good), wrong_chain.encode(), tampered,
                                   b'{"body":{},"sig":"00"}']) + b"]}"
    r = api.client.post("/v1/txs", content=body)
    assert r.status_code == 200
    out = BatchOut.model_validate(r.json()).results
    assert [x.accepted for x in out] == [True] * 5 + [False] * 3
    assert [x.id for x in out[:6]] == [t.id_hex for t in [*good, wrong_chain]]
    assert "chain" in (out[5].reason or "") and "signature" in (out[6].reason or "")
    assert out[7].id is None and "malformed" in (out[7].reason or "")
    for t in good:
        api.wait_committed(t.id_hex)
    assert api.client.get(f"/v1/txs/{wrong_chain.id_hex}").status_code == 404


def test_genesis_and_blocks(api: Api) -> None:
    g = BlockOut.model_validate(api.client.get("/v1/blocks/0").json())
    assert g.height == 0 and g.qc is None and g.header.proposer == "genesis"
    tx = api.tx()
    api.client.post("/v1/txs", content=tx.encode())
    h = TxOut.model_validate(api.wait_committed(tx.id_hex)).height
    b = BlockOut.model_validate(api.client.get(f"/v1/blocks/{h}").json())
    assert b.height == b.header.height == h and b.qc is not None and b.qc.block == b.hash
    assert b.receipts[b.tx_ids.index(tx.id_hex)].code == 0


def test_state_present_and_absent_with_proofs(api: Api) -> None:
    tx = api.tx("a/b c", "值")
    api.client.post("/v1/txs", content=tx.encode())
    api.wait_committed(tx.id_hex)
    key = "kv/a/b c"
    r = api.client.get("/v1/state/" + urllib.parse.quote(key))
    assert r.status_code == 200
    st = StateOut.model_validate(r.json())
    assert st.value == "值" and st.value_hex == "值".encode().hex()
    assert verify_proof(bytes.fromhex(st.root), key.encode(), "值".encode(), Proof.from_json(r.json()["proof"]))
    missing = api.client.get("/v1/state/kv/none")
    assert missing.status_code == 404
    err = ErrorBody.model_validate(missing.json()).error
    assert err.code == "not_found"
    absent = StateOut.model_validate(err.details)
    assert absent.value is None
    assert verify_proof(bytes.fromhex(absent.root), b"kv/none", None, Proof.from_json(err.details["proof"]))


def test_events_audit_and_contracts(api: Api) -> None:
    issue = api.tx(type="ft.issue", payload={"symbol": "PTS", "name": "points", "cap": 1000, "initial": 100})
    api.client.post("/v1/txs", content=issue.encode())
    assert api.wait_committed(issue.id_hex)["receipt"]["code"] == 0
    payee = "ab" * 20
    pay = api.tx(type="ft.transfer", payload={"symbol": "PTS", "to": payee, "amount": 7})
    api.client.post("/v1/txs", content=pay.encode())
    assert api.wait_committed(pay.id_hex)["receipt"]["code"] == 0
    ev = EventsOut.model_validate(api.client.get(f"/v1/events?type=ft.Transfer&key={payee}").json()).events
    assert [(e.tx, e.event.data["amount"]) for e in ev] == [(pay.id_hex, 7)]
    assert api.client.get("/v1/events?type=ft.Transfer&key=nobody").json() == {"events": []}
    records = AuditOut.model_validate(api.client.get("/v1/audit?type=ft.*").json()).records
    assert [(r.type, r.actor) for r in records] == [("ft.issue", account_of(api.user.public_key().point))]
    assert api.client.get("/v1/audit?type=gov.*").json() == {"records": []}
    missing = api.client.get("/v1/contracts/points")
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "not_found"
    # an uploaded contract has a record (awaiting review) and a one-step history
    code = base64.b64encode(example("token")).decode()
    up = api.tx(type="contract.upload", payload={"name": "points", "code": code})
    api.client.post("/v1/txs", content=up.encode())
    assert api.wait_committed(up.id_hex)["receipt"]["code"] == 0
    info = ContractOut.model_validate(api.client.get("/v1/contracts/points").json())
    assert (info.status, info.owner, list(info.versions)) == ("uploaded", account_of(api.user.public_key().point),
                                                             ["1"])
    assert [(h["step"], h["tx"]) for h in info.history] == [("upload", up.id_hex)]


WORKS_PATHS = ("/v1/works", "/v1/works/{work_id}", "/v1/works/{work_id}/proof", "/v1/works/{work_id}/certificate",
               "/v1/works/{work_id}/file", "/v1/blobs/{sm3}", "/v1/works/{work_id}/proof-package")
BINARY_TYPES = ("application/pdf", "application/octet-stream", "application/zip")  # file downloads: described as binary


def test_openapi_describes_every_operation(api: Api) -> None:
    """The E-architecture check's OpenAPI part: request schemas for POSTs, a 2xx JSON schema
    for every operation, documented 4xx answers wherever an operation takes input."""
    spec = api.client.get("/openapi.json").json()
    assert set(spec["paths"]) == {"/v1/status", "/v1/txs", "/v1/txs/{tx_id}", "/v1/blocks/{height}",
                                  "/v1/state/{key}", "/v1/events", "/v1/audit", "/v1/contracts/{name}",
                                  "/v1/identity", "/v1/proofs",
                                  *WORKS_PATHS, "/v1/evidence/prepare", "/v1/evidence", "/v1/evidence/capture",
                                  "/v1/evidence/verify",
                                  "/v1/evidence/{evidence_id}", "/v1/evidence/{evidence_id}/package",
                                  "/v1/cases/{case_id}", "/v1/cases/{case_id}/move", "/v1/mpc/computations",
                                  "/v1/mpc/computations/{cid}", "/v1/mpc/computations/{cid}/approve",
                                  "/v1/mpc/computations/{cid}/audit"}
    ident = spec["paths"]["/v1/identity"]["get"]
    assert {"401", "403"} <= set(ident["responses"])
    assert {p["name"].lower() for p in ident["parameters"] if p["in"] == "header"} == {
        "x-rongxin-certificate", "x-rongxin-signature", "x-rongxin-timestamp", "x-rongxin-nonce",
        "x-rongxin-content-sm3"}
    bare = []
    for path, ops in spec["paths"].items():
        for m, op in ops.items():
            if m in ("post", "put", "patch") and not op.get("requestBody", {}).get("content"):
                bare.append(f"{m} {path}: no request schema")
            two = {c: r for c, r in op["responses"].items() if c.startswith("2")}
            schemas = [c.get("schema") for r in two.values() for t, c in r.get("content", {}).items()
                       if t == "application/json" or t in BINARY_TYPES]
            if not two or not any(schemas):
                bare.append(f"{m} {path}: no success schema")
            if (op.get("parameters") or op.get("requestBody")) and not any(c.startswith("4") for c in op["responses"]):
                bare.append(f"{m} {path}: no error response")
            for code, r in op["responses"].items():
                if code.startswith("4"):
                    assert r["content"]["application/json"]["schema"] == {"$ref": "#/components/schemas/ErrorBody"}
    assert bare == []
    body = spec["paths"]["/v1/txs"]["post"]["requestBody"]["content"]["application/json"]["schema"]
    refs = {x["$ref"].rsplit("/", 1)[1] for x in body["anyOf"]}
    assert refs == {"TxIn", "TxBatchIn"} and refs <= set(spec["components"]["schemas"])
    assert spec["components"]["schemas"]["TxIn"]["additionalProperties"] is False
    assert spec["components"]["schemas"]["TxIn"]["examples"]


def test_a_final_transaction_view_is_kept_and_served_the_same(api: Api) -> None:
    tx = api.tx("kept", "1")
    assert api.client.post("/v1/txs", content=tx.encode()).status_code == 202
    first = api.wait_committed(tx.id_hex)
    views = api.client.app.state.tx_views  # type: ignore[attr-defined]
    for i in range(50):  # later blocks certify its results root: the view is final then
        if tx.id_hex in views:
            break
        api.wait_committed(api.client.post("/v1/txs", content=api.tx(f"next{i}", "1").encode()).json()["id"])
        first = api.client.get(f"/v1/txs/{tx.id_hex}").json()
    assert first["receipt_proof"]["certified_in"] is not None and tx.id_hex in views
    assert api.client.get(f"/v1/txs/{tx.id_hex}").json() == first  # from the kept view
    views[tx.id_hex] = dict(first, index=99)  # what is served comes from the kept view ...
    assert api.client.get(f"/v1/txs/{tx.id_hex}").json()["index"] == 99
    views.clear()  # ... and is built again when it is not kept
    assert api.client.get(f"/v1/txs/{tx.id_hex}").json() == first
