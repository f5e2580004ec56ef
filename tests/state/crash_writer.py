"""Child process of the crash test: commits deterministic blocks to a store until killed.

Run as ``python crash_writer.py DATA_DIR``; prints ``ready HEIGHT`` once the store is open,
then commits block after block (each one atomic batch) forever.
"""

from __future__ import annotations

import sys
from pathlib import Path

from ledger.codec import canonical
from ledger.state.store import LMDBStore
from tests.state.machine import KVApplication

TXS_PER_BLOCK = 1500
KEY_SPACE = 20_000


def block_txs(height: int) -> list[bytes]:
    """The transactions of block ``height``: sets, and every 10th a delete, over a fixed key space."""
    txs = []
    for i in range(TXS_PER_BLOCK):
        key = f"k{(height * 7919 + i * 13) % KEY_SPACE}"
        if i % 10 == 9:
            txs.append(canonical({"op": "delete", "key": key}))
        else:
            txs.append(canonical({"op": "set", "key": key, "value": f"{height}:{i}"}))
    return txs


def main(folder: str) -> None:
    store = LMDBStore(Path(folder), sync=True)
    app = KVApplication(store)
    height = app.info().last_height
    print(f"ready {height}", flush=True)
    while True:
        height += 1
        app.execute_block(height, block_txs(height))
        app.commit()


if __name__ == "__main__":
    main(sys.argv[1])
