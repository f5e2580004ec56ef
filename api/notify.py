"""Deliveries of alerts and reports (docs/operations.md §3): webhooks that receive
Alertmanager's webhook payload (version 4), and e-mail over SMTP.

Every delivery runs in a worker thread, one at a time, fed by a bounded queue: a slow or
unreachable receiver delays only later deliveries, never the node's event loop, and past
``MAX_QUEUED`` waiting deliveries the oldest is dropped (and counted). The SMTP password is
read from the environment variable the settings name, when a delivery needs it; it is never
logged or kept in the settings.
"""

from __future__ import annotations

import asyncio
import collections
import datetime as dt
import json
import logging
import os
import smtplib
import ssl
import urllib.error
import urllib.request
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from typing import Any

from .operations import Smtp, Webhook

log = logging.getLogger("rongxin.alerts")

MAX_QUEUED = 100
ZERO_TIME = "0001-01-01T00:00:00Z"  # Alertmanager's "no end" time


def rfc3339(t: float | None) -> str:
    if t is None:
        return ZERO_TIME
    return dt.datetime.fromtimestamp(t, tz=dt.UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def webhook_payload(alerts: list[dict[str, Any]], *, external_url: str, receiver: str = "rongxin") -> dict[str, Any]:
    """Alertmanager's webhook body for ``alerts`` (each ``{status, labels, annotations,
    startsAt, endsAt, fingerprint}``): receivers written for Alertmanager read it as is."""
    common = dict(alerts[0]["labels"]) if alerts else {}
    for a in alerts[1:]:
        common = {k: v for k, v in common.items() if a["labels"].get(k) == v}
    common_ann = dict(alerts[0]["annotations"]) if alerts else {}
    for a in alerts[1:]:
        common_ann = {k: v for k, v in common_ann.items() if a["annotations"].get(k) == v}
    status = "firing" if any(a["status"] == "firing" for a in alerts) else "resolved"
    group = {k: common[k] for k in ("alertname",) if k in common}
    return {"version": "4", "groupKey": "{}:{" + ",".join(f'{k}="{v}"' for k, v in sorted(group.items())) + "}",
            "truncatedAlerts": 0, "status": status, "receiver": receiver, "groupLabels": group,
            "commonLabels": common, "commonAnnotations": common_ann, "externalURL": external_url,
            "alerts": [dict(a, generatorURL=external_url) for a in alerts]}


def mail_text(alerts: list[dict[str, Any]]) -> tuple[str, str]:
    """Subject and plain-text body of an alert e-mail."""
    firing = [a for a in alerts if a["status"] == "firing"]
    resolved = [a for a in alerts if a["status"] == "resolved"]
    node = alerts[0]["labels"].get("node", "?") if alerts else "?"
    names = sorted({a["labels"]["alertname"] for a in alerts})
    head = f"[{'FIRING:' + str(len(firing)) if firing else 'RESOLVED'}] {', '.join(names)} on {node}"
    lines = []
    for title, group in (("Firing", firing), ("Resolved", resolved)):
        if group:
            lines.append(f"{title}:")
            for a in group:
                labels = ", ".join(f"{k}={v}" for k, v in sorted(a["labels"].items()))
                lines.append(f"- {a['annotations'].get('summary', '')}")
                lines.append(f"  {a['annotations'].get('description', '')}")
                lines.append(f"  labels: {labels}; since {a['startsAt']}"
                             + (f", until {a['endsAt']}" if a["status"] == "resolved" else ""))
            lines.append("")
    return head, "\n".join(lines)


def send_webhook(hook: Webhook, payload: dict[str, Any]) -> None:
    data = json.dumps(payload, ensure_ascii=False).encode()
    req = urllib.request.Request(hook.url, data=data, method="POST",  # noqa: S310 - http(s) only, checked in settings
                                 headers={"Content-Type": "application/json", "User-Agent": "rongxin-alerts/1"})
    with urllib.request.urlopen(req, timeout=hook.timeout_s) as r:  # noqa: S310
        r.read(1 << 16)
        if not 200 <= r.status < 300:
            raise OSError(f"answered {r.status}")


def send_mail(cfg: Smtp, subject: str, body: str) -> None:
    msg = EmailMessage()
    msg["Subject"], msg["From"], msg["To"] = subject, cfg.sender, ", ".join(cfg.to)
    msg["Date"], msg["Message-ID"] = formatdate(usegmt=True), make_msgid(domain=cfg.sender.split("@", 1)[1])
    msg.set_content(body)
    password = os.environ.get(cfg.password_env, "") if cfg.password_env else ""
    ctx = ssl.create_default_context()
    smtp: smtplib.SMTP = (smtplib.SMTP_SSL(cfg.host, cfg.port, timeout=cfg.timeout_s, context=ctx) if cfg.ssl
                          else smtplib.SMTP(cfg.host, cfg.port, timeout=cfg.timeout_s))
    with smtp:
        if cfg.starttls and not cfg.ssl:
            smtp.starttls(context=ctx)
        if cfg.username:
            smtp.login(cfg.username, password)
        smtp.send_message(msg)


class Notifier:
    """The configured receivers and the queue of deliveries to them."""

    def __init__(self, webhooks: tuple[Webhook, ...], smtp: Smtp | None, external_url: str = "") -> None:
        self.webhooks, self.smtp, self.external_url = webhooks, smtp, external_url
        self.queue: collections.deque[tuple[str, Any]] = collections.deque()
        self.results: dict[tuple[str, str], int] = {}  # (channel, ok|failed|dropped) -> count
        self._wake: asyncio.Event | None = None
        self._task: asyncio.Task[None] | None = None

    @property
    def configured(self) -> bool:
        return bool(self.webhooks) or self.smtp is not None

    def _count(self, channel: str, result: str) -> None:
        self.results[(channel, result)] = self.results.get((channel, result), 0) + 1

    def start(self) -> None:
        self._wake = asyncio.Event()
        self._task = asyncio.get_running_loop().create_task(self._run(), name="alert-deliveries")

    async def stop(self, flush_s: float = 5.0) -> None:
        """Deliver what is queued (for at most ``flush_s``), then stop."""
        if self._task is None:
            return
        deadline = asyncio.get_running_loop().time() + flush_s
        while self.queue and asyncio.get_running_loop().time() < deadline:
            await asyncio.sleep(0.05)
        self._task.cancel()
        try:
            await self._task
        except asyncio.CancelledError:
            pass

    def alerts(self, alerts: list[dict[str, Any]]) -> None:
        """Queue the notification of changed alerts to every receiver."""
        if not alerts:
            return
        for hook in self.webhooks:
            self._put(("webhook", (hook, webhook_payload(alerts, external_url=self.external_url))))
        if self.smtp is not None:
            self._put(("mail", mail_text(alerts)))

    def report(self, subject: str, body: str) -> None:
        if self.smtp is not None:
            self._put(("mail", (subject, body)))

    def _put(self, item: tuple[str, Any]) -> None:
        if len(self.queue) >= MAX_QUEUED:
            dropped = self.queue.popleft()
            self._count(dropped[0], "dropped")
            log.warning("alert delivery queue full: dropped the oldest %s delivery", dropped[0])
        self.queue.append(item)
        if self._wake is not None:
            self._wake.set()

    def _deliver(self, item: tuple[str, Any]) -> None:
        kind, what = item
        if kind == "webhook":
            hook, payload = what
            send_webhook(hook, payload)
        else:
            assert self.smtp is not None
            send_mail(self.smtp, *what)

    async def _run(self) -> None:
        assert self._wake is not None
        while True:
            while not self.queue:
                self._wake.clear()
                await self._wake.wait()
            item = self.queue[0]
            try:
                await asyncio.to_thread(self._deliver, item)
                self._count(item[0], "ok")
            except (OSError, smtplib.SMTPException, urllib.error.URLError, ValueError) as exc:
                self._count(item[0], "failed")
                where = item[1][0].url if item[0] == "webhook" else f"{self.smtp.host}:{self.smtp.port}" \
                    if self.smtp else "?"
                log.warning("alert %s delivery to %s failed: %s", item[0], where, type(exc).__name__ + ": "
                            + str(exc)[:200])
            if self.queue and self.queue[0] is item:
                self.queue.popleft()
