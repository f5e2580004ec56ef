"""Thin ctypes binding to the system's OpenSSL 3 libcrypto, for SM2.

This is the raw layer: every call is one libcrypto function, every failure raises
``BackendError`` with OpenSSL's own reason. Nothing outside ``ledger.crypto`` imports it.
Only the functions SM2 needs are bound: key generation, (de)serialisation through
``OSSL_DECODER``/``OSSL_ENCODER``, signing/verifying a precomputed SM3 digest, SM2
public-key encryption, and the elliptic-curve calls of the SM2 group API (``group``:
encoding, addition, scalar and multi-scalar multiplication). Pointers are kept as plain
integers (``c_void_p``).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import threading
from ctypes import POINTER, byref, c_char_p, c_int, c_size_t, c_ulong, c_void_p

from .errors import BackendError, BackendUnavailable

# selections (include/openssl/core_dispatch.h, evp.h)
SELECT_PRIVATE_KEY = 0x01
SELECT_PUBLIC_KEY = 0x02
SELECT_ALL_PARAMETERS = 0x84
EVP_PKEY_KEYPAIR = SELECT_PRIVATE_KEY | SELECT_PUBLIC_KEY | SELECT_ALL_PARAMETERS
EVP_PKEY_PUBLIC_KEY = SELECT_PUBLIC_KEY | SELECT_ALL_PARAMETERS

_MIN_VERSION = 0x30000000  # OpenSSL 3.0.0

_lock = threading.RLock()  # re-entrant: _Curve() loads the library under it
_lib: ctypes.CDLL | None = None
_held: ctypes.PyDLL | None = None

# Cheap calls (well under a microsecond) bound a second time through ``ctypes.PyDLL``, which
# keeps the GIL across the call. ``ctypes.CDLL`` releases and retakes the GIL around every
# call; when a node verifies in threads, each release hands the GIL to the event loop and
# each retake waits for it, which cost ~25 us of CPU per verification (about 20 calls) under
# load. Only the two scalar multiplications of a verification (~0.1 ms each) release it.
_HELD = ("BN_CTX_start", "BN_CTX_get", "BN_CTX_end", "BN_bin2bn", "BN_mod_add", "BN_is_zero",
         "BN_cmp", "EC_POINT_add", "EC_POINT_is_at_infinity", "EC_POINT_get_affine_coordinates",
         # the curve group API (``group``): allocation, encoding, addition, comparison
         "EC_POINT_new", "EC_POINT_free", "EC_POINT_dup", "EC_POINT_invert", "EC_POINT_cmp",
         "EC_POINT_is_on_curve", "EC_POINT_point2oct", "EC_POINT_oct2point", "EC_POINT_set_to_infinity",
         "BN_new", "BN_free", "BN_clear_free", "BN_bn2binpad", "BN_CTX_new", "BN_CTX_free")


def _find_libcrypto() -> ctypes.CDLL:
    names = []
    found = ctypes.util.find_library("crypto")
    if found:
        names.append(found)
    names += ["libcrypto.so.3", "libcrypto.so"]
    last: OSError | None = None
    for name in names:
        try:
            return ctypes.CDLL(name)
        except OSError as exc:
            last = exc
    raise BackendUnavailable(
        f"OpenSSL 3 libcrypto not found ({last}); install Debian's libssl3 (make run does)"
    )


def _bind(lib: ctypes.CDLL, only: tuple[str, ...] = ()) -> None:
    def f(name: str, restype: object, *argtypes: object) -> None:
        if only and name not in only:
            return
        fn = getattr(lib, name)
        fn.restype = restype
        fn.argtypes = list(argtypes)

    vp, sz, cp = c_void_p, c_size_t, c_char_p
    f("OpenSSL_version_num", c_ulong)
    f("OpenSSL_version", cp, c_int)
    f("ERR_get_error", c_ulong)
    f("ERR_clear_error", None)
    f("ERR_error_string_n", None, c_ulong, cp, sz)
    f("CRYPTO_free", None, vp, cp, c_int)
    f("EVP_PKEY_free", None, vp)
    f("EVP_PKEY_up_ref", c_int, vp)
    f("EVP_PKEY_is_a", c_int, vp, cp)
    f("EVP_PKEY_get_bits", c_int, vp)
    f("EVP_PKEY_CTX_new", vp, vp, vp)
    f("EVP_PKEY_CTX_new_from_name", vp, vp, cp, cp)
    f("EVP_PKEY_CTX_new_from_pkey", vp, vp, vp, cp)
    f("EVP_PKEY_CTX_free", None, vp)
    f("EVP_PKEY_keygen_init", c_int, vp)
    f("EVP_PKEY_generate", c_int, vp, POINTER(vp))
    f("EVP_PKEY_sign_init", c_int, vp)
    f("EVP_PKEY_sign", c_int, vp, cp, POINTER(sz), cp, sz)
    f("EVP_PKEY_verify_init", c_int, vp)
    f("EVP_PKEY_verify", c_int, vp, cp, sz, cp, sz)
    f("EVP_PKEY_encrypt_init", c_int, vp)
    f("EVP_PKEY_encrypt", c_int, vp, cp, POINTER(sz), cp, sz)
    f("EVP_PKEY_decrypt_init", c_int, vp)
    f("EVP_PKEY_decrypt", c_int, vp, cp, POINTER(sz), cp, sz)
    f("EVP_PKEY_public_check", c_int, vp)
    f("EVP_PKEY_check", c_int, vp)
    f("EVP_PKEY_get_octet_string_param", c_int, vp, cp, cp, sz, POINTER(sz))
    f("EVP_PKEY_get_bn_param", c_int, vp, cp, POINTER(vp))
    f("BN_bn2binpad", c_int, vp, cp, c_int)
    f("BN_num_bits", c_int, vp)
    f("BN_clear_free", None, vp)
    f("OSSL_DECODER_CTX_new_for_pkey", vp, POINTER(vp), cp, cp, cp, c_int, vp, cp)
    f("OSSL_DECODER_CTX_set_passphrase", c_int, vp, cp, sz)
    f("OSSL_DECODER_CTX_get_num_decoders", c_int, vp)
    f("OSSL_DECODER_from_data", c_int, vp, POINTER(vp), POINTER(sz))
    f("OSSL_DECODER_CTX_free", None, vp)
    f("OSSL_ENCODER_CTX_new_for_pkey", vp, vp, c_int, cp, cp, cp)
    f("OSSL_ENCODER_CTX_set_cipher", c_int, vp, cp, cp)
    f("OSSL_ENCODER_CTX_set_passphrase", c_int, vp, cp, sz)
    f("OSSL_ENCODER_CTX_get_num_encoders", c_int, vp)
    f("OSSL_ENCODER_to_data", c_int, vp, POINTER(vp), POINTER(sz))
    f("OSSL_ENCODER_CTX_free", None, vp)
    # elliptic-curve arithmetic, for verifying with precomputed multiples (PointTable)
    f("EC_GROUP_new_by_curve_name", vp, c_int)
    f("EC_GROUP_dup", vp, vp)
    f("EC_GROUP_free", None, vp)
    f("EC_GROUP_get0_order", vp, vp)
    f("EC_GROUP_get0_cofactor", vp, vp)
    f("EC_GROUP_get0_generator", vp, vp)
    f("EC_GROUP_set_generator", c_int, vp, vp, vp, vp)
    f("EC_GROUP_precompute_mult", c_int, vp, vp)
    f("EC_POINT_new", vp, vp)
    f("EC_POINT_free", None, vp)
    f("EC_POINT_oct2point", c_int, vp, vp, cp, sz, vp)
    f("EC_POINT_mul", c_int, vp, vp, vp, vp, vp, vp)
    f("EC_POINT_add", c_int, vp, vp, vp, vp, vp)
    f("EC_POINT_is_at_infinity", c_int, vp, vp)
    f("EC_POINT_get_affine_coordinates", c_int, vp, vp, vp, vp, vp)
    f("BN_CTX_new", vp)
    f("BN_CTX_free", None, vp)
    f("BN_CTX_start", None, vp)
    f("BN_CTX_get", vp, vp)
    f("BN_CTX_end", None, vp)
    f("BN_new", vp)
    f("BN_free", None, vp)
    f("BN_bin2bn", vp, cp, c_int, vp)
    f("BN_mod_add", c_int, vp, vp, vp, vp, vp)
    f("BN_cmp", c_int, vp, vp)
    f("BN_is_zero", c_int, vp)
    # the curve group API (``group``): encoding, negation, multi-scalar multiplication
    f("EC_GROUP_get_curve", c_int, vp, vp, vp, vp, vp)
    f("EC_POINT_dup", vp, vp, vp)
    f("EC_POINT_invert", c_int, vp, vp, vp)
    f("EC_POINT_cmp", c_int, vp, vp, vp, vp)
    f("EC_POINT_is_on_curve", c_int, vp, vp, vp)
    f("EC_POINT_set_to_infinity", c_int, vp, vp)
    f("EC_POINT_point2oct", sz, vp, vp, c_int, cp, sz, vp)
    f("EC_POINTs_mul", c_int, vp, vp, vp, sz, POINTER(vp), POINTER(vp), vp)


def lib() -> ctypes.CDLL:
    """The bound libcrypto, loaded once per process."""
    global _lib
    if _lib is None:
        with _lock:
            if _lib is None:
                candidate = _find_libcrypto()
                _bind(candidate)
                version = candidate.OpenSSL_version_num()
                if version < _MIN_VERSION:
                    raise BackendUnavailable(
                        f"libcrypto {version:#x} is older than OpenSSL 3.0, which SM2 needs"
                    )
                _lib = candidate
    return _lib


def held() -> ctypes.PyDLL:
    """The same libcrypto, for the cheap calls in ``_HELD`` only: the GIL stays held."""
    global _held
    if _held is None:
        loaded = lib()
        with _lock:
            if _held is None:
                handle = ctypes.PyDLL(loaded._name)
                _bind(handle, _HELD)
                _held = handle
    return _held


def version_text() -> str:
    raw = lib().OpenSSL_version(0)
    return raw.decode() if raw else "OpenSSL (unknown version)"


def openssl_reason() -> str:
    """Drain OpenSSL's error queue into one readable line."""
    lb = lib()
    reasons = []
    buf = ctypes.create_string_buffer(256)
    while True:
        code = lb.ERR_get_error()
        if not code:
            break
        lb.ERR_error_string_n(code, buf, len(buf))
        reasons.append(buf.value.decode(errors="replace"))
    return "; ".join(reasons) or "no reason given by OpenSSL"


def check(ok: int, what: str) -> None:
    if ok != 1:
        raise BackendError(f"{what} failed: {openssl_reason()}")


class PKey:
    """Owns one ``EVP_PKEY*``; frees it when garbage-collected."""

    __slots__ = ("__weakref__", "ptr")

    def __init__(self, ptr: int) -> None:
        if not ptr:
            raise BackendError("null EVP_PKEY")
        self.ptr = ptr

    def __del__(self) -> None:
        ptr, self.ptr = getattr(self, "ptr", 0), 0
        if ptr and _lib is not None:
            _lib.EVP_PKEY_free(ptr)

    def is_a(self, name: str) -> bool:
        return bool(lib().EVP_PKEY_is_a(self.ptr, name.encode()))

    def octet_param(self, name: str, max_len: int = 256) -> bytes:
        buf = ctypes.create_string_buffer(max_len)
        out = c_size_t(0)
        check(
            lib().EVP_PKEY_get_octet_string_param(self.ptr, name.encode(), buf, max_len, byref(out)),
            f"reading key parameter {name}",
        )
        return buf.raw[: out.value]

    def bn_param(self, name: str, width: int) -> bytes:
        lb = lib()
        bn = c_void_p(0)
        check(lb.EVP_PKEY_get_bn_param(self.ptr, name.encode(), byref(bn)), f"reading {name}")
        try:
            buf = ctypes.create_string_buffer(width)
            if lb.BN_bn2binpad(bn, buf, width) != width:
                raise BackendError(f"key parameter {name} wider than {width} bytes")
            return buf.raw
        finally:
            lb.BN_clear_free(bn)


class PKeyCtx:
    """Owns one ``EVP_PKEY_CTX*``; use as a context manager."""

    __slots__ = ("ptr",)

    def __init__(self, ptr: int, what: str) -> None:
        if not ptr:
            raise BackendError(f"{what}: cannot create EVP_PKEY_CTX: {openssl_reason()}")
        self.ptr = ptr

    @classmethod
    def for_key(cls, key: PKey) -> PKeyCtx:
        return cls(lib().EVP_PKEY_CTX_new_from_pkey(None, key.ptr, None), "key context")

    def __enter__(self) -> PKeyCtx:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        ptr, self.ptr = self.ptr, 0
        if ptr and _lib is not None:
            _lib.EVP_PKEY_CTX_free(ptr)

    def __del__(self) -> None:
        self.close()


def generate(key_type: str) -> PKey:
    lb = lib()
    with PKeyCtx(lb.EVP_PKEY_CTX_new_from_name(None, key_type.encode(), None), "keygen") as ctx:
        check(lb.EVP_PKEY_keygen_init(ctx.ptr), "keygen init")
        out = c_void_p(0)
        check(lb.EVP_PKEY_generate(ctx.ptr, byref(out)), f"{key_type} key generation")
        return PKey(out.value or 0)


def decode(data: bytes, selection: int, password: bytes | None) -> PKey | None:
    """Decode PEM or DER (PKCS#8, encrypted PKCS#8, SEC1, SubjectPublicKeyInfo).

    Returns ``None`` when no decoder accepts the data; the caller turns that into a
    typed error after looking at why (e.g. an encrypted key and a missing password).
    """
    lb = lib()
    lb.ERR_clear_error()
    out = c_void_p(0)
    dctx = lb.OSSL_DECODER_CTX_new_for_pkey(byref(out), None, None, None, selection, None, None)
    if not dctx:
        raise BackendError(f"cannot create a key decoder: {openssl_reason()}")
    try:
        if password is not None:
            check(lb.OSSL_DECODER_CTX_set_passphrase(dctx, password, len(password)), "passphrase")
        buf = ctypes.create_string_buffer(data, len(data))
        pdata = c_void_p(ctypes.addressof(buf))
        plen = c_size_t(len(data))
        ok = lb.OSSL_DECODER_from_data(dctx, byref(pdata), byref(plen))
        if ok != 1 or not out.value:
            lb.ERR_clear_error()
            return None
        return PKey(out.value)
    finally:
        lb.OSSL_DECODER_CTX_free(dctx)


def encode(
    key: PKey,
    selection: int,
    output_type: str,
    output_struct: str,
    cipher: str | None = None,
    password: bytes | None = None,
) -> bytes:
    lb = lib()
    # The encoder context keeps these pointers (it does not copy the strings), so the
    # bytes objects must outlive it: hold them in locals until the context is freed.
    otype, ostruct = output_type.encode(), output_struct.encode()
    ectx = lb.OSSL_ENCODER_CTX_new_for_pkey(key.ptr, selection, otype, ostruct, None)
    if not ectx:
        raise BackendError(f"cannot create a key encoder: {openssl_reason()}")
    try:
        if lb.OSSL_ENCODER_CTX_get_num_encoders(ectx) < 1:
            raise BackendError(f"no encoder for {output_type}/{output_struct}")
        if cipher is not None:
            check(lb.OSSL_ENCODER_CTX_set_cipher(ectx, cipher.encode(), None), "encoder cipher")
            pw = password or b""
            check(lb.OSSL_ENCODER_CTX_set_passphrase(ectx, pw, len(pw)), "encoder passphrase")
        pdata = c_void_p(0)
        plen = c_size_t(0)
        check(lb.OSSL_ENCODER_to_data(ectx, byref(pdata), byref(plen)), "key encoding")
        try:
            return ctypes.string_at(pdata.value or 0, plen.value)
        finally:
            lb.CRYPTO_free(pdata, None, 0)
    finally:
        lb.OSSL_ENCODER_CTX_free(ectx)
        del otype, ostruct


def key_check(key: PKey, private: bool) -> bool:
    lb = lib()
    with PKeyCtx.for_key(key) as ctx:
        ok = lb.EVP_PKEY_check(ctx.ptr) if private else lb.EVP_PKEY_public_check(ctx.ptr)
    lb.ERR_clear_error()
    return bool(ok == 1)


def sign_digest(key: PKey, digest: bytes) -> bytes:
    lb = lib()
    with PKeyCtx.for_key(key) as ctx:
        check(lb.EVP_PKEY_sign_init(ctx.ptr), "sign init")
        size = c_size_t(80)
        sig = ctypes.create_string_buffer(80)
        check(lb.EVP_PKEY_sign(ctx.ptr, sig, byref(size), digest, len(digest)), "SM2 signing")
        return sig.raw[: size.value]


def verify_digest(key: PKey, digest: bytes, signature: bytes) -> bool:
    lb = lib()
    with PKeyCtx.for_key(key) as ctx:
        check(lb.EVP_PKEY_verify_init(ctx.ptr), "verify init")
        ok = lb.EVP_PKEY_verify(ctx.ptr, signature, len(signature), digest, len(digest))
    if ok != 1:
        lb.ERR_clear_error()
    return bool(ok == 1)


class Verifier:
    """A verify context kept for one key: initialised once, reused for every signature
    (``EVP_PKEY_verify`` may be called repeatedly after one ``EVP_PKEY_verify_init``).
    A context is not safe to share between threads, so a second thread that finds it busy
    uses a fresh one."""

    __slots__ = ("_busy", "_ctx", "_key")

    def __init__(self, key: PKey) -> None:
        self._key = key
        self._ctx = PKeyCtx.for_key(key)
        check(lib().EVP_PKEY_verify_init(self._ctx.ptr), "verify init")
        self._busy = threading.Lock()

    def verify(self, digest: bytes, signature: bytes) -> bool:
        if not self._busy.acquire(blocking=False):
            return verify_digest(self._key, digest, signature)
        try:
            ok = lib().EVP_PKEY_verify(self._ctx.ptr, signature, len(signature), digest, len(digest))
        finally:
            self._busy.release()
        if ok != 1:
            lib().ERR_clear_error()
        return bool(ok == 1)


def _crypt(key: PKey, data: bytes, decrypt: bool) -> bytes | None:
    lb = lib()
    init, run = (
        (lb.EVP_PKEY_decrypt_init, lb.EVP_PKEY_decrypt)
        if decrypt
        else (lb.EVP_PKEY_encrypt_init, lb.EVP_PKEY_encrypt)
    )
    with PKeyCtx.for_key(key) as ctx:
        check(init(ctx.ptr), "SM2 cipher init")
        size = c_size_t(0)
        if run(ctx.ptr, None, byref(size), data, len(data)) != 1:
            lb.ERR_clear_error()
            return None
        out = ctypes.create_string_buffer(size.value)
        if run(ctx.ptr, out, byref(size), data, len(data)) != 1:
            lb.ERR_clear_error()
            return None
        return out.raw[: size.value]


def encrypt(key: PKey, plaintext: bytes) -> bytes:
    out = _crypt(key, plaintext, decrypt=False)
    if out is None:
        raise BackendError(f"SM2 encryption failed: {openssl_reason()}")
    return out


def decrypt(key: PKey, ciphertext: bytes) -> bytes | None:
    return _crypt(key, ciphertext, decrypt=True)


# -- SM2 verification with precomputed multiples --------------------------------------------

NID_SM2 = 1172  # obj_mac.h


class _Curve:
    """The SM2 group (``sm2p256v1``) with OpenSSL's precomputed multiples of its generator
    ``G``; one per process, never freed."""

    def __init__(self) -> None:
        lb = lib()
        group = lb.EC_GROUP_new_by_curve_name(NID_SM2)
        if not group:
            raise BackendError(f"libcrypto has no SM2 curve: {openssl_reason()}")
        check(lb.EC_GROUP_precompute_mult(group, None), "precomputing multiples of the SM2 generator")
        self.group = group
        self.order = lb.EC_GROUP_get0_order(group)
        self.cofactor = lb.EC_GROUP_get0_cofactor(group)
        self.generator = lb.EC_GROUP_get0_generator(group)
        self.zero = lb.BN_new()  # BN_new() is zero
        if not (self.order and self.cofactor and self.generator and self.zero):
            raise BackendError(f"reading the SM2 group: {openssl_reason()}")


_curve: _Curve | None = None


def _sm2_curve() -> _Curve:
    global _curve
    if _curve is None:
        with _lock:
            if _curve is None:
                _curve = _Curve()
    return _curve


BUSY_WAIT_S = 0.002


class PointTable:
    """A copy of the SM2 group whose generator is the public key ``P``, with OpenSSL's
    precomputed multiples of ``P`` (``EC_GROUP_precompute_mult``, about 80 KiB).

    ``verify`` computes ``[s]G + [t]P`` as two multiplications that each use a table (so
    neither pays the 256 doublings of a plain double-scalar multiplication) and checks the
    result as GB/T 32918.2-2016 section 7.1 does. Each multiplication is passed a zero
    second scalar: for a lone generator scalar OpenSSL switches to its constant-time ladder,
    which ignores tables (constant time is for secret scalars; everything here is public).
    Not safe to share between threads: a caller that finds it busy gets ``None`` back."""

    __slots__ = ("_busy", "_ctx", "_group", "_r1", "_r2")

    def __init__(self, point: bytes) -> None:
        lb = lib()
        curve = _sm2_curve()
        self._group = self._ctx = self._r1 = self._r2 = 0
        self._busy = threading.Lock()
        self._group = lb.EC_GROUP_dup(curve.group)
        if not self._group:
            raise BackendError(f"copying the SM2 group: {openssl_reason()}")
        gen = lb.EC_POINT_new(self._group)
        if not gen:
            raise BackendError(f"allocating a point: {openssl_reason()}")
        try:
            check(lb.EC_POINT_oct2point(self._group, gen, point, len(point), None), "decoding the public point")
            check(lb.EC_GROUP_set_generator(self._group, gen, curve.order, curve.cofactor),
                  "setting the public point as generator")
        finally:
            lb.EC_POINT_free(gen)
        check(lb.EC_GROUP_precompute_mult(self._group, None), "precomputing multiples of the public point")
        self._ctx = lb.BN_CTX_new()
        self._r1 = lb.EC_POINT_new(curve.group)
        self._r2 = lb.EC_POINT_new(curve.group)
        if not (self._ctx and self._r1 and self._r2):
            raise BackendError(f"allocating verification state: {openssl_reason()}")

    def __del__(self) -> None:
        if _lib is None:
            return
        for name, free in (("_r1", _lib.EC_POINT_free), ("_r2", _lib.EC_POINT_free),
                           ("_ctx", _lib.BN_CTX_free), ("_group", _lib.EC_GROUP_free)):
            ptr = getattr(self, name, 0)
            if ptr:
                setattr(self, name, 0)
                free(ptr)

    def verify(self, digest: bytes, r: bytes, s: bytes) -> bool | None:
        """Whether ``(r, s)`` (32 bytes each, big-endian, already checked to lie in
        ``[1, n-1]``) signs the 32-byte digest ``e = SM3(Z || M)``; ``None`` when another
        thread kept the table busy for longer than ``BUSY_WAIT_S`` (a verification takes
        ~0.15 ms: waiting for it costs less than verifying without the table)."""
        if not self._busy.acquire(timeout=BUSY_WAIT_S):
            return None
        try:
            return self._verify(digest, r, s)
        finally:
            self._busy.release()

    def _verify(self, digest: bytes, r: bytes, s: bytes) -> bool:
        lb, hb = lib(), held()  # lb releases the GIL (the two multiplications), hb keeps it
        curve = _sm2_curve()
        ctx = self._ctx
        hb.BN_CTX_start(ctx)
        try:
            bn_r, bn_s, bn_t = hb.BN_CTX_get(ctx), hb.BN_CTX_get(ctx), hb.BN_CTX_get(ctx)
            bn_e, bn_x, bn_v = hb.BN_CTX_get(ctx), hb.BN_CTX_get(ctx), hb.BN_CTX_get(ctx)
            if not bn_v:  # BN_CTX_get fails only by running out of memory; later ones then fail too
                raise BackendError(f"BN_CTX_get: {openssl_reason()}")
            if not (hb.BN_bin2bn(r, len(r), bn_r) and hb.BN_bin2bn(s, len(s), bn_s)
                    and hb.BN_bin2bn(digest, len(digest), bn_e)):
                raise BackendError(f"BN_bin2bn: {openssl_reason()}")
            # B5: t = (r + s) mod n, and t = 0 fails
            check(hb.BN_mod_add(bn_t, bn_r, bn_s, curve.order, ctx), "t = r + s mod n")
            if hb.BN_is_zero(bn_t):
                return False
            # B6: (x1, y1) = [s]G + [t]P
            check(lb.EC_POINT_mul(curve.group, self._r1, bn_s, curve.generator, curve.zero, ctx), "[s]G")
            check(lb.EC_POINT_mul(self._group, self._r2, bn_t, curve.generator, curve.zero, ctx), "[t]P")
            check(hb.EC_POINT_add(curve.group, self._r1, self._r1, self._r2, ctx), "[s]G + [t]P")
            if hb.EC_POINT_is_at_infinity(curve.group, self._r1):
                return False
            check(hb.EC_POINT_get_affine_coordinates(curve.group, self._r1, bn_x, None, ctx), "x1")
            # B7: R = (e + x1) mod n must equal r
            check(hb.BN_mod_add(bn_v, bn_e, bn_x, curve.order, ctx), "R = e + x1 mod n")
            return bool(hb.BN_cmp(bn_v, bn_r) == 0)
        finally:
            hb.BN_CTX_end(ctx)
