"""``/v1/ws``: live subscriptions over a WebSocket (docs/api.md §11; ``api/subscriptions.py``).

The handshake may be a signed request (docs/api-auth.md, method ``GET``, empty body): its
signer then also receives the evidence and case items it may read. Each client message is
answered by an item; a malformed one by an ``error`` item, never by closing the connection,
unless the client sends faster than ``MESSAGES_PER_S`` (then it is closed with 1008).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from typing import Any

from fastapi import APIRouter, WebSocket

from ledger.crypto import sm3

from ..auth import Authenticator, Identity
from ..errors import ApiError
from ..private import reader
from ..signing import HEADERS
from ..subscriptions import MAX_MESSAGE, Client, Hub, ProtocolError, parse_subscription

router = APIRouter(tags=["subscriptions"])

MESSAGES_PER_S = 20  # a client's messages, on average (bursts of BURST)
BURST = 100
CLOSE_SLOW, CLOSE_GOING_AWAY, CLOSE_TRY_LATER = 1008, 1001, 1013


def _identity(ws: WebSocket) -> Identity | ApiError | None:
    headers: dict[str, str | None] = {h: ws.headers.get(h) for h in HEADERS}
    if all(v is None for v in headers.values()):
        return None
    auth: Authenticator = ws.app.state.auth
    raw = ws.scope.get("raw_path")
    path = raw.decode("latin-1") if isinstance(raw, bytes) else ws.url.path
    query = ws.scope.get("query_string", b"").decode("latin-1")
    try:
        return auth.check("GET", f"{path}?{query}" if query else path, headers, sm3(b"").hex(), None)
    except ApiError as exc:
        return exc


def _message(text: str | None, data: bytes | None) -> dict[str, Any]:
    if text is None:
        raise ProtocolError("malformed_json", "send text frames holding one JSON object each")
    if len(text) > MAX_MESSAGE:
        raise ProtocolError("message_too_large", f"a message is at most {MAX_MESSAGE} characters",
                            {"limit": MAX_MESSAGE})
    try:
        msg = json.loads(text)
    except (ValueError, RecursionError):
        raise ProtocolError("malformed_json", "the message is not JSON") from None
    if not isinstance(msg, dict):
        raise ProtocolError("malformed_json", "the message is not a JSON object")
    return msg


def _handle(hub: Hub, c: Client, msg: dict[str, Any], ident: Identity | ApiError | None) -> None:
    if "unsubscribe" in msg:
        if set(msg) != {"unsubscribe"} or not isinstance(msg["unsubscribe"], str):
            raise ProtocolError("invalid_request", "unsubscribe takes only a subscription id (a string)")
        hub.unsubscribe(c, msg["unsubscribe"])
        return
    if "subscribe" not in msg:
        raise ProtocolError("invalid_request", "a message is {\"subscribe\": topic, ...} or {\"unsubscribe\": id}")
    c.counter += 1
    sub = parse_subscription(msg, f"s{c.counter}", hub.done)
    if sub.wants_private() and c.reader is None:
        if isinstance(ident, ApiError):
            raise ProtocolError(ident.code, ident.message, ident.details)
        what = f"{sub.filters['type']} events" if sub.topic == "events" else "case updates"
        raise ProtocolError("auth_missing", f"{what} are readable only by their parties, courts and regulators: "
                            "sign the handshake (docs/api-auth.md)")
    hub.subscribe(c, sub)


async def _send(ws: WebSocket, hub: Hub, c: Client) -> None:
    while True:
        if c.dropped is not None:
            return
        got = c.take_stamped()
        if got is None:
            await c.ready.wait()
            continue
        await ws.send_text(got[0])
        if got[1] is not None and hub.on_sent is not None:
            hub.on_sent(time.monotonic() - got[1])


async def _receive(ws: WebSocket, hub: Hub, c: Client, ident: Identity | ApiError | None) -> None:
    tokens, last = float(BURST), time.monotonic()
    while c.dropped is None:
        message = await ws.receive()
        if message["type"] == "websocket.disconnect":
            return
        now = time.monotonic()
        tokens = min(BURST, tokens + (now - last) * MESSAGES_PER_S) - 1
        last = now
        if tokens < 0:
            hub.drop(c, f"too many messages: more than {MESSAGES_PER_S} a second")
            return
        try:
            _handle(hub, c, _message(message.get("text"), message.get("bytes")), ident)
        except ProtocolError as exc:
            c.offer(exc.item())


@router.websocket("/v1/ws")
async def subscriptions(ws: WebSocket) -> None:
    """Subscribe to blocks, transactions, events, case updates and node status."""
    hub: Hub = ws.app.state.hub
    if hub.closing or len(hub.clients) >= hub.max_clients:
        await ws.close(code=CLOSE_TRY_LATER)  # before accepting: the handshake is refused (403)
        return
    ident = _identity(ws)
    await ws.accept()
    c = hub.join(reader(ident))
    tasks = [asyncio.create_task(_send(ws, hub, c)), asyncio.create_task(_receive(ws, hub, c, ident))]
    try:
        await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for t in tasks:
            t.cancel()
        for t in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await t
        reason = c.dropped
        hub.leave(c)
        if reason is not None:
            code = CLOSE_GOING_AWAY if hub.closing else CLOSE_SLOW
            with contextlib.suppress(Exception):  # a client that reads nothing may never take the close frame
                await asyncio.wait_for(ws.close(code=code, reason=reason[:120]), 1.0)
