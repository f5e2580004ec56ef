"""The SM2 curve group (ledger.crypto.group): known answers from GB/T 32918.5, encodings,
refusal of bad points, arithmetic laws, MSM, hash-to-scalar/point and the generator H.

Reference arithmetic in this file (square roots, the curve equation) is plain Python
modular arithmetic, an independent check of what libcrypto computes."""

from __future__ import annotations

import hashlib
import threading

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ledger.crypto import InvalidPoint, InvalidScalar, group
from ledger.crypto.group import N, P, Point, Scalar, generator, generator_h, msm, mul_generator
from ledger.crypto.vectors import SM2_CURVE, SM2_ENCRYPT, SM2_SIGN

A, B = int(SM2_CURVE.a, 16), int(SM2_CURVE.b, 16)
GX, GY = int(SM2_CURVE.gx, 16), int(SM2_CURVE.gy, 16)
# The value of H written in docs/crypto.md; H_COUNTER is the try-and-increment counter.
H_HEX = "028c13d006745f2ef655d1c303ab948aa220eac5d8066fb63669bc04946da86c81"
H_Y_HEX = "581d2dc19fa02b5470547825e3d9263ca8a74fa31060cd2f7aa9f3023fab188a"
H_COUNTER = 0

scalars = st.integers(min_value=0, max_value=N - 1)


def _on_curve(x: int, y: int) -> bool:
    return (y * y - (x * x * x + A * x + B)) % P == 0


def _uncompressed(x: int, y: int) -> bytes:
    return b"\x04" + x.to_bytes(32, "big") + y.to_bytes(32, "big")


# -- known answers ---------------------------------------------------------------------------

def test_curve_parameters_are_gb_t_32918_5() -> None:
    params = group.curve_parameters()
    assert params == {"p": P, "a": A, "b": B, "n": N, "gx": GX, "gy": GY, "h": 1}
    assert A == P - 3
    assert _on_curve(GX, GY)
    assert generator().to_bytes(compressed=False) == _uncompressed(GX, GY)
    assert (generator() * N).is_identity()
    assert not (generator() * (N - 1)).is_identity()


def test_signature_example_public_key_is_d_times_g() -> None:
    d = int(SM2_SIGN.d, 16)
    expected = _uncompressed(int(SM2_SIGN.px, 16), int(SM2_SIGN.py, 16))
    assert mul_generator(d).to_bytes(compressed=False) == expected
    assert (generator() * Scalar(d)).to_bytes(compressed=False) == expected
    assert msm([d], [generator()]).to_bytes(compressed=False) == expected


def test_signature_example_r_is_e_plus_x_of_k_times_g() -> None:
    kg = mul_generator(int(SM2_SIGN.k, 16)).to_bytes(compressed=False)
    x1 = int.from_bytes(kg[1:33], "big")
    assert (int(SM2_SIGN.e, 16) + x1) % N == int(SM2_SIGN.r, 16)


def test_encryption_example_c1_is_k_times_g() -> None:
    c1 = mul_generator(int(SM2_ENCRYPT.k, 16)).to_bytes(compressed=False)
    assert c1 == _uncompressed(int(SM2_ENCRYPT.c1x, 16), int(SM2_ENCRYPT.c1y, 16))


# -- encodings -------------------------------------------------------------------------------

@settings(max_examples=40, deadline=None)
@given(scalars.filter(lambda k: k != 0))
def test_encode_decode_round_trip(k: int) -> None:
    pt = mul_generator(k)
    comp, unc = pt.to_bytes(), pt.to_bytes(compressed=False)
    assert len(comp) == 33 and comp[0] in (2, 3) and len(unc) == 65 and unc[0] == 4
    assert comp[1:] == unc[1:33] and comp[0] == 2 + (unc[64] & 1)
    assert Point.from_bytes(comp) == pt == Point.from_bytes(unc)
    assert Point.from_bytes(bytearray(comp)) == pt
    assert _on_curve(int.from_bytes(unc[1:33], "big"), int.from_bytes(unc[33:], "big"))


def test_identity_encoding() -> None:
    inf = Point.identity()
    assert inf.is_identity() and inf.to_bytes() == b"\x00" == inf.to_bytes(compressed=False)
    with pytest.raises(InvalidPoint, match="infinity"):
        Point.from_bytes(b"\x00")
    assert Point.from_bytes(b"\x00", allow_identity=True).is_identity()


def _bad_encodings() -> list[tuple[str, bytes]]:
    g_unc = generator().to_bytes(compressed=False)
    g_comp = generator().to_bytes()
    x_bytes, y = g_unc[1:33], int.from_bytes(g_unc[33:], "big")
    return [
        ("empty", b""),
        ("prefix only", b"\x02"),
        ("truncated compressed", g_comp[:-1]),
        ("overlong compressed", g_comp + b"\x00"),
        ("truncated uncompressed", g_unc[:-1]),
        ("compressed with 04", b"\x04" + g_comp[1:]),
        ("uncompressed with 02", b"\x02" + g_unc[1:]),
        ("hybrid 06", b"\x06" + g_unc[1:]),
        ("hybrid 07", b"\x07" + g_unc[1:]),
        ("prefix 05", b"\x05" + g_comp[1:]),
        ("infinity padded", b"\x00" * 33),
        ("off the curve", b"\x04" + x_bytes + ((y + 1) % P).to_bytes(32, "big")),
        ("zero point", _uncompressed(0, 0)),
        ("x = p", b"\x02" + P.to_bytes(32, "big")),
        ("x all ones", b"\x02" + b"\xff" * 32),
        ("y all ones (not below p)", b"\x04" + x_bytes + (2**256 - 1).to_bytes(32, "big")),
        ("x with no square root", b"\x02" + _x_without_point().to_bytes(32, "big")),
        ("not bytes", "02" * 33),  # type: ignore[list-item]
    ]


def _x_without_point() -> int:
    x = 1
    while pow((x**3 + A * x + B) % P, (P - 1) // 2, P) == 1:
        x += 1
    return x


@pytest.mark.parametrize(("why", "data"), _bad_encodings(), ids=[w for w, _ in _bad_encodings()])
def test_bad_points_are_refused(why: str, data: bytes) -> None:
    with pytest.raises(InvalidPoint):
        Point.from_bytes(data)


def test_unreduced_y_is_refused() -> None:
    unc = generator().to_bytes(compressed=False)
    y = int.from_bytes(unc[33:], "big")
    if y + P < 2**256:  # y + p still fits in 32 bytes: the same point, non-canonically
        with pytest.raises(InvalidPoint):
            Point.from_bytes(unc[:33] + (y + P).to_bytes(32, "big"))


def test_scalar_encoding() -> None:
    assert Scalar.from_bytes((N - 1).to_bytes(32, "big")).value == N - 1
    assert Scalar(-1).value == N - 1 and Scalar(N + 5).value == 5
    for bad in (N.to_bytes(32, "big"), b"\xff" * 32, b"\x00" * 31, b"\x00" * 33):
        with pytest.raises(InvalidScalar):
            Scalar.from_bytes(bad)
    with pytest.raises(InvalidScalar):
        Scalar(True)
    with pytest.raises(InvalidScalar):
        Scalar(0).inverse()
    assert "hidden" in repr(Scalar(12345)) and "12345" not in repr(Scalar(12345))


# -- arithmetic ------------------------------------------------------------------------------

@settings(max_examples=25, deadline=None)
@given(scalars, scalars)
def test_group_laws(a: int, b: int) -> None:
    pa, pb = mul_generator(a), mul_generator(b)
    assert pa + pb == mul_generator((a + b) % N) == pb + pa
    assert pa - pb == mul_generator((a - b) % N)
    assert -pa == mul_generator(-a % N)
    assert (pa + Point.identity()) == pa
    assert (pa - pa).is_identity()
    assert pa * b == mul_generator(a * b % N) == Scalar(b) * pa
    assert Scalar(a) + Scalar(b) == Scalar(a + b) and Scalar(a) - b == Scalar(a - b)
    assert Scalar(a) * Scalar(b) == Scalar(a * b)
    if a:
        assert Scalar(a) * Scalar(a).inverse() == Scalar(1)


def test_zero_and_identity_multiplication() -> None:
    assert mul_generator(0).is_identity()
    assert (generator() * 0).is_identity()
    assert (Point.identity() * 7).is_identity()
    assert (-Point.identity()).is_identity()
    assert msm([], []).is_identity()
    assert msm([0, 0], [generator(), generator_h()]).is_identity()


def test_msm_of_1000_points_equals_sum_of_single_multiplications() -> None:
    ks = [group.random_scalar() for _ in range(1000)]
    pts = [mul_generator(group.random_scalar()) for _ in range(1000)]
    expected = group.sum_points(p * k for p, k in zip(pts, ks, strict=True))
    assert msm(ks, pts) == expected
    ks[7] = Scalar(0)
    pts[9] = Point.identity()
    assert msm(ks, pts) == group.sum_points(p * k for p, k in zip(pts, ks, strict=True))


def test_msm_across_chunks(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(group, "MSM_CHUNK", 3)
    ks = [Scalar(i + 1) for i in range(10)]
    pts = [generator()] * 10
    assert msm(ks, pts) == mul_generator(55)
    with pytest.raises(InvalidScalar):
        msm(ks, pts[:9])


def test_points_shared_between_threads() -> None:
    h, errors = generator_h(), []

    def work() -> None:
        for i in range(1, 60):
            if h * i != msm([i], [h]):
                errors.append(i)

    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors


# -- hashing and H ---------------------------------------------------------------------------

def test_hash_to_scalar_is_the_documented_construction() -> None:
    domain, parts = b"rongxin/test/v1", (b"a", b"")
    framed = len(domain).to_bytes(2, "big") + domain + b"".join(len(p).to_bytes(4, "big") + p for p in parts)
    wide = hashlib.new("sm3", framed + b"\x00").digest() + hashlib.new("sm3", framed + b"\x01").digest()
    assert group.hash_to_scalar(domain, *parts).value == int.from_bytes(wide, "big") % N
    # framing separates domains and parts
    assert group.hash_to_scalar(b"d", b"ab", b"c") != group.hash_to_scalar(b"d", b"a", b"bc")
    assert group.hash_to_scalar(b"d1", b"x") != group.hash_to_scalar(b"d", b"1x")
    with pytest.raises(InvalidScalar):
        group.hash_to_scalar(b"")


def test_h_is_rederived_independently() -> None:
    """Try-and-increment over SM3 with the even root, in plain Python (p = 3 mod 4)."""
    assert P % 4 == 3
    counter = 0
    while True:
        x = int.from_bytes(hashlib.new("sm3", b"rongxin/pedersen/H/v1" + counter.to_bytes(4, "big")).digest(), "big")
        rhs = (x**3 + A * x + B) % P
        y = pow(rhs, (P + 1) // 4, P)
        if x < P and y * y % P == rhs:
            break
        counter += 1
    if y % 2:
        y = P - y
    h = generator_h()
    assert counter == H_COUNTER
    assert h.to_bytes() == bytes.fromhex(H_HEX)
    assert h.to_bytes(compressed=False) == _uncompressed(x, y)
    assert y.to_bytes(32, "big").hex() == H_Y_HEX
    assert group.hash_to_point_with_counter(group.H_DOMAIN) == (h, H_COUNTER)
    assert h != generator() and not h.is_identity() and (h * N).is_identity()


def test_h_value_is_written_in_the_docs() -> None:
    from pathlib import Path

    text = (Path(__file__).resolve().parents[1] / "docs" / "crypto.md").read_text()
    assert H_HEX in text and H_Y_HEX in text


def test_hash_to_point_other_domains() -> None:
    pts = {group.hash_to_point(f"rongxin/test/{i}".encode()).to_bytes() for i in range(20)}
    assert len(pts) == 20 and all(p[0] == 2 for p in pts)
    with pytest.raises(InvalidPoint):
        group.hash_to_point(b"")


def test_random_scalars_are_nonzero_and_distinct() -> None:
    seen = {group.random_scalar().value for _ in range(200)}
    assert len(seen) == 200 and 0 not in seen and max(seen) < N


def test_selftest_checks_the_group_and_h() -> None:
    from ledger.crypto.selftest import run_known_answer_tests
    from ledger.crypto.vectors import PEDERSEN_H

    assert PEDERSEN_H == H_HEX
    checks = {c.name: c for c in run_known_answer_tests()}
    assert checks["SM2 group: d*G, k*G, MSM"].ok, checks["SM2 group: d*G, k*G, MSM"].detail
    assert checks["Pedersen H re-derived"].ok
