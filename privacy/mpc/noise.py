"""Differential-privacy noise generated inside the computation (docs/privacy.md, "Differential
privacy"): no party knows the noise in a released output.

A query with ``"dp": {"epsilon": e}`` gets the discrete Laplace mechanism of scale ``b``
(``privacy.dp.mechanism``: sensitivity from the schema's bounds, ``b`` checked against OpenDP's
privacy map). Each party ``i`` adds to its contribution to the aggregate, before masking, its own
noise share ``Z_i = P_i - P'_i`` with ``P_i, P'_i`` independent Polya (negative binomial)
variables ``NB(r = 1/h, p = 1 - exp(-1/b))``, ``h = n - t`` the number of honest parties the
model guarantees (``t = floor((n-1)/2)``). Negative binomials with the same ``p`` add their
``r``: the shares of any ``h`` parties sum to ``NB(1) - NB(1)``, the difference of two geometric
variables, which is exactly the discrete Laplace distribution ``P(k) ∝ exp(-|k|/b)``; more
honest parties add independent noise on top (post-processing). So whatever ``t`` parties pool
(their own shares included), the output they see is the true value plus at least a discrete
Laplace(b): OpenDP's ``make_laplace`` privacy map applies.

Shares are drawn with numpy's negative binomial sampler (Gamma–Poisson mixture, in floating
point) from a ``Philox`` generator keyed with 128 bits of ``secrets``, a new key per draw.
"""

from __future__ import annotations

import math
import secrets
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from privacy.dp import EPS_UNIT, DPError, Mechanism, mechanism

from .data import Schema
from .errors import QueryError
from .sharing import U64, threshold

INT64 = 2**63
DUMMY_SCALES = 46  # histogram: each party's offset per bin is (46 + epsilon) scales (docs: clamping bound)
WIRED_OPS = ("sum", "count", "mean", "histogram")  # the protocols that call ``apply``; others refuse "dp" (never run noiseless)


@dataclass(frozen=True)
class Noise:
    mechanism: Mechanism
    n: int  # parties

    @property
    def honest(self) -> int:
        return self.n - threshold(self.n)

    def share(self, size: int) -> npt.NDArray[np.int64]:
        """This party's noise share for ``size`` outputs, drawn fresh from ``secrets``."""
        r = 1.0 / self.honest
        p = -math.expm1(-1.0 / self.mechanism.scale)  # 1 - exp(-1/b), precise for large b
        gen = np.random.Generator(np.random.Philox(key=secrets.randbits(128)))
        a = gen.negative_binomial(r, p, size)
        b = gen.negative_binomial(r, p, size)
        return (a - b).astype(np.int64)

    def apply(self, vec: U64, lo: int, hi: int) -> tuple[U64, int, int]:
        """``vec`` plus a fresh noise share and the widened range the aggregate checks."""
        m = self.mechanism.margin
        if lo - m <= -INT64 or hi + m >= INT64:
            raise QueryError("the noisy outputs could leave the 64-bit range: use a larger epsilon or "
                             "tighter bounds")
        return vec + self.share(len(vec)).view(np.uint64), lo - m, hi + m


@dataclass(frozen=True)
class Dummies:
    """A histogram's noise as dummy elements: ``values`` extends this party's input vector (its
    own segment holds its dummies, the other parties' segments 0); subtract ``offsets`` from the
    opened counts."""

    values: U64  # length n * per_party
    offsets: list[int]  # per bin: n * per_bin where the bin can hold a total, else 0
    per_party: int


def dummy_scale(noise: Noise) -> int:
    """``s = ceil((46 + ε) b)``: a party's dummies per bin around its noise share."""
    return math.ceil((DUMMY_SCALES + noise.mechanism.epsilon / EPS_UNIT) * noise.mechanism.scale)


def dummy_elements(noise: Noise | None, bins: int) -> int:
    """How many elements the dummies of all parties add to a histogram over ``bins`` bins
    (``n · 2 s m``; 0 without noise)."""
    return 0 if noise is None else noise.n * 2 * dummy_scale(noise) * bins


def histogram_dummies(noise: Noise, me: int, bins: list[int], lo: int, hi: int) -> Dummies:
    """Dummy elements carrying this party's noise share for the counts of bins ``[bins[j],
    bins[j+1])`` (the last one closed) over totals in ``[lo, hi]``: ``s + Z_j`` dummies of
    value in bin ``j`` (``Z_j`` its share, clamped to ``[-s, s]``, ``s = ceil((46 + ε) b)``), the rest
    of its ``2 s m`` dummies of a value in no bin. The secure shuffle hides which elements are
    dummies and whose; the opened counts minus ``n s`` are the true counts plus the parties'
    summed shares."""
    m = len(bins) - 1
    s = dummy_scale(noise)
    inside = [max(bins[j], lo) for j in range(m)]
    feasible = [inside[j] <= min(bins[j + 1] - (j < m - 1), hi) for j in range(m)]
    filler = bins[0] - 1 if bins[0] - 1 >= lo else bins[-1] + 1
    if filler > hi:
        raise QueryError("a noisy histogram needs totals outside every bin (bins covering the whole range "
                         "leave no place for the dummies that carry no noise)")
    per_party = 2 * s * m
    if noise.n * per_party > 10**7:
        raise QueryError("a noisy histogram with this epsilon and these bins needs more than 10^7 dummies")
    counts = np.clip(s + noise.share(m), 0, 2 * s) * np.array(feasible, dtype=np.int64)
    mine = np.full(per_party, filler, dtype=np.int64)
    mine[: int(counts.sum())] = np.repeat(np.array(inside, dtype=np.int64), counts)
    values = np.zeros(noise.n * per_party, dtype=np.int64)
    values[me * per_party:(me + 1) * per_party] = mine
    return Dummies(values.view(np.uint64), [noise.n * s if f else 0 for f in feasible], per_party)


def for_query(query: dict[str, Any], schema: Schema, n: int) -> Noise | None:
    """The noise of ``query`` among ``n`` parties (None without ``"dp"``); ``QueryError`` when
    the query asks for noise it cannot have."""
    bounds = {c.name: (c.lo, c.hi) for c in schema.columns.values()}
    try:
        mech = mechanism(query, bounds)
    except DPError as exc:
        raise QueryError(str(exc)) from None
    if mech is not None and query.get("op") not in WIRED_OPS:
        raise QueryError(f"noise for {query.get('op')!r} is not wired into the engine (noisy ops here: "
                         f"{', '.join(WIRED_OPS)})")
    return None if mech is None else Noise(mech, n)


def apply(noise: Noise | None, vec: U64, lo: int, hi: int) -> tuple[U64, int, int]:
    """``Noise.apply`` or, without noise, the arguments unchanged (one line in each protocol)."""
    return (vec, lo, hi) if noise is None else noise.apply(vec, lo, hi)
