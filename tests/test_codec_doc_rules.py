"""docs/transactions.md §1 as written: escapes, key order, integer bounds and lone surrogates of
canonical JSON (ledger/codec.py). Refusals are checked as ``EncodingError`` or ``ValueError``:
the doc says they are refused, not which Python exception carries the refusal."""

from __future__ import annotations

import pytest

from ledger.codec import EncodingError, canonical, parse

REFUSED = (EncodingError, ValueError)


def test_escapes_are_exactly_the_documented_ones() -> None:
    text = '"\\\b\f\n\r\t\x00\x1f\x7f\u2028/é'
    assert canonical(text) == ('"\\"\\\\\\b\\f\\n\\r\\t\\u0000\\u001f\x7f\u2028/é"').encode()


def test_keys_sort_by_code_point_not_utf16_unit() -> None:
    assert canonical({"\U0001f600": 1, "\uffff": 2}) == '{"\uffff":2,"\U0001f600":1}'.encode()


def test_minus_zero_is_written_zero_and_not_canonical_as_input() -> None:
    assert canonical(parse(b"-0")) == b"0"
    with pytest.raises(EncodingError):
        parse(b"-0", strict=True)


@pytest.mark.parametrize("value", [2**127 - 1, 2**127, -(2**127), 2**63 - 1, 10**4299, -(10**4299)])
def test_integers_up_to_4300_digits_round_trip_exactly(value: int) -> None:
    raw = canonical(value)
    assert raw == str(value).encode()
    assert parse(raw, strict=True) == value
    assert parse(canonical({"amount": value}), strict=True) == {"amount": value}


def test_integers_over_4300_digits_are_refused_both_ways() -> None:
    with pytest.raises(REFUSED):
        canonical({"n": 10**4300})
    with pytest.raises(REFUSED):
        parse(b'{"n":1' + b"0" * 4300 + b"}")
    with pytest.raises(REFUSED):
        parse(b"-1" + b"0" * 4300)


def test_lone_surrogates_have_no_canonical_form() -> None:
    with pytest.raises(EncodingError, match="not UTF-8"):
        parse(b'"\xed\xa0\x80"')
    for doc in (b'"\\ud800"', b'{"\\udc00":1}'):  # well-formed JSON, but not Unicode: refused
        with pytest.raises(EncodingError, match="lone surrogate"):
            parse(doc)
    for value in ("\ud800", {"\udc00": 1}, ["a\udfffb"]):
        with pytest.raises(REFUSED):
            canonical(value)
    with pytest.raises(REFUSED):
        parse(b'{"a":"\\ud800"}', strict=True)


def test_escaped_surrogate_pair_is_the_character_but_not_canonical() -> None:
    assert parse(b'"\\ud83d\\ude00"') == "\U0001f600"
    with pytest.raises(EncodingError):
        parse(b'"\\ud83d\\ude00"', strict=True)
    assert parse('"\U0001f600"'.encode(), strict=True) == "\U0001f600"


def _nest(levels: int, inner: object) -> object:
    for _ in range(levels):
        inner = [inner]
    return inner


def test_nesting_depth_counts_values_not_brackets() -> None:
    assert parse(canonical(_nest(32, 1)), strict=True) == _nest(32, 1)
    assert parse(canonical(_nest(32, [])), strict=True) == _nest(32, [])  # 33 arrays, the last empty
    for value in (_nest(33, 1), _nest(33, [])):
        with pytest.raises(EncodingError, match="nested deeper than 32"):
            canonical(value)
    with pytest.raises(EncodingError):
        parse(b"[" * 33 + b"1" + b"]" * 33)
