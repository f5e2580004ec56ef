"""Reading files: exact SM3, modality from content, and clear errors for bad input."""

from __future__ import annotations

import struct
import zlib
from pathlib import Path

import numpy as np
import pytest

from bench.fingerprint import media as M
from fingerprint.errors import (
    EmptyMedia,
    MediaError,
    MediaTooLarge,
    MediaTooShort,
    UnreadableMedia,
    UnsupportedMedia,
)
from fingerprint.formats import fingerprint_file
from fingerprint.media import Modality, sm3_hex, sniff


def test_sm3_matches_the_standard_vector() -> None:
    # GB/T 32905-2016, example 1: SM3("abc")
    assert sm3_hex(b"abc") == "66c7f0f462eeedd9d1f2d46bdc10e4e24167c4875cf2f7a2297da02b8f4ba8e0"


def test_fingerprint_carries_the_exact_sm3_of_the_file(tmp_path: Path) -> None:
    data = M.encode(np.full((64, 64, 3), 90, np.uint8) + np.arange(64, dtype=np.uint8)[:, None, None])
    p = tmp_path / "a.png"
    p.write_bytes(data)
    assert fingerprint_file(p).sm3 == sm3_hex(data)


def test_modality_comes_from_content_not_extension(tmp_path: Path) -> None:
    img = M.encode(np.random.default_rng(0).integers(0, 255, (40, 40, 3), dtype=np.uint8))
    wav = M.wav_bytes(M.music(2, 1), 22050)
    (tmp_path / "photo.txt").write_bytes(img)
    (tmp_path / "song.jpg").write_bytes(wav)
    (tmp_path / "notes.wav").write_text("这是一段足够长的中文文字，用来检查文本是否按内容识别，而不是按文件扩展名。", "utf-8")
    assert fingerprint_file(tmp_path / "photo.txt").modality is Modality.IMAGE
    assert fingerprint_file(tmp_path / "song.jpg").modality is Modality.AUDIO
    assert fingerprint_file(tmp_path / "notes.wav").modality is Modality.TEXT


@pytest.mark.parametrize(("head", "expected"), [
    (b"\xff\xd8\xff\xe0", Modality.IMAGE), (b"\x89PNG\r\n\x1a\n", Modality.IMAGE),
    (b"RIFF\x00\x00\x00\x00WAVE", Modality.AUDIO), (b"fLaC", Modality.AUDIO), (b"ID3\x03", Modality.AUDIO),
    (b"\x00\x00\x00\x18ftypisom", Modality.VIDEO), (b"\x1a\x45\xdf\xa3", Modality.VIDEO),
    (b"plain words", Modality.TEXT),
])
def test_sniff_table(head: bytes, expected: Modality) -> None:
    assert sniff(head + b"\x01" * 32 if expected is not Modality.TEXT else head) is expected


def _chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


def _huge_png(w: int, h: int) -> bytes:
    """A valid PNG header declaring w × h pixels, with a tiny (short) image body."""
    ihdr = struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", ihdr) + _chunk(b"IDAT", zlib.compress(b"\x00" * 64))
            + _chunk(b"IEND", b""))


def _truncated_jpeg() -> bytes:
    data = M.encode(np.random.default_rng(1).integers(0, 255, (200, 200, 3), dtype=np.uint8), ".jpg", 90)
    return data[: len(data) // 2]


def _single_frame_video() -> bytes:
    return M.write_video([np.full((64, 64, 3), 128, np.uint8)], 25)


@pytest.mark.parametrize(("name", "make", "error", "reason"), [
    ("empty.png", lambda: b"", EmptyMedia, "empty"),
    ("cut.jpg", _truncated_jpeg, UnreadableMedia, "truncated"),
    ("noise.bin", lambda: bytes(np.random.default_rng(2).integers(0, 255, 4000, dtype=np.uint8)),
     UnsupportedMedia, "not a recognised"),
    ("huge.png", lambda: _huge_png(100_000, 100_000), MediaTooLarge, "exceed"),
    ("silence.wav", lambda: M.wav_bytes(np.zeros(0, np.float32), 8000), EmptyMedia, "zero length"),
    ("one.mp4", _single_frame_video, MediaTooShort, "frame"),
    ("wrong.jpg", lambda: b"\xff\xd8\xff\xe0" + b"garbage" * 50 + b"\xff\xd9", UnreadableMedia, ""),
    ("short.txt", lambda: b"too short", MediaTooShort, "at least"),
])
def test_bad_input_names_the_file_and_the_reason(tmp_path: Path, name: str, make: object,
                                                  error: type[MediaError], reason: str) -> None:
    p = tmp_path / name
    p.write_bytes(make())  # type: ignore[operator]
    with pytest.raises(error) as info:
        fingerprint_file(p)
    assert name in str(info.value)
    assert reason in str(info.value)


def test_missing_file_and_folder_are_reported(tmp_path: Path) -> None:
    with pytest.raises(UnreadableMedia, match="no such file"):
        fingerprint_file(tmp_path / "absent.png")
    with pytest.raises(UnreadableMedia, match="folder"):
        fingerprint_file(tmp_path)
