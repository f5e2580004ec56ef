"""Reading media files: exact SM3 hash, and the modality sniffed from the content (never the name).

Owns the magic-byte table and the size limits; decoding belongs to each modality's module.
"""

from __future__ import annotations

import hashlib
from enum import StrEnum
from pathlib import Path

from ledger.files import FileInputError, read_regular

from .errors import EmptyMedia, UnreadableMedia, UnsupportedMedia

MAX_FILE_BYTES = 4 * 1024**3


class Modality(StrEnum):
    IMAGE = "image"
    AUDIO = "audio"
    VIDEO = "video"
    TEXT = "text"


def read_bytes(path: str | Path) -> bytes:
    """The whole file; a clear :class:`MediaError` when it is missing, not a regular file
    (a folder, a FIFO, a device), larger than ``MAX_FILE_BYTES`` or empty."""
    try:
        data = read_regular(path, MAX_FILE_BYTES)
    except FileInputError as exc:
        raise UnreadableMedia(str(path), exc.reason) from None
    if not data:
        raise EmptyMedia(str(path), "file is empty (0 bytes)")
    return data


def sm3_hex(data: bytes) -> str:
    """The exact SM3 hash (GB/T 32905) of the file's bytes, lower-case hex."""
    return hashlib.new("sm3", data).hexdigest()


_IMAGE_MAGIC = (b"\xff\xd8\xff", b"\x89PNG\r\n\x1a\n", b"GIF87a", b"GIF89a", b"BM", b"II*\x00", b"MM\x00*")
_AUDIO_MAGIC = (b"fLaC", b"OggS", b"ID3", b"FORM")
_VIDEO_MAGIC = (b"\x1a\x45\xdf\xa3",)
_AUDIO_BRANDS = (b"M4A ", b"M4B ", b"mp42audio")


def sniff(data: bytes, path: str = "<bytes>") -> Modality:
    """The modality of ``data`` from its leading bytes; text when it is valid UTF-8/GB18030."""
    head = data[:64]
    if head[:4] == b"RIFF" and len(head) >= 12:
        kind = head[8:12]
        if kind == b"WAVE":
            return Modality.AUDIO
        if kind == b"WEBP":
            return Modality.IMAGE
        if kind == b"AVI ":
            return Modality.VIDEO
    if head.startswith(_IMAGE_MAGIC):
        return Modality.IMAGE
    if head.startswith(_AUDIO_MAGIC):
        return Modality.AUDIO
    if len(head) >= 2 and head[0] == 0xFF and (head[1] & 0xE0) == 0xE0 and (head[1] & 0x06) != 0:
        return Modality.AUDIO  # MPEG audio frame sync (MP3 without an ID3 tag)
    if head.startswith(_VIDEO_MAGIC) or (len(head) >= 12 and head[4:8] == b"ftyp"):
        if len(head) >= 12 and head[8:12] in _AUDIO_BRANDS:
            return Modality.AUDIO
        return Modality.VIDEO
    if head[4:8] in (b"moov", b"mdat", b"free", b"wide") or head[:4] == b"\x00\x00\x01\xba":
        return Modality.VIDEO
    if looks_like_text(data):
        return Modality.TEXT
    raise UnsupportedMedia(path, "content is not a recognised image, audio, video or text format")


def looks_like_text(data: bytes) -> bool:
    sample = data[:65536]
    if b"\x00" in sample:
        return False
    for codec in ("utf-8", "gb18030"):
        try:
            sample.decode(codec)
        except UnicodeDecodeError as exc:
            if codec == "utf-8" and exc.start >= len(sample) - 3 and len(data) > len(sample):
                return True  # a multi-byte character cut by the sample boundary
            continue
        return True
    return False
