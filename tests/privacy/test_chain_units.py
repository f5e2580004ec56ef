"""The chain side's pure parts: buckets, commitments and the joint opening of their randomness,
the audit, the proposal hash, and the platforms' transport certificates."""

from __future__ import annotations

import json
import secrets
from pathlib import Path

import pytest

from api.identities import TRANSPORT_CA, TRANSPORT_CERT, TRANSPORT_KEY, _on_disk
from ledger.crypto import Scalar, sm3_hex
from ledger.crypto.ca import ConsortiumCA
from ledger.crypto.errors import CertificateError
from ledger.crypto.tls import transport_identity
from privacy.chain import (
    LIMB_SCHEMA,
    MAX_BUCKETS,
    AuditFailed,
    audit,
    bucket_bounds,
    commitments,
    input_values,
    limb_ids,
    limbs,
    outputs_text,
    proposal_sm3,
    randomness_sums,
    unapproved,
)
from privacy.mpc import Schema


def test_buckets_cover_every_id_once() -> None:
    for n in (1, 7, 399, 400, 401, 1000, 4999):
        b = bucket_bounds(n)
        assert len(b) == min(n, MAX_BUCKETS) and b[0][0] == 0 and b[-1][1] == n
        assert all(lo < hi and hi == b[k + 1][0] for k, (lo, hi) in enumerate(b[:-1]))


def test_limbs_add_up_to_the_sum_of_randomness_mod_n() -> None:
    parties = [[Scalar(secrets.randbelow(1 << 256)) for _ in range(5)] for _ in range(16)]
    Schema.parse(LIMB_SCHEMA).check(limbs(parties[0]))  # within the declared bounds
    totals = {i: sum(limbs(p)[i]["r"] for p in parties) for i in limb_ids(5)}
    want = "".join(sum((p[k] for p in parties), Scalar(0)).to_bytes().hex() for k in range(5))
    assert randomness_sums(totals, 5) == want


def _record(ids: list[str], values: dict[str, list[int]]) -> tuple[dict, dict[str, str], str]:
    blobs, rnd = {}, []
    for p, v in values.items():
        blob, r = commitments(v)
        blobs[p] = blob
        rnd.append(r)
    rsum = "".join(sum((r[k] for r in rnd), Scalar(0)).to_bytes().hex() for k in range(len(bucket_bounds(len(ids)))))
    totals = {i: sum(v[n] for v in values.values()) for n, i in enumerate(ids)}
    text = outputs_text({"totals": totals})
    rec = {"computation_id": "00" * 32, "status": "done", "buckets": len(bucket_bounds(len(ids))),
           "proposal": {"parties": list(values), "query": {"op": "sum", "column": "views", "ids": ids}},
           "result": {"outputs_sm3": sm3_hex(text.encode()), "randomness": rsum}}
    return rec, blobs, text


@pytest.mark.parametrize("n", [5, 450])
def test_audit_holds_and_catches_a_changed_total(n: int) -> None:
    ids = [f"w{i}" for i in range(n)]
    values = {p: [secrets.randbelow(1000) for _ in ids] for p in "abc"}
    rec, blobs, text = _record(ids, values)
    assert audit(rec, blobs, text) == min(n, MAX_BUCKETS)
    forged = json.loads(text)
    forged["totals"][ids[-1]] -= 3
    ftext = outputs_text(forged)
    rec["result"]["outputs_sm3"] = sm3_hex(ftext.encode())
    with pytest.raises(AuditFailed, match="not the sum"):
        audit(rec, blobs, ftext)
    with pytest.raises(AuditFailed, match="outputs_sm3"):
        audit(rec, blobs, text)
    with pytest.raises(AuditFailed, match="no commitment on chain from b"):
        audit(rec, {"a": blobs["a"], "c": blobs["c"]}, ftext)


def test_audit_refuses_what_publishes_no_totals() -> None:
    ids = ["w1", "w2", "w3"]
    rec, blobs, _ = _record(ids, {p: [1, 2, 3] for p in "abc"})
    rec["proposal"]["query"]["op"] = "mean"
    text = outputs_text({"mean": 6.0})
    rec["result"]["outputs_sm3"] = sm3_hex(text.encode())
    with pytest.raises(AuditFailed, match="publishes no totals"):
        audit(rec, blobs, text)
    rec["status"] = "aborted"
    with pytest.raises(AuditFailed, match="aborted"):
        audit(rec, blobs, text)


def test_input_values_count_missing_ids_as_zero() -> None:
    data = {"w1": {"views": 5, "likes": 1}}
    assert input_values({"op": "sum", "column": "views", "ids": ["w1", "w2"]}, data) == [5, 0]
    assert input_values({"op": "count", "ids": ["w1", "w2"]}, data) == [1, 0]


def test_approvals_bind_the_proposal() -> None:
    proposal = {"parties": ["a", "b", "c"], "query": {"op": "sum", "ids": ["w1"]}}
    h = proposal_sm3("11" * 32, proposal)
    assert h != proposal_sm3("22" * 32, proposal)
    assert h != proposal_sm3("11" * 32, dict(proposal, query={"op": "sum", "ids": ["w2"]}))
    rec = {"proposal": proposal, "proposal_sm3": h,
           "approvals": {"a": {"proposal_sm3": h}, "b": {"proposal_sm3": "00" * 32}}}
    assert unapproved(rec) == ["b", "c"]


def test_platform_identities_get_a_bound_transport_certificate(tmp_path: Path) -> None:
    ca = ConsortiumCA.init(tmp_path / "ca", "X")
    ident = _on_disk(tmp_path, ca, "platform-a", "platform", "Platform Org")
    folder = tmp_path / "identities" / "platform-a"
    bound = transport_identity((folder / TRANSPORT_CERT).read_bytes())
    assert (bound.node_id, bound.sm2_cert_fingerprint) == ("platform-a", ident.certificate.fingerprint)
    assert (folder / TRANSPORT_KEY).stat().st_mode & 0o777 == 0o600 and (folder / TRANSPORT_CA).is_file()
    first = (folder / TRANSPORT_CERT).read_bytes()
    _on_disk(tmp_path, ca, "platform-a", "platform", "Platform Org")
    assert (folder / TRANSPORT_CERT).read_bytes() == first  # kept
    (folder / "cert.pem").write_bytes(b"damaged")  # a new certificate: a new transport certificate bound to it
    again = _on_disk(tmp_path, ca, "platform-a", "platform", "Platform Org")
    assert transport_identity((folder / TRANSPORT_CERT).read_bytes()).sm2_cert_fingerprint == \
        again.certificate.fingerprint != ident.certificate.fingerprint
    assert not (tmp_path / "identities" / "court").exists()
    _on_disk(tmp_path, ca, "court", "court", "Court Org")
    assert not (tmp_path / "identities" / "court" / TRANSPORT_CERT).exists()
    with pytest.raises(CertificateError):
        transport_identity(b"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n")


def test_mpc_cli_help_and_bad_input(rx, tmp_path: Path) -> None:
    for sub in ([], ["serve"], ["propose"], ["approve"], ["result"], ["audit"], ["dataset"], ["show"]):
        proc = rx("mpc", *sub, "--help")
        assert proc.returncode == 0 and "Usage:" in proc.stdout, (sub, proc.stderr)
    ca = ConsortiumCA.init(tmp_path / "ca", "X")
    _on_disk(tmp_path, ca, "court", "court", "Court Org")
    csv = tmp_path / "a.csv"
    csv.write_text("content_id,views,likes\nw1,1,1\n")
    proc = rx("mpc", "serve", "--as", str(tmp_path / "identities" / "court"), "--api", "http://127.0.0.1:9",
              "--data", str(csv), "--listen", "127.0.0.1:9999")
    assert proc.returncode == 2 and "transport.crt.pem" in proc.stderr and "Traceback" not in proc.stderr
    _on_disk(tmp_path, ca, "platform-a", "platform", "P")
    proc = rx("mpc", "serve", "--as", str(tmp_path / "identities" / "platform-a"), "--api", "http://127.0.0.1:9",
              "--data", str(csv), "--listen", "nowhere")
    assert proc.returncode == 2 and "HOST:PORT" in proc.stderr
    for opt in ("--poll", "--commit-wait", "--timeout"):  # finding 15: was a crash (exit 4) after registering
        proc = rx("mpc", "serve", "--as", str(tmp_path / "identities" / "platform-a"), "--api", "http://127.0.0.1:9",
                  "--data", str(csv), "--listen", "127.0.0.1:9999", opt, "-1")
        assert proc.returncode == 2 and "positive" in proc.stderr and "Traceback" not in proc.stderr, proc.stderr
    proc = rx("mpc", "audit", "00" * 32, "--api", "http://127.0.0.1:9")
    assert proc.returncode == 3 and "cannot reach" in proc.stderr


@pytest.mark.parametrize("outputs", ["[1, 2]", '"text"', None])
def test_audit_refuses_malformed_outputs_without_crashing(outputs: str | None) -> None:
    """Finding 12: outputs that are not a JSON object, or a total of 2^128 or more, make the
    audit fail with a reason (they raised AttributeError / CommitmentError: a 500, exit 4)."""
    ids = ["w1", "w2", "w3"]
    rec, blobs, text = _record(ids, {p: [1, 2, 3] for p in "abc"})
    if outputs is None:
        forged = json.loads(text)
        forged["totals"]["w2"] = 2**130
        outputs = outputs_text(forged)
    rec["result"]["outputs_sm3"] = sm3_hex(outputs.encode())
    with pytest.raises(AuditFailed):
        audit(rec, blobs, outputs)


def test_work_ids_page_by_height_without_skipping(monkeypatch: pytest.MonkeyPatch) -> None:
    """Finding 17: a full page used to resume at its last height + 1, skipping the rest of that
    block's registrations. Served here by a real LedgerClient whose HTTP answers come from a
    list of events (pages of 3, the events API's from_height/limit semantics)."""
    from api import sdk_mpc
    from api.sdk import ClientError, LedgerClient

    heights = [1, 1, 2, 2, 3, 3, 4]
    events = [{"height": h, "data": {"work_id": f"w{k}"}} for k, h in enumerate(heights)]

    def answer(method: str, path: str, body: bytes | None = None) -> tuple[int, dict]:
        q = dict(kv.split("=") for kv in path.split("?")[1].split("&"))
        found = [e for e in events if e["height"] >= int(q["from_height"])][: int(q["limit"])]
        return 200, {"events": found}

    client = LedgerClient("http://127.0.0.1:9")
    monkeypatch.setattr(client, "_request", answer)
    monkeypatch.setattr(sdk_mpc, "EVENT_PAGE", 3)
    assert sdk_mpc.work_ids(client) == [f"w{k}" for k in range(len(heights))]
    events[:] = [{"height": 5, "data": {"work_id": f"x{k}"}} for k in range(4)]  # one block over a page
    with pytest.raises(ClientError, match="registered in block 5") as info:
        sdk_mpc.work_ids(client)
    assert info.value.status == 400


@pytest.mark.parametrize(("text", "words"), [
    ("content_id,views,likes,views\nw1,1,1,1\n", "name each column once"),
    ("content_id,views,likes\nw1,1,1,9\n", "row 2: 4 fields"),
    ("content_id,views,likes\nw1,1\n", "row 2: 2 fields"),
])
def test_mpc_serve_refuses_csv_rows_with_extra_fields_and_repeated_columns(tmp_path: Path, text: str,
                                                                           words: str) -> None:
    """Finding 19: the party's CSV loader accepted rows with extra (or missing) fields and a
    header naming a column twice (the first one used)."""
    from api.mpc_party import PartyProcess, Refusal
    from api.sdk import Identity, LedgerClient
    from privacy.chain import DEFAULT_SCHEMA

    ca = ConsortiumCA.init(tmp_path / "ca", "X")
    _on_disk(tmp_path, ca, "platform-a", "platform", "P")
    csv = tmp_path / "a.csv"
    csv.write_text(text)
    ident = Identity.load(tmp_path / "identities" / "platform-a")
    proc = PartyProcess(LedgerClient("http://127.0.0.1:9", identity=ident), tmp_path / "identities" / "platform-a",
                        csv, "127.0.0.1", 9, log=lambda line: None)
    with pytest.raises(Refusal, match=words):
        proc.load(DEFAULT_SCHEMA)
    csv.write_text("content_id,views,likes,extra\nw1,1,2,3\n")
    assert proc.load(DEFAULT_SCHEMA) == {"w1": {"views": 1, "likes": 2}}


def test_every_computation_every_party_committed_to_starts_at_once(monkeypatch, tmp_path: Path) -> None:
    """start_ready: two computations every party committed to run side by side through the
    always-on listener (each waits for the other inside its run), one at a time without it; one still missing a commitment waits, then after commit_wait is
    aborted naming the missing party; one ended before every commitment is dropped unrecorded."""
    import threading
    import time

    from api import mpc_party, sdk_mpc
    from api.sdk import LedgerClient

    def rec(cid: str, committed: list[str], status: str = "committing") -> dict:
        return {"computation_id": cid, "status": status, "committed": committed,
                "proposal": {"parties": ["p-a", "p-b", "p-c"], "readers": ["*"]}}

    records = {"x": rec("x", ["p-a", "p-b", "p-c"]), "y": rec("y", ["p-a", "p-b", "p-c"]),
               "z": rec("z", ["p-a", "p-b"]), "e": rec("e", ["p-a"], status="aborted")}
    monkeypatch.setattr(sdk_mpc, "computation", lambda client, cid: records.get(cid))
    monkeypatch.setattr(mpc_party.PartyProcess, "me", property(lambda self: "p-a"))
    both = threading.Barrier(2, timeout=10)

    def run(self, prep, specs, keys) -> dict:
        both.wait()  # BrokenBarrierError unless the other run is going on at the same time
        return {"status": "done", "outputs": prep.rec["computation_id"]}

    monkeypatch.setattr(mpc_party.PartyProcess, "run", run)
    monkeypatch.setattr(mpc_party.PartyProcess, "specs", lambda self, parties: [])
    recorded: dict[str, dict] = {}
    monkeypatch.setattr(mpc_party.PartyProcess, "finish", lambda self, cid, fields: recorded.__setitem__(cid, fields))
    party = mpc_party.PartyProcess(LedgerClient("http://127.0.0.1:9"), tmp_path, tmp_path / "d.csv", "127.0.0.1", 1,
                                   commit_wait=20.0, log=lambda line: None)
    party.order = {"x": 0, "y": 1, "z": 2, "e": 3}
    for cid in records:
        party.prepared[cid] = mpc_party.Prepared(rec=records[cid], data={}, rnd=[], deadline=time.monotonic() + 20)
    with monkeypatch.context() as m:  # without a listener each run binds the port itself: one at a time
        m.setattr(mpc_party.PartyProcess, "run", lambda self, prep, specs, keys: {"status": "done"})
        party.start_ready()
        assert set(party.running) == {"x"}
        party.running.pop("x").result(15)
    party.prepared["x"] = mpc_party.Prepared(rec=records["x"], data={}, rnd=[], deadline=time.monotonic() + 20)
    party.listener = object()  # type: ignore[assignment]  # the always-on listener (serve): side by side
    party.start_ready()
    assert set(party.running) == {"x", "y"} and set(party.prepared) == {"z"}
    for job in party.running.values():
        job.result(15)
    party.collect()
    assert recorded == {"x": {"status": "done", "outputs": "x"}, "y": {"status": "done", "outputs": "y"}}
    party.prepared["z"].deadline = time.monotonic() - 1
    party.start_ready()
    assert recorded["z"]["status"] == "aborted" and recorded["z"]["blame"] == "p-c"
    assert "did not file its commitment within 20 s" in recorded["z"]["error"] and "e" not in recorded
    assert not party.prepared and not party.running
