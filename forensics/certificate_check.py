"""Checking a registration certificate offline (``rongxin works verify-certificate``).

1. ``read_certificate`` gets the stated facts and the embedded proof bundle (an unreadable PDF
   raises the certificate module's ``CertificatePdfError``);
2. the evidence-package verifier (``forensics.verify``) checks the bundle against the
   consortium root: each of its checks is reported as ``bundle:<check>``;
3. each stated fact is compared with what the bundle proves: the one statement is a
   ``works.register`` transaction accepted on chain (``registration``), and ``work_id``,
   ``sm3``, ``chain``, ``tx_id``, ``height``, ``block_time`` (the block's header time),
   ``holder`` (common name and organisation of the sender's certificate) and ``attributes``
   (title, type, authors, creation date, licence of the payload) equal the facts, and
   ``conflicts`` (each earlier work's id, kind, score and who found it) equal the conflicts the
   chain recorded: the ``conflicts`` of the receipt's result, which the receipt proof certifies.
"""

from __future__ import annotations

import io
from dataclasses import dataclass, field
from typing import Any

from ledger.crypto import Certificate

from . import certificate
from .certificate import CertificateFacts
from .package import format as pf
from .verify import MEANING, OPTIONAL_CHECKS, verify_package

__all__ = ["FACT_CHECKS", "CertificateCheck", "check_certificate"]

FACT_CHECKS = ("registration", "work_id", "sm3", "chain", "tx_id", "height", "block_time", "holder", "attributes",
               "conflicts")


@dataclass
class CertificateCheck:
    """``checks``: check name -> None (holds) or why it fails."""

    facts: CertificateFacts
    checks: dict[str, str | None] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return all(v is None for v in self.checks.values())

    def failed(self) -> list[str]:
        return [k for k, v in self.checks.items() if v is not None]


def _proven(bundle: bytes) -> dict[str, Any]:
    """What the bundle says of its one statement (only read after the verifier passed it)."""
    pkg = pf.open_package(io.BytesIO(bundle))
    try:
        man = pf.parse_canonical(pkg.read(pf.MANIFEST))
        sts = pf.parse_canonical(pkg.read(pf.STATEMENTS))["statements"]
        blocks = pf.parse_canonical(pkg.read(pf.BLOCKS))["blocks"]
    finally:
        pkg.close()
    if len(sts) != 1:
        raise ValueError(f"the bundle holds {len(sts)} statements, not one registration")
    st = sts[0]
    height = st["proof"]["height"]
    header = next(b["header"] for b in blocks if b["header"]["height"] == height)
    cert = Certificate(bytes.fromhex(st["certificate"]))
    return {"chain": man["chain"], "body": st["tx"]["body"], "tx": st["proof"]["tx"], "height": height,
            "time": header["time"], "code": st["receipt"].get("code"), "holder": (cert.common_name, cert.organization),
            "result": st["receipt"].get("result")}


def _recorded(result: Any) -> list[tuple[Any, ...]] | None:
    """The conflicts a ``works.register`` receipt's result records, as stated facts are."""
    if not isinstance(result, dict) or not isinstance(result.get("conflicts"), list):
        return None
    return [(c.get("work_id"), c.get("method"), c.get("score_milli"), c.get("source", "node"))
            for c in result["conflicts"] if isinstance(c, dict)]


def _compare(f: CertificateFacts, p: dict[str, Any]) -> dict[str, str | None]:
    body, pay = p["body"], p["body"].get("payload", {})
    a = pay.get("attributes", {}) if isinstance(pay, dict) else {}

    def same(name: str, stated: Any, proven: Any) -> tuple[str, str | None]:
        return name, None if stated == proven else f"the certificate states {stated!r}, the bundle proves {proven!r}"

    out = dict([
        ("registration", None if body.get("type") == "works.register" and p["code"] == 0 else
         f"the bundle's statement is a {body.get('type')!r} with result code {p['code']}, not an accepted works.register"),
        same("work_id", f.work_id, pay.get("work_id")), same("sm3", f.sm3, pay.get("sm3")),
        same("chain", f.chain, p["chain"]), same("tx_id", f.tx_id, p["tx"]), same("height", f.height, p["height"]),
        same("block_time", f.block_time_ms, p["time"]),
        same("holder", (f.holder_cn, f.holder_org), p["holder"]),
        same("attributes", (f.title, f.work_type, list(f.authors), f.creation_date, f.licence),
             (a.get("title"), a.get("type"), a.get("authors", []), a.get("created", ""), a.get("licence", ""))),
        same("conflicts", [(c.work_id, c.kind, c.score_milli, c.source) for c in f.conflicts],
             _recorded(p["result"]))])
    if out["chain"] is None and body.get("chain") != f.chain:
        out["chain"] = f"the transaction is of chain {body.get('chain')!r}"
    return out


def check_certificate(pdf_bytes: bytes, root_pem: bytes) -> CertificateCheck:
    """Every check of a certificate; raises ``CertificatePdfError`` for an unreadable PDF,
    ``PackageUnreadable`` for a bundle that is not a package and ``CryptoError`` for an
    unusable root."""
    contents = certificate.read_certificate(pdf_bytes)
    result = CertificateCheck(contents.facts)
    report = verify_package(io.BytesIO(contents.bundle), root_pem)
    for k in MEANING:
        if k in OPTIONAL_CHECKS and k not in report.checks:
            continue  # run only when the bundle carries what it checks (an RFC 3161 token)
        result.checks[f"bundle:{k}"] = report.checks.get(k, "not run")
    if not report.ok:
        result.checks.update({k: "not compared: the bundle does not verify" for k in FACT_CHECKS})
        return result
    try:
        proven = _proven(contents.bundle)
    except (ValueError, KeyError, TypeError, StopIteration, pf.PackageUnreadable) as exc:
        result.checks.update({k: f"the bundle holds no single registration: {exc}" for k in FACT_CHECKS})
        return result
    result.checks.update(_compare(contents.facts, proven))
    return result
