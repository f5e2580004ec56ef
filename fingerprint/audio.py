"""Audio fingerprints: spectral-peak landmarks (Wang 2003 pairs, exact offsets) and
Panako-style triplets whose hashes ignore tempo, pitch and speed changes of a few percent.

Owns audio decoding (soundfile, falling back to PyAV for compressed formats and video
tracks), resampling to 8 kHz mono, the STFT and peak picking. Pure numpy/scipy: librosa is
not needed (and its numba start-up is avoided). Format: ``docs/fingerprints.md`` (audio v1).
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from math import gcd

import numpy as np
import numpy.typing as npt

from .errors import EmptyMedia, MediaTooLarge, UnreadableMedia

AUDIO_FORMAT_VERSION = 1
SAMPLE_RATE = 8000
N_FFT = 1024
HOP = 256  # 32 ms per frame
FRAME_S = HOP / SAMPLE_RATE
MIN_HZ, MAX_HZ = 150.0, 3600.0
PEAKS_PER_S = 24
WHITEN_FRAMES = 1  # time smoothing off: it suppressed sustained notes (measured: noise recall fell)
WHITEN_BINS = 41  # spectral envelope: moving average over 41 bins (320 Hz) of each frame
PEAK_NEIGHBOURHOOD = (11, 15)  # frames × bins
PEAK_MIN_DB = 1.0  # natural-log units above the frame's mean
MAX_SECONDS = 6 * 3600
MIN_SECONDS = 0.5
PAIR_FANOUT = 8
PAIR_MAX_DT = 63  # frames
PAIR_MAX_DF = 63  # bins
TRIPLET_NEXT = 5  # each anchor combines with two of its next peaks
TRIPLET_MIN_DT, TRIPLET_MAX_DT = 3, 90  # frames between the first and the last peak
TRI_RATIO_LEVELS = 12
TRI_SEMI_STEP = 1.0

F32 = npt.NDArray[np.float32]
I64 = npt.NDArray[np.int64]


@dataclass(frozen=True)
class AudioFingerprint:
    """``pair_hashes``/``pair_times``: Wang landmarks (hash, anchor frame);
    ``tri_hashes``/``tri_times``/``tri_spans``: triplet hashes, anchor frame and the span
    t3 − t1 in frames (used to estimate the time scale); ``duration_s``: decoded length."""

    pair_hashes: I64
    pair_times: I64
    tri_hashes: I64
    tri_times: I64
    tri_spans: I64
    duration_s: float
    peak_times: I64 | None = None
    peak_freqs: npt.NDArray[np.float64] | None = None


def _to_mono(x: npt.NDArray[np.floating], sr: int) -> F32:
    if x.ndim == 2:
        x = x.mean(axis=1)
    x = np.asarray(x, dtype=np.float32)
    if sr != SAMPLE_RATE:
        from scipy.signal import resample_poly

        g = gcd(int(sr), SAMPLE_RATE)
        x = np.asarray(resample_poly(x, SAMPLE_RATE // g, int(sr) // g), dtype=np.float32)
    return x


def decode_audio(data: bytes, path: str = "<bytes>") -> F32:
    """8 kHz mono float32 samples of the file's (first) audio stream."""
    import soundfile as sf

    try:
        x, sr = sf.read(io.BytesIO(data), dtype="float32", always_2d=False)
        samples = _to_mono(np.asarray(x), int(sr))
    except (sf.LibsndfileError, RuntimeError, TypeError, ValueError):
        samples = decode_audio_av(data, path)
    _check_length(samples, path)
    return samples


def decode_audio_av(data: bytes, path: str, *, required: bool = True) -> F32:
    """Decode with PyAV (MP3, AAC, the audio track of a video). Empty array if the container
    has no audio stream and ``required`` is false."""
    import av

    chunks: list[npt.NDArray[np.float32]] = []
    try:
        with av.open(io.BytesIO(data), mode="r") as container:
            if not container.streams.audio:
                if required:
                    raise UnreadableMedia(path, "no audio stream")
                return np.zeros(0, np.float32)
            stream = container.streams.audio[0]
            resampler = av.AudioResampler(format="flt", layout="mono", rate=SAMPLE_RATE)
            total = 0
            for frame in container.decode(stream):
                for out in resampler.resample(frame):
                    arr = out.to_ndarray().reshape(-1)
                    chunks.append(np.asarray(arr, dtype=np.float32))
                    total += arr.size
                if total > MAX_SECONDS * SAMPLE_RATE:
                    raise MediaTooLarge(path, f"audio longer than {MAX_SECONDS} s")
            for out in resampler.resample(None):
                chunks.append(np.asarray(out.to_ndarray().reshape(-1), dtype=np.float32))
    except (av.error.FFmpegError, ValueError, IndexError) as exc:
        raise UnreadableMedia(path, f"audio cannot be decoded ({exc})") from None
    return np.concatenate(chunks) if chunks else np.zeros(0, np.float32)


def _check_length(samples: F32, path: str) -> None:
    if samples.size == 0:
        raise EmptyMedia(path, "audio has zero length")
    dur = samples.size / SAMPLE_RATE
    if dur < MIN_SECONDS:
        raise EmptyMedia(path, f"audio is {dur:.2f} s long; at least {MIN_SECONDS} s is needed")
    if dur > MAX_SECONDS:
        raise MediaTooLarge(path, f"audio of {dur:.0f} s exceeds the {MAX_SECONDS} s limit")
    if not np.isfinite(samples).all():
        raise UnreadableMedia(path, "audio contains non-finite samples")


def spectrogram(samples: F32) -> F32:
    """Log-magnitude STFT, frames × bins (Hann window, 1024 points, hop 256 at 8 kHz)."""
    if samples.size < N_FFT:
        samples = np.pad(samples, (0, N_FFT - samples.size))
    n = 1 + (samples.size - N_FFT) // HOP
    idx = np.arange(N_FFT)[None, :] + HOP * np.arange(n)[:, None]
    frames = samples[idx] * np.hanning(N_FFT).astype(np.float32)
    mag = np.abs(np.fft.rfft(frames, axis=1)).astype(np.float32)
    return np.asarray(np.log(mag + 1e-6), dtype=np.float32)


def find_peaks(spec: F32) -> tuple[I64, npt.NDArray[np.float64]]:
    """Spectral peaks: (frame, fractional bin), time-sorted.

    Every step is local in time, so an excerpt yields the same peaks as the whole recording
    (apart from its first and last second): the spectrum is whitened by subtracting its
    moving average over ``WHITEN_FRAMES``; a peak is a local maximum in a
    ``PEAK_NEIGHBOURHOOD`` (frames × bins) window standing ``PEAK_MIN_DB`` above its frame's
    mean; then the strongest ``PEAKS_PER_S`` per second are kept, ranked within a sliding
    one-second window; frequency is refined by a parabola."""
    from scipy.ndimage import maximum_filter, uniform_filter1d

    lo = int(MIN_HZ * N_FFT / SAMPLE_RATE)
    hi = int(MAX_HZ * N_FFT / SAMPLE_RATE)
    band = spec[:, lo:hi]
    if WHITEN_FRAMES > 1:
        band = band - uniform_filter1d(band, size=WHITEN_FRAMES, axis=0, mode="nearest")
    if WHITEN_BINS > 1:
        band = band - uniform_filter1d(band, size=WHITEN_BINS, axis=1, mode="nearest")
    local = maximum_filter(band, size=PEAK_NEIGHBOURHOOD, mode="constant", cval=-np.inf)
    floor = band.mean(axis=1, keepdims=True) + PEAK_MIN_DB
    cand = (band == local) & (band > floor)
    t, f = np.nonzero(cand)
    if t.size == 0:
        return np.zeros(0, np.int64), np.zeros(0, np.float64)
    strength = band[t, f]
    # density: a peak survives if fewer than PEAKS_PER_S stronger peaks lie within ±0.5 s
    half = round(0.5 / FRAME_S)
    order = np.argsort(t, kind="stable")
    t, f, strength = t[order], f[order], strength[order]
    lo_i = np.searchsorted(t, t - half, "left")
    hi_i = np.searchsorted(t, t + half, "right")
    keep = np.zeros(t.size, dtype=bool)
    for i in range(t.size):
        window = strength[lo_i[i]:hi_i[i]]
        keep[i] = int((window > strength[i]).sum()) < PEAKS_PER_S
    t, f = t[keep], f[keep]
    fb = f + lo
    left = spec[t, np.maximum(fb - 1, 0)]
    mid = spec[t, fb]
    right = spec[t, np.minimum(fb + 1, spec.shape[1] - 1)]
    denom = left - 2 * mid + right
    delta = np.where(np.abs(denom) > 1e-9, 0.5 * (left - right) / np.where(denom == 0, 1, denom), 0.0)
    freq = fb + np.clip(delta, -0.5, 0.5)
    order = np.lexsort((freq, t))
    return t[order].astype(np.int64), freq[order].astype(np.float64)


def pair_hashes(t: I64 | npt.NDArray[np.float64], f: npt.NDArray[np.float64]) -> tuple[I64, I64]:
    """Wang landmarks: anchor bin (9 bits) | Δbin + 64 (7 bits) | Δframes (6 bits).

    ``t`` may be fractional (peaks of a query rescaled in time); Δframes is then rounded
    from the exact difference and the anchor frame rounded on its own."""
    fi = np.round(f).astype(np.int64)
    if t.dtype.kind == "f":
        order = np.argsort(t, kind="stable")
        tf, fi = t[order], fi[order]
        hs_f: list[I64] = []
        ts_f: list[I64] = []
        for k in range(1, PAIR_FANOUT + 1):
            if k >= tf.size:
                break
            dt = np.round(tf[k:] - tf[:-k]).astype(np.int64)
            df = fi[k:] - fi[:-k]
            ok = (dt >= 1) & (dt <= PAIR_MAX_DT) & (np.abs(df) <= PAIR_MAX_DF) & (fi[:-k] >= 0) & (fi[:-k] < 512)
            a = np.flatnonzero(ok)
            hs_f.append((fi[a] << 14) | ((df[a] + 64) << 7) | dt[a])
            ts_f.append(np.round(tf[a]).astype(np.int64))
        if not hs_f:
            return np.zeros(0, np.int64), np.zeros(0, np.int64)
        return np.concatenate(hs_f), np.concatenate(ts_f)
    hs: list[I64] = []
    ts: list[I64] = []
    ti = np.asarray(t, dtype=np.int64)
    n = ti.size
    for k in range(1, PAIR_FANOUT + 1):
        if k >= n:
            break
        dt = ti[k:] - ti[:-k]
        df = fi[k:] - fi[:-k]
        ok = (dt >= 1) & (dt <= PAIR_MAX_DT) & (np.abs(df) <= PAIR_MAX_DF)
        a = np.flatnonzero(ok)
        hs.append((fi[a] << 14) | ((df[a] + 64) << 7) | dt[a])
        ts.append(ti[a])
    if not hs:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    h = np.concatenate(hs)
    tt = np.concatenate(ts)
    # limit the fan-out: keep, per anchor, the pairs found first (nearest in peak order)
    return h, tt


def _semitones(f: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    hz = np.maximum(f, 1.0) * SAMPLE_RATE / N_FFT
    return np.asarray(12.0 * np.log2(hz / 100.0), dtype=np.float64)


def triplet_hashes(t: I64, f: npt.NDArray[np.float64]) -> tuple[I64, I64, I64]:
    """Scale-invariant triplets (Panako family) over peaks p1, p2, p3 ordered in time.

    Hash fields, all invariant to a time scale and a frequency scale: the time ratio
    (t2 − t1)/(t3 − t1) in ``TRI_RATIO_LEVELS`` steps; the pitch intervals f2 − f1 and
    f3 − f1 in steps of ``TRI_SEMI_STEP`` semitones (± 24 semitones); and the register of f1
    in octaves. Returned with the anchor frame t1 and the span t3 − t1."""
    st = _semitones(f)
    n = t.size
    hs: list[I64] = []
    ts: list[I64] = []
    spans: list[I64] = []
    lim = int(24 / TRI_SEMI_STEP)
    for j in range(1, TRIPLET_NEXT):
        for k in range(j + 1, TRIPLET_NEXT + 1):
            if k >= n:
                continue
            i = np.arange(n - k)
            span = t[i + k] - t[i]
            d1 = t[i + j] - t[i]
            ok = (span >= TRIPLET_MIN_DT) & (span <= TRIPLET_MAX_DT)
            i, span, d1 = i[ok], span[ok], d1[ok]
            ratio = np.minimum((d1 / span * TRI_RATIO_LEVELS).astype(np.int64), TRI_RATIO_LEVELS - 1)
            i12 = np.round((st[i + j] - st[i]) / TRI_SEMI_STEP).astype(np.int64)
            i13 = np.round((st[i + k] - st[i]) / TRI_SEMI_STEP).astype(np.int64)
            good = (np.abs(i12) <= lim) & (np.abs(i13) <= lim)
            i, span, ratio, i12, i13 = i[good], span[good], ratio[good], i12[good], i13[good]
            reg = np.clip((st[i] // 12).astype(np.int64), 0, 7)
            h = (ratio << 20) | ((i12 + lim) << 12) | ((i13 + lim) << 4) | (reg << 1) | 1
            hs.append(h)
            ts.append(t[i])
            spans.append(span)
    if not hs:
        z = np.zeros(0, np.int64)
        return z, z, z
    return np.concatenate(hs), np.concatenate(ts), np.concatenate(spans)


def fingerprint_samples(samples: F32) -> AudioFingerprint:
    spec = spectrogram(samples)
    t, f = find_peaks(spec)
    ph, pt = pair_hashes(t, f)
    th, tt, ts = triplet_hashes(t, f)
    return AudioFingerprint(ph, pt, th, tt, ts, samples.size / SAMPLE_RATE, t, f)


def fingerprint_audio(data: bytes, path: str = "<bytes>") -> AudioFingerprint:
    return fingerprint_samples(decode_audio(data, path))
