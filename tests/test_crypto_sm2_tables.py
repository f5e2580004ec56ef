"""SM2 verification with precomputed multiples of the public key must answer exactly as
OpenSSL's own SM2 verify: on the standard's example, on valid signatures of random keys and
on every kind of altered signature, including the edge case t = r + s = n."""

from __future__ import annotations

import secrets

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ledger.crypto import InvalidSignature, SM2PrivateKey, encode_signature
from ledger.crypto import _libcrypto as C
from ledger.crypto import sm2 as sm2_module
from ledger.crypto.sm2 import N, decode_signature
from ledger.crypto.vectors import SM2_SIGN


def _b(x: int) -> bytes:
    return x.to_bytes(32, "big")


def _both(pub: sm2_module.SM2PublicKey, table: C.PointTable, digest: bytes, r: int, s: int) -> tuple[bool, bool]:
    plain = C.verify_digest(pub._pkey, digest, encode_signature(r, s))
    fast = table.verify(digest, _b(r), _b(s))
    assert fast is not None
    return fast, plain


def test_standard_example_through_the_table() -> None:
    v = SM2_SIGN
    pub = SM2PrivateKey.from_scalar(bytes.fromhex(v.d)).public_key()
    table = C.PointTable(pub.point)
    e = bytes.fromhex(v.e)
    r, s = int(v.r, 16), int(v.s, 16)
    assert table.verify(e, _b(r), _b(s)) is True
    assert table.verify(e, _b(r), _b(s ^ 1)) is False
    assert table.verify(e, _b(r ^ 1), _b(s)) is False
    assert table.verify(bytes(32), _b(r), _b(s)) is False


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(d=st.integers(min_value=1, max_value=N - 2), message=st.binary(max_size=64),
       fiddle=st.integers(min_value=1, max_value=N - 1))
def test_property_table_agrees_with_openssl(d: int, message: bytes, fiddle: int) -> None:
    key = SM2PrivateKey.from_scalar(d)
    pub = key.public_key()
    table = C.PointTable(pub.point)
    digest = pub.message_digest(message)
    r, s = decode_signature(key.sign(message))
    other_digest = pub.message_digest(message + b"!")
    cases = [
        (digest, r, s),                         # valid
        (other_digest, r, s),                   # another message
        (digest, r, (s + 1) % N or 1),          # altered s
        (digest, (r + 1) % N or 1, s),          # altered r
        (digest, s, r),                         # swapped
        (digest, r, N - r),                     # t = r + s = n: must fail, not divide by zero
        (digest, fiddle, s),                    # arbitrary r
        (digest, r, fiddle),                    # arbitrary s
        (secrets.token_bytes(32), fiddle, N - fiddle),
    ]
    for e, rr, ss in cases:
        fast, plain = _both(pub, table, e, rr, ss)
        assert fast == plain, (e.hex(), rr, ss)
    assert _both(pub, table, digest, r, s) == (True, True)


def test_signature_of_another_key_fails_through_the_table() -> None:
    a, b = SM2PrivateKey.generate(), SM2PrivateKey.generate()
    table = C.PointTable(a.public_key().point)
    digest = a.public_key().message_digest(b"x")
    r, s = decode_signature(b.sign_digest(digest))
    assert table.verify(digest, _b(r), _b(s)) is False


def test_public_key_uses_its_table_after_a_few_verifications_and_still_refuses_forgeries() -> None:
    key = SM2PrivateKey.generate()
    pub = key.public_key()
    msgs = [secrets.token_bytes(20) for _ in range(8)]
    sigs = [key.sign(m) for m in msgs]
    for m, sig in zip(msgs, sigs, strict=True):
        pub.verify(sig, m)
    assert pub.point in sm2_module._tables, "a key verified 8 times has a table"
    for i, m in enumerate(msgs):
        with pytest.raises(InvalidSignature):
            pub.verify(sigs[(i + 1) % len(sigs)], m)
    r, _s = decode_signature(sigs[0])
    with pytest.raises(InvalidSignature):
        pub.verify(encode_signature(r, N - r), msgs[0])


def test_tables_are_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sm2_module, "TABLES_KEPT", 3)
    monkeypatch.setattr(sm2_module, "_tables", type(sm2_module._tables)())
    keys = [SM2PrivateKey.generate() for _ in range(5)]
    for key in keys:
        pub = key.public_key()
        for i in range(4):
            pub.verify(key.sign(b"%d" % i), b"%d" % i)
    assert list(sm2_module._tables) == [k.public_key().point for k in keys[-3:]]


def test_a_table_that_disagrees_with_openssl_retires_the_table_path(monkeypatch: pytest.MonkeyPatch) -> None:
    """Defence in depth: a new table's first answer is checked against OpenSSL's verify."""
    monkeypatch.setattr(sm2_module, "_tables", type(sm2_module._tables)())
    monkeypatch.setattr(sm2_module, "_tables_enabled", True)
    monkeypatch.setattr(C.PointTable, "verify", lambda self, d, r, s: True)  # a broken table
    key = SM2PrivateKey.generate()
    pub = key.public_key()
    sig = key.sign(b"a")
    for _ in range(sm2_module.TABLE_AFTER_USES):
        pub.verify(sig, b"a")
    assert pub.point not in sm2_module._tables
    with pytest.raises(InvalidSignature):
        pub.verify(sig, b"b")  # the new table says yes; OpenSSL says no, and wins
    assert sm2_module._tables_enabled is False
    with pytest.raises(InvalidSignature):
        pub.verify(sig, b"c")  # from now on OpenSSL alone
