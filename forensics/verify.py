"""The offline court verifier of evidence packages (docs/evidence-format.md).

``verify_package(path, root_pem)`` opens a package with the bounded reader of
``forensics.package.format``, runs every check of docs/evidence-format.md §5 and returns a
``Report``: each check with whether it holds, why not, and what a court learns from it; and
the statements proven (who did what, when, in which block). It trusts nothing but the
consortium root certificate it is given, uses no network and depends on ``ledger.crypto`` and
the package format alone. A package it cannot read raises ``PackageUnreadable``.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from ledger.crypto import (
    SM3,
    Certificate,
    CertificateRevocationList,
    CryptoError,
    SM2PublicKey,
    verify_certificate,
)

from . import verify_chain as vc
from .package import format as pf
from .verify_chain import CheckFailed, need

# check id -> (what a court learns, in English and Chinese; what it weighs it under)
MEANING: dict[str, tuple[str, str, str]] = {
    "members": ("the package holds exactly the documented members", "证据包成员完整、无多余文件", "SF/T 0076-2020"),
    "manifest": ("the manifest is well formed and names this chain", "清单格式正确，指向本链", "SF/T 0076-2020"),
    "member-hashes": ("no member changed since the filer signed the manifest", "签名后各文件未被改动(SM3)",
                      "Art. 16; SF/T 0076-2020"),
    "crl": ("the revocation list is the consortium root's own", "吊销列表由联盟根证书签发", "Art. 17"),
    "filer-certificate": ("the filer's certificate chains to the root, valid and unrevoked when it acted",
                          "提交方证书链至联盟根，行为时有效且未吊销", "Art. 17, Art. 18; SF/T 0076-2020"),
    "filer-signature": ("the filer signed this manifest (SM2)", "提交方以SM2签署本清单", "Art. 18"),
    "genesis": ("the ledger is the consortium whose root the court trusts", "账本创世块指向法院所信任的联盟根",
                "Art. 17"),
    "genesis-attestation": ("the consortium root itself attested this genesis block (SM2)",
                            "联盟根证书以SM2签名确认本链创世块", "Art. 17"),
    "genesis-validators": ("each genesis validator held a validator certificate from the root, valid and unrevoked "
                           "at the genesis time", "各创世验证节点持有联盟根签发、创世时有效且未吊销的验证节点证书",
                           "Art. 17, Art. 19"),
    "validator-history": ("each validator set is the genesis set or certified by its predecessor",
                          "各验证节点集合来自创世或经前一集合认证", "Art. 17, Art. 19"),
    "quorum-certificates": ("each block was signed by at least n-f validators of its set",
                            "每个区块获该高度验证节点集合n-f个签名", "Art. 16, Art. 17"),
    "commit": ("each block is final under the 2-chain commit rule", "各区块依两链规则已最终确认", "Art. 16"),
    "transactions": ("each statement is a transaction signed by its sender (SM2)", "每项陈述是发送方SM2签名的交易",
                     "Art. 18"),
    "inclusion": ("each transaction is in its block (Merkle path)", "交易在其区块中(默克尔路径)", "Art. 16"),
    "receipts": ("what each transaction did is certified by a later block", "交易执行结果由后续区块认证",
                 "Art. 16"),
    "sender-certificates": ("each sender held a valid, unrevoked consortium certificate at the block time",
                            "发送方在出块时持有有效且未吊销的联盟证书", "Art. 18"),
    "artefacts": ("each artefact's SM3 hash is the one the transaction names", "各文件SM3哈希与链上交易所载一致",
                  "Art. 16, Art. 18; SF/T 0076-2020"),
    "timestamp": ("an RFC 3161 time-stamping authority vouches that the filing's manifest existed at its time",
                  "可信时间戳机构(RFC 3161)证明存证清单在其时间已存在", "Art. 16; SF/T 0076-2020"),
}
OPTIONAL_CHECKS = ("timestamp",)  # run only when the package carries what they check


@dataclass
class Report:
    checks: dict[str, str | None] = field(default_factory=dict)  # id -> None (holds) or why not
    statements: list[dict[str, Any]] = field(default_factory=list)
    filer: dict[str, Any] = field(default_factory=dict)
    timestamp: dict[str, Any] | None = None  # what a verified RFC 3161 token says (§11)

    @property
    def ok(self) -> bool:
        return all(v is None for v in self.checks.values()) and set(MEANING) - set(OPTIONAL_CHECKS) <= set(self.checks)

    def failed(self) -> list[str]:
        return [k for k, v in self.checks.items() if v is not None]

    def wire(self) -> dict[str, Any]:
        """The report as JSON: ``rongxin evidence verify --json`` and ``POST /v1/evidence/verify``."""
        return {"ok": self.ok, "failed": self.failed(), "checks": {
            k: {"ok": self.checks.get(k, "not run") is None, "why": self.checks.get(k, "not run"),
                "en": en, "zh": zh, "weighed_under": law} for k, (en, zh, law) in MEANING.items()
            if k in self.checks or k not in OPTIONAL_CHECKS},
            "filer": self.filer, "statements": self.statements, "timestamp": self.timestamp}

    def run(self, name: str, fn: Callable[[], Any]) -> Any:
        """Record ``fn``'s outcome under ``name`` (a later failure of the same check keeps the first)."""
        try:
            out = fn()
        except CheckFailed as exc:
            self.checks.setdefault(name, str(exc) or name)
            if self.checks[name] is None:
                self.checks[name] = str(exc)
            return None
        except (CryptoError, LookupError, TypeError, ValueError, AttributeError, ArithmeticError, RecursionError) as exc:
            self.checks[name] = self.checks.get(name) or f"{type(exc).__name__}: {exc}"
            return None
        self.checks.setdefault(name, None)
        return out


def _time(ms: int) -> dt.datetime:
    need(isinstance(ms, int) and not isinstance(ms, bool) and 0 <= ms < 1 << 53, "a time is milliseconds since 1970")
    return dt.datetime.fromtimestamp(ms / 1000, tz=dt.UTC)


def check_cert(cert: Certificate, root: Certificate, crl: CertificateRevocationList | None, at_ms: int,
               who: str) -> None:
    """Chains to ``root``, valid at ``at_ms``, and not revoked at or before it per ``crl``."""
    at = _time(at_ms)
    try:
        verify_certificate(cert, root, None, at=at)
    except CryptoError as exc:
        raise CheckFailed(f"{who}: {exc}") from None
    need(crl is not None, f"{who}: no valid CRL to check revocation against")
    assert crl is not None
    rev = crl.revocations().get(cert.serial)
    need(rev is None or rev.revoked_at > at, f"{who}: certificate revoked on {rev.revoked_at.isoformat() if rev else ''}, "
         f"before {at.isoformat()}")


def _json(pkg: pf.Package, name: str) -> Any:
    try:
        return pf.parse_canonical(pkg.read(name))
    except pf.NotCanonical as exc:
        raise CheckFailed(f"{name} is not canonical JSON: {exc}") from None


def _manifest(pkg: pf.Package) -> dict[str, Any]:
    m = _json(pkg, pf.MANIFEST)
    need(isinstance(m, dict) and set(m) == {"chain", "created_ms", "filer", "format", "genesis", "members",
                                            "statements"}, "the manifest has other fields than the format's")
    need(m["format"] == pf.FORMAT, f"format {m['format']!r} is not {pf.FORMAT}")
    need(isinstance(m["members"], dict) and isinstance(m["statements"], list) and len(m["statements"]) > 0, "no statements")
    return dict(m)


def _members(pkg: pf.Package, m: dict[str, Any]) -> None:
    listed = set(m["members"])
    need(listed >= set(pf.HASHED), "the manifest does not list every fixed member")
    need(all(n in pf.HASHED or n in pf.OPTIONAL or n.startswith(pf.ARTEFACT_DIR) for n in listed),
         "the manifest lists unknown members")
    present = set(pkg.sizes) - {pf.MANIFEST, pf.SIGNATURE}
    missing, extra = sorted(listed - present), sorted(present - listed)
    need(pf.SIGNATURE in pkg.sizes, "manifest.sig is missing")
    need(not missing and not extra, f"members missing {missing[:5]}, not in the manifest {extra[:5]}")


def _hashes(pkg: pf.Package, m: dict[str, Any]) -> None:
    bad = []
    for name, want in sorted(m["members"].items()):
        if name not in pkg.sizes:
            continue
        h, size = SM3(), 0
        for chunk in pkg.chunks(name):
            h.update(chunk)
            size += len(chunk)
        if not isinstance(want, dict) or want != {"sm3": h.hexdigest(), "size": size}:
            bad.append(name)
    need(not bad, f"changed since signing: {', '.join(bad[:5])}")


def verify_package(path: str | Path | IO[bytes], root_pem: bytes) -> Report:
    """Every check of docs/evidence-format.md §5; ``PackageUnreadable`` for a non-package."""
    root = Certificate.load(root_pem)
    pkg = pf.open_package(path)
    try:
        return _verify(pkg, root)
    finally:
        pkg.close()


def _verify(pkg: pf.Package, root: Certificate) -> Report:
    r = Report()
    m = r.run("manifest", lambda: _manifest(pkg))
    if m is None:
        r.checks.update({k: r.checks.get(k) or "the manifest is unusable" for k in MEANING})
        return r
    r.run("members", lambda: _members(pkg, m))
    r.run("member-hashes", lambda: _hashes(pkg, m))
    crl = r.run("crl", lambda: _crl(pkg, root))
    filer = r.run("filer-certificate", lambda: Certificate(pkg.read(pf.FILER_CERT)))
    if filer is not None:
        r.run("filer-certificate", lambda: need(m["filer"] == {"certificate": filer.fingerprint},
                                                "the manifest names another filer certificate"))
        r.run("filer-certificate", lambda: check_cert(filer, root, crl, m["created_ms"], "filer at signing"))
        r.run("filer-signature", lambda: _filer_sig(pkg, filer))
        r.filer = {"name": filer.common_name, "org": filer.organization, "role": filer.role,
                   "serial": format(filer.serial, "x"), "signed_at": _iso(m["created_ms"])}
    else:
        r.checks["filer-signature"] = "no filer certificate to check it with"
    from .verify_ledger import verify_ledger

    verify_ledger(r, pkg, m, root, crl, filer)
    if any(n in m["members"] or n in pkg.sizes for n in pf.OPTIONAL):
        from .verify_timestamp import check_timestamp

        r.timestamp = r.run("timestamp", lambda: check_timestamp(pkg, m, r.statements))
    return r


def _crl(pkg: pf.Package, root: Certificate) -> CertificateRevocationList:
    crl = CertificateRevocationList(pkg.read(pf.CRL))
    try:
        crl.check_signed_by(root)
    except CryptoError as exc:
        raise CheckFailed(str(exc)) from None
    return crl


def _filer_sig(pkg: pf.Package, filer: Certificate) -> None:
    try:
        filer.public_key().verify(pkg.read(pf.SIGNATURE), pkg.read(pf.MANIFEST))
    except CryptoError:
        raise CheckFailed("the filer's signature over manifest.json does not verify") from None


def _iso(ms: Any) -> str:
    try:
        return _time(ms).isoformat().replace("+00:00", "Z")
    except CheckFailed:
        return "?"


def sender_key(point_hex: str) -> SM2PublicKey:
    return SM2PublicKey.from_point(vc.hexb(point_hex, 65))
