"""Video: a clip of a registered video is found inside a longer host video, with its start
time in both, by frame hashes alone (no audio) and by frames plus the audio track."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from bench.fingerprint import media as M
from fingerprint.index import LocalIndex, open_index
from fingerprint.service import add_file, query_file

SR = 22050
FPS = 10


@pytest.fixture(scope="module")
def video_setup(tmp_path_factory: pytest.TempPathFactory) -> tuple[LocalIndex, list[np.ndarray], np.ndarray, Path]:
    root = tmp_path_factory.mktemp("vid")
    photos = [a for _, a in M.photos()]
    frames = list(M.scene_frames(photos[:12], 30, FPS, (320, 240), seed=1))
    audio = M.music(30, seed=1)
    (root / "work.mp4").write_bytes(M.write_video(frames, FPS, audio, SR))
    # the host videos below are made of the remaining photos (17:): a host sharing a photo
    # with "other" does contain a copy of part of it (the query side's crop variant finds a
    # photo shown at another zoom), so the sources are kept disjoint
    other = list(M.scene_frames(photos[12:17], 12, FPS, (320, 240), seed=2))
    (root / "other.mp4").write_bytes(M.write_video(other, FPS, M.music(12, seed=2), SR))
    idx = open_index(root / "index")
    add_file(root / "work.mp4", "work", idx)
    add_file(root / "other.mp4", "other", idx)
    return idx, frames, audio, root


def _host(frames: list[np.ndarray], clip_s: tuple[float, float], before_s: float, size: tuple[int, int],
          fps: int, flip: bool = False, letterbox: float = 0.0) -> list[np.ndarray]:
    """A host video at another size and frame rate: filler, the clip, filler."""
    photos = [a for _, a in M.photos()][17:]
    filler = list(M.scene_frames(photos, 20, fps, size, seed=5))
    a, b = int(clip_s[0] * FPS), int(clip_s[1] * FPS)
    clip = [cv2.resize(f, size) for f in frames[a:b]]
    clip = [clip[int(i * FPS / fps)] for i in range(int(len(clip) * fps / FPS))]
    out = filler[: int(before_s * fps)] + clip + filler[int(before_s * fps):]
    if flip:
        out = [np.ascontiguousarray(f[:, ::-1]) for f in out]
    if letterbox:
        out = [cv2.resize(M.pad(f, letterbox), size) for f in out]
    return out


@pytest.mark.slow
@pytest.mark.parametrize(("label", "flip", "letterbox", "with_audio"), [
    ("plain-with-audio", False, 0.0, True), ("flipped-no-audio", True, 0.0, False),
    ("letterboxed-no-audio", False, 0.25, False),
])
def test_clip_inside_host_found_with_start_times(video_setup: tuple[LocalIndex, list[np.ndarray], np.ndarray, Path],
                                                 tmp_path: Path, label: str, flip: bool, letterbox: float,
                                                 with_audio: bool) -> None:
    idx, frames, audio, _ = video_setup
    host = _host(frames, (8.0, 20.0), 10.0, (480, 360), 25, flip=flip, letterbox=letterbox)
    sound = None
    if with_audio:
        sound = np.concatenate([M.music(10, 50), audio[8 * SR:20 * SR], M.music(10, 51)]).astype(np.float32)
    p = tmp_path / "host.mp4"
    p.write_bytes(M.write_video(host, 25, sound, SR, bitrate=400_000))
    matches = query_file(p, idx).matches
    assert matches and matches[0].work_id == "work", label
    m = matches[0]
    assert abs(m.query_start_s - 10.0) <= 1.0, label
    assert abs(m.work_start_s - 8.0) <= 1.0, label
    assert 8.0 <= m.duration_s <= 13.0, label
    assert all(x.work_id != "other" for x in matches)


@pytest.mark.slow
def test_clip_cropped_off_centre_is_found_with_start_times(
        video_setup: tuple[LocalIndex, list[np.ndarray], np.ndarray, Path], tmp_path: Path) -> None:
    """10 % of the area cut away from one corner's sides: the query side's shifted 93 % crops
    line up with the registered 88 % crop."""
    idx, frames, _, _ = video_setup
    host = _host(frames, (12.0, 20.0), 7.0, (480, 360), 25)
    h, w = host[0].shape[:2]
    host = [np.ascontiguousarray(f[: int(h * 0.95), int(w * 0.05):]) for f in host]
    p = tmp_path / "cropped.mp4"
    p.write_bytes(M.write_video(host, 25, None, SR, bitrate=400_000))
    m = query_file(p, idx).matches[0]
    assert m.work_id == "work"
    assert abs(m.query_start_s - 7.0) <= 1.0 and abs(m.work_start_s - 12.0) <= 1.0, m


@pytest.mark.slow
def test_unrelated_video_matches_nothing(video_setup: tuple[LocalIndex, list[np.ndarray], np.ndarray, Path],
                                         tmp_path: Path) -> None:
    idx, _, _, _ = video_setup
    photos = [a for _, a in M.photos()][17:]
    p = tmp_path / "neg.mp4"
    p.write_bytes(M.write_video(list(M.scene_frames(photos, 12, 25, (320, 240), seed=9)), 25,
                                M.music(12, seed=77), SR))
    assert query_file(p, idx).matches == []


def _static_camera(seconds: float, fps: int, seed: int) -> list[np.ndarray]:
    """A fixed view (one photo) with a few small figures walking across it: every frame is
    within a few bits of every other, like opencv-doc's vtest.avi."""
    rng = np.random.default_rng(seed)
    bg = cv2.resize([a for _, a in M.photos()][3], (320, 240))
    walkers = [(rng.uniform(0, 320), rng.uniform(40, 200), rng.uniform(-25, 25), rng.uniform(-8, 8))
               for _ in range(6)]
    out = []
    for i in range(int(seconds * fps)):
        t = i / fps
        f = bg.copy()
        for x0, y0, vx, vy in walkers:
            x, y = int((x0 + vx * t) % 320), int((y0 + vy * t) % 240)
            cv2.rectangle(f, (x, y), (x + 14, y + 34), (40, 40, 200), -1)
        out.append(f)
    return out


def test_static_camera_clip_is_placed_by_frame_closeness(tmp_path: Path) -> None:
    """Frame counting alone cannot place a clip of a static camera (every offset gathers
    enough frames within the radius); the offset whose aligned frames are closest can."""
    frames = _static_camera(40, FPS, 3)
    idx = open_index(tmp_path / "index")
    (tmp_path / "cam.mp4").write_bytes(M.write_video(frames, FPS, None, SR))
    add_file(tmp_path / "cam.mp4", "cam", idx)
    photos = [a for _, a in M.photos()][17:]
    for clip_start, before in ((21.0, 6.0), (4.0, 9.0)):
        clip = frames[int(clip_start * FPS):int((clip_start + 8) * FPS)]
        filler = list(M.scene_frames(photos, 12, FPS, (320, 240), seed=int(clip_start)))
        host = filler[: int(before * FPS)] + clip + filler[int(before * FPS):]
        p = tmp_path / "host.mp4"
        p.write_bytes(M.write_video(host, FPS, None, SR, bitrate=400_000))
        m = query_file(p, idx).matches[0]
        assert m.work_id == "cam"
        assert abs(m.work_start_s - clip_start) <= 1.0, (clip_start, m)
        assert abs(m.query_start_s - before) <= 1.0, (before, m)
