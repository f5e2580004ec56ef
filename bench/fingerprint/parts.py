"""Part-search benchmark: registered pictures shown inside screenshot-like pages, collages,
picture-in-picture frames and bordered pages at 40–100 % scale; negatives are the same layouts
around never-registered pictures.

Three sets, none of them the D-embedded check's generator:

* ``tune`` — half of scikit-image's photos and generated drawings (gradients, ellipses,
  polylines, triangles), every drawing carrying the same "(c) studio" watermark; the part
  search's thresholds were set on this set;
* ``held`` — the other half of the photos and drawings of other seeds, never looked at while
  tuning;
* ``real`` — desktop wallpapers (photographs and digital art of ukui-wallpapers,
  mate-backgrounds, lomiri-wallpapers; near-duplicates left out and derived works kept on one
  side, as in the benchmark's split), pages filled with opencv-doc's photos; needs those Debian packages
  (``bench.fingerprint.run`` installs them).

``python -m bench.fingerprint.parts [tune|held|real ...]`` prints one JSON object per set:
recall per layout, regions within IoU 0.5 of the truth, false positives, CPU per query, index
size.
"""

from __future__ import annotations

import json
import random
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from . import media as M

U8 = Any  # BGR uint8 pictures (OpenCV returns loosely typed arrays)
LAYOUTS = ("screenshot", "collage", "pip", "border")


def drawing(seed: int, w: int = 720, h: int = 540) -> U8:
    r = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    a = r.uniform(0, 2 * np.pi)
    base = (np.cos(a) * xx + np.sin(a) * yy) / max(w, h)
    im = np.stack([(base * r.uniform(60, 200) + r.uniform(0, 55)) for _ in range(3)], -1)
    im = im.clip(0, 255).astype(np.uint8)
    for _ in range(25):
        c = tuple(int(x) for x in r.integers(0, 255, 3))
        k = r.random()
        p = (int(r.integers(0, min(w, h))), int(r.integers(0, min(w, h))))
        if k < 0.35:
            cv2.ellipse(im, p, (int(r.integers(10, 110)), int(r.integers(10, 80))), float(r.uniform(0, 180)),
                        0, 360, c, -1)
        elif k < 0.7:
            pts = r.integers(0, [w, h], (int(r.integers(3, 7)), 2)).astype(np.int32)
            cv2.polylines(im, [pts], True, c, int(r.integers(2, 8)))
        else:
            cv2.fillPoly(im, [r.integers(0, [w, h], (3, 2)).astype(np.int32)], c)
    cv2.putText(im, "(c) studio", (w - 230, h - 20), cv2.FONT_HERSHEY_DUPLEX, 1.0, (255, 255, 255), 2)
    return cv2.GaussianBlur(im, (3, 3), 0)


def page(R: random.Random, inner: U8, scale: float, others: list[U8], layout: str) -> tuple[U8, list[int]]:
    """``inner`` scaled by ``scale`` inside a page of the given layout; (page, [x, y, w, h])."""
    im = cv2.resize(inner, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
    h, w = im.shape[:2]
    if layout == "screenshot":
        H, W = 1200, 1500
        pg = np.full((H, W, 3), 255, np.uint8)
        cv2.rectangle(pg, (0, 0), (260, H), (235, 235, 240), -1)
        for k in range(26):
            line = "".join(R.choice("ABCDEFGH ijklmnop qrst") for _ in range(48))
            cv2.putText(pg, line, (280, 60 + 44 * k), cv2.FONT_HERSHEY_COMPLEX_SMALL, 0.9, (30, 30, 30), 1)
        for k, o in enumerate(others[:2]):
            pg[60 + 300 * k:60 + 300 * k + 200, 20:240] = cv2.resize(o, (220, 200))
        y, x = R.randint(40, max(41, H - h - 20)), R.randint(280, max(281, W - w - 20))
    elif layout == "collage":
        H, W = 1100, 1400
        pg = np.full((H, W, 3), 20, np.uint8)
        for k, o in enumerate(others[:3]):
            y0, x0 = 20 + 540 * (k // 2), 20 + 700 * (k % 2)
            pg[y0:y0 + 500, x0:x0 + 660] = cv2.resize(o, (660, 500))
        y, x = 560 + R.randint(0, max(0, 520 - h)), 720 + R.randint(0, max(0, 660 - w))
    elif layout == "pip":
        H, W = 1000, 1400
        pg = np.asarray(cv2.resize(others[0], (W, H)), dtype=np.uint8)
        y, x = R.randint(10, max(11, H - h - 10)), R.randint(10, max(11, W - w - 10))
        cv2.rectangle(pg, (x - 3, y - 3), (x + w + 3, y + h + 3), (255, 255, 255), -1)
    else:  # a bordered page with a caption above and below
        H, W = h + 260, w + 200
        pg = np.full((H, W, 3), R.randint(180, 250), np.uint8)
        cv2.putText(pg, f"Figure {R.randint(1, 99)}: a picture found online", (40, 60),
                    cv2.FONT_HERSHEY_TRIPLEX, 1.0, (0, 0, 0), 2)
        cv2.putText(pg, f"source unknown - shared {R.randint(2, 999)} times", (40, H - 40),
                    cv2.FONT_HERSHEY_PLAIN, 2.0, (40, 40, 40), 2)
        y, x = 120, 100
    h, w = min(h, pg.shape[0] - y), min(w, pg.shape[1] - x)
    pg[y:y + h, x:x + w] = im[:h, :w]
    return pg, [x, y, w, h]


def material(name: str) -> tuple[list[U8], list[U8], list[U8], random.Random]:
    """(registered, never registered, filler pictures, rng) of a set."""
    if name == "real":
        from .run import image_material, split_groups

        # the benchmark's material and split: long side ≤ 640, near-duplicates left out (the
        # same wallpaper ships at several sizes) and derived works (one design in two colours)
        # kept on one side, since across the split they would be true matches
        pics, _ = image_material("small")
        walls = [(n, a) for source, n, a in pics if source == "wallpapers"]
        fill = [a for source, _, a in pics if source == "opencv-doc" and min(a.shape[:2]) >= 200]
        if not walls or not fill:
            raise SystemExit("the real set needs ukui-wallpapers, mate-backgrounds, lomiri-wallpapers, opencv-doc")
        side = split_groups([n for n, _ in walls])
        return ([a for (_, a), r in zip(walls, side, strict=True) if r],
                [a for (_, a), r in zip(walls, side, strict=True) if not r], fill, random.Random(21))
    R = random.Random(11 if name == "tune" else 12)
    ph = [a for _, a in M.photos()]
    order = list(range(len(ph)))
    R.shuffle(order)
    mine = [ph[i] for i in order[(0 if name == "tune" else 1)::2]]
    base = 100 if name == "tune" else 500
    half = len(mine) // 2 + 1
    works = [a if max(a.shape[:2]) >= 300 else cv2.resize(a, None, fx=2, fy=2) for a in mine[:half]]
    return (works + [drawing(base + i) for i in range(14)], mine[half:] + [drawing(base + 200 + i) for i in range(14)],
            [drawing(base + 300 + i) for i in range(50)], R)


def build(name: str, root: Path) -> dict[str, tuple[str | None, list[int] | None, str]]:
    works, unreg, fill, R = material(name)
    (root / "works").mkdir(parents=True)
    (root / "q").mkdir()
    truth: dict[str, tuple[str | None, list[int] | None, str]] = {}
    for i, w in enumerate(works):
        cv2.imwrite(str(root / "works" / f"w{i:02d}.png"), w)
        for lay in LAYOUTS:
            pg, reg = page(R, w, R.uniform(0.4, 1.0) * min(1.0, 640 / max(w.shape[:2])), R.sample(fill, 3), lay)
            cv2.imwrite(str(root / "q" / f"in{i:02d}_{lay}.jpg"), pg, [cv2.IMWRITE_JPEG_QUALITY, R.choice([70, 85, 95])])
            truth[f"in{i:02d}_{lay}.jpg"] = (f"w{i:02d}.png", reg, lay)
    for i, u in enumerate(unreg):
        for lay in LAYOUTS:
            pg, _ = page(R, u, R.uniform(0.4, 1.0) * min(1.0, 640 / max(u.shape[:2])), R.sample(fill, 3), lay)
            cv2.imwrite(str(root / "q" / f"neg{i:02d}_{lay}.jpg"), pg, [cv2.IMWRITE_JPEG_QUALITY, 85])
            truth[f"neg{i:02d}_{lay}.jpg"] = (None, None, lay)
    return truth


def iou(a: list[int] | tuple[int, ...], b: list[int]) -> float:
    ix = max(0, min(a[0] + a[2], b[0] + b[2]) - max(a[0], b[0]))
    iy = max(0, min(a[1] + a[3], b[1] + b[3]) - max(a[1], b[1]))
    return ix * iy / max(a[2] * a[3] + b[2] * b[3] - ix * iy, 1)


def run(name: str) -> dict[str, Any]:
    from fingerprint import service

    root = Path(tempfile.mkdtemp(prefix=f"parts-{name}-"))
    try:
        truth = build(name, root)
        rep = service.add_dir(root / "works", root / "idx", workers=1)
        refused = {f for f, _ in rep.failed}
        hits: dict[str, list[int]] = {lay: [0, 0] for lay in LAYOUTS}
        regions, fps, misses, n_neg = 0, [], [], 0
        t0 = time.process_time()
        for f, res, _ in service.query_dir(root / "q", root / "idx", workers=1):
            w, reg, lay = truth[f]
            top = res.matches[0] if res and res.matches else None
            if w is None or w in refused:
                n_neg += 1
                if top is not None:
                    fps.append(f"{f}->{top.work_id}")
                continue
            hits[lay][1] += 1
            if top is not None and top.work_id == w:
                hits[lay][0] += 1
                regions += top.region is not None and reg is not None and iou(top.region, reg) >= 0.5
            else:
                misses.append(f)
                if top is not None:
                    fps.append(f"{f}->{top.work_id}")
        cpu = time.process_time() - t0
        found, total = sum(h[0] for h in hits.values()), sum(h[1] for h in hits.values())
        return {"set": name, "registered": len(rep.added), "refused_at_registration": sorted(refused),
                "recall": round(found / max(total, 1), 4), "found": found, "queries_with_a_work": total,
                "per_layout": {k: f"{v[0]}/{v[1]}" for k, v in hits.items()},
                "regions_iou_0_5": regions, "negative_queries": n_neg, "false_positives": fps,
                "misses": misses, "query_cpu_ms_mean": round(1000 * cpu / max(len(truth), 1), 1),
                "index_bytes": sum(p.stat().st_size for p in (root / "idx").iterdir())}
    finally:
        shutil.rmtree(root, ignore_errors=True)


def main(argv: list[str] | None = None) -> int:
    for name in (argv if argv is not None else sys.argv[1:]) or ["tune", "held"]:
        if name not in ("tune", "held", "real"):
            print(f"unknown set {name!r}: tune, held or real", file=sys.stderr)
            return 2
        print(json.dumps(run(name)), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
