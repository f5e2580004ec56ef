"""Crypto suites: the algorithm set a chain is configured with (REQUIREMENTS L5).

A suite names one hash, one signature scheme and one authenticated cipher. The national
suite ``sm`` (SM3, SM2 with the standard signer ID, SM4-GCM) is the default; ``nist``
(SHA-256, ECDSA P-256, AES-128-GCM) exists so that the configuration point is real and
tested, e.g. for a cross-chain peer that cannot speak SM2. Code above the crypto layer
asks for ``get_suite()`` and never names an algorithm.

The suite is chosen by name: an explicit argument, else the ``RONGXIN_CRYPTO_SUITE``
environment variable, else ``sm``. A chain records its suite's name in its genesis.
"""

from __future__ import annotations

import hashlib
import os
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from cryptography.exceptions import InvalidSignature as _CgInvalidSignature
from cryptography.exceptions import InvalidTag
from cryptography.exceptions import UnsupportedAlgorithm as CgUnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from .errors import (
    DecryptionError,
    InvalidKey,
    InvalidSignature,
    KeyPasswordError,
    UnsupportedAlgorithm,
)
from .sm2 import SM2PrivateKey, SM2PublicKey
from .sm3 import SM3, sm3
from .sm4 import SM4GCM

ENV_VAR = "RONGXIN_CRYPTO_SUITE"
DEFAULT_SUITE = "sm"


class Hasher(Protocol):
    def update(self, data: bytes) -> object: ...
    def digest(self) -> bytes: ...


class VerifyKey(Protocol):
    def verify(self, signature: bytes, message: bytes) -> None: ...
    def to_bytes(self) -> bytes: ...


class SigningKey(Protocol):
    def sign(self, message: bytes) -> bytes: ...
    def verify_key(self) -> VerifyKey: ...
    def to_pem(self, password: bytes | None = None) -> bytes: ...


class AEAD(Protocol):
    def seal(self, data: bytes, associated_data: bytes | None = None) -> bytes: ...
    def open_sealed(self, sealed: bytes, associated_data: bytes | None = None) -> bytes: ...


@dataclass(frozen=True)
class CryptoSuite:
    """One algorithm set, reached only through these callables."""

    name: str
    hash_name: str
    signature_name: str
    cipher_name: str
    hash: Callable[[bytes], bytes]
    new_hasher: Callable[[], Hasher]
    generate_key: Callable[[], SigningKey]
    load_signing_key: Callable[[bytes, bytes | None], SigningKey]
    load_verify_key: Callable[[bytes], VerifyKey]
    verify_key_from_bytes: Callable[[bytes], VerifyKey]
    aead: Callable[[bytes], AEAD]
    aead_key_size: int


# ------------------------------------------------------------------ national suite


class _SM2Verify:
    __slots__ = ("key",)

    def __init__(self, key: SM2PublicKey) -> None:
        self.key = key

    def verify(self, signature: bytes, message: bytes) -> None:
        self.key.verify(signature, message)

    def to_bytes(self) -> bytes:
        return self.key.point


class _SM2Sign:
    __slots__ = ("key",)

    def __init__(self, key: SM2PrivateKey) -> None:
        self.key = key

    def sign(self, message: bytes) -> bytes:
        return self.key.sign(message)

    def verify_key(self) -> VerifyKey:
        return _SM2Verify(self.key.public_key())

    def to_pem(self, password: bytes | None = None) -> bytes:
        return self.key.to_pem(password)


SM_SUITE = CryptoSuite(
    name="sm",
    hash_name="SM3",
    signature_name="SM2-with-SM3 (ID 1234567812345678)",
    cipher_name="SM4-GCM",
    hash=sm3,
    new_hasher=SM3,
    generate_key=lambda: _SM2Sign(SM2PrivateKey.generate()),
    load_signing_key=lambda data, pw: _SM2Sign(SM2PrivateKey.load(data, pw)),
    load_verify_key=lambda data: _SM2Verify(SM2PublicKey.load(data)),
    verify_key_from_bytes=lambda raw: _SM2Verify(SM2PublicKey.from_point(raw)),
    aead=SM4GCM,
    aead_key_size=16,
)


# ------------------------------------------------------------------ NIST suite


class _P256Verify:
    __slots__ = ("key",)

    def __init__(self, key: ec.EllipticCurvePublicKey) -> None:
        if not isinstance(key.curve, ec.SECP256R1):
            raise UnsupportedAlgorithm("the nist suite takes P-256 keys only")
        self.key = key

    def verify(self, signature: bytes, message: bytes) -> None:
        try:
            self.key.verify(signature, message, ec.ECDSA(hashes.SHA256()))
        except _CgInvalidSignature:
            raise InvalidSignature("ECDSA signature does not verify") from None

    def to_bytes(self) -> bytes:
        return self.key.public_bytes(
            serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
        )


class _P256Sign:
    __slots__ = ("key",)

    def __init__(self, key: ec.EllipticCurvePrivateKey) -> None:
        self.key = key

    def sign(self, message: bytes) -> bytes:
        return self.key.sign(message, ec.ECDSA(hashes.SHA256()))

    def verify_key(self) -> VerifyKey:
        return _P256Verify(self.key.public_key())

    def to_pem(self, password: bytes | None = None) -> bytes:
        enc: serialization.KeySerializationEncryption = (
            serialization.BestAvailableEncryption(password) if password else serialization.NoEncryption()
        )
        return self.key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, enc
        )


def _p256_load(data: bytes, password: bytes | None) -> SigningKey:
    try:
        key = serialization.load_pem_private_key(data, password)
    except TypeError as exc:
        raise KeyPasswordError(str(exc)) from None
    except ValueError as exc:
        raise InvalidKey(f"not a P-256 private key: {exc}") from None
    except CgUnsupportedAlgorithm as exc:
        raise UnsupportedAlgorithm(f"the nist suite takes P-256 keys only: {exc}") from None
    if not isinstance(key, ec.EllipticCurvePrivateKey) or not isinstance(key.curve, ec.SECP256R1):
        raise UnsupportedAlgorithm("the nist suite takes P-256 keys only")
    return _P256Sign(key)


def _p256_public(data: bytes) -> VerifyKey:
    try:
        key = serialization.load_pem_public_key(data)
    except ValueError as exc:
        raise InvalidKey(f"not a P-256 public key: {exc}") from None
    except CgUnsupportedAlgorithm as exc:
        raise UnsupportedAlgorithm(f"the nist suite takes P-256 keys only: {exc}") from None
    if not isinstance(key, ec.EllipticCurvePublicKey):
        raise UnsupportedAlgorithm("the nist suite takes P-256 keys only")
    return _P256Verify(key)


def _p256_point(raw: bytes) -> VerifyKey:
    try:
        return _P256Verify(ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), raw))
    except ValueError as exc:
        raise InvalidKey(f"not a P-256 point: {exc}") from None


class _AESGCMSealed:
    __slots__ = ("_aead",)

    def __init__(self, key: bytes) -> None:
        self._aead = AESGCM(key)

    def seal(self, data: bytes, associated_data: bytes | None = None) -> bytes:
        nonce = secrets.token_bytes(12)
        return nonce + self._aead.encrypt(nonce, data, associated_data)

    def open_sealed(self, sealed: bytes, associated_data: bytes | None = None) -> bytes:
        try:
            return self._aead.decrypt(sealed[:12], sealed[12:], associated_data)
        except InvalidTag:
            raise DecryptionError("AES-GCM tag mismatch: wrong key or tampered data") from None


NIST_SUITE = CryptoSuite(
    name="nist",
    hash_name="SHA-256",
    signature_name="ECDSA-P256-SHA256",
    cipher_name="AES-128-GCM",
    hash=lambda data: hashlib.sha256(data).digest(),
    new_hasher=hashlib.sha256,
    generate_key=lambda: _P256Sign(ec.generate_private_key(ec.SECP256R1())),
    load_signing_key=_p256_load,
    load_verify_key=_p256_public,
    verify_key_from_bytes=_p256_point,
    aead=_AESGCMSealed,
    aead_key_size=16,
)

_SUITES: dict[str, CryptoSuite] = {s.name: s for s in (SM_SUITE, NIST_SUITE)}


def register_suite(suite: CryptoSuite) -> None:
    """Make another algorithm set selectable by name."""
    _SUITES[suite.name] = suite


def available_suites() -> list[str]:
    return sorted(_SUITES)


def get_suite(name: str | None = None) -> CryptoSuite:
    chosen = name or os.environ.get(ENV_VAR) or DEFAULT_SUITE
    try:
        return _SUITES[chosen]
    except KeyError:
        raise UnsupportedAlgorithm(
            f"unknown crypto suite {chosen!r}; choose one of {', '.join(available_suites())}"
        ) from None
