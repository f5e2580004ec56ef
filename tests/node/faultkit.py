"""Helpers for the real-process fault tests (tests/node/test_faults.py).

Nothing here imitates a node or a network: `Cluster` drives the six OS processes that
`rongxin up --detach` starts, `RoguePeer` is a real mutually authenticated TLS client holding
one consortium node's transport key, and `LinkProxy` is a real TCP relay on loopback placed on
every directed peer link (a node dials its peers through it) so a test can cut and heal links.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import socket
import ssl
import subprocess
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

from api.cluster import api_ok, start_node
from api.sdk import register_users
from ledger.crypto import SM2PrivateKey
from ledger.crypto.tls import tls_context
from ledger.net.transport import MESSAGE, frame
from ledger.node.config import init_local_consortium
from ledger.node.runtime import Params

VALIDATORS = ("sup1", "val1", "val2", "val3", "val4")
ALL_NODES = (*VALIDATORS, "full1")


# ---------------------------------------------------------------- HTTP


def get(url: str, timeout: float = 10) -> Any:
    with urllib.request.urlopen(url, timeout=timeout) as r:
        return json.load(r)


def get_status(url: str, timeout: float = 10) -> tuple[int, Any]:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as r:
            return r.status, json.load(r)
    except urllib.error.HTTPError as e:
        return e.code, json.load(e)


def post(url: str, body: bytes) -> tuple[int, Any]:
    req = urllib.request.Request(url, data=body, headers={"content-type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            return r.status, json.load(r)
    except urllib.error.HTTPError as e:
        return e.code, json.load(e)


def wait_for(cond: Callable[[], Any], timeout: float, what: str, poll: float = 0.3) -> Any:
    """Poll ``cond`` until it returns something truthy (returned) or the deadline passes."""
    deadline = time.monotonic() + timeout
    last_exc: Exception | None = None
    while time.monotonic() < deadline:
        try:
            out = cond()
            if out:
                return out
        except (urllib.error.URLError, OSError, KeyError, ValueError) as exc:
            last_exc = exc
        time.sleep(poll)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}"
                         + (f" (last error: {last_exc})" if last_exc else ""))


# ---------------------------------------------------------------- the cluster


def port_free(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True


class Cluster:
    """A running `rongxin up --detach` consortium: its folder, its nodes' APIs and pids."""

    def __init__(self, data: Path, rx: Callable[..., subprocess.CompletedProcess[str]]) -> None:
        self.data = data
        self.rx = rx
        self.children: list[subprocess.Popen[bytes]] = []
        self.reload()

    def reload(self) -> None:
        doc = json.loads((self.data / "cluster.json").read_text())
        self.nodes = {n["id"]: n for n in doc["nodes"]}
        self.api = {nid: n["api"] for nid, n in self.nodes.items()}

    def up(self) -> None:
        proc = self.rx("up", "--detach", "--data", str(self.data), timeout=240)
        assert proc.returncode == 0, proc.stderr
        self.reload()

    def down(self) -> None:
        self.rx("down", "--data", str(self.data), timeout=120)
        for child in self.children:
            if child.poll() is None:
                # `rongxin down` has returned: what still runs is a process it does not know as
                # a node (e.g. the Byzantine stand-in, whose command line is not a node's)
                child.terminate()
                try:
                    child.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    child.kill()
                    child.wait(timeout=10)

    # -------------------------------------------------------- processes
    def kill(self, nid: str) -> None:
        """SIGKILL the node's process and wait until it is gone (its folder lock released)."""
        pid = int((self.folder(nid) / "pid").read_text())
        os.kill(pid, signal.SIGKILL)
        wait_for(lambda: not api_ok(self.api[nid], timeout=0.5), 20, f"{nid} to die")
        # a dying process can stop answering before the kernel has closed its sockets: wait
        # until both its ports can be bound again, so a restart never races its own corpse
        node = self.nodes[nid]
        ports = [int(self.api[nid].rsplit(":", 1)[1].split("/")[0])]
        if isinstance(node.get("p2p"), list | tuple):
            ports.append(int(node["p2p"][1]))
        wait_for(lambda: all(port_free(p) for p in ports), 30, f"{nid}'s ports to be released")

    def start_one(self, nid: str) -> None:
        """Start one node process as `rongxin up` does (the others stay as they are)."""
        self.children.append(start_node(self.folder(nid), detach=True))
        wait_for(lambda: api_ok(self.api[nid], timeout=1), 60, f"{nid}'s API after restart")

    def user(self, nid: str = "sup1") -> SM2PrivateKey:
        """A new key bound on chain to a user certificate of the consortium (through ``nid``'s
        API): the chain is permissioned, so only such keys (and nodes) may transact."""
        key = SM2PrivateKey.generate()
        register_users(self.api[nid], self.data, [key])
        return key

    def folder(self, nid: str) -> Path:
        return Path(self.nodes[nid]["data"])

    def log(self, nid: str) -> str:
        return (self.folder(nid) / "node.log").read_text(errors="replace")

    # -------------------------------------------------------- queries
    def status(self, nid: str) -> dict[str, Any]:
        return dict(get(self.api[nid] + "/v1/status", timeout=5))

    def height(self, nid: str) -> int:
        return int(self.status(nid)["height"])

    def heights(self, nids: Iterable[str] | None = None) -> dict[str, int]:
        return {nid: self.height(nid) for nid in (nids or self.api)}

    def block(self, nid: str, height: int) -> dict[str, Any]:
        return dict(get(f"{self.api[nid]}/v1/blocks/{height}"))

    def tx_status(self, nid: str, tx_id: str) -> str:
        _code, body = get_status(f"{self.api[nid]}/v1/txs/{tx_id}")
        return str(body.get("status"))

    def wait_height(self, at_least: int, nids: Iterable[str] | None = None, timeout: float = 60,
                    what: str = "") -> None:
        nids = list(nids or self.api)
        wait_for(lambda: all(self.height(n) >= at_least for n in nids), timeout,
                 what or f"{nids} at height >= {at_least}")

    def wait_committed(self, tx_ids: Iterable[str], nids: Iterable[str] | None = None,
                       timeout: float = 60, what: str = "") -> None:
        ids = list(tx_ids)
        nids = list(nids or self.api)
        wait_for(lambda: all(self.tx_status(n, t) == "committed" for n in nids for t in ids), timeout,
                 what or f"{len(ids)} transactions committed on {nids}")

    def chains_agree(self, nids: Iterable[str] | None = None) -> dict[int, dict[str, Any]]:
        """Every block 1..(lowest height among ``nids``) is the same on each node, and each
        carries a QC for its own hash. Returns the blocks of the first node by height."""
        nids = list(nids or self.api)
        top = min(self.height(n) for n in nids)
        assert top >= 1
        out: dict[int, dict[str, Any]] = {}
        for h in range(1, top + 1):
            blocks = {n: self.block(n, h) for n in nids}
            hashes = {n: b["hash"] for n, b in blocks.items()}
            assert len(set(hashes.values())) == 1, f"fork at height {h}: {hashes}"
            first = blocks[nids[0]]
            assert first["qc"] and first["qc"]["block"] == first["hash"], f"block {h} lacks its QC"
            out[h] = first
        return out


# ---------------------------------------------------------------- a rogue peer


class RoguePeer:
    """A real TLS client that presents consortium node ``as_node``'s transport certificate
    (its key is in the consortium folder) to a node's peer port and sends raw frames."""

    def __init__(self, consortium: Path, as_node: str, address: tuple[str, int]) -> None:
        folder = consortium / "nodes" / as_node
        ctx = tls_context(False, folder / "tls.crt", folder / "tls.key",
                          consortium / "ca" / "transport-ca.crt.pem")
        raw = socket.create_connection(address, timeout=10)
        self.sock = ctx.wrap_socket(raw)  # the TLS 1.3 handshake, both certificates checked

    def send_raw(self, data: bytes) -> None:
        self.sock.sendall(data)

    def send(self, payload: bytes) -> None:
        self.send_raw(frame(MESSAGE, payload))

    def wait_closed(self, timeout: float) -> bool:
        """Read (and drop) what the node sends, e.g. TLS session tickets, until it closes the
        link; True if it did within ``timeout``. Closing our end while unread bytes sit in our
        receive buffer would reset the connection and could discard frames the node has not
        read yet, so a test waits here rather than closing at once."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.sock.settimeout(max(0.05, deadline - time.monotonic()))
            try:
                if not self.sock.recv(65536):
                    return True
            except (ssl.SSLZeroReturnError, ssl.SSLEOFError, ConnectionError):
                return True
            except TimeoutError:
                return False
        return False

    def close(self) -> None:
        with contextlib.suppress(OSError, ssl.SSLError):
            self.sock.close()


# ---------------------------------------------------------------- links through a proxy


class LinkProxy:
    """One TCP relay per directed peer link ``src -> dst`` on an asyncio loop in a thread.

    ``cut(a, b)`` closes the live connections between the two groups (both directions) and
    closes each new one as soon as it is accepted, so dialling fails (TLS handshake cut) and the
    node keeps retrying; ``heal()`` lets every link through again.
    """

    def __init__(self, targets: dict[str, tuple[str, int]], host: str = "127.0.0.1") -> None:
        self.targets = targets
        self.host = host
        self.blocked: set[tuple[str, str]] = set()
        self.listen: dict[tuple[str, str], tuple[str, int]] = {}
        self._conns: dict[tuple[str, str], set[asyncio.StreamWriter]] = {}
        self._servers: list[asyncio.base_events.Server] = []
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, name="link-proxy", daemon=True)
        self._thread.start()
        self._call(self._start())

    def _call(self, coro: Any, timeout: float = 30) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    async def _start(self) -> None:
        for src in self.targets:
            for dst in self.targets:
                if src == dst:
                    continue
                link = (src, dst)
                self._conns[link] = set()
                server = await asyncio.start_server(
                    lambda r, w, link=link: self._relay(link, r, w), self.host, 0)
                self._servers.append(server)
                self.listen[link] = (self.host, int(server.sockets[0].getsockname()[1]))

    async def _relay(self, link: tuple[str, str], reader: asyncio.StreamReader,
                     writer: asyncio.StreamWriter) -> None:
        if link in self.blocked:
            writer.close()
            return
        try:
            up_reader, up_writer = await asyncio.open_connection(*self.targets[link[1]])
        except OSError:
            writer.close()
            return
        if link in self.blocked:  # cut while we were connecting
            writer.close()
            up_writer.close()
            return
        conns = self._conns[link]
        conns.update((writer, up_writer))

        async def pump(r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
            try:
                while data := await r.read(65536):
                    w.write(data)
                    await w.drain()
            except (ConnectionError, OSError):
                pass
            finally:
                w.close()

        try:
            await asyncio.gather(pump(reader, up_writer), pump(up_reader, writer))
        finally:
            conns.discard(writer)
            conns.discard(up_writer)
            writer.close()
            up_writer.close()

    async def _cut(self, links: set[tuple[str, str]]) -> None:
        self.blocked |= links
        for link in links:
            for w in list(self._conns.get(link, ())):
                w.close()

    def cut(self, side_a: Iterable[str], side_b: Iterable[str]) -> None:
        a, b = set(side_a), set(side_b)
        links = {(x, y) for x in a for y in b} | {(y, x) for x in a for y in b}
        self._call(self._cut(links))

    async def _heal(self) -> None:
        self.blocked.clear()

    def heal(self) -> None:
        self._call(self._heal())

    async def _stop(self) -> None:
        for server in self._servers:
            server.close()
        for conns in self._conns.values():
            for w in list(conns):
                w.close()

    def stop(self) -> None:
        with contextlib.suppress(Exception):
            self._call(self._stop(), timeout=10)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(timeout=10)


# an idle chain makes one heartbeat block per idle interval (a minute by default); the fault
# tests watch heights move and leaders rotate without transactions, so theirs is a second
FAULT_PARAMS = Params(idle_interval=1.0)
# a validator evicted for equivocation leaves the set this many blocks after the decision (the
# smallest governance allows; the default is 10): the fault tests wait for that exit
FAULT_GOVERNANCE = {"exit_delay": 3}


def init_fault_consortium(data: Path) -> Path:
    """The local consortium's folder, with the fault tests' chain parameters."""
    return init_local_consortium(data, base_port=int(os.environ["RONGXIN_BASE_PORT"]), params=FAULT_PARAMS,
                                 governance=FAULT_GOVERNANCE)


def started_cluster(data: Path, rx: Callable[..., Any]) -> Iterator[Cluster]:
    """The body of a ``cluster`` fixture: ``rongxin up --detach`` in ``data`` (created with
    ``FAULT_PARAMS``), yield the :class:`Cluster`, and stop it (with any process a test
    started) whatever happens."""
    init_fault_consortium(data)
    proc = rx("up", "--detach", "--data", str(data), timeout=240)
    assert proc.returncode == 0, proc.stderr
    c = Cluster(data, rx)
    try:
        yield c
    finally:
        c.down()
