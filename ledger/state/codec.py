"""Canonical JSON: the one encoding for anything the state layer hashes or publishes.

Owns ``canonical_json`` (sorted keys, no insignificant whitespace, UTF-8, no floats, no
NaN). Must not be used for anything that needs floats: they are refused, not rounded.
"""

from __future__ import annotations

import json
from typing import Any

from .errors import InvalidArgument


def _refuse_floats(obj: Any) -> None:
    stack = [obj]
    while stack:
        item = stack.pop()
        if isinstance(item, float):
            raise InvalidArgument("canonical JSON has no floats: encode the number as an integer or a string")
        if isinstance(item, dict):
            for key, value in item.items():
                if not isinstance(key, str):
                    raise InvalidArgument(f"canonical JSON object keys must be strings, got {type(key).__name__}")
                stack.append(value)
        elif isinstance(item, list | tuple):
            stack.extend(item)


def canonical_json(obj: Any) -> bytes:
    """``obj`` as canonical JSON bytes: sorted keys, ``,``/``:`` separators, UTF-8, no floats."""
    _refuse_floats(obj)
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False,
                      allow_nan=False).encode("utf-8")
