"""Run ``openssl speed`` and read its machine-readable output (``-mr``).

The baseline every crypto figure of ours is compared with, measured in the same run on the
same machine.
"""

from __future__ import annotations

import os
import shutil
import subprocess


class OpenSSLSpeedError(RuntimeError):
    pass


def _run(args: list[str], timeout: float) -> str:
    exe = shutil.which("openssl")
    if exe is None:
        raise OpenSSLSpeedError("the openssl command is not installed (make run installs it)")
    try:
        proc = subprocess.run([exe, "speed", "-mr", *args], capture_output=True, text=True,
                              timeout=timeout, check=False)
    except subprocess.TimeoutExpired:
        raise OpenSSLSpeedError(f"openssl speed {' '.join(args)} timed out") from None
    if proc.returncode != 0:
        raise OpenSSLSpeedError(f"openssl speed {' '.join(args)} failed: {proc.stderr.strip()[-200:]}")
    return proc.stdout


def sm2(seconds: int = 3, multi: int = 1) -> tuple[float, float]:
    """(sign/s, verify/s) of ``openssl speed sm2``, over ``multi`` processes."""
    args = ["-seconds", str(seconds)] + (["-multi", str(multi)] if multi > 1 else []) + ["sm2"]
    out = _run(args, timeout=seconds * 4 + 60)
    lines = [ln for ln in out.splitlines() if ln.startswith("+F7:")]
    if not lines:
        raise OpenSSLSpeedError("openssl speed printed no SM2 result")
    fields = lines[-1].split(":")
    return float(fields[4]), float(fields[5])


def cipher_mb_per_s(evp: str, seconds: int = 2, block: int = 16384) -> float:
    """MB/s (10^6 bytes) of ``openssl speed -evp NAME`` at one block size."""
    out = _run(["-seconds", str(seconds), "-bytes", str(block), "-evp", evp],
               timeout=seconds * 4 + 60)
    lines = [ln for ln in out.splitlines() if ln.startswith("+F:")]
    if not lines:
        raise OpenSSLSpeedError(f"openssl speed printed no result for {evp}")
    return float(lines[-1].split(":")[-1]) / 1e6


def cores() -> int:
    return os.cpu_count() or 1
