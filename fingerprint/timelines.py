"""Lines through audio hits: a query frame a and a work frame b agree when b = s · a + o, with
s the time scale (tempo, speed) and o the offset. Used by ``fingerprint.matching`` to place
triplet matches and to re-time pair matches of a tempo-changed query. Figures:
``docs/fingerprints.md`` ("Placement under a time scale").
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

F64 = npt.NDArray[np.float64]

TRIPLET_SCALES = np.exp(np.linspace(np.log(0.92), np.log(1.0 / 0.92), 43))
HOUGH_OFFSET_BIN = 3.0  # frames
# time-scale refinement: least squares on the hits within these bands (frames) of the line
REFIT_BANDS = (3.0, 2.0, 1.5)
REFIT_MIN_HITS = 6


def hough(a: F64, b: F64) -> tuple[int, float, float]:
    """The line ``b = s * a + o`` (frames) through most hits: ``s`` on ``TRIPLET_SCALES``,
    ``o`` in bins of ``HOUGH_OFFSET_BIN`` frames; votes count distinct query anchors.
    Returns (votes, s, o) with ``o`` the median offset of the winning bin."""
    best_votes, best_s, best_o = 0, 1.0, 0.0
    for s in TRIPLET_SCALES:
        off = b - s * a
        bins = np.round(off / HOUGH_OFFSET_BIN).astype(np.int64)
        vals, counts = np.unique(bins, return_counts=True)
        # count each query anchor once per offset bin
        k = int(np.argmax(counts))
        sel = bins == vals[k]
        votes = int(np.unique(a[sel]).size)
        if votes > best_votes:
            best_votes, best_s, best_o = votes, float(s), float(np.median(off[sel]))
    return best_votes, best_s, best_o


def refit(a: F64, b: F64, s: float, o: float) -> tuple[float, float, npt.NDArray[np.bool_]]:
    """Least-squares line ``b = s * a + o`` on the hits within a band around the current
    line, the band narrowing over ``REFIT_BANDS`` (frames). Returns the refined (s, o) and
    the hits within the last band of the refined line. A fit that would leave the scale
    range of ``TRIPLET_SCALES``, or rest on fewer than ``REFIT_MIN_HITS`` distinct query
    anchors, stops the refinement."""
    for band in REFIT_BANDS:
        sel = np.abs(b - s * a - o) <= band
        if np.unique(a[sel]).size < REFIT_MIN_HITS:
            break
        s_new, o_new = np.polyfit(a[sel], b[sel], 1)
        if not TRIPLET_SCALES[0] <= s_new <= TRIPLET_SCALES[-1]:
            break
        s, o = float(s_new), float(o_new)
    sel = np.abs(b - s * a - o) <= REFIT_BANDS[-1]
    return s, o, sel


def coarse_line(a: F64, b: F64) -> tuple[float, float]:
    """The line ``b = s * a + o`` (frames) through most hits, ``s`` on ``TRIPLET_SCALES``
    and ``o`` in bins of ``HOUGH_OFFSET_BIN`` frames, counting hits. Over the query's span
    the offset b - a of any such line moves by at most ``reach`` frames, so the line lies
    within two adjacent cells of that width: only the hits of the two adjacent cells with
    the most hits enter the search (a long work's scattered chance hits are left out), and
    all scales are counted in one ``unique``."""
    d = b - a
    reach = max(TRIPLET_SCALES[-1] - 1.0, 1.0 - TRIPLET_SCALES[0]) * float(np.ptp(a)) + HOUGH_OFFSET_BIN
    cell = np.floor((d - d.min()) / reach).astype(np.int64)
    counts = np.bincount(cell, minlength=2)
    k = int(np.argmax(counts[:-1] + counts[1:]))
    near = (cell == k) | (cell == k + 1)
    a, b = a[near], b[near]
    off = b[None, :] - TRIPLET_SCALES[:, None] * a[None, :]
    bins = np.round(off / HOUGH_OFFSET_BIN).astype(np.int64)
    lo = int(bins.min())
    width = int(bins.max()) - lo + 1
    keys = np.arange(TRIPLET_SCALES.size, dtype=np.int64)[:, None] * width + (bins - lo)
    vals, cnt = np.unique(keys, return_counts=True)
    si, bi = divmod(int(vals[int(np.argmax(cnt))]), width)
    sel = bins[si] == bi + lo
    return float(TRIPLET_SCALES[si]), float(np.median(off[si][sel]))
