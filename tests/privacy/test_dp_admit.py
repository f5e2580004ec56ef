"""privacy.dp: the data-set policy and the admission rules (budget, minimum group, differencing),
with the privacy cost of each noisy query checked against OpenDP's own privacy maps."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from fractions import Fraction
from typing import Any

import opendp.prelude as odp
import pytest

from privacy.dp import (
    DELTA_PER_QUERY,
    EPS_UNIT,
    Policy,
    PolicyError,
    Refused,
    admit,
    differencing,
    laplace_scale,
    mechanism,
    spent,
)

SCHEMA = {"columns": {"views": {"min": 0, "max": 100000}, "likes": {"min": 0, "max": 5000},
                      "delta": {"min": -30, "max": 20}}}
RAW = {"epsilon": "1.0", "delta": "1e-6", "min_group": 10, "min_difference": 5}
IDS = [f"w{k:03d}" for k in range(40)]


def policy(**kw: Any) -> Policy:
    return Policy.parse({**RAW, **kw}, SCHEMA)


def refused(query: dict[str, Any], pol: Policy, history: list[dict[str, Any]]) -> Refused:
    with pytest.raises(Refused) as info:
        admit(query, pol, history)
    return info.value


def run(queries: list[dict[str, Any]], pol: Policy) -> list[dict[str, Any]]:
    history: list[dict[str, Any]] = []
    for q in queries:
        history.append(admit(q, pol, history).record)
    return history


# ------------------------------------------------------------------ policy
def test_policy_parses_exact_units() -> None:
    p = policy(require_dp=True)
    assert (p.epsilon, p.delta, p.min_group, p.min_difference, p.require_dp) == (10**6, 10**6, 10, 5, True)
    assert p.bounds["delta"] == (-30, 20)
    assert Policy.parse({**RAW, "epsilon": 0.1}, SCHEMA).epsilon == 100000  # the float's shortest repr, exactly


@pytest.mark.parametrize("raw", [
    {"epsilon": "1.0"}, {**RAW, "extra": 1}, {**RAW, "epsilon": "nan"}, {**RAW, "epsilon": "-1"},
    {**RAW, "delta": "1"}, {**RAW, "min_group": 0}, {**RAW, "min_group": True}, {**RAW, "min_difference": "5"},
    {**RAW, "require_dp": "yes"}, {**RAW, "epsilon": "1e999999999"}, {**RAW, "epsilon": [1]}, "policy",
])
def test_bad_policies_are_typed_errors(raw: Any) -> None:
    with pytest.raises(PolicyError):
        Policy.parse(raw, SCHEMA)


@pytest.mark.parametrize("schema", [{}, {"columns": {}}, {"columns": {"v": {"min": 2, "max": 1}}},
                                    {"columns": {"v": {"min": 0, "max": 2**62}}}, {"columns": {"v": [0, 1]}}])
def test_bad_schemas_are_typed_errors(schema: Any) -> None:
    with pytest.raises(PolicyError):
        Policy.parse(RAW, schema)


# ------------------------------------------------------------------ noise and its cost
def test_sensitivities_and_scales_per_op() -> None:
    b = policy().bounds
    cases = {("sum", "likes"): 5000, ("sum", "delta"): 50, ("count", None): 1, ("mean", "views"): 100000,
             ("histogram", "views"): 2}
    for (op, col), sens in cases.items():
        m = mechanism({"op": op, "column": col, "ids": IDS, "dp": {"epsilon": "0.25"}}, b)
        assert m is not None and m.sensitivity == sens and m.epsilon == 250000
        assert abs(m.scale - sens / 0.25) <= 1e-9 * sens / 0.25
        meas = odp.m.make_laplace(odp.atom_domain(T="i64"), odp.absolute_distance(T="i64"), scale=m.scale)
        assert Fraction(meas.map(sens)) <= Fraction(1, 4)  # OpenDP's own bound is within the charge
    assert mechanism({"op": "sum", "column": "likes", "ids": IDS}, b) is None


def test_scale_is_nudged_until_opendp_agrees() -> None:
    # 10 / 0.7 maps to 0.7000000000000001 in OpenDP: the scale must move up by ulps
    s = laplace_scale(10, Fraction(7, 10))
    assert s > 10 / 0.7 and s - 10 / 0.7 < 1e-9
    odp.enable_features("contrib")
    meas = odp.m.make_laplace(odp.atom_domain(T="i64"), odp.absolute_distance(T="i64"), scale=s)
    assert Fraction(meas.map(10)) <= Fraction(7, 10)


def test_budget_arithmetic_is_exact_and_refuses_beyond() -> None:
    p = policy(epsilon="0.3")
    q = {"op": "count", "ids": IDS, "dp": {"epsilon": 0.1}}  # 0.1 + 0.1 + 0.1 == 0.3 exactly in micro units
    history = run([q, q, q], p)
    assert spent(history) == (300000, 3 * DELTA_PER_QUERY)
    err = refused({**q, "dp": {"epsilon": "0.000001"}}, p, history)
    assert err.rule == "budget" and "remaining epsilon 0" in err.reason
    # an epsilon finer than a micro unit is refused (finding 14: it was rounded up, noise included)
    assert refused({**q, "dp": {"epsilon": "0.0000011"}}, policy(), []).rule == "query"


def test_budget_composition_matches_opendp() -> None:
    """The per-data-set total equals OpenDP's composition of the same measurements (pure DP)."""
    b = policy().bounds
    queries = [{"op": "count", "ids": IDS, "dp": {"epsilon": e}} for e in ("0.1", "0.25", "0.05")]
    mechs = [mechanism(q, b) for q in queries]
    meas = [odp.m.make_laplace(odp.atom_domain(T="i64"), odp.absolute_distance(T="i64"), scale=m.scale)
            for m in mechs if m is not None]
    composed = odp.c.make_composition(meas).map(1)
    history = run(queries, policy())
    assert Fraction(composed) <= Fraction(spent(history)[0], EPS_UNIT)
    assert float(Fraction(spent(history)[0], EPS_UNIT)) == pytest.approx(composed, rel=1e-12)


def test_delta_budget_counts_queries() -> None:
    p = policy(delta="3e-12")
    q = {"op": "count", "ids": IDS, "dp": {"epsilon": "0.01"}}
    history = run([q, q, q], p)
    assert refused(q, p, history).rule == "budget"
    assert refused({**q, "dp": {"epsilon": 0.1, "delta": 1e-13}}, policy(), []).rule == "query"
    assert admit({**q, "dp": {"epsilon": 0.1, "delta": 1e-7}}, policy(), []).delta == DELTA_PER_QUERY


def test_noise_only_where_supported_and_required_when_asked() -> None:
    for op in ("variance", "stats", "shares", "topk"):
        q = {"op": op, "column": "views", "ids": IDS, "k": 3, "dp": {"epsilon": 0.5}}
        assert refused(q, policy(), []).rule == "dp_unsupported"
    assert refused({"op": "mean", "column": "views", "ids": IDS}, policy(require_dp=True), []).rule == "dp_required"
    assert admit({"op": "count", "ids": IDS}, policy(), []).epsilon == 0  # exact queries cost no budget


@pytest.mark.parametrize("query", [
    None, {"op": "median", "column": "views", "ids": IDS}, {"op": "sum", "column": "nope", "ids": IDS},
    {"op": "sum", "ids": IDS}, {"op": "sum", "column": "views", "ids": []},
    {"op": "sum", "column": "views", "ids": ["a", "a", *IDS]}, {"op": "topk", "column": "views", "ids": IDS},
    {"op": "sum", "column": "views", "ids": IDS, "dp": {"epsilon": 0}},
    {"op": "sum", "column": "views", "ids": IDS, "dp": {"epsilon": 101}},
    {"op": "sum", "column": "views", "ids": IDS, "dp": {"epsilon": "x"}},
    {"op": "sum", "column": "views", "ids": IDS, "dp": {"epsilon": True}},
    {"op": "sum", "column": "views", "ids": IDS, "dp": {"eps": 1}},
    {"op": "sum", "column": "views", "ids": IDS, "dp": 1},
])
def test_malformed_queries_are_refused(query: Any) -> None:
    assert refused(query, policy(), []).rule == "query"


# ------------------------------------------------------------------ group size
def test_minimum_group() -> None:
    p = policy()
    assert refused({"op": "mean", "column": "views", "ids": IDS[:9]}, p, []).rule == "min_group"
    admit({"op": "mean", "column": "views", "ids": IDS[:10]}, p, [])
    top = {"op": "topk", "column": "views", "k": 5, "ids": IDS[:14]}  # the 9 ids left out form a small group
    assert refused(top, p, []).rule == "min_group"
    admit({**top, "ids": IDS[:15]}, p, [])
    assert refused({"op": "count", "ids": IDS[:3], "dp": {"epsilon": 1}}, p, []).rule == "min_group"


# ------------------------------------------------------------------ differencing
def test_differencing_pairs() -> None:
    p = policy()
    base = {"op": "mean", "column": "views", "ids": IDS[:20]}
    history = run([base], p)
    for ids in (IDS[:21], IDS[:19], [*IDS[1:20], IDS[25]], IDS[:16]):  # differ in 1, 1, 2, 4 ids
        err = refused({**base, "ids": ids}, p, history)
        assert err.rule == "differencing"
    # the same family: shares and variance reveal the same sum as mean
    assert refused({"op": "shares", "column": "views", "ids": IDS[:21]}, p, history).rule == "differencing"
    assert refused({"op": "variance", "column": "views", "ids": IDS[:21]}, p, history).rule == "differencing"
    admit({**base, "ids": IDS[:20]}, p, history)  # an exact repeat reveals nothing new
    admit({**base, "ids": IDS[:25]}, p, history)  # 5 ids apart: allowed
    admit({**base, "column": "likes", "ids": IDS[:21]}, p, history)  # another column
    admit({"op": "histogram", "column": "views", "bins": [0, 10], "ids": IDS[:21]}, p, history)  # another kind
    charge = admit({"op": "sum", "column": "views", "ids": IDS[:21]}, p, history)  # per-id: nothing to difference
    assert charge.record["ids"] == [] and not charge.record["exact"]  # so the chain need not store the ids
    assert history[0]["ids"] == sorted(IDS[:20]) and history[0]["exact"]


def test_differencing_against_unions_of_earlier_queries() -> None:
    p = policy()
    q = {"op": "mean", "column": "likes"}
    history = run([{**q, "ids": IDS[:12]}, {**q, "ids": IDS[12:24]}], p)
    # the union of two earlier disjoint sets plus one id: their sums give that id's value
    assert refused({**q, "ids": IDS[:25]}, p, history).rule == "differencing"
    # the union minus one id
    assert refused({**q, "ids": IDS[:23]}, p, history).rule == "differencing"
    admit({**q, "ids": IDS[:24]}, p, history)  # exactly the union: nothing new
    admit({**q, "ids": IDS[:30]}, p, history)  # 6 more ids
    # the new query as a piece of an earlier one: earlier B = C ∪ new ∪ {x}
    history = run([{**q, "ids": IDS[:25]}, {**q, "ids": IDS[:12]}], p)
    assert refused({**q, "ids": IDS[12:24]}, p, history).rule == "differencing"


def test_noisy_queries_are_not_differenced() -> None:
    """Differencing two noisy answers (or a noisy and an exact one) is what epsilon accounts for."""
    p = policy()
    q = {"op": "mean", "column": "likes", "ids": IDS[:20], "dp": {"epsilon": 0.1}}
    history = run([q], p)
    admit({**q, "ids": IDS[:21]}, p, history)
    admit({"op": "mean", "column": "likes", "ids": IDS[:21]}, p, history)


def test_differencing_function_directly() -> None:
    a, b, c = frozenset("abcdefgh"), frozenset("ijklmnop"), frozenset("qrstuvwx")
    differencing(a | b | c, [a, b, c], 3)  # an exact union is fine
    with pytest.raises(Refused):
        differencing(a | b | {"z"}, [a, b, c], 3)
    with pytest.raises(Refused):
        differencing((a | b) - {"a", "i"}, [a, b], 3)  # the union minus two ids, 2 < 3
    differencing((a | b) - {"a", "i", "j"}, [a, b], 3)  # three ids: allowed


# ------------------------------------------------------------------ determinism
def test_admission_is_deterministic_across_processes() -> None:
    """Every node runs admit: the outcome must not depend on set iteration order (hash seeds)."""
    script = (
        "import json, sys\n"
        "from privacy.dp import Policy, admit, Refused\n"
        "ids = [f'w{k:03d}' for k in range(60)]\n"
        "p = Policy.parse({'epsilon': '2', 'delta': '1e-6', 'min_group': 5, 'min_difference': 4},"
        " {'columns': {'v': {'min': 0, 'max': 999}}})\n"
        "qs = [ids[0:10], ids[10:20], ids[5:15], ids[20:30], ids[0:21], ids[30:45], ids[0:31], ids[0:30], ids[3:40]]\n"
        "h, out = [], []\n"
        "for k, s in enumerate(qs):\n"
        "    q = {'op': 'mean', 'column': 'v', 'ids': s[::-1] if k % 2 else s}\n"
        "    if k == 3: q['dp'] = {'epsilon': 0.7}\n"
        "    try:\n"
        "        c = admit(q, p, h); h.append(c.record); out.append([c.epsilon, c.delta, c.record])\n"
        "    except Refused as e: out.append(str(e))\n"
        "print(json.dumps(out, sort_keys=True))\n"
    )
    outs = set()
    for seed in ("1", "2", "3"):
        env = {**os.environ, "PYTHONHASHSEED": seed}
        outs.add(subprocess.run([sys.executable, "-c", script], env=env, check=True, capture_output=True,
                                text=True).stdout)
    assert len(outs) == 1
    decided = json.loads(outs.pop())
    assert any(isinstance(d, str) and "differencing" in d for d in decided)
    assert any(isinstance(d, list) and d[0] == 700000 for d in decided)


def test_an_epsilon_finer_than_a_micro_unit_is_refused_not_rounded() -> None:
    """Finding 14: epsilon 1.5e-6 was rounded up to 2e-6 and the noise calibrated for 2e-6
    (less noise than asked); now refused, and a whole number of micro units is used as given."""
    bounds = {"views": (0, 100000)}
    with pytest.raises(Refused, match="multiple"):
        mechanism({"op": "count", "ids": IDS, "dp": {"epsilon": "0.0000015"}}, bounds)
    mech = mechanism({"op": "count", "ids": IDS, "dp": {"epsilon": "0.000002"}}, bounds)
    assert mech is not None and mech.epsilon == 2
