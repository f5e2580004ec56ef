"""The calibration's statistics and its shared-mark set, on small generated media."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from bench.fingerprint import media as M
from bench.fingerprint.calib import query, stamp, upper_bound
from bench.fingerprint.calib_av import mix
from bench.fingerprint.parts import drawing
from fingerprint.formats import fingerprint_bytes
from fingerprint.index import open_index


def test_upper_bound_is_clopper_pearson() -> None:
    # at 0 of n the bound has the closed form 1 - 0.05^(1/n) (the "rule of three" is ~3/n)
    assert upper_bound(0, 5000) == pytest.approx(1 - 0.05 ** (1 / 5000))
    assert upper_bound(0, 5000) == pytest.approx(5.99e-4, rel=1e-2)
    # 1 of 100: the tabulated one-sided 95 % Clopper-Pearson bound is 0.0466
    assert upper_bound(1, 100) == pytest.approx(0.0466, abs=2e-4)
    assert upper_bound(0, 0) == 1.0 and upper_bound(3, 3) == 1.0
    assert upper_bound(0, 100) < upper_bound(1, 100) < upper_bound(2, 100)


def test_mix_sets_the_snr() -> None:
    rng = np.random.default_rng(0)
    x = (0.1 * rng.standard_normal(22050)).astype(np.float32)
    other = (0.5 * rng.standard_normal(22050)).astype(np.float32)
    y = mix(x, other, 10.0)
    added = y.astype(np.float64) - x
    assert 10 * np.log10(np.mean(x.astype(np.float64) ** 2) / np.mean(added ** 2)) == pytest.approx(10.0, abs=0.01)


def test_a_shared_platform_mark_matches_nothing_but_the_work_itself(tmp_path: Path) -> None:
    """Registered drawings and unrelated photos carry the same logo, caption bar and tiled
    watermark: the photos match no work, a re-encoded marked work is still found."""
    idx = open_index(tmp_path / "idx")
    works = {f"d{s}": stamp(drawing(700 + s, 640, 480), "all") for s in range(3)}
    for name, img in works.items():
        idx.add(name, fingerprint_bytes(M.encode(img, ".jpg", 95), name))
    for _, photo in M.photos()[:4]:
        found, _ = query(idx, stamp(M.resize(photo, 640 / max(photo.shape[:2])), "all"))
        assert found == []
    found, _ = query(idx, works["d1"], 80)
    assert found and found[0].work_id == "d1"


def test_the_margins_see_every_placement_the_matcher_makes(tmp_path: Path) -> None:
    """The calibration's evidence recorder wraps the matcher's placement step (it broke
    silently once when that step moved): a copy's placement is recorded and still decided by
    the real thresholds."""
    from bench.fingerprint.calib import Margins
    from bench.fingerprint.parts import page

    idx = open_index(tmp_path / "idx")
    work = drawing(901, 640, 480)
    idx.add("w", fingerprint_bytes(M.encode(work, ".jpg", 95), "w"))
    import random

    pg, _ = page(random.Random(3), work, 0.7, [drawing(902 + k, 320, 240) for k in range(3)], "screenshot")
    margins = Margins()
    with margins.watching():
        found, _ = query(idx, pg)
    assert found and found[0].work_id == "w"
    assert margins.max_inliers >= 11
