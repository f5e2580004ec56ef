"""Video: a clip of a registered video is found inside a longer host video, with its start
time in both, by frame hashes alone (no audio) and by frames plus the audio track."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from bench.fingerprint import media as M
from fingerprint import matching
from fingerprint.index import LocalIndex, open_index
from fingerprint.occurrences import Segment
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
        assert len(m.segments) == 1, m.as_dict()  # a still view is no repeat of itself


def _tiles(half: int) -> list[np.ndarray]:
    return [a for _, a in M.tiles(M.photos()[half::2])]


@pytest.fixture(scope="module")
def slide_show(tmp_path_factory: pytest.TempPathFactory) -> tuple[LocalIndex, list[np.ndarray]]:
    """A still slide show (no pans: every frame of a slide alike) at 25 fps, no audio."""
    root = tmp_path_factory.mktemp("slides")
    frames = M.slides(_tiles(0)[30:36], 24, 25, (320, 240), seed=1005)
    (root / "show.mp4").write_bytes(M.write_video(frames, 25, None, SR))
    idx = open_index(root / "index")
    add_file(root / "show.mp4", "show", idx)
    return idx, frames


def _transform(name: str, f: np.ndarray) -> np.ndarray:
    h, w = f.shape[:2]
    if name == "crop":  # 5 % of the width and of the height cut, 4 % from the top and the left
        return np.ascontiguousarray(f[int(h * 0.04):h - int(h * 0.01), int(w * 0.04):w - int(w * 0.01)])
    if name == "overlay":
        return M.overlay(f, np.random.default_rng(5))
    if name == "letterbox":
        return np.asarray(cv2.resize(M.pad(f, 0.25), (w, h)), np.uint8)
    return np.asarray(cv2.resize(f, (w // 2, h // 2)), np.uint8)  # scale


@pytest.mark.slow
@pytest.mark.parametrize("name", ["crop", "overlay", "letterbox", "scale"])
def test_slide_show_clip_is_placed_within_half_a_second(slide_show: tuple[LocalIndex, list[np.ndarray]],
                                                        tmp_path: Path, name: str) -> None:
    """Still slides: each view of the query (as is, crops) matches only some slides of a
    cropped copy within the frame radius; the placement pools them (one view alone started
    the crop clip at 12.08 s 1.6 s late)."""
    idx, frames = slide_show
    filler = M.slides(_tiles(1)[:8], 20, 25, (320, 240), seed=5005)
    for clip_s, before in ((12.08, 8.66), (3.4, 5.2)):
        clip = frames[int(clip_s * 25):int((clip_s + 8) * 25)]
        host = [_transform(name, f) for f in filler[:int(before * 25)] + clip + filler[int(before * 25):]]
        p = tmp_path / "host.mp4"
        p.write_bytes(M.write_video(host, 25, None, SR, bitrate=400_000))
        m = query_file(p, idx).matches[0]
        assert m.work_id == "show"
        assert abs(m.query_start_s - before) <= 0.5 and abs(m.work_start_s - clip_s) <= 0.5, (name, clip_s, m)


@pytest.mark.slow
def test_a_clip_shown_twice_in_the_work_reports_both(tmp_path: Path) -> None:
    """A work that shows one sequence twice (an intro replayed): a host holding the sequence
    once gets two segments, at both places in the work (6 + 1 s and 23 + 1 s), the same place
    in the host (5 s)."""
    photos = [a for _, a in M.photos()]
    seq = list(M.scene_frames(photos[:4], 8, FPS, (320, 240), seed=11))
    work = (list(M.scene_frames(photos[4:7], 6, FPS, (320, 240), seed=12)) + seq
            + list(M.scene_frames(photos[7:10], 9, FPS, (320, 240), seed=13)) + seq
            + list(M.scene_frames(photos[10:12], 5, FPS, (320, 240), seed=14)))
    idx = open_index(tmp_path / "index")
    (tmp_path / "work.mp4").write_bytes(M.write_video(work, FPS, None, SR))
    add_file(tmp_path / "work.mp4", "work", idx)
    host = list(M.scene_frames(photos[17:], 10, FPS, (320, 240), seed=15))
    host = host[:5 * FPS] + seq[FPS:7 * FPS] + host[5 * FPS:]  # 6 s of the sequence, 1 s into it
    p = tmp_path / "host.mp4"
    p.write_bytes(M.write_video(host, FPS, None, SR, bitrate=400_000))
    m = query_file(p, idx).matches[0]
    assert m.work_id == "work" and len(m.segments) == 2, m.as_dict()
    assert sorted(s.work_start_s - s.query_start_s for s in m.segments) == pytest.approx([2.0, 19.0], abs=0.3)
    assert all(abs(s.query_start_s - 5.0) <= 0.5 for s in m.segments)


@pytest.mark.slow
def test_clip_whose_first_seconds_carry_a_heavy_overlay_starts_where_it_starts(tmp_path: Path) -> None:
    """The first 4 s of the clip under a caption band over 30 % of the frame and a logo box:
    their frames are beyond the decision radius (without extension the clip started 4 s late)
    but, at the offset the rest decided, far closer than unrelated frames: the segment is
    extended over them."""
    photos = [a for _, a in M.photos()]
    frames = list(M.scene_frames(photos[1:12:2], 24, 25, (320, 240), seed=21))
    idx = open_index(tmp_path / "index")
    (tmp_path / "work.mp4").write_bytes(M.write_video(frames, 25, None, SR))
    add_file(tmp_path / "work.mp4", "work", idx)

    def heavy(f: np.ndarray) -> np.ndarray:
        out = f.copy()
        h, w = out.shape[:2]
        cv2.rectangle(out, (0, int(h * 0.7)), (w, h), (20, 20, 20), -1)
        cv2.putText(out, "LIVE 2026 channel", (10, int(h * 0.9)), cv2.FONT_HERSHEY_SIMPLEX, 0.8, (255, 255, 255), 2)
        cv2.rectangle(out, (int(w * 0.65), 10), (int(w * 0.95), 60), (0, 128, 255), -1)
        return out

    clip = [heavy(f) if i < 100 else f for i, f in enumerate(frames[150:350])]  # 6–14 s of the work
    filler = list(M.scene_frames(photos[12::2], 20, 25, (320, 240), seed=7))
    p = tmp_path / "host.mp4"
    p.write_bytes(M.write_video(filler[:125] + clip + filler[125:], 25, None, SR, bitrate=400_000))
    m = query_file(p, idx).matches[0]
    assert m.work_id == "work"
    assert abs(m.query_start_s - 5.0) <= 0.5 and abs(m.work_start_s - 6.0) <= 0.5, m
    assert m.duration_s >= 7.5, m


@pytest.mark.slow
def test_a_soundtrack_that_loops_does_not_move_a_clip_placed_by_its_pictures(tmp_path: Path) -> None:
    """A work whose music plays a 10 s passage three times (the later two under a little
    noise) under pictures that do not repeat. A clip of the second or third ten seconds whose
    sound is the passage as first heard (a loop re-cut) matches the sound's first repeat best;
    the pictures say which ten seconds it is, and the sound may only refine an offset that
    agrees with them (matching.AV_AGREE_S)."""
    photos = [a for _, a in M.photos()]
    frames = list(M.scene_frames(photos[:12], 30, FPS, (320, 240), seed=21))
    passage = M.music(10, seed=21)
    rng = np.random.default_rng(21)
    sound = np.concatenate([passage, M.add_noise(passage, 15.0, rng), M.add_noise(passage, 15.0, rng)])
    idx = open_index(tmp_path / "index")
    (tmp_path / "work.mp4").write_bytes(M.write_video(frames, FPS, sound.astype(np.float32), SR))
    add_file(tmp_path / "work.mp4", "work", idx)
    for k, start in enumerate((12.0, 21.5)):
        host = _host(frames, (start, start + 7), 4.0, (320, 240), 25)
        filler = M.music(len(host) / 25 + 1, seed=40 + k)[: int(len(host) / 25 * SR)] * 0.5
        own = passage[int((start % 10) * SR):int((start % 10 + 7) * SR)]
        filler[int(4.0 * SR):int(4.0 * SR) + own.size] = own
        p = tmp_path / f"host{k}.mp4"
        p.write_bytes(M.write_video(host, 25, filler.astype(np.float32), SR, bitrate=600_000))
        m = query_file(p, idx).matches[0]
        assert m.work_id == "work" and m.work_start_s is not None and m.query_start_s is not None
        assert abs(m.work_start_s - m.query_start_s - (start - 4.0)) <= 0.5, (start, m.as_dict())
        assert abs(m.query_start_s - 4.0) <= 0.5, m.as_dict()


def _m(method: str, *segs: tuple[float, float, float, float]) -> matching.Match:
    s = [Segment(*g) for g in segs]
    return matching.Match("w", max(g.score for g in s), s[0].query_start_s, s[0].work_start_s, s[0].duration_s,
                          method, segments=s)


def _union(f: Segment, g: Segment) -> Segment:
    """A stand-in for ``video_match.placed_with_sound`` with no pictures to object: the union
    of both extents at the sound's offset."""
    off = g.work_start_s - g.query_start_s
    a = min(f.query_start_s, g.query_start_s)
    b = max(f.query_start_s + f.duration_s, g.query_start_s + g.duration_s)
    return Segment(a, a + off, b - a, g.score)


@pytest.mark.parametrize("frames, sound, expect", [
    # the sound's first pairs survive 0.56 s into the clip: the frames' start, the sound's offset
    (((7.52, 2.04, 8.0, 2.0),), ((8.064, 2.72, 7.2, 3.0),), (7.52, 2.176)),
    # the frames' first samples have no hash quality (a fade): the sound's start
    (((6.52, 23.04, 7.0, 2.0),), ((5.536, 21.856, 7.7, 3.0),), (5.536, 21.856)),
    # the sound's strongest segment is a repeat 5.6 s away; its second agrees with the frames
    (((8.28, 28.54, 8.0, 2.0),), ((8.48, 23.296, 5.2, 3.0), (8.67, 29.15, 6.8, 2.0)), (8.28, 28.76)),
    # no sound segment within AV_AGREE_S of the frames: the sound is not second-guessed
    (((8.0, 1.0, 8.0, 2.0),), ((8.2, 3.2, 7.0, 3.0),), (8.2, 3.2)),
])
def test_a_clip_matched_by_pictures_and_sound_is_placed_by_the_agreeing_sound_segment(
        frames: tuple[tuple[float, float, float, float], ...], sound: tuple[tuple[float, float, float, float], ...],
        expect: tuple[float, float]) -> None:
    """Cases measured in the full calibration (docs/fingerprints.md, video): the agreeing
    sound segment (not a repeat the pictures rule out) is combined with the frames' first."""
    m = matching._refined_by_sound(_m("frames", *frames), _m("pairs", *sound), _union)
    assert m.method == "pairs" and m.segments[0].query_start_s == m.query_start_s
    assert (round(m.query_start_s or 0, 3), round(m.work_start_s or 0, 3)) == expect
    assert m.score == 3.0


def test_the_pictures_confirm_or_veto_the_extent_the_sound_gives(tmp_path: Path) -> None:
    """``video_match.placed_with_sound`` on a real index and query: a clip of a registered
    slide show (work 12-19 s at host 4-11 s). A sound segment at the right offset that starts
    2 s early, over the host's own pictures, is cut back to where the pictures begin; a frame
    segment that starts 2 s late is extended at the sound's offset over the clip's frames; the
    offset is the sound's."""
    from fingerprint.formats import fingerprint_bytes
    from fingerprint.video_match import placed_with_sound

    frames = list(M.scene_frames([a for _, a in M.photos()][:12], 30, FPS, (320, 240), seed=22))
    idx = open_index(tmp_path / "index")
    (tmp_path / "work.mp4").write_bytes(M.write_video(frames, FPS))
    add_file(tmp_path / "work.mp4", "work", idx)
    q = fingerprint_bytes(M.write_video(_host(frames, (12.0, 19.0), 4.0, (320, 240), 25), 25), query=True).video
    assert q is not None
    early = placed_with_sound(idx, q, "work", Segment(4.0, 12.0, 7.0, 2.0), Segment(2.0, 10.04, 9.0, 3.0))
    assert abs(early.query_start_s - 4.0) <= 0.3 and early.query_start_s > 3.0, early
    assert abs(early.work_start_s - early.query_start_s - 8.04) < 1e-9
    late = placed_with_sound(idx, q, "work", Segment(6.0, 14.0, 5.0, 2.0), Segment(6.5, 14.54, 4.0, 3.0))
    assert abs(late.query_start_s - 4.0) <= 0.3, late
    assert late.query_start_s + late.duration_s >= 10.5, late
