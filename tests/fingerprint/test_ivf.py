"""The inverted file that serves ORB votes at scale (fingerprint.ivf): the same pictures are
found inside pages as with the flat scan, works registered after a build are found without a
rebuild, removed works are never returned, and the vote rule is the flat one within a word."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import numpy.typing as npt
import pytest

from bench.fingerprint import media as M
from fingerprint import ivf, ivf_build, ivf_vocab
from fingerprint.index import open_index
from fingerprint.service import add_file, query_file

from .test_parts import drawing, iou, page


@pytest.fixture(scope="module")
def ivf_index(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """The part-search works (three drawings sharing a caption, a photo) among 36 other
    drawings; the inverted file is built with the last work left out (registered after)."""
    root = tmp_path_factory.mktemp("ivf")
    works = {"astro.png": cv2.resize(M.photos()[0][1], (512, 512)), "d1.png": drawing(1, caption="PIXSTOCK"),
             "d2.png": drawing(2, caption="PIXSTOCK"), "d3.png": drawing(3, caption="PIXSTOCK")}
    works.update({f"x{i:02d}.png": drawing(100 + i, 480, 360) for i in range(36)})
    for name, a in works.items():
        (root / name).write_bytes(M.encode(a))
    for name in sorted(works)[:-1]:
        add_file(root / name, name, root / "index")
    with open_index(root / "index") as idx:
        assert idx.inverted_file() is None  # 39 pictures: the flat scan
        ivf.OrbInvertedFile(idx.db, idx.folder).build()
        assert idx.inverted_file() is not None
    add_file(root / sorted(works)[-1], sorted(works)[-1], root / "index")
    return root, root / "index"


def _query(root: Path, index: Path, inner: np.ndarray, name: str, scale: float = 0.6) -> tuple[list[str], list[int], object]:
    pg, truth = page(inner, scale, (520, 200), seed=5)
    q = root / f"q-{name}.jpg"
    q.write_bytes(M.encode(pg, ".jpg", 85))
    res = query_file(q, index)
    return [m.work_id for m in res.matches], truth, res


def test_a_picture_inside_a_page_is_found_through_the_inverted_file(ivf_index: tuple[Path, Path]) -> None:
    root, index = ivf_index
    build = json.loads((index / ivf.POINTER).read_text())["build"]
    for work, scale in (("d2.png", 0.45), ("astro.png", 0.6)):
        found, truth, res = _query(root, index, cv2.imread(str(root / work)), work, scale)
        assert found == [work]
        region = res.matches[0].as_dict()["region"]  # type: ignore[attr-defined]
        assert isinstance(region, list) and iou(region, truth) >= 0.8
    assert json.loads((index / ivf.POINTER).read_text())["build"] == build  # no rebuild on query


def test_a_work_registered_after_the_build_is_found(ivf_index: tuple[Path, Path]) -> None:
    root, index = ivf_index
    found, _, _ = _query(root, index, cv2.imread(str(root / "x35.png")), "late")
    assert found == ["x35.png"]


def test_a_shared_caption_still_links_nothing(ivf_index: tuple[Path, Path]) -> None:
    root, index = ivf_index
    for seed in (11, 12):
        found, _, _ = _query(root, index, drawing(seed, caption="PIXSTOCK"), f"neg{seed}", 0.8)
        assert found == []


def test_votes_after_new_works_equal_a_fresh_build(ivf_index: tuple[Path, Path], tmp_path: Path) -> None:
    """The votes merged from the build and the works registered since are exactly those of a
    build holding every work (same vocabulary)."""
    root, index = ivf_index
    copy = tmp_path / "copy"
    shutil.copytree(index, copy)
    pg, _ = page(cv2.imread(str(root / "x35.png")), 0.7, (400, 300), seed=9)
    from fingerprint.parts import parts_features

    _, qd = parts_features(cv2.cvtColor(pg, cv2.COLOR_BGR2GRAY))
    with open_index(index) as a, open_index(copy) as b:
        fa, fb = a.inverted_file(), b.inverted_file()
        assert fa is not None and fb is not None
        before = fa.votes(qd, 48, 0.8)
        fb.ready()
        fb.build()  # the copy's file now holds x35 too
        fb.ready()
        assert fb.max_wid > fa.max_wid
        assert fb.votes(qd, 48, 0.8) == before
        assert fa.votes(qd, 48, None) == fb.votes(qd, 48, None)


def test_a_removed_work_is_never_returned(ivf_index: tuple[Path, Path], tmp_path: Path) -> None:
    root, index = ivf_index
    copy = tmp_path / "copy"
    shutil.copytree(index, copy)
    with open_index(copy) as idx:
        idx.remove("d3.png")
    found, _, _ = _query(root, copy, cv2.imread(str(root / "d3.png")), "removed", 0.9)
    assert "d3.png" not in found


@pytest.mark.parametrize(("masked", "split"), [(None, False), (np.array([2, 4]), False), (np.array([3]), True)])
def test_cells_agree_with_brute_force(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                      masked: npt.NDArray[np.int64] | None, split: bool) -> None:
    """Within each candidate range: the nearest distance, its work (the first on a tie), and
    the nearest distance of any other work, as a brute-force scan finds them; candidates of
    masked works left out; the registered descriptors read from a mapped file as a build's;
    the same when the scan is shared among threads."""
    from fingerprint import scan, threads

    monkeypatch.setattr(scan, "SPLIT_PAIRS", 1 if split else 1 << 60)
    monkeypatch.setattr(threads, "THREADS", 3 if split else 1)
    r = np.random.default_rng(3)
    desc = r.integers(0, 256, (300, 32), dtype=np.uint8)
    desc[100:140] = desc[60:100]  # exact ties between works
    desc[140:150] ^= np.uint8(1)  # and near ones
    wids = r.integers(1, 6, 300).astype(np.int32)
    q = r.integers(0, 256, (40, 32), dtype=np.uint8)
    q[:10] = desc[60:70]
    lo = r.integers(0, 250, 40).astype(np.int64)
    lo[:10] = 55
    n = r.integers(1, 50, 40).astype(np.int64)
    np.save(tmp_path / "desc.npy", desc)
    mapped = np.load(tmp_path / "desc.npy", mmap_mode="r")
    d1, w1, d2 = ivf._cells(q, lo, n, wids, mapped, masked)
    dead = np.zeros(0, np.int64) if masked is None else masked
    for i in range(40):
        d = np.unpackbits(desc[lo[i]:lo[i] + n[i]] ^ q[i], axis=1).sum(axis=1)
        w = wids[lo[i]:lo[i] + n[i]].astype(np.int64)
        d, w = d[~np.isin(w, dead)], w[~np.isin(w, dead)]
        if d.size == 0:
            assert (d1[i], w1[i], d2[i]) == (ivf.NO_OTHER, -1, ivf.NO_OTHER)
            continue
        assert d1[i] == d.min() and w1[i] == w[np.argmin(d)]
        other = d[w != w1[i]]
        assert d2[i] == (other.min() if other.size else ivf.NO_OTHER)
    assert masked is None or not np.isin(w1, masked).any()


def test_postings_outside_the_file_are_a_corrupt_index_not_a_crash() -> None:
    """The compiled scan does not check bounds: offsets that point past the postings (a
    damaged ``offsets.npy``) are refused, typed, before it runs."""
    from fingerprint.errors import IndexCorrupt

    desc = np.zeros((10, 32), np.uint8)
    wids = np.zeros(10, np.int32)
    q = np.zeros((2, 32), np.uint8)
    with pytest.raises(IndexCorrupt):
        ivf._cells(q, np.array([0, 8]), np.array([3, 3]), wids, desc)
    with pytest.raises(IndexCorrupt):
        ivf._cells(q, np.array([-1, 0]), np.array([1, 1]), wids, desc)
    with pytest.raises(IndexCorrupt):
        ivf._cells(q, np.array([0, 0]), np.array([1, 1]), wids, desc[:5])
    d1, w1, d2 = ivf._cells(q, np.array([0, 7]), np.array([3, 3]), wids, desc)
    assert d1.tolist() == [0, 0] and w1.tolist() == [0, 0] and d2.tolist() == [ivf.NO_OTHER] * 2


def test_the_vocabulary_puts_a_descriptor_in_the_word_it_was_trained_on() -> None:
    r = np.random.default_rng(4)
    centres = r.integers(0, 256, (4, 32), dtype=np.uint8)
    noise = np.packbits(r.random((800, 256)) < 0.03, axis=1)
    sample = centres[np.arange(800) % 4] ^ noise
    v = ivf.Vocabulary.train(sample, 4, 800)
    w = v.words(sample)
    for c in range(4):  # each cluster's members share one word, and no other cluster has it
        assert np.unique(w[c::4]).size <= 3
        assert not set(w[c::4].tolist()) & set(np.delete(w, np.arange(c, 800, 4)).tolist())


def test_words_on_two_threads_are_the_nearest_leaf_of_the_nearest_top_word(monkeypatch: pytest.MonkeyPatch) -> None:
    """Quantisation shared among threads gives each descriptor the word a direct search does:
    the nearest leaf (the lower row at a tie) under the nearest top centroid."""
    from fingerprint import threads

    r = np.random.default_rng(6)
    sample = r.integers(0, 256, (4000, 32), dtype=np.uint8)
    v = ivf.Vocabulary.train(sample, 300, 4000)
    q = np.concatenate([sample[:600], r.integers(0, 256, (600, 32), dtype=np.uint8)])

    def ham(a: np.ndarray, b: np.ndarray) -> np.ndarray:
        return np.unpackbits(a[:, None, :] ^ b[None, :, :], axis=2).sum(axis=2)

    top = np.argmin(ham(q, v.top), axis=1)  # argmin: the first (lower row) at a tie
    expect = np.array([v.start[c] + int(np.argmin(ham(q[i:i + 1], v.leaves[v.start[c]:v.start[c + 1]])[0]))
                       for i, c in enumerate(top.tolist())])
    out = {}
    for n in (2, 1):  # two threads first: they build the words' leaf indexes side by side
        monkeypatch.setattr(threads, "THREADS", n)
        out[n] = v.words(q)
    assert np.array_equal(out[1], expect) and np.array_equal(out[2], expect)
    assert q.shape[0] >= ivf_vocab.SPLIT_WORDS  # the two-thread run was shared


# -- builds outside the queries (fingerprint.ivf_build) -------------------------------------------

def _page_descriptors(root: Path, work: str, seed: int = 9) -> np.ndarray:
    from fingerprint.parts import parts_features

    pg, _ = page(cv2.imread(str(root / work)), 0.7, (400, 300), seed=seed)
    return parts_features(cv2.cvtColor(pg, cv2.COLOR_BGR2GRAY))[1]


def _stopped_builder(folder: Path, stage: str, monkeypatch: pytest.MonkeyPatch) -> subprocess.Popen[bytes]:
    """A real builder process, started as a stale query starts one, stopped (SIGSTOP) by
    itself at ``stage``."""
    monkeypatch.setenv(ivf_build.STOP_ENV, stage)
    proc = ivf_build.start(folder, force=True)
    monkeypatch.delenv(ivf_build.STOP_ENV)
    assert proc is not None
    _, status = os.waitpid(proc.pid, os.WUNTRACED)
    assert os.WIFSTOPPED(status)
    return proc


def _wait_stopped(pid: int, limit_s: float = 120.0) -> None:
    """Wait until process ``pid`` (not a child of this one) is stopped (state T)."""
    deadline = time.monotonic() + limit_s
    while Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "T":
        assert time.monotonic() < deadline, f"process {pid} did not stop within {limit_s} s"
        time.sleep(0.02)


def _builds(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.startswith(ivf_build.PREFIX))


def test_a_query_during_a_rebuild_answers_at_once_and_as_the_new_build_will(
        ivf_index: tuple[Path, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """While a builder process is mid-way (stopped after quantising, holding the lock) a query
    answers from the old build plus the works registered since, with the votes the new build
    gives after the switch; no second builder starts."""
    root, index = ivf_index
    copy = tmp_path / "copy"
    shutil.copytree(index, copy)
    qd = {w: _page_descriptors(root, w) for w in ("x35.png", "d2.png")}  # x35: registered after the build
    old = json.loads((copy / ivf.POINTER).read_text())["build"]
    with open_index(copy) as idx:
        f = idx.inverted_file()
        assert f is not None
        before = {w: f.votes(q, 48, 0.8) for w, q in qd.items()}
    assert next(iter(before["x35.png"])) == 40 and next(iter(before["d2.png"])) == 3
    proc = _stopped_builder(copy, "quantised", monkeypatch)
    try:
        assert ivf_build.building(copy) and ivf_build.start(copy) is None  # the lock is held: no second one
        with open_index(copy) as idx:
            f = idx.inverted_file()
            assert f is not None
            during = {w: f.votes(q, 48, 0.8) for w, q in qd.items()}
        assert json.loads((copy / ivf.POINTER).read_text())["build"] == old
    finally:
        os.kill(proc.pid, signal.SIGCONT)
        assert proc.wait() == 0
    assert during == before
    meta = json.loads((copy / ivf.POINTER).read_text())
    assert meta["build"] != old and meta["max_wid"] == 40 and _builds(copy) == [f"orbivf-{meta['build']}"]
    with open_index(copy) as idx:
        f = idx.inverted_file()
        assert f is not None
        assert {w: f.votes(q, 48, 0.8) for w, q in qd.items()} == before
        assert f.backlog()["added_works"] == 0


def test_a_killed_builder_leaves_a_usable_index_and_the_next_build_succeeds(
        ivf_index: tuple[Path, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Killed after quantising (a half-written build folder on disk, the lock held): the old
    build answers, the lock is free, and the next build removes the leftover and switches."""
    root, index = ivf_index
    stage = "quantised"
    copy = tmp_path / "copy"
    shutil.copytree(index, copy)
    old = json.loads((copy / ivf.POINTER).read_text())["build"]
    proc = _stopped_builder(copy, stage, monkeypatch)
    half = [b for b in _builds(copy) if b != f"orbivf-{old}"]
    assert len(half) == 1 and (copy / half[0] / "raw.npy").exists()  # its half-written build
    proc.kill()
    proc.wait()
    assert not ivf_build.building(copy)  # the dead builder's lock is gone with it
    assert json.loads((copy / ivf.POINTER).read_text())["build"] == old
    with open_index(copy) as idx:
        assert next(iter(idx.distinct_votes(_page_descriptors(root, "d2.png"), 48, 0.8))) == "d2.png"
    done = subprocess.run([sys.executable, "-m", "fingerprint.ivf", "build", str(copy), "--force"],
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    meta = json.loads((copy / ivf.POINTER).read_text())
    assert meta["build"] != old and _builds(copy) == [f"orbivf-{meta['build']}"]  # leftovers removed
    with open_index(copy) as idx:
        f = idx.inverted_file()
        assert f is not None and f.backlog()["added_works"] == 0  # x35 is in the new build
        assert next(iter(idx.distinct_votes(_page_descriptors(root, "x35.png"), 48, 0.8))) == "x35.png"


_VOTES = """
import json, sys
import numpy as np
from fingerprint.index import open_index
with open_index(sys.argv[2], create=False) as idx:
    print(json.dumps(idx.distinct_votes(np.load(sys.argv[1]), 48, 0.8)))
"""


def test_two_query_processes_on_a_stale_index_answer_alike_and_start_one_builder(
        ivf_index: tuple[Path, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Two processes query an index whose build is stale at the same time: both answer (the
    builder one of them starts is held stopped until they have), exactly one builder runs,
    and after its switch the answer is the same."""
    root, index = ivf_index
    copy = tmp_path / "copy"
    shutil.copytree(index, copy)
    with open_index(copy) as idx:
        for i in range(8):  # 8 removals + 1 work registered since a build of 39: past REBUILD_SHARE
            idx.remove(f"x{i:02d}.png")
    old = json.loads((copy / ivf.POINTER).read_text())["build"]
    np.save(tmp_path / "q.npy", _page_descriptors(root, "x35.png"))

    def both() -> list[dict[str, int]]:
        procs = [subprocess.Popen([sys.executable, "-c", _VOTES, str(tmp_path / "q.npy"), str(copy)],
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(2)]
        outs = [p.communicate() for p in procs]
        assert all(p.returncode == 0 for p in procs), [e for _, e in outs]
        return [json.loads(o) for o, _ in outs]

    monkeypatch.setenv(ivf_build.STOP_ENV, "started")  # inherited by the builder they start
    during = both()
    monkeypatch.delenv(ivf_build.STOP_ENV)
    assert during[0] == during[1] and next(iter(during[0])) == "x35.png"
    assert not {f"x{i:02d}.png" for i in range(8)} & set(during[0])
    assert ivf_build.building(copy)
    holder = json.loads((copy / ivf_build.LOCK).read_text())
    assert holder["stage"] in ("starting", "started")  # the child may still be importing
    _wait_stopped(holder["pid"])
    now = json.loads((copy / ivf_build.LOCK).read_text())
    assert (now["pid"], now["stage"]) == (holder["pid"], "started")
    os.kill(holder["pid"], signal.SIGCONT)
    while ivf_build.building(copy):
        time.sleep(0.05)
    built = [ln for ln in (copy / ivf_build.LOG).read_text().splitlines() if ln.startswith('{"built"')]
    assert len(built) == 1 and json.loads(built[0])["built"]["works"] == 32
    meta = json.loads((copy / ivf.POINTER).read_text())
    assert meta["build"] != old and meta["works"] == 32 and meta["removals"] == 8
    with open_index(copy) as idx:
        assert idx.distinct_votes(np.load(tmp_path / "q.npy"), 48, 0.8) == during[0]


def test_a_removed_works_wid_given_to_a_new_work_is_searched_as_new(
        ivf_index: tuple[Path, Path], tmp_path: Path) -> None:
    """Removing the newest works lets SQLite give a wid the build holds to the next work: its
    postings in the build are masked and the new work is searched from the database, with
    the votes of a fresh build."""
    root, index = ivf_index
    copy = tmp_path / "copy"
    shutil.copytree(index, copy)
    qd = {w: _page_descriptors(root, w) for w in ("x35.png", "x34.png")}
    with open_index(copy) as idx:
        idx.remove("x35.png")
        idx.remove("x34.png")  # the build's newest work: wid 39
    add_file(root / "x35.png", "again.png", copy)
    with open_index(copy) as idx:
        assert idx.db.execute("SELECT wid FROM works WHERE work_id='again.png'").fetchone()[0] == 39
        f = idx.inverted_file()
        assert f is not None
        served = {w: f.votes(q, 48, 0.8) for w, q in qd.items()}
        assert next(iter(served["x35.png"])) == 39
        f.build()
        assert {w: f.votes(q, 48, 0.8) for w, q in qd.items()} == served  # x34's postings were masked
