"""``rongxin bench capture``: one-click capture of a local test page, end to end, as JSON (never
part of the test suite).

The page (served on loopback by a standard-library HTTP server) shows ten pictures, one of
them a cropped, scaled JPEG copy of a registered picture, and plays a 30-second clip (seconds
17-47) of a registered 60-second song in an ``<audio>`` element. On a local consortium
(`rongxin up --detach`, fresh unless ``--data``) the holder registers the picture and the
song, then the legal centre's station runs, each stage timed:

- ``environment_s``: ``forensics.capture.check_environment`` (the clean-environment report);
- ``capture_s``: ``forensics.capture.capture`` in headless Chromium (screenshot, recording,
  WARC, HAR, DOM, custody log);
- ``match_and_prepare_s``: the upload of every file to the node, which fingerprints the
  screenshot and each picture, audio and video resource, matches them against the registry
  and countersigns the manifest (``POST /v1/evidence/prepare``);
- ``file_and_commit_s``: the cases looked up, the manifest and the ``evidence.file`` signed and
  committed with one case per matched work (``POST /v1/evidence``).

``total_s`` is their sum (target <= 15 s, issue 15). ``--no-browser`` (a machine without
Chromium, or before the browser side exists) skips the first two stages and files the page's
own files with an OpenCV rendering of it as the screenshot: it measures matching and filing
only, and says so (``"browser": false``; ``ok`` is then null).
"""

from __future__ import annotations

import functools
import importlib
import os
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from api import sdk_capture
from api.sdk import Identity, LedgerClient
from bench.fingerprint.media import music, wav_bytes
from forensics.capture_filing import capture_facts, capture_files
from ledger.crypto import sm3_file

TARGET_S = 15.0
OFFSET_S = 17.0
CLIP_S = 30


def _picture(seed: int, w: int = 800, h: int = 600) -> np.ndarray:
    r = np.random.default_rng(seed)
    im = np.zeros((h, w, 3), np.uint8)
    for _ in range(40):
        c = tuple(int(x) for x in r.integers(0, 255, 3))
        p = (int(r.integers(0, w)), int(r.integers(0, h)))
        if r.random() < .5:
            cv2.circle(im, p, int(r.integers(10, 120)), c, -1)
        else:
            cv2.rectangle(im, p, (p[0] + int(r.integers(20, 200)), p[1] + int(r.integers(20, 200))), c, -1)
    return cv2.GaussianBlur(im, (3, 3), 0)


def make_site(t: Path) -> tuple[Path, Path, Path]:
    """The registered picture and song, and the site folder with the page."""
    site = t / "site"
    site.mkdir()
    w = _picture(21)
    cv2.imwrite(str(t / "work.png"), w)
    (t / "song.wav").write_bytes(wav_bytes(music(60.0, 22), 22050))
    h, wd = w.shape[:2]
    cv2.imwrite(str(site / "photo.jpg"), cv2.resize(w[int(.06 * h):, :int(.95 * wd)], None, fx=.65, fy=.65),
                [cv2.IMWRITE_JPEG_QUALITY, 70])
    for k in range(9):
        cv2.imwrite(str(site / f"other{k}.jpg"), _picture(100 + k, 400, 300))
    subprocess.run(["ffmpeg", "-y", "-loglevel", "error", "-ss", str(OFFSET_S), "-t", str(CLIP_S), "-i",
                    str(t / "song.wav"), "-b:a", "96k", str(site / "clip.mp3")], check=True, timeout=120)
    imgs = "".join(f'<img src="other{k}.jpg" width="200">' for k in range(9))
    (site / "index.html").write_text(
        '<!doctype html><html><head><meta charset="utf-8"><title>Reposted</title></head><body>'
        f"<h1>今日精选 Today's picks</h1><p>{'Lorem ipsum dolor sit amet. ' * 40}</p>{imgs}"
        '<figure><img src="photo.jpg"><figcaption>A picture</figcaption></figure>'
        f'<audio controls autoplay src="clip.mp3"></audio><p>{"More text. " * 200}</p></body></html>')
    return t / "work.png", t / "song.wav", site


@contextmanager
def serve(site: Path) -> Iterator[str]:
    handler = functools.partial(_Quiet, directory=str(site))
    srv = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    th = threading.Thread(target=srv.serve_forever, daemon=True)
    th.start()
    try:
        yield f"http://127.0.0.1:{srv.server_address[1]}/"
    finally:
        srv.shutdown()
        srv.server_close()


class _Quiet(SimpleHTTPRequestHandler):
    def log_message(self, *args: object) -> None:
        pass


@dataclass(frozen=True)
class _Art:
    name: str
    path: Path
    sm3: str
    size: int
    media_type: str
    role: str


@dataclass(frozen=True)
class _Page:
    url: str
    final_url: str | None
    artefacts: tuple[_Art, ...]
    resources: tuple[_Art, ...]
    facts: dict[str, Any]


def _art(p: Path, role: str) -> _Art:
    return _Art(p.name, p, sm3_file(p).hex(), p.stat().st_size, "application/octet-stream", role)


def _read(p: Path) -> np.ndarray:
    im = cv2.imread(str(p))
    if im is None:
        raise RuntimeError(f"{p} cannot be read")
    return np.asarray(im, np.uint8)


def files_only(site: Path, url: str, t: Path) -> _Page:
    """``--no-browser``: the page's own files, the HTML as the DOM and an OpenCV rendering of
    the pictures as the screenshot (no WARC, HAR or recording)."""
    shot = np.full((1900, 1280, 3), 250, np.uint8)
    for k in range(9):
        o = cv2.resize(_read(site / f"other{k}.jpg"), (200, 150))
        shot[300 + (k // 5) * 160:450 + (k // 5) * 160, 20 + (k % 5) * 210:220 + (k % 5) * 210] = o
    p = _read(site / "photo.jpg")
    shot[640:640 + p.shape[0], 20:20 + p.shape[1]] = p
    cv2.imwrite(str(t / "screenshot.png"), shot)
    res = [_art(site / "photo.jpg", "resource"), *[_art(site / f"other{k}.jpg", "resource") for k in range(9)],
           _art(site / "clip.mp3", "resource")]
    return _Page(url, url, (_art(t / "screenshot.png", "screenshot"), _art(site / "index.html", "dom")), tuple(res),
                 {"browser": "none (bench --no-browser)"})


def _lap(stages: dict[str, float], name: str, t0: float) -> float:
    now = time.perf_counter()
    stages[name] = round(now - t0, 3)
    return now


def _run(api: str, ids: Path, t: Path, browser: bool) -> dict[str, Any]:
    work, song, site = make_site(t)
    holder = LedgerClient(api, identity=Identity.load(ids / "holder"), timeout=300)
    wid = holder.register_work(work, {"title": "Picture", "type": "picture"})["work_id"]
    aid = holder.register_work(song, {"title": "Song", "type": "music"})["work_id"]
    client = LedgerClient(api, identity=Identity.load(ids / "legal"), timeout=300)
    stages: dict[str, float] = {}
    with serve(site) as url:
        t0 = time.perf_counter()
        if browser:
            mod = importlib.import_module("forensics.capture")
            host, port = api.rsplit("//", 1)[1].split("/")[0].rsplit(":", 1)
            height = int(client.status()["height"])
            settings = mod.CaptureSettings(forbidden=((host, int(port)),), max_clock_skew_s=90.0,
                                           chain_time_s=client.block(height)["header"]["time"] / 1000)
            mod.check_environment(settings)
            t0 = _lap(stages, "environment_s", t0)
            page = mod.capture(url, t / "capture", settings)
            t0 = _lap(stages, "capture_s", t0)
        else:
            page = files_only(site, url, t)
            t0 = time.perf_counter()
        prep = sdk_capture.prepare_capture(client, capture_files(page), capture_facts(page, where="station"))
        t0 = _lap(stages, "match_and_prepare_s", t0)
        out = sdk_capture.file_prepared_capture(client, prep)
        _lap(stages, "file_and_commit_s", t0)
    song_m = [m for m in out["matches"] if m["work_id"] == aid]
    total = round(sum(stages.values()), 3)
    return {"browser": browser, "stages": stages, "total_s": total, "target_s": TARGET_S,
            "ok": (total <= TARGET_S) if browser else None, "images": 10, "audio_clip_s": CLIP_S,
            "artefacts": len(out["artefacts"]), "bytes": sum(a["size"] for a in out["artefacts"]),
            "picture_found": any(m["work_id"] == wid for m in out["matches"]),
            "song_found": bool(song_m),
            "song_offset_s": round(song_m[0]["work_start_s"] - (song_m[0]["query_start_s"] or 0), 2) if song_m else None,
            "cases": len(out["case_ids"]), "matches": out["matches"], "load_average": list(os.getloadavg()),
            "cores": os.cpu_count()}


def measure(data: Path | None = None, browser: bool = True) -> dict[str, Any]:
    """The figures, on the consortium in ``data`` (running) or a fresh one."""
    import json

    with tempfile.TemporaryDirectory(prefix="rx-bench-capture-") as tmp:
        t = Path(tmp)
        folder = data or t / "c"
        rongxin = str(Path(sys.executable).with_name("rongxin"))  # the venv's, whatever PATH says
        if data is None:
            subprocess.run([rongxin, "up", "--detach", "--data", str(folder)], check=True, timeout=300,
                           capture_output=True)
        try:
            nodes = json.loads((folder / "cluster.json").read_text())["nodes"]
            api = next(n["api"] for n in nodes if n["role"] == "supervisor")
            return _run(api, folder / "identities", t, browser)
        finally:
            if data is None:
                subprocess.run([rongxin, "down", "--data", str(folder)], timeout=120, capture_output=True, check=False)
