"""Known-answer tests of the national crypto and a short speed report.

``run_known_answer_tests`` checks the backend against the standards' own examples (SM3,
SM4, SM2 ``Z``/``e``/signature/ciphertext) plus round trips of every operation the product
uses; ``speed_report`` measures each primitive for a fraction of a second. Both return
plain rows for the CLI to print as a table or JSON.
"""

from __future__ import annotations

import datetime as dt
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial

from . import _libcrypto
from .errors import CryptoError, InvalidSignature
from .sm2 import SM2PrivateKey, compute_z, encode_signature
from .sm3 import sm3
from .sm4 import SM4GCM, encrypt_block
from .vectors import (
    PEDERSEN_H,
    SM2_ENCRYPT,
    SM2_SIGN,
    SM3_VECTORS,
    SM4_CIPHERTEXT,
    SM4_CIPHERTEXT_1M,
    SM4_KEY,
    SM4_PLAINTEXT,
)


@dataclass(frozen=True)
class Check:
    name: str
    ok: bool
    detail: str


def _check(name: str, fn: Callable[[], str]) -> Check:
    try:
        return Check(name, True, fn())
    except (CryptoError, AssertionError, ValueError) as exc:
        return Check(name, False, f"{type(exc).__name__}: {exc}")


def _expect(got: bytes, want_hex: str) -> str:
    if got.hex() != want_hex.lower():
        raise AssertionError(f"got {got.hex()}, standard says {want_hex.lower()}")
    return want_hex.lower()[:16] + "…"


def sm4_iterated(key: bytes, block: bytes, times: int) -> bytes:
    """Encrypt ``block`` ``times`` times in a row (GB/T 32907 A.2 uses 1,000,000)."""
    from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

    enc = Cipher(algorithms.SM4(key), modes.ECB()).encryptor()  # noqa: S305 - the standard defines A.2 on raw blocks
    for _ in range(times):
        block = enc.update(block)
    return block


def _sm3_case(message: bytes, digest: str) -> str:
    return _expect(sm3(message), digest)


def run_known_answer_tests(full: bool = False) -> list[Check]:
    checks: list[Check] = []
    for source, message, digest in SM3_VECTORS:
        checks.append(_check(f"SM3 {source}", partial(_sm3_case, message, digest)))
    key, pt = bytes.fromhex(SM4_KEY), bytes.fromhex(SM4_PLAINTEXT)
    checks.append(_check("SM4 GB/T 32907-2016 A.1",
                         lambda: _expect(encrypt_block(key, pt), SM4_CIPHERTEXT)))
    if full:
        checks.append(_check("SM4 GB/T 32907-2016 A.2 (10^6 rounds)",
                             lambda: _expect(sm4_iterated(key, pt, 1_000_000), SM4_CIPHERTEXT_1M)))

    v = SM2_SIGN
    std_key = SM2PrivateKey.from_scalar(bytes.fromhex(v.d))
    std_pub = std_key.public_key()
    checks.append(_check("SM2 public key from d", lambda: _expect(std_pub.point, "04" + v.px + v.py)))
    checks.append(_check("SM2 Z_A", lambda: _expect(compute_z(std_pub.point, v.signer_id), v.za)))
    checks.append(_check("SM2 e = SM3(Z_A || M)",
                         lambda: _expect(std_pub.message_digest(v.message, v.signer_id), v.e)))

    def std_signature() -> str:
        sig = encode_signature(int(v.r, 16), int(v.s, 16))
        std_pub.verify(sig, v.message, v.signer_id)
        try:
            std_pub.verify(sig, v.message + b".", v.signer_id)
        except InvalidSignature:
            return "standard (r, s) verifies; altered message fails"
        raise AssertionError("a signature verified for an altered message")

    checks.append(_check("SM2 verify standard signature", std_signature))

    def std_ciphertext() -> str:
        out = std_key.decrypt(SM2_ENCRYPT.c1c3c2())
        if out != SM2_ENCRYPT.message:
            raise AssertionError(f"decrypted {out!r}")
        return "standard C1C3C2 ciphertext decrypts to 'encryption standard'"

    checks.append(_check("SM2 decrypt standard ciphertext", std_ciphertext))

    def round_trips() -> str:
        k = SM2PrivateKey.generate()
        msg = os.urandom(1000)
        sig = k.sign(msg)
        k.public_key().verify(sig, msg)
        if k.public_key().is_valid_signature(sig, msg, b"another signer id"):
            raise AssertionError("signature verified under another signer ID")
        if k.decrypt(k.public_key().encrypt(msg)) != msg:
            raise AssertionError("SM2 encrypt/decrypt round trip failed")
        again = SM2PrivateKey.load(k.to_pem(b"pw"), b"pw")
        if again.public_key() != k.public_key():
            raise AssertionError("encrypted PKCS#8 round trip changed the key")
        aead = SM4GCM(os.urandom(16))
        if aead.open_sealed(aead.seal(msg, b"ad"), b"ad") != msg:
            raise AssertionError("SM4-GCM round trip failed")
        return "sign/verify, encrypt/decrypt, PKCS#8, SM4-GCM"

    checks.append(_check("round trips", round_trips))

    def certificate() -> str:
        from .x509 import build_certificate, utcnow, verify_certificate

        now = utcnow()
        rk, lk = SM2PrivateKey.generate(), SM2PrivateKey.generate()
        root = build_certificate(issuer_key=rk, issuer=None, subject_public_key=rk.public_key(),
                                 common_name="selftest root", organization="selftest",
                                 role="root", not_before=now,
                                 not_after=now + dt.timedelta(days=1), is_ca=True)
        leaf = build_certificate(issuer_key=rk, issuer=root, subject_public_key=lk.public_key(),
                                 common_name="selftest node", organization="selftest",
                                 role="consensus", not_before=now,
                                 not_after=now + dt.timedelta(days=1))
        verify_certificate(leaf, root)
        return "SM2-with-SM3 root → leaf certificate verifies"

    checks.append(_check("X.509 chain", certificate))
    checks.append(_check("SM2 group: d*G, k*G, MSM", _group_case))
    checks.append(_check("Pedersen H re-derived", _pedersen_h_case))
    return checks


def _group_case() -> str:
    from . import group

    group.curve_parameters()  # compares libcrypto's curve with GB/T 32918.5's
    d, k = int(SM2_SIGN.d, 16), int(SM2_ENCRYPT.k, 16)
    _expect(group.mul_generator(d).to_bytes(compressed=False), "04" + SM2_SIGN.px + SM2_SIGN.py)
    _expect(group.msm([k], [group.generator()]).to_bytes(compressed=False),
            "04" + SM2_ENCRYPT.c1x + SM2_ENCRYPT.c1y)
    if group.msm([d, k], [group.generator(), group.generator()]) != group.mul_generator(d + k):
        raise AssertionError("MSM disagrees with one multiplication")
    return "curve parameters, standard public key and C1, MSM"


def _pedersen_h_case() -> str:
    from . import group

    return _expect(group.hash_to_point(group.H_DOMAIN).to_bytes(), PEDERSEN_H)


@dataclass(frozen=True)
class Speed:
    name: str
    value: float
    unit: str


def _rate(fn: Callable[[], object], seconds: float) -> float:
    n, start = 0, time.perf_counter()
    deadline = start + seconds
    while True:
        fn()
        n += 1
        now = time.perf_counter()
        if now >= deadline:
            return n / (now - start)


def speed_report(seconds: float = 0.5) -> list[Speed]:
    key = SM2PrivateKey.generate()
    pub = key.public_key()
    msg = os.urandom(256)
    sig = key.sign(msg)
    chunk = os.urandom(16384)
    aead = SM4GCM(os.urandom(16))
    nonce = os.urandom(12)
    return [
        Speed("SM2 sign", _rate(lambda: key.sign(msg), seconds), "/s"),
        Speed("SM2 verify", _rate(lambda: pub.verify(sig, msg), seconds), "/s"),
        Speed("SM3 (16 KB blocks)", _rate(lambda: sm3(chunk), seconds) * 16384 / 1e6, "MB/s"),
        Speed("SM4-GCM (16 KB messages)",
              _rate(lambda: aead.encrypt(nonce, chunk), seconds) * 16384 / 1e6, "MB/s"),
    ]


def backend_description() -> str:
    return f"SM2 via {_libcrypto.version_text()} libcrypto; SM3 via hashlib; SM4 via cryptography"
