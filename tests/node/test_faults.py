"""Bad input and faults against the six-node consortium as real OS processes (issue 3,
"Bad input and faults"): bad transactions over HTTP, a rogue peer on a real TLS link,
validators killed with SIGKILL and restarted, and a 2/3 network partition through a TCP proxy.

With n = 5 validators, f = 1 and a quorum is 4: one validator down keeps the chain committing,
two down (or a 2/3 split) must stop every commit until enough validators are back.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest

from ledger.codec import canonical
from ledger.consensus.types import Block, proposal_bytes, vote_bytes
from ledger.crypto import SM2PrivateKey, sm3
from ledger.crypto.merkle import merkle_root
from ledger.tx import MAX_TX_BYTES, Transaction

from .faultkit import (
    ALL_NODES,
    VALIDATORS,
    Cluster,
    LinkProxy,
    RoguePeer,
    get_status,
    init_fault_consortium,
    post,
    started_cluster,
    wait_for,
)

pytestmark = [pytest.mark.slow]

CHAIN = "rongxin-local"


@pytest.fixture
def cluster(tmp_path: Path, rx):
    yield from started_cluster(tmp_path / "c", rx)


def kv(key: SM2PrivateKey, k: str, v: str, *, chain: str = CHAIN, expiry: int = 10**9,
       nonce: int | None = None) -> Transaction:
    return Transaction.build(key, chain=chain, type="kv.set", payload={"key": k, "value": v},
                             expiry=expiry, nonce=nonce)


def batch(txs: list[Transaction]) -> bytes:
    return b'{"txs":[' + b",".join(t.encode() for t in txs) + b"]}"


def all_tx_ids(blocks: dict[int, dict[str, Any]]) -> set[str]:
    return {t for b in blocks.values() for t in b["tx_ids"]}


# ---------------------------------------------------------------- 1. bad transactions


def test_bad_transactions_are_refused_and_never_reach_a_block(cluster: Cluster) -> None:
    c = cluster
    c.wait_height(2, timeout=60, what="first blocks")
    user = c.user()
    val1 = c.api["val1"] + "/v1/txs"

    first = kv(user, "title", "original", nonce=777)
    status, body = post(val1, first.encode())
    assert status == 202, body
    c.wait_committed([first.id_hex], ["val1"], what="the first transaction")

    bad: dict[str, tuple[bytes, str | None, str]] = {}  # name: (request body, tx id or None, reason words)
    # bad signature: the payload changed after signing
    good = kv(user, "a", "1")
    tampered = good.encode().replace(b'"value":"1"', b'"value":"2"')
    bad["bad signature"] = (tampered, sm3(canonical(json.loads(tampered)["body"])).hex(), "signature")
    # signed correctly, for another chain
    other_chain = kv(user, "b", "2", chain="elsewhere")
    bad["wrong chain id"] = (other_chain.encode(), other_chain.id_hex, "chain")
    # same sender and nonce as the committed transaction, another payload
    reused = kv(user, "title", "replaced", nonce=777)
    assert reused.id != first.id
    bad["reused nonce"] = (reused.encode(), reused.id_hex, "nonce")
    # correctly signed, over the 64 KiB limit
    big_body = Transaction.body_of(CHAIN, user.public_key().point, 778, "kv.set",
                                   {"key": "big", "value": "x" * MAX_TX_BYTES}, 10**9)
    big = canonical({"body": big_body, "sig": user.sign(canonical(big_body)).hex()})
    assert len(big) > MAX_TX_BYTES
    bad["oversized payload"] = (big, sm3(canonical(big_body)).hex(), "limit")
    bad["malformed JSON"] = (b'{"body": {"chain": "rongxin-local", ', None, "malformed")
    # expired: its last admissible height is already behind the chain
    expired = kv(user, "late", "x", expiry=1)
    bad["expired"] = (expired.encode(), expired.id_hex, "expired")
    # signed by a key bound to no consortium certificate: the chain is permissioned
    stranger = kv(SM2PrivateKey.generate(), "s", "x")
    bad["unbound key"] = (stranger.encode(), stranger.id_hex, "not admitted")

    for name, (raw, _tx_id, words) in bad.items():
        status, body = post(val1, raw)
        assert 400 <= status < 500, (name, status, body)
        assert words in body["error"]["message"].lower(), (name, body)
    # the same ones in one batch to another validator: each refused with its reason
    objs = [raw for name, (raw, _i, _w) in bad.items() if name != "malformed JSON"]
    status, body = post(c.api["sup1"] + "/v1/txs", b'{"txs":[' + b",".join(objs) + b"]}")
    assert status == 200, body
    results = body["results"]
    for (name, (_raw, _tx_id, words)), r in zip(
            [(n, v) for n, v in bad.items() if n != "malformed JSON"], results, strict=True):
        assert r["accepted"] is False and words in r["reason"].lower(), (name, r)

    # later good transactions commit everywhere; none of the bad ones is in any block
    later = [kv(user, f"k{i}", str(i)) for i in range(20)]
    status, body = post(c.api["val2"] + "/v1/txs", batch(later))
    assert status == 200 and all(r["accepted"] for r in body["results"]), body
    c.wait_committed([t.id_hex for t in later], what="later good transactions on every node")
    blocks = c.chains_agree()
    included = all_tx_ids(blocks)
    assert {first.id_hex, *(t.id_hex for t in later)} <= included
    bad_ids = {name: tx_id for name, (_r, tx_id, _w) in bad.items() if tx_id is not None}
    for name, tx_id in bad_ids.items():
        assert tx_id not in included, f"{name} transaction reached a block"
        for nid in ALL_NODES:
            code, rec = get_status(f"{c.api[nid]}/v1/txs/{tx_id}")
            assert code == 404 and rec["error"]["details"]["status"] == "unknown", (name, nid, rec)
    # the nonce's first use stands: its receipt is a success
    rec = get_status(f"{c.api['full1']}/v1/txs/{first.id_hex}")[1]
    assert rec["status"] == "committed" and rec["receipt"]["code"] == 0


# ---------------------------------------------------------------- 2. a rogue peer


def _node_json(c: Cluster, nid: str) -> dict[str, Any]:
    return dict(json.loads((c.folder(nid) / "node.json").read_text()))


def _signed_proposal(key: SM2PrivateKey, header: dict[str, Any]) -> bytes:
    block = Block.make(header, [])
    return canonical({"type": "proposal", "block": block.wire(), "tc": None,
                      "sig": key.sign(proposal_bytes(CHAIN, block.hash)).hex()})


def test_rogue_peer_is_ignored_and_logged(cluster: Cluster) -> None:
    """A peer holding val4's transport and SM2 keys (a Byzantine val4) sends garbage, unsigned
    and forged messages to val1 and to the full node on real TLS links; both ignore each one
    with a logged reason and keep committing in agreement with the others."""
    c = cluster
    c.wait_height(3, timeout=60, what="first blocks")
    rogue_id = "val4"
    rogue_key = SM2PrivateKey.load((c.folder(rogue_id) / "sm2.key.pem").read_bytes())
    head_h = c.height("val1")
    head = c.block("val1", head_h)
    hdr = head["header"]
    view_now = int(c.status("val1")["view"])
    # views far ahead (so no real proposal of these views meets ours), led by val4 or not
    n = len(VALIDATORS)
    val4_view = (view_now + 1000) - (view_now + 1000) % n + VALIDATORS.index(rogue_id)
    not_val4_view = val4_view + 1

    def header(**changes: Any) -> dict[str, Any]:
        h = {"chain": CHAIN, "height": head_h + 1, "view": val4_view, "parent": head["hash"],
             "justify": head["qc"], "proposer": rogue_id, "txs": merkle_root([]).hex(), "count": 0,
             "exec": hdr["exec"], "validators": hdr["validators"], "time": int(time.time() * 1000)}
        h.update(changes)
        return h

    vote = {"type": "vote", "height": head_h, "view": int(hdr["view"]), "block": head["hash"], "by": rogue_id}
    forged_qc = {"chain": CHAIN, "height": head_h, "view": int(hdr["view"]), "block": head["hash"],
                 # the rogue signs the right vote bytes with its own key and names four others
                 "sigs": [{"by": v, "sig": rogue_key.sign(vote_bytes(CHAIN, head_h, int(hdr["view"]),
                                                                     bytes.fromhex(head["hash"]))).hex()}
                          for v in ("sup1", "val1", "val2", "val3")]}
    far = header(height=head_h + 50, view=val4_view + 5 * n)
    far_block = Block.make(far, [])
    messages: list[tuple[str, bytes, str]] = [  # (case, payload, what the target's log must say)
        ("malformed bytes", b"\x00\xffnot json{", f"malformed message from {rogue_id}"),
        ("non-object JSON", b"[1,2,3]", f"message from {rogue_id} is not an object"),
        ("unsigned vote", canonical(vote), "ignored vote from val4: vote lacks 'sig'"),
        ("vote with a bad signature",
         canonical(dict(vote, sig=rogue_key.sign(b"something else").hex())),
         "signature of 'val4' does not verify"),
        ("proposal from a non-leader", _signed_proposal(rogue_key, header(view=not_val4_view)),
         f"'{rogue_id}' is not the leader of view {not_val4_view}"),
        ("proposal with a forged QC", _signed_proposal(rogue_key, header(justify=forged_qc)),
         f"invalid QC for height {head_h} view {hdr['view']}: signature of 'sup1' does not verify"),
        ("proposal at a height that does not fit", _signed_proposal(rogue_key, header(
            height=head_h + 7, view=val4_view + n)),
         f"does not certify the parent (QC height {head_h}, block height {head_h + 7})"),
        ("unrequested block at a height that does not fit",
         canonical({"type": "block", "block": far_block.wire()}),
         f"ignored block {far_block.hash.hex()[:12]} at height {head_h + 50}: not asked for"),
    ]
    targets = ("val1", "full1")
    for target in targets:
        listen = tuple(_node_json(c, target)["listen"])
        rogue = RoguePeer(c.data, rogue_id, (listen[0], int(listen[1])))
        try:
            for _case, payload, _why in messages:
                rogue.send(payload)
            rogue.send_raw(b"\x00\x00\x00\x03\x07abc")  # a frame of an unknown kind
            assert rogue.wait_closed(15), f"{target} kept a link that sent a frame of an unknown kind"
        finally:
            rogue.close()
    for target in targets:
        for case, _payload, why in [*messages, ("unknown frame kind", b"", f"closing link from {rogue_id}")]:
            wait_for(lambda why=why, target=target: why in c.log(target), 15,
                     f"{target}'s log to record the {case} ({why!r})")
    # the targets keep committing with the others, on the same chain
    user = c.user()
    txs = [kv(user, f"after-rogue-{i}", str(i)) for i in range(10)]
    status, body = post(c.api["val1"] + "/v1/txs", batch(txs))
    assert status == 200 and all(r["accepted"] for r in body["results"]), body
    c.wait_committed([t.id_hex for t in txs], what="transactions after the rogue's messages")
    top = c.height("val1")
    c.wait_height(top, what="every node at val1's height")
    blocks = c.chains_agree()
    assert max(blocks) >= head_h + 1
    for b in blocks.values():
        assert b["header"]["view"] not in (val4_view, not_val4_view), "a rogue proposal was committed"


# ---------------------------------------------------------------- 3. validators killed


def _submit(c: Cluster, nid: str, txs: list[Transaction]) -> list[str]:
    status, body = post(c.api[nid] + "/v1/txs", batch(txs))
    assert status == 200 and all(r["accepted"] for r in body["results"]), body
    return [t.id_hex for t in txs]


def _assert_no_commit(c: Cluster, nids: list[str], tx_ids: list[str], settle: float, window: float,
                      why: str) -> dict[str, int]:
    """After ``settle`` seconds (rounds already under way may finish), no node of ``nids``
    commits a block for ``window`` seconds and none of ``tx_ids`` is committed."""
    time.sleep(settle)
    before = c.heights(nids)
    deadline = time.monotonic() + window
    while time.monotonic() < deadline:
        now = c.heights(nids)
        assert now == before, f"{why}: heights moved from {before} to {now}"
        time.sleep(0.5)
    for nid in nids:
        for t in tx_ids:
            assert c.tx_status(nid, t) != "committed", f"{why}: {t} committed on {nid}"
    return before


def test_one_then_two_validators_killed_stall_and_resume(cluster: Cluster) -> None:
    c = cluster
    c.wait_height(2, timeout=60, what="first blocks")
    user = c.user()

    # one of five down (SIGKILL): 4 = quorum still up, the chain keeps committing
    c.kill("val2")
    live = [n for n in ALL_NODES if n != "val2"]
    ids = _submit(c, "val1", [kv(user, f"one-down-{i}", str(i)) for i in range(10)])
    c.wait_committed(ids, live, timeout=60, what="commits with one validator down")

    # two of five down: 3 < quorum 4, so nothing may commit
    c.kill("val3")
    live = [n for n in ALL_NODES if n not in ("val2", "val3")]
    stalled_ids = _submit(c, "sup1", [kv(user, f"two-down-{i}", str(i)) for i in range(10)])
    stalled = _assert_no_commit(c, live, stalled_ids, settle=2.0, window=8.0,
                                why="3 of 5 validators up cannot form a quorum")

    # one back: 4 up, commits resume (the restarted node fetches what it missed). The views
    # timed out meanwhile, so each view whose leader cannot propose costs up to 8 x 3 s; today a
    # restarted validator also loses its first turn as leader and its first vote (see the report
    # on issue 3), so the deadline is generous: the assertion is that commits resume at all.
    c.start_one("val3")
    live.append("val3")
    c.wait_committed(stalled_ids, live, timeout=180, what="commits after val3 returned")
    assert min(c.heights(live).values()) > max(stalled.values())

    # the other back: it catches up and every node agrees on every block
    c.up()
    more = _submit(c, "val2", [kv(user, f"all-up-{i}", str(i)) for i in range(10)])
    c.wait_committed(more, timeout=90, what="commits on every node, val2 included")
    c.wait_height(c.height("sup1"), timeout=60, what="every node at sup1's height")
    blocks = c.chains_agree()
    assert set(ids) | set(stalled_ids) | set(more) <= all_tx_ids(blocks)


# ---------------------------------------------------------------- 4. a 2/3 partition


@pytest.fixture
def proxied_cluster(tmp_path: Path, rx):
    """The local consortium with every directed peer link dialled through a `LinkProxy`."""
    from ledger.node.config import node_folders

    data = init_fault_consortium(tmp_path / "c")
    folders = {f.name: f for f in node_folders(data)}
    cfgs = {nid: json.loads((f / "node.json").read_text()) for nid, f in folders.items()}
    proxy = LinkProxy({nid: (cfg["listen"][0], int(cfg["listen"][1])) for nid, cfg in cfgs.items()})
    try:
        for nid, cfg in cfgs.items():
            cfg["peers"] = {peer: list(proxy.listen[(nid, peer)]) if peer != nid else addr
                            for peer, addr in cfg["peers"].items()}
            (folders[nid] / "node.json").write_text(json.dumps(cfg, indent=2))
        proc = rx("up", "--detach", "--data", str(data), timeout=240)
        assert proc.returncode == 0, proc.stderr
        c = Cluster(data, rx)
        try:
            yield c, proxy
        finally:
            c.down()
    finally:
        proxy.stop()


def test_partition_two_against_three_commits_nothing_and_heals_without_fork(proxied_cluster) -> None:
    c, proxy = proxied_cluster
    minority = ["val3", "val4", "full1"]  # 2 validators and the full node
    majority = ["sup1", "val1", "val2"]  # 3 validators: still short of the quorum of 4
    c.wait_height(2, timeout=60, what="first blocks through the proxies")
    user = c.user()
    before = _submit(c, "val1", [kv(user, f"before-{i}", str(i)) for i in range(5)])
    c.wait_committed(before, timeout=60, what="commits through the proxies")

    proxy.cut(minority, majority)
    # the cut is real: each side's heartbeat map loses the other side
    wait_for(lambda: not set(c.status("val3")["peers_online"]) & set(majority)
             and not set(c.status("sup1")["peers_online"]) & set(minority), 20,
             "each side to see the other offline")
    on_minority = _submit(c, "val3", [kv(user, f"minority-{i}", str(i)) for i in range(5)])
    on_majority = _submit(c, "sup1", [kv(user, f"majority-{i}", str(i)) for i in range(5)])
    held = _assert_no_commit(c, minority + majority, on_minority + on_majority, settle=1.0, window=10.0,
                             why="a 2/3 split of 5 validators (quorum 4)")

    proxy.heal()
    c.wait_committed(on_minority + on_majority, timeout=120, what="commits after the partition healed")
    assert min(c.heights().values()) > max(held.values())
    c.wait_height(c.height("sup1"), timeout=60, what="every node at sup1's height")
    blocks = c.chains_agree()
    assert set(before) | set(on_minority) | set(on_majority) <= all_tx_ids(blocks)


def test_an_equivocating_leader_process_is_evicted_without_a_fork(cluster: Cluster) -> None:
    """val4 runs as a Byzantine process that proposes two blocks in each of its views: the
    honest nodes report it (a node.evidence transaction), the chain evicts it at a fixed
    height on every node, every peer drops its links, and nothing forks."""
    import subprocess
    import sys

    c = cluster
    c.wait_height(2, timeout=60, what="first blocks")
    user = c.user()  # while every node is honest and live (a registration waits for every node)
    c.kill("val4")
    with open(c.folder("val4") / "node.log", "ab") as log:
        c.children.append(subprocess.Popen(
            [sys.executable, str(Path(__file__).with_name("byzantine_node.py")), str(c.folder("val4"))],
            stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True))
    honest = ["sup1", "val1", "val2", "val3", "full1"]
    wait_for(lambda: all("val4" not in c.status(n)["validators"] for n in honest), 180,
             "val4 out of every honest node's validator set")
    assert any("reported double-proposal by val4" in c.log(n) for n in honest), "no node reported the evidence"
    assert all("dropping peer val4" in c.log(n) for n in ("sup1", "val1", "val2", "val3"))
    # the four honest validators keep committing, in agreement
    tx = Transaction.build(user, chain=CHAIN, type="kv.set", payload={"key": "after", "value": "1"}, expiry=10**9)
    code, body = post(c.api["val2"] + "/v1/txs", tx.encode())
    assert code == 202, body
    c.wait_committed([tx.id_hex], honest, timeout=60)
    c.chains_agree(honest)
