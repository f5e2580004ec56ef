"""The SM2 curve group (``sm2p256v1``, GB/T 32918.5) for protocols built on it.

Pedersen commitments (``pedersen``) use it now, zero-knowledge proofs later. The format is
specified byte by byte in docs/crypto.md ("The SM2 group and Pedersen commitments").

- ``Scalar``: an integer modulo the group order ``n``; 32 bytes big-endian, canonical
  (below ``n``). Scalar arithmetic is Python integer arithmetic modulo ``n`` (not constant
  time); its ``==`` compares the encodings in constant time.
- ``Point``: a point of the curve, held by libcrypto as an ``EC_POINT`` that the object frees.
  Encodings are SEC1: compressed (33 bytes, ``02``/``03`` || x) and uncompressed (65 bytes,
  ``04`` || x || y); the point at infinity is the single byte ``00`` and is refused unless the
  caller allows it. Decoding refuses anything that does not re-encode to the same bytes.
- ``k * P`` is OpenSSL's constant-time Montgomery ladder (safe for secret ``k``); ``msm`` is
  OpenSSL's interleaved wNAF multi-scalar multiplication (``EC_POINTs_mul``), variable time,
  for public scalars only.
- ``hash_to_scalar`` and ``hash_to_point`` are SM3-based and domain-separated;
  ``generator_h()`` is the second generator ``H``, derived by ``hash_to_point`` from a fixed
  domain string, so nobody knows its discrete logarithm to base ``G``.

There is no field arithmetic here: every point operation is one libcrypto call. Calls that
cost more than a few microseconds (multiplications, decompressing a point) release the GIL;
the cheap ones keep it (``_libcrypto.held``).
"""

from __future__ import annotations

import ctypes
import hmac
import secrets
import threading
from collections.abc import Iterable, Sequence
from ctypes import c_void_p
from typing import Any

from . import _libcrypto
from .errors import BackendError, InvalidPoint, InvalidScalar
from .sm3 import sm3
from .vectors import SM2_CURVE

N = int(SM2_CURVE.n, 16)  # the group order n (prime; the cofactor is 1)
P = int(SM2_CURVE.p, 16)  # the field prime p
SCALAR_SIZE = 32
COMPRESSED_SIZE = 33
UNCOMPRESSED_SIZE = 65
INFINITY_ENCODING = b"\x00"
_COMPRESSED, _UNCOMPRESSED = 2, 4  # point_conversion_form_t
MSM_CHUNK = 2048  # points per EC_POINTs_mul call (its wNAF tables grow with the count)
H_DOMAIN = b"rongxin/pedersen/H/v1"
HASH_TO_POINT_MAX_TRIES = 1024

_lock = threading.Lock()
_checked_group = 0


def _group() -> int:
    """The process-wide SM2 group, checked once against GB/T 32918.5's parameters."""
    global _checked_group
    if not _checked_group:
        _libcrypto.held()  # loads libcrypto first: _sm2_curve() holds the binding's lock
        with _lock:
            if not _checked_group:
                group = _libcrypto._sm2_curve().group
                params = _read_parameters(group)
                expected = {k: int(getattr(SM2_CURVE, k), 16) for k in ("p", "a", "b", "n", "gx", "gy")}
                expected["h"] = SM2_CURVE.h
                if params != expected:
                    raise BackendError("libcrypto's SM2 curve differs from GB/T 32918.5: "
                                       + ", ".join(k for k in expected if params.get(k) != expected[k]))
                _checked_group = group
    return _checked_group


def _bn_int(bn: int) -> int:
    buf = ctypes.create_string_buffer(66)
    if _libcrypto.held().BN_bn2binpad(bn, buf, 66) != 66:
        raise BackendError("a curve parameter wider than 66 bytes")
    return int.from_bytes(buf.raw, "big")


def _read_parameters(group: int) -> dict[str, int]:
    lb, hb = _libcrypto.lib(), _libcrypto.held()
    bns = [hb.BN_new() for _ in range(3)]
    try:
        if not all(bns):
            raise BackendError(f"BN_new: {_libcrypto.openssl_reason()}")
        _libcrypto.check(lb.EC_GROUP_get_curve(group, bns[0], bns[1], bns[2], None), "reading the curve")
        p, a, b = (_bn_int(bn) for bn in bns)
    finally:
        for bn in bns:
            if bn:
                hb.BN_free(bn)
    gen = _encode(group, lb.EC_GROUP_get0_generator(group), _UNCOMPRESSED)
    return {"p": p, "a": a, "b": b, "n": _bn_int(lb.EC_GROUP_get0_order(group)),
            "gx": int.from_bytes(gen[1:33], "big"), "gy": int.from_bytes(gen[33:], "big"),
            "h": _bn_int(lb.EC_GROUP_get0_cofactor(group))}


def curve_parameters() -> dict[str, int]:
    """``p, a, b, n, gx, gy, h`` as libcrypto reports them (for known-answer tests)."""
    return _read_parameters(_group())


def _encode(group: int, ptr: int, form: int) -> bytes:
    buf = ctypes.create_string_buffer(UNCOMPRESSED_SIZE)
    size = _libcrypto.held().EC_POINT_point2oct(group, ptr, form, buf, UNCOMPRESSED_SIZE, None)
    if not size:
        raise BackendError(f"encoding a point: {_libcrypto.openssl_reason()}")
    return buf.raw[:size]


class Scalar:
    """An integer modulo ``n``; immutable. ``Scalar(v)`` reduces any Python integer (so a
    negative ``v`` becomes ``n - |v| mod n``). ``repr`` hides the value: scalars are often
    secret (keys, commitment randomness)."""

    __slots__ = ("_v",)

    def __init__(self, value: int) -> None:
        if not isinstance(value, int) or isinstance(value, bool):
            raise InvalidScalar(f"a scalar is made from an int, not {type(value).__name__}")
        self._v = value % N

    @classmethod
    def from_bytes(cls, data: bytes) -> Scalar:
        """Decode exactly 32 bytes, big-endian, below ``n``; anything else is refused."""
        if not isinstance(data, bytes | bytearray) or len(data) != SCALAR_SIZE:
            raise InvalidScalar(f"a scalar is {SCALAR_SIZE} bytes")
        value = int.from_bytes(data, "big")
        if value >= N:
            raise InvalidScalar("a scalar encoding must be below the group order n")
        return cls(value)

    def to_bytes(self) -> bytes:
        return self._v.to_bytes(SCALAR_SIZE, "big")

    def __int__(self) -> int:
        return self._v

    @property
    def value(self) -> int:
        """The representative in ``[0, n-1]``."""
        return self._v

    def is_zero(self) -> bool:
        return self._v == 0

    def __add__(self, other: Scalar | int) -> Scalar:
        return Scalar(self._v + _as_int(other))

    __radd__ = __add__

    def __sub__(self, other: Scalar | int) -> Scalar:
        return Scalar(self._v - _as_int(other))

    def __rsub__(self, other: Scalar | int) -> Scalar:
        return Scalar(_as_int(other) - self._v)

    def __mul__(self, other: Any) -> Any:
        if isinstance(other, Point):
            return other * self
        if isinstance(other, Scalar | int) and not isinstance(other, bool):
            return Scalar(self._v * _as_int(other))
        return NotImplemented

    def __rmul__(self, other: Scalar | int) -> Scalar:
        return Scalar(self._v * _as_int(other))

    def __neg__(self) -> Scalar:
        return Scalar(-self._v)

    def inverse(self) -> Scalar:
        if self._v == 0:
            raise InvalidScalar("zero has no inverse modulo n")
        return Scalar(pow(self._v, -1, N))

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Scalar):
            return NotImplemented
        return hmac.compare_digest(self.to_bytes(), other.to_bytes())

    def __hash__(self) -> int:
        return hash(("Scalar", self._v))

    def __repr__(self) -> str:
        return "Scalar(<hidden>)"


def _as_int(x: Scalar | int) -> int:
    if isinstance(x, Scalar):
        return x.value
    if isinstance(x, int) and not isinstance(x, bool):
        return x
    raise InvalidScalar(f"not a scalar: {type(x).__name__}")


def random_scalar() -> Scalar:
    """Uniform in ``[1, n-1]``, from ``secrets``."""
    return Scalar(secrets.randbelow(N - 1) + 1)


def _bn(k: Scalar) -> int:
    bn = _libcrypto.held().BN_bin2bn(k.to_bytes(), SCALAR_SIZE, None)
    if not bn:
        raise BackendError(f"BN_bin2bn: {_libcrypto.openssl_reason()}")
    return int(bn)


class Point:
    """A point of the SM2 curve (possibly the point at infinity, the group's identity);
    immutable. Build one with ``generator()``, ``identity()``, ``from_bytes`` or arithmetic."""

    __slots__ = ("__weakref__", "_ptr")

    def __init__(self, ptr: int) -> None:  # takes ownership of an EC_POINT* of the SM2 group
        if not ptr:
            raise BackendError(f"null EC_POINT: {_libcrypto.openssl_reason()}")
        self._ptr = ptr

    def __del__(self) -> None:
        ptr, self._ptr = getattr(self, "_ptr", 0), 0
        try:
            handle = _libcrypto._held
        except AttributeError:  # interpreter shutdown: this module's globals are gone
            return
        if ptr and handle is not None:
            handle.EC_POINT_free(ptr)

    @staticmethod
    def _new() -> int:
        ptr = _libcrypto.held().EC_POINT_new(_group())
        if not ptr:
            raise BackendError(f"EC_POINT_new: {_libcrypto.openssl_reason()}")
        return int(ptr)

    @classmethod
    def generator(cls) -> Point:
        group = _group()
        return cls(_libcrypto.held().EC_POINT_dup(_libcrypto.lib().EC_GROUP_get0_generator(group), group))

    @classmethod
    def identity(cls) -> Point:
        pt = cls(cls._new())
        _libcrypto.check(_libcrypto.held().EC_POINT_set_to_infinity(_group(), pt._ptr), "point at infinity")
        return pt

    @classmethod
    def from_bytes(cls, data: bytes, *, allow_identity: bool = False) -> Point:
        """Decode a canonical SEC1 encoding (33 or 65 bytes, or ``00`` for the point at
        infinity when ``allow_identity``); anything else raises ``InvalidPoint``."""
        if not isinstance(data, bytes | bytearray):
            raise InvalidPoint(f"a point is encoded as bytes, not {type(data).__name__}")
        data = bytes(data)
        if data == INFINITY_ENCODING:
            if allow_identity:
                return cls.identity()
            raise InvalidPoint("the point at infinity is not accepted here")
        if not ((len(data) == COMPRESSED_SIZE and data[0] in (2, 3))
                or (len(data) == UNCOMPRESSED_SIZE and data[0] == 4)):
            raise InvalidPoint("a point is 33 bytes (02/03 || x) or 65 bytes (04 || x || y), "
                               f"got {len(data)} bytes starting {data[:1].hex() or 'with nothing'}")
        group = _group()
        pt = cls(cls._new())
        # decompressing takes a square root modulo p: release the GIL for it
        decode = _libcrypto.lib() if data[0] != 4 else _libcrypto.held()
        if decode.EC_POINT_oct2point(group, pt._ptr, data, len(data), None) != 1:
            reason = _libcrypto.openssl_reason()
            raise InvalidPoint(f"not a point of the SM2 curve ({reason})")
        if _libcrypto.held().EC_POINT_is_on_curve(group, pt._ptr, None) != 1:
            _libcrypto.lib().ERR_clear_error()
            raise InvalidPoint("the point is not on the SM2 curve")
        if pt.is_identity() or pt.to_bytes(compressed=data[0] != 4) != data:
            raise InvalidPoint("not the canonical encoding of a point")
        return pt

    def to_bytes(self, compressed: bool = True) -> bytes:
        """SEC1: ``02``/``03`` || x (33 bytes) or ``04`` || x || y (65); ``00`` at infinity."""
        return _encode(_group(), self._ptr, _COMPRESSED if compressed else _UNCOMPRESSED)

    def is_identity(self) -> bool:
        return bool(_libcrypto.held().EC_POINT_is_at_infinity(_group(), self._ptr) == 1)

    def __add__(self, other: Point) -> Point:
        if not isinstance(other, Point):
            return NotImplemented
        out = Point(self._new())
        _libcrypto.check(_libcrypto.held().EC_POINT_add(_group(), out._ptr, self._ptr, other._ptr, None),
                         "point addition")
        return out

    def __neg__(self) -> Point:
        group = _group()
        out = Point(_libcrypto.held().EC_POINT_dup(self._ptr, group))
        _libcrypto.check(_libcrypto.held().EC_POINT_invert(group, out._ptr, None), "point negation")
        return out

    def __sub__(self, other: Point) -> Point:
        if not isinstance(other, Point):
            return NotImplemented
        return self + (-other)

    def __mul__(self, k: Scalar | int) -> Point:
        """``[k]P`` by OpenSSL's constant-time ladder: safe for a secret ``k``."""
        if not isinstance(k, Scalar | int) or isinstance(k, bool):
            return NotImplemented
        scalar = k if isinstance(k, Scalar) else Scalar(k)
        out = Point(self._new())
        bn = _bn(scalar)
        try:
            _libcrypto.check(_libcrypto.lib().EC_POINT_mul(_group(), out._ptr, None, self._ptr, bn, None),
                             "scalar multiplication")
        finally:
            _libcrypto.held().BN_clear_free(bn)
        return out

    __rmul__ = __mul__

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Point):
            return NotImplemented
        res = _libcrypto.held().EC_POINT_cmp(_group(), self._ptr, other._ptr, None)
        if res < 0:
            raise BackendError(f"comparing points: {_libcrypto.openssl_reason()}")
        return bool(res == 0)

    def __hash__(self) -> int:
        return hash(self.to_bytes())

    def __repr__(self) -> str:
        return f"Point({self.to_bytes().hex()})"


def mul_generator(k: Scalar | int) -> Point:
    """``[k]G`` by OpenSSL's constant-time ladder: safe for a secret ``k``."""
    scalar = k if isinstance(k, Scalar) else Scalar(_as_int(k))
    out = Point(Point._new())
    bn = _bn(scalar)
    try:
        _libcrypto.check(_libcrypto.lib().EC_POINT_mul(_group(), out._ptr, bn, None, None, None),
                         "multiplying the generator")
    finally:
        _libcrypto.held().BN_clear_free(bn)
    return out


def msm(scalars: Sequence[Scalar | int], points: Sequence[Point]) -> Point:
    """``sum(k_i * P_i)`` by ``EC_POINTs_mul`` (interleaved wNAF), ``MSM_CHUNK`` points per
    call. Variable time: for public scalars only (verification, audits)."""
    if len(scalars) != len(points):
        raise InvalidScalar(f"{len(scalars)} scalars for {len(points)} points")
    ks = [k if isinstance(k, Scalar) else Scalar(_as_int(k)) for k in scalars]
    for pt in points:
        if not isinstance(pt, Point):
            raise InvalidPoint(f"not a point: {type(pt).__name__}")
    total = Point.identity()
    for start in range(0, len(points), MSM_CHUNK):
        total = total + _msm_chunk(ks[start:start + MSM_CHUNK], points[start:start + MSM_CHUNK])
    return total


def _msm_chunk(ks: Sequence[Scalar], points: Sequence[Point]) -> Point:
    hb, count = _libcrypto.held(), len(points)
    out = Point(Point._new())
    pts = (c_void_p * count)(*[p._ptr for p in points])
    bns = (c_void_p * count)()
    try:
        for i, k in enumerate(ks):
            bns[i] = _bn(k)
        _libcrypto.check(_libcrypto.lib().EC_POINTs_mul(_group(), out._ptr, None, count, pts, bns, None),
                         "multi-scalar multiplication")
    finally:
        for bn in bns:
            if bn:
                hb.BN_clear_free(bn)
    return out


def sum_points(points: Iterable[Point]) -> Point:
    total = Point.identity()
    for pt in points:
        total = total + pt
    return total


def _frame(domain: bytes, parts: Sequence[bytes]) -> bytes:
    if not isinstance(domain, bytes) or not 1 <= len(domain) <= 0xFFFF:
        raise InvalidScalar("a domain is 1 to 65535 bytes")
    out = [len(domain).to_bytes(2, "big"), domain]
    for part in parts:
        if not isinstance(part, bytes | bytearray) or len(part) > 0xFFFFFFFF:
            raise InvalidScalar("hash input parts are bytes, each under 4 GiB")
        out += [len(part).to_bytes(4, "big"), bytes(part)]
    return b"".join(out)


def hash_to_scalar(domain: bytes, *parts: bytes) -> Scalar:
    """``int(SM3(M || 00) || SM3(M || 01)) mod n`` with ``M = len16(domain) || domain ||
    (len32(part) || part)...``: 512 bits reduced, so the bias is below 2^-250."""
    framed = _frame(domain, parts)
    wide = sm3(framed + b"\x00") + sm3(framed + b"\x01")
    return Scalar(int.from_bytes(wide, "big"))


def hash_to_point_with_counter(domain: bytes) -> tuple[Point, int]:
    """Try-and-increment: for ``c = 0, 1, ...`` take ``x = SM3(domain || u32be(c))`` and the
    first ``02 || x`` that decodes (``x < p`` and ``x^3 + ax + b`` a square mod p: the point
    with even ``y``). Returns the point and the ``c`` that gave it."""
    if not isinstance(domain, bytes) or not domain:
        raise InvalidPoint("hash_to_point needs a non-empty domain")
    for counter in range(HASH_TO_POINT_MAX_TRIES):
        candidate = b"\x02" + sm3(domain + counter.to_bytes(4, "big"))
        try:
            return Point.from_bytes(candidate), counter
        except InvalidPoint:
            continue
    raise BackendError(f"no curve point after {HASH_TO_POINT_MAX_TRIES} tries")  # chance 2^-1024


def hash_to_point(domain: bytes) -> Point:
    """A point nobody knows the discrete logarithm of (see ``hash_to_point_with_counter``)."""
    return hash_to_point_with_counter(domain)[0]


_fixed: dict[str, Point] = {}


def generator() -> Point:
    """``G``, the SM2 base point (one shared immutable object)."""
    if "G" not in _fixed:
        _fixed["G"] = Point.generator()
    return _fixed["G"]


def generator_h() -> Point:
    """``H = hash_to_point("rongxin/pedersen/H/v1")``, the second Pedersen generator (one
    shared immutable object)."""
    if "H" not in _fixed:
        _fixed["H"] = hash_to_point(H_DOMAIN)
    return _fixed["H"]
