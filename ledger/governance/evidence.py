"""``node.evidence``: two proposals or two votes signed by one validator for different blocks
in one view evict it, once per offence (``sys/evidence/<id>/<view>``, docs/governance.md §4.6)."""

from __future__ import annotations

from typing import Any

from ..codec import EncodingError, canonical, hexbytes
from ..consensus.errors import InvalidMessage
from ..consensus.types import check_signature, proposal_bytes, vote_bytes
from ..crypto import sm3
from ..tx import Transaction
from .base import K_EVIDENCE, BlockContext, GovernanceRefused, Reader, Writes
from .schedule import remove
from .views import Schedule, Views, vset_in

KINDS = ("double-proposal", "double-vote")


def _double_proposal(views: Views, a: Any, b: Any, schedule: Schedule) -> tuple[str, int, int]:
    # each side is {"header": block header, "sig": proposal signature}: the block hash is SM3
    # of the canonical header, so the transaction ids are not needed
    if not isinstance(a, dict) or not isinstance(b, dict) or set(a) != {"header", "sig"} or set(b) != {"header", "sig"}:
        raise InvalidMessage('each proposal is {"header": {...}, "sig": hex}')
    ha, hb = a["header"], b["header"]
    if not isinstance(ha, dict) or not isinstance(hb, dict):
        raise InvalidMessage("a proposal header must be an object")
    if ha["proposer"] != hb["proposer"] or ha["view"] != hb["view"]:
        raise InvalidMessage("the two proposals differ in proposer or view")
    if ha["chain"] != views.chain or hb["chain"] != views.chain:
        raise InvalidMessage("a proposal is for another chain")
    hash_a, hash_b = sm3(canonical(ha)), sm3(canonical(hb))
    if hash_a == hash_b:
        raise InvalidMessage("the two proposals are the same block")
    proposer, view = str(ha["proposer"]), int(ha["view"])
    for h, side in ((hash_a, a), (hash_b, b)):
        vset = vset_in(schedule, int(side["header"]["height"]))
        check_signature(views.keys, vset, proposer, proposal_bytes(views.chain, h), hexbytes(side["sig"], "sig"))
    return proposer, view, int(ha["height"])


def _double_vote(views: Views, a: Any, b: Any, schedule: Schedule) -> tuple[str, int, int]:
    if not isinstance(a, dict) or not isinstance(b, dict):
        raise InvalidMessage("each vote is an object")
    if a["by"] != b["by"] or a["view"] != b["view"]:
        raise InvalidMessage("the two votes differ in voter or view")
    block_a, block_b = hexbytes(a["block"], "block", 32), hexbytes(b["block"], "block", 32)
    if block_a == block_b:
        raise InvalidMessage("the two votes are for the same block")
    view = int(a["view"])
    for v, blk in ((a, block_a), (b, block_b)):
        height = int(v["height"])
        check_signature(views.keys, vset_in(schedule, height), str(v["by"]),
                        vote_bytes(views.chain, height, view, blk), hexbytes(v["sig"], "sig"))
    return str(a["by"]), view, int(a["height"])


def offence(views: Views, payload: Any, schedule: Schedule) -> tuple[str, int, int]:
    """The offender, view and height the evidence proves, or a refusal. Hashes are compared as
    bytes after strict decoding, so two spellings of one hash are never "different blocks"."""
    if not isinstance(payload, dict) or set(payload) != {"kind", "a", "b"} or payload["kind"] not in KINDS:
        raise GovernanceRefused('node.evidence payload is {"kind": "double-proposal"|"double-vote", "a", "b"}')
    check = _double_proposal if payload["kind"] == "double-proposal" else _double_vote
    try:
        return check(views, payload["a"], payload["b"], schedule)
    except (InvalidMessage, EncodingError, KeyError, TypeError, ValueError) as exc:
        raise GovernanceRefused(f"evidence does not prove an offence: {exc}") from None


def node_evidence(views: Views, bc: BlockContext, tx: Transaction, read: Reader) -> Writes:
    schedule = views.schedule(read)
    offender, view, height = offence(views, tx.payload, schedule)
    seen = K_EVIDENCE + f"{offender}/{view}".encode()
    if read(seen) is not None:
        raise GovernanceRefused(f"this offence of {offender!r} in view {view} is already punished")
    if offender not in vset_in(schedule, bc.height) or views.revoked(read, offender):
        raise GovernanceRefused(f"{offender!r} is no longer a validator")
    writes = remove(views, bc, read, schedule, views.params(read), offender,
                    f"{tx.payload['kind']} in view {view} at height {height}")
    writes[seen] = canonical({"height": bc.height, "tx": tx.id.hex()})
    return writes
