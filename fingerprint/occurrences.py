"""Every occurrence: the segments of one work that a query matches, one per alignment.

Music loops and videos repeat: a passage of the query can occur in a work several times, at
several offsets (work time − query time). The best offset, which reaches the match threshold, is
a segment ``{query_start_s, work_start_s, duration_s, score}`` and the match's own offsets; every
other offset that reaches ``repeat_bar`` of it (audio) is another segment (see
``docs/fingerprints.md``, "Every occurrence").
"""

from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

# at most this many segments per (query, work) pair: the evidence manifest holds 16 matches
MAX_SEGMENTS = 16
# two offsets closer than this (seconds) are one occurrence (the same alignment, jittered)
SEGMENT_MIN_SEPARATION_S = 1.0
# a repeat found by the video frames must be about as close as the best alignment: its mean
# frame distance at most this many bits above the best's (a static shot is within the frame
# radius at every offset, 10+ bits further than at the true one; a verbatim repeat is not)
VIDEO_REPEAT_MARGIN_BITS = 3.0
# a further audio segment of a work already matched (another repeat of the passage) may have
# fewer votes than the threshold: at least REPEAT_MIN_SHARE of it and REPEAT_OF_BEST of the
# best segment's votes. The same query landmarks meet each verbatim repeat, but each repeat sits
# at its own phase of the spectrogram's frames, so one repeat of a passage heard at 10 dB SNR
# can fall to 13-17 pairs while another has 18-26; a bar of the music recurring within the
# passage (a figure, not the passage) reached 10-16 pairs at 0.15-0.29 of the best
# (docs/fingerprints.md, "Every occurrence")
REPEAT_MIN_SHARE = 2 / 3
REPEAT_OF_BEST = 0.4

I64 = npt.NDArray[np.int64]
F64 = npt.NDArray[np.float64]


@dataclass(frozen=True)
class Segment:
    """One occurrence: the query from ``query_start_s`` for ``duration_s`` seconds matches the
    work from ``work_start_s``; ``score`` is its evidence over the match threshold (≥ 1 for the
    best segment; a further audio segment can be under 1, down to ``repeat_bar``)."""

    query_start_s: float
    work_start_s: float
    duration_s: float
    score: float

    def as_dict(self) -> dict[str, float]:
        return {"query_start_s": round(float(self.query_start_s), 3),
                "work_start_s": round(float(self.work_start_s), 3),
                "duration_s": round(float(self.duration_s), 3), "score": round(float(self.score), 4)}


def offset_peaks(offsets: I64, threshold: int, min_separation: int,
                 limit: int = MAX_SEGMENTS) -> list[tuple[int, int]]:
    """Offsets (integer units) whose votes within ±1 unit reach ``threshold``, as
    ``(offset, votes)``, strongest first (ties: the smaller offset); each at least
    ``min_separation`` units from every stronger one kept; at most ``limit``. Once the
    strongest reaches ``threshold``, the others need only ``repeat_bar`` of it."""
    if offsets.size == 0:
        return []
    vals, counts = np.unique(offsets, return_counts=True)
    lo = np.searchsorted(vals, vals - 1, "left")
    hi = np.searchsorted(vals, vals + 1, "right")
    csum = np.concatenate([[0], np.cumsum(counts)])
    window = csum[hi] - csum[lo]
    order = np.lexsort((vals, -window))
    kept: list[tuple[int, int]] = []
    bar = threshold
    for i in order.tolist():
        votes = int(window[i])
        if votes < bar or len(kept) >= limit:
            break
        if not kept:
            bar = repeat_bar(threshold, votes)
        v = int(vals[i])
        if all(abs(v - k) >= min_separation for k, _ in kept):
            kept.append((v, votes))
    return kept


def repeat_bar(threshold: int, best: int) -> int:
    """Votes a further segment needs when the best segment has ``best`` (≥ ``threshold``)."""
    return min(threshold, max(math.ceil(REPEAT_MIN_SHARE * threshold), math.ceil(REPEAT_OF_BEST * best)))


def longest_run(times: F64, gap: float) -> tuple[float, float]:
    """The run of aligned hits (seconds) with the most hits, runs split at gaps > ``gap``:
    a few stray chance hits far from the copied segment do not stretch it."""
    t = np.sort(times)
    cuts = np.flatnonzero(np.diff(t) > gap) + 1
    runs = np.split(t, cuts)
    best = max(runs, key=lambda r: r.size)
    return float(best[0]), float(best[-1])


def distinct(cands: list[tuple[float, int, int, float]], best_bin: int, min_frames: int,
             min_separation: int, limit: int = MAX_SEGMENTS) -> list[int]:
    """Video repeats: bins of ``cands`` ``(mass, votes, bin, mean distance)`` other than
    ``best_bin`` with at least ``min_frames`` frames, a mean distance within
    ``VIDEO_REPEAT_MARGIN_BITS`` of the best bin's, and ``min_separation`` bins from every
    stronger one kept (``best_bin`` first); strongest (largest mass) first."""
    best_dist = next(c[3] for c in cands if c[2] == best_bin)
    kept = [best_bin]
    for _mass, votes, b, dist in sorted(cands, key=lambda c: (-c[0], c[2])):
        if len(kept) >= limit:
            break
        if votes < min_frames or dist > best_dist + VIDEO_REPEAT_MARGIN_BITS:
            continue
        if all(abs(b - k) >= min_separation for k in kept):
            kept.append(b)
    return kept


def group(names: list[str]) -> dict[str, npt.NDArray[np.int64]]:
    """Row numbers of each name."""
    groups: dict[str, list[int]] = defaultdict(list)
    for i, w in enumerate(names):
        groups[w].append(i)
    return {w: np.asarray(ix, np.int64) for w, ix in groups.items()}
