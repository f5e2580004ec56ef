"""Media for the fingerprint benchmark and tests: synthetic signals with real structure,
scikit-image's bundled photos, and the transforms copies go through.

Nothing here is downloaded: photos ship inside scikit-image, Debian media packages are
installed by ``bench.fingerprint.run`` (never by the tests).
"""

from __future__ import annotations

import io
from collections.abc import Callable, Iterable
from fractions import Fraction
from typing import Any

import cv2
import numpy as np
import numpy.typing as npt

U8 = npt.NDArray[np.uint8]
F32 = npt.NDArray[np.float32]

PHOTO_NAMES = ("astronaut", "camera", "coffee", "chelsea", "rocket", "hubble_deep_field",
               "immunohistochemistry", "retina", "page", "coins", "moon", "horse", "text",
               "brick", "grass", "gravel", "cell", "clock", "logo", "colorwheel",
               "binary_blobs", "microaneurysms", "shepp_logan_phantom")  # "cat" is "chelsea" again
# drawn at random on every call unless seeded: seeded, so that every run (and process) of a
# benchmark has the same picture (until session 18 each run had another)
SEEDED = ("binary_blobs",)


def photos() -> list[tuple[str, U8]]:
    """scikit-image's bundled pictures as BGR uint8 arrays (those that load offline)."""
    import skimage.data as data

    out: list[tuple[str, U8]] = []
    for name in PHOTO_NAMES:
        fn = getattr(data, name, None)
        if fn is None:
            continue
        try:
            a = np.asarray(fn(rng=0) if name in SEEDED else fn())
        except (OSError, ValueError, RuntimeError, ImportError):
            continue
        if a.dtype != np.uint8:
            a = a.astype(np.float64)
            a = (255 * (a - a.min()) / max(float(np.ptp(a)), 1e-9)).astype(np.uint8)
        if a.ndim == 2:
            a = cv2.cvtColor(a, cv2.COLOR_GRAY2BGR)
        else:
            a = cv2.cvtColor(np.ascontiguousarray(a[..., :3]), cv2.COLOR_RGB2BGR)
        out.append((name, np.ascontiguousarray(a, dtype=np.uint8)))
    return out


def tiles(pictures: list[tuple[str, U8]], size: int = 256, per_photo: int = 4
          ) -> list[tuple[str, U8]]:
    """More distinct pictures: non-overlapping crops (quadrants) of each photo, resized."""
    out: list[tuple[str, U8]] = []
    for name, a in pictures:
        h, w = a.shape[:2]
        boxes = [(0, 0, h // 2, w // 2), (0, w // 2, h // 2, w), (h // 2, 0, h, w // 2),
                 (h // 2, w // 2, h, w)][:per_photo]
        for k, (y0, x0, y1, x1) in enumerate(boxes):
            sub = a[y0:y1, x0:x1]
            if sub.std() < 8:
                continue
            small = np.asarray(cv2.resize(sub, (size, size), interpolation=cv2.INTER_AREA), dtype=np.uint8)
            out.append((f"{name}-{k}", small))
    return out


def encode(img: U8, ext: str = ".png", quality: int = 95) -> bytes:
    params = [cv2.IMWRITE_JPEG_QUALITY, quality] if ext == ".jpg" else []
    ok, buf = cv2.imencode(ext, img, params)
    if not ok:
        raise RuntimeError("encoding failed")
    return bytes(buf.tobytes())


# -- image transforms ---------------------------------------------------------------------------

def jpeg(img: U8, q: int) -> U8:
    return np.asarray(cv2.imdecode(np.frombuffer(encode(img, ".jpg", q), np.uint8), cv2.IMREAD_COLOR))


def resize(img: U8, f: float) -> U8:
    h, w = img.shape[:2]
    return np.asarray(cv2.resize(img, (max(8, int(w * f)), max(8, int(h * f))), interpolation=cv2.INTER_AREA))


def crop(img: U8, frac: float, rng: np.random.Generator) -> U8:
    """Remove ``frac`` of the area, split at random between the sides."""
    h, w = img.shape[:2]
    side = 1 - np.sqrt(1 - frac)
    dy, dx = int(h * side), int(w * side)
    y0, x0 = int(rng.integers(0, dy + 1)), int(rng.integers(0, dx + 1))
    return img[y0:h - (dy - y0), x0:w - (dx - x0)]


def pad(img: U8, frac: float, value: int = 0) -> U8:
    h, w = img.shape[:2]
    py, px = int(h * frac / 2), int(w * frac / 2)
    return np.asarray(cv2.copyMakeBorder(img, py, py, px, px, cv2.BORDER_CONSTANT, value=(value,) * 3))


def rotate(img: U8, deg: float) -> U8:
    h, w = img.shape[:2]
    m = cv2.getRotationMatrix2D((w / 2, h / 2), deg, 1.0)
    return np.asarray(cv2.warpAffine(img, m, (w, h), borderMode=cv2.BORDER_CONSTANT))


def gamma(img: U8, g: float) -> U8:
    lut = (255 * (np.arange(256) / 255.0) ** g).astype(np.uint8)
    return np.asarray(cv2.LUT(img, lut))


def blur(img: U8, sigma: float) -> U8:
    return np.asarray(cv2.GaussianBlur(img, (0, 0), sigma))


def noise(img: U8, sigma: float, rng: np.random.Generator) -> U8:
    return np.clip(img + rng.normal(0, sigma, img.shape), 0, 255).astype(np.uint8)


def overlay(img: U8, rng: np.random.Generator) -> U8:
    """A caption band with text and a logo box in a corner (watermark-style)."""
    out = img.copy()
    h, w = out.shape[:2]
    cv2.putText(out, "COPY 2026 @someone", (int(w * 0.05), int(h * 0.9)), cv2.FONT_HERSHEY_SIMPLEX,
                max(0.4, w / 500), (255, 255, 255), max(1, w // 200), cv2.LINE_AA)
    s = max(8, w // 8)
    x0, y0 = int(rng.integers(0, max(1, w - s))), int(rng.integers(0, max(1, h // 4)))
    cv2.rectangle(out, (x0, y0), (x0 + s, y0 + s // 2), (0, 128, 255), -1)
    return out


def image_transforms(rng: np.random.Generator) -> dict[str, Callable[[U8], U8]]:
    return {
        "identity": lambda a: a,
        "jpeg_q30": lambda a: jpeg(a, 30),
        "jpeg_q50": lambda a: jpeg(a, 50),
        "resize_0.5": lambda a: resize(a, 0.5),
        "resize_0.25": lambda a: resize(a, 0.25),
        "crop_5": lambda a: crop(a, 0.05, rng),
        "crop_10": lambda a: crop(a, 0.10, rng),
        "crop_20": lambda a: crop(a, 0.20, rng),
        "pad_20": lambda a: pad(a, 0.20),
        "rotate_2": lambda a: rotate(a, 2),
        "rotate_5": lambda a: rotate(a, -5),
        "flip": lambda a: np.ascontiguousarray(a[:, ::-1]),
        "gamma_0.6": lambda a: gamma(a, 0.6),
        "gamma_1.6": lambda a: gamma(a, 1.6),
        "blur_2": lambda a: blur(a, 2.0),
        "noise_10": lambda a: noise(a, 10, rng),
        "overlay": lambda a: overlay(a, rng),
        "combo_crop10_jpeg50_resize0.5": lambda a: jpeg(resize(crop(a, 0.10, rng), 0.5), 50),
        "combo_flip_pad10_gamma": lambda a: gamma(pad(np.ascontiguousarray(a[:, ::-1]), 0.10), 1.3),
    }


# -- audio ----------------------------------------------------------------------------------------

def music(seconds: float, seed: int, sr: int = 22050) -> F32:
    """A random melody of harmonic notes with decaying envelopes over a noise floor."""
    rng = np.random.default_rng(seed)
    n = int(seconds * sr)
    x = np.zeros(n, np.float32)
    t = 0.0
    while t < seconds:
        dur = float(rng.choice([0.15, 0.25, 0.35, 0.5]))
        for _ in range(int(rng.integers(1, 4))):
            midi = int(rng.integers(45, 90))
            f = 440.0 * 2 ** ((midi - 69) / 12)
            i0, i1 = int(t * sr), min(n, int((t + dur * rng.uniform(1, 2)) * sr))
            tt = np.arange(i1 - i0) / sr
            env = np.exp(-tt * rng.uniform(2, 8))
            sig = sum((0.6 ** h) * np.sin(2 * np.pi * f * (h + 1) * tt + rng.uniform(0, 6)) for h in range(4))
            x[i0:i1] += (0.2 * env * sig).astype(np.float32)
        t += dur
    x += (0.01 * rng.standard_normal(n)).astype(np.float32)
    y: F32 = (x / np.abs(x).max() * 0.9).astype(np.float32)
    return y


def ostinato(seconds: float, period: float, seed: int, sr: int = 22050) -> F32:
    """A rhythm section: two alternating plucked notes (below 440 Hz), one every ``period``
    seconds, as in looping game music. Its pairs recur every ``period``."""
    rng = np.random.default_rng(seed)
    n = int(seconds * sr)
    y = np.zeros(n, np.float32)
    notes = [220.0 * 2 ** (int(k) / 12) for k in rng.integers(0, 12, 2)]
    length = int(period * sr)
    tt = np.arange(length) / sr
    for k in range(int(seconds / period) + 1):
        i0 = int(k * period * sr)
        if i0 >= n:
            break
        note = 0.5 * np.exp(-tt * 12) * np.sin(2 * np.pi * notes[k % 2] * tt)
        y[i0:i0 + length] += note[: n - i0].astype(np.float32)
    return y


def looped(passage_s: float, fillers: tuple[float, ...], seed: int, sr: int = 22050) -> tuple[F32, list[float]]:
    """A track in which one passage of ``passage_s`` seconds occurs ``len(fillers) - 1``
    times, verbatim, between fillers of other music of the given lengths (as looping game
    music repeats its theme). Returns the samples and the passage's start times (s)."""
    passage = music(passage_s, seed=seed, sr=sr)
    parts: list[F32] = []
    starts: list[float] = []
    t = 0
    for k, f in enumerate(fillers):
        if k:
            starts.append(t / sr)
            parts.append(passage)
            t += passage.size
        filler = music(f, seed=seed * 31 + k + 1, sr=sr)
        parts.append(filler)
        t += filler.size
    return np.concatenate(parts).astype(np.float32), starts


def add_noise(x: F32, snr_db: float, rng: np.random.Generator) -> F32:
    p = float(np.mean(x.astype(np.float64) ** 2))
    y: F32 = (x + rng.standard_normal(x.size) * np.sqrt(p / 10 ** (snr_db / 10))).astype(np.float32)
    return y


def speed(x: F32, factor: float) -> F32:
    """Play ``factor`` times faster (tempo and pitch together), by resampling."""
    from scipy.signal import resample_poly

    up = 1000
    y: F32 = np.asarray(resample_poly(x, up, round(up * factor)), dtype=np.float32)
    return y


def tempo(x: F32, factor: float, sr: int) -> F32:
    """Play ``factor`` times faster with the pitch kept (what ffmpeg's ``atempo`` does), by
    WSOLA: 50 ms Hann-windowed segments overlap-added every 25 ms of output, each read from
    near ``factor`` × its output time (within ±10 ms, where it best continues the previous
    segment's waveform). Output time t holds input time ≈ t × ``factor``."""
    win = int(0.05 * sr) // 2 * 2
    hop, tol = win // 2, int(0.01 * sr)
    w = np.hanning(win)
    n_out = int(x.size / factor)
    out = np.zeros(n_out + win)
    norm = np.zeros(n_out + win)
    src = x.astype(np.float64)
    last = -1
    for k in range(n_out // hop + 1):
        nominal = round(k * hop * factor)
        if nominal + win + tol > src.size or k * hop + win > out.size:
            break
        start = nominal
        if last >= 0 and last + hop + win <= src.size:
            lo, hi = max(0, nominal - tol), min(src.size - win, nominal + tol)
            follow = src[last + hop:last + hop + win]
            start = lo + int(np.argmax(np.correlate(src[lo:hi + win], follow, "valid")))
        out[k * hop:k * hop + win] += src[start:start + win] * w
        norm[k * hop:k * hop + win] += w
        last = start
    y: F32 = (out / np.maximum(norm, 1e-3))[:n_out].astype(np.float32)
    return y


def telephone(x: F32, sr: int) -> F32:
    from scipy.signal import butter, sosfiltfilt

    sos = butter(4, [300, 3400], btype="bandpass", fs=sr, output="sos")
    y: F32 = np.asarray(sosfiltfilt(sos, x), dtype=np.float32)
    return y


def reverb(x: F32, sr: int, rt60: float, rng: np.random.Generator) -> F32:
    n = int(rt60 * sr)
    ir = rng.standard_normal(n) * np.exp(-6.9 * np.arange(n) / n)
    ir[0] = 1.0
    ir /= np.abs(ir).sum() ** 0.5 * 4
    from scipy.signal import fftconvolve

    y = np.asarray(fftconvolve(x, ir)[: x.size], dtype=np.float64)
    out: F32 = (y / max(float(np.abs(y).max()), 1e-9) * 0.9).astype(np.float32)
    return out


def wav_bytes(x: F32, sr: int) -> bytes:
    import soundfile as sf

    buf = io.BytesIO()
    sf.write(buf, x, sr, format="WAV", subtype="PCM_16")
    return buf.getvalue()


# -- video ----------------------------------------------------------------------------------------

def scene_frames(pictures: list[U8], seconds: float, fps: float, size: tuple[int, int],
                 seed: int) -> Iterable[U8]:
    """Frames of a slide show with pans and zooms over ``pictures``, a cut every 2–4 s."""
    rng = np.random.default_rng(seed)
    w, h = size
    n = int(seconds * fps)
    cuts: list[tuple[int, U8, float, float, float]] = []
    i = 0
    while i < n:
        length = int(rng.uniform(2, 4) * fps)
        pic = pictures[int(rng.integers(0, len(pictures)))]
        cuts.append((i, pic, rng.uniform(-1, 1), rng.uniform(-1, 1), rng.uniform(0.6, 0.85)))
        i += length
    cut_starts = [c[0] for c in cuts] + [n]
    for k, (start, pic, vx, vy, zoom) in enumerate(cuts):
        end = cut_starts[k + 1]
        ph, pw = pic.shape[:2]
        for j in range(start, end):
            p = (j - start) / max(1, end - start)
            z = zoom - 0.1 * p
            cw, ch = int(pw * z), int(ph * z)
            cx = int((pw - cw) * (0.5 + 0.4 * vx * (p - 0.5)))
            cy = int((ph - ch) * (0.5 + 0.4 * vy * (p - 0.5)))
            sub = pic[cy:cy + ch, cx:cx + cw]
            yield np.asarray(cv2.resize(sub, (w, h), interpolation=cv2.INTER_AREA))


def slides(pictures: list[U8], seconds: float, fps: float, size: tuple[int, int], seed: int,
           fade_s: float = 0.5) -> list[U8]:
    """A still slide show: ``pictures`` in turn, each held 2–5 s, a cross-fade of ``fade_s``
    between them (every frame of a slide alike, unlike ``scene_frames``' pans)."""
    rng = np.random.default_rng(seed)
    out: list[U8] = []
    prev: U8 | None = None
    k = 0
    while len(out) < seconds * fps:
        pic = np.asarray(cv2.resize(pictures[k % len(pictures)], size, interpolation=cv2.INTER_AREA), np.uint8)
        k += 1
        for j in range(int(rng.uniform(2, 5) * fps)):
            if prev is not None and j < fade_s * fps:
                a = j / (fade_s * fps)
                out.append((pic * a + prev * (1 - a)).astype(np.uint8))
            else:
                out.append(pic)
        prev = pic
    return out[: int(seconds * fps)]


def write_video(frames: Iterable[U8], fps: float, audio: F32 | None = None, sr: int = 22050,
                codec: str = "mpeg4", bitrate: int = 800_000, container: str = "mp4") -> bytes:
    """Encode BGR frames (and mono audio) with PyAV into an in-memory file."""
    import av

    buf = io.BytesIO()
    rate = Fraction(fps).limit_denominator(1001)
    with av.open(buf, mode="w", format=container) as out:
        vs: Any = None
        astream: Any = out.add_stream("aac", rate=sr) if audio is not None else None
        for frame in frames:
            if vs is None:
                vs = out.add_stream(codec, rate=rate)
                vs.width, vs.height = frame.shape[1] // 2 * 2, frame.shape[0] // 2 * 2
                vs.pix_fmt = "yuv420p"
                vs.bit_rate = bitrate
            img = frame[: int(vs.height), : int(vs.width)]
            vf = av.VideoFrame.from_ndarray(np.ascontiguousarray(img), format="bgr24")
            for pkt in vs.encode(vf):
                out.mux(pkt)
        if vs is not None:
            for pkt in vs.encode():
                out.mux(pkt)
        if astream is not None and audio is not None:
            pcm = (np.clip(audio, -1, 1) * 32767).astype(np.int16)
            step = 1024
            for i in range(0, pcm.size, step):
                af = av.AudioFrame.from_ndarray(pcm[None, i:i + step], format="s16", layout="mono")
                af.sample_rate = sr
                af.pts = i
                for pkt in astream.encode(af):
                    out.mux(pkt)
            for pkt in astream.encode():
                out.mux(pkt)
    return buf.getvalue()
