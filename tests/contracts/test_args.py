"""The argument toolkit shared by the token templates (ledger.contracts.args, docs/tokens.md §2)."""

from __future__ import annotations

from typing import Any

import pytest

from ledger.contracts import args, ft, nft
from ledger.contracts.context import Context, Refused, TxType
from ledger.tx import Transaction


def test_both_templates_refuse_with_the_toolkits_error() -> None:
    assert ft.TokenRefused is args.TokenRefused is nft.TokenRefused
    assert issubclass(args.TokenRefused, Refused)


@pytest.mark.parametrize(("value", "reason"), [
    (None, "arguments must be a JSON object, not null"),
    ({"a": 1}, "missing fields 'x', 'y'"),
    ({"x": 1}, "missing field 'y'"),
    ({"x": 1, "y": 2, "w": 3, "v": 4}, "unknown field 'v'; the fields are 'x', 'y', 'z'"),
])
def test_fields_refuses_in_the_documented_order(value: Any, reason: str) -> None:
    with pytest.raises(args.TokenRefused) as info:
        args.fields(value, ("x", "y"), ("z",))
    assert str(info.value) == reason


def test_fields_accepts_required_and_optional_only() -> None:
    given = {"x": 1, "y": 2, "z": 3}
    assert args.fields(given, ("x", "y"), ("z",)) is given


@pytest.mark.parametrize(("value", "reason"), [
    (True, "n must be an integer, not a boolean"),
    ("5", "n must be an integer, not a string"),
    (-1, "n must be at least 0, got -1"),
    (1 << 200, "n must be at most 10, got an integer of 201 bits"),
])
def test_integer_refusals(value: Any, reason: str) -> None:
    with pytest.raises(args.TokenRefused) as info:
        args.integer(value, "n", 0, 10)
    assert str(info.value) == reason


def test_accounts_text_and_booleans() -> None:
    assert args.account("ab" * 20, "to") == "ab" * 20
    assert args.account("contract:shop.v2", "to") == "contract:shop.v2"
    for bad in ("AB" * 20, "0x" + "ab" * 19, "contract:", "contract:-x"):
        with pytest.raises(args.TokenRefused, match="to is not an account"):
            args.account(bad, "to")
    assert args.text("作品", "name", 6) == "作品"
    with pytest.raises(args.TokenRefused, match=r"must be 1 to 5 bytes of UTF-8, got 6"):
        args.text("作品", "name", 5)
    with pytest.raises(args.TokenRefused, match=r"found U\+D800"):
        args.text("a\ud800", "name", 16)
    with pytest.raises(args.TokenRefused, match="must be true or false, not an integer"):
        args.boolean(1, "flag")


def test_build_types_runs_methods_on_the_payload_and_predicts_keys() -> None:
    def method(ctx: Context, a: dict[str, Any]) -> dict[str, Any]:
        ctx.put(b"k/" + args.account(a["to"], "to").encode(), b"1")
        return {"ok": True}

    def keys(caller: str, a: dict[str, Any]) -> list[bytes]:
        return [b"k/" + args.account(a["to"], "to").encode(), b"k/" + args.account(a["to"], "to").encode()]

    types = args.build_types({"t.m": method}, {"t.m": keys}, frozenset({"t.m"}))
    ttype = types["t.m"]
    assert isinstance(ttype, TxType) and ttype.parallel and ttype.admin and ttype.keys is not None
    to = "cd" * 20
    tx = Transaction("test", b"key", 1, "t.m", {"to": to}, 100, b"", b"", b"id1")
    assert ttype.keys(tx) == [b"k/" + to.encode()]  # duplicates dropped
    bad = Transaction("test", b"key", 2, "t.m", {"to": "nobody"}, 100, b"", b"", b"id2")
    assert ttype.keys(bad) is None  # malformed: no prediction, block order refuses it
    ctx = Context(tx, 1, 0, lambda _k: None)
    ttype.run(ctx)
    assert ctx.writes == {b"k/" + to.encode(): b"1"} and ctx.result == {"ok": True}
