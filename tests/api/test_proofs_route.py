"""``GET /v1/proofs``: the proof bundle of committed transactions, checked with the offline
verifier's own chain functions; bad ids answer 400, unknown or uncertified ones 404."""

from __future__ import annotations

import time

from forensics import verify_chain as vc
from forensics.package.format import canonical
from ledger.crypto import sm3

from .conftest import Api


def _bundle(api: Api, ids: list[str], timeout: float = 20) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        r = api.client.get("/v1/proofs", params={"tx": ",".join(ids)})
        if r.status_code == 200:
            return dict(r.json())
        assert r.status_code == 404 and r.json()["error"]["code"] == "not_found", r.text
        time.sleep(0.1)
    raise AssertionError("no bundle in time")


def test_bundle_proves_committed_transactions(api: Api) -> None:
    txs = [api.tx("a", "1"), api.tx("b", "2")]
    for t in txs:
        api.client.post("/v1/txs", content=t.encode())
    for t in txs:
        api.wait_committed(t.id_hex)
    b = _bundle(api, [t.id_hex for t in txs])
    assert b["chain"] == "api-chain" and [e["from_height"] for e in b["validators"]] == [0]
    sched = [(0, b["validators"][0]["set"])]
    assert b["genesis"]["validators"] == sm3(canonical(sched[0][1])).hex()
    headers = {}
    for blk in b["blocks"]:
        hd = vc.check_block(blk, sched, "api-chain")
        headers[hd["height"]] = (hd, blk["tx_ids"])
    hs = {h: hd for h, (hd, _) in headers.items()}
    for t, st in zip(txs, b["statements"], strict=True):
        assert st["tx"]["body"]["payload"] == t.payload
        h = st["proof"]["height"]
        i = vc.check_inclusion(t.id, st["proof"], hs[h], headers[h][1])
        vc.check_commit(h, hs)
        c = vc.check_receipt(t.id, i, h, st["receipt"], st["receipt_proof"], hs)
        vc.check_commit(c, hs)
    # a forged QC in the bundle is caught by the same function
    blk = dict(b["blocks"][0])
    blk["qc"] = {**blk["qc"], "sigs": []}
    try:
        vc.check_block(blk, sched, "api-chain")
    except vc.CheckFailed as exc:
        assert "quorum" in str(exc)
    else:
        raise AssertionError("a QC without signatures passed")


def test_bad_and_unknown_ids(api: Api) -> None:
    for q in ("", "xyz", "AB" * 32, ",".join(["00" * 32] * 65)):
        r = api.client.get("/v1/proofs", params={"tx": q})
        assert r.status_code in (400, 422) and "error" in r.json(), (q, r.text)
    r = api.client.get("/v1/proofs", params={"tx": "00" * 32})
    assert r.status_code == 404 and r.json()["error"]["code"] == "not_found"
