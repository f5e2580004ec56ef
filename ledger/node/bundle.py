"""The proof bundle of committed transactions: everything an offline verifier needs from a node.

For a list of transaction ids it gathers, as plain JSON: each transaction with its inclusion
proof, receipt and receipt proof (docs/transactions.md §6, §10); the headers and quorum
certificates that show each inclusion block and each certifying block committed under the
2-chain rule (§4, §5); the genesis header and the consortium root's attestation of it
(``ledger.crypto.attest``; ``None`` when the node has none); and the validator-set history from genesis up to
the highest of those blocks, each change with the state proof of ``sys/validators`` against
the ``exec`` root of a header that the previous set certified (§7, docs/governance.md §6).
docs/evidence-format.md says how ``forensics`` packs and checks it. Store reads only.
"""

from __future__ import annotations

from typing import Any

from ..codec import EncodingError, parse
from ..contracts.context import account_of
from ..errors import LedgerError
from ..state.errors import StateError
from .runtime import Node

MAX_BUNDLE_TXS = 64
MAX_COMMIT_SEARCH = 64  # blocks searched upwards for the 2-chain step that commits a block
K_VALIDATORS = b"sys/validators"


class BundleError(LedgerError):
    """A transaction that cannot be proven yet (unknown, pending, receipt not yet certified)."""


def _block(node: Node, height: int) -> dict[str, Any]:
    rec = node.app.chain.block_record(height)
    if rec is None:
        raise BundleError(f"block {height} is not committed here yet; ask again a few blocks later")
    return {"header": rec["block"]["header"], "qc": rec["qc"], "tx_ids": rec["block"]["tx_ids"]}


def _commit_run(node: Node, height: int, blocks: dict[int, dict[str, Any]]) -> None:
    """Add blocks ``height`` .. ``j + 1`` where ``j + 1`` is the first child whose view is its
    parent's plus one: the 2-chain step that commits ``height`` with ``j``."""
    h = height
    for _ in range(MAX_COMMIT_SEARCH):
        cur = blocks.setdefault(h, _block(node, h))
        nxt = blocks.setdefault(h + 1, _block(node, h + 1))
        if nxt["header"]["view"] == cur["header"]["view"] + 1:
            return
        h += 1
    raise BundleError(f"no 2-chain commit step found within {MAX_COMMIT_SEARCH} blocks above {height}")


def _handover(node: Node, from_height: int, prev_from: int, vset_wire: list[Any]) -> dict[str, Any]:
    """A header certified by the previous set whose ``exec`` state already lists the entry."""
    for c in range(from_height - 1, max(prev_from, 1, from_height - MAX_COMMIT_SEARCH) - 1, -1):
        blk = _block(node, c)
        k = blk["header"]["exec"]["height"]
        try:
            q = node.app.query(K_VALIDATORS, k)
        except StateError as exc:  # a pruned version: this node cannot prove that change any more
            raise BundleError(f"the state after block {k} is not kept here: {exc}") from None
        if q.value is None:
            continue
        sched = parse(q.value)["schedule"]
        if [from_height, vset_wire] in sched:
            return {"height": c, "value": q.value.decode(), "proof": q.proof.to_json_obj()}
    raise BundleError(f"no header before height {from_height} certifies the validator set taking effect there")


def sender_certificate(node: Node, sender_hex: str) -> str | None:
    """The certificate (PEM) the sender's current ``user.register`` carried, or None (a node's
    key, or a sender this chain does not know as a user)."""
    try:
        raw = node.app.read(b"sys/user/" + account_of(bytes.fromhex(sender_hex)).encode())
        rec = parse(raw) if raw is not None else None
        blk = node.app.chain.block_record(int(rec["height"])) if isinstance(rec, dict) else None
    except (EncodingError, KeyError, TypeError, ValueError):
        return None
    for tid in blk["block"]["tx_ids"] if blk is not None else []:
        t = node.app.chain.tx(bytes.fromhex(tid))
        body = t.tx["body"] if t is not None else {}
        if body.get("type") == "user.register" and body.get("sender") == sender_hex:
            pem = body["payload"].get("certificate")
            return pem if isinstance(pem, str) else None
    return None


def proof_bundle(node: Node, tx_ids: list[str]) -> dict[str, Any]:
    """The bundle for ``tx_ids`` (committed, receipts certified); raises ``BundleError``."""
    if not 1 <= len(tx_ids) <= MAX_BUNDLE_TXS:
        raise BundleError(f"ask for 1 to {MAX_BUNDLE_TXS} transactions")
    from .queries import NodeQueries, QueryError  # the per-transaction view the API serves

    q = NodeQueries(node)
    statements: list[dict[str, Any]] = []
    blocks: dict[int, dict[str, Any]] = {}
    for tx_id in tx_ids:
        try:
            t = q.transaction(tx_id=tx_id)
        except QueryError as exc:
            raise BundleError(str(exc)) from None
        if t.get("status") != "committed":
            raise BundleError(f"transaction {tx_id} is not committed yet")
        c = t["receipt_proof"]["certified_in"]
        if c is None:
            raise BundleError(f"the receipt of {tx_id} is not certified yet; ask again a few blocks later")
        _commit_run(node, t["height"], blocks)
        _commit_run(node, c, blocks)
        statements.append({"tx": t["tx"], "proof": t["proof"], "receipt": t["receipt"],
                           "receipt_proof": t["receipt_proof"]})
    top = max(blocks)
    history: list[dict[str, Any]] = []
    prev = 0
    for from_height, vset in node.schedule:
        if from_height > top:
            break
        entry: dict[str, Any] = {"from_height": from_height, "set": vset.wire()}
        if history:
            entry["handover"] = _handover(node, from_height, prev, vset.wire())
            blocks.setdefault(entry["handover"]["height"], _block(node, entry["handover"]["height"]))
        elif from_height != 0:
            raise BundleError("the genesis validator set was pruned from the schedule on this node")
        history.append(entry)
        prev = from_height
    certs: dict[str, str] = {}
    for st in statements:
        sender = st["tx"]["body"]["sender"]
        pem = certs.get(sender) or sender_certificate(node, sender)
        if pem is not None:
            certs[sender] = pem
    return {"chain": node.chain, "genesis": node.genesis.header, "genesis_attestation": node.genesis_attestation,
            "validators": history,
            "blocks": [blocks[h] for h in sorted(blocks)], "statements": statements, "certificates": certs}
