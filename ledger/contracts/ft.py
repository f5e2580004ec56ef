"""Fungible tokens: the audited system template ``ft/1`` (points, revenue shares).

A token is identified by its symbol. Its issuer (the account that issued it) mints up to a
fixed cap, freezes and unfreezes accounts and may hand the role to another account; holders
transfer, approve spenders, and burn. Integer arithmetic only: every amount is a JSON integer
in ``[0, 2**127)``; balances are never negative and the sum of all balances of a token always
equals its supply, which never exceeds its cap. docs/tokens.md is the specification.

State (values canonical JSON):

=========================================  ========================================
key                                        value
=========================================  ========================================
``ft/<symbol>/meta``                       ``{"cap", "decimals", "height", "issuer",
                                           "name", "symbol", "template"}``
``ft/<symbol>/supply``                     integer: the sum of all balances
``ft/<symbol>/bal/<account>``              integer > 0 (absent: 0)
``ft/<symbol>/allow/<owner>/<spender>``    integer > 0 (absent: 0)
``ft/<symbol>/frozen/<account>``           ``{"by", "height"}`` (absent: not frozen)
=========================================  ========================================

A frozen account can neither send nor receive: it cannot be the sender, the receiver or the
spender of a transfer, nor burn, nor be minted to. It may still approve (which moves nothing).

Every method is ``method(ctx, args) -> result`` acting as ``ctx.caller`` (``METHODS``); the
transaction types (``types()``) apply it to the transaction's payload. Bad input raises
``TokenRefused`` (a ``Refused``) whose message says why; the state is then untouched.

The argument checks (accounts, integers, texts, field sets) and the glue that makes the method
table into transaction types are in ``ledger.contracts.args``, shared with ``ledger.contracts.nft``.
"""

from __future__ import annotations

import re
from typing import Any

from ..codec import parse
from .args import (
    Method,
    Predictor,
    Reader,
    TokenRefused,
    account,
    build_types,
    describe,
    fields,
    integer,
    number,
    predict_with,
    quoted,
    text,
)
from .context import Context, TxType

__all__ = [
    "MAX_AMOUNT", "METHODS", "TEMPLATE", "TokenRefused", "allowance", "balance", "info",
    "is_frozen", "predict", "total_supply", "types",
]

TEMPLATE = "ft/1"
AMOUNT_BITS = 127
MAX_AMOUNT = (1 << AMOUNT_BITS) - 1  # every amount, cap, balance, allowance and supply
MAX_DECIMALS = 18
MAX_NAME_BYTES = 128

SYMBOL_RE = re.compile(r"[A-Z][A-Z0-9]{1,15}")


# ---------------------------------------------------------------- argument checks (ft's own)
def amount(value: Any, name: str, lo: int = 1) -> int:
    """A token amount: an integer in ``[lo, 2**127)``; larger values are refused as overflow."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise TokenRefused(f"{name} must be an integer, not {describe(value)}")
    if value > MAX_AMOUNT:
        raise TokenRefused(f"{name} overflows: amounts must be below 2**{AMOUNT_BITS}")
    if value < lo:
        raise TokenRefused(f"{name} must be {'positive' if lo == 1 else f'at least {lo}'}, got {number(value)}")
    return value


def symbol_of(value: Any) -> str:
    if not isinstance(value, str):
        raise TokenRefused(f"symbol must be a string, not {describe(value)}")
    if not SYMBOL_RE.fullmatch(value):
        raise TokenRefused(f"symbol must be 2-16 characters of A-Z and 0-9 starting with a letter, "
                           f"got {quoted(value)}")
    return value


# ---------------------------------------------------------------- keys
def k_meta(symbol: str) -> bytes:
    return f"ft/{symbol}/meta".encode()


def k_supply(symbol: str) -> bytes:
    return f"ft/{symbol}/supply".encode()


def k_balance(symbol: str, acct: str) -> bytes:
    return f"ft/{symbol}/bal/{acct}".encode()


def k_allowance(symbol: str, owner: str, spender: str) -> bytes:
    return f"ft/{symbol}/allow/{owner}/{spender}".encode()


def k_frozen(symbol: str, acct: str) -> bytes:
    return f"ft/{symbol}/frozen/{acct}".encode()


# ---------------------------------------------------------------- state helpers
def _int_at(ctx: Context, key: bytes) -> int:
    raw = ctx.get(key)
    if raw is None:
        return 0
    if raw.isdigit() and (raw[:1] != b"0" or len(raw) == 1):  # canonical JSON integer
        return int(raw)
    return int(parse(raw))


_META: dict[bytes, dict[str, Any]] = {}  # parsed token records by their bytes (immutable input)


def _parse_meta(raw: bytes) -> dict[str, Any]:
    meta = _META.get(raw)
    if meta is None:
        if len(_META) >= 256:
            _META.clear()
        meta = _META[raw] = dict(parse(raw))
    return dict(meta)


def _put_int(ctx: Context, key: bytes, value: int) -> None:
    """Store a non-negative integer; zero deletes the key (absent reads as 0)."""
    assert 0 <= value <= MAX_AMOUNT, "token arithmetic left its range"
    if value:
        ctx.put_json(key, value)
    else:
        ctx.delete(key)


def _token(ctx: Context, symbol: str) -> dict[str, Any]:
    raw = ctx.get(k_meta(symbol))
    if raw is None:
        raise TokenRefused(f"there is no token {symbol}")
    return _parse_meta(raw)


def _issuer_only(ctx: Context, meta: dict[str, Any], what: str) -> None:
    if ctx.caller != meta["issuer"]:
        raise TokenRefused(f"only the issuer of {meta['symbol']} ({meta['issuer']}) may {what}")


def _not_frozen(ctx: Context, symbol: str, acct: str, role: str) -> None:
    if ctx.get(k_frozen(symbol, acct)) is not None:
        raise TokenRefused(f"{role} {acct} is frozen for {symbol}")


def _debit(ctx: Context, symbol: str, acct: str, value: int) -> int:
    have = _int_at(ctx, k_balance(symbol, acct))
    if have < value:
        raise TokenRefused(f"insufficient balance: {acct} holds {have} {symbol}, needs {value}")
    _put_int(ctx, k_balance(symbol, acct), have - value)
    return have - value


def _credit(ctx: Context, symbol: str, acct: str, value: int) -> int:
    new = _int_at(ctx, k_balance(symbol, acct)) + value
    if new > MAX_AMOUNT:  # cannot happen while supply <= cap < 2**127; kept as a guard
        raise TokenRefused(f"balance of {acct} would overflow")
    _put_int(ctx, k_balance(symbol, acct), new)
    return new


def _spend_allowance(ctx: Context, symbol: str, owner: str, spender: str, value: int) -> None:
    key = k_allowance(symbol, owner, spender)
    have = _int_at(ctx, key)
    if have < value:
        raise TokenRefused(f"insufficient allowance: {spender} may spend {have} {symbol} of {owner}, "
                           f"needs {value}")
    _put_int(ctx, key, have - value)


# ---------------------------------------------------------------- methods
def issue(ctx: Context, args: dict[str, Any]) -> dict[str, Any]:
    """``ft.issue {symbol, name, cap, decimals?=0, initial?=0}``: a new token, issued by the
    caller; ``initial`` is minted to the caller."""
    a = fields(args, ("symbol", "name", "cap"), ("decimals", "initial"))
    symbol = symbol_of(a["symbol"])
    name = text(a["name"], "name", MAX_NAME_BYTES)
    cap = amount(a["cap"], "cap")
    decimals = integer(a.get("decimals", 0), "decimals", 0, MAX_DECIMALS)
    initial = amount(a.get("initial", 0), "initial", lo=0)
    if initial > cap:
        raise TokenRefused(f"initial {initial} is above the cap {cap}")
    if ctx.get(k_meta(symbol)) is not None:
        raise TokenRefused(f"token {symbol} already exists")
    issuer = ctx.caller
    meta = {"cap": cap, "decimals": decimals, "height": ctx.height, "issuer": issuer, "name": name,
            "symbol": symbol, "template": TEMPLATE}
    ctx.put_json(k_meta(symbol), meta)
    ctx.put_json(k_supply(symbol), initial)
    ctx.emit("ft.Issue", [symbol, issuer], {"cap": cap, "decimals": decimals, "issuer": issuer,
                                            "name": name, "symbol": symbol})
    if initial:
        _put_int(ctx, k_balance(symbol, issuer), initial)
        ctx.emit("ft.Mint", [symbol, issuer], {"amount": initial, "supply": initial, "symbol": symbol,
                                               "to": issuer})
    return dict(meta, supply=initial)


def mint(ctx: Context, args: dict[str, Any]) -> None:
    """``ft.mint {symbol, amount, to?=caller}``: by the issuer; the supply stays within the cap."""
    a = fields(args, ("symbol", "amount"), ("to",))
    symbol = symbol_of(a["symbol"])
    value = amount(a["amount"], "amount")
    to = account(a.get("to", ctx.caller), "to")
    meta = _token(ctx, symbol)
    _issuer_only(ctx, meta, "mint")
    supply = _int_at(ctx, k_supply(symbol))
    if supply + value > meta["cap"]:
        raise TokenRefused(f"minting {value} would take the supply of {symbol} to {supply + value}, "
                           f"above its cap {meta['cap']}")
    _not_frozen(ctx, symbol, to, "receiver")
    ctx.put_json(k_supply(symbol), supply + value)
    _credit(ctx, symbol, to, value)
    ctx.emit("ft.Mint", [symbol, to], {"amount": value, "supply": supply + value, "symbol": symbol, "to": to})


def _move(ctx: Context, symbol: str, src: str, dst: str, value: int, spender: str | None) -> None:
    if src == dst:
        raise TokenRefused("sender and receiver are the same account")
    _not_frozen(ctx, symbol, src, "sender")
    _not_frozen(ctx, symbol, dst, "receiver")
    if spender is not None and spender != src:
        _not_frozen(ctx, symbol, spender, "spender")
        _spend_allowance(ctx, symbol, src, spender, value)
    _debit(ctx, symbol, src, value)
    _credit(ctx, symbol, dst, value)
    data: dict[str, Any] = {"amount": value, "from": src, "symbol": symbol, "to": dst}
    if spender is not None:
        data["spender"] = spender
    ctx.emit("ft.Transfer", [symbol, src, dst], data, checked=True)


def transfer(ctx: Context, args: dict[str, Any]) -> None:
    """``ft.transfer {symbol, to, amount}``: from the caller's balance."""
    a = fields(args, ("symbol", "to", "amount"))
    symbol = symbol_of(a["symbol"])
    to = account(a["to"], "to")
    value = amount(a["amount"], "amount")
    _token(ctx, symbol)
    _move(ctx, symbol, ctx.caller, to, value, None)


def approve(ctx: Context, args: dict[str, Any]) -> None:
    """``ft.approve {symbol, spender, amount, current?}``: set (not add to) what ``spender``
    may take from the caller's balance; 0 withdraws it. With ``current`` the call is refused
    unless the allowance is exactly that (compare-and-set against the approve race)."""
    a = fields(args, ("symbol", "spender", "amount"), ("current",))
    symbol = symbol_of(a["symbol"])
    spender = account(a["spender"], "spender")
    value = amount(a["amount"], "amount", lo=0)
    expected = amount(a["current"], "current", lo=0) if "current" in a else None
    owner = ctx.caller
    if spender == owner:
        raise TokenRefused("an account cannot approve itself")
    _token(ctx, symbol)
    key = k_allowance(symbol, owner, spender)
    if expected is not None:
        now = _int_at(ctx, key)
        if now != expected:
            raise TokenRefused(f"the allowance of {spender} is {now}, not {expected}")
    _put_int(ctx, key, value)
    ctx.emit("ft.Approval", [symbol, owner, spender], {"amount": value, "owner": owner, "spender": spender,
                                                       "symbol": symbol})


def transfer_from(ctx: Context, args: dict[str, Any]) -> None:
    """``ft.transfer_from {symbol, from, to, amount}``: by a spender within its allowance
    (which it uses up); ``from`` equal to the caller needs no allowance."""
    a = fields(args, ("symbol", "from", "to", "amount"))
    symbol = symbol_of(a["symbol"])
    src = account(a["from"], "from")
    to = account(a["to"], "to")
    value = amount(a["amount"], "amount")
    _token(ctx, symbol)
    _move(ctx, symbol, src, to, value, ctx.caller)


def _burn(ctx: Context, symbol: str, src: str, value: int, spender: str | None) -> None:
    _not_frozen(ctx, symbol, src, "holder")
    if spender is not None and spender != src:
        _not_frozen(ctx, symbol, spender, "spender")
        _spend_allowance(ctx, symbol, src, spender, value)
    _debit(ctx, symbol, src, value)
    supply = _int_at(ctx, k_supply(symbol)) - value
    ctx.put_json(k_supply(symbol), supply)
    data: dict[str, Any] = {"amount": value, "from": src, "supply": supply, "symbol": symbol}
    if spender is not None:
        data["spender"] = spender
    ctx.emit("ft.Burn", [symbol, src], data)


def burn(ctx: Context, args: dict[str, Any]) -> None:
    """``ft.burn {symbol, amount}``: destroy tokens of the caller; the supply falls."""
    a = fields(args, ("symbol", "amount"))
    symbol = symbol_of(a["symbol"])
    value = amount(a["amount"], "amount")
    _token(ctx, symbol)
    _burn(ctx, symbol, ctx.caller, value, None)


def burn_from(ctx: Context, args: dict[str, Any]) -> None:
    """``ft.burn_from {symbol, from, amount}``: destroy tokens of ``from`` within the caller's
    allowance."""
    a = fields(args, ("symbol", "from", "amount"))
    symbol = symbol_of(a["symbol"])
    src = account(a["from"], "from")
    value = amount(a["amount"], "amount")
    _token(ctx, symbol)
    _burn(ctx, symbol, src, value, ctx.caller)


def _set_frozen(ctx: Context, args: dict[str, Any], frozen: bool) -> None:
    a = fields(args, ("symbol", "account"))
    symbol = symbol_of(a["symbol"])
    acct = account(a["account"], "account")
    meta = _token(ctx, symbol)
    _issuer_only(ctx, meta, "freeze or unfreeze accounts")
    key = k_frozen(symbol, acct)
    if (ctx.get(key) is not None) == frozen:
        raise TokenRefused(f"{acct} is {'already' if frozen else 'not'} frozen for {symbol}")
    if frozen:
        ctx.put_json(key, {"by": ctx.caller, "height": ctx.height})
    else:
        ctx.delete(key)
    ctx.emit("ft.Freeze" if frozen else "ft.Unfreeze", [symbol, acct],
             {"account": acct, "by": ctx.caller, "symbol": symbol})


def freeze(ctx: Context, args: dict[str, Any]) -> None:
    """``ft.freeze {symbol, account}``: by the issuer; the account can neither send nor receive."""
    _set_frozen(ctx, args, True)


def unfreeze(ctx: Context, args: dict[str, Any]) -> None:
    """``ft.unfreeze {symbol, account}``: by the issuer."""
    _set_frozen(ctx, args, False)


def set_issuer(ctx: Context, args: dict[str, Any]) -> None:
    """``ft.set_issuer {symbol, issuer}``: the issuer hands its role to another account."""
    a = fields(args, ("symbol", "issuer"))
    symbol = symbol_of(a["symbol"])
    new = account(a["issuer"], "issuer")
    meta = _token(ctx, symbol)
    _issuer_only(ctx, meta, "hand over the issuer role")
    old = meta["issuer"]
    if new == old:
        raise TokenRefused(f"{new} is already the issuer of {symbol}")
    ctx.put_json(k_meta(symbol), dict(meta, issuer=new))
    ctx.emit("ft.IssuerChanged", [symbol, old, new], {"from": old, "symbol": symbol, "to": new})


METHODS: dict[str, Method] = {
    "ft.issue": issue,
    "ft.mint": mint,
    "ft.transfer": transfer,
    "ft.approve": approve,
    "ft.transfer_from": transfer_from,
    "ft.burn": burn,
    "ft.burn_from": burn_from,
    "ft.freeze": freeze,
    "ft.unfreeze": unfreeze,
    "ft.set_issuer": set_issuer,
}
ADMIN = frozenset({"ft.issue", "ft.freeze", "ft.unfreeze", "ft.set_issuer"})


# ---------------------------------------------------------------- key predictions
def _p_issue(caller: str, a: dict[str, Any]) -> list[bytes]:
    s = symbol_of(a["symbol"])
    return [k_meta(s), k_supply(s), k_balance(s, caller)]


def _p_mint(caller: str, a: dict[str, Any]) -> list[bytes]:
    s, to = symbol_of(a["symbol"]), account(a.get("to", caller), "to")
    return [k_meta(s), k_supply(s), k_balance(s, to), k_frozen(s, to)]


def _p_transfer(caller: str, a: dict[str, Any]) -> list[bytes]:
    s, to = symbol_of(a["symbol"]), account(a["to"], "to")
    return [k_meta(s), k_balance(s, caller), k_balance(s, to), k_frozen(s, caller), k_frozen(s, to)]


def _p_approve(caller: str, a: dict[str, Any]) -> list[bytes]:
    s = symbol_of(a["symbol"])
    return [k_meta(s), k_allowance(s, caller, account(a["spender"], "spender"))]


def _p_transfer_from(caller: str, a: dict[str, Any]) -> list[bytes]:
    s, src, to = symbol_of(a["symbol"]), account(a["from"], "from"), account(a["to"], "to")
    keys = [k_meta(s), k_balance(s, src), k_balance(s, to), k_frozen(s, src), k_frozen(s, to)]
    if src != caller:
        keys += [k_frozen(s, caller), k_allowance(s, src, caller)]
    return keys


def _p_burn(caller: str, a: dict[str, Any]) -> list[bytes]:
    s = symbol_of(a["symbol"])
    return [k_meta(s), k_supply(s), k_balance(s, caller), k_frozen(s, caller)]


def _p_burn_from(caller: str, a: dict[str, Any]) -> list[bytes]:
    s, src = symbol_of(a["symbol"]), account(a["from"], "from")
    keys = [k_meta(s), k_supply(s), k_balance(s, src), k_frozen(s, src)]
    if src != caller:
        keys += [k_frozen(s, caller), k_allowance(s, src, caller)]
    return keys


def _p_freeze(caller: str, a: dict[str, Any]) -> list[bytes]:
    s = symbol_of(a["symbol"])
    return [k_meta(s), k_frozen(s, account(a["account"], "account"))]


def _p_set_issuer(caller: str, a: dict[str, Any]) -> list[bytes]:
    return [k_meta(symbol_of(a["symbol"]))]


PREDICTORS: dict[str, Predictor] = {
    "ft.issue": _p_issue, "ft.mint": _p_mint, "ft.transfer": _p_transfer, "ft.approve": _p_approve,
    "ft.transfer_from": _p_transfer_from, "ft.burn": _p_burn, "ft.burn_from": _p_burn_from,
    "ft.freeze": _p_freeze, "ft.unfreeze": _p_freeze, "ft.set_issuer": _p_set_issuer,
}


def predict(type_: str, caller: str, args: Any) -> list[bytes] | None:
    """``predict_with`` for the ft methods."""
    return predict_with(PREDICTORS, type_, caller, args)


def types() -> dict[str, TxType]:
    """The ft transaction types, for ``LedgerApp(handlers=...)``."""
    return build_types(METHODS, PREDICTORS, ADMIN)


# ---------------------------------------------------------------- read helpers
def _read_json(read: Reader, key: bytes) -> Any:
    raw = read(key)
    return None if raw is None else parse(raw)


def info(read: Reader, symbol: str) -> dict[str, Any] | None:
    """The token's metadata with its current ``supply``, or ``None`` if there is no such token."""
    symbol = symbol_of(symbol)
    meta = _read_json(read, k_meta(symbol))
    if meta is None:
        return None
    return dict(meta, supply=int(_read_json(read, k_supply(symbol)) or 0))


def total_supply(read: Reader, symbol: str) -> int:
    return int(_read_json(read, k_supply(symbol_of(symbol))) or 0)


def balance(read: Reader, symbol: str, acct: str) -> int:
    return int(_read_json(read, k_balance(symbol_of(symbol), account(acct, "account"))) or 0)


def allowance(read: Reader, symbol: str, owner: str, spender: str) -> int:
    key = k_allowance(symbol_of(symbol), account(owner, "owner"), account(spender, "spender"))
    return int(_read_json(read, key) or 0)


def is_frozen(read: Reader, symbol: str, acct: str) -> bool:
    return read(k_frozen(symbol_of(symbol), account(acct, "account"))) is not None
