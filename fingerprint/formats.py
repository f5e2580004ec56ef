"""The fingerprint envelope: which modality, which format version, the file's exact SM3 hash,
and the modality's payload. ``fingerprint_file`` / ``fingerprint_bytes`` are the one entry
point that sniffs the modality from content and dispatches to the modality's module.

Per-modality formats are documented in ``docs/fingerprints.md``; the versions below are the
ones that document describes.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .media import Modality, read_bytes, sm3_hex, sniff

if TYPE_CHECKING:
    from .audio import AudioFingerprint
    from .image import ImageFingerprint
    from .text import TextFingerprint
    from .video import VideoFingerprint

FORMAT_VERSIONS = {Modality.IMAGE: 2, Modality.AUDIO: 1, Modality.VIDEO: 1, Modality.TEXT: 1}


@dataclass(frozen=True)
class Fingerprint:
    """One file's fingerprint. Exactly one of the payload fields is set, per ``modality``."""

    modality: Modality
    sm3: str
    version: int
    size_bytes: int
    image: ImageFingerprint | None = None
    audio: AudioFingerprint | None = None
    video: VideoFingerprint | None = None
    text: TextFingerprint | None = None

    @property
    def duration_s(self) -> float | None:
        if self.audio is not None:
            return self.audio.duration_s
        if self.video is not None:
            return self.video.duration_s
        return None


def fingerprint_bytes(data: bytes, path: str = "<bytes>", modality: Modality | None = None,
                      *, query: bool = False) -> Fingerprint:
    """``query`` adds what only the query side needs (mirror-image ORB features, crops of
    video frames)."""
    mod = modality or sniff(data, path)
    head = (mod, sm3_hex(data), FORMAT_VERSIONS[mod], len(data))
    if mod is Modality.IMAGE:
        from .image import fingerprint_image

        return Fingerprint(*head, image=fingerprint_image(data, path, query=query))
    if mod is Modality.AUDIO:
        from .audio import fingerprint_audio

        return Fingerprint(*head, audio=fingerprint_audio(data, path))
    if mod is Modality.VIDEO:
        from .video import fingerprint_video

        return Fingerprint(*head, video=fingerprint_video(data, path, query=query))
    from .text import fingerprint_text

    return Fingerprint(*head, text=fingerprint_text(data, path))


def require_registrable(fp: Fingerprint, name: str) -> None:
    """Raise :class:`~fingerprint.errors.LowInformation` (naming ``name``) if ``fp`` cannot be
    registered. Since image format v2 every decodable picture is registrable: a picture with
    too little information for the robust features is registered with what it has and
    :func:`recognition` says so (level ``limited`` or ``exact-only``); nothing is refused
    today. Every ``IndexBackend.add`` and the service functions still call this, the one place
    a future gate would go."""
    del fp, name


def recognition(fp: Fingerprint) -> dict[str, Any]:
    """How well a registered work can be recognised (docs/fingerprints.md, "Recognition"):
    ``{"level": "robust" | "limited" | "exact-only", ...}`` with the modality's evidence."""
    if fp.image is not None:
        from .art import recognition as image_recognition

        return image_recognition(fp.image)
    if fp.audio is not None or fp.video is not None:
        audio = fp.audio if fp.audio is not None else fp.video.audio if fp.video is not None else None
        out: dict[str, Any] = {"level": "robust"}
        if fp.video is not None:
            out["frames"] = len(fp.video.times)
        if audio is not None:
            out["landmarks"] = int(audio.pair_hashes.size)
        return out
    n = int(fp.text.hashes.size) if fp.text is not None else 0
    return {"level": "robust" if n else "exact-only", "hashes": n}


def fingerprint_file(path: str | Path, *, query: bool = False) -> Fingerprint:
    """Fingerprint a file; the modality is detected from its content, not its extension."""
    return fingerprint_bytes(read_bytes(path), str(path), query=query)
