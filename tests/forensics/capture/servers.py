"""Loopback web servers for the capture tests: a well-behaved site and every kind of bad one
(10 GB with Content-Length and chunked, never-ending, hanging after the headers, redirecting
forever, a socket that accepts and never answers), and a stand-in for the node's own API
that counts every request it gets."""

from __future__ import annotations

import http.server
import socket
import socketserver
import threading
import time
from pathlib import Path

GB10 = 10 * (1 << 30)
CHUNK = b"\0" * (1 << 16)


class Handler(http.server.SimpleHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    site: Path = Path()
    hits: list[str]

    def log_message(self, format: str, *args: object) -> None:
        pass

    def translate_path(self, path: str) -> str:
        return str(self.site / path.split("?", 1)[0].lstrip("/"))

    def _endless(self, ctype: str, length: int | None) -> None:
        self.send_response(200)
        self.send_header("Content-Type", ctype)
        if length is None:
            self.send_header("Transfer-Encoding", "chunked")
        else:
            self.send_header("Content-Length", str(length))
        self.end_headers()
        sent, t_end = 0, time.monotonic() + 120
        try:
            while time.monotonic() < t_end and (length is None or sent < length):
                if length is None:
                    self.wfile.write(b"%x\r\n%s\r\n" % (len(CHUNK), CHUNK))
                else:
                    self.wfile.write(CHUNK)
                sent += len(CHUNK)
        except OSError:
            pass
        self.close_connection = True

    def do_GET(self) -> None:
        self.hits.append(self.path)
        name = self.path.split("?", 1)[0]
        if name.startswith("/loop"):
            n = int(self.path.split("?n=", 1)[1]) if "?n=" in self.path else 0
            self.send_response(302)
            self.send_header("Location", f"{name}?n={n + 1}")
            self.send_header("Content-Length", "0")
            self.end_headers()
        elif name.startswith("/to/"):
            self.send_response(302)
            self.send_header("Location", "http://" + self.path[4:])
            self.send_header("Content-Length", "0")
            self.end_headers()
        elif name == "/huge.html":
            self._endless("text/html", GB10)
        elif name == "/huge.jpg":
            self._endless("image/jpeg", GB10)
        elif name == "/endless.html":
            self._endless("text/html", None)
        elif name == "/endless.mp3":
            self._endless("audio/mpeg", None)
        elif name.startswith("/hang"):
            self.send_response(200)
            self.send_header("Content-Type", "text/html" if name.endswith(".html") else "image/png")
            self.send_header("Content-Length", "100000")
            self.end_headers()
            self.wfile.flush()
            time.sleep(90)
            self.close_connection = True
        else:
            super().do_GET()


class Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True
    allow_reuse_address = True


def serve(site: Path) -> tuple[Server, list[str]]:
    hits: list[str] = []
    handler = type("H", (Handler,), {"site": site, "hits": hits})
    srv = Server(("127.0.0.1", 0), handler)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    return srv, hits


def silent_socket() -> socket.socket:
    """A listening socket that accepts connections (the kernel's backlog) and never answers."""
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    s.listen(16)
    return s


def closed_port() -> int:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = int(s.getsockname()[1])
    s.close()
    return port
