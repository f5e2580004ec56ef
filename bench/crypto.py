"""``rongxin bench crypto``: SM2/SM3/SM4 speed beside ``openssl speed`` from the same run.

Figures:
- ``sm2_sign_per_s``, ``sm2_verify_per_s``: one process, one key, a 256-byte message
  (``e = SM3(Z || M)`` computed per call, as the product does); verification here is
  OpenSSL's plain SM2 verify, what any key costs;
- ``sm2_verify_per_s_hot_key``: the same key verified again and again, which the product
  does with precomputed multiples of the key (``ledger.crypto.sm2``: keys that sign often);
- ``sm2_verify_per_s_all_cores``: a ``VerifierPool`` with one worker per core verifying
  distinct (key, message, signature) items with OpenSSL's plain verify, pool start-up excluded;
- ``sm3_mb_per_s``: hashing in 16 KB updates; ``sm4_gcm_mb_per_s``: the product's own
  SM4-GCM (``ledger.crypto.SM4GCM.seal``) sealing 16 KB messages, one call per message, each
  with its fresh nonce, its cipher set-up and its tag (compare the 16 KB column of
  ``openssl speed -evp``);
- ``openssl``: the same keys from ``openssl speed`` (SM2 single and ``-multi``; SM3
  ``-evp sm3``; SM4 ``-evp sm4-ctr``, since Debian's OpenSSL 3.0 has no SM4-GCM);
- ``ratio``: ours ÷ OpenSSL for each key;
- ``group`` (``measure_group``; no ``openssl speed`` counterpart): the SM2 group API of
  ``ledger.crypto.group`` and ``pedersen``: ``point_mul_per_s`` (``[k]P``, arbitrary point,
  constant-time ladder), ``generator_mul_per_s`` (``[k]G``), ``point_decode_per_s``
  (compressed SEC1, a square root each), ``msm_1000_ms`` (``EC_POINTs_mul`` over 1,000
  points and random 256-bit scalars) beside ``single_muls_1000_ms`` (the same sum as 1,000
  ladder multiplications and additions), ``pedersen_commit_per_s``, and
  ``audit_1000_totals_3_parties_ms`` (``verify_totals`` of 1,000 published totals against
  three parties' filed commitments).
"""

from __future__ import annotations

import json
import os
import sys
import time
from typing import Any

from ledger.crypto import SM3, SM4GCM, SM2PrivateKey, group, pedersen
from ledger.crypto.selftest import backend_description
from ledger.crypto.sm2 import use_tables
from ledger.crypto.sm4 import generate_key as sm4_key
from ledger.crypto.verify_pool import VerifierPool

from . import openssl_speed

BLOCK = 16384


def _rate(fn: Any, seconds: float) -> float:
    n, start = 0, time.perf_counter()
    while True:
        fn()
        n += 1
        el = time.perf_counter() - start
        if el >= seconds:
            return n / el


def _best_ms(fn: Any, seconds: float) -> float:
    """The fastest of repeated runs (at least 3) within about ``seconds``, in ms."""
    best, start, runs = float("inf"), time.perf_counter(), 0
    while runs < 3 or time.perf_counter() - start < seconds:
        t = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t)
        runs += 1
    return best * 1e3


def measure_group(seconds: float = 3.0) -> dict[str, Any]:
    k = group.random_scalar()
    pt = group.mul_generator(group.random_scalar())
    enc = pt.to_bytes()
    ks = [group.random_scalar() for _ in range(1000)]
    pts = [group.mul_generator(group.random_scalar()) for _ in range(1000)]
    if group.msm(ks, pts) != group.sum_points(p * s for p, s in zip(pts, ks, strict=True)):
        raise RuntimeError("MSM disagrees with single multiplications")
    msm_ms = _best_ms(lambda: group.msm(ks, pts), seconds)
    single_ms = _best_ms(lambda: group.sum_points(p * s for p, s in zip(pts, ks, strict=True)), seconds)
    parties = [[(i + 1) * j for j in range(1000)] for i in range(3)]
    filed, openings = zip(*(pedersen.commit_vector(v) for v in parties), strict=True)
    totals = [sum(v[j] for v in parties) for j in range(1000)]
    rsums = [pedersen.add_openings(o[j] for o in openings).randomness for j in range(1000)]
    if not pedersen.verify_totals(filed, totals, rsums):
        raise RuntimeError("the audit rejected correct totals")
    return {
        "point_mul_per_s": round(_rate(lambda: pt * k, seconds), 1),
        "generator_mul_per_s": round(_rate(lambda: group.mul_generator(k), seconds), 1),
        "point_decode_per_s": round(_rate(lambda: group.Point.from_bytes(enc), seconds), 1),
        "msm_1000_ms": round(msm_ms, 2),
        "single_muls_1000_ms": round(single_ms, 2),
        "msm_speedup": round(single_ms / msm_ms, 2),
        "pedersen_commit_per_s": round(_rate(lambda: pedersen.commit(123456), seconds), 1),
        "audit_1000_totals_3_parties_ms": round(
            _best_ms(lambda: pedersen.verify_totals(filed, totals, rsums), seconds), 2),
    }


def measure(seconds: float = 3.0) -> dict[str, Any]:
    key = SM2PrivateKey.generate()
    pub = key.public_key()
    msg = os.urandom(256)
    sig = key.sign(msg)
    sign_rate = _rate(lambda: key.sign(msg), seconds)
    use_tables(False)
    try:
        verify_rate = _rate(lambda: pub.verify(sig, msg), seconds)
    finally:
        use_tables(True)
    hot_rate = _rate(lambda: pub.verify(sig, msg), seconds)

    workers = openssl_speed.cores()
    keys = [SM2PrivateKey.generate() for _ in range(16)]
    items = []
    for i in range(int(verify_rate * seconds * workers * 1.2)):
        k = keys[i % len(keys)]
        m = i.to_bytes(8, "big") + msg
        items.append((k.public_key().point, m, k.sign(m)))
    with VerifierPool(workers, tables=False) as pool:
        pool.warm_up()
        pool.verify(items[:200])  # every worker has its key cache and libcrypto loaded
        start = time.perf_counter()
        ok = pool.verify(items)
        all_rate = len(items) / (time.perf_counter() - start)
    if not all(ok):
        raise RuntimeError("the verifier pool rejected a valid signature")

    chunk = os.urandom(BLOCK)
    h = SM3()
    sm3_rate = _rate(lambda: h.update(chunk), seconds) * BLOCK / 1e6
    gcm = SM4GCM(sm4_key())
    gcm_rate = _rate(lambda: gcm.seal(chunk), seconds) * BLOCK / 1e6

    osec = max(1, round(seconds))
    o_sign, o_verify = openssl_speed.sm2(osec)
    _, o_verify_all = openssl_speed.sm2(osec, multi=workers) if workers > 1 else (0.0, o_verify)
    o_sm3 = openssl_speed.cipher_mb_per_s("sm3", osec)
    o_sm4 = openssl_speed.cipher_mb_per_s("sm4-ctr", osec)
    mine = {
        "sm2_sign_per_s": round(sign_rate, 1),
        "sm2_verify_per_s": round(verify_rate, 1),
        "sm2_verify_per_s_all_cores": round(all_rate, 1),
        "sm2_verify_per_s_hot_key": round(hot_rate, 1),
        "sm3_mb_per_s": round(sm3_rate, 1),
        "sm4_gcm_mb_per_s": round(gcm_rate, 1),
    }
    theirs = {
        "sm2_sign_per_s": o_sign,
        "sm2_verify_per_s": o_verify,
        "sm2_verify_per_s_all_cores": o_verify_all,
        "sm2_verify_per_s_hot_key": o_verify,
        "sm3_mb_per_s": round(o_sm3, 1),
        "sm4_gcm_mb_per_s": round(o_sm4, 1),
    }
    return {
        **mine,
        "cores": workers,
        "all_cores_speedup": round(all_rate / verify_rate, 2),
        "group": measure_group(seconds),
        "openssl": theirs,
        "ratio": {k: round(mine[k] / theirs[k], 3) if theirs[k] else None for k in mine},
        "openssl_sm4_mode": "sm4-ctr (no SM4-GCM in Debian's OpenSSL 3.0)",
        "backend": backend_description(),
        "seconds_per_figure": seconds,
    }


def main() -> None:
    json.dump(measure(), sys.stdout)
    print()


if __name__ == "__main__":
    main()
