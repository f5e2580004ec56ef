"""Bad input on every route: malformed JSON, wrong types, lone surrogates, oversized bodies,
unknown fields. Each gets a 4xx with the one error body, never a 500."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
from httpx2 import Response

from api.limits import DEFAULT_BODY_LIMIT, PROOF_PACKAGE_LIMIT, TXS_BODY_LIMIT
from api.schemas import ErrorBody
from ledger.node.intake import MAX_BATCH

from .conftest import Api

GETS = ["/v1/status", "/v1/txs/" + "ab" * 32, "/v1/blocks/0", "/v1/state/kv/x", "/v1/events?type=ft.Transfer",
        "/v1/audit", "/v1/contracts/points"]


def error_of(r: Response, *statuses: int) -> dict:
    assert r.status_code in statuses, (r.status_code, r.text[:300])
    body = ErrorBody.model_validate(r.json()).error
    assert isinstance(body.code, str) and body.code and isinstance(body.message, str) and body.message
    assert set(r.json()) == {"error"} and set(r.json()["error"]) == {"code", "message", "details"}
    return body.model_dump()


def wire(api: Api) -> dict:
    return json.loads(api.tx().encode())


# ---------------------------------------------------------------- POST /v1/txs
@pytest.mark.parametrize("raw", [
    b"", b"{", b'{"body": ', b"{not json", b"\xff\xfe", b"[1,2", b'{"a":1,"a":2}', b'{"a":1.5}', b"NaN",
    b'{"body":{"chain":"\\ud800"},"sig":"00"}', b'{"txs":["\\udc00"]}', b'{"\\ud800":1}',
    b'{"a":' + b"9" * 4301 + b"}", b"[" * 200 + b"]" * 200,
])
def test_malformed_json_is_400(api: Api, raw: bytes) -> None:
    err = error_of(api.client.post("/v1/txs", content=raw), 400)
    assert err["code"] == "malformed_json"


@pytest.mark.parametrize("raw", [b"[1,2,3]", b'"x"', b"1", b"null", b'{"txs": "x"}', b'{"txs": {}}',
                                 b'{"txs": [], "extra": 1}', b'{"body": {}, "sig": "00", "extra": 1}'])
def test_wrong_shapes_and_unknown_fields_are_422(api: Api, raw: bytes) -> None:
    err = error_of(api.client.post("/v1/txs", content=raw), 422)
    assert err["code"] == "invalid_request"


@pytest.mark.parametrize(("field", "value"), [
    ("nonce", "1"), ("nonce", True), ("nonce", -1), ("nonce", 2**63), ("expiry", None), ("payload", [1]),
    ("sender", 5), ("sender", "04" + "zz" * 64), ("type", "kv.set\n"), ("type", "KV"), ("chain", ""),
    ("chain", "c\n"), ("extra", 1), ("payload", {"v": "\ud800"}), ("type", "kv.\udfff"),
])
def test_bad_transaction_fields_are_refused_with_the_reason(api: Api, field: str, value: object) -> None:
    tx = wire(api)
    tx["body"][field] = value
    raw = json.dumps(tx).encode()  # ensure_ascii: a lone surrogate travels as its \\u escape
    r1 = api.client.post("/v1/txs", content=raw)
    err = error_of(r1, 400, 422)
    assert (r1.status_code, err["code"]) in ((422, "invalid_transaction"), (400, "malformed_json"))
    # in a batch, the same transaction is refused on its own with the reason, the others answered
    good = api.tx()
    r = api.client.post("/v1/txs", content=b'{"txs":[' + raw + b"," + good.encode() + b"]}")
    if err["code"] == "malformed_json":  # a lone surrogate makes the whole document unreadable
        error_of(r, 400)
    else:
        assert r.status_code == 200
        first, second = r.json()["results"]
        assert first["accepted"] is False and first["reason"] == err["message"]
        assert second == {"id": good.id_hex, "accepted": True, "status": "pending"}


def test_signature_of_wrong_type_or_garbage(api: Api) -> None:
    for sig in (5, None, "zz", "ABCD"):  # not a signature's wire form
        tx = wire(api)
        tx["sig"] = sig
        err = error_of(api.client.post("/v1/txs", content=json.dumps(tx).encode()), 422)
        assert err["code"] == "invalid_transaction" and err["details"] == {"id": None}
    for sig in ("", "00" * 200, "3006020101020101"):  # hex that does not verify
        tx = wire(api)
        tx["sig"] = sig
        err = error_of(api.client.post("/v1/txs", content=json.dumps(tx).encode()), 400)
        assert err["code"] == "transaction_refused" and "signature" in err["message"] and err["details"]["id"]


def test_too_many_transactions_in_a_batch_is_413_before_any_is_checked(api: Api) -> None:
    item = api.tx().encode()
    r = api.client.post("/v1/txs", content=b'{"txs":[' + b",".join([item] * (MAX_BATCH + 1)) + b"]}")
    err = error_of(r, 413)
    assert err["code"] == "too_many_transactions" and str(MAX_BATCH) in err["message"]
    assert api.node.mempool.get(json_id(item)) is None


def json_id(item: bytes) -> bytes:
    from ledger.tx import Transaction

    return Transaction.decode(item).id


def test_announced_oversized_body_is_413_unread(api: Api) -> None:
    # the announced length alone decides: the few bytes actually sent are never read
    r = api.client.post("/v1/txs", content=b"{}", headers={"content-length": str(TXS_BODY_LIMIT + 1)})
    err = error_of(r, 413)
    assert err["code"] == "body_too_large" and err["details"]["limit"] == TXS_BODY_LIMIT


@pytest.mark.parametrize("announced", [PROOF_PACKAGE_LIMIT + 1, 64 * 1024 * 1024])
def test_a_proof_package_over_its_limit_is_413_unread(api: Api, announced: int) -> None:
    """PUT /v1/works/{id}/certificate takes a proof package (8.5 KB measured), not 64 MiB."""
    assert PROOF_PACKAGE_LIMIT == 4 * 1024 * 1024
    r = api.client.put("/v1/works/w-1/certificate", content=b"PK", headers={"content-length": str(announced)})
    err = error_of(r, 413)
    assert err["code"] == "body_too_large" and err["details"]["limit"] == PROOF_PACKAGE_LIMIT


def test_streamed_oversized_body_is_413(api: Api) -> None:
    sent = []

    def chunks() -> Iterator[bytes]:
        for _ in range(TXS_BODY_LIMIT // (1 << 20) + 4):
            sent.append(1)
            yield b" " * (1 << 20)

    r = api.client.post("/v1/txs", content=chunks())  # chunked: no Content-Length
    assert error_of(r, 413)["code"] == "body_too_large"


def test_a_body_just_under_the_limit_is_read(api: Api) -> None:
    raw = b'{"txs":[' + api.tx().encode() + b"]}"
    padded = raw + b" " * (TXS_BODY_LIMIT - len(raw))
    r = api.client.post("/v1/txs", content=padded)
    assert r.status_code == 200 and r.json()["results"][0]["accepted"] is True


# ---------------------------------------------------------------- the read routes
@pytest.mark.parametrize("path", GETS)
def test_reads_refuse_bodies_over_their_limit(api: Api, path: str) -> None:
    r = api.client.request("GET", path, content=b"x" * (DEFAULT_BODY_LIMIT + 1))
    assert error_of(r, 413)["code"] == "body_too_large"


@pytest.mark.parametrize("path", [
    "/v1/blocks/-1", "/v1/blocks/abc", "/v1/blocks/1.5", "/v1/blocks/" + "9" * 4301, f"/v1/blocks/{2**63}",
    "/v1/txs/xyz", "/v1/txs/" + "ab" * 33, "/v1/txs/" + "%ED%A0%80" * 8,
    "/v1/events", "/v1/events?type=", "/v1/events?type=x&limit=0", "/v1/events?type=x&limit=abc",
    "/v1/events?type=x&from_height=-1", "/v1/events?type=x&from_height=" + "9" * 5000,
    "/v1/events?type=x&to_height=1.5", "/v1/events?type=x&from_height=5&to_height=1",
    "/v1/audit?limit=-5", "/v1/audit?since_ms=x", "/v1/audit?since_ms=10&until_ms=5",
    "/v1/audit?until_ms=" + "1" * 4400, "/v1/state/" + "k" * 5000, "/v1/contracts/" + "n" * 300,
])
def test_wrong_parameters_are_4xx(api: Api, path: str) -> None:
    err = error_of(api.client.get(path), 400, 422)
    assert err["code"] in ("invalid_request", "invalid_query")


@pytest.mark.parametrize("path", [
    "/v1/state/%ED%A0%80", "/v1/state/%FF%FE", "/v1/contracts/%ED%A0%80", "/v1/events?type=%ED%A0%80",
    "/v1/events?type=ft.Transfer&key=%ED%A0%80", "/v1/audit?actor=%ED%A0%80&type=%ED%A0%80*",
    "/v1/state/%00", "/v1/events?type=%00", "/v1/contracts/%0A",
])
def test_undecodable_and_control_characters_never_500(api: Api, path: str) -> None:
    r = api.client.get(path)
    if r.status_code != 200:
        error_of(r, 400, 404, 422)


def test_unknown_routes_and_methods_have_the_error_shape(api: Api) -> None:
    assert error_of(api.client.get("/v1/nothing"), 404)["code"] == "not_found"
    r = api.client.put("/v1/txs", content=b"{}")
    assert error_of(r, 405)["code"] == "method_not_allowed" and r.headers["allow"] == "POST"
    assert error_of(api.client.delete("/v1/status"), 405)["code"] == "method_not_allowed"
    assert error_of(api.client.get("/v1/txs/" + "ab" * 32), 404)["details"] == {"id": "ab" * 32, "status": "unknown"}
