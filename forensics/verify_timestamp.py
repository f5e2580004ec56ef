"""The verifier's optional check ``timestamp`` (docs/evidence-format.md §11): an RFC 3161
token on the filing's manifest, with the TSA's certificate, both in the package.

The token's imprint must be the hash (SM3 or SHA-256, as the token states) of the manifest
message of an ``evidence.file`` statement in the package: the canonical JSON of
``{"manifest": <payload.manifest>, "purpose": "rongxin/evidence.manifest/1"}``, the bytes
whose SM3 the ledger records as the filing's ``manifest_sm3`` (docs/works.md §1). The token is
verified with ``ledger.crypto.tsp.verify_token`` against the certificate in the package; the
report names the TSA (subject, SM3 of its certificate) and the time it vouches for, beside the
block time. A package without the two members has no ``timestamp`` check (it is optional);
a package with one of them only, or whose token does not verify, fails it.
"""

from __future__ import annotations

from typing import Any

from ledger.crypto.tsp import TimestampError, verify_token

from .package import format as pf
from .verify_chain import CheckFailed, need

__all__ = ["MANIFEST_PURPOSE", "check_timestamp"]

MANIFEST_PURPOSE = "rongxin/evidence.manifest/1"


def _messages(statements: list[dict[str, Any]]) -> list[tuple[str, bytes]]:
    out = []
    for st in statements:
        payload = st.get("payload")
        if st.get("type") == "evidence.file" and isinstance(payload, dict) and isinstance(payload.get("manifest"), dict):
            out.append((str(st.get("tx")), pf.canonical({"manifest": payload["manifest"], "purpose": MANIFEST_PURPOSE})))
    return out


def check_timestamp(pkg: pf.Package, m: dict[str, Any], statements: list[dict[str, Any]]) -> dict[str, Any] | None:
    """None when the package carries no time stamp; else what the token says, or
    ``CheckFailed`` with the reason."""
    listed = [n for n in pf.OPTIONAL if n in m["members"]]
    if not listed:
        return None
    need(len(listed) == len(pf.OPTIONAL), "a time stamp needs both timestamp/manifest.tsr and timestamp/tsa.der")
    token, cert = pkg.read(pf.TIMESTAMP_TOKEN), pkg.read(pf.TIMESTAMP_CERT)
    msgs = _messages(statements)
    need(bool(msgs), "the time stamp is on a filing's manifest, but the package holds no evidence.file statement")
    why = ""
    for tx, data in msgs:
        try:
            info = verify_token(token, data, cert)
        except TimestampError as exc:
            why = str(exc)
            continue
        return {"gen_time": info.gen_time.isoformat().replace("+00:00", "Z"), "hash": info.hash_name,
                "serial": format(info.serial, "x"), "policy": info.policy, "tsa": info.tsa_subject,
                "tsa_certificate_sm3": info.tsa_fingerprint, "tx": tx}
    raise CheckFailed(f"the time stamp does not hold: {why}")
