"""``rongxin up`` and the demo identities talk only to their own consortium's nodes: a node
of another local consortium answering on one of the ports (two consortia set up at the same
moment can pick the same free ports) is not taken for ours. A real HTTP server on loopback
answers ``/v1/status`` as a foreign node would."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from api.cluster import api_ok
from api.identities import _freshest
from api.sdk import ClientError

OURS = "ab" * 32


def _server(status: dict[str, object]) -> ThreadingHTTPServer:
    body = json.dumps(status).encode()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *_: object) -> None:
            pass

    srv = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    return srv


@pytest.fixture
def nodes() -> Iterator[tuple[str, str]]:
    base = {"role": "consensus", "org": "County A", "chain": "rongxin-local", "head_hash": "00" * 32, "view": 0,
            "mempool": 0, "validators": [], "peers_online": []}
    foreign = _server({**base, "node_id": "val1", "genesis": "cd" * 32, "height": 50})
    ours = _server({**base, "node_id": "val1", "genesis": OURS, "height": 3})
    try:
        yield (f"http://127.0.0.1:{foreign.server_address[1]}", f"http://127.0.0.1:{ours.server_address[1]}")
    finally:
        foreign.shutdown()
        ours.shutdown()


def test_a_foreign_node_is_not_ours(nodes: tuple[str, str]) -> None:
    foreign, ours = nodes
    assert api_ok(foreign) and api_ok(ours)  # both answer a plain status
    assert not api_ok(foreign, node_id="val1", genesis=OURS)
    assert api_ok(ours, node_id="val1", genesis=OURS)
    assert not api_ok(ours, node_id="val2", genesis=OURS)


def test_identities_skip_a_foreign_node_even_if_it_is_further_ahead(nodes: tuple[str, str]) -> None:
    foreign, ours = nodes
    client, status = _freshest([foreign, ours], OURS)
    assert client.api == ours
    assert status["genesis"] == OURS and status["height"] == 3
    with pytest.raises(ClientError, match="no node of this consortium"):
        _freshest([foreign], OURS)
