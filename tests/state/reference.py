"""An independent, deliberately naive model of the state tree, written from docs/spec/state.md.

Uses ``hashlib`` directly (not the code under test) so that agreement means something.
"""

from __future__ import annotations

import hashlib

ZERO = bytes(32)


def H(data: bytes) -> bytes:
    return hashlib.new("sm3", data).digest()


def bit(h: bytes, i: int) -> int:
    return (h[i // 8] >> (7 - i % 8)) & 1


def leaf(kh: bytes, vh: bytes) -> bytes:
    return H(b"\x02" + kh + vh)


def inner(left: bytes, right: bytes) -> bytes:
    return H(b"\x03" + left + right)


def reference_root(state: dict[bytes, bytes]) -> bytes:
    """The root of ``state`` by the definition: recurse on key-hash bits."""

    def rec(depth: int, items: list[tuple[bytes, bytes]]) -> bytes:
        if not items:
            return ZERO
        if len(items) == 1:
            return leaf(*items[0])
        left = [it for it in items if bit(it[0], depth) == 0]
        right = [it for it in items if bit(it[0], depth) == 1]
        return inner(rec(depth + 1, left), rec(depth + 1, right))

    return rec(0, [(H(k), H(v)) for k, v in state.items()])
