"""The ledger application: receipts for every kind of refusal, atomic commit with the block."""

from __future__ import annotations

from pathlib import Path

from ledger.codec import canonical, parse
from ledger.consensus.engine import genesis_block
from ledger.consensus.types import Block, QuorumCertificate, Validator, ValidatorSet
from ledger.crypto import SM2PrivateKey
from ledger.crypto.merkle import merkle_root
from ledger.node.abci import BAD_PAYLOAD, EXPIRED, OK, REPLAY, UNKNOWN_TYPE
from ledger.node.app import LedgerApp
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
    b1, qc1 = block_for(1, GENESIS, batch)
    res1 = app.execute_block(b1, batch)
    root1, receipts = res1.state_root, res1.receipts
    assert [r.code for r in receipts] == [OK, REPLAY, EXPIRED, UNKNOWN_TYPE, BAD_PAYLOAD, OK, REPLAY]
    app.commit(b1, qc1, batch, res1)
    assert app.tree.get(b"kv/title") == "县域融媒体".encode()
    assert app.tree.get(b"kv/n") == b"1"
    rec = app.chain.tx(good.id)
    assert rec is not None and (rec.height, rec.index, rec.code) == (1, 0, OK)
    raw = store.get(b"X" + good.id)
    assert raw is not None and canonical(parse(raw)) == raw, "index records are canonical JSON"
    assert Transaction.decode(rec.tx) == good
    # a replay in a later block changes nothing and keeps the first index entry
    b2, qc2 = block_for(2, b1, [good])
    res2 = app.execute_block(b2, [good])
    assert [r.code for r in res2.receipts] == [REPLAY] and res2.state_root == root1
    app.commit(b2, qc2, [good], res2)
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
        roots.append(app.execute_block(block_for(1, GENESIS, txs)[0], txs).state_root)
    assert roots[0] == roots[1]
    rev = list(reversed(txs))
    assert LedgerApp(MemoryStore()).execute_block(block_for(1, GENESIS, rev)[0], rev).state_root != roots[0], \
        "order matters"


def test_gossip_message_is_the_canonical_encoding() -> None:
    from ledger.node.messages import txs_message

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
    b1, qc1 = block_for(1, GENESIS, txs)
    res = app.execute_block(b1, txs)
    receipts = res.receipts
    assert [r.code for r in receipts] == [OK, OK, BAD_PAYLOAD] and receipts[2].events == ()
    app.commit(b1, qc1, txs, res)
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


def test_results_root_commits_to_every_receipt_and_is_provable_from_a_later_header() -> None:
    import pytest

    from ledger.node.abci import InvalidProposal
    from ledger.node.results import verify_receipt

    store = MemoryStore()
    app = LedgerApp(store)
    txs = [tx({"key": "a", "value": "1"}), tx({"key": "", "value": "refused"}), tx({"key": "b", "value": "2"})]
    b1, qc1 = block_for(1, GENESIS, txs)
    res = app.execute_block(b1, txs)
    app.commit(b1, qc1, txs, res)
    fields = app.header_fields()
    assert fields["exec"]["height"] == 1 and fields["results"] == {"height": 1, "root": res.results_root.hex()}
    # block 2 carries the certificate of block 1's results; once it is committed the proof is complete
    b2 = Block.make(dict(b1.header, height=2, view=2, parent=b1.hash.hex(), txs=merkle_root([]).hex(), count=0,
                         **fields), [])
    app.process_proposal(b2.header, [])  # what this node executed: accepted
    for bad in ({"height": 1, "root": "00" * 32}, {"height": 0, "root": fields["results"]["root"]}, None):
        with pytest.raises(InvalidProposal):
            app.process_proposal({**b2.header, "results": bad}, [])
    res2 = app.execute_block(b2, [])
    app.commit(b2, QuorumCertificate("c", 2, 2, b2.hash, ()), [], res2)
    for i, t in enumerate(txs):
        got = app.chain.receipt_proof(t.id)
        assert got is not None
        receipt, proof = got
        assert receipt["tx"] == t.id.hex() and receipt["code"] == res.receipts[i].code
        assert proof["certified_in"] == 2 and proof["index"] == i and proof["size"] == 3
        assert verify_receipt(receipt, proof, b2.header)
        # what the receipt says cannot be changed without breaking the proof
        assert not verify_receipt({**receipt, "code": 1 - min(receipt["code"], 1)}, proof, b2.header)
        assert not verify_receipt(receipt, {**proof, "index": (i + 1) % 3}, b2.header)
        assert not verify_receipt(receipt, proof, {**b2.header, "height": 3})
    assert app.chain.receipt_proof(b"\x00" * 32) is None


def test_an_accepted_block_is_saved_with_its_bodies_so_it_can_run_after_a_restart(tmp_path: Path) -> None:
    """Bodies live in memory (mempool) until a block commits; a block a QC certifies must still
    be executable when every node restarted, so pending blocks keep their transactions."""
    from ledger.node.chainstore import ChainStore

    store = open_store(tmp_path / "db")
    txs = [tx({"key": f"p{i}", "value": "v"}) for i in range(3)]
    b1, _qc = block_for(1, GENESIS, txs)
    ChainStore(store).save_pending(b1, txs)
    store.close()
    again = open_store(tmp_path / "db")
    [(block, bodies)] = ChainStore(again).pending_blocks(0)
    assert block.hash == b1.hash
    assert [Transaction.decode(raw) for raw in bodies] == txs
    ChainStore(again).prune_pending(1)
    assert ChainStore(again).pending_blocks(0) == []


class _Bodies:
    """A TxSource holding a fixed set of bodies (the node's mempool in production)."""

    def __init__(self, txs: list[Transaction]) -> None:
        self.txs = {t.id: t for t in txs}
        self.asked: list[bytes] = []

    def candidates(self, parent: Block, height: int) -> list[Transaction]:
        return list(self.txs.values())

    def body(self, tx_id: bytes) -> Transaction | None:
        return self.txs.get(tx_id)

    def pending(self) -> bool:
        return bool(self.txs)

    def max_block_txs(self) -> int:
        return 2000

    def request_bodies(self, tx_ids: list[bytes]) -> None:
        self.asked.extend(tx_ids)


def test_the_payload_adapter_commits_checks_certified_roots_and_waits_for_bodies() -> None:
    import pytest

    from ledger.consensus.errors import NotReady
    from ledger.node.payload import AppPayload, StateDiverged

    app = LedgerApp(MemoryStore())
    txs = [tx({"key": "x", "value": "1"})]
    committed: list[int] = []
    payload = AppPayload(app, _Bodies(txs), lambda b, qc, t, r: committed.append(b.height))
    ids, fields = payload.propose(GENESIS, 1)
    b1 = Block.make(dict(block_for(1, GENESIS, txs)[0].header, **fields), ids)
    payload.validate(b1, GENESIS)
    payload.commit(((b1, QuorumCertificate("c", 1, 1, b1.hash, ())),))
    assert committed == [1] and app.height == 1
    # a certified header whose results root is not what this node computed: it stops
    good = app.header_fields()
    bad = dict(good, results={"height": 1, "root": "11" * 32})
    b2 = Block.make(dict(b1.header, height=2, view=2, parent=b1.hash.hex(), txs=merkle_root([]).hex(), count=0,
                         **bad), [])
    with pytest.raises(StateDiverged):
        payload.commit(((b2, QuorumCertificate("c", 2, 2, b2.hash, ())),))
    assert app.height == 1
    # a block whose bodies this node lacks waits (NotReady) and asks its peers for them
    other = tx({"key": "y", "value": "2"})
    b3 = Block.make(dict(b1.header, height=2, view=2, parent=b1.hash.hex(), txs=merkle_root([other.id]).hex(),
                         count=1, **good), [other.id])
    source = _Bodies([])
    waiting = AppPayload(app, source, lambda b, qc, t, r: None)
    with pytest.raises(NotReady):
        waiting.commit(((b3, QuorumCertificate("c", 2, 2, b3.hash, ())),))
    assert source.asked == [other.id] and app.height == 1
