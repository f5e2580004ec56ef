"""Per-identity rate limits (docs/operations.md §4): token buckets, answered 429 with
``Retry-After``.

A signed request is charged to its signer (the certificate fingerprint) once its signature
has verified (``Authenticator.limit``): nobody can spend another identity's allowance by
sending that identity's public certificate. An unsigned request is charged to the client's
address when ``address_rate`` is set (off by default: on loopback every client shares one
address). Buckets are kept for at most ``MAX_KEYS`` keys; the least recently used full ones
go first.
"""

from __future__ import annotations

import math
import time
from collections import OrderedDict
from collections.abc import Callable

from starlette.types import ASGIApp, Receive, Scope, Send

from .errors import ApiError, error_body
from .signing import H_CERT

MAX_KEYS = 100_000


def too_many(retry_after: float, what: str, rate: float, burst: int) -> ApiError:
    wait = max(1, math.ceil(retry_after))
    return ApiError(429, "rate_limited", f"too many requests from {what}: at most {rate:g} a second "
                    f"(bursts of {burst}); retry in {wait} s", {"retry_after": wait, "rate": rate, "burst": burst},
                    headers={"Retry-After": str(wait)})


class TokenBuckets:
    """``rate`` tokens a second up to ``burst`` per key; ``take`` answers the wait or 0."""

    def __init__(self, rate: float, burst: int, clock: Callable[[], float] = time.monotonic) -> None:
        self.rate, self.burst, self.clock = rate, burst, clock
        self.buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()  # key -> (tokens, when)
        self.refused = 0

    def take(self, key: str) -> float:
        """0 when a request of ``key`` may go now, else the seconds until it may."""
        now = self.clock()
        tokens, when = self.buckets.pop(key, (float(self.burst), now))
        tokens = min(float(self.burst), tokens + (now - when) * self.rate)
        if tokens >= 1:
            self.buckets[key] = (tokens - 1, now)
            wait = 0.0
        else:
            self.buckets[key] = (tokens, now)
            self.refused += 1
            wait = (1 - tokens) / self.rate
        while len(self.buckets) > MAX_KEYS:
            self.buckets.popitem(last=False)
        return wait


class RateLimits:
    """The node's two limits (either may be off)."""

    def __init__(self, identity: TokenBuckets | None, address: TokenBuckets | None) -> None:
        self.identity, self.address = identity, address

    @property
    def refused(self) -> int:
        return sum(b.refused for b in (self.identity, self.address) if b is not None)

    def charge_identity(self, fingerprint: str) -> None:
        """Raise 429 when the signer is over its limit."""
        b = self.identity
        if b is not None and b.rate > 0:
            wait = b.take(fingerprint)
            if wait > 0:
                raise too_many(wait, "this identity", b.rate, b.burst)


class AddressLimit:
    """ASGI middleware: unsigned HTTP requests charged to the client's address."""

    def __init__(self, app: ASGIApp, limits: Callable[[], RateLimits | None]) -> None:
        self.app, self.limits = app, limits

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        limits = self.limits()
        b = limits.address if limits is not None else None
        if scope["type"] != "http" or b is None or b.rate <= 0 or any(
                name == H_CERT.lower().encode() for name, _v in scope.get("headers", ())):
            await self.app(scope, receive, send)
            return
        client = scope.get("client")
        wait = b.take(str(client[0]) if client else "?")
        if wait <= 0:
            await self.app(scope, receive, send)
            return
        err = too_many(wait, "this address", b.rate, b.burst)
        body = error_body(err.code, err.message, err.details)
        await send({"type": "http.response.start", "status": 429, "headers": [
            (b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
            (b"retry-after", str(err.details["retry_after"]).encode())]})
        await send({"type": "http.response.body", "body": body})
