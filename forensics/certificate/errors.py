"""Typed errors of the registration certificate (render and attachment extraction).

Every message is meant for the user: the CLI prints it on one line and exits 2, the API
maps it to a 4xx. ``CertificatePdfError`` is the base (the name keeps it apart from
``ledger.crypto.CertificateError``, which is about X.509 certificates).
"""

from __future__ import annotations


class CertificatePdfError(Exception):
    """Base of every error raised by ``forensics.certificate``."""


class InvalidFacts(CertificatePdfError):
    """A fact given to ``render_certificate`` has the wrong type or shape."""


class CjkFontMissing(CertificatePdfError):
    """No font that can draw Chinese text was found on this machine."""


class NotACertificate(CertificatePdfError):
    """The bytes are not a PDF at all (no ``%PDF-`` header)."""


class DamagedPdf(CertificatePdfError):
    """The PDF is truncated or cannot be parsed, or its attachment does not match its SM3."""


class NoAttachment(CertificatePdfError):
    """The PDF carries no proof bundle under the fixed attachment name."""


class TooLarge(CertificatePdfError):
    """The PDF, or the attachment it carries, is over the configured bound."""


class UnreadableFile(CertificatePdfError):
    """The certificate file named cannot be read (missing, not a regular file, no permission)."""


class OutputError(CertificatePdfError):
    """The certificate cannot be written where asked (no such folder, no permission, disk full)."""
