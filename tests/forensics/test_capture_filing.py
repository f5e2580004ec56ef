"""A browser capture filed as evidence (docs/works.md §4.3), through a real ledger application:
its works are only known after matching, so one ``evidence.file`` names every work any of its
files matched (``manifest.works``), each file with its role, and opens or joins one case per
matched work (``cases``). The capture itself is made of real files here (the browser side is
``forensics.capture``'s, tested with Chromium after the merge)."""

from __future__ import annotations

import copy
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest

from forensics.capture_filing import (
    CaptureFile,
    capture_facts,
    capture_files,
    file_capture,
    match_rows,
    safe_name,
)
from forensics.cases import k_case, k_evidence
from forensics.rules import manifest_message, may_read_blob, sign
from forensics.service import FilingError
from ledger.crypto import sm3_file
from ledger.node.abci import BAD_PAYLOAD, OK

from .conftest import Registry, picture


@dataclass(frozen=True)
class Art:  # the fields of forensics.capture.Artefact
    name: str
    path: Path
    sm3: str
    size: int
    media_type: str
    role: str


@dataclass(frozen=True)
class Page:  # the fields of forensics.capture.CaptureResult
    url: str
    final_url: str | None
    artefacts: tuple[Art, ...]
    resources: tuple[Art, ...]
    facts: dict[str, Any]


def art(path: Path, role: str, name: str | None = None) -> Art:
    return Art(name or path.name, path, sm3_file(path).hex(), path.stat().st_size, "application/octet-stream", role)


def page(t: Path, work: np.ndarray, *, with_copy: bool = True) -> Page:
    """A capture of a page that shows a cropped, scaled copy of ``work`` among other content."""
    h, w = work.shape[:2]
    copy_img = cv2.resize(work[int(.06 * h):, :int(.95 * w)], None, fx=.65, fy=.65)
    shot = np.full((1400, 1280, 3), 245, np.uint8)
    cv2.putText(shot, "Today's picks", (40, 80), cv2.FONT_HERSHEY_SIMPLEX, 2, (20, 20, 20), 3)
    for k in range(3):
        o = cv2.resize(picture(100 + k), (300, 225))
        shot[140:365, 40 + k * 320:340 + k * 320] = o
    if with_copy:
        ch, cw = copy_img.shape[:2]
        shot[420:420 + ch, 60:60 + cw] = copy_img
    cv2.imwrite(str(t / "screenshot.png"), shot)
    (t / "res").mkdir(exist_ok=True)
    cv2.imwrite(str(t / "res" / "photo.jpg"), copy_img, [cv2.IMWRITE_JPEG_QUALITY, 70])
    cv2.imwrite(str(t / "res" / "other0.jpg"), picture(100))
    (t / "page.warc").write_bytes(b"WARC/1.1\r\nWARC-Type: warcinfo\r\nContent-Length: 0\r\n\r\n\r\n\r\n")
    (t / "page.har").write_text(json.dumps({"log": {"version": "1.2", "entries": []}}))
    (t / "dom.html").write_text("<html><body><h1>Today's picks</h1></body></html>")
    (t / "custody.json").write_text(json.dumps([{"step": "navigate", "t": 1}]))
    arts = [art(t / "screenshot.png", "screenshot"), art(t / "page.warc", "warc"), art(t / "page.har", "har"),
            art(t / "dom.html", "dom"), art(t / "custody.json", "custody")]
    res = [art(t / "res" / "other0.jpg", "resource", "http://127.0.0.1/other0.jpg")]
    if with_copy:
        res.insert(0, art(t / "res" / "photo.jpg", "resource", "http://127.0.0.1/img/photo.jpg"))
    return Page("http://127.0.0.1:1/", "http://127.0.0.1:1/index.html", tuple(arts), tuple(res),
                {"browser": {"version": "120.0", "user_agent": "Chromium"}, "viewport": "1280x800", "ok": True,
                 "list": [1, 2]})


def filed(reg: Registry, pg: Page, cases: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    prep = file_capture(reg.service, capture_files(pg), filer=reg.account("legal"), created_ms=reg.time_ms,
                        capture=capture_facts(pg, where="station"))
    payload: dict[str, Any] = {"evidence_id": prep.evidence_id, "manifest": prep.manifest,
                               "signature": sign(reg.keys["legal"], manifest_message(prep.manifest))}
    if cases is not None:
        payload["cases"] = cases
    payload["_matches"] = prep.matches
    return payload


def submit(reg: Registry, p: dict[str, Any]) -> tuple[int, str]:
    return reg.submit("legal", "evidence.file", {k: v for k, v in p.items() if not k.startswith("_")})


def test_a_capture_is_filed_once_with_a_case_per_matched_work(reg: Registry, tmp_path: Path) -> None:
    work = picture(11)
    cv2.imwrite(str(tmp_path / "work.png"), work)
    wid = reg.registered("holder", tmp_path / "work.png").work_id
    pg = page(tmp_path, work)
    p = filed(reg, pg)
    m = p["manifest"]
    assert m["works"] == [wid] and "work_id" not in m
    roles = {a["name"]: a["role"] for a in m["artefacts"]}
    assert roles == {"screenshot.png": "screenshot", "page.warc": "warc", "page.har": "har", "dom.html": "dom",
                     "custody.json": "custody", "photo.jpg": "resource", "other0.jpg": "resource"}
    by = {a["name"]: a for a in m["artefacts"]}
    assert [x["work_id"] for x in by["photo.jpg"]["matches"]] == [wid]
    shot = by["screenshot.png"]["matches"]  # the picture found inside the larger screenshot, with where
    assert [x["work_id"] for x in shot] == [wid] and shot[0]["method"] == "parts"
    x, y, w, h = shot[0]["region"]
    assert 30 <= x <= 120 and 380 <= y <= 480 and w > 200 and h > 150
    assert by["other0.jpg"]["matches"] == [] and by["dom.html"]["matches"] == []
    assert by["page.warc"]["media_type"] == "application/warc" and by["dom.html"]["media_type"] == "text/html"
    assert all(a["sm3"] == sm3_file(a_path).hex() for a, a_path in
               [(by["screenshot.png"], tmp_path / "screenshot.png"), (by["photo.jpg"], tmp_path / "res" / "photo.jpg")])
    assert m["capture"]["source"] == pg.url and m["capture"]["browser.version"] == "120.0"
    assert m["capture"]["ok"] == "true" and "list" not in m["capture"]
    rows = match_rows(p["_matches"])
    assert {r["artefact"] for r in rows} == {"photo.jpg", "screenshot.png"} and all(r["work_id"] == wid for r in rows)

    holder = reg.account("holder")
    p["cases"] = [{"case_id": "c-cap-1", "work_id": wid, "parties": [holder]}]
    assert submit(reg, p) == (OK, "ok")
    rec = reg.read(k_evidence(p["evidence_id"]))
    assert rec["works"] == [wid] and rec["case_ids"] == ["c-cap-1"] and rec["work_id"] is None
    case = reg.read(k_case("c-cap-1"))
    assert case["work_id"] == wid and case["evidence"] == [p["evidence_id"]] and case["parties"] == [holder]
    assert may_read_blob(reg.app.read, by["screenshot.png"]["sm3"], holder)  # the matched work's holder reads it

    # a second capture of the same page joins the case for the work
    (tmp_path / "again").mkdir()
    p2 = filed(reg, page(tmp_path / "again", work), [{"case_id": "c-cap-1", "work_id": wid}])
    assert submit(reg, p2) == (OK, "ok")
    assert reg.read(k_case("c-cap-1"))["evidence"] == sorted([p["evidence_id"], p2["evidence_id"]])

    # a capture that shows no registered work is filed too, with no work and no case
    (tmp_path / "none").mkdir()
    p3 = filed(reg, page(tmp_path / "none", work, with_copy=False))
    assert p3["manifest"]["works"] == []
    assert submit(reg, p3) == (OK, "ok")
    assert reg.read(k_evidence(p3["evidence_id"]))["case_ids"] == []


def test_capture_filing_refusals(reg: Registry, tmp_path: Path) -> None:
    work = picture(11)
    cv2.imwrite(str(tmp_path / "work.png"), work)
    wid = reg.registered("holder", tmp_path / "work.png").work_id
    other = reg.registered("holder2", _other(tmp_path)).work_id
    p = filed(reg, page(tmp_path, work))

    def resigned(m: dict[str, Any]) -> dict[str, Any]:
        q = copy.deepcopy(p)
        q["manifest"] = m
        q["signature"] = sign(reg.keys["legal"], manifest_message(m))
        return q

    both = dict(p["manifest"], work_id=wid)
    fewer = dict(p["manifest"], works=[])
    more = dict(p["manifest"], works=sorted([wid, other]))
    bad_role = copy.deepcopy(p["manifest"])
    bad_role["artefacts"][0]["role"] = "wallpaper"
    for m, why in ((both, "must name its work (work_id) or"), (fewer, "manifest.works must list exactly"),
                   (more, "manifest.works must list exactly"), (bad_role, "role must be one of")):
        code, info = submit(reg, resigned(m))
        assert code == BAD_PAYLOAD and why in info, info
    holder = reg.account("holder")
    for cases, why in (([{"case_id": "c-x", "work_id": other, "parties": [holder]}], "is not one of the works"),
                       ([{"case_id": "c-x", "work_id": wid, "parties": [holder]},
                         {"case_id": "c-y", "work_id": wid, "parties": [holder]}], "has a case already"),
                       ([{"case_id": "c-x", "work_id": wid}], "give its parties to open it")):
        code, info = submit(reg, dict(p, cases=cases))
        assert code == BAD_PAYLOAD and why in info, info
    code, info = submit(reg, dict(p, case={"case_id": "c-x", "parties": [holder]}))
    assert code == BAD_PAYLOAD and "cases" in info
    assert reg.read(k_evidence(p["evidence_id"])) is None
    with pytest.raises(FilingError, match="unknown role"):
        file_capture(reg.service, [CaptureFile(tmp_path / "dom.html", "d", "wallpaper")], filer=reg.account("legal"),
                     created_ms=1, capture={})
    taken: set[str] = set()
    assert [safe_name(n, taken) for n in ("a b.jpg", "a_b.jpg", "../x", "http://h/p/q.png?x=1", "")] == \
        ["a_b.jpg", "a_b-2.jpg", "x", "q.png_x_1", "artefact"]


def _other(t: Path) -> Path:
    cv2.imwrite(str(t / "other-work.png"), picture(12))
    return t / "other-work.png"


def test_a_manifest_over_its_size_limit_leaves_out_resources_that_matched_nothing(
        reg: Registry, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import forensics.capture_filing as cf
    from ledger.codec import canonical

    work = picture(11)
    cv2.imwrite(str(tmp_path / "work.png"), work)
    wid = reg.registered("holder", tmp_path / "work.png").work_id
    pg = page(tmp_path, work)
    full = filed(reg, pg)["manifest"]
    monkeypatch.setattr(cf, "MAX_MANIFEST_BYTES", len(canonical(full)) - 1)
    p = filed(reg, pg)
    names = [a["name"] for a in p["manifest"]["artefacts"]]
    assert "other0.jpg" not in names and "photo.jpg" in names and p["manifest"]["works"] == [wid]
    assert [s["file"] for s in p["_matches"]] == names
    assert submit(reg, p) == (OK, "ok")  # the node's upload signature covers what is left
