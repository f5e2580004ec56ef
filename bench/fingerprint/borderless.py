"""Borderless line art on a text page: a case the part benchmark's layouts do not have.

Every layout of ``bench.fingerprint.parts`` (and the D-embedded check) shows the picture as a
rectangle that stands out from the page: a photo or a gradient drawing, a frame, a border.
Clip art, logos and line drawings on a white ground, shown on a white page, have no such edge:
the page's rectangles (``fingerprint.rects``) do not find them, so neither the rectangles' DCT
codes nor the enlarged pass's choice of tiles has them, and in a screenshot the picture shares
its tiles with lines of text whose corners compete for each tile's keypoints.

The works are generated line drawings (thin outlines and a few filled shapes, 640 × 480, white
ground, lightly blurred; seeds 900 + i); each is placed at 40, 50 and 60 % of its size over the
text of a screenshot-like page (the part benchmark's screenshot layout, without the sidebar's
pictures), JPEG quality 85. ``--enlarge whole`` runs the query's enlarged pass over the whole page
instead of the rectangles' tiles, to tell the two causes apart.

``python -m bench.fingerprint.borderless [--works 30] [--enlarge rects|whole]`` prints one JSON
object: found per scale, wrong works named, and per scale the median number of the query's
part-search keypoints inside the picture for found and for missed queries.
"""

from __future__ import annotations

import argparse
import json
import random
import shutil
import statistics
import tempfile
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from .parts import page as parts_page

SCALES = (0.4, 0.5, 0.6)


def lineart(seed: int, w: int = 640, h: int = 480) -> Any:
    r = np.random.default_rng(seed)
    im = np.full((h, w, 3), 255, np.uint8)
    for _ in range(18):
        c = tuple(int(x) for x in r.integers(0, 200, 3))
        k = r.random()
        p = (int(r.integers(60, w - 60)), int(r.integers(60, h - 60)))
        if k < 0.4:
            cv2.ellipse(im, p, (int(r.integers(10, 90)), int(r.integers(10, 70))), float(r.uniform(0, 180)), 0, 360,
                        c, int(r.choice([-1, 2, 4])))
        elif k < 0.75:
            pts = r.integers(40, [w - 40, h - 40], (int(r.integers(3, 7)), 2)).astype(np.int32)
            cv2.polylines(im, [pts], True, c, int(r.integers(2, 6)))
        else:
            cv2.fillPoly(im, [r.integers(40, [w - 40, h - 40], (3, 2)).astype(np.int32)], c)
    return cv2.GaussianBlur(im, (3, 3), 0)


def page(R: random.Random, inner: Any, scale: float) -> tuple[Any, list[int]]:
    """The part benchmark's screenshot layout without the sidebar's pictures: the picture is
    pasted as it is, so its white ground meets the page's with no edge."""
    return parts_page(R, inner, scale, [], "screenshot")


def run(works: int, enlarge: str) -> dict[str, Any]:
    from fingerprint import parts, service
    from fingerprint.formats import fingerprint_file

    if enlarge == "whole":
        orig = parts.zoom_tiles
        parts.zoom_tiles = lambda boxes, shape, first, zoom: orig([], shape, first, zoom)
    root = Path(tempfile.mkdtemp(prefix="borderless-"))
    try:
        R = random.Random(7)
        (root / "works").mkdir()
        (root / "q").mkdir()
        truth: dict[str, tuple[str, float, list[int]]] = {}
        for i in range(works):
            w = lineart(900 + i)
            cv2.imwrite(str(root / "works" / f"w{i:02d}.png"), w)
            for j, s in enumerate(SCALES):
                pg, reg = page(R, w, s)
                cv2.imwrite(str(root / "q" / f"in{i:02d}_{j}.jpg"), pg, [cv2.IMWRITE_JPEG_QUALITY, 85])
                truth[f"in{i:02d}_{j}.jpg"] = (f"w{i:02d}.png", s, reg)
        rep = service.add_dir(root / "works", root / "idx", workers=1)
        found = {s: 0 for s in SCALES}
        inside: dict[tuple[float, bool], list[int]] = {(s, ok): [] for s in SCALES for ok in (True, False)}
        wrong = []
        for f, res, _ in service.query_dir(root / "q", root / "idx", workers=1):
            w, s, (x, y, bw, bh) = truth[f]
            top = res.matches[0] if res and res.matches else None
            ok = top is not None and top.work_id == w
            found[s] += ok
            if top is not None and not ok:
                wrong.append(f"{f}->{top.work_id}")
            q = fingerprint_file(root / "q" / f, query=True).image
            p = q.parts_points if q is not None and q.parts_points is not None else np.zeros((0, 2), np.float32)
            n = int(((p[:, 0] >= x) & (p[:, 0] < x + bw) & (p[:, 1] >= y) & (p[:, 1] < y + bh)).sum())
            inside[(s, ok)].append(n)
        return {"works": works, "registered": len(rep.added), "enlarge": enlarge,
                "found": {f"{round(100 * s)}%": f"{found[s]}/{works}" for s in SCALES}, "wrong": wrong,
                "keypoints_inside_median": {f"{round(100 * s)}% {'found' if ok else 'missed'}":
                                            (statistics.median(v) if v else None) for (s, ok), v in inside.items()}}
    finally:
        shutil.rmtree(root, ignore_errors=True)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.fingerprint.borderless")
    ap.add_argument("--works", type=int, default=30)
    ap.add_argument("--enlarge", choices=("rects", "whole"), default="rects")
    a = ap.parse_args(argv)
    print(json.dumps(run(a.works, a.enlarge)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
