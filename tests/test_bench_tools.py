"""The speed benches' own parts: the generated chain is one the node's checks accept (and a
forged QC in it is refused), and the load generator's HTTP client reads both body framings."""

from __future__ import annotations

import asyncio
from collections import Counter
from pathlib import Path

import pytest

from bench.chain import generate
from bench.load import MIX, _Pool, _schedule
from ledger.consensus.types import Block, QuorumCertificate
from ledger.crypto.keycache import KeyCache
from ledger.node.app import LedgerApp
from ledger.node.chainstore import ChainStore
from ledger.node.config import Genesis, init_local_consortium, node_folders
from ledger.node.runtime import Node
from ledger.state.store import MemoryStore, open_store


@pytest.fixture(scope="module")
def chain(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, object]]:
    data = tmp_path_factory.mktemp("gen") / "c"
    init_local_consortium(data, base_port=28500)
    return data, generate(data, 12)


def _blocks(folder: Path) -> list[tuple[Block, QuorumCertificate]]:
    store = open_store(folder / "db")
    try:
        cs = ChainStore(store)
        out = []
        for h in range(1, cs.head + 1):
            rec = cs.block(h)
            assert rec is not None
            out.append((rec[0], rec[1]))
        return out
    finally:
        store.close()


def test_every_node_gets_the_chain_with_quorum_certificates(chain: tuple[Path, dict[str, object]]) -> None:
    data, made = chain
    assert made["blocks"] == 12 and made["nodes"] == 6
    genesis = Genesis.load(data / "genesis.json")
    keys = KeyCache()
    heads = set()
    for folder in node_folders(data):
        blocks = _blocks(folder)
        heads.add(blocks[-1][0].hash)
        parent = genesis.block
        for block, qc in blocks:
            assert block.parent == parent.hash and qc.block == block.hash and qc.height == block.height
            assert len(qc.sigs) == genesis.vset.quorum
            qc.verify(genesis.vset, keys, genesis.block.hash)
            assert block.proposer == genesis.vset.leader(block.view)
            parent = block
    assert len(heads) == 1 and len(blocks) == 12


def _follower(data: Path) -> Node:
    genesis = Genesis.load(data / "genesis.json")
    app = LedgerApp(MemoryStore(), governance=genesis.make_governance())
    return Node(node_id="check", chain=genesis.chain, app=app, genesis=genesis.block, vset=genesis.vset,
                signer=None, params=genesis.params)


def test_a_fresh_node_syncs_the_generated_chain_and_refuses_a_forged_qc(chain: tuple[Path, dict[str, object]]) -> None:
    data, _ = chain
    blocks = _blocks(node_folders(data)[0])
    node = _follower(data)
    node.apply(node.engine.on_chain(blocks))
    assert node.engine.committed_height == 11  # the last one waits for a certified child
    forged = list(blocks)
    b, qc = forged[5]
    by, sig = qc.sigs[0]
    bad = sig[:-1] + bytes([sig[-1] ^ 1])  # the last byte of s: a well-formed, wrong signature
    forged[5] = (b, QuorumCertificate(qc.chain, qc.height, qc.view, qc.block, ((by, bad), *qc.sigs[1:])))
    other = _follower(data)
    other.apply(other.engine.on_chain(forged))
    assert other.engine.committed_height == 4  # stops before block 6, whose QC does not verify


def test_schedule_follows_the_mix() -> None:
    kinds = _schedule(100, 10)
    assert len(kinds) == 1000
    counts = Counter(kinds)
    total = sum(MIX.values())
    for kind, weight in MIX.items():
        assert counts[kind] == 1000 * weight // total


def test_client_reads_length_and_chunked_bodies() -> None:
    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while True:
            try:
                head = await reader.readuntil(b"\r\n\r\n")
            except asyncio.IncompleteReadError:
                break
            if head.startswith(b"GET /chunked"):
                writer.write(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n")
            else:
                writer.write(b"HTTP/1.1 404 Not Found\r\nContent-Length: 4\r\n\r\nnope")
            await writer.drain()
        writer.close()

    async def main() -> list[tuple[int, bytes]]:
        server = await asyncio.start_server(serve, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        pool = _Pool(f"http://127.0.0.1:{port}")
        out = [await pool.call("GET", "/chunked"), await pool.call("GET", "/other"), await pool.call("GET", "/chunked")]
        assert pool.open == 1  # one kept-alive connection served all three
        await pool.close()
        await asyncio.sleep(0.05)  # the server's side sees the end of the connection
        server.close()
        await server.wait_closed()
        return out

    assert asyncio.run(main()) == [(200, b"abcde"), (404, b"nope"), (200, b"abcde")]
