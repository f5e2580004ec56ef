"""Noise generated inside the computation: the shares' distribution (local), and three real party
processes whose noisy outputs are the plaintext plus the sum of their independent shares."""

from __future__ import annotations

import itertools
import json
import math
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from privacy.dp import Mechanism, mechanism
from privacy.mpc import QueryError, Schema
from privacy.mpc.engine import check_query
from privacy.mpc.noise import Noise, for_query, histogram_dummies
from tests.privacy.mpc_kit import SCHEMA, Cluster

BOUNDS = {"views": (0, 100000), "likes": (0, 5000)}


def _noise(scale: float, n: int) -> Noise:
    return Noise(Mechanism(1, 10**6, scale), n)


def _laplace_var(scale: float) -> float:
    a = math.exp(-1 / scale)
    return 2 * a / (1 - a) ** 2


@pytest.mark.parametrize(("n", "scale"), [(3, 1.0), (5, 4.0), (4, 2.5)])
def test_any_honest_set_of_shares_sums_to_discrete_laplace(n: int, scale: float) -> None:
    """h = n - t shares add up to a discrete Laplace(scale): check its variance and its pmf."""
    z = _noise(scale, n)
    h = z.honest
    assert h == n - (n - 1) // 2 and 2 * h > n
    size = 200_000
    total = sum(z.share(size) for _ in range(h))
    assert total.dtype == np.int64
    assert total.var() == pytest.approx(_laplace_var(scale), rel=0.04)
    a = math.exp(-1 / scale)
    for k in (0, 1, -2, 3):  # P(k) = (1-a)/(1+a) * a^|k|
        want = (1 - a) / (1 + a) * a ** abs(k)
        assert np.mean(total == k) == pytest.approx(want, abs=5 * math.sqrt(want / size))
    everyone = sum(z.share(size) for _ in range(n))  # all n parties: n/h times the variance
    assert everyone.var() == pytest.approx(_laplace_var(scale) * n / h, rel=0.05)


def test_shares_are_fresh_per_draw() -> None:
    z = _noise(50.0, 3)
    draws = [z.share(64) for _ in range(4)]
    assert len({d.tobytes() for d in draws}) == 4
    assert np.corrcoef(z.share(100_000), z.share(100_000))[0, 1] == pytest.approx(0, abs=0.02)


def test_widened_range_and_overflow() -> None:
    z = _noise(10.0, 3)
    vec = np.zeros(5, dtype=np.uint64)
    _, lo, hi = z.apply(vec, 0, 300)
    assert (lo, hi) == (-z.mechanism.margin, 300 + z.mechanism.margin) and z.mechanism.margin == 1201
    with pytest.raises(QueryError):
        _noise(2.0**60, 3).apply(vec, 0, 300)


def test_engine_refuses_noise_it_cannot_add() -> None:
    schema = Schema.parse(SCHEMA)
    ids = ["a", "b", "c"]
    for q in ({"op": "variance", "column": "views", "ids": ids, "dp": {"epsilon": 1}},
              {"op": "sum", "column": "views", "ids": ids, "dp": {"epsilon": -1}}):
        check_query(q, schema)  # the shape is fine ...
        with pytest.raises(QueryError):  # ... the noise is not
            for_query(q, schema, 3)
    hist = {"op": "histogram", "column": "views", "bins": [0, 10], "ids": ids, "dp": {"epsilon": 1}}
    assert for_query(hist, schema, 3) is not None  # wired: histogram noise as dummy elements
    got = for_query({"op": "sum", "column": "likes", "ids": ids, "dp": {"epsilon": 2}}, schema, 3)
    assert got is not None and got.mechanism == mechanism({"op": "sum", "column": "likes", "ids": ids,
                                                           "dp": {"epsilon": 2}}, BOUNDS)


# ------------------------------------------------------------------ real party processes
def _run(c: Cluster, query: dict[str, Any], cid: str) -> tuple[dict[str, dict], dict[str, list[int]]]:
    procs = c.launch({p: c.config(p, query, cid) for p in c.ids}, module="tests.privacy.dp_party")
    res = c.results(procs)
    shares = {p: json.loads((c.root / f"{p}.out.json.noise.json").read_text()) for p in c.ids}
    for p in c.ids:
        (c.root / f"{p}.out.json.noise.json").unlink()
    return res, shares


@pytest.mark.slow
def test_noisy_runs_with_three_parties(tmp_path: Path) -> None:
    c = Cluster.create(tmp_path, 3)
    ids, data = c.random_data(7, 150)
    truth = [sum(i in d for d in data.values()) for i in ids]
    query = {"op": "count", "ids": ids, "dp": {"epsilon": 1}}  # sensitivity 1, scale 1
    outs = []
    for run in range(2):
        res, shares = _run(c, query, f"count{run}")
        assert all(r["ok"] for r in res.values()), res
        got = [res[c.ids[0]]["outputs"]["totals"][i] for i in ids]
        assert all(r["outputs"]["totals"] == res[c.ids[0]]["outputs"]["totals"] for r in res.values())
        assert all(isinstance(v, int) for v in got)
        noise = np.array(got) - np.array(truth)
        # the released noise is exactly the sum of the three parties' own shares ...
        assert noise.tolist() == np.sum([shares[p] for p in c.ids], axis=0).tolist()
        # ... none of which is the total (each party's view lacks the others' shares)
        for p in c.ids:
            assert shares[p] != noise.tolist()
        assert shares[c.ids[0]] != shares[c.ids[1]]
        # statistically sane: variance n/h * Var(discrete Laplace(1)) = 1.5 * 1.84 = 2.76
        assert 0.9 < noise.var() < 7.0 and abs(noise.mean()) < 1.0 and np.abs(noise).max() <= 25
        outs.append(got)
    assert outs[0] != outs[1]  # fresh noise per run

    likes = [sum(d.get(i, {}).get("likes", 0) for d in data.values()) for i in ids]
    res, shares = _run(c, {"op": "mean", "column": "likes", "ids": ids, "dp": {"epsilon": 2}}, "mean")
    assert all(r["ok"] for r in res.values()), res
    total_noise = sum(s[0] for s in shares.values())
    mean = res[c.ids[0]]["outputs"]["mean"]
    assert mean == float(Fraction(sum(likes) + total_noise, len(ids)))
    # scale 5000 / 2 on the sum: |noise| beyond 40 standard deviations would be a defect
    assert abs(mean - sum(likes) / len(ids)) < 40 * math.sqrt(1.5 * _laplace_var(2500)) / len(ids)
    assert len({r["transcript_sm3"] for r in res.values()}) == 1


@pytest.mark.slow
def test_noisy_sum_and_a_refused_noisy_variance(tmp_path: Path) -> None:
    c = Cluster.create(tmp_path, 3)
    ids, data = c.random_data(9, 60)
    likes = np.array([sum(d.get(i, {}).get("likes", 0) for d in data.values()) for i in ids])
    res, shares = _run(c, {"op": "sum", "column": "likes", "ids": ids, "dp": {"epsilon": 50}}, "s")
    assert all(r["ok"] for r in res.values()), res
    got = np.array([res[c.ids[0]]["outputs"]["totals"][i] for i in ids])
    assert (got - likes).tolist() == np.sum([shares[p] for p in c.ids], axis=0).tolist()
    assert 0 < np.abs(got - likes).max() < 40 * math.sqrt(1.5 * _laplace_var(100))
    res = c.run({"op": "variance", "column": "likes", "ids": ids, "dp": {"epsilon": 1}}, cid="v")
    for r in res.values():
        assert not r["ok"] and r["kind"] == "QueryError" and "does not take noise" in r["error"]


# ------------------------------------------------------------------ histogram noise as dummy elements
def _histogram(totals: np.ndarray, bins: list[int]) -> list[int]:
    """The engine's bins: [b_j, b_(j+1)) and the last one closed."""
    edges = [*bins[:-1], bins[-1] + 1]
    return [int(((totals >= a) & (totals < b)).sum()) for a, b in itertools.pairwise(edges)]


def test_histogram_dummies_carry_exactly_the_parties_shares() -> None:
    n, lo, hi = 3, 0, 3 * 5000
    bins = [100, 1000, 5000, 9000]
    mech = mechanism({"op": "histogram", "column": "likes", "ids": ["a"], "dp": {"epsilon": 1}}, BOUNDS)
    assert mech is not None and mech.sensitivity == 2 and mech.scale == 2.0
    z = Noise(mech, n)
    rng = np.random.default_rng(5)
    totals = rng.integers(lo, hi + 1, 500)
    truth = _histogram(totals, bins)
    noises = []
    for _ in range(300):
        dummies = [histogram_dummies(z, me, bins, lo, hi) for me in range(n)]
        d = dummies[0].per_party
        assert d == 2 * math.ceil(47 * 2.0) * 3 and all(len(x.values) == n * d for x in dummies)
        combined = sum(x.values.view(np.int64) for x in dummies)  # each party fills only its own segment
        for me, x in enumerate(dummies):
            v = x.values.view(np.int64)
            assert not v[:me * d].any() and not v[(me + 1) * d:].any()
        counts = _histogram(np.concatenate([totals, combined]), bins)
        noise = [c - o - t for c, o, t in zip(counts, dummies[0].offsets, truth, strict=True)]
        # each party's own dummies per bin minus the offset s: its share; the noise is their sum
        s = dummies[0].offsets[0] // n
        own = [[c - s for c in _histogram(x.values.view(np.int64)[me * d:(me + 1) * d], bins)]
               for me, x in enumerate(dummies)]
        assert noise == [sum(col) for col in zip(*own, strict=True)]
        noises += noise
    arr = np.array(noises)
    assert arr.var() == pytest.approx(1.5 * _laplace_var(2.0), rel=0.35) and len(set(noises)) > 5


def test_histogram_dummies_need_room_outside_the_bins() -> None:
    mech = mechanism({"op": "histogram", "column": "likes", "ids": ["a"], "dp": {"epsilon": 1}}, BOUNDS)
    assert mech is not None
    z = Noise(mech, 3)
    with pytest.raises(QueryError, match="outside every bin"):
        histogram_dummies(z, 0, [0, 10, 15000], 0, 15000)
    below = histogram_dummies(z, 1, [0, 10, 14999], 0, 15000)  # room above: filler 15000
    assert int(below.values.view(np.int64).max()) == 15000
    empty = histogram_dummies(z, 0, [-50, -10, 10, 20], 0, 15000)  # bin [-50, -10) holds no total
    assert empty.offsets[0] == 0 and empty.offsets[1] > 0
    with pytest.raises(QueryError, match="10\\^7"):
        histogram_dummies(Noise(Mechanism(2, 1, 2e6), 3), 0, [1, 2, 3], 0, 15000)


@pytest.mark.slow
def test_noisy_histogram_with_three_parties(tmp_path: Path) -> None:
    c = Cluster.create(tmp_path, 3)
    ids, data = c.random_data(11, 80)
    likes = np.array([sum(d.get(i, {}).get("likes", 0) for d in data.values()) for i in ids])
    bins = [1000, 4000, 8000, 12000]
    truth = _histogram(likes, bins)
    res, shares = _run(c, {"op": "histogram", "column": "likes", "ids": ids, "bins": bins,
                           "dp": {"epsilon": 2}}, "h")
    assert all(r["ok"] for r in res.values()), res
    counts = res[c.ids[0]]["outputs"]["counts"]
    noise = [a - b for a, b in zip(counts, truth, strict=True)]
    s_off = math.ceil((46 + 2) * 1.0)  # per-bin offset: (46 + epsilon) scales, scale 2 / 2 = 1
    assert noise == [sum(max(-s_off, min(s_off, s[j])) for s in shares.values()) for j in range(3)]
    assert max(abs(v) for v in noise) < 40
