"""Picture-in-picture on the query side: rectangles inside a video's frames that show another
video (an inset over a different background, a split screen, a frame around a clip), found by
their persistent straight edges, and the DCT codes of their content, which the frame index is
searched with like the frames' own codes (``video_match``).

An inset's border stays where it is while the content on both sides of it changes: over a
few seconds it is an edge in nearly every sample, and it is straight and axis-aligned. The
content's own edges move with pans and zooms and end at cuts. ``InsetFinder`` therefore
keeps, for a window of ``WINDOW`` samples, the share of samples in which each pixel lies on a
horizontal or vertical edge, takes the rows and columns along which such persistent edges run
longest as candidate sides, and scores every rectangle they form by how much of its inner
sides lies on persistent edges. The best rectangles (at most ``MAX_BOXES``) are hashed in
every sample of the block the window is centred on. See ``docs/fingerprints.md`` (video
format v1, "Picture in picture").
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

import cv2
import numpy as np
import numpy.typing as npt

from .image import HASH_SIDE, dct_code, hash_quality, trim_borders

U8 = npt.NDArray[np.uint8]
F32 = npt.NDArray[np.float32]

SIDE = 384  # frames are reduced to this long side (never enlarged) to find and hash insets
WINDOW = 16  # samples (4 s at 4 per second) over which a side must persist
HOP = 8  # boxes are found once per block of this many samples, on the window centred on it
EDGE_MIN = 8  # grey levels between adjacent pixels that make an edge
PERSIST = 0.6  # share of the window's samples in which a side's pixels must lie on an edge
MIN_SIDE = 0.2  # a box spans at least this share of the frame's width and of its height
MAX_AREA = 0.8  # and at most this share of its area (larger: a crop, the crop views' job)
MIN_COVER = 0.5  # each inner side: share of its length on persistent edges
MIN_INNER = 2  # inner sides needed (the others may be the frame's own edges)
CANDIDATES = 8  # strongest rows and columns tried as sides
MAX_BOXES = 4
SAME_BOX = 3  # boxes whose sides all lie within this many pixels of a better one's are one box


@dataclass(frozen=True)
class PartCodes:
    """The codes of the insets found: ``rows`` the sample each code belongs to, ``codes``
    (M × 32), ``quality`` (``image.hash_quality`` of each), ``boxes`` (x, y, w, h) as shares
    of the frame (0–1), one per code."""

    rows: npt.NDArray[np.int64]
    codes: U8
    quality: npt.NDArray[np.float64]
    boxes: npt.NDArray[np.float64]


def reduce(gray: U8) -> U8:
    """``gray`` brought to a long side of at most ``SIDE``."""
    h, w = gray.shape
    s = SIDE / max(h, w)
    if s >= 1.0:
        return gray
    return np.asarray(cv2.resize(gray, (max(1, round(w * s)), max(1, round(h * s))), interpolation=cv2.INTER_AREA),
                      np.uint8)


def edges(r: U8) -> tuple[U8, U8]:
    """Horizontal-edge and vertical-edge maps (0/1): ``eh[y, x]`` when rows y − 1 and y differ
    by at least ``EDGE_MIN`` at x (an edge just above row y), ``ev`` likewise for columns."""
    a = r.astype(np.int16)
    eh = np.zeros(r.shape, np.uint8)
    ev = np.zeros(r.shape, np.uint8)
    eh[1:] = np.abs(a[1:] - a[:-1]) >= EDGE_MIN
    ev[:, 1:] = np.abs(a[:, 1:] - a[:, :-1]) >= EDGE_MIN
    return eh, ev


def _candidates(mask: npt.NDArray[np.bool_], min_len: float) -> list[int]:
    """Rows of ``mask`` (persistent edges, gaps of up to 2 pixels closed) with at least
    ``min_len`` edge pixels that hold the most of their ±2-row neighbourhood; the strongest
    ``CANDIDATES``."""
    count = mask.sum(axis=1).astype(np.float64)
    n = count.size
    out: list[tuple[float, int]] = []
    for y in np.flatnonzero(count >= min_len).tolist():
        lo, hi = max(0, y - 2), min(n, y + 3)
        if count[y] >= count[lo:hi].max() and not any(abs(y - k) <= 2 for _, k in out):
            out.append((float(count[y]), y))
    out.sort(reverse=True)
    return [y for _, y in out[:CANDIDATES]]


def _cover_table(mask: npt.NDArray[np.bool_]) -> npt.NDArray[np.int64]:
    """Prefix sums along each row of ``mask`` widened by one row each way (a side may sit
    one pixel off the row found)."""
    wide = mask.copy()
    wide[1:] |= mask[:-1]
    wide[:-1] |= mask[1:]
    return np.concatenate([np.zeros((mask.shape[0], 1), np.int64), np.cumsum(wide, axis=1)], axis=1)


def find_boxes(h_share: npt.NDArray[np.float64], v_share: npt.NDArray[np.float64]) -> list[tuple[int, int, int, int]]:
    """Rectangles (x0, y0, x1, y1; x1 and y1 exclusive) whose inner sides lie on persistent
    edges, given the share of samples in which each pixel is on a horizontal (``h_share``) or
    vertical (``v_share``) edge; best first, at most ``MAX_BOXES``, none with every side within
    ``SAME_BOX`` pixels of a better one's (nested and neighbouring boxes are kept: when one
    side of an inset is found at two places, only one of them is right)."""
    H, W = h_share.shape
    close = np.ones((1, 5), np.uint8)
    bh = cv2.morphologyEx((h_share >= PERSIST).astype(np.uint8), cv2.MORPH_CLOSE, close) > 0
    bv = cv2.morphologyEx((v_share >= PERSIST).astype(np.uint8), cv2.MORPH_CLOSE, close.T) > 0
    bh[0], bv[:, 0] = False, False
    rows = _candidates(bh, MIN_SIDE * W * MIN_COVER)
    cols = _candidates(bv.T, MIN_SIDE * H * MIN_COVER)
    if len(rows) + len(cols) < MIN_INNER:
        return []
    ch, cv = _cover_table(bh), _cover_table(bv.T)
    ys = sorted({0, H, *rows})
    xs = sorted({0, W, *cols})
    inner_y, inner_x = set(rows), set(cols)
    found: list[tuple[float, tuple[int, int, int, int]]] = []
    for i, y0 in enumerate(ys):
        for y1 in ys[i + 1:]:
            if y1 - y0 < MIN_SIDE * H:
                continue
            for j, x0 in enumerate(xs):
                for x1 in xs[j + 1:]:
                    if x1 - x0 < MIN_SIDE * W or (x1 - x0) * (y1 - y0) > MAX_AREA * W * H:
                        continue
                    sides = [(ch, y, x0, x1) for y in (y0, y1) if y in inner_y] + \
                            [(cv, x, y0, y1) for x in (x0, x1) if x in inner_x]
                    if len(sides) < MIN_INNER:
                        continue
                    cover = [float(t[k, b] - t[k, a]) / (b - a) for t, k, a, b in sides]
                    if min(cover) >= MIN_COVER:
                        found.append((sum(cover), (x0, y0, x1, y1)))
    found.sort(key=lambda f: -f[0])
    kept: list[tuple[int, int, int, int]] = []
    for _, b in found:
        if len(kept) >= MAX_BOXES:
            break
        if all(max(abs(p - q) for p, q in zip(b, k, strict=True)) > SAME_BOX for k in kept):
            kept.append(b)
    return kept


def box_code(r: U8, box: tuple[int, int, int, int]) -> tuple[bytes, float]:
    """The DCT code (as for a frame: border-trimmed, 64 × 64) and hash quality of ``box``'s
    content in the reduced frame ``r``."""
    x0, y0, x1, y1 = box
    sub = trim_borders(np.ascontiguousarray(r[y0:y1, x0:x1]))
    small = np.asarray(cv2.resize(sub, (HASH_SIDE, HASH_SIDE), interpolation=cv2.INTER_AREA), np.float32)
    return dct_code(small), hash_quality(small)


class InsetFinder:
    """Fed the sampled grey frames in order (:meth:`push`), then :meth:`finish`; gathers the
    codes of the insets of every block of ``HOP`` samples, found on the ``WINDOW`` samples
    centred on the block."""

    def __init__(self) -> None:
        self._frames: deque[tuple[int, U8, U8, U8]] = deque()  # (sample, reduced, eh, ev)
        self._next_block = 0  # first sample of the next block to process
        self._count = 0
        self._last: tuple[int, int, int, int] | None = None  # the previous block's best box
        self.rows: list[int] = []
        self.codes: list[bytes] = []
        self.quality: list[float] = []
        self.boxes: list[tuple[float, float, float, float]] = []

    def push(self, gray: U8) -> None:
        r = reduce(gray)
        eh, ev = edges(r)
        if self._frames and self._frames[-1][1].shape != r.shape:  # the size changed mid-stream
            self._flush(self._count)
            self._frames.clear()
            self._last = None
        self._frames.append((self._count, r, eh, ev))
        self._count += 1
        # block [b, b + HOP) needs the window up to b + HOP + (WINDOW - HOP) // 2
        while self._next_block + HOP + (WINDOW - HOP) // 2 <= self._count:
            self._block(self._next_block, self._next_block + HOP)

    def finish(self) -> PartCodes:
        self._flush(self._count)
        n = len(self.codes)
        return PartCodes(np.asarray(self.rows, np.int64),
                         np.frombuffer(b"".join(self.codes), np.uint8).reshape(n, 32).copy(),
                         np.asarray(self.quality, np.float64), np.asarray(self.boxes, np.float64).reshape(n, 4))

    def _flush(self, end: int) -> None:
        while self._next_block < end:
            self._block(self._next_block, min(end, self._next_block + HOP))

    def _block(self, b0: int, b1: int) -> None:
        lo, hi = b0 - (WINDOW - HOP) // 2, b1 + (WINDOW - HOP) // 2
        win = [f for f in self._frames if lo <= f[0] < hi]
        self._next_block = b1
        if len(win) < HOP:
            self._last = None
        else:
            h_share = np.mean([f[2] for f in win], axis=0)
            v_share = np.mean([f[3] for f in win], axis=0)
            H, W = win[0][1].shape
            found = find_boxes(h_share, v_share)
            boxes, last = list(found), self._last
            if last is not None and all(max(abs(p - q) for p, q in zip(last, k, strict=True)) > SAME_BOX
                                        for k in found):
                boxes.append(last)  # an inset stays where it is: its sides may fade for a while
            self._last = found[0] if found else None
            for box in boxes:
                rel = (box[0] / W, box[1] / H, (box[2] - box[0]) / W, (box[3] - box[1]) / H)
                for s, r, _, _ in win:
                    if b0 <= s < b1:
                        code, qual = box_code(r, box)
                        self.rows.append(s)
                        self.codes.append(code)
                        self.quality.append(qual)
                        self.boxes.append(rel)
        while self._frames and self._frames[0][0] < b1 - (WINDOW - HOP) // 2:
            self._frames.popleft()
