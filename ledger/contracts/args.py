"""The argument toolkit of the system contracts (``ft``, ``nft``): checks that turn a
transaction's JSON arguments into typed values or refuse them with a message saying why, and
the glue that makes a table of methods and key predictors into parallel transaction types.

Every check raises ``TokenRefused`` (a ``Refused``), so a bad argument becomes a refused
receipt carrying the message while the state stays untouched.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from functools import partial
from typing import Any

from ..tx import Transaction
from .context import Context, Refused, TxType, account_of

__all__ = [
    "CONTRACT_ACCOUNT_RE", "USER_ACCOUNT_RE", "Method", "Predictor", "Reader", "TokenRefused",
    "account", "boolean", "build_types", "describe", "fields", "integer", "number", "predict_with",
    "quoted", "run_method", "text", "tx_keys",
]

USER_ACCOUNT_RE = re.compile(r"[0-9a-f]{40}")
CONTRACT_ACCOUNT_RE = re.compile(r"contract:[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")

Reader = Callable[[bytes], bytes | None]
Method = Callable[[Context, dict[str, Any]], Any]
#: ``predictor(caller, args)``: the state keys a call may touch (raises on malformed arguments)
Predictor = Callable[[str, dict[str, Any]], list[bytes]]


class TokenRefused(Refused):
    """A token method refuses its arguments or the state does not allow the operation."""


# ---------------------------------------------------------------- argument checks
def fields(args: Any, required: tuple[str, ...], optional: tuple[str, ...] = ()) -> dict[str, Any]:
    """``args`` as a dict holding every required field and no field outside both lists."""
    if not isinstance(args, dict):
        raise TokenRefused(f"arguments must be a JSON object, not {describe(args)}")
    missing = [f for f in required if f not in args]
    if missing:
        raise TokenRefused(f"missing field{'s' if len(missing) > 1 else ''} {', '.join(map(repr, missing))}")
    unknown = sorted(quoted(k) if isinstance(k, str) else repr(k) for k in args
                     if k not in required and k not in optional)
    if unknown:
        known = sorted((*required, *optional))
        raise TokenRefused(f"unknown field {unknown[0]}; the fields are {', '.join(map(repr, known))}")
    return args


def number(value: int) -> str:
    """An integer for a message: in decimal up to 64 bits, else by its size (the decimal form of
    a huge integer costs time, and Python refuses it beyond 4300 digits)."""
    bits = value.bit_length()
    return str(value) if bits <= 64 else f"{'-' if value < 0 else ''}an integer of {bits} bits"


def describe(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int):
        return "an integer"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list | tuple):
        return "a list"
    if isinstance(value, dict):
        return "an object"
    return type(value).__name__


def account(value: Any, name: str) -> str:
    """A user account (40 lowercase hex digits: ``account_of`` a public key) or a contract
    account (``contract:`` + 1-64 of ``A-Z a-z 0-9 _ . -``, starting with a letter or digit)."""
    if not isinstance(value, str):
        raise TokenRefused(f"{name} must be an account string, not {describe(value)}")
    if not (USER_ACCOUNT_RE.fullmatch(value) or CONTRACT_ACCOUNT_RE.fullmatch(value)):
        raise TokenRefused(f"{name} is not an account: expected 40 lowercase hex digits or "
                           f"'contract:<name>', got {quoted(value)}")
    return value


def integer(value: Any, name: str, lo: int, hi: int) -> int:
    """A JSON integer in ``[lo, hi]``: booleans, floats and numeric strings are refused."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise TokenRefused(f"{name} must be an integer, not {describe(value)}")
    if value < lo:
        raise TokenRefused(f"{name} must be at least {lo}, got {number(value)}")
    if value > hi:
        raise TokenRefused(f"{name} must be at most {hi}, got {number(value)}")
    return value


def text(value: Any, name: str, max_bytes: int, min_bytes: int = 1) -> str:
    """A string of ``min_bytes``-``max_bytes`` bytes of UTF-8 with no control characters
    (U+0000-U+001F, U+007F-U+009F) and no lone surrogates."""
    if not isinstance(value, str):
        raise TokenRefused(f"{name} must be a string, not {describe(value)}")
    for ch in value:
        o = ord(ch)
        if o < 0x20 or 0x7F <= o <= 0x9F or 0xD800 <= o <= 0xDFFF:
            raise TokenRefused(f"{name} must not contain control characters (found U+{o:04X})")
    size = len(value.encode("utf-8"))
    if not min_bytes <= size <= max_bytes:
        raise TokenRefused(f"{name} must be {min_bytes} to {max_bytes} bytes of UTF-8, got {size}")
    return value


def boolean(value: Any, name: str) -> bool:
    if not isinstance(value, bool):
        raise TokenRefused(f"{name} must be true or false, not {describe(value)}")
    return value


def quoted(value: str, limit: int = 48) -> str:
    return repr(value if len(value) <= limit else value[:limit] + "…")


# ---------------------------------------------------------------- methods as transaction types
def predict_with(table: Mapping[str, Predictor], type_: str, caller: str, args: Any) -> list[bytes] | None:
    """The keys a call of ``type_`` by ``caller`` with ``args`` may touch, or ``None`` when the
    arguments are malformed (the call will be refused; it then runs in block order)."""
    fn = table.get(type_)
    if fn is None or not isinstance(args, dict):
        return None
    try:
        return list(dict.fromkeys(fn(caller, args)))
    except (Refused, KeyError):
        return None


def tx_keys(table: Mapping[str, Predictor], tx: Transaction) -> list[bytes] | None:
    """A ``TxType.keys`` function: the prediction for the transaction's sender and payload."""
    return predict_with(table, tx.type, account_of(tx.sender), tx.payload)


def run_method(method: Method, ctx: Context) -> None:
    """A ``TxType.run``: the method applied to the payload; a result goes into the receipt."""
    result = method(ctx, ctx.tx.payload)
    if result is not None:
        ctx.result = result


def build_types(methods: Mapping[str, Method], table: Mapping[str, Predictor],
                admin: frozenset[str]) -> dict[str, TxType]:
    """Parallel transaction types over module-level functions (picklable for workers)."""
    keys = partial(tx_keys, dict(table))
    return {name: TxType(partial(run_method, fn), keys=keys, parallel=True, admin=name in admin)
            for name, fn in methods.items()}
