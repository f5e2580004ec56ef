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
* the blocks reach a node built exactly as ``api/node_run.py`` builds one (the same
  application, transaction types and governance; a full node: it never votes) through the
  batched-sync door (``Engine.on_chain``): it checks every QC against the validator set of
  its height and the 2-chain rule, executes the blocks and writes them to its store in the
  node's format (``ChainStore``). That store is then copied to every node of the consortium,
  whose processes open it like any other and go on committing blocks on top of it.
"""

from __future__ import annotations

import os
import shutil
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


def _block(node: Node, parent: Block, parent_qc: QuorumCertificate, height: int, time_ms: int,
           fields: dict[str, Any]) -> Block:
    vset = node.vset_at(height)
    header: dict[str, Any] = dict(fields)
    header.update({"chain": node.chain, "height": height, "view": height, "parent": parent.hash.hex(),
                   "justify": parent_qc.wire(), "proposer": vset.leader(height), "txs": merkle_root([]).hex(),
                   "count": 0, "validators": vset.digest().hex(), "time": time_ms})
    return Block.make(header, [])


def _fields(app: LedgerApp, height: int) -> dict[str, Any]:
    """``exec`` and ``results`` of block ``height``: those of height ``height - 2`` (what its
    leader had committed). Empty blocks change no state and their results root is that of an
    empty list, so they are known before that height is committed here; if they were wrong,
    the node would refuse the block when it commits it (``StateDiverged``)."""
    k = max(0, height - 2)
    return {"exec": {"height": k, "root": app.root().hex()},
            "results": {"height": k, "root": (EMPTY_ROOT if k == 0 else results_root([], [])).hex()}}


def _qc(node: Node, block: Block, keys: dict[str, SM2PrivateKey], pool: ThreadPoolExecutor) -> QuorumCertificate:
    """The votes of the first quorum of the set, signed in threads (libcrypto releases the GIL)."""
    vset = node.vset_at(block.height)
    msg = vote_bytes(node.chain, block.height, block.view, block.hash)
    voters = [v.id for v in vset.validators][: vset.quorum]
    sigs = pool.map(lambda v: keys[v].sign(msg), voters)
    return QuorumCertificate(node.chain, block.height, block.view, block.hash, tuple(sorted(zip(voters, list(sigs), strict=True))))


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
    parent, parent_qc = genesis.block, QuorumCertificate.genesis(genesis.chain, genesis.block.hash)
    base_ms = int(genesis.block.header["time"])
    pending: list[tuple[Block, QuorumCertificate]] = []
    # one block past the target: a block is committed once its child is certified (2-chain)
    pool = ThreadPoolExecutor(os.cpu_count() or 1)
    for h in range(1, blocks + 2):
        block = _block(node, parent, parent_qc, h, base_ms + h * STEP_MS, _fields(app, h))
        qc = _qc(node, block, keys, pool)
        pending.append((block, qc))
        parent, parent_qc = block, qc
        if len(pending) >= SYNC_BATCH or h == blocks + 1:  # as batched sync delivers them
            with store.group():
                node.apply(node.engine.on_chain(pending))
            pending = [p for p in pending if p[0].height > node.engine.committed_height]
        if progress is not None and h % 10_000 == 0:
            progress(h, time.monotonic() - t0)
    pool.shutdown()
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
