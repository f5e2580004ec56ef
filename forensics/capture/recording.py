"""The screen recording: the browser's screencast frames (JPEG, each with its time) laid on a
constant 10 frames-per-second timeline (each tick shows the latest frame received by then; the
last frame is held one second; at least 2.5 s) and encoded with Debian's ffmpeg to H.264 MP4.
"""

from __future__ import annotations

import math
import subprocess
from pathlib import Path
from typing import Any

__all__ = ["FPS", "encode_recording"]

FPS = 10
MIN_SECONDS = 2.5
HOLD_S = 1.0
MAX_TICKS = 3000  # five minutes at 10 fps: a longer capture is sampled more sparsely


def timeline(times: list[float]) -> tuple[list[int], float]:
    """For each tick, the index of the frame it shows; and the seconds per tick."""
    t0 = times[0]
    end = max(times[-1] + HOLD_S, t0 + MIN_SECONDS)
    step = 1.0 / FPS
    ticks = math.ceil((end - t0) / step)
    if ticks > MAX_TICKS:
        step, ticks = (end - t0) / MAX_TICKS, MAX_TICKS
    out, j = [], 0
    for i in range(ticks):
        t = t0 + i * step
        while j + 1 < len(times) and times[j + 1] <= t:
            j += 1
        out.append(j)
    return out, step


def encode_recording(frames: list[tuple[float, bytes]], out: Path, ffmpeg: str, timeout: float) -> dict[str, Any]:
    """Encode ``frames`` (time in epoch seconds, JPEG bytes) to ``out``; returns facts about it.
    Raises ``RuntimeError`` when ffmpeg fails or runs out of time."""
    if not frames:
        raise RuntimeError("the browser sent no screencast frames")
    frames = sorted(frames, key=lambda f: f[0])
    picks, step = timeline([f[0] for f in frames])
    stream = b"".join(frames[i][1] for i in picks)
    rate = f"{round(1 / step, 3)}"
    cmd = [ffmpeg, "-hide_banner", "-loglevel", "error", "-nostdin", "-y", "-f", "image2pipe", "-c:v", "mjpeg",
           "-framerate", rate, "-i", "pipe:0", "-vf", "scale=trunc(iw/2)*2:trunc(ih/2)*2,format=yuv420p",
           "-c:v", "libx264", "-preset", "ultrafast", "-crf", "30", "-movflags", "+faststart", "-an", str(out)]
    try:
        proc = subprocess.run(cmd, input=stream, capture_output=True, timeout=max(2.0, timeout), check=False)
    except subprocess.TimeoutExpired:
        raise RuntimeError(f"ffmpeg did not finish within {timeout:.0f} s") from None
    except OSError as exc:
        raise RuntimeError(f"ffmpeg could not run: {exc}") from None
    if proc.returncode != 0 or not out.is_file():
        raise RuntimeError(f"ffmpeg failed: {proc.stderr.decode('utf-8', 'replace')[-300:]}")
    return {"source_frames": len(frames), "frames": len(picks), "frame_rate": rate,
            "duration_ms": int(len(picks) * step * 1000), "codec": "h264", "container": "mp4",
            "first_frame_time": f"{frames[0][0]:.3f}", "last_frame_time": f"{frames[-1][0]:.3f}"}
