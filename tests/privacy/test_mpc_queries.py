"""Every query among real party processes on loopback equals the plaintext computation."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import pytest

from tests.privacy.mpc_kit import Cluster

pytestmark = pytest.mark.slow


def _totals(data: dict[str, dict], ids: list[str], column: str | None) -> list[int]:
    if column is None:
        return [sum(i in d for d in data.values()) for i in ids]
    return [sum(d.get(i, {}).get(column, 0) for d in data.values()) for i in ids]


def _check_common(res: dict[str, dict]) -> None:
    for pid, r in res.items():
        assert r["ok"], (pid, r)
    assert len({r["transcript_sm3"] for r in res.values()}) == 1  # the same digest everywhere
    assert all(len(r["transcript_sm3"]) == 64 for r in res.values())


@pytest.mark.parametrize("n", [3, 5])
def test_every_query_equals_the_plaintext(tmp_path: Path, n: int) -> None:
    c = Cluster.create(tmp_path, n)
    ids, data = c.random_data(n, 120)
    ids = [*ids, "absent-everywhere"]
    sums = _totals(data, ids, "views")
    for cid, query in enumerate([{"op": "sum", "column": "views", "ids": ids},
                                 {"op": "count", "ids": ids},
                                 {"op": "mean", "column": "likes", "ids": ids},
                                 {"op": "stats", "column": "views", "ids": ids},
                                 {"op": "shares", "column": "views", "ids": ids}]):
        res = c.run(query, cid=f"c{cid}")
        _check_common(res)
        outs = [r["outputs"] for r in res.values()]
        op = query["op"]
        if op in ("sum", "count"):
            want = dict(zip(ids, _totals(data, ids, query.get("column")), strict=True))
            assert all(o == {"totals": want} for o in outs)
            assert want["absent-everywhere"] == 0
        elif op == "mean":
            likes = _totals(data, ids, "likes")
            assert all(o == {"mean": float(Fraction(sum(likes), len(ids)))} for o in outs)
        elif op == "stats":
            mean = Fraction(sum(sums), len(ids))
            var = Fraction(sum(s * s for s in sums), len(ids)) - mean * mean
            assert all(o == {"mean": float(mean), "variance": float(var)} for o in outs)
        else:
            pool = sum(sums)
            for pid, r in res.items():
                own = sum(data[pid].get(i, {}).get("views", 0) for i in ids)
                assert r["outputs"] == {"pool": pool, "share": float(Fraction(own, pool))}
