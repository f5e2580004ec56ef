"""SM3 and SM4 against the standards' examples, plus streaming and mode behaviour."""

from __future__ import annotations

import io
import os

import pytest
from gmssl import sm3 as gm_sm3
from hypothesis import given, settings
from hypothesis import strategies as st

from ledger.crypto import SM3, SM4GCM, DecryptionError, sm3, sm3_file, sm3_stream
from ledger.crypto import sm4 as sm4mod
from ledger.crypto.selftest import sm4_iterated
from ledger.crypto.vectors import (
    SM3_VECTORS,
    SM4_CIPHERTEXT,
    SM4_CIPHERTEXT_1M,
    SM4_KEY,
    SM4_PLAINTEXT,
)


@pytest.mark.parametrize(("source", "message", "digest"), SM3_VECTORS)
def test_sm3_matches_gbt32905_examples(source: str, message: bytes, digest: str) -> None:
    assert sm3(message).hex() == digest, source
    assert SM3(message).hexdigest() == digest


def test_sm3_incremental_equals_one_shot_for_any_split() -> None:
    data = os.urandom(200_003)
    for split in (0, 1, 63, 64, 65, 4096, 199_999):
        h = SM3()
        h.update(data[:split]).update(data[split:])
        assert h.digest() == sm3(data)
    copy = SM3(data[:10]).copy()
    assert copy.update(data[10:]).digest() == sm3(data)


def test_sm3_file_streams_a_large_file(tmp_path) -> None:
    data = os.urandom(3 * (1 << 20) + 17)
    path = tmp_path / "big.bin"
    path.write_bytes(data)
    assert sm3_file(path) == sm3(data)
    assert sm3_stream(io.BytesIO(data), chunk_size=1000) == sm3(data)


@settings(max_examples=40, deadline=None)
@given(st.binary(max_size=300))
def test_sm3_agrees_with_independent_gmssl(data: bytes) -> None:
    assert sm3(data).hex() == gm_sm3.sm3_hash(list(data))


def test_sm4_block_matches_gbt32907_example() -> None:
    key = bytes.fromhex(SM4_KEY)
    assert sm4mod.encrypt_block(key, bytes.fromhex(SM4_PLAINTEXT)).hex() == SM4_CIPHERTEXT


@pytest.mark.slow
def test_sm4_one_million_rounds_matches_gbt32907_example() -> None:
    key = bytes.fromhex(SM4_KEY)
    assert sm4_iterated(key, bytes.fromhex(SM4_PLAINTEXT), 1_000_000).hex() == SM4_CIPHERTEXT_1M


def test_sm4_gcm_round_trip_and_tamper_detection() -> None:
    key = sm4mod.generate_key()
    aead = SM4GCM(key)
    sealed = aead.seal(b"revenue share 12.5%", b"contract-7")
    assert aead.open_sealed(sealed, b"contract-7") == b"revenue share 12.5%"
    with pytest.raises(DecryptionError):
        aead.open_sealed(sealed, b"contract-8")
    flipped = bytearray(sealed)
    flipped[15] ^= 1
    with pytest.raises(DecryptionError):
        aead.open_sealed(bytes(flipped), b"contract-7")
    with pytest.raises(DecryptionError):
        SM4GCM(sm4mod.generate_key()).open_sealed(sealed, b"contract-7")
    assert aead.seal(b"x") != aead.seal(b"x"), "nonces must be fresh"


def test_sm4_gcm_agrees_with_openssl_backend_layout() -> None:
    # GCM with a 12-byte nonce: ciphertext || 16-byte tag; the ciphertext equals CTR with
    # counter block nonce || 00000002 (NIST SP 800-38D), which ties GCM to plain SM4.
    key, nonce = os.urandom(16), os.urandom(12)
    data = os.urandom(100)
    out = SM4GCM(key).encrypt(nonce, data)
    assert len(out) == len(data) + 16
    assert out[:-16] == sm4mod.ctr_crypt(key, nonce + b"\x00\x00\x00\x02", data)


def test_sm4_cbc_round_trip_and_bad_padding() -> None:
    key, iv = os.urandom(16), os.urandom(16)
    for n in (0, 1, 15, 16, 17, 1000):
        data = os.urandom(n)
        ct = sm4mod.cbc_encrypt(key, iv, data)
        assert len(ct) % 16 == 0 and len(ct) > n
        assert sm4mod.cbc_decrypt(key, iv, ct) == data
    with pytest.raises(DecryptionError):
        sm4mod.cbc_decrypt(key, iv, b"short")
    # fixed keys: with random ones the padding would be valid by chance once in ~256 runs
    right, wrong, fixed_iv = bytes(range(16)), bytes(16), bytes(range(16, 32))
    with pytest.raises(DecryptionError, match="padding"):
        sm4mod.cbc_decrypt(wrong, fixed_iv, sm4mod.cbc_encrypt(right, fixed_iv, b"x" * 40))


def test_sm4_rejects_wrong_key_and_nonce_sizes() -> None:
    with pytest.raises(ValueError, match="16 bytes"):
        SM4GCM(b"short")
    with pytest.raises(ValueError, match="12 bytes"):
        SM4GCM(os.urandom(16)).encrypt(b"n", b"data")
