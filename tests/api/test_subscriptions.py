"""``/v1/ws`` on an in-process node (one validator committing alone): blocks, transactions and
events, live and replayed from a height with no gap and no repeat; malformed messages get a
typed error item and the connection stays; floods of subscriptions and messages are bounded;
private topics need a signed handshake. Also /healthz, /readyz, /metrics and the address limit
of the same app."""

from __future__ import annotations

import json
from typing import Any

import pytest
from starlette.testclient import WebSocketTestSession
from starlette.websockets import WebSocketDisconnect

from api.operations import Limits, Operations
from api.subscriptions import MAX_SUBSCRIPTIONS, Client
from ledger.contracts.context import account_of

from .conftest import Api


def _next(ws: WebSocketTestSession, kind: str | None = None, sub: str | None = None) -> dict[str, Any]:
    """The next item (of ``kind`` and subscription ``sub``, skipping others)."""
    for _ in range(10_000):
        item = json.loads(ws.receive_text())
        if (kind is None or item["kind"] == kind) and (sub is None or item.get("subscription") == sub):
            return dict(item)
    raise AssertionError("no such item")


def _commit(api: Api, n: int, **kw: Any) -> list[dict[str, Any]]:
    txs = [api.tx(key=f"k{i}", value=f"v{i}", **kw) for i in range(n)]
    r = api.client.post("/v1/txs", json={"txs": [t.wire() for t in txs]})
    assert r.status_code == 200 and all(x["accepted"] for x in r.json()["results"]), r.text
    return [api.wait_committed(t.id_hex) for t in txs]


def test_blocks_arrive_live_one_object_each_with_its_height(api: Api) -> None:
    with api.client.websocket_connect("/v1/ws") as ws:
        ws.send_text(json.dumps({"subscribe": "blocks"}))
        ack = _next(ws)
        assert ack["kind"] == "subscribed" and ack["topic"] == "blocks" and ack["subscription"] == "s1"
        rec = _commit(api, 1)[0]
        seen = []
        while not seen or seen[-1]["height"] < rec["height"]:
            seen.append(_next(ws, "block"))
        heights = [b["height"] for b in seen]
        assert heights == list(range(heights[0], heights[0] + len(heights))), heights  # no gap, no repeat
        last = seen[-1]
        assert last["hash"] == api.client.get(f"/v1/blocks/{last['height']}").json()["hash"]
        assert rec["id"] in last["tx_ids"] and last["header"]["height"] == last["height"] and last["qc"]


def _delivered(api: Api) -> float:
    lines = [ln for ln in api.client.get("/metrics").text.splitlines()
             if ln.startswith("rongxin_ws_delivery_seconds_count ")]
    return float(lines[0].rsplit(" ", 1)[1]) if lines else 0.0


def test_live_items_are_timed_from_their_commit(api: Api) -> None:
    _commit(api, 2)
    before = _delivered(api)
    with api.client.websocket_connect("/v1/ws") as ws:
        ws.send_text(json.dumps({"subscribe": "blocks", "from_height": 1}))
        assert _next(ws)["kind"] == "subscribed"
        replayed = 0
        while (item := _next(ws))["kind"] != "live":
            replayed += 1
        assert replayed >= 2
        rec = _commit(api, 1)[0]
        live = 0
        while live == 0 or item["height"] < rec["height"]:
            item = _next(ws, "block")
            live += 1
        for _ in range(500):  # the sender observes just after the write the test has read
            if _delivered(api) >= before + live:
                break
            ws.send_text(json.dumps({"unsubscribe": "none"}))  # a round trip through the app
            _next(ws)
    # one observation per live block item written to this socket (blocks committed after the
    # one read here may add theirs)
    assert _delivered(api) >= before + live
    c = Client(None, lambda *_: None)
    c.offer({"kind": "block"}, None, '{"kind":"block"}')  # a replayed item: no commit time
    c.offer({"kind": "block"}, None, '{"kind":"block"}', committed=12.5)
    assert c.take_stamped() == ('{"kind":"block"}', None) and c.take_stamped() == ('{"kind":"block"}', 12.5)
    assert c.take_stamped() is None and c.queued == 0


def test_a_subscription_from_a_height_replays_then_goes_live_without_gap_or_repeat(api: Api) -> None:
    first = _commit(api, 2)
    mine = _commit(api, 1)[0]
    with api.client.websocket_connect("/v1/ws") as ws:
        ws.send_text(json.dumps({"subscribe": "blocks", "from_height": 1, "id": "b"}))
        assert _next(ws)["kind"] == "subscribed"
        heights: list[int] = []
        went_live = False
        while not went_live or heights[-1] < mine["height"] + 3:
            item = _next(ws, sub="b")
            if item["kind"] == "live":
                went_live = True
                continue
            heights.append(item["height"])
            if heights[-1] == mine["height"] + 1 and not went_live:
                _commit(api, 1)  # more blocks while it replays
        assert heights == list(range(1, len(heights) + 1))
        assert {first[0]["height"], mine["height"]} <= set(heights)


def test_transactions_by_account_and_by_type_and_events_by_type_and_key(api: Api) -> None:
    from ledger.crypto import SM2PrivateKey

    other = SM2PrivateKey.generate()
    me = account_of(api.user.public_key().point)
    start = api.client.get("/v1/status").json()["height"] + 1
    mine = _commit(api, 2)
    theirs = api.tx(key="o", value="1")
    from ledger.tx import Transaction

    theirs = Transaction.build(other, chain=theirs.chain, type="kv.set", payload={"key": "o", "value": "1"},
                               expiry=10**9)
    r = api.client.post("/v1/txs", json=theirs.wire())
    assert r.status_code in (200, 202), r.text
    api.wait_committed(theirs.id_hex)
    issued = api.tx(type="ft.issue", payload={"symbol": "PTS", "name": "points", "cap": 1000, "initial": 10})
    assert api.client.post("/v1/txs", json=issued.wire()).status_code in (200, 202)
    end = api.wait_committed(issued.id_hex)["height"]
    with api.client.websocket_connect("/v1/ws") as ws:
        ws.send_text(json.dumps({"subscribe": "txs", "account": me, "from_height": start, "id": "a"}))
        ws.send_text(json.dumps({"subscribe": "txs", "type": "ft.issue", "from_height": start, "id": "t"}))
        ws.send_text(json.dumps({"subscribe": "events", "type": "ft.*", "key": "PTS", "from_height": start, "id": "e"}))
        got: dict[str, list[dict[str, Any]]] = {"a": [], "t": [], "e": []}
        live: set[str] = set()
        while live != {"a", "t", "e"}:
            item = _next(ws)
            if item["kind"] == "live":
                live.add(item["subscription"])
            elif item["kind"] in ("tx", "event"):
                got[item["subscription"]].append(item)
        assert [t["id"] for t in got["a"]] == [m["id"] for m in mine] + [issued.id_hex]
        assert all(t["account"] == me and t["code"] == 0 for t in got["a"])
        assert [t["id"] for t in got["t"]] == [issued.id_hex] and got["t"][0]["payload"]["symbol"] == "PTS"
        types = [e["event"]["type"] for e in got["e"]]
        assert types and all(t.startswith("ft.") for t in types) and all(e["height"] == end for e in got["e"])
        assert set(types) == {"ft.Issue", "ft.Mint"}
        for t in set(types):  # the same records GET /v1/events lists
            assert [e for e in got["e"] if e["event"]["type"] == t] == [
                dict(e, kind="event", subscription="e") for e in
                api.client.get(f"/v1/events?type={t}&key=PTS&from_height={start}").json()["events"]]
        assert theirs.id_hex not in {t["id"] for t in got["a"]}


@pytest.mark.parametrize(("message", "code"), [
    ("not json", "malformed_json"),
    ("[1, 2]", "malformed_json"),
    ('{"subscribe": "everything"}', "invalid_request"),
    ('{"subscribe": "blocks", "colour": "red"}', "invalid_request"),
    ('{"subscribe": "blocks", "from_height": -1}', "invalid_request"),
    ('{"subscribe": "blocks", "from_height": 1.5}', "invalid_request"),
    ('{"subscribe": "blocks", "from_height": true}', "invalid_request"),
    ('{"subscribe": "txs", "account": "ABC"}', "invalid_request"),
    ('{"subscribe": "events"}', "invalid_request"),
    ('{"subscribe": "status", "from_height": 3}', "invalid_request"),
    ('{"subscribe": "blocks", "id": "' + "x" * 65 + '"}', "invalid_request"),
    ('{"unsubscribe": "nope"}', "unknown_subscription"),
    ('{"subscribe": "cases"}', "auth_missing"),
    ('{"subscribe": "events", "type": "case.Moved"}', "auth_missing"),
    ('{"subscribe": "blocks", "pad": "' + "x" * 5000 + '"}', "message_too_large"),
    ('{"hello": 1}', "invalid_request"),
])
def test_a_malformed_message_gets_a_typed_error_and_the_connection_stays(api: Api, message: str, code: str) -> None:
    with api.client.websocket_connect("/v1/ws") as ws:
        ws.send_text(message)
        err = _next(ws)
        assert err["kind"] == "error" and err["error"]["code"] == code, err
        assert isinstance(err["error"]["message"], str) and err["error"]["message"]
        ws.send_bytes(b"\x00binary")
        assert _next(ws)["error"]["code"] == "malformed_json"
        ws.send_text(json.dumps({"subscribe": "status"}))
        assert _next(ws)["kind"] == "subscribed"
        status = _next(ws)
        assert status["kind"] == "status" and status["node_id"] == "v0" and "height" in status


def test_floods_of_subscriptions_and_messages_are_bounded(api: Api) -> None:
    with api.client.websocket_connect("/v1/ws") as ws:
        for i in range(MAX_SUBSCRIPTIONS + 5):
            ws.send_text(json.dumps({"subscribe": "blocks", "id": f"b{i}"}))
        items = [_next(ws) for _ in range(MAX_SUBSCRIPTIONS + 5)]
        assert sum(i["kind"] == "subscribed" for i in items) == MAX_SUBSCRIPTIONS
        assert [i["error"]["code"] for i in items if i["kind"] == "error"] == ["too_many_subscriptions"] * 5
        ws.send_text(json.dumps({"subscribe": "blocks", "id": "b0"}))  # (limit reached first)
        ws.send_text(json.dumps({"unsubscribe": "b0"}))
        assert _next(ws, "unsubscribed")["subscription"] == "b0"
        ws.send_text(json.dumps({"subscribe": "blocks", "id": "b1"}))
        assert _next(ws, "error")["error"]["code"] == "duplicate_subscription"
    with api.client.websocket_connect("/v1/ws") as ws, pytest.raises(WebSocketDisconnect) as closed:
        for _ in range(1000):  # far more than 20 a second: closed with 1008
            ws.send_text("{}")
        for _ in range(2000):
            ws.receive_text()
    assert closed.value.code == 1008
    assert api.client.get("/healthz").status_code == 200  # the node is unaffected


def test_health_readiness_and_metrics_of_the_app(api: Api) -> None:
    assert api.client.get("/healthz").json() == {"status": "ok"}
    r = api.client.get("/readyz")
    assert r.status_code == 200 and r.json()["ready"] is True and r.json()["checks"]["synced"] is True
    _commit(api, 3)
    api.client.get("/v1/blocks/1")
    before = api.client.get("/v1/status").json()["height"]
    text = api.client.get("/metrics")
    after = api.client.get("/v1/status").json()["height"]
    assert text.headers["content-type"].startswith("text/plain; version=0.0.4")
    lines = text.text.splitlines()

    def value(prefix: str) -> float:
        found = [ln for ln in lines if ln.startswith(prefix + " ") or ln.startswith(prefix + "{")]
        assert found, f"no {prefix} in /metrics"
        return float(found[0].rsplit(" ", 1)[1])

    assert before <= value("rongxin_height") <= after  # blocks keep coming
    assert value("rongxin_transactions_committed_total") >= 3
    assert value("rongxin_commit_latency_seconds_count") >= 1
    assert value('rongxin_api_request_duration_seconds_count{code="200",method="GET",route="/v1/blocks/{height}"}') >= 1
    for name in ("rongxin_mempool_transactions", "rongxin_peers_online", "rongxin_sigverify_queue",
                 "rongxin_view_changes_total", "rongxin_committed_tps", "rongxin_ws_clients", "rongxin_ready"):
        value(name)
    assert 'route="/v1/blocks/1"' not in text.text  # templates, never raw paths


def test_unsigned_requests_over_the_address_limit_get_429_with_retry_after(api: Api) -> None:
    from api.http import create_app

    app = create_app(api.node, role="consensus", org="org", online=lambda: ["v0"],
                     ops=Operations(limits=Limits(address_rate=0.5, address_burst=2)))
    from fastapi.testclient import TestClient

    with TestClient(app) as client:
        codes = [client.get("/healthz") for _ in range(3)]
        assert [r.status_code for r in codes] == [200, 200, 429]
        r = codes[2]
        assert int(r.headers["Retry-After"]) >= 1
        assert r.json()["error"]["code"] == "rate_limited" and r.json()["error"]["details"]["retry_after"] >= 1


def test_private_transactions_reach_only_those_who_may_read_them(api: Api) -> None:
    from api.subscriptions import Facts, Sub, items_for
    from forensics.access import Reader

    start = api.client.get("/v1/status").json()["height"] + 1
    private = api.tx(type="evidence.file", payload={"evidence_id": "e1"})
    public = api.tx(key="p", value="1")
    for t in (private, public):
        assert api.client.post("/v1/txs", json=t.wire()).status_code in (200, 202)
    end = max(api.wait_committed(t.id_hex)["height"] for t in (private, public))
    with api.client.websocket_connect("/v1/ws") as ws:  # anonymous: the evidence filing is not shown
        ws.send_text(json.dumps({"subscribe": "txs", "from_height": start, "id": "all"}))
        ws.send_text(json.dumps({"subscribe": "txs", "type": "evidence.file", "from_height": start, "id": "ev"}))
        seen: dict[str, list[str]] = {"all": [], "ev": []}
        live: set[str] = set()
        while live != {"all", "ev"}:
            item = _next(ws)
            if item["kind"] == "live":
                live.add(item["subscription"])
            elif item["kind"] == "tx":
                seen[item["subscription"]].append(item["id"])
    assert public.id_hex in seen["all"] and private.id_hex not in seen["all"] and seen["ev"] == []
    # its sender may read it: the same filter admits it for a signed reader who is the sender
    me = Reader(account_of(api.user.public_key().point), None)
    found = [i["id"] for h in range(start, end + 1)
             for i in items_for(Sub("x", "txs", {"type": "evidence.file"}, h), Facts(api.node, h), me)]
    assert found == [private.id_hex]


def test_missed_turns_and_view_changes_are_counted_from_committed_blocks(api: Api) -> None:
    import time as _time

    from api.metrics import NodeMetrics
    from ledger.consensus.types import Block

    m = NodeMetrics(api.node)
    now_ms = int(_time.time() * 1000)
    # a block of view 9 whose QC is of view 5: views 6, 7 and 8 ended without their leader's block
    m.committed(Block.make({"height": 3, "view": 9, "proposer": "v0", "justify": {"view": 5}, "time": now_ms - 250},
                           []))
    text = m.exposition().decode()
    assert 'rongxin_missed_proposals_total{validator="v0"} 3.0' in text  # one validator: every turn is v0's
    assert "rongxin_view_changes_total 3.0" in text
    assert "rongxin_blocks_committed_total 1.0" in text and "rongxin_commit_latency_seconds_count 1.0" in text
    assert 'rongxin_commit_latency_seconds_bucket{le="0.1"} 0.0' in text
    assert 'rongxin_commit_latency_seconds_bucket{le="0.5"} 1.0' in text
