"""Contracts on the real consortium (six node processes over TLS, HTTP API): tokens, a user
contract through its whole first lifecycle, and the read side of the node API — events by
type and key, the audit log by type/actor/time, a contract's record and history, state with
a Merkle proof, receipts with events."""

from __future__ import annotations

import base64
import urllib.parse
from pathlib import Path
from typing import Any

import pytest

from api.sdk import register_users
from ledger.contracts.context import account_of
from ledger.contracts.wasm import example
from ledger.crypto import SM2PrivateKey
from ledger.node.config import NodeConfig
from ledger.state.proof import Proof, verify_proof
from ledger.tx import Transaction

from .faultkit import Cluster, get, get_status, post, started_cluster

pytestmark = [pytest.mark.slow]

CHAIN = "rongxin-local"


@pytest.fixture
def cluster(tmp_path: Path, rx):
    yield from started_cluster(tmp_path / "c", rx)


def send(c: Cluster, key: SM2PrivateKey, type_: str, payload: dict[str, Any]) -> dict[str, Any]:
    """Submit one transaction to a validator, wait until the full node has it committed, and
    return its record there (receipt, proof)."""
    tx = Transaction.build(key, chain=CHAIN, type=type_, payload=payload, expiry=10**9)
    code, body = post(c.api["val1"] + "/v1/txs", tx.encode())
    assert code in (200, 202), body
    c.wait_committed([tx.id_hex], ["full1"], timeout=60, what=type_)
    return dict(get(f"{c.api['full1']}/v1/txs/{tx.id_hex}"))


def ok(rec: dict[str, Any]) -> dict[str, Any]:
    assert rec["receipt"]["code"] == 0, rec["receipt"]
    return rec


def test_tokens_and_a_user_contract_over_the_api(cluster: Cluster) -> None:
    c = cluster
    sup = NodeConfig.load(c.folder("sup1")).key()  # the one supervisor: its approval is a majority
    owner, alice, bob = (SM2PrivateKey.generate() for _ in range(3))
    register_users(c.api["sup1"], c.data, [owner, alice, bob])  # a permissioned chain: users first
    # `rongxin up` made the demo identities' organisations (gov.propose by sup1) before this
    t0 = max(r["time_ms"] for r in get(f"{c.api['full1']}/v1/audit?limit=1000")["records"]) + 1
    a_alice, a_bob = (account_of(k.public_key().point) for k in (alice, bob))

    ok(send(c, owner, "ft.issue", {"symbol": "PTS", "name": "county points", "cap": 10**6, "initial": 1000}))
    rec = ok(send(c, owner, "ft.transfer", {"symbol": "PTS", "to": a_alice, "amount": 70}))
    assert rec["receipt"]["events"][0]["type"] == "ft.Transfer"
    refused = send(c, alice, "ft.transfer", {"symbol": "PTS", "to": a_bob, "amount": 71})
    assert refused["receipt"]["code"] == 4 and "insufficient" in refused["receipt"]["info"]

    code = base64.b64encode(example("token")).decode()
    up = ok(send(c, owner, "contract.upload", {"name": "points", "code": code}))
    assert up["receipt"]["result"]["version"] == 1
    ok(send(c, sup, "gov.propose", {"action": {"kind": "contract.approve", "contract": "points", "version": 1}}))
    ok(send(c, owner, "contract.install", {"name": "points", "version": 1}))
    ok(send(c, owner, "contract.init", {"name": "points", "args": {}}))
    ok(send(c, owner, "contract.call", {"contract": "points", "method": "mint", "args": {"to": a_bob, "amount": 5}}))
    call = ok(send(c, bob, "contract.call", {"contract": "points", "method": "transfer",
                                             "args": {"to": a_alice, "amount": 2}}))
    assert call["receipt"]["fuel"] > 0 and call["receipt"]["events"][0]["type"] == "points:Transfer"

    full = c.api["full1"]
    # events by type and key
    ev = get(f"{full}/v1/events?type=ft.Transfer&key={a_alice}")["events"]
    assert [e["event"]["data"]["amount"] for e in ev] == [70]
    assert get(f"{full}/v1/events?type=points:Transfer&key={a_bob}")["events"][0]["tx"] == call["id"]
    assert get(f"{full}/v1/events?type=ft.Transfer&key={a_bob}")["events"] == []
    # the audit log: lifecycle and token administration, with the supervisor's approval
    audit = [r for r in get(f"{full}/v1/audit?limit=1000&since_ms={t0}")["records"] if r["type"] != "user.register"]
    types = [r["type"] for r in audit]
    assert types == ["ft.issue", "contract.upload", "gov.propose", "contract.install", "contract.init"]
    sup_acct = account_of(sup.public_key().point)
    assert [r["type"] for r in get(f"{full}/v1/audit?actor={sup_acct}&since_ms={t0}")["records"]] == ["gov.propose"]
    t_install = audit[3]["time_ms"]
    later = get(f"{full}/v1/audit?since_ms={t_install}&type=contract.*")["records"]
    assert [r["type"] for r in later] == ["contract.install", "contract.init"]
    code_, body = get_status(f"{full}/v1/audit?since_ms=10&until_ms=5")
    assert code_ == 400 and "since_ms" in body["error"]["message"]
    # the contract's record and history
    info = get(f"{full}/v1/contracts/points")
    assert info["status"] == "active" and info["version"] == 1
    assert [h["step"] for h in info["history"]] == ["upload", "review", "install", "init"]
    assert get_status(f"{full}/v1/contracts/nothing")[0] == 404
    # state with a proof against the state root
    key = f"ft/PTS/bal/{a_alice}"
    st = get(f"{full}/v1/state/{urllib.parse.quote(key)}")
    assert st["value"] == "70"
    assert verify_proof(bytes.fromhex(st["root"]), key.encode(), b"70", Proof.from_json(st["proof"]))
    assert not verify_proof(bytes.fromhex(st["root"]), key.encode(), b"71", Proof.from_json(st["proof"]))
    # every node computed the same state
    roots = {nid: get(f"{c.api[nid]}/v1/state/{urllib.parse.quote(key)}")["root"] for nid in ("val1", "full1")}
    heights = {nid: get(f"{c.api[nid]}/v1/state/{urllib.parse.quote(key)}")["height"] for nid in ("val1", "full1")}
    if len(set(heights.values())) == 1:
        assert len(set(roots.values())) == 1
