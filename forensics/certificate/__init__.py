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

import importlib
from typing import TYPE_CHECKING

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

if TYPE_CHECKING:
    from .attachment import (
        MAX_PDF_BYTES,
        CertificateContents,
        extract_bundle,
        extract_bundle_from_file,
        read_certificate,
        read_pdf_file,
    )
    from .render import (
        ATTACHMENT_NAME,
        FACTS_NAME,
        MAX_BUNDLE_BYTES,
        render_certificate,
        render_certificate_bytes,
    )

# what needs pypdf or fpdf (reading and drawing PDFs: about 0.4 s of CPU to import) loads on
# first use, so a process that never handles a certificate PDF (a node starting, most CLI
# commands) does not pay for it
_LAZY = {
    "MAX_PDF_BYTES": "attachment",
    "CertificateContents": "attachment",
    "extract_bundle": "attachment",
    "extract_bundle_from_file": "attachment",
    "read_certificate": "attachment",
    "read_pdf_file": "attachment",
    "ATTACHMENT_NAME": "render",
    "FACTS_NAME": "render",
    "MAX_BUNDLE_BYTES": "render",
    "render_certificate": "render",
    "render_certificate_bytes": "render",
}


def __getattr__(name: str) -> object:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{module}", __name__), name)
    globals()[name] = value
    return value


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
