"""State and storage speed: ``python -m bench.state [--blocks N] [--backend lmdb|sqlite|both]``.

Also ``--cache-nodes N``: the tree's node cache (default 524,288 entries, about 310 bytes each).

Prints one JSON object. For each store backend, ``blocks`` blocks of 2,000 key updates
(half overwrite existing keys, half insert new ones; 32-byte values) are applied to the
state tree and committed, one atomic store commit per block, with ``sync=True`` (fsync per
commit, as a node runs). Figures:

- ``apply_ms`` / ``commit_ms`` / ``block_ms``: wall time per block over the last quarter of
  blocks (median and 90th percentile), and ``us_per_key_update`` = median block time / 2,000;
  ``block_cpu_ms`` / ``cpu_us_per_key_update``: the same in process CPU time, the steadier
  figure on a machine shared with other work;
- ``get_us``: latest-version reads of random existing keys; ``get_old_version_us``: reads at
  the first retained version;
- ``proof``: median sibling count and canonical-JSON size, ``prove_us``, ``verify_us``;
- ``store_bytes`` (file high-water mark) and ``store_live_bytes`` (pages holding data),
  and the live bytes after one ``prune(keep_last=10)`` of all older versions;
- ``merkle_10000_leaves_ms``: root of 10,000 transaction-sized leaves, and one inclusion
  proof + verification.
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from ledger.crypto.merkle import inclusion_proof, merkle_root, verify_inclusion
from ledger.state.proof import verify_proof
from ledger.state.smt import SparseMerkleTree
from ledger.state.store import open_store

KEYS_PER_BLOCK = 2000


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return round(ordered[min(len(ordered) - 1, int(q * len(ordered)))], 3)


def bench_backend(backend: str, blocks: int, folder: Path, cache_nodes: int) -> dict[str, Any]:
    rng = random.Random(7)
    store = open_store(folder / backend, backend=backend, sync=True)
    tree = SparseMerkleTree(store, cache_nodes=cache_nodes)
    keys: list[bytes] = []
    apply_ms, commit_ms, cpu_ms = [], [], []
    for height in range(1, blocks + 1):
        updates: dict[bytes, bytes | None] = {}
        n_old = KEYS_PER_BLOCK // 2 if keys else 0
        for key in rng.sample(keys, n_old):
            updates[key] = rng.randbytes(32)
        while len(updates) < KEYS_PER_BLOCK:
            key = b"acct/%d" % rng.randrange(1 << 40)
            if key not in updates:
                updates[key] = rng.randbytes(32)
                keys.append(key)
        c0 = time.process_time()
        t0 = time.perf_counter()
        tree.apply(height, updates)
        t1 = time.perf_counter()
        tree.commit()
        t2 = time.perf_counter()
        cpu_ms.append((time.process_time() - c0) * 1e3)
        apply_ms.append((t1 - t0) * 1e3)
        commit_ms.append((t2 - t1) * 1e3)
    tail = max(1, blocks // 4)
    block_ms = [a + c for a, c in zip(apply_ms[-tail:], commit_ms[-tail:], strict=True)]

    probes = rng.sample(keys, 2000)
    t0 = time.perf_counter()
    for key in probes:
        tree.get(key)
    get_us = (time.perf_counter() - t0) / len(probes) * 1e6
    t0 = time.perf_counter()
    for key in probes[:500]:
        tree.get(key, 1)
    get_old_us = (time.perf_counter() - t0) / 500 * 1e6

    root = tree.root()
    proofs = []
    t0 = time.perf_counter()
    for key in probes[:500]:
        proofs.append(tree.prove(key))
    prove_us = (time.perf_counter() - t0) / 500 * 1e6
    values = [tree.get(key) for key in probes[:500]]
    t0 = time.perf_counter()
    ok = all(verify_proof(root, k, v, p) for k, v, p in zip(probes[:500], values, proofs, strict=True))
    verify_us = (time.perf_counter() - t0) / 500 * 1e6
    assert ok, "a proof failed to verify"
    absent_ok = all(verify_proof(root, b"absent/%d" % i, None, tree.prove(b"absent/%d" % i)) for i in range(100))
    assert absent_ok, "a non-membership proof failed to verify"

    size_before, live_before = store.disk_bytes(), store.live_bytes()
    t0 = time.perf_counter()
    pruned = tree.prune(keep_last=10)
    prune_ms = (time.perf_counter() - t0) * 1e3
    live_after = store.live_bytes()
    store.close()
    return {
        "blocks": blocks,
        "keys_in_state": len(keys),
        "apply_ms": {"median": _pct(apply_ms[-tail:], 0.5), "p90": _pct(apply_ms[-tail:], 0.9)},
        "commit_ms": {"median": _pct(commit_ms[-tail:], 0.5), "p90": _pct(commit_ms[-tail:], 0.9)},
        "block_ms": {"median": _pct(block_ms, 0.5), "p90": _pct(block_ms, 0.9)},
        "first_block_ms": round(apply_ms[0] + commit_ms[0], 3),
        "us_per_key_update": round(statistics.median(block_ms) * 1e3 / KEYS_PER_BLOCK, 2),
        "block_cpu_ms": {"median": _pct(cpu_ms[-tail:], 0.5), "p90": _pct(cpu_ms[-tail:], 0.9)},
        "cpu_us_per_key_update": round(statistics.median(cpu_ms[-tail:]) * 1e3 / KEYS_PER_BLOCK, 2),
        "get_us": round(get_us, 2),
        "get_old_version_us": round(get_old_us, 2),
        "proof": {
            "siblings_median": statistics.median(len(p.siblings) for p in proofs),
            "json_bytes_median": statistics.median(len(p.to_json()) for p in proofs),
            "prove_us": round(prove_us, 2),
            "verify_us": round(verify_us, 2),
        },
        "store_bytes": size_before,
        "store_live_bytes": live_before,
        "prune_keep_last_10": {"nodes_deleted": pruned, "ms": round(prune_ms, 1),
                               "store_live_bytes_after": live_after},
    }


def bench_merkle() -> dict[str, Any]:
    leaves = [random.Random(i).randbytes(250) for i in range(10_000)]
    runs = []
    for _ in range(5):
        t0 = time.perf_counter()
        root = merkle_root(leaves)
        runs.append((time.perf_counter() - t0) * 1e3)
    t0 = time.perf_counter()
    proof = inclusion_proof(leaves, 4321)
    ok = verify_inclusion(leaves[4321], 4321, len(leaves), proof, root)
    assert ok
    return {"merkle_10000_leaves_ms": round(min(runs), 2),
            "merkle_proof_and_verify_ms": round((time.perf_counter() - t0) * 1e3, 2),
            "merkle_proof_hashes": len(proof)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--blocks", type=int, default=60)
    parser.add_argument("--backend", choices=["lmdb", "sqlite", "both"], default="both")
    parser.add_argument("--cache-nodes", type=int, default=1 << 19, help="the tree's node cache size")
    args = parser.parse_args()
    backends = ["lmdb", "sqlite"] if args.backend == "both" else [args.backend]
    result: dict[str, Any] = {"keys_per_block": KEYS_PER_BLOCK, "cache_nodes": args.cache_nodes}
    with tempfile.TemporaryDirectory(prefix="rongxin-bench-state-") as tmp:
        for backend in backends:
            result[backend] = bench_backend(backend, args.blocks, Path(tmp), args.cache_nodes)
    result.update(bench_merkle())
    print(json.dumps(result, sort_keys=True))


if __name__ == "__main__":
    main()
