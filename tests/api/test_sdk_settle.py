"""``api.sdk._settle`` (how a user registration waits for every node to commit it) against
real HTTP servers on loopback that play nodes: one that gets there, one that never answers
(a killed node), one stuck below the height (a node cut off from its peers), one that moves
slowly. The dead and the stuck ones must not hold the caller until the overall timeout (a
killed node cost every later registration of a test cluster 30 s); the slow one is waited for."""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from api.sdk import _settle


def _node(height: Callable[[], int]) -> ThreadingHTTPServer:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = json.dumps({"height": height(), "chain": "c"}).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    srv = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    return srv


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


SLOW_S = 1.5  # the slow node reaches height 12 this long after the fixture began


@pytest.fixture
def nodes() -> Iterator[tuple[float, dict[str, ThreadingHTTPServer]]]:
    t0 = time.monotonic()
    out = {"there": _node(lambda: 12), "stuck": _node(lambda: 7),
           "slow": _node(lambda: 9 + int((time.monotonic() - t0) / (SLOW_S / 3)))}
    yield t0, out
    for srv in out.values():
        srv.shutdown()
        srv.server_close()


def _cluster(tmp_path: Path, urls: list[str]) -> Path:
    (tmp_path / "cluster.json").write_text(json.dumps({"nodes": [{"api": u} for u in urls]}))
    return tmp_path


def _url(srv: ThreadingHTTPServer) -> str:
    return f"http://127.0.0.1:{srv.server_address[1]}"


def test_a_dead_node_and_a_stuck_one_are_left_and_a_slow_one_is_waited_for(
        tmp_path: Path, nodes: tuple[float, dict[str, ThreadingHTTPServer]]) -> None:
    began, srv = nodes
    data = _cluster(tmp_path, [f"http://127.0.0.1:{_closed_port()}", _url(srv["stuck"]), _url(srv["there"]),
                               _url(srv["slow"])])
    t0 = time.monotonic()
    _settle(data, 12, timeout=60.0, stall=1.0)
    # the dead node costs nothing and the stuck one its stall (1 s), far from the 60 s timeout;
    # the slow one, moving, is followed until it reaches 12
    assert time.monotonic() - t0 < 30
    assert time.monotonic() - began >= SLOW_S


def test_the_overall_timeout_still_bounds_a_node_that_keeps_moving(tmp_path: Path) -> None:
    t0 = time.monotonic()
    creeping = _node(lambda: int((time.monotonic() - t0) * 10))  # moves, but reaches 10**6 never
    try:
        data = _cluster(tmp_path, [_url(creeping)])
        _settle(data, 10**6, timeout=2.0, stall=1.0)
        assert 1.9 < time.monotonic() - t0 < 20
    finally:
        creeping.shutdown()
        creeping.server_close()
