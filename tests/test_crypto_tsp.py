"""RFC 3161 time stamps (``ledger.crypto.tsp``, ``forensics.tsa``) against a real TSA: the
local one built on `openssl ts -reply` behind an HTTP server on loopback. Every change to the
token, the data or the certificate is a typed ``TimestampError``; a rejection by the TSA too."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from asn1crypto import algos, tsp  # a reference encoder for a request the product never builds

from bench.tsa_local import LocalTSA
from forensics.tsa import TSAUnavailable, stamp
from ledger.crypto.tsp import TimestampError, parse_response, timestamp_request, verify_token

DATA = b'{"manifest":{"evidence_id":"e-1"},"purpose":"rongxin/evidence.manifest/1"}'


@pytest.fixture(scope="module")
def tsa() -> Iterator[LocalTSA]:
    with LocalTSA() as t:
        yield t


@pytest.mark.parametrize("hash_name", ["sm3", "sha256"])
def test_round_trip(tsa: LocalTSA, hash_name: str) -> None:
    got = stamp(tsa.url, DATA, hash_name=hash_name)
    assert got.certificate == tsa.certificate and got.info.hash_name == hash_name
    assert "Rongxin local test TSA" in got.info.tsa_subject
    again = verify_token(got.token, DATA, tsa.certificate)
    assert again.gen_time == got.info.gen_time and again.serial == got.info.serial


def test_tampering_is_a_typed_failure(tsa: LocalTSA) -> None:
    req, nonce = timestamp_request(DATA)
    token = parse_response(tsa.reply(req))
    assert verify_token(token, DATA, tsa.certificate, nonce=nonce).nonce == nonce
    with pytest.raises(TimestampError, match="nonce"):
        verify_token(token, DATA, tsa.certificate, nonce=nonce + 2)
    with pytest.raises(TimestampError, match="imprint"):
        verify_token(token, DATA + b" ", tsa.certificate)
    flipped = bytearray(token)
    flipped[-5] ^= 0x01  # inside the signature
    with pytest.raises(TimestampError, match="signature"):
        verify_token(bytes(flipped), DATA, tsa.certificate)
    i = token.find(b"\x18\x0f")  # the TSTInfo's genTime (GeneralizedTime, 15 bytes): a changed second
    moved = bytearray(token)
    moved[i + 2 + 13] = ord("0") + (moved[i + 2 + 13] - ord("0") + 1) % 10
    with pytest.raises(TimestampError, match=r"message-digest|signature|valid"):
        verify_token(bytes(moved), DATA, tsa.certificate)
    with LocalTSA() as other:
        with pytest.raises(TimestampError, match="not the token's signer"):
            verify_token(token, DATA, other.certificate)
    for junk in (b"", b"\x30\x03\x02\x01\x00", token[:100]):
        with pytest.raises(TimestampError):
            verify_token(junk, DATA, tsa.certificate)


def test_a_rejection_and_an_unreachable_tsa(tsa: LocalTSA) -> None:
    # this TSA accepts SM3 and SHA-256 imprints only: a SHA-512 request is answered with a rejection
    req = tsp.TimeStampReq({"version": 1, "message_imprint": {"hash_algorithm": algos.DigestAlgorithm(
        {"algorithm": "sha512"}), "hashed_message": b"\x01" * 64}, "cert_req": True}).dump()
    with pytest.raises(TimestampError, match="rejection"):
        parse_response(tsa.reply(req))
    with pytest.raises(TSAUnavailable, match="cannot be reached"):
        stamp("http://127.0.0.1:9/", DATA, timeout=5)
    with pytest.raises(TSAUnavailable, match="http"):
        stamp("file:///etc/passwd", DATA)
