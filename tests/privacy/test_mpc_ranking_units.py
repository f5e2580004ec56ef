"""The public bookkeeping of the comparison protocols: resharing roles and the partial sort's
planning and splitting, checked without processes."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from privacy.mpc.errors import PartyError
from privacy.mpc.ranking import _active, _plan, _split
from privacy.mpc.replicated import component_owners, first_holder, owned_component
from privacy.mpc.sharing import held_by, subsets, threshold


@pytest.mark.parametrize("n", [3, 4, 5, 6, 7, 9])
def test_resharing_roles(n: int) -> None:
    subs = subsets(n)
    owned = [owned_component(n, q) for q in range(n)]
    assert len(set(owned)) == n  # one component per party, all distinct
    assert all(q not in subs[owned[q]] for q in range(n))  # the owner holds its component
    assert set(component_owners(n)) == set(owned)
    for k in range(len(subs)):
        assert k in held_by(n, first_holder(n, k))
    # every coalition of t parties misses a component: either a free one (random to it) or one
    # whose owner is outside it
    for coalition in itertools.combinations(range(n), threshold(n)):
        missing = subs.index(coalition)
        assert all(missing not in held_by(n, p) for p in coalition)


class _FakeRep:
    class ctx:  # the attribute the error path reads
        @staticmethod
        def pid(k: int) -> str:
            return f"p{k}"

        @staticmethod
        def others() -> list[int]:
            return [1, 2]


def _bits(seg: list[int], pivots: int, keys: dict[int, int]) -> np.ndarray:
    a, b = _plan(seg, pivots)
    return np.array([keys[x] < keys[y] for x, y in zip(a, b, strict=True)], dtype=np.uint8)


def test_split_orders_pivots_and_buckets() -> None:
    keys = {0: 50, 1: 10, 2: 70, 3: 5, 4: 90, 5: 60, 6: 20, 7: 65}
    seg = list(keys)
    out = _split(seg, 3, _bits(seg, 3, keys), _FakeRep())  # type: ignore[arg-type]
    assert out == [[4], [2], [5, 7], [0], [6], [1], [3]]
    flat = [i for piece in out for i in piece]
    assert sorted(flat) == seg


def test_split_refuses_inconsistent_outcomes() -> None:
    keys = {0: 50, 1: 10, 2: 70, 3: 5}
    bits = _bits(list(keys), 2, keys)
    bits[1] ^= 1  # element 2 (70) now claims to be above pivot 0 (50) but below pivot 1 (10)
    with pytest.raises(PartyError, match="inconsistent"):
        _split(list(keys), 2, bits, _FakeRep())  # type: ignore[arg-type]
    keys = {0: 50, 1: 10, 2: 70, 3: 5}
    bits = _bits(list(keys), 3, keys)
    bits[-1] ^= 1  # pivots 50 > 10 > 70 > 50: a cycle
    with pytest.raises(PartyError, match="total order"):
        _split(list(keys), 3, bits, _FakeRep())  # type: ignore[arg-type]


def test_active_keeps_the_segments_before_k() -> None:
    segs = [[1], [2, 3], [4], [5, 6, 7], [8]]
    assert _active(segs, 2) == ([[1], [2, 3]], [1])
    assert _active(segs, 4) == ([[1], [2, 3], [4]], [1])
    assert _active(segs, 5) == ([[1], [2, 3], [4], [5, 6, 7]], [1, 3])


def test_a_noisy_histogram_counts_its_dummy_elements_against_the_cap() -> None:
    """Finding 10: the ids x edges cap counts the noise's dummy elements (n · 2 s m of them),
    which dwarf the ids at a small epsilon."""
    from privacy.mpc import QueryError, Schema
    from privacy.mpc.noise import dummy_elements, for_query
    from privacy.mpc.ranking import MAX_HISTOGRAM_COMPARISONS, check_query

    schema = Schema.parse({"columns": {"views": {"min": 0, "max": 100_000}}})
    query = {"op": "histogram", "column": "views", "ids": [f"w{i}" for i in range(500)],
             "bins": [0, 10, 100, 1000], "dp": {"epsilon": "0.001"}}
    extra = dummy_elements(for_query(query, schema, 3), 3)
    assert 500 * 4 < MAX_HISTOGRAM_COMPARISONS < (500 + extra) * 4 and extra <= 10**7  # under the dummy cap
    with pytest.raises(QueryError, match="dummy"):
        check_query(query, schema, 3)
    check_query({k: v for k, v in query.items() if k != "dp"}, schema, 3)  # without noise: fine
