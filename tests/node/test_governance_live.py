"""Governance on a running chain (nodes on real TLS sockets in one event loop): a parameter
change reaches every node's consensus, an equivocating leader is reported and evicted
without a fork, and a new validator joins and votes from its stated height."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from api.sdk import registration
from ledger.consensus.engine import genesis_block
from ledger.consensus.types import Signer, Validator, ValidatorSet
from ledger.crypto import SM2PrivateKey
from ledger.crypto.ca import ConsortiumCA
from ledger.crypto.tls import tls_context
from ledger.governance import Governance
from ledger.net.transport import PeerNetwork
from ledger.node.app import LedgerApp
from ledger.node.runtime import Node, Params, chain_params
from ledger.state.store import open_store
from ledger.tx import Transaction
from tests.ports import free_port

from .byzantine_node import make_equivocating

CHAIN = "gov-live"
PARAMS = Params(block_interval=0.05, idle_interval=0.2, base_timeout=1.5)


class Consortium:
    def __init__(self, tmp: Path, n: int = 5, params: Params = PARAMS) -> None:
        self.tmp = tmp
        self.params = params
        self.ca = ConsortiumCA.init(tmp / "ca", "Gov Live")
        self.keys = {f"v{i}": SM2PrivateKey.generate() for i in range(n)}
        roles = {i: ("supervisor" if i == "v0" else "consensus") for i in self.keys}
        self.vset = ValidatorSet(tuple(Validator(i, k.public_key().point, "org", roles[i])
                                       for i, k in self.keys.items()))
        self.genesis = genesis_block(CHAIN, self.vset, LedgerApp(open_store(tmp / "probe")).root())
        self.ports = {i: free_port() for i in self.keys}
        self.nodes: dict[str, Node] = {}
        self.nets: dict[str, PeerNetwork] = {}

    def governance(self) -> Governance:
        return Governance(CHAIN, self.vset, chain_params(self.params, exit_delay=4, missed_turns_limit=1000),
                          self.ca.root.to_pem())

    def make_node(self, nid: str, key: SM2PrivateKey, role: str = "consensus") -> Node:
        cert = self.ca.issue(kind="node", name=nid, org="org", role=role, public_key=key.public_key())
        kp, cp = self.ca.issue_transport(nid, cert)
        (self.tmp / f"{nid}.key").write_bytes(kp)
        (self.tmp / f"{nid}.crt").write_bytes(cp)
        node = Node(node_id=nid, chain=CHAIN, app=LedgerApp(open_store(self.tmp / f"{nid}.db"),
                                                            governance=self.governance()),
                    genesis=self.genesis, vset=self.vset, signer=None if role == "full" else Signer(nid, key),
                    params=self.params, tx_key=key)
        self.ports.setdefault(nid, free_port())
        tca = self.ca.folder / "transport-ca.crt.pem"
        peers = {p: ("127.0.0.1", port) for p, port in self.ports.items()}
        net = PeerNetwork(node_id=nid, listen=("127.0.0.1", self.ports[nid]), peers=peers,
                          server_ctx=tls_context(True, self.tmp / f"{nid}.crt", self.tmp / f"{nid}.key", tca),
                          client_ctx=tls_context(False, self.tmp / f"{nid}.crt", self.tmp / f"{nid}.key", tca),
                          on_message=node.on_net, status=node.status, heartbeat_interval=0.2,
                          admit=lambda ident, node=node: not node.is_revoked(ident.node_id))
        node.attach(net)
        self.nodes[nid], self.nets[nid] = node, net
        return node

    async def start(self, nid: str) -> None:
        await self.nets[nid].start()
        self.nodes[nid].start()

    async def user(self, via: Node, on: list[Node] | None = None) -> SM2PrivateKey:
        """A new key registered on chain as a user of the validators' organisation (submitted
        to ``via``): the chain is permissioned. Returns once every node of ``on`` (default:
        every running node) has committed it, so each admits the user's transactions."""
        key = SM2PrivateKey.generate()
        tx = registration(self.ca, key, chain=CHAIN, org="org", expiry=10**6)
        assert via.submit([tx])[0][1] is None
        nodes = on if on is not None else [n for n in self.nodes.values() if n.app.chain.head > 0]
        await wait(lambda: all(n.app.chain.has_tx(tx.id) for n in [via, *nodes]), 30, "a user's registration")
        rec = via.app.chain.tx(tx.id)
        assert rec is not None and rec.code == 0, rec
        return key

    async def stop(self) -> None:
        for nid, node in self.nodes.items():
            node.stop()
            await self.nets[nid].stop()


async def wait(cond: Callable[[], bool], timeout: float, what: str) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while loop.time() < deadline:
        if cond():
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def run(scenario: Callable[[], Awaitable[Any]]) -> Any:
    return asyncio.run(scenario())


def _agree(nodes: list[Node]) -> int:
    """All nodes hold the same block at every height they share; returns the common height."""
    common = min(n.app.chain.head for n in nodes)
    for h in range(1, common + 1):
        hashes = set()
        for n in nodes:
            rec = n.app.chain.block(h)
            assert rec is not None
            hashes.add(rec[0].hash)
        assert len(hashes) == 1, f"fork at height {h}"
    return common


def test_a_parameter_change_reaches_every_node(tmp_path: Path) -> None:
    c = Consortium(tmp_path)

    async def scenario() -> None:
        for nid, key in c.keys.items():
            c.make_node(nid, key)
        for nid in c.keys:
            await c.start(nid)
        try:
            tx = Transaction.build(c.keys["v0"], chain=CHAIN, type="gov.propose", expiry=10**6,
                                   payload={"action": {"kind": "params",
                                                       "set": {"block_interval_ms": 120, "max_block_txs": 777,
                                                               "time_precision_ms": 700}}})
            assert all(n.engine.cfg.time_precision == 500 for n in c.nodes.values())
            assert c.nodes["v1"].submit([tx])[0][1] is None
            await wait(lambda: all(n.params.max_block_txs == 777 for n in c.nodes.values()), 30, "new params")
            assert all(n.engine.cfg.block_interval == 0.12 for n in c.nodes.values())
            assert all(n.engine.cfg.time_precision == 700 for n in c.nodes.values()), "block-time bound too"
            # the engine keeps committing under the new parameters
            h = c.nodes["v0"].app.chain.head
            await wait(lambda: min(n.app.chain.head for n in c.nodes.values()) > h + 2, 30, "more blocks")
            _agree(list(c.nodes.values()))
        finally:
            await c.stop()

    run(scenario)


def test_an_equivocating_leader_is_evicted_without_a_fork(tmp_path: Path) -> None:
    c = Consortium(tmp_path)

    async def scenario() -> None:
        for nid, key in c.keys.items():
            c.make_node(nid, key)
        make_equivocating(c.nodes["v3"])
        for nid in c.keys:
            await c.start(nid)
        honest = [c.nodes[i] for i in ("v0", "v1", "v2", "v4")]
        try:
            await wait(lambda: all(n.is_revoked("v3") for n in honest), 60, "v3 revoked on every honest node")
            rec = honest[0].app.governance.revoked(honest[0].app.read, "v3")  # type: ignore[union-attr]
            assert rec is not None and rec["reason"].startswith("double-proposal")
            effective = rec["effective"]
            await wait(lambda: min(n.app.chain.head for n in honest) > effective + 3, 60, "blocks after eviction")
            assert all("v3" not in n.vset_at(effective) and "v3" in n.vset_at(effective - 1) for n in honest)
            assert all("v3" not in n.net.peers for n in honest)  # type: ignore[union-attr]
            # blocks after the eviction are certified by the four remaining validators
            rec_blk = honest[0].app.chain.block(effective + 1)
            assert rec_blk is not None and rec_blk[0].proposer != "v3"
            # users' transactions still commit
            user = await c.user(honest[1], on=honest)
            tx = Transaction.build(user, chain=CHAIN, type="kv.set", payload={"key": "after", "value": "1"},
                                   expiry=10**6)
            honest[1].submit([tx])
            await wait(lambda: all(n.app.chain.has_tx(tx.id) for n in honest), 30, "a tx after the eviction")
            _agree(honest)
            assert any(e.offender == "v3" for n in honest for e in n.evidence)
        finally:
            await c.stop()

    run(scenario)


def test_a_new_validator_joins_and_votes_from_its_height(tmp_path: Path) -> None:
    c = Consortium(tmp_path, n=4)

    async def scenario() -> None:
        for nid, key in c.keys.items():
            c.make_node(nid, key)
        for nid in c.keys:
            await c.start(nid)
        v0 = c.nodes["v0"]
        try:
            newkey = SM2PrivateKey.generate()
            port = free_port()
            join = Transaction.build(newkey, chain=CHAIN, type="node.join", expiry=10**6,
                                     payload={"id": "v9", "org": "New Org", "role": "consensus",
                                              "address": ["127.0.0.1", port]})
            v0.submit([join])
            await wait(lambda: v0.app.chain.has_tx(join.id), 30, "join request")
            admit = Transaction.build(c.keys["v0"], chain=CHAIN, type="gov.propose", expiry=10**6,
                                      payload={"action": {"kind": "admit", "node": "v9"}})
            v0.submit([admit])
            await wait(lambda: v0.app.chain.has_tx(admit.id), 30, "approval")
            cert = c.ca.issue(kind="node", name="v9", org="New Org", role="consensus", public_key=newkey.public_key())
            from_height = v0.app.chain.head + 8
            certify = Transaction.build(c.keys["v0"], chain=CHAIN, type="node.certify", expiry=10**6,
                                        payload={"node": "v9", "certificate": cert.to_pem().decode(),
                                                 "from_height": from_height})
            v0.submit([certify])
            await wait(lambda: all(n.app.chain.has_tx(certify.id) for n in c.nodes.values()), 30, "certificate")
            rec = v0.app.chain.tx(certify.id)
            assert rec is not None and rec.code == 0, rec
            c.ports["v9"] = port
            c.make_node("v9", newkey)
            await c.start("v9")
            everyone = list(c.nodes.values())
            await wait(lambda: min(n.app.chain.head for n in everyone) > from_height + 5, 90,
                       "the new validator synced and past its height")
            assert all(n.vset_at(from_height).n == 5 and n.vset_at(from_height - 1).n == 4 for n in everyone)

            def proposed_by_v9() -> bool:
                for h in range(from_height, v0.app.chain.head + 1):
                    got = v0.app.chain.block(h)
                    if got is not None and got[0].proposer == "v9":
                        return True
                return False

            await wait(proposed_by_v9, 60, "a committed block proposed by the new validator")
            _agree(everyone)
        finally:
            await c.stop()

    run(scenario)
