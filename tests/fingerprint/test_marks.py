"""Shared marks: unrelated pictures carrying the same platform mark never match each other on
it, while each marked work is still found; the registry learns that a mark is shared when
the second picture carrying it is registered, and forgets it when that picture is removed."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from bench.fingerprint import media as M
from fingerprint import colours, marks
from fingerprint.formats import fingerprint_bytes
from fingerprint.image import orb_scale
from fingerprint.index import LocalIndex, open_index
from fingerprint.matching import match

WIDTH = 300
BADGE = 56  # the mark: a badge and a wordmark, 3 × 56 = 168 pixels wide (56 % of the picture)


def small(name: str) -> np.ndarray:
    a = dict(M.photos())[name]
    return np.asarray(cv2.resize(a, (WIDTH, round(a.shape[0] * WIDTH / a.shape[1])), interpolation=cv2.INTER_AREA))


def marked(a: np.ndarray) -> np.ndarray:
    """A platform's corner mark (a round badge with a glyph, its name beside it), bottom right."""
    out = a.copy()
    h, w = out.shape[:2]
    lg = np.full((BADGE, BADGE * 3, 3), 255, np.uint8)
    cv2.circle(lg, (BADGE // 2, BADGE // 2), BADGE // 2 - 2, (40, 90, 230), -1)
    cv2.putText(lg, "P", (BADGE // 4, BADGE * 3 // 4), cv2.FONT_HERSHEY_DUPLEX, BADGE / 40, (255, 255, 255), 2)
    cv2.putText(lg, "PicNet", (BADGE + 4, BADGE * 2 // 3), cv2.FONT_HERSHEY_DUPLEX, BADGE / 45, (40, 90, 230), 2)
    out[h - BADGE - 6:h - 6, w - 3 * BADGE - 6:w - 6] = lg
    return out


def found(idx: LocalIndex, a: np.ndarray, quality: int = 90) -> list[str]:
    return [m.work_id for m in match(idx, fingerprint_bytes(M.encode(a, ".jpg", quality), query=True)).matches]


def register(idx: LocalIndex, name: str, a: np.ndarray) -> None:
    idx.add(name, fingerprint_bytes(M.encode(a, ".png"), name))


def in_mark(idx: LocalIndex, work: str) -> np.ndarray:
    """Which of the work's keypoints lie in the mark's box (its ORB frame)."""
    pts, _ = idx.local_features(work)
    size = idx.image_size(work)
    assert size is not None
    s = orb_scale(*size)
    x0, y0 = (size[0] - 3 * BADGE - 8) * s, (size[1] - BADGE - 8) * s
    return np.asarray((pts[:, 0] >= x0) & (pts[:, 1] >= y0))


@pytest.fixture(scope="module")
def pictures() -> dict[str, np.ndarray]:
    return {n: small(n) for n in ("astronaut", "camera", "coffee", "chelsea", "rocket", "coins")}


def test_the_second_marked_work_makes_the_mark_shared(pictures: dict[str, np.ndarray], tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    with open_index(tmp_path / "idx") as idx:
        register(idx, "w1", marked(pictures["astronaut"]))
        assert idx.shared_keypoints("w1") is None
        # with one registered picture carrying it, the mark is that picture's content as far as
        # the keypoints can tell: an unrelated picture with the mark is placed on it, and only
        # the colours under the placement refuse it (fingerprint.colours)
        assert found(idx, marked(pictures["coffee"])) == []
        with monkeypatch.context() as m:
            m.setattr(colours, "EXPLAINED_GATE", 0.0)
            assert found(idx, marked(pictures["coffee"])) == ["w1"]
        register(idx, "w2", marked(pictures["camera"]))
        for w in ("w1", "w2"):
            shared = idx.shared_keypoints(w)
            assert shared is not None
            box = in_mark(idx, w)
            assert shared[box].mean() > 0.5 and shared[~box].mean() < 0.05  # the mark, not the content
        for n in ("coffee", "chelsea", "rocket", "coins"):
            assert found(idx, marked(pictures[n])) == []
        assert found(idx, marked(pictures["astronaut"]), 80) == ["w1"]
        assert found(idx, marked(pictures["camera"]), 80) == ["w2"]
        crop = marked(pictures["camera"])[20:-20, 25:-25]  # the ORB path, on the content alone
        assert found(idx, crop) == ["w2"]
        idx.remove("w2")
        assert idx.shared_keypoints("w1") is None  # shared with a picture no longer registered


def test_a_registered_picture_and_its_recoloured_version_are_not_a_mark(pictures: dict[str, np.ndarray],
                                                                      tmp_path: Path) -> None:
    """Derived works share most of their keypoints: nothing is marked shared, and a cropped
    copy of one still matches it by its keypoints."""
    a = pictures["chelsea"]
    with open_index(tmp_path / "idx") as idx:
        register(idx, "cat", a)
        warm = np.clip(a.astype(np.int16) + np.array([0, 10, 40], np.int16), 0, 255).astype(np.uint8)
        register(idx, "cat-warm", np.ascontiguousarray(warm))
        assert idx.shared_keypoints("cat") is None and idx.shared_keypoints("cat-warm") is None
        assert "cat" in found(idx, a[30:-30, 40:-40])


def test_shared_between_finds_a_mark_at_another_place_and_scale(pictures: dict[str, np.ndarray]) -> None:
    """Two pictures with the same mark at different corners and sizes: the transform is
    found wherever the mark sits; unrelated pictures without it share nothing."""
    a = fingerprint_bytes(M.encode(marked(pictures["rocket"]), ".png")).image
    # the mark top left, upside down, 1.6 times larger
    b_img = cv2.resize(cv2.rotate(marked(pictures["coins"]), cv2.ROTATE_180), None, fx=1.6, fy=1.6)
    b = fingerprint_bytes(M.encode(b_img, ".png")).image
    assert a is not None and b is not None
    mine, theirs, _ = marks.shared_between(a.points, a.descriptors, b.points, b.descriptors)
    assert mine.size >= marks.MARK_MIN_PLACES and theirs.size >= marks.MARK_MIN_PLACES
    c = fingerprint_bytes(M.encode(pictures["astronaut"], ".png")).image
    d = fingerprint_bytes(M.encode(pictures["coffee"], ".png")).image
    assert c is not None and d is not None
    assert marks.shared_between(c.points, c.descriptors, d.points, d.descriptors)[0].size == 0


def test_a_derived_looking_pair_is_a_mark_when_third_pictures_share_it_too() -> None:
    """Two smooth pictures whose few keypoints are mostly one watermark look derived; what
    they share is a mark when pictures not derived from them share the same keypoints."""
    pts = np.array([[40.0 * i, 0.0] for i in range(20)], np.float32)  # far apart: no dilation between them
    pair = (np.arange(10, dtype=np.int64), True, 20)
    assert marks.shared_mask(pts, [pair]) is None  # derived alone: the picture's own content
    with_mark = marks.shared_mask(pts, [pair, (np.arange(5, dtype=np.int64), False, 20)])
    assert with_mark is not None and with_mark.sum() == 10  # half of the pair is a mark: all of it is
    elsewhere = marks.shared_mask(pts, [pair, (np.arange(12, 15, dtype=np.int64), False, 20)])
    assert elsewhere is not None and elsewhere.nonzero()[0].tolist() == [12, 13, 14]
    near = np.vstack([pts, pts[:1] + 0.6 * marks.MARK_DILATE_PX])  # 0.85 × the radius from a shared one
    dilated = marks.shared_mask(near, [(np.array([0], np.int64), False, 20)])
    assert dilated is not None and dilated.nonzero()[0].tolist() == [0, 20]


def test_a_weak_pair_counts_only_where_a_third_picture_confirms_it() -> None:
    """A transform of fewer than MARK_SURE_PLACES places may be a chance alignment of two
    unrelated pictures; the same keypoints shared with a third picture make it a mark."""
    pts = np.array([[40.0 * i, 0.0] for i in range(20)], np.float32)
    weak = marks.MARK_SURE_PLACES - 1
    assert marks.shared_mask(pts, [(np.arange(8, dtype=np.int64), False, weak)]) is None
    two = marks.shared_mask(pts, [(np.arange(8, dtype=np.int64), False, weak),
                                  (np.arange(4, 8, dtype=np.int64), False, weak)])
    assert two is not None and two.sum() == 8
    sure = marks.shared_mask(pts, [(np.arange(8, dtype=np.int64), False, marks.MARK_SURE_PLACES)])
    assert sure is not None and sure.sum() == 8


def _smooth(h: int, w: int, top: tuple[int, int, int], bottom: tuple[int, int, int]) -> np.ndarray:
    """A smooth vertical gradient: a design whose own DCT code is decided by noise."""
    t = np.linspace(0.0, 1.0, h, dtype=np.float32)[:, None, None]
    a = (1 - t) * np.asarray(top, np.float32) + t * np.asarray(bottom, np.float32)
    return np.ascontiguousarray(np.broadcast_to(a, (h, w, 3)).astype(np.uint8))


def test_a_smooth_design_whose_code_is_its_mark_is_not_matched_by_the_mark(pictures: dict[str, np.ndarray],
                                                                          tmp_path: Path) -> None:
    """A mark lends a smooth design's DCT code nearly all its structure; another smooth
    picture with the same mark is then near that code. Once the mark is known to be shared,
    a picture carrying it is matched by its code only when its own keypoints, away from the
    mark, place it in the query too."""
    h, w = pictures["astronaut"].shape[:2]
    design = marked(_smooth(h, w, (120, 60, 20), (200, 150, 90)))
    other = marked(_smooth(h, w, (30, 30, 40), (70, 60, 50)))
    with open_index(tmp_path / "idx") as idx:
        register(idx, "design", design)
        assert found(idx, other) == ["design"]  # one picture with the mark: the mark is its content
        register(idx, "photo", marked(pictures["astronaut"]))
        assert idx.shared_keypoints("design") is not None
        assert found(idx, other) == []
        assert found(idx, marked(pictures["camera"])) == []
        assert found(idx, marked(pictures["astronaut"]), 80) == ["photo"]


def _shapes(seed: int, w: int = 800, h: int = 600) -> np.ndarray:
    """Flat circles and rectangles on black with a large caption ("work N", bottom left): a
    design most of whose registered keypoints are the caption's, which every such picture
    carries (a shared mark)."""
    r = np.random.default_rng(seed)
    im = np.zeros((h, w, 3), np.uint8)
    for _ in range(40):
        c = tuple(int(x) for x in r.integers(0, 255, 3))
        p = tuple(int(x) for x in r.integers(0, min(w, h), 2))
        if r.random() < 0.5:
            cv2.circle(im, p, int(r.integers(10, 120)), c, -1)
        else:
            cv2.rectangle(im, p, (p[0] + int(r.integers(20, 200)), p[1] + int(r.integers(20, 200))), c, -1)
    cv2.putText(im, f"work {seed}", (40, h - 40), cv2.FONT_HERSHEY_SIMPLEX, 2, (255, 255, 255), 3)
    return np.asarray(cv2.GaussianBlur(im, (3, 3), 0))


def _framed(inner: np.ndarray, scale: float, at: tuple[int, int]) -> tuple[np.ndarray, tuple[int, int, int, int]]:
    pg = np.full((1400, 1280, 3), 248, np.uint8)
    for k in range(30):
        cv2.putText(pg, "lorem ipsum dolor sit amet consectetur " * 2, (40, 110 + 40 * k), cv2.FONT_HERSHEY_SIMPLEX,
                    0.6, (50, 50, 50), 1)
    im = cv2.resize(inner, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
    h, w = im.shape[:2]
    x, y = at
    cv2.rectangle(pg, (x - 6, y - 6), (x + w + 6, y + h + 6), (200, 200, 200), -1)
    pg[y:y + h, x:x + w] = im
    return pg, (x, y, w, h)


def test_a_marked_picture_is_found_in_a_page_by_its_code_when_its_colours_agree(tmp_path: Path) -> None:
    """A marked picture whose own keypoints are too few to place it (most are its caption's,
    the shared mark) is found inside a page by its rectangle's DCT code, near as it is, with
    the rectangle's colours agreeing; the same rectangle recoloured is refused by the colours,
    and an unrelated picture with the same caption is not matched."""
    from dataclasses import replace


    works = {f"w{i}": _shapes(9000 + i) for i in range(6)}
    with open_index(tmp_path / "idx") as idx:
        for n, a in works.items():
            register(idx, n, a)
        assert all(idx.shared_keypoints(n) is not None for n in works)
        pg, box = _framed(works["w0"], 0.88, (124, 200))
        q = fingerprint_bytes(M.encode(pg, ".jpg", 85), query=True)
        res = match(idx, q).matches
        assert [m.work_id for m in res] == ["w0"] and res[0].region is not None
        x, y, w, h = res[0].region
        assert abs(x - box[0]) <= 10 and abs(y - box[1]) <= 10 and abs(w - box[2]) <= 20 and abs(h - box[3]) <= 20
        # its keypoints alone do not place it: the code and the colours found it
        assert q.image is not None and not colours.placed_in(idx, q.image, "w0", res[0].region)
        # the same rectangle, its colours turned (blue for red): the code barely moves, the colours refuse
        qi = q.image
        near = [k for k, c in enumerate(qi.rect_cuts) if abs(c[0] - box[0]) <= 10 and abs(c[2] - box[2]) <= 20]
        assert near
        k = near[0]
        assert colours.code_and_colours(idx, qi, "w0", 0, qi.rect_cuts[k])
        turned = replace(qi, thumb=np.ascontiguousarray(qi.thumb[:, :, ::-1]))
        assert not colours.code_and_colours(idx, turned, "w0", 0, qi.rect_cuts[k])
        assert not colours.code_and_colours(idx, qi, "w0", marks.MARK_CODE_SURE + 1, qi.rect_cuts[k])
        # an unregistered picture with the same caption, framed the same way: nothing
        other, _ = _framed(_shapes(7001), 0.88, (124, 200))
        assert found(idx, other, 85) == []


def test_a_marked_picture_mirrored_in_a_page_is_found_by_its_mirrored_code_and_colours(tmp_path: Path) -> None:
    """An infringer's flip: the marked picture mirrored inside a page. Its rectangle's
    mirrored code is near the work's, and the colours agree once the page is mirrored with
    it; the same colours taken unmirrored refuse it (they are the picture's mirror image),
    and an unrelated picture with the same caption, mirrored, is not matched."""
    works = {f"w{i}": _shapes(9000 + i) for i in range(6)}
    with open_index(tmp_path / "idx") as idx:
        for n, a in works.items():
            register(idx, n, a)
        flipped = np.ascontiguousarray(works["w3"][:, ::-1])
        pg, box = _framed(flipped, 0.5, (300, 260))  # at 0.7 its keypoints alone find it
        q = fingerprint_bytes(M.encode(pg, ".jpg", 85), query=True)
        res = match(idx, q).matches
        assert [m.work_id for m in res] == ["w3"] and res[0].region is not None
        x, y, w, h = res[0].region
        assert abs(x - box[0]) <= 10 and abs(y - box[1]) <= 10 and abs(w - box[2]) <= 20 and abs(h - box[3]) <= 20
        qi = q.image
        assert qi is not None and not colours.placed_in(idx, qi, "w3", res[0].region)
        # the rectangles whose mirrored code decides it: near as mirrored, far as they are
        registered = fingerprint_bytes(M.encode(works["w3"], ".png"), "w3").image
        assert registered is not None
        code = np.frombuffer(registered.code, np.uint8)

        def bits(c: bytes) -> int:
            return int(np.unpackbits(np.frombuffer(c, np.uint8) ^ code).sum())

        near = [(cut, bits(c[1]), bits(c[0])) for cut, c in zip(qi.rect_cuts, qi.rect_codes, strict=True)
                if bits(c[1]) <= marks.MARK_CODE_SURE]
        assert near and all(d0 > marks.MARK_CODE_SURE for _, _, d0 in near)
        assert any(colours.code_and_colours(idx, qi, "w3", d, cut, mirrored=True) for cut, d, _ in near)
        assert not any(colours.code_and_colours(idx, qi, "w3", d, cut) for cut, d, _ in near)
        other, _ = _framed(np.ascontiguousarray(_shapes(7002)[:, ::-1]), 0.5, (300, 260))
        assert found(idx, other, 85) == []
