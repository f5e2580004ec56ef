"""Mempool admission, replay refusal, bounds and per-sender fairness."""

from __future__ import annotations

import pytest

from ledger.crypto import SM2PrivateKey
from ledger.mempool import Mempool, MempoolFull
from ledger.tx import InvalidTransaction, Transaction

ALICE, BOB, CAROL = (SM2PrivateKey.generate() for _ in range(3))


def tx(key: SM2PrivateKey, nonce: int | None = None, expiry: int = 100, size: int = 0) -> Transaction:
    return Transaction.build(key, chain="c", type="kv.set", payload={"v": "x" * size}, expiry=expiry, nonce=nonce)


def test_duplicates_replays_and_expired_are_refused_with_reasons() -> None:
    committed_ids: set[bytes] = set()
    used_nonces: set[bytes] = set()
    pool = Mempool(is_committed=committed_ids.__contains__, nonce_used=used_nonces.__contains__)
    a = tx(ALICE, nonce=1)
    pool.add(a, height=1)
    with pytest.raises(InvalidTransaction, match="already pending"):
        pool.add(a, height=1)
    with pytest.raises(InvalidTransaction, match="nonce 1"):
        pool.add(tx(ALICE, nonce=1, size=1), height=1)  # another body, the same nonce
    old = tx(BOB, nonce=5)
    committed_ids.add(old.id)
    with pytest.raises(InvalidTransaction, match="already committed"):
        pool.add(old, height=1)
    used_nonces.add(tx(CAROL, nonce=9).nonce_key)
    with pytest.raises(InvalidTransaction, match="nonce 9"):
        pool.add(tx(CAROL, nonce=9), height=1)
    with pytest.raises(InvalidTransaction, match="expired"):
        pool.add(tx(BOB, expiry=3), height=4)
    assert len(pool) == 1


def test_capacity_and_per_sender_bounds_keep_what_was_admitted() -> None:
    pool = Mempool(capacity=5, per_sender=3)
    for _ in range(3):
        pool.add(tx(ALICE), height=1)
    with pytest.raises(MempoolFull, match="this sender"):
        pool.add(tx(ALICE), height=1)
    pool.add(tx(BOB), height=1)
    pool.add(tx(BOB), height=1)
    with pytest.raises(MempoolFull, match="full"):
        pool.add(tx(CAROL), height=1)
    assert len(pool) == 5


def test_take_is_round_robin_across_senders_and_respects_limits() -> None:
    pool = Mempool()
    flood = [tx(ALICE) for _ in range(50)]
    for t in flood:
        pool.add(t, height=1)
    bob, carol = tx(BOB), tx(CAROL)
    pool.add(bob, height=1)
    pool.add(carol, height=1)
    batch = pool.take(max_count=6, max_bytes=10**6, height=1)
    assert bob in batch and carol in batch, "a flooding sender does not starve the others"
    assert [t for t in batch if t.sender == ALICE.public_key().point] == flood[:4], "arrival order per sender"
    # excluded ids (already in an uncommitted block) are skipped
    again = pool.take(max_count=6, max_bytes=10**6, height=1, exclude={t.id for t in batch})
    assert not {t.id for t in again} & {t.id for t in batch}
    # byte budget
    budget = sum(len(t.body_bytes) + 2 * len(t.signature) for t in flood[:3])
    small = pool.take(max_count=1000, max_bytes=budget, height=1, exclude={bob.id, carol.id})
    assert small == flood[:3]


def test_expired_transactions_are_dropped_when_met_and_removal_frees_nonces() -> None:
    pool = Mempool()
    short = tx(ALICE, expiry=2)
    keep = tx(BOB, expiry=50, nonce=3)
    pool.add(short, height=1)
    pool.add(keep, height=1)
    assert pool.take(10, 10**6, height=5) == [keep]
    assert short.id not in pool
    pool.remove([keep.id])
    assert len(pool) == 0 and pool.senders() == 0
    pool.add(tx(BOB, nonce=3, expiry=60), height=5)  # the nonce is free again once removed
