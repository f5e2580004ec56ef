"""Batched sync: a validator that was down fetches the committed chain in batches, checks
every block's QC against the validator set of its height, re-executes to the same state
root, then follows live consensus."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from ledger.crypto import SM2PrivateKey
from ledger.node.runtime import Params
from ledger.tx import Transaction
from tests.ports import free_port

from .test_governance_live import CHAIN, Consortium, _agree, run, wait


@pytest.mark.slow
def test_a_new_full_node_catches_up_in_batches(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    c = Consortium(tmp_path, params=Params(block_interval=0.02, idle_interval=0.02, base_timeout=1.0))
    caplog.set_level(logging.INFO, logger="rongxin.node")

    async def scenario() -> None:
        c.ports["f9"] = free_port()  # every validator lists the late node as a peer
        for nid, key in c.keys.items():
            c.make_node(nid, key)
        validators = list(c.nodes.values())
        late = c.make_node("f9", SM2PrivateKey.generate(), role="full")
        for nid in c.keys:
            await c.start(nid)
        try:
            user = await c.user(validators[0])
            txs = [Transaction.build(user, chain=CHAIN, type="kv.set", payload={"key": f"k{i % 50}", "value": str(i)},
                                     expiry=10**6) for i in range(400)]
            for i in range(0, 400, 20):
                validators[i % 5].submit(txs[i:i + 20])
            await wait(lambda: all(n.app.chain.has_tx(txs[-1].id) for n in validators), 60, "load committed")
            await wait(lambda: min(n.app.chain.head for n in validators) >= 600, 120, "600 blocks")
            assert late.app.chain.head == 0
            await c.start("f9")
            target = max(n.app.chain.head for n in validators)
            await wait(lambda: late.app.chain.head >= target, 60, "f9 caught up")
            # it re-executed to the same state as the others at a shared height
            h = min(n.app.chain.head for n in c.nodes.values())
            assert late.app.tree.root(h) == validators[0].app.tree.root(h)
            assert all(late.app.chain.has_tx(t.id) for t in txs)
            # and it follows live consensus afterwards
            more = Transaction.build(user, chain=CHAIN, type="kv.set", payload={"key": "late", "value": "1"},
                                     expiry=10**6)
            validators[2].submit([more])
            await wait(lambda: all(n.app.chain.has_tx(more.id) for n in c.nodes.values()), 30, "a tx after sync")
            _agree(list(c.nodes.values()))
        finally:
            await c.stop()

    run(scenario)
    synced = [r.getMessage() for r in caplog.records if "synced blocks" in r.getMessage()]
    assert len(synced) >= 3, f"caught up without batched sync (or in one batch): {synced}"
    first = int(synced[0].split()[2].split("..")[0])
    assert first <= 10, synced[0]  # (the first blocks may come one by one, before heartbeats report heights)
