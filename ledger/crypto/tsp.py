"""RFC 3161 time-stamp tokens: build a request, read a TSA's response, verify a token offline.

A token proves that a time-stamping authority (TSA) saw a hash (the *message imprint*) at its
``genTime``. The evidence filing uses one on the evidence manifest (docs/evidence-format.md
§11): the imprint is the hash of the manifest message whose SM3 the ledger records, so a
package carries a second time anchor beside the block time, independent of the consortium.

What ``verify_token`` checks, in order (each failure a ``TimestampError`` naming it):

1. the token is a CMS ``SignedData`` (RFC 5652) whose encapsulated content is a ``TSTInfo``
   (id-ct-TSTInfo, RFC 3161 §2.4.2), version 1, with exactly one ``SignerInfo``;
2. the message imprint's algorithm is SM3 or SHA-256 and its value is that hash of ``data``;
3. the TSA certificate given (DER) is the signer: its issuer and serial (or subject key
   identifier) are the ``SignerInfo``'s ``sid``; it carries the extended key usage
   ``timeStamping`` (RFC 3161 §2.3) and was valid at ``genTime``;
4. the signed attributes hold the content type id-ct-TSTInfo and the message digest of the
   ``TSTInfo`` bytes under the ``SignerInfo``'s digest algorithm; when an ESS signing-
   certificate attribute (v1 or v2, RFC 2634 / RFC 5035) is present, its first certificate
   hash is the given certificate's;
5. the signature over the DER ``SET OF`` of the signed attributes verifies with the
   certificate's key (ECDSA with a NIST curve, RSA PKCS #1 v1.5 or PSS, or SM2 with SM3 and the
   default signer ID).

The certificate is not chained to any root here: which TSA a court trusts is its decision
(the verifier reports the TSA's subject and the SM3 fingerprint of its certificate).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import secrets
from dataclasses import dataclass, field
from typing import Any

from asn1crypto import algos, cms, core, tsp, x509
from cryptography.exceptions import InvalidSignature as _CryptoInvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa

from .errors import CryptoError
from .sm2 import SM2PublicKey
from .sm3 import sm3

__all__ = ["TIMESTAMP_HASHES", "TimestampError", "TimestampInfo", "parse_response", "timestamp_request",
           "token_signer_certificate", "verify_token"]

#: imprint algorithm name -> (OID, hash function)
TIMESTAMP_HASHES = ("sm3", "sha256")
SM3_OID = "1.2.156.10197.1.401"
SM2_CURVE_OID = "1.2.156.10197.1.301"
MAX_TOKEN_BYTES = 64 * 1024
_CRYPTO_HASH: dict[str, type[hashes.SHA256 | hashes.SHA384 | hashes.SHA512]] = {
    "sha256": hashes.SHA256, "sha384": hashes.SHA384, "sha512": hashes.SHA512}
STATUS_CODES = {"granted": 0, "granted_with_mods": 1, "rejection": 2, "waiting": 3, "revocation_warning": 4,
                "revocation_notification": 5}
STATUS = {0: "granted", 1: "granted with modifications", 2: "rejection", 3: "waiting", 4: "revocation warning",
          5: "revocation notification"}


class TimestampError(CryptoError):
    """A time-stamp request, response or token that cannot be used, with the reason."""


@dataclass(frozen=True)
class TimestampInfo:
    """What a verified token says."""

    gen_time: dt.datetime
    hash_name: str  # "sm3" | "sha256"
    serial: int
    policy: str
    nonce: int | None
    tsa_subject: str
    tsa_fingerprint: str  # SM3 of the certificate's DER, hex
    tsa_certificate: bytes = field(repr=False)  # DER


def _hash(name: str, data: bytes) -> bytes:
    if name == "sm3":
        return sm3(data)
    if name in ("sha256", "sha384", "sha512", "sha1"):
        return hashlib.new(name, data).digest()
    raise TimestampError(f"hash algorithm {name} is not accepted")


def _alg_name(alg: algos.DigestAlgorithm) -> str:
    oid = alg["algorithm"].dotted
    return "sm3" if oid == SM3_OID else str(alg["algorithm"].native)


def _digest_alg(name: str) -> algos.DigestAlgorithm:
    return algos.DigestAlgorithm({"algorithm": SM3_OID if name == "sm3" else name})


def timestamp_request(data: bytes, hash_name: str = "sm3") -> tuple[bytes, int]:
    """A DER ``TimeStampReq`` for the hash of ``data`` (asking for the TSA's certificate in
    the token) and its random 63-bit nonce."""
    if hash_name not in TIMESTAMP_HASHES:
        raise TimestampError(f"a time stamp is requested with {' or '.join(TIMESTAMP_HASHES)}, not {hash_name}")
    nonce = secrets.randbits(63) | 1
    req = tsp.TimeStampReq({"version": 1, "message_imprint": {"hash_algorithm": _digest_alg(hash_name),
                                                              "hashed_message": _hash(hash_name, data)},
                            "nonce": nonce, "cert_req": True})
    return req.dump(), nonce


def parse_response(der: bytes) -> bytes:
    """The token (DER ``ContentInfo``) of a TSA's ``TimeStampResp``; ``TimestampError`` with
    the TSA's status and text when it granted none (a response without a token is read by its
    ``PKIStatusInfo`` alone)."""
    if len(der) > MAX_TOKEN_BYTES:
        raise TimestampError(f"the TSA's response is over {MAX_TOKEN_BYTES} bytes")
    try:
        outer = core.Sequence.load(der, strict=True)
        _need(1 <= len(outer) <= 2, "a TimeStampResp has a status and at most a token")
        status = tsp.PKIStatusInfo.load(outer[0].dump())
        code = STATUS_CODES.get(str(status["status"].native), 2)
        if code not in (0, 1) or len(outer) < 2:
            text = "; ".join(status["status_string"].native or []) or "no reason given"
            raise TimestampError(f"the TSA answered {STATUS.get(code, code)}: {text}")
        out: bytes = outer[1].dump()
    except (ValueError, TypeError, KeyError) as exc:
        raise TimestampError(f"not an RFC 3161 time-stamp response: {exc}") from None
    return out


def _need(cond: bool, why: str) -> None:
    if not cond:
        raise TimestampError(why)


def _signed_data(token: bytes) -> tuple[cms.SignedData, bytes, tsp.TSTInfo]:
    _need(len(token) <= MAX_TOKEN_BYTES, f"the token is over {MAX_TOKEN_BYTES} bytes")
    try:
        ci = cms.ContentInfo.load(token, strict=True)
        _need(ci["content_type"].native == "signed_data", "the token is not CMS SignedData")
        sd = ci["content"]
        enc = sd["encap_content_info"]
        _need(enc["content_type"].native == "tst_info", "the token's content is not a TSTInfo")
        raw = enc["content"].parsed.dump() if isinstance(enc["content"], core.ParsableOctetString) else b""
        info = tsp.TSTInfo.load(raw)
        _ = info.native  # parse it all now: a malformed TSTInfo fails here, typed
    except (ValueError, TypeError, KeyError) as exc:
        raise TimestampError(f"the token cannot be read: {exc}") from None
    _need(bool(raw), "the token carries no TSTInfo")
    return sd, raw, info


def _signer(sd: cms.SignedData) -> cms.SignerInfo:
    infos = sd["signer_infos"]
    _need(len(infos) == 1, f"the token has {len(infos)} signers, not one")
    return infos[0]


def _is_signer(si: cms.SignerInfo, cert: x509.Certificate) -> bool:
    sid = si["sid"]
    if sid.name == "issuer_and_serial_number":
        v = sid.chosen
        return bool(v["issuer"] == cert.issuer and v["serial_number"].native == cert.serial_number)
    return bool(sid.chosen.native == cert.key_identifier)


def _attrs(si: cms.SignerInfo) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for a in si["signed_attrs"]:
        name = a["type"].native
        _need(name not in out, f"the signed attribute {name} appears twice")
        _need(len(a["values"]) == 1, f"the signed attribute {name} has {len(a['values'])} values")
        out[name] = a["values"][0]
    return out


def _check_ess(attrs: dict[str, Any], cert_der: bytes) -> None:
    if "signing_certificate_v2" in attrs:
        first = attrs["signing_certificate_v2"]["certs"][0]
        name = _alg_name(first["hash_algorithm"])
        _need(first["cert_hash"].native == _hash(name, cert_der),
              "the token's signing-certificate attribute names another TSA certificate")
    elif "signing_certificate" in attrs:
        first = attrs["signing_certificate"]["certs"][0]
        _need(first["cert_hash"].native == hashlib.sha1(cert_der, usedforsecurity=False).digest(),  # ESS v1 names it so
              "the token's signing-certificate attribute names another TSA certificate")


def _verify_signature(cert: x509.Certificate, si: cms.SignerInfo, signed: bytes) -> None:
    digest = _alg_name(si["digest_algorithm"])
    sig = si["signature"].native
    info = cert.public_key
    if info.algorithm == "ec" and info["algorithm"]["parameters"].chosen.dotted == SM2_CURVE_OID:
        try:
            SM2PublicKey.from_point(bytes(info["public_key"].native)).verify(sig, signed)
        except CryptoError:
            raise TimestampError("the TSA's SM2 signature over the token does not verify") from None
        return
    _need(digest in _CRYPTO_HASH, f"the token is signed with {digest}, which this verifier does not accept")
    from cryptography.hazmat.primitives.serialization import load_der_public_key

    key = load_der_public_key(info.dump())
    h = _CRYPTO_HASH[digest]()
    try:
        if isinstance(key, ec.EllipticCurvePublicKey):
            key.verify(sig, signed, ec.ECDSA(h))
        elif isinstance(key, rsa.RSAPublicKey):
            if si["signature_algorithm"].signature_algo == "rsassa_pss":
                key.verify(sig, signed, padding.PSS(padding.MGF1(h), padding.PSS.AUTO), h)
            else:
                key.verify(sig, signed, padding.PKCS1v15(), h)
        else:
            raise TimestampError(f"the TSA's key type {info.algorithm} is not accepted")
    except (_CryptoInvalidSignature, ValueError):
        raise TimestampError("the TSA's signature over the token does not verify") from None


def _load_cert(der: bytes) -> x509.Certificate:
    try:
        cert = x509.Certificate.load(der, strict=True)
        _ = cert.native  # parse it all
    except (ValueError, TypeError, KeyError) as exc:
        raise TimestampError(f"the TSA certificate cannot be read: {exc}") from None
    return cert


def verify_token(token: bytes, data: bytes, tsa_certificate: bytes, *, nonce: int | None = None) -> TimestampInfo:
    """Verify an RFC 3161 token over ``data`` with the TSA certificate ``tsa_certificate``
    (DER) as the module's docstring lists; what it says, or ``TimestampError``."""
    sd, raw, info = _signed_data(token)
    imprint = info["message_imprint"]
    name = _alg_name(imprint["hash_algorithm"])
    _need(name in TIMESTAMP_HASHES, f"the token's imprint uses {name}, not {' or '.join(TIMESTAMP_HASHES)}")
    _need(imprint["hashed_message"].native == _hash(name, data),
          "the token's message imprint is not the hash of the time-stamped manifest")
    _need(info["version"].native == "v1", "the TSTInfo's version is not 1")
    if nonce is not None:
        _need(info["nonce"].native == nonce, "the token's nonce is not the request's")
    cert = _load_cert(tsa_certificate)
    si = _signer(sd)
    _need(_is_signer(si, cert), "the given TSA certificate is not the token's signer")
    _need("time_stamping" in (cert.extended_key_usage_value.native if cert.extended_key_usage_value else []),
          "the TSA certificate is not for time stamping (extended key usage timeStamping)")
    gen_time: dt.datetime = info["gen_time"].native
    validity = cert["tbs_certificate"]["validity"]
    _need(validity["not_before"].native <= gen_time <= validity["not_after"].native,
          "the TSA certificate was not valid at the token's time")
    _need(not isinstance(si["signed_attrs"], core.Void) and len(si["signed_attrs"]) > 0,
          "the token has no signed attributes")
    attrs = _attrs(si)
    _need("content_type" in attrs and attrs["content_type"].native == "tst_info",
          "the token's content-type attribute is not TSTInfo")
    _need("message_digest" in attrs and attrs["message_digest"].native == _hash(_alg_name(si["digest_algorithm"]), raw),
          "the token's message-digest attribute is not the digest of its TSTInfo")
    _check_ess(attrs, tsa_certificate)
    signed = b"\x31" + si["signed_attrs"].dump()[1:]  # the [0] IMPLICIT tag read as SET OF (RFC 5652 §5.4)
    _verify_signature(cert, si, signed)
    return TimestampInfo(gen_time=gen_time, hash_name=name, serial=int(info["serial_number"].native),
                         policy=str(info["policy"].dotted), nonce=info["nonce"].native,
                         tsa_subject=cert.subject.human_friendly, tsa_certificate=tsa_certificate,
                         tsa_fingerprint=sm3(tsa_certificate).hex())


def token_certificates(token: bytes) -> list[bytes]:
    """The certificates a token carries (DER), e.g. the TSA's when the request asked for it."""
    sd, _, _ = _signed_data(token)
    certs = sd["certificates"]
    if isinstance(certs, core.Void):
        return []
    return [c.chosen.dump() for c in certs if c.name == "certificate"]


def token_signer_certificate(token: bytes) -> bytes:
    """The certificate among the token's own that is its signer (DER), or ``TimestampError``."""
    sd, _, _ = _signed_data(token)
    si = _signer(sd)
    for der in token_certificates(token):
        if _is_signer(si, _load_cert(der)):
            return der
    raise TimestampError("the token carries no certificate of its signer: ask the TSA with certReq")
