"""Reading the certificates of other people's web servers (RSA, ECDSA, Ed25519, SM2 keys):
what a web capture records about a TLS server's chain. Nothing here trusts or verifies a
chain (the browser did that); it only describes one certificate in plain fields and hashes it.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from asn1crypto import x509

from .errors import MalformedCertificate
from .sm3 import sm3_hex
from .x509 import to_pem

__all__ = ["certificate_pem", "describe_certificate"]


def _when(value: Any) -> str:
    if isinstance(value, dt.datetime):
        return value.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    return str(value)


def describe_certificate(der: bytes) -> dict[str, Any]:
    """Subject, issuer, serial (hex), validity (UTC, ISO 8601), key and signature algorithms,
    DNS names of the subjectAltName extension and the SM3 of the DER bytes. A value that is
    not a DER certificate raises ``MalformedCertificate``."""
    try:
        cert = x509.Certificate.load(bytes(der), strict=True)
        tbs = cert["tbs_certificate"]
        validity = tbs["validity"]
        names = cert.valid_domains
        out = {
            "subject": cert.subject.human_friendly,
            "issuer": cert.issuer.human_friendly,
            "serial": format(int(cert.serial_number), "x"),
            "not_before": _when(validity["not_before"].native),
            "not_after": _when(validity["not_after"].native),
            "key_algorithm": str(cert.public_key.algorithm),
            "signature_algorithm": str(cert["signature_algorithm"].signature_algo),
            "dns_names": [str(n) for n in names],
            "self_signed": str(cert.self_signed),
        }
    except (ValueError, TypeError, KeyError, AttributeError) as exc:
        raise MalformedCertificate(f"not a DER X.509 certificate: {exc}") from None
    out["sm3"] = sm3_hex(bytes(der))
    return out


def certificate_pem(der: bytes) -> str:
    """The certificate as one PEM block (text)."""
    return to_pem(bytes(der), "CERTIFICATE").decode("ascii")
