"""kill -9 at random moments: the store always reopens at a consistent, recomputable state.

A real child process (``crash_writer.py``) commits blocks in a loop and is killed with
SIGKILL at random moments, several times, each run resuming where the last one stopped.
After every kill the store is reopened and its last height, root and block records are
compared with a recomputation of the committed blocks in memory.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from ledger.state.store import LMDBStore, MemoryStore

from .crash_writer import block_txs
from .machine import KVApplication

WRITER = Path(__file__).with_name("crash_writer.py")
REPO = Path(__file__).resolve().parents[2]
KILLS = 6


def start_writer(folder: Path) -> tuple[subprocess.Popen[str], int]:
    env = dict(os.environ, PYTHONPATH=str(REPO))
    proc = subprocess.Popen([sys.executable, str(WRITER), str(folder)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=env)
    assert proc.stdout is not None
    line = proc.stdout.readline()
    if not line.startswith("ready "):
        proc.kill()
        raise AssertionError(f"writer did not start: {line!r} {proc.stderr.read() if proc.stderr else ''}")
    return proc, int(line.split()[1])


@pytest.mark.slow
def test_sigkill_leaves_the_last_committed_block_whole(tmp_path: Path) -> None:
    folder = tmp_path / "node"
    rng = random.Random()
    seed = rng.randrange(1 << 30)
    rng.seed(seed)
    reference = KVApplication(MemoryStore())
    roots = {0: reference.info().last_root}
    last_seen = 0
    for round_ in range(KILLS):
        proc, start_height = start_writer(folder)
        assert start_height == last_seen, f"writer resumed at {start_height}, store said {last_seen}"
        time.sleep(rng.uniform(0.15, 0.7))
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
        assert proc.returncode == -signal.SIGKILL, (proc.returncode, proc.stderr.read() if proc.stderr else "")
        if proc.stderr:
            proc.stderr.close()
        if proc.stdout:
            proc.stdout.close()

        store = LMDBStore(folder)
        app = KVApplication(store)
        height, root = app.info()
        assert height >= last_seen
        while reference.info().last_height < height:
            h = reference.info().last_height + 1
            reference.execute_block(h, block_txs(h))
            roots[h] = reference.commit().last_root
        assert root == roots[height], f"round {round_} (seed {seed}): root at {height} differs from recomputation"
        block = app.block(height) if height else None
        if height:
            assert block is not None and block["state_root"] == root.hex()
        assert app.block(height + 1) is None
        for h in range(max(0, last_seen - 1), height + 1):
            assert app.tree.root(h) == roots[h]
        for i in range(0, 20_000, 997):
            key = f"k{i}".encode()
            assert app.query(key).value == reference.query(key).value
        store.close()
        last_seen = height
    assert last_seen >= 2, "the writer committed almost nothing: the test exercised too little"
