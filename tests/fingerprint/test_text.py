"""Text: excerpts and edited copies in Chinese and English match; unrelated text does not."""

from __future__ import annotations

from pathlib import Path

import pytest

from fingerprint.index import LocalIndex, open_index
from fingerprint.service import add_file, query_file
from fingerprint.text import fingerprint_str, tokens

ZH = ("区块链技术为数字版权保护提供了新的思路。作品在创作完成后，作者可以将作品的哈希值和创作时间写入联盟链，"
      "形成不可篡改的存证记录。当发现侵权行为时，权利人可以从链上取得证据，并结合电子数据取证的规范，"
      "向法院提交完整的证据包。法院在审查时，需要核对证据的来源、取证过程是否规范，以及数据是否被修改。"
      "国密算法在这一过程中起着重要作用，SM3用于计算摘要，SM2用于签名，SM4用于加密敏感内容。"
      "隐私计算则允许多个机构在不暴露原始数据的情况下共同完成统计分析，例如多方安全计算和同态加密。")
ZH_OTHER = ("春天来了，山上的桃花开得正好。小河边的柳树发出了嫩绿的新芽，孩子们在田野里放风筝，老人们坐在门口晒太阳。"
            "村里新修了一条水泥路，通向镇上的集市。每逢赶集的日子，街道两旁摆满了蔬菜、水果和各种手工艺品，"
            "热闹非凡。傍晚时分，炊烟袅袅升起，家家户户开始准备晚饭，空气里弥漫着饭菜的香味。")
EN = ("The quick adoption of consortium ledgers in copyright registration changed how evidence is "
      "gathered. A rights holder now records the hash of a work together with a trusted timestamp, "
      "and when an infringing copy appears online, a forensic capture preserves the page, the network "
      "trace and the certificate chain. Courts then check that the capture followed the rules, that "
      "the hashes agree and that nobody altered the data after the fact. Robust fingerprints make it "
      "possible to find copies that were cropped, re-encoded or excerpted, which exact hashes miss.")
EN_OTHER = ("Gardening in small spaces starts with light: most vegetables want six hours of direct sun. "
            "Choose deep containers for tomatoes, shallow trays for lettuce, and water early in the "
            "morning so leaves dry before evening. Compost improves the soil more than any fertiliser, "
            "and a layer of mulch keeps roots cool during the hottest weeks of summer.")


@pytest.fixture(scope="module")
def text_index(tmp_path_factory: pytest.TempPathFactory) -> LocalIndex:
    root = tmp_path_factory.mktemp("txt")
    idx = open_index(root / "index")
    for name, body in (("zh", ZH), ("en", EN)):
        p = root / f"{name}.txt"
        p.write_text(body, "utf-8")
        add_file(p, name, idx)
    return idx


def _q(idx: LocalIndex, tmp: Path, body: str, encoding: str = "utf-8") -> list[str]:
    p = tmp / "q.txt"
    p.write_bytes(body.encode(encoding))
    return [m.work_id for m in query_file(p, idx).matches]


def test_normalisation_ignores_width_case_and_punctuation() -> None:
    assert tokens("ＳＭ３，Hello　World！") == tokens("sm3 hello world")
    assert fingerprint_str(ZH).hashes.tolist() == fingerprint_str(ZH.replace("，", ",").replace("。", "\n")).hashes.tolist()


def test_excerpts_match(text_index: LocalIndex, tmp_path: Path) -> None:
    assert _q(text_index, tmp_path, ZH[40:160]) == ["zh"]
    assert _q(text_index, tmp_path, EN[100:520]) == ["en"]
    assert _q(text_index, tmp_path, ZH[60:200], "gb18030") == ["zh"]


def test_edited_copies_match(text_index: LocalIndex, tmp_path: Path) -> None:
    edited_zh = ZH.replace("区块链技术", "分布式账本技术").replace("法院", "人民法院").replace("例如", "比如")
    edited_en = EN.upper().replace("Courts", "judges").replace("online", "on the web").replace(", ", "; ")
    assert _q(text_index, tmp_path, edited_zh) == ["zh"]
    assert _q(text_index, tmp_path, edited_en) == ["en"]


def test_copy_embedded_in_a_longer_text_matches(text_index: LocalIndex, tmp_path: Path) -> None:
    assert _q(text_index, tmp_path, ZH_OTHER + ZH[:150] + ZH_OTHER) == ["zh"]


def test_unrelated_text_matches_nothing(text_index: LocalIndex, tmp_path: Path) -> None:
    assert _q(text_index, tmp_path, ZH_OTHER) == []
    assert _q(text_index, tmp_path, EN_OTHER) == []
