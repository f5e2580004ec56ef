"""What a statement's transaction names as its files (docs/evidence-format.md §5, check
``artefacts``): a filing names exactly its manifest's artefact list (hash and size), a
registration its ``sm3`` and ``size``; a hash elsewhere in a filing names nothing."""

from __future__ import annotations

from typing import Any

import pytest

from forensics.package.format import named_artefacts
from forensics.verify_chain import CheckFailed
from forensics.verify_ledger import _artefacts

A, B, W = "a" * 64, "b" * 64, "c" * 64


def filing(**capture: Any) -> dict[str, Any]:
    return {"evidence_id": "e-1", "signature": "00", "case": {"case_id": "c-" + W, "note": W},
            "manifest": {"artefacts": [{"name": "copy.jpg", "sm3": A, "size": 10, "note": B, "matches": []}],
                         "capture": {"source": f"https://example.org/{W}", **capture}, "work_id": "w-" + W[:20],
                         "upload": {"node": "c1", "signature": W}}}


def test_a_filing_names_only_its_manifest_artefacts() -> None:
    assert named_artefacts("evidence.file", filing()) == {A: 10}
    assert named_artefacts("works.register", {"sm3": W, "size": 7, "fingerprints": A, "attributes": {"title": B}}) \
        == {W: 7}
    assert named_artefacts("kv.set", {"key": "k", "value": f"{A} {B}"}) == {A: None, B: None}
    for bad in (None, [], {"manifest": []}, {"manifest": {"artefacts": {}}}):
        assert named_artefacts("evidence.file", bad) == {}
    assert named_artefacts("evidence.file", {"manifest": {"artefacts": [{"sm3": A, "size": True}, "x"]}}) == {}


def statement(members: dict[str, Any], *names: str) -> None:
    _artefacts(members, {"artefacts": list(names), "tx": "f" * 64}, {"type": "evidence.file", "payload": filing()})


def test_the_verifier_refuses_an_artefact_named_outside_the_artefact_list() -> None:
    statement({"artefacts/copy.jpg": {"sm3": A, "size": 10}}, "artefacts/copy.jpg")
    for sm3 in (W, B):  # in the capture facts, the case, the upload's signature; an artefact's note
        with pytest.raises(CheckFailed, match="its SM3 is not named by transaction"):
            statement({"artefacts/work.png": {"sm3": sm3, "size": 10}}, "artefacts/work.png")
    with pytest.raises(CheckFailed, match="its size is not the 10 bytes"):
        statement({"artefacts/copy.jpg": {"sm3": A, "size": 11}}, "artefacts/copy.jpg")
