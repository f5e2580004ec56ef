"""Decoded size is bounded before decoding: a small file that declares a huge picture is refused
from its header, with the typed error, at almost no memory cost."""

from __future__ import annotations

import struct
import subprocess
import sys
import zlib
from pathlib import Path

import pytest

from fingerprint.errors import MediaTooLarge
from fingerprint.image import MAX_PIXELS, fingerprint_image
from tests.conftest import run_rongxin


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def flat_png(width: int, height: int) -> bytes:
    """A real, complete RGB PNG of ``width`` × ``height`` black pixels: a few hundred KB."""
    co = zlib.compressobj(9)
    row = bytes(1 + 3 * width)  # filter byte 0, then the pixels
    idat = b"".join(co.compress(row) for _ in range(height)) + co.flush()
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", ihdr) + _chunk(b"IDAT", idat) + _chunk(b"IEND", b"")


@pytest.fixture(scope="module")
def bomb(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("bomb") / "bomb.png"
    path.write_bytes(flat_png(10_950, 10_950))
    return path


def test_the_bomb_is_small_and_declares_120_megapixels(bomb: Path) -> None:
    assert bomb.stat().st_size < 1_000_000
    assert 10_950 * 10_950 > 2 * MAX_PIXELS


def test_bomb_refused_from_its_header_without_decoding(bomb: Path) -> None:
    # in a fresh process so that its peak memory is the cost of the refusal alone
    code = (
        "import resource, sys\n"
        "from fingerprint.errors import MediaTooLarge\n"
        "from fingerprint.formats import fingerprint_bytes\n"
        "from fingerprint.media import read_bytes\n"
        "data = read_bytes(sys.argv[1])\n"
        "before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss\n"
        "try:\n"
        "    fingerprint_bytes(data, sys.argv[1])\n"
        "except MediaTooLarge as exc:\n"
        "    grew = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before\n"
        "    print(grew, exc)\n"
        "else:\n"
        "    print('accepted')\n"
    )
    proc = subprocess.run([sys.executable, "-c", code, str(bomb)], capture_output=True, text=True,
                          timeout=120, check=True)
    grew_kb, message = proc.stdout.split(" ", 1)
    assert "10950 × 10950" in message and "exceed" in message
    assert int(grew_kb) < 50_000, f"the refusal cost {grew_kb} KB"  # decoding it would cost > 600 MB


def test_just_over_the_limit_is_refused_with_the_typed_error() -> None:
    side = int(MAX_PIXELS**0.5) + 1
    with pytest.raises(MediaTooLarge, match="pixels"):
        fingerprint_image(flat_png(side, side), "over.png")


def test_cli_refuses_the_bomb_with_exit_2(bomb: Path, tmp_path: Path) -> None:
    proc = run_rongxin("fp", "add", str(bomb), "--id", "B", "--index", str(tmp_path / "idx"), timeout=120)
    assert proc.returncode == 2, proc.stderr
    assert "exceed" in proc.stderr and "Traceback" not in proc.stderr


@pytest.mark.parametrize("shape", [(1, 1), (1, 500), (500, 1), (2, 700), (9, 9)])
def test_a_picture_one_pixel_thin_is_registered_and_queried(shape: tuple[int, int], tmp_path: Path) -> None:
    """OpenCV's ORB raised an internal error on a picture with a side of one pixel (a 1 × 500
    query exited 4, "internal error"); such pictures have no keypoints and are handled."""
    import cv2
    import numpy as np

    from fingerprint.service import add_file, query_file

    f = tmp_path / "thin.png"
    cv2.imwrite(str(f), np.random.default_rng(1).integers(0, 256, (*shape, 3), dtype=np.uint8))
    other = tmp_path / "other.png"
    cv2.imwrite(str(other), np.random.default_rng(2).integers(0, 256, (300, 400, 3), dtype=np.uint8))
    add_file(other, "other", tmp_path / "idx")
    res = query_file(f, tmp_path / "idx")
    assert all(m.work_id != "other" for m in res.matches)
    add_file(f, "thin", tmp_path / "idx")
    assert [m.work_id for m in query_file(f, tmp_path / "idx").matches] == ["thin"]  # its byte copy at least
    proc = run_rongxin("fp", "query", str(f), "--index", str(tmp_path / "idx"), "--json", timeout=120)
    assert proc.returncode == 0 and "Traceback" not in proc.stderr, proc.stderr
