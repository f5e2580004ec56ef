"""Prometheus metrics of one node (``GET /metrics``, docs/operations.md §2).

Counters and histograms are updated where things happen: ``NodeMetrics.committed`` after each
commit (blocks, transactions, commit latency, missed leader turns and view changes read from
the committed block's header), ``ApiTimer`` around every HTTP request. Gauges (height,
mempool, peers, store size, disk, certificate expiry, subscribers, alerts) are read when
Prometheus scrapes, by ``NodeCollector``. Every name starts with ``rongxin_``; each node has
a registry of its own (no process-wide globals).
"""

from __future__ import annotations

import collections
import datetime as dt
import logging
import os
import shutil
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ledger.consensus.types import Block
from ledger.crypto import Certificate, CryptoError
from ledger.crypto.tls import transport_not_after
from ledger.governance.base import K_MISSED
from ledger.governance.base import get as gov_get
from ledger.node.runtime import Node

log = logging.getLogger("rongxin.metrics")

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
LATENCY_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 3.0, 5.0, 10.0, 30.0, 60.0)
API_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.2, 0.5, 1.0, 2.5, 5.0, 10.0)
TPS_WINDOW_S = 60.0


@dataclass
class Sources:
    """What the scrape-time collector reads besides the node (all optional)."""

    node_folder: Path | None = None
    consortium: Path | None = None
    peers_online: Callable[[], Iterable[str]] = lambda: ()
    peers_configured: Callable[[], Iterable[str]] = lambda: ()
    intake_pending: Callable[[], tuple[int, int]] = lambda: (0, 0)  # (being checked, capacity)
    ws: Callable[[], tuple[int, int, int]] = lambda: (0, 0, 0)  # (clients, dropped, items)
    alerts: Callable[[], dict[str, int]] = dict  # alert name -> how many firing
    ready: Callable[[], bool] = lambda: True
    refused: Callable[[], dict[str, int]] = dict  # signed-request refusals by code
    revoked: Callable[[], dict[str, int]] = dict  # attempts by revoked identities, by kind
    limited: Callable[[], int] = lambda: 0  # requests answered 429
    deliveries: Callable[[], dict[tuple[str, str], int]] = dict  # (channel, result) -> count
    info: dict[str, str] = field(default_factory=dict)


def certificate_files(folder: Path | None, consortium: Path | None) -> dict[str, tuple[Path, bool]]:
    """Certificates whose expiry is watched: name -> (file, is an SM2 certificate)."""
    out: dict[str, tuple[Path, bool]] = {}
    if folder is not None:
        out["node-sm2"] = (folder / "sm2.crt.pem", True)
        out["node-tls"] = (folder / "tls.crt", False)
    if consortium is not None:
        out["consortium-root"] = (consortium / "ca" / "root.crt.pem", True)
        out["transport-ca"] = (consortium / "ca" / "transport-ca.crt.pem", False)
    return out


class CertificateWatch:
    """Expiry times of the watched certificates, re-read when a file changes."""

    def __init__(self, files: dict[str, tuple[Path, bool]]) -> None:
        self.files = files
        self._seen: dict[str, tuple[tuple[int, int], dt.datetime | None]] = {}

    def expiries(self) -> dict[str, dt.datetime]:
        out = {}
        for name, (path, sm2) in self.files.items():
            try:
                st = path.stat()
            except OSError:
                continue
            stamp = (st.st_mtime_ns, st.st_size)
            seen = self._seen.get(name)
            if seen is None or seen[0] != stamp:
                try:
                    pem = path.read_bytes()
                    when = Certificate.load(pem).not_after if sm2 else transport_not_after(pem)
                except (OSError, CryptoError, ValueError) as exc:
                    log.warning("certificate %s (%s) unreadable: %s", name, path, exc)
                    when = None
                seen = (stamp, when)
                self._seen[name] = seen
            if seen[1] is not None:
                out[name] = seen[1]
        return out


def folder_bytes(path: Path) -> int:
    """Bytes of the files under ``path`` (the store: a few files, no deep tree)."""
    total = 0
    for root, _dirs, files in os.walk(path):
        for f in files:
            try:
                total += os.stat(os.path.join(root, f)).st_size
            except OSError:
                pass
    return total


class NodeMetrics:
    """A node's registry and the counters updated as blocks commit."""

    def __init__(self, node: Node, sources: Sources | None = None) -> None:
        self.node = node
        self.sources = sources or Sources()
        self.registry = CollectorRegistry(auto_describe=False)
        r = self.registry
        self.blocks = Counter("rongxin_blocks_committed", "Blocks committed by this node", registry=r)
        self.txs = Counter("rongxin_transactions_committed", "Transactions committed by this node", registry=r)
        self.latency = Histogram("rongxin_commit_latency_seconds", "From a block's proposal time (its header's "
                                 "time) to its commit on this node", buckets=LATENCY_BUCKETS, registry=r)
        self.missed = Counter("rongxin_missed_proposals", "Leader turns that produced no block in the chain, "
                              "by the validator whose turn it was", ["validator"], registry=r)
        self.view_changes = Counter("rongxin_view_changes", "Views that ended without their leader's block "
                                    "(timeouts), counted from committed blocks", registry=r)
        self.api = Histogram("rongxin_api_request_duration_seconds", "HTTP API requests by route template",
                             ["method", "route", "code"], buckets=API_BUCKETS, registry=r)
        self.ws_fanout = Histogram("rongxin_ws_fanout_seconds", "Time the node took to queue one committed "
                                   "block's items for every WebSocket subscriber", buckets=API_BUCKETS, registry=r)
        self.ws_delivery = Histogram("rongxin_ws_delivery_seconds", "From a block's commit on this node to one "
                                     "subscriber's item of it written to its socket", buckets=API_BUCKETS, registry=r)
        self.recent: collections.deque[tuple[float, int]] = collections.deque()  # (commit time, txs)
        self.last_commit = time.time()  # the node's start counts as progress
        self.totals = {"blocks": 0, "txs": 0}  # committed since start (the daily report's differences)
        self.certs = CertificateWatch(certificate_files(self.sources.node_folder, self.sources.consortium))
        r.register(NodeCollector(self))

    def committed(self, block: Block) -> None:
        """After each commit (on the event loop): a few counter updates, no I/O."""
        now = time.time()
        self.last_commit = now
        n = len(block.tx_ids)
        self.blocks.inc()
        self.txs.inc(n)
        self.totals["blocks"] += 1
        self.totals["txs"] += n
        self.recent.append((now, n))
        while self.recent and self.recent[0][0] < now - TPS_WINDOW_S:
            self.recent.popleft()
        proposed = block.header.get("time")
        if isinstance(proposed, int):
            self.latency.observe(max(0.0, now - proposed / 1000))
        try:
            justify = int(block.header["justify"]["view"])
            vset = self.node.vset_at(block.height)
            for view in range(justify + 1, block.view)[-4 * vset.n:]:
                self.missed.labels(vset.leader(view)).inc()
            self.view_changes.inc(max(0, block.view - justify - 1))
        except (KeyError, TypeError, ValueError) as exc:
            log.warning("block %d: cannot count missed turns: %s", block.height, exc)

    def tps(self) -> float:
        now = time.time()
        return sum(n for t, n in self.recent if t >= now - TPS_WINDOW_S) / TPS_WINDOW_S

    def exposition(self) -> bytes:
        return generate_latest(self.registry)


def _gauge(name: str, doc: str, value: float, labels: dict[str, str] | None = None) -> GaugeMetricFamily:
    g = GaugeMetricFamily(name, doc, labels=list(labels) if labels else None)
    g.add_metric(list(labels.values()) if labels else [], value)
    return g


class NodeCollector(Collector):
    """Gauges read at scrape time."""

    def __init__(self, m: NodeMetrics) -> None:
        self.m = m

    def collect(self) -> Iterator[Metric]:
        m, node, src = self.m, self.m.node, self.m.sources
        yield _gauge("rongxin_height", "Height of the last block committed on this node", node.app.chain.head)
        yield _gauge("rongxin_view", "This node's consensus view", node.engine.view)
        yield _gauge("rongxin_committed_tps", f"Transactions committed per second over the last "
                     f"{int(TPS_WINDOW_S)} s", m.tps())
        yield _gauge("rongxin_last_commit_timestamp_seconds", "Unix time of this node's last commit (or start)",
                     m.last_commit)
        yield _gauge("rongxin_mempool_transactions", "Transactions waiting in the mempool", len(node.mempool))
        online, configured = set(src.peers_online()), set(src.peers_configured())
        yield _gauge("rongxin_peers_online", "Peers with a live authenticated link", len(online))
        yield _gauge("rongxin_peers_configured", "Peers this node links with", len(configured))
        up = GaugeMetricFamily("rongxin_peer_up", "1 when the peer's link is up", labels=["peer"])
        for p in sorted(configured | online):
            up.add_metric([p], 1.0 if p in online else 0.0)
        yield up
        yield _gauge("rongxin_validators", "Validators of the next height", len(node.vset.validators))
        turns = GaugeMetricFamily("rongxin_validator_missed_turns", "Leader turns each validator missed in a row, "
                                  "as the chain counts them for passive exit", labels=["validator"])
        missed = gov_get(node.app.read, K_MISSED) if node.app.governance is not None else None
        for v in node.vset.validators:
            turns.add_metric([v.id], float((missed or {}).get(v.id, 0)))
        yield turns
        checking, capacity = src.intake_pending()
        yield _gauge("rongxin_sigverify_queue", "Submissions being read or having their signatures verified",
                     checking)
        yield _gauge("rongxin_sigverify_capacity", "Submissions the node reads at once before answering 503 busy",
                     capacity)
        yield from self._disk()
        certs = GaugeMetricFamily("rongxin_certificate_expiry_timestamp_seconds", "Unix time when a certificate "
                                  "this node uses expires", labels=["certificate"])
        for name, when in sorted(m.certs.expiries().items()):
            certs.add_metric([name], when.timestamp())
        yield certs
        clients, dropped, items = src.ws()
        yield _gauge("rongxin_ws_clients", "WebSocket subscribers connected", clients)
        yield CounterMetricFamily("rongxin_ws_dropped", "WebSocket subscribers dropped as too slow", value=dropped)
        yield CounterMetricFamily("rongxin_ws_items", "Items queued to WebSocket subscribers", value=items)
        firing = GaugeMetricFamily("rongxin_alerts_firing", "Alerts of this node's own rules now firing",
                                   labels=["alertname"])
        for name, n in sorted(src.alerts().items()):
            firing.add_metric([name], n)
        yield firing
        refused = CounterMetricFamily("rongxin_auth_refused", "Signed requests refused, by code", labels=["code"])
        for code, n in sorted(src.refused().items()):
            refused.add_metric([code], n)
        yield refused
        revoked = CounterMetricFamily("rongxin_revoked_identity_attempts", "Signed requests and peer links "
                                      "refused because the identity is revoked, by kind (certificate, user, node)",
                                      labels=["kind"])
        for kind, n in sorted(src.revoked().items()):
            revoked.add_metric([kind], n)
        yield revoked
        yield CounterMetricFamily("rongxin_rate_limited", "Requests answered 429 by the rate limits",
                                  value=src.limited())
        deliveries = CounterMetricFamily("rongxin_alert_deliveries", "Alert and report deliveries by channel "
                                         "and result", labels=["channel", "result"])
        for (channel, result), n in sorted(src.deliveries().items()):
            deliveries.add_metric([channel, result], n)
        yield deliveries
        yield _gauge("rongxin_ready", "1 when /readyz answers 200", 1.0 if src.ready() else 0.0)
        if src.info:
            yield _gauge("rongxin_node_info", "This node (always 1)", 1.0, dict(src.info))

    def _disk(self) -> Iterator[Metric]:
        folder = self.m.sources.node_folder
        if folder is None:
            return
        db = folder / "db"
        yield _gauge("rongxin_store_bytes", "Bytes of the node's store (blocks and state)",
                     folder_bytes(db) if db.exists() else 0)
        try:
            du = shutil.disk_usage(folder)
        except OSError:
            return
        yield _gauge("rongxin_disk_free_bytes", "Free bytes on the file system of the node's folder", du.free)
        yield _gauge("rongxin_disk_size_bytes", "Size of the file system of the node's folder", du.total)


class ApiTimer:
    """ASGI middleware: the duration of every HTTP request by route template (``/v1/blocks/{height}``,
    never the raw path: bounded label values)."""

    def __init__(self, app: ASGIApp, metrics: Callable[[], NodeMetrics | None]) -> None:
        self.app, self.metrics = app, metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        m = self.metrics()
        if scope["type"] != "http" or m is None:
            await self.app(scope, receive, send)
            return
        t0 = time.perf_counter()
        status = 500

        async def sent(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, sent)
        finally:
            route: Any = scope.get("route")
            template = getattr(route, "path", None) or "unmatched"
            m.api.labels(scope["method"] if template != "unmatched" else "other", template,
                         str(status)).observe(time.perf_counter() - t0)
