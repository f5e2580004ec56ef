"""Every kind of bad key input is refused with a typed error that says what was wrong."""

from __future__ import annotations

from pathlib import Path

import pytest

from ledger.crypto import (
    InvalidKey,
    KeyPasswordError,
    SM2PrivateKey,
    SM2PublicKey,
    UnsupportedAlgorithm,
)
from ledger.crypto.sm2 import N


def test_malformed_private_keys(tmp_path: Path) -> None:
    key = SM2PrivateKey.generate()
    pem = key.to_pem()
    for data, match in [
        (b"", "empty"),
        (b"garbage\n", "not a PEM or DER private key"),
        (pem[:60] + pem[80:], "not a PEM or DER private key"),
        (pem.replace(b"PRIVATE KEY", b"PUBLIC KEY"), "not a PEM or DER private key"),
        (key.to_der()[:-3], "not a PEM or DER private key"),
    ]:
        with pytest.raises(InvalidKey, match=match):
            SM2PrivateKey.load(data)


def test_password_errors_are_distinguished() -> None:
    key = SM2PrivateKey.generate()
    enc = key.to_pem(b"correct horse")
    with pytest.raises(KeyPasswordError, match="password is needed"):
        SM2PrivateKey.load(enc)
    with pytest.raises(KeyPasswordError, match="wrong password"):
        SM2PrivateKey.load(enc, b"wrong")
    with pytest.raises(KeyPasswordError, match="wrong password"):
        SM2PrivateKey.load(key.to_der(b"correct horse"), b"wrong")
    assert SM2PrivateKey.load(enc, b"correct horse").public_key() == key.public_key()
    with pytest.raises(KeyPasswordError):
        key.to_pem(b"")


def test_keys_of_other_algorithms_are_refused(tmp_path: Path, openssl) -> None:
    openssl("ecparam", "-name", "prime256v1", "-genkey", "-noout", "-out", str(tmp_path / "p256.pem"))
    openssl("genpkey", "-algorithm", "ED25519", "-out", str(tmp_path / "ed.pem"))
    openssl("pkey", "-in", str(tmp_path / "p256.pem"), "-pubout", "-out", str(tmp_path / "p256.pub"))
    with pytest.raises(UnsupportedAlgorithm, match="another curve"):
        SM2PrivateKey.load((tmp_path / "p256.pem").read_bytes())
    with pytest.raises(UnsupportedAlgorithm, match="not an elliptic-curve key"):
        SM2PrivateKey.load((tmp_path / "ed.pem").read_bytes())
    with pytest.raises(UnsupportedAlgorithm, match="another curve"):
        SM2PublicKey.load((tmp_path / "p256.pub").read_bytes())


def test_public_points_off_the_curve_or_malformed() -> None:
    pub = SM2PrivateKey.generate().public_key()
    off_curve = bytearray(pub.point)
    off_curve[-1] ^= 1
    with pytest.raises(InvalidKey):
        SM2PublicKey.from_point(bytes(off_curve))
    with pytest.raises(InvalidKey, match="65 bytes"):
        SM2PublicKey.from_point(b"\x02" + pub.point[1:33])
    with pytest.raises(InvalidKey):
        SM2PublicKey.load(b"-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n")
    with pytest.raises(InvalidKey, match="empty"):
        SM2PublicKey.load(b"  \n")


def test_private_scalar_range() -> None:
    for bad in (0, N - 1, N, N + 5):
        with pytest.raises(InvalidKey):
            SM2PrivateKey.from_scalar(bad)
    assert SM2PrivateKey.from_scalar(1).scalar() == (1).to_bytes(32, "big")
