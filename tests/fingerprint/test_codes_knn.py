"""The compiled nearest-codes search (fingerprint.scan.knn): what FAISS's flat binary index
returns — the same distances and rows, nearest first, the lower row first at a tie — on one
thread or shared among threads, through the index's code search as well."""

from __future__ import annotations

from pathlib import Path

import faiss
import numpy as np
import pytest

from fingerprint import scan, threads
from fingerprint.arrays import CodeHits, _BinaryIndex


def _codes(seed: int, n: int) -> np.ndarray:
    r = np.random.default_rng(seed)
    db = r.integers(0, 256, (n, 32), dtype=np.uint8)
    src = db[r.integers(0, n, 40)]
    for j in r.integers(0, n, n // 10):  # many identical codes: ties at every rank
        db[j] = src[j % 40]
    return db


def _queries(db: np.ndarray, seed: int, nq: int) -> np.ndarray:
    r = np.random.default_rng(seed)
    q = db[r.integers(0, db.shape[0], nq)].copy()
    flip = r.random(q.shape) < 0.1  # near copies, some exact
    q[nq // 3:] ^= (flip[nq // 3:] * np.uint8(1 << 3)).astype(np.uint8)
    q[-5:] = r.integers(0, 256, (5, 32), dtype=np.uint8)  # and unrelated codes
    return q


@pytest.mark.parametrize("k", [1, 4, 8])
@pytest.mark.parametrize("parts", [1, 2])
def test_knn_is_what_faiss_returns(k: int, parts: int, monkeypatch: pytest.MonkeyPatch) -> None:
    db = _codes(k, 3000)
    q = _queries(db, 10 + k, 61)
    monkeypatch.setattr(threads, "THREADS", parts)
    monkeypatch.setattr(scan, "SPLIT_CODES", 1)
    dist, rows = scan.knn(q, db.view(np.uint64), k)
    faiss.omp_set_num_threads(1)
    ref = faiss.IndexBinaryFlat(256)
    ref.add(db)
    d_ref, r_ref = ref.search(q, k)
    assert np.array_equal(dist, d_ref) and np.array_equal(rows, r_ref)
    assert (dist[:, 0] == 0).sum() >= 61 // 3  # exact copies found at distance 0


def test_knn_breaks_ties_by_the_lower_row() -> None:
    one = np.full((1, 32), 7, np.uint8)
    db = np.concatenate([np.zeros((3, 32), np.uint8), one, one, one, np.zeros((2, 32), np.uint8)])
    dist, rows = scan.knn(one, db.view(np.uint64), 4)
    assert rows.tolist() == [[3, 4, 5, 0]] and dist.tolist()[0][:3] == [0, 0, 0]


def test_knn_refuses_what_it_cannot_answer() -> None:
    db = np.zeros((3, 32), np.uint8)
    with pytest.raises(ValueError):
        scan.knn(db, db.view(np.uint64), 4)  # more neighbours than codes
    with pytest.raises(ValueError):
        scan.knn(db, np.zeros((3, 2), np.uint64), 1)  # not 256-bit codes
    with pytest.raises(ValueError):
        scan.knn(np.zeros((4, 16), np.uint8), db.view(np.uint64), 1)  # queries not of 32 bytes
    with pytest.raises(ValueError):
        scan.within(np.zeros((4, 16), np.uint8), db.view(np.uint64), 10)
    with pytest.raises(ValueError):
        _BinaryIndex(db, np.arange(2, dtype=np.int64), np.zeros(3), 256)  # a work for every code
    with pytest.raises(ValueError):
        _BinaryIndex(np.zeros((6, 16), np.uint8), np.arange(6, dtype=np.int64), np.zeros(6), 256)


def test_unaligned_codes_are_read_as_aligned_ones() -> None:
    db = _codes(3, 500)
    raw = np.frombuffer(b"x" + db.tobytes(), np.uint8)[1:].reshape(-1, 32)  # off by one byte
    idx = _BinaryIndex(raw, np.arange(500, dtype=np.int64), np.zeros(500), 256)
    q = _queries(db, 4, 20)
    assert np.array_equal(idx.knn(q, 3)[1], _BinaryIndex(db, np.arange(500, dtype=np.int64), np.zeros(500), 256)
                          .knn(q, 3)[1])


@pytest.mark.parametrize("parts", [1, 2])
def test_within_is_what_faiss_range_search_returns(parts: int, monkeypatch: pytest.MonkeyPatch) -> None:
    db = _codes(9, 4000)
    q = _queries(db, 19, 50)
    monkeypatch.setattr(threads, "THREADS", parts)
    monkeypatch.setattr(scan, "SPLIT_CODES", 1)
    faiss.omp_set_num_threads(1)
    ref = faiss.IndexBinaryFlat(256)
    ref.add(db)
    for radius in (0, 30, 48, 110):
        lims, d_ref, i_ref = ref.range_search(q, radius + 1)
        rows, ids, dist = scan.within(q, db.view(np.uint64), radius)
        assert np.array_equal(rows, np.repeat(np.arange(50), np.diff(lims.astype(np.int64))))
        assert np.array_equal(ids, i_ref) and np.array_equal(dist, d_ref)
    assert rows.size > 2 * 1024  # many hits at 110 bits: each part grew past its first buffer (1 024)


def test_the_code_index_answers_as_faiss_does() -> None:
    db = _codes(5, 2000)
    q = _queries(db, 6, 30)
    idx = _BinaryIndex(db, np.arange(2000, dtype=np.int64) // 3, np.zeros(2000), 256)
    rows, ids, dist = idx.knn(q, 8)
    ref = faiss.IndexBinaryFlat(256)
    ref.add(db)
    d_ref, i_ref = ref.search(q, 8)
    assert np.array_equal(rows, np.repeat(np.arange(30), 8))
    assert np.array_equal(ids, i_ref.reshape(-1)) and np.array_equal(dist, d_ref.reshape(-1))
    lims, rd, ri = ref.range_search(q, 41)
    r_rows, r_ids, r_dist = idx.range(q, 40)
    assert np.array_equal(r_ids, ri) and np.array_equal(r_dist, rd)
    assert np.array_equal(r_rows, np.repeat(np.arange(30), np.diff(lims.astype(np.int64))))


def test_work_names_are_read_at_once_and_unknown_rows_named_by_number(tmp_path: Path) -> None:
    from fingerprint.index import open_index

    with open_index(tmp_path / "idx") as index:
        cur = index.db.cursor()
        cur.executemany("INSERT INTO works (wid, work_id, modality, sm3, version, duration_s, size, added_at) "
                        "VALUES (?, ?, 'image', '', 2, NULL, 0, 0)", [(w, f"work-{w}") for w in range(1, 1201)])
        index.db.commit()
        wids = [*range(1, 1201), 5000]
        index._learn_names(wids)
        assert [index._names[w] for w in (1, 600, 1200, 5000)] == ["work-1", "work-600", "work-1200", "#5000"]
        assert index._name(777) == "work-777"


def test_a_combined_search_splits_into_its_parts() -> None:
    """Two searches made as one (the whole query's codes, then its rectangles'): each part's
    hits, renumbered from its own first row, are those of searching it alone."""
    db = _codes(7, 1500)
    a, b = _queries(db, 8, 8), _queries(db, 9, 20)
    idx = _BinaryIndex(db, np.arange(1500, dtype=np.int64), np.zeros(1500), 256)

    def hits(q: np.ndarray) -> CodeHits:
        rows, ids, dist = idx.knn(q, 8)
        return CodeHits(rows, [f"w{i}" for i in ids.tolist()], np.zeros(rows.size), dist)

    both = hits(np.concatenate([a, b]))
    for part, alone in ((both.rows(0, 8), hits(a)), (both.rows(8, 28), hits(b))):
        assert np.array_equal(part.query_rows, alone.query_rows) and part.work_ids == alone.work_ids
        assert np.array_equal(part.distances, alone.distances)
