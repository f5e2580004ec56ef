"""Digital art (image format v2): smooth, striped, line-art and flat pictures are registered
with a recognition report instead of being refused, found under photometric and geometric
transforms and inside a page, and never matched to another picture of the same style."""

from __future__ import annotations

import random
from pathlib import Path

import cv2
import numpy as np
import pytest

from bench.fingerprint import media as M
from bench.fingerprint.parts import page
from fingerprint.formats import fingerprint_file, recognition
from fingerprint.index import LocalIndex, open_index
from fingerprint.service import add_file, query_file

W, H = 480, 320


def soft(seed: int) -> np.ndarray:
    """Smooth digital art: a two-colour gradient, soft coloured blobs and a soft wave band."""
    r = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:H, 0:W].astype(np.float32)
    a = r.uniform(0, 2 * np.pi)
    t = (np.cos(a) * xx + np.sin(a) * yy) / max(W, H)
    im = r.uniform(30, 220, 3)[None, None, :] * (1 - t[..., None]) + r.uniform(30, 220, 3)[None, None, :] * t[..., None]
    for _ in range(6):
        cx, cy, s = r.uniform(0, W), r.uniform(0, H), r.uniform(20, 70)
        im += np.exp(-((xx - cx) ** 2 + (yy - cy) ** 2) / (2 * s * s))[..., None] * r.uniform(-90, 90, 3)
    band = np.exp(-((yy - H / 2 - 40 * np.sin(xx / W * r.uniform(2, 5) * np.pi + r.uniform(0, 6))) ** 2) / 648)
    im += band[..., None] * r.uniform(-80, 80, 3)
    return np.clip(im, 0, 255).astype(np.uint8)


def line_art(seed: int) -> np.ndarray:
    """Dark strokes (circles, open polylines) on a flat light ground."""
    r = np.random.default_rng(seed)
    im = np.full((H, W, 3), 235, np.uint8)
    for _ in range(14):
        c = tuple(int(x) for x in r.integers(0, 90, 3))
        if r.random() < 0.4:
            cv2.circle(im, (int(r.integers(0, W)), int(r.integers(0, H))), int(r.integers(10, 80)), c, 2, cv2.LINE_AA)
        else:
            cv2.polylines(im, [r.integers(0, [W, H], (int(r.integers(3, 6)), 2)).astype(np.int32)], False, c, 2,
                          cv2.LINE_AA)
    return im


def ramp(seed: int) -> np.ndarray:
    """A smooth two-colour gradient with a few soft vertical bands: no usable DCT code."""
    r = np.random.default_rng(seed)
    t = np.linspace(0, 1, W, dtype=np.float32)[None, :, None]
    c0, c1 = r.uniform(20, 235, 3), r.uniform(20, 235, 3)
    row = c0 * (1 - t) + c1 * t
    return np.ascontiguousarray(np.repeat(row, H, axis=0).clip(0, 255).astype(np.uint8))


FLAT = np.full((H, W, 3), (180, 120, 60), np.uint8)


@pytest.fixture(scope="module")
def art_index(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, LocalIndex, dict[str, dict[str, object]]]:
    root = tmp_path_factory.mktemp("art")
    idx = open_index(root / "index")
    levels = {}
    for name, a in {"soft": soft(1), "line": line_art(3), "ramp": ramp(5), "flat": FLAT}.items():
        (root / f"{name}.png").write_bytes(M.encode(a))
        levels[name] = recognition(add_file(root / f"{name}.png", name, idx))
    return root, idx, levels


def _top(root: Path, idx: LocalIndex, img: np.ndarray, name: str) -> tuple[str, str] | None:
    p = root / f"q-{name}.jpg"
    p.write_bytes(M.encode(img, ".jpg", 92))
    found = query_file(p, idx).matches
    return (found[0].work_id, found[0].method) if found else None


def test_every_picture_is_registered_with_its_recognition_level(art_index: tuple[Path, LocalIndex, dict]) -> None:
    _, idx, levels = art_index
    assert idx.count() == 4  # nothing refused, the flat picture and the gradient included
    assert levels["soft"]["level"] == "robust" and levels["soft"]["art_keypoints"] > 100  # type: ignore[operator]
    assert levels["line"]["level"] == "robust"
    # the gradient's DCT code is decided by noise: not indexed, its colour layout is
    assert levels["ramp"] == {**levels["ramp"], "level": "limited", "global_code": False, "colour_layout": True}
    assert levels["flat"] == {**levels["flat"], "level": "exact-only", "keypoints": 0, "global_code": False,
                              "colour_layout": False}


@pytest.mark.parametrize("transform", ["jpeg", "blur", "noise", "crop", "overlay", "rotate"])
def test_smooth_art_is_found_under_transforms(art_index: tuple[Path, LocalIndex, dict], transform: str) -> None:
    root, idx, _ = art_index
    rng = np.random.default_rng(7)
    fn = {"jpeg": lambda a: M.jpeg(a, 40), "blur": lambda a: M.blur(a, 1.5), "noise": lambda a: M.noise(a, 8, rng),
          "crop": lambda a: M.crop(a, 0.15, rng), "overlay": lambda a: M.overlay(a, rng),
          "rotate": lambda a: M.rotate(a, 4)}[transform]
    top = _top(root, idx, fn(soft(1)), f"soft-{transform}")
    assert top is not None and top[0] == "soft"
    if transform in ("crop", "rotate"):
        assert top[1] in ("orb", "parts")  # found by its (art) keypoints, not by chance of the code


def test_line_art_is_found_inside_a_page(art_index: tuple[Path, LocalIndex, dict]) -> None:
    root, idx, _ = art_index
    pg, _ = page(random.Random(3), line_art(3), 0.7, [soft(50), line_art(51), ramp(52)], "screenshot")
    assert _top(root, idx, pg, "line-page") == ("line", "parts")


@pytest.mark.parametrize("transform", ["jpeg", "noise", "blur"])
def test_a_gradient_is_found_by_its_colour_layout(art_index: tuple[Path, LocalIndex, dict], transform: str) -> None:
    root, idx, _ = art_index
    rng = np.random.default_rng(8)
    fn = {"jpeg": lambda a: M.jpeg(a, 30), "noise": lambda a: M.noise(a, 10, rng), "blur": lambda a: M.blur(a, 2.0)}
    assert _top(root, idx, fn[transform](ramp(5)), f"ramp-{transform}") == ("ramp", "layout")


def test_pictures_of_the_same_style_are_not_matched(art_index: tuple[Path, LocalIndex, dict]) -> None:
    root, idx, _ = art_index
    for name, img in {"soft": soft(11), "line": line_art(13), "ramp": ramp(15),
                      "flat": np.full((H, W, 3), (60, 120, 180), np.uint8)}.items():
        assert _top(root, idx, img, f"other-{name}") is None, name


def test_an_exact_only_picture_is_found_by_its_exact_bytes_only(art_index: tuple[Path, LocalIndex, dict]) -> None:
    root, idx, _ = art_index
    copy = root / "flat-copy.png"
    copy.write_bytes((root / "flat.png").read_bytes())
    m = query_file(copy, idx).matches
    assert [(x.work_id, x.method) for x in m] == [("flat", "sm3")] and m[0].region == (0, 0, W, H)
    other = root / "flat-reencoded.jpg"  # the same colour, other bytes: nothing to tell it by
    other.write_bytes(M.encode(FLAT, ".jpg", 95))
    assert query_file(other, idx).matches == []


def test_a_v1_entry_keeps_working(tmp_path: Path) -> None:
    """An index written by image format v1 (no art keypoints, no layout table) is read and
    its works are found: the v2 query's keypoints start with the v1 ones."""
    import dataclasses

    p = tmp_path / "line.png"
    p.write_bytes(M.encode(line_art(21)))
    fp = fingerprint_file(p)
    assert fp.version == 2 and fp.image is not None
    im = fp.image
    v1 = dataclasses.replace(fp, version=1, image=dataclasses.replace(
        im, points=im.points[:im.v1_points], descriptors=im.descriptors[:im.v1_points], layout=None))
    with open_index(tmp_path / "i") as idx:
        idx.add("old", v1)
        idx.db.execute("DROP TABLE layout")  # as a v1 index has none
    with open_index(tmp_path / "i", create=False) as idx:
        q = tmp_path / "q.jpg"
        q.write_bytes(M.encode(M.crop(line_art(21), 0.1, np.random.default_rng(1)), ".jpg", 90))
        assert [m.work_id for m in query_file(q, idx).matches] == ["old"]
        assert idx.info("old") is not None and idx.info("old").version == 1  # type: ignore[union-attr]
