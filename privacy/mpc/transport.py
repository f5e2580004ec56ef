"""Links between party processes: mutually authenticated TLS 1.3, framed messages, bounded
reads and timeouts. Every failure of a link raises ``PartyError`` naming the peer.

Topology: the parties are ordered as in the computation's party list; party ``i`` accepts
connections from every ``j > i`` and connects to every ``j < i``. The connecting side sends a
``hello`` frame naming the computation and both parties, the accepting side answers with its own.
Each side checks that the certificate the peer presented over TLS is byte for byte the transport
certificate registered for that party (not just any certificate under the consortium root).

A run either listens on the party's port for itself (``Network`` alone: the tests, the bench,
``python -m privacy.mpc.party``), or takes its links from the party's always-on ``Listener``
(``rongxin mpc serve``), which routes every incoming link by the computation its hello names.
A link for a computation this party has not started yet is parked until the run starts
(at most ``timeout`` seconds, at most ``MAX_PARKED`` links), so a peer that starts first
is never refused.

Frame: ``b"RXMP" | version (1 byte, 1) | kind (1 byte) | round (2 bytes, big endian) |
length (8 bytes, big endian) | payload``. The receiver knows the kind, the round and the exact
length of every frame it expects and refuses anything else before reading the payload.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import ssl
import struct
import threading
from collections.abc import Awaitable, Callable, Coroutine, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ledger.crypto.sm3 import SM3
from ledger.crypto.tls import tls_context

from .errors import PartyError, QueryError

MAGIC = b"RXMP"
VERSION = 1
HEADER = struct.Struct(">4sBBHQ")
KIND_HELLO = 0
KIND_DATA = 1
KIND_ABORT = 2
ABORT_GRACE = 0.3
MAX_HELLO = 4096
CONNECT_RETRY = 0.2
MAX_PARKED = 64  # links waiting at a Listener for a run this party has not started
MAX_GREETING = 64  # links at a Listener that have not sent their hello yet
GREETING_S = 10.0  # at most this long (or the run timeout, if shorter) for the TLS handshake and the hello


@dataclass(frozen=True)
class PartySpec:
    """A party as registered for a computation: its id, its address, its transport certificate (PEM)."""

    id: str
    host: str
    port: int
    cert: bytes

    def cert_der(self) -> bytes:
        try:
            return ssl.PEM_cert_to_DER_cert(self.cert.decode("ascii"))
        except (ValueError, UnicodeDecodeError):
            raise QueryError(f"party {self.id}: the registered transport certificate is not PEM") from None


@dataclass(frozen=True)
class TLSFiles:
    """This party's transport key and certificate and the consortium's transport CA (PEM files)."""

    cert: Path
    key: Path
    ca: Path


@dataclass
class Link:
    peer: str
    reader: asyncio.StreamReader
    writer: asyncio.StreamWriter
    sent: Any = field(default_factory=SM3)  # SM3 over every frame sent on this link, in order
    received: Any = field(default_factory=SM3)
    bytes_sent: int = 0
    bytes_received: int = 0


def header(kind: int, rnd: int, length: int) -> bytes:
    return HEADER.pack(MAGIC, VERSION, kind, rnd, length)


class Network:
    """All links of one party for one computation."""

    def __init__(self, me: str, parties: list[PartySpec], computation_id: str, timeout: float,
                 listener: Listener | None = None) -> None:
        self.me = me
        self.listener = listener
        self.parties = parties
        self.index = {p.id: k for k, p in enumerate(parties)}
        self.computation_id = computation_id
        self.timeout = timeout
        self.links: dict[str, Link] = {}
        self._server: asyncio.Server | None = None
        self._pending: dict[str, asyncio.Future[Link]] = {}
        self._impostors: set[str] = set()  # parties some connection claimed to be with another certificate

    @property
    def peers(self) -> list[str]:
        return [p.id for p in self.parties if p.id != self.me]

    # ------------------------------------------------------------------ set-up
    async def open(self, tls: TLSFiles) -> None:
        server_ctx = tls_context(True, tls.cert, tls.key, tls.ca)
        client_ctx = tls_context(False, tls.cert, tls.key, tls.ca)
        mine = self.index[self.me]
        loop = asyncio.get_running_loop()
        for p in self.parties[mine + 1:]:
            self._pending[p.id] = loop.create_future()
        spec = self.parties[mine]
        if self._pending and self.listener is not None:
            self.listener.attach(self.computation_id, self._offer)
        elif self._pending:
            self._server = await asyncio.start_server(self._accept, spec.host, spec.port, ssl=server_ctx,
                                                      reuse_address=True,
                                                      ssl_handshake_timeout=self.timeout)
        jobs: list[Awaitable[None]] = [self._connect(p, client_ctx) for p in self.parties[:mine]]
        jobs += [self._await_accept(pid) for pid in self._pending]
        await first_error(jobs)

    async def _await_accept(self, pid: str) -> None:
        try:
            link = await asyncio.wait_for(asyncio.shield(self._pending[pid]), self.timeout)
        except TimeoutError:
            seen = (" (a connection claiming to be it presented a certificate that is not its registered one)"
                    if pid in self._impostors else "")
            raise PartyError(pid, f"did not connect within {self.timeout:g} s{seen}") from None
        self.links[pid] = link

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            hello = await asyncio.wait_for(_read_hello(reader), self.timeout)
        except Exception:  # noqa: BLE001 - any malformed or missing hello (e.g. deeply nested JSON) closes the link
            writer.close()
            return
        self._offer(reader, writer, hello)

    def _offer(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, hello: dict[str, Any]) -> None:
        """An incoming link with its hello: taken when it is an awaited party's, else closed."""
        pid = hello.get("from")
        if (hello.get("computation_id") != self.computation_id or hello.get("to") != self.me
                or not isinstance(pid, str) or pid not in self._pending or self._pending[pid].done()):
            writer.close()  # another computation's, a stranger's or a duplicate connection
            return
        if _peer_der(writer) != self.parties[self.index[pid]].cert_der():
            # an impostor (any holder of a transport certificate) must not fail the real party's
            # link: dropped, and the real one is still awaited (named only if it never comes)
            self._impostors.add(pid)
            writer.close()
            return
        _write_hello(writer, self.computation_id, self.me, pid)
        self._pending[pid].set_result(Link(pid, reader, writer))

    async def _connect(self, p: PartySpec, ctx: ssl.SSLContext) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.timeout
        last = "unreachable"
        while loop.time() < deadline:
            try:
                reader, writer = await asyncio.wait_for(
                    asyncio.open_connection(p.host, p.port, ssl=ctx), max(0.1, deadline - loop.time()))
            except (OSError, TimeoutError) as exc:
                last = f"unreachable ({exc.__class__.__name__}: {exc})"
                await asyncio.sleep(CONNECT_RETRY)
                continue
            if _peer_der(writer) != p.cert_der():
                writer.close()
                raise PartyError(p.id, "presented a certificate that is not its registered one")
            _write_hello(writer, self.computation_id, self.me, p.id)
            try:
                hello = await asyncio.wait_for(_read_hello(reader), max(0.1, deadline - loop.time()))
            except TimeoutError:
                last = "accepted the connection but did not answer (its run did not start)"
                writer.close()
                await asyncio.sleep(CONNECT_RETRY)
                continue
            except (OSError, ValueError, asyncio.IncompleteReadError) as exc:
                last = f"refused the connection ({exc.__class__.__name__})"  # busy with another run
                writer.close()
                await asyncio.sleep(CONNECT_RETRY)
                continue
            if hello != {"computation_id": self.computation_id, "from": p.id, "to": self.me}:
                writer.close()
                raise PartyError(p.id, "answered for another computation or party")
            self.links[p.id] = Link(p.id, reader, writer)
            return
        raise PartyError(p.id, f"{last} for {self.timeout:g} s")

    # ------------------------------------------------------------------ messages
    async def send(self, peer: str, rnd: int, payload: bytes) -> None:
        link = self.links[peer]
        head = header(KIND_DATA, rnd, len(payload))
        link.sent.update(head).update(payload)
        link.bytes_sent += len(head) + len(payload)
        try:
            link.writer.write(head)
            link.writer.write(payload)
            await asyncio.wait_for(link.writer.drain(), self.timeout)
        except TimeoutError:
            raise PartyError(peer, f"did not read our round {rnd} message within {self.timeout:g} s") from None
        except (OSError, ssl.SSLError) as exc:
            raise PartyError(peer, f"connection lost in round {rnd} ({exc.__class__.__name__})") from None

    async def recv(self, peer: str, rnd: int, length: int) -> bytes:
        link = self.links[peer]
        try:
            head = await asyncio.wait_for(link.reader.readexactly(HEADER.size), self.timeout)
            magic, version, kind, got_round, got_length = HEADER.unpack(head)
            if (magic, version, kind) == (MAGIC, VERSION, KIND_ABORT) and got_length <= MAX_HELLO:
                raise _reported(peer, await asyncio.wait_for(link.reader.readexactly(got_length), self.timeout))
            if (magic, version, kind, got_round) != (MAGIC, VERSION, KIND_DATA, rnd):
                raise PartyError(peer, f"sent a malformed frame header in round {rnd}")
            if got_length != length:
                raise PartyError(peer, f"sent {got_length} bytes in round {rnd} where {length} were expected")
            payload = await asyncio.wait_for(link.reader.readexactly(length), self.timeout)
        except TimeoutError:
            raise PartyError(peer, f"sent nothing for {self.timeout:g} s in round {rnd}") from None
        except asyncio.IncompleteReadError:
            raise PartyError(peer, f"closed the connection in round {rnd}") from None
        except (OSError, ssl.SSLError) as exc:
            raise PartyError(peer, f"connection lost in round {rnd} ({exc.__class__.__name__})") from None
        link.received.update(head).update(payload)
        link.bytes_received += len(head) + length
        return payload

    async def exchange(self, rnd: int, out: dict[str, bytes], expect: dict[str, int]) -> dict[str, bytes]:
        """Send ``out[peer]`` to each peer and receive ``expect[peer]`` bytes from each, concurrently."""
        got: dict[str, bytes] = {}

        async def one(peer: str) -> None:
            got[peer] = await self.recv(peer, rnd, expect[peer])

        jobs: list[Awaitable[None]] = [self.send(p, rnd, b) for p, b in out.items()]
        jobs += [one(p) for p in expect]
        await first_error(jobs)
        return got

    async def abort(self, error: PartyError) -> None:
        """Tell every connected peer which party made this run abort, then close (best effort)."""
        body = json.dumps({"party": error.party, "reason": error.reason}).encode()[:MAX_HELLO]
        for link in self.links.values():
            with contextlib.suppress(Exception):
                link.writer.write(header(KIND_ABORT, 0, len(body)) + body)
        for link in self.links.values():
            with contextlib.suppress(Exception):
                await asyncio.wait_for(link.writer.drain(), ABORT_GRACE)
        await asyncio.sleep(ABORT_GRACE)  # let the peers read it before our close resets the links
        self.close()

    def close(self) -> None:
        for link in self.links.values():
            with contextlib.suppress(Exception):
                link.writer.close()
        for fut in self._pending.values():  # accepted after the run gave up on it: never used
            if fut.done() and not fut.cancelled() and fut.exception() is None and fut.result().peer not in self.links:
                with contextlib.suppress(Exception):
                    fut.result().writer.close()
        if self._server is not None:
            self._server.close()
        if self.listener is not None:
            self.listener.detach(self.computation_id, self._offer)

    def bytes_sent(self) -> int:
        return sum(link.bytes_sent for link in self.links.values())

    def bytes_received(self) -> int:
        return sum(link.bytes_received for link in self.links.values())


Offer = Callable[[asyncio.StreamReader, asyncio.StreamWriter, dict[str, Any]], None]


class Listener:
    """A party's always-on listener: one TLS server on its registered port, in an event loop of
    its own thread, on which every run of this party (``run``) also executes. An incoming link
    sends its hello first; the link goes to the run of the computation the hello names
    (``attach``), or is parked until that run starts: at most ``timeout`` seconds (then closed,
    the peer connects again) and at most ``MAX_PARKED`` links (the oldest closed first). A hello
    addressed to another party, or none within ``GREETING_S`` (or ``timeout`` if shorter), closes
    the link, and so does any link past ``MAX_GREETING`` still awaiting its hello."""

    def __init__(self, me: str, host: str, port: int, tls: TLSFiles, timeout: float = 30.0) -> None:
        self.me, self.host, self.port, self.tls, self.timeout = me, host, port, tls, timeout
        self.loop = asyncio.new_event_loop()
        self._runs: dict[str, Offer] = {}
        self._parked: list[tuple[str, asyncio.StreamReader, asyncio.StreamWriter, dict[str, Any], float]] = []
        self._thread: threading.Thread | None = None
        self._server: asyncio.Server | None = None
        self._greeting = 0

    def start(self) -> None:
        """Bind the port and serve in a daemon thread (``OSError`` when the port cannot be bound)."""
        ctx = tls_context(True, self.tls.cert, self.tls.key, self.tls.ca)
        try:
            self._server = self.loop.run_until_complete(asyncio.start_server(
                self._accept, self.host, self.port, ssl=ctx, reuse_address=True,
                ssl_handshake_timeout=min(self.timeout, GREETING_S)))
        except BaseException:
            self.loop.close()
            raise
        self._thread = threading.Thread(target=self.loop.run_forever, name=f"mpc-listener-{self.port}", daemon=True)
        self._thread.start()

    def run(self, coro: Coroutine[Any, Any, Any]) -> Any:
        """Run ``coro`` on the listener's loop from another thread and return its result."""
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result()

    def stop(self) -> None:
        if self._thread is None:
            return

        def halt() -> None:
            if self._server is not None:
                self._server.close()
            for *_, writer, _hello, _t in self._parked:
                writer.close()
            self._parked.clear()
            for task in asyncio.all_tasks(self.loop):  # runs still going: their callers get CancelledError
                task.cancel()
            self.loop.call_later(0.2, self.loop.stop)

        self.loop.call_soon_threadsafe(halt)
        self._thread.join(5)
        self._thread = None
        if not self.loop.is_running():
            self.loop.close()

    # the methods below run on the listener's loop
    def attach(self, computation_id: str, offer: Offer) -> None:
        """Route ``computation_id``'s links to ``offer``, the parked ones first."""
        assert asyncio.get_running_loop() is self.loop
        assert computation_id not in self._runs, f"computation {computation_id} attached twice"
        self._runs[computation_id] = offer
        mine = [p for p in self._parked if p[0] == computation_id]
        self._parked = [p for p in self._parked if p[0] != computation_id]
        for _cid, reader, writer, hello, _t in mine:
            try:
                offer(reader, writer, hello)
            except Exception:  # noqa: BLE001 - one bad link must not strand the others
                writer.close()

    def detach(self, computation_id: str, offer: Offer) -> None:
        if self._runs.get(computation_id) is offer:
            del self._runs[computation_id]

    def parked(self) -> int:
        return len(self._parked)

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self._greeting >= MAX_GREETING:
            writer.close()
            return
        self._greeting += 1
        try:
            hello = await asyncio.wait_for(_read_hello(reader), min(self.timeout, GREETING_S))
        except Exception:  # noqa: BLE001 - any malformed or missing hello (e.g. deeply nested JSON) closes the link
            writer.close()
            return
        finally:
            self._greeting -= 1
        cid = hello.get("computation_id")
        if not isinstance(cid, str) or hello.get("to") != self.me:
            writer.close()
            return
        offer = self._runs.get(cid)
        if offer is not None:
            offer(reader, writer, hello)
            return
        self._expire()
        while len(self._parked) >= MAX_PARKED:
            self._parked.pop(0)[2].close()
        self._parked.append((cid, reader, writer, hello, self.loop.time() + self.timeout))
        self.loop.call_later(self.timeout, self._expire)

    def _expire(self) -> None:
        now = self.loop.time()
        keep = []
        for p in self._parked:
            if p[4] > now:
                keep.append(p)
            else:
                p[2].close()
        self._parked = keep


async def first_error(coros: Iterable[Awaitable[None]]) -> None:
    """Run concurrently; on the first failure cancel the rest and raise it."""
    tasks = [asyncio.ensure_future(c) for c in coros]
    if not tasks:
        return
    try:
        done, _pending = await asyncio.wait(tasks, return_when=asyncio.FIRST_EXCEPTION)
        for t in done:
            exc = t.exception()
            if exc is not None:
                raise exc
    finally:
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


def _reported(peer: str, body: bytes) -> PartyError:
    try:
        msg = json.loads(body)
        party, reason = str(msg["party"])[:200], str(msg["reason"])[:400]
    except (ValueError, KeyError, TypeError):
        return PartyError(peer, "sent a malformed abort frame")
    return PartyError(party, f"{reason} (reported by {peer})")


def _peer_der(writer: asyncio.StreamWriter) -> bytes | None:
    obj = writer.get_extra_info("ssl_object")
    return obj.getpeercert(binary_form=True) if obj is not None else None


def _write_hello(writer: asyncio.StreamWriter, computation_id: str, me: str, to: str) -> None:
    body = json.dumps({"computation_id": computation_id, "from": me, "to": to}, sort_keys=True).encode()
    writer.write(header(KIND_HELLO, 0, len(body)) + body)


async def _read_hello(reader: asyncio.StreamReader) -> dict[str, Any]:
    magic, version, kind, rnd, length = HEADER.unpack(await reader.readexactly(HEADER.size))
    if (magic, version, kind, rnd) != (MAGIC, VERSION, KIND_HELLO, 0) or length > MAX_HELLO:
        raise ValueError("not a hello frame")
    body = json.loads(await reader.readexactly(length))
    if not isinstance(body, dict):
        raise ValueError("hello is not an object")
    return body
