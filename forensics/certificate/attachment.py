"""Getting the proof bundle back out of a registration certificate, with bounded reads.

``extract_bundle`` does not trust the PDF: it bounds the PDF's size before parsing, refuses a
file without a ``%PDF-`` header or without ``%%EOF`` near its end (truncated), walks only the
document catalogue's ``/Names /EmbeddedFiles`` name tree (bounded depth and entries), reads
the embedded stream itself (no filter, or ``/FlateDecode`` decompressed with an output bound),
and checks the bytes against the SM3 written in the file specification's description. The
bundle's own proofs are checked afterwards by the package verifier, not here.
"""

from __future__ import annotations

import io
import logging
import re
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pypdf import PdfReader
from pypdf.errors import PyPdfError
from pypdf.generic import ArrayObject, DictionaryObject, StreamObject

from ledger.crypto import sm3_hex
from ledger.files import FileInputError, read_regular

from .errors import DamagedPdf, InvalidFacts, NoAttachment, NotACertificate, TooLarge, UnreadableFile
from .facts import MAX_FACTS_BYTES, CertificateFacts, facts_from_json
from .render import ATTACHMENT_NAME, FACTS_NAME, MAX_BUNDLE_BYTES

MAX_PDF_BYTES = MAX_BUNDLE_BYTES + (8 << 20)
MAX_TREE_DEPTH = 8
MAX_TREE_ENTRIES = 4096
EOF_WINDOW = 1024
_DESC_SM3 = re.compile(r"SM3 ([0-9a-f]{64})")
_PARSE_ERRORS = (PyPdfError, ValueError, TypeError, KeyError, IndexError, AttributeError,
                 RecursionError, OverflowError, AssertionError, zlib.error)

logging.getLogger("pypdf").setLevel(logging.ERROR)  # damaged input is reported by our errors


def _find(node: Any, name: str, depth: int, seen: list[int]) -> Any:
    """The value under ``name`` in a name-tree node, or None."""
    if depth > MAX_TREE_DEPTH:
        raise DamagedPdf("the PDF's attachment name tree is too deep")
    node = node.get_object()
    if not isinstance(node, DictionaryObject):
        raise DamagedPdf("the PDF's attachment name tree is malformed")
    names = node.get("/Names")
    if names is not None:
        names = names.get_object()
        if not isinstance(names, ArrayObject) or len(names) % 2:
            raise DamagedPdf("the PDF's attachment name tree is malformed")
        seen[0] += len(names) // 2
        if seen[0] > MAX_TREE_ENTRIES:
            raise DamagedPdf("the PDF lists too many attachments")
        for i in range(0, len(names), 2):
            if str(names[i].get_object()) == name:
                return names[i + 1]
    kids = node.get("/Kids")
    if kids is not None:
        kids = kids.get_object()
        if not isinstance(kids, ArrayObject):
            raise DamagedPdf("the PDF's attachment name tree is malformed")
        for kid in kids:
            seen[0] += 1
            if seen[0] > MAX_TREE_ENTRIES:
                raise DamagedPdf("the PDF lists too many attachments")
            found = _find(kid, name, depth + 1, seen)
            if found is not None:
                return found
    return None


def _stream_bytes(stream: StreamObject, limit: int) -> bytes:
    """The decoded bytes of an embedded-file stream, never more than ``limit``."""
    raw: bytes = stream._data
    filters = stream.get("/Filter")
    if filters is not None:
        filters = filters.get_object()
        if isinstance(filters, ArrayObject):
            filters = filters[0].get_object() if len(filters) == 1 else None
        if str(filters) != "/FlateDecode" or stream.get("/DecodeParms") is not None:
            raise DamagedPdf("the attachment uses a stream filter this reader does not accept")
        d = zlib.decompressobj()
        out = d.decompress(raw, limit + 1)
        if len(out) > limit:
            raise TooLarge(f"the attachment is over {limit} bytes")
        if not d.eof:
            raise DamagedPdf("the attachment's compressed data is truncated")
        raw = out
    if len(raw) > limit:
        raise TooLarge(f"the attachment is over {limit} bytes")
    return bytes(raw)


def _dict(obj: Any, what: str) -> DictionaryObject:
    obj = obj.get_object() if obj is not None else None
    if not isinstance(obj, DictionaryObject):
        raise DamagedPdf(f"the PDF's {what} is missing or not a dictionary")
    return obj


def _attachment(reader: PdfReader, name: str, limit: int) -> tuple[bytes, str]:
    root = _dict(reader.trailer.get("/Root"), "document catalogue")
    names = root.get("/Names")
    tree = _dict(names, "name dictionary").get("/EmbeddedFiles") if names is not None else None
    spec = _find(tree, name, 0, [0]) if tree is not None else None
    if spec is None:
        raise NoAttachment(f"the PDF carries no {name} attachment (not a Rongxin certificate)")
    spec = _dict(spec, "attachment file specification")
    ef = _dict(spec.get("/EF"), "attachment /EF entry")
    stream = ef.get("/F") or ef.get("/UF")
    stream = stream.get_object() if stream is not None else None
    if not isinstance(stream, StreamObject):
        raise DamagedPdf(f"the {name} file specification has no embedded stream")
    desc = spec.get("/Desc")
    data = _stream_bytes(stream, limit)
    m = _DESC_SM3.search(str(desc.get_object()) if desc is not None else "")
    if m is None:
        raise DamagedPdf(f"the {name} attachment's description holds no SM3")
    if sm3_hex(data) != m.group(1):
        raise DamagedPdf(f"the {name} attachment does not match the SM3 in its description")
    return data, m.group(1)


def _reader(pdf_bytes: bytes, max_pdf_bytes: int) -> PdfReader:
    if not isinstance(pdf_bytes, bytes | bytearray):
        raise NotACertificate("a certificate must be given as bytes")
    if len(pdf_bytes) > max_pdf_bytes:
        raise TooLarge(f"the PDF is over {max_pdf_bytes} bytes")
    if not bytes(pdf_bytes[:5]) == b"%PDF-":
        raise NotACertificate("not a PDF (no %PDF- header)")
    if b"%%EOF" not in pdf_bytes[-EOF_WINDOW:]:
        raise DamagedPdf("the PDF is truncated (no %%EOF at its end)")
    reader = PdfReader(io.BytesIO(bytes(pdf_bytes)), strict=True)
    if reader.is_encrypted:
        raise DamagedPdf("the PDF is encrypted")
    return reader


@dataclass(frozen=True)
class CertificateContents:
    """What a certificate PDF carries: the facts it states and the proof bundle."""

    facts: CertificateFacts
    bundle: bytes


def read_certificate(pdf_bytes: bytes, *, max_pdf_bytes: int = MAX_PDF_BYTES,
                     max_bundle_bytes: int = MAX_BUNDLE_BYTES) -> CertificateContents:
    """The stated facts (``rongxin-certificate.json``) and the proof bundle
    (``rongxin-proof.zip``) of a certificate PDF, each checked against the SM3 in its
    description.

    Raises ``TooLarge`` (PDF or an attachment over its bound), ``NotACertificate`` (no PDF
    header), ``DamagedPdf`` (truncated, unparsable, an attachment that does not match its SM3,
    facts that do not parse) or ``NoAttachment``.
    """
    try:
        reader = _reader(pdf_bytes, max_pdf_bytes)
        bundle, _ = _attachment(reader, ATTACHMENT_NAME, max_bundle_bytes)
        claims, _ = _attachment(reader, FACTS_NAME, MAX_FACTS_BYTES)
    except _PARSE_ERRORS as exc:
        raise DamagedPdf(f"the PDF cannot be read: {type(exc).__name__}") from None
    try:
        facts = facts_from_json(claims)
    except InvalidFacts as exc:
        raise DamagedPdf(f"the PDF's {FACTS_NAME} is not valid: {exc}") from None
    return CertificateContents(facts, bundle)


def extract_bundle(pdf_bytes: bytes, *, max_pdf_bytes: int = MAX_PDF_BYTES,
                   max_bundle_bytes: int = MAX_BUNDLE_BYTES) -> bytes:
    """The proof bundle carried by a certificate PDF, byte for byte (errors as
    ``read_certificate``; the stated facts are not read)."""
    try:
        reader = _reader(pdf_bytes, max_pdf_bytes)
        bundle, _ = _attachment(reader, ATTACHMENT_NAME, max_bundle_bytes)
    except _PARSE_ERRORS as exc:
        raise DamagedPdf(f"the PDF cannot be read: {type(exc).__name__}") from None
    return bundle


def read_pdf_file(path: str | Path, *, max_pdf_bytes: int = MAX_PDF_BYTES) -> bytes:
    """The bytes of a certificate file a user names (regular files only, read with a bound):
    ``UnreadableFile`` or ``TooLarge`` otherwise."""
    try:
        return read_regular(path, limit=max_pdf_bytes)
    except FileInputError as exc:
        if exc.reason.startswith("is larger than"):
            raise TooLarge(str(exc)) from None
        raise UnreadableFile(str(exc)) from None


def extract_bundle_from_file(path: str | Path, *, max_pdf_bytes: int = MAX_PDF_BYTES) -> bytes:
    """``extract_bundle`` of a file a user names."""
    return extract_bundle(read_pdf_file(path, max_pdf_bytes=max_pdf_bytes), max_pdf_bytes=max_pdf_bytes)
