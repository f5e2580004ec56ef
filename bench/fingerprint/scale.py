"""Part-search retrieval at scale: query latency (wall and CPU, by stage), resident memory and
disk size as the index grows to 10³, 10⁴, 10⁵ and 10⁶ registered pictures.

Distractor works are real pictures' fingerprints: every distractor is a variant of a picture
from a Debian package (the desktop wallpapers of ukui-wallpapers, mate-backgrounds,
lomiri-wallpapers and the Ubuntu backgrounds in /usr/share/backgrounds; Wesnoth's portraits,
story paintings, maps, terrain and help pictures from wesnoth-1.16-data), cut at a random
crop (30–100 % of each side), rotated (a fifth of them, ±10°), mirrored (half), recoloured
(gamma 0.6–1.6, channel gains 0.7–1.3, some with channels swapped or in grey) and resized
(long side 400–900 px), then fingerprinted exactly as registration does
(``fingerprint_image_array``). Variants below the registration quality threshold are dropped,
as registration would refuse them. The planted works that queries look for are the part
benchmark's ``held`` set (scikit-image photos and drawings, none of them a distractor source).

Usage::

    python -m bench.fingerprint.scale make-distractors N [--out DIR]
    python -m bench.fingerprint.scale run [--sizes 1000,10000,...] [--data DIR]
    python -m bench.fingerprint.scale rebuild [--works 10000] [--data DIR] [--limit 20]

Big files go to ``--data`` (default /work/scale-data), never into the repository. A command
that needs the distractors and finds none (a fresh machine) installs their packages and makes
them first (``DISTRACTORS``, ~20 min on two cores), so ``synthetic`` alone rebuilds the 10⁶
measurement from nothing.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import sys
import time
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import numpy.typing as npt

U8 = npt.NDArray[np.uint8]
DATA = Path("/work/scale-data")
PER_WORK = 400
PERTURB = 0.04  # perturbed copies: each descriptor bit flipped with this probability (~10 bits)
SOURCE_DIRS = (Path("/usr/share/backgrounds"), Path("/usr/share/games/wesnoth/1.16/data/core/images"))
# the Debian packages behind SOURCE_DIRS (lomiri-wallpapers brings its older releases' pictures too)
SOURCE_PACKAGES = ("ukui-wallpapers", "mate-backgrounds", "lomiri-wallpapers", "wesnoth-1.16-data")
DISTRACTORS = 10_004  # extracted distractors made when a run finds none (the measured builds' count)


def sources() -> list[Path]:
    """Picture files of the distractor packages (≥ 40 KB, so not icons or sprites)."""
    out: list[Path] = []
    for d in SOURCE_DIRS:
        if d.is_dir():
            out += [p for p in sorted(d.rglob("*")) if p.suffix.lower() in (".jpg", ".jpeg", ".png", ".webp")
                    and p.stat().st_size >= 40_000]
    return out


def variant(R: random.Random, img: U8) -> U8:
    """A crop / rotation / mirror / recolouring / resizing of ``img`` (see the module doc)."""
    h, w = img.shape[:2]
    ch, cw = max(32, int(h * R.uniform(0.3, 1.0))), max(32, int(w * R.uniform(0.3, 1.0)))
    y, x = R.randint(0, h - ch), R.randint(0, w - cw)
    out: Any = img[y:y + ch, x:x + cw]
    if R.random() < 0.2:
        m = cv2.getRotationMatrix2D((cw / 2, ch / 2), R.uniform(-10, 10), 1.0)
        out = cv2.warpAffine(out, m, (cw, ch), borderMode=cv2.BORDER_REFLECT)
    if R.random() < 0.5:
        out = out[:, ::-1]
    side = R.randint(400, 900)
    k = side / max(out.shape[:2])
    out = cv2.resize(np.ascontiguousarray(out), (max(1, round(out.shape[1] * k)), max(1, round(out.shape[0] * k))),
                     interpolation=cv2.INTER_AREA if k < 1 else cv2.INTER_LINEAR)
    lut = np.clip(255.0 * np.power(np.arange(256) / 255.0, R.uniform(0.6, 1.6)), 0, 255)
    chans = [np.clip(lut * R.uniform(0.7, 1.3), 0, 255).astype(np.uint8) for _ in range(3)]
    out = np.dstack([cv2.LUT(out[..., c], chans[c]) for c in range(3)])
    if R.random() < 0.2:
        perm = [0, 1, 2]
        R.shuffle(perm)
        out = out[..., perm]
    if R.random() < 0.1:
        out = cv2.cvtColor(cv2.cvtColor(np.ascontiguousarray(out), cv2.COLOR_BGR2GRAY), cv2.COLOR_GRAY2BGR)
    return np.ascontiguousarray(out)


def make_distractors(n: int, out: Path, seed: int = 1) -> dict[str, Any]:
    """``n`` distractor fingerprints into ``out``: desc (n, 400, 32) u8, pts (n, 400, 2) f32,
    count (n,) i16, size (n, 2) i32, code (n, 32) u8, quality (n,) f32. Resumable: rows
    already written (``count`` > 0 up to the first 0) are kept."""
    from fingerprint.image import MIN_QUALITY, fingerprint_image_array

    from .run import install

    install(SOURCE_PACKAGES)
    out.mkdir(parents=True, exist_ok=True)
    shapes = {"desc": ((n, PER_WORK, 32), np.uint8), "pts": ((n, PER_WORK, 2), np.float32),
              "count": ((n,), np.int16), "size": ((n, 2), np.int32), "code": ((n, 32), np.uint8),
              "quality": ((n,), np.float32)}
    arrs = {}
    for name, (shape, dt) in shapes.items():
        p = out / f"{name}.npy"
        if p.exists() and np.load(p, mmap_mode="r").shape == shape:
            arrs[name] = np.load(p, mmap_mode="r+")
        else:
            arrs[name] = np.lib.format.open_memmap(p, mode="w+", dtype=dt, shape=shape)
    done = int(np.argmin(arrs["count"] > 0)) if (arrs["count"] > 0).any() and not (arrs["count"] > 0).all() else (
        n if (arrs["count"] > 0).all() else 0)
    files = sources()
    R = random.Random(seed * 1_000_003 + done)
    i, dropped, t0 = done, 0, time.time()
    cache: dict[Path, U8] = {}
    while i < n:
        src = files[R.randrange(len(files))]
        img: Any = cache.get(src)
        if img is None:
            img = cv2.imread(str(src), cv2.IMREAD_COLOR)
            if img is None:
                continue
            k = min(1.0, 1600 / max(img.shape[:2]))
            if k < 1:
                img = cv2.resize(img, None, fx=k, fy=k, interpolation=cv2.INTER_AREA)
            if len(cache) > 64:
                cache.pop(next(iter(cache)))
            cache[src] = img
        fp = fingerprint_image_array(variant(R, img))
        if fp.quality < MIN_QUALITY or fp.descriptors.shape[0] < 8:
            dropped += 1
            continue
        m = min(PER_WORK, fp.descriptors.shape[0])
        arrs["desc"][i, :m] = fp.descriptors[:m]
        arrs["pts"][i, :m] = fp.points[:m]
        arrs["size"][i] = (fp.width, fp.height)
        arrs["code"][i] = np.frombuffer(fp.code, np.uint8)
        arrs["quality"][i] = fp.quality
        arrs["count"][i] = m
        i += 1
        if i % 2000 == 0:
            for a in arrs.values():
                a.flush()
            print(f"{i}/{n} distractors, {dropped} dropped, {time.time() - t0:.0f} s", file=sys.stderr, flush=True)
    for a in arrs.values():
        a.flush()
    return {"distractors": n, "sources": len(files), "dropped_low_quality": dropped,
            "seconds": round(time.time() - t0, 1)}


def _fingerprint(store: dict[str, Any], i: int, flip: float, R: np.random.Generator) -> Any:
    """Distractor ``i`` of the store as a registrable fingerprint; ``flip`` > 0 makes a
    perturbed copy (each descriptor and code bit flipped with that probability)."""
    from fingerprint.formats import Fingerprint
    from fingerprint.image import ImageFingerprint
    from fingerprint.media import Modality

    m = int(store["count"][i])
    desc = np.array(store["desc"][i, :m])
    code = np.array(store["code"][i])
    if flip > 0:
        desc ^= np.packbits(R.random((m, 256)) < flip, axis=1)
        code ^= np.packbits(R.random(256) < flip / 4)
    w, h = (int(x) for x in store["size"][i])
    img = ImageFingerprint(code=code.tobytes(), variants=(code.tobytes(),), points=np.array(store["pts"][i, :m]),
                           descriptors=desc, width=w, height=h, quality=float(store["quality"][i]))
    return Fingerprint(Modality.IMAGE, f"{i:064x}", 1, 0, image=img)


def load_store(folder: Path) -> dict[str, Any]:
    """The distractor store in ``folder``; made first (:func:`make_distractors`, ``DISTRACTORS``
    of them, its packages installed) where it is missing or was left unfinished, so that
    every command runs on a fresh machine."""
    count = folder / "count.npy"
    if not count.exists() or not (np.load(count, mmap_mode="r") > 0).all():
        print(json.dumps({"making_distractors": DISTRACTORS, "into": str(folder)}), file=sys.stderr, flush=True)
        make_distractors(DISTRACTORS if not count.exists() else int(np.load(count, mmap_mode="r").shape[0]), folder)
    store = {k: np.load(folder / f"{k}.npy", mmap_mode="r") for k in ("desc", "pts", "count", "size", "code", "quality")}
    real = int((np.asarray(store["count"]) > 0).sum())
    store["real"] = real
    return store


def grow(index: Any, store: dict[str, Any], start: int, stop: int) -> float:
    """Register distractors ``start``..``stop - 1``: the first ``store['real']`` are the
    extracted ones, later ones perturbed copies of them (see ``PERTURB``). Seconds taken."""
    R = np.random.default_rng(start)
    t0 = time.perf_counter()
    real = store["real"]
    for i in range(start, stop):
        fp = _fingerprint(store, i % real, PERTURB if i >= real else 0.0, R)
        index.add(f"distractor-{i:07d}", fp)
    return time.perf_counter() - t0


def _rss() -> tuple[int, int, int, int]:
    """(VmRSS, VmHWM, RssAnon, RssFile) of this process in kB: RssFile counts the pages of
    memory-mapped files the process touched (the page cache's, shared and reclaimable)."""
    out = {}
    with open("/proc/self/status", encoding="ascii") as fh:
        for line in fh:
            if line.startswith(("VmRSS", "VmHWM", "RssAnon", "RssFile")):
                out[line.split(":")[0]] = int(line.split()[1])
    return out.get("VmRSS", 0), out.get("VmHWM", 0), out.get("RssAnon", 0), out.get("RssFile", 0)


class _Timed:
    """Wraps an index: time spent in the vote look-ups and in reading works for verification."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.t = {k: 0.0 for k in ("dct", "votes", "read", "dct_cpu", "votes_cpu", "read_cpu")}

    def __getattr__(self, name: str) -> Any:
        fn = getattr(self.inner, name)
        stage = {"nearest_codes": "dct", "search_descriptors": "votes", "distinct_votes": "votes",
                 "local_features": "read", "image_size": "read"}.get(name)
        if stage is None:
            return fn

        def timed(*a: Any, **k: Any) -> Any:
            t0, c0 = time.perf_counter(), time.process_time()
            try:
                return fn(*a, **k)
            finally:
                self.t[stage] += time.perf_counter() - t0
                self.t[stage + "_cpu"] += time.process_time() - c0
        return timed


def query_worker(index_dir: Path, qdir: Path, truth_file: Path, limit: int) -> dict[str, Any]:
    """Queries in a fresh process: per-stage wall and CPU time, recall, false positives, memory."""
    from fingerprint.formats import fingerprint_file
    from fingerprint.index import open_index
    from fingerprint.matching import match

    truth = json.loads(truth_file.read_text())
    rss0 = _rss()
    index = open_index(index_dir, create=False)
    names = sorted(truth)
    names = names[::max(1, len(names) // limit)][:limit] if limit else names
    rows = []
    for f in names:
        c0, w0 = time.process_time(), time.perf_counter()
        fp = fingerprint_file(qdir / f, query=True)
        c1, w1 = time.process_time(), time.perf_counter()
        timed = _Timed(index)
        res = match(timed, fp)  # type: ignore[arg-type]
        c2, w2 = time.process_time(), time.perf_counter()
        want = truth[f][0]
        top = res.matches[0].work_id if res.matches else None
        rows.append({"file": f, "want": want, "top": top, "features_ms": 1000 * (w1 - w0),
                     "features_cpu_ms": 1000 * (c1 - c0), "match_ms": 1000 * (w2 - w1),
                     "match_cpu_ms": 1000 * (c2 - c1), **{f"{k}_ms": 1000 * v for k, v in timed.t.items()}})
    rss1 = _rss()
    return {"rows": rows, "rss_kb_before_open": rss0[0], "rss_kb": rss1[0], "hwm_kb": rss1[1],
            "rss_anon_kb": rss1[2], "rss_file_kb": rss1[3]}


def _summary(rows: list[dict[str, Any]]) -> dict[str, Any]:
    warm = rows[1:] if len(rows) > 1 else rows
    keys = ["features_ms", "features_cpu_ms", "match_ms", "match_cpu_ms", "dct_ms", "votes_ms", "votes_cpu_ms",
            "read_ms"]
    out: dict[str, Any] = {f"median_{k}": round(float(np.median([r[k] for r in warm])), 1) for k in keys}
    out.update({f"p90_{k}": round(float(np.percentile([r[k] for r in warm], 90)), 1)
                for k in ("match_cpu_ms", "votes_cpu_ms", "features_cpu_ms")})
    # the whole query as a user waits for it: its features, then its match
    total = [r["features_ms"] + r["match_ms"] for r in warm]
    out["median_total_ms"], out["p90_total_ms"] = (round(float(v), 1) for v in np.percentile(total, [50, 90]))
    out["median_total_cpu_ms"] = round(float(np.median([r["features_cpu_ms"] + r["match_cpu_ms"] for r in warm])), 1)
    out["median_verify_cpu_ms"] = round(float(np.median([r["match_cpu_ms"] - r["votes_cpu_ms"] - r["dct_cpu_ms"]
                                                         for r in warm])), 1)
    out["first_query_match_ms"] = round(rows[0]["match_ms"], 1)
    pos = [r for r in rows if r["want"]]
    out["found"] = f"{sum(r['top'] == r['want'] for r in pos)}/{len(pos)}"
    out["false_positives"] = [f"{r['file']}->{r['top']}" for r in rows if r["top"] and r["top"] != r["want"]]
    return out


def _disk(folder: Path) -> dict[str, int]:
    sizes = {"sqlite": 0, "inverted_file": 0, "other": 0}
    for p in folder.rglob("*"):
        if p.is_file():
            k = "sqlite" if "sqlite" in p.name else "inverted_file" if "orbivf" in str(p.relative_to(folder)) else "other"
            sizes[k] += p.stat().st_size
    return sizes


def flat_votes_ms(index: Any, query: Path) -> float:
    """CPU time of the flat scan's votes (the path below ``IVF_MIN_DESCRIPTORS``) for one
    screenshot query against every registered descriptor: what the inverted file replaces."""
    from fingerprint.arrays import _BinaryIndex
    from fingerprint.formats import fingerprint_file

    fp = fingerprint_file(query, query=True).image
    assert fp is not None and fp.parts_descriptors is not None
    flat = index._build("orb")
    t0 = time.process_time()
    assert isinstance(flat, _BinaryIndex)
    flat.knn(fp.parts_descriptors, 4)
    return round(1000 * (time.process_time() - t0), 1)



def _planted(root: Path) -> tuple[Path, int]:
    """A fresh ``root`` holding the held-out pages (``truth.json``) and an index of their works:
    (root, how many works were registered)."""
    from fingerprint import service

    from .parts import build as build_pages

    if root.exists():
        shutil.rmtree(root)
    root.mkdir(parents=True)
    truth = build_pages("held", root)
    (root / "truth.json").write_text(json.dumps(truth))
    return root, len(service.add_dir(root / "works", root / "idx", workers=1).added)

def run(sizes: list[int], data: Path, limit: int, keep: bool) -> dict[str, Any]:
    """Grow one index through ``sizes`` (total registered pictures) and measure at each."""
    import subprocess

    from fingerprint.index import open_index
    from fingerprint.ivf import OrbInvertedFile


    store = load_store(data / "distractors")
    root, planted = _planted(data / "run")
    results = []
    index = open_index(root / "idx")
    have = planted
    for size in sizes:
        add_s = grow(index, store, have - planted, size - planted)
        have = size
        t0 = time.perf_counter()
        OrbInvertedFile(index.db, index.folder).build()
        build_s = time.perf_counter() - t0
        out = subprocess.run([sys.executable, "-m", "bench.fingerprint.scale", "query-worker", str(root / "idx"),
                              str(root / "q"), str(root / "truth.json"), "--limit", str(limit)],
                             capture_output=True, text=True, check=True)
        q = json.loads(out.stdout)
        meta = json.loads((root / "idx" / "orbivf.json").read_text())
        res = {"works": size, "extracted_distractors": min(size - planted, store["real"]),
               "perturbed_distractors": max(0, size - planted - store["real"]), "planted": planted,
               "register_s": round(add_s, 1), "inverted_file_build_s": round(build_s, 1),
               "words": meta["words"], "postings": meta["descriptors"], "disk_bytes": _disk(root / "idx"),
               "query_rss_base_mb": round(q["rss_kb_before_open"] / 1024, 1),
               "query_rss_mb": round(q["rss_kb"] / 1024, 1), "query_peak_rss_mb": round(q["hwm_kb"] / 1024, 1),
               "flat_scan_votes_cpu_ms": flat_votes_ms(index, root / "q" / "in00_screenshot.jpg") if size <= 10_000 else None,
               "queries": len(q["rows"]), **_summary(q["rows"])}
        print(json.dumps(res), flush=True)
        results.append(res)
    index.close()
    if not keep:
        shutil.rmtree(root, ignore_errors=True)
    return {"sizes": results}


def _query_row(index: Any, qdir: Path, f: str, truth: dict[str, Any]) -> dict[str, Any]:
    from fingerprint.formats import fingerprint_file
    from fingerprint.matching import match

    c0, w0 = time.process_time(), time.perf_counter()
    fp = fingerprint_file(qdir / f, query=True)
    c1, w1 = time.process_time(), time.perf_counter()
    timed = _Timed(index)
    res = match(timed, fp)  # type: ignore[arg-type]
    c2, w2 = time.process_time(), time.perf_counter()
    return {"file": f, "want": truth[f][0], "top": res.matches[0].work_id if res.matches else None,
            "features_ms": 1000 * (w1 - w0), "features_cpu_ms": 1000 * (c1 - c0), "match_ms": 1000 * (w2 - w1),
            "match_cpu_ms": 1000 * (c2 - c1), **{f"{k}_ms": 1000 * v for k, v in timed.t.items()}}


def rebuild_worker(index_dir: Path, qdir: Path, truth_file: Path, limit: int, after: int) -> dict[str, Any]:
    """Queries in a fresh process on a stale index: the first one finds it stale and starts
    the builder; the queries go on, round after round, while it runs and for ``after``
    rounds after its switch. Each row says whether a builder ran while it was answered."""
    from fingerprint.index import open_index
    from fingerprint.ivf_build import building, read_pointer

    def current() -> str | None:
        m = read_pointer(index_dir)
        return m["build"] if m else None

    truth = json.loads(truth_file.read_text())
    names = sorted(truth)
    names = names[::max(1, len(names) // limit)][:limit] if limit else names
    index = open_index(index_dir, create=False)
    b0, t0, done_rounds = current(), time.perf_counter(), 0
    rows: list[dict[str, Any]] = []
    while done_rounds < after and time.perf_counter() - t0 < 7200:
        switched = current() != b0 and not building(index_dir)
        for f in names:
            busy = building(index_dir)
            row = _query_row(index, qdir, f, truth)
            busy = busy or building(index_dir)
            row["phase"] = "first" if not rows else "during" if busy else "after" if current() != b0 else "stale"
            row["at_s"] = round(time.perf_counter() - t0, 1)
            rows.append(row)
        done_rounds += switched
    index.close()
    return {"rows": rows}


def rebuild(works: int, data: Path, limit: int) -> dict[str, Any]:
    """Query latency while the inverted file is rebuilt in the background, against the same
    queries on a fresh build with no builder running; and the rebuild's duration."""
    import subprocess

    from fingerprint import ivf
    from fingerprint.index import open_index


    store = load_store(data / "distractors")
    root, planted = _planted(data / "rebuild")
    mean = float(np.mean(np.asarray(store["count"][:store["real"]])))  # just past the rebuild rule
    extra = min(int(ivf.REBUILD_SHARE * works) + 1, int(ivf.DELTA_REBUILD * 1.05 / mean) + 1)
    index = open_index(root / "idx")
    add_s = grow(index, store, 0, works - planted)
    t0 = time.perf_counter()
    ivf.OrbInvertedFile(index.db, index.folder).build()
    build_s = time.perf_counter() - t0
    worker = [sys.executable, "-m", "bench.fingerprint.scale"]
    args = [str(root / "idx"), str(root / "q"), str(root / "truth.json"), "--limit", str(limit)]
    before = json.loads(subprocess.run([*worker, "query-worker", *args], capture_output=True, text=True,
                                       check=True).stdout)["rows"]
    grow(index, store, works - planted, works - planted + extra)
    index.close()
    rows = json.loads(subprocess.run([*worker, "rebuild-worker", *args, "--after", "1"], capture_output=True,
                                     text=True, check=True).stdout)["rows"]
    log = [json.loads(ln) for ln in (root / "idx" / "orbivf.log").read_text().splitlines() if ln.startswith("{")]
    phases = {p: [r for r in rows if r["phase"] == p] for p in ("first", "during", "stale", "after")}
    return {"works": works, "extracted_distractors": min(works - planted, store["real"]), "planted": planted,
            "register_s": round(add_s, 1), "initial_build_s": round(build_s, 1), "registered_since_build": extra,
            "background_rebuild_s": log[-1]["seconds"] if log else None,
            "background_rebuild": log[-1]["built"] if log else None,
            "first_query_after_registrations": {k: round(phases["first"][0][k], 1) for k in
                                                ("match_ms", "match_cpu_ms", "votes_ms", "votes_cpu_ms")},
            "before": _summary(before),
            **{p: ({"queries": len(v), **_summary(v)} if v else None) for p, v in phases.items() if p != "first"},
            "load_average": list(os.getloadavg())}


def _write_synthetic(sub: Path, n_words: int, reals: tuple[Any, Any, Any], planted: tuple[Any, Any, Any],
                     copies: int, base: int, real: int) -> int:
    """Postings of ``synthetic``: every real descriptor ``copies`` times (copy 0 exact, the
    others perturbed), filed under its word, with the planted works' own; returns the count."""
    rword, rdesc, rwork = reals
    pword, pdesc, pwid = planted
    order = np.argsort(rword, kind="stable")
    rword, rdesc, rwork = rword[order], rdesc[order], rwork[order]
    ps = np.argsort(pword, kind="stable")
    pword, pdesc, pwid = pword[ps], pdesc[ps], pwid[ps]
    n = rdesc.shape[0] * copies + pdesc.shape[0]
    out_d = np.lib.format.open_memmap(sub / "desc.npy", mode="w+", dtype=np.uint8, shape=(n, 32))
    out_w = np.lib.format.open_memmap(sub / "wids.npy", mode="w+", dtype=np.int32, shape=(n,))
    R = np.random.default_rng(1)
    masks = np.packbits(R.random((1 << 16, 256)) < PERTURB, axis=1)
    at, pj, step = 0, 0, 1 << 15
    for lo in range(0, rdesc.shape[0], step):  # in word order: each real descriptor `copies` times
        hi = min(lo + step, rdesc.shape[0])
        pk = int(np.searchsorted(pword, rword[hi - 1], "right")) if hi < rdesc.shape[0] else pword.size
        m = hi - lo
        copy = np.tile(np.arange(copies), m)
        d = np.repeat(rdesc[lo:hi], copies, axis=0)
        d[copy > 0] ^= masks[R.integers(0, 1 << 16, int((copy > 0).sum()))]
        w = np.repeat(rwork[lo:hi], copies) + base + real * copy
        wd = np.concatenate([np.repeat(rword[lo:hi], copies), pword[pj:pk]])
        o = np.argsort(wd, kind="stable")
        d, w = np.concatenate([d, pdesc[pj:pk]])[o], np.concatenate([w, pwid[pj:pk]])[o]
        out_d[at:at + d.shape[0]] = d
        out_w[at:at + d.shape[0]] = w
        at, pj = at + d.shape[0], pk
    offsets = np.zeros(n_words + 1, np.int64)
    np.cumsum(np.bincount(rword, minlength=n_words) * copies + np.bincount(pword, minlength=n_words),
              out=offsets[1:])
    out_d.flush()
    out_w.flush()
    np.save(sub / "offsets.npy", offsets)
    return int(n)


def _synthetic_codes(index_dir: Path, store: Any, real: int, copies: int, base: int) -> int:
    """The synthetic works' DCT codes in the index's ``codes`` table (work ``base + real × c +
    i``: extracted distractor ``i``'s code, perturbed as descriptors are for copies c > 0), so
    that a query's whole-picture and rectangle codes are searched among as many codes as a
    registry of that many pictures holds. Those works are not in ``works`` either: a code hit
    on one is reported under ``#wid`` (a false positive if within the decision distance).
    Returns how many codes were added."""
    from fingerprint.index import open_index

    codes = np.stack([np.asarray(store["code"][i], np.uint8) for i in range(real)])
    R = np.random.default_rng(2)
    with open_index(index_dir) as index:
        cur = index.db.cursor()
        cur.execute("DELETE FROM codes WHERE kind='image' AND wid >= ?", (base,))
        for c in range(copies):
            cc = codes if c == 0 else codes ^ np.packbits(R.random((real, 256)) < PERTURB, axis=1)
            cur.executemany("INSERT INTO codes VALUES (?, 'image', 0, ?)",
                            [(base + real * c + i, cc[i].tobytes()) for i in range(real)])
        cur.execute("UPDATE meta SET value = CAST(value AS INTEGER) + 1 WHERE key='generation'")
        index.db.commit()
    return real * copies


def synthetic_codes(data: Path) -> dict[str, Any]:
    """:func:`_synthetic_codes` on an existing ``synthetic`` build (its pointer says how many
    works and where the synthetic ones start)."""
    from fingerprint import ivf

    store = load_store(data / "distractors")
    real = int(store["real"])
    ptr = json.loads((data / "synthetic" / "idx" / ivf.POINTER).read_text())
    base = int(ptr["max_wid"]) + 1
    # builds before session 17 did not record their copies: 20 planted works, as they all had
    copies = int(ptr.get("copies", max(1, (int(ptr["works"]) - 20) // real)))
    t = time.perf_counter()
    n = _synthetic_codes(data / "synthetic" / "idx", store, real, copies, base)
    return {"codes_added": n, "copies_each": copies, "seconds": round(time.perf_counter() - t, 1)}


def synthetic(works: int, data: Path, limit: int) -> dict[str, Any]:
    """A cost measurement at ``works`` pictures without registering them (registering and
    quantising 4 × 10⁸ descriptors takes hours on this machine): the planted works are
    registered for real, the inverted file's vocabulary is trained for ``works`` × 400
    descriptors on the extracted distractors, and the postings hold every extracted
    distractor's descriptors plus perturbed copies (``PERTURB``) filed under the word of the
    descriptor they copy, and their DCT codes (:func:`_synthetic_codes`). Those synthetic
    works are not in the database's ``works``, so part search never returns them (recall
    here is not a measurement); a code within the decision distance of a query's would be
    reported as ``#wid`` and counted as a false positive. Query cost — quantisation, the
    cells' descriptors, the code search, verification — is that of an index of ``works``
    pictures."""
    import subprocess

    from fingerprint import ivf, service
    from fingerprint.index import open_index

    from .parts import build as build_pages

    store = load_store(data / "distractors")
    real = store["real"]
    root = data / "synthetic"
    if root.exists():
        shutil.rmtree(root)
    root.mkdir(parents=True)
    truth = build_pages("held", root)
    (root / "truth.json").write_text(json.dumps(truth))
    service.add_dir(root / "works", root / "idx", workers=1)
    t0 = time.perf_counter()
    with open_index(root / "idx") as index:
        planted = [(int(w), np.frombuffer(d, np.uint8).reshape(-1, 32))
                   for w, d in index.db.execute("SELECT wid, desc FROM orb ORDER BY wid")]
    counts = np.asarray(store["count"][:real], np.int64)
    rdesc = np.concatenate([np.asarray(store["desc"][i, :counts[i]]) for i in range(real)])
    rwork = np.repeat(np.arange(real), counts)
    n_total = works * PER_WORK
    n_words = min(ivf.TOP_WORDS * ivf.LEAF_MAX, n_total // ivf.CELL)
    vocab = ivf.Vocabulary.train(rdesc[np.random.default_rng(0).permutation(rdesc.shape[0])[:ivf.TRAIN_SAMPLE]],
                                 n_words, n_total)
    train_s = time.perf_counter() - t0
    rword = vocab.words(rdesc)
    pdesc = np.concatenate([d for _, d in planted])
    pwid = np.concatenate([np.full(d.shape[0], w, np.int64) for w, d in planted])
    pword = vocab.words(pdesc)
    copies = max(1, (works - len(planted)) // real)
    base = max(w for w, _ in planted) + 1
    sub = root / "idx" / "orbivf-synthetic"
    sub.mkdir()
    n = _write_synthetic(sub, vocab.size, (rword, rdesc, rwork), (pword, pdesc, pwid), copies, base, real)
    vocab.save(sub)
    np.save(sub / "works.npy", np.unique(pwid).astype(np.int32))
    _synthetic_codes(root / "idx", store, real, copies, base)
    (root / "idx" / ivf.POINTER).write_text(json.dumps({"build": "synthetic", "max_wid": base - 1, "works": works,
                                                        "descriptors": n, "words": vocab.size, "removals": 0,
                                                        "built_at": time.time(), "copies": copies}))
    build_s = time.perf_counter() - t0
    q = subprocess.run([sys.executable, "-m", "bench.fingerprint.scale", "query-worker", str(root / "idx"),
                        str(root / "q"), str(root / "truth.json"), "--limit", str(limit)],
                       capture_output=True, text=True, check=True)
    r = json.loads(q.stdout)
    return {"works": works, "synthetic": True, "extracted": real, "copies_each": copies,
            "words": vocab.size, "descriptors": n, "train_s": round(train_s, 1), "build_s": round(build_s, 1),
            "disk_bytes": _disk(root / "idx"), "query_rss_base_mb": round(r["rss_kb_before_open"] / 1024, 1),
            "query_rss_mb": round(r["rss_kb"] / 1024, 1), "query_peak_rss_mb": round(r["hwm_kb"] / 1024, 1),
            "query_rss_anon_mb": round(r["rss_anon_kb"] / 1024, 1), "query_rss_file_mb": round(r["rss_file_kb"] / 1024, 1),
            "queries": len(r["rows"]), **_summary(r["rows"])}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.fingerprint.scale")
    sub = ap.add_subparsers(dest="cmd", required=True)
    mk = sub.add_parser("make-distractors")
    mk.add_argument("n", type=int)
    mk.add_argument("--out", type=Path, default=DATA / "distractors")
    rn = sub.add_parser("run")
    rn.add_argument("--sizes", default="1000,10000,100000")
    rn.add_argument("--data", type=Path, default=DATA)
    rn.add_argument("--limit", type=int, default=0, help="queries per size (0: all)")
    rn.add_argument("--keep", action="store_true")
    sy = sub.add_parser("synthetic")
    sy.add_argument("--works", type=int, default=1_000_000)
    sy.add_argument("--data", type=Path, default=DATA)
    sy.add_argument("--limit", type=int, default=40)
    sc = sub.add_parser("synthetic-codes", help="add the synthetic works' DCT codes to an existing synthetic build")
    sc.add_argument("--data", type=Path, default=DATA)
    rb = sub.add_parser("rebuild")
    rb.add_argument("--works", type=int, default=10_000)
    rb.add_argument("--data", type=Path, default=DATA)
    rb.add_argument("--limit", type=int, default=20)
    rw = sub.add_parser("rebuild-worker")
    rw.add_argument("index", type=Path)
    rw.add_argument("qdir", type=Path)
    rw.add_argument("truth", type=Path)
    rw.add_argument("--limit", type=int, default=0)
    rw.add_argument("--after", type=int, default=1)
    qw = sub.add_parser("query-worker")
    qw.add_argument("index", type=Path)
    qw.add_argument("qdir", type=Path)
    qw.add_argument("truth", type=Path)
    qw.add_argument("--limit", type=int, default=0)
    a = ap.parse_args(argv)
    if a.cmd == "make-distractors":
        print(json.dumps(make_distractors(a.n, a.out)))
    elif a.cmd == "query-worker":
        print(json.dumps(query_worker(a.index, a.qdir, a.truth, a.limit)))
    elif a.cmd == "rebuild":
        print(json.dumps(rebuild(a.works, a.data, a.limit)))
    elif a.cmd == "rebuild-worker":
        print(json.dumps(rebuild_worker(a.index, a.qdir, a.truth, a.limit, a.after)))
    elif a.cmd == "synthetic":
        print(json.dumps(synthetic(a.works, a.data, a.limit)))
    elif a.cmd == "synthetic-codes":
        print(json.dumps(synthetic_codes(a.data)))
    else:
        print(json.dumps(run([int(x) for x in a.sizes.split(",")], a.data, a.limit, a.keep)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
