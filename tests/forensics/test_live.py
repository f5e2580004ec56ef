"""A real node process runs the forensics transaction types (api/node_main.py registers them):
its receipts carry the contracts' own refusals, not UNKNOWN_TYPE."""

from __future__ import annotations

from pathlib import Path

import pytest

from api.sdk import LedgerClient
from fingerprint.index import LocalIndex
from forensics.rules import pledge_message, sign
from forensics.service import WorksService
from ledger.blobs import LocalBlobStore
from ledger.contracts.context import account_of
from tests.api.test_live_node import _start, _stop

pytestmark = [pytest.mark.slow]


def test_a_live_node_executes_works_and_case_transactions(tmp_path: Path, media: dict[str, Path]) -> None:
    node, proc = _start(tmp_path, offset=260)
    try:
        client = LedgerClient(node.api, node.key)
        svc = WorksService(LocalBlobStore(tmp_path / "blobs"), LocalIndex(tmp_path / "idx"), chain=node.chain,
                           node_id="val1", node_key=node.key)
        me = account_of(node.key.public_key().point)
        pledge = "mine"
        from ledger.crypto import sm3_file

        sig = sign(node.key, pledge_message(node.chain, me, sm3_file(media["work"]).hex(), pledge))
        prep = svc.register_work(media["work"], holder=me, holder_key=node.key.public_key().point,
                                 attributes={"title": "t", "type": "picture"}, pledge=pledge, pledge_signature=sig)
        receipt = client.submit_and_wait("works.register", prep.payload)["receipt"]
        assert receipt["code"] == 4
        assert receipt["info"] == (f"only a user of business role 'holder' may register works; {me} has no "
                                   "business role")  # the validator is no user: the contract ran and refused
        rec = client.submit_and_wait("case.move", {"case_id": "c-x", "to": "notified"})
        # a case transaction is private (docs/api.md §7): an unsigned reader sees its code, 4 (the
        # contract ran and refused), not its reason
        assert rec["receipt"] == {"code": 4, "info": "", "redacted": True} and rec["tx"] is None
    finally:
        _stop(proc)
