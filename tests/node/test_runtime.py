"""Nodes on real TLS sockets in one event loop: transactions gossip, commit everywhere, agree.

(Separate OS processes, kill -9 and the HTTP API are tested with the `rongxin up` cluster.)
"""

from __future__ import annotations

import asyncio
from pathlib import Path

from ledger.consensus.engine import genesis_block
from ledger.consensus.types import Signer, Validator, ValidatorSet
from ledger.crypto import SM2PrivateKey
from ledger.crypto.ca import ConsortiumCA
from ledger.crypto.tls import tls_context
from ledger.net.transport import PeerNetwork
from ledger.node.app import LedgerApp
from ledger.node.runtime import Node, Params
from ledger.state.store import open_store
from ledger.tx import Transaction
from tests.ports import free_port

CHAIN = "rt-chain"


def _cluster(tmp: Path, n_validators: int = 4, full: int = 1) -> tuple[list[Node], list[PeerNetwork]]:
    ca = ConsortiumCA.init(tmp / "ca", "RT Consortium")
    keys = {f"v{i}": SM2PrivateKey.generate() for i in range(n_validators)}
    ids = list(keys) + [f"f{i}" for i in range(full)]
    vset = ValidatorSet(tuple(Validator(i, k.public_key().point, "org", "consensus") for i, k in keys.items()))
    app0 = LedgerApp(open_store(tmp / "probe"))
    genesis = genesis_block(CHAIN, vset, app0.root())
    ports = {i: free_port() for i in ids}
    nodes, nets = [], []
    for i in ids:
        cert = ca.issue(kind="node", name=i, org="org", role="consensus" if i in keys else "full",
                        public_key=(keys.get(i) or SM2PrivateKey.generate()).public_key())
        kp, cp = ca.issue_transport(i, cert)
        (tmp / f"{i}.key").write_bytes(kp)
        (tmp / f"{i}.crt").write_bytes(cp)
        signer = Signer(i, keys[i]) if i in keys else None
        node = Node(node_id=i, chain=CHAIN, app=LedgerApp(open_store(tmp / f"{i}.db")), genesis=genesis,
                    vset=vset, signer=signer, params=Params(block_interval=0.05, idle_interval=0.3,
                                                            base_timeout=2.0))
        tca = ca.folder / "transport-ca.crt.pem"
        net = PeerNetwork(node_id=i, listen=("127.0.0.1", ports[i]), peers={p: ("127.0.0.1", ports[p]) for p in ids},
                          server_ctx=tls_context(True, tmp / f"{i}.crt", tmp / f"{i}.key", tca),
                          client_ctx=tls_context(False, tmp / f"{i}.crt", tmp / f"{i}.key", tca),
                          on_message=node.on_net, status=node.status, heartbeat_interval=0.2)
        node.attach(net)
        nodes.append(node)
        nets.append(net)
    return nodes, nets


def _status_names_its_head(node: Node) -> None:
    st = node.status()
    got = node.app.chain.block(st["height"]) if st["height"] else None
    assert st["head_hash"] == (got[0].hash.hex() if got else node.genesis.hash.hex()), st


def test_transactions_commit_on_every_node_and_nodes_agree(tmp_path: Path) -> None:
    user = SM2PrivateKey.generate()
    txs = [Transaction.build(user, chain=CHAIN, type="kv.set", payload={"key": f"k{i}", "value": str(i)},
                             expiry=10_000) for i in range(300)]

    async def scenario() -> list[Node]:
        nodes, nets = _cluster(tmp_path)
        for net in nets:
            await net.start()
        for node in nodes:
            node.start()
        try:
            _status_names_its_head(nodes[0])  # before any block: the genesis
            results = nodes[1].submit(txs[:150]) + nodes[3].submit(txs[150:])
            assert all(reason is None for _, reason in results), results[:3]
            bad = Transaction.build(user, chain="another-chain", type="kv.set", payload={"key": "x", "value": "y"},
                                    expiry=10_000)
            assert nodes[0].submit([bad])[0][1] is not None
            deadline = asyncio.get_running_loop().time() + 60
            while asyncio.get_running_loop().time() < deadline:
                if all(all(n.app.chain.has_tx(t.id) for t in txs) for n in nodes):
                    break
                await asyncio.sleep(0.2)
            await asyncio.sleep(1.0)
            for node in nodes:  # status's head hash follows the head (it is kept per height)
                _status_names_its_head(node)
            return nodes
        finally:
            for node in nodes:
                node.stop()
            for net in nets:
                await net.stop()

    nodes = asyncio.run(scenario())
    for node in nodes:
        missing = [t for t in txs if not node.app.chain.has_tx(t.id)]
        assert not missing, f"{node.id} lacks {len(missing)} transactions"
    heads = [n.app.chain.head for n in nodes]
    common = min(heads)
    assert common >= 1
    for h in range(1, common + 1):
        hashes = {n.app.chain.block(h)[0].hash for n in nodes}  # type: ignore[index]
        assert len(hashes) == 1, f"nodes disagree at height {h}"
    roots = {n.app.tree.root(common) for n in nodes}
    assert len(roots) == 1, "same blocks, same state root"
    assert nodes[-1].app.tree.get(b"kv/k299") == b"299", "the full node executed everything too"
    assert not any(n.evidence for n in nodes)
