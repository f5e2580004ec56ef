"""``rongxin bench sync``: how fast a validator that lost its chain catches up.

A fresh local consortium (five validators and a full node as OS processes) runs with a short
idle interval until the chain holds ``--blocks`` blocks, with a trickle of signed
transactions in them. Then the consortium stops, one consensus node's store is deleted (it is
now that many blocks behind: a restarted validator that has to fetch everything), all nodes
start again, and the clock runs until that validator's committed height reaches the height
the others had when it started. It verifies every block's QC against the validator set of
its height and every transaction signature, re-executes every block and must reach the same
state root (checked at the end through the blocks' ``exec`` roots: the nodes agree on the
block hashes).
"""

from __future__ import annotations

import json
import shutil
import tempfile
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from ledger.crypto import SM2PrivateKey
from ledger.node.config import init_local_consortium
from ledger.node.runtime import Params
from ledger.tx import Transaction


def _get(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=10) as r:
        return json.load(r)


def _post(url: str, body: bytes) -> Any:
    req = urllib.request.Request(url, data=body, headers={"content-type": "application/json"})
    with urllib.request.urlopen(req, timeout=30) as r:
        return json.load(r)


def measure(blocks: int = 10_000, txs_per_s: float = 20.0, timeout: float = 3600.0) -> dict[str, Any]:
    from api.cluster import down, up
    from api.sdk import register_users

    folder = Path(tempfile.mkdtemp(prefix="rongxin-sync-")) / "c"
    init_local_consortium(folder, params=Params(block_interval=0.0, idle_interval=0.005, base_timeout=1.0))
    stop = threading.Event()
    try:
        up(folder, detach=True, echo=lambda *_: None)
        nodes = json.loads((folder / "cluster.json").read_text())["nodes"]
        apis = {n["id"]: n["api"] for n in nodes}
        key = SM2PrivateKey.generate()
        register_users(apis["sup1"], folder, [key])  # a permissioned chain: the sender is a user

        def trickle() -> None:
            i = 0
            while not stop.is_set():
                tx = Transaction.build(key, chain="rongxin-local", type="kv.set",
                                       payload={"key": f"sync/{i % 500}", "value": str(i)}, expiry=10**9)
                try:
                    _post(apis["val1"] + "/v1/txs", b'{"txs":[' + tx.encode() + b"]}")
                except (urllib.error.URLError, OSError):
                    pass
                i += 1
                time.sleep(1 / txs_per_s)

        feeder = threading.Thread(target=trickle, daemon=True)
        feeder.start()
        t_build = time.monotonic()
        while _get(apis["sup1"] + "/v1/status")["height"] < blocks:
            if time.monotonic() - t_build > timeout:
                raise RuntimeError("the chain did not reach the wanted height in time")
            time.sleep(1)
        stop.set()
        feeder.join()
        build_s = time.monotonic() - t_build
        down(folder, echo=lambda *_: None)
        victim = folder / "nodes" / "val4"
        shutil.rmtree(victim / "db")
        up(folder, detach=True, echo=lambda *_: None)
        t0 = time.monotonic()
        target = max(_get(apis[n] + "/v1/status")["height"] for n in ("sup1", "val1", "val2", "val3"))
        while True:
            h = _get(apis["val4"] + "/v1/status")["height"]
            if h >= target:
                break
            if time.monotonic() - t0 > timeout:
                raise RuntimeError(f"val4 stuck at height {h} of {target}")
            time.sleep(0.2)
        catch_up_s = time.monotonic() - t0
        same = {_get(apis[n] + f"/v1/blocks/{target}")["hash"] for n in ("sup1", "val4")}
        txs_in_chain = sum(len(_get(apis["val4"] + f"/v1/blocks/{k}")["tx_ids"])
                           for k in range(max(1, target - 200), target + 1))
        return {"blocks_behind": target, "catch_up_s": round(catch_up_s, 2),
                "blocks_per_s": round(target / catch_up_s, 1), "agree": len(same) == 1,
                "build_s": round(build_s, 1), "txs_in_last_200_blocks": txs_in_chain}
    finally:
        stop.set()
        down(folder, echo=lambda *_: None)
        shutil.rmtree(folder.parent, ignore_errors=True)


def main() -> None:
    import sys

    print(json.dumps(measure(int(sys.argv[1]) if len(sys.argv) > 1 else 10_000)))


if __name__ == "__main__":
    main()
