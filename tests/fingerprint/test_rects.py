"""Rectangles in a still picture (fingerprint.rects) and their codes: a registered picture shown
inside a page, a collage or an inset is found by the DCT code of the rectangle it occupies,
even when it has almost no keypoints (smooth digital art); a rectangle of another picture, or
one too flat to decide a code, is no evidence."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import cv2
import numpy as np
import pytest

from bench.fingerprint import media as M
from fingerprint import matching, rects
from fingerprint.image import MIN_QUALITY, box_codes, fingerprint_image_array, hamming, to_gray
from fingerprint.index import open_index
from fingerprint.service import add_file, query_file


def smooth_art(seed: int, w: int = 600, h: int = 400) -> np.ndarray:
    """Soft gradients and blurred blobs: digital art with few ORB keypoints."""
    r = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    im = np.zeros((h, w, 3), np.float32)
    for c in range(3):
        im[..., c] = (r.uniform(30, 120) + r.uniform(-80, 80) * np.sin(xx / w * r.uniform(1, 4) + r.uniform(0, 6))
                      + r.uniform(-60, 60) * np.cos(yy / h * r.uniform(1, 3)))
    for _ in range(24):
        blob = np.zeros((h, w), np.float32)
        cv2.circle(blob, (int(r.integers(0, w)), int(r.integers(0, h))), int(r.integers(20, 90)), 1.0, -1)
        blob = cv2.GaussianBlur(blob, (0, 0), 10)
        im += blob[..., None] * r.uniform(-90, 90, 3)[None, None, :]
    return np.asarray(im.clip(0, 255), np.uint8)


def page(inner: np.ndarray, scale: float, at: tuple[int, int], seed: int, bg: int = 250) -> tuple[np.ndarray, list[int]]:
    """A screenshot-like page: a title bar, lines of text running up to the picture, a filler."""
    r = np.random.default_rng(seed)
    pg = np.full((1100, 1300, 3), bg, np.uint8)
    cv2.rectangle(pg, (0, 0), (1300, 60), (90, 50, 30), -1)
    for k in range(24):
        line = "".join(r.choice(list("abcdefgh ijklmn opqrstu")) for _ in range(60))
        cv2.putText(pg, line, (30, 100 + 40 * k), cv2.FONT_HERSHEY_PLAIN, 1.3, (40, 40, 40), 1)
    pg[880:1080, 30:300] = cv2.resize(smooth_art(seed + 1000), (270, 200))
    im = cv2.resize(inner, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
    h, w = im.shape[:2]
    x, y = at
    pg[y:y + h, x:x + w] = im
    return pg, [x, y, w, h]


def jpeg(a: np.ndarray, q: int = 85) -> np.ndarray:
    return np.asarray(cv2.imdecode(np.frombuffer(M.encode(a, ".jpg", q), np.uint8), cv2.IMREAD_COLOR), np.uint8)


def near(found: list[tuple[int, int, int, int]], truth: list[int], tol: int = 2) -> bool:
    x, y, w, h = truth
    return any(abs(b[0] - x) <= tol and abs(b[1] - y) <= tol and abs(b[0] + b[2] - x - w) <= tol
               and abs(b[1] + b[3] - y - h) <= tol for b in found)


@pytest.mark.parametrize(("scale", "at"), [(0.4, (700, 300)), (0.7, (450, 420)), (1.0, (620, 130))])
def test_a_picture_in_a_page_is_a_rectangle(scale: float, at: tuple[int, int]) -> None:
    pg, truth = page(smooth_art(1), scale, at, seed=3)
    assert near(rects.boxes(jpeg(pg)), truth)


def test_a_tile_cut_off_by_the_frame_and_an_inset_are_rectangles() -> None:
    # a collage tile running to the picture's right and bottom edges: the frame is its side
    pg = np.full((800, 1000, 3), 20, np.uint8)
    pg[20:380, 20:480] = cv2.resize(smooth_art(5), (460, 360))
    pg[400:800, 500:1000] = cv2.resize(smooth_art(6), (500, 400))
    assert near(rects.boxes(jpeg(pg)), [500, 400, 500, 400])
    # an inset with a white frame over a full-frame picture
    pg = cv2.resize(smooth_art(7), (1200, 900))
    cv2.rectangle(pg, (597, 197), (1003, 503), (255, 255, 255), -1)
    pg[200:500, 600:1000] = cv2.resize(smooth_art(8), (400, 300))
    found = rects.boxes(jpeg(pg))
    assert near(found, [600, 200, 400, 300]) or near(found, [597, 197, 406, 306])


def test_a_side_the_colour_of_the_page_is_implied_by_the_corners() -> None:
    """A picture whose top edge is the page's own colour: its left and right sides end at the
    same row, which is the top."""
    art = smooth_art(9)
    art[:3] = 250  # a top row as light as the page
    pg, truth = page(art, 0.8, (500, 300), seed=4)
    assert near(rects.boxes(jpeg(pg, 92)), truth, tol=3)


def test_small_flat_and_grey_pictures_give_no_or_few_rectangles() -> None:
    assert rects.boxes(np.zeros((30, 500, 3), np.uint8)) == []
    assert rects.boxes(np.full((600, 800, 3), 128, np.uint8)) == []
    g = to_gray(page(smooth_art(2), 0.6, (500, 300), seed=5)[0])
    assert near(rects.boxes(g), [500, 300, 360, 240])  # a grey query works too
    assert len(rects.boxes(jpeg(page(smooth_art(2), 0.6, (500, 300), seed=5)[0]))) <= rects.MAX_BOXES


def test_a_rectangle_is_trimmed_like_the_registered_picture() -> None:
    """A figure on a flat grey margin above and to its right (trimmed at registration) shown
    small inside a JPEG page: the margin comes back noisy and the rectangle's edge rings, yet
    one of the rectangle's codes is the registered code within a few bits."""
    art = smooth_art(11, 500, 500)
    art[:60] = (96, 96, 96)
    art[:, -50:] = (96, 96, 96)
    reg = fingerprint_image_array(art)
    assert min(hamming(c[0], reg.code) for c, _, _ in box_codes(to_gray(art), (0, 0, 500, 500))) == 0
    pg, (x, y, w, h) = page(art, 0.42, (600, 400), seed=6)
    codes = [(c, q) for c, q, _ in box_codes(to_gray(jpeg(pg)), (x, y, w, h))]
    assert min(hamming(c[0], reg.code) for c, _ in codes) <= 24
    # trimmed at the registration's tolerance only, without the shave, the code is lost
    assert len(codes) >= 2


@pytest.fixture(scope="module")
def art_index(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("rects")
    for k in (21, 22, 23):
        (root / f"art{k}.png").write_bytes(M.encode(smooth_art(k)))
        add_file(root / f"art{k}.png", f"art{k}.png", root / "index")
    return root, root / "index"


def test_smooth_art_inside_a_page_is_found_by_its_rectangle(art_index: tuple[Path, Path]) -> None:
    root, index = art_index
    pg, truth = page(smooth_art(22), 0.45, (640, 360), seed=8)
    q = root / "page22.jpg"
    q.write_bytes(M.encode(pg, ".jpg", 85))
    res = query_file(q, index)
    assert [m.work_id for m in res.matches] == ["art22.png"]
    m = res.matches[0]
    assert m.method in ("dct-region", "parts") and m.score >= 1.0
    assert m.region is not None and near([m.region], truth, tol=4)
    assert m.query_share == pytest.approx(truth[2] * truth[3] / (1300 * 1100), rel=0.2)


def test_the_rectangle_codes_alone_place_the_work(art_index: tuple[Path, Path]) -> None:
    """The rectangle path on its own (part search and whole-picture ORB not asked): the work,
    its rectangle as the region, and a score from the code distance."""
    _, index = art_index
    pg, truth = page(smooth_art(23), 0.4, (300, 500), seed=9)
    fp = fingerprint_image_array(jpeg(pg), query=True)
    assert fp.rect_boxes and len(fp.rect_codes) == len(fp.rect_boxes) == len(fp.rect_quality)
    found: dict[str, matching.Match] = {}
    matching._rects(open_index(index), fp, found, {})
    assert list(found) == ["art23.png"]
    m = found["art23.png"]
    assert m.method == "dct-region" and m.region is not None and near([m.region], truth, tol=3)
    assert 1.0 <= m.score <= (256 / (256 - matching.IMAGE_MAX_DISTANCE))
    # the same rectangles with codes too weakly decided (quality below the bound) are no evidence
    found = {}
    weak = replace(fp, rect_quality=tuple(min(qv, MIN_QUALITY - 0.1) for qv in fp.rect_quality))
    matching._rects(open_index(index), weak, found, {})
    assert found == {}


def test_a_mirrored_picture_in_a_page_is_found_by_its_rectangle(art_index: tuple[Path, Path]) -> None:
    _, index = art_index
    pg, truth = page(np.ascontiguousarray(smooth_art(21)[:, ::-1]), 0.5, (500, 420), seed=10)
    fp = fingerprint_image_array(jpeg(pg), query=True)
    found: dict[str, matching.Match] = {}
    matching._rects(open_index(index), fp, found, {})
    assert list(found) == ["art21.png"] and found["art21.png"].region is not None
    assert near([found["art21.png"].region], truth, tol=3)


def test_unregistered_art_in_the_same_page_matches_nothing(art_index: tuple[Path, Path]) -> None:
    root, index = art_index
    for seed in (31, 32):
        pg, _ = page(smooth_art(seed), 0.6, (560, 300), seed=seed)
        q = root / f"neg{seed}.jpg"
        q.write_bytes(M.encode(pg, ".jpg", 85))
        assert query_file(q, index).matches == []


@pytest.mark.parametrize("across", [True, False])
def test_spans_agree_with_a_line_by_line_count(across: bool) -> None:
    """The compiled span scan: for pairs of long parallel segments, the first and last
    perpendicular lines covered at least MIN_COVER between them, as counting each line's
    pixels finds them."""
    r = np.random.default_rng(5)
    m = (r.random((300, 300)) < 0.5).astype(np.uint8)
    m[:, 100:220] = 1  # a band of fully covered lines
    integral = np.asarray(cv2.integral(m), np.int32)
    segs = np.array([[20, 40, 290], [200, 50, 280], [120, 30, 260], [60, 45, 295]], np.int64)
    out = rects._spans(rects._geometry(segs), integral, across)
    assert out.shape[0] > 0
    for a, b, first, last in out.tolist():
        def covered(ln: int) -> bool:
            line = m[a:b, ln] if across else m[ln, a:b]
            return bool(line.sum() >= rects.MIN_COVER * (b - a))
        assert covered(first) and covered(last) and last - first >= rects.MIN_SIDE
        seg = [s for s in segs.tolist() if s[0] in (a, b)]
        lo = max(0, max(s[1] for s in seg) - rects.REFINE)
        assert not any(covered(ln) for ln in range(lo, first))
        limit = integral.shape[1 if across else 0] - 2
        hi = min(limit, min(s[2] for s in seg) + rects.REFINE)
        assert not any(covered(ln) for ln in range(last + 1, hi + 1))


@pytest.mark.parametrize("cols", [False, True])
def test_runs_are_every_long_run_of_the_map(cols: bool) -> None:
    """The compiled run finder: every run of set pixels of at least MIN_RUN along each line
    (rows, or columns), touching either end or not, line by line and start by start; a run
    one short of MIN_RUN is not one; more than MAX_SEGMENTS: the longest, the earlier of
    equal ones."""
    r = np.random.default_rng(3)
    m = np.zeros((150, 500), np.uint8)
    for ln in range(150):
        x = 0
        while x < 500:  # runs of random lengths around MIN_RUN, some at the line's ends
            n = int(r.integers(1, 2 * rects.MIN_RUN))
            m[ln, x:x + n] = r.random() < 0.6
            x += n + int(r.integers(0, 3))
    m[5, :rects.MIN_RUN - 1] = 1
    m[5, rects.MIN_RUN - 1] = 0
    grid = m.T.copy() if cols else m

    expect = []  # a line-by-line walk
    for ln in range(150):
        line, x = m[ln], 0
        while x < 500:
            if line[x]:
                e = x
                while e < 500 and line[e]:
                    e += 1
                if e - x >= rects.MIN_RUN:
                    expect.append([ln, x, e])
                x = e
            else:
                x += 1
    assert len(expect) > rects.MAX_SEGMENTS  # the longest are kept
    got = rects._runs(grid, cols=cols)
    if len(expect) > rects.MAX_SEGMENTS:
        keep = sorted(range(len(expect)), key=lambda i: (-(expect[i][2] - expect[i][1]), i))[:rects.MAX_SEGMENTS]
        expect = [expect[i] for i in keep]
    assert got.tolist() == expect
    assert not any(s[0] == 5 and s[1] == 0 for s in got.tolist())


def test_refine_moves_each_side_as_the_numpy_passes_did() -> None:
    """The compiled refinement against a direct numpy rendering of its rule: twice over the
    sides top, bottom, left, right, each side moved to the best-covered line within REFINE
    (nearest first, the first of equally covered ones), each move seen by the next side."""
    r = np.random.default_rng(8)
    h, w = 120, 160
    bh = (r.random((h + 1, w)) < 0.3).astype(np.uint8)
    bv = (r.random((h, w + 1)) < 0.3).astype(np.uint8)
    bh[40, 30:130] = 1  # a clean top side near row 40
    bv[35:100, 52] = 1  # and a left side near column 52
    rh = np.asarray(cv2.integral(bh), np.int32)
    rv = np.asarray(cv2.integral(bv), np.int32)
    x0 = r.integers(0, w - 50, 200)
    y0 = r.integers(0, h - 50, 200)
    bx = np.stack([x0, y0, x0 + r.integers(40, 50, 200), y0 + r.integers(40, 50, 200)], axis=1).astype(np.int64)
    bx = np.concatenate([bx, np.array([[50, 42, 130, 100], [0, 0, w, h]], np.int64)])

    def cover(line: int, lo: int, hi: int, across: bool) -> float:
        seg = bv[lo:hi, line] if across else bh[line, lo:hi]
        return float(seg.sum()) / max(hi - lo, 1)

    expect = bx.copy()
    for row in expect:
        for _ in range(2):
            for side, across, (a, b), limit in ((1, False, (0, 2), h), (3, False, (0, 2), h),
                                                (0, True, (1, 3), w), (2, True, (1, 3), w)):
                cands = [min(max(int(row[side]) + o, 0), limit) for o in rects._OFFSETS.tolist()]
                covers = [cover(c, int(row[a]), int(row[b]), across) for c in cands]
                row[side] = cands[covers.index(max(covers))]
    got = rects._refine(rh, rv, bx)
    assert np.array_equal(got, expect)
    assert got[-2].tolist()[:2] == [52, 40]  # the clean sides found
    with pytest.raises(ValueError):
        rects._refine(rh, rv, np.array([[0, 0, w + 1, 10]], np.int64))


@pytest.mark.parametrize(("n", "hi"), [(0, 5), (1, 5), (7, 3), (5000, 4), (5000, 2000)])
def test_unique_rows_are_numpys(n: int, hi: int) -> None:
    """Candidate boxes deduplicated as ``np.unique(axis=0)`` does: the distinct rows, sorted."""
    bx = np.random.default_rng(n + hi).integers(0, hi, (n, 4)).astype(np.int64)
    got = rects._unique_rows(bx)
    assert got.dtype == np.int64 and np.array_equal(got, np.unique(bx, axis=0).reshape(-1, 4))
