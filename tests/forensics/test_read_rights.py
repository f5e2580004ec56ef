"""Who may read a stored file, and what a transaction may name to gain that right: a filing
names only files its filer uploaded (the receiving node's countersignature), only in the
manifest's artefact list; a registration only the file the node received from the holder; a
case only its opener's own evidence (docs/works.md §4.2, §5.2, §8)."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest

from forensics.cases import k_case, k_evidence
from forensics.contracts import k_work
from forensics.rules import k_reader, manifest_message, may_read_blob, pledge_message, sign, upload_message
from ledger.node.abci import BAD_PAYLOAD, OK
from tests.node.test_governance import CHAIN

from .conftest import Registry


@pytest.fixture
def work(reg: Registry, media: dict[str, Path]) -> dict[str, Any]:
    prep = reg.registered("holder", media["work"])
    rec: dict[str, Any] = reg.read(k_work(prep.work_id))
    return rec


def resign(reg: Registry, who: str, p: dict[str, Any]) -> dict[str, Any]:
    return dict(p, signature=sign(reg.keys[who], manifest_message(p["manifest"])))


def reads(reg: Registry, sm3: str, *names: str) -> set[str]:
    return {n for n in names if may_read_blob(reg.app.read, sm3, reg.account(n))}


def test_a_filing_cannot_name_a_file_its_filer_did_not_upload(reg: Registry, media: dict[str, Path],
                                                              work: dict[str, Any]) -> None:
    """C2: the legal centre names the registered work's file (which only its holder may read)
    as an artefact of its evidence, signs the manifest itself: refused, nothing granted."""
    reg.user("legal2", "legal")
    p = reg.filing("legal", [media["copy"]], work["work_id"])
    stolen = copy.deepcopy(p)
    stolen["manifest"]["artefacts"].append(dict(stolen["manifest"]["artefacts"][0], name="original.png",
                                                sm3=work["sm3"], size=work["size"], matches=[]))
    swapped = copy.deepcopy(p)
    swapped["manifest"]["artefacts"][0].update(sm3=work["sm3"], size=work["size"])
    own_upload = copy.deepcopy(swapped)  # the legal centre countersigns as if it were a node
    own_upload["manifest"]["upload"] = {"node": "legal", "signature": sign(reg.keys["legal"], upload_message(
        CHAIN, reg.account("legal"), p["evidence_id"], swapped["manifest"]["artefacts"]))}
    # another legal centre's upload (its own countersigned manifest) reused by this one
    theirs = reg.filing("legal2", [media["copy"]], work["work_id"])
    borrowed = copy.deepcopy(theirs)
    borrowed["manifest"]["filer"] = reg.account("legal")
    no_upload = copy.deepcopy(p)
    del no_upload["manifest"]["upload"]
    bad_form = copy.deepcopy(p)
    bad_form["manifest"]["upload"]["node"] = "Node/1"
    for payload, why in [
        (stolen, "manifest.upload is not node c1's signature of these artefacts uploaded by "),
        (swapped, "a filing may name only files its filer uploaded"),
        (own_upload, "countersign.node legal is not a node of this chain"),
        (borrowed, "manifest.upload is not node c1's signature"),
        (no_upload, "manifest: missing field 'upload'"),
        (bad_form, "manifest.upload.node must be a node id"),
    ]:
        code, info = reg.submit("legal", "evidence.file", resign(reg, "legal", payload))
        assert code == BAD_PAYLOAD and why in info, (why, info)
        assert reg.read(k_evidence(payload["evidence_id"])) is None
    assert reg.read(k_reader(work["sm3"], reg.account("legal"))) is None
    assert reads(reg, work["sm3"], "holder", "legal", "legal2", "holder2") == {"holder"}
    # the honest filing is accepted and grants the filer and the holder its own file only
    assert reg.submit("legal", "evidence.file", p) == (OK, "ok")
    copy_sm3 = p["manifest"]["artefacts"][0]["sm3"]
    assert reads(reg, copy_sm3, "holder", "legal", "legal2", "holder2") == {"holder", "legal"}
    assert reads(reg, work["sm3"], "holder", "legal", "legal2") == {"holder"}


def test_a_legal_centre_that_uploads_the_file_itself_may_read_it(reg: Registry, media: dict[str, Path],
                                                                  work: dict[str, Any]) -> None:
    """Holding the bytes is what the countersignature attests: an identical copy found online
    and uploaded by the legal centre is filed, and it may read what it gave."""
    p = reg.filing("legal", [media["work"]], work["work_id"])
    assert p["manifest"]["artefacts"][0]["sm3"] == work["sm3"]
    assert reg.submit("legal", "evidence.file", p) == (OK, "ok")
    assert reads(reg, work["sm3"], "holder", "legal") == {"holder", "legal"}


def test_only_the_manifest_artefact_list_names_files(reg: Registry, media: dict[str, Path],
                                                     work: dict[str, Any]) -> None:
    """I6: a hash elsewhere in the filing (capture facts, a note) names nothing and grants nothing."""
    reg.user("legal2", "legal")
    p = reg.filing("legal2", [media["copy"]], work["work_id"])
    p["manifest"]["capture"]["source"] = f"https://example.org/{work['sm3']}"
    p["manifest"]["artefacts"][0]["note"] = work["sm3"]
    p = dict(resign(reg, "legal2", p), case={"case_id": "c-" + work["sm3"][:8], "parties": [reg.account("holder")],
                                              "note": work["sm3"]})
    assert reg.submit("legal2", "evidence.file", p) == (OK, "ok")
    assert reads(reg, work["sm3"], "legal2") == set()
    assert reads(reg, p["manifest"]["artefacts"][0]["sm3"], "legal2") == {"legal2"}


def test_a_registration_cannot_name_another_holders_file(reg: Registry, media: dict[str, Path],
                                                         work: dict[str, Any]) -> None:
    """works.register: the node countersigns the SM3 of the file it received from this holder;
    naming another holder's file breaks the countersignature (or the pledge) and grants nothing."""
    mine = reg.prepare("holder2", media["other"]).payload
    named = dict(mine, sm3=work["sm3"], size=work["size"])
    named["pledge"] = dict(mine["pledge"], signature=sign(reg.keys["holder2"], pledge_message(
        CHAIN, reg.account("holder2"), work["sm3"], mine["pledge"]["text"])))
    code, info = reg.submit("holder2", "works.register", named)
    assert code == BAD_PAYLOAD and info == "the countersignature is not node c1's signature of this match result"
    assert reads(reg, work["sm3"], "holder2") == set()
    assert reg.submit("holder2", "works.register", mine) == (OK, "ok")
    assert reads(reg, work["sm3"], "holder", "holder2") == {"holder"}


def test_a_case_holds_only_its_openers_own_evidence(reg: Registry, media: dict[str, Path],
                                                    work: dict[str, Any]) -> None:
    """case.open and case.attach (and evidence.file's case) cannot pull another legal centre's
    filing, or its files, into one's own case."""
    reg.user("legal2", "legal")
    p = reg.filing("legal", [media["copy"]], work["work_id"])
    assert reg.submit("legal", "evidence.file", p) == (OK, "ok")
    eid = p["evidence_id"]
    theirs = f"evidence {eid} was filed by {reg.account('legal')}: only its filer may put it in a case"
    opened = {"case_id": "c-2", "work_id": work["work_id"], "parties": [reg.account("holder")]}
    assert reg.submit("legal2", "case.open", dict(opened, evidence=[eid])) == (BAD_PAYLOAD, theirs)
    assert reg.read(k_case("c-2")) is None
    assert reg.submit("legal2", "case.open", opened) == (OK, "ok")
    assert reg.submit("legal2", "case.attach", {"case_id": "c-2", "evidence_id": eid}) == (BAD_PAYLOAD, theirs)
    assert reg.read(k_case("c-2"))["evidence"] == []
    assert reads(reg, p["manifest"]["artefacts"][0]["sm3"], "legal2") == set()
    # the filer itself may
    assert reg.submit("legal", "case.open", dict(opened, case_id="c-1", evidence=[eid])) == (OK, "ok")
