"""National cryptography (SM2, SM3, SM4), certificates and the consortium CA.

This package is the only place in the product that touches the national-crypto and
certificate libraries (libcrypto through ``_libcrypto``, ``cryptography``, ``asn1crypto``).
Everything else imports from here. Layout, in dependency order:

- ``errors``     every error raised here, one flat module
- ``_libcrypto`` the raw ctypes binding to OpenSSL 3 (SM2 only)
- ``sm3``        hashing, one-shot and streaming
- ``sm4``        SM4-GCM for data, CBC/CTR for formats that need them
- ``sm2``        keys in PKCS#8/SPKI PEM/DER, signatures with a signer ID, encryption
- ``suite``      the configurable algorithm set (``sm`` by default)
- ``names``      the rules for names in certificates (length, characters)
- ``x509``       SM2-with-SM3 certificates and CRLs, chain verification
- ``tls``        the P-256 transport (TLS) CA and node certificates for node links
- ``ca``         the consortium CA folder: init, issue, revoke, CRL
- ``attest``     the root's attestation of a chain's genesis (message, sign, verify)
- ``verify_pool`` SM2 verification on every core
- ``keycache``   parsed SM2 public keys by point (``KeyCache``)
- ``merkle``     the RFC 6962 binary Merkle tree with SM3, inclusion proofs and their verifier
- ``group``      the SM2 curve group: scalars mod n, points (SEC1), multi-scalar
                 multiplication, hash-to-scalar/point, the second generator H
- ``pedersen``   Pedersen commitments ``v*G + r*H`` and the audit of published totals
- ``selftest``   known-answer tests run at start-up and by ``rongxin selftest``
"""

from .attest import (
    ATTESTATION_FORMAT,
    attestation_message,
    sign_genesis_attestation,
    verify_genesis_attestation,
)
from .errors import (
    BackendError,
    BackendUnavailable,
    CAError,
    CertificateError,
    CertificateExpired,
    CertificateNotYetValid,
    CertificateRevoked,
    CommitmentError,
    CRLError,
    CryptoError,
    DecryptionError,
    GenesisAttestationError,
    InvalidKey,
    InvalidName,
    InvalidPoint,
    InvalidScalar,
    InvalidSignature,
    KeyPasswordError,
    MalformedCertificate,
    MalformedSignature,
    MerkleIndexError,
    UnsupportedAlgorithm,
    UntrustedCertificate,
)
from .group import (
    Point,
    Scalar,
    generator,
    generator_h,
    hash_to_point,
    hash_to_scalar,
    msm,
    mul_generator,
    random_scalar,
)
from .pedersen import (
    Commitment,
    Opening,
    add_commitments,
    add_openings,
    commit,
    commit_vector,
    failed_totals,
    verify_opening,
    verify_total,
    verify_totals,
)
from .sm2 import (
    DEFAULT_SIGNER_ID,
    SM2PrivateKey,
    SM2PublicKey,
    ciphertext_from_c1c3c2,
    ciphertext_to_c1c3c2,
    compute_z,
    decode_signature,
    encode_signature,
    generate_private_key,
    load_private_key,
    load_public_key,
)
from .sm3 import SM3, sm3, sm3_file, sm3_hex, sm3_stream
from .sm4 import SM4GCM
from .suite import CryptoSuite, available_suites, get_suite
from .x509 import Certificate, CertificateRevocationList, verify_certificate

__all__ = [
    "ATTESTATION_FORMAT",
    "DEFAULT_SIGNER_ID",
    "SM3",
    "SM4GCM",
    "BackendError",
    "BackendUnavailable",
    "CAError",
    "CRLError",
    "Certificate",
    "CertificateError",
    "CertificateExpired",
    "CertificateNotYetValid",
    "CertificateRevocationList",
    "CertificateRevoked",
    "Commitment",
    "CommitmentError",
    "CryptoError",
    "CryptoSuite",
    "DecryptionError",
    "GenesisAttestationError",
    "InvalidKey",
    "InvalidName",
    "InvalidPoint",
    "InvalidScalar",
    "InvalidSignature",
    "KeyPasswordError",
    "MalformedCertificate",
    "MalformedSignature",
    "MerkleIndexError",
    "Opening",
    "Point",
    "SM2PrivateKey",
    "SM2PublicKey",
    "Scalar",
    "UnsupportedAlgorithm",
    "UntrustedCertificate",
    "add_commitments",
    "add_openings",
    "attestation_message",
    "available_suites",
    "ciphertext_from_c1c3c2",
    "ciphertext_to_c1c3c2",
    "commit",
    "commit_vector",
    "compute_z",
    "decode_signature",
    "encode_signature",
    "failed_totals",
    "generate_private_key",
    "generator",
    "generator_h",
    "get_suite",
    "hash_to_point",
    "hash_to_scalar",
    "load_private_key",
    "load_public_key",
    "msm",
    "mul_generator",
    "random_scalar",
    "sign_genesis_attestation",
    "sm3",
    "sm3_file",
    "sm3_hex",
    "sm3_stream",
    "verify_certificate",
    "verify_genesis_attestation",
    "verify_opening",
    "verify_total",
    "verify_totals",
]
