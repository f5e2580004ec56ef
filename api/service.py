"""The node's service layer around the API (docs/operations.md): subscriptions (``/v1/ws``),
metrics, health and readiness, alerts, rate limits and the state of a graceful shutdown.

``create_app`` makes one ``Service`` per app (``app.state.service``); a node process
(``api.node_run``) gives it the node's folder, peers and settings, starts it once the node
runs and stops it, after the HTTP servers have finished their requests, before the store
closes.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from ledger.governance.base import K_MISSED
from ledger.governance.base import get as gov_get
from ledger.node.intake import TxIntake
from ledger.node.runtime import Node
from ledger.node.sync import SYNC_GAP

from .alerts import AlertEngine, Probe
from .auth import Authenticator
from .metrics import NodeMetrics, Sources
from .notify import Notifier
from .operations import Operations
from .ratelimit import RateLimits, TokenBuckets
from .subscriptions import Hub


class Service:
    def __init__(self, node: Node, *, ops: Operations, auth: Authenticator, intake: TxIntake,
                 status: Callable[[], dict[str, Any]], online: Callable[[], Iterable[str]],
                 peers: Iterable[str] = (), folder: Path | None = None, consortium: Path | None = None,
                 info: dict[str, str] | None = None) -> None:
        self.node, self.ops, self.folder = node, ops, folder
        self.online = online
        self.peers = set(peers)
        self.serving = folder is None  # a node process says when it serves (after start)
        self.stopping = False
        lim = ops.limits
        self.limits = RateLimits(TokenBuckets(lim.identity_rate, lim.identity_burst) if lim.identity_rate > 0 else None,
                                 TokenBuckets(lim.address_rate, lim.address_burst) if lim.address_rate > 0 else None)
        auth.limit = self.limits.charge_identity
        self.auth = auth
        self.hub = Hub(node, status, max_clients=ops.service.ws_max_clients)
        self.metrics = NodeMetrics(node, Sources(
            node_folder=folder, consortium=consortium, peers_online=online, peers_configured=lambda: self.peers,
            intake_pending=lambda: (intake.pending, intake.max_pending),
            ws=lambda: (len(self.hub.clients), self.hub.dropped, self.hub.delivered),
            alerts=lambda: self.alerts.counts(), ready=lambda: self.ready()[0], refused=lambda: dict(auth.refused),
            revoked=lambda: dict(auth.revoked_counts),
            limited=lambda: self.limits.refused, deliveries=lambda: dict(self.alerts.notifier.results),
            info=info or {}))
        self.hub.on_delivered = self.metrics.ws_fanout.observe
        self.hub.on_sent = self.metrics.ws_delivery.observe
        a = ops.alerts
        self.alerts = AlertEngine(a, self.probe, Notifier(a.webhooks, a.smtp, a.external_url))
        previous = node.on_commit

        def committed(block: Any) -> None:
            if previous is not None:
                previous(block)
            self.metrics.committed(block)
            self.hub.committed(block)

        node.on_commit = committed

    def probe(self) -> Probe:
        node = self.node
        du = shutil.disk_usage(self.folder) if self.folder is not None else None
        missed = gov_get(node.app.read, K_MISSED) if node.app.governance is not None else None
        vids = {v.id for v in node.vset.validators}
        return Probe(node_id=node.id, chain=node.chain, height=node.app.chain.head,
                     last_commit=self.metrics.last_commit, peers_configured=set(self.peers),
                     peers_online=set(self.online()),
                     missed_turns={k: int(v) for k, v in (missed or {}).items() if k in vids},
                     disk_free=du.free if du else 0, disk_size=du.total if du else 0,
                     certificates=self.metrics.certs.expiries(), revoked_tries=dict(self.auth.revoked_tries),
                     counters=dict(self.metrics.totals))

    def ready(self) -> tuple[bool, dict[str, Any]]:
        """(ready, the checks): serving and not stopping, in step with the peers, linked to one."""
        node = self.node
        head = node.app.chain.head
        ahead = node.sync.peers_ahead()
        lag = max(0, ahead - head)
        online = set(self.online())
        checks = {"serving": self.serving and not self.stopping, "height": head, "peers_highest": ahead,
                  "lag": lag, "synced": lag <= max(self.ops.service.ready_max_lag, SYNC_GAP),
                  "peers_online": len(online & self.peers) if self.peers else len(online),
                  "peers_configured": len(self.peers)}
        linked = not self.peers or checks["peers_online"] > 0
        checks["linked"] = linked
        return bool(checks["serving"] and checks["synced"] and linked), checks

    def start(self) -> None:
        """On the node's event loop, once the node runs."""
        self.hub.start()
        self.alerts.start()
        self.serving = True

    def begin_shutdown(self) -> None:
        """SIGTERM: /readyz turns 503, subscribers are told the node is going away (1001)."""
        self.stopping = True
        self.hub.closing = True
        for c in list(self.hub.clients):
            self.hub.drop(c, "the node is shutting down")

    async def stop(self) -> None:
        await self.hub.stop()
        await self.alerts.stop()
