"""Content agreement: the query's region where a placement lays a registered picture must look
like that picture, cell by cell of its colour layout.

Keypoints can agree on something both pictures carry without being the same picture: a
platform's mark (logo, caption bar, tiled watermark) drawn at the same place and scale on two
pictures of the same size is a rigid set of corners that ``parts.locate`` places exactly, and
the registry only recognises a mark that registered pictures are seen to share
(``fingerprint.marks``). What such a placement lacks is everything else: the colours of the
region under it. Every registered picture has a colour layout (``art.layout_vector``: 8 × 8
cells of its border-trimmed box in 8-bit Lab); the query carries a reduced colour copy of
itself (``thumbnail``). A placement's transform maps each cell of the registered picture's
frame into the query; the cell agrees when its colours there are within ``CELL_MAX_DELTA``
(ΔE after the query's lightness is shifted to the work's mean, as ``art.layout_distance``
does; lightness alone when the query's region is grey and the work is not: a greyscale copy).
The placement stands when at least ``MIN_AGREEING`` of the cells that lie inside the query
agree. The test is taken only on placements whose inliers explain less than ``EXPLAINED_GATE``
of the work's keypoints, as the marks' placements do (docs/fingerprints.md, "Shared marks",
content agreement).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import cv2
import numpy as np
import numpy.typing as npt

from .art import LAYOUT_SIDE
from .image import RECT_TRIM_TOLERANCES, to_gray
from .marks import MARK_CODE_AGREEING, MARK_CODE_SURE
from .parts import Placement, locate, work_frame

if TYPE_CHECKING:
    from .image import ImageFingerprint
    from .index import IndexBackend

U8 = npt.NDArray[np.uint8]
F32 = npt.NDArray[np.float32]

THUMB_SIDE = 512  # the query's colour copy: long side at most this many pixels
GRID = 8 * LAYOUT_SIDE  # the work's frame is sampled at GRID × GRID points, LAYOUT_SIDE² cells
CELL_MIN_INSIDE = 0.9  # a cell counts when this share of its samples lie inside the query
MIN_CELLS = 16  # fewer cells inside the query: agreement is not tested
CELL_MAX_DELTA = 15.0
MIN_AGREEING = 0.4
# the test is taken when the placement explains less than this share of the picture's keypoint
# places: the marks' false positives explained 0.10-0.25, a copy re-encoded at JPEG 80 0.44-0.93;
# a copy that keeps few keypoints (cropped, overlaid, blurred) keeps its colours, while tone
# changes (gamma, contrast) move the colours and keep the keypoints
EXPLAINED_GATE = 1 / 3
GREY_CHROMA = 4.0  # a region whose cells' mean |a - 128| + |b - 128| is under this is grey
TRIM_RIM = 8  # samples of the 256 × 256 region's rim left out when looking for its border
TRIM_TOLERANCE = RECT_TRIM_TOLERANCES[-1]
TRIM_ROW_SHARE = 0.9
TRIM_SKIP = 0.05


def thumbnail(img: U8) -> U8:
    """The query's colour copy (BGR), its long side at most ``THUMB_SIDE``."""
    h, w = img.shape[:2]
    f = min(1.0, THUMB_SIDE / max(h, w, 1))
    if img.ndim == 2:
        img = np.asarray(cv2.cvtColor(img, cv2.COLOR_GRAY2BGR), np.uint8)
    if f >= 1.0:
        return np.ascontiguousarray(img)
    size = (max(1, round(w * f)), max(1, round(h * f)))
    return np.asarray(cv2.resize(img, size, interpolation=cv2.INTER_AREA), np.uint8)


def _warp(thumb: U8, q_size: tuple[int, int], model: tuple[float, ...], frame: tuple[float, float, float, float],
          side: int) -> tuple[U8, F32]:
    """The work's frame sampled at ``side`` × ``side`` from the thumbnail of a query of
    ``q_size`` = (w, h) pixels (``model`` = query pixels → work frame), and where the samples
    fall inside the query (1) or outside (0)."""
    x0, y0, x1, y1 = frame
    grid_to_work = np.array([[(x1 - x0) / side, 0, x0], [0, (y1 - y0) / side, y0], [0, 0, 1]], np.float64)
    q_to_work = np.vstack([np.asarray(model, np.float64).reshape(2, 3), [0, 0, 1]])
    kx, ky = thumb.shape[1] / max(q_size[0], 1), thumb.shape[0] / max(q_size[1], 1)
    m = (np.diag([kx, ky, 1.0]) @ np.linalg.inv(q_to_work) @ grid_to_work)[:2]
    flags = cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP
    out = cv2.warpAffine(thumb, m, (side, side), flags=flags, borderMode=cv2.BORDER_CONSTANT)
    inside = cv2.warpAffine(np.ones(thumb.shape[:2], np.float32), m, (side, side), flags=flags,
                            borderMode=cv2.BORDER_CONSTANT)
    return np.asarray(out, np.uint8), np.asarray(inside, np.float32)


def _cells(pic: U8) -> npt.NDArray[np.float32]:
    small = cv2.resize(pic, (LAYOUT_SIDE, LAYOUT_SIDE), interpolation=cv2.INTER_AREA)
    return np.asarray(cv2.cvtColor(small, cv2.COLOR_BGR2LAB), np.float32).reshape(-1, 3)


def agreement(q: F32, w: U8, valid: npt.NDArray[np.bool_]) -> float:
    """Share of the ``valid`` cells whose colours agree (``q``, ``w``: cells × Lab)."""
    if not bool(valid.any()):
        return 0.0
    qa, wa = q[valid].astype(np.float32), w.reshape(-1, 3)[valid].astype(np.float32)
    qa[:, 0] += float(wa[:, 0].mean() - qa[:, 0].mean())
    d = qa - wa
    grey = float(np.abs(qa[:, 1:] - 128).sum(axis=1).mean()) < GREY_CHROMA
    if grey and float(np.abs(wa[:, 1:] - 128).sum(axis=1).mean()) >= GREY_CHROMA:
        d = d[:, :1]  # a greyscale copy of a colour picture: lightness only
    return float((np.sqrt((d ** 2).sum(axis=1)) <= CELL_MAX_DELTA).mean())


def _trim(gray: U8, ref: int) -> tuple[int, int, int, int]:
    """``image.trim_box`` with a border level ``ref``, where a row or column is border when at
    least ``TRIM_ROW_SHARE`` of it is within ``TRIM_TOLERANCE`` of ``ref`` (not all of it), and a
    side's border may begin after up to ``TRIM_SKIP`` of the side's lines that are not: a
    border filmed through a camera's perspective meets the camera's surround at its ends and
    along the region's edges."""
    near = np.abs(gray.astype(np.int16) - ref) <= TRIM_TOLERANCE
    h, w = gray.shape

    def run(flags: npt.NDArray[np.bool_]) -> int:
        head = flags[:max(1, round(TRIM_SKIP * flags.size)) + 1]
        start = int(np.argmax(head)) if bool(head.any()) else flags.size
        if start >= flags.size or not flags[start]:
            return 0
        bad = np.flatnonzero(~flags[start:])
        return start + (int(bad[0]) if bad.size else flags.size - start)

    rows, cols = near.mean(axis=1) >= TRIM_ROW_SHARE, near.mean(axis=0) >= TRIM_ROW_SHARE
    top, bottom, left, right = run(rows), run(rows[::-1]), run(cols), run(cols[::-1])
    if top + bottom > 0.45 * h:
        top = bottom = 0
    if left + right > 0.45 * w:
        left = right = 0
    return left, top, w - left - right, h - top - bottom


def region_agrees(thumb: U8, q_size: tuple[int, int], model: tuple[float, ...], frame: tuple[float, float, float, float],
                  layout: U8) -> bool:
    """Whether the query's region under ``model`` agrees with the work's colour ``layout``
    (see the module's text); True when fewer than ``MIN_CELLS`` cells lie inside the query."""
    a = region_agreement(thumb, q_size, model, frame, layout, MIN_AGREEING)
    return a is None or a >= MIN_AGREEING


def region_agreement(thumb: U8, q_size: tuple[int, int], model: tuple[float, ...],
                     frame: tuple[float, float, float, float], layout: U8, enough: float) -> float | None:
    """The share of the work's colour ``layout`` cells that the query's region under ``model``
    agrees with: as sampled, and, when that is below ``enough`` and the whole region lies inside
    the query, the best of its border-trimmed versions (the first that reaches ``enough``).
    None when fewer than ``MIN_CELLS`` cells lie inside the query."""
    pic, inside = _warp(thumb, q_size, model, frame, GRID)
    share = cv2.resize(inside, (LAYOUT_SIDE, LAYOUT_SIDE), interpolation=cv2.INTER_AREA).reshape(-1)
    valid = share >= CELL_MIN_INSIDE
    if int(valid.sum()) < MIN_CELLS:
        return None
    best = agreement(_cells(pic), layout, valid)
    if best >= enough or not bool(valid.all()):
        return best
    # the work's layout is of its border-trimmed box: trim the region the same way, without
    # its outermost samples (they blend with what surrounds the picture in the query) and with
    # the query side's tolerance for a re-encoded border (``image.RECT_TRIM_TOLERANCES``)
    side, rim = 4 * GRID, TRIM_RIM
    big, _ = _warp(thumb, q_size, model, frame, side)
    gray = to_gray(big[rim:-rim, rim:-rim])
    # the border's grey level: registration took the median of the picture's corners, which the
    # query's resampled corners need not reproduce (a shape touching one corner, a camcorder's
    # dark surround in one corner): each corner's, and the median of the region's outer ring
    ring = np.concatenate([gray[0], gray[-1], gray[:, 0], gray[:, -1]])
    refs = {int(v) for v in (gray[0, 0], gray[0, -1], gray[-1, 0], gray[-1, -1], np.median(ring))}
    for ref in sorted(refs):
        x, y, bw, bh = _trim(gray, ref)
        cut = [x, y, side - 2 * rim - x - bw, side - 2 * rim - y - bh]  # left, top, right, bottom
        left, top, right, bottom = (c + rim if c > 0 else 0 for c in cut)  # an untrimmed side keeps its rim
        if not any(cut) or side - left - right < LAYOUT_SIDE or side - top - bottom < LAYOUT_SIDE:
            continue
        part = big[top:side - bottom, left:side - right]
        best = max(best, agreement(_cells(part), layout, np.ones(LAYOUT_SIDE ** 2, bool)))
        if best >= enough:
            break
    return best


def box_model(box: tuple[int, int, int, int], frame: tuple[float, float, float, float]) -> tuple[float, ...]:
    """The transform (query pixels → the work's frame, 2 × 3 row by row) that lays the work's
    ``frame`` exactly over ``box`` (x, y, w, h) in the query: a DCT code is taken of a box
    reduced to 64 × 64, so its match says nothing of the aspect; each axis is scaled alone."""
    x, y, w, h = box
    x0, y0, x1, y1 = frame
    sx, sy = (x1 - x0) / max(w, 1), (y1 - y0) / max(h, 1)
    return (sx, 0.0, x0 - x * sx, 0.0, sy, y0 - y * sy)


def placed(index: IndexBackend, q: ImageFingerprint, pts: F32, desc: U8, w: str,
           mirrored: bool = False) -> Placement | None:
    """``parts.locate`` of work ``w`` from the query keypoints ``pts`` (query pixels; of the
    mirrored query when ``mirrored``) and ``desc``; a placement that explains less than
    ``EXPLAINED_GATE`` of the work's keypoint places is kept only when its region agrees with
    the work's colour layout (when both the layout and the query's thumbnail are known)."""
    w_pts, w_desc = index.local_features(w)
    frame = work_frame(w_pts, index.image_size(w))
    p = locate(pts, desc, w_pts, w_desc, frame, (q.width, q.height), index.shared_keypoints(w))
    if p is None or q.thumb is None or not p.model or p.explained >= EXPLAINED_GATE:
        return p
    layout = index.colour_layout(w)
    if layout is None:
        return p
    thumb = np.ascontiguousarray(q.thumb[:, ::-1]) if mirrored else q.thumb
    return p if region_agrees(thumb, (q.width, q.height), p.model, frame, layout) else None


def placed_in(index: IndexBackend, q: ImageFingerprint, w: str, box: tuple[int, int, int, int]) -> bool:
    """Whether the part-search keypoints of the query inside ``box`` (x, y, w, h) place work
    ``w`` (``parts.locate``, its shared mark discounted): the rectangle's content, without
    the page's text and other pictures to confuse the matching."""
    if q.parts_points is None or q.parts_descriptors is None:
        return False
    x, y, bw, bh = box
    p = q.parts_points
    inside = (p[:, 0] >= x) & (p[:, 0] < x + bw) & (p[:, 1] >= y) & (p[:, 1] < y + bh)
    if int(inside.sum()) < 4:
        return False
    return placed(index, q, p[inside], q.parts_descriptors[inside], w) is not None


def code_and_colours(index: IndexBackend, q: ImageFingerprint, w: str, d: int,
                      cut: tuple[int, int, int, int], mirrored: bool = False) -> bool:
    """Whether a marked picture's code, ``d`` bits from that of the query's rectangle trimmed
    to ``cut``, decides the match on its own: within ``MARK_CODE_SURE`` bits, and the colours
    of ``cut`` agree with the picture's colour layout in at least ``MARK_CODE_AGREEING`` of its
    cells (the picture's frame laid over ``cut``, trimmed again if need be). ``mirrored``: the
    code was that of the rectangle mirrored, so the picture is laid over the mirrored query."""
    if d > MARK_CODE_SURE or q.thumb is None:
        return False
    thumb = q.thumb
    if mirrored:
        thumb = np.ascontiguousarray(thumb[:, ::-1])
        cut = (q.width - cut[0] - cut[2], cut[1], cut[2], cut[3])
    layout = index.colour_layout(w)
    if layout is None:
        return False
    w_pts, _ = index.local_features(w)
    frame = work_frame(w_pts, index.image_size(w))
    if frame[2] <= frame[0] or frame[3] <= frame[1]:
        return False
    a = region_agreement(thumb, (q.width, q.height), box_model(cut, frame), frame, layout, MARK_CODE_AGREEING)
    return a is not None and a >= MARK_CODE_AGREEING
