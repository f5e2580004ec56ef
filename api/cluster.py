"""``rongxin up`` and ``rongxin down``: a local consortium as separate OS processes.

``up`` initialises the consortium folder if it is new (CA, one supervisory node, four
consensus nodes, one full node, genesis), starts every node that is not running (liveness
is the node folder's ``flock``, never a bare pid), writes ``cluster.json`` atomically and
waits until every node's API answers. In the foreground it then waits, and Ctrl-C or
SIGTERM stops the nodes cleanly; with ``--detach`` it returns. ``down`` stops them: SIGTERM
to each recorded pid whose ``/proc/PID/cmdline`` is that node's, SIGKILL after a grace time.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from ledger.crypto import CryptoError
from ledger.crypto.ca import atomic_write
from ledger.node.config import NodeConfig, attest_consortium, init_local_consortium, node_folders

from .identities import ensure_demo_identities
from .node_main import is_running
from .sdk import ClientError

ROLE_NAMES = {"supervisor": "supervisor", "consensus": "consensus", "full": "full"}


class ClusterError(Exception):
    pass


def _pid_of(folder: Path) -> int | None:
    try:
        return int((folder / "pid").read_text().strip())
    except (OSError, ValueError):
        return None


def _cmdline_is_node(pid: int, folder: Path) -> bool:
    try:
        cmd = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return False
    return b"api.node_main" in cmd and str(folder).encode() in cmd


def start_node(folder: Path, detach: bool) -> subprocess.Popen[bytes]:
    log = open(folder / "node.log", "ab")  # handed to the child
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    return subprocess.Popen([sys.executable, "-m", "api.node_main", str(folder.resolve())],
                            stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                            start_new_session=detach, env=env, close_fds=True)


def api_ok(url: str, timeout: float = 2.0, *, node_id: str | None = None, genesis: str | None = None) -> bool:
    """The API at ``url`` answers its status (and, when given, as node ``node_id`` of the chain
    whose genesis hash is ``genesis``: another consortium's node on the same port is not ours)."""
    try:
        with urllib.request.urlopen(url + "/v1/status", timeout=timeout) as r:  # noqa: S310 - our own loopback API
            if r.status != 200:
                return False
            if node_id is None and genesis is None:
                return True
            st = json.loads(r.read(1 << 20))
    except (urllib.error.URLError, OSError, ValueError):
        return False
    return isinstance(st, dict) and (node_id is None or st.get("node_id") == node_id) and (
        genesis is None or st.get("genesis") == genesis)


def write_cluster(data: Path) -> dict[str, Any]:
    nodes = []
    for folder in node_folders(data):
        cfg = NodeConfig.load(folder)
        nodes.append({"id": cfg.id, "role": ROLE_NAMES[cfg.role], "pid": _pid_of(folder) if is_running(folder) else None,
                      "api": cfg.api_url(), "data": str(folder.resolve()),
                      **({"api_tls": cfg.api_tls_url()} if cfg.api_tls is not None else {})})
    doc = {"nodes": nodes}
    atomic_write(data / "cluster.json", json.dumps(doc, indent=2).encode())
    return doc


def up(data: Path, *, detach: bool, wait: float = 120.0, echo: Any = print, base_port: int = 26600) -> int:
    data = data.resolve() if data.exists() else data
    if not (data / "genesis.json").exists():
        echo(f"initialising a new local consortium in {data}")
        init_local_consortium(data, base_port=base_port)
        data = data.resolve()
    elif attest_consortium(data) is not None:  # a folder made before genesis attestations (ConfigError: exit 2)
        echo(f"the consortium root attested the genesis: {data / 'genesis.attestation.json'}")
    started: dict[str, subprocess.Popen[bytes]] = {}
    for folder in node_folders(data):
        if is_running(folder):
            continue
        started[folder.name] = start_node(folder, detach)
    children = list(started.values())
    deadline = time.monotonic() + wait
    pending = {f.name: NodeConfig.load(f) for f in node_folders(data)}
    genesis = str(json.loads((data / "genesis.json").read_text())["hash"])
    while pending and time.monotonic() < deadline:
        for nid, cfg in list(pending.items()):
            if api_ok(cfg.api_url(), node_id=cfg.id, genesis=genesis):
                del pending[nid]
        if any(nid in started and started[nid].poll() is not None for nid in pending):
            break  # a node we started exited (e.g. its port is held by another process): its log says why
        time.sleep(0.3)
    doc = write_cluster(data)
    if pending:
        tails = []
        for nid in pending:
            log = (data / "nodes" / nid / "node.log")
            text = log.read_text(errors="replace").strip().splitlines()[-3:] if log.exists() else []
            tails.append(f"{nid}: {' | '.join(text) or 'no log'}")
        raise ClusterError("nodes did not come up (exited, or did not answer in time as this consortium's node): " + "; ".join(tails))
    for n in doc["nodes"]:
        echo(f"{n['id']:6} {n['role']:10} pid {n['pid']}  {n['api']}")
    try:
        idents = ensure_demo_identities(data, [str(n["api"]) for n in doc["nodes"]])
    except (ClientError, CryptoError, OSError, ValueError, KeyError) as exc:
        raise ClusterError(f"the demo identities could not be set up: {exc}") from None
    echo(f"identities in {data / 'identities'}: " + ", ".join(f"{i['name']} ({i['business']})" for i in idents))
    for i in idents:  # the folders a user passes as --as (key.pem + cert.pem), one per role
        echo(f"  {i['name']:9} --as {i['dir']}")
    echo(f"consortium root certificate: {data / 'ca' / 'root.crt.pem'}")
    first = next((n for n in doc["nodes"] if n["role"] == "supervisor"), doc["nodes"][0])
    echo(f"console: {first['api']}/  (open it in a browser; every node serves it)")
    if detach:
        return 0
    echo("consortium running; Ctrl-C stops it")
    stop = {"now": False}

    def on_signal(_sig: int, _frame: object) -> None:
        stop["now"] = True

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    while not stop["now"] and any(c.poll() is None for c in children):
        time.sleep(0.3)
    down(data, echo=lambda *_: None)  # (Ctrl-C in a terminal reaches the nodes too; down stops the rest)
    echo(f"consortium stopped; `rongxin up --data {data}` resumes the same chain")
    return 0


def down(data: Path, *, grace: float = 20.0, echo: Any = print) -> int:
    if not (data / "genesis.json").exists():
        raise ClusterError(f"{data} holds no consortium")
    targets = []
    for folder in node_folders(data):
        pid = _pid_of(folder)
        if is_running(folder) and pid is not None and _cmdline_is_node(pid, folder.resolve()):
            os.kill(pid, signal.SIGTERM)
            targets.append((folder, pid))
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline and any(is_running(f) for f, _ in targets):
        time.sleep(0.2)
    for folder, pid in targets:
        if is_running(folder) and _cmdline_is_node(pid, folder.resolve()):
            os.kill(pid, signal.SIGKILL)
    # reap our own children if any (zombies would otherwise linger in this process)
    for _ in targets:
        try:
            os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            break
    write_cluster(data)
    echo(f"stopped {len(targets)} nodes")
    return 0
