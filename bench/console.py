"""The console's speed on a running node: each page kind's server answer (p50/p99 of plain
GETs) and the overview's load in headless Chromium (Debian's chromium through Playwright,
the flags of ../shared/DESIGN.md), with the chain height it ran at."""

from __future__ import annotations

import json
import os
import statistics
import time
import urllib.request
from typing import Any

FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
         "--disable-sync", "--no-first-run"]


def _get(url: str) -> bytes:
    with urllib.request.urlopen(url, timeout=60) as r:
        return bytes(r.read())


def _pct(xs: list[float], q: float) -> float:
    s = sorted(xs)
    return round(s[min(len(s) - 1, int(q * len(s)))] * 1000, 1)


def _pages(api: str) -> dict[str, str]:
    st = json.loads(_get(api + "/v1/status"))
    h = int(st["height"])
    out = {"overview": "/", "blocks": "/blocks", "block": f"/blocks/{h}", "txs": "/txs", "works": "/works",
           "nodes": "/nodes", "accounts": "/accounts", "search_height": f"/search?q={h}"}
    view = json.loads(_get(f"{api}/v1/blocks/{h}"))
    for k in range(h, max(h - 300, 0), -1):  # a transaction for the transaction page
        if view.get("tx_ids"):
            out["tx"] = "/txs/" + view["tx_ids"][0]
            break
        view = json.loads(_get(f"{api}/v1/blocks/{k - 1}")) if k > 1 else {}
    return out


def measure(api: str, runs: int = 20) -> dict[str, Any]:
    """Server time per page kind over ``runs`` GETs, and the overview in Chromium ``runs`` times
    (to the load event, and to network idle: the live poll waits 2 s, so idle is reached)."""
    from playwright.sync_api import sync_playwright

    api = api.rstrip("/")
    server: dict[str, dict[str, float]] = {}
    for name, path in _pages(api).items():
        times = []
        for _ in range(runs):
            t0 = time.perf_counter()
            _get(api + path)
            times.append(time.perf_counter() - t0)
        server[name] = {"p50_ms": _pct(times, 0.5), "p99_ms": _pct(times, 0.99)}
    load: list[float] = []
    idle: list[float] = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=FLAGS)
        for _ in range(runs):
            page = browser.new_page()
            t0 = time.perf_counter()
            page.goto(api + "/", wait_until="load")
            load.append(time.perf_counter() - t0)
            page.wait_for_load_state("networkidle")
            idle.append(time.perf_counter() - t0)
            page.close()
        version = browser.version
        browser.close()
    height = json.loads(_get(api + "/v1/status"))["height"]
    return {"bench": "console", "api": api, "height": height, "runs": runs, "server": server,
            "overview_chromium": {"load_p50_ms": _pct(load, 0.5), "load_max_ms": round(max(load) * 1000, 1),
                                  "networkidle_p50_ms": _pct(idle, 0.5),
                                  "mean_load_ms": round(statistics.mean(load) * 1000, 1)},
            "chromium": version, "load_average": list(os.getloadavg())}
