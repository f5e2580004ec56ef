"""Evidence filing by a legal centre (manifest matched against the work, signed, stored by
evidence id) and the case state machine, through a real ledger application."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest

from forensics.cases import k_case, k_evidence
from forensics.rules import manifest_message, may_read_blob, sign
from forensics.service import FilingError
from ledger.node.abci import BAD_PAYLOAD, OK

from .conftest import Registry


@pytest.fixture
def wid(reg: Registry, media: dict[str, Path]) -> str:
    return reg.registered("holder", media["work"]).work_id


def test_filing_matches_the_files_against_the_work(reg: Registry, media: dict[str, Path], wid: str) -> None:
    other = reg.registered("holder2", media["other"]).work_id
    p = reg.filing("legal", [media["copy"], media["other"]], wid)
    arts = {a["name"]: a for a in p["manifest"]["artefacts"]}
    assert arts["copy.jpg"]["matches"][0]["work_id"] == wid and arts["copy.jpg"]["matches"][0]["score_milli"] >= 1000
    assert arts["other.png"]["matches"] == []  # it matches another work, not this one
    assert other
    import cv2

    h, w = cv2.imread(str(media["copy"])).shape[:2]
    x, y, rw, rh = arts["copy.jpg"]["matches"][0]["region"]  # where the work sits in the copy
    assert 0 <= x < w and 0 <= y < h and 0 < rw <= w - x and 0 < rh <= h - y
    assert 0 < arts["copy.jpg"]["matches"][0]["query_share_milli"] <= 1000
    assert arts["copy.jpg"]["media_type"] == "image/jpeg" and arts["copy.jpg"]["size"] == media["copy"].stat().st_size
    assert reg.submit("legal", "evidence.file", p) == (OK, "ok")
    rec = reg.read(k_evidence(p["evidence_id"]))
    assert rec["filer"] == reg.account("legal") and rec["work_id"] == wid and rec["case_id"] is None
    assert rec["manifest"] == p["manifest"] and rec["signature"] == p["signature"]
    for a in rec["manifest"]["artefacts"]:
        assert reg.service.blobs.has(a["sm3"])
    copy_sm3 = arts["copy.jpg"]["sm3"]
    work_sm3 = reg.read(f"works/w/{wid}".encode())["sm3"]
    readers = {n for n in ("holder", "holder2", "legal", "court", "nobody")
               if may_read_blob(reg.app.read, copy_sm3, reg.account(n))}
    assert readers == {"holder", "legal", "court"}  # filer, the work's holder, a court; not others
    assert {n for n in ("holder", "holder2", "legal") if may_read_blob(reg.app.read, work_sm3, reg.account(n))} \
        == {"holder"}
    same = reg.service.file_evidence([media["work"]], wid, filer=reg.account("legal"), created_ms=1)
    assert same.manifest["artefacts"][0]["matches"][0]["method"] == "sm3"


def test_filing_refusals(reg: Registry, media: dict[str, Path], wid: str) -> None:
    p = reg.filing("legal", [media["copy"]], wid)
    bad_sig = dict(p, signature=sign(reg.keys["holder"], manifest_message(p["manifest"])))
    forged = copy.deepcopy(p)
    forged["manifest"]["artefacts"][0]["sm3"] = "0" * 64
    unknown = copy.deepcopy(p)
    unknown["manifest"]["work_id"] = "w-none"
    unknown["signature"] = sign(reg.keys["legal"], manifest_message(unknown["manifest"]))
    bad_region = copy.deepcopy(p)
    bad_region["manifest"]["artefacts"][0]["matches"][0]["region"] = [1, 2, 3]
    bad_region["signature"] = sign(reg.keys["legal"], manifest_message(bad_region["manifest"]))
    held = reg.filing("holder", [media["copy"]], wid)
    for who, payload, why in [
        ("holder", held, "only a user of business role 'legal' may file evidence"),
        ("legal", bad_sig, "the manifest is not signed by the sender"),
        ("legal", forged, "the manifest is not signed by the sender"),
        ("legal", unknown, "manifest.work_id w-none is not a registered work"),
        ("legal", bad_region, ".region must be [x, y, w, h]"),
        ("legal", dict(p, evidence_id="other-id"), "manifest.evidence_id differs"),
        ("court", reg.filing("legal", [media["copy"]], wid), "business role 'legal'"),
    ]:
        code, info = reg.submit(who, "evidence.file", payload)
        assert code == BAD_PAYLOAD and why in info, (why, info)
        assert reg.read(k_evidence(payload["evidence_id"])) is None
    assert reg.submit("legal", "evidence.file", p) == (OK, "ok")
    code, info = reg.submit("legal", "evidence.file", p)
    assert code == BAD_PAYLOAD and info == f"evidence {p['evidence_id']} is already filed"
    with pytest.raises(FilingError, match="not in this node's registry"):
        reg.service.file_evidence([media["copy"]], "w-none", filer="x", created_ms=0)
    with pytest.raises(FilingError, match="at least one"):
        reg.service.file_evidence([], wid, filer="x", created_ms=0)


def moves(reg: Registry, cid: str, *steps: tuple[str, str]) -> list[tuple[int, str]]:
    return [reg.submit(who, "case.move", {"case_id": cid, "to": to, "note": f"{who} -> {to}"}) for who, to in steps]


def test_case_lifecycle_settled(reg: Registry, media: dict[str, Path], wid: str) -> None:
    infringer = reg.account("nobody")
    p = reg.filing("legal", [media["copy"]], wid, case_id="case-1", parties=[infringer, reg.account("holder")])
    assert reg.submit("legal", "evidence.file", p) == (OK, "ok")
    c = reg.read(k_case("case-1"))
    assert c["state"] == "open" and c["evidence"] == [p["evidence_id"]] and c["work_id"] == wid
    assert reg.read(k_evidence(p["evidence_id"]))["case_id"] == "case-1"
    p2 = reg.filing("legal", [media["copy"]], wid, case_id="case-1")
    assert reg.submit("legal", "evidence.file", p2) == (OK, "ok")
    assert reg.read(k_case("case-1"))["evidence"] == sorted([p["evidence_id"], p2["evidence_id"]])
    assert moves(reg, "case-1", ("legal", "notified"), ("nobody", "settled"), ("legal", "closed")) == [(OK, "ok")] * 3
    c = reg.read(k_case("case-1"))
    assert c["state"] == "closed"
    assert [h["state"] for h in c["history"]] == ["open", "open", "notified", "settled", "closed"]
    assert c["history"][1]["attached"] == p2["evidence_id"] and c["history"][3]["by"] == infringer
    assert all(h["tx"] and h["height"] > 0 for h in c["history"])


def test_case_lifecycle_litigated_and_illegal_moves(reg: Registry, media: dict[str, Path], wid: str) -> None:
    p = reg.filing("legal", [media["copy"]], wid)
    assert reg.submit("legal", "evidence.file", p) == (OK, "ok")
    opened: dict[str, Any] = {"case_id": "c2", "work_id": wid, "parties": [reg.account("nobody")],
                              "evidence": [p["evidence_id"]]}
    code, info = reg.submit("holder", "case.open", opened)
    assert code == BAD_PAYLOAD and "business role 'legal'" in info
    code, info = reg.submit("legal", "case.open", dict(opened, evidence=["e-missing"]))
    assert code == BAD_PAYLOAD and "evidence e-missing is not filed about work" in info
    assert reg.submit("legal", "case.open", opened) == (OK, "ok")
    code, info = reg.submit("legal", "case.open", opened)
    assert code == BAD_PAYLOAD and info == "case c2 already exists"
    refused = [
        (("legal", "settled"), "case c2 is open: it may move to notified, not 'settled'"),
        (("nobody", "notified"), "only the case's opener may move case c2 from open to notified"),
        (("legal", "bogus"), "not 'bogus'"),
    ]
    for step, why in refused:
        code, info = moves(reg, "c2", step)[0]
        assert code == BAD_PAYLOAD and why in info, (why, info)
    assert moves(reg, "c2", ("legal", "notified"), ("nobody", "litigated")) == [(OK, "ok")] * 2
    code, info = moves(reg, "c2", ("holder", "closed"))[0]
    assert code == BAD_PAYLOAD and "opener or court" in info
    assert moves(reg, "c2", ("court", "closed")) == [(OK, "ok")]
    code, info = moves(reg, "c2", ("legal", "open"))[0]
    assert code == BAD_PAYLOAD and "closed is final" in info
    c = reg.read(k_case("c2"))
    assert [h["state"] for h in c["history"]] == ["open", "notified", "litigated", "closed"]
    code, info = reg.submit("legal", "case.attach", {"case_id": "c2", "evidence_id": p["evidence_id"]})
    assert code == BAD_PAYLOAD and info == "case c2 is closed"
    code, info = moves(reg, "nope", ("legal", "notified"))[0]
    assert code == BAD_PAYLOAD and info == "there is no case nope"


def test_filing_lists_every_occurrence_of_a_looped_passage(reg: Registry, tmp_path: Path) -> None:
    """An artefact holding a passage the work plays three times: three match entries, one per
    repeat, each with its offsets in ms (the manifest carries each occurrence)."""
    import numpy as np

    from bench.fingerprint import media as M

    x, starts = M.looped(12, (8, 15, 6, 9), seed=6)
    (tmp_path / "loop.wav").write_bytes(M.wav_bytes(x, 22050))
    wid = reg.registered("holder", tmp_path / "loop.wav", "A loop").work_id
    t0 = starts[1] + 2.0
    (tmp_path / "clip.wav").write_bytes(M.wav_bytes(x[int(t0 * 22050):int((t0 + 8) * 22050)], 22050))
    p = reg.filing("legal", [tmp_path / "clip.wav"], wid)
    ms = p["manifest"]["artefacts"][0]["matches"]
    assert len(ms) == 3 and {m["work_id"] for m in ms} == {wid}
    offsets = sorted(m["work_start_ms"] - m["query_start_ms"] for m in ms)
    assert np.allclose(offsets, [round((s + 2.0) * 1000) for s in starts], atol=100), (offsets, starts)
    assert all(m["score_milli"] >= 1000 and m["duration_ms"] > 0 for m in ms)
    assert reg.submit("legal", "evidence.file", p) == (OK, "ok")  # the contract accepts the entries
