"""What the browser sent and received, from the DevTools protocol's Network events: one
``Exchange`` per request hop (a redirect is a hop), with the headers as sent and received,
the address and TLS facts, and the body spooled to a file when it finished within the limits.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = ["Exchange", "Recorder"]

Headers = list[tuple[str, str]]


def _pairs(headers: Any) -> Headers:
    if isinstance(headers, dict):
        out: Headers = []
        for k, v in headers.items():
            out.extend((str(k), part) for part in str(v).split("\n"))  # CDP joins repeats with \n
        return out
    return []


@dataclass
class Exchange:
    request_id: str
    hop: int
    url: str
    method: str
    resource_type: str
    started: float  # node clock, epoch seconds
    request_headers: Headers
    post_data: bytes | None = None
    status: int | None = None
    status_text: str = ""
    protocol: str = ""
    response_headers: Headers = field(default_factory=list)
    headers_text: str | None = None
    mime_type: str = ""
    remote_ip: str | None = None
    remote_port: int | None = None
    security: dict[str, Any] | None = None
    received: int = 0
    finished: bool = False
    failure: str | None = None
    body_path: Path | None = None
    body_size: int = 0
    truncated: str | None = None  # WARC-Truncated: "length", "time", "disconnect"

    def summary(self) -> dict[str, Any]:
        return {"url": self.url[:2048], "method": self.method, "type": self.resource_type, "status": self.status,
                "protocol": self.protocol, "remote": f"{self.remote_ip}:{self.remote_port}" if self.remote_ip else None,
                "mime": self.mime_type, "bytes_received": self.received, "body_saved": self.body_size,
                "failure": self.failure, "truncated": self.truncated}


class Recorder:
    """Collects Network events of one page into exchanges; spools finished bodies."""

    def __init__(self, spool: Path, response_limit: int, total_limit: int) -> None:
        self.spool = spool
        self.response_limit, self.total_limit = response_limit, total_limit
        # set by the browser phase: what to do when a limit is passed, how to ask the browser
        self.on_limit: Callable[[str], None] = lambda reason: None
        self.send: Callable[..., Any] | None = None
        self.exchanges: list[Exchange] = []
        self.current: dict[str, Exchange] = {}
        self._req_extra: dict[str, list[dict[str, Any]]] = {}
        self._resp_extra: dict[str, list[dict[str, Any]]] = {}
        self.total_received = 0
        self.saved_total = 0
        self.over_limit = False
        self.pending: set[asyncio.Task[None]] = set()

    # -- events --
    def on_request(self, ev: dict[str, Any]) -> None:
        rid = ev["requestId"]
        prev = self.current.get(rid)
        if prev is not None and ev.get("redirectResponse"):
            self._response(prev, ev["redirectResponse"])
            prev.finished = True
        req = ev.get("request", {})
        hop = prev.hop + 1 if prev is not None else 0
        post = None
        for entry in req.get("postDataEntries") or []:
            try:
                post = (post or b"") + base64.b64decode(entry.get("bytes", ""))
            except (binascii.Error, ValueError):
                post = None
        ex = Exchange(request_id=rid, hop=hop, url=req.get("url", ""), method=req.get("method", "GET"),
                      resource_type=ev.get("type", "Other"), started=time.time(),
                      request_headers=_pairs(req.get("headers")), post_data=post)
        self.current[rid] = ex
        self.exchanges.append(ex)

    def on_request_extra(self, ev: dict[str, Any]) -> None:
        self._req_extra.setdefault(ev["requestId"], []).append(ev)

    def on_response_extra(self, ev: dict[str, Any]) -> None:
        self._resp_extra.setdefault(ev["requestId"], []).append(ev)

    def on_response(self, ev: dict[str, Any]) -> None:
        ex = self.current.get(ev["requestId"])
        if ex is not None:
            self._response(ex, ev.get("response", {}))
            ex.resource_type = ev.get("type", ex.resource_type)

    def _response(self, ex: Exchange, resp: dict[str, Any]) -> None:
        ex.status = int(resp.get("status", 0))
        ex.status_text = str(resp.get("statusText", ""))
        ex.protocol = str(resp.get("protocol", ""))
        ex.response_headers = _pairs(resp.get("headers"))
        ex.mime_type = str(resp.get("mimeType", ""))
        ex.remote_ip = resp.get("remoteIPAddress")
        ex.remote_port = resp.get("remotePort")
        ex.security = resp.get("securityDetails")

    def on_data(self, ev: dict[str, Any]) -> None:
        ex = self.current.get(ev["requestId"])
        n = max(int(ev.get("encodedDataLength", 0)), int(ev.get("dataLength", 0)))
        self.total_received += n
        if ex is None:
            return
        ex.received += n
        if ex.received > self.response_limit and ex.truncated is None:
            ex.truncated = "length"
            self.on_limit(f"response over {self.response_limit} bytes: {ex.url[:300]}")
        if self.total_received > self.total_limit and not self.over_limit:
            self.over_limit = True
            self.on_limit(f"responses together over {self.total_limit} bytes")

    def on_failed(self, ev: dict[str, Any]) -> None:
        ex = self.current.get(ev["requestId"])
        if ex is not None:
            ex.failure = str(ev.get("errorText") or "failed") + (" (canceled)" if ev.get("canceled") else "")
            if ev.get("blockedReason"):
                ex.failure += f" (blocked: {ev['blockedReason']})"
            if ex.received and ex.truncated is None:
                ex.truncated = "disconnect"

    def on_finished(self, ev: dict[str, Any]) -> None:
        ex = self.current.get(ev["requestId"])
        if ex is None:
            return
        ex.finished = True
        ex.received = max(ex.received, int(ev.get("encodedDataLength", 0)))
        if ex.truncated is None and ex.method != "OPTIONS":
            task = asyncio.ensure_future(self._fetch_body(ex))
            self.pending.add(task)
            task.add_done_callback(self.pending.discard)

    async def _fetch_body(self, ex: Exchange) -> None:
        if self.send is None:
            return
        try:
            r = await self.send("Network.getResponseBody", {"requestId": ex.request_id})
        except Exception as exc:  # noqa: BLE001 - the protocol's errors have no narrower type
            ex.failure = ex.failure or f"body not available: {str(exc)[:200]}"
            ex.truncated = ex.truncated or "unspecified"
            return
        body = r.get("body", "")
        data = base64.b64decode(body) if r.get("base64Encoded") else str(body).encode("utf-8")
        if len(data) > self.response_limit or self.saved_total + len(data) > self.total_limit:
            ex.truncated = "length"
            return
        path = self.spool / f"body-{len(self.exchanges)}-{ex.request_id.replace('/', '_')}-{ex.hop}"
        await asyncio.get_running_loop().run_in_executor(None, path.write_bytes, data)
        ex.body_path, ex.body_size = path, len(data)
        self.saved_total += len(data)

    async def drain(self, timeout: float) -> None:
        if self.pending:
            await asyncio.wait(list(self.pending), timeout=max(0.1, timeout))

    # -- after the page --
    def finish(self) -> None:
        """Attach the raw headers (ExtraInfo events, matched hop by hop) and mark what never ended."""
        for ex in self.exchanges:
            reqs, resps = self._req_extra.get(ex.request_id, []), self._resp_extra.get(ex.request_id, [])
            if ex.hop < len(reqs) and reqs[ex.hop].get("headers"):
                ex.request_headers = _pairs(reqs[ex.hop]["headers"])
            if ex.hop < len(resps):
                extra = resps[ex.hop]
                if extra.get("headers"):
                    ex.response_headers = _pairs(extra["headers"])
                ex.headers_text = extra.get("headersText")
            if not ex.finished and ex.failure is None:
                ex.failure = "did not finish before the capture ended"
                ex.truncated = ex.truncated or ("time" if ex.status is not None else None)
