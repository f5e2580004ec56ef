"""Digital-art benchmark: desktop wallpapers and theme artwork that are digital art (smooth
gradients, soft shapes, flat colours, line art, striped and tiled designs) under the
benchmark's image transforms and inside screenshot-like pages.

Two parts, each split into registered works and never-registered look-alikes (whole groups of
derived works — the light and dark versions of one design — on one side):

* ``tune`` — the digital art among the benchmark's own wallpapers (ukui-wallpapers,
  mate-backgrounds, lomiri-wallpapers: ``TUNE_NAMES``). Image format v2's art thresholds and
  parameters were chosen on this part only.
* ``held`` — theme artwork of other Debian packages, never looked at while tuning:
  gnome-backgrounds (WebP and SVG designs, light and dark), desktop-base and
  debian-edu-artwork-* (the themes' SVG wallpapers), sway-backgrounds. SVGs are rendered with
  ``rsvg-convert`` (librsvg2-bin).

``python -m bench.fingerprint.art [tune|held ...] [--quick] [--no-install]`` installs the
packages above with apt-get (``PACKAGES``) and prints one JSON object per part:
recall per transform and per page layout, false positives on the look-alikes, the
registration's recognition levels, CPU per query.
"""

from __future__ import annotations

import json
import random
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from . import media as M
from .parts import LAYOUTS, iou, page

PACKAGES = ("ukui-wallpapers", "mate-backgrounds", "lomiri-wallpapers", "gnome-backgrounds", "desktop-base",
            "debian-edu-artwork-softwaves", "debian-edu-artwork-emerald", "sway-backgrounds", "librsvg2-bin",
            "opencv-doc")
# the benchmark's wallpapers that are digital art (file stems); the rest are photographs
TUNE_NAMES = (
    "2004default", "Fossa_by_Jasper_Roks", "Painting-Colors_by__herobrine7gamer", "calla", "city", "desert",
    "fluent-color", "focal-ubuntukylin", "goldfish", "lomiri-default-background", "rhythm", "rollpaper", "string",
    "the-mouse", "umang_by_Abhishek_Mudgal", "warty-final-ubuntu", "Arc-Colors-Transparent-Wallpaper", "Flow",
    "Gulp", "Silk", "Spring", "Waves", "Float-into-MATE", "Stripes", "MATE-Stripes-Light", "MATE-Stripes-Dark",
    "GreenTraditional", "Ubuntu-Mate-Dark-no-logo", "Ubuntu-Mate-Cold-no-logo",
    "Ubuntu-Mate-Radioactive-no-logo", "Ubuntu-Mate-Warm-no-logo")
TUNE_GROUPS = (("MATE-Stripes-Light", "MATE-Stripes-Dark", "GreenTraditional"),
               ("Ubuntu-Mate-Dark-no-logo", "Ubuntu-Mate-Cold-no-logo", "Ubuntu-Mate-Warm-no-logo",
                "Ubuntu-Mate-Radioactive-no-logo"))
GNOME = Path("/usr/share/backgrounds/gnome")
DESKTOP_BASE = Path("/usr/share/desktop-base")
SWAY = Path("/usr/share/backgrounds/sway/Sway_Wallpaper_Blue_1920x1080.png")
SIDE = 640
TRANSFORMS = ("identity", "jpeg_q30", "jpeg_q50", "resize_0.5", "resize_0.25", "crop_5", "crop_10", "crop_20",
              "pad_20", "rotate_2", "rotate_5", "flip", "gamma_0.6", "gamma_1.6", "blur_2", "noise_10", "overlay",
              "combo_crop10_jpeg50_resize0.5", "combo_flip_pad10_gamma")
QUICK = ("identity", "jpeg_q30", "crop_10", "crop_20", "rotate_5", "blur_2", "noise_10", "overlay",
         "combo_crop10_jpeg50_resize0.5")


def _fit(img: np.ndarray) -> np.ndarray:
    s = SIDE / max(img.shape[:2])
    return np.ascontiguousarray(M.resize(img, s) if s < 1 else img, dtype=np.uint8)


def _svg(path: Path) -> np.ndarray | None:
    try:
        out = subprocess.run(["rsvg-convert", "-w", str(SIDE), "-b", "white", str(path)], capture_output=True,
                             check=True, timeout=120).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    img = cv2.imdecode(np.frombuffer(out, np.uint8), cv2.IMREAD_COLOR)
    return None if img is None else _fit(img)


def _tune() -> list[tuple[str, np.ndarray, str]]:
    from .run import image_material

    pics, _ = image_material("small")
    by = {n.removeprefix("wall-"): a for s, n, a in pics if s == "wallpapers"}
    group_of = {n: g[0] for g in TUNE_GROUPS for n in g}
    return [(n, by[n], group_of.get(n, n)) for n in TUNE_NAMES if n in by]


def _held() -> list[tuple[str, np.ndarray, str]]:
    out: list[tuple[str, np.ndarray, str]] = []
    if GNOME.is_dir():
        for p in sorted(GNOME.iterdir()):
            img = _svg(p) if p.suffix == ".svg" else cv2.imread(str(p), cv2.IMREAD_COLOR)
            if img is not None:
                out.append((f"gnome-{p.stem}", _fit(img), "gnome-" + p.stem.removesuffix("-d").removesuffix("-l")))
    for theme in sorted(DESKTOP_BASE.glob("*-theme")) if DESKTOP_BASE.is_dir() else []:
        if theme.is_symlink():
            continue
        svg = theme / "wallpaper" / "contents" / "images" / "1920x1080.svg"
        img = _svg(svg) if svg.exists() else None
        if img is not None:
            name = theme.name.removesuffix("-theme")
            # the debian-edu themes restyle the desktop-base theme of the same name
            out.append((f"db-{name}", img, "db-" + name.removeprefix("debian-edu-")))
    if SWAY.exists():
        img = cv2.imread(str(SWAY), cv2.IMREAD_COLOR)
        if img is not None:
            out.append(("sway-blue", _fit(img), "sway"))
    return out


def material(part: str) -> tuple[list[tuple[str, np.ndarray]], list[tuple[str, np.ndarray]], list[np.ndarray]]:
    """(registered, never registered, filler photos for pages) of a part: every other group
    of derived works is registered, of which only its first member (a sibling would be a true
    match); the other groups, whole, are the look-alikes."""
    items = _tune() if part == "tune" else _held()
    side: dict[str, bool] = {}
    reg, neg = [], []
    for name, img, group in items:
        first = group not in side
        if first:
            side[group] = len(side) % 2 == 0
        if not side[group]:
            neg.append((name, img))
        elif first:
            reg.append((name, img))
    from .run import _opencv_photos

    fill = [a for _, a in _opencv_photos() if min(a.shape[:2]) >= 200]
    return reg, neg, fill


def run(part: str, quick: bool = False) -> dict[str, Any]:
    from fingerprint import matching
    from fingerprint.formats import fingerprint_bytes, recognition
    from fingerprint.index import open_index

    reg, neg, fill = material(part)
    root = Path(tempfile.mkdtemp(prefix=f"art-{part}-"))
    try:
        idx = open_index(root / "idx")
        levels: dict[str, Any] = {}
        for name, a in reg:
            fp = fingerprint_bytes(M.encode(a, ".png"), name)
            idx.add(name, fp)
            levels[name] = recognition(fp)
        rng = np.random.default_rng(1)
        tf = M.image_transforms(rng)
        names = QUICK if quick else TRANSFORMS
        R = random.Random(31)
        recall: dict[str, str] = {}
        misses: dict[str, list[str]] = {}
        cpu: list[float] = []
        regions = 0

        def query(data: bytes) -> list[matching.Match]:
            c = time.process_time()
            fp = fingerprint_bytes(data, query=True)
            out = matching.match(idx, fp).matches
            cpu.append(time.process_time() - c)
            return out

        for t in names:
            hits = 0
            for name, a in reg:
                b = tf[t](a)
                data = M.encode(b, ".png") if t.startswith("jpeg") else M.encode(b, ".jpg", 95)
                found = query(data)
                ok = bool(found) and found[0].work_id == name
                hits += ok
                if not ok:
                    misses.setdefault(t, []).append(name)
            recall[t] = f"{hits}/{len(reg)}"
        for lay in LAYOUTS:
            hits = 0
            for name, a in reg:
                pg, box = page(R, a, R.uniform(0.4, 1.0), R.sample(fill, 3), lay)
                found = query(M.encode(pg, ".jpg", R.choice([70, 85, 95])))
                ok = bool(found) and found[0].work_id == name
                hits += ok
                regions += ok and found[0].region is not None and iou(found[0].region, box) >= 0.5
                if not ok:
                    misses.setdefault("page_" + lay, []).append(name)
            recall["page_" + lay] = f"{hits}/{len(reg)}"
        fps: list[str] = []
        n_neg = 0
        for name, a in neg:
            views = [tf[t](a) for t in ("identity", "jpeg_q50", "flip", "crop_10")]
            views += [page(R, a, R.uniform(0.4, 1.0), R.sample(fill, 3), lay)[0] for lay in LAYOUTS]
            for v in views:
                n_neg += 1
                found = query(M.encode(v, ".jpg", 90))
                if found:
                    fps.append(f"{name}->{found[0].work_id}:{found[0].method}:{found[0].score:.2f}")
        idx.close()
        return {"part": part, "registered": [n for n, _ in reg], "look_alikes": [n for n, _ in neg],
                "recognition": levels, "recall": recall, "misses": misses, "page_regions_iou_0_5": regions,
                "negative_queries": n_neg, "false_positives": fps,
                "query_cpu_ms_mean": round(1000 * float(np.mean(cpu)), 1)}
    finally:
        shutil.rmtree(root, ignore_errors=True)


def main(argv: list[str] | None = None) -> int:
    args = argv if argv is not None else sys.argv[1:]
    quick = "--quick" in args
    if "--no-install" not in args:
        from .run import install

        install(PACKAGES)
    parts = [a for a in args if a not in ("--quick", "--no-install")] or ["tune", "held"]
    for part in parts:
        if part not in ("tune", "held"):
            print(f"unknown part {part!r}: tune or held", file=sys.stderr)
            return 2
        print(json.dumps(run(part, quick)), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
