"""Matching: from a query fingerprint to scored candidate works, a decision, and offsets.

Every decision compares evidence with a named threshold below; ``score`` is that evidence
divided by its threshold, so a reported match always has ``score >= 1`` and scores of
different modalities sort the same way. The thresholds were chosen from false-positive rates
measured on never-registered material (``bench/fingerprint.py``; figures in
``docs/fingerprints.md``).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Collection
from dataclasses import dataclass, field, replace
from functools import partial

import numpy as np
import numpy.typing as npt

from .arrays import CodeHits
from .audio import FRAME_S, AudioFingerprint, pair_hashes
from .colours import code_and_colours, placed, placed_in
from .formats import Fingerprint
from .image import HASH_BITS, MIN_QUALITY, ImageFingerprint, orb_scale
from .index import IndexBackend
from .marks import crowded_by_a_mark
from .media import Modality
from .occurrences import SEGMENT_MIN_SEPARATION_S, Segment, longest_run, offset_peaks
from .parts import PARTS_CANDIDATES, PARTS_MIN_VOTES, PARTS_VOTE_RATIO, Placement
from .text import TextFingerprint
from .timelines import REFIT_BANDS, coarse_line, hough, refit
from .video import VideoFingerprint
from .video_match import Placer, frame_segments, placed_with_sound

F64 = npt.NDArray[np.float64]

# image: global DCT hash (Hamming distance over 256 bits, best of the 8 dihedral variants)
IMAGE_MAX_DISTANCE = 48
IMAGE_CANDIDATES = 8
# image: colour layout (image format v2, fingerprint.art), for registered pictures whose DCT
# code is not indexed: RMS Lab distance of the 8 × 8 layouts, best dihedral variant
LAYOUT_MAX_DISTANCE = 5.0
# image: ORB + RANSAC homography
ORB_VOTE_RADIUS = 48
ORB_MIN_VOTES = 6
ORB_CANDIDATES = 6
ORB_RATIO = 0.8
# above the most inliers of any unrelated pair in the benchmark's all-pairs audit of 365
# pictures (132 860 ordered pairs): 10, an abstract wallpaper against a painted bat
ORB_MIN_INLIERS = 11
# audio: landmark pairs aligned at one offset, and scale-invariant triplets at one (scale, offset).
# Pairs: 18 (was 14) since the full calibration (20.2 h of package audio in 7 272 ten-second
# excerpts, docs/fingerprints.md "Measured (session 11)"): an excerpt of Warzone 2100's music
# reached exactly 14 against the end of a registered track, and the unrelated excerpts' most
# aligned pairs thin out by about half per vote (of the first 2 762: 18 at >= 10, 9 at >= 11,
# 3 at >= 12, 1 at 14), so 18 leaves an expected ~0.2 over the 20 h; the targets' transforms
# keep their recall (10 s at 10 dB SNR 120/120), reverb and re-recording lose 5-7 %
PAIR_MIN_VOTES = 18
# triplets: 14 (was 12): in the same 20.2 h the triplets' tail fell tenfold per vote (289 excerpts
# at 7, 85 at 8, 7 at 9, none at 10) but one excerpt of Frets on Fire's music reached 11 against
# a registered track, one short of 12; 14 costs one reverberated and one tempo +5 % excerpt in 120
TRIPLET_MIN_VOTES = 14
AUDIO_CANDIDATES = 8
# a work found by the exact pairs is re-placed on a line of slope s when |s - 1| >= this
# and the line holds this many times the query anchors of the offset vote
TEMPO_MIN_DEVIATION = 0.01
TEMPO_MIN_GAIN = 1.2
# when the exact pass finds nothing, the query's peaks are rescaled to undo a pitch shift
# (frequency only) or a speed change (time and frequency) on these grids and paired again
PITCH_GRID = (0.97, 0.975, 0.98, 0.985, 0.99, 1.01, 1.015, 1.02, 1.025, 1.03)
SPEED_GRID = (0.95, 0.96, 0.97, 0.98, 0.99, 1.01, 1.02, 1.03, 1.04, 1.05)
SCALED_MIN_VOTES = 18  # as the pairs: the grid's 20 re-pairings are 20 more chances for a chance alignment
# the matching segment: aligned hits separated by more than this many seconds start a new run
SEGMENT_GAP_S = 3.0
# a video matched by frames and sound: the sound's segment within this many seconds of the
# frames' offset places it (music repeats where pictures do not)
AV_AGREE_S = 1.0
# a byte-identical copy (the exact SM3) not found by its features (a work registered at the
# level exact-only): the strongest evidence there is
EXACT_SCORE = 100.0
# text: share of the smaller document's winnowed hashes found in the other
TEXT_MIN_CONTAINMENT = 0.3
TEXT_MIN_SHARED = 4
# ... or this many shared winnowed hashes whatever the containment (a passage of roughly 50+
# tokens copied into a longer text); negatives reached 11
TEXT_ABS_SHARED = 16


@dataclass
class Match:
    work_id: str
    score: float
    query_start_s: float | None = None
    work_start_s: float | None = None
    duration_s: float | None = None
    method: str = ""
    # images: where the work sits in the query, (x, y, w, h) in the query's pixels, and the
    # evidence behind it (see fingerprint.parts.Placement)
    region: tuple[int, int, int, int] | None = None
    inliers: int | None = None
    spread: float | None = None
    query_share: float | None = None
    # audio and video: every occurrence of the work in the query, best first (the first is
    # this match's own offsets); empty for images and text
    segments: list[Segment] = field(default_factory=list)

    def as_dict(self) -> dict[str, object]:
        def r(x: float | None) -> float | None:
            return None if x is None else round(float(x), 3)

        out: dict[str, object] = {
            "work_id": self.work_id, "score": round(float(self.score), 4),
            "query_start_s": r(self.query_start_s), "work_start_s": r(self.work_start_s),
            "duration_s": r(self.duration_s)}
        if self.region is not None:
            out["region"] = list(self.region)
        if self.inliers is not None:
            out["inliers"] = self.inliers
        out.update({k: r(v) for k, v in (("spread", self.spread), ("query_share", self.query_share)) if v is not None})
        if self.segments:
            out["segments"] = [s.as_dict() for s in self.segments]
        return out


@dataclass
class QueryResult:
    modality: str
    sm3: str
    matches: list[Match] = field(default_factory=list)

    def as_dict(self) -> dict[str, object]:
        return {"matches": [m.as_dict() for m in self.matches], "modality": self.modality,
                "sm3": self.sm3}


def _best(matches: dict[str, Match]) -> list[Match]:
    return sorted(matches.values(), key=lambda m: (-m.score, m.work_id))


def _keep(found: dict[str, Match], m: Match) -> None:
    old = found.get(m.work_id)
    if old is None or m.score > old.score:
        found[m.work_id] = m


# -- images -----------------------------------------------------------------------------------

def _placed(w: str, p: Placement, method: str) -> Match:
    return Match(w, p.inliers / ORB_MIN_INLIERS, method=method, region=p.region, inliers=p.inliers,
                 spread=p.spread, query_share=p.share)


def _whole_picture(index: IndexBackend, q: ImageFingerprint, found: dict[str, Match],
                   also: list[str] | None = None) -> None:
    """ORB on the query as a whole (scaled like the registered pictures), and on its mirror;
    the works in ``also`` are located whatever their votes."""
    s = orb_scale(q.width, q.height)
    views = [(q.points, q.descriptors, False)]
    if q.mirror_points is not None and q.mirror_descriptors is not None:
        views.append((q.mirror_points, q.mirror_descriptors, True))
    for pts, desc, mirrored in views:
        if desc.shape[0] == 0:
            continue
        votes = index.search_descriptors(desc, ORB_VOTE_RADIUS)
        ranked = sorted(votes.items(), key=lambda kv: -kv[1])
        chosen = [w for w, v in ranked[:ORB_CANDIDATES] if v >= ORB_MIN_VOTES]
        for w in chosen + [w for w in also or () if w not in chosen]:
            if w in found and found[w].score >= 1.5:
                continue
            p = placed(index, q, pts / np.float32(s), desc, w, mirrored)
            if p is not None:
                if mirrored:
                    x, y, rw, rh = p.region
                    p = replace(p, region=(q.width - x - rw, y, rw, rh))
                _keep(found, _placed(w, p, "orb"))


def _parts(index: IndexBackend, q: ImageFingerprint, found: dict[str, Match]) -> None:
    """Part search: the query's dense keypoints vote for works, the best are located."""
    if q.parts_points is None or q.parts_descriptors is None or q.parts_descriptors.shape[0] == 0:
        return
    votes = index.distinct_votes(q.parts_descriptors, ORB_VOTE_RADIUS, PARTS_VOTE_RATIO)
    ranked = sorted(votes.items(), key=lambda kv: -kv[1])
    for w in [w for w, v in ranked[:PARTS_CANDIDATES] if v >= PARTS_MIN_VOTES]:
        if w in found and found[w].method == "dct":
            continue  # the whole query is this picture
        p = placed(index, q, q.parts_points, q.parts_descriptors, w)
        if p is not None:
            _keep(found, _placed(w, p, "parts"))


def layout_distances(index: IndexBackend, q: ImageFingerprint) -> dict[str, float]:
    """Each indexed layout's distance to the query's (best of its 8 dihedral variants), as
    :func:`fingerprint.art.layout_distance` computes it."""
    from .art import layout_variants

    names, vecs = index.layouts()
    if not names or q.layout is None:
        return {}
    qv = np.stack(layout_variants(q.layout)).reshape(8, 1, -1, 3).astype(np.float32)
    wv = vecs.reshape(1, len(names), -1, 3).astype(np.float32)
    shift = wv[..., 0].mean(axis=2) - qv[..., 0].mean(axis=2)  # (8, N): the query's L moved to the work's mean
    diff = wv - qv
    diff[..., 0] -= shift[..., None]
    d = np.sqrt((diff ** 2).sum(axis=3).mean(axis=2)).min(axis=0)
    return {w: float(x) for w, x in zip(names, d.tolist(), strict=True)}


def _layouts(index: IndexBackend, q: ImageFingerprint, found: dict[str, Match]) -> None:
    for w, d in layout_distances(index, q).items():
        if d <= LAYOUT_MAX_DISTANCE:
            _keep(found, Match(w, 2.0 - d / LAYOUT_MAX_DISTANCE, method="layout",
                               region=(0, 0, q.width, q.height), query_share=1.0))


def _rect_codes(q: ImageFingerprint) -> tuple[list[int], int, npt.NDArray[np.uint8]]:
    """Rectangles with a decided code (quality ≥ ``MIN_QUALITY``), codes per rectangle, the codes."""
    good = [k for k, qv in enumerate(q.rect_quality) if qv >= MIN_QUALITY]
    if not good:
        return [], 1, np.zeros((0, 32), np.uint8)
    per = len(q.rect_codes[good[0]])
    return good, per, np.frombuffer(b"".join(c for k in good for c in q.rect_codes[k]), np.uint8).reshape(-1, 32)


def _rects(index: IndexBackend, q: ImageFingerprint, found: dict[str, Match], marked: dict[str, Match],
           hits: CodeHits | None = None, sure: dict[str, Match] | None = None) -> None:
    """The DCT codes of the rectangles that show a picture inside the query
    (``fingerprint.rects``): a registered picture's code within ``IMAGE_MAX_DISTANCE`` of a
    rectangle's is that picture, in that rectangle. A rectangle whose code is decided by
    noise (quality below ``MIN_QUALITY``) is no evidence. Marked works go to ``marked``, as
    for the whole query, and also to ``sure`` where a rectangle's code (as it is or mirrored)
    and colours alone decide them (``colours.code_and_colours``; the best such rectangle).
    ``hits``: those of :func:`_rect_codes`' codes, if already searched."""
    good, per, codes = _rect_codes(q)
    if not good:
        return
    hits = index.nearest_codes("image", codes, IMAGE_CANDIDATES) if hits is None else hits
    per_box: dict[int, dict[str, int]] = defaultdict(dict)
    flips: dict[tuple[int, str], list[int]] = {}  # (rectangle, work): bits as it is, mirrored
    for row, w, d in zip(hits.query_rows.tolist(), hits.work_ids, hits.distances.tolist(), strict=True):
        best = per_box[good[row // per]]
        best[w] = min(best.get(w, HASH_BITS), int(d))
        if row % per in (0, per // 2):  # the codes as it is and mirrored (``image._dihedral``'s order)
            v = flips.setdefault((good[row // per], w), [HASH_BITS, HASH_BITS])
            v[row % per > 0] = min(v[row % per > 0], int(d))
    area = max(q.width * q.height, 1)
    for k, best in sorted(per_box.items()):
        x, y, bw, bh = q.rect_boxes[k]
        for w, d in best.items():
            if d > IMAGE_MAX_DISTANCE or crowded_by_a_mark(index, w, d, best):
                continue
            m = Match(w, (HASH_BITS - d) / (HASH_BITS - IMAGE_MAX_DISTANCE), method="dct-region",
                      region=(x, y, bw, bh), query_share=bw * bh / area)
            if index.shared_keypoints(w) is None:
                _keep(found, m)
                continue
            if w not in marked or m.score > marked[w].score:
                marked[w] = m
            if (sure is not None and (w not in sure or m.score > sure[w].score) and k < len(q.rect_cuts)
                    and any(code_and_colours(index, q, w, dv, q.rect_cuts[k], bool(j))
                            for j, dv in enumerate(flips.get((k, w), ())))):
                sure[w] = m


def match_image(index: IndexBackend, q: ImageFingerprint) -> list[Match]:
    """DCT codes for the picture as a whole (its region: the whole query), colour layouts of
    the pictures whose code is not indexed, then ORB on the whole picture, then part search;
    each work keeps its best-scoring match."""
    found: dict[str, Match] = {}
    _layouts(index, q, found)
    variants = np.frombuffer(b"".join(q.variants), np.uint8).reshape(-1, 32)
    codes = np.concatenate([variants, _rect_codes(q)[2]])  # searched at once: one pass over the codes
    both = index.nearest_codes("image", codes, IMAGE_CANDIDATES)
    hits, rect_hits = both.rows(0, len(variants)), both.rows(len(variants), len(codes))
    best: dict[str, int] = {}
    as_is: dict[str, list[int]] = {}  # the query as it is and mirrored (variants 0 and 4, not turned)
    for row, w, d in zip(hits.query_rows.tolist(), hits.work_ids, hits.distances.tolist(), strict=True):
        best[w] = min(best.get(w, HASH_BITS), int(d))
        if row in (0, 4):
            v = as_is.setdefault(w, [HASH_BITS, HASH_BITS])
            v[row > 0] = min(v[row > 0], int(d))
    marked: dict[str, Match] = {}
    sure: dict[str, Match] = {}  # marked works that a code and colours decide (colours.code_and_colours)
    for w, d in best.items():
        if d <= IMAGE_MAX_DISTANCE and not crowded_by_a_mark(index, w, d, best):
            m = Match(w, (HASH_BITS - d) / (HASH_BITS - IMAGE_MAX_DISTANCE), method="dct",
                      region=(0, 0, q.width, q.height), query_share=1.0)
            if index.shared_keypoints(w) is None:
                _keep(found, m)
                continue
            marked[w] = m
            if any(code_and_colours(index, q, w, dv, (0, 0, q.width, q.height), bool(j))
                   for j, dv in enumerate(as_is.get(w, ()))):
                sure[w] = m
    _rects(index, q, found, marked, rect_hits, sure)
    _whole_picture(index, q, found, list(marked))
    _parts(index, q, found)
    for w, m in marked.items():
        # a picture carrying a shared mark: its code may be mostly the mark's (a logo on a smooth
        # design lends the code all its structure), so its DCT match stands only when its own
        # keypoints, away from the mark, place it in the query as well (for a rectangle's code:
        # the query's keypoints inside it), or when the code of the query or of a rectangle, as
        # it is or mirrored, is very near and its colours agree (``colours.code_and_colours``)
        if w in found or (m.method == "dct-region" and m.region is not None and placed_in(index, q, w, m.region)):
            _keep(found, m)
        elif w in sure:
            _keep(found, sure[w])
    return _best(found)


# -- audio ------------------------------------------------------------------------------------

def _expand(q_hashes: npt.NDArray[np.int64], r_hashes: npt.NDArray[np.int64]
            ) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]]:
    """For result rows with hash h, every query index with hash h: (result row, query index)."""
    order = np.argsort(q_hashes, kind="stable")
    sq = q_hashes[order]
    lo = np.searchsorted(sq, r_hashes, "left")
    hi = np.searchsorted(sq, r_hashes, "right")
    n = hi - lo
    rows = np.repeat(np.arange(r_hashes.size), n)
    starts = np.repeat(lo, n)
    within = np.arange(rows.size) - np.repeat(np.cumsum(n) - n, n)
    return rows, order[starts + within]


def _segment(times: npt.NDArray[np.float64], gap: float = SEGMENT_GAP_S) -> tuple[float, float]:
    return longest_run(times, gap)


def _single(m: Match) -> Match:
    """``m`` with itself as its one segment (when it has offsets)."""
    if m.query_start_s is not None and m.work_start_s is not None and m.duration_s is not None:
        m.segments = [Segment(m.query_start_s, m.work_start_s, m.duration_s, m.score)]
    return m


def _group(names: list[str]) -> dict[str, npt.NDArray[np.int64]]:
    groups: dict[str, list[int]] = defaultdict(list)
    for i, w in enumerate(names):
        groups[w].append(i)
    return {w: np.asarray(ix, np.int64) for w, ix in groups.items()}


def _pair_matches(index: IndexBackend, q: AudioFingerprint,
                  hits: dict[str, tuple[F64, F64]] | None = None) -> dict[str, Match]:
    return _vote_pairs(index, q.pair_hashes, q.pair_times, PAIR_MIN_VOTES, 1.0, "pairs", hits)


def _scaled_pair_matches(index: IndexBackend, q: AudioFingerprint) -> dict[str, Match]:
    """Pairs of the query's peaks rescaled by each factor of the pitch and speed grids; one
    lookup for all variants. Offsets are in the work's time; the query's time is rescaled
    back. Needs the query's peaks (always present on the query side)."""
    if q.peak_times is None or q.peak_freqs is None or q.peak_times.size < 4:
        return {}
    variants: list[tuple[float, float]] = [(1.0, p) for p in PITCH_GRID] + [(s, s) for s in SPEED_GRID]
    hs: list[npt.NDArray[np.int64]] = []
    ts: list[npt.NDArray[np.int64]] = []
    for a, b in variants:
        h, t = pair_hashes(q.peak_times.astype(np.float64) * a, q.peak_freqs / b)
        hs.append(h)
        ts.append(t)
    rh, names, rt, _ = index.lookup("pairs", np.concatenate(hs))
    best: dict[str, Match] = {}
    if rh.size == 0:
        return best
    for (a, _b), h, t in zip(variants, hs, ts, strict=True):
        keep = np.isin(rh, h)
        if int(keep.sum()) < SCALED_MIN_VOTES:
            continue
        sub_names = [n for n, k in zip(names, keep.tolist(), strict=True) if k]
        found = _vote_rows(h, t, rh[keep], sub_names, rt[keep], SCALED_MIN_VOTES, a, "scaled-pairs")
        for w, m in found.items():
            if w not in best or m.score > best[w].score:
                best[w] = m
    return best


def _vote_pairs(index: IndexBackend, hashes: npt.NDArray[np.int64], times: npt.NDArray[np.int64],
                threshold: int, scale: float, method: str,
                hits: dict[str, tuple[F64, F64]] | None = None) -> dict[str, Match]:
    if hashes.size == 0:
        return {}
    rh, names, rt, _ = index.lookup("pairs", hashes)
    return _vote_rows(hashes, times, rh, names, rt, threshold, scale, method, hits)


def _vote_rows(hashes: npt.NDArray[np.int64], times: npt.NDArray[np.int64], rh: npt.NDArray[np.int64],
               names: list[str], rt: npt.NDArray[np.int64], threshold: int, scale: float,
               method: str, hits: dict[str, tuple[F64, F64]] | None = None) -> dict[str, Match]:
    """Offset voting: for each work, every offset (±1 frame) on which at least ``threshold``
    pairs agree, at least ``SEGMENT_MIN_SEPARATION_S`` apart: one segment each, the most
    voted first and the match's own offsets. ``scale`` converts the query's (rescaled) frame
    times back to the query's own seconds. ``hits``, if given, receives every matched work's
    hits (query frame, work frame)."""
    out: dict[str, Match] = {}
    if rh.size == 0:
        return out
    rows, qi = _expand(hashes, rh)
    names_arr = np.asarray(names, dtype=object)[rows]
    tw = rt[rows]
    tq = times[qi]
    delta = tw - tq
    for w, ix in _group(list(names_arr)).items():
        if ix.size < threshold:
            continue
        d = delta[ix]
        segs: list[Segment] = []
        for v, votes in offset_peaks(d, threshold, round(SEGMENT_MIN_SEPARATION_S / FRAME_S)):
            sel = np.abs(d - v) <= 1
            off = float(np.median(d[sel])) * FRAME_S
            qs, qe = _segment(tq[ix][sel] * FRAME_S)
            # tq are frames of the rescaled query: its own time is tq / scale
            segs.append(Segment(qs / scale, qs + off, (qe - qs) / scale + FRAME_S, votes / threshold))
        if not segs:
            continue
        b = segs[0]
        out[w] = Match(w, b.score, b.query_start_s, b.work_start_s, b.duration_s, method, segments=segs)
        if hits is not None:
            hits[w] = (tq[ix].astype(np.float64), tw[ix].astype(np.float64))
    return out


def _line_match(w: str, score: float, a: F64, b: F64, s: float, o: float, method: str) -> Match:
    """A match on the line ``work frame = s * query frame + o``: the segment is the longest
    run of the hits within ``REFIT_BANDS[0]`` of the line; ``work_start_s`` is the segment's
    start mapped by the line, so it does not matter where along the line the run begins."""
    sel = np.abs(b - s * a - o) <= REFIT_BANDS[0]
    qs, qe = _segment(a[sel] * FRAME_S)
    return Match(w, score, qs, s * qs + o * FRAME_S, qe - qs + FRAME_S, method)


def _retime_pairs(w: str, m: Match, a: F64, b: F64) -> Match:
    """A work found by the exact pairs in a tempo-changed query (time scaled, pitch kept:
    short pairs still hash alike) agrees with the query only over a second or two at any
    one offset; the offset drifts by (s − 1) along the query. If the hits of the work lie on
    a line of slope s, |s − 1| ≥ ``TEMPO_MIN_DEVIATION``, that holds ``TEMPO_MIN_GAIN``
    times the distinct query anchors of the offset vote, place the match on that line,
    refined by least squares."""
    if m.work_start_s is None or m.query_start_s is None:
        return m
    s, o = coarse_line(a, b)
    if abs(s - 1.0) < TEMPO_MIN_DEVIATION / 2:  # the coarse scales are 0.4 % apart
        return m
    s, o, sel = refit(a, b, s, o)
    if abs(s - 1.0) < TEMPO_MIN_DEVIATION:
        return m
    # the offset found at scale 1, counted the same way: distinct anchors within the band
    flat = np.abs(b - a - (m.work_start_s - m.query_start_s) / FRAME_S) <= REFIT_BANDS[-1]
    if np.unique(a[sel]).size < TEMPO_MIN_GAIN * np.unique(a[flat]).size:
        return m
    return _single(_line_match(w, m.score, a, b, s, o, m.method))


def _triplet_matches(index: IndexBackend, q: AudioFingerprint,
                     placed: Collection[str] = ()) -> dict[str, Match]:
    """Works whose triplets lie on one (scale, offset) line; works in ``placed`` (already
    placed by the pairs) get their score only, without the least-squares placement."""
    out: dict[str, Match] = {}
    if q.tri_hashes.size == 0:
        return out
    rh, names, rt, rspan = index.lookup("triplets", q.tri_hashes)
    if rh.size == 0:
        return out
    rows, qi = _expand(q.tri_hashes, rh)
    ratio = rspan[rows] / np.maximum(q.tri_spans[qi], 1)
    ok = (ratio > 0.8) & (ratio < 1.25)
    rows, qi = rows[ok], qi[ok]
    names_arr = np.asarray(names, dtype=object)[rows]
    tw = rt[rows].astype(np.float64)
    tq = q.tri_times[qi].astype(np.float64)
    groups = _group(list(names_arr))
    ranked = sorted(groups.items(), key=lambda kv: -kv[1].size)[:AUDIO_CANDIDATES]
    for w, ix in ranked:
        if ix.size < TRIPLET_MIN_VOTES:
            continue
        a, b = tq[ix], tw[ix]
        best_votes, best_s, best_o = hough(a, b)
        if best_votes < TRIPLET_MIN_VOTES:
            continue
        if w in placed:
            out[w] = Match(w, best_votes / TRIPLET_MIN_VOTES, method="triplets")
            continue
        s, o, _ = refit(a, b, best_s, best_o)
        out[w] = _single(_line_match(w, best_votes / TRIPLET_MIN_VOTES, a, b, s, o, "triplets"))
    return out


def match_audio(index: IndexBackend, q: AudioFingerprint) -> list[Match]:
    hits: dict[str, tuple[F64, F64]] = {}
    pairs = _pair_matches(index, q, hits)
    for w, m in list(pairs.items()):
        pairs[w] = _retime_pairs(w, m, *hits[w])
    found: dict[str, Match] = dict(pairs)
    for w, m in _triplet_matches(index, q, pairs.keys()).items():
        if w in pairs:
            # the pairs' offsets (re-timed above if the tempo changed) are the finer ones
            pairs[w].score = max(pairs[w].score, m.score)
        else:
            found[w] = m
    if not found:  # the fallback keeps one segment: 20 re-pairings, 20 chances for a chance peak
        found = {w: _single(m) for w, m in _scaled_pair_matches(index, q).items()}
    return _best(found)


# -- video ------------------------------------------------------------------------------------

def _frame_matches(index: IndexBackend, q: VideoFingerprint) -> dict[str, Match]:
    out: dict[str, Match] = {}
    for w, segs in frame_segments(index, q).items():
        b = segs[0]
        out[w] = Match(w, b.score, b.query_start_s, b.work_start_s, b.duration_s, "frames", segments=segs)
    return out


def match_video(index: IndexBackend, q: VideoFingerprint) -> list[Match]:
    found = _frame_matches(index, q)
    if q.audio is not None:
        for m in match_audio(index, q.audio):
            old = found.get(m.work_id)
            if old is None:
                found[m.work_id] = m
            elif m.method == "pairs":
                found[m.work_id] = _refined_by_sound(old, m, partial(placed_with_sound, index, q, m.work_id))
            else:
                old.score = max(old.score, m.score)
    return _best(found)


def _refined_by_sound(frames: Match, sound: Match, place: Placer) -> Match:
    """A work matched by its frames and by the exact pairs of its sound (docs/fingerprints.md,
    video). A sound segment within ``AV_AGREE_S`` of the frames' placement is combined with the
    frames' first segment by ``place`` (``video_match.placed_with_sound``): the sound's
    strongest segment if it agrees; else another that does (music repeats where pictures do
    not), and the segments listed are then the frames'. A sound with no agreeing segment is
    not second-guessed (a camcorder copy's frame placement can be 1-2 s off). The score is
    the stronger."""
    score = max(frames.score, sound.score)
    sound.score = score
    segs = sound.segments or _single(sound).segments
    if frames.work_start_s is None or frames.query_start_s is None or not segs:
        return sound
    at = frames.work_start_s - frames.query_start_s
    agree = [g for g in segs if abs(g.work_start_s - g.query_start_s - at) <= AV_AGREE_S]
    if not agree:
        return sound
    g = agree[0] if agree[0] is segs[0] else max(agree, key=lambda x: x.score)
    f = frames.segments[0] if frames.segments else _single(frames).segments[0]
    first = place(f, g)
    rest = segs[1:] if g is segs[0] else frames.segments[1:]
    return Match(frames.work_id, score, first.query_start_s, first.work_start_s, first.duration_s, sound.method,
                 segments=[first, *rest])


# -- text -------------------------------------------------------------------------------------

def match_text(index: IndexBackend, q: TextFingerprint) -> list[Match]:
    out: dict[str, Match] = {}
    qset = np.unique(q.hashes)
    rh, names, _, _ = index.lookup("text", qset)
    if rh.size == 0:
        return []
    for w, ix in _group(names).items():
        shared = int(np.unique(rh[ix]).size)
        if shared < TEXT_MIN_SHARED:
            continue
        smaller = min(qset.size, index.item_count("text", w))
        containment = shared / max(smaller, 1)
        score = max(containment / TEXT_MIN_CONTAINMENT, shared / TEXT_ABS_SHARED)
        if score >= 1.0:
            out[w] = Match(w, score, method="winnow")
    return _best(out)


def match(index: IndexBackend, fp: Fingerprint) -> QueryResult:
    """Candidate works for ``fp`` that pass their modality's threshold, best first."""
    result = QueryResult(fp.modality.value, fp.sm3)
    exact = index.by_sm3(fp.sm3)
    if fp.modality is Modality.IMAGE and fp.image is not None:
        result.matches = match_image(index, fp.image)
    elif fp.modality is Modality.AUDIO and fp.audio is not None:
        result.matches = match_audio(index, fp.audio)
    elif fp.modality is Modality.VIDEO and fp.video is not None:
        result.matches = match_video(index, fp.video)
    elif fp.text is not None:
        result.matches = match_text(index, fp.text)
    if exact:
        # a byte-identical copy of a registered file: found whatever its features (a picture
        # registered at the level exact-only is found only this way)
        same = {m.work_id: m for m in result.matches}
        for w in exact:
            if w not in same:
                m = Match(w, EXACT_SCORE, method="sm3")
                if fp.image is not None:
                    m.region, m.query_share = (0, 0, fp.image.width, fp.image.height), 1.0
                same[w] = m
        result.matches = _best(same)
    return result
