"""A file's media type from its leading bytes: light enough for clients (no media library)."""

from __future__ import annotations

_MAGIC: tuple[tuple[bytes, int, str], ...] = (
    (b"\x89PNG\r\n\x1a\n", 0, "image/png"), (b"\xff\xd8\xff", 0, "image/jpeg"), (b"GIF8", 0, "image/gif"),
    (b"BM", 0, "image/bmp"), (b"II*\x00", 0, "image/tiff"), (b"MM\x00*", 0, "image/tiff"),
    (b"WEBP", 8, "image/webp"), (b"WAVE", 8, "audio/wav"), (b"AVI ", 8, "video/x-msvideo"),
    (b"fLaC", 0, "audio/flac"), (b"OggS", 0, "audio/ogg"), (b"ID3", 0, "audio/mpeg"),
    (b"\x1a\x45\xdf\xa3", 0, "video/x-matroska"), (b"ftyp", 4, "video/mp4"), (b"%PDF", 0, "application/pdf"),
)


def media_type(head: bytes, modality: str | None) -> str:
    """A media type from a file's leading bytes (its name is never trusted)."""
    for magic, at, mt in _MAGIC:
        if head[at:at + len(magic)] == magic:
            return mt
    return "text/plain" if modality == "text" else "application/octet-stream"
