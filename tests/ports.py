"""Ports for the test's own servers and nodes, picked before they bind.

A port the kernel picks (bind to port 0) lies in its ephemeral range, and the server that is to
use it binds it only later (a node process seconds later): meanwhile any outgoing connection on
the machine — the nodes' own, to each other — can be given it as its local port, and the server
then fails with "address already in use" (seen once, on a fresh clone under load). A port
outside that range is never handed out that way; ports already picked by this process are not
picked again."""

from __future__ import annotations

import secrets
import socket
from pathlib import Path

_PICKED: set[int] = set()


def _ephemeral() -> tuple[int, int]:
    try:
        low, high = (int(v) for v in Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[:2])
        return low, high
    except (OSError, ValueError):
        return 32768, 60999  # Linux's default


def free_port(host: str = "127.0.0.1") -> int:
    """A port free on ``host`` now, outside the ephemeral range where the range leaves at least
    100 ports outside it (from 10 000 up), else one the kernel picks."""
    fam = socket.AF_INET6 if ":" in host else socket.AF_INET
    low, high = _ephemeral()
    outside = [r for r in (range(10_000, low), range(high + 1, 65_536)) if len(r) >= 100]
    for _ in range(200 if outside else 0):
        r = outside[secrets.randbelow(len(outside))]
        port = r[secrets.randbelow(len(r))]
        if port in _PICKED:
            continue
        with socket.socket(fam) as s:
            try:
                s.bind((host, port))
            except OSError:
                continue
        _PICKED.add(port)
        return port
    with socket.socket(fam) as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])
