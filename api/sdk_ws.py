"""The SDK's subscriptions (docs/api.md §11): ``LedgerClient.subscribe`` yields the items of one
``/v1/ws`` subscription and, when the connection drops, reconnects and resumes from the last
height it saw, skipping what it already yielded, so the caller sees every item once in order.

    for block in client.subscribe("blocks", from_height=1):
        print(block["height"], block["hash"])

A subscription the node refuses (an ``error`` item: a malformed filter, a private topic
without a signed handshake) raises ``ClientError`` with the node's code; it is not retried.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from .sdk import ClientError

if TYPE_CHECKING:
    from .sdk import LedgerClient

CONTROL = ("subscribed", "live", "unsubscribed")


def _position(item: dict[str, Any]) -> tuple[int, int, int] | None:
    h = item.get("height")
    if not isinstance(h, int) or item.get("kind") == "status":
        return None
    return h, int(item.get("index", -1)), int(item.get("seq", -1))


def subscribe(client: LedgerClient, topic: str, *, from_height: int | None = None, retry_s: float = 1.0,
              max_retries: int | None = None, **filters: str) -> Iterator[dict[str, Any]]:
    """Items of one subscription, for ever (close the generator to stop). ``max_retries``:
    reconnections in a row that may fail before ``ClientError`` (None: no limit); the waits
    between them double from ``retry_s`` up to 30 s."""
    from websockets.exceptions import InvalidHandshake, WebSocketException
    from websockets.sync.client import connect

    url = "ws" + client.api[4:] + "/v1/ws"
    start, last = from_height, None  # the height to ask from; the position of the last item yielded
    failures = 0
    while True:
        headers = client.identity.headers("GET", "/v1/ws") if client.identity is not None else None
        msg: dict[str, Any] = {"subscribe": topic, **filters}
        if start is not None and topic != "status":
            msg["from_height"] = start
        try:
            with connect(url, additional_headers=headers, ssl=client.tls if url.startswith("wss") else None,
                         open_timeout=client.timeout, compression=None, max_size=1 << 24) as ws:
                ws.send(json.dumps(msg))
                for raw in ws:
                    item = json.loads(raw)
                    kind = item.get("kind")
                    if kind == "error":
                        err = item.get("error") or {}
                        raise ClientError(str(err.get("message")), None, str(err.get("code")))
                    failures = 0
                    if kind in CONTROL:
                        if kind == "subscribed" and start is None and topic != "status":
                            start = int(item["from_height"])  # a reconnection resumes from here
                        continue
                    pos = _position(item)
                    if pos is not None:
                        if last is not None and pos <= last:
                            continue  # yielded before the connection dropped
                        last, start = pos, pos[0]
                    yield item
                raise ConnectionError("the node closed the connection")  # e.g. 1001 going away: reconnect
        except (OSError, TimeoutError, InvalidHandshake, WebSocketException) as exc:
            failures += 1
            if max_retries is not None and failures > max_retries:
                raise ClientError(f"subscription to {url} lost: {type(exc).__name__}: {exc}") from None
            time.sleep(min(30.0, retry_s * 2 ** (failures - 1)))
