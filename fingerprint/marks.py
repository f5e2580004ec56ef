"""Shared marks: what registered pictures carry in common (a platform's logo, caption bar or
tiled watermark, stamped on every picture it serves) is evidence for none of them.

When a picture is registered, its ORB keypoints are compared with those of the registered
pictures that share descriptors with it. For each such picture a RANSAC similarity transform
is sought between the two (up to ``MARK_CLUSTERS`` times, each on what the previous ones left,
since a logo, a caption and a watermark sit at their own place and scale in each picture);
a transform on which at least ``MARK_MIN_PLACES`` distinct places agree is content the two
pictures share. The keypoints of both that agree with it (the RANSAC inliers, and every
keypoint that has a counterpart within ``GUIDE_PX`` and ``GUIDE_BITS`` under it) are recorded
as *shared* — for both works, so the work registered first learns of the mark when the
second arrives. Query-side, :func:`fingerprint.parts.locate` leaves shared keypoints out of
a work's features: a match must rest on what is the work's own.

Two pictures that share most of their keypoints (at least ``DERIVED_SHARE`` of each) look
derived — one a recoloured or edited version of the other — rather than two pictures with a
mark: the pair is recorded as such and its keypoints stay the pictures' own (a copy of either
still matches both), unless ``DERIVED_OVERLAP`` of them are shared with third pictures too
(then the pair is two smooth pictures whose few keypoints are mostly the same mark). Format
and figures: ``docs/fingerprints.md`` ("Shared marks").
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import cv2
import numpy as np
import numpy.typing as npt

from .parts import DISTINCT_PX, RANSAC_PX, RATIO, SCALE_RANGE

if TYPE_CHECKING:
    from .index import IndexBackend

F32 = npt.NDArray[np.float32]
U8 = npt.NDArray[np.uint8]
I64 = npt.NDArray[np.int64]

MARK_NEIGHBOURS = 16  # each new descriptor looks at its 16 nearest registered ones
MARK_RADIUS = 48  # ... within this many bits (the ORB vote radius)
MARK_MIN_VOTES = 4  # a registered picture is compared when this many descriptors point at it
MARK_CANDIDATES = 16  # at most this many, most voted first
MARK_MIN_PLACES = 8  # distinct places (parts.DISTINCT_PX cells, both sides) agreeing on one transform
MARK_SURE_PLACES = 12  # a pair with fewer counts only where a third picture confirms it
MARK_CLUSTERS = 3  # transforms sought per pair
CLOSE_BITS = 32  # a nearest descriptor this close is a candidate pair even without the ratio test
GUIDE_PX = 3.0  # after a transform: a keypoint with a counterpart this close ...
GUIDE_BITS = 32  # ... whose descriptor is this close is shared as well
DERIVED_SHARE = 0.5  # shared keypoints at least this share of both pictures': derived works
DERIVED_OVERLAP = 0.3  # ... unless this share of them is shared with other pictures too (a mark)
MARK_DILATE_PX = 4.0  # keypoints this close to a shared one are shared too (ORB frame)
# a picture carrying a shared mark is matched by its DCT code only when the query's code is
# nearer to it than this share of the distance to any other registered picture's code: a large
# mark (a caption bar, a watermark) on smooth pictures pulls their codes together
MARK_DCT_RATIO = 0.8
# ... and its match (a rectangle's code) stands only when its own keypoints place it there as
# well, or when the code is within MARK_CODE_SURE bits and the rectangle, trimmed as its code
# was, agrees with the picture's colour layout in at least MARK_CODE_AGREEING of its cells
# (fingerprint.colours): a mark drawn on an unrelated picture came no nearer than 40 bits
# (docs/fingerprints.md, "Shared marks"), and it does not bring the colours under it along
MARK_CODE_SURE = 24
MARK_CODE_AGREEING = 0.75


def _places(pts: F32) -> int:
    if pts.shape[0] == 0:
        return 0
    return int(np.unique(np.floor(pts / DISTINCT_PX).astype(np.int64), axis=0).shape[0])


def _guided(model: npt.NDArray[np.float64], a_pts: F32, a_desc: U8, b_pts: F32, b_desc: U8
            ) -> tuple[I64, I64]:
    """Keypoints of ``a`` and ``b`` that agree under ``model`` (a → b): a counterpart within
    ``GUIDE_PX`` (in ``b``'s frame) whose descriptor is within ``GUIDE_BITS``."""
    mapped = a_pts.astype(np.float64) @ model[:, :2].T + model[:, 2]
    d2 = ((mapped[:, None, :] - b_pts[None, :, :].astype(np.float64)) ** 2).sum(axis=2)
    ia, ib = np.nonzero(d2 <= GUIDE_PX ** 2)
    if ia.size == 0:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    bits = np.unpackbits(a_desc[ia] ^ b_desc[ib], axis=1).sum(axis=1)
    ok = bits <= GUIDE_BITS
    return np.unique(ia[ok]).astype(np.int64), np.unique(ib[ok]).astype(np.int64)


def _pairs(a_desc: U8, b_desc: U8) -> tuple[I64, I64]:
    """Candidate pairs: each keypoint of ``a`` with its nearest in ``b`` when that passes the
    ratio test (``parts.RATIO``) or lies within ``CLOSE_BITS`` — a mark's repeated letters
    (a tiled watermark, a caption) fail the ratio test but are near-identical copies."""
    import faiss

    faiss.omp_set_num_threads(1)
    idx = faiss.IndexBinaryFlat(256)
    idx.add(np.ascontiguousarray(b_desc))
    dist, nn = idx.search(np.ascontiguousarray(a_desc), 2)
    ok = np.flatnonzero((dist[:, 0] < RATIO * dist[:, 1]) | (dist[:, 0] <= CLOSE_BITS))
    tb, dd = nn[ok, 0].astype(np.int64), dist[ok, 0]
    order = np.lexsort((ok, dd, tb))  # one keypoint of a per keypoint of b: the closest
    head = order[np.r_[True, tb[order][1:] != tb[order][:-1]]] if order.size else order
    return ok[head].astype(np.int64), tb[head]


def shared_between(a_pts: F32, a_desc: U8, b_pts: F32, b_desc: U8) -> tuple[I64, I64, int]:
    """Keypoints (row numbers) of picture ``a`` and of picture ``b`` (ORB frames) that show
    content the two share: up to ``MARK_CLUSTERS`` similarity transforms, each agreed on by
    at least ``MARK_MIN_PLACES`` distinct places, and what agrees with them; and the most
    distinct places any one transform had."""
    none = np.zeros(0, np.int64)
    if a_desc.shape[0] < MARK_MIN_PLACES or b_desc.shape[0] < MARK_MIN_PLACES:
        return none, none, 0
    qa, tb = _pairs(a_desc, b_desc)
    shared_a: list[I64] = []
    shared_b: list[I64] = []
    places = 0
    for _ in range(MARK_CLUSTERS):
        if qa.size < MARK_MIN_PLACES:
            break
        src = a_pts[qa].astype(np.float32).reshape(-1, 1, 2)
        dst = b_pts[tb].astype(np.float32).reshape(-1, 1, 2)
        model, mask = cv2.estimateAffinePartial2D(src, dst, method=cv2.RANSAC, ransacReprojThreshold=RANSAC_PX,
                                                  maxIters=2000, confidence=0.995)
        if model is None or mask is None:
            break
        inl = mask.reshape(-1).astype(bool)
        scale = float(np.hypot(model[0, 0], model[1, 0]))
        n_places = min(_places(a_pts[qa[inl]]), _places(b_pts[tb[inl]]))
        if not SCALE_RANGE[0] < scale < SCALE_RANGE[1] or n_places < MARK_MIN_PLACES:
            break
        places = max(places, n_places)
        ga, gb = _guided(np.asarray(model, np.float64), a_pts, a_desc, b_pts, b_desc)
        shared_a += [qa[inl], ga]
        shared_b += [tb[inl], gb]
        qa, tb = qa[~inl], tb[~inl]
    if not shared_a:
        return none, none, 0
    return np.unique(np.concatenate(shared_a)), np.unique(np.concatenate(shared_b)), places


def shared_with_registered(index: IndexBackend, pts: F32, desc: U8, exclude: str | None = None
                           ) -> list[tuple[str, I64, I64, bool, int]]:
    """For a picture about to be registered (its ORB keypoints and descriptors): every
    registered picture it shares content with, as (work id, the new picture's shared rows,
    that picture's shared rows, whether the two look derived — ``DERIVED_SHARE`` of each —,
    the most distinct places of one transform)."""
    if desc.shape[0] < MARK_MIN_PLACES:
        return []
    votes = index.neighbour_votes(desc, MARK_RADIUS, MARK_NEIGHBOURS)
    ranked = sorted(((v, w) for w, v in votes.items() if v >= MARK_MIN_VOTES and w != exclude), reverse=True)
    out: list[tuple[str, I64, I64, bool, int]] = []
    for _, w in ranked[:MARK_CANDIDATES]:
        w_pts, w_desc = index.local_features(w)
        mine, theirs, places = shared_between(pts, desc, w_pts, w_desc)
        if mine.size:
            derived = mine.size >= DERIVED_SHARE * desc.shape[0] and theirs.size >= DERIVED_SHARE * w_desc.shape[0]
            out.append((w, mine, theirs, derived, places))
    return out


def shared_mask(points: F32, rows: list[tuple[I64, bool, int]]) -> npt.NDArray[np.bool_] | None:
    """A picture's shared keypoints (``points``, its ORB frame) from its recorded pairs (its
    shared rows, derived or not): every row of a pair that is not derived; a derived pair's
    rows only when at least ``DERIVED_OVERLAP`` of them are already shared with pictures that
    are not derived from it — then what the two share is mostly a mark they both carry (two
    smooth wallpapers whose few keypoints are mostly the same watermark), not one picture's
    content. A pair whose best transform had fewer than ``MARK_SURE_PLACES`` distinct places
    counts only when ``DERIVED_OVERLAP`` of its rows are shared with another picture too (a
    chance alignment of two unrelated pictures is not repeated by a third). Then every
    keypoint within ``MARK_DILATE_PX`` of a shared one: the rest of the mark's letters and
    strokes, which the pairs did not happen to match."""
    mask = np.zeros(points.shape[0], bool)
    counts = np.zeros(points.shape[0], np.int64)
    for kp, _, _ in rows:
        counts[kp] += 1
    for kp, derived, places in rows:
        # a pair agreeing on fewer than MARK_SURE_PLACES places may be chance: it counts only
        # where a third picture shares the same keypoints
        if not derived and (places >= MARK_SURE_PLACES or (counts[kp] > 1).mean() >= DERIVED_OVERLAP):
            mask[kp] = True
    for kp, derived, _ in rows:
        if derived and kp.size and mask[kp].mean() >= DERIVED_OVERLAP:
            mask[kp] = True
    if not mask.any():
        return None
    near = ((points[:, None, :] - points[None, mask, :]) ** 2).sum(axis=2).min(axis=1) <= MARK_DILATE_PX ** 2
    return np.asarray(mask | near)


def crowded_by_a_mark(index: IndexBackend, w: str, d: int, best: dict[str, int]) -> bool:
    """A picture carrying a mark other registered pictures carry (``fingerprint.marks``)
    whose code is not clearly the query's nearest: the mark, not the picture, is near."""
    others = [x for v, x in best.items() if v != w]
    return bool(others) and d >= MARK_DCT_RATIO * min(others) and index.shared_keypoints(w) is not None
