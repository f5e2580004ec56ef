"""``rongxin bench load``: request latency under an open-loop load (docs/operations.md §10).

Requests leave on a fixed schedule (request ``i`` at ``t0 + i / rate``) whether or not earlier
ones were answered; a request's latency runs from its scheduled time to the last byte of its
answer, so a server that falls behind shows it (a closed loop, which waits for each answer
before sending the next, hides that). The client is one asyncio process speaking HTTP/1.1 with
keep-alive over its own sockets: an idle connection to the target is reused, else a new one is
opened (at most ``MAX_CONNS`` per node; beyond that a request waits, and the wait counts).

The mix (weights of ``MIX``): reads of ``/v1/status``, the console's ``/blocks`` page, a block
by height (``/v1/blocks/{h}``), a committed transaction (``/v1/txs/{id}``), a title search
(the console's ``/search?q=…``) and a state value with its proof (``/v1/state/kv/…``), spread
over every node; writes are ``POST /v1/txs`` of one transaction signed before the run by one
of 64 registered users (alternately ``kv.set`` and an ``ft.transfer`` of a token issued and
funded before the run), sent to the validators in turn. An *accepted write* is a ``202``
answer ``{"accepted": true, "status": "pending"}``: the node verified the signature, checked
the transaction against its chain (nonce, expiry, admission) and put it in its mempool. Any
other answer, or none within ``TIMEOUT_S``, is an error of its kind.
"""

from __future__ import annotations

import asyncio
import json
import os
import secrets
import shutil
import signal
import tempfile
import time
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit

from ledger.crypto import SM2PrivateKey
from ledger.tx import Transaction

from .ledger import _wait_committed, _workload

MAX_CONNS = 256  # per node
TIMEOUT_S = 30.0
IDLE_S = 2.0  # a connection idle longer is closed rather than reused (uvicorn closes after 5 s)
MIX: dict[str, int] = {"status": 20, "blocks_page": 10, "block": 20, "tx": 15, "search": 5, "state": 10, "write": 20}


def _get_json(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=30) as r:
        return json.load(r)


class _Conn:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer
        self.used = time.monotonic()

    async def request(self, raw: bytes) -> tuple[int, bytes]:
        self.writer.write(raw)
        head = await self.reader.readuntil(b"\r\n\r\n")
        lines = head.split(b"\r\n")
        status = int(lines[0].split(b" ", 2)[1])
        length = 0
        chunked = False
        for ln in lines[1:]:
            name, _, value = ln.partition(b":")
            name = name.strip().lower()
            if name == b"content-length":
                length = int(value)
            elif name == b"transfer-encoding" and b"chunked" in value.lower():
                chunked = True
        if not chunked:
            return status, await self.reader.readexactly(length)
        body = bytearray()
        while True:
            size = int((await self.reader.readuntil(b"\r\n")).split(b";")[0], 16)
            body += (await self.reader.readexactly(size + 2))[:-2]  # the chunk, then its CRLF
            if size == 0:
                return status, bytes(body)


class _Pool:
    """Keep-alive connections to one node."""

    def __init__(self, url: str) -> None:
        parts = urlsplit(url)
        self.host, self.port = parts.hostname or "127.0.0.1", parts.port or 80
        self.idle: list[_Conn] = []
        self.open = 0
        self.free = asyncio.Condition()

    async def _take(self) -> _Conn:
        async with self.free:
            while not self.idle and self.open >= MAX_CONNS:
                await self.free.wait()
            while self.idle:
                conn = self.idle.pop()
                if time.monotonic() - conn.used < IDLE_S:
                    return conn
                conn.writer.close()  # the server may have closed it (uvicorn: after 5 s idle)
                self.open -= 1
            self.open += 1
        try:
            reader, writer = await asyncio.open_connection(self.host, self.port, limit=1 << 22)
        except OSError:
            self.open -= 1
            raise
        return _Conn(reader, writer)

    async def _give(self, conn: _Conn | None) -> None:
        async with self.free:
            if conn is None:
                self.open -= 1
            else:
                conn.used = time.monotonic()
                self.idle.append(conn)
            self.free.notify()

    async def call(self, method: str, path: str, body: bytes = b"") -> tuple[int, bytes]:
        conn = await self._take()
        raw = (f"{method} {path} HTTP/1.1\r\nHost: {self.host}:{self.port}\r\nContent-Length: {len(body)}\r\n"
               + ("Content-Type: application/json\r\n" if body else "") + "\r\n").encode() + body
        try:
            out = await asyncio.wait_for(conn.request(raw), TIMEOUT_S)
        except BaseException:
            conn.writer.close()
            await self._give(None)
            raise
        await self._give(conn)
        return out

    async def close(self) -> None:
        for c in self.idle:
            c.writer.close()
        for c in self.idle:
            try:
                await c.writer.wait_closed()
            except OSError:
                pass
        self.idle.clear()


@dataclass
class _Targets:
    """What the reads ask for: heights, committed transactions, state keys, titles."""

    head: int
    tx_ids: list[str]
    state_keys: list[str]
    titles: list[str] = field(default_factory=lambda: ["bench", "song", "photo", "novel", "<script>"])


def _schedule(rate: float, seconds: float) -> list[str]:
    """Kinds in request order: the mix's proportions, shuffled deterministically per block of 100."""
    total = int(rate * seconds)
    weights = sum(MIX.values())
    block = [k for k, w in MIX.items() for _ in range(round(100 * w / weights))]
    rng = secrets.SystemRandom()
    out: list[str] = []
    while len(out) < total:
        b = list(block)
        rng.shuffle(b)
        out += b
    return out[:total]


class _Run:
    def __init__(self, reads: Sequence[str], writes: Sequence[str], targets: _Targets, txs: list[Transaction]) -> None:
        self.read_pools = [_Pool(u) for u in reads]
        by_url = {u: p for u, p in zip(reads, self.read_pools, strict=True)}
        self.write_pools = [by_url.get(u) or _Pool(u) for u in writes]
        self.t = targets
        self.txs = txs
        self.n_read = self.n_write = 0
        self.lat: dict[str, list[float]] = {"read": [], "write": []}
        self.by_kind: dict[str, list[float]] = {k: [] for k in MIX}
        self.errors: dict[str, int] = {}
        self.late_start: list[float] = []  # how late the client sent (its own lag)

    def _read_path(self, kind: str, i: int) -> str:
        t = self.t
        if kind == "status":
            return "/v1/status"
        if kind == "blocks_page":
            return "/blocks"
        if kind == "block":
            return f"/v1/blocks/{1 + (i * 7919) % t.head}"
        if kind == "tx":
            return f"/v1/txs/{t.tx_ids[i % len(t.tx_ids)]}"
        if kind == "search":
            return "/search?q=" + quote(t.titles[i % len(t.titles)])
        return "/v1/state/" + t.state_keys[i % len(t.state_keys)]

    async def one(self, kind: str, i: int, due: float) -> None:
        self.late_start.append(time.perf_counter() - due)
        try:
            if kind == "write":
                tx = self.txs[self.n_write % len(self.txs)]
                pool = self.write_pools[self.n_write % len(self.write_pools)]
                self.n_write += 1
                status, body = await pool.call("POST", "/v1/txs", tx.encode())
                ok = status == 202 and json.loads(body).get("accepted") is True
            else:
                pool = self.read_pools[self.n_read % len(self.read_pools)]
                self.n_read += 1
                status, body = await pool.call("GET", self._read_path(kind, i))
                ok = status == 200
            if not ok:
                self.errors[f"{kind} {status}"] = self.errors.get(f"{kind} {status}", 0) + 1
                return
        except (TimeoutError, OSError, asyncio.IncompleteReadError, ValueError) as exc:
            name = f"{kind} {type(exc).__name__}"
            self.errors[name] = self.errors.get(name, 0) + 1
            return
        took = time.perf_counter() - due
        self.lat["write" if kind == "write" else "read"].append(took)
        self.by_kind[kind].append(took)

    async def drive(self, rate: float, seconds: float) -> dict[str, float]:
        kinds = _schedule(rate, seconds)
        cpu0, t0 = time.process_time(), time.perf_counter()
        tasks = []
        for i, kind in enumerate(kinds):
            due = t0 + i / rate
            delay = due - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append(asyncio.create_task(self.one(kind, i, due)))
        sent_s = time.perf_counter() - t0
        await asyncio.gather(*tasks)
        wall = time.perf_counter() - t0
        cpu = time.process_time() - cpu0
        for p in {id(p): p for p in self.read_pools + self.write_pools}.values():
            await p.close()
        return {"sending_s": sent_s, "wall_s": wall, "cpu_s": cpu, "requests": len(kinds)}


def _pcts(xs: list[float]) -> dict[str, float | int | None]:
    if not xs:
        return {"n": 0, "p50_ms": None, "p90_ms": None, "p99_ms": None, "max_ms": None}
    s = sorted(xs)

    def at(q: float) -> float:
        return round(s[min(len(s) - 1, int(q * len(s)))] * 1000, 1)

    return {"n": len(s), "p50_ms": at(0.5), "p90_ms": at(0.9), "p99_ms": at(0.99), "max_ms": round(s[-1] * 1000, 1)}


def _prepare(nodes: list[dict[str, Any]], data: Path, n_writes: int) -> tuple[_Targets, list[Transaction]]:
    """Registered senders, committed transactions and state for the reads to find, and the
    writes, all signed before the measured window."""
    from api.sdk import register_users

    api = nodes[0]["api"]
    keys = [SM2PrivateKey.generate() for _ in range(64)]
    issuer = SM2PrivateKey.generate()
    register_users(api, data, [*keys, issuer])
    height = max(int(_get_json(n["api"] + "/v1/status")["height"]) for n in nodes)
    expiry = height + 10**7
    seed = _workload("kv", api, keys, 200, expiry, issuer)
    _wait_committed(api, seed)
    half = n_writes // 2 + 1
    kv = [Transaction.build(keys[i % len(keys)], chain=seed[0].chain, type="kv.set",
                            payload={"key": f"load/{i % 1000}", "value": str(i)}, expiry=expiry) for i in range(half)]
    ft = _workload("ft", api, keys, half, expiry, issuer)
    writes = [t for pair in zip(kv, ft, strict=True) for t in pair]
    head = int(_get_json(api + "/v1/status")["height"])
    targets = _Targets(head, [t.id_hex for t in seed], [f"kv/bench/{i}" for i in range(200)])
    return targets, writes


def _terminate(signum: int, _frame: object) -> None:
    raise SystemExit(128 + signum)


def measure(data: Path | None = None, api: str | None = None, rate: float = 500.0,
            seconds: float = 60.0) -> dict[str, Any]:
    """Start a local consortium (unless ``data`` is the folder of a running one), prepare,
    then load it at ``rate`` requests a second for ``seconds``; ``api``: only that node."""
    from api.cluster import down, up

    started = time.monotonic()
    own = data is None
    folder = Path(tempfile.mkdtemp(prefix="rongxin-bench-load-")) / "c" if data is None else data
    previous = signal.signal(signal.SIGTERM, _terminate) if own else None
    try:
        if own:
            up(folder, detach=True, echo=lambda *_: None, base_port=int(os.environ.get("RONGXIN_BASE_PORT", "27700")))
        data = folder
        nodes = list(json.loads((data / "cluster.json").read_text())["nodes"])
        if api is not None:
            nodes = [n for n in nodes if n["api"].rstrip("/") == api.rstrip("/")] or [
                {"id": "given", "api": api.rstrip("/"), "role": "validator"}]
        n_writes = int(rate * seconds * MIX["write"] / sum(MIX.values())) + 10
        targets, writes = _prepare(nodes, data, n_writes)
        reads = [n["api"] for n in nodes]
        validators = [n["api"] for n in nodes if n["role"] != "full"] or reads  # --api a full node: it too
        run = _Run(reads, validators, targets, writes)
        load_before = os.getloadavg()
        client = asyncio.run(run.drive(rate, seconds))
        load_after = os.getloadavg()
        committed = int(_get_json(nodes[0]["api"] + "/v1/status")["height"])
    finally:
        if own:
            down(folder, echo=lambda *_: None)
            shutil.rmtree(folder.parent, ignore_errors=True)
            if previous is not None:
                signal.signal(signal.SIGTERM, previous)
    lag = sorted(run.late_start)
    return {
        "bench": "load", "target_rate": rate, "seconds": seconds, "requests": client["requests"],
        "achieved_rate": round(client["requests"] / client["sending_s"], 1),
        "answered_rate": round((len(run.lat["read"]) + len(run.lat["write"])) / client["wall_s"], 1),
        "read": {**_pcts(run.lat["read"]), "target_p99_ms": 200},
        "write_accepted": {**_pcts(run.lat["write"]), "target_p99_ms": 500,
                           "means": "202 {accepted: true, status: pending} from POST /v1/txs"},
        "by_kind": {k: _pcts(v) for k, v in run.by_kind.items()},
        "errors": run.errors, "nodes": len(reads), "validators": len(validators),
        "client": {"cpu_s": round(client["cpu_s"], 2), "cpu_share_of_one_core": round(client["cpu_s"] / client["wall_s"], 3),
                   "send_lag_p99_ms": round(lag[int(0.99 * (len(lag) - 1))] * 1000, 1) if lag else None,
                   "send_lag_max_ms": round(lag[-1] * 1000, 1) if lag else None},
        "height_after": committed, "total_s": round(time.monotonic() - started, 1),
        "load_average_before": [round(x, 2) for x in load_before],
        "load_average_after": [round(x, 2) for x in load_after],
    }
