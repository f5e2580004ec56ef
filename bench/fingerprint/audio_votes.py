"""Raw audio votes, for setting the audio thresholds (docs/fingerprints.md, "Measured
(session 11)"): every query's most votes per method — aligned pairs, triplets, rescaled
pairs — with the thresholds set to 1, so that the decision at any threshold can be read off.

``negatives``: every 10 s excerpt, end to end, of the calibration's negative audio (20.2 h,
``negatives.audio_streams``) against the calibration's 30 registered tracks; one JSON line per
excerpt ``{"pkg", "start", "pairs": [votes, work], "triplets": …, "scaled": …}``.
``positives``: the main benchmark's audio transforms (120 queries each, its seed), the true
track's votes; one JSON line per transform ``{"transform", "votes": [[pairs, triplets,
scaled], …]}``. Both write to stdout; progress on stderr.

    python -m bench.fingerprint.audio_votes negatives > neg.jsonl
    python -m bench.fingerprint.audio_votes positives > pos.jsonl
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from fingerprint import matching
from fingerprint.formats import fingerprint_bytes
from fingerprint.index import LocalIndex, open_index

from . import media as M
from . import negatives as N
from .run import MUSIC_DIR, SR, audio_transforms, load_music


def raw_votes(idx: LocalIndex, q: Any) -> dict[str, dict[str, float]]:
    """Per method, each work's votes (thresholds set to 1 for the call)."""
    saved = matching.PAIR_MIN_VOTES, matching.TRIPLET_MIN_VOTES, matching.SCALED_MIN_VOTES
    matching.PAIR_MIN_VOTES, matching.TRIPLET_MIN_VOTES, matching.SCALED_MIN_VOTES = 1, 1, 1
    try:
        found = {"pairs": matching._pair_matches(idx, q), "triplets": matching._triplet_matches(idx, q),
                 "scaled": matching._scaled_pair_matches(idx, q)}
    finally:
        matching.PAIR_MIN_VOTES, matching.TRIPLET_MIN_VOTES, matching.SCALED_MIN_VOTES = saved
    return {k: {w: m.score for w, m in v.items()} for k, v in found.items()}


def negatives(root: Path) -> None:
    from .calib_av import register_tracks

    idx, _ = register_tracks(root)
    t0 = time.process_time()
    k = -1
    for k, (pkg, start, y) in enumerate(N.excerpts(N.audio_streams(), 10.0, 10.0)):
        fp = fingerprint_bytes(M.wav_bytes(y, SR), query=True)
        assert fp.audio is not None
        votes = raw_votes(idx, fp.audio)
        best = {m: list(max(((v, w) for w, v in d.items()), default=(0.0, None))) for m, d in votes.items()}
        print(json.dumps({"pkg": pkg, "start": start, **best}), flush=k % 100 == 0)
        if k % 500 == 0:
            print(f"[votes] {k} excerpts, {time.process_time() - t0:.0f} CPU s", file=sys.stderr, flush=True)
    print(f"[votes] done: {k + 1} excerpts", file=sys.stderr)


def positives(root: Path) -> None:
    from scipy.signal import resample_poly

    tracks = [t for t in load_music(sorted(MUSIC_DIR.glob("*.ogg"))) if float(np.sqrt(np.mean(t[1] ** 2))) > 1e-3]
    tracks = [(n, np.asarray(resample_poly(x, SR, sr), np.float32) if sr != SR else x, SR) for n, x, sr in tracks]
    reg = [t for i, t in enumerate(tracks) if i % 4 != 3]  # the main benchmark's registered tracks
    idx = open_index(root / "aud")
    for name, x, sr in reg:
        idx.add(name, fingerprint_bytes(M.wav_bytes(x, sr), name))
    rng = np.random.default_rng(2)  # the main benchmark's seed and draw order
    for tname, (secs, fn, tscale) in audio_transforms(rng).items():
        rows = []
        for k in range(120):
            name, x, sr = reg[(k * 7) % len(reg)]
            start = float(rng.uniform(0, max(0.1, x.size / sr - secs * 1.1 - 1)))
            seg = x[int(start * sr):int((start + secs * tscale) * sr)]
            fp = fingerprint_bytes(fn(seg, sr), query=True)
            assert fp.audio is not None
            v = raw_votes(idx, fp.audio)
            rows.append([v[m].get(name, 0.0) for m in ("pairs", "triplets", "scaled")])
        print(json.dumps({"transform": tname, "votes": rows}), flush=True)
        print(f"[votes] {tname}", file=sys.stderr, flush=True)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.fingerprint.audio_votes", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("which", choices=("negatives", "positives"))
    args = ap.parse_args(argv)
    root = Path(tempfile.mkdtemp(prefix="fpvotes-"))
    try:
        (negatives if args.which == "negatives" else positives)(root)
    finally:
        shutil.rmtree(root, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
