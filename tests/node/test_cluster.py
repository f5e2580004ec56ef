"""The six-node consortium as real OS processes: `rongxin up --detach`, the HTTP API,
a validator killed with SIGKILL and restarted, `rongxin down`."""

from __future__ import annotations

import json
import os
import signal
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from api.sdk import register_users
from ledger.crypto import SM2PrivateKey
from ledger.tx import Transaction

from .faultkit import get, post

pytestmark = [pytest.mark.slow]


def wait_for(cond, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if cond():
                return
        except (urllib.error.URLError, OSError, KeyError):
            pass
        time.sleep(0.3)
    raise AssertionError(f"timed out waiting for {what}")


@pytest.fixture
def cluster(tmp_path: Path, rx):
    data = tmp_path / "c"
    proc = rx("up", "--detach", "--data", str(data), timeout=240)
    assert proc.returncode == 0, proc.stderr
    doc = json.loads((data / "cluster.json").read_text())
    yield data, doc["nodes"]
    rx("down", "--data", str(data), timeout=120)


def test_up_api_kill_restart_down(cluster, rx) -> None:
    data, nodes = cluster
    roles = sorted(n["role"] for n in nodes)
    assert roles == ["consensus"] * 4 + ["full", "supervisor"]
    apis = {n["id"]: n["api"] for n in nodes}
    # an idle chain makes no block before its idle interval (a minute): every node answers at height 0
    wait_for(lambda: all(get(a + "/v1/status")["height"] >= 0 for a in apis.values()), 90, "every node up")
    st = get(apis["sup1"] + "/v1/status")
    assert st["role"] == "supervisor" and len(st["validators"]) == 5

    # permissioned by default: a key with no consortium certificate is refused at the door
    stranger = Transaction.build(SM2PrivateKey.generate(), chain="rongxin-local", type="kv.set",
                                 payload={"key": "s", "value": "x"}, expiry=10**9)
    status, body = post(apis["val1"] + "/v1/txs", stranger.encode())
    assert status == 400 and "not admitted" in body["error"]["message"], body
    user = SM2PrivateKey.generate()
    register_users(apis["sup1"], data, [user])
    txs = [Transaction.build(user, chain="rongxin-local", type="kv.set", payload={"key": f"k{i}", "value": str(i)},
                             expiry=10**9) for i in range(400)]
    # refused with a reason, never reaching a block
    wrong_chain = Transaction.build(user, chain="elsewhere", type="kv.set", payload={"key": "x", "value": "y"},
                                    expiry=10**9)
    status, body = post(apis["val1"] + "/v1/txs", wrong_chain.encode())
    assert status == 400 and "chain" in body["error"]["message"]
    status, body = post(apis["val1"] + "/v1/txs", b"{not json")
    assert status == 400 and "malformed" in body["error"]["message"]
    tampered = txs[0].encode().replace(b'"k0"', b'"kX"')
    status, body = post(apis["val1"] + "/v1/txs", tampered)
    assert status == 400 and "signature" in body["error"]["message"]
    status, body = post(apis["val1"] + "/v1/txs", txs[0].encode())
    assert status == 202 and body["id"] == txs[0].id_hex

    victim = next(n for n in nodes if n["id"] == "val2")
    for i in range(1, 400, 100):
        batch = b'{"txs":[' + b",".join(t.encode() for t in txs[i:i + 100]) + b"]}"
        status, body = post(apis["val1" if i % 200 else "sup1"] + "/v1/txs", batch)
        assert status == 200 and all(r["accepted"] for r in body["results"])
        if i == 101:
            os.kill(victim["pid"], signal.SIGKILL)
    last = txs[-1].id_hex
    wait_for(lambda: get(f"{apis['val1']}/v1/txs/{last}")["status"] == "committed", 120, "commit with one node down")
    proc = rx("up", "--detach", "--data", str(data), timeout=240)
    assert proc.returncode == 0, proc.stderr
    target = get(apis["val1"] + "/v1/status")["height"]
    wait_for(lambda: all(get(a + "/v1/status")["height"] >= target for a in apis.values()), 120,
             "every node, the restarted one included, at the same height")
    for h in (1, target // 2, target):
        blocks = [get(f"{a}/v1/blocks/{h}") for a in apis.values()]
        assert len({b["hash"] for b in blocks}) == 1, f"nodes disagree at height {h}"
        assert all(b["qc"] and b["qc"]["block"] == b["hash"] for b in blocks)
    committed = {t.id_hex for t in txs}
    seen = set()
    for h in range(1, target + 1):
        seen.update(get(f"{apis['full1']}/v1/blocks/{h}")["tx_ids"])
    assert committed <= seen, "no transaction lost across the kill"
    rec = get(f"{apis['val2']}/v1/txs/{txs[5].id_hex}")
    assert rec["status"] == "committed" and rec["proof"]["root"] == get(
        f"{apis['val2']}/v1/blocks/{rec['height']}")["header"]["txs"]
    # the SDK: build, sign, submit, wait; the inclusion proof checks against the block
    from api.sdk import ClientError, LedgerClient
    from ledger.crypto.merkle import verify_inclusion

    client = LedgerClient(apis["full1"], key=user)
    rec = client.submit_and_wait("kv.set", {"key": "sdk", "value": "ok"})
    assert rec["receipt"]["code"] == 0
    p = rec["proof"]
    header = client.block(rec["height"])["header"]
    assert verify_inclusion(bytes.fromhex(p["tx"]), p["index"], p["size"], [bytes.fromhex(x) for x in p["path"]],
                            bytes.fromhex(header["txs"]))
    # what it did is proven from a later header, on the full node (which never voted)
    from ledger.node.results import verify_receipt

    rp = rec["receipt_proof"]
    assert rec["receipt"]["tx"] == rec["id"] and rp["height"] == rec["height"] and rp["certified_in"] > rec["height"]
    certifying = client.block(rp["certified_in"])["header"]
    assert verify_receipt(rec["receipt"], rp, certifying)
    assert not verify_receipt(dict(rec["receipt"], code=1), rp, certifying)
    with pytest.raises(ClientError, match="refused"):
        client.submit(wrong_chain)

    proc = rx("down", "--data", str(data), timeout=120)
    assert proc.returncode == 0
    assert not any(get_ok(a) for a in apis.values())
    # a clean stop logs no traceback (no CancelledError from connection handlers)
    for log_file in sorted((data / "nodes").glob("*/node.log")):
        assert "Traceback" not in log_file.read_text(), f"{log_file} holds a traceback"

    # the whole consortium stopped in the middle of consensus and started again resumes the
    # same chain (a QC's block that no node had committed survives in each node's store)
    proc = rx("up", "--detach", "--data", str(data), timeout=240)
    assert proc.returncode == 0, proc.stderr
    before = {n: get(a + "/v1/status")["height"] for n, a in apis.items()}
    assert min(before.values()) >= target
    after_restart = LedgerClient(apis["val3"], key=user).submit_and_wait("kv.set", {"key": "again", "value": "1"},
                                                                         timeout=90)
    assert after_restart["receipt"]["code"] == 0 and after_restart["height"] > max(before.values())
    wait_for(lambda: all(get(a + "/v1/status")["height"] >= after_restart["height"] for a in apis.values()), 60,
             "all nodes past the restart")


def get_ok(api: str) -> bool:
    try:
        get(api + "/v1/status")
        return True
    except (urllib.error.URLError, OSError):
        return False
