"""The MPC engine's local pieces: the CSV loader and schema, sharing invariants, query checks."""

from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np
import pytest

from privacy.mpc import InputError, QueryError, Schema, load_csv
from privacy.mpc.engine import check_query
from privacy.mpc.sharing import designated, held_by, prg, product_owner, subsets, threshold, zero_mask

SCHEMA = Schema.parse({"columns": {"views": {"min": 0, "max": 100}, "delta": {"min": -5, "max": 5}}})


def _csv(tmp_path: Path, text: str) -> Path:
    p = tmp_path / "d.csv"
    p.write_text(text)
    return p


def test_csv_loads_under_the_schema(tmp_path: Path) -> None:
    p = _csv(tmp_path, "content_id,delta,views\nw1,-5,100\nw2,0,0\n")
    assert load_csv(p, SCHEMA) == {"w1": {"views": 100, "delta": -5}, "w2": {"views": 0, "delta": 0}}


@pytest.mark.parametrize(("text", "row", "words"), [
    ("content_id,views,delta\nw1,101,0\n", 2, "outside"),
    ("content_id,views,delta\nw1,1,0\nw2,1.5,0\n", 3, "not an integer"),
    ("content_id,views,delta\nw1,1\n", 2, "fields"),
    ("content_id,views,delta\nw1,1,0\nw1,2,0\n", 3, "twice"),
    ("content_id,views\nw1,1\n", 1, "header"),
    ("content_id,views,delta,extra\nw1,1,0,0\n", 1, "header"),
    ("id,views,delta\n", 1, "header"),
    ("", 1, "empty"),
    ("content_id,views,delta\n,1,0\n", 2, "content id"),
    ("content_id,views,delta\nw1,0x10,0\n", 2, "not an integer"),
])
def test_a_bad_csv_is_refused_naming_the_row(tmp_path: Path, text: str, row: int, words: str) -> None:
    with pytest.raises(InputError) as e:
        load_csv(_csv(tmp_path, text), SCHEMA)
    assert e.value.row == row and words in str(e.value)


@pytest.mark.parametrize("raw", [{}, {"columns": {}}, {"columns": {"v": {"min": 2, "max": 1}}},
                                 {"columns": {"content_id": {"min": 0, "max": 1}}},
                                 {"columns": {"v": {"min": 0, "max": 2**62}}},
                                 {"columns": {"v": {"min": True, "max": 3}}}])
def test_bad_schemas_are_refused(raw: dict) -> None:
    with pytest.raises(QueryError):
        Schema.parse(raw)


@pytest.mark.parametrize("query", [
    {"op": "median", "column": "views", "ids": ["a"]},
    {"op": "sum", "column": "nope", "ids": ["a"]},
    {"op": "sum", "column": "views", "ids": []},
    {"op": "sum", "column": "views", "ids": ["a", "a"]},
    {"op": "sum", "column": "views", "ids": [1]},
    {"op": "histogram", "ids": ["a"], "bins": [0, 1]},  # no column
])
def test_bad_queries_are_refused(query: dict) -> None:
    with pytest.raises(QueryError):
        check_query(query, SCHEMA)


def test_an_out_of_bounds_value_in_given_data_is_refused() -> None:
    with pytest.raises(InputError):
        SCHEMA.check({"w1": {"views": 101}})


@pytest.mark.parametrize("n", [3, 4, 5, 6, 7])
def test_replicated_sharing_structure(n: int) -> None:
    t = threshold(n)
    subs = subsets(n)
    # any t parties miss a share; any t+1 hold them all
    for coalition in itertools.combinations(range(n), t):
        assert set().union(*(held_by(n, p) for p in coalition)) != set(range(len(subs)))
    for group in itertools.combinations(range(n), t + 1):
        assert set().union(*(held_by(n, p) for p in group)) == set(range(len(subs)))
    for owner in range(n):
        assert owner in subs[designated(n, owner)]
    for a, b in itertools.product(range(len(subs)), repeat=2):
        p = product_owner(n, a, b)
        assert a in held_by(n, p) and b in held_by(n, p)


def test_zero_sharing_adds_up_to_zero_and_prg_is_deterministic() -> None:
    n = 5
    keys = {(i, j): bytes([i, j]) * 16 for i in range(n) for j in range(i + 1, n)}
    parts = [zero_mask(i, {j: keys[(min(i, j), max(i, j))] for j in range(n) if j != i}, b"l", 100)
             for i in range(n)]
    assert not np.any(sum(parts[1:], parts[0]))
    assert np.array_equal(prg(b"k" * 32, b"x", 10), prg(b"k" * 32, b"x", 10))
    assert not np.array_equal(prg(b"k" * 32, b"x", 10), prg(b"k" * 32, b"y", 10))


@pytest.mark.parametrize(("op", "count", "n", "ok"), [
    ("sum", 1, 3, False), ("sum", 1, 1, True), ("mean", 2, 3, False), ("shares", 2, 3, False),
    ("count", 5000, 16, True), ("variance", 1, 3, False),
])
def test_sums_that_could_wrap_around_64_bits_are_refused(tmp_path: Path, op: str, count: int, n: int,
                                                         ok: bool) -> None:
    """Finding 6: bounds ±(2^62 - 1) over 3 parties could wrap a total past 2^63: refused
    before any link is opened (a wrapped total came back negative and was accepted)."""
    from privacy.mpc import PartySpec, TLSFiles, run_computation
    from privacy.mpc.protocols import check_range

    top = 2**62 - 1
    schema = {"columns": {"v": {"min": -top, "max": top}}}
    query = {"op": op, "column": "v", "ids": [f"w{i}" for i in range(count)]}
    if ok:
        check_range(query, Schema.parse(schema), n)
        return
    parties = [PartySpec(f"p{k}", "127.0.0.1", 9, b"") for k in range(3)]
    missing = TLSFiles(tmp_path / "c", tmp_path / "k", tmp_path / "ca")
    with pytest.raises(QueryError, match="2\\^63"):
        run_computation("p0", parties, query, {"w0": {"v": top}}, schema, "c" * 64, missing, 1.0)
