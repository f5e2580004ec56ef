"""The node's alert rules and deliveries without a node: each rule fires on its condition and
resolves when it stops holding, notifications reach a real webhook receiver (Alertmanager's
payload) and a real SMTP server on loopback, repeats wait ``repeat_every_s``, the daily report
is mailed once a day at its time, and ``operations.toml`` refuses what it does not know. The
shipped Prometheus rules pass ``promtool`` and name the same alerts."""

from __future__ import annotations

import asyncio
import datetime as dt
import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from api import operations
from api.alerts import RULES, AlertEngine, Probe
from api.notify import Notifier
from api.operations import Alerts, Smtp, Webhook
from ledger.node.config import ConfigError

from .service_kit import MailSink, WebhookReceiver

ROOT = Path(__file__).resolve().parents[2]
DAY = 86400.0
T0 = dt.datetime(2026, 12, 5, 7, 0, tzinfo=dt.UTC).timestamp()


@pytest.fixture(scope="module")
def receivers() -> Iterator[tuple[WebhookReceiver, MailSink]]:
    hook, mail = WebhookReceiver(), MailSink()
    try:
        yield hook, mail
    finally:
        hook.close()
        mail.close()


def _probe(**kw: Any) -> Probe:
    base: dict[str, Any] = dict(
        node_id="val1", chain="c1", height=10, last_commit=T0, peers_configured={"val2", "val3"},
        peers_online={"val2", "val3"}, missed_turns={"val2": 0}, disk_free=50, disk_size=100,
        certificates={"node-sm2": dt.datetime.fromtimestamp(T0 + 400 * DAY, tz=dt.UTC)}, revoked_tries={},
        counters={"blocks": 5, "txs": 7})
    base.update(kw)
    return Probe(**base)


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> float:
        return self.now


def _run(engine: AlertEngine, clock: Clock, probe: list[Probe], when: float, state: Probe) -> list[dict[str, Any]]:
    clock.now = when
    probe[0] = state
    return engine.evaluate()


def test_every_rule_fires_on_its_condition_and_resolves(receivers: tuple[WebhookReceiver, MailSink]) -> None:
    hook, mail = receivers
    before_posts, before_mail = len(hook.posts), len(mail.messages)
    cfg = Alerts(node_down_after_s=60, stall_after_s=180, missed_turns=3, disk_free_ratio=0.1, cert_expiry_days=30,
                 revoked_window_s=86400, repeat_every_s=3600, report_at="", external_url="http://val1.example/",
                 webhooks=(Webhook(hook.url),), smtp=Smtp(host="127.0.0.1", port=mail.port, to=("ops@example.org",),
                                                           sender="rongxin@val1.example"))
    clock, probe = Clock(), [_probe()]
    notifier = Notifier(cfg.webhooks, cfg.smtp, cfg.external_url)
    engine = AlertEngine(cfg, lambda: probe[0], notifier, clock=clock)

    async def scenario() -> list[list[dict[str, Any]]]:
        notifier.start()
        rounds = [_run(engine, clock, probe, T0, _probe())]
        bad = _probe(peers_online={"val3"}, missed_turns={"val2": 5}, disk_free=5, last_commit=T0,
                     certificates={"node-sm2": dt.datetime.fromtimestamp(T0 + 10 * DAY, tz=dt.UTC)},
                     revoked_tries={("user", "ab" * 20): (3, T0, T0 + 50)})
        rounds.append(_run(engine, clock, probe, T0 + 30, bad))  # val2 down for 0 s: not yet
        rounds.append(_run(engine, clock, probe, T0 + 200, bad))  # now all of them
        rounds.append(_run(engine, clock, probe, T0 + 260, bad))  # still: no repeat before an hour
        rounds.append(_run(engine, clock, probe, T0 + 4000, bad))  # repeated after an hour
        rounds.append(_run(engine, clock, probe, T0 + 4100, _probe(last_commit=T0 + 4090)))  # all resolved
        await notifier.stop(flush_s=30)
        return rounds

    rounds = asyncio.run(scenario())
    assert rounds[0] == []
    assert {a["labels"]["alertname"] for a in rounds[1]} == {"RongxinValidatorMissingTurns", "RongxinDiskNearlyFull",
                                                             "RongxinCertificateExpiring",
                                                             "RongxinRevokedIdentityActive"}
    fired = {a["labels"]["alertname"]: a for a in rounds[2]}
    assert set(fired) == {"RongxinNodeDown", "RongxinChainStalled"}  # the others were sent already
    assert fired["RongxinNodeDown"]["labels"]["peer"] == "val2" and fired["RongxinNodeDown"]["status"] == "firing"
    assert rounds[3] == []
    assert len(rounds[4]) == 6 and all(a["status"] == "firing" for a in rounds[4])
    assert len(rounds[5]) == 6 and all(a["status"] == "resolved" for a in rounds[5])
    assert set(RULES) == {a["labels"]["alertname"] for a in rounds[5]}
    # the receivers got each round's notification: Alertmanager's webhook body, and a mail
    posts = hook.posts[before_posts:]
    assert [len(p["json"]["alerts"]) for p in posts] == [4, 2, 6, 6]
    body = posts[1]["json"]
    assert body["version"] == "4" and body["status"] == "firing" and body["receiver"] == "rongxin"
    assert body["externalURL"] == "http://val1.example/" and body["commonLabels"]["node"] == "val1"
    a = body["alerts"][0]
    assert set(a) >= {"status", "labels", "annotations", "startsAt", "endsAt", "generatorURL", "fingerprint"}
    assert a["endsAt"] == "0001-01-01T00:00:00Z" and re.fullmatch(r"[0-9a-f]{16}", a["fingerprint"])
    assert posts[3]["json"]["status"] == "resolved" and all(x["endsAt"] != "0001-01-01T00:00:00Z"
                                                            for x in posts[3]["json"]["alerts"])
    mails = mail.messages[before_mail:]
    assert len(mails) == 4
    assert mails[1]["Subject"].startswith("[FIRING:2]") and "RongxinNodeDown" in mails[1]["Subject"]
    assert "node val2 is down" in mails[1].get_content() and mails[1]["To"] == "ops@example.org"
    assert mails[3]["Subject"].startswith("[RESOLVED]")
    assert notifier.results == {("webhook", "ok"): 4, ("mail", "ok"): 4}


def test_the_daily_report_is_mailed_once_a_day_at_its_time(receivers: tuple[WebhookReceiver, MailSink]) -> None:
    _hook, mail = receivers
    before = len(mail.messages)
    cfg = Alerts(report_at="08:00", stall_after_s=10 * DAY, webhooks=(), smtp=Smtp(host="127.0.0.1", port=mail.port, to=("ops@example.org",),
                                                           sender="rongxin@val1.example"))
    clock, probe = Clock(), [_probe()]
    notifier = Notifier((), cfg.smtp)
    engine = AlertEngine(cfg, lambda: probe[0], notifier, clock=clock)

    async def scenario() -> None:
        notifier.start()
        _run(engine, clock, probe, T0, _probe())  # 07:00: the first round only notes the counters
        _run(engine, clock, probe, T0 + 1800, _probe())  # 07:30: not yet
        _run(engine, clock, probe, T0 + 3600 + 5, _probe(height=99, counters={"blocks": 40, "txs": 1007},
                                                         peers_online={"val3"}))  # 08:00:05: due
        _run(engine, clock, probe, T0 + 7200, _probe())  # 09:00: sent today already
        _run(engine, clock, probe, T0 + DAY + 3600, _probe(height=150))  # next day 08:00: due again
        await notifier.stop(flush_s=30)

    asyncio.run(scenario())
    reports = mail.messages[before:]
    assert [m["Subject"] for m in reports] == ["[rongxin] daily report val1 2026-12-05",
                                               "[rongxin] daily report val1 2026-12-06"]
    text = reports[0].get_content()
    assert "height: 99" in text and "blocks committed since the last report: 35" in text
    assert "transactions committed since the last report: 1000" in text
    assert "peers online: 1 of 2 (down: val2)" in text and "certificates: node-sm2 until" in text


def test_an_unreachable_receiver_is_counted_and_the_others_still_get_theirs(
        receivers: tuple[WebhookReceiver, MailSink]) -> None:
    hook, _mail = receivers
    before = len(hook.posts)
    notifier = Notifier((Webhook("http://127.0.0.1:9/nothing", timeout_s=2), Webhook(hook.url)), None)

    async def scenario() -> None:
        notifier.start()
        notifier.alerts([{"status": "firing", "labels": {"alertname": "RongxinChainStalled", "node": "n"},
                          "annotations": {}, "startsAt": "2026-12-05T07:00:00Z", "endsAt": "0001-01-01T00:00:00Z",
                          "fingerprint": "0" * 16}])
        await notifier.stop(flush_s=30)

    asyncio.run(scenario())
    assert len(hook.posts) == before + 1
    assert notifier.results == {("webhook", "failed"): 1, ("webhook", "ok"): 1}


def test_operations_settings_refuse_what_they_do_not_know(tmp_path: Path) -> None:
    assert operations.load(tmp_path) == operations.Operations()  # no file: the defaults
    good = ('[limits]\nidentity_rate = 5\nidentity_burst = 10\n[alerts]\nreport_at = "07:30"\n'
            '[[alerts.webhooks]]\nurl = "http://127.0.0.1:1/x"\n[alerts.smtp]\nhost = "mail"\nfrom = "a@b.example"\n'
            'to = "ops@b.example"\npassword_env = "SMTP_PASSWORD"\n')
    (tmp_path / "operations.toml").write_text(good)
    ops = operations.load(tmp_path)
    assert ops.limits.identity_rate == 5.0 and ops.alerts.smtp is not None and ops.alerts.smtp.to == ("ops@b.example",)
    for bad, says in [("[limitz]\n", "unknown section"), ("[limits]\nidentity_rate = -1\n", "must be in"),
                      ("[limits]\nidentity_rate = 'x'\n", "must be float"), ("[alerts]\nreport_at = '25:00'\n",
                                                                             "HH:MM"),
                      ("[[alerts.webhooks]]\nurl = 'file:///etc/passwd'\n", "http"),
                      ("[alerts.smtp]\nhost = 'm'\nfrom = 'a@b.example'\nto = ['nobody']\n", "e-mail"),
                      ("[alerts.smtp]\nhost = 'm'\nfrom = 'a@b.example'\nto = 'x@y.example'\npassword = 'p'\n",
                       "unknown setting"),
                      ("[logging]\nformat = 'xml'\n", "json or text"), ("not toml = = 1", "operations.toml")]:
        (tmp_path / "operations.toml").write_text(bad)
        with pytest.raises(ConfigError, match=says):
            operations.load(tmp_path)


def _prometheus_rules() -> Path:
    return ROOT / "deploy" / "prometheus" / "rongxin-rules.yml"


def test_the_prometheus_rules_pass_promtool_and_name_the_node_s_alerts() -> None:
    promtool = shutil.which("promtool")
    assert promtool, "promtool is missing: make test installs Debian's prometheus package"
    proc = subprocess.run([promtool, "check", "rules", str(_prometheus_rules())], capture_output=True, text=True,
                          timeout=60, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    names = re.findall(r"^\s*- alert: (\S+)", _prometheus_rules().read_text(), flags=re.M)
    assert set(RULES) <= set(names), set(RULES) - set(names)
    tests = ROOT / "deploy" / "prometheus" / "rongxin-rules.test.yml"
    proc = subprocess.run([promtool, "test", "rules", str(tests)], capture_output=True, text=True, timeout=60,
                          check=False, cwd=tests.parent)
    assert proc.returncode == 0, proc.stdout + proc.stderr
