"""Typed errors of ``fingerprint``: every message names the file (or index) and the reason.

The CLI maps :class:`FingerprintError` subclasses to exit code 2 (unusable input) except
:class:`IndexCorrupt` and :class:`DependencyMissing`, which are environment problems.
"""

from __future__ import annotations


class FingerprintError(Exception):
    """Base of every error raised by ``fingerprint``."""


class MediaError(FingerprintError):
    """A media file cannot be fingerprinted; ``path`` and ``reason`` say which and why."""

    def __init__(self, path: str, reason: str) -> None:
        super().__init__(f"{path}: {reason}")
        self.path = path
        self.reason = reason


class EmptyMedia(MediaError):
    """The file is empty, or decodes to nothing (zero-length audio, no text)."""


class UnreadableMedia(MediaError):
    """The file cannot be decoded: corrupt, truncated, or not the format it claims."""


class UnsupportedMedia(MediaError):
    """The content is of no modality we fingerprint."""


class MediaTooLarge(MediaError):
    """The declared dimensions or duration exceed the configured limits."""


class MediaTooShort(MediaError):
    """Too little content to fingerprint (a single-frame video, a few characters of text)."""


class LowInformation(MediaError):
    """Too little information to fingerprint reliably. Image format v1 refused such pictures
    at registration; since v2 they are registered with a recognition level
    (``formats.recognition``) and nothing raises this today: it stays for a future gate
    (``formats.require_registrable``). ``quality`` is the measured score, ``minimum`` the threshold."""

    def __init__(self, path: str, reason: str, quality: float, minimum: float) -> None:
        super().__init__(path, reason)
        self.quality = quality
        self.minimum = minimum


class IndexFailure(FingerprintError):
    """A problem with a fingerprint index folder."""


class IndexCorrupt(IndexFailure):
    """The index folder exists but its store cannot be opened or has the wrong version."""


class UnknownWork(IndexFailure):
    """A work id that the index does not hold."""


class DuplicateWork(IndexFailure):
    """A work id that is already registered (remove it first, or replace it)."""


class DependencyMissing(FingerprintError):
    """A library needed for this modality is not installed."""
