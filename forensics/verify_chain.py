"""The ledger half of the offline verifier: validator-set history, quorum certificates, the
2-chain commit rule, inclusion and receipt paths (docs/evidence-format.md §5).

Pure functions over parsed package members; depends on ``ledger.crypto`` and the package
format only. Each check raises ``CheckFailed`` with what is wrong.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from ledger.crypto import CryptoError, SM2PublicKey, sm3
from ledger.crypto.merkle import merkle_root, verify_inclusion

from .package.format import canonical

HEX64 = frozenset("0123456789abcdef")
Schedule = list[tuple[int, list[dict[str, Any]]]]


class CheckFailed(Exception):
    """One check does not hold; the message says why."""


def need(cond: bool, why: str) -> None:
    if not cond:
        raise CheckFailed(why)


def hexb(value: Any, size: int | None = None) -> bytes:
    need(isinstance(value, str) and set(value) <= HEX64 and len(value) % 2 == 0, "a hash or key is not lowercase hex")
    raw = bytes.fromhex(value)
    need(size is None or len(raw) == size, f"a value of {len(raw)} bytes where {size} are due")
    return raw


def header_hash(header: Mapping[str, Any]) -> bytes:
    return sm3(canonical(header))


def vset_at(schedule: Schedule, height: int) -> list[dict[str, Any]]:
    """The set of the entry with the greatest ``from_height <= height``."""
    best = schedule[0][1]
    for from_height, vset in schedule:
        if from_height <= height:
            best = vset
    return best


def check_set(vset: Any) -> None:
    need(isinstance(vset, list) and len(vset) >= 1, "a validator set is a non-empty list")
    ids = [str(v["id"]) if isinstance(v, dict) and isinstance(v.get("id"), str) and v["id"] else "" for v in vset]
    need(all(ids), "a validator has no id")
    need(ids == sorted(set(ids)), "a validator set is not sorted by id with each id once")
    for v in vset:
        need(set(v) == {"id", "key", "org", "role"}, f"validator {v.get('id')!r} has other fields than id, key, org, role")
        hexb(v["key"], 65)


def check_qc(qc: Any, vset: list[dict[str, Any]], chain: str, header: Mapping[str, Any]) -> None:
    """``qc`` certifies ``header``: n - f distinct members of ``vset``, each signature valid."""
    need(isinstance(qc, dict) and set(qc) == {"block", "chain", "height", "sigs", "view"}, "a QC has other fields")
    h = header_hash(header)
    need(qc["chain"] == chain and qc["height"] == header["height"] and qc["view"] == header["view"]
         and qc["block"] == h.hex(), f"the QC of height {header['height']} is for another block")
    sigs = qc["sigs"]
    need(isinstance(sigs, list) and all(isinstance(s, dict) and set(s) == {"by", "sig"} for s in sigs),
         "QC signatures are {by, sig}")
    by = [s["by"] for s in sigs]
    need(len(set(by)) == len(by), f"QC of height {header['height']} lists a signer twice")
    need(by == sorted(by), f"QC of height {header['height']} is not sorted by signer")
    members = {v["id"]: v for v in vset}
    outsiders = [b for b in by if b not in members]
    need(not outsiders, f"QC of height {header['height']} is signed by non-members {outsiders[:3]}")
    n = len(vset)
    quorum = n - (n - 1) // 3
    need(len(by) >= quorum, f"QC of height {header['height']} has {len(by)} signatures; a quorum of {n} is {quorum}")
    vote = canonical({"kind": "vote", "chain": chain, "height": header["height"], "view": header["view"],
                      "block": h.hex()})
    for s in sigs:
        try:
            SM2PublicKey.from_point(hexb(members[s["by"]]["key"], 65)).verify(hexb(s["sig"]), vote)
        except CryptoError:
            raise CheckFailed(f"the signature of {s['by']} in the QC of height {header['height']} does not verify") from None


def check_block(blk: Any, schedule: Schedule, chain: str) -> dict[str, Any]:
    """A header with its transaction ids and the QC certifying it; returns the header."""
    need(isinstance(blk, dict) and set(blk) == {"header", "qc", "tx_ids"}, "a block entry is {header, qc, tx_ids}")
    hd = blk["header"]
    need(isinstance(hd, dict) and hd.get("chain") == chain, "a header of another chain")
    hgt = hd.get("height")
    need(isinstance(hgt, int) and not isinstance(hgt, bool) and hgt >= 1, "a header height is an integer >= 1")
    vset = vset_at(schedule, hgt)
    need(hd.get("validators") == sm3(canonical(vset)).hex(),
         f"block {hgt} names another validator set than the history gives for its height")
    ids = blk["tx_ids"]
    need(isinstance(ids, list) and hd.get("count") == len(ids), f"block {hgt}: count differs from its transaction ids")
    need(merkle_root([hexb(t, 32) for t in ids]).hex() == hd.get("txs"), f"block {hgt}: txs root differs from its ids")
    check_qc(blk["qc"], vset, chain, hd)
    return dict(hd)


def check_commit(height: int, headers: Mapping[int, Mapping[str, Any]]) -> int:
    """Block ``height`` is committed: a run of parent-linked headers up to a child ``j + 1`` whose
    view is ``j``'s plus one (both certified). Returns ``j + 1``."""
    h = height
    while h in headers and h + 1 in headers:
        child, parent = headers[h + 1], headers[h]
        need(child["parent"] == header_hash(parent).hex(), f"block {h + 1} does not extend block {h}")
        if child["view"] == parent["view"] + 1:
            return h + 1
        h += 1
    raise CheckFailed(f"no certified 2-chain step commits block {height}")


def check_genesis(gen: Any, root_fingerprint: str, chain: str, vset: list[dict[str, Any]]) -> dict[str, Any]:
    need(isinstance(gen, dict) and "header" in gen and set(gen) <= {"attestation", "header"},
         'chain/genesis.json is {"attestation": ..., "header": ...}')
    hd = gen["header"]
    need(isinstance(hd, dict) and hd.get("height") == 0 and hd.get("chain") == chain, "not this chain's genesis")
    need(hd.get("root_certificate") == root_fingerprint, "the genesis names another consortium root certificate")
    need(hd.get("suite") == "sm", "the genesis names another crypto suite than sm")
    need(hd.get("validators") == sm3(canonical(vset)).hex(), "the genesis covers another validator set")
    return dict(hd)


def smt_root(key: bytes, value: bytes, proof: Any) -> bytes:
    """The state root a membership proof leads to (docs/spec/state.md)."""
    need(isinstance(proof, dict) and proof.get("format") == "rongxin-smt-proof/1", "not a state proof")
    leaf, sib = proof.get("leaf"), proof.get("siblings")
    need(isinstance(leaf, dict) and isinstance(sib, list) and len(sib) <= 256, "a state proof without a leaf")
    kh = sm3(key)
    need(hexb(leaf.get("key_hash"), 32) == kh and hexb(leaf.get("value_hash"), 32) == sm3(value),
         "the state proof is for another key or value")
    cur = sm3(b"\x02" + kh + sm3(value))
    for i in range(len(sib) - 1, -1, -1):
        s = hexb(sib[i], 32)
        right = (kh[i >> 3] >> (7 - (i & 7))) & 1
        cur = sm3(b"\x03" + s + cur) if right else sm3(b"\x03" + cur + s)
    return cur


def check_handover(entry: Mapping[str, Any], prev_from: int, headers: Mapping[int, Mapping[str, Any]]) -> None:
    """A set change: the state after a block the previous set certified lists it."""
    ho = entry.get("handover")
    if not isinstance(ho, dict) or set(ho) != {"height", "proof", "value"}:
        raise CheckFailed("a set change without its handover proof")
    c = ho["height"]
    need(isinstance(c, int) and prev_from <= c < entry["from_height"] and c in headers,
         f"the handover header of the set from height {entry['from_height']} is missing or not under the previous set")
    exec_ = headers[c]["exec"]
    value = ho["value"].encode() if isinstance(ho["value"], str) else b""
    need(smt_root(b"sys/validators", value, ho["proof"]).hex() == exec_["root"],
         f"the validator schedule's state proof does not lead to block {c}'s exec root")
    try:
        import json
        sched = json.loads(value)["schedule"]
    except (ValueError, KeyError, TypeError):
        raise CheckFailed("the proven validator schedule is not a schedule") from None
    need([entry["from_height"], entry["set"]] in sched,
         f"the state block {c} certifies does not schedule this set from height {entry['from_height']}")


def check_inclusion(tx_id: bytes, proof: Any, header: Mapping[str, Any], tx_ids: Sequence[str]) -> int:
    need(isinstance(proof, dict) and set(proof) == {"height", "index", "path", "root", "size", "tx"},
         "an inclusion proof has other fields")
    need(proof["tx"] == tx_id.hex() and proof["height"] == header["height"], "the inclusion proof is for another transaction or block")
    need(proof["root"] == header["txs"] and proof["size"] == header["count"], "the inclusion proof's root is not the block's")
    i = proof["index"]
    need(isinstance(i, int) and 0 <= i < len(tx_ids) and tx_ids[i] == tx_id.hex(), "the block lists another id at that index")
    need(isinstance(proof["path"], list) and verify_inclusion(tx_id, i, proof["size"], [hexb(p, 32) for p in proof["path"]],
                                                               hexb(proof["root"], 32)),
         "the inclusion path does not lead to the block's txs root")
    return int(i)


def check_receipt(tx_id: bytes, index: int, height: int, receipt: Any, rp: Any,
                  headers: Mapping[int, Mapping[str, Any]]) -> int:
    need(isinstance(receipt, dict) and receipt.get("tx") == tx_id.hex(), "the receipt is for another transaction")
    need(isinstance(rp, dict) and set(rp) == {"certified_in", "height", "index", "path", "root", "size"},
         "a receipt proof has other fields")
    need(rp["height"] == height and rp["index"] == index, "the receipt proof is for another block or index")
    need(rp["size"] == headers[height]["count"], "the receipt proof's tree is not the size of the block")
    c = rp["certified_in"]
    need(isinstance(c, int) and c > height and c in headers, "the block certifying the results root is missing")
    need(headers[c]["results"] == {"height": height, "root": rp["root"]},
         f"block {c} does not certify this results root for block {height}")
    need(isinstance(rp["path"], list) and verify_inclusion(canonical(receipt), index, rp["size"],
                                                            [hexb(p, 32) for p in rp["path"]], hexb(rp["root"], 32)),
         "the receipt path does not lead to the results root")
    return int(c)
