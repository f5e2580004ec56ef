"""An RFC 3161 time-stamping client: the optional second time anchor of an evidence filing.

``stamp(url, data)`` posts a ``TimeStampReq`` for the hash of ``data`` (SM3 by default,
SHA-256 for a TSA that does not know SM3) to the TSA at ``url`` (``Content-Type:
application/timestamp-query``, RFC 3161 §3.4), reads at most 64 KiB of its answer within the
timeout, and returns the token with the TSA's certificate once ``ledger.crypto.tsp.
verify_token`` accepted both (the nonce included). What is time-stamped in a filing is the
manifest message (``forensics.rules.manifest_message``), whose SM3 the ledger records as
``manifest_sm3``: docs/evidence-format.md §11.
"""

from __future__ import annotations

import http.client
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass

from ledger.crypto.tsp import (
    MAX_TOKEN_BYTES,
    TimestampError,
    TimestampInfo,
    parse_response,
    timestamp_request,
    token_signer_certificate,
    verify_token,
)
from ledger.errors import LedgerError

__all__ = ["Stamp", "TSAUnavailable", "stamp"]

DEFAULT_TIMEOUT_S = 10.0


class TSAUnavailable(LedgerError):
    """The TSA could not be asked or gave no usable token (the reason in the message)."""


@dataclass(frozen=True)
class Stamp:
    token: bytes  # DER ContentInfo (the RFC 3161 TimeStampToken)
    certificate: bytes  # the TSA's certificate, DER
    info: TimestampInfo


def _post(url: str, body: bytes, timeout: float) -> bytes:
    parts = urllib.parse.urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise TSAUnavailable(f"the TSA address {url[:200]!r} is not an http(s) URL")
    headers = {"Content-Type": "application/timestamp-query", "Accept": "application/timestamp-reply"}
    req = urllib.request.Request(url, data=body, method="POST", headers=headers)  # noqa: S310 - http(s) only
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:  # noqa: S310 - scheme checked above
            data: bytes = r.read(MAX_TOKEN_BYTES + 1)
    except urllib.error.HTTPError as exc:
        raise TSAUnavailable(f"the TSA at {url[:200]} answered HTTP {exc.code}") from None
    except (urllib.error.URLError, OSError, http.client.HTTPException) as exc:
        raise TSAUnavailable(f"the TSA at {url[:200]} cannot be reached: {getattr(exc, 'reason', exc)}") from None
    if len(data) > MAX_TOKEN_BYTES:
        raise TSAUnavailable(f"the TSA's answer is over {MAX_TOKEN_BYTES} bytes")
    return data


def stamp(url: str, data: bytes, *, hash_name: str = "sm3", timeout: float = DEFAULT_TIMEOUT_S,
          certificate: bytes | None = None) -> Stamp:
    """A verified time stamp of ``data`` from the TSA at ``url``; ``certificate`` (DER) is the
    TSA's when it does not put its own in the token."""
    try:
        req, nonce = timestamp_request(data, hash_name)
        token = parse_response(_post(url, req, timeout))
        cert = certificate if certificate is not None else token_signer_certificate(token)
        info = verify_token(token, data, cert, nonce=nonce)
    except TimestampError as exc:
        raise TSAUnavailable(f"the TSA at {url[:200]} gave no usable token: {exc}") from None
    return Stamp(token, cert, info)
