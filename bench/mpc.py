"""``rongxin bench mpc``: the MPC engine with five party processes on loopback, beside a
plaintext baseline and MPyC's own plain secure total of the same per-content vectors.

Figures: per-content sums over ``sum_ids`` ids; mean + variance, a ``bins``-bin histogram
(equal-width integer edges over the possible totals) and the top ``top`` over ``stat_ids`` ids,
each alone and mean + variance + histogram together; bytes sent per party; MPyC (``-M5``, five local parties as its demos run them) summing the same
vectors, and the ratio. Seconds of a run are counted from the moment every link is open to the
outputs (``seconds_after_links``, what MPyC's figure counts after ``mpc.start``), and in full
(``seconds_with_links``, including waiting for the slowest process to load its CSV and connect).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from ledger.crypto import SM2PrivateKey
from ledger.crypto.ca import ConsortiumCA

MAX_VALUE = 100_000
SCHEMA = {"columns": {"views": {"min": 0, "max": MAX_VALUE}}}


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _cluster(root: Path, n: int) -> list[str]:
    ca = ConsortiumCA.init(root / "ca", "Bench Consortium")
    ids = [f"platform-{chr(97 + k)}" for k in range(n)]
    for pid in ids:
        cert = ca.issue(kind="node", name=pid, org="Org", role="consensus",
                        public_key=SM2PrivateKey.generate().public_key())
        key_pem, cert_pem = ca.issue_transport(pid, cert)
        (root / pid).mkdir()
        (root / pid / "tls.key").write_bytes(key_pem)
        (root / pid / "tls.crt").write_bytes(cert_pem)
    return ids


def _write_data(root: Path, parties: list[str], n_ids: int, seed: int) -> tuple[list[str], np.ndarray[Any, Any]]:
    rng = np.random.default_rng(seed)
    ids = [f"w{k:07d}" for k in range(n_ids)]
    vectors = rng.integers(0, MAX_VALUE + 1, size=(len(parties), n_ids), dtype=np.int64)
    for k, pid in enumerate(parties):
        lines = ["content_id,views", *(f"{i},{v}" for i, v in zip(ids, vectors[k].tolist(), strict=True))]
        (root / f"{pid}.{n_ids}.csv").write_text("\n".join(lines) + "\n")
        np.save(root / f"p{k}.npy", vectors[k])
    return ids, vectors


def _run(root: Path, parties: list[str], query: dict[str, Any], n_ids: int, cid: str) -> dict[str, Any]:
    ports = {p: _free_port() for p in parties}
    procs = {}
    for pid in parties:
        cfg = {"me": pid, "computation_id": cid, "timeout": 120, "query": query, "schema": SCHEMA,
               "data_csv": str(root / f"{pid}.{n_ids}.csv"),
               "parties": [{"id": p, "host": "127.0.0.1", "port": ports[p],
                            "cert_file": str(root / p / "tls.crt")} for p in parties],
               "tls": {"cert": str(root / pid / "tls.crt"), "key": str(root / pid / "tls.key"),
                       "ca": str(root / "ca" / "transport-ca.crt.pem")}}
        (root / f"{pid}.{cid}.json").write_text(json.dumps(cfg))
        procs[pid] = subprocess.Popen([sys.executable, "-m", "privacy.mpc.party", str(root / f"{pid}.{cid}.json"),
                                       str(root / f"{pid}.{cid}.out")])
    out = {}
    for pid, p in procs.items():
        p.wait(600)
        out[pid] = json.loads((root / f"{pid}.{cid}.out").read_text())
        if not out[pid]["ok"]:
            raise RuntimeError(f"{pid}: {out[pid]['error']}")
    return {
        "seconds_after_links": round(max(r["seconds"] - r["link_seconds"] for r in out.values()), 3),
        "seconds_with_links": round(max(r["seconds"] for r in out.values()), 3),
        "csv_load_seconds": round(max(r["load_seconds"] for r in out.values()), 3),
        "format_outputs_seconds": round(max(r["format_seconds"] for r in out.values()), 3),
        "bytes_sent_per_party": max(r["bytes_sent"] for r in out.values()),
        "transcripts_agree": len({r["transcript_sm3"] for r in out.values()}) == 1,
        "outputs": next(iter(out.values()))["outputs"],
    }


def _mpyc(root: Path, n: int) -> dict[str, Any]:
    script = Path(__file__).with_name("mpyc_total.py")
    start = time.perf_counter()
    subprocess.run([sys.executable, str(script), str(root), f"-M{n}", "--no-log"], check=True, cwd=root,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=1200)
    wall = time.perf_counter() - start
    result = json.loads((root / "mpyc.json").read_text())
    return {"seconds": round(result["seconds"], 3), "seconds_with_start": round(wall, 3), "sum": result["sum"]}


def measure(parties: int = 5, sum_ids: int = 1_000_000, stat_ids: int = 10_000, mpyc: bool = True,
            bins: int = 10, top: int = 10) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="rongxin-bench-mpc-") as tmp:
        root = Path(tmp)
        names = _cluster(root, parties)
        result: dict[str, Any] = {"parties": parties, "threshold": (parties - 1) // 2, "cores": os.cpu_count()}
        ids, vectors = _write_data(root, names, sum_ids, 1)
        t = time.perf_counter()
        plain = vectors.sum(axis=0)
        plain_seconds = time.perf_counter() - t
        r = _run(root, names, {"op": "sum", "column": "views", "ids": ids}, sum_ids, "sum")
        got = r.pop("outputs")["totals"]
        r["correct"] = [got[i] for i in ids] == plain.tolist()
        result["sum"] = {"ids": sum_ids, **r, "plaintext_seconds": round(plain_seconds, 4)}
        if mpyc:
            m = _mpyc(root, parties)
            m["correct"] = m.pop("sum") == int(plain.sum())
            result["mpyc_total"] = {"ids": sum_ids, **m}
            result["ratio_mpyc_over_ours"] = round(m["seconds"] / r["seconds_after_links"], 2)
        ids, vectors = _write_data(root, names, stat_ids, 2)
        t = time.perf_counter()
        totals = vectors.sum(axis=0)
        mean = totals.mean()
        var = totals.var()
        plain_seconds = time.perf_counter() - t
        r = _run(root, names, {"op": "stats", "column": "views", "ids": ids}, stat_ids, "stats")
        out = r.pop("outputs")
        r["correct"] = bool(abs(out["mean"] - mean) < 1e-6 * mean and abs(out["variance"] - var) < 1e-6 * var)
        result["mean_variance"] = {"ids": stat_ids, **r, "plaintext_seconds": round(plain_seconds, 5)}
        result.update(_ranking(root, names, ids, totals, result["mean_variance"], bins, top))
        return result


def _ranking(root: Path, names: list[str], ids: list[str], totals: np.ndarray[Any, Any],
             stats: dict[str, Any], bins: int, top: int) -> dict[str, Any]:
    """A ``bins``-bin histogram and the top ``top`` over the same per-id totals, beside numpy."""
    n = len(ids)
    edges = np.linspace(0, len(names) * MAX_VALUE, bins + 1).round().astype(np.int64).tolist()
    t = time.perf_counter()
    want_counts = np.histogram(totals, bins=edges)[0].tolist()
    plain_hist = time.perf_counter() - t
    r = _run(root, names, {"op": "histogram", "column": "views", "ids": ids, "bins": edges}, n, "histogram")
    r["correct"] = r.pop("outputs") == {"counts": want_counts}
    out: dict[str, Any] = {"histogram": {"ids": n, "bins": bins, **r, "plaintext_seconds": round(plain_hist, 5)}}
    out["mean_variance_histogram"] = {
        "ids": n, "seconds_after_links": round(stats["seconds_after_links"] + r["seconds_after_links"], 3),
        "seconds_with_links": round(stats["seconds_with_links"] + r["seconds_with_links"], 3),
        "bytes_sent_per_party": stats["bytes_sent_per_party"] + r["bytes_sent_per_party"],
        "plaintext_seconds": round(stats["plaintext_seconds"] + plain_hist, 5)}
    t = time.perf_counter()
    order = np.lexsort((np.arange(n), -totals))[:top]  # ids are generated in ascending order
    want_ids = [ids[i] for i in order.tolist()]
    plain_top = time.perf_counter() - t
    r = _run(root, names, {"op": "topk", "column": "views", "ids": ids, "k": top}, n, "topk")
    r["correct"] = r.pop("outputs") == {"ids": want_ids}
    out["topk"] = {"ids": n, "k": top, **r, "plaintext_seconds": round(plain_top, 5)}
    return out
