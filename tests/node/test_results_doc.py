"""The worked example of docs/transactions.md §10, recomputed from the code."""

from __future__ import annotations

import re
from pathlib import Path

from ledger.codec import canonical
from ledger.crypto.merkle import leaf_hash, node_hash
from ledger.node.abci import Receipt
from ledger.node.results import receipt_leaf, receipt_proof, results_root, verify_receipt

DOC = (Path(__file__).parents[2] / "docs" / "transactions.md").read_text()


def test_worked_example_of_the_results_root() -> None:
    ids = [bytes([b]) * 32 for b in (0x11, 0x22, 0x33)]
    receipts = [Receipt(0, "ok"), Receipt(4, "value must be a string of at most 4096 bytes"),
                Receipt(2, "replay: this transaction or its nonce is already committed")]
    leaves = [receipt_leaf(t, r.canonical()) for t, r in zip(ids, receipts, strict=True)]
    hashes = [leaf_hash(x) for x in leaves]
    n01 = node_hash(hashes[0], hashes[1])
    root = results_root(ids, [r.canonical() for r in receipts])
    assert root == node_hash(n01, hashes[2])
    for value in [*hashes, n01, root]:
        assert value.hex() in DOC, f"{value.hex()} is not in docs/transactions.md"
    assert leaves[1] == canonical({**receipts[1].wire(), "tx": ids[1].hex()})
    receipt, proof = receipt_proof(ids, [r.wire() for r in receipts], 1, 41, 43)
    documented = re.search(r'\{"height": 41, "index": 1, "size": 3, "certified_in": 43,.*?\}', DOC, re.S)
    assert documented is not None
    assert proof["path"] == [hashes[0].hex(), hashes[2].hex()] and proof["root"] == root.hex()
    assert all(p in documented.group(0) for p in proof["path"])
    header = {"height": 43, "results": {"height": 41, "root": root.hex()}}
    assert verify_receipt(receipt, proof, header)
