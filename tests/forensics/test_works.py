"""works/1: registration through a real ledger application, conflicts found by the node and
bound by its countersignature, the copyright certificate, and every refusal."""

from __future__ import annotations

import copy
import dataclasses
from pathlib import Path
from typing import Any

import pytest

from fingerprint.errors import EmptyMedia
from forensics.contracts import CERT_CLASS, SYSTEM_ACCOUNT, k_work
from forensics.rules import countersign_message, pledge_message, sign
from forensics.service import FilingError
from ledger.contracts import nft
from ledger.crypto import SM2PrivateKey
from ledger.node.abci import BAD_PAYLOAD, OK
from tests.node.test_governance import CHAIN
from tests.node.test_governance_members import passed

from .conftest import PLEDGE, Registry


def test_registration_records_the_work_and_mints_its_certificate(reg: Registry, media: dict[str, Path]) -> None:
    prep = reg.registered("holder", media["work"], "星空")
    assert prep.conflicts == [] and prep.payload["conflicts"] == []
    rec = reg.read(k_work(prep.work_id))
    assert rec["holder"] == reg.account("holder") and rec["sm3"] == prep.payload["sm3"]
    assert rec["attributes"]["title"] == "星空" and rec["media_type"] == "image/png"
    assert rec["countersign"]["node"] == "c1" and rec["template"] == "works/1"
    assert rec["size"] == media["work"].stat().st_size and len(rec["fingerprints"]) == 64
    tok = nft.token(reg.app.read, CERT_CLASS, prep.work_id)
    assert tok is not None and tok["owner"] == reg.account("holder") and tok["minter"] == SYSTEM_ACCOUNT
    assert tok["meta_hash"] == rec["payload_sm3"]
    assert reg.service.blobs.read(rec["sm3"]) == media["work"].read_bytes()
    assert reg.service.index.info(prep.work_id) is not None


def test_a_second_holder_gets_conflicts_pointing_at_the_first_work(reg: Registry, media: dict[str, Path]) -> None:
    first = reg.registered("holder", media["work"]).work_id
    same = reg.prepare("holder2", media["work"])
    assert [(c["work_id"], c["method"], c["score_milli"]) for c in same.conflicts] == [(first, "sm3", 1000)]
    copy_ = reg.prepare("holder2", media["copy"])
    assert [c["work_id"] for c in copy_.conflicts] == [first] and copy_.conflicts[0]["score"] >= 1.0
    other = reg.prepare("holder2", media["other"])
    assert other.conflicts == []
    assert reg.submit("holder2", "works.register", same.payload) == (OK, "ok")
    # prepared before ``same`` was registered: its index did not cover it, so it is refused
    code, info = reg.submit("holder2", "works.register", copy_.payload)
    assert code == BAD_PAYLOAD and f"but work {same.work_id} was registered at height" in info, info
    assert reg.read(k_work(copy_.work_id)) is None
    for f in ("copy", "other"):
        prep = reg.prepare("holder2", media[f])
        assert reg.submit("holder2", "works.register", prep.payload) == (OK, "ok")
        reg.service.confirm(prep)
        rec = reg.read(k_work(prep.work_id))
        assert rec["countersign"]["index_height"] == prep.payload["countersign"]["index_height"]
        if f == "copy":
            assert [c["work_id"] for c in rec["conflicts"]] == [first]
        else:
            assert rec["conflicts"] == []


def test_the_contract_alone_flags_an_exact_duplicate(reg: Registry, media: dict[str, Path], tmp_path: Path) -> None:
    """A node whose index is empty (restarted without it, or never fed) countersigns no
    conflict for a copy of a registered file: the contract adds it from works/sm3/<sm3>."""
    from fingerprint.index import LocalIndex
    from forensics.service import WorksService
    from ledger.blobs import LocalBlobStore

    first = reg.registered("holder", media["work"]).work_id
    reg.service = WorksService(LocalBlobStore(tmp_path / "b2"), LocalIndex(tmp_path / "i2"), chain=CHAIN,
                               node_id="c1", node_key=reg.keys["c1"])
    blind = reg.prepare("holder2", media["work"])
    assert blind.conflicts == [] and blind.payload["conflicts"] == []
    assert reg.submit("holder2", "works.register", blind.payload) == (OK, "ok")
    rec = reg.read(k_work(blind.work_id))
    assert rec["conflicts"] == [{"method": "sm3", "score_milli": 1000, "source": "contract", "work_id": first}]
    assert reg.read(b"works/sm3/" + rec["sm3"].encode()) == {"height": reg.read(k_work(first))["height"],
                                                               "work_id": first}


def test_stale_or_future_countersignatures_are_refused(reg: Registry, media: dict[str, Path],
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    import forensics.contracts as works_contract

    h = reg.app.height
    future = reg.prepare("holder", media["work"], index_height=h + 1)
    code, info = reg.submit("holder", "works.register", future.payload)
    assert code == BAD_PAYLOAD and info == f"countersign.index_height {h + 1} is not below this block's height {h + 1}"
    monkeypatch.setattr(works_contract, "COUNTERSIGN_MAX_AGE", 2)
    old = reg.prepare("holder", media["work"])
    for _ in range(3):  # three blocks pass, no registration among them
        passed(reg, {"kind": "perms", "set": {"works.countersign": None}})
    code, info = reg.submit("holder", "works.register", old.payload)
    assert code == BAD_PAYLOAD and info.startswith("the countersignature has expired: its index covers height"), info
    fresh = reg.prepare("holder", media["work"])
    assert reg.submit("holder", "works.register", fresh.payload) == (OK, "ok")


def resigned(reg: Registry, payload: dict[str, Any], key: SM2PrivateKey, holder: str) -> dict[str, Any]:
    p = copy.deepcopy(payload)
    p["countersign"].setdefault("index_height", reg.app.height)
    msg = countersign_message(CHAIN, holder, p["work_id"], p["sm3"], p["size"], p["media_type"], p["fingerprints"],
                              p["conflicts"], p["countersign"]["index_height"])
    p["countersign"]["signature"] = sign(key, msg)
    return p


def test_refusals(reg: Registry, media: dict[str, Path]) -> None:
    first = reg.registered("holder", media["work"]).work_id
    prep = reg.prepare("holder2", media["copy"])
    p = prep.payload
    h2 = reg.account("holder2")
    cases: list[tuple[str, dict[str, Any], str]] = [
        ("legal", p, "only a user of business role 'holder' may register works"),
        ("nobody", p, "has no business role"),
        ("holder2", {k: v for k, v in p.items() if k != "countersign"}, "missing field 'countersign'"),
        ("holder2", dict(p, conflicts=[]), "the countersignature is not node c1's signature"),
        ("holder2", dict(p, countersign=dict(p["countersign"], signature="00" * 70)), "not node c1's signature"),
        ("holder2", resigned(reg, dict(p, conflicts=[]), SM2PrivateKey.generate(), h2), "not node c1's signature"),
        ("holder2", dict(p, countersign=dict(p["countersign"], node="ghost")),
         "countersign.node ghost is not a node of this chain"),
        ("holder2", dict(p, pledge={"text": "changed", "signature": p["pledge"]["signature"]}),
         "the originality pledge is not signed by the sender"),
        ("holder2", resigned(reg, dict(p, work_id=first, conflicts=[]), reg.keys["c1"], h2), f"work {first} is already registered"),
        ("holder2", resigned(reg, dict(p, conflicts=[{"method": "x", "score_milli": 1, "work_id": "w-none"}]),
                             reg.keys["c1"], h2), "conflict w-none is not a registered work"),
        ("holder2", dict(p, media_type="Image/PNG"), "media_type must be"),
        ("holder2", dict(p, attributes={"title": "t", "type": "p", "created": "2024-13-01"}), "attributes.created"),
    ]
    for who, payload, why in cases:
        code, info = reg.submit(who, "works.register", payload)
        assert code == BAD_PAYLOAD and why in info, (why, info)
        assert reg.read(k_work(payload.get("work_id", "x"))) is None or payload.get("work_id") == first
    # a key that is no node of the chain: signed with s1's key but claiming c1 fails above;
    # a validator countersigning is fine (another validator than the service's)
    assert reg.submit("holder2", "works.register", resigned(reg, dict(p, countersign={"node": "c2", "signature": ""}),
                                                             reg.keys["c2"], h2)) == (OK, "ok")


def test_governance_narrows_which_nodes_may_countersign(reg: Registry, media: dict[str, Path]) -> None:
    passed(reg, {"kind": "perms", "set": {"works.countersign": {"orgs": ["media-org"]}}})
    prep = reg.prepare("holder", media["work"])
    code, info = reg.submit("holder", "works.register", prep.payload)
    assert code == BAD_PAYLOAD and "node c1 of organisation 'org' is not allowed to register works" in info
    passed(reg, {"kind": "perms", "set": {"works.countersign": {"validators": True}}})
    assert reg.submit("holder", "works.register", prep.payload) == (OK, "ok")


def test_the_certificate_class_cannot_be_squatted(reg: Registry) -> None:
    code, info = reg.submit("holder", "nft.create_class", {"class": CERT_CLASS, "name": "mine"})
    assert code == BAD_PAYLOAD and info == "class copyright is reserved for a system contract"


def test_service_refuses_bad_pledges_and_files(reg: Registry, media: dict[str, Path], tmp_path: Path) -> None:
    acct = reg.account("holder")
    point = reg.keys["holder"].public_key().point
    attrs = {"title": "t", "type": "picture"}
    other_sig = sign(reg.keys["holder2"], pledge_message(CHAIN, acct, "0" * 64, PLEDGE))
    with pytest.raises(FilingError, match="pledge is not signed"):
        reg.service.register_work(media["work"], holder=acct, holder_key=point, attributes=attrs, pledge=PLEDGE,
                                  pledge_signature=other_sig)
    with pytest.raises(FilingError, match="hex"):
        reg.service.register_work(media["work"], holder=acct, holder_key=point, attributes=attrs, pledge=PLEDGE,
                                  pledge_signature="zz")
    with pytest.raises(EmptyMedia):
        reg.service.register_work(media["empty"], holder=acct, holder_key=point, attributes=attrs, pledge=PLEDGE,
                                  pledge_signature=other_sig)
    flat = tmp_path / "flat.png"
    import cv2
    import numpy as np

    assert [p for p in (tmp_path / "blobs").rglob("*") if p.is_file()] == []  # nothing stored
    # a featureless picture is registrable (image format v2): exact hash only, and said so
    cv2.imwrite(str(flat), np.full((200, 200, 3), 128, np.uint8))
    assert reg.prepare("holder", flat).recognition["level"] == "exact-only"


def test_fingerprint_digest_is_stable_and_tells_files_apart(media: dict[str, Path]) -> None:
    from fingerprint.formats import fingerprint_file
    from forensics.media import media_type
    from forensics.service import fingerprint_digest

    a1, a2 = fingerprint_digest(fingerprint_file(media["work"])), fingerprint_digest(fingerprint_file(media["work"]))
    assert a1 == a2 and len(a1) == 64
    assert fingerprint_digest(fingerprint_file(media["copy"])) != a1
    assert fingerprint_digest(fingerprint_file(media["work"], query=True)) != a1  # query side has more
    # the query's colour copy (fingerprint.colours) is not part of the digest
    fp = fingerprint_file(media["work"])
    assert fp.image is not None
    import numpy as np

    thumb = np.zeros((4, 4, 3), np.uint8)
    assert fingerprint_digest(dataclasses.replace(fp, image=dataclasses.replace(fp.image, thumb=thumb))) == a1
    assert media_type(media["copy"].read_bytes()[:16], "image") == "image/jpeg"
    assert media_type(b"hello world", "text") == "text/plain"
    assert media_type(b"\x00\x00\x00\x18ftypisom", "video") == "video/mp4"


def test_a_revoked_node_may_not_countersign(reg: Registry, media: dict[str, Path]) -> None:
    prep = reg.prepare("holder", media["work"])
    by_c2 = resigned(reg, dict(prep.payload, countersign={"node": "c2", "signature": ""}), reg.keys["c2"],
                     reg.account("holder"))
    passed(reg, {"kind": "remove", "node": "c2", "reason": "left the consortium"})
    code, info = reg.submit("holder", "works.register", by_c2)
    assert code == BAD_PAYLOAD and info == "node c2 was revoked; it may not countersign"
    assert reg.submit("holder", "works.register", prep.payload) == (OK, "ok")  # c1 still may
