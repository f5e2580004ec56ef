"""Canonical JSON and transactions: form, id, signature, and every kind of bad input."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ledger.codec import EncodingError, canonical, parse
from ledger.crypto import SM2PrivateKey, sm3
from ledger.tx import MAX_TX_BYTES, InvalidTransaction, Transaction

KEY = SM2PrivateKey.generate()

json_values = st.recursive(
    st.none() | st.booleans() | st.integers(min_value=-(2**63), max_value=2**63) | st.text(max_size=20),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4),
    max_leaves=20,
)


@settings(max_examples=200, deadline=None)
@given(json_values)
def test_canonical_round_trip_and_strict_parse(value: object) -> None:
    data = canonical(value)
    assert parse(data, strict=True) == value
    assert canonical(parse(data)) == data


def test_canonical_form_is_exact() -> None:
    assert canonical({"b": 1, "a": [True, None, "名"]}) == '{"a":[true,null,"名"],"b":1}'.encode()
    for bad in (1.5, {"a": float("nan")}, {1: "x"}, b"bytes", {"a": {1, 2}}):
        with pytest.raises(EncodingError):
            canonical(bad)
    for bad_text in (b'{"a":1,"a":2}', b'{"a":1.0}', b"[NaN]", b"\xff", b'{"a":', b"[" * 100 + b"]" * 100):
        with pytest.raises(EncodingError):
            parse(bad_text)
    with pytest.raises(EncodingError, match="canonical form"):
        parse(b'{"b":1, "a":2}', strict=True)


def _tx(**kw: object) -> Transaction:
    args = {"chain": "test-chain", "type": "kv.set", "payload": {"key": "k", "value": "v"}, "expiry": 100}
    args.update(kw)
    return Transaction.build(KEY, **args)  # type: ignore[arg-type]


def test_transaction_id_signature_and_wire_round_trip() -> None:
    tx = _tx()
    assert tx.id == sm3(tx.body_bytes)
    assert tx.encode() == canonical(tx.wire())
    again = Transaction.decode(tx.encode())
    assert again == tx and again.id == tx.id
    again.verify_signature()
    again.check_for_chain("test-chain", 100)
    assert _tx().id != tx.id, "random nonces make ids distinct"


@pytest.mark.parametrize(
    ("mutate", "reason"),
    [
        (lambda w: w.replace(b'"v"}', b'"w"}'), "bad signature"),
        (lambda w: w.replace(b'"sig":"', b'"sig":"00'), "bad signature"),
        (lambda w: b"{not json", "malformed"),
        (lambda w: w.replace(b'"expiry":100', b'"expiry":1.5'), "malformed"),
        (lambda w: w.replace(b'"type":"kv.set"', b'"type":"KV SET"'), "malformed"),
        (lambda w: w.replace(b'"nonce"', b'"once"'), "malformed"),
        (lambda w: w.replace(b'"sender":"04', b'"sender":"05'), "bad signature"),
    ],
)
def test_bad_transactions_are_refused_with_a_reason(mutate, reason: str) -> None:
    wire = _tx().encode()
    with pytest.raises(InvalidTransaction, match=reason):
        tx = Transaction.decode(mutate(wire))
        tx.verify_signature()


def test_wrong_chain_expired_and_oversized() -> None:
    tx = _tx(expiry=10)
    with pytest.raises(InvalidTransaction, match="chain"):
        tx.check_for_chain("other-chain", 1)
    with pytest.raises(InvalidTransaction, match="expired"):
        tx.check_for_chain("test-chain", 11)
    with pytest.raises(InvalidTransaction, match="limit"):
        _tx(payload={"blob": "x" * MAX_TX_BYTES})
    with pytest.raises(InvalidTransaction, match="limit"):
        Transaction.decode(b" " * (MAX_TX_BYTES + 1))


def test_nonce_key_is_per_sender_and_nonce() -> None:
    a, b = _tx(nonce=7), _tx(nonce=7, payload={"other": 1})
    assert a.nonce_key == b.nonce_key and a.id != b.id
    assert _tx(nonce=8).nonce_key != a.nonce_key


def test_lone_surrogates_and_huge_integers_are_encoding_errors() -> None:
    # an escaped lone surrogate parses in Python's json but has no UTF-8 form
    for bad in (b'{"a":"\\ud800"}', b'["x\\udfff"]', b'{"\\udc00":1}', b'{"a":{"b":["\\ud800z"]}}'):
        with pytest.raises(EncodingError, match="surrogate"):
            parse(bad)
    assert parse(b'{"a":"\\ud83d\\ude00"}') == {"a": "\U0001f600"}, "a surrogate pair is one character"
    assert parse(b'{"a":"\\u00e9\\n"}') == {"a": "é\n"}
    with pytest.raises(EncodingError, match="surrogate"):
        parse('{"a":"\ud800"}')  # a Python str holding one
    with pytest.raises(EncodingError, match="surrogate"):
        canonical({"a": "\ud800"})
    # integers longer than Python's int/str conversion limit (4,300 digits)
    with pytest.raises(EncodingError, match="malformed"):
        parse(b'{"a":' + b"9" * 4301 + b"}")
    with pytest.raises(EncodingError):
        canonical({"a": 10**4400})
    assert parse(b"[" + b"9" * 4300 + b"]") == [int("9" * 4300)]


@pytest.mark.parametrize("field", ["type", "chain"])
def test_a_trailing_newline_does_not_pass_the_patterns(field: str) -> None:
    wire = _tx().encode()
    value = b'"kv.set"' if field == "type" else b'"test-chain"'
    with pytest.raises(InvalidTransaction, match=field):
        Transaction.decode(wire.replace(value, value[:-1] + b'\\n"'))
    with pytest.raises(EncodingError, match=field):
        _tx(**{field: "kv.set\n" if field == "type" else "test-chain\n"})


def test_unknown_body_fields_are_named() -> None:
    wire = _tx().encode().replace(b'"chain"', b'"extra":1,"chain"')
    with pytest.raises(InvalidTransaction, match=r"unknown \['extra'\]"):
        Transaction.decode(wire)


def test_a_float_in_the_payload_is_refused_on_every_path() -> None:
    # a dict built by a caller is walked; a submission's bytes are walked once by parse and the
    # intake then decodes the parsed items without walking them again
    from ledger.node.intake import check_submission

    body = _tx().wire()["body"]
    body["payload"] = {"k": 1.5}
    with pytest.raises(InvalidTransaction, match="float"):
        Transaction.decode({"body": body, "sig": "00" * 64})
    wire = _tx().encode()
    raw = wire.replace(b'"value":"v"', b'"value":1.5')
    assert raw != wire
    from ledger.node.intake import MalformedSubmission

    with pytest.raises(MalformedSubmission, match="float"):
        check_submission(b'{"txs":[' + raw + b"]}")


@pytest.mark.parametrize("value", ["AB", "ab cd", "abc", " ab", "ab\n", "0x12", "éé", "+1", "１２"])
def test_hex_fields_have_one_spelling(value: str) -> None:
    """Upper case, spaces, odd length, prefixes and non-ASCII digits are refused: a value has
    exactly one hex spelling, so a signed message has exactly one encoding."""
    from ledger.codec import hexbytes

    with pytest.raises(EncodingError, match="lowercase hex"):
        hexbytes(value, "field")
    assert hexbytes("00ff", "field") == b"\x00\xff" and hexbytes("", "field") == b""
