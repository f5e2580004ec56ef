"""The crypto-suite setting (L5) and SM2 verification on every core."""

from __future__ import annotations

import os

import pytest

from ledger.crypto import DecryptionError, InvalidSignature, SM2PrivateKey, UnsupportedAlgorithm, get_suite
from ledger.crypto.suite import ENV_VAR, available_suites
from ledger.crypto.verify_pool import VerifierPool, verify_items


@pytest.mark.parametrize("name", ["sm", "nist"])
def test_every_suite_signs_hashes_and_seals_through_one_interface(name: str) -> None:
    suite = get_suite(name)
    key = suite.generate_key()
    msg = os.urandom(300)
    sig = key.sign(msg)
    vk = key.verify_key()
    vk.verify(sig, msg)
    with pytest.raises(InvalidSignature):
        vk.verify(sig, msg + b"!")
    again = suite.verify_key_from_bytes(vk.to_bytes())
    again.verify(sig, msg)
    reloaded = suite.load_signing_key(key.to_pem(b"pw"), b"pw")
    assert reloaded.verify_key().to_bytes() == vk.to_bytes()
    assert len(suite.hash(b"abc")) == 32
    h = suite.new_hasher()
    h.update(b"a")
    h.update(b"bc")
    assert h.digest() == suite.hash(b"abc")
    aead = suite.aead(os.urandom(suite.aead_key_size))
    sealed = aead.seal(b"figures", b"ad")
    assert aead.open_sealed(sealed, b"ad") == b"figures"
    with pytest.raises(DecryptionError):
        aead.open_sealed(sealed, b"other")


def test_sm_is_the_default_and_the_environment_selects(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(ENV_VAR, raising=False)
    assert get_suite().name == "sm"
    assert get_suite().hash(b"abc").hex().startswith("66c7f0f4")
    monkeypatch.setenv(ENV_VAR, "nist")
    assert get_suite().name == "nist"
    monkeypatch.setenv(ENV_VAR, "rot13")
    with pytest.raises(UnsupportedAlgorithm, match="rot13"):
        get_suite()
    assert available_suites() == ["nist", "sm"]


def test_suites_do_not_accept_each_others_keys() -> None:
    sm_key = get_suite("sm").generate_key()
    with pytest.raises(UnsupportedAlgorithm):
        get_suite("nist").load_signing_key(sm_key.to_pem(), None)


def test_pool_verifies_like_a_single_process() -> None:
    keys = [SM2PrivateKey.generate() for _ in range(3)]
    items = []
    for i in range(120):
        k = keys[i % 3]
        m = f"tx-{i}".encode()
        sig = k.sign(m)
        if i % 7 == 0:
            m += b"tampered"
        items.append((k.public_key().point, m, sig))
    items.append((b"\x04" + bytes(64), b"m", b"sig"))  # an unusable key is just False
    expected = [i % 7 != 0 for i in range(120)] + [False]
    assert verify_items(items) == expected
    with VerifierPool(2) as pool:
        assert pool.verify(items) == expected
        assert pool.verify([]) == []
