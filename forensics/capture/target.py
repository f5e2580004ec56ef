"""Which URLs a capture may load: http(s) only, and never the node's own API (SSRF).

A (host, port) in ``CaptureSettings.forbidden`` forbids that port on every address the host
resolves to; when the host is an address of this machine (loopback, the unspecified address
``0.0.0.0``/``::``, or any address a socket can bind here) every address of this machine on
that port is forbidden: ``localhost``, ``127.x.y.z``, ``[::1]``, ``0.0.0.0`` and the
machine's own interface addresses. A name is resolved (system resolver, bounded in time)
before each request the browser makes, subresources and redirects included. docs/capture.md §4.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import ipaddress
import socket
from collections.abc import Iterable
from urllib.parse import urlsplit

from .types import CaptureRefused

__all__ = ["Guard", "check_url", "resolve"]

IP = ipaddress.IPv4Address | ipaddress.IPv6Address
SCHEMES = {"http": 80, "https": 443}
MAX_URL = 8192
RESOLVE_TIMEOUT_S = 5.0
_POOL = concurrent.futures.ThreadPoolExecutor(max_workers=4, thread_name_prefix="capture-dns")


def check_url(url: str) -> tuple[str, str, int]:
    """(scheme, host, port) of a URL a capture may start from, or ``CaptureRefused("bad_url")``."""
    if not isinstance(url, str) or not url or len(url) > MAX_URL:
        raise CaptureRefused("bad_url", "the URL is empty or longer than 8192 characters")
    if any(ord(c) < 0x21 or ord(c) == 0x7F for c in url):
        raise CaptureRefused("bad_url", "the URL holds spaces or control characters")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise CaptureRefused("bad_url", f"not a URL: {exc}") from None
    scheme = parts.scheme.lower()
    if scheme not in SCHEMES:
        raise CaptureRefused("bad_url", f"only http and https pages are captured, not {scheme or 'no'} scheme")
    if not parts.hostname:
        raise CaptureRefused("bad_url", "the URL has no host")
    if parts.username is not None or parts.password is not None:
        raise CaptureRefused("bad_url", "the URL carries a user name or password")
    return scheme, parts.hostname.lower().rstrip("."), port if port is not None else SCHEMES[scheme]


def _literal(host: str) -> IP | None:
    try:
        ip = ipaddress.ip_address(host.strip("[]").split("%")[0])
    except ValueError:
        return None
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    return ip


def resolve(host: str, timeout: float = RESOLVE_TIMEOUT_S) -> set[IP]:
    """The addresses of ``host`` (an address literal is itself); empty when it does not
    resolve within ``timeout`` seconds."""
    lit = _literal(host)
    if lit is not None:
        return {lit}
    future = _POOL.submit(socket.getaddrinfo, host, None, 0, socket.SOCK_STREAM)
    try:
        infos = future.result(timeout=timeout)
    except (OSError, UnicodeError, concurrent.futures.TimeoutError):
        return set()
    out: set[IP] = set()
    for info in infos:
        ip = _literal(str(info[4][0]))
        if ip is not None:
            out.add(ip)
    return out


def _is_local(ip: IP) -> bool:
    if ip.is_loopback or ip.is_unspecified:
        return True
    family = socket.AF_INET6 if ip.version == 6 else socket.AF_INET
    try:
        with socket.socket(family, socket.SOCK_STREAM) as s:
            s.bind((str(ip), 0))
        return True
    except OSError:
        return False


class Guard:
    """Decides, request by request, whether the browser may load a URL."""

    def __init__(self, forbidden: Iterable[tuple[str, int]]) -> None:
        self.exact: set[tuple[IP, int]] = set()
        self.local_ports: set[int] = set()
        for host, port in forbidden:
            for ip in resolve(host.lower().strip("[]")):
                if _is_local(ip):
                    self.local_ports.add(int(port))
                self.exact.add((ip, int(port)))
        self._cache: dict[str, set[IP]] = {}
        self._local: dict[IP, bool] = {}

    def _forbidden_ip(self, ip: IP, port: int) -> bool:
        if (ip, port) in self.exact:
            return True
        if port in self.local_ports:
            if ip not in self._local:
                self._local[ip] = _is_local(ip)
            return self._local[ip]
        return False

    def forbidden_address(self, address: str, port: int) -> bool:
        """Whether a connection the browser made (address, port) reached the node's own API."""
        ip = _literal(address)
        return ip is not None and self._forbidden_ip(ip, port)

    def verdict(self, url: str) -> tuple[str, str] | None:
        """None when the URL may be loaded, else (kind, reason): kind ``bad_url``,
        ``unresolved`` or ``forbidden_target``."""
        try:
            _scheme, host, port = check_url(url)
        except CaptureRefused as exc:
            return "bad_url", str(exc)
        addresses = self._cache.get(host)
        if addresses is None:
            addresses = self._cache[host] = resolve(host)
        if not addresses:
            return "unresolved", f"{host} does not resolve"
        bad = sorted(str(ip) for ip in addresses if self._forbidden_ip(ip, port))
        if bad:
            return "forbidden_target", f"{host}:{port} is the node's own API ({', '.join(bad)}): refused"
        return None

    async def averdict(self, url: str) -> tuple[str, str] | None:
        """``verdict`` without blocking the event loop on name resolution."""
        try:
            _scheme, host, _port = check_url(url)
        except CaptureRefused as exc:
            return "bad_url", str(exc)
        if _literal(host) is None and host not in self._cache:
            loop = asyncio.get_running_loop()
            self._cache[host] = await loop.run_in_executor(None, resolve, host)
        return self.verdict(url)

    def addresses(self, url: str) -> list[str]:
        """The addresses this guard resolved the URL's host to (an address literal: itself)."""
        host = (urlsplit(url).hostname or "").lower()
        lit = _literal(host)
        return [str(lit)] if lit is not None else sorted(str(ip) for ip in self._cache.get(host, set()))
