"""Transport certificates for node-to-node TLS, endorsed by the SM2 consortium root.

Python's ``ssl`` cannot use SM2 keys, so links use a separate ECDSA P-256 hierarchy:

- a **transport CA** (self-signed P-256 certificate) created with the consortium CA, and an
  **endorsement**: the consortium root's SM2 signature over
  ``canonical({"kind": "transport-ca", "ca": SM3(transport CA DER), "root": root fingerprint})``,
  so a node trusts a transport CA only if the SM2 root vouches for it;
- one **transport certificate** per node (P-256, CN = node id, subjectAltName with the
  loopback addresses and ``localhost``, and the URI ``urn:rongxin:sm2-cert:<SM3 of the
  node's SM2 certificate>`` binding the link to the node's consortium identity).

Authenticity of consensus messages still comes from their SM2 signatures; TLS adds
confidentiality and refuses strangers at the door. A node whose SM2 certificate is revoked
is refused because its binding URI names a revoked certificate.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import ssl
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509 as cx509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from ..codec import canonical
from .errors import CertificateError, InvalidSignature, MalformedSignature, UntrustedCertificate
from .sm2 import SM2PrivateKey
from .sm3 import sm3
from .x509 import Certificate

BINDING_PREFIX = "urn:rongxin:sm2-cert:"


def _pem_key(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


def endorsement_message(transport_ca_der: bytes, root: Certificate) -> bytes:
    return canonical({"kind": "transport-ca", "ca": sm3(transport_ca_der).hex(), "root": root.fingerprint})


@dataclass(frozen=True)
class TransportCA:
    key_pem: bytes
    cert_pem: bytes
    endorsement: bytes  # SM2 signature (DER) by the consortium root

    @classmethod
    def create(cls, root_key: SM2PrivateKey, root: Certificate, days: int = 3650) -> TransportCA:
        key = ec.generate_private_key(ec.SECP256R1())
        name = cx509.Name([
            cx509.NameAttribute(NameOID.ORGANIZATION_NAME, root.organization),
            cx509.NameAttribute(NameOID.COMMON_NAME, f"{root.organization} Transport CA"),
        ])
        now = dt.datetime.now(dt.UTC)
        cert = (
            cx509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(cx509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5)).not_valid_after(now + dt.timedelta(days=days))
            .add_extension(cx509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(cx509.KeyUsage(digital_signature=False, content_commitment=False,
                                          key_encipherment=False, data_encipherment=False,
                                          key_agreement=False, key_cert_sign=True, crl_sign=True,
                                          encipher_only=False, decipher_only=False), critical=True)
            .sign(key, hashes.SHA256())
        )
        der = cert.public_bytes(serialization.Encoding.DER)
        endorsement = root_key.sign(endorsement_message(der, root))
        return cls(_pem_key(key), cert.public_bytes(serialization.Encoding.PEM), endorsement)

    def check_endorsed_by(self, root: Certificate) -> None:
        check_endorsement(self.cert_pem, self.endorsement, root)

    def issue(self, node_id: str, sm2_cert: Certificate, days: int = 825,
              hosts: tuple[str, ...] = ("localhost", "127.0.0.1", "::1")) -> tuple[bytes, bytes]:
        """A node's transport key and certificate (PEM), bound to its SM2 certificate."""
        ca_key = serialization.load_pem_private_key(self.key_pem, None)
        assert isinstance(ca_key, ec.EllipticCurvePrivateKey)
        ca_cert = cx509.load_pem_x509_certificate(self.cert_pem)
        key = ec.generate_private_key(ec.SECP256R1())
        alt: list[cx509.GeneralName] = [cx509.UniformResourceIdentifier(BINDING_PREFIX + sm2_cert.fingerprint)]
        for host in hosts:
            try:
                alt.append(cx509.IPAddress(ipaddress.ip_address(host)))
            except ValueError:
                alt.append(cx509.DNSName(host))
        now = dt.datetime.now(dt.UTC)
        cert = (
            cx509.CertificateBuilder()
            .subject_name(cx509.Name([
                cx509.NameAttribute(NameOID.ORGANIZATION_NAME, sm2_cert.organization),
                cx509.NameAttribute(NameOID.COMMON_NAME, node_id)]))
            .issuer_name(ca_cert.subject).public_key(key.public_key())
            .serial_number(cx509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5))
            .not_valid_after(min(now + dt.timedelta(days=days), ca_cert.not_valid_after_utc))
            .add_extension(cx509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(cx509.SubjectAlternativeName(alt), critical=False)
            .add_extension(cx509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH,
                                                   ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
            .sign(ca_key, hashes.SHA256())
        )
        return _pem_key(key), cert.public_bytes(serialization.Encoding.PEM)


def check_endorsement(transport_ca_pem: bytes, endorsement: bytes, root: Certificate) -> None:
    """Raise ``UntrustedCertificate`` unless the consortium root endorsed this transport CA."""
    try:
        der = cx509.load_pem_x509_certificate(transport_ca_pem).public_bytes(serialization.Encoding.DER)
    except ValueError as exc:
        raise CertificateError(f"transport CA certificate is malformed: {exc}") from None
    try:
        root.public_key().verify(endorsement, endorsement_message(der, root))
    except (InvalidSignature, MalformedSignature):
        raise UntrustedCertificate("the transport CA is not endorsed by this consortium root") from None


@dataclass(frozen=True)
class PeerIdentity:
    node_id: str
    sm2_cert_fingerprint: str


def peer_identity(ssl_object: ssl.SSLObject | ssl.SSLSocket) -> PeerIdentity:
    """Who is at the other end of a verified TLS link."""
    der = ssl_object.getpeercert(binary_form=True)
    if not der:
        raise UntrustedCertificate("the peer presented no transport certificate")
    return _identity_of(cx509.load_der_x509_certificate(der))


def _identity_of(cert: cx509.Certificate) -> PeerIdentity:
    """A transport certificate's common name and the one SM2 certificate it is bound to."""
    cns = cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    if not cns:
        raise UntrustedCertificate("transport certificate has no common name")
    try:
        alt = cert.extensions.get_extension_for_class(cx509.SubjectAlternativeName).value
    except cx509.ExtensionNotFound:
        raise UntrustedCertificate("transport certificate has no subjectAltName") from None
    uris = [u for u in alt.get_values_for_type(cx509.UniformResourceIdentifier) if u.startswith(BINDING_PREFIX)]
    if len(uris) != 1:
        raise UntrustedCertificate("transport certificate is not bound to one SM2 certificate")
    return PeerIdentity(str(cns[0].value), uris[0][len(BINDING_PREFIX):])


def tls_context(server: bool, cert_file: str | Path, key_file: str | Path, ca_file: str | Path) -> ssl.SSLContext:
    """Mutually authenticated TLS 1.3 against the transport CA only."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER if server else ssl.PROTOCOL_TLS_CLIENT)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_3
    ctx.load_cert_chain(str(cert_file), str(key_file))
    ctx.load_verify_locations(cafile=str(ca_file))
    ctx.verify_mode = ssl.CERT_REQUIRED
    if not server:
        ctx.check_hostname = False  # peers are identified by their certificate's CN and binding
    return ctx


def transport_identity(pem: bytes) -> PeerIdentity:
    """Who a transport certificate (PEM) names: its common name and the SM2 certificate it is
    bound to (the same reading as ``peer_identity``, from a certificate file or a chain record).
    Its issuer is not checked here: TLS checks it against the transport CA on every link."""
    try:
        cert = cx509.load_pem_x509_certificate(pem)
    except ValueError as exc:
        raise CertificateError(f"transport certificate is malformed: {exc}") from None
    return _identity_of(cert)


def transport_not_after(pem: bytes) -> dt.datetime:
    """When a transport certificate (PEM, any key type) expires, in UTC (for monitoring)."""
    try:
        cert = cx509.load_pem_x509_certificate(pem)
    except ValueError as exc:
        raise CertificateError(f"transport certificate is malformed: {exc}") from None
    return cert.not_valid_after_utc
