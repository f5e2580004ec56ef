"""Register a work on a running consortium without the works routes (another part of issue 12):
the node's own ``WorksService`` over its folder (``works/blobs``, ``works/index``, the ones the
evidence routes use) prepares and countersigns, the holder's key signs and submits
``works.register``, and the service indexes the work once it is committed."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from api.sdk import Identity, LedgerClient
from fingerprint.index import LocalIndex
from forensics.rules import pledge_message, sign
from forensics.service import WorksService
from ledger.blobs import LocalBlobStore
from ledger.crypto import sm3_file
from ledger.node.config import NodeConfig

PLEDGE = "I declare this work is my original creation."


def node_folder(data: Path, role: str = "supervisor") -> Path:
    nodes = json.loads((data / "cluster.json").read_text())["nodes"]
    return Path(next(n["data"] for n in nodes if n["role"] == role))


def register_work(data: Path, api: str, holder: Identity, path: Path, title: str = "A work") -> dict[str, Any]:
    cfg = NodeConfig.load(node_folder(data))
    base = cfg.folder / "works"
    svc = WorksService(LocalBlobStore(base / "blobs"), LocalIndex(base / "index"), chain=cfg.chain, node_id=cfg.id,
                       node_key=cfg.key())
    client = LedgerClient(api, identity=holder)
    sig = sign(holder.key, pledge_message(cfg.chain, holder.account, sm3_file(path).hex(), PLEDGE))
    prep = svc.register_work(path, holder=holder.account, holder_key=holder.key.public_key().point,
                             attributes={"title": title, "type": "picture", "authors": [holder.name]},
                             pledge=PLEDGE, pledge_signature=sig)
    rec = client.submit_and_wait("works.register", prep.payload)
    assert rec["receipt"]["code"] == 0, rec["receipt"]
    svc.confirm(prep)
    return {"work_id": prep.work_id, "tx_id": rec["id"], "conflicts": prep.conflicts}
