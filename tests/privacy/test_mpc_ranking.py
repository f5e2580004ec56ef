"""Histogram and top-k among real party processes on loopback equal the plaintext (numpy's
histogram, Python's sort with ties broken by id); faults in the comparison rounds abort naming
the faulty party; malformed queries are refused before any message."""

from __future__ import annotations

import csv
import random
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from privacy.mpc import PartySpec, QueryError, TLSFiles, run_computation
from tests.privacy.mpc_kit import SCHEMA, Cluster

pytestmark = pytest.mark.slow
FAULTY = "tests.privacy.faulty_party"


def _write(c: Cluster, data: dict[str, dict[str, dict[str, int]]], columns: list[str]) -> None:
    for pid, rows in data.items():
        with open(c.root / f"{pid}.csv", "w", newline="") as f:
            w = csv.writer(f)
            w.writerow(["content_id", *columns])
            for cid, r in rows.items():
                w.writerow([cid, *(r[col] for col in columns)])


def _with_ties(c: Cluster, seed: int, n_ids: int) -> tuple[list[str], dict[str, int]]:
    """Random data where several ids share their totals (copied rows, ids absent everywhere)."""
    ids, data = c.random_data(seed, n_ids)
    rnd = random.Random(seed)
    for src, dst in zip(rnd.sample(ids, 6), rnd.sample(ids, 6), strict=True):
        for rows in data.values():
            rows.pop(dst, None)
            if src in rows:
                rows[dst] = dict(rows[src])
    ids = [*ids, "zz-absent-1", "aa-absent-2"]
    rnd.shuffle(ids)
    _write(c, data, ["views", "likes"])
    return ids, {i: sum(d.get(i, {}).get("views", 0) for d in data.values()) for i in ids}


def _top(totals: dict[str, int], k: int) -> list[tuple[str, int]]:
    return sorted(totals.items(), key=lambda kv: (-kv[1], kv[0]))[:k]


def _same_outputs(res: dict[str, dict]) -> Any:
    for pid, r in res.items():
        assert r["ok"], (pid, r)
    assert len({r["transcript_sm3"] for r in res.values()}) == 1
    outs = [r["outputs"] for r in res.values()]
    assert all(o == outs[0] for o in outs)
    return outs[0]


@pytest.mark.parametrize("n", [3, 5])
def test_histogram_and_topk_equal_the_plaintext(tmp_path: Path, n: int) -> None:
    c = Cluster.create(tmp_path, n)
    ids, totals = _with_ties(c, 40 + n, 48)
    assert len(set(totals.values())) < len(totals)  # there are ties
    values = list(totals.values())
    bins = [-5, 0, 1, 60000, 150000, 150001, 10**7]  # edges outside the possible totals too
    got = _same_outputs(c.run({"op": "histogram", "column": "views", "ids": ids, "bins": bins}, cid="h"))
    assert got == {"counts": np.histogram(values, bins=bins)[0].tolist()}
    assert sum(got["counts"]) == len(ids)
    narrow = [40000, 90000, 90001, 200000]  # totals below and above the bins are not counted
    got = _same_outputs(c.run({"op": "histogram", "column": "views", "ids": ids, "bins": narrow}, cid="h2"))
    assert got == {"counts": np.histogram(values, bins=narrow)[0].tolist()}
    assert 0 < sum(got["counts"]) < len(ids)
    for cid, (k, with_totals) in enumerate([(1, False), (len(ids), True), (7, False), (5, True)]):
        query: dict[str, Any] = {"op": "topk", "column": "views", "ids": ids, "k": k}
        if with_totals:
            query["with_totals"] = True
        got = _same_outputs(c.run(query, cid=f"t{cid}"))
        want = _top(totals, k)
        expect: dict[str, Any] = {"ids": [i for i, _ in want]}
        if with_totals:
            expect["totals"] = [v for _, v in want]
        assert got == expect, (k, with_totals)


def test_negative_bounds(tmp_path: Path) -> None:
    c = Cluster.create(tmp_path, 3)
    schema = {"columns": {"delta": {"min": -500, "max": 300}}}
    rnd = random.Random(5)
    ids = [f"d{k:03d}" for k in range(40)]
    data = {pid: {i: {"delta": rnd.randrange(-500, 301)} for i in ids if rnd.random() < 0.8} for pid in c.ids}
    _write(c, data, ["delta"])
    totals = {i: sum(d.get(i, {}).get("delta", 0) for d in data.values()) for i in ids}

    def run(query: dict[str, Any], cid: str) -> Any:
        configs = {p: {**c.config(p, query, cid), "schema": schema} for p in c.ids}
        return _same_outputs(c.results(c.launch(configs)))

    bins = [-1500, -400, -1, 0, 250, 900]
    got = run({"op": "histogram", "column": "delta", "ids": ids, "bins": bins}, "nh")
    assert got == {"counts": np.histogram(list(totals.values()), bins=bins)[0].tolist()}
    got = run({"op": "topk", "column": "delta", "ids": ids, "k": 6, "with_totals": True}, "nt")
    want = _top(totals, 6)
    assert got == {"ids": [i for i, _ in want], "totals": [v for _, v in want]}
    assert min(totals.values()) < 0


@pytest.mark.parametrize(("n", "op", "mode", "rnd"), [
    (3, "histogram", "die", 9),  # a Kogge-Stone round
    (5, "topk", "die", 15),  # the first sorting level's g = a AND b round
    (5, "topk", "garbage", 14),  # a carry-save round
    (3, "histogram", "garbage", 6),  # the arithmetic-to-boolean round
    (3, "histogram", "random-values", 13),  # the opening of the bins: inconsistent bins
    (3, "topk", "hang", 4),  # a shuffle round
    (5, "topk", "wrong-length", 16),  # a Kogge-Stone round
])
def test_a_fault_in_the_comparison_rounds_is_named(tmp_path: Path, n: int, op: str, mode: str, rnd: int) -> None:
    c = Cluster.create(tmp_path, n)
    ids, _ = c.random_data(9, 50)
    query: dict[str, Any] = {"op": op, "column": "views", "ids": ids}
    query.update({"bins": [0, 100000, 200000, 300000, 400000]} if op == "histogram" else {"k": 5})
    bad = "platform-b"
    configs = {p: c.config(p, query, timeout=4) for p in c.ids}
    configs[bad]["fault"] = {"mode": mode, "round": rnd}
    res = c.results(c.launch(configs, modules={bad: FAULTY}), faulty=frozenset({bad}))
    for pid, r in res.items():
        assert not r.get("ok"), (pid, r)
        if pid != bad:
            assert r["kind"] == "PartyError", (pid, r)
            assert bad in r["party"].split(","), (pid, r)


@pytest.mark.parametrize(("query", "message"), [
    ({"op": "histogram", "column": "views", "bins": [0, 10, 10]}, "strictly increasing"),
    ({"op": "histogram", "column": "views", "bins": [5]}, "strictly increasing"),
    ({"op": "histogram", "column": "views", "bins": [0, True]}, "strictly increasing"),
    ({"op": "histogram", "column": "views", "bins": [0, 1.5]}, "strictly increasing"),
    ({"op": "histogram", "column": "views", "bins": list(range(200))}, "strictly increasing"),
    ({"op": "histogram", "column": "nope", "bins": [0, 1]}, "not in the schema"),
    ({"op": "topk", "column": "views", "k": 0}, "k must be"),
    ({"op": "topk", "column": "views", "k": 4}, "k must be"),
    ({"op": "topk", "column": "views", "k": True}, "k must be"),
    ({"op": "topk", "column": "views", "k": 1, "with_totals": "yes"}, "with_totals"),
    ({"op": "topk", "column": "views", "k": 1, "extra": 1}, "only"),
    ({"op": "topk", "column": "huge", "k": 1}, "could exceed"),
    ({"op": "histogram", "column": "huge", "bins": [0, 1]}, "could exceed"),
    ({"op": "histogram", "column": "views", "bins": list(range(101)), "n_ids": 40_000}, "at most"),
    ({"op": "topk", "column": "views", "k": 1, "n_ids": 200_001}, "at most"),
])
def test_malformed_queries_are_refused_before_any_message(tmp_path: Path, query: dict[str, Any],
                                                          message: str) -> None:
    schema = {"columns": {**SCHEMA["columns"], "huge": {"min": 0, "max": 2**60}}}
    parties = [PartySpec(f"p{k}", "127.0.0.1", 1, b"") for k in range(3)]  # never contacted
    tls = TLSFiles(tmp_path / "c", tmp_path / "k", tmp_path / "ca")
    ids = [f"w{k}" for k in range(query.pop("n_ids", 3))]
    with pytest.raises(QueryError, match=message):
        run_computation("p0", parties, {**query, "ids": ids}, {}, schema, "q", tls)


def test_a_full_sort_over_several_levels(tmp_path: Path) -> None:
    """300 ids: the first level uses 109 pivots (32768 // 300), so the sort needs a second level."""
    c = Cluster.create(tmp_path, 3)
    ids, totals = _with_ties(c, 77, 298)
    got = _same_outputs(c.run({"op": "topk", "column": "views", "ids": ids, "k": len(ids),
                               "with_totals": True}, cid="full"))
    want = _top(totals, len(ids))
    assert got == {"ids": [i for i, _ in want], "totals": [v for _, v in want]}
