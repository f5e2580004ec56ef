"""Images: global DCT hash, dihedral variants and ORB verification find transformed copies;
never-registered pictures find nothing."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from bench.fingerprint import media as M
from fingerprint.image import global_codes, hamming, trim_borders
from fingerprint.index import open_index
from fingerprint.service import query_file

Index = tuple[Path, list[tuple[str, np.ndarray]], list[tuple[str, np.ndarray]]]


def _query(index: Path, tmp_path: Path, img: np.ndarray, ext: str = ".png") -> list[str]:
    p = tmp_path / f"q{ext}"
    p.write_bytes(M.encode(img, ext, 92))
    return [m.work_id for m in query_file(p, index).matches]


def test_dihedral_variants_are_the_hashes_of_the_turned_picture(pictures: list[tuple[str, np.ndarray]]) -> None:
    gray = pictures[0][1][..., 1]
    codes = global_codes(gray)
    assert len(set(codes)) == 8
    assert hamming(global_codes(np.ascontiguousarray(gray[:, ::-1]))[0], codes[4]) <= 8
    assert hamming(global_codes(np.ascontiguousarray(np.rot90(gray)))[0], codes[1]) <= 8


def test_trim_borders_removes_padding_only() -> None:
    inner = np.random.default_rng(0).integers(30, 220, (50, 80), dtype=np.uint8)
    padded = np.pad(inner, ((10, 10), (20, 20)), constant_values=0)
    assert trim_borders(padded).shape == inner.shape
    assert trim_borders(inner).shape == inner.shape


RNG = np.random.default_rng(7)
TRANSFORMS: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "jpeg_q30": lambda a: M.jpeg(a, 30),
    "resize_0.5": lambda a: M.resize(a, 0.5),
    "crop_20": lambda a: M.crop(a, 0.20, RNG),
    "pad_20": lambda a: M.pad(a, 0.20),
    "rotate_5": lambda a: M.rotate(a, 5),
    "flip": lambda a: np.ascontiguousarray(a[:, ::-1]),
    "overlay": lambda a: M.overlay(a, RNG),
    "gamma_blur_noise": lambda a: M.noise(M.blur(M.gamma(a, 1.5), 1.5), 6, RNG),
}


@pytest.mark.parametrize("transform", sorted(TRANSFORMS))
def test_transformed_copies_are_found_first(image_index: Index, tmp_path: Path, transform: str) -> None:
    index, registered, _ = image_index
    fn = TRANSFORMS[transform]
    found = 0
    for name, a in registered[:8]:
        got = _query(index, tmp_path, fn(a))
        found += bool(got) and got[0] == f"{name}.png"
    assert found >= 7, f"{transform}: {found}/8"


def test_never_registered_pictures_match_nothing(image_index: Index, tmp_path: Path) -> None:
    index, _, negatives = image_index
    false = [name for name, a in negatives if _query(index, tmp_path, M.jpeg(a, 60), ".jpg")]
    assert false == []


def test_query_reports_no_offsets_for_images(image_index: Index, tmp_path: Path) -> None:
    index, registered, _ = image_index
    p = tmp_path / "q.png"
    p.write_bytes(M.encode(registered[0][1]))
    with open_index(index, create=False) as idx:
        m = query_file(p, idx).matches[0]
    assert m.score >= 1.0
    assert m.query_start_s is None and m.work_start_s is None and m.duration_s is None


def _degenerate() -> dict[str, np.ndarray]:
    import skimage.data

    ramp = np.tile(np.linspace(0, 255, 400, dtype=np.float32), (300, 1)).astype(np.uint8)
    board = np.asarray(skimage.data.checkerboard(), dtype=np.uint8)
    flat = np.full((200, 300), 128, np.uint8)
    return {"gradient": ramp, "chessboard": board, "flat": flat}


@pytest.mark.parametrize(("kind", "level"), [("gradient", "limited"), ("chessboard", "limited"), ("flat", "exact-only")])
def test_low_information_pictures_are_registered_with_their_recognition_level(tmp_path: Path, kind: str,
                                                                             level: str) -> None:
    from fingerprint.formats import recognition
    from fingerprint.image import MIN_QUALITY
    from fingerprint.service import add_file

    p = tmp_path / f"{kind}.png"
    p.write_bytes(M.encode(_degenerate()[kind]))
    with open_index(tmp_path / "index") as idx:
        fp = add_file(p, kind, idx)  # registered, not refused (image format v2)
        assert fp.image is not None and fp.image.quality < MIN_QUALITY
        rec = recognition(fp)
        assert rec["level"] == level and rec["global_code"] is False
        assert idx.count() == 1
        # its DCT code, decided by noise, is not indexed
        assert idx.db.execute("SELECT COUNT(*) FROM codes").fetchone()[0] == 0
        assert [m.work_id for m in query_file(p, idx).matches] == [kind]  # its own file is found


def test_registered_pictures_pass_the_quality_gate(pictures: list[tuple[str, np.ndarray]]) -> None:
    from fingerprint.image import MIN_QUALITY, hash_quality, reduce_for_hash, to_gray

    q = [hash_quality(reduce_for_hash(to_gray(a))) for _, a in pictures]
    assert min(q) >= MIN_QUALITY
    # a smooth gradient and a chessboard score far below any of these photographs
    worst = max(hash_quality(reduce_for_hash(a)) for a in _degenerate().values())
    assert worst < MIN_QUALITY < min(q)


def test_the_codes_median_is_numpys_and_takes_even_counts_only() -> None:
    """The DCT codes' median (the mean of the two middle values, in float32) is np.median's on
    the 256 coefficients it is used on; an odd count, which it does not handle, is refused."""
    from fingerprint.image import _median

    rng = np.random.default_rng(5)
    for a in (rng.normal(size=256).astype(np.float32), np.repeat(np.float32([1, 2, 3, 4]), 64),
              np.float32(rng.integers(0, 3, 256))):
        assert _median(a) == np.float32(np.median(a))
    with pytest.raises(ValueError):
        _median(np.zeros(255, np.float32))
