"""Video matching by frame codes: which works a query video copies, where, and every
repeat (``docs/fingerprints.md``, video v1 and "Every occurrence"). The audio track is matched
by ``matching.match_audio``; ``matching.match_video`` combines both.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from .image import MIN_QUALITY
from .index import IndexBackend
from .occurrences import SEGMENT_MIN_SEPARATION_S, Segment, distinct, group, longest_run
from .video import SAMPLE_FPS, VideoFingerprint

F64 = npt.NDArray[np.float64]
I64 = npt.NDArray[np.int64]
U8 = npt.NDArray[np.uint8]

# frames within this Hamming distance, aligned at one offset
FRAME_MAX_DISTANCE = 56
VIDEO_MIN_FRAMES = 8
# among offsets with at least this share of the best offset's frames, the closest frames win
VIDEO_TIE_SHARE = 0.9
# a run of aligned frames ends at a gap longer than this (seconds; as for audio)
SEGMENT_GAP_S = 3.0
# a segment's ends, once its offset is decided, are extended over the adjacent query frames
# within this distance of the work's frames at that offset (any view), gaps of up to
# EXTEND_MAX_GAP frames bridged: an overlay or a crop can push a shot's frames past the
# decision radius while they stay far closer than unrelated frames (104–128 bits measured at
# the aligned offset, 62–86 for a panned shot under a logo box)
EXTEND_MAX_DISTANCE = 90
EXTEND_MAX_GAP = 2
# a query frame this far from every frame of a work at an offset, in every view, shows another
# picture (measured at the aligned offset: frames of unrelated host footage 98-128 bits, true
# frames under a camcorder copy or a crop 50-98)
CONTRADICT_BITS = 100
EXTEND_MAX_S = 30.0  # how far beyond each end of the run the frames are searched (cost bound)
# a query sample whose hash quality (``image.hash_quality``) is below this is no evidence: a
# flat or banded frame's DCT code is decided by its few non-zero coefficients and is close to
# every other such frame's (measured: slide shows of a white band on black matched registered
# frames of a black bar on white within 7 bits, 10–15 samples in a row). The images' bound,
# unchanged.
VIDEO_MIN_QUALITY = MIN_QUALITY


@dataclass(frozen=True)
class View:
    """Codes the query offers for search: ``codes`` (M × 32), ``rows`` the sample each code
    row belongs to (an index into ``VideoFingerprint.times``)."""

    codes: U8
    rows: I64


def views(q: VideoFingerprint) -> list[View]:
    """The query's views — the frames as they are, mirrored, and the query crops — each
    restricted to the samples whose hash quality reaches ``VIDEO_MIN_QUALITY``."""
    keep = np.arange(q.times.size, dtype=np.int64)
    if q.quality is not None:
        keep = np.flatnonzero(q.quality >= VIDEO_MIN_QUALITY).astype(np.int64)
    out = [View(np.ascontiguousarray(c[keep]), keep) for c in (q.codes, q.mirror_codes, *q.query_crop_codes)]
    if q.parts is not None and q.parts.rows.size:
        ok = np.flatnonzero(q.parts.quality >= VIDEO_MIN_QUALITY)
        out.append(View(np.ascontiguousarray(q.parts.codes[ok]), q.parts.rows[ok]))
    return out


def _frame_segments(d: F64, rows: npt.NDArray[np.int64], sim: F64, tq: F64) -> tuple[float, list[Segment]]:
    """One work's frame hits (offsets ``d``, query rows, closeness ``sim``, query times
    ``tq``): the placement's mass and its segments, the placement first, then every repeat
    (``occurrences.distinct``); empty if no offset has ``VIDEO_MIN_FRAMES`` frames."""
    step = 1.0 / SAMPLE_FPS
    bins = np.round(d / step).astype(np.int64)
    cands: list[tuple[float, int, int, float]] = []  # (mass, votes, bin, mean distance)
    for v in np.unique(bins).tolist():
        sel = np.abs(bins - v) <= 1
        uniq, inv = np.unique(rows[sel], return_inverse=True)
        if uniq.size < VIDEO_MIN_FRAMES:
            continue
        per_frame = np.zeros(uniq.size)
        np.maximum.at(per_frame, inv, sim[sel])
        mass = float(per_frame.sum())
        cands.append((mass, int(uniq.size), int(v), FRAME_MAX_DISTANCE + 1 - mass / uniq.size))
    if not cands:
        return 0.0, []
    floor = VIDEO_TIE_SHARE * max(c[1] for c in cands)
    best = max((c for c in cands if c[1] >= floor), key=lambda c: (c[0], c[1]))
    votes_of = {c[2]: c[1] for c in cands}
    segs: list[Segment] = []
    for v in distinct(cands, best[2], VIDEO_MIN_FRAMES, round(SEGMENT_MIN_SEPARATION_S / step)):
        sel = np.abs(bins - v) <= 1
        off = float(np.median(d[sel]))
        qs, qe = longest_run(tq[sel], max(SEGMENT_GAP_S, 2 * step))
        segs.append(Segment(qs, qs + off, qe - qs + step, votes_of[v] / VIDEO_MIN_FRAMES))
    return best[0], segs


def frame_segments(index: IndexBackend, q: VideoFingerprint) -> dict[str, list[Segment]]:
    """Per work, the offset supported by at least ``VIDEO_MIN_FRAMES`` distinct query frames
    (the decision) and, among the offsets with at least ``VIDEO_TIE_SHARE`` of the best
    offset's frames, the one whose aligned frames are closest: the largest sum over query
    frames of ``FRAME_MAX_DISTANCE + 1 - d`` for the best aligned frame. Counting frames
    alone cannot place a clip of a static-camera video, where every frame is within the
    radius of every other (measured on opencv-doc's ``vtest.avi``: the true offset's frames
    lie 0–8 bits apart, the others 10 or more); closeness alone misplaces cropped copies of
    panning shots, whose distances sit near the radius (measured: 1–2 s off). The decision
    needs one view of the query (as is, mirrored, one crop) to reach ``VIDEO_MIN_FRAMES``;
    the placement then pools the views, each query frame counting with its closest view:
    the registered side holds one crop, so different shots of a cropped copy are matched by
    different query crops, and one view alone covers only some of the clip's shots (measured:
    a cropped slide show's clip started 1.6 s late); each segment's ends are then extended
    at its offset (``_extend``). Repeats of the clip in the work are further segments
    (``_frame_segments``)."""
    decided: set[str] = set()
    pooled: dict[str, list[tuple[F64, npt.NDArray[np.int64], F64, F64]]] = defaultdict(list)
    vs = views(q)
    for v in vs:
        if v.rows.size == 0:
            continue
        hits = index.search_codes("frame", v.codes, FRAME_MAX_DISTANCE)
        if hits.query_rows.size == 0:
            continue
        qrows = v.rows[hits.query_rows]
        tq = q.times[qrows]
        delta = hits.times - tq
        sim_all = (FRAME_MAX_DISTANCE + 1 - hits.distances).astype(np.float64)
        for w, ix in group(hits.work_ids).items():
            part = (delta[ix], qrows[ix], sim_all[ix], tq[ix])
            pooled[w].append(part)
            if w not in decided and _frame_segments(*part)[1]:
                decided.add(w)
    out: dict[str, list[Segment]] = {}
    for w in sorted(decided):
        d, rows, sim, tq = (np.concatenate(x) for x in zip(*pooled[w], strict=True))
        segs = _frame_segments(d, rows, sim, tq)[1]
        if segs:
            out[w] = [_extend(index, vs, q.times, w, g) for g in segs]
    return out


def _aligned(index: IndexBackend, vs: list[View], times: F64, rows: npt.NDArray[np.int64],
             work_id: str, offset: float, radius: int = EXTEND_MAX_DISTANCE) -> npt.NDArray[np.bool_]:
    """Which of ``rows`` (query samples) have, in some view, a frame of ``work_id`` at
    ``offset`` (± one sample) within ``radius`` bits."""
    ok = np.zeros(times.size, dtype=bool)
    for v in vs:
        sel = np.flatnonzero(np.isin(v.rows, rows))
        if sel.size == 0:
            continue
        hits = index.search_codes("frame", v.codes[sel], radius)
        r = v.rows[sel[hits.query_rows]]
        same = np.asarray([w == work_id for w in hits.work_ids], dtype=bool)
        near = np.abs(hits.times - times[r] - offset) <= 1.2 / SAMPLE_FPS
        ok[r[same & near]] = True
    return ok


def _extend(index: IndexBackend, vs: list[View], times: F64, work_id: str, seg: Segment) -> Segment:
    """``seg`` with its ends moved outwards over the adjacent query frames aligned with the
    work at the segment's offset within ``EXTEND_MAX_DISTANCE`` (``_aligned``), bridging gaps
    of up to ``EXTEND_MAX_GAP`` frames, up to ``EXTEND_MAX_S`` beyond each end; the offset
    is unchanged."""
    step = 1.0 / SAMPLE_FPS
    off = seg.work_start_s - seg.query_start_s
    first = int(np.searchsorted(times, seg.query_start_s - 1e-6))
    last = max(first, int(np.searchsorted(times, seg.query_start_s + seg.duration_s - step + 1e-6)) - 1)
    near = np.abs(times - np.clip(times, times[first], times[last])) <= EXTEND_MAX_S
    rows = np.flatnonzero(near & ((np.arange(times.size) < first) | (np.arange(times.size) > last))).astype(np.int64)
    if rows.size == 0:
        return seg
    ok = _aligned(index, vs, times, rows, work_id, off)
    ok[first:last + 1] = True
    i, j = first, last
    while True:
        back = [k for k in range(i - 1, max(-1, i - 2 - EXTEND_MAX_GAP), -1) if ok[k]]
        if not back:
            break
        i = back[0]
    while True:
        fwd = [k for k in range(j + 1, min(times.size, j + 2 + EXTEND_MAX_GAP)) if ok[k]]
        if not fwd:
            break
        j = fwd[0]
    qs = float(times[i])
    return Segment(qs, qs + off, float(times[j]) - qs + step, seg.score)


def placed_with_sound(index: IndexBackend, q: VideoFingerprint, work_id: str, frames: Segment,
                      sound: Segment) -> Segment:
    """One occurrence seen by the frames (``frames``) and by the sound (``sound``, whose offset
    agrees): the sound's offset, which is finer than the frame grid, and the union of both
    extents, the frames' extended again at that offset (``_extend``: a placement 0.5 s off
    under a camcorder copy stopped the extension of frames 70-90 bits away). The sound's
    extent reaches further than the frames' only where the pictures do not contradict it:
    not if some query sample there of hash quality is ``CONTRADICT_BITS`` or more from every
    frame of the work at that offset, in every view (a chance landmark pair at the right
    offset bridged into the sound's segment had started it 2.5 s before the clip, over frames
    of the host 112-128 bits away). Samples without hash quality (a fade, a dark shot) are no
    evidence either way."""
    vs = views(q)
    off = sound.work_start_s - sound.query_start_s
    f = _extend(index, vs, q.times, work_id, Segment(frames.query_start_s, frames.query_start_s + off,
                                                     frames.duration_s, frames.score))
    start, end = f.query_start_s, f.query_start_s + f.duration_s
    s0, s1 = sound.query_start_s, sound.query_start_s + sound.duration_s
    good = vs[0].rows if vs else np.zeros(0, np.int64)

    def contradicted(a: float, b: float) -> bool:
        rows = good[(q.times[good] >= a - 1e-6) & (q.times[good] < b - 1e-6)]
        if rows.size == 0:
            return False
        near = _aligned(index, vs, q.times, rows, work_id, off, CONTRADICT_BITS - 1)
        return not bool(near[rows].all())

    if s0 < start and not contradicted(s0, start):
        start = s0
    if s1 > end and not contradicted(end + 1e-3, s1):
        end = s1
    return Segment(start, start + off, end - start, sound.score)


# ``placed_with_sound`` for one query and work (``functools.partial``), as ``matching`` calls it
Placer = Callable[[Segment, Segment], Segment]


def decision_votes(index: IndexBackend, q: VideoFingerprint) -> dict[str, int]:
    """Per work, the decision's statistic (for margins, e.g. the benchmark's negatives): the
    most distinct query samples that one view aligns at one offset (± one sample) within
    ``FRAME_MAX_DISTANCE``; a work is decided at ``VIDEO_MIN_FRAMES``."""
    best: dict[str, int] = {}
    for v in views(q):
        if v.rows.size == 0:
            continue
        hits = index.search_codes("frame", v.codes, FRAME_MAX_DISTANCE)
        qrows = v.rows[hits.query_rows]
        bins = np.round((hits.times - q.times[qrows]) * SAMPLE_FPS).astype(np.int64)
        for w, ix in group(hits.work_ids).items():
            for b in np.unique(bins[ix]).tolist():
                n = int(np.unique(qrows[ix][np.abs(bins[ix] - b) <= 1]).size)
                best[w] = max(best.get(w, 0), n)
    return best
