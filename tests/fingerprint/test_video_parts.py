"""Video: a clip shown as a picture-in-picture inset over another video is found and placed;
flat and banded slides are no evidence (an unrelated slide show of bands matches nothing)."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from bench.fingerprint import media as M
from fingerprint import video_match
from fingerprint.index import open_index
from fingerprint.service import add_file, query_file
from fingerprint.video_parts import find_boxes

FPS = 10
SIZE = (320, 240)


def test_an_inset_is_found_by_its_persistent_sides() -> None:
    """Shares of samples on an edge: the sides of an inset at (100, 60)–(260, 180) persist,
    scattered content edges do not; the inset is the best box."""
    rng = np.random.default_rng(0)
    h_share = rng.uniform(0, 0.5, (240, 320))
    v_share = rng.uniform(0, 0.5, (240, 320))
    h_share[60, 100:260] = h_share[180, 100:260] = 0.9
    v_share[60:180, 100] = v_share[60:180, 260] = 0.9
    boxes = find_boxes(h_share, v_share)
    assert boxes and max(abs(a - b) for a, b in zip(boxes[0], (100, 60, 260, 180), strict=True)) <= 1, boxes


def test_clip_shown_picture_in_picture_is_found_and_placed(tmp_path: Path) -> None:
    """8 s of a registered slide show shown at 40 % of the frame over another slide show:
    the frame codes see another picture; the inset's codes find the clip, placed within
    0.5 s in the host and in the work."""
    photos = [a for _, a in M.photos()]
    work = list(M.scene_frames(photos[:6], 20, FPS, SIZE, seed=31))
    (tmp_path / "work.mp4").write_bytes(M.write_video(work, FPS, None))
    idx = open_index(tmp_path / "index")
    add_file(tmp_path / "work.mp4", "work", idx)
    outer = list(M.scene_frames(photos[17:], 16, FPS, SIZE, seed=32))
    inner = list(M.scene_frames(photos[20:], 16, FPS, SIZE, seed=33))
    clip_s, before = 9.0, 5.0
    inner[int(before * FPS):int((before + 8) * FPS)] = work[int(clip_s * FPS):int((clip_s + 8) * FPS)]
    x0, y0, pw, ph = 170, 20, 128, 96  # 40 % of each side, top right
    host = []
    for o, i in zip(outer, inner, strict=True):
        f = o.copy()
        f[y0:y0 + ph, x0:x0 + pw] = cv2.resize(i, (pw, ph), interpolation=cv2.INTER_AREA)
        host.append(f)
    p = tmp_path / "pip.mp4"
    p.write_bytes(M.write_video(host, FPS, None, bitrate=400_000))
    m = query_file(p, idx).matches
    assert m and m[0].work_id == "work", [x.as_dict() for x in m]
    assert abs(m[0].query_start_s - before) <= 0.5 and abs(m[0].work_start_s - clip_s) <= 0.5, m[0]


def _bands(dark_on_light: bool, seed: int) -> list[np.ndarray]:
    """Pictures of one horizontal band across the frame (a bar, a stripe of a flag): their DCT
    codes hold a few vertical frequencies and nothing else."""
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(4):
        f = np.full((SIZE[1], SIZE[0], 3), 235 if dark_on_light else 10, np.uint8)
        y = int(rng.integers(80, 120))
        f[y:y + int(rng.integers(16, 90))] = 10 if dark_on_light else 235
        out.append(f)
    return out


def test_unrelated_slide_show_of_bands_matches_nothing(tmp_path: Path) -> None:
    """A registered slide show with dark bars on light grounds among photos, and an unrelated
    one of light bands on dark grounds: band frames are within a few bits of each other, so
    without the quality bound the query matched (``VIDEO_MIN_QUALITY``); with it, nothing."""
    photos = [a for _, a in M.photos()]
    pics = _bands(True, 1) + photos[:2]
    work = M.slides(pics, 24, FPS, SIZE, seed=41)
    (tmp_path / "work.mp4").write_bytes(M.write_video(work, FPS, None))
    idx = open_index(tmp_path / "index")
    add_file(tmp_path / "work.mp4", "work", idx)
    query = M.slides(_bands(False, 2), 16, FPS, SIZE, seed=42)
    p = tmp_path / "bands.mp4"
    p.write_bytes(M.write_video(query, FPS, None, bitrate=400_000))
    assert query_file(p, idx).matches == []
    assert video_match.VIDEO_MIN_QUALITY > 0
