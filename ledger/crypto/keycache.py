"""Parsed SM2 public keys by point, so that parsing and the on-curve check run once per key.

Used wherever many signatures of few signers are verified: transactions (``ledger.tx``),
consensus votes and certificates (``ledger.consensus``), governance evidence. Holds public
keys only; bounded, least recently used first out.
"""

from __future__ import annotations

from collections import OrderedDict

from .sm2 import SM2PublicKey


class KeyCache:
    """Parsed SM2 public keys by point: parsing and the on-curve check run once per sender."""

    def __init__(self, size: int = 65536) -> None:
        self._size = size
        self._keys: OrderedDict[bytes, SM2PublicKey] = OrderedDict()

    def get(self, point: bytes) -> SM2PublicKey:
        """The key for a 65-byte point; raises ``InvalidKey`` for a point not on the curve."""
        key = self._keys.get(point)
        if key is None:
            key = SM2PublicKey.from_point(point)
            self._keys[point] = key
            if len(self._keys) > self._size:
                self._keys.popitem(last=False)
        else:
            self._keys.move_to_end(point)
        return key
