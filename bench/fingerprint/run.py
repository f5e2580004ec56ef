"""Run the fingerprint benchmark on real media from Debian packages and scikit-image.

Media (installed here with apt-get unless ``--no-install``; never committed):
``wesnoth-1.16-music`` (41 orchestral tracks), ``wesnoth-1.16-data`` (story paintings and
character portraits), ``ukui-wallpapers``, ``mate-backgrounds``, ``lomiri-wallpapers``
(desktop photographs and abstract art), ``asterisk-core-sounds-en-wav`` (speech, negatives
only), ``opencv-doc`` (example photos and videos), ``ffmpeg`` (MP3, tempo and pitch
transforms), ``fortunes-zh`` (Chinese text). Half of the pictures (whole groups of derived
works at a time), a quarter of the tracks and the speech are never registered: they are the
negatives from which false-positive rates are measured. See ``docs/fingerprints.md``.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import numpy.typing as npt

from fingerprint import matching
from fingerprint.formats import fingerprint_bytes
from fingerprint.image import MIN_QUALITY as MIN_IMAGE_QUALITY
from fingerprint.index import LocalIndex, open_index

from . import media as M

PACKAGES = ("wesnoth-1.16-music", "wesnoth-1.16-data", "asterisk-core-sounds-en-wav", "opencv-doc",
            "ukui-wallpapers", "mate-backgrounds", "lomiri-wallpapers", "ffmpeg")
MUSIC_DIR = Path("/usr/share/games/wesnoth/1.16/data/core/music")
# asterisk-core-sounds-en-wav installs its prompts here (and in sub-folders: digits, letters, ...)
SPEECH_DIR = Path("/usr/share/asterisk/sounds/en_US_f_Allison")
OPENCV_DATA = Path("/usr/share/doc/opencv-doc/examples/data")
SR = 22050


def verify_geometry(q_pts: npt.NDArray[np.float32], q_desc: npt.NDArray[np.uint8],
                    w_pts: npt.NDArray[np.float32], w_desc: npt.NDArray[np.uint8]) -> int:
    """Inliers of a RANSAC similarity transform (rotation, uniform scale, translation — the
    transforms of crop, pad, resize and rotation; mirroring is handled by matching the
    mirrored query) between ratio-test ORB matches; only distinct registered keypoints count.
    Four degrees of freedom instead of a homography's eight make chance alignments of
    unrelated pictures far rarer."""
    if q_desc.shape[0] < 4 or w_desc.shape[0] < 4:
        return 0
    matcher = cv2.BFMatcher(cv2.NORM_HAMMING)
    pairs = matcher.knnMatch(q_desc, w_desc, k=2)
    good = [p[0] for p in pairs if len(p) == 2 and p[0].distance < matching.ORB_RATIO * p[1].distance]
    if len(good) < matching.ORB_MIN_INLIERS:
        return 0
    src = np.asarray([q_pts[m.queryIdx] for m in good], dtype=np.float32).reshape(-1, 1, 2)
    dst = np.asarray([w_pts[m.trainIdx] for m in good], dtype=np.float32).reshape(-1, 1, 2)
    model, mask = cv2.estimateAffinePartial2D(src, dst, method=cv2.RANSAC, ransacReprojThreshold=5.0,
                                              maxIters=2000, confidence=0.995)
    if model is None or mask is None:
        return 0
    scale = float(np.hypot(model[0, 0], model[1, 0]))
    if not 0.1 < scale < 10.0:
        return 0
    inl = mask.reshape(-1).astype(bool)
    train = {good[i].trainIdx for i in np.flatnonzero(inl)}
    query = {good[i].queryIdx for i in np.flatnonzero(inl)}
    return min(len(train), len(query))


def log(msg: str) -> None:
    print(f"[bench] {msg}", file=sys.stderr, flush=True)


def install(packages: tuple[str, ...]) -> None:
    missing = [p for p in packages if subprocess.run(["dpkg-query", "-W", "-f=${Status}", p],
                                                     capture_output=True, text=True, check=False
                                                     ).stdout.find("install ok installed") < 0]
    if not missing:
        return
    log(f"apt-get install {' '.join(missing)}")
    sudo = [] if os.geteuid() == 0 else ["sudo"]
    subprocess.run([*sudo, "apt-get", "update", "-qq"], check=True)
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    subprocess.run([*sudo, "apt-get", "install", "-y", "-qq", "--no-install-recommends", *missing],
                   check=True, env=env)


def _ms(fn: Callable[[], Any], cpu: list[float] | None = None) -> tuple[Any, float]:
    """``fn()`` and its wall-clock milliseconds; its CPU milliseconds (this process, all
    threads) are appended to ``cpu``: on a shared machine under load the wall clock measures
    the neighbours too, the CPU time only this work."""
    c = time.process_time()
    t = time.perf_counter()
    out = fn()
    wall = (time.perf_counter() - t) * 1000
    if cpu is not None:
        cpu.append((time.process_time() - c) * 1000)
    return out, wall


# -- images ---------------------------------------------------------------------------------------

WALLPAPER_DIR = Path("/usr/share/backgrounds")
WALLPAPER_ELSEWHERE = ("gnome", "sway")
WESNOTH_IMAGES = Path("/usr/share/games/wesnoth/1.16/data/core/images")
NEAR_DUPLICATE_BITS = 32  # pictures this close (DCT, best dihedral variant) count as one picture
# Derived works among the material: recoloured or edited versions of one painting, or pictures
# sharing a drawn element (the MATE logo, the white mage's staff). Found by the all-pairs audit
# below (every picture against every other, DCT and ORB without candidate pruning) and checked
# by eye: they do share content, so a match between them is a true partial copy. Each group
# stays on one side of the registered/negative split. The audit's one linked pair that shares
# nothing (wall-Gulp / portrait-bat-red, 10 ORB inliers) is a real chance alignment: it set
# ORB_MIN_INLIERS to 11.
DERIVED_GROUPS = (
    ("wall-GreenTraditional", "wall-MATE-Stripes-Dark", "wall-MATE-Stripes-Light"),
    ("wall-Ubuntu-Mate-Cold-no-logo", "wall-Ubuntu-Mate-Warm-no-logo", "wall-Ubuntu-Mate-Dark-no-logo"),
    ("portrait-grand-knight", "portrait-grand-knight-2"), ("portrait-mage-white", "portrait-mage-white+female"),
    ("portrait-bat", "portrait-zombie-bat"), ("portrait-gryphon", "portrait-gryphon-rider"),
    ("portrait-scorpion", "portrait-scorpion-elder", "portrait-scuttler"),
    ("portrait-naga-mace_warrior1", "portrait-naga-mace_warrior2", "portrait-naga-mace_warrior3"),
    ("portrait-ruler", "portrait-ruler-2"), ("portrait-fire_ant", "portrait-giant_ant"),
    ("portrait-big-icemonax", "portrait-small-icemonax"), ("portrait-woodland_boar", "portrait-zombie-boar"),
    ("portrait-zombie-horse", "portrait-zombie-rider"),
)


def split_groups(names: list[str]) -> list[bool]:
    """Registered (True) or negative for each name: every other unit, where a unit is a
    picture or a whole ``DERIVED_GROUPS`` group (placed where its first member comes)."""
    group_of = {n: g for g in DERIVED_GROUPS for n in g}
    unit_side: dict[object, bool] = {}
    out = []
    for n in names:
        key: object = group_of.get(n, n)
        if key not in unit_side:
            unit_side[key] = len(unit_side) % 2 == 0
        out.append(unit_side[key])
    return out


def _opencv_photos() -> list[tuple[str, np.ndarray]]:
    out: list[tuple[str, np.ndarray]] = []
    seen: set[str] = set()
    if not OPENCV_DATA.is_dir():
        return out
    for p in sorted(OPENCV_DATA.iterdir()):
        if p.suffix.lower() not in (".jpg", ".png"):
            continue
        key = re.sub(r"(\d+|L|R|GT|A|B|N|p|-white|_modified|_original|_in_scene|_cls)$", "", p.stem)
        key = {"right": "left", "ela": "ela", "pic": "pic"}.get(key, key)
        if key in seen:
            continue
        img = cv2.imread(str(p), cv2.IMREAD_COLOR)
        if img is None or min(img.shape[:2]) < 120 or img.std() < 20:
            continue
        seen.add(key)
        out.append((f"cv-{p.stem}", np.asarray(img, dtype=np.uint8)))
    return out


def _flatten(img: np.ndarray, grey: int = 96) -> np.ndarray:
    """RGBA → BGR over a uniform background (how a portrait is shown in a dialog)."""
    if img.ndim == 3 and img.shape[2] == 4:
        a = img[..., 3:4].astype(np.float32) / 255.0
        img = (img[..., :3] * a + grey * (1 - a)).astype(np.uint8)
    elif img.ndim == 2:
        img = cv2.cvtColor(img, cv2.COLOR_GRAY2BGR)
    return np.ascontiguousarray(img, dtype=np.uint8)


def _files_photos(paths: list[Path], prefix: str) -> list[tuple[str, np.ndarray]]:
    out: list[tuple[str, np.ndarray]] = []
    seen: set[str] = set()
    for p in paths:
        # Elephants_3840x2160.jpg is Elephants.jpg again, landscape-bridge_sun is landscape-bridge;
        # other near-duplicates are caught by their DCT codes in image_material
        key = re.sub(r"(_\d+x\d+|_nohumans|_sun)$", "", p.stem).lower()
        if key in seen:
            continue
        img = cv2.imread(str(p), cv2.IMREAD_UNCHANGED)
        if img is None or min(img.shape[:2]) < 120:
            continue
        if img.dtype != np.uint8:
            img = (img / 257).astype(np.uint8)
        seen.add(key)
        s = 640 / max(img.shape[:2])
        img = _flatten(img)
        img8 = img.astype(np.uint8)
        out.append((f"{prefix}-{p.stem}", (M.resize(img8, s) if s < 1 else img8).astype(np.uint8)))
    return out


def image_material(scale: str = "full") -> tuple[list[tuple[str, str, np.ndarray]], list[str]]:
    """(source, name, picture) for every picture of: scikit-image's bundled photos, opencv-doc's
    example photos (one per near-duplicate group), the desktop wallpapers of ukui-wallpapers,
    mate-backgrounds and lomiri-wallpapers, and Wesnoth's story paintings and character
    portraits (flattened on grey); long side at most 640. Pictures within
    ``NEAR_DUPLICATE_BITS`` of an earlier one are the same picture and left out (their names
    are returned). ``small`` scale takes every third portrait."""
    from fingerprint.image import global_codes, hamming, to_gray

    groups: list[tuple[str, list[tuple[str, np.ndarray]]]] = [
        ("skimage", list(M.photos())), ("opencv-doc", _opencv_photos())]
    if WALLPAPER_DIR.is_dir():
        # only the three packages' wallpapers: gnome-backgrounds and sway-backgrounds install
        # beside them, and are the art benchmark's held-out part (bench/fingerprint/art.py)
        walls = sorted(p for p in WALLPAPER_DIR.rglob("*") if p.suffix.lower() in (".jpg", ".png")
                       and p.relative_to(WALLPAPER_DIR).parts[0] not in WALLPAPER_ELSEWHERE)
        groups.append(("wallpapers", _files_photos(walls, "wall")))
    if WESNOTH_IMAGES.is_dir():
        story = sorted((WESNOTH_IMAGES / "story").glob("*.jpg"))
        groups.append(("wesnoth-story", _files_photos(story, "story")))
        portraits = sorted(p for p in (WESNOTH_IMAGES / "portraits").rglob("*.png")
                           if "transparent" not in p.parts)
        if scale != "full":
            portraits = portraits[::3]
        groups.append(("wesnoth-portraits", _files_photos(portraits, "portrait")))
    out: list[tuple[str, str, np.ndarray]] = []
    kept: list[tuple[bytes, ...]] = []
    dups: list[str] = []
    for source, items in groups:
        for name, a in items:
            s = 640 / max(a.shape[:2])
            a = np.asarray(M.resize(a, s) if s < 1 else a, dtype=np.uint8)
            codes = global_codes(to_gray(a))
            if any(min(hamming(codes[0], c) for c in k) <= NEAR_DUPLICATE_BITS for k in kept):
                dups.append(name)
                continue
            kept.append(codes)
            out.append((source, name, a))
    return out, dups


def bench_images(root: Path, scale: str) -> dict[str, Any]:
    from fingerprint.errors import LowInformation

    pics, dups = image_material(scale)
    idx = open_index(root / "img")
    fp_ms: list[float] = []
    fp_cpu: list[float] = []
    q_cpu: list[float] = []
    reg: list[tuple[str, np.ndarray]] = []
    neg: list[tuple[str, np.ndarray]] = []
    refused: list[dict[str, Any]] = []
    sides = split_groups([name for _, name, _ in pics])
    for (source, name, a), registered in zip(pics, sides, strict=True):
        if not registered:
            neg.append((name, a))
            continue
        data = M.encode(a, ".jpg", 95)
        fp, ms = _ms(partial(fingerprint_bytes, data, name), fp_cpu)
        fp_ms.append(ms)
        try:
            idx.add(name, fp)
        except LowInformation as exc:
            # refused at registration: counted, reported, and queried as a negative below
            refused.append({"name": name, "source": source, "quality": round(exc.quality, 2)})
            neg.append((name, a))
            continue
        reg.append((name, a))
    sources: dict[str, int] = {}
    for source, _, _ in pics:
        sources[source] = sources.get(source, 0) + 1
    log(f"images: {len(pics)} pictures {sources}, {len(reg)} registered, {len(refused)} refused, "
        f"{len(neg)} negatives, {len(dups)} near-duplicates left out")
    rng = np.random.default_rng(1)
    transforms = M.image_transforms(rng)
    recall: dict[str, float] = {}
    misses: dict[str, list[str]] = {}
    q_ms: list[float] = []
    for tname, fn in transforms.items():
        hits = 0
        for name, a in reg:
            # JPEG transforms are stored losslessly; every other copy as a JPEG of quality 95
            data = M.encode(fn(a), ".png") if tname.startswith("jpeg") else M.encode(fn(a), ".jpg", 95)
            fp = fingerprint_bytes(data, query=True)
            res, ms = _ms(partial(matching.match, idx, fp), q_cpu)
            q_ms.append(ms)
            ok = bool(res.matches) and res.matches[0].work_id == name
            hits += ok
            if not ok:
                misses.setdefault(tname, []).append(name)
        recall[tname] = round(hits / len(reg), 4)
        log(f"  image {tname}: {recall[tname]:.4f} {misses.get(tname, '')}")
    # negatives: every never-registered picture (and every refused one), as is and under three
    # transforms
    fp_count, neg_queries = 0, 0
    min_dist, max_inl = 256, 0
    fp_names: list[str] = []
    for name, a in neg:
        for fn in (transforms["identity"], transforms["jpeg_q50"], transforms["flip"], transforms["crop_10"]):
            fp = fingerprint_bytes(M.encode(fn(a), ".jpg", 90), query=True)
            assert fp.image is not None
            neg_queries += 1
            found = matching.match(idx, fp).matches
            if found:
                fp_count += 1
                fp_names.append(f"{name}->{found[0].work_id}")
            d, inl = image_margins(idx, fp.image)
            min_dist, max_inl = min(min_dist, d), max(max_inl, inl)
    size = sum(p.stat().st_size for p in (root / "img").iterdir())
    audit = None
    if scale == "full":
        log("images: all-pairs audit")
        audit = image_audit(pics)
    return {
        "all_pairs_audit": audit,
        "pictures": len(pics), "sources": sources, "near_duplicates_left_out": dups,
        "derived_groups_kept_on_one_side": [list(g) for g in DERIVED_GROUPS],
        "registered": len(reg), "refused_at_registration": refused,
        "threshold_min_quality": MIN_IMAGE_QUALITY,
        "negative_images": len(neg), "negative_queries": neg_queries,
        "false_positives": fp_count, "false_positive_rate": round(fp_count / max(neg_queries, 1), 5),
        "false_positive_pairs": fp_names,
        "recall": recall, "misses": misses,
        "threshold_dct_max_distance": matching.IMAGE_MAX_DISTANCE,
        "negatives_min_dct_distance": min_dist,
        "threshold_orb_min_inliers": matching.ORB_MIN_INLIERS,
        "negatives_max_orb_inliers": max_inl,
        "fingerprint_ms_mean": round(float(np.mean(fp_ms)), 2),
        "fingerprint_ms_p95": round(float(np.percentile(fp_ms, 95)), 2),
        "fingerprint_cpu_ms_mean": round(float(np.mean(fp_cpu)), 2),
        "fingerprint_cpu_ms_p95": round(float(np.percentile(fp_cpu, 95)), 2),
        "query_ms_mean": round(float(np.mean(q_ms)), 2),
        "query_cpu_ms_mean": round(float(np.mean(q_cpu)), 2),
        "index_bytes": size, "index_bytes_per_image": size // max(len(reg), 1),
    }


def image_audit(pics: list[tuple[str, str, np.ndarray]]) -> dict[str, Any]:
    """Every picture against every other (as a JPEG q95 copy, query side against registered
    side): DCT distance over the dihedral variants and ORB similarity inliers, with no
    candidate pruning. Linked pairs inside a ``DERIVED_GROUPS`` group share content; any other
    linked pair is a false positive the thresholds let through. Reports the closest unrelated
    pairs whatever the thresholds."""
    from fingerprint.image import fingerprint_image_array

    names = [n for _, n, _ in pics]
    fps = [fingerprint_image_array(M.jpeg(a, 95), query=True) for _, _, a in pics]
    group_of = {n: g for g in DERIVED_GROUPS for n in g}
    bits = np.unpackbits(np.array([[np.frombuffer(v, np.uint8) for v in f.variants] for f in fps]),
                         axis=2).astype(bool)
    base = bits[:, 0, :]
    saved = matching.ORB_MIN_INLIERS
    matching.ORB_MIN_INLIERS = 4
    linked: list[dict[str, Any]] = []
    worst_inl: list[tuple[int, str, str]] = []
    worst_dct: list[tuple[int, str, str]] = []
    try:
        for i, fi in enumerate(fps):
            d = (bits[i][None, :, :] != base[:, None, :]).sum(axis=2).min(axis=1)
            for j, fj in enumerate(fps):
                if i == j:
                    continue
                inl = 0
                for pts, desc in ((fi.points, fi.descriptors), (fi.mirror_points, fi.mirror_descriptors)):
                    if desc is not None and pts is not None:
                        inl = max(inl, verify_geometry(pts, desc, fj.points, fj.descriptors))
                related = group_of.get(names[i], names[i]) == group_of.get(names[j], names[j])
                if int(d[j]) <= matching.IMAGE_MAX_DISTANCE or inl >= saved:
                    linked.append({"query": names[i], "work": names[j], "dct": int(d[j]), "inliers": inl,
                                   "derived_group": related})
                if not related:
                    worst_inl.append((inl, names[i], names[j]))
                    worst_dct.append((int(d[j]), names[i], names[j]))
    finally:
        matching.ORB_MIN_INLIERS = saved
    worst_inl.sort(reverse=True)
    worst_dct.sort()
    unrelated = [p for p in linked if not p["derived_group"]]
    return {"pictures": len(pics), "ordered_pairs": len(pics) * (len(pics) - 1),
            "linked_pairs": len(linked), "linked_in_derived_groups": len(linked) - len(unrelated),
            "linked_unrelated": unrelated,
            "unrelated_most_inliers": [list(x) for x in worst_inl[:5]],
            "unrelated_closest_dct": [list(x) for x in worst_dct[:5]]}


def image_margins(idx: LocalIndex, q: Any) -> tuple[int, int]:
    """Closest DCT distance and most ORB inliers of a query against any registered image,
    whatever the thresholds: how far the negatives stay from the decision boundary."""
    variants = np.frombuffer(b"".join(q.variants), np.uint8).reshape(-1, 32)
    hits = idx.nearest_codes("image", variants, 1)
    d = int(hits.distances.min()) if hits.distances.size else 256
    best = 0
    for pts, desc in ((q.points, q.descriptors), (q.mirror_points, q.mirror_descriptors)):
        votes = idx.search_descriptors(desc, matching.ORB_VOTE_RADIUS)
        for w, _ in sorted(votes.items(), key=lambda kv: -kv[1])[:3]:
            wp, wd = idx.local_features(w)
            saved = matching.ORB_MIN_INLIERS
            matching.ORB_MIN_INLIERS = 4
            try:
                best = max(best, verify_geometry(pts, desc, wp, wd))
            finally:
                matching.ORB_MIN_INLIERS = saved
    return d, best


def bench_image_scaling(scale: str) -> dict[str, Any]:
    """Query latency of the 8 dihedral codes (k = 8) against N random 256-bit codes, and of a
    screenshot's ~136 codes (its rectangles' too), through the index's own code search
    (``fingerprint.arrays._BinaryIndex``: the compiled scan, on two threads when large)."""
    from fingerprint.arrays import _BinaryIndex

    sizes = [10_000, 100_000, 1_000_000]
    rng = np.random.default_rng(0)
    out = {}
    for n in sizes:
        codes = rng.integers(0, 256, (n, 32), dtype=np.uint8)
        index = _BinaryIndex(codes, np.arange(n, dtype=np.int64), np.zeros(n), 256)
        row: dict[str, Any] = {"codes_bytes": n * 32}
        for name, nq in (("query_ms_median", 8), ("screenshot_136_codes_ms_median", 136)):
            q = codes[rng.integers(0, n, nq)].copy()
            index.knn(q, 8)  # compiled (or loaded) before timing
            times = []
            for _ in range(20):
                _, ms = _ms(partial(index.knn, q, 8))
                times.append(ms)
            row[name] = round(float(np.median(times)), 3)
        out[str(n)] = row
        log(f"  image index {n}: {row['query_ms_median']} ms (8 codes), {row['screenshot_136_codes_ms_median']} ms (136)")
    return out


# -- audio ----------------------------------------------------------------------------------------

def ffmpeg(data: bytes, args: list[str], fmt: str) -> bytes:
    proc = subprocess.run(["ffmpeg", "-v", "error", "-i", "pipe:0", *args, "-f", fmt, "pipe:1"],
                          input=data, capture_output=True, check=True)
    return proc.stdout


def load_music(paths: list[Path]) -> list[tuple[str, np.ndarray, int]]:
    import soundfile as sf

    out = []
    for p in paths:
        x, sr = sf.read(str(p), dtype="float32", always_2d=True)
        out.append((p.name, x.mean(axis=1), int(sr)))
    return out


def audio_transforms(rng: np.random.Generator) -> dict[str, tuple[float, Callable[[np.ndarray, int], bytes], float]]:
    """name → (excerpt seconds, transform to file bytes, time scale of the copy)."""
    def wav(x: np.ndarray, sr: int) -> bytes:
        return M.wav_bytes(x.astype(np.float32), sr)

    def mp3(x: np.ndarray, sr: int) -> bytes:
        return ffmpeg(wav(x, sr), ["-codec:a", "libmp3lame", "-b:a", "64k"], "mp3")

    def af(flt: str) -> Callable[[np.ndarray, int], bytes]:
        return lambda x, sr: ffmpeg(wav(x, sr), ["-af", flt], "wav")

    def chain(x: np.ndarray, sr: int) -> bytes:
        y = M.reverb((M.telephone(x, sr) * 0.5 + x * 0.5).astype(np.float32), sr, 0.4, rng)
        return mp3(M.add_noise(y, 15, rng), sr)

    return {
        "excerpt_5s": (5, wav, 1.0), "excerpt_10s": (10, wav, 1.0), "excerpt_20s": (20, wav, 1.0),
        "noise_20db": (10, lambda x, sr: wav(M.add_noise(x, 20, rng), sr), 1.0),
        "noise_10db": (10, lambda x, sr: wav(M.add_noise(x, 10, rng), sr), 1.0),
        "noise_5db": (10, lambda x, sr: wav(M.add_noise(x, 5, rng), sr), 1.0),
        "mp3_64k": (10, mp3, 1.0),
        "telephone": (10, lambda x, sr: wav(M.telephone(x, sr), sr), 1.0),
        "reverb": (10, lambda x, sr: wav(M.reverb(x, sr, 0.5, rng), sr), 1.0),
        "tempo_+5%": (10, af("atempo=1.05"), 1.05), "tempo_-5%": (10, af("atempo=0.95"), 0.95),
        "pitch_+3%": (10, af(f"asetrate={SR}*1.03,aresample={SR},atempo=1/1.03"), 1.0),
        "pitch_-3%": (10, af(f"asetrate={SR}*0.97,aresample={SR},atempo=1/0.97"), 1.0),
        "speed_+5%": (10, lambda x, sr: wav(M.speed(x, 1.05), sr), 1.05),
        "speed_-5%": (10, lambda x, sr: wav(M.speed(x, 0.95), sr), 0.95),
        "rerecord_chain": (10, chain, 1.0),
    }


def bench_audio(root: Path, scale: str) -> dict[str, Any]:
    from scipy.signal import resample_poly

    paths = sorted(MUSIC_DIR.glob("*.ogg"))
    if not paths:
        return {"skipped": f"no music in {MUSIC_DIR}"}
    tracks = load_music(paths)
    # silence.ogg (10 s of digital near-silence, RMS 3e-5) is not content: leave it out
    tracks = [t for t in tracks if float(np.sqrt(np.mean(t[1] ** 2))) > 1e-3]
    tracks = [(n, np.asarray(resample_poly(x, SR, sr), np.float32) if sr != SR else x, SR) for n, x, sr in tracks]
    reg = [t for i, t in enumerate(tracks) if i % 4 != 3]
    neg = [t for i, t in enumerate(tracks) if i % 4 == 3]
    log(f"audio: {len(reg)} registered tracks, {len(neg)} negative tracks")
    idx = open_index(root / "aud")
    ingest_s, audio_s = 0.0, 0.0
    ingest_cpu: list[float] = []
    for name, x, sr in reg:
        data = M.wav_bytes(x, sr)
        fp, ms = _ms(partial(fingerprint_bytes, data), ingest_cpu)
        ingest_s += ms / 1000
        audio_s += x.size / sr
        idx.add(name, fp)
    rng = np.random.default_rng(2)
    n_q = 120 if scale == "full" else 30
    recall: dict[str, float] = {}
    offset_err: dict[str, float] = {}
    offset_max: dict[str, float] = {}
    offset_ok: dict[str, float] = {}
    off_on_repeat: dict[str, int] = {}
    on_a_segment: dict[str, float] = {}  # the true offset among the match's segments (every occurrence)
    far: dict[str, list[dict[str, Any]]] = {}
    misses: dict[str, list[str]] = {}
    q_ms: list[float] = []
    q_cpu: list[float] = []
    for tname, (secs, fn, tscale) in audio_transforms(rng).items():
        hits, errs, seg_ok = 0, [], []
        for k in range(n_q):
            name, x, sr = reg[(k * 7) % len(reg)]
            dur = x.size / sr
            start = float(rng.uniform(0, max(0.1, dur - secs * 1.1 - 1)))
            seg = x[int(start * sr):int((start + secs * tscale) * sr)]
            data = fn(seg, sr)
            fp = fingerprint_bytes(data, query=True)
            res, ms = _ms(partial(matching.match, idx, fp), q_cpu)
            q_ms.append(ms)
            if res.matches and res.matches[0].work_id == name:
                hits += 1
                m = res.matches[0]
                if m.work_start_s is not None and m.query_start_s is not None:
                    truth = start + m.query_start_s * tscale
                    errs.append(abs(m.work_start_s - truth))
                    seg_ok.append(any(abs(g.work_start_s - (start + g.query_start_s * tscale)) <= 0.1
                                      for g in m.segments) or errs[-1] <= 0.1)
                    if errs[-1] > 0.1:
                        far.setdefault(tname, []).append(
                            {"track": name, "true_s": round(truth, 2), "found_s": round(m.work_start_s, 2),
                             "same_audio_corr": repeat_corr(x, sr, truth, m.work_start_s)})
            else:
                misses.setdefault(tname, []).append(f"{name}@{start:.1f}s")
        recall[tname] = round(hits / n_q, 4)
        offset_err[tname] = round(float(np.median(errs)), 3) if errs else float("nan")
        offset_max[tname] = round(float(np.max(errs)), 3) if errs else float("nan")
        # errors of seconds or more are matches on another repeat of the passage in a looping
        # track: the work is right, the offset ambiguous
        offset_ok[tname] = round(float(np.mean(np.asarray(errs) <= 0.1)), 4) if errs else float("nan")
        # not part of the strict figure above: of the found ones more than 0.1 s off, those
        # whose reported passage correlates >= 0.95 with the true one (a verbatim repeat)
        on_a_segment[tname] = round(float(np.mean(seg_ok)), 4) if seg_ok else float("nan")
        off_on_repeat[tname] = sum(1 for f in far.get(tname, []) if f["same_audio_corr"] >= REPEAT_CORR)
        log(f"  audio {tname}: {recall[tname]:.3f} (offset error median {offset_err[tname]} s)")
    # negatives: excerpts of never-registered tracks and of speech
    fp_count, neg_q = 0, 0
    negs: list[np.ndarray] = []
    hop = 10.0 if scale == "full" else 30.0
    for _, x, sr in neg:
        for s in np.arange(5, x.size / sr - 12, hop):
            negs.append(x[int(s * sr):int((s + 10) * sr)])
    speech = sorted(SPEECH_DIR.rglob("*.wav")) if SPEECH_DIR.is_dir() else []
    n_music_negs = len(negs)
    if speech:
        import soundfile as sf

        buf: list[np.ndarray] = []
        for p in speech[: None if scale == "full" else 150]:
            y, sr = sf.read(str(p), dtype="float32", always_2d=True)
            buf.append(np.asarray(resample_poly(y.mean(axis=1), SR, sr), np.float32))
        stream = np.concatenate(buf)
        for s in range(0, stream.size - 10 * SR, 10 * SR):
            negs.append(stream[s:s + 10 * SR])
    best_pairs, best_tri, best_scaled = 0.0, 0.0, 0.0
    for y in negs:
        fp = fingerprint_bytes(M.wav_bytes(y, SR), query=True)
        neg_q += 1
        fp_count += bool(matching.match(idx, fp).matches)
        assert fp.audio is not None
        mp, mt, ms_ = audio_margins(idx, fp.audio)
        best_pairs, best_tri, best_scaled = max(best_pairs, mp), max(best_tri, mt), max(best_scaled, ms_)
    size = sum(p.stat().st_size for p in (root / "aud").iterdir())
    return {
        "registered_tracks": len(reg), "registered_hours": round(audio_s / 3600, 3),
        "queries_per_transform": n_q, "recall": recall, "offset_error_median_s": offset_err,
        "offset_error_max_s": offset_max, "found_with_offset_within_0.1s": offset_ok,
        "offset_errors_over_0.1s": far,
        "found_over_0.1s_off_on_a_verbatim_repeat_corr_ge_0.95": off_on_repeat,
        "found_with_a_segment_within_0.1s": on_a_segment,
        "misses": misses,
        "negative_queries": neg_q, "negative_music_excerpts": n_music_negs,
        "negative_speech_excerpts": neg_q - n_music_negs, "negative_tracks": len(neg),
        "false_positives": fp_count,
        "threshold_pair_votes": matching.PAIR_MIN_VOTES, "negatives_max_pair_votes": best_pairs,
        "threshold_triplet_votes": matching.TRIPLET_MIN_VOTES, "negatives_max_triplet_votes": best_tri,
        "threshold_scaled_pair_votes": matching.SCALED_MIN_VOTES, "negatives_max_scaled_pair_votes": best_scaled,
        "ingest_x_realtime_one_core": round(audio_s / ingest_s, 1),
        "ingest_x_realtime_cpu": round(audio_s / (sum(ingest_cpu) / 1000), 1),
        "query_ms_mean": round(float(np.mean(q_ms)), 2),
        "query_cpu_ms_mean": round(float(np.mean(q_cpu)), 2),
        "index_bytes": size, "index_bytes_per_hour": int(size / max(audio_s / 3600, 1e-9)),
    }


# a reported passage whose audio correlates at least this much with the true passage is a
# verbatim repeat of it (looping game music): reported beside, never inside, the strict figure
REPEAT_CORR = 0.95


def repeat_corr(x: np.ndarray, sr: int, a: float, b: float, secs: float = 5.0) -> float:
    """Correlation of the track's own audio at ``a`` and at ``b`` seconds (5 s, best lag within
    ±50 ms): near 1 when ``b`` is another repeat of the passage at ``a`` in a looping track."""
    i, j, n, lag = int(a * sr), int(b * sr), int(secs * sr), int(0.05 * sr)
    u = x[i:i + n].astype(np.float64)
    if u.size < n or j - lag < 0 or j + n + lag > x.size:
        return float("nan")
    best = 0.0
    for k in range(-lag, lag + 1, max(1, sr // 2000)):
        v = x[j + k:j + k + n].astype(np.float64)
        c = float(np.dot(u, v) / max(np.linalg.norm(u) * np.linalg.norm(v), 1e-12))
        best = max(best, c)
    return round(best, 3)


def audio_margins(idx: LocalIndex, q: Any) -> tuple[float, float, float]:
    """The most votes any registered work gets from a negative query, per method, whatever
    the thresholds."""
    saved = matching.PAIR_MIN_VOTES, matching.TRIPLET_MIN_VOTES, matching.SCALED_MIN_VOTES
    matching.PAIR_MIN_VOTES, matching.TRIPLET_MIN_VOTES, matching.SCALED_MIN_VOTES = 1, 1, 1
    try:
        p = max((m.score for m in matching._pair_matches(idx, q).values()), default=0.0)
        t = max((m.score for m in matching._triplet_matches(idx, q).values()), default=0.0)
        s = max((m.score for m in matching._scaled_pair_matches(idx, q).values()), default=0.0)
    finally:
        matching.PAIR_MIN_VOTES, matching.TRIPLET_MIN_VOTES, matching.SCALED_MIN_VOTES = saved
    return p, t, s


def bench_audio_scaling(root: Path, scale: str) -> dict[str, Any]:
    """10 s query latency against many hours: the registered tracks' real landmark rows are
    copied under new work ids (so the hash distribution is that of real music)."""
    src = open_index(root / "aud", create=False)
    pairs = np.array(src.db.execute("SELECT hash, t FROM pairs").fetchall(), dtype=np.int64)
    tris = np.array(src.db.execute("SELECT hash, t, span FROM triplets").fetchall(), dtype=np.int64)
    hours_src = float(src.db.execute("SELECT SUM(duration_s) FROM works").fetchone()[0]) / 3600
    target_hours = 100.0 if scale == "full" else 10.0
    copies = max(1, round(target_hours / hours_src))
    idx = open_index(root / "aud_big")
    db = idx.db
    db.execute("BEGIN")
    for c in range(copies):
        cur = db.execute("INSERT INTO works (work_id, modality, sm3, version, duration_s, size, added_at) "
                         "VALUES (?, 'audio', '', 1, ?, 0, 0)", (f"copy{c}", hours_src * 3600))
        wid = cur.lastrowid
        db.executemany("INSERT OR IGNORE INTO pairs VALUES (?,?,?)",
                       ((int(h), wid, int(t)) for h, t in pairs))
        db.executemany("INSERT OR IGNORE INTO triplets VALUES (?,?,?,?)",
                       ((int(h), wid, int(t), int(s)) for h, t, s in tris))
    db.execute("UPDATE meta SET value = CAST(value AS INTEGER) + 1 WHERE key='generation'")
    db.execute("COMMIT")
    x = M.music(10, 12345)
    fp = fingerprint_bytes(M.wav_bytes(x, SR), query=True)
    times: list[float] = []
    cpu1: list[float] = []
    for _ in range(5):
        _, ms = _ms(lambda: matching.match(idx, fp), cpu1)
        times.append(ms)
    # a real excerpt: many candidate works, the worst case for voting
    name, xr, _ = load_music(sorted(MUSIC_DIR.glob("*.ogg"))[:1])[0]
    fp2 = fingerprint_bytes(M.wav_bytes(xr[: 10 * 44100], 44100), query=True)
    times2: list[float] = []
    cpu2: list[float] = []
    for _ in range(3):
        _, ms = _ms(lambda: matching.match(idx, fp2), cpu2)
        times2.append(ms)
    size = sum(p.stat().st_size for p in (root / "aud_big").iterdir())
    return {"registered_hours": round(copies * hours_src, 1), "pair_rows": int(len(pairs) * copies),
            "query_10s_unrelated_ms": round(float(np.median(times)), 1),
            "query_10s_registered_excerpt_ms": round(float(np.median(times2)), 1),
            "query_10s_unrelated_cpu_ms": round(float(np.median(cpu1)), 1),
            "query_10s_registered_excerpt_cpu_ms": round(float(np.median(cpu2)), 1),
            "index_bytes": size, "note": name and f"{copies} copies of {hours_src:.2f} h of real landmarks"}


# -- video ----------------------------------------------------------------------------------------

def read_frames(path: Path, max_s: float = 60.0) -> tuple[list[np.ndarray], float]:
    cap = cv2.VideoCapture(str(path))
    fps = float(cap.get(cv2.CAP_PROP_FPS)) or 25.0
    frames: list[np.ndarray] = []
    while len(frames) < max_s * fps:
        ok, fr = cap.read()
        if not ok:
            break
        frames.append(fr)
    cap.release()
    return frames, fps


def video_works(scale: str) -> tuple[list[tuple[str, list[np.ndarray], float, np.ndarray | None]], list[np.ndarray]]:
    """The registered videos of ``bench_video`` (name, frames, fps, sound at ``SR`` or None)
    and the photos its host videos are made of."""
    from scipy.signal import resample_poly

    pool = [a for _, a in M.photos()] + [a for _, a in _opencv_photos()]
    own, filler_photos = pool[0::2], pool[1::2]
    tracks = load_music(sorted(MUSIC_DIR.glob("*.ogg"))) if MUSIC_DIR.is_dir() else []
    tracks = [t for t in tracks if t[1].size / t[2] > 45]
    works: list[tuple[str, list[np.ndarray], float, np.ndarray | None]] = []
    for name in ("Megamind.avi", "vtest.avi", "tree.avi"):
        p = OPENCV_DATA / name
        if p.exists():
            frames, fps = read_frames(p)
            works.append((name, frames, fps, None))
    n_scenes = 12 if scale == "full" else 6
    for k in range(n_scenes):
        frames = list(M.scene_frames(own, 40, 10, (320, 240), seed=100 + k))
        if tracks:
            _, x, sr = tracks[k % len(tracks)]
            sound = np.asarray(resample_poly(x[sr * 5:sr * 45], SR, sr), np.float32)
        else:
            sound = M.music(40, 300 + k)
        works.append((f"scene{k}.mp4", frames, 10.0, sound))
    return works, filler_photos


def bench_video(root: Path, scale: str) -> dict[str, Any]:
    """Registered: opencv-doc's three videos (``vtest.avi`` is a static surveillance camera,
    no audio) and slide shows with pans and zooms over half of the photos, with Wesnoth music
    as their sound. Queries: a clip of up to 8 s of a registered video inside a 20–28 s host
    video made of slide shows over the other half of the photos, under each transform; one
    clip per registered video (three at full scale). Negatives: the same hosts without a clip,
    under every transform."""
    works, filler_photos = video_works(scale)
    idx = open_index(root / "vid")
    fp_ms: list[float] = []
    fp_cpu: list[float] = []
    q_cpu: list[float] = []
    dur_total = 0.0
    for name, frames, fps, audio in works:
        data = M.write_video(frames, fps, audio, SR, bitrate=1_500_000)
        fp, ms = _ms(partial(fingerprint_bytes, data), fp_cpu)
        fp_ms.append(ms)
        dur_total += len(frames) / fps
        idx.add(name, fp)
    log(f"video: {len(works)} registered ({dur_total:.0f} s)")
    rng = np.random.default_rng(3)

    def tf_flip(f: np.ndarray) -> np.ndarray:
        return np.ascontiguousarray(f[:, ::-1])

    transforms: dict[str, dict[str, Any]] = {
        "reencode_low": {"bitrate": 150_000}, "scale_0.5": {"scale": 0.5},
        "crop_10": {"crop": 0.10}, "letterbox": {"letterbox": 0.25}, "fps_15": {"fps": 15},
        "flip": {"frame": tf_flip}, "plain": {}, "with_audio": {"audio": True},
    }
    per_work = 3 if scale == "full" else 1
    n_neg = 8 if scale == "full" else 4

    def host_video(clip: list[np.ndarray] | None, clip_audio: np.ndarray | None, opt: dict[str, Any],
                   k: int) -> tuple[bytes, float]:
        out_fps = float(opt.get("fps", 25))
        size = (480, 360)
        filler = list(M.scene_frames(filler_photos, 20, out_fps, size, seed=int(rng.integers(1 << 30))))
        before = float(rng.uniform(3, 12))
        frames = filler
        if clip is not None:
            frames = filler[: int(before * out_fps)] + clip + filler[int(before * out_fps):]
        if "scale" in opt:
            frames = [M.resize(f, opt["scale"]).astype(np.uint8) for f in frames]
        if "crop" in opt:
            frames = [M.crop(f, opt["crop"], np.random.default_rng(k)).astype(np.uint8) for f in frames]
        if "letterbox" in opt:
            frames = [cv2.resize(M.pad(f, opt["letterbox"]), size).astype(np.uint8) for f in frames]
        if "frame" in opt:
            frames = [opt["frame"](f) for f in frames]
        sound = None
        if opt.get("audio"):
            total = len(frames) / out_fps
            sound = M.music(total + 1, int(rng.integers(1 << 30)))[: int(total * SR)]
            if clip_audio is not None:
                i = int(before * SR)
                seg = clip_audio[: max(0, min(clip_audio.size, sound.size - i))]
                sound[i:i + seg.size] = seg
        return M.write_video(frames, out_fps, sound, SR, bitrate=int(opt.get("bitrate", 600_000))), before

    recall, start_err = {}, {}
    misses: dict[str, list[str]] = {}
    q_ms = []
    n_q = len(works) * per_work
    for tname, opt in transforms.items():
        hits, errs = 0, []
        for k in range(n_q):
            name, frames, fps, audio = works[k % len(works)]
            clip_len = min(8.0, len(frames) / fps - 1)
            start = float(rng.uniform(0, len(frames) / fps - clip_len))
            clip = frames[int(start * fps):int((start + clip_len) * fps)]
            out_fps = float(opt.get("fps", 25))
            clip = [cv2.resize(f, (480, 360)) for f in clip]
            clip = [clip[min(len(clip) - 1, int(i * fps / out_fps))] for i in range(int(len(clip) * out_fps / fps))]
            clip_audio = audio[int(start * SR):int((start + clip_len) * SR)] if audio is not None else None
            data, before = host_video(clip, clip_audio, opt, k)
            fp = fingerprint_bytes(data, query=True)
            res, ms = _ms(partial(matching.match, idx, fp), q_cpu)
            q_ms.append(ms)
            m = res.matches[0] if res.matches else None
            ok = False
            if m and m.work_id == name and m.query_start_s is not None and m.work_start_s is not None:
                e = max(abs(m.query_start_s - before), abs(m.work_start_s - start))
                errs.append(e)
                ok = e <= 1.0
            hits += ok
            if not ok:
                got = f"{m.work_id}@{m.work_start_s}/{m.query_start_s}" if m else "nothing"
                misses.setdefault(tname, []).append(f"{name}@{start:.1f}s in host@{before:.1f}s: {got}")
        recall[tname] = round(hits / n_q, 4)
        start_err[tname] = round(float(np.median(errs)), 3) if errs else float("nan")
        log(f"  video {tname}: {recall[tname]:.3f} {misses.get(tname, '')}")
    fpos, nq = 0, 0
    for opt in transforms.values():
        for k in range(n_neg):
            data, _ = host_video(None, None, opt, 1000 + k)
            nq += 1
            fpos += bool(matching.match(idx, fingerprint_bytes(data, query=True)).matches)
    return {"registered_videos": len(works), "registered_seconds": round(dur_total, 1),
            "queries_per_transform": n_q, "recall_start_within_1s": recall,
            "start_error_median_s": start_err, "misses": misses,
            "negative_queries": nq, "false_positives": fpos,
            "fingerprint_ms_per_video_second": round(float(np.sum(fp_ms) / dur_total), 2),
            "fingerprint_cpu_ms_per_video_second": round(float(np.sum(fp_cpu) / dur_total), 2),
            "query_ms_mean": round(float(np.mean(q_ms)), 1),
            "query_cpu_ms_mean": round(float(np.mean(q_cpu)), 1)}


# -- text -----------------------------------------------------------------------------------------

STDLIB_DOCS = ("argparse", "calendar", "configparser", "csv", "decimal", "difflib", "doctest",
               "ftplib", "getopt", "gettext", "heapq", "imaplib", "inspect", "mailbox", "netrc",
               "optparse", "pickle", "pickletools", "pydoc", "re", "shlex", "smtplib", "socketserver",
               "subprocess", "tarfile", "textwrap", "timeit", "typing", "uuid", "zipfile", "sched",
               "shelve", "bisect", "cmd", "codecs", "collections", "copy", "dataclasses", "json",
               "queue", "random", "socket", "statistics", "struct", "tempfile", "trace", "warnings",
               "http.cookies", "http.server", "xml.dom.minidom", "logging", "email", "asyncio",
               "unittest", "sqlite3", "ssl", "threading", "urllib.parse", "zlib", "hashlib")
ZH_FORTUNES = ("tang300.u8", "song100.u8", "chinese.u8")


def text_material() -> list[tuple[str, str]]:
    """English prose: the long docstrings of Python standard-library modules; Chinese: Tang
    and Song poems and sayings from fortunes-zh, grouped into documents of about 600
    characters."""
    import importlib

    out: list[tuple[str, str]] = []
    for mod in STDLIB_DOCS:
        try:
            doc = importlib.import_module(mod).__doc__ or ""
        except ImportError:
            continue
        if len(doc) > 1200:
            out.append((f"en-{mod}", doc))
    zh: list[tuple[str, str]] = []
    for fname in ZH_FORTUNES:
        p = Path("/usr/share/games/fortunes") / fname
        if not p.is_file():
            continue
        entries = p.read_text("utf-8", errors="replace").split("\n%\n")
        buf: list[str] = []
        for e in entries:
            buf.append(e)
            if sum(map(len, buf)) >= 600:
                zh.append((f"zh-{p.stem}-{len(zh)}", "\n".join(buf)))
                buf = []
    out.extend(zh[:80])
    return out


def bench_text(root: Path, scale: str) -> dict[str, Any]:
    docs = text_material()
    reg, neg = docs[0::2], docs[1::2]
    idx = open_index(root / "txt")
    for name, body in reg:
        idx.add(name, fingerprint_bytes(body.encode()))
    rng = np.random.default_rng(4)

    def excerpt(s: str) -> str:
        n = max(120, len(s) // 3)
        i = int(rng.integers(0, max(1, len(s) - n)))
        return s[i:i + n]

    def edit(s: str) -> str:
        words = re.findall(r"\w+|\W+", s)
        for _ in range(max(1, len(words) // 20)):
            words[int(rng.integers(0, len(words)))] = "甲" if rng.random() < 0.5 else "zz"
        return "".join(words)

    transforms: dict[str, Callable[[str], str]] = {
        "identity": lambda s: s, "excerpt_third": excerpt, "edited_5pct_tokens": edit,
        "reformatted": lambda s: re.sub(r"\s+", " ", s).upper().replace(",", "，"),
        "embedded_in_other": lambda s: neg[0][1][:800] + excerpt(s) + neg[1][1][:800],
    }
    recall = {}
    for tname, fn in transforms.items():
        hits = 0
        for name, body in reg:
            res = matching.match(idx, fingerprint_bytes(fn(body).encode(), query=True))
            hits += bool(res.matches) and res.matches[0].work_id == name
        recall[tname] = round(hits / len(reg), 4)
    fpos, max_shared = 0, 0
    for _, b in neg:
        fp = fingerprint_bytes(b.encode(), query=True)
        fpos += bool(matching.match(idx, fp).matches)
        assert fp.text is not None
        rh, names, _, _ = idx.lookup("text", np.unique(fp.text.hashes))
        per: dict[str, set[int]] = {}
        for h, w in zip(rh.tolist(), names, strict=True):
            per.setdefault(w, set()).add(h)
        max_shared = max([max_shared, *(len(v) for v in per.values())])
    return {"registered": len(reg), "negatives": len(neg), "recall": recall, "false_positives": fpos,
            "threshold_shared": matching.TEXT_ABS_SHARED, "negatives_max_shared": max_shared,
            "languages": sorted({n.split("-")[0] for n, _ in docs}),
            "threshold_containment": matching.TEXT_MIN_CONTAINMENT}


# -- main -----------------------------------------------------------------------------------------

def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.fingerprint", description=__doc__)
    ap.add_argument("--scale", choices=("small", "full"), default="small")
    ap.add_argument("--no-install", action="store_true")
    ap.add_argument("--json", action="store_true", help="print only the JSON object on stdout")
    ap.add_argument("--only", default="images,image_scaling,audio,audio_scaling,video,text,calib",
                    help="sections; calib runs bench.fingerprint.calib (negatives from Debian packages, "
                    "shared marks, new transforms, the issue-14 targets table)")
    args = ap.parse_args(argv)
    if not args.no_install:
        install((*PACKAGES, "fortunes-zh"))
    if shutil.which("ffmpeg") is None:
        log("ffmpeg missing: MP3/tempo/pitch transforms will fail; install it or drop --no-install")
    only = set(args.only.split(","))
    root = Path(tempfile.mkdtemp(prefix="fpbench-"))
    result: dict[str, Any] = {"scale": args.scale, "cores": os.cpu_count(),
                              "load_average_at_start": [round(x, 2) for x in os.getloadavg()]}
    t0 = time.time()
    try:
        if "images" in only:
            result["images"] = bench_images(root, args.scale)
        if "image_scaling" in only:
            result["image_index_scaling"] = bench_image_scaling(args.scale)
        if "audio" in only:
            result["audio"] = bench_audio(root, args.scale)
            if "audio_scaling" in only:
                result["audio_index_scaling"] = bench_audio_scaling(root, args.scale)
        if "video" in only:
            result["video"] = bench_video(root, args.scale)
        if "text" in only:
            result["text"] = bench_text(root, args.scale)
        if "calib" in only:
            from . import calib

            result["calibration"] = calib.run(root / "calib", args.scale, set(calib.SECTIONS))
            result["targets"] = result["calibration"].pop("targets")
    finally:
        shutil.rmtree(root, ignore_errors=True)
    result["seconds"] = round(time.time() - t0, 1)
    result["load_average_at_end"] = [round(x, 2) for x in os.getloadavg()]
    text = json.dumps(result, ensure_ascii=False, indent=None if args.json else 2)
    print(text)
    return 0
