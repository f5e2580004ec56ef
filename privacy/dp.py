"""Differential privacy for joint statistics: the per-data-set policy, the query admission rules
and the noise each query asks for (REQUIREMENTS P6; docs/privacy.md, "Differential privacy").

Pure and deterministic (no I/O, no clock, no randomness): the contract runs ``admit`` on every
node and every node must reach the same answer. Budgets are integers: epsilon in micro units
(10^-6), delta in pico units (10^-12). Each query's privacy cost comes from OpenDP's privacy
map of the measurement whose output distribution the honest parties' noise has (``make_laplace``
on integers, i.e. the discrete Laplace mechanism); noise itself is drawn inside the computation
(``privacy.mpc.noise``).

Interface (all the chain side needs)::

    policy = Policy.parse(raw_policy, schema)      # PolicyError if malformed
    charge = admit(query, policy, history)         # Refused(rule, reason) if refused
    history.append(charge.record)                  # store it with the data set (JSON-ready;
                                                   # ids only for exact total / histogram / topk queries)

``raw_policy`` is ``{"epsilon": "1.0", "delta": "1e-6", "min_group": 10, "min_difference": 5}``
(optional ``"require_dp": true``); ``schema`` the data set's declared schema
(``{"columns": {name: {"min", "max"}}}``); ``history`` the list of ``Charge.record`` of the
queries admitted earlier on the same data set, oldest first. A query asks for noise with
``"dp": {"epsilon": 0.5}`` (optionally ``"delta"``, which must be at least the mechanism's
``DELTA_PER_QUERY``).
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from fractions import Fraction
from typing import Any

EPS_UNIT = 10**6  # budgets and charges of epsilon in micro-epsilon
DELTA_UNIT = 10**12  # budgets and charges of delta in pico-delta
DELTA_PER_QUERY = 1  # pico-delta charged per noisy query: bounds the chance of a false range abort
MARGIN_SCALES = 120  # the range checks allow |noise| up to 120 scales (docs: tail bound)
MAX_EPSILON = 100
MAX_GROUP = 10**6
LIMIT = 2**62

PER_ID_OPS = ("sum", "count")  # one output per id: nothing to difference
TOTAL_OPS = ("mean", "variance", "stats", "shares")  # reveal the sum of the totals over the ids
NOISY_OPS = ("sum", "count", "mean", "histogram")  # ops that accept "dp"
KNOWN_OPS = (*PER_ID_OPS, *TOTAL_OPS, "histogram", "topk")
POLICY_KEYS = {"epsilon", "delta", "min_group", "min_difference", "require_dp"}
DP_KEYS = {"epsilon", "delta"}


class DPError(Exception):
    """Base class of this module's errors."""


class PolicyError(DPError):
    """The data set's policy (or its schema) is malformed."""


class Refused(DPError):
    """The query is refused before any party computes. ``rule`` is one of ``query`` (malformed),
    ``dp_required``, ``dp_unsupported``, ``budget``, ``min_group``, ``differencing``."""

    def __init__(self, rule: str, reason: str) -> None:
        super().__init__(f"refused ({rule}): {reason}")
        self.rule = rule
        self.reason = reason


@dataclass(frozen=True)
class Policy:
    epsilon: int  # micro-epsilon, the data set's whole budget
    delta: int  # pico-delta
    min_group: int
    min_difference: int
    require_dp: bool
    bounds: dict[str, tuple[int, int]]  # the schema's columns

    @classmethod
    def parse(cls, raw: Any, schema: Any) -> Policy:
        if not isinstance(raw, dict) or not set(raw) <= POLICY_KEYS or not {"epsilon", "delta"} <= set(raw):
            raise PolicyError(f"a policy is an object with epsilon, delta and optionally {sorted(POLICY_KEYS)}")
        try:
            eps = _decimal(raw["epsilon"], "epsilon")
            delta = _decimal(raw["delta"], "delta")
        except Refused as exc:
            raise PolicyError(exc.reason) from None
        if not 0 <= eps <= 10**4 or not 0 <= delta < 1:
            raise PolicyError("policy epsilon must be in [0, 10000] and delta in [0, 1)")
        groups = [raw.get("min_group", 1), raw.get("min_difference", 1)]
        if not all(_is_int(g) and 1 <= g <= MAX_GROUP for g in groups):
            raise PolicyError(f"min_group and min_difference must be integers in [1, {MAX_GROUP}]")
        require = raw.get("require_dp", False)
        if not isinstance(require, bool):
            raise PolicyError("require_dp must be true or false")
        return cls(math.floor(eps * EPS_UNIT), math.floor(delta * DELTA_UNIT), groups[0], groups[1],
                   require, _bounds(schema))


@dataclass(frozen=True)
class Mechanism:
    """The noise a query asks for: discrete Laplace of ``scale`` on each output coordinate."""

    sensitivity: int  # L1 sensitivity of the revealed vector, one row changing
    epsilon: int  # micro-epsilon charged
    scale: float  # b: the honest parties' noise has probability ∝ exp(-|k| / b)

    @property
    def margin(self) -> int:
        """How far the noisy outputs may leave the noiseless range before a party aborts."""
        return math.ceil(MARGIN_SCALES * self.scale) + 1


@dataclass(frozen=True)
class Charge:
    epsilon: int  # micro-epsilon, 0 for a query without noise
    delta: int  # pico-delta
    mechanism: Mechanism | None
    record: dict[str, Any]  # append to the data set's history (JSON-ready)


def admit(query: Any, policy: Policy, history: list[dict[str, Any]]) -> Charge:
    """The query's charge, or ``Refused``: malformed, noise required / not available for the op,
    over the remaining budget, a group under ``min_group``, or a differencing attack on the
    earlier exact queries of ``history`` (pairs, and disjoint unions, see ``differencing``)."""
    op, column, ids = _shape(query, policy)
    mech = mechanism(query, policy.bounds)
    if mech is None and policy.require_dp:
        raise Refused("dp_required", "this data set answers only queries with differential privacy ('dp')")
    delta = DELTA_PER_QUERY if mech is not None else 0
    _budget(mech, delta, policy, history)
    k = query.get("k", 0) if op == "topk" else 0
    if len(ids) < policy.min_group + k:
        need = f"{policy.min_group} + k = {policy.min_group + k}" if k else str(policy.min_group)
        raise Refused("min_group", f"the query covers {len(ids)} ids, at least {need} are required")
    family = _family(op, column)
    exact = mech is None and op not in PER_ID_OPS  # the only queries differencing applies to
    if exact:
        earlier = [frozenset(r["ids"]) for r in history if r.get("family") == family and r.get("exact")]
        differencing(frozenset(ids), earlier, policy.min_difference)
    eps = mech.epsilon if mech else 0
    record = {"op": op, "column": column, "family": family, "exact": exact,
              "ids": sorted(ids) if exact else [], "epsilon": eps, "delta": delta}
    return Charge(eps, delta, mech, record)


def mechanism(query: dict[str, Any], bounds: dict[str, tuple[int, int]]) -> Mechanism | None:
    """The noise ``query`` asks for (None without ``"dp"``), the same at the contract and at every
    party: sensitivity from the schema's bounds, scale such that OpenDP's privacy map of the
    discrete Laplace mechanism at that sensitivity is at most the epsilon charged."""
    spec = query.get("dp")
    if spec is None:
        return None
    op = query.get("op")
    if op not in NOISY_OPS:
        raise Refused("dp_unsupported", f"op {op!r} does not take noise; noisy ops: {', '.join(NOISY_OPS)}")
    if not isinstance(spec, dict) or not set(spec) <= DP_KEYS or "epsilon" not in spec:
        raise Refused("query", "dp must be an object {\"epsilon\": e} (optionally \"delta\")")
    eps = _decimal(spec["epsilon"], "dp epsilon")
    if not 0 < eps <= MAX_EPSILON:
        raise Refused("query", f"dp epsilon must be in (0, {MAX_EPSILON}]")
    if "delta" in spec and not _decimal(spec["delta"], "dp delta") * DELTA_UNIT >= DELTA_PER_QUERY:
        raise Refused("query", f"dp delta must be at least {Fraction(DELTA_PER_QUERY, DELTA_UNIT)}"
                               " (the chance of a false range abort)")
    if (eps * EPS_UNIT).denominator != 1:  # budgets count micro-epsilon: never round the noise's epsilon
        raise Refused("query", f"dp epsilon must be a multiple of {Fraction(1, EPS_UNIT)} (0.000001)")
    micro = int(eps * EPS_UNIT)
    sens = sensitivity(op, query.get("column"), bounds)
    return Mechanism(sens, micro, laplace_scale(sens, Fraction(micro, EPS_UNIT)))


def sensitivity(op: str, column: Any, bounds: dict[str, tuple[int, int]]) -> int:
    """L1 sensitivity of what ``op`` reveals when one row of one party is added, removed or
    changed within the schema's bounds (a missing row counts as 0)."""
    if op == "count":
        return 1  # one id's count moves by one
    if op == "histogram":
        return 2  # one id's total moves from one bin to another
    if column not in bounds:
        raise Refused("query", f"column {column!r} is not in the schema")
    lo, hi = bounds[column]
    return max(hi, 0) - min(lo, 0)  # sum: one id's total; mean: the sum of the totals


def laplace_scale(sens: int, epsilon: Fraction) -> float:
    """The smallest float scale near ``sens / epsilon`` whose OpenDP privacy map is <= epsilon."""
    import opendp.prelude as dp  # imported late: the contract module loads without the native library

    dp.enable_features("contrib")
    scale = float(Fraction(sens) / epsilon)
    for _ in range(64):
        meas = dp.m.make_laplace(dp.atom_domain(T="i64"), dp.absolute_distance(T="i64"), scale=scale)
        if Fraction(meas.map(sens)) <= epsilon:  # type: ignore[no-untyped-call]
            return scale
        scale = math.nextafter(scale, math.inf) * (1 + 2**-40)
    raise Refused("query", "no noise scale meets this epsilon")  # pragma: no cover - OpenDP rounds by ulps


def differencing(new: frozenset[str], earlier: list[frozenset[str]], min_difference: int) -> None:
    """Refuse when the new id set and earlier ones combine into the sum over fewer than
    ``min_difference`` ids: (1) any single earlier set B with 0 < |new Δ B| < d; (2) the
    greedy packing of disjoint earlier sets mostly inside ``new`` (their union U) leaving
    0 < |new Δ U| < d; (3) for each earlier B ⊋ new, the same packing of B \\ new."""
    d = min_difference
    unique = list(dict.fromkeys(earlier))
    for k, old in enumerate(unique):
        diff = len(new ^ old)
        if 0 < diff < d:
            raise Refused("differencing", f"the ids differ from an earlier query's (#{k + 1} of its kind) in "
                                          f"{diff} ids; at least {d} required")
    targets: list[tuple[frozenset[str], frozenset[str] | None, str]] = [(new, None, "the new query's ids")]
    targets += [(old - new, old, "an earlier query's ids minus the new ones") for old in unique if new < old]
    for target, source, what in targets:
        parts = [b for b in unique if b != target and b != source]
        union = _pack(target, parts, d)
        residue = len(target ^ union)
        if union and 0 < residue < d:
            raise Refused("differencing", f"{what} minus a union of disjoint earlier queries leaves {residue} ids;"
                                          f" at least {d} required")


def _pack(target: frozenset[str], parts: Iterable[frozenset[str]], d: int) -> frozenset[str]:
    """Greedy: pairwise disjoint sets overlapping ``target``, largest overlap first, keeping fewer
    than ``d`` ids outside ``target`` in all (ties broken by size, then smallest id: deterministic)."""
    chosen: set[str] = set()
    outside = 0
    candidates = sorted((b for b in parts if len(b - target) < d and b & target),
                        key=lambda b: (-len(b & target), len(b), min(b)))
    for b in candidates:
        extra = len(b - target)
        if outside + extra < d and b.isdisjoint(chosen):
            chosen |= b
            outside += extra
    return frozenset(chosen)


def spent(history: list[dict[str, Any]]) -> tuple[int, int]:
    """(micro-epsilon, pico-delta) charged by the admitted queries of ``history``."""
    eps = delta = 0
    for r in history:
        e, dl = r.get("epsilon"), r.get("delta")
        if not isinstance(e, int) or not isinstance(dl, int) or e < 0 or dl < 0:
            raise PolicyError("a history record has no integer epsilon / delta charge")
        eps, delta = eps + e, delta + dl
    return eps, delta


def _budget(mech: Mechanism | None, delta: int, policy: Policy, history: list[dict[str, Any]]) -> None:
    if mech is None:
        return
    eps_used, delta_used = spent(history)
    if eps_used + mech.epsilon > policy.epsilon or delta_used + delta > policy.delta:
        raise Refused("budget", f"the query costs epsilon {_fmt(mech.epsilon, EPS_UNIT)}, delta "
                                f"{_fmt(delta, DELTA_UNIT)}; remaining epsilon "
                                f"{_fmt(policy.epsilon - eps_used, EPS_UNIT)}, delta "
                                f"{_fmt(policy.delta - delta_used, DELTA_UNIT)}")


def _shape(query: Any, policy: Policy) -> tuple[str, str | None, list[str]]:
    if not isinstance(query, dict) or query.get("op") not in KNOWN_OPS:
        raise Refused("query", f"op must be one of {', '.join(KNOWN_OPS)}")
    op = query["op"]
    column = None if op == "count" else query.get("column")
    if (column is not None and column not in policy.bounds) or (op != "count" and column is None):
        raise Refused("query", f"column {column!r} is not in the data set's schema")
    ids = query.get("ids")
    if not isinstance(ids, list) or not ids or not all(isinstance(i, str) for i in ids) or len(set(ids)) != len(ids):
        raise Refused("query", "ids must be a non-empty list of distinct content ids")
    if op == "topk" and not (_is_int(query.get("k")) and query["k"] >= 1):
        raise Refused("query", "topk needs an integer k >= 1")
    return op, column, ids


def _family(op: str, column: str | None) -> str:
    """Queries of one family reveal comparable aggregates of the same column over their ids."""
    kind = "total" if op in TOTAL_OPS else op
    return f"{kind}:{column or ''}"


def _bounds(schema: Any) -> dict[str, tuple[int, int]]:
    cols = schema.get("columns") if isinstance(schema, dict) else None
    if not isinstance(cols, dict) or not cols:
        raise PolicyError("the schema needs a non-empty 'columns' object")
    out: dict[str, tuple[int, int]] = {}
    for name, b in cols.items():
        lo, hi = (b.get("min"), b.get("max")) if isinstance(b, dict) else (None, None)
        if not isinstance(name, str) or not isinstance(lo, int) or not isinstance(hi, int) \
                or isinstance(lo, bool) or isinstance(hi, bool) or not -LIMIT < lo <= hi < LIMIT:
            raise PolicyError(f"schema column {name!r}: bounds must be integers with min <= max, |bound| < 2^62")
        out[name] = (lo, hi)
    return out


def _decimal(value: Any, what: str) -> Fraction:
    """A decimal given as a JSON number or string, exactly (via its shortest decimal repr)."""
    if isinstance(value, bool) or not isinstance(value, int | float | str) or (isinstance(value, str) and len(value) > 40):
        raise Refused("query", f"{what} must be a number or a decimal string")
    try:
        dec = Decimal(str(value))
    except InvalidOperation:
        raise Refused("query", f"{what} must be a number or a decimal string") from None
    if not dec.is_finite() or not -40 <= dec.adjusted() <= 40:
        raise Refused("query", f"{what} must be finite, between 1e-40 and 1e40 in magnitude (or 0)")
    return Fraction(dec)


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _fmt(units: int, per: int) -> str:
    return f"{Decimal(units) / Decimal(per):f}"
