"""The registration certificate PDF: what it shows (read back with poppler and zbar, the tools a
court's expert has), its embedded proof bundle, and every refusal of a bad input."""

from __future__ import annotations

import dataclasses
import io
import json
import os
import re
import secrets
import shutil
import subprocess
import zlib
from pathlib import Path

import pytest
from fpdf import FPDF
from pypdf import PdfReader

from forensics.certificate import (
    ATTACHMENT_NAME,
    FACTS_NAME,
    CertificateFacts,
    CjkFontMissing,
    ConflictFact,
    DamagedPdf,
    InvalidFacts,
    NoAttachment,
    NotACertificate,
    OutputError,
    TooLarge,
    UnreadableFile,
    beijing_text,
    extract_bundle,
    extract_bundle_from_file,
    facts_from_json,
    facts_to_json,
    find_cjk_font,
    qr_text,
    read_certificate,
    read_pdf_file,
    render_certificate,
    render_certificate_bytes,
    utc_text,
)
from ledger.crypto import sm3_hex

TITLE_ZH = "月光下的凤尾竹（第二乐章）"
SM3 = sm3_hex(b"the work file")
TX = sm3_hex(b"the registration transaction")
WORK = "w-" + sm3_hex(b"the work id")[:40]
FACTS = CertificateFacts(
    work_id=WORK, title=TITLE_ZH, work_type="音乐 music", authors=("张三", "Li Si"),
    creation_date="2026-11-30", licence="CC BY-NC 4.0；署名-非商业性使用", sm3=SM3,
    holder_cn="holder", holder_org="星河唱片 Galaxy Records", chain="rongxin-local", tx_id=TX,
    height=41, block_time_ms=1_796_437_931_123,
    conflicts=(ConflictFact("w-aaa1", "sm3", 1000, "contract"), ConflictFact("w-bbb2", "audio", 1834)))
BUNDLE = b"PK\x03\x04" + secrets.token_bytes(30_000)

needs = [t for t in ("pdftoppm", "zbarimg", "pdftotext") if shutil.which(t) is None]
assert not needs, f"{needs} missing: `make test` installs poppler-utils and zbar-tools"


def _run(*args: str) -> str:
    return subprocess.run(args, capture_output=True, text=True, check=True, timeout=60).stdout


def qr_of(pdf: Path) -> dict[str, object]:
    _run("pdftoppm", "-png", "-r", "200", str(pdf), str(pdf.with_suffix("")))
    pages = sorted(pdf.parent.glob(pdf.stem + "*.png"))
    assert len(pages) == 1, "the certificate is one page"
    out = _run("zbarimg", "-q", "--raw", str(pages[0]))
    first = out.strip().splitlines()[0]
    doc = json.loads(first)
    assert isinstance(doc, dict)
    return doc


def text_of(pdf: Path) -> str:
    return _run("pdftotext", "-enc", "UTF-8", str(pdf), "-")


def words_of(pdf: Path) -> tuple[float, float, list[tuple[str, float, float, float, float]]]:
    """(page width, page height, [(word, xmin, ymin, xmax, ymax)]) in points, from -bbox."""
    html = _run("pdftotext", "-bbox", "-enc", "UTF-8", str(pdf), "-")
    page = re.search(r'<page width="([\d.]+)" height="([\d.]+)"', html)
    assert page
    words = [(w, float(a), float(b), float(c), float(d)) for a, b, c, d, w in re.findall(
        r'<word xMin="([\d.]+)" yMin="([\d.]+)" xMax="([\d.]+)" yMax="([\d.]+)">(.*?)</word>', html)]
    return float(page.group(1)), float(page.group(2)), words


@pytest.fixture(scope="module")
def cert(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return render_certificate(FACTS, BUNDLE, tmp_path_factory.mktemp("cert") / "cert.pdf")


def test_a_one_page_pdf(cert: Path) -> None:
    data = cert.read_bytes()
    assert data.startswith(b"%PDF-")
    assert len(PdfReader(io.BytesIO(data)).pages) == 1
    assert not list(cert.parent.glob(".*tmp")), "no temporary file left beside it"


def test_qr_decodes_to_the_registration_json(cert: Path) -> None:
    doc = qr_of(cert)
    assert doc == {"work_id": WORK, "sm3": SM3, "chain": "rongxin-local", "tx_id": TX, "height": 41, "v": 1}
    assert qr_text(FACTS) == json.dumps(doc, sort_keys=True, separators=(",", ":"))


def test_text_holds_chinese_title_hash_holder_and_both_times(cert: Path) -> None:
    text = text_of(cert)
    for expected in (TITLE_ZH, SM3, TX, WORK, "rongxin-local", "星河唱片 Galaxy Records", "holder",
                     "张三; Li Si", "作品登记证书", "Certificate of Work Registration", "41",
                     "2026-12-05 02:32:11.123 UTC", "2026-12-05 10:32:11.123 (UTC+08:00)",
                     ATTACHMENT_NAME, sm3_hex(BUNDLE), f"{len(BUNDLE)}", "Conflicts recorded",
                     "2: w-aaa1 (sm3 1.000, contract); w-bbb2 (audio 1.834)"):
        assert expected in text, expected
    assert "none" in text_of(render_certificate(dataclasses.replace(FACTS, conflicts=()), BUNDLE,
                                                cert.with_name("none.pdf")))


def test_times_utc_and_beijing() -> None:
    assert utc_text(0) == "1970-01-01 00:00:00.000 UTC"
    assert beijing_text(0) == "1970-01-01 08:00:00.000 (UTC+08:00)"
    # 16:00 UTC is already the next day in Beijing
    ms = 1_796_486_400_007  # 2026-12-05 16:00:00.007 UTC
    assert utc_text(ms) == "2026-12-05 16:00:00.007 UTC"
    assert beijing_text(ms) == "2026-12-06 00:00:00.007 (UTC+08:00)"


def test_attachment_round_trips_byte_for_byte(cert: Path) -> None:
    assert extract_bundle(cert.read_bytes()) == BUNDLE
    assert extract_bundle_from_file(cert) == BUNDLE
    # an independent reader sees the same named attachment, with the SM3 in its description
    reader = PdfReader(str(cert))
    assert reader.attachments[ATTACHMENT_NAME] == [BUNDLE]
    names = reader.trailer["/Root"]["/Names"]["/EmbeddedFiles"]["/Names"]
    specs = {str(names[i]): names[i + 1].get_object() for i in range(0, len(names), 2)}
    assert [str(names[i]) for i in range(0, len(names), 2)] == [FACTS_NAME, ATTACHMENT_NAME], "sorted"
    assert specs[ATTACHMENT_NAME]["/Desc"] == f"Rongxin proof bundle, SM3 {sm3_hex(BUNDLE)}"
    claims = reader.attachments[FACTS_NAME][0]
    assert specs[FACTS_NAME]["/Desc"] == f"Rongxin certificate facts, SM3 {sm3_hex(claims)}"
    assert json.loads(claims) == {**dataclasses.asdict(FACTS), "authors": ["张三", "Li Si"], "v": 2, "conflicts": [
        {"work_id": "w-aaa1", "kind": "sm3", "score_milli": 1000, "source": "contract"},
        {"work_id": "w-bbb2", "kind": "audio", "score_milli": 1834, "source": "node"}]}
    # a version-1 document (before conflicts were stated) reads as stating none
    v1 = json.loads(claims)
    del v1["conflicts"]
    v1["v"] = 1
    assert facts_from_json(json.dumps(v1).encode()) == dataclasses.replace(FACTS, conflicts=())


def test_read_certificate_gives_the_stated_facts_exactly(cert: Path, tmp_path: Path) -> None:
    got = read_certificate(read_pdf_file(cert))
    assert got.facts == FACTS and got.bundle == BUNDLE
    # the facts are kept as given (not shortened, controls kept), while the page shows them cut
    facts = dataclasses.replace(FACTS, title=METACHARS * 100 + "\n\x00\ud800", authors=())
    pdf = render_certificate(facts, b"b", tmp_path / "f.pdf")
    assert read_certificate(pdf.read_bytes()).facts == facts
    assert facts_from_json(facts_to_json(facts)) == facts


def test_refuses_changed_or_malformed_stated_facts(cert: Path) -> None:
    data = cert.read_bytes()
    claims = facts_to_json(FACTS)
    assert data.count(claims) == 1
    changed = claims.replace(b'"height":41', b'"height":42')
    with pytest.raises(DamagedPdf, match="does not match the SM3"):
        read_certificate(data.replace(claims, changed))
    for bad in (b"[]", b"{", b'{"v":2}', b'{"v":3}', claims.replace(b'"v":2', b'"v":2,"x":0'), b"\xff",
                claims.replace(b'"v":2', b'"v":1'), claims.replace(b'"source":"node"', b'"source":"me"'),
                claims.replace(b'"score_milli":1834', b'"score_milli":-1'),
                claims.replace(b',"source":"node"', b''),
                claims.replace(b'"height":41', b'"height":true'), b"[" * 100_000):
        with pytest.raises(InvalidFacts):
            facts_from_json(bad)
    with pytest.raises(NoAttachment, match=FACTS_NAME):
        read_certificate(plain_pdf(bytes=b"z", basename=ATTACHMENT_NAME, desc=f"SM3 {sm3_hex(b'z')}"))


@pytest.mark.parametrize("bundle", [b"\x00", bytes(range(256)) * 3, secrets.token_bytes(1 << 20)])
def test_round_trip_of_any_bundle(bundle: bytes) -> None:
    assert extract_bundle(render_certificate_bytes(FACTS, bundle)) == bundle


def test_same_facts_same_bytes() -> None:
    assert render_certificate_bytes(FACTS, BUNDLE) == render_certificate_bytes(FACTS, BUNDLE)


METACHARS = ("(unbalanced \\) \\\\ <b>bold</b> &amp; <script>alert(1)</script> %%EOF endstream "
             "endobj /JavaScript << /S /Launch >> {{x}} $(rm -rf /) **md** --x-- 《书名》")


def test_metacharacters_are_drawn_as_text(tmp_path: Path) -> None:
    facts = dataclasses.replace(FACTS, title=METACHARS + "\n\r\tline2\x00\x1b[31m",
                                authors=("O'Brien \"Q\"", "<i>x</i>"), licence="\\u0041 %s %n {0}")
    pdf = render_certificate(facts, BUNDLE, tmp_path / "m.pdf")
    text = " ".join(text_of(pdf).split())
    assert METACHARS in text
    assert "line2 [31m" in text, "control characters become spaces"
    assert "O'Brien \"Q\"; <i>x</i>" in text and "\\u0041 %s %n {0}" in text
    assert qr_of(pdf)["work_id"] == WORK
    assert extract_bundle(pdf.read_bytes()) == BUNDLE
    raw = pdf.read_bytes()
    # no actions anywhere in the document's structure (the text above is only in streams)
    reader = PdfReader(io.BytesIO(raw))
    root = reader.trailer["/Root"]
    assert "/AA" not in root and "/AcroForm" not in root
    assert set(root["/Names"]) == {"/EmbeddedFiles"}, "no /JavaScript name tree"
    page = reader.pages[0]
    assert "/Annots" not in page and "/AA" not in page
    opening = root["/OpenAction"]
    assert [str(x) for x in opening[1:]] == ["/Fit"], "the only opening 'action' is a view of page 1"


@pytest.mark.parametrize("title", [
    "长" * 5000,
    "Supercalifragilistic" * 300,  # one word, no spaces
    ("A very long title with many words " * 200).strip(),
])
def test_long_values_stay_on_one_page_inside_their_rows(tmp_path: Path, title: str) -> None:
    title += " QQTAIL"
    many = tuple(ConflictFact(f"w-{i:020x}", "orb", 1000 + i) for i in range(64))
    facts = dataclasses.replace(FACTS, title=title, licence=title, authors=(title,) * 10,
                                holder_org=title, conflicts=many, work_id="W" * 128, tx_id="T" * 128)
    pdf = render_certificate(facts, BUNDLE, tmp_path / "long.pdf")  # (its time: `rongxin bench evidence`)
    assert len(PdfReader(str(pdf)).pages) == 1
    width, height, words = words_of(pdf)
    for w, x0, y0, x1, y1 in words:
        assert 0 < x0 and x1 <= width - 40 and 0 < y0 and y1 <= height - 20, (w, x0, x1, y1)
    text = text_of(pdf)
    assert title[:10] in text and "…" in text
    assert "QQTAIL" not in text
    # the title's lines end above the next field's label
    next_label = min(y0 for w, _, y0, _, _ in words if w == "作品类型")
    title_bottom = max(y1 for w, _, _, _, y1 in words if w and w[0] == title[0] and y1 < next_label + 30)
    assert title_bottom <= next_label + 0.5
    for expected in (SM3, "2026-12-05 10:32:11.123 (UTC+08:00)", "64: w-00000000000000000000 (orb 1.000)"):
        assert expected in text
    # the tallest rows still end above the QR code and its explanation
    qr_top = min(y0 for w, _, y0, _, _ in words if w.startswith("扫描二维码"))
    assert max(y1 for w, _, _, _, y1 in words if w.startswith("64:") or w.startswith("w-")) < qr_top
    assert qr_of(pdf)["sm3"] == SM3


def test_rendering_embeds_only_the_glyphs_used(tmp_path: Path) -> None:
    """The size; the time is measured by `rongxin bench evidence` (register_certificate_s), not
    asserted here."""
    data = render_certificate_bytes(FACTS, BUNDLE)
    assert len(data) - len(BUNDLE) < 120_000, "only the glyphs used are embedded"


# ---- refusals ----------------------------------------------------------------------------------

def plain_pdf(**embed: object) -> bytes:
    pdf = FPDF()
    pdf.add_page()
    pdf.set_font("Helvetica", size=12)
    pdf.cell(text="no attachment here")
    if embed:
        pdf.embed_file(**embed)  # type: ignore[arg-type]
    return bytes(pdf.output())


def test_refuses_a_pdf_without_the_attachment() -> None:
    with pytest.raises(NoAttachment):
        extract_bundle(plain_pdf())
    with pytest.raises(NoAttachment):  # an attachment under another name
        extract_bundle(plain_pdf(bytes=b"x" * 10, basename="other.zip", desc=f"SM3 {sm3_hex(b'x' * 10)}"))


@pytest.mark.parametrize("cut", [0.1, 0.5, 0.9, 0.999])
def test_refuses_a_truncated_pdf(cert: Path, cut: float) -> None:
    data = cert.read_bytes()
    with pytest.raises(DamagedPdf):
        extract_bundle(data[: int(len(data) * cut)])


def test_refuses_a_pdf_cut_in_the_middle_with_its_end_kept(cert: Path) -> None:
    data = cert.read_bytes()
    for a in (len(data) // 4, len(data) // 2):
        with pytest.raises(DamagedPdf):
            extract_bundle(data[:a] + data[a + 5000:])


def test_refuses_a_changed_attachment_byte(cert: Path) -> None:
    data = bytearray(cert.read_bytes())
    i = data.index(BUNDLE[100:140]) + 5
    data[i] ^= 0x01
    with pytest.raises(DamagedPdf, match="does not match the SM3"):
        extract_bundle(bytes(data))


def test_refuses_what_is_not_a_pdf() -> None:
    for junk in (b"", b"PK\x03\x04" + BUNDLE, b"%PDX-1.7\n%%EOF"):
        with pytest.raises(NotACertificate):
            extract_bundle(junk)
    with pytest.raises(DamagedPdf):
        extract_bundle(b"%PDF-1.7\n garbage \n%%EOF\n")


def test_refuses_oversized_pdf_and_bundle(cert: Path, tmp_path: Path) -> None:
    data = cert.read_bytes()
    with pytest.raises(TooLarge):
        extract_bundle(data, max_pdf_bytes=len(data) - 1)
    with pytest.raises(TooLarge):
        extract_bundle(data, max_bundle_bytes=len(BUNDLE) - 1)
    assert extract_bundle(data, max_bundle_bytes=len(BUNDLE)) == BUNDLE
    with pytest.raises(TooLarge):
        extract_bundle_from_file(cert, max_pdf_bytes=1000)


def test_a_compressed_attachment_is_read_with_an_output_bound() -> None:
    small = secrets.token_bytes(5000)
    pdf = plain_pdf(bytes=small, basename=ATTACHMENT_NAME, compress=True, desc=f"SM3 {sm3_hex(small)}")
    assert b"/FlateDecode" in pdf
    assert extract_bundle(pdf) == small
    zeros = bytes(8 << 20)  # compresses to ~8 KB: a bomb for a 1 MB bound
    bomb = plain_pdf(bytes=zeros, basename=ATTACHMENT_NAME, compress=True, desc=f"SM3 {sm3_hex(zeros)}")
    assert len(bomb) < 100_000
    with pytest.raises(TooLarge):
        extract_bundle(bomb, max_bundle_bytes=1 << 20)
    assert len(zlib.compress(zeros)) < 100_000


def test_refuses_an_attachment_whose_description_has_no_sm3() -> None:
    with pytest.raises(DamagedPdf, match="holds no SM3"):
        extract_bundle(plain_pdf(bytes=b"abc", basename=ATTACHMENT_NAME, desc="just a zip"))


def test_files_that_cannot_be_read(tmp_path: Path) -> None:
    with pytest.raises(UnreadableFile):
        extract_bundle_from_file(tmp_path)
    with pytest.raises(UnreadableFile):
        extract_bundle_from_file(tmp_path / "missing.pdf")
    with pytest.raises(UnreadableFile):
        extract_bundle_from_file("/dev/zero")


@pytest.mark.parametrize("change", [
    {"sm3": "AB" * 32}, {"sm3": "ab" * 31}, {"sm3": 5}, {"height": True}, {"height": -1},
    {"block_time_ms": 10**15}, {"chain": "bad chain"}, {"work_id": ""}, {"work_id": "a b"},
    {"tx_id": "x" * 129}, {"title": b"bytes"}, {"authors": "one string"}, {"authors": ("a",) * 65},
    {"authors": (1,)}, {"conflicts": (ConflictFact("w-b", "sm3", 1), ConflictFact("w-a", "sm3", 1))},
    {"conflicts": (ConflictFact("w a", "sm3", 1),)}, {"conflicts": (ConflictFact("w-a", "SM3", 1),)},
    {"conflicts": (ConflictFact("w-a", "sm3", 10**9 + 1),)}, {"conflicts": (ConflictFact("w-a", "sm3", 1, "x"),)},
    {"conflicts": (ConflictFact("w-a", "sm3", 1),) * 2}, {"conflicts": [("w-a", "sm3", 1, "node")]},
])
def test_bad_facts_are_refused(change: dict[str, object], tmp_path: Path) -> None:
    with pytest.raises(InvalidFacts):
        render_certificate(dataclasses.replace(FACTS, **change), BUNDLE, tmp_path / "x.pdf")  # type: ignore[arg-type]
    assert not list(tmp_path.iterdir())


def test_facts_over_a_mebibyte_are_refused() -> None:
    with pytest.raises(InvalidFacts, match="over 1048576 bytes"):
        render_certificate_bytes(dataclasses.replace(FACTS, title="长" * 200_000), BUNDLE)


def test_bad_bundles_and_outputs_are_refused(tmp_path: Path) -> None:
    with pytest.raises(InvalidFacts):
        render_certificate_bytes(FACTS, b"")
    with pytest.raises(InvalidFacts):
        render_certificate_bytes(FACTS, "text")  # type: ignore[arg-type]
    with pytest.raises(OutputError):
        render_certificate(FACTS, BUNDLE, tmp_path / "no-such-folder" / "c.pdf")


def test_a_missing_cjk_font_is_a_typed_error(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    with pytest.raises(CjkFontMissing, match="fonts-wqy-zenhei"):
        find_cjk_font(env={}, candidates=(str(tmp_path / "none.ttc"),))
    monkeypatch.setenv("RONGXIN_CJK_FONT", str(tmp_path / "none.ttf"))
    with pytest.raises(CjkFontMissing, match="RONGXIN_CJK_FONT"):
        render_certificate_bytes(FACTS, BUNDLE)
    otf = tmp_path / "font.otf"
    otf.write_bytes(b"OTTO")
    monkeypatch.setenv("RONGXIN_CJK_FONT", str(otf))
    with pytest.raises(CjkFontMissing, match="TrueType"):
        render_certificate_bytes(FACTS, BUNDLE)
    for junk in (b"junk", Path(find_cjk_font(env={}).path).read_bytes()[:100_000]):
        bad = tmp_path / "bad.ttc"
        bad.write_bytes(junk)
        monkeypatch.setenv("RONGXIN_CJK_FONT", str(bad))
        with pytest.raises(CjkFontMissing, match="not a usable TrueType font"):
            render_certificate_bytes(FACTS, BUNDLE)
    monkeypatch.setenv("RONGXIN_CJK_FONT", str(find_cjk_font(env={}).path))
    assert render_certificate_bytes(FACTS, BUNDLE).startswith(b"%PDF-")
    assert os.environ["RONGXIN_CJK_FONT"].endswith(".ttc")


def test_changed_bytes_anywhere_give_the_bundle_or_a_typed_error(cert: Path) -> None:
    import random

    from forensics.certificate import CertificatePdfError

    data = cert.read_bytes()
    rng = random.Random(12)
    outcomes: dict[str, int] = {}
    for _ in range(300):
        d = bytearray(data)
        for _ in range(rng.choice([1, 3, 20])):
            d[rng.randrange(len(d))] = rng.randrange(256)
        try:
            assert extract_bundle(bytes(d)) == BUNDLE, "a bundle comes back only unchanged"
            outcome = "bundle"
        except CertificatePdfError as exc:
            outcome = type(exc).__name__
        outcomes[outcome] = outcomes.get(outcome, 0) + 1
    assert outcomes.get("DamagedPdf", 0) > 50 and outcomes.get("bundle", 0) > 10, outcomes


def test_characters_the_font_lacks_do_not_stop_rendering(tmp_path: Path) -> None:
    odd = "🎵 \ud800 \uffff \u202e RTL a\u0301 𠀀"
    pdf = render_certificate(dataclasses.replace(FACTS, title=odd + " 标题", holder_cn=odd), BUNDLE,
                             tmp_path / "odd.pdf")
    text = text_of(pdf)
    assert "RTL" in text and "标题" in text
    assert "□ □ □ □ RTL" in text and "a□ □" in text, "each character the font lacks shows as a white square"
    assert qr_of(pdf)["tx_id"] == TX


def test_longest_identifiers_fit_and_the_qr_still_scans(tmp_path: Path) -> None:
    work, tx = "W" + "0123456789abcdef" * 7 + "x" * 15, "T" + "fedcba9876543210" * 7 + "y" * 15
    assert len(work) == len(tx) == 128
    facts = dataclasses.replace(FACTS, work_id=work, tx_id=tx, chain="c" * 64, height=2**63 - 1,
                                block_time_ms=253402271999999)
    pdf = render_certificate(facts, BUNDLE, tmp_path / "ids.pdf")
    doc = qr_of(pdf)
    assert (doc["work_id"], doc["tx_id"], doc["chain"], doc["height"]) == (work, tx, "c" * 64, 2**63 - 1)
    text = text_of(pdf)
    for ident in (work, tx):  # two lines of 64-66 characters each, nothing cut
        assert ident[:64] in text and ident[-62:] in text, ident
    assert "..." not in text
    assert "9999-12-31 15:59:59.999 UTC" in text and "9999-12-31 23:59:59.999 (UTC+08:00)" in text
    with pytest.raises(InvalidFacts, match="block_time_ms"):
        render_certificate_bytes(dataclasses.replace(facts, block_time_ms=253402271999999 + 1), BUNDLE)


def _with_tree(cert: Path, make_tree: object) -> bytes:
    """The certificate rewritten by pypdf with its /EmbeddedFiles tree replaced."""
    from pypdf import PdfWriter
    from pypdf.generic import NameObject

    writer = PdfWriter(clone_from=str(cert))
    names = writer._root_object["/Names"]
    flat = names["/EmbeddedFiles"]["/Names"]
    names[NameObject("/EmbeddedFiles")] = make_tree(writer, flat)  # type: ignore[operator]
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


def test_a_name_tree_with_kids_is_walked_and_a_cyclic_one_refused(cert: Path) -> None:
    from pypdf.generic import ArrayObject, DictionaryObject, NameObject

    def kids(writer, flat):  # type: ignore[no-untyped-def]
        leaves = [DictionaryObject({NameObject("/Names"): ArrayObject(flat[i:i + 2])})
                  for i in range(0, len(flat), 2)]
        mid = DictionaryObject({NameObject("/Kids"): ArrayObject([writer._add_object(x) for x in leaves])})
        return DictionaryObject({NameObject("/Kids"): ArrayObject([writer._add_object(mid)])})

    assert read_certificate(_with_tree(cert, kids)).bundle == BUNDLE

    def cycle(writer, flat):  # type: ignore[no-untyped-def]
        node = DictionaryObject()
        ref = writer._add_object(node)
        node[NameObject("/Kids")] = ArrayObject([ref])
        return ref

    with pytest.raises(DamagedPdf, match="too deep"):
        extract_bundle(_with_tree(cert, cycle))
