"""What the contract (``privacy.contracts``), the party process and the audit share: the
default data set, the proposal's SM3, the buckets the commitments cover, the commitments
themselves, the joint opening of their randomness and the audit of a recorded result.

Buckets: a query over ``N`` ids is cut into ``B = min(N, MAX_BUCKETS)`` consecutive buckets,
bucket ``k`` holding the ids at positions ``[floor(k*N/B), floor((k+1)*N/B))`` of the query's
list. Each party commits to the sum of its values over each bucket, so up to ``MAX_BUCKETS``
ids every id has its own commitment, and above that the chain still holds ``B`` commitments
(a transaction is at most 64 KiB). docs/privacy.md ("On chain") is the specification.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Sequence
from typing import Any

from ledger.codec import canonical
from ledger.crypto import SM4GCM, CommitmentError, CryptoError, Scalar, SM2PrivateKey, SM2PublicKey, sm3_hex
from ledger.crypto.group import N as ORDER
from ledger.crypto.pedersen import Commitment, commit, failed_totals
from ledger.tx import MAX_TX_BYTES

from . import dp

__all__ = ["APPROVAL_WINDOW_MS", "DEFAULT_DATASET", "DEFAULT_SCHEMA", "LIMB_SCHEMA", "MAX_BUCKETS", "MAX_IDS", "PUBLIC", "AuditFailed",
           "admission", "audit", "bucket_bounds", "bucket_count", "commitments", "input_values",
           "limb_ids", "limbs", "outputs_text", "proposal_sm3", "randomness_sums", "record_refusal", "record_size", "seal", "unapproved", "unseal"]

DEFAULT_DATASET = "default"
#: the data set a proposal names when it names none: views and likes per content id
DEFAULT_SCHEMA: dict[str, Any] = {"columns": {"likes": {"max": 1_000_000, "min": 0},
                                              "views": {"max": 1_000_000, "min": 0}}}
PUBLIC = "*"
#: a proposal not approved by every party within this time of its block is closed to approvals
APPROVAL_WINDOW_MS = 7 * 24 * 3600 * 1000
MAX_BUCKETS = 400
MAX_IDS = 5000  # a proposal carries its ids and must fit in one transaction
COMMITMENT_HEX = 66
SCALAR_HEX = 64
LIMB_BITS = 52
LIMB_COUNT = 5  # 5 * 52 = 260 bits >= a 256-bit scalar; 16 parties' limbs add below 2^56
LIMB_SCHEMA: dict[str, Any] = {"columns": {"r": {"max": (1 << LIMB_BITS) - 1, "min": 0}}}


class AuditFailed(Exception):
    """The recorded result does not check out against the commitments (the message says why)."""


def proposal_sm3(cid: str, proposal: dict[str, Any]) -> str:
    """What an approval binds: SM3 of the canonical JSON ``{"computation_id", "proposal"}``."""
    return sm3_hex(canonical({"computation_id": cid, "proposal": proposal}))


def unapproved(rec: dict[str, Any]) -> list[str]:
    """The named parties without an approval of the proposal as it stands now."""
    return [n for n in rec["proposal"]["parties"]
            if rec["approvals"].get(n, {}).get("proposal_sm3") != rec["proposal_sm3"]]


def admission(query: dict[str, Any], policy: dict[str, Any] | None, schema: dict[str, Any],
              history: list[dict[str, Any]]) -> tuple[str | None, dict[str, Any]]:
    """``(refusal, record)``: why the query may not run on a data set with this differential-
    privacy ``policy`` (None: the data set declared none) given the records of every query
    admitted on it before (``history``, oldest first), or None; and the record to append to the
    history when it is admitted (``privacy.dp.admit``'s charge). A data set without a policy
    admits every exact query and refuses noise: there is no budget to charge it to."""
    if policy is None:
        if "dp" in query:
            return ("the query asks for noise ('dp') but the data set has no privacy policy to charge it to "
                    "(declare one with mpc.dataset ... policy)"), {}
        return None, {"op": query.get("op"), "column": query.get("column"), "epsilon": 0, "delta": 0,
                      "exact": "dp" not in query}
    try:
        charge = dp.admit(query, dp.Policy.parse(policy, schema), history)
    except dp.DPError as exc:
        return str(exc), {}
    return None, dict(charge.record)


RECORD_ENVELOPE = 2048  # an mpc.record's signature, sender, nonce, type and fields besides outputs and randomness
SEALED_KEY_HEX = 2 * (16 + 97 + 16)  # one SM2-wrapped 16-byte key (C1 65 + C3 32 + C2 16, DER) in hex, generous


def record_size(query: dict[str, Any], schema: dict[str, Any], n_parties: int, readers: list[str]) -> int:
    """An upper bound of the bytes of the ``mpc.record`` transaction of this query's result:
    per-id totals (``sum``, ``count``) at their widest (``-2^63`` with noise), the text as it is
    escaped inside the payload or sealed, plus the opened randomness and the envelope. The
    other ops' outputs do not grow with the ids (a few hundred bytes)."""
    ids = query["ids"]
    op = query.get("op")
    widest: dict[str, Any] = {}
    if op in ("sum", "count"):
        width = -(2**63)
        if "dp" not in query and op == "count":
            width = n_parties
        elif "dp" not in query:
            col = schema["columns"].get(query.get("column"), {})
            lo, hi = int(col.get("min", -(2**62))), int(col.get("max", 2**62))
            width = n_parties * max(abs(lo), abs(hi)) * (-1 if lo < 0 else 1)
        widest = {"totals": {str(i): width for i in ids}}
    text = outputs_text(widest)
    if readers == [PUBLIC]:
        body = len(canonical(text))
    else:
        body = 2 * (len(text.encode()) + 16) + 64 + len(readers) * (SEALED_KEY_HEX + 50)
    return body + SCALAR_HEX * bucket_count(len(ids)) + RECORD_ENVELOPE + 1024


def record_refusal(query: dict[str, Any], schema: dict[str, Any], n_parties: int, readers: list[str]) -> str | None:
    """Why the result of this query could not be recorded in one transaction (None: it can)."""
    size = record_size(query, schema, n_parties, readers)
    if size <= MAX_TX_BYTES:
        return None
    return (f"the result of this {query.get('op')} over {len(query['ids'])} ids could take {size} bytes to record, "
            f"over the {MAX_TX_BYTES}-byte transaction limit: split the ids into several computations")


# ---------------------------------------------------------------- buckets and commitments
def bucket_count(n_ids: int) -> int:
    return min(n_ids, MAX_BUCKETS)


def bucket_bounds(n_ids: int) -> list[tuple[int, int]]:
    b = bucket_count(n_ids)
    return [(k * n_ids // b, (k + 1) * n_ids // b) for k in range(b)]


def input_values(query: dict[str, Any], data: dict[str, dict[str, int]]) -> list[int]:
    """This party's value per id of the query, as the engine adds them: the column's value
    (0 without a row); for ``count`` 1 with a row, else 0."""
    ids = query["ids"]
    if query.get("op") == "count":
        return [1 if i in data else 0 for i in ids]
    column = str(query.get("column"))
    return [int(data[i].get(column, 0)) if i in data else 0 for i in ids]


def commitments(values: Sequence[int]) -> tuple[str, list[Scalar]]:
    """Commitments to the bucket sums of ``values`` (hex, concatenated) and their randomness."""
    blob, rnd = [], []
    for lo, hi in bucket_bounds(len(values)):
        c, opening = commit(sum(values[lo:hi]))
        blob.append(c.hex())
        rnd.append(opening.randomness)
    return "".join(blob), rnd


def limb_ids(buckets: int) -> list[str]:
    return [f"r{k}.{j}" for k in range(buckets) for j in range(LIMB_COUNT)]


def limbs(randomness: Sequence[Scalar]) -> dict[str, dict[str, int]]:
    """The randomness as the data of a sum query over ``limb_ids``: scalar ``k`` in
    ``LIMB_COUNT`` little-endian limbs of ``LIMB_BITS`` bits, so the joint sum of the parties'
    limbs never wraps and recomposes to the sum of their randomness."""
    mask = (1 << LIMB_BITS) - 1
    out: dict[str, dict[str, int]] = {}
    for k, r in enumerate(randomness):
        v = r.value
        for j in range(LIMB_COUNT):
            out[f"r{k}.{j}"] = {"r": (v >> (LIMB_BITS * j)) & mask}
    return out


def randomness_sums(limb_totals: dict[str, int], buckets: int) -> str:
    """The summed limbs back into one scalar per bucket (mod n), hex, concatenated."""
    out = []
    for k in range(buckets):
        v = sum(int(limb_totals[f"r{k}.{j}"]) << (LIMB_BITS * j) for j in range(LIMB_COUNT))
        out.append(Scalar(v % ORDER).to_bytes().hex())
    return "".join(out)


def seal(cid: str, text: str, reader_keys: dict[str, bytes]) -> dict[str, Any]:
    """The outputs for named readers: SM4-GCM under a fresh key (associated data: the
    computation id), that key SM2-encrypted to each reader's public key (account -> point)."""
    key, nonce = secrets.token_bytes(16), secrets.token_bytes(12)
    box = SM4GCM(key).encrypt(nonce, text.encode(), cid.encode())
    return {"ciphertext": box.hex(), "keys": {a: SM2PublicKey.from_point(k).encrypt(key).hex()
                                               for a, k in sorted(reader_keys.items())}, "nonce": nonce.hex()}


def unseal(cid: str, sealed: dict[str, Any], account: str, key: SM2PrivateKey) -> str:
    """The outputs text of ``sealed`` for the reader ``account`` holding ``key``."""
    wrapped = sealed.get("keys", {}).get(account)
    if not isinstance(wrapped, str):
        raise AuditFailed(f"the outputs are sealed to the readers the proposal named; {account} is not one of them")
    try:
        k = key.decrypt(bytes.fromhex(wrapped))
        return SM4GCM(k).decrypt(bytes.fromhex(sealed["nonce"]), bytes.fromhex(sealed["ciphertext"]),
                                 cid.encode()).decode()
    except (CryptoError, ValueError, KeyError) as exc:
        raise AuditFailed(f"the sealed outputs cannot be opened: {exc}") from None


def outputs_text(values: dict[str, Any]) -> str:
    """The outputs as recorded: JSON with sorted keys and no spaces (floats as Python writes them)."""
    return json.dumps(values, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=_plain)


def _plain(value: Any) -> Any:
    """numpy scalars and arrays as Python numbers and lists."""
    if hasattr(value, "tolist"):
        return value.tolist()
    raise TypeError(f"{type(value).__name__} is not JSON")


# ---------------------------------------------------------------- audit
def _split(blob: str, width: int, count: int, what: str) -> list[str]:
    if not isinstance(blob, str) or len(blob) != width * count:
        raise AuditFailed(f"{what} does not hold {count} entries")
    return [blob[k * width:(k + 1) * width] for k in range(count)]


def _published(query: dict[str, Any], outputs: dict[str, Any]) -> dict[str, int]:
    """id -> total for every total the outputs publish."""
    ids = query["ids"]
    if query.get("op") in ("sum", "count"):
        totals = outputs.get("totals")
        if not isinstance(totals, dict) or sorted(totals) != sorted(ids):
            raise AuditFailed("the recorded outputs do not hold one total per id of the query")
        return {str(k): int(v) for k, v in totals.items()}
    if isinstance(outputs.get("ids"), list) and isinstance(outputs.get("totals"), list):  # topk with totals
        return {str(k): int(v) for k, v in zip(outputs["ids"], outputs["totals"], strict=True)}
    return {}


def audit(rec: dict[str, Any], commits: dict[str, str], outputs: str | None) -> int:
    """Check a recorded computation against the commitments filed before it ran; the number
    of buckets checked. ``AuditFailed`` says what does not hold."""
    cid = rec.get("computation_id")
    if rec.get("status") != "done":
        raise AuditFailed(f"computation {cid} is {rec.get('status')}: there are no outputs to audit")
    res, query, buckets = rec["result"], rec["proposal"]["query"], int(rec["buckets"])
    if "dp" in query:  # the parties committed to their inputs, not to their secret noise shares
        raise AuditFailed(f"computation {cid} published differentially private (noisy) outputs: the "
                          "commitments cover the inputs without the noise, so they cannot check them")
    if outputs is None or sm3_hex(outputs.encode()) != res["outputs_sm3"]:
        raise AuditFailed("the outputs on chain do not match the recorded outputs_sm3")
    missing = [p for p in rec["proposal"]["parties"] if p not in commits]
    if missing:
        raise AuditFailed(f"no commitment on chain from {', '.join(missing)}")
    try:
        per_party = [[Commitment.from_hex(h) for h in _split(commits[p], COMMITMENT_HEX, buckets, f"{p}'s commitments")]
                     for p in rec["proposal"]["parties"]]
        rsums = [Scalar.from_bytes(bytes.fromhex(h)) for h in _split(res["randomness"], SCALAR_HEX, buckets,
                                                                     "the opened randomness")]
        parsed = json.loads(outputs)
        if not isinstance(parsed, dict):
            raise TypeError("the outputs are not a JSON object")
        published = _published(query, parsed)
    except (CryptoError, ValueError, TypeError, AttributeError) as exc:
        raise AuditFailed(f"malformed record: {exc}") from None
    position = {i: n for n, i in enumerate(query["ids"])}
    checked: list[int] = []
    totals: list[int] = []
    for k, (lo, hi) in enumerate(bucket_bounds(len(query["ids"]))):
        members = query["ids"][lo:hi]
        if all(m in published for m in members):
            checked.append(k)
            totals.append(sum(published[m] for m in members))
    if any(i not in position for i in published):
        raise AuditFailed("the outputs publish a total for an id outside the query")
    if not checked:
        raise AuditFailed(f"computation {cid} ({query.get('op')}) publishes no totals the commitments can check")
    try:
        bad = failed_totals([[v[k] for k in checked] for v in per_party], totals, [rsums[k] for k in checked])
    except (CommitmentError, CryptoError, ValueError) as exc:  # e.g. a published total of 2^128 or more
        raise AuditFailed(f"the published totals cannot be checked: {exc}") from None
    if bad:
        lo, hi = bucket_bounds(len(query["ids"]))[checked[bad[0]]]
        raise AuditFailed(f"{len(bad)} published total(s) are not the sum of what the parties committed to, "
                          f"first at id {query['ids'][lo]}" + (f" (bucket of {hi - lo} ids)" if hi - lo > 1 else ""))
    return len(checked)
