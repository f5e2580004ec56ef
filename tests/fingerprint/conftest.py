"""Fixtures for the fingerprint tests: media generated here or shipped inside scikit-image."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from bench.fingerprint import media as M


@pytest.fixture(scope="session")
def photo_sets() -> tuple[list[tuple[str, np.ndarray]], list[tuple[str, np.ndarray]]]:
    """Tiles of every other photo (to register) and of the rest (never registered)."""
    photos = M.photos()
    assert len(photos) >= 20, "scikit-image's bundled photos are missing"
    return M.tiles(photos[0::2], size=256), M.tiles(photos[1::2], size=256)


@pytest.fixture(scope="session")
def pictures(photo_sets: tuple[list[tuple[str, np.ndarray]], list[tuple[str, np.ndarray]]]
             ) -> list[tuple[str, np.ndarray]]:
    return photo_sets[0]


@pytest.fixture(scope="session")
def image_index(tmp_path_factory: pytest.TempPathFactory,
                photo_sets: tuple[list[tuple[str, np.ndarray]], list[tuple[str, np.ndarray]]]
                ) -> tuple[Path, list[tuple[str, np.ndarray]], list[tuple[str, np.ndarray]]]:
    """An index of the tiles of half the photos; the other half are never-registered negatives."""
    from fingerprint.service import add_dir

    root = tmp_path_factory.mktemp("img")
    reg = root / "reg"
    reg.mkdir()
    registered, negatives = photo_sets
    for name, a in registered:
        (reg / f"{name}.png").write_bytes(M.encode(a))
    report = add_dir(reg, root / "index", workers=1)
    assert not report.failed and len(report.added) == len(registered)
    return root / "index", registered, negatives


def write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path
