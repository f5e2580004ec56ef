"""The inverted file that serves ORB votes at scale (fingerprint.ivf): the same pictures are
found inside pages as with the flat scan, works registered after a build are found without a
rebuild, removed works are never returned, and the vote rule is the flat one within a word."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest

from bench.fingerprint import media as M
from fingerprint import ivf
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


def test_cells_agree_with_brute_force() -> None:
    """Within each candidate range: the nearest distance, its work, and the nearest distance
    of any other work, as a brute-force scan finds them."""
    r = np.random.default_rng(3)
    desc = r.integers(0, 256, (300, 32), dtype=np.uint8)
    wids = r.integers(1, 6, 300).astype(np.int32)
    q = r.integers(0, 256, (40, 32), dtype=np.uint8)
    lo = r.integers(0, 250, 40).astype(np.int64)
    n = r.integers(1, 50, 40).astype(np.int64)
    d1, w1, d2 = ivf._cells(q, lo, n, wids, desc)
    for i in range(40):
        d = np.unpackbits(desc[lo[i]:lo[i] + n[i]] ^ q[i], axis=1).sum(axis=1)
        w = wids[lo[i]:lo[i] + n[i]]
        assert d1[i] == d.min() and w1[i] == w[np.argmin(d)]
        other = d[w != w1[i]]
        assert d2[i] == (other.min() if other.size else ivf.NO_OTHER)


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
