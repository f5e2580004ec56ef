"""Every error the crypto layer raises, in one flat module.

Each carries a message a user can act on. The CLI maps the classes to exit codes in one
place (``api/cli``): ``InvalidSignature`` and the certificate-status errors are a negative
answer (exit 1); everything about unusable input is exit 2.
"""

from __future__ import annotations

from ledger.errors import LedgerError


class CryptoError(LedgerError):
    """Base of everything ``ledger.crypto`` raises."""


class BackendUnavailable(CryptoError):
    """The C backend (OpenSSL 3 libcrypto) cannot be loaded."""


class BackendError(CryptoError):
    """libcrypto reported a failure that is not the caller's input."""


class UnsupportedAlgorithm(CryptoError):
    """A key, suite or algorithm this product does not accept."""


class InvalidKey(CryptoError):
    """Key material is malformed, of the wrong type, or not on the curve."""


class KeyPasswordError(InvalidKey):
    """An encrypted private key needs a password, or the one given is wrong."""


class InvalidPoint(CryptoError):
    """Bytes that are not the canonical SEC1 encoding of a point of the SM2 curve: wrong
    length or prefix, a coordinate not below p, off the curve, the point at infinity where a
    real point is needed, or any encoding that does not re-encode to the same bytes."""


class InvalidScalar(CryptoError):
    """Bytes or a number that are not a canonical scalar modulo the SM2 group order n."""


class CommitmentError(CryptoError):
    """A value outside the bounds a Pedersen commitment accepts, or mismatched inputs."""


class MalformedSignature(CryptoError):
    """The bytes are not a DER-encoded SM2 signature (GB/T 35276)."""


class InvalidSignature(CryptoError):
    """The signature does not verify for this key, message and signer ID."""


class DecryptionError(CryptoError):
    """Ciphertext is malformed, was tampered with, or was made for another key."""


class CertificateError(CryptoError):
    """Base of certificate and CRL problems."""


class MalformedCertificate(CertificateError):
    """The bytes are not an X.509 certificate (or CRL) this product can read."""


class InvalidName(CertificateError):
    """A name for a certificate, or in one, breaks the rules of ``ledger.crypto.names``
    (too long, a control character, a character that makes a printed DN ambiguous)."""


class UntrustedCertificate(CertificateError):
    """The certificate does not chain to the given consortium root."""


class CertificateExpired(CertificateError):
    """The certificate's validity period has ended."""


class CertificateNotYetValid(CertificateError):
    """The certificate's validity period has not begun."""


class CertificateRevoked(CertificateError):
    """The certificate's serial is on the consortium's CRL."""


class CRLError(CertificateError):
    """The CRL is malformed, stale, or not signed by the consortium root."""


class GenesisAttestationError(CryptoError):
    """A genesis attestation is malformed, for another chain or genesis, or not the root's."""


class CAError(CryptoError):
    """The CA folder is missing, damaged, or asked to do something it cannot."""


class MerkleIndexError(CryptoError):
    """A Merkle inclusion proof was asked for a leaf index outside the tree."""
