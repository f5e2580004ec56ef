"""Live subscriptions behind ``/v1/ws`` (docs/api.md §11): what a subscriber asked for, the
items one committed block yields for it, and the hub that hands them out.

The hub never slows the node. Consensus only sets an event when a block commits
(``Hub.committed``); the hub's own task then reads each new block once (``Facts``), builds the
items every live subscription wants and puts them, already encoded, on each client's queue
without waiting. A client whose queue holds more than ``QUEUE_BYTES`` is dropped there and
then: a slow or vanished reader costs the node at most that much memory and never a wait.
A subscription with ``from_height`` first replays the committed blocks from the store, at the
pace its client reads (it waits for room in its own queue), and turns live in the same step
of the event loop in which it catches up with the hub, so no block is missed or sent twice.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import json
import logging
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from forensics.access import PRIVATE_EVENTS, Reader, may_read_event, may_read_tx, private_tx
from ledger.codec import canonical
from ledger.contracts.context import account_of
from ledger.crypto import sm3
from ledger.node.runtime import Node
from ledger.tx import TYPE_RE

log = logging.getLogger("rongxin.ws")

TOPICS = ("blocks", "txs", "events", "cases", "status")
QUEUE_BYTES = 1 << 20  # encoded items waiting for one client before it is dropped as too slow
MAX_SUBSCRIPTIONS = 32  # per connection
MAX_MESSAGE = 4096  # characters of one client message
SUB_ID_RE = re.compile(r"[A-Za-z0-9_.:-]{1,64}")
ACCOUNT_RE = re.compile(r"[0-9a-f]{40}")
CASE_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.:-]{0,127}")
EVENT_TYPE_RE = re.compile(r"[A-Za-z][A-Za-z0-9_]*(\.[A-Za-z][A-Za-z0-9_]*){0,4}(\.\*)?")
FIELDS = {"blocks": set(), "txs": {"account", "type"}, "events": {"type", "key"}, "cases": {"case_id"},
          "status": set()}
COMMON = {"subscribe", "id", "from_height"}
MAX_HEIGHT = (1 << 63) - 1


class ProtocolError(Exception):
    """A client message the server answers with an error item (the connection stays)."""

    def __init__(self, code: str, message: str, details: Any = None) -> None:
        super().__init__(message)
        self.code, self.message, self.details = code, message, details

    def item(self) -> dict[str, Any]:
        return {"kind": "error", "error": {"code": self.code, "message": self.message, "details": self.details}}


@dataclass
class Sub:
    """One subscription of one connection. ``next``: the next height it is owed."""

    id: str
    topic: str
    filters: dict[str, str]
    next: int
    live: bool = False

    def wants_private(self) -> bool:
        return self.topic == "cases" or (self.topic == "events" and self.filters["type"].startswith(PRIVATE_EVENTS))


def _str_field(msg: dict[str, Any], name: str, pattern: re.Pattern[str], what: str) -> str | None:
    value = msg.get(name)
    if value is None:
        return None
    if not isinstance(value, str) or not pattern.fullmatch(value):
        raise ProtocolError("invalid_request", f"{name} must be {what}", {"field": name})
    return value


def parse_subscription(msg: dict[str, Any], auto_id: str, head: int) -> Sub:
    """A ``{"subscribe": …}`` message as a subscription (``ProtocolError`` when malformed)."""
    topic = msg.get("subscribe")
    if topic not in TOPICS:
        raise ProtocolError("invalid_request", f"subscribe names one of {', '.join(TOPICS)}",
                            {"field": "subscribe", "topics": list(TOPICS)})
    unknown = sorted(set(msg) - COMMON - FIELDS[topic])
    if unknown:
        raise ProtocolError("invalid_request", f"unknown field(s) for {topic}: {', '.join(unknown)}",
                            {"unknown": unknown})
    sub_id = _str_field(msg, "id", SUB_ID_RE, "1-64 characters of A-Z a-z 0-9 _ . : -") or auto_id
    filters: dict[str, str] = {}
    for name, pattern, what in (("account", ACCOUNT_RE, "an account: 40 lowercase hex digits"),
                                ("case_id", CASE_RE, "a case id"),
                                ("key", re.compile(r"[^\x00]{1,1024}"), "1-1024 characters without NUL")):
        if name in FIELDS[topic]:
            value = _str_field(msg, name, pattern, what)
            if value is not None:
                filters[name] = value
    if topic == "txs" and msg.get("type") is not None:
        filters["type"] = _str_field(msg, "type", TYPE_RE, "a transaction type such as kv.set") or ""
    if topic == "events":
        if msg.get("type") is None:
            raise ProtocolError("invalid_request", "an events subscription names its type, e.g. ft.Transfer "
                                "(or a prefix such as case.*)", {"field": "type"})
        filters["type"] = _str_field(msg, "type", EVENT_TYPE_RE, "an event type such as ft.Transfer, or a "
                                     "prefix ending in .*") or ""
    start = msg.get("from_height")
    if start is None:
        return Sub(sub_id, topic, filters, head + 1)
    if topic == "status":
        raise ProtocolError("invalid_request", "status is the present: it takes no from_height",
                            {"field": "from_height"})
    if not isinstance(start, int) or isinstance(start, bool) or not 0 <= start <= MAX_HEIGHT:
        raise ProtocolError("invalid_request", "from_height is an integer in [0, 2^63)", {"field": "from_height"})
    return Sub(sub_id, topic, filters, max(1, start))


class Facts:
    """One committed block as read once from the store: its record, and (when a subscription
    asks) its transactions' bodies."""

    def __init__(self, node: Node, height: int) -> None:
        self.node, self.height = node, height
        chain = node.app.chain
        raw = chain.store.get(b"B" + height.to_bytes(8, "big"))
        if raw is None:
            raise LookupError(f"block {height} is not committed here")
        self.record: dict[str, Any] = json.loads(raw)  # this node's own record, written from checked parts
        self.hash = sm3(canonical(self.record["block"]["header"], check=False)).hex()
        self._txs: list[dict[str, Any]] | None = None
        self._block_item: dict[str, Any] | None = None

    def block_item(self) -> dict[str, Any]:
        if self._block_item is None:
            block = self.record["block"]
            self._block_item = {"kind": "block", "height": self.height, "hash": self.hash, "header": block["header"],
                                "qc": self.record["qc"], "tx_ids": block["tx_ids"]}
        return self._block_item

    def txs(self) -> list[dict[str, Any]]:
        """``{id, index, body, code, info}`` of each transaction the block committed."""
        if self._txs is None:
            out = []
            chain = self.node.app.chain
            for i, (tx_id, receipt) in enumerate(zip(self.record["block"]["tx_ids"], self.record["receipts"],
                                                     strict=False)):
                rec = chain.store.get(b"X" + bytes.fromhex(tx_id))
                body = json.loads(rec)["tx"]["body"] if rec is not None else {}
                out.append({"id": tx_id, "index": i, "body": body, "code": receipt.get("code"),
                            "info": receipt.get("info")})
            self._txs = out
        return self._txs

    def events(self) -> list[dict[str, Any]]:
        """The block's events as ``GET /v1/events`` lists them: ``{event, height, index, seq, tx}``."""
        out = []
        for i, (tx_id, receipt) in enumerate(zip(self.record["block"]["tx_ids"], self.record["receipts"],
                                                 strict=False)):
            if receipt.get("code") == 2:  # a replay keeps its first inclusion's record
                continue
            for seq, ev in enumerate(receipt.get("events") or ()):
                out.append({"event": ev, "height": self.height, "index": i, "seq": seq, "tx": tx_id})
        return out


def _event_type_matches(wanted: str, actual: str) -> bool:
    return actual.startswith(wanted[:-1]) if wanted.endswith(".*") else actual == wanted


def items_for(sub: Sub, facts: Facts, who: Reader | None) -> list[dict[str, Any]]:
    """What ``sub`` receives of one committed block (status items are made by the hub)."""
    read = facts.node.app.read
    f = sub.filters
    if sub.topic == "blocks":
        return [facts.block_item()]
    if sub.topic == "txs":
        out = []
        for t in facts.txs():
            body = t["body"]
            try:
                account = account_of(bytes.fromhex(str(body.get("sender", ""))))
            except ValueError:
                continue
            if ("type" in f and body.get("type") != f["type"]) or ("account" in f and account != f["account"]):
                continue
            if private_tx(body.get("type")) and not may_read_tx(read, body, who):
                continue
            out.append({"kind": "tx", "height": facts.height, "index": t["index"], "id": t["id"],
                        "type": body.get("type"), "account": account, "sender": body.get("sender"),
                        "payload": body.get("payload"), "code": t["code"], "info": t["info"]})
        return out
    if sub.topic == "events":
        return [dict(e, kind="event") for e in facts.events()
                if _event_type_matches(f["type"], str(e["event"].get("type")))
                and ("key" not in f or f["key"] in (e["event"].get("keys") or ()))
                and may_read_event(read, e, who)]
    if sub.topic == "cases":
        out = []
        for e in facts.events():
            ev = e["event"]
            data = ev.get("data") if isinstance(ev.get("data"), dict) else {}
            if not str(ev.get("type", "")).startswith("case.") or not isinstance(data.get("case_id"), str):
                continue
            if ("case_id" in f and data["case_id"] != f["case_id"]) or not may_read_event(read, e, who):
                continue
            out.append({"kind": "case", "case_id": data["case_id"], "change": ev.get("type"), "data": data,
                        "height": e["height"], "index": e["index"], "seq": e["seq"], "tx": e["tx"]})
        return out
    return []


def encode(item: dict[str, Any]) -> str:
    return json.dumps(item, ensure_ascii=False, separators=(",", ":"))


@dataclass(eq=False)
class Client:
    """One WebSocket connection: its subscriptions and its queue of encoded items."""

    reader: Reader | None
    on_drop: Callable[[Client, str], None]
    subs: dict[str, Sub] = field(default_factory=dict)
    queue: collections.deque[str] = field(default_factory=collections.deque)
    # per queued item: when this node committed its block (time.monotonic()), None for replays
    # and answers; the sender observes commit -> written to the socket (``Hub.on_sent``)
    stamps: collections.deque[float | None] = field(default_factory=collections.deque)
    queued: int = 0
    dropped: str | None = None
    ready: asyncio.Event = field(default_factory=asyncio.Event)
    room: asyncio.Event = field(default_factory=asyncio.Event)
    replays: dict[str, asyncio.Task[None]] = field(default_factory=dict)
    counter: int = 0

    def offer(self, item: dict[str, Any], sub: Sub | None = None, encoded: str | None = None,
              committed: float | None = None) -> bool:
        """Queue an item without waiting; over ``QUEUE_BYTES`` the client is dropped.
        ``encoded``: the item's JSON already (shared by every subscriber of a block);
        ``committed``: when its block was committed here (live items)."""
        if self.dropped is not None:
            return False
        text = encoded if encoded is not None else encode(item)
        if sub is not None:
            text = text[:-1] + ',"subscription":' + json.dumps(sub.id) + "}"
        if self.queued + len(text) > QUEUE_BYTES and self.queue:
            self.on_drop(self, f"too slow: more than {QUEUE_BYTES} bytes of items waiting")
            return False
        self.queue.append(text)
        self.stamps.append(committed)
        self.queued += len(text)
        self.ready.set()
        if self.queued >= QUEUE_BYTES // 2:
            self.room.clear()
        return True

    async def put(self, item: dict[str, Any], sub: Sub) -> None:
        """Queue an item of a replay, waiting while the queue is half full."""
        while self.dropped is None and self.queued >= QUEUE_BYTES // 2:
            await self.room.wait()
        self.offer(item, sub)

    def take(self) -> str | None:
        got = self.take_stamped()
        return None if got is None else got[0]

    def take_stamped(self) -> tuple[str, float | None] | None:
        """The next item's JSON and when its block was committed here (None: not live)."""
        if not self.queue:
            self.ready.clear()
            return None
        text = self.queue.popleft()
        stamp = self.stamps.popleft()
        self.queued -= len(text)
        if self.queued < QUEUE_BYTES // 2:
            self.room.set()
        return text, stamp


class Hub:
    """The node's subscribers and the task that feeds them committed blocks."""

    def __init__(self, node: Node, status: Callable[[], dict[str, Any]], *, max_clients: int = 2048) -> None:
        self.node, self.status, self.max_clients = node, status, max_clients
        self.clients: set[Client] = set()
        self.done = node.app.chain.head  # the last height handed to live subscriptions
        self.dropped = 0  # clients dropped as too slow
        self.delivered = 0  # items queued
        self._wake: asyncio.Event | None = None
        self._task: asyncio.Task[None] | None = None
        self.closing = False
        self.on_delivered: Callable[[float], None] | None = None  # seconds one block's items took to queue
        self.on_sent: Callable[[float], None] | None = None  # seconds from a commit to one item on a socket
        self.commit_times: dict[int, float] = {}  # height -> time.monotonic() of its commit here

    # ------------------------------------------------------------ life cycle
    def committed(self, block: Any = None) -> None:
        """Called by the node after each commit: cheap, never waits."""
        height = getattr(block, "height", None)
        if isinstance(height, int):
            if len(self.commit_times) > 1000:  # not served (no loop yet): keep the newest only
                self.commit_times.clear()
            self.commit_times[height] = time.monotonic()
        if self._wake is not None:
            self._wake.set()

    def start(self) -> None:
        """On the node's event loop: start the feeding task."""
        self._wake = asyncio.Event()
        self.done = self.node.app.chain.head
        self._task = asyncio.get_running_loop().create_task(self._feed(), name="ws-hub")
        self._wake.set()

    async def stop(self) -> None:
        self.closing = True
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        for c in list(self.clients):
            self.drop(c, "the node is shutting down")

    # ------------------------------------------------------------ clients
    def join(self, reader: Reader | None) -> Client:
        if self._task is None:  # an app without a node process (tests): start on first use
            self.start()
        c = Client(reader=reader, on_drop=self.drop)
        c.room.set()
        self.clients.add(c)
        return c

    def leave(self, c: Client) -> None:
        self.clients.discard(c)
        for t in c.replays.values():
            t.cancel()
        c.replays.clear()

    def drop(self, c: Client, reason: str) -> None:
        if c.dropped is None:
            c.dropped = reason
            if reason.startswith("too slow"):
                self.dropped += 1
                log.info("dropped a WebSocket client: %s", reason)
        c.ready.set()
        c.room.set()
        self.leave(c)

    def subscribe(self, c: Client, sub: Sub) -> None:
        if sub.id in c.subs:
            raise ProtocolError("duplicate_subscription", f"subscription {sub.id!r} exists on this connection",
                                {"subscription": sub.id})
        if len(c.subs) >= MAX_SUBSCRIPTIONS:
            raise ProtocolError("too_many_subscriptions", f"at most {MAX_SUBSCRIPTIONS} subscriptions a connection",
                                {"limit": MAX_SUBSCRIPTIONS})
        c.subs[sub.id] = sub
        c.offer({"kind": "subscribed", "topic": sub.topic, "filters": sub.filters, "from_height": sub.next,
                 "head": self.done}, sub)
        if sub.topic == "status":
            sub.live = True
            c.offer(dict(self.status(), kind="status"), sub)
        elif sub.next > self.done:
            sub.live = True
        else:
            c.replays[sub.id] = asyncio.get_running_loop().create_task(self._replay(c, sub))

    def unsubscribe(self, c: Client, sub_id: str) -> None:
        if c.subs.pop(sub_id, None) is None:
            raise ProtocolError("unknown_subscription", f"no subscription {sub_id!r} on this connection",
                                {"subscription": sub_id})
        task = c.replays.pop(sub_id, None)
        if task is not None:
            task.cancel()
        c.offer({"kind": "unsubscribed", "subscription": sub_id})

    async def _replay(self, c: Client, sub: Sub) -> None:
        """Committed blocks from ``sub.next`` up to the hub's, at the client's pace; then live."""
        try:
            while sub.next <= self.done and c.dropped is None:
                facts = Facts(self.node, sub.next)
                for item in items_for(sub, facts, c.reader):
                    await c.put(item, sub)
                sub.next += 1
                await asyncio.sleep(0)
            if c.dropped is None and sub.id in c.subs:
                sub.live = True  # same loop step as the last check: the hub serves the next height
                c.offer({"kind": "live", "head": self.done}, sub)
        except LookupError as exc:
            c.offer(ProtocolError("replay_failed", str(exc)).item(), sub)
        finally:
            c.replays.pop(sub.id, None)

    async def _feed(self) -> None:
        assert self._wake is not None
        while True:
            await self._wake.wait()
            self._wake.clear()
            head = self.node.app.chain.head
            while self.done < head:
                height = self.done + 1
                try:
                    self._deliver(height)
                except Exception:  # one block that cannot be served must not end every subscription
                    log.exception("block %d: its subscribers could not be served", height)
                    self.done = height
                await asyncio.sleep(0)  # other work of the loop runs between blocks

    def _deliver(self, height: int) -> None:
        t0 = time.perf_counter()
        try:
            facts = Facts(self.node, height)
        except LookupError:
            log.warning("block %d vanished before its subscribers were served", height)
            self.done = height
            return
        status: str | None = None
        stamp = self.commit_times.pop(height, None)
        # id(item) -> (item, its JSON): an item many subscribers get (a block) is encoded once; the
        # item is kept with it so that its id cannot be reused by another item meanwhile
        shared: dict[int, tuple[dict[str, Any], str]] = {}
        for c in list(self.clients):
            for sub in list(c.subs.values()):
                if c.dropped is not None:
                    break
                if not sub.live:
                    continue
                if sub.topic == "status":
                    status = status or encode(dict(self.status(), kind="status"))
                    c.offer({}, sub, status)
                    continue
                if sub.next > height:
                    continue
                for item in items_for(sub, facts, c.reader):
                    known = shared.get(id(item))
                    if known is None:
                        known = shared[id(item)] = (item, encode(item))
                    if c.offer(item, sub, known[1], stamp):
                        self.delivered += 1
                sub.next = height + 1
        self.done = height
        if self.on_delivered is not None:
            self.on_delivered(time.perf_counter() - t0)
