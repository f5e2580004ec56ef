"""Faults with real party processes: every honest party aborts naming the faulty one; no
party ever returns a result."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.privacy.mpc_kit import Cluster

pytestmark = pytest.mark.slow
FAULTY = "tests.privacy.faulty_party"


def _run_with_fault(tmp_path: Path, n: int, bad: str, fault: dict, op: str = "sum",
                    timeout: float = 8) -> dict[str, dict]:
    c = Cluster.create(tmp_path, n)
    ids, _ = c.random_data(7, 60)
    query = {"op": op, "column": "views", "ids": ids}
    configs = {p: c.config(p, query, timeout=timeout) for p in c.ids}
    configs[bad]["fault"] = fault
    return c.results(c.launch(configs, modules={bad: FAULTY}), faulty=frozenset({bad}))


def _honest_abort_naming(res: dict[str, dict], bad: str, exact: bool = True) -> None:
    """Every party aborts; every honest one names exactly the faulty party (``exact``) or, where
    the protocol cannot tell which sender lied (out-of-range aggregate totals), a list holding
    it and never the honest party itself."""
    for pid, r in res.items():
        assert not r.get("ok"), (pid, r)
        if pid != bad:
            assert r["kind"] == "PartyError", (pid, r)
            named = r["party"].split(",")
            assert bad in named and pid not in named, (pid, r)
            if exact:
                assert named == [bad], (pid, r)


@pytest.mark.parametrize(("n", "mode", "rnd", "op"), [
    (3, "die", 2, "sum"), (5, "die", 3, "sum"), (5, "die", 2, "stats"),
    (3, "garbage", 2, "sum"), (5, "wrong-length", 3, "stats"),
    (3, "random-values", 3, "sum"), (3, "hang", 2, "mean"),
])
def test_a_faulty_party_is_named_by_every_honest_party(tmp_path: Path, n: int, mode: str, rnd: int,
                                                       op: str) -> None:
    bad = "platform-b"
    res = _run_with_fault(tmp_path, n, bad, {"mode": mode, "round": rnd}, op=op, timeout=4)
    _honest_abort_naming(res, bad, exact=mode != "random-values")
    if mode == "hang":
        assert all("sent nothing" in res[p]["error"] or "did not read" in res[p]["error"]
                   for p in res if p != bad)


def test_a_party_that_never_starts_is_named(tmp_path: Path) -> None:
    c = Cluster.create(tmp_path, 3)
    ids, _ = c.random_data(8, 10)
    query = {"op": "sum", "column": "views", "ids": ids}
    res = c.results(c.launch({p: c.config(p, query, timeout=3) for p in c.ids if p != "platform-c"}))
    for r in res.values():
        assert not r["ok"] and r["party"] == "platform-c", r


@pytest.mark.parametrize("bad", ["platform-a", "platform-c"])
def test_a_party_presenting_another_certificate_is_refused(tmp_path: Path, bad: str) -> None:
    c = Cluster.create(tmp_path, 3)
    ids, _ = c.random_data(9, 10)
    query = {"op": "sum", "column": "views", "ids": ids}
    configs = {p: c.config(p, query, timeout=4, tls_as="intruder" if p == bad else None) for p in c.ids}
    res = c.results(c.launch(configs))
    for pid, r in res.items():
        assert not r["ok"], r
        if pid != bad:
            assert r["party"] == bad and "certificate" in r["error"], r


def test_parties_that_disagree_on_the_query_abort(tmp_path: Path) -> None:
    c = Cluster.create(tmp_path, 3)
    ids, _ = c.random_data(10, 10)
    configs = {p: c.config(p, {"op": "sum", "column": "views", "ids": ids}) for p in c.ids}
    configs["platform-b"]["query"] = {"op": "sum", "column": "likes", "ids": ids}
    res = c.results(c.launch(configs))
    for pid, r in res.items():
        assert not r["ok"]
        if pid != "platform-b":
            assert r["party"] == "platform-b" and "disagrees" in r["error"], r


def test_a_csv_that_breaks_the_schema_is_named_by_row(tmp_path: Path) -> None:
    c = Cluster.create(tmp_path, 3)
    ids, _ = c.random_data(11, 10)
    path = tmp_path / "platform-a.csv"
    path.write_text(path.read_text() + "w00003x,100001,1\n")
    query = {"op": "sum", "column": "views", "ids": ids}
    res = c.results(c.launch({p: c.config(p, query, timeout=3) for p in c.ids}))
    assert res["platform-a"]["kind"] == "InputError" and "row" in res["platform-a"]["error"]
    for pid in ("platform-b", "platform-c"):
        assert not res[pid]["ok"] and res[pid]["party"] == "platform-a", res[pid]


def test_an_impostor_connection_does_not_frame_the_real_party(tmp_path: Path) -> None:
    """Finding 7: a connection claiming to be platform-c with another transport certificate
    (the intruder's, issued by the same CA) reaches platform-a first; it is dropped and the
    real platform-c, started after it, computes with the others."""
    import asyncio
    import time

    from ledger.crypto.tls import tls_context
    from privacy.mpc.transport import _write_hello

    c = Cluster.create(tmp_path, 3)
    ids, data = c.random_data(11, 20)
    query = {"op": "sum", "column": "views", "ids": ids}
    configs = {p: c.config(p, query, timeout=10) for p in c.ids}
    first = c.launch({p: configs[p] for p in ("platform-a", "platform-b")})
    assert c.ca is not None
    ctx = tls_context(False, tmp_path / "intruder" / "tls.crt", tmp_path / "intruder" / "tls.key",
                      c.ca.folder / "transport-ca.crt.pem")

    async def intrude() -> bool:
        deadline = time.monotonic() + 8
        while time.monotonic() < deadline:
            try:
                _, writer = await asyncio.open_connection("127.0.0.1", c.ports["platform-a"], ssl=ctx)
            except OSError:
                await asyncio.sleep(0.1)
                continue
            _write_hello(writer, "c1", "platform-c", "platform-a")
            await writer.drain()
            await asyncio.sleep(0.5)
            writer.close()
            return True
        return False

    assert asyncio.run(intrude())
    res = c.results({**first, **c.launch({"platform-c": configs["platform-c"]})})
    for pid, r in res.items():
        assert r["ok"], (pid, r)
        assert {k: int(v) for k, v in r["outputs"]["totals"].items()} == {
            i: sum(data[p].get(i, {}).get("views", 0) for p in c.ids) for i in ids}
