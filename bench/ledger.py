"""``rongxin bench ledger``: committed TPS and commit latency of the local consortium.

The load generator is this process; the nodes are their own processes. All transactions
are signed before the measured window, and their 64 senders registered as users of a member
organisation before it (the chain is permissioned). One client thread per validator posts batches of
``--batch`` transactions, together at most ``--in-flight`` transactions outstanding (and at
most ``--rate`` per second); a validator that does not answer (e.g. killed) is skipped and
the batch retried at the next. A transaction's submission time is when its batch is sent. A poller reads committed blocks from one validator and stamps each transaction's
commit time. ``tps`` = committed ÷ (last commit − first submission). Also printed: the
``openssl speed sm2`` verify rates (one core and all cores) measured in the same run before
the load, and ``efficiency`` = tps × validators ÷ the all-core rate.
"""

from __future__ import annotations

import json
import secrets
import shutil
import signal
import statistics
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from ledger.contracts.context import account_of
from ledger.crypto import SM2PrivateKey
from ledger.tx import Transaction

from . import openssl_speed


def _get(url: str, timeout: float = 10) -> Any:
    with urllib.request.urlopen(url, timeout=timeout) as r:
        return json.load(r)


def _post(url: str, body: bytes, timeout: float = 60) -> Any:
    req = urllib.request.Request(url, data=body, headers={"content-type": "application/json"})
    with urllib.request.urlopen(req, timeout=timeout) as r:
        return json.load(r)


class Load:
    def __init__(self, nodes: list[dict[str, Any]], txs: list[Transaction], *, rate: float | None,
                 batch: int, in_flight: int) -> None:
        self.validators = [n["api"] for n in nodes if n["role"] != "full"]
        self.poll_api = self.validators[0]
        self.apis = [n["api"] for n in nodes]
        self.txs = txs
        self.rate, self.batch, self.in_flight = rate, batch, in_flight
        self.submit_at: dict[str, float] = {}
        self.commit_at: dict[str, float] = {}
        self.rejected: dict[str, str] = {}
        self.blocks = 0
        self.failed: dict[str, str] = {}  # committed with a refusal receipt
        self.lock = threading.Lock()
        self.done_submitting = False

    def submit_all(self) -> None:
        """One submitting thread per validator (clients are many; one serial client would
        measure its own round trips), sharing the in-flight bound and the rate."""
        chunks = [self.txs[i : i + self.batch] for i in range(0, len(self.txs), self.batch)]
        self._next = 0
        self._sent = 0
        self._start = time.monotonic()
        errors: list[BaseException] = []

        def worker(first: int) -> None:
            try:
                self._submit_worker(chunks, first)
            except Exception as exc:  # noqa: BLE001 - surfaced to the caller below
                errors.append(exc)

        workers = [threading.Thread(target=worker, args=(k,), daemon=True) for k in range(len(self.validators))]
        for w in workers:
            w.start()
        for w in workers:
            w.join()
        self.done_submitting = True
        if errors:
            raise errors[0]

    def _take(self, chunks: list[list[Transaction]]) -> list[Transaction] | None:
        while True:
            with self.lock:
                if self._next >= len(chunks):
                    return None
                outstanding = len(self.submit_at) - len(self.commit_at) - len(self.rejected)
                due = self._start + self._sent / self.rate if self.rate else 0.0
                if outstanding + len(chunks[self._next]) <= self.in_flight + self.batch and time.monotonic() >= due:
                    chunk = chunks[self._next]
                    self._next += 1
                    self._sent += len(chunk)
                    # counted as in flight from now on, so the other workers see it
                    now = time.monotonic()
                    for tx in chunk:
                        self.submit_at.setdefault(tx.id_hex, now)
                    return chunk
            time.sleep(0.005)

    def _submit_worker(self, chunks: list[list[Transaction]], first: int) -> None:
        while (chunk := self._take(chunks)) is not None:
            body = b'{"txs":[' + b",".join(t.encode() for t in chunk) + b"]}"
            for attempt in range(200):
                api = self.validators[(first + attempt) % len(self.validators)]
                try:
                    results = _post(api + "/v1/txs", body)["results"]
                except (urllib.error.URLError, OSError, ValueError, KeyError):
                    time.sleep(0.05)
                    continue
                with self.lock:
                    for tx, r in zip(chunk, results, strict=True):
                        if not r["accepted"]:
                            self.rejected[tx.id_hex] = str(r.get("reason"))
                break
            else:
                raise RuntimeError("no validator accepted a batch for 200 tries")

    def poll_commits(self, deadline: float) -> None:
        height = 0
        wanted = {t.id_hex for t in self.txs}
        apis = list(self.validators)
        while time.monotonic() < deadline:
            try:
                head = _get(apis[0] + "/v1/status")["height"]
                while height < head:
                    block = _get(f"{apis[0]}/v1/blocks/{height + 1}")
                    now = time.monotonic()
                    with self.lock:
                        for tid, receipt in zip(block["tx_ids"], block["receipts"], strict=True):
                            if tid in wanted:
                                self.commit_at.setdefault(tid, now)
                                if receipt["code"] != 0:
                                    self.failed[tid] = receipt["info"]
                        self.blocks += 1
                    height += 1
            except (urllib.error.URLError, OSError, ValueError, KeyError):
                apis.append(apis.pop(0))  # that node is down: read from the next one
                time.sleep(0.1)
                continue
            with self.lock:
                finished = self.done_submitting and len(self.commit_at) + len(self.rejected) >= len(self.submit_at)
            if finished:
                return
            time.sleep(0.05)


def _cluster_nodes(data: Path) -> list[dict[str, Any]]:
    return list(json.loads((data / "cluster.json").read_text())["nodes"])


def _wait_committed(api: str, txs: list[Transaction], timeout: float = 120) -> None:
    """Submit setup transactions and wait until each is committed with an OK receipt."""
    body = b'{"txs":[' + b",".join(t.encode() for t in txs) + b"]}"
    _post(api + "/v1/txs", body)
    deadline = time.monotonic() + timeout
    for tx in txs:
        while True:
            try:
                rec = _get(f"{api}/v1/txs/{tx.id_hex}")
            except urllib.error.HTTPError:
                rec = {"status": "unknown"}
            if rec.get("status") == "committed":
                if rec["receipt"]["code"] != 0:
                    raise RuntimeError(f"setup transaction {tx.type} refused: {rec['receipt']['info']}")
                break
            if time.monotonic() > deadline:
                raise RuntimeError(f"setup transaction {tx.type} not committed in {timeout} s")
            time.sleep(0.1)


def _workload(kind: str, api: str, keys: list[SM2PrivateKey], n_txs: int, expiry: int,
              issuer: SM2PrivateKey) -> list[Transaction]:
    """The measured transactions, signed before the measured window (setup committed first;
    ``keys`` and ``issuer`` are registered users: the chain is permissioned)."""
    chain = "rongxin-local"
    if kind == "kv":
        return [Transaction.build(keys[i % len(keys)], chain=chain, type="kv.set",
                                  payload={"key": f"bench/{i % 10_000}", "value": str(i)}, expiry=expiry)
                for i in range(n_txs)]
    # ft: an issuer issues a token and funds every sender; then senders pay 10,000 accounts
    symbol = "BENCH" + secrets.token_hex(3).upper()
    per = n_txs + 1
    setup = [Transaction.build(issuer, chain=chain, type="ft.issue", expiry=expiry, payload={
        "symbol": symbol, "name": "bench points", "cap": per * len(keys), "initial": per * len(keys)})]
    _wait_committed(api, setup)
    funding = [Transaction.build(issuer, chain=chain, type="ft.transfer", expiry=expiry, payload={
        "symbol": symbol, "to": account_of(k.public_key().point), "amount": per}) for k in keys]
    _wait_committed(api, funding)
    payees = [secrets.token_hex(20) for _ in range(10_000)]
    return [Transaction.build(keys[i % len(keys)], chain=chain, type="ft.transfer", expiry=expiry,
                              payload={"symbol": symbol, "to": payees[i % len(payees)], "amount": 1})
            for i in range(n_txs)]


def _terminate(signum: int, _frame: object) -> None:
    raise SystemExit(128 + signum)


def measure(data: Path | None, n_txs: int, rate: float | None, batch: int = 200,
            in_flight: int = 1500, timeout: float = 900, workload: str = "kv") -> dict[str, Any]:
    from api.cluster import down, up  # the bench drives the product through its own doors
    from api.sdk import register_users

    cores = openssl_speed.cores()
    _s1, o_verify = openssl_speed.sm2(3)
    _s2, o_verify_all = openssl_speed.sm2(3, multi=cores) if cores > 1 else (0.0, o_verify)

    own = data is None
    folder = Path(tempfile.mkdtemp(prefix="rongxin-bench-")) / "c" if own else data
    assert folder is not None
    # SIGTERM (a CI timeout, `kill`) unwinds like Ctrl-C, so the consortium it started stops too
    main = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGTERM, _terminate) if own and main else None
    try:
        if own:
            up(folder, detach=True, echo=lambda *_: None)
        nodes = _cluster_nodes(folder)
        keys = [SM2PrivateKey.generate() for _ in range(64)]
        issuer = SM2PrivateKey.generate()
        # a permissioned chain: the senders are users of a member organisation, registered
        # (and committed) before the measured window opens
        register_users(nodes[0]["api"], folder, [*keys, issuer])  # waits for every node to commit them
        height = max(_get(n["api"] + "/v1/status")["height"] for n in nodes if n["role"] != "full")
        txs = _workload(workload, nodes[0]["api"], keys, n_txs, height + 10**7, issuer)
        load = Load(nodes, txs, rate=rate, batch=batch, in_flight=in_flight)
        poller = threading.Thread(target=load.poll_commits, args=(time.monotonic() + timeout,), daemon=True)
        poller.start()
        t0 = time.monotonic()
        load.submit_all()
        poller.join(timeout)
        full = next((n for n in nodes if n["role"] == "full"), None)
        lag_s = None
        if full is not None:
            target = _get(load.validators[0] + "/v1/status")["height"]
            t_lag = time.monotonic()
            while time.monotonic() - t_lag < 30:
                try:
                    if _get(full["api"] + "/v1/status")["height"] >= target:
                        break
                except (urllib.error.URLError, OSError):
                    pass
                time.sleep(0.05)
            lag_s = round(time.monotonic() - t_lag, 3)
    finally:
        if own:
            down(folder, echo=lambda *_: None)
            shutil.rmtree(folder.parent, ignore_errors=True)
            if previous is not None:
                signal.signal(signal.SIGTERM, previous)
    committed = len(load.commit_at)
    last = max(load.commit_at.values()) if load.commit_at else t0
    first = min(load.submit_at.values()) if load.submit_at else t0
    lat = sorted((load.commit_at[t] - load.submit_at[t]) * 1000 for t in load.commit_at if t in load.submit_at)
    tps = committed / (last - first) if last > first else 0.0
    validators = len(load.validators)
    return {
        "submitted": len(load.submit_at),
        "committed": committed,
        "workload": workload,
        "refused_in_block": len(load.failed),
        "refusals": dict(list(load.failed.items())[:5]),
        "rejected": len(load.rejected),
        "rejections": dict(list(load.rejected.items())[:5]),
        "tps": round(tps, 1),
        "seconds": round(last - first, 2),
        "p50_ms": round(statistics.median(lat), 1) if lat else None,
        "p99_ms": round(lat[min(len(lat) - 1, int(len(lat) * 0.99))], 1) if lat else None,
        "blocks": load.blocks,
        "validators": validators,
        "full_node_lag_s": lag_s,
        "openssl_sm2_verify_per_s": o_verify,
        "openssl_sm2_verify_all_cores_per_s": o_verify_all,
        "verify_ratio": round(tps * validators / o_verify, 3) if o_verify else None,
        "efficiency": round(tps * validators / o_verify_all, 3) if o_verify_all else None,
        "rate": rate,
        "batch": batch,
    }


def main() -> None:
    json.dump(measure(None, int(sys.argv[1]) if len(sys.argv) > 1 else 20_000, None), sys.stdout)
    print()


if __name__ == "__main__":
    main()
