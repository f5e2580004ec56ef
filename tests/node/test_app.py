"""The ledger application: receipts for every kind of refusal, atomic commit with the block."""

from __future__ import annotations

from pathlib import Path

from ledger.codec import canonical, parse
from ledger.consensus.engine import genesis_block
from ledger.consensus.types import Block, QuorumCertificate, Validator, ValidatorSet
from ledger.crypto import SM2PrivateKey
from ledger.crypto.merkle import merkle_root
from ledger.node.app import LedgerApp
from ledger.node.chainstore import BAD_PAYLOAD, EXPIRED, OK, REPLAY, UNKNOWN_TYPE
from ledger.state.store import MemoryStore, open_store
from ledger.tx import Transaction

KEY = SM2PrivateKey.generate()
VSET = ValidatorSet((Validator("v0", KEY.public_key().point, "org", "supervisor"),))
GENESIS = genesis_block("c", VSET, bytes(32))


def tx(payload: dict, *, type_: str = "kv.set", expiry: int = 100, nonce: int | None = None) -> Transaction:
    return Transaction.build(KEY, chain="c", type=type_, payload=payload, expiry=expiry, nonce=nonce)


def block_for(height: int, parent: Block, txs: list[Transaction]) -> tuple[Block, QuorumCertificate]:
    ids = [t.id for t in txs]
    header = dict(parent.header, height=height, view=height, parent=parent.hash.hex(),
                  txs=merkle_root(ids).hex(), count=len(ids))
    b = Block.make(header, ids)
    return b, QuorumCertificate("c", height, height, b.hash, ())


def test_receipts_for_each_outcome_and_replays_across_blocks(tmp_path: Path) -> None:
    store = open_store(tmp_path / "db")
    app = LedgerApp(store)
    good = tx({"key": "title", "value": "县域融媒体"})
    batch = [
        good,
        good,  # same id in one block
        tx({"key": "k", "value": "v"}, expiry=0),
        tx({"key": "k"}, type_="gov.nothing"),
        tx({"key": "", "value": "v"}),
        tx({"key": "n", "value": "1"}, nonce=42),
        tx({"key": "n", "value": "2"}, nonce=42),  # same sender and nonce, another body
    ]
    root1, receipts = app.execute(1, batch)
    assert [r.code for r in receipts] == [OK, REPLAY, EXPIRED, UNKNOWN_TYPE, BAD_PAYLOAD, OK, REPLAY]
    b1, qc1 = block_for(1, GENESIS, batch)
    app.commit(b1, qc1, batch, receipts)
    assert app.tree.get(b"kv/title") == "县域融媒体".encode()
    assert app.tree.get(b"kv/n") == b"1"
    rec = app.chain.tx(good.id)
    assert rec is not None and (rec.height, rec.index, rec.code) == (1, 0, OK)
    raw = store.get(b"X" + good.id)
    assert raw is not None and canonical(parse(raw)) == raw, "index records are canonical JSON"
    assert Transaction.decode(rec.tx) == good
    # a replay in a later block changes nothing and keeps the first index entry
    root2, receipts2 = app.execute(2, [good])
    assert [r.code for r in receipts2] == [REPLAY] and root2 == root1
    b2, qc2 = block_for(2, b1, [good])
    app.commit(b2, qc2, [good], receipts2)
    assert app.chain.tx(good.id).height == 1  # type: ignore[union-attr]
    store.close()
    # everything survives reopening
    again = LedgerApp(open_store(tmp_path / "db"))
    assert again.height == 2 and again.chain.head == 2 and again.root() == root1
    stored = again.chain.block(1)
    assert stored is not None and stored[0].hash == b1.hash and [r["code"] for r in stored[2]][:2] == [OK, REPLAY]


def test_two_nodes_reach_the_same_root() -> None:
    txs = [tx({"key": f"k{i % 7}", "value": str(i)}) for i in range(50)]
    roots = []
    for _ in range(2):
        app = LedgerApp(MemoryStore())
        root, _ = app.execute(1, txs)
        roots.append(root)
    assert roots[0] == roots[1]
    assert LedgerApp(MemoryStore()).execute(1, list(reversed(txs)))[0] != roots[0], "order matters"


def test_gossip_message_is_the_canonical_encoding() -> None:
    from ledger.node.runtime import txs_message

    txs = [tx({"key": "名", "value": "值"}) for _ in range(3)]
    assert txs_message(txs) == canonical({"type": "txs", "txs": [t.wire() for t in txs]})


def test_block_records_with_events_are_canonical_and_events_are_indexed() -> None:
    from ledger.contracts.context import account_of
    from ledger.node.app import standard_types

    store = MemoryStore()
    app = LedgerApp(store, standard_types())
    payee = account_of(SM2PrivateKey.generate().public_key().point)
    txs = [tx({"symbol": "PTS", "name": "p", "cap": 100, "initial": 100}, type_="ft.issue"),
           tx({"symbol": "PTS", "to": payee, "amount": 7}, type_="ft.transfer"),
           tx({"symbol": "PTS", "to": payee, "amount": 1000}, type_="ft.transfer")]
    _root, receipts = app.execute(1, txs)
    assert [r.code for r in receipts] == [OK, OK, BAD_PAYLOAD] and receipts[2].events == ()
    b1, qc1 = block_for(1, GENESIS, txs)
    app.commit(b1, qc1, txs, receipts)
    raw = store.get(b"B" + (1).to_bytes(8, "big"))
    assert raw is not None and canonical(parse(raw)) == raw
    assert parse(raw)["receipts"][1]["events"][0]["data"]["amount"] == 7
    view = parse(app.chain.block_view(1) or b"null", strict=True)
    assert view["hash"] == b1.hash.hex() and view["height"] == 1 and view["header"] == b1.header
    assert view["tx_ids"] == [t.id.hex() for t in txs] and view["qc"] == qc1.wire()
    assert [r["code"] for r in view["receipts"]] == [OK, OK, BAD_PAYLOAD]
    assert app.chain.block_view(2) is None
    got = app.chain.events("ft.Transfer", payee)
    assert [(e["index"], e["event"]["data"]["to"]) for e in got] == [(1, payee)]
    assert app.chain.events("ft.Transfer", "nobody") == []
    assert [e["event"]["type"] for e in app.chain.events("ft.Issue")] == ["ft.Issue"]
