"""Content agreement (fingerprint.colours): the region where a placement lays a registered
picture must show that picture's colours, cell by cell, so that a rigid set of corners both
pictures carry (a platform's mark) cannot stand for the picture."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from bench.fingerprint import media as M
from fingerprint import colours
from fingerprint.formats import fingerprint_bytes
from fingerprint.image import fingerprint_image_array, orb_scale
from fingerprint.index import open_index


def sized(name: str, w: int = 320, h: int = 240) -> np.ndarray:
    return np.asarray(cv2.resize(dict(M.photos())[name], (w, h), interpolation=cv2.INTER_AREA))


@pytest.fixture(scope="module")
def astronaut() -> np.ndarray:
    return sized("astronaut")


def layout_of(a: np.ndarray) -> np.ndarray:
    lay = fingerprint_image_array(a).layout
    assert lay is not None
    return lay


def agrees(query: np.ndarray, work: np.ndarray, at: tuple[float, float] = (0.0, 0.0), scale: float = 1.0) -> bool:
    """The work shown in ``query`` at ``at`` (query pixels), ``scale`` × its size."""
    h, w = work.shape[:2]
    s = orb_scale(w, h)
    # query pixels -> the work's ORB frame
    model = (s / scale, 0.0, -at[0] * s / scale, 0.0, s / scale, -at[1] * s / scale)
    thumb = colours.thumbnail(query)
    return colours.region_agrees(thumb, (query.shape[1], query.shape[0]), model, (0.0, 0.0, w * s, h * s),
                                 layout_of(work))


def test_copies_agree(astronaut: np.ndarray) -> None:
    a = astronaut
    assert agrees(M.jpeg(a, 40), a)
    assert agrees(M.blur(a, 2.0), a)
    assert agrees(M.gamma(a, 1.6), a)
    grey = cv2.cvtColor(cv2.cvtColor(a, cv2.COLOR_BGR2GRAY), cv2.COLOR_GRAY2BGR)
    assert agrees(np.ascontiguousarray(grey), a)  # a greyscale copy: lightness only
    # cropped: the cells outside the query are not compared
    assert agrees(np.ascontiguousarray(a[30:, 40:]), a, at=(-40, -30))
    # shown at 60 % inside a larger page of other content
    page = np.full((600, 800, 3), 235, np.uint8)
    page[100:100 + 144, 300:300 + 192] = cv2.resize(a, (192, 144), interpolation=cv2.INTER_AREA)
    assert agrees(page, a, at=(300, 100), scale=0.6)


def test_another_picture_under_the_same_placement_does_not_agree(astronaut: np.ndarray) -> None:
    for other in ("coffee", "chelsea", "rocket"):
        assert not agrees(sized(other), astronaut), other


def test_a_bordered_work_is_compared_on_its_trimmed_box(astronaut: np.ndarray) -> None:
    """The registered layout is of the border-trimmed picture; a copy with the same border,
    laid over the whole frame, is trimmed the same way before comparing."""
    bordered = cv2.copyMakeBorder(astronaut, 40, 40, 60, 60, cv2.BORDER_CONSTANT, value=(0, 0, 0))
    whole = colours.agreement(colours._cells(bordered), layout_of(bordered), np.ones(64, bool))
    assert whole < colours.MIN_AGREEING  # the trimmed layout against the untrimmed region
    assert agrees(M.jpeg(bordered, 80), bordered)
    assert not agrees(cv2.copyMakeBorder(sized("coffee"), 40, 40, 60, 60, cv2.BORDER_CONSTANT, value=(0, 0, 0)),
                      bordered)


def test_too_little_of_the_work_inside_the_query_is_not_tested(astronaut: np.ndarray) -> None:
    corner = np.ascontiguousarray(sized("coffee")[:60, :80])  # about 1/16 of the frame
    assert agrees(corner, astronaut)


def test_the_index_keeps_every_pictures_colour_layout(astronaut: np.ndarray, tmp_path: Path) -> None:
    with open_index(tmp_path / "idx") as idx:
        fp = fingerprint_bytes(M.encode(astronaut, ".png"), "a")
        idx.add("a", fp)
        got = idx.colour_layout("a")
        assert got is not None and fp.image is not None and fp.image.layout is not None
        assert np.array_equal(got, fp.image.layout)
        assert idx.colour_layout("nobody") is None
        idx.remove("a")
        assert idx.colour_layout("a") is None


def test_a_copy_that_keeps_its_keypoints_is_not_judged_by_its_colours(tmp_path: Path) -> None:
    """A recoloured copy (red and blue swapped) disagrees with the work's colours, but its
    placement explains most of the work's keypoints: the colour test is not taken, it is found."""
    a = sized("coffee")
    swapped = np.ascontiguousarray(a[:, :, ::-1])
    assert not agrees(swapped, a)
    with open_index(tmp_path / "idx") as idx:
        idx.add("coffee", fingerprint_bytes(M.encode(a, ".png"), "coffee"))
        q = fingerprint_bytes(M.encode(swapped, ".jpg", 90), query=True).image
        assert q is not None
        p = colours.placed(idx, q, q.points / np.float32(orb_scale(q.width, q.height)), q.descriptors, "coffee")
        assert p is not None and p.explained >= colours.EXPLAINED_GATE


def test_a_schema_1_index_is_upgraded_and_an_older_program_refuses_it(astronaut: np.ndarray, tmp_path: Path) -> None:
    """Schema 2 keeps every picture's colour layout. A schema 1 index opens (its works have
    none: placed without the colour test) and is marked 2, so a program that reads only
    schema 1 refuses it instead of writing works without their layouts."""
    import sqlite3

    from fingerprint.errors import IndexCorrupt
    from fingerprint.index import DB_NAME, SCHEMA_VERSION, LocalIndex

    with open_index(tmp_path / "idx") as idx:
        idx.add("a", fingerprint_bytes(M.encode(astronaut, ".png"), "a"))
    db = sqlite3.connect(tmp_path / "idx" / DB_NAME)
    with db:
        db.execute("UPDATE meta SET value='1' WHERE key='schema'")
        db.execute("DROP TABLE colour")
    db.close()
    with open_index(tmp_path / "idx") as idx:
        assert idx.colour_layout("a") is None and idx.count() == 1
    db = sqlite3.connect(tmp_path / "idx" / DB_NAME)
    assert db.execute("SELECT value FROM meta WHERE key='schema'").fetchone()[0] == str(SCHEMA_VERSION) == "2"
    db.execute("UPDATE meta SET value='3' WHERE key='schema'")
    db.commit()
    db.close()
    with pytest.raises(IndexCorrupt, match="schema version 3"):
        LocalIndex(tmp_path / "idx")


def test_a_border_seen_through_a_camera_is_still_trimmed() -> None:
    """Filmed off a screen, a picture's flat border meets the camera's dark surround along the
    region's edges: the trim skips a few such lines and counts a line as border when most of
    it is."""
    g = np.full((240, 240), 104, np.uint8)
    g[40:220, 30:200] = np.random.default_rng(0).integers(0, 255, (180, 170), dtype=np.uint8)  # the content
    g[:, :6] = 20  # the surround along the left edge
    g[:3, :] = 20  # and along the top
    g[100:140, 230:] = 30  # a dark patch where the right border meets the surround
    assert colours._trim(g, 104) == (30, 40, 170, 180)
    assert colours._trim(g, 20) == (6, 3, 234, 237)  # at its own level, only the surround is border
