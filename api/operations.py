"""A node's operations settings: ``NODE/operations.toml`` (optional; docs/operations.md §5).

Every setting has a default, so a node without the file runs with logs in JSON, rate limits
per identity, no alert deliveries and a 30 s shutdown grace. Unknown sections or keys, wrong
types and values out of range are refused at start (``ConfigError``) rather than ignored.
A secret (the SMTP password) is never in the file: the file names the environment variable
that holds it.
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from ledger.node.config import ConfigError

FILE = "operations.toml"
NODE_FILE = "node.toml"  # a node set up by `rongxin node init`: these sections live there (api/node_ops.py)
EMAIL_RE = re.compile(r"[^@\s<>\"]{1,64}@[A-Za-z0-9.-]{1,253}")
TIME_RE = re.compile(r"([01][0-9]|2[0-3]):[0-5][0-9]")


@dataclass(frozen=True)
class Logging:
    format: str = "json"  # json | text
    level: str = "INFO"


@dataclass(frozen=True)
class Limits:
    identity_rate: float = 50.0  # signed requests a second per identity (0: no limit)
    identity_burst: int = 200
    address_rate: float = 0.0  # unsigned requests a second per client address (0: no limit)
    address_burst: int = 400


@dataclass(frozen=True)
class Service:
    ws_max_clients: int = 2048
    shutdown_grace_s: float = 30.0
    ready_max_lag: int = 3  # blocks behind the highest peer before /readyz says not ready


@dataclass(frozen=True)
class Webhook:
    url: str
    timeout_s: float = 5.0


@dataclass(frozen=True)
class Smtp:
    host: str
    to: tuple[str, ...]
    sender: str
    port: int = 25
    starttls: bool = False
    ssl: bool = False
    username: str = ""
    password_env: str = ""
    timeout_s: float = 10.0


@dataclass(frozen=True)
class Alerts:
    evaluate_every_s: float = 15.0
    node_down_after_s: float = 120.0
    stall_after_s: float = 180.0
    missed_turns: int = 3
    disk_free_ratio: float = 0.10
    cert_expiry_days: float = 30.0
    revoked_window_s: float = 3600.0
    repeat_every_s: float = 4 * 3600.0
    report_at: str = "08:00"  # UTC; "" turns the daily report off
    external_url: str = ""
    webhooks: tuple[Webhook, ...] = ()
    smtp: Smtp | None = None


@dataclass(frozen=True)
class Operations:
    logging: Logging = field(default_factory=Logging)
    limits: Limits = field(default_factory=Limits)
    service: Service = field(default_factory=Service)
    alerts: Alerts = field(default_factory=Alerts)


RANGES: dict[str, tuple[float, float]] = {
    "identity_rate": (0, 1e6), "identity_burst": (1, 1e7), "address_rate": (0, 1e6), "address_burst": (1, 1e7),
    "ws_max_clients": (1, 100_000), "shutdown_grace_s": (0, 3600), "ready_max_lag": (0, 1e6),
    "timeout_s": (0.1, 300), "port": (1, 65535), "evaluate_every_s": (0.2, 3600),
    "node_down_after_s": (0, 1e7), "stall_after_s": (1, 1e7), "missed_turns": (1, 1e6),
    "disk_free_ratio": (0, 1), "cert_expiry_days": (0, 3650), "revoked_window_s": (1, 1e7),
    "repeat_every_s": (1, 1e8),
}


def _section(kind: type[Any], raw: Any, where: str, rename: dict[str, str] | None = None) -> Any:
    if not isinstance(raw, dict):
        raise ConfigError(f"{where} must be a table")
    rename = rename or {}
    names = {f.name: f for f in fields(kind)}
    args: dict[str, Any] = {}
    for key, value in raw.items():
        name = rename.get(key, key)
        if name not in names or name in ("webhooks", "smtp"):
            raise ConfigError(f"{where}: unknown setting {key!r}")
        default = names[name].default
        want = type(default) if not isinstance(default, tuple) else tuple
        if want is float and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
        if want is tuple:
            if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
                raise ConfigError(f"{where}.{key} must be a list of strings")
            value = tuple(value)
        elif not isinstance(value, want) or (want is int and isinstance(value, bool)):
            raise ConfigError(f"{where}.{key} must be {want.__name__}, not {type(value).__name__}")
        lo_hi = RANGES.get(name)
        if lo_hi is not None and not lo_hi[0] <= value <= lo_hi[1]:
            raise ConfigError(f"{where}.{key} must be in [{lo_hi[0]:g}, {lo_hi[1]:g}]")
        args[name] = value
    return args


def _smtp(raw: Any) -> Smtp:
    if not isinstance(raw, dict):
        raise ConfigError("alerts.smtp must be a table")
    for need in ("host", "from", "to"):
        if need not in raw:
            raise ConfigError(f"alerts.smtp needs {need!r}")
    probe = {k: v for k, v in raw.items() if k not in ("host", "from", "to")}
    args = _section(Smtp, probe, "alerts.smtp")
    host, sender, to = raw["host"], raw["from"], raw["to"]
    if not isinstance(host, str) or not host:
        raise ConfigError("alerts.smtp.host must be a host name or address")
    if isinstance(to, str):
        to = [to]
    if not isinstance(to, list) or not to or not all(isinstance(t, str) and EMAIL_RE.fullmatch(t) for t in to):
        raise ConfigError("alerts.smtp.to must be one or more e-mail addresses")
    if not isinstance(sender, str) or not EMAIL_RE.fullmatch(sender):
        raise ConfigError("alerts.smtp.from must be an e-mail address")
    return Smtp(host=host, to=tuple(to), sender=sender, **args)


def _webhook(raw: Any) -> Webhook:
    if not isinstance(raw, dict) or not isinstance(raw.get("url"), str):
        raise ConfigError("each [[alerts.webhooks]] needs a url")
    url = raw["url"]
    if not re.fullmatch(r"https?://[^\s]{1,2000}", url):
        raise ConfigError(f"alerts.webhooks url must be http:// or https://, not {url!r}")
    args = _section(Webhook, {k: v for k, v in raw.items() if k != "url"}, "alerts.webhooks")
    return Webhook(url=url, **args)


def parse(raw: dict[str, Any], name: str = FILE) -> Operations:
    unknown = sorted(set(raw) - {"logging", "limits", "service", "alerts"})
    if unknown:
        raise ConfigError(f"{name}: unknown section(s) {', '.join(unknown)}")
    logging_ = Logging(**_section(Logging, raw.get("logging", {}), "logging"))
    if logging_.format not in ("json", "text"):
        raise ConfigError("logging.format is json or text")
    if logging_.level.upper() not in ("DEBUG", "INFO", "WARNING", "ERROR"):
        raise ConfigError("logging.level is DEBUG, INFO, WARNING or ERROR")
    alerts_raw = dict(raw.get("alerts", {}))
    if not isinstance(raw.get("alerts", {}), dict):
        raise ConfigError("alerts must be a table")
    hooks = alerts_raw.pop("webhooks", [])
    smtp = alerts_raw.pop("smtp", None)
    if not isinstance(hooks, list):
        raise ConfigError("alerts.webhooks is a list of tables ([[alerts.webhooks]])")
    alerts = Alerts(**_section(Alerts, alerts_raw, "alerts"), webhooks=tuple(_webhook(h) for h in hooks),
                    smtp=_smtp(smtp) if smtp is not None else None)
    if alerts.report_at and not TIME_RE.fullmatch(alerts.report_at):
        raise ConfigError("alerts.report_at is HH:MM (UTC) or \"\"")
    return Operations(logging=logging_, limits=Limits(**_section(Limits, raw.get("limits", {}), "limits")),
                      service=Service(**_section(Service, raw.get("service", {}), "service")), alerts=alerts)


def load(folder: Path) -> Operations:
    """The settings in ``folder/operations.toml`` (defaults without the file), or in the
    operations sections of ``folder/node.toml`` for a node set up by ``rongxin node init``
    (then an ``operations.toml`` beside it is refused: one file per node)."""
    path = folder / FILE
    if (folder / NODE_FILE).is_file():
        if path.exists():
            raise ConfigError(f"{folder} has both {NODE_FILE} and {FILE}: move the settings into {NODE_FILE}")
        path = folder / NODE_FILE
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return Operations()
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: {exc}") from None
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: {exc}") from None
    if path.name == NODE_FILE:
        return parse({k: v for k, v in raw.items() if k not in ("node", "peers")}, NODE_FILE)
    return parse(raw)
