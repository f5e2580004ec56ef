"""Direct node-to-node links: mutually authenticated TLS 1.3, framed messages, heartbeats.

Each node listens on its own port and dials every peer directly (no relaying); it sends on
the links it dialled and receives on the links others dialled. A frame is
``length (4 bytes, big-endian) || kind (1 byte) || payload`` with kind ``0`` a message and
``1`` a heartbeat. Both ends check the other's transport certificate against the transport
CA (TLS) and then against the node's expectations (``admit``): the certificate's node id
must be the peer dialled or a known peer, and its bound SM2 certificate must not be
revoked. Heartbeats every ``heartbeat_interval`` seconds feed ``online()``, the live map of
who is up (REQUIREMENTS L11). IPv4 and IPv6 addresses both work.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import ssl
import struct
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ..codec import EncodingError, canonical, parse
from ..crypto.errors import CertificateError
from ..crypto.tls import PeerIdentity, peer_identity

log = logging.getLogger("rongxin.net")

MESSAGE = 0
HEARTBEAT = 1
MAX_FRAME = 32 * 1024 * 1024
QUEUE_LIMIT = 10_000
DIAL_TIMEOUT_S = 5.0  # one connection attempt to a peer, TLS handshake included
STOP_ROUNDS, STOP_WAIT_S = 3, 2.0  # stop(): cancel, wait at most this long, again
_HEADER = struct.Struct(">IB")


class FrameError(Exception):
    """A peer sent bytes that are not a frame; the link is closed."""


async def read_frame(reader: asyncio.StreamReader) -> tuple[int, bytes]:
    header = await reader.readexactly(_HEADER.size)
    length, kind = _HEADER.unpack(header)
    if length > MAX_FRAME:
        raise FrameError(f"frame of {length} bytes exceeds {MAX_FRAME}")
    if kind not in (MESSAGE, HEARTBEAT):
        raise FrameError(f"unknown frame kind {kind}")
    return kind, await reader.readexactly(length)


def frame(kind: int, payload: bytes) -> bytes:
    return _HEADER.pack(len(payload), kind) + payload


@dataclass
class PeerState:
    address: tuple[str, int]
    queue: asyncio.Queue[bytes] = field(default_factory=lambda: asyncio.Queue(QUEUE_LIMIT))
    last_seen: float = 0.0
    status: dict[str, Any] = field(default_factory=dict)
    connected_out: bool = False
    dropped: int = 0


class PeerNetwork:
    def __init__(
        self,
        *,
        node_id: str,
        listen: tuple[str, int],
        peers: dict[str, tuple[str, int]],
        server_ctx: ssl.SSLContext,
        client_ctx: ssl.SSLContext,
        on_message: Callable[[str, bytes], None],
        admit: Callable[[PeerIdentity], bool] = lambda _ident: True,
        status: Callable[[], dict[str, Any]] = dict,
        heartbeat_interval: float = 1.0,
    ) -> None:
        self.node_id = node_id
        self.listen = listen
        self.peers = {pid: PeerState(addr) for pid, addr in peers.items() if pid != node_id}
        self.server_ctx, self.client_ctx = server_ctx, client_ctx
        self.on_message = on_message
        self.admit = admit
        self.status = status
        self.heartbeat_interval = heartbeat_interval
        self._server: asyncio.base_events.Server | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._inbound: set[asyncio.StreamWriter] = set()
        self._inbound_from: dict[asyncio.StreamWriter, str] = {}
        self._dialers: dict[str, asyncio.Task[None]] = {}
        self._started = False
        self.refused: list[tuple[str, str]] = []  # (who, why), most recent last

    # ------------------------------------------------------------ life cycle
    async def start(self) -> None:
        host, port = self.listen
        self._server = await asyncio.start_server(self._serve, host, port, ssl=self.server_ctx,
                                                  reuse_address=True)
        self._started = True
        for pid in self.peers:
            self._start_dialer(pid)
        self._tasks.append(asyncio.create_task(self._heartbeat(), name="heartbeat"))

    def _start_dialer(self, peer_id: str) -> None:
        task = asyncio.create_task(self._dial(peer_id), name=f"dial-{peer_id}")
        self._dialers[peer_id] = task
        self._tasks.append(task)

    def add_peer(self, peer_id: str, address: tuple[str, int]) -> None:
        """Start linking with a node admitted after start-up (e.g. a validator that joined)."""
        if peer_id == self.node_id or peer_id in self.peers:
            return
        self.peers[peer_id] = PeerState(address)
        log.info("new peer %s at %s:%d", peer_id, *address)
        if self._started:
            self._start_dialer(peer_id)

    def drop_peer(self, peer_id: str, why: str) -> None:
        """Stop talking to a peer (e.g. its certificate was revoked): close both links and
        refuse it from now on (``admit`` must refuse it too, or it would dial back in)."""
        if self.peers.pop(peer_id, None) is None:
            return
        log.warning("dropping peer %s: %s", peer_id, why)
        task = self._dialers.pop(peer_id, None)
        if task is not None:
            task.cancel()
        for writer, who in list(self._inbound_from.items()):
            if who == peer_id:
                writer.close()

    async def stop(self) -> None:
        # cancelled again until done, and never awaited without a bound: Python 3.11's
        # ``wait_for`` can lose a cancellation that lands as its inner call completes (a dial
        # that connects at that moment), and such a task would keep stop() waiting forever
        every, self._tasks = list(self._tasks), []
        for _ in range(STOP_ROUNDS):
            tasks = [t for t in every if not t.done()]
            if not tasks:
                break
            for task in tasks:
                task.cancel()
            await asyncio.wait(tasks, timeout=STOP_WAIT_S)
        for task in every:
            if not task.done():
                log.warning("task %s did not end when cancelled; left behind", task.get_name())
            elif not task.cancelled():
                task.exception()  # retrieved: a task that failed is not reported again at exit
        for writer in list(self._inbound):
            writer.close()
        if self._server is not None:
            self._server.close()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._server.wait_closed(), 2)

    def bound_port(self) -> int:
        assert self._server is not None
        return int(self._server.sockets[0].getsockname()[1])

    # ------------------------------------------------------------ sending
    def send(self, peer_id: str, payload: bytes) -> bool:
        peer = self.peers.get(peer_id)
        if peer is None:
            return False
        try:
            peer.queue.put_nowait(frame(MESSAGE, payload))
            return True
        except asyncio.QueueFull:
            peer.dropped += 1
            return False

    def broadcast(self, payload: bytes) -> None:
        data = frame(MESSAGE, payload)
        for peer in self.peers.values():
            try:
                peer.queue.put_nowait(data)
            except asyncio.QueueFull:
                peer.dropped += 1

    def online(self, window: float | None = None) -> dict[str, dict[str, Any]]:
        """Peers heard from within ``window`` seconds (3 heartbeats by default)."""
        limit = window if window is not None else 3 * self.heartbeat_interval
        now = time.monotonic()
        return {pid: {"last_seen_s": round(now - p.last_seen, 3), "status": p.status}
                for pid, p in self.peers.items() if p.last_seen and now - p.last_seen <= limit}

    # ------------------------------------------------------------ identity
    def _check(self, writer: asyncio.StreamWriter, expected: str | None) -> str:
        obj = writer.get_extra_info("ssl_object")
        if obj is None:
            raise CertificateError("link is not TLS")
        ident = peer_identity(obj)
        if expected is not None and ident.node_id != expected:
            raise CertificateError(f"dialled {expected!r} but {ident.node_id!r} answered")
        if ident.node_id not in self.peers:
            raise CertificateError(f"{ident.node_id!r} is not a peer of this node")
        if not self.admit(ident):
            raise CertificateError(f"{ident.node_id!r} is not admitted (certificate revoked or unknown)")
        return ident.node_id

    def _refuse(self, who: str, why: str) -> None:
        log.warning("refused link with %s: %s", who, why)
        self.refused.append((who, why))
        del self.refused[:-100]

    # ------------------------------------------------------------ inbound
    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        addr = str(writer.get_extra_info("peername"))
        try:
            peer_id = self._check(writer, None)
        except (CertificateError, ValueError) as exc:
            self._refuse(addr, str(exc))
            writer.close()
            return
        self._inbound.add(writer)
        self._inbound_from[writer] = peer_id
        peer = self.peers[peer_id]
        try:
            while True:
                kind, payload = await read_frame(reader)
                peer.last_seen = time.monotonic()
                if kind == HEARTBEAT:
                    try:
                        status = parse(payload)
                        peer.status = status if isinstance(status, dict) else {}
                    except EncodingError:
                        log.warning("malformed heartbeat from %s", peer_id)
                    continue
                try:
                    self.on_message(peer_id, payload)
                except Exception:
                    log.exception("handler failed on a message from %s", peer_id)
        except FrameError as exc:
            log.warning("closing link from %s: %s", peer_id, exc)
        except (asyncio.IncompleteReadError, ConnectionError, ssl.SSLError, OSError):
            pass
        except asyncio.CancelledError:
            # the loop is shutting down: end the handler quietly (Python 3.11's stream server
            # logs a traceback for a connection handler that ends cancelled)
            pass
        finally:
            self._inbound.discard(writer)
            self._inbound_from.pop(writer, None)
            writer.close()

    # ------------------------------------------------------------ outbound
    async def _dial(self, peer_id: str) -> None:
        peer = self.peers[peer_id]
        backoff = 0.1
        while True:
            host, port = peer.address
            try:
                async with asyncio.timeout(DIAL_TIMEOUT_S):  # not wait_for: see stop()
                    _reader, writer = await asyncio.open_connection(host, port, ssl=self.client_ctx)
            except (TimeoutError, OSError, ssl.SSLError) as exc:
                log.debug("dial %s failed: %s", peer_id, exc)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 2.0)
                continue
            try:
                self._check(writer, peer_id)
            except (CertificateError, ValueError) as exc:
                self._refuse(peer_id, str(exc))
                writer.close()
                await asyncio.sleep(2.0)
                continue
            backoff = 0.1
            peer.connected_out = True
            pending: bytes | None = None
            try:
                while True:
                    pending = await peer.queue.get()
                    batch = [pending]
                    while not peer.queue.empty() and len(batch) < 256:
                        batch.append(peer.queue.get_nowait())
                    writer.write(b"".join(batch))
                    await writer.drain()
                    pending = None
            except (ConnectionError, ssl.SSLError, OSError):
                pass
            finally:
                peer.connected_out = False
                writer.close()
            await asyncio.sleep(backoff)

    async def _heartbeat(self) -> None:
        while True:
            try:
                beat = frame(HEARTBEAT, canonical({"node": self.node_id, **self.status()}))
            except EncodingError:
                beat = frame(HEARTBEAT, canonical({"node": self.node_id}))
            for peer in self.peers.values():
                if peer.connected_out:
                    with contextlib.suppress(asyncio.QueueFull):
                        peer.queue.put_nowait(beat)
            await asyncio.sleep(self.heartbeat_interval)
