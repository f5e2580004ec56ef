"""The signed-request format both sides share (docs/api-auth.md): header names, the canonical
string, and signing one request with an identity's key. No web framework here, so the SDK and
an independent client use exactly what the node checks."""

from __future__ import annotations

import base64
import re
import secrets
import time

from ledger.crypto import DEFAULT_SIGNER_ID, Certificate, SM2PrivateKey, sm3

SCHEME = "RONGXIN-SM2-SM3-1"
H_CERT = "X-Rongxin-Certificate"
H_SIG = "X-Rongxin-Signature"
H_TIME = "X-Rongxin-Timestamp"
H_NONCE = "X-Rongxin-Nonce"
H_BODY = "X-Rongxin-Content-SM3"
HEADERS = (H_CERT, H_SIG, H_TIME, H_NONCE, H_BODY)
SIGNER_ID = DEFAULT_SIGNER_ID
WINDOW_S = 300  # a timestamp is accepted within +/- this many seconds of the node's clock
MAX_CERT_HEADER = 8192  # characters of base64 (a certificate of ~6 KB DER)
MAX_SIG_HEADER = 200  # an SM2 DER signature is at most 72 bytes (96 characters of base64)
NONCE_RE = re.compile(r"[0-9a-f]{32,64}")
TIME_RE = re.compile(r"0|[1-9][0-9]{0,11}")
HEX64_RE = re.compile(r"[0-9a-f]{64}")


def canonical_request(method: str, target: str, body_sm3: str, timestamp: int, nonce: str) -> bytes:
    """The bytes an identity signs: six lines joined by ``\\n`` (no final newline), UTF-8."""
    return "\n".join((SCHEME, method.upper(), target, body_sm3, str(timestamp), nonce)).encode()


def new_nonce() -> str:
    """32 lowercase hex characters from ``secrets`` (128 bits)."""
    return secrets.token_hex(16)


def sign_request(key: SM2PrivateKey, certificate: Certificate, method: str, target: str, body: bytes = b"",
                 *, timestamp: int | None = None, nonce: str | None = None) -> dict[str, str]:
    """The five headers that make ``method target`` with ``body`` a signed request.
    ``target`` is the path with its query string exactly as sent (``/v1/identity?x=1``)."""
    ts = int(time.time()) if timestamp is None else timestamp
    nonce = nonce or new_nonce()
    body_sm3 = sm3(body).hex()
    sig = key.sign(canonical_request(method, target, body_sm3, ts, nonce), SIGNER_ID)
    return {H_CERT: base64.b64encode(certificate.der).decode(), H_SIG: base64.b64encode(sig).decode(),
            H_TIME: str(ts), H_NONCE: nonce, H_BODY: body_sm3}
