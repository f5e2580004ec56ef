"""``rongxin bench ws``: WebSocket fan-out. One validator node (its own process, committing
alone), ``clients`` subscribers of ``blocks`` in this process, ``blocks`` blocks each made by
one transaction; per block: when each subscriber received it, measured from the block's
header time (its proposal: an upper bound on the delay after its commit) and from the first
subscriber to receive it (the spread of the fan-out: a lower bound, the first one came after
the commit); and the node's own histogram ``rongxin_ws_delivery_seconds``, from the block's
commit on the node to each subscriber's item written to its socket (``commit_to_socket_s``:
the share within 1 s is exact, 1 s being a bucket bound). JSON."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import statistics
import tempfile
import threading
import time
import urllib.request
from pathlib import Path
from typing import Any

import websockets

from api.cluster import api_ok, start_node
from api.sdk import LedgerClient, register_users
from ledger.crypto import SM2PrivateKey
from ledger.node.config import init_local_consortium


def _pct(xs: list[float], p: float) -> float:
    xs = sorted(xs)
    return round(xs[min(len(xs) - 1, int(p * len(xs)))], 4)


async def _subscribers(url: str, n: int, blocks: int, ready: threading.Event,
                       got: dict[int, list[float]], header_ms: dict[int, int]) -> int:
    conns = []
    for i in range(0, n, 100):  # connect in steps: the node's accept queue is finite
        conns += await asyncio.gather(*(websockets.connect(url, compression=None, max_queue=None)
                                        for _ in range(i, min(n, i + 100))))
    for c in conns:
        await c.send(json.dumps({"subscribe": "blocks"}))
    for c in conns:
        assert json.loads(await c.recv())["kind"] == "subscribed"
    ready.set()
    done = 0

    async def read(c: Any) -> None:
        nonlocal done
        seen = 0
        while seen < blocks:
            item = json.loads(await c.recv())
            if item.get("kind") == "block":
                got.setdefault(item["height"], []).append(time.time())
                header_ms[item["height"]] = int(item["header"]["time"])
                seen += 1
        done += 1

    await asyncio.wait_for(asyncio.gather(*(read(c) for c in conns)), 300)
    for c in conns:
        await c.close()
    return done


def _histogram(text: str, name: str) -> dict[str, Any]:
    """A Prometheus histogram of the node's ``/metrics``: count, share of observations within
    1 s, and the bucket bound below which 50 % and 99 % of them fall."""
    buckets: list[tuple[float, float]] = []
    for ln in text.splitlines():
        if ln.startswith(name + "_bucket{"):
            le = ln.split('le="', 1)[1].split('"', 1)[0]
            buckets.append((float("inf") if le == "+Inf" else float(le), float(ln.rsplit(" ", 1)[1])))
    buckets.sort()
    total = buckets[-1][1] if buckets else 0.0

    def bound(q: float) -> float | None:
        return next((le for le, n in buckets if n >= q * total), None) if total else None

    within = next((n for le, n in buckets if le == 1.0), 0.0)
    return {"count": int(total), "within_1s": round(within / total, 4) if total else None,
            "p50_at_most_s": bound(0.5), "p99_at_most_s": bound(0.99)}


def measure(clients: int = 1000, blocks: int = 5) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="rongxin-bench-ws-") as tmp:
        data = init_local_consortium(Path(tmp) / "c", base_port=int(os.environ.get("RONGXIN_BASE_PORT", "27600")),
                                     layout=(("val1", "consensus", "County A Media Centre"),))
        folder = data / "nodes" / "val1"
        (folder / "operations.toml").write_text(f"[service]\nws_max_clients = {clients + 10}\n")
        cfg = json.loads((folder / "node.json").read_text())
        api = f"http://{cfg['api'][0]}:{cfg['api'][1]}"
        proc = start_node(folder, detach=True)
        try:
            deadline = time.monotonic() + 120
            while not api_ok(api):
                assert time.monotonic() < deadline and proc.poll() is None, "the node did not start"
                time.sleep(0.2)
            key = SM2PrivateKey.generate()
            register_users(api, data, [key])
            got: dict[int, list[float]] = {}
            header_ms: dict[int, int] = {}
            ready = threading.Event()
            result: list[int] = []
            t = threading.Thread(target=lambda: result.append(asyncio.run(_subscribers(
                api.replace("http", "ws", 1) + "/v1/ws", clients, blocks, ready, got, header_ms))))
            t.start()
            assert ready.wait(300), "subscribers did not connect"
            client = LedgerClient(api, key=key)
            for i in range(blocks):
                client.submit_and_wait("kv.set", {"key": f"ws{i}", "value": "1"}, timeout=60)
            t.join(300)
            metrics = LedgerClient(api).status()
            text = urllib.request.urlopen(api + "/metrics", timeout=30).read().decode()
            fanout = {k: float(v) for k, v in (ln.rsplit(" ", 1) for ln in text.splitlines()
                                               if ln.startswith(("rongxin_ws_fanout_seconds_sum",
                                                                 "rongxin_ws_fanout_seconds_count")))}
            delivery = _histogram(text, "rongxin_ws_delivery_seconds")
        finally:
            proc.send_signal(signal.SIGTERM)
            proc.wait(60)
    from_header = [a - header_ms[h] / 1000 for h, arr in got.items() for a in arr]
    spread = [max(arr) - min(arr) for arr in got.values()]
    per_block_last = [max(arr) - header_ms[h] / 1000 for h, arr in got.items()]
    return {"bench": "ws_fanout", "clients": clients,
            # the node's own clock: from each block's commit to each subscriber's item written to its socket
            "commit_to_socket_s": delivery, "blocks": len(got), "subscribers_done": result[0] if result else 0,
            "deliveries": sum(len(a) for a in got.values()),
            "after_proposal_s": {"p50": _pct(from_header, 0.5), "p99": _pct(from_header, 0.99),
                                 "max": round(max(from_header), 4)},
            "last_subscriber_after_proposal_s": {"median": round(statistics.median(per_block_last), 4),
                                                 "max": round(max(per_block_last), 4)},
            "fanout_spread_s": {"median": round(statistics.median(spread), 4), "max": round(max(spread), 4)},
            "node_queueing_s_per_block": round(fanout["rongxin_ws_fanout_seconds_sum"]
                                               / max(1.0, fanout["rongxin_ws_fanout_seconds_count"]), 5),
            "height": metrics["height"], "load_average": list(os.getloadavg())}
