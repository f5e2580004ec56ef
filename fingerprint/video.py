"""Video fingerprints: frames sampled at ``SAMPLE_FPS`` (by timestamp, so the source frame
rate does not matter), each hashed as an image (256-bit DCT code of the border-trimmed frame,
so letterboxing is ignored, plus its mirror image for flipped copies), and the fingerprint of
the audio track when there is one.

Owns video decoding (PyAV, which bundles FFmpeg) and its limits. Format: ``docs/fingerprints.md``
(video v1).
"""

from __future__ import annotations

import io
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from .audio import MIN_SECONDS, AudioFingerprint, fingerprint_samples
from .errors import MediaTooLarge, MediaTooShort, UnreadableMedia
from .image import MAX_PIXELS, MAX_SIDE, dct_code, hash_quality, reduce_for_hash
from .video_parts import InsetFinder, PartCodes

VIDEO_FORMAT_VERSION = 1
SAMPLE_FPS = 4.0
MAX_SECONDS = 6 * 3600
MIN_FRAMES = 2
# registered frames are also hashed after a centred crop, so that a cropped copy still finds
# them; each variant is (linear fraction, horizontal and vertical shift of the crop's centre as
# fractions of the side)
CROP_VARIANTS: tuple[tuple[float, float, float], ...] = ((0.88, 0.0, 0.0),)
# the query side also hashes crops of its frames to 93 % of each side, centred and shifted by
# 1.7 % of the side: a copy cropped by a few percent (to 0.93–0.97 of each side, split at
# random between the sides) then lines up with the registered 0.88 crop within 1 % of the side
# (four more crops to 97 %, shifted 3 % towards each corner, found one more cropped real video
# and let a held-out negative through: docs/fingerprints.md, session 10)
QUERY_SHIFT = 0.017
QUERY_CROP_VARIANTS: tuple[tuple[float, float, float], ...] = tuple(
    (0.93, sx, sy) for sx in (-QUERY_SHIFT, 0.0, QUERY_SHIFT) for sy in (-QUERY_SHIFT, 0.0, QUERY_SHIFT))

U8 = npt.NDArray[np.uint8]


@dataclass(frozen=True)
class VideoFingerprint:
    """``times``: sample times (s); ``codes``: N × 32 bytes, frame codes; ``mirror_codes``:
    codes of the mirrored frames (used on the query side); ``crop_codes``: one N × 32 array per
    ``CROP_VARIANTS`` (registered side; empty on the query side); ``query_crop_codes``: one per
    ``QUERY_CROP_VARIANTS`` (query side only); ``audio``: audio track or None; ``quality``
    (query side only): each sample's hash quality (``image.hash_quality`` of the frame as is),
    which decides whether the sample's codes are evidence (``video_match``); ``parts`` (query
    side only): the codes of picture-in-picture insets (``video_parts``)."""

    times: npt.NDArray[np.float64]
    codes: U8
    mirror_codes: U8
    crop_codes: tuple[U8, ...]
    audio: AudioFingerprint | None
    duration_s: float
    query_crop_codes: tuple[U8, ...] = ()
    quality: npt.NDArray[np.float64] | None = None
    parts: PartCodes | None = None


def _frame_codes(gray: U8, crop_variants: tuple[tuple[float, float, float], ...]
                 ) -> tuple[bytes, bytes, list[bytes], float]:
    from .image import trim_borders

    small = reduce_for_hash(gray)
    trimmed = trim_borders(gray)
    h, w = trimmed.shape
    crops = []
    for f, sx, sy in crop_variants:
        ch, cw = max(1, round(h * f)), max(1, round(w * f))
        y0 = min(max(0, round(h * (0.5 + sy) - ch / 2)), h - ch)
        x0 = min(max(0, round(w * (0.5 + sx) - cw / 2)), w - cw)
        crops.append(dct_code(reduce_for_hash(np.ascontiguousarray(trimmed[y0:y0 + ch, x0:x0 + cw]))))
    return dct_code(small), dct_code(np.ascontiguousarray(small[:, ::-1])), crops, hash_quality(small)


def fingerprint_video(data: bytes, path: str = "<bytes>", *, query: bool = False) -> VideoFingerprint:
    """``query``: hash the frames' centred crops at ``QUERY_CROP_VARIANTS`` (stored in
    ``query_crop_codes``) instead of the registered side's ``CROP_VARIANTS``."""
    import av

    from .audio import decode_audio_av

    times: list[float] = []
    codes: list[bytes] = []
    mirrors: list[bytes] = []
    qualities: list[float] = []
    variants = QUERY_CROP_VARIANTS if query else CROP_VARIANTS
    crops: list[list[bytes]] = [[] for _ in variants]
    insets = InsetFinder() if query else None
    try:
        with av.open(io.BytesIO(data), mode="r") as container:
            if not container.streams.video:
                raise UnreadableMedia(path, "no video stream")
            stream = container.streams.video[0]
            w, h = stream.codec_context.width, stream.codec_context.height
            if w > MAX_SIDE or h > MAX_SIDE or w * h > MAX_PIXELS:
                raise MediaTooLarge(path, f"video frames of {w} × {h} pixels exceed the limit "
                                          f"({MAX_SIDE} per side, {MAX_PIXELS} pixels)")
            next_t = 0.0
            decoded = 0
            for frame in container.decode(stream):
                decoded += 1
                t = float(frame.time) if frame.time is not None else decoded / 25.0
                if t > MAX_SECONDS:
                    raise MediaTooLarge(path, f"video longer than {MAX_SECONDS} s")
                if t + 1e-6 < next_t:
                    continue
                if frame.width * frame.height > MAX_PIXELS:  # the size may change mid-stream
                    raise MediaTooLarge(path, f"video frame of {frame.width} × {frame.height} pixels "
                                              f"exceeds the limit of {MAX_PIXELS} pixels")
                gray = np.asarray(frame.to_ndarray(format="gray"), dtype=np.uint8)
                c, m, cc, qual = _frame_codes(gray, variants)
                times.append(t)
                qualities.append(qual)
                if insets is not None:
                    insets.push(gray)
                codes.append(c)
                mirrors.append(m)
                for lst, code in zip(crops, cc, strict=True):
                    lst.append(code)
                next_t = (int(t * SAMPLE_FPS + 1e-6) + 1) / SAMPLE_FPS
    except (av.error.FFmpegError, ValueError) as exc:
        raise UnreadableMedia(path, f"video cannot be decoded ({exc})") from None
    if decoded < MIN_FRAMES or len(codes) < MIN_FRAMES:
        raise MediaTooShort(path, f"video has {decoded} decodable frame(s); at least "
                                  f"{MIN_FRAMES} frames spanning 1/{SAMPLE_FPS:g} s are needed")
    samples = decode_audio_av(data, path, required=False)
    audio = fingerprint_samples(samples) if samples.size >= MIN_SECONDS * 8000 else None
    arr = np.frombuffer(b"".join(codes), np.uint8).reshape(-1, 32)
    marr = np.frombuffer(b"".join(mirrors), np.uint8).reshape(-1, 32)
    t_arr = np.asarray(times, dtype=np.float64)
    carr = tuple(np.frombuffer(b"".join(lst), np.uint8).reshape(-1, 32).copy() for lst in crops)
    duration = float(t_arr[-1] + 1 / SAMPLE_FPS)
    if query:
        assert insets is not None
        return VideoFingerprint(t_arr, arr.copy(), marr.copy(), (), audio, duration, carr,
                                np.asarray(qualities, np.float64), insets.finish())
    return VideoFingerprint(t_arr, arr.copy(), marr.copy(), carr, audio, duration)
