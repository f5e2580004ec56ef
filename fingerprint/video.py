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
from .image import MAX_PIXELS, MAX_SIDE, dct_code, reduce_for_hash

VIDEO_FORMAT_VERSION = 1
SAMPLE_FPS = 4.0
MAX_SECONDS = 6 * 3600
MIN_FRAMES = 2
# registered frames are also hashed after a centred crop to these linear fractions, so that a
# cropped copy still finds them (the query side hashes its frames as they are)
CROP_VARIANTS = (0.88,)

U8 = npt.NDArray[np.uint8]


@dataclass(frozen=True)
class VideoFingerprint:
    """``times``: sample times (s); ``codes``: N × 32 bytes, frame codes; ``mirror_codes``:
    codes of the mirrored frames (used on the query side); ``audio``: audio track or None."""

    times: npt.NDArray[np.float64]
    codes: U8
    mirror_codes: U8
    crop_codes: tuple[U8, ...]
    audio: AudioFingerprint | None
    duration_s: float


def _frame_codes(gray: U8) -> tuple[bytes, bytes, list[bytes]]:
    from .image import trim_borders

    small = reduce_for_hash(gray)
    trimmed = trim_borders(gray)
    h, w = trimmed.shape
    crops = []
    for f in CROP_VARIANTS:
        dy, dx = int(h * (1 - f) / 2), int(w * (1 - f) / 2)
        crops.append(dct_code(reduce_for_hash(np.ascontiguousarray(trimmed[dy:h - dy, dx:w - dx]))))
    return dct_code(small), dct_code(np.ascontiguousarray(small[:, ::-1])), crops


def fingerprint_video(data: bytes, path: str = "<bytes>") -> VideoFingerprint:
    import av

    from .audio import decode_audio_av

    times: list[float] = []
    codes: list[bytes] = []
    mirrors: list[bytes] = []
    crops: list[list[bytes]] = [[] for _ in CROP_VARIANTS]
    try:
        with av.open(io.BytesIO(data), mode="r") as container:
            if not container.streams.video:
                raise UnreadableMedia(path, "no video stream")
            stream = container.streams.video[0]
            w, h = stream.codec_context.width, stream.codec_context.height
            if w > MAX_SIDE or h > MAX_SIDE or w * h > MAX_PIXELS:
                raise MediaTooLarge(path, f"video frames of {w} × {h} pixels exceed the limit")
            next_t = 0.0
            decoded = 0
            for frame in container.decode(stream):
                decoded += 1
                t = float(frame.time) if frame.time is not None else decoded / 25.0
                if t > MAX_SECONDS:
                    raise MediaTooLarge(path, f"video longer than {MAX_SECONDS} s")
                if t + 1e-6 < next_t:
                    continue
                gray = np.asarray(frame.to_ndarray(format="gray"), dtype=np.uint8)
                c, m, cc = _frame_codes(gray)
                times.append(t)
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
    return VideoFingerprint(t_arr, arr.copy(), marr.copy(), carr, audio, float(t_arr[-1] + 1 / SAMPLE_FPS))
