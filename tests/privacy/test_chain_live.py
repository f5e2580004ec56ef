"""Joint computations authorised and recorded on chain, with real processes: a local consortium
(`rongxin up`), one `rongxin mpc serve` process per platform on loopback, and the CLI for
propose → approve → run → record → audit (3 and 5 parties), an approval missing, a proposal
changed after approval, a dead party, a revoked party and a tampered published total."""

from __future__ import annotations

import json
import random
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest

from api import sdk_mpc
from api.sdk import ClientError, Identity, LedgerClient
from privacy.chain import AuditFailed, audit, outputs_text
from privacy.contracts import k_out
from tests.conftest import RONGXIN, run_rongxin

pytestmark = [pytest.mark.slow]

PLATFORMS = ["platform-a", "platform-b", "platform-c", "platform-d", "platform-e"]
IDS = [f"w{i:04d}" for i in range(120)]


class World:
    def __init__(self, data: Path, api: str, base: int) -> None:
        self.data, self.api, self.base = data, api, base
        self.procs: dict[str, subprocess.Popen[bytes]] = {}
        self.truth: dict[str, dict[str, int]] = {}

    def ident(self, name: str) -> Path:
        return self.data / "identities" / name

    def client(self, name: str) -> LedgerClient:
        return LedgerClient(self.api, identity=Identity.load(self.ident(name)))

    def rx(self, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        return run_rongxin(*args, timeout=timeout)

    def propose(self, parties: list[str], query: dict[str, Any], by: str = "platform-a") -> str:
        p = self.rx("mpc", "propose", "--as", str(self.ident(by)), "--api", self.api, "--parties", ",".join(parties),
                    "--query", json.dumps(query), "--json")
        assert p.returncode == 0, p.stderr
        return str(json.loads(p.stdout)["computation_id"])

    def approve(self, cid: str, by: str) -> subprocess.CompletedProcess[str]:
        return self.rx("mpc", "approve", cid, "--as", str(self.ident(by)), "--api", self.api, "--json")

    def result(self, cid: str) -> dict[str, Any]:
        p = self.rx("mpc", "result", cid, "--as", str(self.ident("platform-a")), "--api", self.api, "--json")
        assert p.returncode == 0, p.stderr
        return dict(json.loads(p.stdout))

    def wait(self, cid: str, timeout: float = 120) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            r = self.result(cid)
            if r["status"] in ("done", "aborted"):
                return r
            time.sleep(1)
        raise AssertionError(f"computation {cid} did not end within {timeout} s: {r}")

    def expected(self, parties: list[str], column: str) -> dict[str, int]:
        return {i: sum(self.truth[p].get(i, {}).get(column, 0) for p in parties) for i in IDS}


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory):
    import os

    tmp = tmp_path_factory.mktemp("mpcchain")
    base = int(os.environ["RONGXIN_BASE_PORT"]) + 300
    data = tmp / "c"
    up = run_rongxin("up", "--detach", "--data", str(data), "--base-port", str(base), timeout=240)
    assert up.returncode == 0, up.stderr
    nodes = json.loads((data / "cluster.json").read_text())["nodes"]
    api = next(n["api"] for n in nodes if n["role"] == "supervisor")
    w = World(data, api, base)
    rnd = random.Random(13)
    for k, name in enumerate(PLATFORMS):
        rows = {i: {"views": rnd.randrange(0, 100_000), "likes": rnd.randrange(0, 5000)} for i in rnd.sample(IDS, 90)}
        w.truth[name] = rows
        csv = tmp / f"{name}.csv"
        extra = 70 if name == "platform-c" else 7  # only platform-c breaks a data set bounding "extra" to 10
        csv.write_text("content_id,views,likes,extra\n" + "".join(f"{i},{r['views']},{r['likes']},{extra}\n"
                                                                   for i, r in rows.items()))
        log = open(tmp / f"{name}.log", "wb")
        # --timeout 30 (the default): the time a party may take to start a run after its peers
        w.procs[name] = subprocess.Popen(
            [str(RONGXIN), "mpc", "serve", "--as", str(w.ident(name)), "--api", api, "--data", str(csv),
             "--listen", f"127.0.0.1:{base + 11 + k}", "--commit-wait", "20", "--timeout", "30", "--poll", "0.5",
             "--dataset", "default", "--dataset", "audience", "--dataset", "capped"],
            stdout=log, stderr=subprocess.STDOUT)
    client = LedgerClient(api)
    deadline = time.monotonic() + 60
    while any(sdk_mpc.party(client, p) is None for p in PLATFORMS):
        assert time.monotonic() < deadline, "the party processes did not register"
        assert all(p.poll() is None for p in w.procs.values()), "a party process exited"
        time.sleep(0.5)
    yield w
    for p in w.procs.values():
        if p.poll() is None:
            p.send_signal(signal.SIGTERM)
            p.wait(30)
    run_rongxin("down", "--data", str(data), timeout=120)


def test_three_parties_wait_for_every_approval_then_run_record_audit(world: World) -> None:
    parties = PLATFORMS[:3]
    cid = world.propose(parties, {"op": "sum", "column": "views", "ids": IDS})
    assert world.approve(cid, "platform-b").returncode == 0
    time.sleep(6)  # platform-c has not approved: nobody commits, nobody computes
    r = sdk_mpc.result(world.client("platform-a"), cid)
    assert r["status"] == "proposed" and r["committed"] == [] and r["outputs"] is None
    assert world.approve(cid, "platform-c").returncode == 0
    r = world.wait(cid)
    assert r["status"] == "done", r["error"]
    assert {k: int(v) for k, v in r["outputs"]["totals"].items()} == world.expected(parties, "views")
    assert len(r["transcript_sm3"]) == 64 and len(r["tx_id"]) == 64
    audit_run = world.rx("mpc", "audit", cid, "--api", world.api, "--json")
    assert audit_run.returncode == 0, audit_run.stderr
    assert json.loads(audit_run.stdout)["buckets_checked"] == len(IDS)
    # every party recorded the same outputs and transcript
    full = sdk_mpc.result(world.client("platform-a"), cid)
    deadline = time.monotonic() + 20
    while len(full["confirmations"]) < 2 and time.monotonic() < deadline:
        time.sleep(0.5)
        full = sdk_mpc.result(world.client("platform-a"), cid)
    assert len(full["confirmations"]) == 2 and all(c["agrees"] for c in full["confirmations"].values())


def test_audit_detects_a_tampered_total(world: World) -> None:
    parties = PLATFORMS[:3]
    cid = world.propose(parties, {"op": "sum", "column": "likes", "ids": IDS})
    for p in parties[1:]:
        assert world.approve(cid, p).returncode == 0
    assert world.wait(cid)["status"] == "done"
    client = LedgerClient(world.api)
    rec = sdk_mpc.computation(client, cid)
    assert rec is not None
    commits = sdk_mpc.commitments(client, cid, parties)
    text = sdk_mpc._state_text(client, k_out(cid))
    assert text is not None and audit(rec, commits, text) == len(IDS)
    # a recording party that publishes one total off by one (with a matching outputs_sm3)
    outputs = json.loads(text)
    outputs["totals"][IDS[7]] += 1
    forged = outputs_text(outputs)
    from ledger.crypto import sm3_hex

    rec["result"]["outputs_sm3"] = sm3_hex(forged.encode())
    with pytest.raises(AuditFailed, match=f"first at id {IDS[7]}"):
        audit(rec, commits, forged)
    # or opens other randomness
    rec2 = sdk_mpc.computation(client, cid)
    assert rec2 is not None
    rnd = rec2["result"]["randomness"]
    rec2["result"]["randomness"] = rnd[64:128] + rnd[:64] + rnd[128:]
    with pytest.raises(AuditFailed, match="not the sum of what the parties committed to"):
        audit(rec2, commits, text)


def test_five_parties(world: World) -> None:
    cid = world.propose(PLATFORMS, {"op": "sum", "column": "views", "ids": IDS}, by="platform-c")
    for p in PLATFORMS:
        if p != "platform-c":
            assert world.approve(cid, p).returncode == 0
    r = world.wait(cid)
    assert r["status"] == "done", r["error"]
    assert {k: int(v) for k, v in r["outputs"]["totals"].items()} == world.expected(PLATFORMS, "views")
    assert world.rx("mpc", "audit", cid, "--api", world.api).returncode == 0


def test_changed_after_approval_is_refused_until_approved_again(world: World) -> None:
    parties = ["platform-a", "platform-b", "platform-d"]
    cid = world.propose(parties, {"op": "sum", "column": "views", "ids": IDS[:50]})
    old = sdk_mpc.computation(LedgerClient(world.api), cid)
    assert old is not None
    assert world.approve(cid, "platform-b").returncode == 0
    sdk_mpc.file_tx(world.client("platform-a"), "mpc.amend",
                    {"computation_id": cid, "query": {"op": "sum", "column": "views", "ids": IDS[:60]}})
    assert world.approve(cid, "platform-d").returncode == 0  # platform-d approves the amended proposal
    # an approval of the old proposal is refused by the contract
    with pytest.raises(ClientError, match="the proposal changed"):
        sdk_mpc.file_tx(world.client("platform-b"), "mpc.approve",
                        {"computation_id": cid, "proposal_sm3": old["proposal_sm3"]})
    # finding 4: platform-b pins the proposal it reviewed: the amended one is not approved blindly
    pinned = world.rx("mpc", "approve", cid, "--as", str(world.ident("platform-b")), "--api", world.api,
                      "--proposal-sm3", old["proposal_sm3"])
    assert pinned.returncode == 2 and "proposal changed" in pinned.stderr, pinned.stderr
    shown = world.rx("mpc", "show", cid, "--api", world.api, "--json")
    assert shown.returncode == 0, shown.stderr
    now = json.loads(shown.stdout)
    assert now["proposal"]["query"]["ids"] == IDS[:60] and now["proposal_sm3"] != old["proposal_sm3"]
    assert world.result(cid)["proposal_sm3"] == now["proposal_sm3"]
    time.sleep(4)  # platform-b's approval binds the old query: no honest party computes
    r = sdk_mpc.result(world.client("platform-a"), cid)
    assert r["status"] == "proposed" and r["committed"] == []
    assert r["approvals"]["platform-b"]["proposal_sm3"] == old["proposal_sm3"] != r["proposal_sm3"]
    again = world.rx("mpc", "approve", cid, "--as", str(world.ident("platform-b")), "--api", world.api,
                     "--proposal-sm3", now["proposal_sm3"])
    assert again.returncode == 0, again.stderr
    r = world.wait(cid)
    assert r["status"] == "done" and len(r["outputs"]["totals"]) == 60


def test_outputs_sealed_to_named_readers(world: World) -> None:
    court = Identity.load(world.ident("court"))
    parties = PLATFORMS[:3]
    p = world.rx("mpc", "propose", "--as", str(world.ident("platform-a")), "--api", world.api, "--parties",
                 ",".join(parties), "--readers", f"platform-b,{court.account}", "--query",
                 json.dumps({"op": "sum", "column": "likes", "ids": IDS}), "--json")
    assert p.returncode == 0, p.stderr
    cid = json.loads(p.stdout)["computation_id"]
    for name in parties[1:]:
        assert world.approve(cid, name).returncode == 0
    r = world.wait(cid)  # read as platform-a: a party, but not a named reader
    assert r["status"] == "done" and r["outputs"] is None
    seen = sdk_mpc.result(world.client("platform-b"), cid)
    assert {k: int(v) for k, v in seen["outputs"]["totals"].items()} == world.expected(parties, "likes")
    assert sdk_mpc.result(LedgerClient(world.api), cid)["outputs"] is None
    plain = world.rx("mpc", "audit", cid, "--api", world.api)
    assert plain.returncode == 1 and "sealed" in plain.stderr
    by_court = world.rx("mpc", "audit", cid, "--api", world.api, "--as", str(world.ident("court")))
    assert by_court.returncode == 0, by_court.stderr


def test_noise_inside_the_run_and_the_budget_on_chain(world: World) -> None:
    """Differential privacy end to end: a data set declared with a policy, a noisy count
    proposed with a float epsilon (the SDK files it as a decimal string), run by the parties
    with their noise shares inside, close to the plaintext but not equal to it, refused by the
    audit (the commitments do not cover the noise), and a second query over the budget refused
    on chain before anyone computes."""
    a = str(world.ident("platform-a"))
    cols = json.dumps({"views": {"min": 0, "max": 100_000}, "likes": {"min": 0, "max": 5000}})
    policy = json.dumps({"epsilon": "1.0", "delta": "1e-6", "min_group": 10, "min_difference": 5})
    d = world.rx("mpc", "dataset", "audience", "--as", a, "--api", world.api, "--columns", cols, "--policy", policy)
    assert d.returncode == 0, d.stderr
    parties = PLATFORMS[:3]
    p = world.rx("mpc", "propose", "--as", a, "--api", world.api, "--parties", ",".join(parties), "--dataset",
                 "audience", "--query", json.dumps({"op": "count", "ids": IDS, "dp": {"epsilon": 0.5}}), "--json")
    assert p.returncode == 0, p.stderr
    cid = str(json.loads(p.stdout)["computation_id"])
    for who in parties[1:]:
        assert world.approve(cid, who).returncode == 0
    r = world.wait(cid)
    assert r["status"] == "done", r["error"]
    exact = {i: sum(1 for q in parties if i in world.truth[q]) for i in IDS}
    got = {k: int(v) for k, v in r["outputs"]["totals"].items()}
    assert set(got) == set(IDS)
    # scale 2 (sensitivity 1 / epsilon 0.5): |noise| > 60 has probability below 1e-12 per id
    assert all(abs(got[i] - exact[i]) <= 60 for i in IDS) and got != exact
    audit_run = world.rx("mpc", "audit", cid, "--api", world.api)
    assert audit_run.returncode == 1 and "noisy" in audit_run.stderr
    over = world.rx("mpc", "propose", "--as", a, "--api", world.api, "--parties", ",".join(parties), "--dataset",
                    "audience", "--query", json.dumps({"op": "count", "ids": IDS, "dp": {"epsilon": 0.6}}), "--json")
    assert over.returncode != 0 and "budget" in over.stderr


def test_a_csv_breaking_the_declared_schema_aborts_naming_its_party(world: World) -> None:
    a = str(world.ident("platform-a"))
    cols = json.dumps({"views": {"min": 0, "max": 100_000}, "extra": {"min": 0, "max": 10}})
    assert world.rx("mpc", "dataset", "capped", "--as", a, "--api", world.api, "--columns", cols).returncode == 0
    p = world.rx("mpc", "propose", "--as", a, "--api", world.api, "--parties", ",".join(PLATFORMS[:3]), "--dataset",
                 "capped", "--query", json.dumps({"op": "sum", "column": "views", "ids": IDS}), "--json")
    assert p.returncode == 0, p.stderr
    cid = str(json.loads(p.stdout)["computation_id"])
    for who in PLATFORMS[1:3]:
        assert world.approve(cid, who).returncode == 0
    r = world.wait(cid)
    assert r["status"] == "aborted" and r["outputs"] is None
    assert "platform-c" in r["error"] and "schema" in r["error"], r["error"]
    # finding 13: the rule broken (column, row), not platform-c's value nor its file's path
    assert "column extra is outside [0, 10]" in r["error"] and "70" not in r["error"], r["error"]
    assert ".csv" not in r["error"] and "/" not in r["error"].replace("[0, 10]", ""), r["error"]


def test_unknown_op_aborts_with_the_engine_error(world: World) -> None:
    cid = world.propose(PLATFORMS[:3], {"op": "median", "column": "views", "ids": IDS})
    for p in PLATFORMS[1:3]:
        assert world.approve(cid, p).returncode == 0
    r = world.wait(cid)
    assert r["status"] == "aborted" and "QueryError" in r["error"] and r["outputs"] is None
    bad = world.rx("mpc", "audit", cid, "--api", world.api)
    assert bad.returncode == 1 and "aborted" in bad.stderr


def test_dead_party_makes_the_others_abort_naming_it(world: World) -> None:
    world.procs["platform-d"].kill()
    world.procs["platform-d"].wait(10)
    parties = ["platform-a", "platform-b", "platform-d"]
    cid = world.propose(parties, {"op": "sum", "column": "views", "ids": IDS})
    for p in parties[1:]:
        assert world.approve(cid, p).returncode == 0  # its identity still approves
    r = world.wait(cid, 120)
    assert r["status"] == "aborted" and "platform-d" in r["error"] and r["outputs"] is None


def test_revoked_party_is_refused(world: World) -> None:
    parties = ["platform-a", "platform-b", "platform-e"]
    cid = world.propose(parties, {"op": "sum", "column": "views", "ids": IDS})
    assert world.approve(cid, "platform-e").returncode == 0
    e = world.client("platform-e")
    sdk_mpc.file_tx(e, "user.revoke", {"account": Identity.load(world.ident("platform-e")).account,
                                       "reason": "left the consortium"})
    assert world.approve(cid, "platform-b").returncode == 0  # every party approved; e is now revoked
    r = world.wait(cid, 120)
    assert r["status"] == "aborted" and "platform-e" in r["error"] and "revoked" in r["error"]
    # and a new proposal naming it is refused by the contract
    p = world.rx("mpc", "propose", "--as", str(world.ident("platform-a")), "--api", world.api, "--parties",
                 ",".join(parties), "--query", json.dumps({"op": "sum", "column": "views", "ids": IDS}), "--json")
    assert p.returncode == 2 and "platform-e" in p.stderr and "revoked" in p.stderr


def test_cli_bad_input_exit_2(world: World) -> None:
    p = world.rx("mpc", "result", "nothex", "--as", str(world.ident("platform-a")), "--api", world.api)
    assert p.returncode == 2 and "Traceback" not in p.stderr
    p = world.rx("mpc", "propose", "--as", str(world.ident("platform-a")), "--api", world.api, "--parties",
                 "platform-a,platform-b,platform-c", "--query", "{not json")
    assert p.returncode == 2 and "not JSON" in p.stderr
    p = world.rx("mpc", "propose", "--as", str(world.ident("platform-a")), "--api", world.api, "--parties",
                 "platform-a,platform-b", "--query", json.dumps({"op": "sum", "column": "views", "ids": IDS}))
    assert p.returncode == 2 and "3 to 16" in p.stderr
    # finding 15: a query without ids on a chain without registered works is a user mistake (was exit 3)
    p = world.rx("mpc", "propose", "--as", str(world.ident("platform-a")), "--api", world.api, "--parties",
                 "platform-a,platform-b,platform-c", "--query", json.dumps({"op": "sum", "column": "views"}))
    assert p.returncode == 2 and "no work is registered" in p.stderr, p.stderr


def _confirmed(world: World, cid: str, count: int) -> dict[str, Any]:
    full = sdk_mpc.result(world.client("platform-a"), cid)
    deadline = time.monotonic() + 30
    while len(full["confirmations"]) < count and time.monotonic() < deadline:
        time.sleep(0.5)
        full = sdk_mpc.result(world.client("platform-a"), cid)
    return full


def test_shares_records_only_the_pool(world: World) -> None:
    """Finding 1: a shares run records the pool only; each party's own share (its own figure
    over the pool) stays with it, so every party records the same outputs."""
    parties = PLATFORMS[:3]
    cid = world.propose(parties, {"op": "shares", "column": "views", "ids": IDS})
    for p in parties[1:]:
        assert world.approve(cid, p).returncode == 0
    r = world.wait(cid)
    assert r["status"] == "done", r["error"]
    assert r["outputs"] == {"pool": sum(world.expected(parties, "views").values())}
    full = _confirmed(world, cid, 2)
    assert len(full["confirmations"]) == 2 and all(c["agrees"] for c in full["confirmations"].values())


def test_a_computation_on_a_data_set_the_parties_do_not_serve_is_refused(world: World) -> None:
    """Finding 5: the party processes serve default, audience and capped from their CSV; a
    data set declared with the same columns (and no privacy policy) does not reach that data."""
    a = str(world.ident("platform-a"))
    cols = json.dumps({"views": {"min": 0, "max": 100_000}, "likes": {"min": 0, "max": 5000}})
    assert world.rx("mpc", "dataset", "lookalike", "--as", a, "--api", world.api, "--columns", cols).returncode == 0
    p = world.rx("mpc", "propose", "--as", a, "--api", world.api, "--parties", ",".join(PLATFORMS[:3]), "--dataset",
                 "lookalike", "--query", json.dumps({"op": "sum", "column": "views", "ids": IDS}), "--json")
    assert p.returncode == 0, p.stderr
    cid = str(json.loads(p.stdout)["computation_id"])
    for who in PLATFORMS[1:3]:
        assert world.approve(cid, who).returncode == 0
    r = world.wait(cid)
    assert r["status"] == "aborted" and r["outputs"] is None
    assert "not 'lookalike'" in r["error"] and r["blame"] == "", r


def test_histogram_topk_and_a_large_sum_through_the_party_processes(world: World) -> None:
    """Finding 20 (and 8): a histogram, a top-k with totals and a sum over 1500 ids (a record of
    about 54 kB) proposed together and approved newest first go through mpc serve and the chain;
    each equals the plaintext, and the audit checks the top-k totals and the large sum."""
    import itertools

    parties = PLATFORMS[:3]
    views = world.expected(parties, "views")
    bins = [0, 50_000, 100_000, 200_000, 300_000]
    many = [*IDS, *(f"z{i:04d}" for i in range(1500 - len(IDS)))]
    cids = [world.propose(parties, {"op": "histogram", "column": "views", "ids": IDS, "bins": bins}),
            world.propose(parties, {"op": "topk", "column": "views", "ids": IDS, "k": 5, "with_totals": True}),
            world.propose(parties, {"op": "sum", "column": "views", "ids": many})]
    for cid in reversed(cids):
        for p in parties[1:]:
            assert world.approve(cid, p).returncode == 0
    hist, top, big = (world.wait(cid, 150) for cid in cids)
    for r in (hist, top, big):
        assert r["status"] == "done", r["error"]
    edges = [*bins[:-1], bins[-1] + 1]
    assert hist["outputs"]["counts"] == [sum(1 for v in views.values() if lo <= v < hi)
                                         for lo, hi in itertools.pairwise(edges)]
    best = sorted(IDS, key=lambda i: (-views[i], i))[:5]
    assert top["outputs"]["ids"] == best and [int(t) for t in top["outputs"]["totals"]] == [views[i] for i in best]
    assert {k: int(v) for k, v in big["outputs"]["totals"].items()} == {i: views.get(i, 0) for i in many}
    for cid, checked in ((cids[1], 5), (cids[2], 400)):
        run = world.rx("mpc", "audit", cid, "--api", world.api, "--json")
        assert run.returncode == 0 and json.loads(run.stdout)["buckets_checked"] == checked, run.stderr


def test_a_false_abort_blaming_a_watching_party_is_disputed(world: World) -> None:
    """Finding 3: platform-a (its identity, outside its party process) records an abort blaming
    platform-b before anyone could commit; platform-b's process, watching the computation,
    records its own view blaming the recorder, and the contract marks the computation disputed."""
    cid = world.propose(PLATFORMS[:3], {"op": "sum", "column": "views", "ids": IDS[:10]})
    time.sleep(2)  # every party process has seen it (not approved yet: nobody commits)
    sdk_mpc.file_tx(world.client("platform-a"), "mpc.record",
                    {"computation_id": cid, "status": "aborted", "error": "platform-b is dead", "blame": "platform-b"})
    full = _confirmed(world, cid, 1)
    assert full["status"] == "disputed", full
    assert full["confirmations"]["platform-b"]["blame"] == "platform-a"
    assert "platform-c" not in full["confirmations"]  # not blamed: nothing to dispute


def test_a_commitment_refused_after_an_amendment_is_tried_again(world: World) -> None:
    """Finding 9: the proposer amends right after the last approval, so the parties that saw
    the computation ready have their commitments refused ("not approved ... as it stands");
    they keep watching it and compute once every party approved the amended query. (If a
    commitment lands first the amendment is refused instead and the original query runs.)"""
    parties = PLATFORMS[:3]
    cid = world.propose(parties, {"op": "sum", "column": "likes", "ids": IDS[:30]})
    sdk_mpc.approve(world.client("platform-b"), cid)
    sdk_mpc.approve(world.client("platform-c"), cid)
    amended = {"op": "sum", "column": "likes", "ids": IDS[:40]}
    try:
        sdk_mpc.file_tx(world.client("platform-a"), "mpc.amend", {"computation_id": cid, "query": amended})
    except ClientError as exc:
        assert "can no longer be amended" in str(exc)
        assert world.wait(cid)["status"] == "done"
        return
    rec = sdk_mpc.computation(LedgerClient(world.api), cid)
    assert rec is not None and rec["committed"] == []
    for p in parties[1:]:
        sdk_mpc.approve(world.client(p), cid, rec["proposal_sm3"])
    r = world.wait(cid, 90)
    assert r["status"] == "done", r["error"]
    assert {k: int(v) for k, v in r["outputs"]["totals"].items()} == \
        {i: world.expected(parties, "likes")[i] for i in IDS[:40]}


def test_a_party_revoked_after_every_commitment_is_refused_before_the_run(world: World) -> None:
    """Finding 18: revocation is checked again right before the run. platform-c's process is
    stopped; its commitment and its revocation land in one block once a and b committed; a and
    b then refuse to run with it (before the fix they ran and timed out on it instead).
    Last test of the module: it leaves platform-c revoked."""
    from privacy.chain import commitments, input_values

    parties = PLATFORMS[:3]
    world.procs["platform-c"].send_signal(signal.SIGSTOP)
    try:
        cid = world.propose(parties, {"op": "sum", "column": "views", "ids": IDS})
        for p in parties[1:]:
            assert world.approve(cid, p).returncode == 0
        client = LedgerClient(world.api)
        deadline = time.monotonic() + 30
        while sorted((sdk_mpc.computation(client, cid) or {}).get("committed", [])) != parties[:2]:
            assert time.monotonic() < deadline, "a and b did not commit"
            time.sleep(0.3)
        c = world.client("platform-c")
        rec = sdk_mpc.computation(client, cid)
        assert rec is not None
        blob, _ = commitments(input_values(rec["proposal"]["query"], world.truth["platform-c"]))
        txs = [c.build("mpc.commit", {"computation_id": cid, "proposal_sm3": rec["proposal_sm3"], "commitments": blob}),
               c.build("user.revoke", {"account": Identity.load(world.ident("platform-c")).account,
                                       "reason": "left the consortium"})]
        c.submit_many(txs)
        for t in txs:
            assert c.wait(t.id_hex, 30, certified=False)["receipt"]["code"] == 0
        r = world.wait(cid, 60)
        assert r["status"] == "aborted" and "platform-c" in r["error"] and "revoked" in r["error"], r
    finally:
        world.procs["platform-c"].send_signal(signal.SIGCONT)
