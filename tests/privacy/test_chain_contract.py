"""The ``mpc/1`` contract in process, block by block: what each transaction refuses and records."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from ledger.codec import parse
from ledger.contracts.context import TxType, account_of
from ledger.contracts.registry import contract_types
from ledger.node.abci import OK
from ledger.node.app import LedgerApp
from ledger.state.store import MemoryStore
from privacy.chain import commitments, randomness_sums
from privacy.contracts import k_comp, k_history, k_party
from privacy.contracts import types as mpc_types
from tests.forensics.conftest import set_business
from tests.node.test_governance import World

IDS = [f"w{i}" for i in range(10)]
QUERY = {"op": "sum", "column": "views", "ids": IDS}


class Chain(World):
    def __init__(self, tmp: Path) -> None:
        super().__init__(tmp)
        handlers: dict[str, Any] = {**contract_types(), **mpc_types(), "test.business": TxType(set_business)}
        self.app = LedgerApp(MemoryStore(), handlers, governance=self.gov)

    def platform(self, name: str, business: str = "platform") -> None:
        key = self.register(name)
        acct = account_of(key.public_key().point)
        assert self.run(self.tx("s1", "test.business", {"account": acct, "business": business})) == [(OK, "ok")]

    def transport(self, name: str, cn: str | None = None) -> str:
        rec = self.read(f"sys/user/{account_of(self.keys[name].public_key().point)}".encode())
        cert = self.ca.certificate(int(rec["serial"], 16))
        return self.ca.issue_transport(cn or name, cert)[1].decode()

    def do(self, who: str, type_: str, payload: dict[str, Any]) -> tuple[int, str]:
        return self.run(self.tx(who, type_, payload))[0]

    def read(self, key: bytes) -> Any:
        raw = self.app.read(key)
        return None if raw is None else parse(raw)


@pytest.fixture
def chain(tmp_path: Path) -> Chain:
    c = Chain(tmp_path)
    for n in ("pa", "pb", "pc"):
        c.platform(n)
        assert c.do(n, "mpc.register", {"host": "127.0.0.1", "port": 9000, "transport_cert": c.transport(n)}) == (OK, "ok")
    c.platform("holder1", business="holder")
    return c


def _propose(c: Chain, query: dict[str, Any] = QUERY, **more: Any) -> str:
    tx = c.tx("pa", "mpc.propose", {"parties": ["pa", "pb", "pc"], "query": query, **more})
    assert c.run(tx) == [(OK, "ok")]
    return tx.id_hex


def test_register_binds_the_sender(chain: Chain) -> None:
    chain.platform("pd")
    code, info = chain.do("pd", "mpc.register", {"host": "h", "port": 1, "transport_cert": chain.transport("pd", "pa")})
    assert code != OK and "names 'pa'" in info
    code, info = chain.do("pd", "mpc.register", {"host": "h", "port": 1, "transport_cert": chain.transport("pa")})
    assert code != OK  # another platform's certificate
    code, info = chain.do("holder1", "mpc.register", {"host": "h", "port": 1, "transport_cert": chain.transport("holder1")})
    assert code != OK and "business role 'platform'" in info
    assert chain.read(k_party("pa"))["port"] == 9000


def test_propose_approve_commit_record(chain: Chain) -> None:
    code, info = chain.do("pa", "mpc.propose", {"parties": ["pa", "pb"], "query": QUERY})
    assert code != OK and "3 to 16" in info
    code, info = chain.do("pa", "mpc.propose", {"parties": ["pa", "pb", "px"], "query": QUERY})
    assert code != OK and "px has not registered" in info
    code, info = chain.do("pa", "mpc.propose", {"parties": ["pa", "pb", "pc"], "query": dict(QUERY, column="x")})
    assert code != OK and "not a column" in info
    cid = _propose(chain)
    rec = chain.read(k_comp(cid))
    assert rec["status"] == "proposed" and list(rec["approvals"]) == ["pa"] and rec["buckets"] == 10
    first = chain.read(k_history("default"))["queries"][0]
    assert (first["computation_id"], first["op"], first["column"], first["epsilon"]) == (cid, "sum", "views", 0)
    blob, _ = commitments([1] * 10)
    commit = {"computation_id": cid, "proposal_sm3": rec["proposal_sm3"], "commitments": blob}
    code, info = chain.do("pb", "mpc.commit", commit)
    assert code != OK and "not approved by every party" in info
    code, info = chain.do("holder1", "mpc.approve", {"computation_id": cid, "proposal_sm3": rec["proposal_sm3"]})
    assert code != OK
    for n in ("pb", "pc"):
        assert chain.do(n, "mpc.approve", {"computation_id": cid, "proposal_sm3": rec["proposal_sm3"]}) == (OK, "ok")
    amended = dict(QUERY, ids=IDS[::-1])
    code, info = chain.do("pa", "mpc.amend", {"computation_id": cid, "query": amended})
    assert code == OK  # allowed until the first commitment; the others' approvals no longer count
    rec = chain.read(k_comp(cid))
    assert rec["approvals"]["pb"]["proposal_sm3"] != rec["proposal_sm3"]
    code, info = chain.do("pb", "mpc.commit", commit)
    assert code != OK and "not approved by every party" in info
    for n in ("pb", "pc"):
        assert chain.do(n, "mpc.approve", {"computation_id": cid, "proposal_sm3": rec["proposal_sm3"]}) == (OK, "ok")
    commit["proposal_sm3"] = rec["proposal_sm3"]
    code, info = chain.do("pb", "mpc.commit", dict(commit, commitments="02" * 330))
    assert code != OK and "not a point" in info
    assert chain.do("pb", "mpc.commit", commit) == (OK, "ok")
    assert chain.do("pb", "mpc.commit", commit)[0] != OK  # once
    code, info = chain.do("pa", "mpc.amend", {"computation_id": cid, "query": QUERY})
    assert code != OK and "can no longer be amended" in info
    done = {"computation_id": cid, "status": "done", "outputs": "{}", "outputs_sm3": "00" * 32,
            "transcript_sm3": "11" * 32, "randomness_transcript_sm3": "22" * 32,
            "randomness": randomness_sums({f"r{k}.{j}": 0 for k in range(10) for j in range(5)}, 10)}
    code, info = chain.do("pb", "mpc.record", done)
    assert code != OK and "after every party filed" in info
    for n in ("pa", "pc"):
        assert chain.do(n, "mpc.commit", commit) == (OK, "ok")
    code, info = chain.do("pb", "mpc.record", done)
    assert code != OK and "whose SM3 is outputs_sm3" in info
    from ledger.crypto import sm3_hex

    listed = dict(done, outputs="[1]", outputs_sm3=sm3_hex(b"[1]"))  # finding 12: a JSON object only
    code, info = chain.do("pb", "mpc.record", listed)
    assert code != OK and "one JSON object" in info
    done["outputs_sm3"] = sm3_hex(b"{}")
    assert chain.do("pb", "mpc.record", done) == (OK, "ok")
    assert chain.do("pa", "mpc.record", done) == (OK, "ok")  # the same view: a confirmation
    rec = chain.read(k_comp(cid))
    assert rec["status"] == "done" and rec["result"]["by"] == "pb" and rec["confirmations"]["pa"]["agrees"]
    # finding 3: a dissent is kept and marks the computation disputed; one view per party
    other = dict(done, randomness="11" * 32 + done["randomness"][64:])
    assert chain.do("pc", "mpc.record", other) == (OK, "ok")
    rec = chain.read(k_comp(cid))
    assert rec["status"] == "disputed" and rec["result"]["by"] == "pb"
    assert rec["confirmations"]["pc"]["agrees"] is False
    code, info = chain.do("pc", "mpc.record", done)
    assert code != OK and "already recorded" in info


def test_an_early_abort_with_false_blame_is_disputed(chain: Chain) -> None:
    """Finding 3: the first record does not silence the others: a party recording an abort
    blaming an honest party is contradicted by the others' records (their own view)."""
    cid = _propose(chain)
    rec = chain.read(k_comp(cid))
    for n in ("pb", "pc"):
        assert chain.do(n, "mpc.approve", {"computation_id": cid, "proposal_sm3": rec["proposal_sm3"]}) == (OK, "ok")
    assert chain.do("pc", "mpc.record", {"computation_id": cid, "status": "aborted", "error": "pb is dead",
                                         "blame": "pb"}) == (OK, "ok")
    assert chain.do("pa", "mpc.record", {"computation_id": cid, "status": "aborted", "error": "no commitment",
                                         "blame": "pb,pc"}) == (OK, "ok")
    rec = chain.read(k_comp(cid))
    assert rec["status"] == "disputed" and rec["confirmations"]["pa"]["blame"] == "pb,pc"


def test_revoked_party_cannot_be_named(chain: Chain) -> None:
    acct = account_of(chain.keys["pc"].public_key().point)
    assert chain.do("pc", "user.revoke", {"account": acct, "reason": "gone"}) == (OK, "ok")
    code, info = chain.do("pa", "mpc.propose", {"parties": ["pa", "pb", "pc"], "query": QUERY})
    assert code != OK and "pc's certificate was revoked" in info


def test_readers_resolved_and_checked(chain: Chain) -> None:
    holder = account_of(chain.keys["holder1"].public_key().point)
    cid = _propose(chain, readers=["pb", holder])
    pb = account_of(chain.keys["pb"].public_key().point)
    assert chain.read(k_comp(cid))["proposal"]["readers"] == sorted([pb, holder])
    code, info = chain.do("pa", "mpc.propose", {"parties": ["pa", "pb", "pc"], "query": QUERY, "readers": ["nobody"]})
    assert code != OK and "readers[0]" in info


def test_declared_dataset_is_referenced_by_proposals(chain: Chain) -> None:
    cols = {"revenue_fen": {"min": 0, "max": 10**9}}
    assert chain.do("pa", "mpc.dataset", {"dataset": "revenue", "columns": cols}) == (OK, "ok")
    code, info = chain.do("pb", "mpc.dataset", {"dataset": "revenue", "columns": cols})
    assert code != OK and "already declared" in info
    code, info = chain.do("pb", "mpc.dataset", {"dataset": "bad", "columns": {"x": {"min": 5, "max": 1}}})
    assert code != OK and "columns refused" in info
    code, info = chain.do("pa", "mpc.propose", {"parties": ["pa", "pb", "pc"], "query": QUERY, "dataset": "revenue"})
    assert code != OK and "'views' is not a column" in info
    code, info = chain.do("pa", "mpc.propose", {"parties": ["pa", "pb", "pc"], "query": QUERY, "dataset": "nope"})
    assert code != OK and "not declared" in info
    cid = _propose(chain, dict(QUERY, column="revenue_fen"), dataset="revenue")
    assert chain.read(k_comp(cid))["proposal"]["schema"] == {"columns": cols}
    assert [q["computation_id"] for q in chain.read(k_history("revenue"))["queries"]] == [cid]


def test_a_data_set_policy_refuses_before_any_party_computes(chain: Chain) -> None:
    """Differential privacy on chain: the data set's policy (``privacy.dp``) is checked at
    propose time: a budget spent by noisy queries, a minimum group, a differencing pair; a data
    set without a policy refuses noise (nothing to charge it to). Charges stay on the history."""
    cols = {"audience": {"min": 0, "max": 1}}
    policy = {"epsilon": "1.0", "delta": "1e-6", "min_group": 5, "min_difference": 3}
    code, info = chain.do("pa", "mpc.dataset", {"dataset": "people", "columns": cols, "policy": {"epsilon": "x"}})
    assert code != OK and "policy refused" in info
    assert chain.do("pa", "mpc.dataset", {"dataset": "people", "columns": cols, "policy": policy}) == (OK, "ok")

    def propose(query: dict[str, Any]) -> tuple[int, str]:
        return chain.do("pa", "mpc.propose", {"parties": ["pa", "pb", "pc"], "query": query, "dataset": "people"})

    noisy = {"op": "count", "ids": IDS, "dp": {"epsilon": "0.6"}}
    assert propose(noisy)[0] == OK
    code, info = propose(noisy)  # 0.6 + 0.6 > 1.0
    assert code != OK and "privacy policy" in info and "budget" in info
    assert propose(dict(noisy, dp={"epsilon": "0.4"}))[0] == OK  # exactly the rest of the budget
    code, info = propose({"op": "mean", "column": "audience", "ids": IDS[:4]})
    assert code != OK and "min_group" in info
    assert propose({"op": "mean", "column": "audience", "ids": IDS})[0] == OK
    code, info = propose({"op": "mean", "column": "audience", "ids": IDS[:-1]})  # differs in one id
    assert code != OK and "differencing" in info
    hist = chain.read(k_history("people"))["queries"]
    assert [q["epsilon"] for q in hist] == [600000, 400000, 0] and hist[2]["exact"]
    code, info = chain.do("pa", "mpc.propose", {"parties": ["pa", "pb", "pc"], "query": noisy})
    assert code != OK and "no privacy policy" in info  # the default data set


def test_a_result_too_large_to_record_is_refused_at_propose(chain: Chain) -> None:
    """Finding 2: a sum over 5000 ids would need an mpc.record over 64 KiB (every party would
    fail to record it): refused at propose and at amend, naming the limit; 1500 ids fit."""
    many = [f"w{i:04d}" for i in range(5000)]
    code, info = chain.do("pa", "mpc.propose", {"parties": ["pa", "pb", "pc"],
                                                "query": dict(QUERY, ids=many)})
    assert code != OK and "transaction limit" in info and "5000 ids" in info
    code, info = chain.do("pa", "mpc.propose", {"parties": ["pa", "pb", "pc"], "query": {"op": "mean",
                                                "column": "views", "ids": many}})
    assert code == OK, info  # one number whatever the ids
    cid = _propose(chain, dict(QUERY, ids=many[:1500]))
    code, info = chain.do("pa", "mpc.amend", {"computation_id": cid, "query": dict(QUERY, ids=many[:4000])})
    assert code != OK and "transaction limit" in info
    from privacy.chain import record_size

    rec = chain.read(k_comp(cid))
    assert record_size(rec["proposal"]["query"], rec["proposal"]["schema"], 3, ["*"]) <= 64 * 1024


def test_a_proposer_no_longer_a_platform_cannot_amend(chain: Chain) -> None:
    """Finding 11: mpc.amend checks the sender like every other mpc.* transaction. (A revoked
    or expired proposer is already refused by the ledger's admission, before any contract: that
    part of the finding does not reproduce; a sender whose user record no longer has business
    role platform did get through.)"""
    cid = _propose(chain)
    acct = account_of(chain.keys["pa"].public_key().point)
    code, info = chain.do("pa", "user.revoke", {"account": acct, "reason": "gone"})
    assert code == OK
    code, info = chain.do("pa", "mpc.amend", {"computation_id": cid, "query": dict(QUERY, ids=IDS[:3])})
    assert code != OK and "not admitted" in info and "revoked" in info
    chain.platform("pz")
    assert chain.do("pz", "mpc.register", {"host": "127.0.0.1", "port": 9000,
                                           "transport_cert": chain.transport("pz")}) == (OK, "ok")
    tx = chain.tx("pz", "mpc.propose", {"parties": ["pz", "pb", "pc"], "query": QUERY})
    assert chain.run(tx) == [(OK, "ok")]
    pz = account_of(chain.keys["pz"].public_key().point)
    assert chain.run(chain.tx("s1", "test.business", {"account": pz, "business": "holder"})) == [(OK, "ok")]
    code, info = chain.do("pz", "mpc.amend", {"computation_id": tx.id_hex, "query": dict(QUERY, ids=IDS[:3])})
    assert code != OK and "only an active user of business role 'platform'" in info
    assert chain.read(k_comp(tx.id_hex))["proposal"]["query"]["ids"] == IDS


def test_a_proposal_is_closed_to_approvals_after_the_window(chain: Chain) -> None:
    """Finding 16: a proposal never approved by every party no longer stays open (and watched
    by every party process) forever: after 7 days approvals and amendments are refused."""
    from privacy.chain import APPROVAL_WINDOW_MS

    cid = _propose(chain)
    sm3 = chain.read(k_comp(cid))["proposal_sm3"]
    assert chain.do("pb", "mpc.approve", {"computation_id": cid, "proposal_sm3": sm3}) == (OK, "ok")
    chain.time_ms += APPROVAL_WINDOW_MS + 1
    code, info = chain.do("pc", "mpc.approve", {"computation_id": cid, "proposal_sm3": sm3})
    assert code != OK and "closed to approvals" in info
    code, info = chain.do("pa", "mpc.amend", {"computation_id": cid, "query": dict(QUERY, ids=IDS[:3])})
    assert code != OK and "closed to approvals" in info
