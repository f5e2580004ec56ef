"""The results tree of a block: what its transactions did, committed to by a later header.

Leaf ``i`` of block ``k``'s results tree is the canonical JSON of transaction ``i``'s receipt
with its transaction id added: ``{"code", "events"?, "fuel"?, "info", "result"?, "tx"}``
(docs/transactions.md, "Receipts and the results root"). The tree is the RFC 6962 tree of
``ledger/crypto/merkle`` with SM3, the root of an empty block ``SM3("")``. The root goes
into the ``results`` field (``{"height": k, "root": hex}``) of a header proposed after block
``k`` was executed, exactly as ``exec`` carries the state root; a receipt proof is the audit
path of one leaf plus the height of the block whose header certifies the root.

Pure functions, no storage: a court's verifier uses ``verify_receipt`` alone.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from ..codec import EncodingError, canonical
from ..crypto.merkle import inclusion_proof, merkle_root, verify_inclusion

__all__ = ["receipt_leaf", "receipt_proof", "results_root", "verify_receipt"]


def receipt_leaf(tx_id: bytes, receipt_canonical: bytes) -> bytes:
    """The canonical receipt with ``"tx": <id hex>`` added (``tx`` sorts after every other
    receipt key, so it is appended before the closing brace)."""
    if not receipt_canonical.endswith(b"}"):
        raise ValueError("a receipt is a canonical JSON object")
    return receipt_canonical[:-1] + b',"tx":"' + tx_id.hex().encode() + b'"}'


def results_root(tx_ids: Sequence[bytes], receipts_canonical: Sequence[bytes]) -> bytes:
    """The results root of a block with these transaction ids and canonical receipts."""
    return merkle_root([receipt_leaf(t, r) for t, r in zip(tx_ids, receipts_canonical, strict=True)])


def receipt_proof(tx_ids: Sequence[bytes], receipts: Sequence[Mapping[str, Any]], index: int,
                  height: int, certified_in: int | None) -> tuple[dict[str, Any], dict[str, Any]]:
    """The served receipt object (what leaf ``index`` hashes) and its proof."""
    leaves = [receipt_leaf(t, canonical(dict(r), check=False)) for t, r in zip(tx_ids, receipts, strict=True)]
    receipt = dict(receipts[index])
    receipt["tx"] = tx_ids[index].hex()
    path = inclusion_proof(leaves, index)
    return receipt, {"height": height, "index": index, "size": len(leaves),
                     "path": [p.hex() for p in path], "root": merkle_root(leaves).hex(),
                     "certified_in": certified_in}


def verify_receipt(receipt: Mapping[str, Any], proof: Mapping[str, Any],
                   header: Mapping[str, Any] | None = None) -> bool:
    """Whether ``proof`` puts ``receipt`` in the results tree of ``proof["height"]`` and, given
    the header of block ``proof["certified_in"]``, whether that header certifies the root.
    Never raises on malformed input: it answers ``False``."""
    try:
        leaf = canonical(dict(receipt))
        ok = verify_inclusion(leaf, int(proof["index"]), int(proof["size"]),
                              [bytes.fromhex(p) for p in proof["path"]], bytes.fromhex(proof["root"]))
        if ok and header is not None:
            ok = (header.get("height") == proof["certified_in"]
                  and header.get("results") == {"height": proof["height"], "root": proof["root"]})
        return ok
    except (EncodingError, KeyError, TypeError, ValueError):
        return False
