"""The registration certificate of a work (issue 12 item 4): a one-page PDF in Chinese and
English with the work's attributes, its SM3 hash, the holder, the registration transaction
and block, a QR code, and the registration's proof bundle as an embedded file.

- ``render_certificate(facts, bundle, out_path)`` / ``render_certificate_bytes`` draw it;
- ``extract_bundle(pdf_bytes)`` / ``extract_bundle_from_file(path)`` get the bundle back,
  which the package verifier then checks against the consortium root.

The format is specified in ``docs/certificate.md``.
"""

from .attachment import MAX_PDF_BYTES, extract_bundle, extract_bundle_from_file
from .errors import (
    CertificatePdfError,
    CjkFontMissing,
    DamagedPdf,
    InvalidFacts,
    NoAttachment,
    NotACertificate,
    OutputError,
    TooLarge,
    UnreadableFile,
)
from .facts import CertificateFacts, beijing_text, qr_text, utc_text
from .fonts import ENV_VAR as CJK_FONT_ENV
from .fonts import find_cjk_font
from .render import ATTACHMENT_NAME, MAX_BUNDLE_BYTES, render_certificate, render_certificate_bytes

__all__ = [
    "ATTACHMENT_NAME",
    "CJK_FONT_ENV",
    "MAX_BUNDLE_BYTES",
    "MAX_PDF_BYTES",
    "CertificateFacts",
    "CertificatePdfError",
    "CjkFontMissing",
    "DamagedPdf",
    "InvalidFacts",
    "NoAttachment",
    "NotACertificate",
    "OutputError",
    "TooLarge",
    "UnreadableFile",
    "beijing_text",
    "extract_bundle",
    "extract_bundle_from_file",
    "find_cjk_font",
    "qr_text",
    "render_certificate",
    "render_certificate_bytes",
    "utc_text",
]
