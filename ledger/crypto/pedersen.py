"""Pedersen commitments on the SM2 curve: ``C = v*G + r*H``.

``G`` is the SM2 base point, ``H`` the second generator ``group.generator_h()`` (nobody
knows ``log_G(H)``), ``v`` an integer with ``|v| < 2^128`` (a negative ``v`` enters as
``v mod n``), ``r`` a scalar. Hiding: for uniform ``r`` the commitment says nothing about
``v``. Binding: opening one commitment to two values would give ``log_G(H)``.

Commitments add: ``commit(a, r) + commit(b, s) = commit(a + b, r + s)``. So when each party
files ``C_i = commit(x_i, r_i)`` before a joint computation and the published total ``T``
comes with ``R = sum(r_i)``, anyone checks ``sum(C_i) == commit(T, R)``
(``verify_total``), or the same for a whole vector of totals in one multi-scalar
multiplication (``verify_totals``, ``failed_totals``).

A commitment is the 33-byte compressed SEC1 encoding of ``C``; an opening is
``{"value": int, "randomness": 64 hex digits}`` (docs/crypto.md gives the bytes).
"""

from __future__ import annotations

import hmac
import secrets
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from .errors import CommitmentError, InvalidPoint, InvalidScalar
from .group import (
    COMPRESSED_SIZE,
    Point,
    Scalar,
    generator,
    generator_h,
    msm,
    mul_generator,
    random_scalar,
)

VALUE_BITS = 128
VALUE_BOUND = 1 << VALUE_BITS  # a committed value v satisfies -2^128 < v < 2^128
BATCH_WEIGHT_BITS = 128  # random weights of the batched check: a false pass has chance 2^-128


def _check_value(value: int) -> int:
    if not isinstance(value, int) or isinstance(value, bool):
        raise CommitmentError(f"a committed value is an int, not {type(value).__name__}")
    if not -VALUE_BOUND < value < VALUE_BOUND:
        raise CommitmentError(f"a committed value must satisfy |v| < 2^{VALUE_BITS}")
    return value


@dataclass(frozen=True, eq=False)
class Opening:
    """What opens a commitment: the value and the randomness. Openings add like the
    commitments they open (``a + b`` opens ``commit_a + commit_b``)."""

    value: int
    randomness: Scalar

    def __post_init__(self) -> None:
        _check_value(self.value)
        if not isinstance(self.randomness, Scalar):
            raise CommitmentError("an opening's randomness is a Scalar")

    def __add__(self, other: Opening) -> Opening:
        if not isinstance(other, Opening):
            return NotImplemented
        return Opening(self.value + other.value, self.randomness + other.randomness)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Opening):
            return NotImplemented
        return self.value == other.value and self.randomness == other.randomness  # Scalar ==: constant time

    def __hash__(self) -> int:
        return hash(("Opening", self.value))

    def to_dict(self) -> dict[str, Any]:
        return {"value": self.value, "randomness": self.randomness.to_bytes().hex()}

    @classmethod
    def from_dict(cls, data: Any) -> Opening:
        """Strict: exactly the two keys, an int value in bounds, 64 lowercase hex digits."""
        if not isinstance(data, dict) or set(data) != {"value", "randomness"}:
            raise CommitmentError('an opening is {"value": int, "randomness": hex}')
        rnd = data["randomness"]
        if not isinstance(rnd, str) or len(rnd) != 64 or rnd != rnd.lower():
            raise CommitmentError("an opening's randomness is 64 lowercase hex digits")
        try:
            scalar = Scalar.from_bytes(bytes.fromhex(rnd))
        except (ValueError, InvalidScalar) as exc:
            raise CommitmentError(f"an opening's randomness is not a scalar: {exc}") from None
        return cls(_check_value(data["value"]), scalar)


class Commitment:
    """A Pedersen commitment (a curve point); immutable. ``+``/``-`` combine commitments."""

    __slots__ = ("point",)

    def __init__(self, point: Point) -> None:
        if not isinstance(point, Point):
            raise CommitmentError("a commitment wraps a Point")
        self.point = point

    @classmethod
    def from_bytes(cls, data: bytes) -> Commitment:
        """Exactly 33 bytes, the canonical compressed encoding of a point other than infinity."""
        if not isinstance(data, bytes | bytearray) or len(data) != COMPRESSED_SIZE:
            raise InvalidPoint(f"a commitment is {COMPRESSED_SIZE} bytes (compressed SEC1)")
        return cls(Point.from_bytes(bytes(data)))

    @classmethod
    def from_hex(cls, text: str) -> Commitment:
        if not isinstance(text, str) or len(text) != 2 * COMPRESSED_SIZE or text != text.lower():
            raise InvalidPoint(f"a commitment is {2 * COMPRESSED_SIZE} lowercase hex digits")
        try:
            raw = bytes.fromhex(text)
        except ValueError:
            raise InvalidPoint("a commitment is hex") from None
        return cls.from_bytes(raw)

    def to_bytes(self) -> bytes:
        return self.point.to_bytes(compressed=True)

    def hex(self) -> str:
        return self.to_bytes().hex()

    def __add__(self, other: Commitment) -> Commitment:
        if not isinstance(other, Commitment):
            return NotImplemented
        return Commitment(self.point + other.point)

    def __sub__(self, other: Commitment) -> Commitment:
        if not isinstance(other, Commitment):
            return NotImplemented
        return Commitment(self.point - other.point)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Commitment):
            return NotImplemented
        return hmac.compare_digest(self.to_bytes(), other.to_bytes())

    def __hash__(self) -> int:
        return hash(self.to_bytes())

    def __repr__(self) -> str:
        return f"Commitment({self.hex()})"


def commit(value: int, randomness: Scalar | None = None) -> tuple[Commitment, Opening]:
    """``C = v*G + r*H`` with fresh uniform ``r`` unless given (never zero). Both
    multiplications are OpenSSL's constant-time ladder: ``v`` and ``r`` are secret here."""
    _check_value(value)
    r = random_scalar() if randomness is None else randomness
    if not isinstance(r, Scalar) or r.is_zero():
        raise CommitmentError("commitment randomness is a non-zero Scalar")
    point = mul_generator(Scalar(value)) + generator_h() * r
    return Commitment(point), Opening(value, r)


def verify_opening(commitment: Commitment, opening: Opening) -> bool:
    """Whether ``opening`` opens ``commitment``. Values are public at this point, so the
    recomputation is one (variable-time) multi-scalar multiplication."""
    expected = msm([Scalar(opening.value), opening.randomness], [generator(), generator_h()])
    return hmac.compare_digest(expected.to_bytes(), commitment.to_bytes())


def add_commitments(commitments: Iterable[Commitment]) -> Commitment:
    total = Point.identity()
    for c in commitments:
        if not isinstance(c, Commitment):
            raise CommitmentError(f"not a commitment: {type(c).__name__}")
        total = total + c.point
    return Commitment(total)


def add_openings(openings: Iterable[Opening]) -> Opening:
    value, rnd = 0, Scalar(0)
    for o in openings:
        if not isinstance(o, Opening):
            raise CommitmentError(f"not an opening: {type(o).__name__}")
        value, rnd = value + o.value, rnd + o.randomness
    return Opening(_check_value(value), rnd)


def verify_total(commitments: Iterable[Commitment], total: int, randomness_sum: Scalar) -> bool:
    """Whether the parties' commitments add up to a commitment to ``total`` with the
    published sum of their randomness: ``sum(C_i) == total*G + randomness_sum*H``."""
    return verify_opening(add_commitments(commitments), Opening(total, randomness_sum))


def commit_vector(values: Sequence[int]) -> tuple[list[Commitment], list[Opening]]:
    """One commitment per value, each with its own fresh randomness."""
    pairs = [commit(v) for v in values]
    return [c for c, _ in pairs], [o for _, o in pairs]


def _column_sums(per_party: Sequence[Sequence[Commitment]], width: int) -> list[Point]:
    sums = [Point.identity() for _ in range(width)]
    for vector in per_party:
        if len(vector) != width:
            raise CommitmentError(f"a party's commitment vector has {len(vector)} entries, not {width}")
        for j, c in enumerate(vector):
            if not isinstance(c, Commitment):
                raise CommitmentError(f"not a commitment: {type(c).__name__}")
            sums[j] = sums[j] + c.point
    return sums


def _batch_holds(sums: Sequence[Point], openings: Sequence[Opening]) -> bool:
    """``sum_j w_j (S_j - t_j G - r_j H) == 0`` for random 128-bit ``w_j``: one MSM."""
    weights = [Scalar(secrets.randbits(BATCH_WEIGHT_BITS) | 1) for _ in sums]
    g_coef = sum((w * Scalar(o.value) for w, o in zip(weights, openings, strict=True)), Scalar(0))
    h_coef = sum((w * o.randomness for w, o in zip(weights, openings, strict=True)), Scalar(0))
    combined = msm([*weights, -g_coef, -h_coef], [*sums, generator(), generator_h()])
    return combined.is_identity()


def failed_totals(per_party: Sequence[Sequence[Commitment]], totals: Sequence[int],
                  randomness_sums: Sequence[Scalar]) -> list[int]:
    """The indices ``j`` where ``sum_i per_party[i][j] != commit(totals[j],
    randomness_sums[j])``; empty when every published total is exactly the sum of what the
    parties committed to. One batched MSM when all hold; each index checked when not."""
    if len(totals) != len(randomness_sums):
        raise CommitmentError(f"{len(totals)} totals but {len(randomness_sums)} randomness sums")
    openings = [Opening(t, r) for t, r in zip(totals, randomness_sums, strict=True)]
    sums = _column_sums(per_party, len(openings))
    if not openings or _batch_holds(sums, openings):
        return []
    return [j for j, (s, o) in enumerate(zip(sums, openings, strict=True)) if not verify_opening(Commitment(s), o)]


def verify_totals(per_party: Sequence[Sequence[Commitment]], totals: Sequence[int],
                  randomness_sums: Sequence[Scalar]) -> bool:
    """``failed_totals(...) == []``: the audit of a whole vector of published totals."""
    return not failed_totals(per_party, totals, randomness_sums)
