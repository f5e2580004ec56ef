"""False positives of the rectangle path alone (``fingerprint.rects``): every negative picture of
the calibration, as it is and inside a screenshot-like page at 40–100 % (JPEG 85, then JPEG 90
as the query), its rectangles' codes of quality >= ``MIN_QUALITY`` against the registered
pictures' codes. Searched with all eight dihedral codes of each rectangle, a superset of the
two the matcher searches, so the count bounds the matcher's from above.

    python -m bench.fingerprint.rect_negatives [--scale small|full]

Prints progress on stderr and one JSON object on stdout. The other paths of the matcher are
calibrated by ``bench.fingerprint.calib --only images``; a query's matches are the union of
its paths' decisions, so their false positives add up.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from bench.fingerprint import calib as C
from bench.fingerprint import media as M
from bench.fingerprint import negatives as N
from bench.fingerprint.parts import page
from fingerprint.image import MIN_QUALITY, box_codes, to_gray
from fingerprint.matching import IMAGE_MAX_DISTANCE
from fingerprint.rects import boxes


def run(scale: str) -> dict[str, Any]:
    root = Path(tempfile.mkdtemp(prefix="rect-neg-"))
    idx, _, bench = C.register_images(root, scale)
    negs, _ = C.dedupe(N.pictures() if scale == "full" else N.pictures()[::12], bench)
    fill = C.fillers(negs)
    R = random.Random(43)
    t0 = time.process_time()
    n, fps, closest, per_query_boxes = 0, [], [], []
    for k, d in enumerate(negs):
        a = np.asarray(cv2.imread(d["path"], cv2.IMREAD_COLOR), np.uint8)
        views: list[tuple[str, Any]] = [("identity", a),
                 ("screenshot", M.jpeg(page(R, a, R.uniform(0.4, 1.0), R.sample(fill, 3), "screenshot")[0], 85))]
        for tname, view in views:
            img = np.asarray(cv2.imdecode(np.frombuffer(M.encode(view, ".jpg", 90), np.uint8), cv2.IMREAD_COLOR),
                             np.uint8)
            g = to_gray(img)
            bs = boxes(img)
            per_query_boxes.append(len(bs))
            codes = [c for b in bs for cs, q, _ in box_codes(g, b, dihedral=True) if q >= MIN_QUALITY for c in cs]
            n += 1
            if not codes:
                continue
            hits = idx.nearest_codes("image", np.frombuffer(b"".join(codes), np.uint8).reshape(-1, 32), 1)
            if hits.distances.size == 0:
                continue
            i = int(np.argmin(hits.distances))
            dmin = int(hits.distances[i])
            closest.append(dmin)
            if dmin <= IMAGE_MAX_DISTANCE:
                fps.append(f"{d['name']} ({tname}) -> {hits.work_ids[i]} at {dmin} bits")
        if k % 250 == 0:
            print(f"[rect-neg] {k}/{len(negs)} queries {n} false positives {len(fps)} closest "
                  f"{min(closest) if closest else None}", file=sys.stderr, flush=True)
    c = sorted(closest)
    return {"scale": scale, "negative_pictures": len(negs), "queries": n, "false_positives": len(fps),
            "pairs": fps, "upper_bound_95": C.upper_bound(len(fps), n),
            "closest_bits": c[0] if c else None, "closest_10": c[:10], "threshold_bits": IMAGE_MAX_DISTANCE,
            "rectangles_per_query_median": float(np.median(per_query_boxes)) if per_query_boxes else 0.0,
            "cpu_ms_per_query": round(1000 * (time.process_time() - t0) / max(n, 1), 1)}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--scale", choices=("small", "full"), default="small")
    print(json.dumps(run(ap.parse_args(argv).scale)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
