"""A long chain in minutes: the 100,000-block consortium of ``rongxin bench overview``.

Producing 100,000 blocks through consensus takes hours: a leader proposes a block only
while transactions wait (``block_interval`` 0.2 s apart, so at most 5 blocks a second) or
once per ``idle_interval`` (60 s) when idle; 100,000 blocks would take 5.6 hours at best,
and lowering those parameters would mean changing the chain's consensus settings. So a
bench-only generator makes the chain instead, and the product's own code checks it:

* each block is what the leader of its view would propose: ``height = view``, the proposer
  the round-robin leader of that view, ``justify`` the parent's QC, ``exec``/``results`` the
  roots of the height two below (what its leader had committed in live consensus), the
  validator-set digest, no transactions and a time 1 ms after its parent's;
* its QC holds the votes (``vote_bytes``) of a quorum of the validators, signed with their
  own keys from the consortium folder, as consensus would;
* they are made and signed in a thread (the signatures in a pool: libcrypto releases the
  GIL) while the node checks and commits the previous batch;
* the blocks reach a node built exactly as ``api/node_run.py`` builds one (the same
  application, transaction types and governance; a full node: it never votes) through the
  batched-sync door (``Engine.on_chain``): it checks every QC against the validator set of
  its height and the 2-chain rule, executes the blocks and writes them to its store in the
  node's format (``ChainStore``). That store is then copied to every node of the consortium,
  whose processes open it like any other and go on committing blocks on top of it.
"""

from __future__ import annotations

import os
import queue
import shutil
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from forensics.contracts import types as forensics_types
from ledger.consensus.types import Block, QuorumCertificate, vote_bytes
from ledger.crypto import SM2PrivateKey
from ledger.crypto.merkle import EMPTY_ROOT, merkle_root
from ledger.node.app import LedgerApp, standard_types
from ledger.node.config import Genesis, NodeConfig, node_folders
from ledger.node.results import results_root
from ledger.node.runtime import Node
from ledger.node.sync import SYNC_BATCH
from ledger.state.store import GroupedStore, open_store
from privacy.contracts import types as mpc_types

STEP_MS = 1  # block time spacing: 100,000 blocks span 100 s after the genesis


class _Maker:
    """Makes and signs the blocks, in a thread of its own while the node checks and commits
    the previous batch. It needs nothing of the node's state: the validator set is the
    genesis one throughout and the state root stays the genesis root (empty blocks change
    neither; were either wrong, the node would refuse the QCs or the block)."""

    def __init__(self, genesis: Genesis, keys: dict[str, SM2PrivateKey], root: bytes) -> None:
        self.chain, self.vset, self.keys, self.root = genesis.chain, genesis.vset, keys, root.hex()
        self.parent = genesis.block
        self.parent_qc = QuorumCertificate.genesis(genesis.chain, genesis.block.hash)
        self.base_ms = int(genesis.block.header["time"])
        self.voters = [v.id for v in self.vset.validators][: self.vset.quorum]
        self.pool = ThreadPoolExecutor(os.cpu_count() or 1)  # libcrypto releases the GIL while it signs

    def _fields(self, height: int) -> dict[str, Any]:
        """``exec`` and ``results`` of block ``height``: those of height ``height - 2`` (what
        its leader had committed): the unchanged state root, the results root of an empty list."""
        k = max(0, height - 2)
        return {"exec": {"height": k, "root": self.root},
                "results": {"height": k, "root": (EMPTY_ROOT if k == 0 else results_root([], [])).hex()}}

    def block(self, height: int) -> tuple[Block, QuorumCertificate]:
        header: dict[str, Any] = self._fields(height)
        header.update({"chain": self.chain, "height": height, "view": height, "parent": self.parent.hash.hex(),
                       "justify": self.parent_qc.wire(), "proposer": self.vset.leader(height),
                       "txs": merkle_root([]).hex(), "count": 0, "validators": self.vset.digest().hex(),
                       "time": self.base_ms + height * STEP_MS})
        block = Block.make(header, [])
        msg = vote_bytes(self.chain, height, height, block.hash)
        sigs = list(self.pool.map(lambda v: self.keys[v].sign(msg), self.voters))
        qc = QuorumCertificate(self.chain, height, height, block.hash, tuple(sorted(zip(self.voters, sigs, strict=True))))
        self.parent, self.parent_qc = block, qc
        return block, qc

    def run(self, last: int, out: queue.Queue[list[tuple[Block, QuorumCertificate]] | BaseException | None]) -> None:
        """Batches of ``SYNC_BATCH`` blocks 1..``last`` into ``out``, then None."""
        try:
            for first in range(1, last + 1, SYNC_BATCH):
                out.put([self.block(h) for h in range(first, min(last, first + SYNC_BATCH - 1) + 1)])
            out.put(None)
        except BaseException as exc:  # noqa: BLE001 - handed to the consumer, which raises it
            out.put(exc)
        finally:
            self.pool.shutdown()


def generate(data: Path, blocks: int, progress: Any = None) -> dict[str, Any]:
    """Commit ``blocks`` empty blocks on the consortium in folder ``data`` (made by
    ``init_local_consortium``, nodes stopped, no blocks yet) and give every node the store."""
    genesis = Genesis.load(data / "genesis.json")
    cfgs = [NodeConfig.load(f) for f in node_folders(data)]
    keys = {c.id: c.key() for c in cfgs if c.role != "full"}
    work = data / "generated-db"
    shutil.rmtree(work, ignore_errors=True)
    store = GroupedStore(open_store(work, sync=False))
    gov = genesis.make_governance()
    app = LedgerApp(store, {**standard_types(), **forensics_types(gov), **mpc_types()}, governance=gov)
    node = Node(node_id="generator", chain=genesis.chain, app=app, genesis=genesis.block, vset=genesis.vset,
                signer=None, params=genesis.params)
    t0 = time.monotonic()
    base_ms = int(genesis.block.header["time"])
    batches: queue.Queue[list[tuple[Block, QuorumCertificate]] | BaseException | None] = queue.Queue(maxsize=4)
    # one block past the target: a block is committed once its child is certified (2-chain)
    maker = threading.Thread(target=_Maker(genesis, keys, app.root()).run, args=(blocks + 1, batches), daemon=True)
    maker.start()
    pending: list[tuple[Block, QuorumCertificate]] = []
    done = 0
    while (batch := batches.get()) is not None:
        if isinstance(batch, BaseException):
            raise batch
        pending += batch
        with store.group():  # as batched sync delivers them
            node.apply(node.engine.on_chain(pending))
        pending = [p for p in pending if p[0].height > node.engine.committed_height]
        if progress is not None and node.engine.committed_height // 10_000 > done // 10_000:
            progress(node.engine.committed_height, time.monotonic() - t0)
        done = node.engine.committed_height
    maker.join()
    head = app.chain.head
    if head != blocks:
        raise RuntimeError(f"the node committed {head} of {blocks} generated blocks")
    made_s = time.monotonic() - t0
    store.close()
    for c in cfgs:
        shutil.rmtree(c.folder / "db", ignore_errors=True)
        shutil.copytree(work, c.folder / "db")
    shutil.rmtree(work)
    return {"blocks": head, "generate_s": round(made_s, 1), "blocks_per_s": round(head / made_s, 1),
            "last_block_time_ms": base_ms + blocks * STEP_MS, "nodes": len(cfgs)}
