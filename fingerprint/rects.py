"""Rectangles in a still picture: the boxes a screenshot, a collage or a framed page shows other
pictures in (query side only).

A picture in a web page, a collage tile or an inset is an axis-aligned rectangle whose four
sides are long straight boundaries against what surrounds it (the page's background, text, a
frame, another tile). Its content can then be hashed like a picture of its own: a registered
picture shown at 40 % of its size inside a page has the same DCT code as the picture, and the
code needs no keypoints (smooth digital art has few). This module finds those rectangles;
``fingerprint.image`` hashes them and ``fingerprint.matching`` searches the codes. Format and
figures: ``docs/fingerprints.md`` ("Rectangles").

Steps (``boxes``), on the picture reduced so that its long side is at most ``SIDE``:

1. boundary maps: ``bh[y, x]`` when some colour channel differs by at least ``EDGE_MIN``
   between rows ``y - 1`` and ``y`` (a boundary above row ``y``; rows 0 and h, the picture's
   own edges, always), ``bv`` likewise between columns; each closed along its direction over
   gaps of ``GAP`` pixels, and a copy dilated by one line across it;
2. segments: the runs of the dilated maps of at least ``MIN_RUN`` pixels, the
   ``MAX_SEGMENTS`` longest of each direction;
3. boxes from pairs of parallel segments at least ``MIN_SIDE`` apart: (a) whose ends agree
   within ``END_TOL`` at one end at least: the box over their common extent; (b) that
   overlap along ``OVERLAP`` of each one's length: the box between the first and last
   perpendicular lines covered ``MIN_COVER`` between them (text set up to a picture
   continues its edges past its corners);
4. a box is kept when each side is covered at least ``MIN_COVER`` by the dilated map (or
   one side is not, but both perpendicular segments end there: a picture's edge the colour
   of the page), after each side is moved to the best-covered exact line within ``REFINE``
   pixels; its sides are at least ``MIN_SIDE`` long and it is at most ``MAX_AREA`` of the
   picture. Boxes are ranked by the mean cover of their exact sides (in steps of
   ``RANK_STEP``), then larger first; at most ``MAX_BOXES`` are returned, in the picture's
   own pixels.
"""

from __future__ import annotations

import threading
from typing import Any

import cv2
import numpy as np
import numpy.typing as npt

U8 = npt.NDArray[np.uint8]
Box = tuple[int, int, int, int]  # x, y, w, h

SIDE = 1600
EDGE_MIN = 10
GAP = 1
MIN_RUN = 40
MIN_SIDE = 40
MAX_SEGMENTS = 256
END_TOL = 6
MIN_COVER = 0.6
MAX_AREA = 0.9
RANK_STEP = 0.1  # boxes whose exact covers round alike rank by area
OVERLAP = 0.6
REFINE = 3  # each side is moved to the best-covered line within this many pixels
MAX_BOXES = 64


def _maps(img: U8) -> tuple[npt.NDArray[np.bool_], npt.NDArray[np.bool_]]:
    """``bh`` ((h + 1) × w): a boundary above row y (rows 0 and h: the picture's own top and
    bottom edges, which bound a picture cut off by the frame); ``bv`` (h × (w + 1)) likewise
    left of column x."""
    h, w = img.shape[:2]
    chans: list[U8] = [img] if img.ndim == 2 else [np.asarray(c, np.uint8) for c in cv2.split(img)]
    dy = np.zeros((h - 1, w), np.uint8)
    dx = np.zeros((h, w - 1), np.uint8)
    for c in chans:  # the largest difference over the colour channels
        dy = np.asarray(cv2.max(dy, cv2.absdiff(c[1:], c[:-1])), np.uint8)
        dx = np.asarray(cv2.max(dx, cv2.absdiff(c[:, 1:], c[:, :-1])), np.uint8)
    bh = np.ones((h + 1, w), np.uint8)
    bv = np.ones((h, w + 1), np.uint8)
    bh[1:h] = dy >= EDGE_MIN
    bv[:, 1:w] = dx >= EDGE_MIN
    k = 2 * GAP + 1
    bh = cv2.morphologyEx(bh, cv2.MORPH_CLOSE, np.ones((1, k), np.uint8))
    bv = cv2.morphologyEx(bv, cv2.MORPH_CLOSE, np.ones((k, 1), np.uint8))
    return bh.astype(bool), bv.astype(bool)


def _runs(m: npt.NDArray[np.uint8], cols: bool = False) -> npt.NDArray[np.int64]:
    """Runs of set pixels along each row of ``m`` (along each column when ``cols``) of at
    least ``MIN_RUN``: rows of (row, start, end) (column, start, end), row by row (column by
    column); the ``MAX_SEGMENTS`` longest when there are more (the earlier of equal ones)."""
    out = _kernels().runs(np.ascontiguousarray(m, np.uint8), bool(cols), MIN_RUN)
    if out.shape[0] > MAX_SEGMENTS:
        out = out[np.argsort(-(out[:, 2] - out[:, 1]), kind="stable")[:MAX_SEGMENTS]]
    return np.asarray(out, np.int64)


def _geometry(segs: npt.NDArray[np.int64]) -> tuple[npt.NDArray[np.int64], ...]:
    """For every pair of segments (rows of (line, start, end)): the lower and higher line,
    their common extent (start, end), and each one's start and end (a's, then b's)."""
    i, j = np.triu_indices(segs.shape[0], 1)
    r, s, e = segs[:, 0], segs[:, 1], segs[:, 2]
    return (np.minimum(r[i], r[j]), np.maximum(r[i], r[j]), np.maximum(s[i], s[j]), np.minimum(e[i], e[j]),
            s[i], e[i], s[j], e[j])


def _pairs(geom: tuple[npt.NDArray[np.int64], ...]) -> npt.NDArray[np.int64]:
    """Rows (line a, line b, start, end, starts agree, ends agree) for pairs of segments
    ``MIN_SIDE`` apart whose ends agree within ``END_TOL`` at one end at least; start/end:
    their common extent (``geom``: :func:`_geometry`)."""
    lo, hi, start, end, s_a, e_a, s_b, e_b = geom
    same_s, same_e = np.abs(s_a - s_b) <= END_TOL, np.abs(e_a - e_b) <= END_TOL
    ok = (hi - lo >= MIN_SIDE) & (end - start >= MIN_SIDE) & (same_s | same_e)
    return np.asarray(np.stack([lo, hi, start, end, same_s, same_e], axis=1)[ok], np.int64).reshape(-1, 6)


def _spans(geom: tuple[npt.NDArray[np.int64], ...], integral: npt.NDArray[np.int32], across: bool
           ) -> npt.NDArray[np.int64]:
    """Rows (line a, line b, first, last) for pairs of parallel segments ``MIN_SIDE`` apart
    that overlap along most of each one's length (``OVERLAP``): two sides of one rectangle
    whose ends run on past its corners (text set right up to a picture continues its top and
    bottom edges). ``first`` and ``last`` are the first and last perpendicular lines, within
    the overlap (give or take ``REFINE``), covered ``MIN_COVER`` between the two segments;
    ``integral`` is the perpendicular map's integral image, ``across`` True when the
    segments are horizontal (the perpendicular lines are columns); ``geom``: :func:`_geometry`."""
    lo, hi, start, end, s_a, e_a, s_b, e_b = geom
    ov = end - start
    ok = (hi - lo >= MIN_SIDE) & (ov >= MIN_SIDE) & (ov >= OVERLAP * (e_a - s_a)) & (ov >= OVERLAP * (e_b - s_b))
    limit = integral.shape[1 if across else 0] - 2  # the last perpendicular line
    k = np.flatnonzero(ok)
    if k.size == 0:
        return np.zeros((0, 4), np.int64)
    a, b = lo[k], hi[k]
    first_l = np.maximum(0, start[k] - REFINE)
    count = np.minimum(limit, end[k] + REFINE) + 1 - first_l
    big = np.iinfo(np.int64).max
    i64 = [np.ascontiguousarray(x, np.int64) for x in (a, b, first_l, count)]  # one compiled signature
    first, last = _kernels().spans(*i64, np.ascontiguousarray(integral, np.int32), bool(across), float(MIN_COVER), big)
    good = (first < big) & (last - first >= MIN_SIDE)
    return np.stack([a[good], b[good], first[good], last[good]], axis=1).astype(np.int64)


class _Kernels:
    """The compiled loops of this module (Numba, cached on disk, :func:`fingerprint.scan.compiled`),
    built on first use, once (under a lock): ``runs`` (:func:`_runs`), ``spans`` (:func:`_spans`)
    and ``refine`` (:func:`_refine`)."""

    def __init__(self) -> None:
        from .scan import compiled

        self.runs = compiled(_runs_loop)
        self.spans = compiled(_spans_loop)
        self.refine = compiled(_refine_loop)


_KERNELS: _Kernels | None = None
_KERNELS_LOCK = threading.Lock()


def _kernels() -> _Kernels:
    global _KERNELS
    with _KERNELS_LOCK:
        if _KERNELS is None:
            _KERNELS = _Kernels()
    return _KERNELS


def warm_up() -> None:
    """Load (or compile) the loops with the argument types :func:`boxes` gives them."""
    k = _kernels()
    z, one = np.zeros(1, np.int64), np.ones(1, np.int64)
    k.runs(np.zeros((2, 2), np.uint8), False, MIN_RUN)
    k.spans(z, one, z, one, np.zeros((2, 2), np.int32), True, 0.6, 1)
    k.refine(np.zeros((3, 3), np.int32), np.zeros((3, 3), np.int32), np.zeros((1, 4), np.int64), _OFFSETS)


def _runs_loop(m: Any, cols: bool, min_run: int) -> Any:  # pragma: no cover - compiled
    """(line, start, end) of each run of non-zero values of at least ``min_run`` along the
    rows of ``m`` (its columns when ``cols``), line by line."""
    lines, length = (m.shape[1], m.shape[0]) if cols else (m.shape[0], m.shape[1])
    out = np.empty((lines * (length // (min_run + 1) + 1), 3), np.int64)  # the most there can be
    k = 0
    for ln in range(lines):
        start = -1
        for i in range(length + 1):
            on = i < length and (m[i, ln] if cols else m[ln, i]) != 0
            if on and start < 0:
                start = i
            elif not on and start >= 0:
                if i - start >= min_run:
                    out[k, 0], out[k, 1], out[k, 2] = ln, start, i
                    k += 1
                start = -1
    return out[:k].copy()


def _spans_loop(a: Any, b: Any, first_l: Any, count: Any, integral: Any, across: bool, cover: float,
                big: int) -> Any:  # pragma: no cover - compiled
    """For each pair of segments, lines ``first_l[p]`` .. ``first_l[p] + count[p] - 1`` of the
    perpendicular map between lines ``a[p]`` and ``b[p]``: the first and last covered at
    least ``cover`` (``big`` and -1 when none is)."""
    m = a.size
    first = np.full(m, big, np.int64)
    last = np.full(m, -1, np.int64)
    for p in range(m):
        pa, pb = a[p], b[p]
        need = cover * (pb - pa)
        for ln in range(first_l[p], first_l[p] + count[p]):
            if across:
                n_set = integral[pb, ln + 1] - integral[pa, ln + 1] - integral[pb, ln] + integral[pa, ln]
            else:
                n_set = integral[ln + 1, pb] - integral[ln, pb] - integral[ln + 1, pa] + integral[ln, pa]
            if n_set >= need:
                if first[p] == big:
                    first[p] = ln
                last[p] = ln
    return first, last


def _refine_loop(rh: Any, rv: Any, bx: Any, offsets: Any) -> Any:  # pragma: no cover - compiled
    """:func:`_refine`'s moves, box by box: the same order of sides, the same candidates
    (nearest first) and covers, the first best kept."""
    h, w = rv.shape[0] - 1, rh.shape[1] - 1
    out = bx.copy()
    for r in range(out.shape[0]):
        for _ in range(2):
            for q in range(4):
                side = (1, 3, 0, 2)[q]
                across = q >= 2
                a, b = (1, 3) if across else (0, 2)
                limit = w if across else h
                lo, hi = out[r, a], out[r, b]
                best = -np.inf  # the first candidate is taken whatever its cover, as argmax does
                pick = out[r, side]
                for o in offsets:
                    ln = min(max(out[r, side] + o, 0), limit)
                    if across:
                        x = min(max(ln, 0), rv.shape[1] - 2)
                        n = rv[hi, x + 1] - rv[lo, x + 1] - rv[hi, x] + rv[lo, x]
                    else:
                        y = min(max(ln, 0), rh.shape[0] - 2)
                        n = rh[y + 1, hi] - rh[y, hi] - rh[y + 1, lo] + rh[y, lo]
                    c = np.float64(n) / max(hi - lo, 1)
                    if c > best:
                        best, pick = c, ln
                out[r, side] = pick
    return out


def _covers(integral: npt.NDArray[np.int32], lines: npt.NDArray[np.int64], a: npt.NDArray[np.int64],
            b: npt.NDArray[np.int64], across: bool) -> npt.NDArray[np.float64]:
    """For each side, the share of positions ``a``..``b - 1`` where the map is set: on row
    ``lines`` of the map, or on its column ``lines`` when ``across``; ``integral`` is the
    map's integral image (OpenCV ``integral``)."""
    if across:
        x = np.clip(lines, 0, integral.shape[1] - 2)
        n = integral[b, x + 1] - integral[a, x + 1] - integral[b, x] + integral[a, x]
    else:
        y = np.clip(lines, 0, integral.shape[0] - 2)
        n = integral[y + 1, b] - integral[y, b] - integral[y + 1, a] + integral[y, a]
    return np.asarray(np.asarray(n, np.float64) / np.maximum(b - a, 1), np.float64)


_OFFSETS = np.array(sorted(range(-REFINE, REFINE + 1), key=abs), np.int64)  # nearest first: ties stay


def _refine(rh: npt.NDArray[np.int32], rv: npt.NDArray[np.int32], bx: npt.NDArray[np.int64]) -> npt.NDArray[np.int64]:
    """Each side of each box (rows x0, y0, x1, y1) moved to the best-covered line of the
    undilated map within ``REFINE`` of it (JPEG ringing and the closing of gaps put run ends
    and lines a pixel or two off; a trimmed border depends on it): twice over the sides
    top, bottom, left, right in turn, each move seen by the next; candidates nearest first,
    the first of equally covered ones kept (compiled, ``_refine_loop``)."""
    if bx.shape[0] and (int(bx.min()) < 0 or int(bx[:, [0, 2]].max()) > rh.shape[1] - 1
                        or int(bx[:, [1, 3]].max()) > rv.shape[0] - 1):
        raise ValueError("a box outside the picture")  # the loop does not check its indices
    return np.asarray(_kernels().refine(np.ascontiguousarray(rh, np.int32), np.ascontiguousarray(rv, np.int32),
                                        np.ascontiguousarray(bx, np.int64), _OFFSETS), np.int64)


def _unique_rows(bx: npt.NDArray[np.int64]) -> npt.NDArray[np.int64]:
    """``np.unique(bx, axis=0)``: the distinct rows in lexicographic order (numpy sorts them as
    records, ten times slower on a page with many candidate boxes)."""
    if bx.shape[0] == 0:
        return bx
    s = bx[np.lexsort(bx.T[::-1])]
    keep = np.ones(s.shape[0], bool)
    keep[1:] = (s[1:] != s[:-1]).any(axis=1)
    return np.asarray(s[keep], np.int64)


def boxes(img: U8) -> list[Box]:
    """Rectangles that show a picture inside ``img`` (BGR or grey), best first, at most
    ``MAX_BOXES``, in ``img``'s pixels."""
    h0, w0 = img.shape[:2]
    s = min(1.0, SIDE / max(h0, w0, 1))
    work = img if s == 1.0 else np.asarray(
        cv2.resize(img, (max(1, round(w0 * s)), max(1, round(h0 * s))), interpolation=cv2.INTER_AREA), np.uint8)
    h, w = work.shape[:2]
    if min(h, w) < MIN_SIDE:
        return []
    bh, bv = _maps(work)
    # a side may sit one row or column either way of where the runs put it
    dh = np.asarray(cv2.dilate(bh.astype(np.uint8), np.ones((3, 1), np.uint8)), np.uint8)
    dv = np.asarray(cv2.dilate(bv.astype(np.uint8), np.ones((1, 3), np.uint8)), np.uint8)
    rh = np.asarray(cv2.integral(bh.astype(np.uint8)), np.int32)
    rv = np.asarray(cv2.integral(bv.astype(np.uint8)), np.int32)
    ih = np.asarray(cv2.integral(dh), np.int32)
    iv = np.asarray(cv2.integral(dv), np.int32)
    # runs on the dilated maps: a side that wavers between two rows (JPEG) is one run
    hs, vs = _runs(dh), _runs(dv, cols=True)
    hg, vg = _geometry(hs), _geometry(vs)  # every pair of parallel segments, once
    hp, vp = _pairs(hg), _pairs(vg)
    hsp, vsp = _spans(hg, iv, True), _spans(vg, ih, False)
    # boxes as rows (x0, y0, x1, y1) and the sides (top, bottom, left, right) both
    # perpendicular segments reach (their ends agree there): such a side may be invisible (a
    # picture's edge the colour of the page) if the other three are covered
    parts = [
        (np.stack([hp[:, 2], hp[:, 0], hp[:, 3], hp[:, 1]], 1),
         np.stack([np.zeros(len(hp), np.int64)] * 2 + [hp[:, 4], hp[:, 5]], 1)),
        (np.stack([vp[:, 0], vp[:, 2], vp[:, 1], vp[:, 3]], 1),
         np.stack([vp[:, 4], vp[:, 5]] + [np.zeros(len(vp), np.int64)] * 2, 1)),
        (np.stack([hsp[:, 2], hsp[:, 0], hsp[:, 3], hsp[:, 1]], 1), np.zeros((len(hsp), 4), np.int64)),
        (np.stack([vsp[:, 0], vsp[:, 2], vsp[:, 1], vsp[:, 3]], 1), np.zeros((len(vsp), 4), np.int64)),
    ]
    bx = np.concatenate([p[0] for p in parts]).reshape(-1, 4)
    corner = np.concatenate([p[1] for p in parts]).reshape(-1, 4).astype(bool)

    def side_covers(b: npt.NDArray[np.int64], ih_: npt.NDArray[np.int32], iv_: npt.NDArray[np.int32]
                    ) -> npt.NDArray[np.float64]:
        x0, y0, x1, y1 = b.T
        return np.stack([_covers(ih_, y0, x0, x1, False), _covers(ih_, y1, x0, x1, False),
                         _covers(iv_, x0, y0, y1, True), _covers(iv_, x1, y0, y1, True)], axis=1)

    def sized(b: npt.NDArray[np.int64]) -> npt.NDArray[np.bool_]:
        bw, bh_ = b[:, 2] - b[:, 0], b[:, 3] - b[:, 1]
        return np.asarray((bw >= MIN_SIDE) & (bh_ >= MIN_SIDE) & (bw * bh_ <= MAX_AREA * w * h), bool)

    keep = sized(bx)
    bx, corner = bx[keep], corner[keep]
    # refining moves a side by a few pixels: it cannot rescue two weak sides
    keep = (side_covers(bx, ih, iv) < MIN_COVER).sum(axis=1) <= 1
    bx, corner = bx[keep], corner[keep]
    if bx.shape[0] == 0:
        return []
    bx = _refine(rh, rv, bx)
    cov = side_covers(bx, ih, iv)
    weak = cov < MIN_COVER
    keep = sized(bx) & ((weak.sum(axis=1) == 0) | ((weak.sum(axis=1) == 1) & (weak & corner).any(axis=1)))
    bx = bx[keep]
    if bx.shape[0] == 0:
        return []
    bx = _unique_rows(bx)
    # ranked by how continuous the four sides are on their exact lines (a picture's edge is a
    # line; sides made of text glyphs are patchy), then larger before smaller
    exact = side_covers(bx, rh, rv).mean(axis=1)
    area = (bx[:, 2] - bx[:, 0]) * (bx[:, 3] - bx[:, 1])
    order = np.lexsort((bx[:, 3], bx[:, 2], bx[:, 1], bx[:, 0], -area, -np.round(exact / RANK_STEP)))
    bx = bx[order[:MAX_BOXES]]
    inv = 1.0 / s
    return [(round(x0 * inv), round(y0 * inv), round((x1 - x0) * inv), round((y1 - y0) * inv))
            for x0, y0, x1, y1 in bx.tolist()]
