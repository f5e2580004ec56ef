"""The registration certificate of a work (issue 12 item 4): a one-page PDF in Chinese and
English with the work's attributes, its SM3 hash, the holder, the registration transaction
and block, a QR code, and the registration's proof bundle as an embedded file.

- ``render_certificate(facts, bundle, out_path)`` / ``render_certificate_bytes`` draw it;
- ``read_certificate(pdf_bytes)`` gets back the facts it states (``rongxin-certificate.json``)
  and the proof bundle (``rongxin-proof.zip``); ``extract_bundle`` only the bundle. The
  package verifier then checks the bundle against the consortium root, and
  ``verify-certificate`` compares the stated facts with what the bundle proves.

The format is specified in ``docs/certificate.md``.
"""

from .attachment import (
    MAX_PDF_BYTES,
    CertificateContents,
    extract_bundle,
    extract_bundle_from_file,
    read_certificate,
    read_pdf_file,
)
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
from .facts import (
    CertificateFacts,
    ConflictFact,
    beijing_text,
    facts_from_json,
    facts_to_json,
    qr_text,
    utc_text,
)
from .fonts import ENV_VAR as CJK_FONT_ENV
from .fonts import find_cjk_font
from .render import (
    ATTACHMENT_NAME,
    FACTS_NAME,
    MAX_BUNDLE_BYTES,
    render_certificate,
    render_certificate_bytes,
)

__all__ = [
    "ATTACHMENT_NAME",
    "CJK_FONT_ENV",
    "FACTS_NAME",
    "MAX_BUNDLE_BYTES",
    "MAX_PDF_BYTES",
    "CertificateContents",
    "CertificateFacts",
    "CertificatePdfError",
    "CjkFontMissing",
    "ConflictFact",
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
    "facts_from_json",
    "facts_to_json",
    "find_cjk_font",
    "qr_text",
    "read_certificate",
    "read_pdf_file",
    "render_certificate",
    "render_certificate_bytes",
    "utc_text",
]
