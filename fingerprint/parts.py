"""Search by parts of pictures: a registered picture found inside a larger one (a screenshot,
a collage, a picture-in-picture frame, a page with a border and text around it), with the
region it occupies in the query.

The query side detects many ORB keypoints on the query at (nearly) its own resolution, so a
picture shown at 40 % of its size inside a page still yields keypoints at the scales the
registered picture was described at. Every query descriptor votes for the work of its
nearest registered descriptor (the same FAISS binary index as the whole-picture search);
the works with most votes are verified by a RANSAC similarity transform, whose inverse maps
the registered picture's frame into the query: the region.

A transform explained by a small patch of the registered picture (a caption, a logo, a
platform's watermark that many pictures share) is not a match: the inliers must spread over
the picture: enough of them must lie outside their densest window (``MIN_OUTSIDE``). Format and figures:
``docs/fingerprints.md`` (part search).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from concurrent import futures
from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np
import numpy.typing as npt

from . import threads
from .art import ART_DOWN, ART_FAST, reduced_normalised
from .image import orb_detect, orb_scale

F32 = npt.NDArray[np.float32]
U8 = npt.NDArray[np.uint8]

PARTS_SIDE = 1600  # the query is reduced so that its long side is at most this
PARTS_FEATURES = 4000  # per scale
PARTS_ZOOM = 2.0
PARTS_ZOOM_SIDE = 3200
PARTS_TILES = 8  # keypoints are detected per tile of an 8 × 8 grid, so text cannot take them all
# a rectangle of the page (fingerprint.rects) whose long side, at the first pass's scale, is at
# most this is a picture shown smaller than the registered pictures' ORB frame (image.ORB_SIDE):
# the enlarged pass looks at its tiles
ZOOM_BOX_SIDE = 512
# a query whose long side at the first pass is at most this is enlarged whole: no larger than
# two registered frames, it more likely shows one picture (filmed at an angle it has no
# rectangle) than a page, and enlarging it costs at most a fifth of enlarging a 1 600-pixel page
ZOOM_WHOLE_SIDE = 1024
TILE_MARGIN = 32
# a tile whose v1 detection gave fewer than this share of its keypoints is smooth (or partly): it also gets
# art keypoints (image format v2)
ART_TILE_SHARE = 0.8
ART_TILE_FEATURES = 62  # art keypoints per marked tile (the detection's budget is this × the tiles)
PARTS_CANDIDATES = 8
PARTS_MIN_VOTES = 6
PARTS_VOTE_RATIO = 0.8  # a vote counts when its work's descriptor is clearly the nearest
RATIO = 0.8
RANSAC_PX = 5.0  # reprojection threshold, in the registered picture's ORB frame
MIN_INLIERS = 11
# A match must not rest on one small patch of the registered picture (a caption, a logo, a
# platform's watermark shared by many pictures): at least MIN_OUTSIDE inliers must lie outside
# the densest window of a third of the picture's width and height.
WINDOW_SHARE = 1 / 3
MIN_OUTSIDE = 6
# ... and their convex hull must cover this share of the hull of the picture's own keypoints
# (a caption's line of text is long but thin). The lowest true match of the tuning set covered
# 0.098; a caption matched on its own covered 0.026.
MIN_SPREAD = 0.05
SCALE_RANGE = (0.1, 10.0)
# inliers within this of a keypoint that shows a mark other registered pictures carry
# (fingerprint.marks; in the work's ORB frame) are not evidence of the work's own content
MARK_NEAR_PX = 16.0
DISTINCT_PX = 4.0


@dataclass(frozen=True)
class Placement:
    """Where a registered picture sits in a query: ``region`` = (x, y, w, h) in the query's
    pixels, ``inliers`` = distinct keypoints agreeing on one similarity transform, ``spread``
    = share of the registered picture's keypoint area those inliers cover, ``share`` = the
    region's share of the query's area, ``model`` = the similarity transform from the query's
    pixels to the registered picture's ORB frame (2 × 3, row by row), ``explained`` = the
    inliers' distinct places over the distinct places of all the picture's keypoints."""

    region: tuple[int, int, int, int]
    inliers: int
    spread: float
    share: float
    model: tuple[float, ...] = ()
    explained: float = 1.0


def _tile_bounds(ih: int, iw: int, ty: int, tx: int) -> tuple[int, int, int, int]:
    return (ty * ih // PARTS_TILES, (ty + 1) * ih // PARTS_TILES, tx * iw // PARTS_TILES,
            (tx + 1) * iw // PARTS_TILES)


def _detect_tiles(img: U8, orb: Any, tiles: list[tuple[int, int]], margin: int) -> list[tuple[F32, U8]]:
    """ORB keypoints (in ``img``'s pixels) and descriptors of each of ``tiles``."""
    ih, iw = img.shape
    out: list[tuple[F32, U8]] = []
    for ty, tx in tiles:
        y0, y1, x0, x1 = _tile_bounds(ih, iw, ty, tx)
        # each tile is cut with a margin so that keypoints near its edges get whole patches
        cy0, cx0 = max(0, y0 - margin), max(0, x0 - margin)
        crop = img[cy0:min(ih, y1 + margin), cx0:min(iw, x1 + margin)]
        mask = np.zeros(crop.shape, np.uint8)
        mask[y0 - cy0:y1 - cy0, x0 - cx0:x1 - cx0] = 255
        kps, desc = orb_detect(orb, crop, mask)
        if desc is None or not kps:
            out.append((np.zeros((0, 2), np.float32), np.zeros((0, 32), np.uint8)))
            continue
        out.append((np.array([kp.pt for kp in kps], dtype=np.float32) + np.array([cx0, cy0], np.float32),
                    np.asarray(desc, dtype=np.uint8)))
    return out


def _tiled_orb(img: U8, make: Callable[[], Any], tiles: list[tuple[int, int]], margin: int,
               meanwhile: Callable[[], U8] | None = None) -> tuple[F32, U8, list[int], U8 | None]:
    """ORB keypoints (in ``img``'s pixels) and descriptors, detected per tile of the
    ``PARTS_TILES`` grid (only the ``tiles`` given, in their order), and how many each tile
    gave. The tiles are shared among ``threads.THREADS`` threads, each with its own detector
    from ``make``: the same keypoints as one thread, in the same order. While the threads
    detect, this one computes ``meanwhile()`` (returned last; None when the tiles are not
    shared, or without ``meanwhile``)."""
    n = max(1, min(threads.shared(), len(tiles)))
    chunks = [tiles[k::n] for k in range(n)]
    extra = None
    if n == 1:
        done = [_detect_tiles(img, make(), tiles, margin)]
    else:
        jobs: list[futures.Future[list[tuple[F32, U8]]]] = []
        try:
            for ch in chunks:
                jobs.append(threads.pool().submit(_detect_tiles, img, make(), ch, margin))
            extra = meanwhile() if meanwhile is not None else None
        finally:  # no tile is left running (holding the picture) after a failure, here or in a tile
            futures.wait(jobs)
        done = [j.result() for j in jobs]
    per_tile = [done[i % n][i // n] for i in range(len(tiles))]
    counts = [d.shape[0] for _, d in per_tile]
    if not any(counts):
        return np.zeros((0, 2), np.float32), np.zeros((0, 32), np.uint8), counts, extra
    return (np.concatenate([p for p, _ in per_tile]), np.concatenate([d for _, d in per_tile]), counts, extra)


def _pass(img: U8, grid: list[tuple[int, int]] | None = None,
          sparse_elsewhere: int = 0) -> tuple[F32, U8, list[tuple[int, int]]]:
    """One scale of the query: v1-style ORB per tile (of ``grid``, by default all
    ``PARTS_TILES`` × ``PARTS_TILES``), then art keypoints (image format v2,
    ``fingerprint.art``) over the tiles that gave fewer than ``ART_TILE_SHARE`` of their
    share: one ORB detection on the reduced, contrast-normalised query, masked to those
    tiles, FAST threshold ``ART_FAST``, ``ART_TILE_FEATURES`` per such tile in all — and per
    tile outside ``grid`` counted in ``sparse_elsewhere``, so that a pass over some tiles
    keeps the budget the whole pass would have had (the detection keeps the strongest
    keypoints of the whole mask: a smooth picture's art keypoints take the budget of the
    empty tiles around it). Also the tiles found smooth."""
    per_tile = max(50, PARTS_FEATURES // (PARTS_TILES * PARTS_TILES))
    def make() -> Any:
        return cv2.ORB_create(  # type: ignore[attr-defined]
            nfeatures=per_tile, edgeThreshold=15, patchSize=15, fastThreshold=12)

    if grid is None:
        grid = [(ty, tx) for ty in range(PARTS_TILES) for tx in range(PARTS_TILES)]
    if not grid:
        return np.zeros((0, 2), np.float32), np.zeros((0, 32), np.uint8), []
    small = min(img.shape) < PARTS_TILES * ART_DOWN * 2
    # the contrast-normalised query is computed while the tiles are detected (needed unless
    # no tile is smooth: rare, and then only that time is lost)
    pts, desc, counts, norm = _tiled_orb(img, make, grid, TILE_MARGIN,
                                         None if small else lambda: reduced_normalised(img))
    sparse = [t for t, n in zip(grid, counts, strict=True) if n < ART_TILE_SHARE * per_tile]
    if not sparse or small:
        return pts, desc, sparse
    # one detection over the smooth tiles (a mask), not per tile: a smooth picture's art
    # keypoints sit at ORB's coarse pyramid levels, which a tile is too small to have
    if norm is None:
        norm = reduced_normalised(img)
    nh, nw = norm.shape
    mask = np.zeros(norm.shape, np.uint8)
    for ty, tx in sparse:
        y0, y1, x0, x1 = _tile_bounds(nh, nw, ty, tx)
        mask[y0:y1, x0:x1] = 255
    art = cv2.ORB_create(  # type: ignore[attr-defined]
        nfeatures=ART_TILE_FEATURES * (len(sparse) + sparse_elsewhere), edgeThreshold=15, patchSize=15,
        fastThreshold=ART_FAST)
    kps, adesc = orb_detect(art, norm, mask)
    if adesc is None or not kps:
        return pts, desc, sparse
    apts = np.array([kp.pt for kp in kps], dtype=np.float32) * np.float32(ART_DOWN)
    return np.concatenate([pts, apts]), np.concatenate([desc, np.asarray(adesc, dtype=np.uint8)]), sparse


Box = tuple[int, int, int, int]


def zoom_tiles(boxes: Sequence[Box], shape: tuple[int, int], first: float, zoom: float) -> list[tuple[int, int]]:
    """The tiles of the enlarged pass (``shape`` = the query's (h, w) in its own pixels, the
    first pass at ``first`` times that, the enlarged one at ``zoom`` times) that meet a
    rectangle (x, y, w, h, query pixels) whose long side is at most ``ZOOM_BOX_SIDE`` at the
    first pass's scale; in the grid's order. Every tile when ``boxes`` is empty: a page
    whose rectangles were not found is looked at whole."""
    h, w = shape
    zh, zw = max(1, round(h * zoom)), max(1, round(w * zoom))
    grid = [(ty, tx) for ty in range(PARTS_TILES) for tx in range(PARTS_TILES)]
    if not boxes:
        return grid
    small = [(x * zoom, y * zoom, (x + bw) * zoom, (y + bh) * zoom) for x, y, bw, bh in boxes
             if max(bw, bh) * first <= ZOOM_BOX_SIDE]
    out = []
    for ty, tx in grid:
        y0, y1, x0, x1 = _tile_bounds(zh, zw, ty, tx)
        if any(x0 < bx1 and bx0 < x1 and y0 < by1 and by0 < y1 for bx0, by0, bx1, by1 in small):
            out.append((ty, tx))
    return out


def parts_features(gray: U8, boxes: Sequence[Box] | Callable[[], Sequence[Box]] | None = None
                   ) -> tuple[F32, U8]:
    """ORB keypoints and descriptors of a query for part search; points in the query's own
    pixels. The query is described at its own scale (long side at most ``PARTS_SIDE``) and
    enlarged ``PARTS_ZOOM`` times (long side at most ``PARTS_ZOOM_SIDE``): a picture shown at
    40 % of its size is then seen near the scale it was registered at, where the registered
    picture has most of its keypoints. Detection runs per tile (``PARTS_TILES`` ×
    ``PARTS_TILES``) so that dense text in one part of a page leaves keypoints for the
    pictures in the others; smooth tiles also get art keypoints (:func:`_pass`).

    ``boxes``: the page's rectangles (:mod:`fingerprint.rects`, query pixels), or a function
    giving them (called after the first pass, so that they can be found meanwhile). The
    enlarged pass then looks only at the tiles of the rectangles shown small
    (:func:`zoom_tiles`): the same keypoints there as the whole enlarged pass, for a fraction
    of its cost — unless the query is small (``ZOOM_WHOLE_SIDE``). ``None``: the whole
    enlarged query."""
    h, w = gray.shape
    side = max(h, w, 1)
    first = min(1.0, PARTS_SIDE / side)
    zoom = min(PARTS_ZOOM, PARTS_ZOOM_SIDE / side)
    pts_l: list[F32] = []
    desc_l: list[U8] = []
    smooth: list[tuple[int, int]] = []
    for scale in (first, zoom):
        grid, elsewhere = None, 0
        if pts_l:
            if scale <= 1.05 * first:
                break  # the query is too large to gain from enlarging
            if boxes is not None and max(h, w) * first > ZOOM_WHOLE_SIDE:
                grid = zoom_tiles(boxes() if callable(boxes) else boxes, (h, w), first, scale)
                if not grid:
                    break
                # a tile covers the same part of the query at both scales: one the first pass
                # found smooth stands for the enlarged one in the art keypoints' budget
                elsewhere = len(set(smooth) - set(grid))
        interp = cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR
        img = gray if scale == 1.0 else np.asarray(
            cv2.resize(gray, (max(1, round(w * scale)), max(1, round(h * scale))), interpolation=interp),
            dtype=np.uint8)
        pts, desc, smooth = _pass(img, grid, elsewhere)
        pts_l.append(pts / np.float32(scale))
        desc_l.append(desc)
    return np.concatenate(pts_l), np.concatenate(desc_l)


def _places(pts: F32) -> int:
    return int(np.unique(np.floor(pts / DISTINCT_PX).astype(np.int64), axis=0).shape[0])


def _hull_area(pts: F32) -> float:
    if pts.shape[0] < 3:
        return 0.0
    return float(cv2.contourArea(cv2.convexHull(pts.reshape(-1, 1, 2).astype(np.float32))))


def outside_densest(pts: F32, frame: tuple[float, float, float, float]) -> int:
    """How many of ``pts`` lie outside the window (``WINDOW_SHARE`` of the frame's width and
    height) that holds the most of them; windows are centred on each point in turn."""
    if pts.shape[0] == 0:
        return 0
    hw = (frame[2] - frame[0]) * WINDOW_SHARE / 2
    hh = (frame[3] - frame[1]) * WINDOW_SHARE / 2
    dx = np.abs(pts[:, None, 0] - pts[None, :, 0]) <= hw
    dy = np.abs(pts[:, None, 1] - pts[None, :, 1]) <= hh
    return int(pts.shape[0] - (dx & dy).sum(axis=1).max())


def work_frame(w_pts: F32, size: tuple[int, int] | None) -> tuple[float, float, float, float]:
    """The registered picture's extent in its ORB frame, (x0, y0, x1, y1): its whole frame
    when its size is known, else the extent of its keypoints."""
    if size is not None:
        s = orb_scale(*size)
        return 0.0, 0.0, size[0] * s, size[1] * s
    if w_pts.shape[0] == 0:
        return 0.0, 0.0, 0.0, 0.0
    lo, hi = w_pts.min(axis=0), w_pts.max(axis=0)
    return float(lo[0]), float(lo[1]), float(hi[0]), float(hi[1])


def _region(model: npt.NDArray[np.float64], frame: tuple[float, float, float, float],
            q_size: tuple[int, int]) -> tuple[int, int, int, int]:
    """The query-side bounding box of the registered frame mapped by the inverse of
    ``model`` (query → work), clipped to the query."""
    inv = cv2.invertAffineTransform(model)
    x0, y0, x1, y1 = frame
    corners = np.array([[x0, y0], [x1, y0], [x0, y1], [x1, y1]], np.float64)
    mapped = corners @ inv[:, :2].T + inv[:, 2]
    qw, qh = q_size
    lx, ly = np.clip(mapped.min(axis=0), 0, [qw, qh])
    hx, hy = np.clip(mapped.max(axis=0), 0, [qw, qh])
    return round(float(lx)), round(float(ly)), round(float(hx - lx)), round(float(hy - ly))


def near_mark(w_pts: F32, shared: npt.NDArray[np.bool_]) -> npt.NDArray[np.bool_]:
    """Keypoints within ``MARK_NEAR_PX`` of a shared one (``fingerprint.marks``; the shared
    ones included): the mark and what lies among its strokes."""
    d2 = ((w_pts[:, None, :] - w_pts[None, shared, :]) ** 2).sum(axis=2).min(axis=1)
    return np.asarray(d2 <= MARK_NEAR_PX ** 2)


def ratio_matches(q_desc: U8, w_desc: U8) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]]:
    """Ratio-test matches from query to registered descriptors (exact 2 nearest, Hamming),
    one query keypoint per registered keypoint, the closest (ties: the first query keypoint):
    many text corners matching one keypoint would let RANSAC collapse the scale. Returned as
    (query rows, registered rows), ordered by the first query row that matched each
    registered keypoint."""
    import faiss

    faiss.omp_set_num_threads(1)
    idx = faiss.IndexBinaryFlat(256)
    idx.add(np.ascontiguousarray(w_desc))
    dist, nn = idx.search(np.ascontiguousarray(q_desc), 2)
    ok = np.flatnonzero(dist[:, 0] < RATIO * dist[:, 1])
    ti, dd = nn[ok, 0].astype(np.int64), dist[ok, 0]
    order = np.lexsort((ok, dd, ti))  # per registered keypoint: closest, then first query row
    head = order[np.r_[True, ti[order][1:] != ti[order][:-1]]] if order.size else order
    first = np.full(w_desc.shape[0], np.iinfo(np.int64).max, np.int64)
    np.minimum.at(first, ti, ok.astype(np.int64))
    head = head[np.argsort(first[ti[head]], kind="stable")]
    return ok[head].astype(np.int64), ti[head]


def locate(q_pts: F32, q_desc: U8, w_pts: F32, w_desc: U8, frame: tuple[float, float, float, float],
           q_size: tuple[int, int], shared: npt.NDArray[np.bool_] | None = None) -> Placement | None:
    """The placement of a registered picture (keypoints ``w_pts``/``w_desc`` in its ORB frame,
    extent ``frame``) in a query (keypoints in the query's pixels, size ``q_size`` = (w, h)),
    or None when fewer than ``MIN_INLIERS`` distinct keypoints agree on a similarity
    transform, fewer than ``MIN_OUTSIDE`` of them lie outside their densest window, or
    their hull covers less than ``MIN_SPREAD`` of the picture's keypoints' hull. Keypoints
    flagged in ``shared`` (a mark other registered pictures carry, ``fingerprint.marks``)
    count towards ``MIN_INLIERS`` but not as the picture's own content: the window and spread
    tests are taken on the inliers farther than ``MARK_NEAR_PX`` from every shared keypoint."""
    if q_desc.shape[0] < 4 or w_desc.shape[0] < 4:
        return None
    q_idx, t_idx = ratio_matches(q_desc, w_desc)
    if q_idx.size < MIN_INLIERS:
        return None
    src = q_pts[q_idx].astype(np.float32).reshape(-1, 1, 2)
    dst = w_pts[t_idx].astype(np.float32).reshape(-1, 1, 2)
    model, mask = cv2.estimateAffinePartial2D(src, dst, method=cv2.RANSAC, ransacReprojThreshold=RANSAC_PX,
                                              maxIters=2000, confidence=0.995)
    if model is None or mask is None:
        return None
    scale = float(np.hypot(model[0, 0], model[1, 0]))
    if not SCALE_RANGE[0] < scale < SCALE_RANGE[1]:
        return None
    inl = np.flatnonzero(mask.reshape(-1))
    train = np.unique(t_idx[inl])
    # independent features: ORB finds one corner again at several pyramid levels, so inliers
    # are counted by distinct places (DISTINCT_PX cells) on both sides
    inliers = min(_places(w_pts[train]), _places(src.reshape(-1, 2)[inl]))
    if inliers < MIN_INLIERS:
        return None
    if shared is not None and shared.shape[0] == w_pts.shape[0] and shared.any():
        train = train[~near_mark(w_pts, shared)[train]]  # the tests below: on the work's own content
    if outside_densest(w_pts[train], frame) < MIN_OUTSIDE:
        return None
    spread = _hull_area(w_pts[train]) / max(_hull_area(w_pts), 1e-9)
    if spread < MIN_SPREAD:
        return None
    region = _region(np.asarray(model, np.float64), frame, q_size)
    share = region[2] * region[3] / max(q_size[0] * q_size[1], 1)
    return Placement(region, inliers, min(1.0, spread), share, tuple(float(v) for v in np.asarray(model).ravel()),
                     min(1.0, inliers / max(_places(w_pts), 1)))
