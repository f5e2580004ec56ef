"""An in-process node behind the HTTP API: one validator that commits alone, its consensus
running on the TestClient's event loop, submissions verified by a real worker process."""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from api.http import create_app
from ledger.consensus.engine import genesis_block
from ledger.consensus.types import Signer, Validator, ValidatorSet
from ledger.crypto import SM2PrivateKey
from ledger.node.app import LedgerApp, standard_types
from ledger.node.intake import TxIntake
from ledger.node.runtime import Node, Params
from ledger.state.store import open_store
from ledger.tx import Transaction

CHAIN = "api-chain"


@dataclass
class Api:
    client: TestClient
    node: Node
    user: SM2PrivateKey

    def tx(self, key: str = "k", value: str = "v", **kw: object) -> Transaction:
        args = {"chain": CHAIN, "type": "kv.set", "payload": {"key": key, "value": value}, "expiry": 10**9}
        args.update(kw)
        return Transaction.build(self.user, **args)  # type: ignore[arg-type]

    def wait_committed(self, tx_id: str, timeout: float = 20) -> dict:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            r = self.client.get(f"/v1/txs/{tx_id}")
            if r.status_code == 200 and r.json()["status"] == "committed":
                return dict(r.json())
            time.sleep(0.05)
        raise AssertionError(f"{tx_id} not committed in {timeout} s")


@pytest.fixture(scope="session")
def intake() -> Iterator[TxIntake]:
    pool = TxIntake(workers=1)
    pool.start()
    yield pool
    pool.close()


@pytest.fixture
def api(tmp_path: Path, intake: TxIntake) -> Iterator[Api]:
    key = SM2PrivateKey.generate()
    vset = ValidatorSet((Validator("v0", key.public_key().point, "org", "consensus"),))
    app = LedgerApp(open_store(tmp_path / "db"), standard_types())
    node = Node(node_id="v0", chain=CHAIN, app=app, genesis=genesis_block(CHAIN, vset, app.root()), vset=vset,
                signer=Signer("v0", key), params=Params(block_interval=0.02, idle_interval=0.2, base_timeout=1.0))
    http = create_app(node, role="consensus", org="org", online=lambda: ["v0"], intake=intake)
    with TestClient(http, raise_server_exceptions=False) as client:
        client.portal.call(node.start)  # consensus on the client's event loop, like uvicorn's
        try:
            yield Api(client, node, SM2PrivateKey.generate())
        finally:
            client.portal.call(node.stop)
