"""Canonical JSON: the one encoding of everything the ledger signs or hashes.

Rules (docs/transactions.md states them for independent implementations):
objects with string keys sorted by code point (Python's default order of ``str``),
no insignificant whitespace (``,`` and ``:``), UTF-8 without
escaping non-ASCII, integers only (no floats, NaN or infinities), byte strings as lowercase
hex strings, ``true``/``false``/``null`` as JSON has them. ``parse`` refuses input that is
not in this form (duplicate keys, floats, non-canonical spacing or order) when ``strict``.
Every failure is an ``EncodingError``: text that is not valid Unicode (a ``\\ud800`` escape
with no partner, which UTF-8 cannot write) and integers longer than Python's 4,300-digit
conversion limit included, so that callers never meet ``UnicodeEncodeError`` or ``ValueError``.
"""

from __future__ import annotations

import json
from typing import Any

from .errors import LedgerError

MAX_DEPTH = 32


class EncodingError(LedgerError):
    """The value cannot be written canonically, or the bytes are not canonical JSON."""


def _check(obj: Any, depth: int = 0) -> None:
    if depth > MAX_DEPTH:
        raise EncodingError(f"nested deeper than {MAX_DEPTH} levels")
    if isinstance(obj, bool) or obj is None or isinstance(obj, int | str):
        return
    if isinstance(obj, float):
        raise EncodingError("canonical JSON has no floats: use an integer or a string")
    if isinstance(obj, dict):
        for key, value in obj.items():
            if not isinstance(key, str):
                raise EncodingError(f"object keys must be strings, not {type(key).__name__}")
            _check(value, depth + 1)
        return
    if isinstance(obj, list | tuple):
        for value in obj:
            _check(value, depth + 1)
        return
    raise EncodingError(f"{type(obj).__name__} has no canonical JSON form")


def canonical(obj: Any, *, check: bool = True) -> bytes:
    """``obj`` as canonical JSON bytes. ``check=False`` skips the walk that refuses floats,
    non-string keys and deep nesting: only for values this process built from checked parts
    (e.g. a block record), never for anything that arrived from outside."""
    if type(obj) is int:  # the commonest state value (balances, counters): no walk needed
        return str(obj).encode()
    if check:
        _check(obj)
    try:
        return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False,
                          allow_nan=False).encode("utf-8")
    except UnicodeEncodeError:
        raise EncodingError("a string holds a lone surrogate (not valid Unicode, no UTF-8 form)") from None
    except ValueError as exc:  # an integer over the int/str conversion limit (4,300 digits)
        raise EncodingError(f"no canonical form: {exc}") from None


def _has_lone_surrogate(obj: Any, depth: int = 0) -> bool:
    if isinstance(obj, str):
        if obj.isascii():
            return False
        try:
            obj.encode("utf-8")
        except UnicodeEncodeError:
            return True
        return False
    if depth > MAX_DEPTH:
        return False  # _check refuses it
    if isinstance(obj, dict):
        return any(_has_lone_surrogate(k) or _has_lone_surrogate(v, depth + 1) for k, v in obj.items())
    if isinstance(obj, list):
        return any(_has_lone_surrogate(v, depth + 1) for v in obj)
    return False


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise EncodingError(f"duplicate key {key!r}")
        out[key] = value
    return out


def _no_float(text: str) -> Any:
    raise EncodingError(f"float {text} is not allowed in canonical JSON")


def parse(data: bytes | str, strict: bool = False) -> Any:
    """Decode JSON; refuse duplicates, floats and deep nesting. With ``strict`` the bytes
    must also be exactly the canonical encoding of the value (what signatures cover)."""
    try:
        text = data.decode("utf-8") if isinstance(data, bytes | bytearray) else data
        value = json.loads(text, object_pairs_hook=_no_duplicates, parse_float=_no_float,
                           parse_constant=_no_float)
    except UnicodeDecodeError:
        raise EncodingError("not UTF-8") from None
    except json.JSONDecodeError as exc:
        raise EncodingError(f"malformed JSON: {exc.msg} at position {exc.pos}") from None
    except RecursionError:
        raise EncodingError("nested too deeply") from None
    except ValueError:  # an integer longer than Python's int/str conversion limit
        raise EncodingError("malformed JSON: an integer with more than 4,300 digits") from None
    _check(value)
    # only a \u escape (or a Python str given as input) can hold a lone surrogate: valid UTF-8
    # bytes cannot, so the walk is skipped for the common case
    if ("\\u" in text or not isinstance(data, bytes | bytearray)) and _has_lone_surrogate(value):
        raise EncodingError("a string holds a lone surrogate escape (not valid Unicode)")
    if strict and canonical(value) != (data if isinstance(data, bytes) else str(data).encode()):
        raise EncodingError("JSON is not in canonical form (key order, spacing or escapes)")
    return value


def hexbytes(value: Any, name: str, size: int | None = None) -> bytes:
    """Decode a lowercase hex field, with a clear error naming it."""
    if not isinstance(value, str):
        raise EncodingError(f"{name} must be a hex string")
    # exactly pairs of 0-9a-f: bytes.fromhex alone would also take spaces and upper case,
    # giving one value several spellings (and a signed message several "different" copies);
    # the round trip refuses those (and is ~6x faster than a regular expression on long fields)
    try:
        raw = bytes.fromhex(value)
    except ValueError:
        raw = None
    if raw is None or raw.hex() != value:
        raise EncodingError(f"{name} must be lowercase hex digits, an even number of them")
    if size is not None and len(raw) != size:
        raise EncodingError(f"{name} must be {size} bytes, got {len(raw)}")
    return raw
