"""Pedersen commitments on the SM2 curve (ledger.crypto.pedersen): format, opening,
homomorphism, bounds and the audit of published totals."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ledger.crypto import (
    Commitment,
    CommitmentError,
    InvalidPoint,
    Opening,
    add_commitments,
    add_openings,
    commit,
    commit_vector,
    failed_totals,
    generator,
    generator_h,
    random_scalar,
    verify_opening,
    verify_total,
    verify_totals,
)
from ledger.crypto.group import N, Scalar, mul_generator
from ledger.crypto.pedersen import VALUE_BOUND

values = st.integers(min_value=-(2**64), max_value=2**64)


def test_commitment_is_v_g_plus_r_h() -> None:
    r = Scalar(987654321)
    c, o = commit(42, r)
    assert c.point == generator() * 42 + generator_h() * r
    assert o == Opening(42, r)
    assert len(c.to_bytes()) == 33 and c.to_bytes()[0] in (2, 3)
    assert Commitment.from_bytes(c.to_bytes()) == c == Commitment.from_hex(c.hex())
    assert verify_opening(c, o)


def test_known_answer() -> None:
    """v = 1, r = 1: C = G + H, the fixed example in docs/crypto.md."""
    c, _ = commit(1, Scalar(1))
    assert c.point == generator() + generator_h()
    assert c.hex() == (generator() + generator_h()).to_bytes().hex()


def test_negative_values_are_taken_mod_n() -> None:
    r = random_scalar()
    c, o = commit(-5, r)
    assert c.point == mul_generator(N - 5) + generator_h() * r
    assert verify_opening(c, o)
    assert not verify_opening(c, Opening(5, r))


def test_wrong_openings_fail() -> None:
    c, o = commit(100)
    assert not verify_opening(c, Opening(101, o.randomness))
    assert not verify_opening(c, Opening(100, o.randomness + 1))
    assert not verify_opening(commit(100)[0], o)  # fresh randomness: hiding


def test_value_bounds() -> None:
    commit(VALUE_BOUND - 1)
    commit(-(VALUE_BOUND - 1))
    for bad in (VALUE_BOUND, -VALUE_BOUND, 2**300):
        with pytest.raises(CommitmentError):
            commit(bad)
    for bad_value in (1.5, "3", True, None):
        with pytest.raises(CommitmentError):
            commit(bad_value)  # type: ignore[arg-type]
    with pytest.raises(CommitmentError):
        commit(1, Scalar(0))


@settings(max_examples=20, deadline=None)
@given(st.lists(values, min_size=1, max_size=6))
def test_homomorphism(xs: list[int]) -> None:
    cs, os_ = commit_vector(xs)
    total_c, total_o = add_commitments(cs), add_openings(os_)
    assert total_o.value == sum(xs)
    assert verify_opening(total_c, total_o)
    assert verify_total(cs, sum(xs), total_o.randomness)
    assert not verify_total(cs, sum(xs) + 1, total_o.randomness)
    assert cs[0] + cs[-1] - cs[-1] == cs[0]
    assert os_[0] + os_[0] == Opening(2 * xs[0], os_[0].randomness * 2)


def test_bad_commitment_encodings() -> None:
    c, _ = commit(7)
    g_unc = generator().to_bytes(compressed=False)
    for bad in (b"", b"\x00", b"\x00" * 33, g_unc, c.to_bytes()[:-1], b"\x04" + c.to_bytes()[1:],
                b"\x02" + b"\xff" * 32):
        with pytest.raises(InvalidPoint):
            Commitment.from_bytes(bad)
    for bad_hex in ("", c.hex().upper(), c.hex()[:-2], "zz" * 33):
        with pytest.raises(InvalidPoint):
            Commitment.from_hex(bad_hex)


def test_opening_dict_round_trip_and_strictness() -> None:
    _, o = commit(-12)
    d = o.to_dict()
    assert d == {"value": -12, "randomness": o.randomness.to_bytes().hex()}
    assert Opening.from_dict(d) == o
    rnd = d["randomness"]
    for bad in ({"value": 1}, {**d, "extra": 1}, {**d, "value": "1"}, {**d, "value": VALUE_BOUND},
                {**d, "randomness": rnd.upper()}, {**d, "randomness": rnd[:-2]},
                {**d, "randomness": N.to_bytes(32, "big").hex()}, {**d, "randomness": "g" * 64}, [1, 2]):
        with pytest.raises(CommitmentError):
            Opening.from_dict(bad)
    assert "randomness=Scalar(<hidden>)" in repr(o)


def test_audit_of_published_totals() -> None:
    """Three parties commit to per-content vectors; the published per-content totals with
    the summed randomness pass the audit; a single changed total is named."""
    width = 40
    parties = [[(p + 1) * (j + 3) for j in range(width)] for p in range(3)]
    filed, openings = zip(*(commit_vector(v) for v in parties), strict=True)
    totals = [sum(p[j] for p in parties) for j in range(width)]
    rsums = [add_openings(o[j] for o in openings).randomness for j in range(width)]
    assert verify_totals(filed, totals, rsums)
    assert failed_totals(filed, totals, rsums) == []
    wrong = list(totals)
    wrong[17] += 1
    assert failed_totals(filed, wrong, rsums) == [17]
    assert not verify_totals(filed, wrong, rsums)
    wrong_r = list(rsums)
    wrong_r[3] = wrong_r[3] + 1
    wrong_r[39] = random_scalar()
    assert failed_totals(filed, totals, wrong_r) == [3, 39]
    swapped = [list(filed[0]), list(filed[1]), list(filed[2])]
    swapped[1][0], swapped[1][1] = swapped[1][1], swapped[1][0]
    assert failed_totals(swapped, totals, rsums) == [0, 1]
    with pytest.raises(CommitmentError):
        failed_totals([list(filed[0])[:-1]], totals, rsums)
    with pytest.raises(CommitmentError):
        failed_totals(filed, totals[:-1], rsums)
    assert verify_totals([], [], [])


# -- the examples of docs/crypto.md, recomputed with plain affine arithmetic ------------------

def _ref_add(p1: tuple[int, int] | None, p2: tuple[int, int] | None) -> tuple[int, int] | None:
    from ledger.crypto.group import P

    a = P - 3
    if p1 is None:
        return p2
    if p2 is None:
        return p1
    (x1, y1), (x2, y2) = p1, p2
    if x1 == x2 and (y1 + y2) % P == 0:
        return None
    lam = ((3 * x1 * x1 + a) * pow(2 * y1, -1, P) if p1 == p2 else (y2 - y1) * pow(x2 - x1, -1, P)) % P
    x3 = (lam * lam - x1 - x2) % P
    return x3, (lam * (x1 - x3) - y1) % P


def _ref_mul(k: int, pt: tuple[int, int]) -> tuple[int, int] | None:
    out: tuple[int, int] | None = None
    for bit in bin(k)[2:]:
        out = _ref_add(out, out)
        if bit == "1":
            out = _ref_add(out, pt)
    return out


def _ref_compressed(pt: tuple[int, int] | None) -> str:
    assert pt is not None
    return (bytes([2 + (pt[1] & 1)]) + pt[0].to_bytes(32, "big")).hex()


def test_docs_examples_against_reference_arithmetic() -> None:
    from pathlib import Path

    from ledger.crypto import hash_to_scalar

    def affine(pt: object) -> tuple[int, int]:
        raw = pt.to_bytes(compressed=False)  # type: ignore[attr-defined]
        return int.from_bytes(raw[1:33], "big"), int.from_bytes(raw[33:], "big")

    g, h = affine(generator()), affine(generator_h())
    r = hash_to_scalar(b"rongxin/example/v1", b"platform-a", b"views")
    expected = {
        "r": "567f70df64e8546de60e05d8f23d078631bc3682fd82fbd7a38e840247689afd",
        "c11": "03bb014c8bb6c26df0f9e5f4882d9ecba45a35ffdd68bca3a7aab655e52a4d79a1",
        "c42": "03d021777d705fdb65a522565e5fb4a9fe964f7e41df69dab1de0ecef4b611a008",
        "cm42": "035fae7ad2952f596c7cf5d4722a8c3db33a1e3ed23b4d1b4b89c91f101649ae63",
    }
    assert r.to_bytes().hex() == expected["r"]
    assert _ref_compressed(_ref_add(g, h)) == expected["c11"] == commit(1, Scalar(1))[0].hex()
    ref42 = _ref_add(_ref_mul(42, g), _ref_mul(r.value, h))
    assert _ref_compressed(ref42) == expected["c42"] == commit(42, r)[0].hex()
    refm42 = _ref_add(_ref_mul(N - 42, g), _ref_mul(r.value, h))
    assert _ref_compressed(refm42) == expected["cm42"] == commit(-42, r)[0].hex()
    docs = (Path(__file__).resolve().parents[1] / "docs" / "crypto.md").read_text()
    assert all(v in docs for v in expected.values())
