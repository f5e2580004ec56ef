"""The verifier's chain rules on a synthetic chain whose validator set changes: a change
certified by the previous set holds, every forgery of it fails (no cluster needed)."""

from __future__ import annotations

import pytest

from forensics import verify_chain as vc
from forensics.package.format import canonical
from ledger.crypto import SM2PrivateKey, sm3

CHAIN = "syn"


def _set(keys: dict[str, SM2PrivateKey]) -> list[dict]:
    return [{"id": i, "key": k.public_key().point.hex(), "org": "A", "role": "consensus"} for i, k in sorted(keys.items())]


def _block(h: int, view: int, keys: dict[str, SM2PrivateKey], signers: list[str], parent: str = "00" * 32,
           exec_root: str = "00" * 32) -> dict:
    header = {"chain": CHAIN, "height": h, "view": view, "parent": parent, "count": 0, "txs": sm3(b"").hex(),
              "validators": sm3(canonical(_set(keys))).hex(), "exec": {"height": h - 1, "root": exec_root},
              "results": {"height": h - 1, "root": sm3(b"").hex()}, "time": 1000 * h, "proposer": "a"}
    block = vc.header_hash(header).hex()
    vote = canonical({"kind": "vote", "chain": CHAIN, "height": h, "view": view, "block": block})
    sigs = [{"by": s, "sig": keys[s].sign(vote).hex()} for s in sorted(signers)]
    return {"header": header, "qc": {"chain": CHAIN, "height": h, "view": view, "block": block, "sigs": sigs},
            "tx_ids": []}


@pytest.fixture(scope="module")
def chain() -> dict:
    old = {i: SM2PrivateKey.generate() for i in "abcd"}
    new = {**{i: old[i] for i in "abc"}, "e": SM2PrivateKey.generate()}
    value = canonical({"schedule": [[0, _set(old)], [5, _set(new)]]})
    kh = sm3(b"sys/validators")
    root = sm3(b"\x02" + kh + sm3(value)).hex()  # a one-key state: the leaf is the root
    proof = {"format": "rongxin-smt-proof/1", "leaf": {"key_hash": kh.hex(), "value_hash": sm3(value).hex()},
             "siblings": []}
    b4 = _block(4, 7, old, ["a", "b", "c"], exec_root=root)
    b5 = _block(5, 8, new, ["a", "b", "e"], parent=vc.header_hash(b4["header"]).hex())
    entry = {"from_height": 5, "set": _set(new), "handover": {"height": 4, "value": value.decode(), "proof": proof}}
    return {"old": old, "new": new, "sched": [(0, _set(old)), (5, _set(new))], "b4": b4, "b5": b5, "entry": entry}


def test_a_certified_change_holds(chain: dict) -> None:
    h4 = vc.check_block(chain["b4"], chain["sched"], CHAIN)
    h5 = vc.check_block(chain["b5"], chain["sched"], CHAIN)
    vc.check_handover(chain["entry"], 0, {4: h4, 5: h5})
    assert vc.check_commit(4, {4: h4, 5: h5}) == 5


def test_forged_changes_fail(chain: dict) -> None:
    h4 = vc.check_block(chain["b4"], chain["sched"], CHAIN)
    forged = {i: SM2PrivateKey.generate() for i in "wxyz"}
    bad = dict(chain["entry"], set=_set(forged))
    with pytest.raises(vc.CheckFailed, match="does not schedule this set"):
        vc.check_handover(bad, 0, {4: h4})
    bad = dict(chain["entry"], handover={**chain["entry"]["handover"], "value": canonical(
        {"schedule": [[0, _set(chain["old"])], [5, _set(forged)]]}).decode()})
    with pytest.raises(vc.CheckFailed, match="state proof"):
        vc.check_handover(dict(bad, set=_set(forged)), 0, {4: h4})
    with pytest.raises(vc.CheckFailed, match="missing or not under the previous set"):
        vc.check_handover(chain["entry"], 0, {})
    # block 5 signed by the old set, or a block 5 claiming the old set, does not pass under the history
    with pytest.raises(vc.CheckFailed):
        vc.check_block(_block(5, 8, chain["old"], ["a", "b", "d"]), chain["sched"], CHAIN)
    # the forged set signing its own blocks is refused: the history does not name it
    with pytest.raises(vc.CheckFailed, match="another validator set"):
        vc.check_block(_block(5, 8, forged, ["w", "x", "y"]), chain["sched"], CHAIN)


def test_commit_needs_a_consecutive_view(chain: dict) -> None:
    h4 = vc.check_block(chain["b4"], chain["sched"], CHAIN)
    b5 = _block(5, 9, chain["new"], ["a", "b", "e"], parent=vc.header_hash(h4).hex())
    h5 = vc.check_block(b5, chain["sched"], CHAIN)
    with pytest.raises(vc.CheckFailed, match="no certified 2-chain step"):
        vc.check_commit(4, {4: h4, 5: h5})
    b5 = _block(5, 8, chain["new"], ["a", "b", "e"], parent="11" * 32)
    with pytest.raises(vc.CheckFailed, match="does not extend"):
        vc.check_commit(4, {4: h4, 5: vc.check_block(b5, chain["sched"], CHAIN)})
