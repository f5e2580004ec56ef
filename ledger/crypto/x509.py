"""X.509 certificates and CRLs signed with SM2-with-SM3, and their verification.

Certificates are built with ``asn1crypto`` and signed by ``ledger.crypto.sm2`` with the
standard signer ID ``1234567812345678`` (GM/T 0015), so OpenSSL 3 accepts them with
``openssl verify -vfyopt distid:1234567812345678``. The hierarchy is flat: the consortium
root signs every leaf (organisations, nodes, users) and the CRL. OpenSSL 3.0 cannot check
SM2 intermediates or SM2-signed CRLs, so chain and revocation checks are ours
(``verify_certificate``), cross-checked in the tests.

Subject layout: ``CN`` = the holder's name, ``O`` = its organisation, ``OU`` = its role
(``root``, ``org``, ``supervisor``, ``consensus``, ``full``, ``admin``, ``user``) and, on a
user certificate only, ``businessCategory`` (X.520, OID 2.5.4.15) = its business role
(``BUSINESS_ROLES``), absent when it has none.
"""

from __future__ import annotations

import base64
import datetime as dt
import re
import secrets
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from asn1crypto import core, crl, keys, x509

from .errors import (
    CertificateExpired,
    CertificateNotYetValid,
    CertificateRevoked,
    CRLError,
    InvalidKey,
    InvalidSignature,
    MalformedCertificate,
    MalformedSignature,
    UnsupportedAlgorithm,
    UntrustedCertificate,
)
from .names import check_certificate_name, check_name
from .sm2 import (
    CURVE_OID,
    DEFAULT_SIGNER_ID,
    EC_PUBLIC_KEY_OID,
    SM2_WITH_SM3_OID,
    SM2PrivateKey,
    SM2PublicKey,
)
from .sm3 import sm3

NODE_ROLES = ("supervisor", "consensus", "full")
USER_ROLES = ("admin", "user")
# what a user does in the copyright workflow (docs/crypto.md): rights holder, legal centre, ...
BUSINESS_ROLES = ("holder", "legal", "court", "platform", "regulator")
ROLES = ("root", "org", *NODE_ROLES, *USER_ROLES)
REVOCATION_REASONS = (
    "unspecified",
    "key_compromise",
    "affiliation_changed",
    "superseded",
    "cessation_of_operation",
)
CLOCK_SKEW = dt.timedelta(minutes=5)

_PEM_RE = re.compile(rb"-----BEGIN ([A-Z0-9 ]+)-----\s*(.*?)\s*-----END \1-----", re.S)


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC).replace(microsecond=0)


def pem_blocks(data: bytes, label: str) -> list[bytes]:
    """DER payloads of every PEM block with this label."""
    out = []
    for m in _PEM_RE.finditer(data):
        if m.group(1).decode() == label:
            try:
                out.append(base64.b64decode(m.group(2), validate=False))
            except ValueError:
                raise MalformedCertificate(f"PEM block {label} is not valid base64") from None
    return out


def to_pem(der: bytes, label: str) -> bytes:
    b64 = base64.b64encode(der)
    lines = [b64[i : i + 64] for i in range(0, len(b64), 64)]
    return b"".join([f"-----BEGIN {label}-----\n".encode(), *(ln + b"\n" for ln in lines),
                     f"-----END {label}-----\n".encode()])


def _der_from(data: bytes, label: str) -> bytes:
    data = bytes(data)
    if b"-----BEGIN" in data:
        blocks = pem_blocks(data, label)
        if not blocks:
            raise MalformedCertificate(f"no PEM block labelled {label}")
        return blocks[0]
    if not data:
        raise MalformedCertificate(f"empty input where a {label} was expected")
    return data


def _sm2_alg() -> dict[str, object]:
    return {"algorithm": SM2_WITH_SM3_OID}


def _key_identifier(public: SM2PublicKey) -> bytes:
    """RFC 7093 style: leftmost 160 bits of SM3 over the subjectPublicKey bits."""
    return sm3(public.point)[:20]


def _name(cn: str, org: str, role: str, business: str | None = None) -> x509.Name:
    attrs = {"common_name": cn, "organization_name": org, "organizational_unit_name": role}
    if business is not None:
        attrs["business_category"] = business
    return x509.Name.build(attrs, use_printable=False)


def _time(t: dt.datetime) -> x509.Time:
    t = t.astimezone(dt.UTC).replace(microsecond=0)
    return x509.Time({"utc_time" if 1950 <= t.year < 2050 else "general_time": t})


def _as_datetime(value: object) -> dt.datetime:
    if not isinstance(value, dt.datetime):
        raise MalformedCertificate(f"expected a time, found {value!r}")
    return value


def _check_sm2_signed(alg: core.Sequence, what: str) -> None:
    oid = alg["algorithm"].dotted
    if oid != SM2_WITH_SM3_OID:
        raise UnsupportedAlgorithm(f"{what} is signed with {oid}, not SM2-with-SM3")


@dataclass(frozen=True)
class CertificateInfo:
    serial: int
    common_name: str
    organization: str
    role: str
    not_before: dt.datetime
    not_after: dt.datetime
    is_ca: bool
    issuer_cn: str
    fingerprint: str
    business: str | None = None


class Certificate:
    """A parsed X.509 certificate with an SM2 key."""

    __slots__ = ("_c", "_public", "der")

    def __init__(self, der: bytes) -> None:
        try:
            cert = x509.Certificate.load(bytes(der), strict=True)
            _ = cert.native  # parse everything now so a bad field fails here, not later
        except (ValueError, TypeError, KeyError) as exc:
            raise MalformedCertificate(f"not a DER X.509 certificate: {exc}") from None
        self.der = bytes(der)
        self._c = cert
        spki = cert["tbs_certificate"]["subject_public_key_info"]
        alg = spki["algorithm"]
        if alg["algorithm"].dotted != EC_PUBLIC_KEY_OID or alg["parameters"].chosen.dotted != CURVE_OID:
            raise UnsupportedAlgorithm("certificate key is not an SM2 key")
        try:
            self._public = SM2PublicKey.load(spki.dump())
        except InvalidKey as exc:
            raise MalformedCertificate(f"certificate public key: {exc}") from None

    @classmethod
    def load(cls, data: bytes) -> Certificate:
        """From PEM (first ``CERTIFICATE`` block) or DER."""
        return cls(_der_from(data, "CERTIFICATE"))

    @classmethod
    def load_all(cls, data: bytes) -> list[Certificate]:
        return [cls(der) for der in pem_blocks(bytes(data), "CERTIFICATE")]

    def to_pem(self) -> bytes:
        return to_pem(self.der, "CERTIFICATE")

    # fields
    @property
    def tbs(self) -> bytes:
        return bytes(self._c["tbs_certificate"].dump())

    @property
    def signature(self) -> bytes:
        return bytes(self._c["signature_value"].native)

    @property
    def serial(self) -> int:
        return int(self._c.serial_number)

    @property
    def subject(self) -> x509.Name:
        return self._c.subject

    @property
    def issuer(self) -> x509.Name:
        return self._c.issuer

    def _attr(self, name: x509.Name, key: str) -> str:
        value = name.native.get(key, "")
        if isinstance(value, list):
            value = value[0] if value else ""
        return str(value)

    @property
    def common_name(self) -> str:
        return self._attr(self.subject, "common_name")

    @property
    def organization(self) -> str:
        return self._attr(self.subject, "organization_name")

    @property
    def role(self) -> str:
        return self._attr(self.subject, "organizational_unit_name")

    @property
    def business(self) -> str | None:
        """The business role (``BUSINESS_ROLES``) of a user certificate, ``None`` when it has
        none; ``MalformedCertificate`` for a value that is not one of them."""
        value = self._attr(self.subject, "business_category")
        if not value:
            return None
        if value not in BUSINESS_ROLES or self.role not in USER_ROLES:
            raise MalformedCertificate(f"business role {value!r} on a {self.role!r} certificate")
        return value

    @property
    def not_before(self) -> dt.datetime:
        return _as_datetime(self._c["tbs_certificate"]["validity"]["not_before"].native)

    @property
    def not_after(self) -> dt.datetime:
        return _as_datetime(self._c["tbs_certificate"]["validity"]["not_after"].native)

    @property
    def is_ca(self) -> bool:
        bc = self._c.basic_constraints_value
        return bool(bc and bc["ca"].native)

    @property
    def key_usage(self) -> set[str]:
        ku = self._c.key_usage_value
        return set(ku.native) if ku else set()

    @property
    def key_identifier(self) -> bytes | None:
        v = self._c.key_identifier_value
        return bytes(v.native) if v is not None else None

    @property
    def authority_key_identifier(self) -> bytes | None:
        v = self._c.authority_key_identifier_value
        return bytes(v["key_identifier"].native) if v is not None and v["key_identifier"].native else None

    @property
    def fingerprint(self) -> str:
        """SM3 of the DER certificate, hex: the certificate's id on the ledger."""
        return sm3(self.der).hex()

    def public_key(self) -> SM2PublicKey:
        return self._public

    def info(self) -> CertificateInfo:
        return CertificateInfo(
            serial=self.serial,
            common_name=self.common_name,
            organization=self.organization,
            role=self.role,
            not_before=self.not_before,
            not_after=self.not_after,
            is_ca=self.is_ca,
            issuer_cn=self._attr(self.issuer, "common_name"),
            fingerprint=self.fingerprint,
            business=self.business,
        )

    def is_self_signed(self) -> bool:
        return bool(self.subject == self.issuer)

    def check_signed_by(self, issuer: Certificate) -> None:
        """Raise ``UntrustedCertificate`` unless ``issuer``'s key signed this certificate."""
        if self.issuer != issuer.subject:
            raise UntrustedCertificate(
                f"certificate {self.common_name!r} was issued by "
                f"{self._attr(self.issuer, 'common_name')!r}, not by {issuer.common_name!r}"
            )
        _check_sm2_signed(self._c["signature_algorithm"], "certificate")
        try:
            issuer.public_key().verify(self.signature, self.tbs, DEFAULT_SIGNER_ID)
        except (InvalidSignature, MalformedSignature):
            raise UntrustedCertificate(
                f"certificate {self.common_name!r} carries a signature that the root "
                f"{issuer.common_name!r} did not make (another root of the same name, or tampered)"
            ) from None

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Certificate) and self.der == other.der

    def __hash__(self) -> int:
        return hash(self.der)

    def __repr__(self) -> str:
        return f"Certificate(CN={self.common_name!r}, O={self.organization!r}, OU={self.role!r}, serial={self.serial:x})"


def new_serial() -> int:
    """A positive random serial of at most 159 bits (RFC 5280 allows 20 octets)."""
    return secrets.randbits(159) | (1 << 150)


def build_certificate(
    *,
    issuer_key: SM2PrivateKey,
    issuer: Certificate | None,
    subject_public_key: SM2PublicKey,
    common_name: str,
    organization: str,
    role: str,
    not_before: dt.datetime,
    not_after: dt.datetime,
    is_ca: bool = False,
    serial: int | None = None,
    business: str | None = None,
) -> Certificate:
    """Make and sign a certificate. ``issuer=None`` makes a self-signed root; ``business``:
    the business role of a user certificate."""
    if role not in ROLES:
        raise ValueError(f"role must be one of {', '.join(ROLES)}")
    if business is not None and (business not in BUSINESS_ROLES or role not in USER_ROLES):
        raise ValueError(f"a business role is one of {', '.join(BUSINESS_ROLES)}, on a user certificate")
    if not common_name or not organization:
        raise ValueError("a certificate needs a common name and an organisation")
    check_name(common_name, "the common name (CN)")
    check_name(organization, "the organisation (O)")
    if not_after <= not_before:
        raise ValueError("not_after must be later than not_before")
    subject = _name(common_name, organization, role, business)
    issuer_name = subject if issuer is None else issuer.subject
    issuer_public = subject_public_key if issuer is None else issuer.public_key()
    if issuer is None and issuer_key.public_key() != subject_public_key:
        raise ValueError("a self-signed certificate must carry its signer's own key")
    usage = {"key_cert_sign", "crl_sign"} if is_ca else {"digital_signature", "non_repudiation"}
    if role in ("org", *USER_ROLES):
        usage |= {"key_encipherment", "data_encipherment"}
    extensions = [
        {"extn_id": "basic_constraints", "critical": True,
         "extn_value": {"ca": is_ca, "path_len_constraint": 0 if is_ca else None}},
        {"extn_id": "key_usage", "critical": True, "extn_value": usage},
        {"extn_id": "key_identifier", "critical": False,
         "extn_value": _key_identifier(subject_public_key)},
        {"extn_id": "authority_key_identifier", "critical": False,
         "extn_value": {"key_identifier": _key_identifier(issuer_public)}},
    ]
    tbs = x509.TbsCertificate({
        "version": "v3",
        "serial_number": serial if serial is not None else new_serial(),
        "signature": _sm2_alg(),
        "issuer": issuer_name,
        "validity": {"not_before": _time(not_before), "not_after": _time(not_after)},
        "subject": subject,
        "subject_public_key_info": keys.PublicKeyInfo.load(subject_public_key.to_der()),
        "extensions": extensions,
    })
    tbs_der = tbs.dump()
    signature = issuer_key.sign(tbs_der, DEFAULT_SIGNER_ID)
    cert = x509.Certificate({
        "tbs_certificate": tbs,
        "signature_algorithm": _sm2_alg(),
        "signature_value": signature,
    })
    return Certificate(cert.dump())


# ---------------------------------------------------------------- CRL


@dataclass(frozen=True)
class Revocation:
    serial: int
    revoked_at: dt.datetime
    reason: str


class CertificateRevocationList:
    """A parsed CRL signed by the consortium root."""

    __slots__ = ("_c", "der")

    def __init__(self, der: bytes) -> None:
        try:
            c = crl.CertificateList.load(bytes(der), strict=True)
            _ = c.native  # parse every field now
        except (ValueError, TypeError, KeyError) as exc:
            raise CRLError(f"not a DER X.509 CRL: {exc}") from None
        self.der = bytes(der)
        self._c = c

    @classmethod
    def load(cls, data: bytes) -> CertificateRevocationList:
        data = bytes(data)
        if b"-----BEGIN" in data:
            blocks = pem_blocks(data, "X509 CRL")
            if not blocks:
                raise CRLError("no PEM block labelled X509 CRL")
            data = blocks[0]
        if not data:
            raise CRLError("CRL file is empty")
        return cls(data)

    def to_pem(self) -> bytes:
        return to_pem(self.der, "X509 CRL")

    @property
    def this_update(self) -> dt.datetime:
        return _as_datetime(self._c["tbs_cert_list"]["this_update"].native)

    @property
    def next_update(self) -> dt.datetime | None:
        value = self._c["tbs_cert_list"]["next_update"].native
        return None if value is None else _as_datetime(value)

    @property
    def number(self) -> int | None:
        v = self._c.crl_number_value
        return int(v.native) if v is not None else None

    def revocations(self) -> dict[int, Revocation]:
        out = {}
        for entry in self._c["tbs_cert_list"]["revoked_certificates"]:
            reason = entry.crl_reason_value
            out[int(entry["user_certificate"].native)] = Revocation(
                serial=int(entry["user_certificate"].native),
                revoked_at=entry["revocation_date"].native,
                reason=reason.native if reason is not None else "unspecified",
            )
        return out

    def check_signed_by(self, root: Certificate) -> None:
        tbs = self._c["tbs_cert_list"]
        if tbs["issuer"] != root.subject:
            raise CRLError("the CRL was issued by another authority than this consortium root")
        _check_sm2_signed(self._c["signature_algorithm"], "CRL")
        try:
            root.public_key().verify(bytes(self._c["signature"].native), tbs.dump())
        except (InvalidSignature, MalformedSignature):
            raise CRLError("the CRL's signature does not verify against the consortium root") from None


def build_crl(
    *,
    issuer_key: SM2PrivateKey,
    issuer: Certificate,
    revoked: Iterable[Revocation],
    number: int,
    this_update: dt.datetime,
    next_update: dt.datetime,
) -> CertificateRevocationList:
    entries = []
    for r in sorted(revoked, key=lambda r: r.serial):
        if r.reason not in REVOCATION_REASONS:
            raise ValueError(f"revocation reason must be one of {', '.join(REVOCATION_REASONS)}")
        entries.append({
            "user_certificate": r.serial,
            "revocation_date": _time(r.revoked_at),
            "crl_entry_extensions": [{"extn_id": "crl_reason", "critical": False,
                                      "extn_value": r.reason}],
        })
    tbs = crl.TbsCertList({
        "version": "v2",
        "signature": _sm2_alg(),
        "issuer": issuer.subject,
        "this_update": _time(this_update),
        "next_update": _time(next_update),
        "revoked_certificates": entries or None,
        "crl_extensions": [
            {"extn_id": "crl_number", "critical": False, "extn_value": number},
            {"extn_id": "authority_key_identifier", "critical": False,
             "extn_value": {"key_identifier": _key_identifier(issuer.public_key())}},
        ],
    })
    signature = issuer_key.sign(tbs.dump(), DEFAULT_SIGNER_ID)
    out = crl.CertificateList({
        "tbs_cert_list": tbs, "signature_algorithm": _sm2_alg(), "signature": signature,
    })
    return CertificateRevocationList(out.dump())


# ---------------------------------------------------------------- chain verification


def check_root(root: Certificate) -> None:
    """A consortium root must be a self-signed CA that may sign certificates."""
    if not root.is_self_signed() or not root.is_ca:
        raise UntrustedCertificate(f"{root.common_name!r} is not a self-signed CA certificate")
    if "key_cert_sign" not in root.key_usage:
        raise UntrustedCertificate(f"root {root.common_name!r} may not sign certificates")
    root.check_signed_by(root)


def verify_certificate(
    cert: Certificate,
    root: Certificate,
    crl_: CertificateRevocationList | None = None,
    at: dt.datetime | None = None,
    require_crl_fresh: bool = True,
) -> CertificateInfo:
    """Verify ``cert`` up to ``root``: signature, validity at ``at`` and revocation.

    Raises ``InvalidName`` (a subject or issuer name that ``ledger.crypto.names`` refuses),
    ``UntrustedCertificate``, ``CertificateExpired``, ``CertificateNotYetValid``,
    ``CertificateRevoked`` or ``CRLError``; returns the certificate's facts when it holds.
    """
    at = at or utcnow()
    for c, label in ((root, "root"), (cert, "certificate")):
        check_certificate_name(c.subject, f"{label}'s subject")
        check_certificate_name(c.issuer, f"{label}'s issuer")
    check_root(root)
    if cert == root:
        pass
    else:
        cert.check_signed_by(root)
        if cert.is_ca:
            raise UntrustedCertificate(
                f"{cert.common_name!r} is a CA certificate; the consortium hierarchy is flat"
            )
    for c, label in ((root, "root"), (cert, "certificate")):
        if at < c.not_before - CLOCK_SKEW:
            raise CertificateNotYetValid(
                f"{label} {c.common_name!r} is not valid before {c.not_before.isoformat()}"
            )
        if at > c.not_after:
            raise CertificateExpired(f"{label} {c.common_name!r} expired on {c.not_after.isoformat()}")
    if crl_ is not None:
        crl_.check_signed_by(root)
        if crl_.this_update > at + CLOCK_SKEW:
            raise CRLError(f"the CRL is dated {crl_.this_update.isoformat()}, in the future")
        nu = crl_.next_update
        if require_crl_fresh and nu is not None and at > nu:
            raise CRLError(f"the CRL is stale: its next update was due {nu.isoformat()}")
        rev = crl_.revocations().get(cert.serial)
        if rev is not None and rev.revoked_at <= at + CLOCK_SKEW:
            raise CertificateRevoked(
                f"certificate {cert.common_name!r} (serial {cert.serial:x}) was revoked on "
                f"{rev.revoked_at.isoformat()}: {rev.reason}"
            )
    return cert.info()


def info_dict(info: CertificateInfo) -> Mapping[str, object]:
    return {
        "serial": format(info.serial, "x"),
        "common_name": info.common_name,
        "organization": info.organization,
        "role": info.role,
        "not_before": info.not_before.isoformat(),
        "not_after": info.not_after.isoformat(),
        "is_ca": info.is_ca,
        "issuer": info.issuer_cn,
        "fingerprint": info.fingerprint,
        "business": info.business,
    }
