"""The application interface: the do-nothing base and the key-value reference application."""

from __future__ import annotations

from pathlib import Path

import pytest

from ledger.codec import canonical
from ledger.crypto.merkle import merkle_root
from ledger.state.errors import HeightOutOfOrder, PendingChanges, VersionNotFound
from ledger.state.proof import EMPTY_HASH, Proof, verify_proof
from ledger.state.store import LMDBStore, MemoryStore

from .machine import Application, BaseApplication, KVApplication
from .reference import reference_root


def tx_set(key: str, value: str) -> bytes:
    return canonical({"op": "set", "key": key, "value": value})


def tx_del(key: str) -> bytes:
    return canonical({"op": "delete", "key": key})


def test_base_application_does_nothing_but_count_heights() -> None:
    app: Application = BaseApplication()
    assert app.info() == (0, EMPTY_HASH)
    assert app.check_tx(b"anything") == (True, "")
    root, receipts = app.execute_block(1, [b"a", b"b"])
    assert root == EMPTY_HASH and [r.code for r in receipts] == [0, 0]
    assert app.commit() == (1, EMPTY_HASH)
    value, proof, _height, qroot = app.query(b"k")
    assert value is None and verify_proof(qroot, b"k", None, proof)
    with pytest.raises(HeightOutOfOrder):
        app.execute_block(3, [])
    with pytest.raises(PendingChanges):
        app.commit()


@pytest.mark.parametrize("tx, reason", [
    (b"{not json", "not canonical JSON: malformed JSON"),
    (b'{"key":"a","key":"b","op":"delete"}', "duplicate key"),
    (b'{"key":"a","op":"set","value":1.5}', "float"),
    (b"[]", "must be a JSON object"),
    (b'{"key":"a","op":"put","value":"1"}', '"op" must be'),
    (b'{"key":"a","op":"set"}', "exactly the fields"),
    (b'{"key":"","op":"set","value":"1"}', "non-empty string"),
    (b'{"key":"a","op":"set","value":1}', '"value" must be a string'),
    (b'{"op":"set","key":"a","value":"1"}', "not in canonical form"),
    (b'{"key":"a", "op":"delete"}', "not in canonical form"),
    (b"x" * 70000, "the limit is"),
])
def test_check_tx_explains_rejections(tx: bytes, reason: str) -> None:
    ok, why = KVApplication(MemoryStore()).check_tx(tx)
    assert not ok and reason in why


def test_blocks_execute_commit_and_query_with_proofs() -> None:
    app = KVApplication(MemoryStore())
    assert app.check_tx(tx_set("a", "1")) == (True, "")
    txs1 = [tx_set("a", "1"), tx_set("b", "2"), b"garbage", tx_set("a", "3")]
    root1, receipts = app.execute_block(1, txs1)
    assert [r.code for r in receipts] == [0, 0, 1, 0]
    assert root1 == reference_root({b"a": b"3", b"b": b"2"})  # later transactions win
    assert app.info() == (0, EMPTY_HASH)  # not committed yet
    assert app.commit() == (1, root1)
    root2, _ = app.execute_block(2, [tx_del("b"), tx_set("c", "中文")])
    app.commit()
    assert root2 == reference_root({b"a": b"3", b"c": "中文".encode()})
    value, proof, height, root = app.query(b"b", 1)
    assert (value, height, root) == (b"2", 1, root1) and verify_proof(root1, b"b", b"2", proof)
    value, proof, height, root = app.query(b"b")
    assert value is None and height == 2 and verify_proof(root2, b"b", None, Proof.from_json(proof.to_json()))
    block = app.block(1)
    assert block is not None
    assert block["state_root"] == root1.hex() and block["tx_root"] == merkle_root(txs1).hex()
    assert block["receipts"][2][1] == 1 and len(block["txs"]) == 4
    assert app.block(3) is None
    with pytest.raises(VersionNotFound):
        app.query(b"a", 3)


def test_re_executing_a_staged_height_replaces_it() -> None:
    app = KVApplication(MemoryStore())
    app.execute_block(1, [tx_set("a", "1")])
    root, _ = app.execute_block(1, [tx_set("b", "2")])
    assert app.commit() == (1, root)
    assert app.query(b"a").value is None and app.query(b"b").value == b"2"
    with pytest.raises(HeightOutOfOrder, match="next block height is 2, not 5"):
        app.execute_block(5, [])
    with pytest.raises(PendingChanges):
        app.commit()


def test_application_restarts_from_its_store(tmp_path: Path) -> None:
    store = LMDBStore(tmp_path / "node")
    app = KVApplication(store)
    for h in range(1, 6):
        app.execute_block(h, [tx_set(f"k{h}", str(h)), tx_set("last", str(h))])
        app.commit()
    info = app.info()
    app.execute_block(6, [tx_set("lost", "x")])  # staged, never committed
    store.close()
    store = LMDBStore(tmp_path / "node")
    app = KVApplication(store)
    assert app.info() == info and info.last_height == 5
    assert app.query(b"last").value == b"5" and app.query(b"lost").value is None
    assert app.block(5) is not None and app.block(6) is None
    store.close()
