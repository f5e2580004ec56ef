"""The contract checks the filer's certificate at the block's time by the chain's own user
record (docs/works.md §4.2): never at a time the filer names. With admission open (so the
chain's admission rule does not refuse first), a filer whose certificate expired before the
block, or whose user record was revoked, cannot file; the same filing is accepted in a block
before the expiry."""

from __future__ import annotations

import dataclasses
from pathlib import Path

from forensics.cases import k_evidence
from ledger.node.abci import BAD_PAYLOAD, OK

from .conftest import Registry


def _open_admission(reg: Registry) -> None:
    reg.gov.genesis_params = dataclasses.replace(reg.gov.genesis_params, open_admission=1)


def test_filer_certificate_checked_at_the_block_time(reg: Registry, media: dict[str, Path]) -> None:
    wid = reg.registered("holder", media["work"]).work_id
    _open_admission(reg)
    not_after = reg.read(b"sys/user/" + reg.account("legal").encode())["not_after"]
    p = reg.filing("legal", [media["copy"]], wid)
    now = reg.time_ms
    reg.time_ms = not_after + 1  # the block is after the certificate's expiry
    code, info = reg.submit("legal", "evidence.file", p)
    assert code == BAD_PAYLOAD and "certificate expired" in info and str(not_after) in info, info
    assert reg.read(k_evidence(p["evidence_id"])) is None
    reg.time_ms = now
    assert reg.submit("legal", "evidence.file", p) == (OK, "ok")


def test_revoked_filer_refused(reg: Registry, media: dict[str, Path]) -> None:
    wid = reg.registered("holder", media["work"]).work_id
    _open_admission(reg)
    acct = reg.account("legal")
    assert reg.submit("legal", "user.revoke", {"account": acct, "reason": "key lost"}) == (OK, "ok")
    p = reg.filing("legal", [media["copy"]], wid)
    code, info = reg.submit("legal", "evidence.file", p)
    assert code == BAD_PAYLOAD and "only a user of business role 'legal'" in info, info
    assert reg.read(k_evidence(p["evidence_id"])) is None
