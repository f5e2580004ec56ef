"""The node runs the contracts' own checks before storing a file or submitting a transaction
(forensics/precheck.py, docs/works.md §6.2), and uploads no ledger record names are swept
(ledger/blobs.py claims)."""

from __future__ import annotations

import copy
import re
from pathlib import Path
from typing import Any

import pytest

from forensics.precheck import check_registration, check_unsigned_filing, contract_refusal
from forensics.rules import FormRefused, k_reader, manifest_message, pledge_message, sign
from ledger.crypto import sm3_file
from ledger.node.abci import BAD_PAYLOAD, OK
from tests.node.test_governance import CHAIN
from tests.node.test_governance_members import passed

from .conftest import PLEDGE, Registry


def point(reg: Registry, who: str) -> bytes:
    return reg.keys[who].public_key().point


def registration_check(reg: Registry, who: str) -> Any:
    return lambda payload: check_registration(reg.gov, reg.app.read, chain=CHAIN, holder=point(reg, who),
                                              payload=payload, height=reg.app.height + 1, time_ms=reg.time_ms)


def register(reg: Registry, who: str, path: Path, pledge: str = PLEDGE) -> Any:
    acct = reg.account(who)
    sig = sign(reg.keys[who], pledge_message(CHAIN, acct, sm3_file(path).hex(), pledge))
    return reg.service.register_work(path, holder=acct, holder_key=point(reg, who), pledge=pledge,
                                     pledge_signature=sig, attributes={"title": "t", "type": "picture"},
                                     check=registration_check(reg, who),
                                     index_height=reg.app.height)  # this test's index follows every registration


def test_a_registration_the_contract_would_refuse_is_refused_before_its_file_is_stored(
        reg: Registry, media: dict[str, Path]) -> None:
    sm3 = sm3_file(media["work"]).hex()
    long_pledge = "我" * 1000  # 1,000 characters pass the route's length check; 3,000 bytes do not pass the contract's
    with pytest.raises(FormRefused, match=r"pledge\.text must be 1 to 2048 bytes of UTF-8, got 3000"):
        register(reg, "holder", media["work"], long_pledge)
    assert not reg.service.blobs.has(sm3)
    with pytest.raises(FormRefused, match="only a user of business role 'holder' may register works"):
        register(reg, "legal", media["work"])
    assert not reg.service.blobs.has(sm3)
    # the consortium narrows which nodes may countersign: this node's countersignature would be refused
    passed(reg, {"kind": "perms", "set": {"works.countersign": {"orgs": ["media-org"]}}})
    with pytest.raises(FormRefused, match="node c1 of organisation 'org' is not allowed to register works"):
        register(reg, "holder", media["work"])
    assert not reg.service.blobs.has(sm3)
    # ... and the governance permission rules come first, as in the block
    passed(reg, {"kind": "perms", "set": {"works.countersign": {"validators": True},
                                          "works.register": {"orgs": ["media-org"]}}})
    with pytest.raises(FormRefused, match=r"permission denied: \w+ may not send works\.register transactions"):
        register(reg, "holder", media["work"])
    passed(reg, {"kind": "perms", "set": {"works.register": None}})
    prep = register(reg, "holder", media["work"])
    assert reg.service.blobs.has(sm3)
    assert reg.submit("holder", "works.register", prep.payload) == (OK, "ok")
    with pytest.raises(FormRefused, match=f"work {prep.work_id} is already registered"):
        registration_check(reg, "holder")(prep.payload)


def test_a_filing_is_checked_by_the_contract_before_and_after_it_is_signed(reg: Registry,
                                                                         media: dict[str, Path]) -> None:
    wid = reg.registered("holder", media["work"]).work_id
    p = reg.filing("legal", [media["copy"]], wid)

    def unsigned(who: str, manifest: dict[str, Any]) -> None:
        check_unsigned_filing(reg.gov, reg.app.read, chain=CHAIN, filer=point(reg, who),
                              evidence_id=manifest["evidence_id"], manifest=manifest, height=reg.app.height + 1,
                              time_ms=reg.time_ms)

    unsigned("legal", p["manifest"])
    for who, manifest, why in [
        ("holder", p["manifest"], "only a user of business role 'legal' may file evidence"),
        ("legal", dict(p["manifest"], capture={"source": "x\ty"}), "manifest.capture.source must not contain control"),
        ("legal", dict(p["manifest"], artefacts=[dict(p["manifest"]["artefacts"][0], name="a\tb.jpg")]),
         "manifest.artefacts[0].name must not contain control characters"),
        ("legal", dict(p["manifest"], artefacts=[dict(p["manifest"]["artefacts"][0], size=1)]),
         "manifest.upload is not node c1's signature"),
    ]:
        with pytest.raises(FormRefused, match=re.escape(why)):
            unsigned(who, manifest)

    def verdict(payload: dict[str, Any]) -> str | None:
        return contract_refusal(reg.gov, reg.app.types, reg.app.read, reg.tx("legal", "evidence.file", payload),
                                height=reg.app.height + 1, time_ms=reg.time_ms)

    assert verdict(p) is None
    bad_case = dict(p, case={"case_id": "c-1"})
    forged = copy.deepcopy(p)
    forged["signature"] = sign(reg.keys["holder"], manifest_message(p["manifest"]))
    for payload in (bad_case, forged):
        why = verdict(payload)
        assert why is not None
        assert reg.submit("legal", "evidence.file", payload) == (BAD_PAYLOAD, why)  # the block's own reason
    assert reg.submit("legal", "evidence.file", p) == (OK, "ok")
    assert verdict(p) == f"evidence {p['evidence_id']} is already filed"


def test_uploads_no_ledger_record_names_are_swept(reg: Registry, media: dict[str, Path]) -> None:
    blobs = reg.service.blobs

    def referenced(sm3: str, account: str) -> bool:
        return reg.app.read(k_reader(sm3, account)) is not None

    kept = register(reg, "holder", media["work"])
    assert reg.submit("holder", "works.register", kept.payload) == (OK, "ok")
    orphan = register(reg, "holder2", media["other"])  # prepared, never submitted
    sms = kept.payload["sm3"], orphan.payload["sm3"]
    assert blobs.claims() == sorted(sms)
    assert blobs.sweep(referenced, 3600) == 0 and blobs.claims() == [orphan.payload["sm3"]]  # settled: kept for good
    assert blobs.has(sms[0]) and blobs.has(sms[1])
    assert blobs.sweep(referenced, 0) == 1
    assert blobs.has(sms[0]) and not blobs.has(sms[1]) and blobs.claims() == []
    # a kept file uploaded again (by someone who never registers it) is not made sweepable
    again = register(reg, "holder2", media["work"])
    assert again.payload["sm3"] == sms[0] and blobs.claims() == []
    assert blobs.sweep(referenced, 0) == 0 and blobs.has(sms[0])
