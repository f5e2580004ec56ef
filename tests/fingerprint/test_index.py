"""The index: add, remove, query, persistence, bulk ingest with bad files, crash safety."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import fingerprint.index as index_mod
from bench.fingerprint import media as M
from fingerprint.errors import DuplicateWork, IndexCorrupt, UnknownWork
from fingerprint.formats import fingerprint_file
from fingerprint.index import open_index
from fingerprint.service import add_dir, query_file


@pytest.fixture
def media_dir(tmp_path: Path, pictures: list[tuple[str, np.ndarray]]) -> Path:
    d = tmp_path / "media"
    d.mkdir()
    for name, a in pictures[:6]:
        (d / f"{name}.jpg").write_bytes(M.encode(a, ".jpg", 90))
    (d / "song.wav").write_bytes(M.wav_bytes(M.music(20, 4), 22050))
    return d


def test_add_query_remove_and_reopen(tmp_path: Path, media_dir: Path) -> None:
    files = sorted(media_dir.iterdir())
    with open_index(tmp_path / "idx") as idx:
        for f in files:
            idx.add(f.name, fingerprint_file(f))
        assert idx.count() == len(files) and idx.count("audio") == 1
        with pytest.raises(DuplicateWork, match="already registered"):
            idx.add(files[0].name, fingerprint_file(files[0]))
    with open_index(tmp_path / "idx", create=False) as idx:
        assert [m.work_id for m in query_file(files[1], idx).matches][:1] == [files[1].name]
        idx.remove(files[1].name)
        assert files[1].name not in [m.work_id for m in query_file(files[1], idx).matches]
        assert idx.count() == len(files) - 1
        with pytest.raises(UnknownWork):
            idx.remove("no-such-work")
        info = idx.info(files[0].name)
        assert info is not None and info.sm3 == fingerprint_file(files[0]).sm3


def test_opening_a_missing_or_foreign_index_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(IndexCorrupt, match="no index here"):
        open_index(tmp_path / "absent", create=False)
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / index_mod.DB_NAME).write_bytes(b"this is not a database" * 100)
    with pytest.raises(IndexCorrupt, match="cannot open"):
        open_index(bad)


def test_bulk_ingest_skips_a_bad_file_and_indexes_the_rest(tmp_path: Path, media_dir: Path) -> None:
    (media_dir / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"\x00" * 40)
    (media_dir / "empty.wav").write_bytes(b"")
    report = add_dir(media_dir, tmp_path / "idx", workers=2)
    assert sorted(n for n, _ in report.failed) == ["broken.png", "empty.wav"]
    assert all(name in reason for name, reason in report.failed)
    assert len(report.added) == 7
    with open_index(tmp_path / "idx") as idx:
        assert idx.count() == 7


CRASHER = """
import os, signal, sys
from fingerprint.formats import fingerprint_file
from fingerprint.index import LocalIndex, open_index

original = LocalIndex._insert_payload
calls = []

def insert_then_die(self, cur, wid, fp):
    calls.append(wid)
    original(self, cur, wid, fp)
    if len(calls) == 4:  # rows of the 4th work are written but not committed
        os.kill(os.getpid(), signal.SIGKILL)

LocalIndex._insert_payload = insert_then_die
idx = open_index(sys.argv[1])
for i, f in enumerate(sys.argv[2:]):
    idx.add(f"w{i}", fingerprint_file(f))
"""


def test_a_crash_during_ingest_leaves_everything_committed_before_it(tmp_path: Path, media_dir: Path) -> None:
    files = sorted(str(f) for f in media_dir.iterdir())
    proc = subprocess.run([sys.executable, "-c", CRASHER, str(tmp_path / "idx"), *files],
                          capture_output=True, timeout=120, check=False)
    assert proc.returncode == -9, proc.stderr.decode()
    with open_index(tmp_path / "idx", create=False) as idx:
        assert idx.work_ids() == ["w0", "w1", "w2"]
        for i in range(3):
            got = [m.work_id for m in query_file(files[i], idx).matches]
            assert got[:1] == [f"w{i}"]
        # the index keeps working after the crash
        idx.add("w3", fingerprint_file(files[3]))
        assert idx.count() == 4


def test_faiss_cache_is_used_only_when_current(tmp_path: Path, media_dir: Path,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(index_mod, "CACHE_MIN_ROWS", 0)
    files = sorted(f for f in media_dir.iterdir() if f.suffix == ".jpg")
    with open_index(tmp_path / "idx") as idx:
        idx.add("a", fingerprint_file(files[0]))
        assert query_file(files[0], idx).matches[0].work_id == "a"
    cache = tmp_path / "idx" / "image.faisscache.npz"
    assert cache.exists()
    # a later add makes the cache stale: it must be rebuilt, not trusted
    with open_index(tmp_path / "idx") as idx:
        idx.add("b", fingerprint_file(files[1]))
    with open_index(tmp_path / "idx") as idx:
        assert query_file(files[1], idx).matches[0].work_id == "b"
    # a damaged cache file is ignored
    cache.write_bytes(b"garbage")
    with open_index(tmp_path / "idx") as idx:
        assert query_file(files[1], idx).matches[0].work_id == "b"
    assert not list((tmp_path / "idx").glob(".*.tmp"))


def test_in_memory_postings_follow_adds_and_removals(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(index_mod, "POSTINGS_MIN_ROWS", 0)
    monkeypatch.setattr(index_mod, "POSTINGS_REBUILD_SHARE", 10.0)
    tracks = {f"t{i}": M.music(20, seed=40 + i) for i in range(3)}
    files = {}
    for name, x in tracks.items():
        files[name] = tmp_path / f"{name}.wav"
        files[name].write_bytes(M.wav_bytes(x, 22050))
    excerpt = {}
    for name, x in tracks.items():
        excerpt[name] = tmp_path / f"{name}-ex.wav"
        excerpt[name].write_bytes(M.wav_bytes(x[22050 * 5:22050 * 15], 22050))
    with open_index(tmp_path / "idx") as idx:
        idx.add("t0", fingerprint_file(files["t0"]))
        idx.add("t1", fingerprint_file(files["t1"]))
        assert query_file(excerpt["t0"], idx).matches[0].work_id == "t0"  # builds the postings
    assert (tmp_path / "idx" / "pairs.postings.npz").exists()
    with open_index(tmp_path / "idx") as idx:
        idx.add("t2", fingerprint_file(files["t2"]))  # newer than the postings: found through SQLite
        assert query_file(excerpt["t2"], idx).matches[0].work_id == "t2"
        assert query_file(excerpt["t1"], idx).matches[0].work_id == "t1"
        idx.remove("t1")  # invalidates the postings
        assert query_file(excerpt["t1"], idx).matches == []
    with open_index(tmp_path / "idx") as idx:
        assert query_file(excerpt["t1"], idx).matches == []
        assert query_file(excerpt["t0"], idx).matches[0].work_id == "t0"
