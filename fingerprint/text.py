"""Text fingerprints: winnowed token shingles over normalised text (Chinese and English).

Normalisation: NFKC (full-width → half-width), case folding; then tokens are single CJK
characters (each a morpheme) and runs of other letters and digits (words); punctuation,
spaces and line breaks are dropped, so re-formatting, re-punctuation and re-wrapping do not
change the fingerprint. Shingles are ``SHINGLE`` consecutive tokens; winnowing (Schleimer,
Wilkerson & Aiken 2003) keeps the minimum hash of every window of ``WINDOW`` shingles, so any
shared run of ``SHINGLE + WINDOW − 1`` tokens is detected. Character shingles were tried
first and rejected: unrelated English texts of one genre (software licences) shared up to
66 % of their 5-character shingles.
Format: ``docs/fingerprints.md`` (text v1).
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from .errors import EmptyMedia, MediaTooShort, UnreadableMedia

TEXT_FORMAT_VERSION = 1
SHINGLE = 5
WINDOW = 6
MIN_TOKENS = SHINGLE + WINDOW - 1
_TOKEN = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\u3040-\u30ff\uac00-\ud7af]|[^\W_]+")

I64 = npt.NDArray[np.int64]


@dataclass(frozen=True)
class TextFingerprint:
    """``hashes``: winnowed shingle hashes (63-bit); ``positions``: their token offsets;
    ``length``: the number of tokens."""

    hashes: I64
    positions: I64
    length: int


def decode_text(data: bytes, path: str = "<bytes>") -> str:
    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]
    for codec in ("utf-8", "gb18030"):
        try:
            return data.decode(codec)
        except UnicodeDecodeError:
            continue
    raise UnreadableMedia(path, "text is neither UTF-8 nor GB18030")


def tokens(text: str) -> list[str]:
    """CJK characters one by one, other letters/digits as words, after NFKC and case folding."""
    return _TOKEN.findall(unicodedata.normalize("NFKC", text).casefold())


def _shingle_hashes(toks: list[str]) -> I64:
    n = len(toks) - SHINGLE + 1
    out = np.empty(n, dtype=np.int64)
    for i in range(n):
        d = hashlib.blake2b("\x1f".join(toks[i:i + SHINGLE]).encode("utf-8"), digest_size=8).digest()
        out[i] = int.from_bytes(d, "big") >> 1
    return out


def winnow(hashes: I64) -> tuple[I64, I64]:
    """Robust winnowing: the right-most minimum of each window, each selection once."""
    n = hashes.size
    if n <= WINDOW:
        last = n - 1 - int(np.argmin(hashes[::-1]))
        return hashes[last:last + 1].copy(), np.array([last], dtype=np.int64)
    from numpy.lib.stride_tricks import sliding_window_view

    win = sliding_window_view(hashes, WINDOW)
    rel = WINDOW - 1 - np.argmin(win[:, ::-1], axis=1)
    pos = np.unique(np.arange(win.shape[0]) + rel)
    return hashes[pos], pos.astype(np.int64)


def fingerprint_str(text: str, path: str = "<text>") -> TextFingerprint:
    toks = tokens(text)
    if not toks:
        raise EmptyMedia(path, "text has no letters or digits")
    if len(toks) < MIN_TOKENS:
        raise MediaTooShort(path, f"text has {len(toks)} words/characters; at least {MIN_TOKENS} are needed")
    h, p = winnow(_shingle_hashes(toks))
    return TextFingerprint(h, p, len(toks))


def fingerprint_text(data: bytes, path: str = "<bytes>") -> TextFingerprint:
    return fingerprint_str(decode_text(data, path), path)
