"""MPyC's plain secure total of per-content vectors, as its demos run it (``-M5``: five local
parties over loopback). Party ``i`` reads ``DIR/p<i>.npy``; party 0 writes ``DIR/mpyc.json``.

    python bench/mpyc_total.py DIR -M5
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import numpy as np
from mpyc.runtime import mpc


async def main(folder: Path) -> None:
    await mpc.start()
    x = np.load(folder / f"p{mpc.pid}.npy")
    secint = mpc.SecInt(64)
    start = time.perf_counter()
    shares = mpc.input(secint.array(x))
    total = shares[0]
    for s in shares[1:]:
        total = total + s
    out = await mpc.output(total)
    seconds = time.perf_counter() - start
    await mpc.shutdown()
    if mpc.pid == 0:
        (folder / "mpyc.json").write_text(json.dumps({"seconds": seconds, "sum": int(np.sum(out))}))


if __name__ == "__main__":
    folder = Path(sys.argv[1])
    sys.argv = [sys.argv[0], *sys.argv[2:]]
    mpc.run(main(folder))
