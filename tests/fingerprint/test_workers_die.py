"""A killed `rongxin fp add-dir` leaves no fingerprinting worker behind."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

import cv2
import numpy as np

from tests.conftest import RONGXIN


def _children(pid: int) -> list[int]:
    out = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
            out.append(int(entry))
    return out


def _alive(pid: int) -> bool:
    """Running (a zombie that nobody reaped has let go of everything it held)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def test_killed_add_dir_leaves_no_worker(tmp_path: Path) -> None:
    folder = tmp_path / "pictures"
    folder.mkdir()
    rng = np.random.default_rng(7)
    for i in range(400):  # enough work that add-dir is still running when it is killed
        noise = cv2.GaussianBlur(rng.integers(0, 256, (384, 384, 3), dtype=np.uint8), (5, 5), 0)
        ok, png = cv2.imencode(".png", noise)
        assert ok
        (folder / f"p{i:03d}.png").write_bytes(png.tobytes())
    proc = subprocess.Popen([str(RONGXIN), "fp", "add-dir", str(folder), "--index", str(tmp_path / "idx"),
                             "--workers", "2", "--no-progress"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    workers: list[int] = []
    try:
        deadline = time.monotonic() + 60
        while len(workers) < 2 and time.monotonic() < deadline and proc.poll() is None:
            time.sleep(0.05)
            workers = [w for w in _children(proc.pid) if _alive(w)]
        assert len(workers) == 2, "add-dir did not start its two workers"
        time.sleep(0.5)  # the workers are busy with their first pictures
        proc.send_signal(signal.SIGKILL)
        assert proc.wait(10) == -signal.SIGKILL  # killed mid-run, not finished already
        deadline = time.monotonic() + 5
        while any(_alive(w) for w in workers) and time.monotonic() < deadline:
            time.sleep(0.05)
        left = [w for w in workers if _alive(w)]
        assert not left, f"workers {left} outlived their parent"
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
        for w in workers:
            if _alive(w):
                os.kill(w, signal.SIGKILL)
