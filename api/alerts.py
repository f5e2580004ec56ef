"""Alert rules the node evaluates itself (REQUIREMENTS L11; docs/operations.md §3).

Every ``evaluate_every_s`` the engine reads a ``Probe`` (facts the node already has: peers,
last commit, missed turns on chain, disk, certificates, revoked identities still trying),
works out which rule instances hold, and notifies as Alertmanager does: an instance that
starts holding fires, one still holding is re-sent every ``repeat_every_s``, one that stops
holding is resolved. Once a day at ``report_at`` (UTC) it mails a report. The same rules, for
operators who run Prometheus and Alertmanager, are in ``deploy/prometheus/rongxin-rules.yml``.
"""

from __future__ import annotations

import asyncio
import collections
import datetime as dt
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ledger.crypto import sm3

from .notify import Notifier, rfc3339
from .operations import Alerts

log = logging.getLogger("rongxin.alerts")

SEVERITY = {"RongxinNodeDown": "critical", "RongxinChainStalled": "critical",
            "RongxinValidatorMissingTurns": "warning", "RongxinDiskNearlyFull": "warning",
            "RongxinCertificateExpiring": "warning", "RongxinRevokedIdentityActive": "warning"}
RULES = tuple(SEVERITY)


@dataclass
class Probe:
    """What the rules read, as the node sees it now."""

    node_id: str
    chain: str
    height: int
    last_commit: float  # unix time of the last commit (or of the node's start)
    peers_configured: set[str]
    peers_online: set[str]
    missed_turns: dict[str, int]  # validator -> leader turns missed in a row (on chain)
    disk_free: int
    disk_size: int
    certificates: dict[str, dt.datetime]  # name -> not after
    revoked_tries: dict[tuple[str, str], tuple[int, float, float]]  # (kind, who) -> (count, first, last)
    counters: dict[str, float] = field(default_factory=dict)  # blocks, txs committed since start


@dataclass
class Firing:
    labels: dict[str, str]
    annotations: dict[str, str]
    starts: float
    sent: float = 0.0


def _fingerprint(labels: dict[str, str]) -> str:
    return sm3("\n".join(f"{k}={v}" for k, v in sorted(labels.items())).encode()).hex()[:16]


class AlertEngine:
    def __init__(self, cfg: Alerts, probe: Callable[[], Probe], notifier: Notifier,
                 clock: Callable[[], float] = time.time) -> None:
        self.cfg, self.probe, self.notifier, self.clock = cfg, probe, notifier, clock
        self.firing: dict[str, Firing] = {}
        self.offline_since: dict[str, float] = {}
        self.history: collections.deque[dict[str, Any]] = collections.deque(maxlen=1000)  # fired and resolved
        self.last_report: str | None = None  # the UTC date of the last daily report
        self.started = clock()
        self.report_base: dict[str, float] = {}
        self._task: asyncio.Task[None] | None = None

    # ------------------------------------------------------------ rules
    def conditions(self, p: Probe, now: float) -> dict[str, tuple[dict[str, str], str, str]]:
        """The rule instances that hold now: fingerprint -> (labels, summary, description)."""
        c = self.cfg
        out: dict[str, tuple[dict[str, str], str, str]] = {}

        def hold(name: str, extra: dict[str, str], summary: str, description: str) -> None:
            labels = {"alertname": name, "severity": SEVERITY[name], "node": p.node_id, "chain": p.chain, **extra}
            out[_fingerprint(labels)] = (labels, summary, description)

        for peer in sorted(p.peers_configured):
            if peer in p.peers_online:
                self.offline_since.pop(peer, None)
                continue
            since = self.offline_since.setdefault(peer, now)
            if now - since >= c.node_down_after_s:
                hold("RongxinNodeDown", {"peer": peer}, f"node {peer} is down",
                     f"{p.node_id} has had no link with {peer} for {int(now - since)} s")
        idle = now - p.last_commit
        if idle >= c.stall_after_s:
            hold("RongxinChainStalled", {}, "the chain is stalled",
                 f"no block committed on {p.node_id} for {int(idle)} s (height {p.height})")
        for vid, n in sorted(p.missed_turns.items()):
            if n >= c.missed_turns:
                hold("RongxinValidatorMissingTurns", {"validator": vid}, f"validator {vid} is missing its turns",
                     f"{vid} missed {n} leader turns in a row (the chain evicts at its missed_turns_limit)")
        if p.disk_size > 0 and p.disk_free / p.disk_size < c.disk_free_ratio:
            hold("RongxinDiskNearlyFull", {}, "the node's disk is nearly full",
                 f"{p.disk_free} of {p.disk_size} bytes free ({100 * p.disk_free / p.disk_size:.1f} %, below "
                 f"{100 * c.disk_free_ratio:.0f} %)")
        for name, when in sorted(p.certificates.items()):
            left = when.timestamp() - now
            if left < c.cert_expiry_days * 86400:
                hold("RongxinCertificateExpiring", {"certificate": name},
                     f"certificate {name} {'has expired' if left < 0 else 'expires soon'}",
                     f"{name} is valid until {when.isoformat()} ({left / 86400:.1f} days from now)")
        for (kind, who), (n, _first, last) in sorted(p.revoked_tries.items()):
            if now - last <= c.revoked_window_s:
                hold("RongxinRevokedIdentityActive", {"kind": kind, "identity": who},
                     f"revoked {kind} {who} is still trying",
                     f"{n} attempts refused since it was revoked, the last at {rfc3339(last)}")
        return out

    # ------------------------------------------------------------ evaluation
    def evaluate(self) -> list[dict[str, Any]]:
        """One round: notify what fired, repeats and resolved; returns those alerts."""
        now = self.clock()
        p = self.probe()
        holding = self.conditions(p, now)
        changed: list[dict[str, Any]] = []
        for fp, (labels, summary, description) in holding.items():
            f = self.firing.get(fp)
            if f is None:
                f = self.firing[fp] = Firing(labels, {"summary": summary, "description": description}, now)
                log.warning("alert %s firing: %s", labels["alertname"], description)
                self.history.append(self._wire(fp, f, "firing", None))
            f.annotations["description"] = description
            if f.sent == 0.0 or now - f.sent >= self.cfg.repeat_every_s:
                f.sent = now
                changed.append(self._wire(fp, f, "firing", None))
        for fp in [fp for fp in self.firing if fp not in holding]:
            f = self.firing.pop(fp)
            log.info("alert %s resolved", f.labels["alertname"])
            wire = self._wire(fp, f, "resolved", now)
            self.history.append(wire)
            changed.append(wire)
        self.notifier.alerts(changed)
        self._maybe_report(p, now)
        return changed

    @staticmethod
    def _wire(fp: str, f: Firing, status: str, ends: float | None) -> dict[str, Any]:
        return {"status": status, "labels": dict(f.labels), "annotations": dict(f.annotations),
                "startsAt": rfc3339(f.starts), "endsAt": rfc3339(ends), "fingerprint": fp}

    def counts(self) -> dict[str, int]:
        out = dict.fromkeys(RULES, 0)
        for f in self.firing.values():
            out[f.labels["alertname"]] += 1
        return out

    def view(self) -> dict[str, Any]:
        """``GET /v1/alerts``: what fires now and the latest changes (newest first)."""
        return {"firing": [self._wire(fp, f, "firing", None) for fp, f in sorted(self.firing.items())],
                "recent": list(reversed(self.history))[:100], "rules": list(RULES)}

    # ------------------------------------------------------------ daily report
    def _maybe_report(self, p: Probe, now: float) -> None:
        at = self.cfg.report_at
        if not at:
            return
        today = dt.datetime.fromtimestamp(now, tz=dt.UTC)
        hh, mm = (int(x) for x in at.split(":"))
        due = today.replace(hour=hh, minute=mm, second=0, microsecond=0)
        date = today.date().isoformat()
        if self.last_report is None:  # a node that starts after today's time waits for tomorrow's
            self.last_report = date if now >= due.timestamp() else (today.date() - dt.timedelta(days=1)).isoformat()
            self.report_base = dict(p.counters)
            return
        if now >= due.timestamp() and self.last_report != date:
            self.last_report = date
            subject, body = self.report(p, now)
            self.notifier.report(subject, body)
            self.report_base = dict(p.counters)

    def report(self, p: Probe, now: float) -> tuple[str, str]:
        """The daily report's subject and text."""
        since = {k: v - self.report_base.get(k, 0) for k, v in p.counters.items()}
        day_ago = now - 86400
        fired = [h for h in self.history if h["status"] == "firing"
                 and dt.datetime.fromisoformat(h["startsAt"].replace("Z", "+00:00")).timestamp() >= day_ago]
        lines = [f"Rongxin daily report of node {p.node_id} (chain {p.chain}), {rfc3339(now)}", "",
                 f"height: {p.height}",
                 f"blocks committed since the last report: {int(since.get('blocks', 0))}",
                 f"transactions committed since the last report: {int(since.get('txs', 0))}",
                 f"peers online: {len(p.peers_online & p.peers_configured)} of {len(p.peers_configured)}"
                 + (f" (down: {', '.join(sorted(p.peers_configured - p.peers_online))})"
                    if p.peers_configured - p.peers_online else ""),
                 f"disk: {p.disk_free} of {p.disk_size} bytes free", "",
                 "missed leader turns in a row: " + (", ".join(f"{v}={n}" for v, n in sorted(p.missed_turns.items()))
                                                    or "none"),
                 "certificates: " + ", ".join(f"{n} until {w.date().isoformat()}"
                                              for n, w in sorted(p.certificates.items())), "",
                 f"alerts firing now: {len(self.firing)}"]
        lines += [f"- {f.labels['alertname']}: {f.annotations['description']}" for f in self.firing.values()]
        lines.append(f"alerts fired in the last 24 h: {len(fired)}")
        lines += [f"- {h['startsAt']} {h['labels']['alertname']}: {h['annotations']['description']}" for h in fired]
        date = dt.datetime.fromtimestamp(now, tz=dt.UTC).date().isoformat()
        return f"[rongxin] daily report {p.node_id} {date}", "\n".join(lines) + "\n"

    # ------------------------------------------------------------ life cycle
    def start(self) -> None:
        self.notifier.start()
        self._task = asyncio.get_running_loop().create_task(self._run(), name="alerts")

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self.cfg.evaluate_every_s)
            try:
                self.evaluate()
            except Exception:  # a rule's bug must not end alerting: logged, the next round runs
                log.exception("alert evaluation failed")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass
        await self.notifier.stop()
