"""SM4 block cipher (GB/T 32907-2016): GCM for data, CBC and CTR where a format needs them.

Backed by ``cryptography``'s SM4. ``SM4GCM`` mirrors ``cryptography``'s ``AESGCM``:
12-byte nonces from ``secrets``, 16-byte tags, associated data authenticated. The sealed
form ``seal``/``open_sealed`` is ``nonce || ciphertext || tag``.
"""

from __future__ import annotations

import secrets

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import padding
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from .errors import DecryptionError

KEY_SIZE = 16
BLOCK_SIZE = 16
NONCE_SIZE = 12
TAG_SIZE = 16


def _key(key: bytes) -> bytes:
    if len(key) != KEY_SIZE:
        raise ValueError(f"an SM4 key is 16 bytes, got {len(key)}")
    return bytes(key)


def generate_key() -> bytes:
    return secrets.token_bytes(KEY_SIZE)


def encrypt_block(key: bytes, block: bytes) -> bytes:
    """One raw SM4 block (ECB of exactly 16 bytes); for known-answer tests only."""
    if len(block) != BLOCK_SIZE:
        raise ValueError("an SM4 block is 16 bytes")
    enc = Cipher(algorithms.SM4(_key(key)), modes.ECB()).encryptor()  # noqa: S305 - one raw block, by design
    return enc.update(block) + enc.finalize()


class SM4GCM:
    """Authenticated encryption with SM4 in Galois/Counter Mode."""

    __slots__ = ("_key",)

    def __init__(self, key: bytes) -> None:
        self._key = _key(key)

    def encrypt(self, nonce: bytes, data: bytes, associated_data: bytes | None = None) -> bytes:
        """``ciphertext || tag``."""
        if len(nonce) != NONCE_SIZE:
            raise ValueError("an SM4-GCM nonce is 12 bytes")
        enc = Cipher(algorithms.SM4(self._key), modes.GCM(nonce)).encryptor()
        if associated_data:
            enc.authenticate_additional_data(associated_data)
        return enc.update(data) + enc.finalize() + enc.tag

    def decrypt(self, nonce: bytes, data: bytes, associated_data: bytes | None = None) -> bytes:
        if len(nonce) != NONCE_SIZE:
            raise ValueError("an SM4-GCM nonce is 12 bytes")
        if len(data) < TAG_SIZE:
            raise DecryptionError("SM4-GCM ciphertext is shorter than its tag")
        body, tag = data[:-TAG_SIZE], data[-TAG_SIZE:]
        dec = Cipher(algorithms.SM4(self._key), modes.GCM(nonce, tag)).decryptor()
        if associated_data:
            dec.authenticate_additional_data(associated_data)
        try:
            return dec.update(body) + dec.finalize()
        except InvalidTag:
            raise DecryptionError("SM4-GCM tag mismatch: wrong key or tampered data") from None

    def seal(self, data: bytes, associated_data: bytes | None = None) -> bytes:
        """Encrypt under a fresh random nonce: ``nonce || ciphertext || tag``."""
        nonce = secrets.token_bytes(NONCE_SIZE)
        return nonce + self.encrypt(nonce, data, associated_data)

    def open_sealed(self, sealed: bytes, associated_data: bytes | None = None) -> bytes:
        if len(sealed) < NONCE_SIZE + TAG_SIZE:
            raise DecryptionError("sealed SM4-GCM data is too short")
        return self.decrypt(sealed[:NONCE_SIZE], sealed[NONCE_SIZE:], associated_data)


def cbc_encrypt(key: bytes, iv: bytes, plaintext: bytes) -> bytes:
    """SM4-CBC with PKCS#7 padding (unauthenticated: only where a format requires it)."""
    if len(iv) != BLOCK_SIZE:
        raise ValueError("an SM4-CBC IV is 16 bytes")
    padder = padding.PKCS7(128).padder()
    padded = padder.update(plaintext) + padder.finalize()
    enc = Cipher(algorithms.SM4(_key(key)), modes.CBC(iv)).encryptor()
    return enc.update(padded) + enc.finalize()


def cbc_decrypt(key: bytes, iv: bytes, ciphertext: bytes) -> bytes:
    if len(iv) != BLOCK_SIZE:
        raise ValueError("an SM4-CBC IV is 16 bytes")
    if not ciphertext or len(ciphertext) % BLOCK_SIZE:
        raise DecryptionError("SM4-CBC ciphertext is not a whole number of blocks")
    dec = Cipher(algorithms.SM4(_key(key)), modes.CBC(iv)).decryptor()
    padded = dec.update(ciphertext) + dec.finalize()
    unpadder = padding.PKCS7(128).unpadder()
    try:
        return unpadder.update(padded) + unpadder.finalize()
    except ValueError:
        raise DecryptionError("SM4-CBC padding is invalid: wrong key or damaged data") from None


def ctr_crypt(key: bytes, counter_block: bytes, data: bytes) -> bytes:
    """SM4-CTR; the same call encrypts and decrypts."""
    if len(counter_block) != BLOCK_SIZE:
        raise ValueError("an SM4-CTR initial counter block is 16 bytes")
    ctx = Cipher(algorithms.SM4(_key(key)), modes.CTR(counter_block)).encryptor()
    return ctx.update(data) + ctx.finalize()
