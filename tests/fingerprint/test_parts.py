"""Search by parts of pictures: a registered picture inside a page is found with its region;
a caption shared by unrelated pictures never links them."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from bench.fingerprint import media as M
from fingerprint import parts
from fingerprint.index import open_index
from fingerprint.service import add_file, query_file


def drawing(seed: int, w: int = 640, h: int = 480, caption: str = "") -> np.ndarray:
    """Shapes on a gradient, with an optional caption (the same on every picture)."""
    r = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    im = np.stack([(xx / w * r.uniform(40, 200) + yy / h * r.uniform(0, 50)) for _ in range(3)], -1)
    im = im.clip(0, 255).astype(np.uint8)
    for _ in range(30):
        c = tuple(int(x) for x in r.integers(0, 255, 3))
        p = (int(r.integers(0, w)), int(r.integers(0, h)))
        if r.random() < 0.5:
            cv2.ellipse(im, p, (int(r.integers(8, 90)), int(r.integers(8, 60))), float(r.uniform(0, 180)), 0, 360, c, -1)
        else:
            pts = r.integers(0, [w, h], (4, 2)).astype(np.int32)
            cv2.polylines(im, [pts], True, c, int(r.integers(2, 6)))
    if caption:
        cv2.putText(im, caption, (20, h - 25), cv2.FONT_HERSHEY_SIMPLEX, 1.6, (255, 255, 255), 3)
    return np.asarray(cv2.GaussianBlur(im, (3, 3), 0), dtype=np.uint8)


def page(inner: np.ndarray, scale: float, at: tuple[int, int], seed: int) -> tuple[np.ndarray, list[int]]:
    """A screenshot-like page: a title bar, lines of text, a filler picture, ``inner`` scaled."""
    r = np.random.default_rng(seed)
    pg = np.full((1100, 1300, 3), 250, np.uint8)
    cv2.rectangle(pg, (0, 0), (1300, 60), (90, 50, 30), -1)
    for k in range(24):
        line = "".join(r.choice(list("abcdefgh ijklmn opqrstu")) for _ in range(55))
        cv2.putText(pg, line, (30, 100 + 40 * k), cv2.FONT_HERSHEY_PLAIN, 1.3, (40, 40, 40), 1)
    pg[880:1080, 30:300] = cv2.resize(drawing(seed + 1000), (270, 200))
    im = cv2.resize(inner, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
    h, w = im.shape[:2]
    x, y = at
    pg[y:y + h, x:x + w] = im
    return pg, [x, y, w, h]


def iou(a: list[int], b: list[int]) -> float:
    ix = max(0, min(a[0] + a[2], b[0] + b[2]) - max(a[0], b[0]))
    iy = max(0, min(a[1] + a[3], b[1] + b[3]) - max(a[1], b[1]))
    return ix * iy / (a[2] * a[3] + b[2] * b[3] - ix * iy)


@pytest.fixture(scope="module")
def part_index(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("parts")
    photos = M.photos()
    works = {"astro.png": cv2.resize(photos[0][1], (512, 512)), "d1.png": drawing(1, caption="PIXSTOCK"),
             "d2.png": drawing(2, caption="PIXSTOCK"), "d3.png": drawing(3, caption="PIXSTOCK")}
    for name, a in works.items():
        (root / name).write_bytes(M.encode(a))
        add_file(root / name, name, root / "index")
    return root, root / "index"


@pytest.mark.parametrize(("work", "scale", "at"), [("d2.png", 0.45, (700, 300)), ("astro.png", 0.6, (420, 380)),
                                                   ("d3.png", 1.0, (500, 120))])
def test_a_picture_inside_a_page_is_found_with_its_region(part_index: tuple[Path, Path], work: str,
                                                          scale: float, at: tuple[int, int]) -> None:
    root, index = part_index
    inner = cv2.imread(str(root / work))
    pg, truth = page(inner, scale, at, seed=7)
    q = root / f"page-{work}.jpg"
    q.write_bytes(M.encode(pg, ".jpg", 80))
    res = query_file(q, index)
    assert res.matches and res.matches[0].work_id == work
    top = res.matches[0].as_dict()
    assert isinstance(top["region"], list) and iou(top["region"], truth) >= 0.8
    assert top["query_share"] == pytest.approx(truth[2] * truth[3] / (1300 * 1100), rel=0.3)
    assert res.matches[0].inliers is not None and res.matches[0].inliers >= parts.MIN_INLIERS
    assert len(res.matches) == 1  # the other works, sharing a caption, are not claimed


def test_a_shared_caption_links_nothing(part_index: tuple[Path, Path]) -> None:
    """An unregistered picture with the same caption as every registered one, inside a page."""
    root, index = part_index
    for seed in (11, 12, 13):
        pg, _ = page(drawing(seed, caption="PIXSTOCK"), 0.8, (400, 250), seed=seed)
        q = root / f"neg-{seed}.jpg"
        q.write_bytes(M.encode(pg, ".jpg", 85))
        assert query_file(q, index).matches == []


def test_the_whole_picture_is_its_own_region(part_index: tuple[Path, Path]) -> None:
    root, index = part_index
    res = query_file(root / "d1.png", index)
    assert res.matches[0].work_id == "d1.png" and res.matches[0].region == (0, 0, 640, 480)


def test_image_size_is_recorded_and_removed_with_the_work(part_index: tuple[Path, Path]) -> None:
    root, index = part_index
    with open_index(index) as idx:
        assert idx.image_size("d2.png") == (640, 480)
        add_file(root / "d2.png", "tmp-copy", idx)
        assert idx.image_size("tmp-copy") == (640, 480)
        idx.remove("tmp-copy")
        assert idx.image_size("tmp-copy") is None


def test_inliers_in_one_small_window_are_not_independent() -> None:
    frame = (0.0, 0.0, 600.0, 300.0)
    caption = np.array([[20 + 10 * k, 270] for k in range(15)], np.float32)  # one line, one corner
    assert parts.outside_densest(caption, frame) < parts.MIN_OUTSIDE
    spread_out = np.array([[x, y] for x in range(50, 600, 100) for y in (50, 150, 250)], np.float32)
    assert parts.outside_densest(spread_out, frame) >= parts.MIN_OUTSIDE


def test_query_features_are_in_the_query_pixels() -> None:
    gray = cv2.cvtColor(drawing(5, 2400, 1800), cv2.COLOR_BGR2GRAY)
    pts, desc = parts.parts_features(gray)
    assert desc.shape[1] == 32 and pts.shape[0] == desc.shape[0] > 500
    assert pts[:, 0].max() > 0.9 * 2400 and pts[:, 1].max() > 0.9 * 1800  # rescaled back
    assert pts[:, 0].max() < 2400 and pts[:, 1].max() < 1800


def test_zoom_tiles_are_those_of_the_rectangles_shown_small() -> None:
    shape, first, zoom = (1000, 1600), 1.0, 2.0  # the enlarged query: 2000 × 3200, tiles 250 × 400
    every = [(ty, tx) for ty in range(parts.PARTS_TILES) for tx in range(parts.PARTS_TILES)]
    assert parts.zoom_tiles([], shape, first, zoom) == every  # no rectangle found: the whole page
    # 300 × 200 at (500, 300) → enlarged x 1000..1600, y 600..1000: columns 2-3, rows 2-3
    assert parts.zoom_tiles([(500, 300, 300, 200)], shape, first, zoom) == [(2, 2), (2, 3), (3, 2), (3, 3)]
    # one touching a tile's edge from outside does not take it: x 800..1200 enlarged is column 2 only
    assert parts.zoom_tiles([(400, 0, 200, 100)], shape, first, zoom) == [(0, 2)]
    big = (0, 0, parts.ZOOM_BOX_SIDE + 1, 100)  # shown at least as large as registered: not enlarged
    assert parts.zoom_tiles([big], shape, first, zoom) == []
    assert parts.zoom_tiles([big], shape, 0.5, zoom) == [(0, 0), (0, 1), (0, 2)]  # the first pass halves it


def test_the_enlarged_pass_on_small_rectangles_keeps_their_keypoints() -> None:
    """With the page's rectangles, the enlarged pass detects in their tiles only: its keypoints
    are those the whole enlarged pass finds there (but for art keypoints, which are kept by
    strength over the tiles looked at, so a few differ where smooth parts are), and nearly all
    of those inside the picture are kept."""
    from fingerprint.image import to_gray
    from fingerprint.rects import boxes

    pg, reg = page(drawing(11), 0.5, (500, 300), 11)
    gray = to_gray(pg)
    whole = parts.parts_features(gray)
    found = boxes(pg)
    calls: list[int] = []

    def later() -> list[tuple[int, int, int, int]]:
        calls.append(1)
        return found

    some = parts.parts_features(gray, later)
    assert calls == [1]

    def keyed(f: tuple[np.ndarray, np.ndarray]) -> set[tuple[float, float, bytes]]:
        return {(round(float(x), 2), round(float(y), 2), bytes(d)) for (x, y), d in zip(*f, strict=True)}

    w, s = keyed(whole), keyed(some)
    assert len(s - w) <= 0.02 * len(s) and len(s) < 0.8 * len(w)
    x, y, bw, bh = reg
    inside = {k for k in w if x <= k[0] < x + bw and y <= k[1] < y + bh}
    # the tiled ORB keypoints are the same; the art keypoints are retained by strength over the
    # tiles looked at, so a few of them differ
    assert len(inside) > 200 and len(inside & s) >= 0.95 * len(inside)
    # no rectangle shown small: the first pass only
    first = parts.parts_features(gray, [(0, 0, 1300, 1100)])
    assert len(keyed(first) - w) <= 0.02 * len(first[1]) and len(first[1]) < len(some[1])
    # a query no larger than ZOOM_WHOLE_SIDE is enlarged whole, whatever its rectangles; one a
    # pixel larger only where they are
    for side, whole_again in ((parts.ZOOM_WHOLE_SIDE, True), (parts.ZOOM_WHOLE_SIDE + 1, False)):
        small = np.ascontiguousarray(gray[250:250 + 700, 200:200 + side])
        a, b = parts.parts_features(small), parts.parts_features(small, [(100, 50, 320, 240)])
        assert small.shape[1] == side
        if whole_again:
            assert np.array_equal(a[0], b[0]) and np.array_equal(a[1], b[1])
        else:
            assert len(b[1]) < 0.8 * len(a[1])


def test_threads_give_the_keypoints_of_one_thread(monkeypatch: pytest.MonkeyPatch) -> None:
    """The tiles detected side by side, and the rectangles beside them: the same query
    fingerprint, field by field and in the same order, as in one thread."""
    from fingerprint import threads
    from fingerprint.image import _rect_codes, fingerprint_image_array, to_gray

    pg, _ = page(drawing(11), 0.5, (500, 300), 11)
    gray = to_gray(pg)
    one, two = [], []
    for n, out in ((1, one), (2, two)):
        monkeypatch.setattr(threads, "THREADS", n)
        out.append(parts.parts_features(gray))
        out.append(fingerprint_image_array(pg, query=True))
    assert np.array_equal(one[0][0], two[0][0]) and np.array_equal(one[0][1], two[0][1])
    assert one[0][1].shape[0] > 1000
    a, b = one[1], two[1]
    assert a.parts_descriptors is not None and b.parts_descriptors is not None
    assert np.array_equal(a.parts_descriptors, b.parts_descriptors) and np.array_equal(a.parts_points, b.parts_points)
    boxes, codes, quality, cuts = _rect_codes(pg, gray)  # in this thread
    # the query's enlarged pass looked at the tiles of its small rectangles
    assert np.array_equal(a.parts_descriptors, parts.parts_features(gray, sorted(set(boxes)))[1])
    assert a.rect_boxes == b.rect_boxes == boxes and a.rect_codes == b.rect_codes == codes and len(boxes) > 0
    assert a.rect_quality == b.rect_quality == quality and a.rect_cuts == b.rect_cuts == cuts


def test_a_failure_beside_the_tiles_leaves_none_running(monkeypatch: pytest.MonkeyPatch) -> None:
    """``meanwhile`` failing while the pool detects the tiles: its error is raised, and only
    after every tile job has finished (none left running with the picture); a tile's own
    error is raised too."""
    import threading
    import time

    from fingerprint import threads

    monkeypatch.setattr(threads, "THREADS", 2)
    finished: list[int] = []
    lock = threading.Lock()

    def slow(img: np.ndarray, orb: object, tiles: list[tuple[int, int]], margin: int) -> list:
        time.sleep(0.3)
        with lock:
            finished.append(len(tiles))
        return [(np.zeros((0, 2), np.float32), np.zeros((0, 32), np.uint8)) for _ in tiles]

    def fails() -> np.ndarray:
        raise RuntimeError("meanwhile failed")

    monkeypatch.setattr(parts, "_detect_tiles", slow)
    img = np.zeros((400, 400), np.uint8)
    with pytest.raises(RuntimeError, match="meanwhile failed"):
        parts._tiled_orb(img, lambda: None, [(0, 0), (0, 1), (1, 0)], 8, fails)
    assert sorted(finished) == [1, 2]

    def one_fails(img: np.ndarray, orb: object, tiles: list[tuple[int, int]], margin: int) -> list:
        if len(tiles) == 2:  # the first thread's share fails at once, the other's is still running
            raise ValueError("a tile failed")
        return slow(img, orb, tiles, margin)

    finished.clear()
    monkeypatch.setattr(parts, "_detect_tiles", one_fails)
    with pytest.raises(ValueError, match="a tile failed"):
        parts._tiled_orb(img, lambda: None, [(0, 0), (0, 1), (1, 0)], 8, lambda: img)
    assert finished == [1]


def test_a_query_over_the_pixel_limit_is_reduced_not_refused(part_index: tuple[Path, Path]) -> None:
    """9000 × 7000 = 63 Mpx (over the 50 Mpx registration limit): decoded reduced by 2, the
    picture inside still found, its region in the file's own pixels."""
    root, index = part_index
    big = np.full((7000, 9000), 245, np.uint8)
    inner = cv2.cvtColor(cv2.imread(str(root / "d2.png")), cv2.COLOR_BGR2GRAY)
    big[3000:3000 + 1440, 5000:5000 + 1920] = cv2.resize(inner, (1920, 1440))
    q = root / "big.jpg"
    q.write_bytes(M.encode(big, ".jpg", 85))
    del big
    res = query_file(q, index)
    assert res.matches and res.matches[0].work_id == "d2.png"
    assert res.matches[0].region is not None and iou(list(res.matches[0].region), [5000, 3000, 1920, 1440]) >= 0.8
    from fingerprint.errors import MediaTooLarge
    from fingerprint.formats import fingerprint_file

    with pytest.raises(MediaTooLarge):
        fingerprint_file(q)  # registration keeps its limit
