"""Drawing the registration certificate: one A4 page, Chinese and English, with a QR code and
the proof bundle as an embedded file.

Every value is drawn as text with the PDF writer's string escaping (never as markup), and the
layout is fixed: each field has a maximum number of lines, and a value that needs more is cut
with an ellipsis, so no input can push content off the page or onto a second one.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import struct
import tempfile
from collections.abc import Container
from dataclasses import dataclass
from pathlib import Path

import segno
from fontTools.ttLib import TTLibError
from fpdf import FPDF
from fpdf.enums import MethodReturnValue, WrapMode, XPos, YPos

from ledger.crypto import sm3_hex

from .errors import CjkFontMissing, InvalidFacts, OutputError
from .facts import CertificateFacts, beijing_text, block_time, checked, facts_to_json, qr_text, utc_text
from .fonts import find_cjk_font

ATTACHMENT_NAME = "rongxin-proof.zip"
ATTACHMENT_MIME = "application/zip"
FACTS_NAME = "rongxin-certificate.json"
MAX_BUNDLE_BYTES = 64 << 20

# fontTools reports each font table it leaves out of a subset (the CJK font's bitmap strikes)
logging.getLogger("fontTools.subset").setLevel(logging.ERROR)
ELLIPSIS = "…"
MISSING = "□"  # U+25A1 WHITE SQUARE, drawn for a character the font lacks
MAX_LINE_CHARS = 200  # more than any line of VALUE_W holds (122 mm / 0.7 mm, a 10 pt "i")
MAX_LAYOUT_CHARS = 4 * MAX_LINE_CHARS + 1  # more than the longest row shows, so _fit still sees a cut

PAGE_W, PAGE_H, MARGIN = 210.0, 297.0, 18.0
LABEL_W = 50.0
VALUE_X = MARGIN + LABEL_W + 2.0
VALUE_W = PAGE_W - MARGIN - VALUE_X
LINE_H = 4.6
QR_SIZE = 44.0
QR_Y = 228.0  # below the tallest layout of the rows (227.8 mm)
CJK = "cjk"
MONO = "Courier"
MONO_SIZE = 8.5  # 64 hex digits fit on one line of VALUE_W


@dataclass(frozen=True)
class Row:
    zh: str
    en: str
    value: str
    max_lines: int
    mono: bool = False


def _rows(f: CertificateFacts) -> list[Row]:
    return [
        Row("作品名称", "Title", f.title, 4),
        Row("作品类型", "Type of work", f.work_type, 1),
        Row("作者", "Author(s)", "; ".join(f.authors), 3),
        Row("创作完成日期", "Date of creation", f.creation_date, 1),
        Row("许可条款", "Licence terms", f.licence, 3),
        Row("著作权人", "Rights holder", f.holder_cn, 1),
        Row("所属机构", "Organisation", f.holder_org, 1),
        Row("作品编号", "Work ID", f.work_id, 2, mono=True),
        Row("SM3 哈希值", "SM3 hash of the work", f.sm3, 1, mono=True),
        Row("链标识", "Chain ID", f.chain, 1, mono=True),
        Row("交易编号", "Transaction ID", f.tx_id, 2, mono=True),
        Row("区块高度", "Block height", str(f.height), 1, mono=True),
        Row("区块时间（UTC）", "Block time (UTC)", utc_text(f.block_time_ms), 1),
        Row("区块时间（北京时间）", "Block time (Beijing time)", beijing_text(f.block_time_ms), 1),
        Row("登记时记录的冲突", "Conflicts recorded", conflicts_text(f), 2, mono=True),
    ]


def conflicts_text(f: CertificateFacts) -> str:
    """``none``, or the count and each earlier work: ``2: w-1 (sm3 1.000, contract); w-2 (orb
    1.834)`` (score = score_milli / 1000; ``contract`` when the contract found it). The page
    shows two lines; the stated facts hold every conflict."""
    if not f.conflicts:
        return "none"
    parts = [f"{c.work_id} ({c.kind} {c.score_milli / 1000:.3f}{', contract' if c.source == 'contract' else ''})"
             for c in f.conflicts]
    return f"{len(parts)}: " + "; ".join(parts)


def _fit(pdf: FPDF, text: str, width: float, max_lines: int) -> list[str]:
    """The lines ``text`` wraps to in ``width`` with the current font, at most ``max_lines``;
    the last one ends with an ellipsis when text was cut."""
    if not text.strip():
        return ["—"]
    # no line holds more than MAX_LINE_CHARS characters (the narrowest glyph at the smallest
    # size), so only that much of the text is laid out, however long the value
    cap = max_lines * MAX_LINE_CHARS
    clipped = len(text) > cap
    wrapped = pdf.multi_cell(w=width, h=LINE_H, text=text[:cap], dry_run=True,
                             output=MethodReturnValue.LINES, wrapmode=WrapMode.WORD)
    if not isinstance(wrapped, list):  # pragma: no cover - LINES output is a list of str
        raise TypeError("unexpected multi_cell result")
    lines = [str(line) for line in wrapped]
    if len(lines) <= max_lines and not clipped:
        return lines
    kept = lines[:max_lines]
    last = kept[-1].rstrip()
    mark = "..." if pdf.font_family == MONO.lower() else ELLIPSIS
    while last and pdf.get_string_width(last + mark) > width - 3.0:
        last = last[:-1]
    kept[-1] = last + mark
    return kept


def _header(pdf: FPDF) -> None:
    pdf.set_text_color(120, 20, 20)
    pdf.set_font(CJK, size=22)
    pdf.set_xy(MARGIN, 16)
    pdf.cell(PAGE_W - 2 * MARGIN, 11, "作品登记证书", align="C", new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    pdf.set_font(CJK, size=13)
    pdf.cell(PAGE_W - 2 * MARGIN, 7, "Certificate of Work Registration", align="C",
             new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    pdf.set_text_color(80, 80, 80)
    pdf.set_font(CJK, size=9)
    pdf.cell(PAGE_W - 2 * MARGIN, 6, "融信联盟链 · Rongxin consortium chain", align="C")
    pdf.set_draw_color(120, 20, 20)
    pdf.set_line_width(0.6)
    pdf.line(MARGIN, 45, PAGE_W - MARGIN, 45)
    pdf.set_line_width(0.2)


def _visible(text: str, cmap: Container[int]) -> str:
    """``text`` with each character the font cannot draw shown as MISSING, so a reader sees
    that something is there (the stated facts keep the character itself)."""
    if all(ord(c) in cmap or c == " " for c in text):
        return text
    return "".join(c if ord(c) in cmap or c == " " else MISSING for c in text)


def _row(pdf: FPDF, y: float, row: Row) -> float:
    """Draws one field at ``y``; returns the y below it."""
    pdf.set_text_color(60, 60, 60)
    pdf.set_font(CJK, size=9)
    pdf.set_xy(MARGIN, y + 1)
    pdf.cell(LABEL_W, 4.2, row.zh)
    pdf.set_font(CJK, size=7)
    pdf.set_xy(MARGIN, y + 5.2)
    pdf.cell(LABEL_W, 3.4, row.en)
    pdf.set_text_color(0, 0, 0)
    if row.mono:
        pdf.set_font(MONO, size=MONO_SIZE)
    else:
        pdf.set_font(CJK, size=10)
    lines = _fit(pdf, row.value, VALUE_W, row.max_lines)
    for i, line in enumerate(lines):
        pdf.set_xy(VALUE_X, y + 1 + i * LINE_H)
        pdf.cell(VALUE_W, LINE_H, line)
    bottom = y + max(9.0, 2 + len(lines) * LINE_H)
    pdf.set_draw_color(200, 200, 200)
    pdf.line(MARGIN, bottom, PAGE_W - MARGIN, bottom)
    return bottom + 0.8


def _qr(pdf: FPDF, text: str, x: float, y: float, size: float) -> None:
    """The QR code (error correction M, 4-module quiet zone) as filled rectangles."""
    code = segno.make(text, error="m", micro=False, boost_error=False)
    rows = [list(r) for r in code.matrix_iter(scale=1, border=4)]
    cell = size / len(rows)
    pdf.set_fill_color(255, 255, 255)
    pdf.rect(x, y, size, size, style="F")
    pdf.set_fill_color(0, 0, 0)
    for j, r in enumerate(rows):
        i = 0
        while i < len(r):
            if not r[i]:
                i += 1
                continue
            start = i
            while i < len(r) and r[i]:
                i += 1
            pdf.rect(x + start * cell, y + j * cell, (i - start) * cell, cell, style="F")


def _verification(pdf: FPDF, bundle_size: int, bundle_sm3: str) -> None:
    x, w = MARGIN + QR_SIZE + 6, PAGE_W - 2 * MARGIN - QR_SIZE - 6
    lines: list[tuple[str, float, str]] = [
        (CJK, 9, "扫描二维码可读出作品编号、SM3 哈希值、链标识、交易编号与区块高度。"),
        (CJK, 7.5, "The QR code holds the work ID, SM3 hash, chain ID, transaction ID and block height (JSON)."),
        (CJK, 9, f"证明包（本 PDF 的附件）：{ATTACHMENT_NAME}，{bundle_size} 字节，SM3："),
        (CJK, 7.5, f"Proof bundle (attached to this PDF): {ATTACHMENT_NAME}, {bundle_size} bytes, SM3:"),
        (MONO, 7.5, bundle_sm3),
        (CJK, 9, "离线核验（只需联盟根证书）/ Verify offline with only the consortium root:"),
        (MONO, 7.5, "rongxin works verify-certificate CERT.pdf --root ROOT.pem"),
    ]
    y = QR_Y
    for font, size, text in lines:
        pdf.set_font(font, size=size)
        grey = 0 if size >= 9 else 70
        step = 5.4 if size >= 9 else 4.6
        pdf.set_text_color(grey, grey, grey)
        pdf.set_xy(x, y)
        pdf.cell(w, step, text)
        y += step


def _footer(pdf: FPDF) -> None:
    pdf.set_text_color(110, 110, 110)
    pdf.set_font(CJK, size=7.5)
    pdf.set_xy(MARGIN, 274)
    pdf.multi_cell(PAGE_W - 2 * MARGIN, 3.8,
                   "本证书依据链上登记生成，其内容以所附证明包经联盟根证书离线核验的结果为准。\n"
                   "Generated from the on-chain registration; what it states is proven by the attached "
                   "proof bundle, verified offline against the consortium root certificate.",
                   align="L")


def render_certificate_bytes(facts: CertificateFacts, bundle: bytes) -> bytes:
    """The certificate PDF for ``facts`` carrying ``bundle`` as ``rongxin-proof.zip``."""
    f = checked(facts)
    claims = facts_to_json(facts)
    if not isinstance(bundle, bytes | bytearray) or not bundle:
        raise InvalidFacts("the proof bundle must be non-empty bytes")
    if len(bundle) > MAX_BUNDLE_BYTES:
        raise InvalidFacts(f"the proof bundle is over {MAX_BUNDLE_BYTES} bytes")
    font = find_cjk_font()
    bundle_sm3 = sm3_hex(bytes(bundle))
    when = block_time(f.block_time_ms)
    pdf = FPDF(orientation="P", unit="mm", format="A4")
    pdf.set_auto_page_break(False)
    pdf.set_margins(MARGIN, MARGIN, MARGIN)
    pdf.set_creation_date(when)
    pdf.set_title(f"作品登记证书 Certificate of Work Registration {f.work_id}")
    pdf.set_creator("Rongxin")
    pdf.set_lang("zh-CN")
    pdf.set_display_mode(zoom="fullpage")  # /OpenAction is then only a destination (page 1, /Fit)
    try:
        pdf.add_font(CJK, fname=str(font.path), collection_font_number=font.face)
    except (TTLibError, OSError, ValueError, KeyError, IndexError, AssertionError, struct.error) as exc:
        raise CjkFontMissing(f"{font.path} is not a usable TrueType font ({exc})") from None
    pdf.add_page()
    _header(pdf)
    y = 50.0
    cmap: Container[int] = getattr(pdf.fonts[CJK], "cmap", {})
    for row in _rows(f):
        if not row.mono:
            row = dataclasses.replace(row, value=_visible(row.value[:MAX_LAYOUT_CHARS], cmap))
        y = _row(pdf, y, row)
    _qr(pdf, qr_text(f), MARGIN, QR_Y, QR_SIZE)
    _verification(pdf, len(bundle), bundle_sm3)
    _footer(pdf)
    # the name tree lists names in the order embedded, and PDF wants them sorted
    pdf.embed_file(bytes=claims, basename=FACTS_NAME, modification_date=when, creation_date=when,
                   mime_type="application/json", compress=False,
                   desc=f"Rongxin certificate facts, SM3 {sm3_hex(claims)}")
    pdf.embed_file(bytes=bytes(bundle), basename=ATTACHMENT_NAME, modification_date=when,
                   creation_date=when, mime_type=ATTACHMENT_MIME, compress=False,
                   desc=f"Rongxin proof bundle, SM3 {bundle_sm3}")
    return bytes(pdf.output())


def render_certificate(facts: CertificateFacts, bundle: bytes, out_path: str | Path) -> Path:
    """Writes the certificate to ``out_path`` atomically (a temporary file in the same folder,
    fsync, rename) and returns the path."""
    data = render_certificate_bytes(facts, bundle)
    out = Path(out_path)
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{out.name}.", suffix=".tmp", dir=out.parent)
    except OSError as exc:
        raise OutputError(f"{out}: cannot write the certificate ({exc.strerror or type(exc).__name__})") from None
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, out)
    except OSError as exc:
        Path(tmp).unlink(missing_ok=True)
        raise OutputError(f"{out}: cannot write the certificate ({exc.strerror or type(exc).__name__})") from None
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return out
